#!/usr/bin/env bash
# bench/auth.sh — what API key verification costs the submit path: wrk POST /v1/tasks (echo)
# against one `genpulse serve`, alternating rounds without a key (the server is open: loopback,
# no key exists) and with a key (Authorization: Bearer, plan unlimited so no rate limit and no
# charge), so both see the same machine noise. Between rounds the key is revoked or a new one
# created, and the round waits out the 5 s auth cache.
#
#   GENPULSE_BIN=build-release/genpulse bench/auth.sh      # ROUNDS=3 WRK_SECONDS=8
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${GENPULSE_BIN:-build-release/genpulse}
ROUNDS=${ROUNDS:-3}
WRK_SECONDS=${WRK_SECONDS:-8}
PORT=${PORT:-18431}
command -v wrk >/dev/null || { echo "wrk not found (sh tools/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/genpulse-bench-auth.XXXXXX")
"$BIN" serve --port "$PORT" --data-dir "$WORK" --log-level warn &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
"$BIN" users create --email bench@example.com --plan unlimited --data-dir "$WORK" >/dev/null

run() { # label, key
    GENPULSE_BENCH_KEY=$2 wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency -s bench/submit.lua \
        "http://127.0.0.1:$PORT" | awk -v l="$1" '/^RESULT/ {print l, $0}'
}
for r in $(seq "$ROUNDS"); do
    run "no-key  round $r" ""
    KEY_JSON=$("$BIN" keys create --user bench@example.com --data-dir "$WORK")
    KEY=$(printf '%s' "$KEY_JSON" | sed -n 's/.*"key": "\(gp_[A-Za-z0-9]*\)".*/\1/p')
    KID=$(printf '%s' "$KEY_JSON" | sed -n 's/^  "id": "\([^"]*\)".*/\1/p')
    sleep 6
    run "api-key round $r" "$KEY"
    "$BIN" keys revoke "$KID" --data-dir "$WORK" >/dev/null
    sleep 6
done

#!/usr/bin/env bash
# bench/ops.sh — what the probes cost: GET /health and GET /ready under wrk (one server,
# embedded, SQLite), and one uncached /ready round (its checks really run: the result is shared
# for 1 s, so each sample waits that out), embedded and — when GENPULSE_TEST_PG_URL and
# GENPULSE_TEST_REDIS_URL are set — a distributed gateway (PostgreSQL + Redis + local storage).
#
#   GENPULSE_BIN=build-release/genpulse bench/ops.sh      # WRK_SECONDS=5 SAMPLES=10
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${GENPULSE_BIN:-build-release/genpulse}
WRK_SECONDS=${WRK_SECONDS:-5}
SAMPLES=${SAMPLES:-10}
PORT=${PORT:-18531}
command -v wrk >/dev/null || { echo "wrk not found (sh tools/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/genpulse-bench-ops.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$WORK"' EXIT

start() { # name, port, command, env...
    local name=$1 port=$2 cmd=$3; shift 3
    env "$@" "$BIN" "$cmd" --port "$port" --data-dir "$WORK/$name" --log-level warn &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
    echo "$name did not start" >&2; exit 1
}
rps() { # label, url
    wrk -t2 -c32 -d"${WRK_SECONDS}s" --latency "$2" |
        awk -v l="$1" '/Requests\/sec/ {r=$2} /^ +50%/ {p=$2} END {printf "%-28s %10s req/s  p50 %s\n", l, r, p}'
}
uncached() { # label, url
    local all=()
    for _ in $(seq "$SAMPLES"); do
        sleep 1.1
        all+=("$(curl -s -o /dev/null -w '%{time_total}' "$2")")
    done
    printf '%s\n' "${all[@]}" | sort -n | awk -v l="$1" '{v[NR]=$1} END {
        printf "%-28s p50 %.2f ms  max %.2f ms (%d samples)\n", l, v[int((NR+1)/2)]*1000, v[NR]*1000, NR}'
}

start embedded "$PORT" serve
rps "embedded /health" "http://127.0.0.1:$PORT/health"
rps "embedded /ready (shared)" "http://127.0.0.1:$PORT/ready"
rps "embedded /metrics" "http://127.0.0.1:$PORT/metrics"
uncached "embedded /ready (checks)" "http://127.0.0.1:$PORT/ready"
if [ -n "${GENPULSE_TEST_PG_URL:-}" ] && [ -n "${GENPULSE_TEST_REDIS_URL:-}" ]; then
    P2=$((PORT + 1))
    start gateway "$P2" api GENPULSE_DATABASE_URL="$GENPULSE_TEST_PG_URL" \
        GENPULSE_QUEUE_URL="${GENPULSE_TEST_REDIS_URL%/*}/8"
    uncached "gateway /ready (checks)" "http://127.0.0.1:$P2/ready"
    rps "gateway /ready (shared)" "http://127.0.0.1:$P2/ready"
fi

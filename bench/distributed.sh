#!/bin/bash
# bench/distributed.sh — figures for distributed mode: private PostgreSQL + Redis
# (tools/test-services.sh), `genpulse api` gateways and 2 `genpulse worker` processes.
# Prints: submit throughput through one and two gateways (wrk, 64 connections in total,
# workers running), end-to-end echo throughput with 2 workers (bench/e2e.c, 20,000 tasks),
# RPC round trip p50/p99 (bench/rpc.c through libgenpulse), worker idle RSS.
# Usage: make release && bash bench/distributed.sh   (GENPULSE_BIN overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${GENPULSE_BIN:-build-release/genpulse}
LIB=$(dirname "$BIN")/libgenpulse.a
mkdir -p bench/build
cc -O2 -Wall -Wextra -o bench/build/e2e bench/e2e.c -lpthread
cc -O2 -Wall -Wextra -Iinclude -o bench/build/rpc bench/rpc.c "$LIB" -lhiredis -ljansson -lpthread
svc=/tmp/genpulse-bench-services-$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  sh tools/test-services.sh stop "$svc"
}
trap cleanup EXIT
sh tools/test-services.sh start "$svc" >/dev/null
set -a; . "$svc/env"; set +a
export GENPULSE_DATABASE_URL=$GENPULSE_TEST_PG_URL GENPULSE_QUEUE_URL=$GENPULSE_TEST_REDIS_URL
data=$(mktemp -d)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { "$BIN" "$@" --data-dir "$data" --log-level warn >>"$data/log" 2>&1 & pids+=($!); }
wait_http() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return; sleep 0.1; done; echo "no health on $1" >&2; exit 1; }
post_lua=$(mktemp --suffix=.lua)
cat >"$post_lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/v1/tasks"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"task_type":"echo","params":{"message":"hi"}}'
LUA
p1=$(free_port); p2=$(free_port)
start api --port "$p1"; start api --port "$p2"; start worker; w1=${pids[-1]}; start worker
wait_http "$p1"; wait_http "$p2"; sleep 1
idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$w1/status")
# End to end and RPC first, on an empty queue; the wrk runs below leave a backlog.
e2e=$(bench/build/e2e --port "$p1" --tasks 20000 --connections 64 2>/dev/null | tail -1)
rpc=$(bench/build/rpc "$GENPULSE_QUEUE_URL" 2000)
one=$(wrk -t2 -c64 -d8s -s "$post_lua" "http://127.0.0.1:$p1" | awk '/Requests\/sec/ {print $2}')
wrk -t1 -c32 -d8s -s "$post_lua" "http://127.0.0.1:$p1" >"$data/w1" & wp=$!
two_b=$(wrk -t1 -c32 -d8s -s "$post_lua" "http://127.0.0.1:$p2" | awk '/Requests\/sec/ {print $2}')
wait "$wp"; two_a=$(awk '/Requests\/sec/ {print $2}' "$data/w1")
cat <<REPORT
GenPulse distributed benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPU(s), rev $(git rev-parse --short HEAD 2>/dev/null || echo ?)
(PostgreSQL 15 fsync=off + Redis 7 on loopback, 2 gateways, 2 workers, all on this machine)
submit through 1 gateway (wrk 64 conns, workers running):  $one req/s
submit through 2 gateways (32 conns each):                 $(awk -v a="$two_a" -v b="$two_b" 'BEGIN {print a + b}') req/s ($two_a + $two_b)
end-to-end echo, 20,000 tasks, 2 workers:                  $e2e
RPC round trip (libgenpulse, echo):                        $rpc
worker idle RSS:                                           $((idle_rss / 1024)) MB ($idle_rss kB)
REPORT

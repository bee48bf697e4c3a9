#!/usr/bin/env bash
# bench/metrics.sh — what the metrics cost.
#  1. Submit throughput (wrk POST /v1/tasks, echo, bench/submit.lua) against three `genpulse
#     serve` processes started side by side — metrics on, metrics off (--metrics 0), and
#     metrics on with the access log written (--log-level info, stderr to a file) — measured
#     in alternating rounds so all three see the same machine noise. Before each round the
#     previous server's queue is drained (its workers must not steal the CPU).
#  2. One /metrics scrape: wrk GET /metrics on one connection (µs per call, end to end), then
#     four connections (scrapes per second), on the metrics-on server after its rounds (so
#     every series exists).
#
#   GENPULSE_BIN=build-release/genpulse bench/metrics.sh     # ROUNDS=3 WRK_SECONDS=8
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${GENPULSE_BIN:-build-release/genpulse}
ROUNDS=${ROUNDS:-3}
WRK_SECONDS=${WRK_SECONDS:-8}
PORT=${PORT:-18461}
command -v wrk >/dev/null || { echo "wrk not found (sh tools/deps.sh bench)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/genpulse-bench-metrics.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

NAMES=(metrics-on metrics-off on+access-log)
ARGS=("--metrics 1 --log-level warn" "--metrics 0 --log-level warn" "--metrics 1 --log-level info")
for i in 0 1 2; do
    mkdir -p "$WORK/$i"
    # shellcheck disable=SC2086
    "$BIN" serve --port $((PORT + i)) --data-dir "$WORK/$i" ${ARGS[$i]} 2>"$WORK/$i/stderr.log" &
    PIDS+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + i))/health" >/dev/null && break; sleep 0.1; done
done

drain() { # port: wait until its queue is empty and no slot is busy
    for _ in $(seq 600); do
        h=$(curl -sf "http://127.0.0.1:$1/health") || return 0
        case "$h" in *'"queue_depth":0,'*'"busy":0'*) return 0 ;; esac
        sleep 0.2
    done
}

echo "# bench/metrics.sh $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, wrk -t2 -c64 -d${WRK_SECONDS}s, ROUNDS=$ROUNDS"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of a process
TCK=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
    for i in 0 1 2; do
        for j in 0 1 2; do drain $((PORT + j)); done
        c0=$(cpu_ticks "${PIDS[$i]}")
        line=$(wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency -s bench/submit.lua \
            "http://127.0.0.1:$((PORT + i))" | grep '^RESULT')
        drain $((PORT + i)) # the tasks it accepted have run: the CPU covers their whole life
        c1=$(cpu_ticks "${PIDS[$i]}")
        n=$(printf '%s' "$line" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
        cpu=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="$TCK" 'BEGIN {printf "%.1f", (b - a) / t * 1e6 / n}')
        echo "${NAMES[$i]} round $r cpu_us_per_task=$cpu $line"
    done
done | tee "$WORK/rounds.txt"

echo "# submit rps, median of $ROUNDS rounds"
for n in "${NAMES[@]}"; do
    grep "^$n round" "$WORK/rounds.txt" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p' | sort -n |
        awk -v n="$n" '{v[NR]=$1} END {printf "%-14s median_rps=%.0f (min %.0f, max %.0f)\n", n, v[int((NR+1)/2)], v[1], v[NR]}'
done
echo "# server CPU per task (accept + run + commit, user + system), median of $ROUNDS rounds:"
echo "# less sensitive to other load on the machine than throughput"
for n in "${NAMES[@]}"; do
    grep "^$n round" "$WORK/rounds.txt" | sed -n 's/.* cpu_us_per_task=\([0-9.]*\).*/\1/p' | sort -n |
        awk -v n="$n" '{v[NR]=$1} END {printf "%-14s median_cpu_us_per_task=%.1f (min %.1f, max %.1f)\n", n, v[int((NR+1)/2)], v[1], v[NR]}'
done
on=$(grep "^metrics-on round" "$WORK/rounds.txt" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
off=$(grep "^metrics-off round" "$WORK/rounds.txt" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
awk -v a="$on" -v b="$off" 'BEGIN {printf "metrics on vs off: %+.1f%% submit throughput\n", (a - b) / b * 100}'
med() { # name field
    grep "^$1 round" "$WORK/rounds.txt" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p" | sort -n |
        awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
awk -v a="$(med metrics-on cpu_us_per_task)" -v b="$(med metrics-off cpu_us_per_task)" \
    -v c="$(med on+access-log cpu_us_per_task)" 'BEGIN {
    printf "metrics on vs off: %+.1f us CPU per task (%+.1f%%); access log on top: %+.1f us\n",
        a - b, (a - b) / b * 100, c - a}'

for j in 0 1 2; do drain $((PORT + j)); done
echo "# one /metrics scrape (metrics-on server, $(curl -s "http://127.0.0.1:$PORT/metrics" | grep -vc '^#') sample lines)"
wrk -t1 -c1 -d5s --latency -s bench/metrics_scrape.lua "http://127.0.0.1:$PORT" | awk '/^RESULT/ {print "scrape c=1", $0}'
wrk -t2 -c4 -d5s --latency -s bench/metrics_scrape.lua "http://127.0.0.1:$PORT" | awk '/^RESULT/ {print "scrape c=4", $0}'
echo "# for comparison: GET /health on the same server, one connection"
SCRAPE_PATH=/health wrk -t1 -c1 -d5s --latency -s bench/metrics_scrape.lua "http://127.0.0.1:$PORT" |
    awk '/^RESULT/ {print "health c=1", $0}'

echo "# the hot path in isolation (bench/metrics_hot.c)"
mkdir -p bench/build
BUILD_DIR=$(dirname "$BIN")
cc -O2 -Iinclude -Isrc -pthread -o bench/build/metrics_hot bench/metrics_hot.c \
    "$BUILD_DIR/libgenpulse-core.a" $(pkg-config --libs libmicrohttpd jansson sqlite3 libpng libpq \
    hiredis libcurl libcrypto vips libavformat libavcodec libavutil libswscale) -lespeak-ng -lm
bench/build/metrics_hot 2

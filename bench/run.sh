#!/usr/bin/env bash
# bench/run.sh — GenPulse benchmark suite. Prints figures, never pass/fail.
#
#   bench/run.sh                                  # benchmarks build/genpulse
#   GENPULSE_BIN=build-release/genpulse bench/run.sh
#
# Sections (each against a freshly started `genpulse serve` with an empty data dir, stopped
# with SIGTERM afterwards):
#   1. submit throughput/latency: wrk -t2 -c64 -d10s --latency POST /v1/tasks (echo)
#   2. end-to-end echo throughput: bench/e2e.c, 20,000 tasks over 64 keep-alive connections
#   3. memory with 5,000 open SSE streams: bench/sse_clients.c
#   4. idle RSS of a fresh server after 2 s
# The table is printed at the end and written to bench/results-latest.txt.
# See bench/README.md for what each figure means. Knobs (environment): GENPULSE_BIN,
# WRK_SECONDS, E2E_TASKS, SSE_STREAMS, SSE_TASKS, SSE_HOLD, SSE_CONCURRENCY, KEEP_WORK=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

GENPULSE_BIN=${GENPULSE_BIN:-build/genpulse}
HOST=127.0.0.1
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_THREADS=2
WRK_CONNECTIONS=64
E2E_TASKS=${E2E_TASKS:-20000}
E2E_CONNECTIONS=64
E2E_TIMEOUT=${E2E_TIMEOUT:-90}
SSE_STREAMS=${SSE_STREAMS:-5000}
SSE_TASKS=${SSE_TASKS:-50}
SSE_HOLD=${SSE_HOLD:-5}
SSE_CONCURRENCY=${SSE_CONCURRENCY:-$SSE_TASKS}
IDLE_SECONDS=2
STOP_TIMEOUT=${STOP_TIMEOUT:-40}
RESULTS=bench/results-latest.txt

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- prerequisites --------------------------------------------------------------------------
case $GENPULSE_BIN in /*) BIN=$GENPULSE_BIN ;; *) BIN=$ROOT/$GENPULSE_BIN ;; esac
[[ -x $BIN ]] || die "server binary $BIN not found or not executable (build it, or set GENPULSE_BIN)"
command -v wrk >/dev/null || die "wrk not found (Debian package wrk)"
command -v curl >/dev/null || die "curl not found"
command -v cc >/dev/null || die "cc not found"

# 5,000 streams need 5,000 descriptors in the server and as many in the client.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
NOFILE=$(ulimit -n)
[[ $NOFILE -ge $((SSE_STREAMS + 200)) ]] ||
    log "warning: ulimit -n is $NOFILE, below what $SSE_STREAMS streams need"

mkdir -p bench/build
cc -O2 -Wall -Wextra -o bench/build/e2e bench/e2e.c -lpthread
cc -O2 -Wall -Wextra -o bench/build/sse_clients bench/sse_clients.c

WORK=$(mktemp -d "${TMPDIR:-/tmp}/genpulse-bench.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${KEEP_WORK:-0} == 1 ]]; then log "work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# key=value lookup in a file of "k=v k=v" lines: kv FILE KEY
kv() { grep -o "\(^\| \)$2=[^ ]*" "$1" | head -n1 | sed 's/^ *[^=]*=//' || true; }

proc_field() { # proc_field PID FIELD  -> number (kB for Vm*), empty if gone
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 30000))
        # Free when nothing accepts a connection there (bash's /dev/tcp: no ss/netstat needed).
        if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }

# start_server LABEL [extra serve flags...]  -> sets SERVER_PID PORT BASE; records start-up time
start_server() {
    local label=$1
    shift
    PORT=$(free_port)
    BASE=http://$HOST:$PORT
    local data_dir
    data_dir=$(mktemp -d "$WORK/data-$label.XXXXXX")
    SERVER_LOG=$WORK/server-$label.log
    local t0
    t0=$(now_ms)
    "$BIN" serve --port "$PORT" --data-dir "$data_dir" --log-level warn "$@" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    local code=000
    for _ in $(seq 1 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/health" || true)
        [[ $code == 200 ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 30 "$SERVER_LOG" >&2 || true
            die "server ($label) exited during start-up"
        fi
        sleep 0.05
    done
    if [[ $code != 200 ]]; then
        tail -n 30 "$SERVER_LOG" >&2 || true
        die "server ($label) did not answer GET /health with 200 within 15 s (last: $code)"
    fi
    STARTUP_MS=$(($(now_ms) - t0))
    log "server ($label) pid $SERVER_PID on port $PORT, healthy after ${STARTUP_MS} ms"
}

# stop_server LABEL [EXPECTED_REGEX]: SIGTERM, wait (SIGKILL after STOP_TIMEOUT), note anything
# unusual. Log lines matching EXPECTED_REGEX are expected in this section and not noted.
stop_server() {
    local label=$1 expected=${2:-^\$} t0 rc=0 killed=0
    t0=$(now_ms)
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
    while kill -0 "$SERVER_PID" 2>/dev/null && [[ $(now_ms) -lt $deadline ]]; do
        sleep 0.05
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        killed=1
    fi
    wait "$SERVER_PID" 2>/dev/null || rc=$?
    STOP_MS=$(($(now_ms) - t0))
    SERVER_PID=
    if [[ $killed == 1 ]]; then
        note "$label: server still running ${STOP_TIMEOUT} s after SIGTERM; SIGKILLed"
    elif [[ $rc != 0 ]]; then
        note "$label: server exited with status $rc after SIGTERM (${STOP_MS} ms)"
    fi
    local bad n
    bad=$(grep -iE 'warn|error|fatal|abort|assert|sanitizer|leak|overflow' "$SERVER_LOG" |
        grep -vE "$expected" || true)
    n=$(grep -c . <<<"$bad" || true)
    if [[ -n $bad ]]; then
        note "$label: $n warning/error line(s) in the server log, first: $(head -n1 <<<"$bad" | cut -c1-200)"
        cp "$SERVER_LOG" "bench/server-$label.log"
    fi
    log "server ($label) stopped in ${STOP_MS} ms (exit status $rc)"
}

CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
BIN_VERSION=$("$BIN" version 2>/dev/null | head -n1 || true)
log "machine: $NPROC x $CPU_MODEL; binary $BIN ${BIN_VERSION:+($BIN_VERSION)}"
SERVE_HELP=$("$BIN" serve --help 2>&1 || true)

# ---- 1. submit throughput and latency (wrk) -------------------------------------------------
log "1/4 submit throughput: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_SECONDS}s --latency"
start_server submit
S1_STARTUP_MS=$STARTUP_MS
wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency -s bench/submit.lua \
    "$BASE/v1/tasks" >"$WORK/wrk.txt" 2>&1 || die "wrk failed: $(tail -n5 "$WORK/wrk.txt")"
grep '^RESULT' "$WORK/wrk.txt" | sed 's/^RESULT //' >"$WORK/wrk.kv" || die "no RESULT line from wrk"
S1_RPS=$(kv "$WORK/wrk.kv" rps)
S1_P50=$(kv "$WORK/wrk.kv" p50_ms)
S1_P99=$(kv "$WORK/wrk.kv" p99_ms)
S1_NON2XX=$(kv "$WORK/wrk.kv" non2xx)
S1_CODES=$(kv "$WORK/wrk.kv" codes)
S1_REQS=$(kv "$WORK/wrk.kv" requests)
S1_ERRS=$(kv "$WORK/wrk.kv" errors)
S1_HWM=$(proc_field "$SERVER_PID" VmHWM)
# /health reports the dispatch queue depth and the pool size: what the pool did meanwhile.
S1_HEALTH=$(curl -s --max-time 5 "$BASE/health" || true)
S1_QUEUE=$(grep -o '"queue_depth": *[0-9]*' <<<"$S1_HEALTH" | grep -o '[0-9]*$' || true)
S1_CONC=$(grep -o '"concurrency": *[0-9]*' <<<"$S1_HEALTH" | grep -o '[0-9]*$' || true)
if [[ -n $S1_QUEUE && -n $S1_REQS ]]; then
    S1_EXECUTED=$((S1_REQS - S1_QUEUE))
    S1_EXEC_DETAIL="pool (--concurrency ${S1_CONC:-?}) finished ~$S1_EXECUTED of them meanwhile (~$(awk -v n="$S1_EXECUTED" -v s="$WRK_SECONDS" 'BEGIN { printf "%.0f", n / s }')/s), queue depth at end $S1_QUEUE"
else
    S1_EXEC_DETAIL="queue depth unknown (/health: ${S1_HEALTH:0:120})"
fi
sed -n '1,/^RESULT/p' "$WORK/wrk.txt" | grep -v '^RESULT' >&2 || true
[[ $S1_ERRS == *connect:0,read:0,write:0,status:*,timeout:0 ]] ||
    note "submit: wrk socket errors: $S1_ERRS"
[[ ${S1_NON2XX:-0} == 0 ]] || note "submit: non-2xx responses by status: $S1_CODES"
stop_server submit
S1_STOP_MS=$STOP_MS

# ---- 2. end-to-end echo throughput ------------------------------------------------------------
log "2/4 end-to-end: $E2E_TASKS echo tasks over $E2E_CONNECTIONS connections"
start_server e2e
bench/build/e2e --host "$HOST" --port "$PORT" --tasks "$E2E_TASKS" \
    --connections "$E2E_CONNECTIONS" --timeout "$E2E_TIMEOUT" >"$WORK/e2e.kv" 2>"$WORK/e2e.err" ||
    die "e2e failed: $(cat "$WORK/e2e.err")"
cat "$WORK/e2e.kv" >&2
[[ -s $WORK/e2e.err ]] && { cat "$WORK/e2e.err" >&2; note "e2e: $(head -n1 "$WORK/e2e.err" | cut -c1-200)"; }
S2_ACCEPTED=$(kv "$WORK/e2e.kv" accepted)
S2_SUBMIT_ERRORS=$(kv "$WORK/e2e.kv" submit_errors)
S2_SUBMIT_RATE=$(kv "$WORK/e2e.kv" submit_rate)
S2_SUBMIT_SECS=$(kv "$WORK/e2e.kv" submit_secs)
S2_TAIL_SECS=$(kv "$WORK/e2e.kv" tail_terminal_secs)
S2_SCAN_SECS=$(kv "$WORK/e2e.kv" last_scan_secs)
S2_COMPLETE=$(kv "$WORK/e2e.kv" complete)
S2_SECS=$(kv "$WORK/e2e.kv" e2e_secs)
S2_RATE=$(kv "$WORK/e2e.kv" e2e_rate)
S2_FOUND=$(kv "$WORK/e2e.kv" submitted_ids_found)
S2_HWM=$(proc_field "$SERVER_PID" VmHWM)
[[ ${S2_SUBMIT_ERRORS:-0} == 0 ]] || note "e2e: $S2_SUBMIT_ERRORS submits failed"
[[ $S2_COMPLETE == 1 ]] || note "e2e: not all tasks succeeded within ${E2E_TIMEOUT} s: $(grep -h incomplete_ "$WORK/e2e.kv" | tr '\n' ' ')"
stop_server e2e
S2_STOP_MS=$STOP_MS

# ---- 3. memory with many open SSE streams ----------------------------------------------------
log "3/4 SSE: $SSE_STREAMS streams over $SSE_TASKS long-running text-to-image tasks"
S3_FLAGS=()
if grep -q -- '--concurrency' <<<"$SERVE_HELP"; then S3_FLAGS+=(--concurrency "$SSE_CONCURRENCY"); fi
if grep -q -- '--grace-period' <<<"$SERVE_HELP"; then S3_FLAGS+=(--grace-period 1); fi
start_server sse "${S3_FLAGS[@]}"
: >"$WORK/sse-ids.txt"
for _ in $(seq 1 "$SSE_TASKS"); do
    curl -s --max-time 5 -H 'Content-Type: application/json' \
        -d '{"task_type":"text-to-image","params":{"prompt":"x","delay_ms":60000,"steps":60}}' \
        "$BASE/v1/tasks" | grep -o '"id" *: *"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/' \
        >>"$WORK/sse-ids.txt" || true
done
S3_NTASKS=$(grep -c . "$WORK/sse-ids.txt" || true)
log "submitted $S3_NTASKS text-to-image tasks; opening $SSE_STREAMS streams"
[[ $S3_NTASKS -gt 0 ]] || die "could not submit any text-to-image task"
[[ $S3_NTASKS == "$SSE_TASKS" ]] || note "sse: only $S3_NTASKS of $SSE_TASKS text-to-image submits returned an id"
sleep 1
bench/build/sse_clients --host "$HOST" --port "$PORT" --ids "$WORK/sse-ids.txt" \
    --pid "$SERVER_PID" --streams "$SSE_STREAMS" --batch 250 --hold "$SSE_HOLD" \
    >"$WORK/sse.kv" 2>"$WORK/sse.err" || die "sse_clients failed: $(cat "$WORK/sse.err")"
cat "$WORK/sse.kv" >&2
log "streams closed by the client"
# Does the server let go of the connections (descriptors) and memory once clients are gone?
S3_FDS_CLOSED=
for _ in $(seq 1 40); do
    S3_FDS_CLOSED=$(find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    [[ $S3_FDS_CLOSED -le $(($(kv "$WORK/sse.kv" before_fds) + 5)) ]] && break
    sleep 0.1
done
S3_RSS_CLOSED=$(proc_field "$SERVER_PID" VmRSS)
S3_RSS_BEFORE=$(kv "$WORK/sse.kv" before_rss_kb)
S3_THREADS_BEFORE=$(kv "$WORK/sse.kv" before_threads)
S3_OPENED=$(kv "$WORK/sse.kv" opened)
S3_OPEN_SECS=$(kv "$WORK/sse.kv" open_secs)
S3_RSS_OPEN=$(kv "$WORK/sse.kv" open_rss_kb)
S3_HWM_OPEN=$(kv "$WORK/sse.kv" open_hwm_kb)
S3_THREADS_OPEN=$(kv "$WORK/sse.kv" open_threads)
S3_FDS_OPEN=$(kv "$WORK/sse.kv" open_fds)
S3_STREAMS_AT_SAMPLE=$(kv "$WORK/sse.kv" open_open_streams)
S3_RSS_END=$(kv "$WORK/sse.kv" end_rss_kb)
S3_HWM_END=$(kv "$WORK/sse.kv" end_hwm_kb)
S3_STREAMS_AT_END=$(kv "$WORK/sse.kv" end_open_streams)
S3_HOLD_EVENTS=$(kv "$WORK/sse.kv" hold_events)
S3_HOLD_SECS=$(kv "$WORK/sse.kv" hold_secs)
S3_TOTAL_EVENTS=$(kv "$WORK/sse.kv" total_events)
S3_HEARTBEATS=$(kv "$WORK/sse.kv" total_comment_lines)
S3_BYTES=$(kv "$WORK/sse.kv" total_bytes)
S3_FAILED=$(kv "$WORK/sse.kv" failed_connect)
S3_NON200=$(kv "$WORK/sse.kv" non200)
S3_CLOSED=$(kv "$WORK/sse.kv" closed_by_server)
S3_NOHDR=$(kv "$WORK/sse.kv" no_headers_yet)
S3_KB_PER_STREAM=$(awk -v a="$S3_RSS_BEFORE" -v b="$S3_RSS_OPEN" -v n="$S3_STREAMS_AT_SAMPLE" \
    'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "n/a" }')
[[ $S3_OPENED == "$SSE_STREAMS" ]] ||
    note "sse: $S3_OPENED of $SSE_STREAMS streams opened (failed connects $S3_FAILED, non-200 $S3_NON200 first $(kv "$WORK/sse.kv" first_bad_status), closed before headers $(kv "$WORK/sse.kv" closed_before_headers), no headers yet $S3_NOHDR, errno $(kv "$WORK/sse.kv" first_errno))"
[[ $S3_FDS_CLOSED -le $(($(kv "$WORK/sse.kv" before_fds) + 5)) ]] ||
    note "sse: 4 s after the clients closed, the server still holds $S3_FDS_CLOSED descriptors (before streams: $(kv "$WORK/sse.kv" before_fds))"
[[ ${S3_CLOSED:-0} == 0 ]] || note "sse: server closed $S3_CLOSED streams while they should have stayed open"
[[ -s $WORK/sse.err ]] && note "sse: $(head -n1 "$WORK/sse.err" | cut -c1-200)"
# --grace-period 1 with 60-second tasks running: handing them back is the expected outcome.
stop_server sse 'grace period over; handing [0-9]+ running task'
S3_STOP_MS=$STOP_MS

# ---- 4. idle RSS ------------------------------------------------------------------------------
log "4/4 idle RSS after ${IDLE_SECONDS} s"
start_server idle
sleep "$IDLE_SECONDS"
S4_RSS=$(proc_field "$SERVER_PID" VmRSS)
S4_HWM=$(proc_field "$SERVER_PID" VmHWM)
S4_THREADS=$(proc_field "$SERVER_PID" Threads)
S4_STARTUP_MS=$STARTUP_MS
stop_server idle
S4_STOP_MS=$STOP_MS

# ---- report -----------------------------------------------------------------------------------
mb() { awk -v k="$1" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f MiB", k / 1024 }'; }

{
    echo "GenPulse benchmark — $DATE"
    echo "machine: $NPROC CPU(s), $CPU_MODEL; kernel $(uname -r)"
    echo "binary:  $GENPULSE_BIN ${BIN_VERSION:+($BIN_VERSION) }(repo rev $GIT_REV)"
    echo "server:  genpulse serve --log-level warn, default settings unless noted (worker pool on)"
    echo
    printf '%-44s %-22s %s\n' "figure" "value" "detail"
    printf '%-44s %-22s %s\n' "--------------------------------------------" "----------------------" "------"
    printf '%-44s %-22s %s\n' "1. submit throughput (wrk -t2 -c64, ${WRK_SECONDS}s)" "${S1_RPS} req/s" "$S1_REQS requests accepted while the worker pool executes them"
    printf '%-44s %-22s %s\n' "   submit latency p50" "${S1_P50} ms" ""
    printf '%-44s %-22s %s\n' "   submit latency p99" "${S1_P99} ms" ""
    printf '%-44s %-22s %s\n' "   non-2xx responses" "${S1_NON2XX}" "status codes: $S1_CODES; socket errors: $S1_ERRS"
    printf '%-44s %-22s %s\n' "   worker pool during the run" "" "$S1_EXEC_DETAIL"
    printf '%-44s %-22s %s\n' "   server peak RSS (VmHWM) after the run" "$(mb "$S1_HWM")" ""
    if [[ $S2_COMPLETE == 1 ]]; then
        printf '%-44s %-22s %s\n' "2. end-to-end echo throughput" "${S2_RATE} tasks/s" "$S2_ACCEPTED tasks, all succeeded in ${S2_SECS} s (first submit → full list scan)"
    else
        printf '%-44s %-22s %s\n' "2. end-to-end echo throughput" "incomplete" "$S2_FOUND of $S2_ACCEPTED listed succeeded after ${S2_SECS} s"
    fi
    printf '%-44s %-22s %s\n' "   submit phase alone" "${S2_SUBMIT_RATE} tasks/s" "${S2_SUBMIT_SECS} s for $E2E_TASKS submits over $E2E_CONNECTIONS connections, $S2_SUBMIT_ERRORS failed"
    printf '%-44s %-22s %s\n' "   last-submitted tasks terminal after" "${S2_TAIL_SECS} s" "final full scan took ${S2_SCAN_SECS} s; server VmHWM $(mb "$S2_HWM")"
    printf '%-44s %-22s %s\n' "3. RSS before streams" "$(mb "$S3_RSS_BEFORE")" "$S3_NTASKS text-to-image tasks (delay 60 s), ${S3_THREADS_BEFORE} threads"
    printf '%-44s %-22s %s\n' "   RSS with $SSE_STREAMS SSE streams open" "$(mb "$S3_RSS_OPEN")" "$S3_STREAMS_AT_SAMPLE streams open at sample, ${S3_THREADS_OPEN} threads, ${S3_FDS_OPEN} fds, VmHWM $(mb "$S3_HWM_OPEN")"
    printf '%-44s %-22s %s\n' "   memory per stream" "${S3_KB_PER_STREAM} KiB" "(RSS open − RSS before) / streams open"
    printf '%-44s %-22s %s\n' "   RSS after ${SSE_HOLD} s more" "$(mb "$S3_RSS_END")" "$S3_STREAMS_AT_END open; VmHWM $(mb "$S3_HWM_END")"
    printf '%-44s %-22s %s\n' "   RSS after the clients closed" "$(mb "$S3_RSS_CLOSED")" "server descriptors back to $S3_FDS_CLOSED"
    printf '%-44s %-22s %s\n' "   streams opened in" "${S3_OPEN_SECS} s" "batches of 250"
    printf '%-44s %-22s %s\n' "   events delivered during hold" "${S3_HOLD_EVENTS}" "in ${S3_HOLD_SECS} s; total events $S3_TOTAL_EVENTS, heartbeats $S3_HEARTBEATS, $S3_BYTES bytes"
    printf '%-44s %-22s %s\n' "4. idle RSS (fresh server, ${IDLE_SECONDS} s)" "$(mb "$S4_RSS")" "$S4_RSS kB, VmHWM $S4_HWM kB, $S4_THREADS threads"
    printf '%-44s %-22s %s\n' "   start-up to /health 200" "${S4_STARTUP_MS} ms" "(submit section: ${S1_STARTUP_MS} ms)"
    printf '%-44s %-22s %s\n' "   SIGTERM to exit" "${S4_STOP_MS} ms idle" "after wrk ${S1_STOP_MS} ms, after e2e ${S2_STOP_MS} ms, after SSE ${S3_STOP_MS} ms (--grace-period 1)"
    echo
    echo "section 3 server flags: ${S3_FLAGS[*]:-none}"
    if [[ ${#NOTES[@]} -gt 0 ]]; then
        echo "notes:"
        for n in "${NOTES[@]}"; do echo "  - $n"; done
    else
        echo "notes: none (no errors, no non-2xx, server logs clean)"
    fi
} >"$WORK/table.txt"

echo
cat "$WORK/table.txt"
cp "$WORK/table.txt" "$RESULTS"
log "written to $RESULTS"

#!/usr/bin/python3
"""bench/wait_rtt.py — `Prefer: wait` against submit + poll, for one `echo` task at a time.

Starts `genpulse serve` (embedded: SQLite with its default durability, in-process queue) on
a fresh data dir and times N sequential round trips from "send the create" to "hold the
finished task", three ways, in the same run:

  wait       POST /v1/tasks with Prefer: wait=10: one request
  poll10     POST, then GET /v1/tasks/{id} every 10 ms until terminal (an eager client)
  poll500    POST, then GET every 500 ms (the Replicate clients' default interval)

Prints p50/p90/p99/max in ms and requests per task, and the ratio poll/wait.

  GENPULSE_BIN=build/genpulse python3 bench/wait_rtt.py        # N=300 (poll500: N/10)
  BASE=http://127.0.0.1:8080 python3 bench/wait_rtt.py          # a running server instead
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("GENPULSE_BIN", "build/genpulse")
N = int(os.environ.get("N", "300"))
BASE = os.environ.get("BASE")
BODY = json.dumps({"task_type": "echo", "params": {"message": "x"}})


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run(conn, mode, n):
    times, requests = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        headers = {"Content-Type": "application/json"}
        if mode == "wait":
            headers["Prefer"] = "wait=10"
        conn.request("POST", "/v1/tasks", BODY, headers)
        r = conn.getresponse()
        task = json.loads(r.read())
        requests += 1
        interval = {"poll10": 0.010, "poll500": 0.5}.get(mode)
        while task["status"] not in ("succeeded", "failed", "canceled"):
            if mode == "wait":
                sys.exit("wait: the task was not finished in 10 s: %r" % task)
            time.sleep(interval)
            conn.request("GET", "/v1/tasks/" + task["id"])
            task = json.loads(conn.getresponse().read())
            requests += 1
        times.append((time.perf_counter() - t0) * 1000)
    return times, requests / n


def main():
    proc = tmp = None
    if BASE:
        host, _, port = BASE.split("//")[1].partition(":")
        port = int(port or 80)
    else:
        tmp = tempfile.mkdtemp(prefix="gp-wait-bench-")
        port = 18000 + os.getpid() % 1000
        proc = subprocess.Popen([BIN, "serve", "--port", str(port), "--data-dir", tmp,
                                 "--log-level", "warn"], stderr=subprocess.DEVNULL)
        host = "127.0.0.1"
        for _ in range(100):
            try:
                c = http.client.HTTPConnection(host, port, timeout=2)
                c.request("GET", "/health")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.05)
    try:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        run(conn, "wait", 20)  # warm up
        rows = {}
        for mode, n in (("wait", N), ("poll10", N), ("poll500", max(10, N // 10))):
            rows[mode] = run(conn, mode, n)
        print("Prefer: wait vs submit + poll, echo, embedded, sequential (%s)" % time.strftime("%Y-%m-%d"))
        print("%-8s %6s %8s %8s %8s %8s %10s" % ("mode", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/task"))
        for mode, (ts, rq) in rows.items():
            print("%-8s %6d %8.2f %8.2f %8.2f %8.2f %10.2f" % (mode, len(ts), pct(ts, 50), pct(ts, 90),
                                                             pct(ts, 99), max(ts), rq))
        w = pct(rows["wait"][0], 50)
        print("p50 ratio: poll10/wait %.2fx, poll500/wait %.1fx" %
              (pct(rows["poll10"][0], 50) / w, pct(rows["poll500"][0], 50) / w))
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

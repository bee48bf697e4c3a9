#!/usr/bin/python3
"""bench/fairness.py — how long another user's task waits while one user floods the queue.

User A queues FLOOD (10,000) simulator tasks of about DELAY_MS each on a `genpulse serve` with
CONCURRENCY task slots; then user B submits one. Printed: B's queue wait (created → started)
and how long A's flood takes to drain. With per-user fair queueing B waits about one task's
time; with a plain FIFO it would wait for the whole flood.

  GENPULSE_BIN=build-release/genpulse python3 bench/fairness.py     # FLOOD=10000 CONCURRENCY=4
  FIFO=1 ...   the same flood with both users' tasks sent as one user (no keys): the FIFO
               baseline, also what a binary without per-user queueing does.
"""
import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("GENPULSE_BIN", "build-release/genpulse")
FLOOD = int(os.environ.get("FLOOD", "10000"))
CONC = os.environ.get("CONCURRENCY", "4")
DELAY_MS = int(os.environ.get("DELAY_MS", "5"))
FIFO = os.environ.get("FIFO") == "1"
PORT = int(os.environ.get("PORT", "18432"))
TASK = {"task_type": "text-to-image",
        "params": {"prompt": "p", "width": 64, "height": 64, "steps": 1, "delay_ms": DELAY_MS}}


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def cli(data, *args):
    out = subprocess.run([BIN] + list(args) + ["--data-dir", data], check=True,
                         capture_output=True).stdout
    return json.loads(out)


def main():
    data = tempfile.mkdtemp(prefix="genpulse-bench-fair-")
    srv = subprocess.Popen([BIN, "serve", "--port", str(PORT), "--data-dir", data,
                            "--concurrency", CONC, "--log-level", "warn"])
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        keys = {}
        if not FIFO:
            for u in ("a", "b"):
                cli(data, "users", "create", "--email", u + "@example.com", "--plan", "unlimited")
                keys[u] = cli(data, "keys", "create", "--user", u + "@example.com")["key"]
            time.sleep(6)  # the server sees the keys (auth cache)

        def headers(u):
            h = {"Content-Type": "application/json"}
            if u in keys:
                h["Authorization"] = "Bearer " + keys[u]
            return h

        ids, lock = [], threading.Lock()

        def flood(n):
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            for _ in range(n):
                c.request("POST", "/v1/tasks", json.dumps(TASK), headers("a"))
                r = c.getresponse()
                body = json.loads(r.read())
                with lock:
                    ids.append(body["id"])
        t0 = time.time()
        threads = [threading.Thread(target=flood, args=(FLOOD // 8,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submitted = time.time() - t0
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        c.request("POST", "/v1/tasks", json.dumps(TASK), headers("b"))
        b = json.loads(c.getresponse().read())
        while True:
            c.request("GET", "/v1/tasks/" + b["id"], headers=headers("b"))
            tb = json.loads(c.getresponse().read())
            if tb["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.02)
        wait_b = ts(tb["started_at"]) - ts(tb["created_at"])
        last = ids[-1]
        while True:
            c.request("GET", "/v1/tasks/" + last, headers=headers("a"))
            ta = json.loads(c.getresponse().read())
            if ta["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        drain = ts(ta["completed_at"]) - t0
        print("fairness %s: flood=%d tasks (submitted in %.1f s), concurrency=%s, task ~%d ms: "
              "user B waited %.3f s; the flood drained in %.1f s"
              % ("FIFO (one user)" if FIFO else "two users", len(ids), submitted, CONC,
                 DELAY_MS, wait_b, drain))
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""bench/webhooks.py — webhook delivery throughput and latency, embedded mode (SQLite).

Two phases against `genpulse serve` and a receiver in this process (Python's threaded HTTP
server on 127.0.0.1, answering 200 at once):

1. Latency: LAT_N echo tasks with a `completed` webhook, submitted one every LAT_GAP_MS;
   printed: p50/p99/max of (first attempt started − task completed_at), both from the
   server's own records, and of (receiver arrival − completed_at).
2. Throughput: N tasks run with --webhooks 0 (the outbox fills, nothing is sent), then the
   server restarts with the loop on; printed: deliveries/s until the receiver has all N.

  GENPULSE_BIN=build/genpulse python3 bench/webhooks.py     # N=3000 THREADS=8 LAT_N=300

With GENPULSE_TEST_PG_URL and GENPULSE_TEST_REDIS_URL set (tools/test-services.sh env), a
third figure: the same latency in distributed mode (`genpulse api` + `genpulse worker` on a
fresh PostgreSQL database), where the worker's commits add the rows and the gateway's loop
finds them by its poll (--webhook-poll-ms, 250 ms).

The receiver is Python: past a few thousand requests/s it, not GenPulse, is the limit.
"""
import http.client
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import datetime
import urllib.parse

BIN = os.environ.get("GENPULSE_BIN", "build/genpulse")
N = int(os.environ.get("N", "3000"))
THREADS = os.environ.get("THREADS", "8")
LAT_N = int(os.environ.get("LAT_N", "300"))
LAT_GAP_MS = float(os.environ.get("LAT_GAP_MS", "10"))

arrivals = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        now = time.time()
        tid = json.loads(body)["data"]["id"]
        with lock:
            arrivals.setdefault(tid, now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def serve(data_dir, port, webhooks, command="serve", env=None):
    log = open(os.path.join(data_dir, "%s-%d.log" % (command, webhooks)), "ab")
    args = [BIN, command, "--data-dir", data_dir]
    if command != "worker":
        args += ["--port", str(port), "--webhook-allow-private", "1", "--webhooks",
                 str(webhooks), "--webhook-threads", THREADS]
    p = subprocess.Popen(args + ["--log-level", "warn"], stdout=log, stderr=log,
                         env=dict(os.environ, **(env or {})))
    if command == "worker":
        time.sleep(0.5)
        return p
    for _ in range(200):
        try:
            if req(port, "GET", "/health")[0] == 200:
                return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hook = "http://127.0.0.1:%d/hook" % httpd.server_address[1]
    data = tempfile.mkdtemp(prefix="gp-bench-webhooks-")
    port = free_port()
    body = {"task_type": "echo", "params": {"message": "x"}, "webhook": hook,
            "webhook_events_filter": ["completed"]}

    # -- 1: latency, loop on --
    p = serve(data, port, 1)
    latency(port, body, "embedded")
    p.terminate()
    p.wait()
    throughput(data, port, body)
    if os.environ.get("GENPULSE_TEST_PG_URL") and os.environ.get("GENPULSE_TEST_REDIS_URL"):
        distributed(body)
    httpd.shutdown()
    shutil.rmtree(data, ignore_errors=True)


def distributed(body):
    pg = os.environ["GENPULSE_TEST_PG_URL"]
    name = "gp_bench_wh_%d" % os.getpid()
    subprocess.run(["psql", pg, "-qc", "CREATE DATABASE %s" % name], check=True,
                   capture_output=True)
    u = urllib.parse.urlsplit(pg)
    env = {"GENPULSE_DATABASE_URL": urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name,
                                                             u.query, u.fragment)),
           "GENPULSE_QUEUE_URL": os.environ["GENPULSE_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/4"}
    subprocess.run(["redis-cli", "-u", env["GENPULSE_QUEUE_URL"], "FLUSHDB"], check=True,
                   capture_output=True)
    data = tempfile.mkdtemp(prefix="gp-bench-webhooks-d-")
    port = free_port()
    api = serve(data, port, 1, "api", env)
    worker = serve(data, port, 1, "worker",
                   dict(env, GENPULSE_PUBLIC_URL="http://127.0.0.1:%d" % port))
    with lock:
        arrivals.clear()
    latency(port, body, "distributed, PostgreSQL + Redis")
    for p in (worker, api):
        p.terminate()
        p.wait()
    shutil.rmtree(data, ignore_errors=True)


def latency(port, body, label):
    ids = []
    for _ in range(LAT_N):
        ids.append(req(port, "POST", "/v1/tasks", body)[1]["id"])
        time.sleep(LAT_GAP_MS / 1000.0)
    deadline = time.time() + 60
    while time.time() < deadline and len([i for i in ids if i in arrivals]) < LAT_N:
        time.sleep(0.05)
    server_lat, recv_lat = [], []
    for tid in ids:
        t = req(port, "GET", "/v1/tasks/" + tid)[1]
        ds = req(port, "GET", "/v1/webhook-deliveries?task_id=" + tid)[1]["data"]
        if not ds or not t["completed_at"]:
            continue
        d = req(port, "GET", "/v1/webhook-deliveries/" + ds[0]["id"])[1]
        done = ts(t["completed_at"])
        if d["attempt_list"]:
            server_lat.append((ts(d["attempt_list"][0]["started_at"]) - done) * 1000)
        if tid in arrivals:
            recv_lat.append((arrivals[tid] - done) * 1000)
    print("latency (%s), task completed -> first attempt (server clock), %d tasks: p50 %.2f "
          "ms, p99 %.2f ms, max %.2f ms" % (label, len(server_lat), pct(server_lat, 0.5),
                                            pct(server_lat, 0.99), max(server_lat)))
    print("latency (%s), task completed -> receiver has it, %d tasks: p50 %.2f ms, p99 %.2f "
          "ms, max %.2f ms" % (label, len(recv_lat), pct(recv_lat, 0.5), pct(recv_lat, 0.99),
                               max(recv_lat)))


def throughput(data, port, body):
    # -- 2: throughput: fill the outbox with the loop off, then turn it on --
    with lock:
        arrivals.clear()
    p = serve(data, port, 0)
    backlog = []
    conns = 16

    def submit(k):
        for _ in range(k):
            backlog.append(req(port, "POST", "/v1/tasks", body)[1]["id"])

    ts_ = [threading.Thread(target=submit, args=(N // conns,)) for _ in range(conns)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    total = len(backlog)
    deadline = time.time() + 120
    while time.time() < deadline:
        st, page = req(port, "GET", "/v1/tasks?status=succeeded&limit=1")
        pend = req(port, "GET", "/v1/tasks?status=pending&limit=1")[1]["data"]
        proc = req(port, "GET", "/v1/tasks?status=processing&limit=1")[1]["data"]
        if not pend and not proc:
            break
        time.sleep(0.2)
    p.terminate()
    p.wait()
    t0 = time.time()
    p = serve(data, port, 1)
    deadline = time.time() + 600
    while time.time() < deadline:
        with lock:
            got = sum(1 for i in backlog if i in arrivals)
        if got >= total:
            break
        time.sleep(0.02)
    t1 = time.time()
    p.terminate()
    p.wait()
    with lock:
        times = sorted(arrivals[i] for i in backlog if i in arrivals)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    print("throughput: %d deliveries (backlog) in %.2f s = %.0f deliveries/s from the first to "
          "the last arrival (%s delivery threads); %.2f s with the restart" % (
              got, span, (got - 1) / span, THREADS, t1 - t0))


if __name__ == "__main__":
    main()

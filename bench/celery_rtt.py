#!/usr/bin/python3
"""bench/celery_rtt.py — a stock Celery client's send_task("echo").get() round trip.

Starts a `genpulse worker` (PostgreSQL + Redis) and, for comparison in the same run, Celery's
own worker (Debian python3-celery, solo pool, an `echo` task that returns its kwargs), each
on a Redis database of its own, then times N sequential
`app.send_task("echo", kwargs={"message": "x"}).get()` calls against each and prints
p50/p90/p99/max in ms. One client process, the result backend on the broker URL (how
test_distributed.py uses it).

  GENPULSE_BIN=build/genpulse GENPULSE_DATABASE_URL=postgres://… REDIS_URL=redis://127.0.0.1:6379/0 \
      python3 bench/celery_rtt.py            # N=200 CONCURRENCY=2 TARGETS=genpulse,celery

The worker is idle between calls (sequential calls), so this is the latency an idle worker
adds, not throughput. Set TARGETS=genpulse to skip Celery's worker.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("GENPULSE_BIN", "build/genpulse")
PG = os.environ.get("GENPULSE_DATABASE_URL") or os.environ.get("GENPULSE_TEST_PG_URL")
REDIS = os.environ.get("REDIS_URL") or os.environ.get("GENPULSE_TEST_REDIS_URL")
N = int(os.environ.get("N", "200"))
CONC = os.environ.get("CONCURRENCY", "2")
TARGETS = os.environ.get("TARGETS", "genpulse,celery").split(",")

CELERY_APP = """
from celery import Celery
import os
app = Celery(broker=os.environ["BENCH_URL"], backend=os.environ["BENCH_URL"])
@app.task(name="echo")
def echo(**kw):
    return kw
"""


def db_url(n):
    return REDIS.rsplit("/", 1)[0] + "/%d" % n


def flush(url):
    subprocess.run(["redis-cli", "-u", url, "FLUSHDB"], check=True, stdout=subprocess.DEVNULL)


def measure(url, label):
    from celery import Celery
    app = Celery(broker=url, backend=url)
    # Warm up: connections, the result consumer's subscription, the worker's first task.
    deadline = time.time() + 30
    while True:
        try:
            app.send_task("echo", kwargs={"message": "warm"}).get(timeout=5)
            break
        except Exception:
            if time.time() > deadline:
                raise
    for _ in range(5):
        app.send_task("echo", kwargs={"message": "warm"}).get(timeout=10)
    ms = []
    for _ in range(N):
        t0 = time.perf_counter()
        r = app.send_task("echo", kwargs={"message": "x"}).get(timeout=10)
        ms.append((time.perf_counter() - t0) * 1000)
        assert r.get("message") == "x", r
    ms.sort()

    def pct(p):
        return ms[min(len(ms) - 1, int(round(p / 100.0 * (len(ms) - 1))))]

    print("%-16s n=%d  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms"
          % (label, N, pct(50), pct(90), pct(99), ms[-1], sum(ms) / len(ms)), flush=True)
    app.close()


def run_genpulse():
    url = db_url(11)
    flush(url)
    data = tempfile.mkdtemp(prefix="celery-rtt-")
    log = open(os.path.join(data, "worker.log"), "wb")
    env = dict(os.environ, GENPULSE_DATABASE_URL=PG, GENPULSE_QUEUE_URL=url)
    p = subprocess.Popen([BIN, "worker", "--data-dir", data, "--concurrency", CONC,
                          "--log-level", "warn"], env=env, stdout=log, stderr=log)
    try:
        measure(url, "genpulse worker")
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def run_celery():
    url = db_url(12)
    flush(url)
    d = tempfile.mkdtemp(prefix="celery-rtt-app-")
    with open(os.path.join(d, "benchapp.py"), "w") as f:
        f.write(CELERY_APP)
    env = dict(os.environ, BENCH_URL=url, PYTHONPATH=d)
    log = open(os.path.join(d, "worker.log"), "wb")
    p = subprocess.Popen(["/usr/bin/python3", "-m", "celery", "-A", "benchapp", "worker",
                          "--pool", "solo", "--loglevel", "WARNING", "--without-gossip",
                          "--without-mingle", "--without-heartbeat"],
                         env=env, cwd=d, stdout=log, stderr=log)
    try:
        measure(url, "celery worker")
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def main():
    if not (PG and REDIS):
        sys.exit("set GENPULSE_DATABASE_URL (or GENPULSE_TEST_PG_URL) and REDIS_URL "
                 "(or GENPULSE_TEST_REDIS_URL)")
    for t in TARGETS:
        {"genpulse": run_genpulse, "celery": run_celery}[t]()


if __name__ == "__main__":
    main()

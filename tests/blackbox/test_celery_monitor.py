"""Celery's own tools against GenPulse workers: Debian's python3-celery CLI (`celery inspect
ping|active|stats`, `celery status`, `celery control revoke`) and an event receiver
(`app.events.Receiver`, what `celery events` and Flower use) on the Redis transport.

Runs only when GENPULSE_TEST_PG_URL and GENPULSE_TEST_REDIS_URL are set (make test starts
private servers); otherwise each test passes as a no-op and says so.
"""
import json
import os
import re
import subprocess
import time

from harness import RUN_DIR, Skip, case, check

PG = os.environ.get("GENPULSE_TEST_PG_URL")
REDIS = os.environ.get("GENPULSE_TEST_REDIS_URL")
PY = "/usr/bin/python3"


def _url():
    return REDIS.rsplit("/", 1)[0] + "/8"  # a database of its own


def _need():
    if not (PG and REDIS):
        raise Skip("no GENPULSE_TEST_PG_URL / GENPULSE_TEST_REDIS_URL")
    try:
        subprocess.run([PY, "-c", "import celery"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError):
        raise Skip("no python3-celery (tools/deps.sh test installs it)")
    subprocess.run(["redis-cli", "-u", _url(), "FLUSHDB"], check=True,
                   stdout=subprocess.DEVNULL)


def _celery(*args, timeout=60):
    """The celery command line (Debian's), against the test broker."""
    out = subprocess.run([PY, "-m", "celery", "-b", _url()] + list(args), capture_output=True,
                         text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


def _start(ctx, concurrency=2, args=()):
    env = {"GENPULSE_DATABASE_URL": PG, "GENPULSE_QUEUE_URL": _url()}
    api = ctx.new_server(name="api", env=env, command="api").start()
    from test_distributed import _worker
    wk = _worker(ctx, api, ["--concurrency", str(concurrency)] + list(args), env=env)
    return api, wk


def _receiver(secs):
    """Starts an event receiver subprocess; returns (process, path of its JSON lines)."""
    path = os.path.join(RUN_DIR, "celery-events-%d-%f.jsonl" % (os.getpid(), time.time()))
    recv = subprocess.Popen([PY, "-c", RECEIVER, _url(), path, str(secs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)  # subscribed before anything happens
    return recv, path


def _events(recv, path):
    try:
        recv.wait(timeout=60)
    finally:
        if recv.poll() is None:
            recv.kill()
    evs = [json.loads(line) for line in open(path)]
    return [e for e in evs if e.get("hostname", "").startswith("genpulse-")]


def _wait(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    check(False, "timed out waiting for %s" % what)


RECEIVER = r"""
import json, sys, time
from celery import Celery
url, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
app = Celery(broker=url)
f = open(out, "w", buffering=1)
with app.connection() as conn:
    recv = app.events.Receiver(conn, handlers={"*": lambda ev: f.write(json.dumps(ev) + "\n")})
    t0 = time.time()
    try:
        for _ in recv.itercapture(limit=None, timeout=secs, wakeup=False):
            if time.time() - t0 > secs:
                break
    except Exception:
        pass  # the socket timeout that ends the capture
"""

CLIENT = r"""
import json, sys
from celery import Celery
url = sys.argv[1]
app = Celery(broker=url, backend=url)
ok = app.send_task("echo", kwargs={"message": "x"})
res = ok.get(timeout=30)
bad = app.send_task("text-to-image", kwargs={"prompt": "p", "fail": "boom"})
try:
    bad.get(timeout=30)
    err = None
except Exception as e:
    err = repr(e)
print(json.dumps({"ok": ok.id, "result": res, "bad": bad.id, "error": err}))
"""


@case(own=True)
def test_celery_monitor_events(ctx):
    # worker-online, heartbeats every 2 s, the task-* sequence field for field, worker-offline.
    _need()
    recv, path = _receiver(16)
    api, wk = _start(ctx, args=["--retry-base-ms", "20", "--retry-max-ms", "50"])
    out = subprocess.run([PY, "-c", CLIENT, _url()], capture_output=True, text=True, timeout=90)
    check(out.returncode == 0, "celery client failed: %s" % out.stderr[-2000:])
    got = json.loads(out.stdout.strip().splitlines()[-1])
    check(got["result"]["message"] == "x", "echo result %r" % got)
    check("boom" in (got["error"] or ""), "failure %r" % got)
    # A task GenPulse dispatched itself (HTTP), failing once, then succeeding on its retry.
    flaky = api.create("text-to-image", {"prompt": "f", "width": 64, "height": 64,
                                          "fail_times": 1}, max_retries=2)["id"]
    check(api.wait_terminal(flaky, timeout=30)["status"] == "succeeded", "flaky task")
    time.sleep(4.5)  # two heartbeats
    check(wk.stop() is None, "worker did not stop cleanly")
    mine = _events(recv, path)
    types = [e["type"] for e in mine]
    check(types and types[0] == "worker-online", "first event %r" % types[:3])
    check(types[-1] == "worker-offline", "last event %r" % types[-3:])
    beats = [e for e in mine if e["type"] == "worker-heartbeat"]
    check(len(beats) >= 2, "heartbeats %d: %r" % (len(beats), types))
    for e in mine:
        for f in ("hostname", "utcoffset", "pid", "clock", "timestamp", "type"):
            check(f in e, "%s has no %s: %r" % (e["type"], f, e))
        check(re.match(r"^genpulse-\d+@.+$", e["hostname"]), "node name %r" % e["hostname"])
    for f in ("freq", "active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys"):
        check(f in beats[-1], "heartbeat without %s: %r" % (f, beats[-1]))
    check(beats[-1]["freq"] == 2.0 and beats[-1]["processed"] >= 2, "heartbeat %r" % beats[-1])
    clocks = [e["clock"] for e in mine]
    check(clocks == sorted(clocks) and len(set(clocks)) == len(clocks), "clock %r" % clocks)

    def seq(tid):
        return [e for e in mine if e.get("uuid") == tid]
    ok = seq(got["ok"])
    check([e["type"] for e in ok] == ["task-received", "task-started", "task-succeeded"],
          "echo events %r" % [e["type"] for e in ok])
    rcv = ok[0]
    check(rcv["name"] == "echo" and "'message': 'x'" in rcv["kwargs"] and rcv["args"] == "()",
          "task-received %r" % rcv)
    for f in ("root_id", "parent_id", "retries", "eta", "expires"):
        check(f in rcv, "task-received without %s" % f)
    done = ok[2]
    check("'message': 'x'" in done["result"] and isinstance(done["runtime"], float),
          "task-succeeded %r" % done)
    bad = seq(got["bad"])
    check([e["type"] for e in bad][-1] == "task-failed", "failure events %r" % bad)
    check("boom" in bad[-1]["exception"] and "boom" in bad[-1]["traceback"], "task-failed %r"
          % bad[-1])
    fl = [e["type"] for e in seq(flaky)]
    check(fl == ["task-received", "task-started", "task-retried", "task-received",
                 "task-started", "task-succeeded"], "retried task events %r" % fl)
    retried = [e for e in seq(flaky) if e["type"] == "task-retried"][0]
    check("exception" in retried and "traceback" in retried, "task-retried %r" % retried)
    check([e["retries"] for e in seq(flaky) if e["type"] == "task-received"] == [0, 1],
          "retries in task-received")


@case(own=True)
def test_celery_monitor_inspect_and_status(ctx):
    _need()
    api, wk = _start(ctx, concurrency=2)
    rc, out = _celery("inspect", "ping")
    check(rc == 0 and re.search(r"genpulse-\d+@\S+: OK", out) and "pong" in out, "ping: %s" % out)
    rc, out = _celery("status")
    check(rc == 0 and "1 node online" in out, "status: %s" % out)
    rc, out = _celery("inspect", "stats", "--json")
    check(rc == 0, "stats: %s" % out)
    stats = list(json.loads(out.strip().splitlines()[-1]).values())[0]
    check(stats["pool"]["max-concurrency"] == 2 and stats["pid"] > 0, "stats %r" % stats)
    slow = api.create("text-to-image", {"prompt": "slow", "width": 64, "height": 64,
                                         "delay_ms": 6000, "steps": 2})["id"]
    _wait(lambda: api.task(slow)["status"] == "processing", 20, "the slow task to start")
    rc, out = _celery("inspect", "active", "--json")
    check(rc == 0, "active: %s" % out)
    act = list(json.loads(out.strip().splitlines()[-1]).values())[0]
    check([a["id"] for a in act] == [slow] and act[0]["name"] == "text-to-image"
          and act[0]["time_start"] > 0, "active %r" % act)
    api.wait_terminal(slow, timeout=30)


@case(own=True)
def test_celery_monitor_revoke(ctx):
    # `celery control revoke` is a GenPulse cancel: a queued task ends canceled at once; a
    # running one revoked with terminate (`celery control terminate`, Celery 5.2's CLI for
    # revoke(terminate=True)) has its provider stopped and ends canceled.
    _need()
    recv, path = _receiver(14)
    api, wk = _start(ctx, concurrency=1)
    p = {"prompt": "r", "width": 64, "height": 64, "delay_ms": 20000, "steps": 20}
    running = api.create("text-to-image", p)["id"]
    _wait(lambda: api.task(running)["status"] == "processing", 20, "the first task to start")
    queued = api.create("text-to-image", p)["id"]
    time.sleep(0.5)
    check(api.task(queued)["status"] == "pending", "second task %r" % api.task(queued))
    rc, out = _celery("control", "revoke", queued)
    check(rc == 0 and "flagged as revoked" in out, "revoke: %s" % out)
    t = _wait(lambda: (lambda t: t if t["status"] == "canceled" else None)(api.task(queued)), 10,
              "the queued task to be canceled")
    check(t["error"]["code"] == "canceled", "queued task %r" % t)
    t0 = time.time()
    rc, out = _celery("control", "terminate", "SIGTERM", running)
    check(rc == 0 and "flagged as revoked" in out, "terminate: %s" % out)
    t = api.wait_terminal(running, timeout=15)
    check(t["status"] == "canceled", "running task after terminate: %r" % t)
    check(time.time() - t0 < 10, "terminate took %.1f s" % (time.time() - t0))
    revoked = {e["uuid"]: e for e in _events(recv, path) if e["type"] == "task-revoked"}
    check(set(revoked) == {queued, running}, "task-revoked events %r" % revoked)
    check(revoked[queued]["terminated"] is False and revoked[running]["terminated"] is True,
          "task-revoked fields %r" % revoked)
    for e in revoked.values():
        check("signum" in e and e["expired"] is False, "task-revoked %r" % e)


@case(own=True)
def test_celery_monitor_get_latency(ctx):
    # A stock send_task("echo").get() answers in milliseconds, not at a poll interval.
    _need()
    _start(ctx, concurrency=2)
    script = r"""
import json, sys, time
from celery import Celery
app = Celery(broker=sys.argv[1], backend=sys.argv[1])
app.send_task("echo", kwargs={"message": "warm"}).get(timeout=30)
ms = []
for i in range(30):
    t0 = time.perf_counter()
    r = app.send_task("echo", kwargs={"message": "m%d" % i}).get(timeout=10)
    assert r["message"] == "m%d" % i, r
    ms.append((time.perf_counter() - t0) * 1000)
ms.sort()
print(json.dumps({"p50": ms[len(ms) // 2], "max": ms[-1]}))
"""
    out = subprocess.run([PY, "-c", script, _url()], capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, "client failed: %s" % out.stderr[-2000:])
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # Generous for a sanitized build on a shared machine; the poll it replaced cost ~250 ms.
    check(got["p50"] < 100, "send_task().get() p50 %.1f ms" % got["p50"])

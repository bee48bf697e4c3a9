"""Workers you can see (embedded mode): worker ids on tasks, GET /v1/workers, the attempts
history (GET /v1/tasks/{id}/attempts), and the worker id on every log line."""
import re
import time

from harness import case, check

ATTEMPT_KEYS = {"attempt", "worker_id", "started_at", "completed_at", "duration_s", "status",
                "error"}
WORKER_KEYS = {"id", "host", "pid", "version", "concurrency", "busy", "queues", "started_at",
               "last_heartbeat_at", "heartbeat_age_s", "status", "running"}


def _attempts(srv, tid):
    r = srv.get("/v1/tasks/%s/attempts" % tid)
    check(r.status == 200 and isinstance(r.json, dict), "attempts of %s: %r" % (tid, r))
    data = r.json["data"]
    for a in data:
        check(set(a) == ATTEMPT_KEYS, "attempt fields %r" % sorted(a))
    return data


@case(group="basic")
def test_workers_embedded_registry_and_attempts(ctx):
    srv = ctx.srv
    r = srv.get("/v1/workers")
    check(r.status == 200, "GET /v1/workers: %r" % r)
    workers = r.json["data"]
    check(len(workers) == 1, "embedded: one worker expected, got %r" % workers)
    w = workers[0]
    check(set(w) == WORKER_KEYS, "worker fields %r" % sorted(w))
    check(w["status"] == "alive" and w["pid"] == srv.proc.pid, "worker %r" % w)
    check(re.fullmatch(r"[A-Za-z0-9._-]+:%d:[0-9a-f]{8}" % srv.proc.pid, w["id"]), "id %r" % w["id"])
    check(w["queues"] == ["embedded"] and w["concurrency"] >= 1, "worker %r" % w)
    check(0 <= w["heartbeat_age_s"] < 5, "heartbeat age %r" % w["heartbeat_age_s"])

    # A running task shows under its worker, then its attempt ends succeeded.
    t = srv.create("echo", {"message": "w", "sleep_ms": 1500})
    check(t["worker_id"] is None, "pending task has a worker: %r" % t["worker_id"])
    srv.wait_status(t["id"], "processing", timeout=10)
    running = []
    for _ in range(50):
        running = srv.get("/v1/workers").json["data"][0]["running"]
        if t["id"] in running:
            break
        time.sleep(0.05)
    check(t["id"] in running, "running task missing from /v1/workers: %r" % running)
    a = _attempts(srv, t["id"])
    check(len(a) == 1 and a[0]["status"] == "running" and a[0]["completed_at"] is None
          and a[0]["duration_s"] is None and a[0]["worker_id"] == w["id"], "running: %r" % a)
    done = srv.wait_terminal(t["id"], timeout=15)
    check(done["status"] == "succeeded" and done["worker_id"] == w["id"], "done: %r" % done)
    a = _attempts(srv, t["id"])
    check(len(a) == 1 and a[0]["status"] == "succeeded" and a[0]["error"] is None
          and 1.3 <= a[0]["duration_s"] < 10, "succeeded: %r" % a)

    # Retried attempts keep their error; the last one succeeds.
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "fail_times": 2})
    srv.wait_terminal(t["id"], timeout=20)
    a = _attempts(srv, t["id"])
    check([x["status"] for x in a] == ["retried", "retried", "succeeded"], "retries: %r" % a)
    check([x["attempt"] for x in a] == [1, 2, 3], "numbers: %r" % a)
    check(a[0]["error"]["code"] == "simulated_transient" and a[0]["error"]["message"],
          "error: %r" % a[0]["error"])

    # A permanent failure, and a cancel while running.
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "fail": "no"})
    srv.wait_terminal(t["id"], timeout=20)
    a = _attempts(srv, t["id"])
    check(len(a) == 1 and a[0]["status"] == "failed"
          and a[0]["error"]["code"] == "simulated_failure", "failed: %r" % a)
    t = srv.create("echo", {"message": "c", "sleep_ms": 20000})
    srv.wait_status(t["id"], "processing", timeout=10)
    check(srv.post("/v1/tasks/%s/cancel" % t["id"]).status == 202, "cancel refused")
    srv.wait_terminal(t["id"], timeout=20)
    a = _attempts(srv, t["id"])
    check(len(a) == 1 and a[0]["status"] == "canceled", "canceled: %r" % a)

    # A pending task has no attempts; unknown and malformed ids are 404.
    check(_attempts(srv, srv.create("echo", {"message": "p"}, priority=0)["id"]) is not None,
          "attempts of a new task")
    for bad in ("00000000-0000-4000-8000-000000000000", "nope"):
        r = srv.get("/v1/tasks/%s/attempts" % bad)
        check(r.status == 404 and r.json["error"]["code"] == "not_found", "%s: %r" % (bad, r))

    # Every log line of a worker process names the worker; task lines name the task.
    lines = [x for x in srv.stderr_text().splitlines() if re.match(r"\d{4}-\d\d-\d\dT", x)]
    check(lines and all(("worker=%s " % w["id"]) in x for x in lines),
          "a log line without the worker id: %r" % [x for x in lines if "worker=" not in x][:3])

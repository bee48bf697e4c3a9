"""Prefer: wait on create, and how event streams of finished tasks end."""
import threading
import time

from harness import case, check, check_error, check_task_shape, sse_collect


def _create(srv, prefer, params, key=None):
    headers = {"Prefer": prefer} if prefer is not None else {}
    if key:
        headers["Idempotency-Key"] = key
    t0 = time.time()
    r = srv.post("/v1/tasks", {"task_type": "echo", "params": params}, headers=headers)
    return r, time.time() - t0


@case("basic")
def test_prefer_wait_finished(ctx):
    srv = ctx.srv
    r, took = _create(srv, "wait=10", {"message": "waited", "sleep_ms": 300})
    check(r.status == 200, "Prefer: wait on a short task: want 200, got %r" % (r,))
    check(r.headers.get("preference-applied") == "wait=10",
          "Preference-Applied: %r" % r.headers.get("preference-applied"))
    t = r.json
    check_task_shape(t)
    check(t["status"] == "succeeded", "status %r" % t["status"])
    check(t["result"]["message"] == "waited", "result %r" % t["result"])
    check(took < 5, "took %.1f s for a 0.3 s task" % took)
    # Bare "wait" is echoed as sent; it means the longest wait (60 s).
    r, _ = _create(srv, "wait", {"message": "bare"})
    check(r.status == 200 and r.headers.get("preference-applied") == "wait",
          "bare wait: %r %r" % (r, r.headers.get("preference-applied")))


@case("basic")
def test_prefer_wait_times_out(ctx):
    srv = ctx.srv
    r, took = _create(srv, "respond-async, wait=1", {"message": "slow", "sleep_ms": 4000})
    check(r.status == 202, "a task longer than the wait: want 202, got %r" % (r,))
    check(r.headers.get("preference-applied") == "wait=1",
          "Preference-Applied: %r" % r.headers.get("preference-applied"))
    check(0.9 <= took < 3.5, "answered after %.2f s for wait=1" % took)
    t = r.json
    check(t["status"] in ("pending", "processing"), "status %r" % t["status"])
    done = srv.wait_terminal(t["id"], timeout=15)
    check(done["status"] == "succeeded", "the task still runs to the end: %r" % done["status"])


@case("basic")
def test_prefer_wait_bad_values(ctx):
    srv = ctx.srv
    for bad in ("wait=0", "wait=61", "wait=abc", "wait=-1", "wait=1.5"):
        r, _ = _create(srv, bad, {"message": "x"})
        check_error(r, 400, "bad_request", ["headers.Prefer"], what="Prefer: %s" % bad)
    # Preferences that are not wait are ignored (RFC 7240), and so is no header.
    r, _ = _create(srv, "handling=lenient", {"message": "x"})
    check(r.status == 202 and "preference-applied" not in r.headers,
          "other preference: %r %r" % (r, r.headers))


@case("basic")
def test_prefer_wait_many_at_once(ctx):
    """Waiting requests hold no thread: more of them than the server has threads all answer."""
    srv = ctx.srv
    n = 40
    results = [None] * n

    def one(i):
        results[i] = _create(srv, "wait=20", {"message": "m%d" % i, "sleep_ms": 1500})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.time()
    for th in threads:
        th.start()
    # Meanwhile the server answers other requests at once.
    time.sleep(0.3)
    t1 = time.time()
    h = srv.get("/health")
    check(h.status == 200 and time.time() - t1 < 2, "/health while %d requests wait: %r" % (n, h))
    for th in threads:
        th.join(60)
    took = time.time() - t0
    for i, res in enumerate(results):
        check(res is not None, "request %d did not return" % i)
        r, _ = res
        check(r.status == 200 and r.json["status"] == "succeeded",
              "request %d: %r" % (i, r))
    check(took < 45, "%d waiting creates took %.1f s" % (n, took))


@case("basic")
def test_prefer_wait_idempotent_replay(ctx):
    srv = ctx.srv
    r1, _ = _create(srv, "wait=10", {"message": "once"}, key="wait-replay-1")
    check(r1.status == 200, "first: %r" % (r1,))
    r2, _ = _create(srv, "wait=10", {"message": "once"}, key="wait-replay-1")
    check(r2.status == 200 and r2.headers.get("idempotent-replayed") == "true",
          "replay: %r %r" % (r2, r2.headers))
    check(r2.json["id"] == r1.json["id"], "replay made another task")


@case("basic")
def test_sse_finished_stream_ends_and_204(ctx):
    srv = ctx.srv
    r, _ = _create(srv, "wait=10", {"message": "done"})
    t = r.json
    ev = sse_collect(srv.port, t["id"], max_time=5)
    check(ev["status"] == 200 and ev["ended"] and not ev["timed_out"],
          "stream of a finished task must end: %r" % {k: ev[k] for k in ("status", "ended")})
    check(len(ev["events"]) == 1 and ev["events"][0]["json"]["status"] == "succeeded",
          "one terminal snapshot: %r" % ev["events"])
    last = ev["events"][0]["id"]
    again = sse_collect(srv.port, t["id"], last_event_id=last, max_time=5)
    check(again["status"] == 204, "reconnect after the last event: want 204, got %r" % again["status"])
    # An id the stream never issued still gets the snapshot (a new client, or an old bus).
    other = sse_collect(srv.port, t["id"], last_event_id=str(int(last) + 100), max_time=5)
    check(other["status"] == 200 and other["events"], "unknown id: %r" % other["status"])


@case("basic")
def test_sse_stock_eventsource_stops(ctx):
    """Chromium's EventSource on a finished task: one snapshot, then it stops for good."""
    import json
    import os
    import subprocess
    from test_dashboard import BROWSER_DIR, CHROMIUM, _prepare
    _prepare()
    srv = ctx.srv
    r, _ = _create(srv, "wait=10", {"message": "for a browser"})
    check(r.status == 200, "create: %r" % (r,))
    cfg = {"base": "http://127.0.0.1:%d" % srv.port, "task_id": r.json["id"], "ms": 5000}
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "eventsource.mjs")], cwd=BROWSER_DIR,
                       env=dict(os.environ, GENPULSE_EVENTSOURCE_TEST=json.dumps(cfg),
                                CHROMIUM=CHROMIUM),
                       capture_output=True, text=True, timeout=90)
    check(p.returncode == 0, "eventsource.mjs failed: %s" % (p.stdout + p.stderr)[-2000:])
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    check(seen["readyState"] == 2, "the EventSource still reconnects (readyState %r): %r"
          % (seen["readyState"], seen))
    check(seen["opens"] <= 2, "opened %d times in 5 s: %r" % (seen["opens"], seen))
    statuses = [e["status"] for e in seen["events"]]
    check(statuses == ["succeeded"], "events %r" % seen["events"])


@case(own=True)
def test_prefer_wait_distributed(ctx):
    """api + worker over PostgreSQL and Redis: the finish reaches the waiting gateway on the
    bus, and a timed-out wait still answers in time."""
    from harness import Skip
    from test_distributed import PG, REDIS, _cluster
    if not (PG and REDIS):
        raise Skip("no GENPULSE_TEST_PG_URL / GENPULSE_TEST_REDIS_URL")
    (gw,), _ = _cluster(ctx, apis=1, workers=1)
    for i in range(20):
        r, took = _create(gw, "wait=15", {"message": "d%d" % i, "sleep_ms": 50})
        check(r.status == 200 and r.json["status"] == "succeeded",
              "distributed wait %d: %r (%.2f s)" % (i, r, took))
    r, took = _create(gw, "wait=1", {"message": "slow", "sleep_ms": 3000})
    check(r.status == 202 and 0.9 <= took < 3, "timed out wait: %r after %.2f s" % (r, took))

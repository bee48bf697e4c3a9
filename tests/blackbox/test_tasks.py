"""Task semantics: outputs, retries, failures, timeouts, cancel, priority, event streams."""
import json
import shutil
import struct
import threading
import time

from harness import (case, check, check_error, check_task_shape, parse_time, short,
                     sse_collect, url_path)


def fetch_asset(srv, asset):
    r = srv.get(url_path(asset.get("url")))
    check(r.status == 200, "GET asset %s: %r" % (asset.get("url"), r))
    return r


# ------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------

@case("basic")
def test_text_to_image_png(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "a red fox", "width": 64, "height": 80, "seed": 7,
                                     "steps": 3})
    done = srv.wait_terminal(t["id"], 15)
    check_task_shape(done)
    check(done["status"] == "succeeded", "image task ended %s: %s" % (done["status"], done["error"]))
    check(done["progress"] == 100, "succeeded task progress %r, expected 100" % done["progress"])
    assets = (done["result"] or {}).get("assets")
    check(isinstance(assets, list) and len(assets) == 1, "expected one asset, got %r" % (assets,))
    a = assets[0]
    for k in ("url", "content_type", "bytes"):
        check(k in a, "asset lacks %r: %s" % (k, json.dumps(a)))
    check(a["content_type"] == "image/png", "asset content_type %r" % a["content_type"])
    check(a["url"].endswith("image.png") or a.get("name") == "image.png",
          "asset is not named image.png: %s" % json.dumps(a))
    r = fetch_asset(srv, a)
    check(r.headers.get("content-type", "").split(";")[0].strip() == "image/png",
          "asset served with Content-Type %r" % r.headers.get("content-type"))
    body = r.body
    check(len(body) == a["bytes"], "asset bytes %r but served %d bytes" % (a["bytes"], len(body)))
    check(body[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature: %r" % body[:8])
    check(body[12:16] == b"IHDR", "first chunk is %r, not IHDR" % body[12:16])
    w, h = struct.unpack(">II", body[16:24])
    check((w, h) == (64, 80), "PNG IHDR is %dx%d, expected 64x80" % (w, h))
    check(body[-8:-4] == b"IEND", "PNG does not end with IEND")
    # the same seed and params give the same bytes (deterministic simulator)
    t2 = srv.create("text-to-image", {"prompt": "a red fox", "width": 64, "height": 80, "seed": 7,
                                      "steps": 3})
    d2 = srv.wait_terminal(t2["id"], 15)
    check(d2["status"] == "succeeded", "second image task %s" % d2["status"])
    b2 = fetch_asset(srv, d2["result"]["assets"][0]).body
    check(b2 == body, "same seed/params gave different PNG bytes")
    # another name under the same link is refused before any lookup (its signature does not
    # cover it), so a refusal says nothing about what exists
    p = url_path(a["url"])
    path, query = p.split("?", 1)
    bad = path[:path.rfind("/") + 1] + "nope.png?" + query
    r = srv.get(bad)
    check(r.status == 403, "GET %s (not what the link signs): %r" % (bad, r))
    r = srv.get(path[:path.rfind("/") + 1] + "..%2F..%2Fgenpulse.db?" + query)
    check(r.status in (400, 403, 404), "path traversal in output URL: %r" % r)


@case("basic")
def test_text_to_audio_wav(ctx):
    srv = ctx.srv
    t = srv.create("text-to-audio", {"text": "Hello from GenPulse.", "rate": 200, "pitch": 40})
    done = srv.wait_terminal(t["id"], 30)
    if done["status"] != "succeeded":
        hint = "" if (shutil.which("espeak-ng") or shutil.which("espeak")) else \
            " (note: no espeak-ng/espeak binary on PATH on this machine)"
        raise AssertionError("text-to-audio ended %s: %s%s" % (done["status"], done["error"], hint))
    assets = (done["result"] or {}).get("assets")
    check(isinstance(assets, list) and len(assets) == 1, "expected one asset, got %r" % (assets,))
    a = assets[0]
    check(a.get("content_type") == "audio/wav", "asset content_type %r" % a.get("content_type"))
    r = fetch_asset(srv, a)
    check(r.headers.get("content-type", "").split(";")[0].strip() == "audio/wav",
          "asset served with Content-Type %r" % r.headers.get("content-type"))
    check(r.body[:4] == b"RIFF" and r.body[8:12] == b"WAVE", "not a RIFF/WAVE file: %r" % r.body[:12])
    check(len(r.body) == a.get("bytes"), "asset bytes %r but served %d" % (a.get("bytes"), len(r.body)))
    check(len(r.body) > 1000, "WAV only %d bytes" % len(r.body))


# ------------------------------------------------------------------------------------------
# Failures and retries
# ------------------------------------------------------------------------------------------

@case("basic")
def test_retries_then_success(ctx):
    t = ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "fail_times": 2},
                       max_retries=3)
    done = ctx.srv.wait_terminal(t["id"], 15)
    check(done["status"] == "succeeded", "fail_times=2 max_retries=3 ended %s: %s"
          % (done["status"], done["error"]))
    check(done["attempts"] == 3, "attempts %r, expected 3" % done["attempts"])
    check(done["error"] is None, "succeeded task still carries error %r" % done["error"])
    check(done["result"] and done["result"].get("assets"), "no assets after retries")


@case("basic")
def test_retries_exhausted(ctx):
    t = ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "fail_times": 5},
                       max_retries=1)
    done = ctx.srv.wait_terminal(t["id"], 15)
    check(done["status"] == "failed", "fail_times=5 max_retries=1 ended %s" % done["status"])
    check(done["attempts"] == 2, "attempts %r, expected 2" % done["attempts"])
    check(isinstance(done["error"], dict) and done["error"].get("code") == "simulated_transient",
          "error %r, expected code simulated_transient" % (done["error"],))
    check(done["result"] is None or not done["result"].get("assets"),
          "failed task has assets: %r" % done["result"])
    # stays failed
    time.sleep(0.2)
    again = ctx.srv.task(t["id"])
    check(again["status"] == "failed" and again["attempts"] == 2, "failed task changed: %s attempts %s"
          % (again["status"], again["attempts"]))


@case("basic")
def test_permanent_failure(ctx):
    t = ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64,
                                         "fail": "the model exploded"}, max_retries=3)
    done = ctx.srv.wait_terminal(t["id"], 15)
    check_task_shape(done)
    check(done["status"] == "failed", "fail=... ended %s" % done["status"])
    check(done["attempts"] == 1, "permanent failure retried: attempts %r" % done["attempts"])
    check(done["error"] == {"code": "simulated_failure", "message": "the model exploded"}
          or (done["error"].get("code") == "simulated_failure"
              and done["error"].get("message") == "the model exploded"),
          "error %r" % (done["error"],))
    check_error(ctx.srv.post("/v1/tasks/%s/cancel" % t["id"]), 409, "conflict", what="cancel a failed task")


@case(args=["--task-timeout", "1", "--retry-base-ms", "10", "--concurrency", "8"])
def test_hard_timeout(ctx):
    t = ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 5000},
                       max_retries=0)
    quick = ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 200},
                           max_retries=0)
    # several at once: the watchdog and the workers race to finalize them
    others = [ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64,
                                               "delay_ms": 5000, "steps": 1000}, max_retries=0)
              for _ in range(12)]
    done = ctx.srv.wait_terminal(t["id"], 6)
    check(done["status"] == "failed", "timed-out task ended %s" % done["status"])
    check(isinstance(done["error"], dict) and done["error"].get("code") == "timeout",
          "error %r, expected code timeout" % (done["error"],))
    took = parse_time(done["completed_at"]) - parse_time(done["started_at"])
    check(took < 3.0, "timeout at 1 s took %.2fs to end the task" % took)
    check(done["attempts"] == 1, "attempts %r with max_retries 0" % done["attempts"])
    for o in others:
        d = ctx.srv.wait_terminal(o["id"], 8)
        check(d["status"] == "failed" and (d["error"] or {}).get("code") == "timeout",
              "timed-out task %s ended %s %s" % (o["id"], d["status"], d["error"]))
    q = ctx.srv.wait_terminal(quick["id"], 5)
    check(q["status"] == "succeeded", "a 200 ms task under a 1 s timeout ended %s" % q["status"])
    # a timeout is retryable: with max_retries 1 the task runs twice, then fails with timeout
    t2 = ctx.srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 5000},
                        max_retries=1)
    d2 = ctx.srv.wait_terminal(t2["id"], 8)
    check(d2["status"] == "failed" and d2["attempts"] == 2 and (d2["error"] or {}).get("code") == "timeout",
          "timeout with max_retries 1: status %s attempts %s error %s"
          % (d2["status"], d2["attempts"], d2["error"]))


# ------------------------------------------------------------------------------------------
# Cancel
# ------------------------------------------------------------------------------------------

@case("basic")
def test_cancel_running(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 5000,
                                     "steps": 50})
    srv.wait_status(t["id"], "processing", 5)
    t0 = time.time()
    r = srv.post(url_path(t["urls"]["cancel"]))
    check(r.status in (200, 202), "cancel a running task: %r" % r)
    check(isinstance(r.json, dict) and r.json.get("id") == t["id"], "cancel response: %r" % r)
    done = srv.wait_terminal(t["id"], 3)
    check(done["status"] == "canceled", "running task canceled ended %s" % done["status"])
    check(time.time() - t0 < 2.5, "cancel of a running task took %.1fs" % (time.time() - t0))
    check(done["completed_at"] is not None, "canceled task has no completed_at")
    time.sleep(0.5)
    later = srv.task(t["id"])
    check(later["status"] == "canceled", "canceled task became %s" % later["status"])
    check_error(srv.post("/v1/tasks/%s/cancel" % t["id"]), 409, "conflict", what="cancel twice")
    ev = sse_collect(srv.port, t["id"], max_time=5)
    check(ev["status"] == 200 and ev["ended"], "events of a canceled task: status %s ended %s"
          % (ev["status"], ev["ended"]))
    check(ev["events"] and (ev["events"][-1]["json"] or {}).get("status") == "canceled",
          "last event of a canceled task: %r" % (ev["events"][-1:] or None))


@case("basic")
def test_cancel_finished_409(ctx):
    t = ctx.srv.create("echo", {"message": "done"})
    ctx.srv.wait_status(t["id"], "succeeded", 10)
    check_error(ctx.srv.post("/v1/tasks/%s/cancel" % t["id"]), 409, "conflict",
                what="cancel a succeeded task")
    check(ctx.srv.task(t["id"])["status"] == "succeeded", "409 cancel changed the task")


@case("basic")
def test_cancel_race(ctx):
    """Cancels landing at every moment of short tasks' lives (pending, just claimed, running,
    finishing, finished): the answer and the final state must agree."""
    srv = ctx.srv
    answers = []
    lock = threading.Lock()

    def lane(n):
        # offsets cluster around the ~100 ms mark where the task finishes
        offsets = [0, 0.03, 0.06, 0.09, 0.095, 0.1, 0.105, 0.11, 0.115, 0.12, 0.13, 0.16]
        for i in range(18):
            tid = srv.create("text-to-image", {"prompt": "r%d" % i, "width": 64, "height": 64,
                                               "delay_ms": 100, "steps": 4})["id"]
            time.sleep(offsets[(i + n * 5) % len(offsets)])
            r = srv.post("/v1/tasks/%s/cancel" % tid)
            with lock:
                answers.append((tid, r))
    errors = []

    def run_lane(n):
        try:
            lane(n)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ths = [threading.Thread(target=run_lane, args=(n,)) for n in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(30)
    check(not errors, "lane error: %r" % errors[:1])
    kinds = set()
    for tid, r in answers:
        final = srv.wait_terminal(tid, 10)
        check_task_shape(final)
        kinds.add((r.status, (r.json or {}).get("status") if r.status != 409 else final["status"]))
        if r.status == 409:
            check_error(r, 409, "conflict", what="cancel of a finished task")
        else:
            check(r.status in (200, 202), "cancel answered %r" % r)
            check(final["status"] == "canceled", "cancel answered %d (status %s) but the task "
                  "ended %s (attempts %s)" % (r.status, r.json.get("status"), final["status"],
                                              final["attempts"]))
    check(srv.get("/health").status == 200, "unhealthy after the cancel race")
    check(any(k[0] == 409 for k in kinds) and any(k[0] != 409 for k in kinds),
          "test did not hit both finished and unfinished tasks: %s" % sorted(kinds))


@case("serial")
def test_cancel_pending(ctx):
    srv = ctx.srv
    blocker = srv.create("text-to-image", {"prompt": "b", "width": 64, "height": 64, "delay_ms": 3000})
    srv.wait_status(blocker["id"], "processing", 5)
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64})
    check(srv.task(t["id"])["status"] == "pending", "task behind a blocker is not pending")
    r = srv.post("/v1/tasks/%s/cancel" % t["id"])
    check(r.status == 200, "cancel a pending task: expected 200, got %r" % r)
    check(isinstance(r.json, dict) and r.json.get("status") == "canceled",
          "cancel response status %r, expected canceled" % (r.json or {}).get("status"))
    got = srv.task(t["id"])
    check_task_shape(got)
    check(got["status"] == "canceled", "after cancel GET shows %s" % got["status"])
    check(got["started_at"] is None and got["attempts"] == 0,
          "canceled pending task ran? started_at %r attempts %r" % (got["started_at"], got["attempts"]))
    check_error(srv.post("/v1/tasks/%s/cancel" % t["id"]), 409, "conflict", what="cancel twice")
    # stop the blocker too (cancel while running) and make sure the canceled one never runs
    r = srv.post("/v1/tasks/%s/cancel" % blocker["id"])
    check(r.status in (200, 202), "cancel blocker: %r" % r)
    srv.wait_status(blocker["id"], "canceled", 3)
    time.sleep(0.3)
    got = srv.task(t["id"])
    check(got["status"] == "canceled" and got["attempts"] == 0,
          "canceled pending task later: %s attempts %s" % (got["status"], got["attempts"]))


# ------------------------------------------------------------------------------------------
# Priority
# ------------------------------------------------------------------------------------------

@case("serial")
def test_priority_order(ctx):
    srv = ctx.srv
    blocker = srv.create("text-to-image", {"prompt": "b", "width": 64, "height": 64, "delay_ms": 1500},
                         priority=0)
    srv.wait_status(blocker["id"], "processing", 5)
    p = {"prompt": "x", "width": 64, "height": 64, "delay_ms": 60, "steps": 1}
    lows = [srv.create("text-to-image", p, priority=0)["id"] for _ in range(3)]
    mids = [srv.create("text-to-image", p, priority=4)["id"] for _ in range(2)]
    highs = [srv.create("text-to-image", p, priority=9)["id"] for _ in range(3)]
    for tid in [blocker["id"]] + lows + mids + highs:
        srv.wait_terminal(tid, 10)
    start = {tid: parse_time(srv.task(tid)["started_at"]) for tid in lows + mids + highs}
    order = sorted(start, key=start.get)
    label = {**{i: "low" for i in lows}, **{i: "mid" for i in mids}, **{i: "high" for i in highs}}
    got = [label[i] for i in order]
    check(got == ["high"] * 3 + ["mid"] * 2 + ["low"] * 3,
          "start order by started_at: %s (expected high x3, mid x2, low x3)" % got)
    # FIFO within one priority
    check(sorted(lows, key=start.get) == lows and sorted(highs, key=start.get) == highs,
          "equal-priority tasks did not start in submission order")


# ------------------------------------------------------------------------------------------
# Event streams
# ------------------------------------------------------------------------------------------

def _check_stream(ev, final_status="succeeded"):
    check(ev["status"] == 200, "events: HTTP %s %s" % (ev["status"], short(ev["body"])))
    ctype = ev["headers"].get("content-type", "")
    check(ctype.split(";")[0].strip() == "text/event-stream", "events content-type %r" % ctype)
    evs = ev["events"]
    check(evs, "no events at all")
    check(ev["ended"], "stream not closed by the server after the terminal state (timed out=%s, "
          "last event %r)" % (ev["timed_out"], evs[-1]["data"][:200]))
    first = evs[0]
    check(first["event"] == "status", "first event is %r, not status" % first["event"])
    snap = first["json"]
    check(isinstance(snap, dict), "first event data not JSON: %r" % first["data"][:200])
    for k in ("id", "status", "progress", "step", "result", "error"):
        check(k in snap, "status snapshot lacks %r: %s" % (k, first["data"][:300]))
    for e in evs:
        check(e["event"] in ("status", "progress"), "unexpected event type %r" % e["event"])
        check(e["id"] is not None and e["id"] != "", "event without id: %r" % e["data"][:200])
        check(isinstance(e["json"], dict), "event data not a JSON object: %r" % e["data"][:200])
    ids = [e["id"] for e in evs]
    check(len(set(ids)) == len(ids), "duplicate event ids: %s" % ids)
    last = evs[-1]
    check(last["event"] == "status" and last["json"].get("status") == final_status,
          "last event %s %s, expected status %s" % (last["event"], last["data"][:200], final_status))
    return evs


@case("basic")
def test_sse_progress_and_end(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 1200,
                                     "steps": 6})
    ev = sse_collect(srv.port, t["id"], max_time=15)
    evs = _check_stream(ev)
    prog = [e for e in evs if e["event"] == "progress"]
    check(len(prog) >= 3, "only %d progress events for steps=6 (events: %s)"
          % (len(prog), [(e["event"], e["data"][:80]) for e in evs]))
    values = [e["json"].get("progress") for e in evs if isinstance(e["json"].get("progress"), int)]
    check(values == sorted(values), "progress went backwards: %s" % values)
    order = {"pending": 0, "processing": 1, "succeeded": 2, "failed": 2, "canceled": 2}
    seq = [e["json"].get("status") for e in evs if e["event"] == "status"]
    check(all(s in order for s in seq) and [order[s] for s in seq] == sorted(order[s] for s in seq),
          "status events out of order: %s" % seq)
    final = evs[-1]["json"]
    check(final.get("progress") == 100, "final snapshot progress %r" % final.get("progress"))
    check(final.get("result") and final["result"].get("assets"), "final snapshot has no result assets")
    check(ev["ended"] and evs[-1]["t"] - ev["t0"] < 10, "stream did not end soon after the task")
    # a finished task: current state, then the stream ends
    ev2 = sse_collect(srv.port, t["id"], max_time=5)
    evs2 = _check_stream(ev2)
    check(len(evs2) == 1, "stream of a finished task had %d events (expected only the current "
          "state)" % len(evs2))


@case("basic")
def test_sse_resume_last_event_id(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 1500,
                                     "steps": 10})
    a = sse_collect(srv.port, t["id"], max_time=10, stop_after=3)
    check(a["status"] == 200 and len(a["events"]) == 3, "first connection got %d events"
          % len(a["events"]))
    seen_ids = [e["id"] for e in a["events"]]
    seen_prog = max([e["json"].get("progress", 0) or 0 for e in a["events"]])
    b = sse_collect(srv.port, t["id"], last_event_id=seen_ids[-1], max_time=15)
    check(b["status"] == 200 and b["ended"], "resumed stream: HTTP %s ended %s" % (b["status"], b["ended"]))
    evs = b["events"]
    for e in evs:
        check(isinstance(e["json"], dict) and e["id"], "resumed stream: bad event %r" % e["data"][:200])
    dup = [e["id"] for e in evs if e["id"] in seen_ids]
    check(not dup, "resumed stream repeated already-seen event ids %s" % dup)
    check(evs and evs[-1]["json"].get("status") == "succeeded", "resumed stream did not reach succeeded")
    older = [e["json"].get("progress") for e in evs if e["event"] == "progress"
             and isinstance(e["json"].get("progress"), int) and e["json"]["progress"] < seen_prog]
    check(not older, "resumed stream replayed older progress %s (already saw %d)" % (older, seen_prog))
    # resume after the terminal event: nothing already seen comes back
    full = sse_collect(srv.port, t["id"], max_time=5)
    last_id = full["events"][-1]["id"]
    # (204: an EventSource stops reconnecting; issue 11)
    c = sse_collect(srv.port, t["id"], last_event_id=last_id, max_time=5)
    check(c["status"] == 204, "resume after the end: HTTP %s, want 204" % c["status"])
    check(not c["events"], "resume after the terminal event repeated it")


@case("basic")
def test_sse_unknown_task_404(ctx):
    ev = sse_collect(ctx.srv.port, "00000000-0000-4000-8000-000000000000", max_time=5)
    check(ev["status"] == 404, "events for an unknown task: HTTP %s" % ev["status"])
    check(isinstance(ev.get("json"), dict) and (ev["json"].get("error") or {}).get("code") == "not_found",
          "events 404 body: %r" % short(ev["body"]))
    ev = sse_collect(ctx.srv.port, "bogus", max_time=5)
    check(ev["status"] == 404, "events for a malformed id: HTTP %s" % ev["status"])


@case("basic")
def test_sse_many_listeners(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 800,
                                     "steps": 4})
    results = [None] * 10

    def listen(i):
        try:
            results[i] = sse_collect(srv.port, t["id"], max_time=10)
        except Exception as e:  # noqa: BLE001
            results[i] = e
    ths = [threading.Thread(target=listen, args=(i,)) for i in range(10)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(15)
    for i, r in enumerate(results):
        check(isinstance(r, dict), "listener %d: %r" % (i, r))
        _check_stream(r)


@case(args=["--sse-heartbeat", "1"])
def test_sse_heartbeat(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 3500,
                                     "steps": 1})
    ev = sse_collect(srv.port, t["id"], max_time=10)
    _check_stream(ev)
    n = len(ev["comments"])
    check(n >= 2, "%d heartbeat comment lines in ~3.5 s with --sse-heartbeat 1" % n)
    times = [c[0] for c in ev["comments"]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    check(all(g > 0.5 for g in gaps[1:]), "heartbeats too close together: %s" % gaps)


@case(args=["--task-timeout", "1", "--retry-base-ms", "0", "--concurrency", "48"])
def test_timeout_watchdog_stress(ctx):
    """Many attempts time out at once, each provider stopping a few ms after its deadline:
    the watchdog and the workers race to finalize (a use-after-free shows up here under ASan)."""
    srv = ctx.srv
    ids = [srv.create("text-to-image", {"prompt": "s%d" % i, "width": 64, "height": 64,
                                        "delay_ms": 5000, "steps": 1000}, max_retries=2)["id"]
           for i in range(48)]
    time.sleep(3.4)  # no polling while the timeouts fire: keeps the race window wide
    for tid in ids:
        d = srv.wait_terminal(tid, 10)
        check(d["status"] == "failed" and (d["error"] or {}).get("code") == "timeout"
              and d["attempts"] == 3, "task %s: status %s attempts %s error %s"
              % (tid, d["status"], d["attempts"], d["error"]))


@case("basic")
def test_sse_bad_last_event_id(ctx):
    srv = ctx.srv
    t = srv.create("echo", {"message": "x"})
    srv.wait_terminal(t["id"])
    for bad in ("abc", "-1", "99999999999999999999999", "0", "1.5", "x" * 1000):
        ev = sse_collect(srv.port, t["id"], last_event_id=bad, max_time=5)
        check(ev["status"] in (200, 400), "Last-Event-ID %r: HTTP %s" % (bad[:20], ev["status"]))
        if ev["status"] == 200:
            check(ev["ended"], "Last-Event-ID %r: stream of a finished task did not end" % bad[:20])
    check(srv.get("/health").status == 200, "unhealthy after odd Last-Event-IDs")


@case(args=["--retry-base-ms", "2000", "--retry-max-ms", "2000"])
def test_cancel_during_retry_backoff(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "fail_times": 5},
                   max_retries=5)
    cur = srv.wait_for(t["id"], lambda x: x["attempts"] >= 1 and x["status"] != "processing", 5,
                       "past its first attempt")
    r = srv.post("/v1/tasks/%s/cancel" % t["id"])
    check(r.status in (200, 202), "cancel during backoff (%s, attempts %s): %r"
          % (cur["status"], cur["attempts"], r))
    d = srv.wait_terminal(t["id"], 3)
    check(d["status"] == "canceled", "task canceled during backoff ended %s" % d["status"])
    attempts = d["attempts"]
    time.sleep(2.2)  # past the longest backoff: the retry timer must not revive it
    d = srv.task(t["id"])
    check(d["status"] == "canceled" and d["attempts"] == attempts,
          "canceled task revived by its retry: %s attempts %s -> %s" % (d["status"], attempts,
                                                                        d["attempts"]))


@case("basic")
def test_audio_bad_voice_fails_cleanly(ctx):
    for voice in ("zz-nope", "../../etc/passwd", "%s%n%s"):
        r = ctx.srv.post("/v1/tasks", {"task_type": "text-to-audio", "params": {"text": "hi", "voice": voice}})
        if r.status == 422:
            check_error(r, 422, "validation_error", ["params.voice"], what="voice %r" % voice)
            continue
        check(r.status == 202, "voice %r: %r" % (voice, r))
        d = ctx.srv.wait_terminal(r.json["id"], 20)
        check(d["status"] == "failed" and d["attempts"] == 1,
              "voice %r: status %s attempts %s (expected a permanent failure)" % (voice, d["status"], d["attempts"]))


@case("basic")
def test_sse_last_event_id_from_the_future(ctx):
    # An id this server never issued (e.g. from before a restart, when sequences start over)
    # must get the current state, not a silent stream.
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64,
                                     "delay_ms": 600, "steps": 3})
    ev = sse_collect(srv.port, t["id"], last_event_id="999999", max_time=10)
    check(ev["status"] == 200, "HTTP %s" % ev["status"])
    check(len(ev["events"]) > 0, "no events after an unknown Last-Event-ID")
    check(ev["ended"], "stream did not end")


@case("basic")
def test_retry_failed_task(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64,
                                     "fail_times": 1}, max_retries=0)
    done = srv.wait_terminal(t["id"])
    check(done["status"] == "failed" and done["attempts"] == 1, "first run: %r" % done)
    r = srv.post("/v1/tasks/%s/retry" % t["id"])
    check(r.status == 202 and r.json["status"] == "pending" and r.json["error"] is None,
          "retry: %r" % r)
    check(r.json["completed_at"] is None, "completed_at not cleared: %r" % r.json)
    again = srv.wait_terminal(t["id"])
    # fail_times counts attempts; the new round starts again at attempt 1, so it fails again.
    check(again["status"] == "failed" and again["attempts"] == 1, "second run: %r" % again)
    ok = srv.create("echo", {"message": "x"})
    srv.wait_terminal(ok["id"])
    r = srv.post("/v1/tasks/%s/retry" % ok["id"])
    check(r.status == 409 and r.json["error"]["code"] == "conflict", "retry succeeded task: %r" % r)
    r = srv.post("/v1/tasks/00000000-0000-7000-8000-000000000000/retry")
    check(r.status == 404, "retry unknown: %r" % r)

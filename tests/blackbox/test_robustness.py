"""Load, abrupt clients, crash recovery and graceful shutdown."""
import http.client
import signal
import socket
import threading
import time

from harness import (HOST, TERMINAL, SSEStream, case, check, check_task_shape, parse_time, url_path)


@case(args=["--retry-base-ms", "10"])
def test_concurrent_submissions(ctx):
    srv = ctx.srv
    n = 100
    results = [None] * n
    barrier = threading.Barrier(n)

    def submit(i):
        try:
            barrier.wait(10)
            results[i] = srv.post("/v1/tasks", {"task_type": "echo", "params": {"message": "c%d" % i}},
                                  timeout=30)
        except Exception as e:  # noqa: BLE001
            results[i] = e
    ths = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(40)
    bad = [(i, r) for i, r in enumerate(results) if not hasattr(r, "status") or r.status != 202]
    check(not bad, "%d of %d concurrent submissions failed, e.g. %r" % (len(bad), n, bad[:3]))
    ids = [r.json["id"] for r in results]
    check(len(set(ids)) == n, "%d distinct ids for %d submissions" % (len(set(ids)), n))
    deadline = time.time() + 30
    while time.time() < deadline:
        done = srv.list_all("status=succeeded")
        if len(done) >= n:
            break
        time.sleep(0.1)
    listed = srv.list_all()
    check(sorted(t["id"] for t in listed) == sorted(ids),
          "list shows %d tasks (%d distinct) for %d submissions"
          % (len(listed), len({t["id"] for t in listed}), n))
    not_ok = [t for t in listed if t["status"] != "succeeded"]
    check(not not_ok, "%d tasks not succeeded after 30 s, e.g. %s %s" % (
        len(not_ok), not_ok[0]["status"] if not_ok else "", not_ok[0]["error"] if not_ok else ""))
    by_id = {r.json["id"]: r.json["params"]["message"] for r in results}
    for t in listed:
        check(t["result"].get("message") == by_id[t["id"]], "task %s result mixed up: %r vs %r"
              % (t["id"], t["result"].get("message"), by_id[t["id"]]))


@case(args=["--retry-base-ms", "10"])
def test_abrupt_clients(ctx):
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 1000,
                                     "steps": 20})
    # event-stream clients that vanish mid-stream
    for _ in range(10):
        st = SSEStream(srv.port, "/v1/tasks/%s/events" % t["id"])
        st.sock.recv(100)
        st.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        st.close()  # RST
    # half-sent requests and bodies
    for data in (b"GET /v1/tas", b"POST /v1/tasks HTTP/1.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"task_type\":", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                 b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100000 + b"\r\n\r\n"):
        s = socket.create_connection((HOST, srv.port), timeout=5)
        try:
            s.sendall(data)
        except OSError:
            pass
        s.close()
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "succeeded", "task ended %s after abrupt clients" % done["status"])
    check(srv.get("/health").status == 200, "server unhealthy after abrupt clients")


@case(own=True)
def test_crash_recovery_kill9(ctx):
    srv = ctx.new_server(["--concurrency", "2", "--retry-base-ms", "10"], name="crash")
    srv.start()
    ids = []
    for i in range(50):
        ids.append(srv.create("text-to-image", {"prompt": "t%d" % i, "width": 64, "height": 64,
                                                "delay_ms": 300, "steps": 3})["id"])
    deadline = time.time() + 20
    snap = None
    while time.time() < deadline:
        snap = {t["id"]: t for t in srv.list_all()}
        nsucc = sum(1 for t in snap.values() if t["status"] == "succeeded")
        nproc = sum(1 for t in snap.values() if t["status"] == "processing")
        if nsucc >= 4 and nproc >= 1:
            break
        time.sleep(0.05)
    check(snap is not None and len(snap) == 50, "before the kill the list had %d tasks"
          % (len(snap) if snap else 0))
    kill_time = time.time()
    srv.kill9()
    processing = [tid for tid, t in snap.items() if t["status"] == "processing"]
    succeeded = {tid: t for tid, t in snap.items() if t["status"] == "succeeded"}
    check(processing, "no task was processing at the kill (test could not check interruption)")

    srv.start()  # same data dir, fresh port
    deadline = time.time() + 40
    tasks = {}
    while time.time() < deadline:
        tasks = {t["id"]: t for t in srv.list_all()}
        if len(tasks) == 50 and all(t["status"] in TERMINAL for t in tasks.values()):
            break
        time.sleep(0.2)
    check(sorted(tasks) == sorted(ids), "after restart the list has %d of the 50 tasks" % len(tasks))
    for t in tasks.values():
        check_task_shape(t, "recovered task")
    stuck = [t for t in tasks.values() if t["status"] not in TERMINAL]
    check(not stuck, "%d tasks not terminal 40 s after restart: %s" % (
        len(stuck), sorted({(t["status"], t["attempts"]) for t in stuck})))
    bad = [t for t in tasks.values() if t["status"] != "succeeded"]
    check(not bad, "%d tasks did not succeed after the restart, e.g. %s %s" % (
        len(bad), bad[0]["status"] if bad else "", bad[0]["error"] if bad else ""))
    for tid, before in succeeded.items():
        after = tasks[tid]
        check(after["completed_at"] == before["completed_at"] and after["attempts"] == before["attempts"],
              "task %s succeeded before the kill but changed after restart: attempts %s->%s "
              "completed_at %s->%s" % (tid, before["attempts"], after["attempts"],
                                       before["completed_at"], after["completed_at"]))
    interrupted = [tid for tid in processing if parse_time(tasks[tid]["completed_at"]) > kill_time]
    check(interrupted, "none of the %d tasks processing at the kill finished after it" % len(processing))
    low = [(tid, tasks[tid]["attempts"]) for tid in interrupted if tasks[tid]["attempts"] < 2]
    check(not low, "interrupted tasks should show attempts >= 2: %s" % low)
    for tid in interrupted:
        a = tasks[tid]["result"]["assets"][0]
        r = srv.get(url_path(a["url"]))
        check(r.status == 200 and r.body[:4] == b"\x89PNG", "output of re-run task %s: HTTP %s"
              % (tid, r.status))
    # the server still takes new work
    t = srv.create("echo", {"message": "after"})
    check(srv.wait_terminal(t["id"], 10)["status"] == "succeeded", "new task after restart failed")


@case(own=True)
def test_sigterm_drain(ctx):
    srv = ctx.new_server(["--grace-period", "5", "--retry-base-ms", "10"], name="drain")
    srv.start()
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 1000,
                                     "steps": 5})
    srv.wait_status(t["id"], "processing", 5)
    t0 = time.time()
    srv.signal(signal.SIGTERM)
    exited = srv.wait_exit(10)
    took = time.time() - t0
    check(exited, "server still running 10 s after SIGTERM (grace period 5)")
    check(took < 6.5, "exit took %.1fs with --grace-period 5" % took)
    check(srv.exit_code == 0, "exit code after SIGTERM: %s" % srv.exit_code)
    srv.start()
    after = srv.task(t["id"])
    check(after["status"] == "succeeded", "task running at SIGTERM is %s after restart (expected it "
          "to finish during the grace period)" % after["status"])
    check(after["attempts"] == 1, "drained task attempts %s, expected 1" % after["attempts"])
    check(parse_time(after["completed_at"]) <= t0 + took + 0.5, "task completed after the server exited")


@case(own=True)
def test_crash_durability_of_acks(ctx):
    """What the API acknowledged survives kill -9 right after the answer."""
    srv = ctx.new_server(["--concurrency", "1", "--retry-base-ms", "10"], name="acks")
    srv.start()
    blocker = srv.create("text-to-image", {"prompt": "b", "width": 64, "height": 64, "delay_ms": 3000})
    srv.wait_status(blocker["id"], "processing", 5)
    done = srv.create("echo", {"message": "x"}, priority=9)  # queued behind the blocker
    ids = [srv.create("echo", {"message": "m%d" % i}, priority=i % 10)["id"] for i in range(20)]
    canceled = ids[:5]
    for tid in canceled:
        r = srv.post("/v1/tasks/%s/cancel" % tid)
        check(r.status == 200 and r.json.get("status") == "canceled", "cancel pending: %r" % r)
    key_task = srv.create("echo", {"message": "k"}, headers={"Idempotency-Key": "dur-key"})
    srv.kill9()  # immediately after the last answer
    srv.start()
    for tid in ids + [key_task["id"], done["id"], blocker["id"]]:
        r = srv.get("/v1/tasks/%s" % tid)
        check(r.status == 200, "task %s acknowledged with 202 is gone after kill -9: %r" % (tid, r))
    for tid in canceled:
        t = srv.task(tid)
        check(t["status"] == "canceled", "task canceled (200) before kill -9 is %s after restart" % t["status"])
    r = srv.post("/v1/tasks", {"task_type": "echo", "params": {"message": "k"}},
                 headers={"Idempotency-Key": "dur-key"})
    check(r.status in (200, 202) and r.json.get("id") == key_task["id"],
          "idempotency key forgotten after kill -9: %r" % r)
    for tid in ids[5:] + [done["id"], blocker["id"]]:
        t = srv.wait_terminal(tid, 15)
        check(t["status"] == "succeeded", "task %s ended %s after restart" % (tid, t["status"]))
    for tid in canceled:
        t = srv.task(tid)
        check(t["status"] == "canceled" and t["attempts"] == 0,
              "canceled task ran after restart: %s attempts %s" % (t["status"], t["attempts"]))


@case(own=True)
def test_sigterm_grace_expired_requeues(ctx):
    """A task still running when the grace period ends is handed back and runs again later."""
    srv = ctx.new_server(["--grace-period", "1", "--retry-base-ms", "10"], name="grace")
    srv.start()
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "delay_ms": 4000,
                                     "steps": 4})
    pend = [srv.create("echo", {"message": "p%d" % i}) for i in range(3)]
    srv.wait_status(t["id"], "processing", 5)
    # open client connections must not hold the shutdown up: an event stream and an idle
    # kept-alive connection
    stream = SSEStream(srv.port, "/v1/tasks/%s/events" % t["id"])
    idle = http.client.HTTPConnection(HOST, srv.port, timeout=10)
    idle.request("GET", "/health")
    idle.getresponse().read()
    t0 = time.time()
    srv.signal(signal.SIGTERM)
    exited = srv.wait_exit(10)
    stream.close()
    idle.close()
    check(exited, "server still running 10 s after SIGTERM (grace period 1) with an open event "
          "stream and an idle connection")
    took = time.time() - t0
    check(took < 3.0, "exit took %.1fs with --grace-period 1 (task needed 4 s)" % took)
    srv.start()
    d = srv.wait_terminal(t["id"], 10)
    check(d["status"] == "succeeded", "task interrupted by the grace period ended %s (%s)"
          % (d["status"], d["error"]))
    check(d["attempts"] >= 2, "re-run task shows attempts %s" % d["attempts"])
    for p in pend:
        check(srv.wait_terminal(p["id"], 10)["status"] == "succeeded", "pending task lost in drain")

"""GET /metrics (Prometheus text format 0.0.4, checked by promtool), the counters moving by
exact amounts after successes, retries and failures, --metrics 0, provider calls against a
fake API, and the logs: one access line per request and the request id from X-Request-Id
into the response, the task and the task's log lines."""
import re
import shutil
import subprocess
import time

from harness import case, check, short

ARGS = ["--retry-base-ms", "10", "--retry-max-ms", "50"]
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(srv):
    r = srv.get("/metrics")
    check(r.status == 200, "GET /metrics: %r" % r)
    check(r.headers.get("content-type") == EXPOSITION,
          "content type %r" % r.headers.get("content-type"))
    return r.body.decode("utf-8")


def promtool_ok(text):
    """promtool check metrics: exit 0 and no lint complaint at all."""
    tool = shutil.which("promtool")
    check(tool, "promtool not found (Debian package prometheus: sh tools/deps.sh test)")
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    check(p.returncode == 0 and not out,
          "promtool check metrics: exit %d: %s" % (p.returncode, short(out, 800)))


def samples(text):
    """{(name, frozenset(labels.items())): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "not a sample line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def family_total(s, name):
    return sum(v for (n, _), v in s.items() if n == name)


def settle(srv, name, want, timeout=5, **labels):
    """The outcome counters move on the finisher thread, just after the task reads terminal."""
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = value(samples(scrape(srv)), name, **labels)
        if got == want:
            return
        time.sleep(0.05)
    check(False, "%s%r = %r, expected %r" % (name, labels, got, want))


@case(args=ARGS)
def test_metrics_counts_exactly(ctx):
    srv = ctx.srv
    before = samples(scrape(srv))
    for i in range(3):
        srv.wait_terminal(srv.create("echo", {"message": "m%d" % i})["id"])
    once = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64,
                                        "fail_times": 1}, max_retries=3)
    never = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64,
                                         "fail_times": 5}, max_retries=1)
    d1, d2 = srv.wait_terminal(once["id"]), srv.wait_terminal(never["id"])
    check(d1["status"] == "succeeded" and d1["attempts"] == 2, "fail_times=1: %r" % d1)
    check(d2["status"] == "failed" and d2["attempts"] == 2, "fail_times=5: %r" % d2)
    prov = d1["provider"]
    tti = {"task_type": "text-to-image", "provider": prov}
    echo = {"task_type": "echo", "provider": "echo"}
    settle(srv, "genpulse_tasks_finished_total", 1, outcome="failed", **tti)
    srv.get("/no/such/route/01234567-secret?key=hunter2")
    text = scrape(srv)
    promtool_ok(text)
    s = samples(text)

    def moved(name, **labels):
        return value(s, name, **labels) - value(before, name, **labels)

    want = [
        ("genpulse_tasks_created_total", echo, 3),
        ("genpulse_tasks_created_total", tti, 2),
        ("genpulse_tasks_finished_total", dict(echo, outcome="succeeded"), 3),
        ("genpulse_tasks_finished_total", dict(tti, outcome="succeeded"), 1),
        ("genpulse_tasks_finished_total", dict(tti, outcome="failed"), 1),
        ("genpulse_task_retries_total", echo, 0),
        ("genpulse_task_retries_total", tti, 2),  # one each: 1 before success, 1 before giving up
        ("genpulse_task_run_seconds_count", echo, 3),
        ("genpulse_task_run_seconds_count", tti, 4),
        ("genpulse_task_queue_wait_seconds_count", tti, 4),
        ("genpulse_http_requests_total", {"method": "POST", "route": "/v1/tasks",
                                          "status": "202"}, 5),
        ("genpulse_http_requests_total", {"method": "GET", "route": "unmatched",
                                          "status": "404"}, 1),
    ]
    for name, labels, n in want:
        got = moved(name, **labels)
        check(got == n, "%s%r moved by %r, expected %r" % (name, labels, got, n))
    # le="+Inf" equals _count; buckets never decrease
    for (name, labels), v in s.items():
        if name.endswith("_bucket") and ("le", "+Inf") in labels:
            base = frozenset(kv for kv in labels if kv[0] != "le")
            count = s.get((name[:-len("_bucket")] + "_count", base))
            check(count == v, "%s%r +Inf %r != _count %r" % (name, set(labels), v, count))
    check(value(s, "genpulse_commit_batch_size_count") >= 1, "no commit batch observed")
    check(value(s, "genpulse_commit_batch_size_sum") >= value(s, "genpulse_commit_batch_size_count"),
          "commit batches smaller than one op")
    check(value(s, "genpulse_worker_slots") >= 1, "no worker slots")
    check(value(s, "genpulse_worker_slots_busy") == 0, "busy slots while idle")
    check(family_total(s, "genpulse_queue_depth") == 0, "queue not empty while idle")
    check(value(s, "genpulse_build_info", version=srv.get("/").json["version"]) == 1,
          "build_info")
    check(abs(value(s, "process_start_time_seconds") - time.time()) < 600, "process start time")
    # cardinality: no raw path, id or query string ever becomes a label value
    for bad in ("01234567-secret", "hunter2", once["id"], "/no/such"):
        check(bad not in text, "%r appears in /metrics" % bad)


@case(args=ARGS + ["--metrics", "0"])
def test_metrics_off_counts_nothing(ctx):
    srv = ctx.srv
    srv.wait_terminal(srv.create("echo", {"message": "x"})["id"])
    text = scrape(srv)
    promtool_ok(text)
    s = samples(text)
    for name in ("genpulse_tasks_created_total", "genpulse_tasks_finished_total",
                 "genpulse_http_requests_total", "genpulse_commit_batch_size_count"):
        check(family_total(s, name) == 0, "%s counted with --metrics 0" % name)
    check(value(s, "genpulse_worker_slots") >= 1, "scrape-time gauges missing with --metrics 0")


@case(args=ARGS)
def test_request_id_travels(ctx):
    srv = ctx.srv
    rid = "req-Client.42:abc_9"
    body = {"task_type": "text-to-image", "params": {"prompt": "x", "width": 64, "height": 64,
                                                     "fail_times": 1}, "max_retries": 2}
    r = srv.post("/v1/tasks", body, headers={"X-Request-Id": rid})
    check(r.status == 202, "create: %r" % r)
    check(r.headers.get("x-request-id") == rid, "X-Request-Id echoed as %r"
          % r.headers.get("x-request-id"))
    t = r.json
    check(t.get("request_id") == rid, "task request_id %r" % t.get("request_id"))
    check("_request_id" not in t["params"], "params show the request id: %r" % t["params"])
    done = srv.wait_terminal(t["id"])
    check(done["status"] == "succeeded" and done.get("request_id") == rid, "done: %r" % done)
    # the retry line comes from the worker, for the task, with the request id
    deadline = time.time() + 5
    while time.time() < deadline:
        log = srv.stderr_text()
        worker_lines = [ln for ln in log.splitlines()
                        if "task=%s" % t["id"] in ln and "retry in" in ln]
        if worker_lines:
            break
        time.sleep(0.05)
    check(worker_lines and all("req=%s" % rid in ln for ln in worker_lines),
          "worker lines without req=%s: %r" % (rid, worker_lines))
    # anything not short and plain is replaced by a fresh id
    for bad in ("x" * 65, "has space", "semi;colon", "new\u00e9"):
        r = srv.get("/health", headers={"X-Request-Id": bad})
        got = r.headers.get("x-request-id", "")
        check(got != bad and re.fullmatch(r"[0-9a-f-]{36}", got),
              "X-Request-Id %r answered with %r" % (bad, got))
    r = srv.get("/v1/tasks?status=failed&token=hunter2", headers={"X-Request-Id": "list-1"})
    check(r.status == 200, "list: %r" % r)
    deadline = time.time() + 5
    access = []
    while time.time() < deadline and not access:
        access = [ln for ln in srv.stderr_text().splitlines() if "req=list-1 " in ln]
        time.sleep(0.05)
    check(len(access) == 1, "expected one access line for list-1: %r" % access)
    line = access[0]
    for part in ("access method=GET route=/v1/tasks status=200 duration_ms=", "user="):
        check(part in line, "access line lacks %r: %r" % (part, line))
    check("hunter2" not in srv.stderr_text() and "status=failed" not in line,
          "the query string was logged: %r" % line)
    create_lines = [ln for ln in srv.stderr_text().splitlines()
                    if "req=%s access method=POST route=/v1/tasks status=202" % rid in ln]
    check(len(create_lines) == 1, "access line of the create: %r" % create_lines)


@case(own=True)
def test_metrics_provider_calls(ctx):
    from test_provider_openai import params, start_openai
    fake, srv = start_openai(ctx, fail_429=2, retry_after=1)
    t = srv.create("text-to-image", params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "openai task: %r" % done)
    text = scrape(srv)
    promtool_ok(text)
    s = samples(text)
    check(value(s, "genpulse_provider_requests_total", provider="openai", code="2xx") == 1,
          "provider requests: %r" % {k: v for k, v in s.items() if "provider_" in k[0]})
    check(value(s, "genpulse_provider_retries_total", provider="openai") == 2, "retries")
    check(value(s, "genpulse_provider_rate_limited_total", provider="openai") == 2, "429s")


@case(own=True)
def test_metrics_queue_depth_on_redis(ctx):
    """A gateway with no worker: what it queues shows up by kombu band, read from Redis."""
    from harness import Skip
    from test_distributed import PG, REDIS, _env, _worker
    if not (PG and REDIS):
        raise Skip("no GENPULSE_TEST_PG_URL / GENPULSE_TEST_REDIS_URL")
    env = _env()
    gw = ctx.new_server(name="api", env=env, command="api").start()
    base = samples(scrape(gw))
    bands = {"0": 0, "1-3": 0, "4-6": 0, "7-9": 0}

    def band(p):
        return "0" if p == 0 else "1-3" if p <= 3 else "4-6" if p <= 6 else "7-9"

    ids = []
    for prio in (0, 2, 5, 5, 9):
        t = gw.create("echo", {"message": "p%d" % prio}, priority=prio)
        ids.append(t["id"])
        bands[band(t["priority"])] += 1
    text = scrape(gw)
    promtool_ok(text)
    s = samples(text)
    for b, n in bands.items():
        got = value(s, "genpulse_queue_depth", priority=b) - value(base, "genpulse_queue_depth",
                                                                    priority=b)
        check(got == n, "queue depth band %s grew by %r, expected %r" % (b, got, n))
    check(value(s, "genpulse_worker_slots") == 0, "a gateway-only process reports worker slots")
    # a worker drains them, so later tests start from an empty queue
    _worker(ctx, gw, env=env)
    for tid in ids:
        check(gw.wait_terminal(tid, 20)["status"] == "succeeded", "task %s" % tid)


@case(args=ARGS)
def test_metrics_needs_admin_once_keys_exist(ctx):
    """Open loopback server: anyone. With a key: 401 without one, 403 for a tasks key,
    200 for an admin key (Prometheus' bearer token)."""
    from harness import check_error
    from test_identity import auth, new_user_key
    srv = ctx.srv
    scrape(srv)
    _, user_key = new_user_key(srv, "u@example.com")
    _, admin_key = new_user_key(srv, "ops@example.com", scopes="admin")
    deadline = time.time() + 10  # the open-server decision is cached for a few seconds
    while time.time() < deadline and srv.get("/metrics").status == 200:
        time.sleep(0.2)
    check_error(srv.get("/metrics"), 401, "unauthenticated", what="no key")
    check_error(srv.get("/metrics", headers=auth(user_key)), 403, "insufficient_scope",
                what="tasks key")
    r = srv.get("/metrics", headers=auth(admin_key))
    check(r.status == 200 and r.headers.get("content-type") == EXPOSITION, "admin key: %r" % r)
    promtool_ok(r.body.decode())
    s = samples(r.body.decode())
    check(value(s, "genpulse_http_requests_total", method="GET", route="/metrics",
                status="401") >= 1, "the 401s are not counted")


@case(args=ARGS + ["--log-format", "json"])
def test_metrics_sse_streams_and_json_logs(ctx):
    import json
    from harness import SSEStream
    srv = ctx.srv
    t = srv.create("text-to-image", {"prompt": "x", "width": 64, "height": 64, "steps": 4,
                                     "delay_ms": 3000}, headers={"X-Request-Id": "sse-1"})
    streams = [SSEStream(srv.port, "/v1/tasks/%s/events" % t["id"]) for _ in range(2)]
    check(value(samples(scrape(srv)), "genpulse_sse_streams") == 2, "two streams open")
    streams[0].close()
    deadline = time.time() + 5
    while time.time() < deadline and value(samples(scrape(srv)), "genpulse_sse_streams") != 1:
        time.sleep(0.05)
    check(value(samples(scrape(srv)), "genpulse_sse_streams") == 1, "one stream left open")
    streams[1].read_body(time.time() + 15)  # the stream ends with the task
    streams[1].close()
    deadline = time.time() + 5
    while time.time() < deadline and value(samples(scrape(srv)), "genpulse_sse_streams") != 0:
        time.sleep(0.05)
    s = samples(scrape(srv))
    check(value(s, "genpulse_sse_streams") == 0, "streams still counted open")
    check(value(s, "genpulse_http_request_duration_seconds_count", method="GET",
                route="/v1/tasks/{}/events") == 2, "the streams' durations")
    lines = [json.loads(ln) for ln in srv.stderr_text().splitlines() if ln.startswith("{")]
    mine = [o for o in lines if o.get("request_id") == "sse-1"]
    check(any("access method=POST route=/v1/tasks status=202" in o["msg"] for o in mine),
          "no JSON access line with request_id: %r" % mine)

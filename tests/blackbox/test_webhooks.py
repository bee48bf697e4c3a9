"""Webhooks (Standard Webhooks): per-task webhooks and per-user endpoints delivered to a
receiver in this process, signatures checked independently (a hand-written HMAC and the
official npm `standardwebhooks` 1.1.1 from tests/clients/webhooks), the event filter,
retries on 500 with a stable webhook-id, 410 disabling an endpoint, kill -9 mid-delivery,
the SSRF refusal, resend and isolation between users. Every case runs on SQLite and, when
tools/test-services.sh's env is loaded (GENPULSE_TEST_PG_URL), on PostgreSQL (a fresh
database per case)."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse

from harness import BIN, Skip, case, check, check_error, npm_ci, short

PG = os.environ.get("GENPULSE_TEST_PG_URL")
CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "webhooks")
FAST = ["--webhook-retry-scale", "0.001", "--webhook-poll-ms", "100", "--retry-base-ms", "10"]


# ---- a receiver -------------------------------------------------------------------------

class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST. plan[path] = list of statuses to
    answer in turn (the last one repeats); "stall" holds the request until release()."""

    def __init__(self):
        self.calls = []
        self.plan = {}
        self.lock = threading.Lock()
        self.stall = threading.Event()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                with recv.lock:
                    recv.calls.append({"path": self.path, "body": body, "at": time.time(),
                                       "headers": {k.lower(): v for k, v in self.headers.items()}})
                    plan = recv.plan.get(self.path, [200])
                    status = plan.pop(0) if len(plan) > 1 else plan[0]
                if status == "stall":
                    recv.stall.wait(60)
                    status = 200
                body = b"ok"
                if status == "big":  # 1 MiB of answer: read up to the cap, the 200 counts
                    status, body = 200, b"\x01<big>" + b"x" * (1 << 20)
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", recv.url("/redirected"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def on(self, path, *statuses):
        with self.lock:
            self.plan[path] = list(statuses)

    def got(self, path=None, task_id=None, type_=None):
        with self.lock:
            calls = list(self.calls)
        out = []
        for c in calls:
            if path and c["path"] != path:
                continue
            j = json.loads(c["body"])
            c["json"] = j
            data = j.get("data", j) if isinstance(j, dict) else {}
            if task_id and data.get("id") != task_id:
                continue
            if type_ and j.get("type") != type_:
                continue
            out.append(c)
        return out

    def wait(self, n, timeout=15, **kw):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.got(**kw)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError("receiver: %d of %d expected calls %r within %ss (all: %s)" % (
            len(self.got(**kw)), n, kw, timeout, short(repr([(c["path"], c["body"][:80])
                                                             for c in self.got()]), 1500)))

    def close(self):
        self.stall.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- signature checks --------------------------------------------------------------------

def py_verify(secret, headers, body):
    """The Standard Webhooks check written out: HMAC-SHA256 over id.timestamp.body."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = ("%s.%s." % (headers["webhook-id"], headers["webhook-timestamp"])).encode() + body
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ") if s.startswith("v1,")]
    check(any(hmac.compare_digest(want, s) for s in sigs),
          "signature %r does not verify (want v1,%s)" % (headers["webhook-signature"], want))
    check(abs(int(headers["webhook-timestamp"]) - time.time()) < 300, "stale webhook-timestamp")


def node_verify(items):
    """items: [(secret, headers, body)] checked by the official library; skipped only without
    node (an install failure is a test failure)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node missing: official-library check skipped"
    npm_ci(CLIENT_DIR)
    payload = [{"secret": s, "headers": {k: h[k] for k in ("webhook-id", "webhook-timestamp",
                                                           "webhook-signature")},
                "body": b.decode()} for s, h, b in items]
    p = subprocess.run(["node", os.path.join(CLIENT_DIR, "verify.mjs")], cwd=CLIENT_DIR,
                       input=json.dumps(payload).encode(), capture_output=True, timeout=60)
    check(p.returncode == 0, "verify.mjs: %s" % p.stderr.decode()[-400:])
    out = json.loads(p.stdout)
    for i, r in enumerate(out):
        check(r["ok"], "standardwebhooks rejected delivery %d: %s" % (i, r.get("error")))
    return None


# ---- servers on either store --------------------------------------------------------------

_db_seq = [0]


def _fresh_pg_url():
    _db_seq[0] += 1
    name = "gp_wh_%d_%d" % (os.getpid(), _db_seq[0])
    p = subprocess.run(["psql", PG, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE %s" % name],
                       capture_output=True, timeout=30)
    check(p.returncode == 0, "CREATE DATABASE: %s" % p.stderr.decode()[-300:])
    u = urllib.parse.urlsplit(PG)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


class Env:
    def __init__(self, ctx, backend, args=(), private=True):
        if backend == "pg" and not PG:
            raise Skip("no GENPULSE_TEST_PG_URL (tools/test-services.sh env)")
        self.ctx = ctx
        self.env = {"GENPULSE_DATABASE_URL": _fresh_pg_url()} if backend == "pg" else {}
        self.args = FAST + (["--webhook-allow-private", "1"] if private else []) + list(args)
        self.srv = ctx.new_server(self.args, env=self.env, name="webhooks-" + backend).start()
        self.recv = Receiver()
        ctx.cleanups = getattr(ctx, "cleanups", [])

    def restart(self):
        s = self.ctx.new_server(self.args, data_dir=self.srv.data_dir, env=self.env,
                                name="webhooks-again")
        self.srv = s.start()
        return s

    def cli(self, *args):
        p = subprocess.run([BIN] + list(args) + ["--data-dir", self.srv.data_dir],
                           capture_output=True, timeout=30,
                           env=dict(os.environ, ASAN_OPTIONS="abort_on_error=0", **self.env))
        check(p.returncode == 0, "genpulse %s: %s" % (" ".join(args), p.stderr.decode()[-400:]))
        return json.loads(p.stdout.decode()) if p.stdout.strip() else None

    def user_key(self, email, scopes="tasks:read,tasks:write"):
        self.cli("users", "create", "--email", email, "--plan", "pro")
        return self.cli("keys", "create", "--user", email, "--scopes", scopes)["key"]


def H(key):
    return {"Authorization": "Bearer " + key} if key else {}


def create(srv, key=None, expect=202, **body):
    body.setdefault("task_type", "echo")
    body.setdefault("params", {"message": "hi"})
    r = srv.post("/v1/tasks", body, headers=H(key))
    check(r.status == expect, "POST /v1/tasks: expected %d, got %r" % (expect, r))
    return r.json


def default_secret(srv, key=None):
    r = srv.get("/v1/webhooks/default/secret", headers=H(key))
    check(r.status == 200 and r.json["key"].startswith("whsec_"), "default secret: %r" % r)
    return r.json["key"]


def deliveries(srv, key=None, **q):
    qs = urllib.parse.urlencode(q)
    r = srv.get("/v1/webhook-deliveries" + ("?" + qs if qs else ""), headers=H(key))
    check(r.status == 200, "GET /v1/webhook-deliveries: %r" % r)
    return r.json["data"]


def wait_delivery(srv, pred, timeout=15, key=None, **q):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = deliveries(srv, key, **q)
        hit = [d for d in last if pred(d)]
        if hit:
            return hit[0]
        time.sleep(0.1)
    raise AssertionError("no delivery matching within %ss: %s" % (timeout, short(repr(last), 1500)))


def delivery(srv, id_, key=None):
    r = srv.get("/v1/webhook-deliveries/" + id_, headers=H(key))
    check(r.status == 200, "GET delivery: %r" % r)
    return r.json


def both(fn):
    """Registers fn as two cases: NAME_sqlite and NAME_pg."""
    for backend in ("sqlite", "pg"):
        def run(ctx, backend=backend):
            e = None
            try:
                e = fn(ctx, backend)
            finally:
                for r in getattr(ctx, "receivers", []):
                    r.close()
        run.__name__ = "%s_%s" % (fn.__name__, backend)
        case(own=True)(run)
    return fn


def env_of(ctx, backend, **kw):
    e = Env(ctx, backend, **kw)
    ctx.receivers = getattr(ctx, "receivers", []) + [e.recv]
    return e


# ---- cases --------------------------------------------------------------------------------

def test_webhooks_task_signed(ctx, backend):
    e = env_of(ctx, backend)
    t = create(e.srv, webhook=e.recv.url("/task"))
    calls = e.recv.wait(2, path="/task")
    # Deliveries run in parallel: the envelope's timestamp (the event's time) orders them.
    calls.sort(key=lambda c: c["json"]["timestamp"])
    types = [c["json"]["type"] for c in calls]
    check(types == ["task.started", "task.succeeded"], "event order %r" % types)
    secret = default_secret(e.srv)
    for c in calls:
        j, h = c["json"], c["headers"]
        check(h["webhook-id"].startswith("msg_"), "webhook-id %r" % h["webhook-id"])
        check(h.get("content-type") == "application/json", "content-type %r" % h.get("content-type"))
        check(set(j) == {"type", "timestamp", "data"}, "envelope keys %r" % sorted(j))
        check(j["data"]["id"] == t["id"], "data.id")
        py_verify(secret, h, c["body"])
    check(calls[1]["json"]["data"]["status"] == "succeeded", "completed body shows the end")
    skipped = node_verify([(secret, c["headers"], c["body"]) for c in calls])
    # The deliveries are listed with their outcome, newest first.
    ds = deliveries(e.srv, task_id=t["id"])
    check([d["event_type"] for d in ds] == ["task.succeeded", "task.started"], "list %r" % ds)
    check(all(d["status"] == "succeeded" and d["attempts"] == 1 and d["last_status_code"] == 200
              and d["endpoint_id"] is None for d in ds), "delivery rows %r" % ds)
    check({d["id"] for d in ds} == {c["headers"]["webhook-id"] for c in calls}, "ids match")
    # A wrong secret does not verify (the check is real).
    try:
        py_verify("whsec_" + base64.b64encode(b"x" * 32).decode(), calls[0]["headers"],
                  calls[0]["body"])
        raise AssertionError("a wrong secret verified")
    except AssertionError as ex:
        check("does not verify" in str(ex), str(ex))
    if skipped:
        print(skipped)


def test_webhooks_filter(ctx, backend):
    e = env_of(ctx, backend)
    t = create(e.srv, webhook=e.recv.url("/f"), webhook_events_filter=["completed"])
    create(e.srv, webhook=e.recv.url("/start"), webhook_events_filter=["start"])
    e.recv.wait(1, path="/f")
    e.recv.wait(1, path="/start")
    time.sleep(0.5)
    check([c["json"]["type"] for c in e.recv.got(path="/f")] == ["task.succeeded"], "completed only")
    check([c["json"]["type"] for c in e.recv.got(path="/start")] == ["task.started"], "start only")
    check(len(deliveries(e.srv, task_id=t["id"])) == 1, "one delivery row")
    # A failing task ends "task.failed" (completed covers it).
    create(e.srv, task_type="text-to-image", params={"prompt": "x", "width": 64, "height": 64,
                                                     "fail": "boom"},
           webhook=e.recv.url("/fail"), webhook_events_filter=["completed"], max_retries=0)
    got = e.recv.wait(1, path="/fail")
    check(got[0]["json"]["type"] == "task.failed", "type %r" % got[0]["json"]["type"])
    # Progress makes task.logs events, at most one per 500 ms, never retried.
    t = create(e.srv, task_type="text-to-image", params={"prompt": "x", "width": 64, "height": 64,
                                                         "steps": 20, "delay_ms": 1500},
               webhook=e.recv.url("/logs"), webhook_events_filter=["logs"])
    deadline = time.time() + 15
    while time.time() < deadline and e.srv.task(t["id"])["status"] not in ("succeeded", "failed"):
        time.sleep(0.1)
    time.sleep(0.5)
    logs = e.recv.got(path="/logs")
    check(1 <= len(logs) <= 5, "%d task.logs deliveries for a 1.5 s task" % len(logs))
    check(all(c["json"]["type"] == "task.logs" for c in logs), "types %r" % [c["json"]["type"]
                                                                       for c in logs])


def test_webhooks_endpoint(ctx, backend):
    e = env_of(ctx, backend)
    srv = e.srv
    # Validation, with field paths.
    for body, field in [({"url": "ftp://x"}, "body.url"), ({}, "body.url"),
                        ({"url": "http://127.0.0.1/", "event_types": ["task.nope"]},
                         "body.event_types[0]"),
                        ({"url": "http://127.0.0.1/", "event_types": []}, "body.event_types"),
                        ({"url": "http://127.0.0.1/", "colour": 1}, "body.colour"),
                        ({"url": "http://127.0.0.1/", "description": "d" * 600}, "body.description"),
                        ({"url": "http://127.0.0.1/", "disabled": "no"}, "body.disabled")]:
        check_error(srv.post("/v1/webhooks", body), 422, "validation_error", fields=(field,))
    r = srv.post("/v1/webhooks", {"url": e.recv.url("/ep"), "description": "mine",
                                  "event_types": ["task.succeeded", "task.failed"]})
    check(r.status == 201 and r.json["secret"].startswith("whsec_"), "create: %r" % r)
    ep = r.json
    check(ep["event_types"] == ["task.succeeded", "task.failed"] and not ep["disabled"], "%r" % ep)
    g = srv.get("/v1/webhooks/" + ep["id"])
    check(g.status == 200 and "secret" not in g.json and g.json["url"] == e.recv.url("/ep"), "%r" % g)
    check(srv.get("/v1/webhooks/%s/secret" % ep["id"]).json["key"] == ep["secret"], "secret route")
    check([x["id"] for x in srv.get("/v1/webhooks").json["data"]] == [ep["id"]], "list")
    t = create(srv)
    got = e.recv.wait(1, path="/ep", task_id=t["id"])
    check(got[0]["json"]["type"] == "task.succeeded", "subscribed type only")
    py_verify(ep["secret"], got[0]["headers"], got[0]["body"])
    d = wait_delivery(srv, lambda d: d["status"] == "succeeded", endpoint_id=ep["id"])
    check(d["endpoint_id"] == ep["id"] and d["task_id"] == t["id"], "row %r" % d)
    # Rotation: the next delivery is signed with the new secret.
    rot = srv.post("/v1/webhooks/%s/rotate-secret" % ep["id"], None)
    check(rot.status == 200 and rot.json["key"] != ep["secret"], "rotate %r" % rot)
    t2 = create(srv)
    got2 = e.recv.wait(1, path="/ep", task_id=t2["id"])
    py_verify(rot.json["key"], got2[0]["headers"], got2[0]["body"])
    skipped = node_verify([(ep["secret"], got[0]["headers"], got[0]["body"]),
                           (rot.json["key"], got2[0]["headers"], got2[0]["body"])])
    # PATCH: subscribe to started too, then disable; a disabled endpoint gets nothing.
    p = srv.req("PATCH", "/v1/webhooks/" + ep["id"], {"event_types": ["task.started"]})
    check(p.status == 200 and p.json["event_types"] == ["task.started"], "patch %r" % p)
    t3 = create(srv)
    got3 = e.recv.wait(1, path="/ep", task_id=t3["id"])
    check(got3[0]["json"]["type"] == "task.started", "patched types")
    p = srv.req("PATCH", "/v1/webhooks/" + ep["id"], {"disabled": True})
    check(p.status == 200 and p.json["disabled"], "disable %r" % p)
    t4 = create(srv)
    time.sleep(1)
    check(not e.recv.got(path="/ep", task_id=t4["id"]), "disabled endpoint got a delivery")
    r = srv.req("DELETE", "/v1/webhooks/" + ep["id"])
    check(r.status == 204, "delete %r" % r)
    check(srv.get("/v1/webhooks/" + ep["id"]).status == 404, "deleted")
    if skipped:
        print(skipped)


def test_webhooks_retries(ctx, backend):
    e = env_of(ctx, backend)
    e.recv.on("/flaky", 500, 500, 200)
    t = create(e.srv, webhook=e.recv.url("/flaky"), webhook_events_filter=["completed"])
    calls = e.recv.wait(3, path="/flaky", timeout=20)
    ids = {c["headers"]["webhook-id"] for c in calls}
    check(len(ids) == 1, "webhook-id changed across retries: %r" % ids)
    check(len({c["body"] for c in calls}) == 1, "the body changed across retries")
    gaps = [calls[i + 1]["at"] - calls[i]["at"] for i in range(2)]
    # Scaled schedule: 5 s, 5 min -> 5 ms, 300 ms (±10 %), seen through a 100 ms poll.
    check(gaps[1] >= 0.25 and gaps[1] > gaps[0], "no exponential backoff: gaps %r" % gaps)
    secret = default_secret(e.srv)
    for c in calls:
        py_verify(secret, c["headers"], c["body"])
    d = wait_delivery(e.srv, lambda d: d["status"] == "succeeded", task_id=t["id"])
    full = delivery(e.srv, d["id"])
    codes = [a["status_code"] for a in full["attempt_list"]]
    check(codes == [500, 500, 200] and full["attempts"] == 3, "attempts %r" % full["attempt_list"])
    check(full["attempt_list"][0]["error"] == "HTTP 500" and full["attempt_list"][0]["response"] == "ok",
          "attempt row %r" % full["attempt_list"][0])
    check(full["payload"]["type"] == "task.succeeded", "payload kept")


def test_webhooks_redirect_and_big_answer(ctx, backend):
    e = env_of(ctx, backend)
    e.recv.on("/redir", 302)
    e.recv.on("/big", "big")
    t1 = create(e.srv, webhook=e.recv.url("/redir"), webhook_events_filter=["completed"])
    t2 = create(e.srv, webhook=e.recv.url("/big"), webhook_events_filter=["completed"])
    e.recv.wait(1, path="/redir")
    d1 = wait_delivery(e.srv, lambda d: d["attempts"] >= 1, task_id=t1["id"])
    full = delivery(e.srv, d1["id"])
    a = full["attempt_list"][0]
    check(a["status_code"] == 302 and "redirect" in (a["error"] or ""), "3xx attempt %r" % a)
    check(full["status"] == "pending", "a 3xx is retried: %r" % full["status"])
    time.sleep(0.3)
    check(not e.recv.got(path="/redirected"), "the redirect was followed")
    d2 = wait_delivery(e.srv, lambda d: d["status"] == "succeeded", task_id=t2["id"])
    a2 = delivery(e.srv, d2["id"])["attempt_list"][0]
    check(a2["status_code"] == 200 and a2["error"] is None, "big answer attempt %r" % a2)
    check(a2["response"].startswith("?<big>xxx") and len(a2["response"]) == 1024,
          "excerpt %r…(%d)" % (a2["response"][:20], len(a2["response"])))


def test_webhooks_gone_disables(ctx, backend):
    e = env_of(ctx, backend)
    e.recv.on("/gone", 410)
    ep = e.srv.post("/v1/webhooks", {"url": e.recv.url("/gone"),
                                     "event_types": ["task.succeeded"]}).json
    create(e.srv)
    e.recv.wait(1, path="/gone")
    deadline = time.time() + 10
    while time.time() < deadline:
        g = e.srv.get("/v1/webhooks/" + ep["id"]).json
        if g["disabled"]:
            break
        time.sleep(0.1)
    check(g["disabled"] and "410" in (g["disabled_reason"] or ""), "endpoint %r" % g)
    d = wait_delivery(e.srv, lambda d: d["status"] == "failed", endpoint_id=ep["id"])
    check(d["attempts"] == 1 and d["last_status_code"] == 410, "no retry after 410: %r" % d)
    create(e.srv)
    time.sleep(1)
    check(len(e.recv.got(path="/gone")) == 1, "a disabled endpoint got another delivery")


def test_webhooks_kill9_mid_delivery(ctx, backend):
    e = env_of(ctx, backend)
    e.recv.on("/slow", "stall", 200)
    t = create(e.srv, webhook=e.recv.url("/slow"), webhook_events_filter=["completed"])
    first = e.recv.wait(1, path="/slow")
    e.srv.kill9()  # the receiver holds the request: the attempt is in flight
    e.recv.stall.set()
    e.restart()
    # SQLite ends the dead process's leases at start; PostgreSQL waits for the lease (20 s).
    calls = e.recv.wait(2, path="/slow", timeout=40)
    check(calls[1]["headers"]["webhook-id"] == first[0]["headers"]["webhook-id"], "same id")
    d = wait_delivery(e.srv, lambda d: d["status"] == "succeeded", task_id=t["id"], timeout=10)
    check(d["id"] == first[0]["headers"]["webhook-id"], "row %r" % d)


def test_webhooks_ssrf_refused(ctx, backend):
    e = env_of(ctx, backend, private=False)
    t = create(e.srv, webhook=e.recv.url("/ssrf"), webhook_events_filter=["completed"])
    d = wait_delivery(e.srv, lambda d: d["attempts"] >= 1, task_id=t["id"])
    full = delivery(e.srv, d["id"])
    err = full["attempt_list"][0]["error"] or ""
    check("refused" in err and "private" in err, "attempt error %r" % err)
    check(full["attempt_list"][0]["status_code"] is None, "an HTTP status without a connection")
    time.sleep(0.5)
    check(not e.recv.got(path="/ssrf"), "the receiver on 127.0.0.1 was reached")


def test_webhooks_resend(ctx, backend):
    e = env_of(ctx, backend)
    t = create(e.srv, webhook=e.recv.url("/again"), webhook_events_filter=["completed"])
    first = e.recv.wait(1, path="/again")
    d = wait_delivery(e.srv, lambda d: d["status"] == "succeeded", task_id=t["id"])
    r = e.srv.post("/v1/webhook-deliveries/%s/resend" % d["id"], None)
    check(r.status == 202 and r.json["id"] == d["id"], "resend %r" % r)
    calls = e.recv.wait(2, path="/again")
    check(calls[1]["headers"]["webhook-id"] == first[0]["headers"]["webhook-id"], "same id")
    check(calls[1]["body"] == first[0]["body"], "same body")
    py_verify(default_secret(e.srv), calls[1]["headers"], calls[1]["body"])
    d2 = wait_delivery(e.srv, lambda x: x["attempts"] == 2 and x["status"] == "succeeded",
                       task_id=t["id"])
    check(len(delivery(e.srv, d2["id"])["attempt_list"]) == 2, "two attempts listed")
    check(e.srv.post("/v1/webhook-deliveries/msg_nope/resend", None).status == 404, "unknown id")
    check_error(e.srv.get("/v1/webhook-deliveries?status=weird"), 422, "validation_error",
                fields=("status",))
    check_error(e.srv.get("/v1/webhook-deliveries?limit=0"), 422, "validation_error",
                fields=("limit",))


def test_webhooks_isolation(ctx, backend):
    e = env_of(ctx, backend, args=["--auth", "keys"])
    ka = e.user_key("wa@example.com")
    kb = e.user_key("wb@example.com")
    kr = e.user_key("wr@example.com", scopes="tasks:read")
    ep = e.srv.post("/v1/webhooks", {"url": e.recv.url("/a")}, headers=H(ka))
    check(ep.status == 201, "create %r" % ep)
    ep = ep.json
    check(e.srv.post("/v1/webhooks", {"url": e.recv.url("/r")}, headers=H(kr)).status == 403,
          "tasks:read cannot create endpoints")
    t = create(e.srv, ka, webhook=e.recv.url("/ta"))
    e.recv.wait(1, path="/a", task_id=t["id"], type_="task.succeeded")
    e.recv.wait(2, path="/ta")
    sa, sb = default_secret(e.srv, ka), default_secret(e.srv, kb)
    check(sa != sb, "two users share a default secret")
    check(default_secret(e.srv, ka) == sa, "the default secret is stable")
    for c in e.recv.got(path="/ta"):
        py_verify(sa, c["headers"], c["body"])
    da = deliveries(e.srv, ka)
    check(da and all(d["owner"] != "" for d in da), "A sees its deliveries")
    check(deliveries(e.srv, kb) == [], "B sees A's deliveries")
    for path in ("/v1/webhooks/" + ep["id"], "/v1/webhooks/%s/secret" % ep["id"],
                 "/v1/webhook-deliveries/" + da[0]["id"]):
        check(e.srv.get(path, headers=H(kb)).status == 404, "B reads %s" % path)
    check(e.srv.req("PATCH", "/v1/webhooks/" + ep["id"], {"disabled": True}, headers=H(kb)).status == 404,
          "B patches A's endpoint")
    check(e.srv.req("DELETE", "/v1/webhooks/" + ep["id"], headers=H(kb)).status == 404, "B deletes")
    check(e.srv.post("/v1/webhook-deliveries/%s/resend" % da[0]["id"], None,
                     headers=H(kb)).status == 404, "B resends A's delivery")
    check(e.srv.get("/v1/webhooks", headers=H(kb)).json["data"] == [], "B lists A's endpoints")
    check(e.srv.get("/v1/webhooks").status == 401, "no key")


@case(own=True)
def test_webhooks_distributed_two_gateways(ctx):
    """Two `genpulse api` loops share one outbox (FOR UPDATE SKIP LOCKED) and deliver what a
    `genpulse worker` process's commits added (found by their poll): each event once."""
    redis = os.environ.get("GENPULSE_TEST_REDIS_URL")
    if not (PG and redis):
        raise Skip("no GENPULSE_TEST_PG_URL / GENPULSE_TEST_REDIS_URL")
    redis = redis.rsplit("/", 1)[0] + "/5"
    subprocess.run(["redis-cli", "-u", redis, "FLUSHDB"], check=True, capture_output=True,
                   timeout=10)
    env = {"GENPULSE_DATABASE_URL": _fresh_pg_url(), "GENPULSE_QUEUE_URL": redis}
    args = ["--webhook-retry-scale", "0.001", "--webhook-poll-ms", "100", "--webhook-allow-private", "1"]
    gw0 = ctx.new_server(args, env=env, name="api0", command="api").start()
    gw1 = ctx.new_server(args, data_dir=gw0.data_dir, env=env, name="api1", command="api").start()
    ctx.new_server([], data_dir=gw0.data_dir, name="worker", command="worker",
                   env=dict(env, GENPULSE_PUBLIC_URL="http://127.0.0.1:%d" % gw0.port,
                            GENPULSE_GRACE_PERIOD="5")).start()
    recv = Receiver()
    ctx.receivers = [recv]
    try:
        ids = [create(gw0 if i % 2 else gw1, webhook=recv.url("/d"))["id"] for i in range(20)]
        calls = recv.wait(40, path="/d", timeout=30)
        time.sleep(1)
        calls = recv.got(path="/d")
        seen = [c["headers"]["webhook-id"] for c in calls]
        check(len(seen) == len(set(seen)) == 40, "%d calls, %d distinct ids (expected 40 once "
              "each)" % (len(seen), len(set(seen))))
        by_task = {}
        for c in calls:
            by_task.setdefault(c["json"]["data"]["id"], set()).add(c["json"]["type"])
        check(all(by_task.get(t) == {"task.started", "task.succeeded"} for t in ids),
              "events per task %r" % by_task)
        secret = default_secret(gw0)
        check(default_secret(gw1) == secret, "the gateways disagree on the default secret")
        for c in calls[:4]:
            py_verify(secret, c["headers"], c["body"])
    finally:
        recv.close()


for _fn in (test_webhooks_task_signed, test_webhooks_filter, test_webhooks_endpoint,
            test_webhooks_retries, test_webhooks_redirect_and_big_answer,
            test_webhooks_gone_disables, test_webhooks_kill9_mid_delivery,
            test_webhooks_ssrf_refused, test_webhooks_resend, test_webhooks_isolation):
    both(_fn)

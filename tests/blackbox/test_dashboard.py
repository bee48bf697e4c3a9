"""The dashboard in a real browser: Debian's Chromium driven by playwright-core (pinned in
tests/browser/package-lock.json, installed with `npm ci`; no browser is downloaded). The
Node script tests/browser/dashboard.mjs does the clicking; this file starts the servers.

Screenshots go to SCREENSHOTS (beside the binary, e.g. build-asan/dashboard-screenshots/).
Skips, saying why, without chromium or node/npm, or when `npm ci` cannot install offline."""
import json
import os
import shutil
import subprocess
import time

from harness import BIN, Skip, case, check, npm_ci
from provider_fakes import FakeAPI
from test_identity import new_user_key

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "dashboard-screenshots")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PG = os.environ.get("GENPULSE_TEST_PG_URL")
REDIS = os.environ.get("GENPULSE_TEST_REDIS_URL")
CLIENT = "genpulse-test-client"


def _prepare():
    if not os.path.exists(CHROMIUM):
        raise Skip("no %s (Debian package chromium; tools/deps.sh test installs it)" % CHROMIUM)
    npm_ci(BROWSER_DIR, skip_on_failure=True)


def _run_script(cfg, timeout=150, on_line=None):
    env = dict(os.environ, GENPULSE_DASHBOARD_TEST=json.dumps(cfg), CHROMIUM=CHROMIUM)
    p = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "dashboard.mjs")], cwd=BROWSER_DIR,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + timeout
    try:
        for line in p.stdout:
            lines.append(line.rstrip())
            if on_line:
                on_line(line.rstrip())
            if time.time() > deadline:
                break
        p.wait(timeout=max(1, deadline - time.time()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = "\n".join(lines)
    check(p.returncode == 0, "browser script failed:\n%s" % out[-3000:])
    return out


@case(own=True)
def test_dashboard_in_chromium(ctx):
    _prepare()
    fake = FakeAPI("oidc.py", ["--client-id", CLIENT])
    ctx.servers.append(fake)
    srv = ctx.new_server(["--oidc-issuer", fake.origin, "--oidc-client-id", CLIENT,
                          "--oidc-client-secret", "test-secret", "--concurrency", "2"]).start()
    _, admin_key = new_user_key(srv, "root@example.com", scopes="admin")
    out = os.path.join(SCREENSHOTS, "embedded")
    shutil.rmtree(out, ignore_errors=True)
    text = _run_script({"base": "http://127.0.0.1:%d" % srv.port, "admin_key": admin_key,
                        "out": out, "scenario": "embedded"})
    check("all checks passed" in text, "browser script: %s" % text[-2000:])


@case(own=True)
def test_dashboard_worker_lost(ctx):
    """Distributed mode: an api and two worker processes on PostgreSQL + Redis; one worker is
    SIGKILLed and the Workers page must show it lost. Needs GET /v1/workers (the workers
    branch's live-worker registry)."""
    if not (PG and REDIS):
        raise Skip("no GENPULSE_TEST_PG_URL / GENPULSE_TEST_REDIS_URL")
    _prepare()
    env = {"GENPULSE_DATABASE_URL": PG, "GENPULSE_QUEUE_URL": REDIS.rsplit("/", 1)[0] + "/6"}
    api = ctx.new_server(name="api", env=env, command="api").start()
    if api.get("/v1/workers").status == 404:
        raise Skip("GET /v1/workers is not on this build (workers branch not merged)")
    # Local storage in distributed mode: the workers share the api's data dir and link
    # outputs at it (as test_distributed.py does).
    # (a short drain: the survivor still runs the test's slow tasks when the harness stops it)
    wenv = dict(env, GENPULSE_PUBLIC_URL="http://127.0.0.1:%d" % api.port,
                GENPULSE_GRACE_PERIOD="5")
    wks = [ctx.new_server(["--concurrency", "2"], data_dir=api.data_dir, name="worker%d" % i,
                          env=wenv, command="worker").start() for i in range(2)]
    out = os.path.join(SCREENSHOTS, "workers")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    killed = {}

    def on_line(line):
        if not killed and line == "ready-to-kill":
            killed["pid"] = wks[1].proc.pid
            wks[1].kill9()
            with open(os.path.join(out, "killed"), "w") as f:
                f.write(str(killed["pid"]))

    text = _run_script({"base": "http://127.0.0.1:%d" % api.port, "out": out,
                        "scenario": "workers"}, on_line=on_line)
    check(killed and "all checks passed" in text, "browser script: %s" % text[-2000:])
    print("    " + "\n    ".join(l for l in text.splitlines() if l.startswith("ok -")))


# -------------------------------------------------- the API the dashboard uses (no browser)

def _auth(key):
    return {"Authorization": "Bearer " + key}


def _stream(port, path, key, seconds):
    """Reads an event stream (with a Bearer key) for `seconds`: the list of (event, data)."""
    import http.client
    import socket
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
    conn.request("GET", path, headers=_auth(key))
    resp = conn.getresponse()
    check(resp.status == 200, "%s: HTTP %d" % (path, resp.status))
    check(resp.getheader("Content-Type") == "text/event-stream", "content type")
    events, event = [], None
    deadline = time.time() + seconds
    try:
        while time.time() < deadline:
            conn.sock.settimeout(max(0.05, deadline - time.time()))
            line = resp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    except (socket.timeout, TimeoutError):
        pass
    conn.close()
    return events


@case(own=True)
def test_dashboard_api_validation(ctx):
    from harness import check_error
    srv = ctx.new_server().start()
    _, admin = new_user_key(srv, "root@example.com", scopes="admin")
    _, alice = new_user_key(srv, "alice@example.com")
    a = _auth(alice)
    # the page and its files: embedded, with a CSP; an unknown file is a JSON 404
    r = srv.get("/dashboard")
    check(r.status == 200 and r.headers["content-type"].startswith("text/html") and
          "script-src 'self'" in r.headers.get("content-security-policy", ""), "page: %r" % r)
    check(srv.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript"),
          "app.js type")
    check_error(srv.get("/dashboard/nope.js"), 404, "not_found")
    # stats: bounds and divisibility, the caller's view
    check_error(srv.get("/v1/stats?window=10", headers=a), 422, "validation_error", ["window"])
    check_error(srv.get("/v1/stats?window=60&bucket=7", headers=a), 422, "validation_error",
                ["bucket"])
    check_error(srv.get("/v1/stats?window=86400&bucket=1", headers=a), 422, "validation_error",
                ["bucket"])
    check_error(srv.get("/v1/stats?window=x", headers=a), 422, "validation_error", ["window"])
    t = srv.create("echo", {"message": "red fox"}, headers=a)
    srv.wait_terminal(t["id"])
    s = srv.get("/v1/stats?window=300&bucket=60", headers=a).json
    check(len(s["buckets"]) == 5 and s["all_users"] is False and
          sum(b["created"] for b in s["buckets"]) == 1 and
          sum(b["succeeded"] for b in s["buckets"]) == 1, "alice's stats: %r" % s)
    s = srv.get("/v1/stats?window=300&bucket=60", headers=_auth(admin)).json
    check(s["all_users"] is True, "admin's stats cover everyone")
    # list filters: JSON errors naming the field
    for q, field in [("id=nope", "id"), ("provider=Bad!", "provider"),
                     ("error_code=%20", "error_code"), ("q=" + "x" * 201, "q"),
                     ("user=someone-else", "user")]:
        check_error(srv.get("/v1/tasks?" + q, headers=a), 422, "validation_error", [field],
                    what=q)
    r = srv.get("/v1/tasks?q=RED&provider=echo&status=succeeded", headers=a).json
    check([x["id"] for x in r["data"]] == [t["id"]], "search by params text: %r" % r)
    check(srv.get("/v1/tasks?q=blue", headers=a).json["data"] == [], "no match")
    check(len(srv.get("/v1/tasks?id=" + t["id"], headers=_auth(admin)).json["data"]) == 1,
          "admin finds alice's task by id")


@case(own=True)
def test_dashboard_events_stream_scoped(ctx):
    import threading
    srv = ctx.new_server().start()
    _, admin = new_user_key(srv, "root@example.com", scopes="admin")
    _, alice = new_user_key(srv, "alice@example.com")
    _, bob = new_user_key(srv, "bob@example.com")
    got = {}

    def listen(name, key):
        got[name] = _stream(srv.port, "/v1/events", key, 4)

    threads = [threading.Thread(target=listen, args=(n, k))
               for n, k in [("admin", admin), ("alice", alice)]]
    for th in threads:
        th.start()
    time.sleep(0.8)
    ta = srv.create("echo", {"message": "a"}, headers=_auth(alice))
    tb = srv.create("echo", {"message": "b"}, headers=_auth(bob))
    for th in threads:
        th.join()
    ids = {n: {d["id"] for _, d in ev} for n, ev in got.items()}
    check(ids["alice"] == {ta["id"]}, "alice's stream: %r" % ids["alice"])
    check(ids["admin"] >= {ta["id"], tb["id"]}, "admin's stream: %r" % ids["admin"])
    done = [d for e, d in got["alice"] if e == "status" and d["status"] == "succeeded"]
    check(done, "alice's stream carried the terminal status: %r" % got["alice"])

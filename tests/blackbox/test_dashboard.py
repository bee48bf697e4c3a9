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

from harness import BIN, Skip, case, check
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
    if not shutil.which("node") or not shutil.which("npm"):
        raise Skip("no node/npm")
    lock = os.path.join(BROWSER_DIR, "package-lock.json")
    stamp = os.path.join(BROWSER_DIR, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        p = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"],
                           cwd=BROWSER_DIR, capture_output=True, timeout=300)
        if p.returncode != 0:
            raise Skip("npm ci in tests/browser failed: %s" % p.stderr.decode()[-400:])


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
    wenv = dict(env, GENPULSE_PUBLIC_URL="http://127.0.0.1:%d" % api.port)
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

"""Shared helpers of the provider black-box tests (test_provider_openai/kling/volcengine.py):
a fake provider API as a process (tests/fakes/*.py), a server pointed at it, and checks."""
import base64
import json
import os
import subprocess
import tempfile
import time

import harness
from harness import check, check_task_shape, short, url_path, TestFailure

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes")


class FakeAPI:
    """One fake (tests/fakes/<script>) on a free port. Quacks like harness.Server where the
    runner cares (stop, sanitizer scan, stderr tail), so it can live in ctx.servers."""

    def __init__(self, script, args=()):
        name = os.path.splitext(script)[0]
        self.stderr_path = tempfile.mktemp(prefix="stderr-fake-%s-" % name, suffix=".log",
                                           dir=harness.RUN_DIR)
        self.errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(FAKES, script),
                                      "--port", "0"] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.errf)
        line = self.proc.stdout.readline().decode()
        if "ready port=" not in line:
            self.stop()
            raise TestFailure("fake %s did not start: %r" % (script, line))
        self.port = int(line.rsplit("=", 1)[1])
        self.origin = "http://127.0.0.1:%d" % self.port

    def control(self, method, path, body=None):
        r = harness.http_request(self.port, method, path, body)
        check(r.status == 200, "fake control %s %s: %r" % (method, path, r))
        return r.json

    def config(self, **kw):
        return self.control("POST", "/_fake/config", kw)

    def requests(self, method=None, prefix=""):
        return [q for q in self.control("GET", "/_fake/requests")
                if (method is None or q["method"] == method) and q["path"].startswith(prefix)]

    def outputs(self):
        """Every image/video the fake generated: [(content_type, bytes)]."""
        return [(o["content_type"], base64.b64decode(o["b64"]))
                for o in self.control("GET", "/_fake/outputs")]

    def wait_requests(self, what, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [q for q in self.requests() if pred(q)]
            if got:
                return got
            time.sleep(0.05)
        raise TestFailure("the fake never saw %s" % what)

    # -- what the runner calls on ctx.servers --
    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.errf.close()
        return None

    def new_sanitizer_reports(self):
        return None

    def stderr_tail(self, n=30):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-n:]
        except OSError:
            return []


def start(ctx, script, provider, settings, fake_args=(), server_args=(), **config):
    """Starts the fake, configures it, and starts a server whose provider settings (flags
    --<provider>-<name>) come from settings(fake) -> dict."""
    fake = FakeAPI(script, fake_args)
    ctx.servers.append(fake)
    if config:
        fake.config(**config)
    flags = []
    for name, value in settings(fake).items():
        flags += ["--%s-%s" % (provider, name), str(value)]
    srv = ctx.new_server(flags + ["--retry-base-ms", "10", "--retry-max-ms", "50"]
                         + list(server_args), name=provider)
    srv.start()
    return fake, srv


def assets_of(task, n=1):
    assets = (task.get("result") or {}).get("assets")
    check(isinstance(assets, list) and len(assets) == n,
          "expected %d asset(s), got %s" % (n, short(json.dumps(task.get("result")))))
    return assets


def fetch(srv, asset, content_type):
    """The asset's bytes, after checking its declared and served type and size."""
    check(asset.get("content_type") == content_type,
          "asset content_type %r, expected %r" % (asset.get("content_type"), content_type))
    r = srv.get(url_path(asset.get("url")))
    check(r.status == 200, "GET asset %s: %r" % (asset.get("url"), r))
    served = r.headers.get("content-type", "").split(";")[0].strip()
    check(served == content_type, "asset served as %r, expected %r" % (served, content_type))
    check(len(r.body) == asset.get("bytes"),
          "asset says %r bytes, served %d" % (asset.get("bytes"), len(r.body)))
    return r.body


def succeeded(srv, tid, timeout=30):
    done = srv.wait_terminal(tid, timeout)
    check_task_shape(done)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    check(done["progress"] == 100, "succeeded task progress %r" % done["progress"])
    return done


def expect_failed(srv, tid, code=None, contains=(), attempts=None, timeout=30):
    done = srv.wait_terminal(tid, timeout)
    check_task_shape(done)
    check(done["status"] == "failed", "task ended %s (error %s), expected failed"
          % (done["status"], done["error"]))
    err = done["error"] or {}
    if code is not None:
        check(err.get("code") == code, "error.code %r, expected %r (%s)"
              % (err.get("code"), code, err.get("message")))
    for text in contains:
        check(text in (err.get("message") or ""),
              "error.message %r lacks %r" % (err.get("message"), text))
    if attempts is not None:
        check(done["attempts"] == attempts, "attempts %r, expected %r" % (done["attempts"], attempts))
    return done


def gaps(reqs):
    ts = [q["t"] for q in reqs]
    return [b - a for a, b in zip(ts, ts[1:])]


def cancel_promptly(srv, tid, limit_s=2.5):
    t0 = time.time()
    r = srv.post("/v1/tasks/%s/cancel" % tid)
    check(r.status in (200, 202), "cancel: %r" % r)
    done = srv.wait_terminal(tid, 10)
    took = time.time() - t0
    check(done["status"] == "canceled", "canceled task ended %s (%s)" % (done["status"], done["error"]))
    check(took < limit_s, "cancel took %.1fs" % took)
    return done


def secrets_not_logged(srv, *secrets):
    text = srv.stderr_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("=== start:"))
    for s in secrets:
        check(s not in body, "a secret appears in the server log")


def survive_malformed(fake, srv, task_type, params, cases):
    """Each case (match, status, body, must_fail) makes the fake answer the next request whose
    path?query contains `match` with that raw reply. The task must end cleanly (failed with
    an error code when must_fail) and the server must stay up."""
    for match, status, body, must_fail in cases:
        fake.config(raw=[{"match": match, "status": status, "body": body}])
        t = srv.create(task_type, params, max_retries=0)
        done = srv.wait_terminal(t["id"], 30)
        check_task_shape(done)
        check(srv.alive(), "server died on reply %r" % body)
        left = fake.control("POST", "/_fake/config", {}).get("raw")
        check(not left, "the canned reply %r was never requested" % body)
        if must_fail:
            err = done["error"] or {}
            check(done["status"] == "failed" and err.get("code"),
                  "reply %s %r: task ended %s %s" % (status, body, done["status"], err))

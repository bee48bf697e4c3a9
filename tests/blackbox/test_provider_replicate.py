"""The replicate provider against a fake Replicate API (tests/fakes/replicate.py) on 127.0.0.1:
outputs, progress, rate limits, server errors, auth, model failures, cancel and timeouts."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import harness
from harness import (case, check, check_task_shape, short, sse_collect, url_path, Skip,
                     TestFailure)

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes", "replicate.py")
TOKEN = "test-token"
VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"


class FakeReplicate:
    """The fake API as a process. Quacks like harness.Server where the runner cares (stop,
    sanitizer scan, stderr tail), so putting it in ctx.servers cleans it up after the test."""

    def __init__(self):
        self.stderr_path = tempfile.mktemp(prefix="stderr-fake-replicate-", suffix=".log",
                                           dir=harness.RUN_DIR)
        self.errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(["/usr/bin/python3", FAKE, "--port", "0", "--token", TOKEN],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.errf)
        line = self.proc.stdout.readline().decode()
        if "ready port=" not in line:
            self.stop()
            raise TestFailure("fake Replicate did not start: %r" % line)
        self.port = int(line.rsplit("=", 1)[1])
        self.base = "http://127.0.0.1:%d/v1" % self.port

    def control(self, method, path, body=None):
        r = harness.http_request(self.port, method, path, body)
        check(r.status == 200, "fake control %s %s: %r" % (method, path, r))
        return r.json

    def config(self, **kw):
        return self.control("POST", "/_fake/config", kw)

    def requests(self, method=None, prefix=""):
        reqs = self.control("GET", "/_fake/requests")
        return [q for q in reqs if (method is None or q["method"] == method)
                and q["path"].startswith(prefix)]

    def predictions(self):
        return self.control("GET", "/_fake/predictions")

    def creates(self):
        return [q for q in self.requests("POST") if q["path"].endswith("/predictions")]

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


def start(ctx, server_args=(), token=TOKEN, settings=None, **config):
    """A fake Replicate configured with `config`, and a server pointed at it. `settings` are
    replicate provider settings, passed as --replicate-<name> flags."""
    fake = FakeReplicate()
    ctx.servers.append(fake)
    if config:
        fake.config(**config)
    values = {"base-url": fake.base, "api-token": token, "poll-interval-ms": 50}
    values.update(settings or {})
    flags = []
    for name, value in values.items():
        flags += ["--replicate-" + name, str(value)]
    srv = ctx.new_server(flags + ["--retry-base-ms", "10", "--retry-max-ms", "50"]
                         + list(server_args), name="replicate")
    srv.start()
    return fake, srv


def image_params(**extra):
    p = {"provider": "replicate", "model": "stability-ai/sdxl", "prompt": "a red fox",
         "width": 64, "height": 80, "seed": 7}
    p.update(extra)
    return p


def assets_of(task, n=1):
    assets = (task.get("result") or {}).get("assets")
    check(isinstance(assets, list) and len(assets) == n,
          "expected %d asset(s), got %s" % (n, short(json.dumps(task.get("result")))))
    return assets


def fetch(srv, asset):
    r = srv.get(url_path(asset.get("url")))
    check(r.status == 200, "GET asset %s: %r" % (asset.get("url"), r))
    check(len(r.body) == asset.get("bytes"),
          "asset says %r bytes, served %d" % (asset.get("bytes"), len(r.body)))
    return r


def check_png(srv, asset):
    check(asset.get("content_type") == "image/png", "content_type %r" % asset.get("content_type"))
    body = fetch(srv, asset).body
    check(body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR",
          "not a PNG: %r" % body[:16])


def expect_failed(srv, tid, code=None, contains=(), timeout=20):
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
    return done


def server_log(srv):
    """The server's own output, without the harness's start lines (they show the flags)."""
    return "\n".join(line for line in srv.stderr_text().splitlines()
                     if not line.startswith("=== start:"))


def wait_for_fake(what, fn, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise TestFailure("fake Replicate never saw %s" % what)


# ------------------------------------------------------------------------------------------
# Success paths
# ------------------------------------------------------------------------------------------

@case(own=True)
def test_replicate_text_to_image(ctx):
    fake, srv = start(ctx, run_seconds=1.5, steps=10)
    t = srv.create("text-to-image", image_params(input={"num_inference_steps": 4, "seed": 9}),
                   max_retries=0)
    ev = sse_collect(srv.port, t["id"], max_time=20)
    done = srv.wait_terminal(t["id"], 20)
    check_task_shape(done)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    check(done["progress"] == 100, "progress %r" % done["progress"])
    check_png(srv, assets_of(done)[0])
    preds = fake.predictions()
    check(len(preds) == 1, "fake saw %d predictions" % len(preds))
    pid, pred = next(iter(preds.items()))
    check(done["result"].get("provider_id") == pid,
          "result.provider_id %r, prediction %r" % (done["result"].get("provider_id"), pid))
    creates = fake.creates()
    check(len(creates) == 1 and creates[0]["path"] == "/v1/models/stability-ai/sdxl/predictions",
          "creates: %s" % [(q["path"], q["status"]) for q in creates])
    c = creates[0]
    check(c["headers"].get("authorization") == "Bearer " + TOKEN, "create sent auth %r"
          % c["headers"].get("authorization"))
    ca = c["headers"].get("cancel-after", "")
    check(ca.endswith("s") and ca[:-1].isdigit() and 5 <= int(ca[:-1]) <= 600,
          "create's Cancel-After %r: expected the attempt's remaining time" % ca)
    check(set(c["body"]) == {"input"}, "official-model create body keys %s" % sorted(c["body"]))
    inp = c["body"]["input"]
    check(inp.get("prompt") == "a red fox" and inp.get("width") == 64 and inp.get("height") == 80,
          "task params not mapped into input: %s" % inp)
    check(inp.get("num_inference_steps") == 4 and inp.get("seed") == 9,
          "`input` not merged over the params: %s" % inp)
    for k in ("provider", "model", "input"):
        check(k not in inp, "provider param %r leaked into the model input" % k)
    polls = fake.requests("GET", "/v1/predictions/")
    check(len(polls) >= 2, "only %d polls" % len(polls))
    # the model's tqdm bar shows up as intermediate progress
    prog = [e["json"].get("progress") for e in ev["events"]
            if e["event"] == "progress" and isinstance(e.get("json"), dict)]
    middle = [p for p in prog if isinstance(p, int) and 5 < p < 100]
    check(len(middle) >= 2, "expected progress from the model's logs, saw %s" % prog)
    check(prog == sorted(prog), "progress went backwards: %s" % prog)
    # a file on the API's own origin is fetched with the token (like /v1/files), nothing leaks
    files = fake.requests("GET", "/files/")
    check(len(files) == 1, "fake served %d output files" % len(files))
    check(TOKEN not in server_log(srv), "the API token appears in the server log")


@case(own=True)
def test_replicate_version_id_forms(ctx):
    fake, srv = start(ctx, run_seconds=0.2)
    t1 = srv.create("text-to-image", image_params(model=VERSION), max_retries=0)
    t2 = srv.create("text-to-image", image_params(model="stability-ai/sdxl:" + VERSION),
                    max_retries=0)
    for t in (t1, t2):
        done = srv.wait_terminal(t["id"], 20)
        check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    creates = fake.creates()
    check(len(creates) == 2, "creates: %s" % [(q["path"], q["status"]) for q in creates])
    for q in creates:
        check(q["path"] == "/v1/predictions", "versioned create went to %s" % q["path"])
        check(q["body"].get("version") == VERSION and isinstance(q["body"].get("input"), dict),
              "versioned create body %s" % short(json.dumps(q["body"])))
        check(set(q["body"]) == {"version", "input"}, "create body keys %s" % sorted(q["body"]))


@case(own=True)
def test_replicate_bad_model_ref(ctx):
    fake, srv = start(ctx)
    for bad in ("sdxl", "a/b:123", "../x/y", "a/b/c", "a/" + "b" * 200):
        t = srv.create("text-to-image", image_params(model=bad), max_retries=3)
        done = expect_failed(srv, t["id"], contains=("model",))
        check(done["attempts"] == 1, "bad model ref %r was retried" % bad)
    check(not fake.creates(), "a bad model ref reached the API")


@case(own=True)
def test_replicate_data_url_output(ctx):
    fake, srv = start(ctx, run_seconds=0.2, output="data_png")
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    a = assets_of(done)[0]
    check(a.get("name", "").endswith(".png") or a["url"].endswith(".png"),
          "data: output not named .png: %s" % json.dumps(a))
    check_png(srv, a)


@case(own=True)
def test_replicate_array_and_json_outputs(ctx):
    fake, srv = start(ctx, run_seconds=0.2, output="png_array")
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    names = sorted(a.get("name") or a["url"].rsplit("/", 1)[-1] for a in assets_of(done, 2))
    check(names == ["output-0.png", "output-1.png"], "asset names %s" % names)
    fake.config(output="json", output_json={"caption": "a fox", "score": 0.5})
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    check(done["result"].get("output") == {"caption": "a fox", "score": 0.5},
          "non-file output not in result.output: %s" % short(json.dumps(done["result"])))
    fake.config(output="null")
    t = srv.create("text-to-image", image_params(), max_retries=2)
    done = expect_failed(srv, t["id"], code="empty_output")
    check(done["attempts"] == 1, "a null output was retried")


@case(own=True)
def test_replicate_foreign_file_host_gets_no_token(ctx):
    # "localhost" is another origin than the configured 127.0.0.1 base URL
    fake, srv = start(ctx, run_seconds=0.2)
    fake.config(file_base="http://localhost:%d" % fake.port)
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    files = fake.requests("GET", "/files/")
    check(files and all("authorization" not in q["headers"] for q in files),
          "the token was sent to an output host other than the API: %s" % files)


@case(own=True)
def test_replicate_text_to_audio_and_video(ctx):
    fake, srv = start(ctx, run_seconds=0.2, output="wav")
    t = srv.create("text-to-audio", {"provider": "replicate", "model": "acme/tts",
                                     "text": "hello there"}, max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "audio task ended %s: %s" % (done["status"], done["error"]))
    a = assets_of(done)[0]
    body = fetch(srv, a).body
    check(body[:4] == b"RIFF" and body[8:12] == b"WAVE", "not a WAV: %r" % body[:12])
    inp = fake.creates()[-1]["body"]["input"]
    check(inp.get("text") == "hello there", "text not passed: %s" % inp)
    if not shutil.which("ffmpeg"):
        raise Skip("ffmpeg not installed: the fake cannot make an MP4 (audio part passed)")
    fake.config(output="mp4")
    t = srv.create("text-to-video", {"provider": "replicate", "model": "acme/video",
                                     "prompt": "waves", "duration": 2}, max_retries=0)
    done = srv.wait_terminal(t["id"], 60)
    check(done["status"] == "succeeded", "video task ended %s: %s" % (done["status"], done["error"]))
    a = assets_of(done)[0]
    check(a.get("content_type") == "video/mp4", "video content_type %r" % a.get("content_type"))
    body = fetch(srv, a).body
    check(body[4:8] == b"ftyp", "not an MP4: %r" % body[:12])


@case(own=True)
def test_replicate_image_to_image_url_input(ctx):
    fake, srv = start(ctx, run_seconds=0.2)
    src = "http://127.0.0.1:%d/files/x/in.png" % fake.port
    t = srv.create("image-to-image", {"provider": "replicate", "model": "acme/edit",
                                      "image": src, "prompt": "make it blue"}, max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    inp = fake.creates()[-1]["body"]["input"]
    check(inp.get("image") == src, "image URL not passed as given: %s" % inp)


# ------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------

@case(own=True)
def test_replicate_429_retry_after(ctx):
    fake, srv = start(ctx, run_seconds=0.2, create_429=1, retry_after=1)
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    creates = fake.creates()
    check(len(creates) >= 2 and creates[0]["status"] == 429 and creates[-1]["status"] == 201,
          "creates: %s" % [(q["status"], round(q["t"], 2)) for q in creates])
    gap = creates[1]["t"] - creates[0]["t"]
    check(gap >= 0.95, "retried %.2fs after a 429 with Retry-After: 1" % gap)


@case(own=True)
def test_replicate_500_then_success(ctx):
    # a 500 on a poll is retried by the HTTP client; one on create by the task's retry
    fake, srv = start(ctx, run_seconds=0.3, get_500=2, create_500=1)
    t = srv.create("text-to-image", image_params(), max_retries=2)
    done = srv.wait_terminal(t["id"], 30)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    check_png(srv, assets_of(done)[0])
    statuses = [q["status"] for q in fake.creates()]
    check(statuses[0] == 500 and statuses[-1] == 201, "create statuses %s" % statuses)
    polls = [q["status"] for q in fake.requests("GET", "/v1/predictions/")]
    check(polls.count(500) == 2 and polls[-1] == 200, "poll statuses %s" % polls)


@case(own=True)
def test_replicate_poll_timeout_is_retried(ctx):
    fake, srv = start(ctx, settings={"request-timeout-ms": 700}, run_seconds=0.3,
                      slow_get_ms=3000, slow_get_count=1)
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    polls = fake.requests("GET", "/v1/predictions/")
    check(len(polls) >= 2 and polls[1]["t"] - polls[0]["t"] < 2.5,
          "the hanging poll was not cut at the request timeout: %s"
          % [round(q["t"] - polls[0]["t"], 2) for q in polls])


@case(own=True)
def test_replicate_bad_json_poll(ctx):
    fake, srv = start(ctx, run_seconds=0.2, get_bad_json=1)
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded",
          "one non-JSON poll answer should be ridden out: ended %s: %s"
          % (done["status"], done["error"]))


@case(own=True)
def test_replicate_bad_token(ctx):
    fake, srv = start(ctx, token="wrong-token")
    t = srv.create("text-to-image", image_params(), max_retries=3)
    done = expect_failed(srv, t["id"],
                         contains=("You did not pass a valid authentication token",))
    check(done["attempts"] == 1, "a 401 was retried: attempts %r" % done["attempts"])
    check("wrong-token" not in server_log(srv), "the API token appears in the server log")
    check("wrong-token" not in json.dumps(done), "the API token appears in the task")


@case(own=True)
def test_replicate_missing_model_404(ctx):
    fake, srv = start(ctx)
    # the fake answers creates for this model with 404, like Replicate for a missing model
    t = srv.create("text-to-image", image_params(model="fake/missing"), max_retries=3)
    done = expect_failed(srv, t["id"], contains=("404",))
    check(done["attempts"] == 1, "a 404 was retried")


@case(own=True)
def test_replicate_prediction_failed(ctx):
    fake, srv = start(ctx, run_seconds=0.3, outcome="failed",
                      error="CUDA out of memory. Tried to allocate 2.00 GiB")
    t = srv.create("text-to-image", image_params(), max_retries=3)
    done = expect_failed(srv, t["id"], contains=("CUDA out of memory",))
    check(done["attempts"] == 1, "a failed prediction was retried: attempts %r" % done["attempts"])
    check(fake.predictions(), "no prediction was created")


@case(own=True)
def test_replicate_cancel_while_processing(ctx):
    fake, srv = start(ctx, outcome="never", start_seconds=0.1, run_seconds=1)
    t = srv.create("text-to-image", image_params(), max_retries=0)
    srv.wait_for(t["id"], lambda x: x["status"] == "processing" and x["progress"] >= 5, 20,
                 "processing on Replicate")
    r = srv.post("/v1/tasks/%s/cancel" % t["id"])
    check(r.status in (200, 202), "cancel: %r" % r)
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "canceled", "task ended %s: %s" % (done["status"], done["error"]))
    wait_for_fake("POST .../cancel",
                  lambda: [q for q in fake.requests("POST") if q["path"].endswith("/cancel")])
    preds = fake.predictions()
    check(all(p["status"] == "canceled" for p in preds.values()),
          "predictions after cancel: %s" % [p["status"] for p in preds.values()])


@case(own=True)
def test_replicate_hard_timeout_cancels_prediction(ctx):
    fake, srv = start(ctx, ["--task-timeout", "2"], outcome="never")
    t = srv.create("text-to-image", image_params(), max_retries=0)
    done = expect_failed(srv, t["id"], code="timeout", timeout=15)
    check(done["error"]["code"] == "timeout", "error %s" % done["error"])
    wait_for_fake("POST .../cancel after the hard timeout",
                  lambda: [q for q in fake.requests("POST") if q["path"].endswith("/cancel")])


@case(own=True)
def test_replicate_slow_poll_is_cut_by_cancel(ctx):
    # a poll that hangs must not keep a canceled task running
    fake, srv = start(ctx, outcome="never", slow_get_ms=20000, slow_get_count=100)
    t = srv.create("text-to-image", image_params(), max_retries=0)
    wait_for_fake("a poll", lambda: fake.requests("GET", "/v1/predictions/"))
    t0 = time.time()
    r = srv.post("/v1/tasks/%s/cancel" % t["id"])
    check(r.status in (200, 202), "cancel: %r" % r)
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "canceled", "task ended %s" % done["status"])
    check(time.time() - t0 < 5, "cancel took %.1fs with a hanging poll" % (time.time() - t0))
    wait_for_fake("POST .../cancel",
                  lambda: [q for q in fake.requests("POST") if q["path"].endswith("/cancel")])

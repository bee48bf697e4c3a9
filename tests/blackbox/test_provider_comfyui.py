"""The comfyui provider against tests/fakes/comfyui.py (a fake ComfyUI on 127.0.0.1).

Each test starts its own fake and its own server pointed at it with --comfyui-base-url, then
checks both sides: what the task reports, and what the fake received (patched graph, socket
before submit, /interrupt on cancel, history deleted afterwards).
"""
import base64
import json
import os
import struct
import subprocess
import time
import urllib.request
import zlib

from harness import HOST, Skip, case, check, check_task_shape, short, sse_collect, url_path

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "comfyui.py")
FIXTURE = os.path.join(HERE, "..", "fixtures", "comfyui", "sd15_api.json")
PYTHON = "/usr/bin/python3"


class FakeComfy:
    def __init__(self):
        if not os.path.exists(PYTHON):
            raise Skip("no %s for the fake ComfyUI" % PYTHON)
        self.proc = subprocess.Popen([PYTHON, FAKE, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise AssertionError("fake ComfyUI did not start: %r" % line)
        self.port = int(line[1])
        self.url = "http://%s:%d" % (HOST, self.port)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def config(self, **kw):
        return self.call("POST", "/_fake/config", kw)

    def requests(self, path=None, method=None):
        reqs = self.call("GET", "/_fake/requests")
        return [r for r in reqs if (path is None or r["path"] == path)
                and (method is None or r["method"] == method)]

    def state(self):
        return self.call("GET", "/_fake/state")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def with_fake(extra_args=(), env=None, **config):
    """Decorator: the test gets (ctx, fake, srv) with a server pointed at a fresh fake."""
    def deco(fn):
        def run(ctx):
            fake = FakeComfy()
            try:
                if config:
                    fake.config(**config)
                srv = ctx.new_server(["--comfyui-base-url", fake.url, "--comfyui-ws-silence-ms",
                                      "800", "--retry-base-ms", "10"] + list(extra_args),
                                     name="comfyui", env=env)
                srv.start()
                fn(ctx, fake, srv)
            finally:
                fake.stop()
        run.__name__ = fn.__name__
        return case(own=True)(run)
    return deco


def sd15():
    with open(FIXTURE) as f:
        return json.load(f)


def submitted_prompt(fake):
    posts = fake.requests("/prompt", "POST")
    check(len(posts) == 1, "fake saw %d POST /prompt, expected 1" % len(posts))
    return posts[0]["json"]


def png_size(body):
    check(body[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % body[:8])
    return struct.unpack(">II", body[16:24])


def wait_history_gone(fake, pid, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pid not in fake.state()["history"]:
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------------------------

@with_fake(steps=6, step_delay=0.15)
def test_comfyui_text_to_image(ctx, fake, srv):
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "a red fox in snow",
                                     "negative_prompt": "blurry, watermark", "seed": 424242,
                                     "width": 320, "height": 192, "workflow": sd15()})
    ev = sse_collect(srv.port, t["id"], max_time=40)
    done = srv.wait_terminal(t["id"], 30)
    check_task_shape(done)
    check(done["status"] == "succeeded", "comfyui task ended %s: %s" % (done["status"], done["error"]))
    check(done["progress"] == 100, "final progress %r" % done["progress"])

    # The graph the fake ran has the task's values in the right nodes.
    body = submitted_prompt(fake)
    g = body["prompt"]
    check(g["6"]["inputs"]["text"] == "a red fox in snow", "positive text: %r" % g["6"]["inputs"])
    check(g["7"]["inputs"]["text"] == "blurry, watermark", "negative text: %r" % g["7"]["inputs"])
    check(g["3"]["inputs"]["seed"] == 424242, "KSampler seed: %r" % g["3"]["inputs"]["seed"])
    check((g["5"]["inputs"]["width"], g["5"]["inputs"]["height"]) == (320, 192),
          "latent size: %r" % g["5"]["inputs"])
    check(g["3"]["inputs"]["steps"] == 20 and g["4"] == sd15()["4"], "unrelated inputs changed")
    pid, cid = body.get("prompt_id"), body.get("client_id")
    check(isinstance(pid, str) and len(pid) == 36, "prompt_id %r is not a UUID" % pid)
    check(isinstance(cid, str) and cid, "no client_id in POST /prompt")

    # The socket was opened with that client_id before the prompt was queued.
    ws = fake.requests("/ws")
    check(ws and ws[0]["query"].get("clientId") == cid,
          "socket clientId %r, prompt client_id %r" % (ws and ws[0]["query"], cid))
    check(ws[0]["t"] <= fake.requests("/prompt", "POST")[0]["t"], "socket opened after POST /prompt")

    # Live progress from the socket reached the event stream.
    prog = [e["json"] for e in ev["events"] if e["event"] == "progress" and e["json"]]
    mids = [p.get("progress") for p in prog if isinstance(p.get("progress"), int) and 5 < p["progress"] < 90]
    check(len(set(mids)) >= 3, "expected sampler progress between 5 and 90, got %s"
          % [(p.get("progress"), p.get("step")) for p in prog])
    values = [p.get("progress") for p in prog if isinstance(p.get("progress"), int)]
    check(values == sorted(values), "progress went backwards: %s" % values)
    steps = " | ".join(str(p.get("step")) for p in prog)
    check("KSampler" in steps, "no step naming the running KSampler node: %s" % steps)

    # Output downloaded through /view and stored.
    assets = (done["result"] or {}).get("assets") or []
    check(len(assets) == 1, "expected one asset, got %s" % json.dumps(assets)[:300])
    check(assets[0].get("content_type") == "image/png", "asset %s" % json.dumps(assets[0]))
    r = srv.get(url_path(assets[0]["url"]))
    check(r.status == 200, "GET asset: %r" % r)
    check(png_size(r.body) == (320, 192), "stored PNG is %dx%d" % png_size(r.body))
    views = fake.requests("/view", "GET")
    check(views and views[0]["query"].get("type") == "output"
          and views[0]["query"].get("filename", "").endswith(".png"), "GET /view: %s" % views)
    check((done["result"].get("comfyui") or {}).get("prompt_id") == pid,
          "result.comfyui: %r" % done["result"].get("comfyui"))

    # Cleanup: history deleted on the server.
    deletes = [r["json"] for r in fake.requests("/history", "POST")]
    check({"delete": [pid]} in deletes, "no POST /history delete of %s: %s" % (pid, deletes))
    check(wait_history_gone(fake, pid), "history of %s still on the server" % pid)
    check(not fake.requests("/interrupt"), "a successful run sent /interrupt")


@with_fake()
def test_comfyui_execution_error(ctx, fake, srv):
    fake.config(execution_error={"exception_message": "CUDA error: device-side assert triggered",
                                 "exception_type": "RuntimeError", "node_id": "8"})
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "x", "workflow": sd15()},
                   max_retries=2)
    done = srv.wait_terminal(t["id"], 30)
    check(done["status"] == "failed", "task ended %s" % done["status"])
    msg = (done["error"] or {}).get("message", "")
    check("CUDA error: device-side assert triggered" in msg, "error.message %r" % msg)
    check("VAEDecode" in msg, "error.message does not name the node type: %r" % msg)
    check(done["attempts"] == 1, "a node exception is permanent, but attempts = %s" % done["attempts"])
    pid = submitted_prompt(fake)["prompt_id"]
    check(wait_history_gone(fake, pid), "history of the failed prompt not deleted")


def _silent_or_dropped(fake, srv, **config):
    fake.config(steps=6, step_delay=0.1, **config)
    t0 = time.time()
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "x", "width": 64,
                                     "height": 64, "workflow": sd15()})
    done = srv.wait_terminal(t["id"], 30)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    check(time.time() - t0 < 15, "took %.1fs to notice the finished prompt" % (time.time() - t0))
    polls = fake.requests(method="GET")
    check(any(r["path"].startswith("/history/") for r in polls), "never polled /history/{id}")
    assets = done["result"]["assets"]
    check(len(assets) == 1 and png_size(srv.get(url_path(assets[0]["url"])).body) == (64, 64),
          "output not stored: %s" % json.dumps(assets)[:200])


@with_fake()
def test_comfyui_socket_silent_history_fallback(ctx, fake, srv):
    _silent_or_dropped(fake, srv, ws_silent_after=1)


@with_fake()
def test_comfyui_socket_dropped_history_fallback(ctx, fake, srv):
    _silent_or_dropped(fake, srv, ws_drop_after=2)


@with_fake(steps=400, step_delay=0.05)
def test_comfyui_cancel_interrupts_prompt(ctx, fake, srv):
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "x", "workflow": sd15()})
    srv.wait_for(t["id"], lambda x: x["status"] == "processing" and x["progress"] > 5, 20,
                 "running on the fake")
    pid = submitted_prompt(fake)["prompt_id"]
    check(fake.state()["running"] == pid, "fake is not running %s: %s" % (pid, fake.state()))
    t0 = time.time()
    r = srv.post("/v1/tasks/%s/cancel" % t["id"])
    check(r.status in (200, 202), "cancel: %r" % r)
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "canceled", "task ended %s: %s" % (done["status"], done["error"]))
    check(time.time() - t0 < 5, "cancel took %.1fs" % (time.time() - t0))
    interrupts = [r["json"] for r in fake.requests("/interrupt", "POST")]
    check({"prompt_id": pid} in interrupts, "no POST /interrupt {prompt_id: %s}: %s" % (pid, interrupts))
    queue = [r["json"] for r in fake.requests("/queue", "POST")]
    check({"delete": [pid]} in queue, "no POST /queue delete: %s" % queue)
    deadline = time.time() + 5
    while fake.state()["running"] is not None and time.time() < deadline:
        time.sleep(0.05)
    check(fake.state()["running"] is None, "the fake still runs the prompt after the cancel")


@with_fake()
def test_comfyui_validation_error_permanent(ctx, fake, srv):
    wf = sd15()
    del wf["7"]["inputs"]["text"]  # the negative encoder lacks its required text
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "x", "workflow": wf},
                   max_retries=2)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "failed", "task ended %s" % done["status"])
    msg = (done["error"] or {}).get("message", "")
    for part in ("Prompt outputs failed validation", "node 7 (CLIPTextEncode)",
                 "Required input is missing", "text"):
        check(part in msg, "error.message lacks %r: %r" % (part, msg))
    check(done["attempts"] == 1, "validation errors are permanent, attempts = %s" % done["attempts"])

    wf = sd15()
    wf["8"]["class_type"] = "VAEDecodeTurbo9000"
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "x", "workflow": wf})
    done = srv.wait_terminal(t["id"], 20)
    msg = (done["error"] or {}).get("message", "")
    check(done["status"] == "failed" and "VAEDecodeTurbo9000 does not exist" in msg,
          "unknown node: %s %r" % (done["status"], msg))

    wf = sd15()
    del wf["9"]
    t = srv.create("text-to-image", {"provider": "comfyui", "prompt": "x", "workflow": wf})
    done = srv.wait_terminal(t["id"], 20)
    msg = (done["error"] or {}).get("message", "")
    check(done["status"] == "failed" and "no outputs" in msg and "SaveImage" in msg,
          "no output node: %s %r" % (done["status"], msg))
    check(not fake.requests("/interrupt"), "a rejected prompt was interrupted")


UI_WORKFLOW = {
    "last_node_id": 9, "last_link_id": 9, "version": 0.4,
    "nodes": [{"id": 3, "type": "KSampler", "pos": [863, 186], "size": [315, 262], "flags": {},
               "order": 4, "mode": 0, "inputs": [{"name": "model", "type": "MODEL", "link": 1}],
               "outputs": [{"name": "LATENT", "type": "LATENT", "links": [7], "slot_index": 0}],
               "properties": {}, "widgets_values": [156680208700286, "randomize", 20, 8, "euler",
                                                    "normal", 1]}],
    "links": [[1, 4, 0, 3, 0, "MODEL"]], "groups": [], "config": {}, "extra": {},
}


@with_fake()
def test_comfyui_ui_format_rejected(ctx, fake, srv):
    r = srv.post("/v1/tasks", {"task_type": "text-to-image",
                               "params": {"provider": "comfyui", "prompt": "x", "workflow": UI_WORKFLOW}})
    if r.status == 422:
        check("API" in short(r.body, 2000), "422 does not explain the API format: %r" % r)
    else:
        check(r.status == 202, "POST /v1/tasks: %r" % r)
        done = srv.wait_terminal(r.json["id"], 20)
        msg = (done["error"] or {}).get("message", "")
        check(done["status"] == "failed" and "UI" in msg and "Export (API)" in msg,
              "UI workflow: %s %r" % (done["status"], msg))
        check(done["attempts"] == 1, "UI-format failure retried")
    check(not fake.requests("/prompt", "POST"), "a UI-format workflow was sent to ComfyUI")


def tiny_png():
    """A 2x2 RGB PNG as a data: URL, for the image-to-image upload path."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\x00\xff" * 2)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


# The key goes in through the environment: the harness logs the command line itself.
@with_fake(env={"GENPULSE_COMFYUI_API_KEY": "s3cr3t-key-for-test"},
           require_token="s3cr3t-key-for-test")
def test_comfyui_image_upload_and_api_key(ctx, fake, srv):
    wf = sd15()
    wf["10"] = {"class_type": "LoadImage", "inputs": {"image": "example.png"}}
    wf["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    wf["3"]["inputs"]["latent_image"] = ["11", 0]
    wf["3"]["inputs"]["denoise"] = 1.0
    del wf["5"]
    t = srv.create("image-to-image", {"provider": "comfyui", "prompt": "make it blue",
                                      "image": tiny_png(),
                                      "strength": 0.4, "workflow": wf,
                                      "patch": {"3.steps": 7, "9.filename_prefix": "gp"}})
    done = srv.wait_terminal(t["id"], 30)
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    uploads = fake.requests("/upload/image", "POST")
    check(len(uploads) == 1, "expected one upload, saw %d" % len(uploads))
    g = submitted_prompt(fake)["prompt"]
    check(g["10"]["inputs"]["image"] in fake.state()["uploads"],
          "LoadImage.image %r is not the uploaded file %s" % (g["10"]["inputs"]["image"], fake.state()["uploads"]))
    check(g["3"]["inputs"]["steps"] == 7 and g["9"]["inputs"]["filename_prefix"] == "gp",
          "patch not applied: %r %r" % (g["3"]["inputs"], g["9"]["inputs"]))
    check(abs(g["3"]["inputs"]["denoise"] - 0.4) < 1e-9, "strength not mapped to denoise: %r" % g["3"]["inputs"])
    for r in fake.requests():
        check(r["headers"].get("authorization") == "Bearer s3cr3t-key-for-test",
              "%s %s without the api key" % (r["method"], r["path"]))
    check("s3cr3t-key-for-test" not in srv.stderr_text(), "the api key appears in the server log")
    check("s3cr3t-key-for-test" not in json.dumps(srv.task(t["id"])), "the api key appears in the task")

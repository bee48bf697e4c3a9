#!/usr/bin/python3
"""A fake of the Replicate HTTP API (https://api.replicate.com/v1) for black-box tests.

Python 3 standard library only. Serves the prediction endpoints the way the real API answers
them (shapes taken from Replicate's OpenAPI document and recorded traffic), plus files for the
outputs, plus a control API for tests:

    POST /v1/models/{owner}/{name}/predictions   body {input, webhook?, webhook_events_filter?, stream?}
    POST /v1/predictions                         body {version, input, ...}
    GET  /v1/predictions/{id}
    POST /v1/predictions/{id}/cancel
    GET  /files/{id}/{name}                      output bytes (no auth, like replicate.delivery)

    POST /_fake/config    JSON merged into the behaviour config (see DEFAULTS); returns it
    POST /_fake/reset     config back to DEFAULTS, requests and predictions forgotten
    GET  /_fake/requests  every request seen: {method, path, t, headers, body, status}
    GET  /_fake/predictions

A prediction is `starting` for start_seconds, `processing` for run_seconds (its logs gain a
tqdm progress line per step), then ends as `outcome` ("succeeded", "failed", or "never" to stay
processing until canceled).

Usage: replicate.py [--port N] [--token T]. Prints "fake-replicate ready port=N" when listening.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

DEFAULTS = {
    "token": "test-token",
    "start_seconds": 0.2,
    "run_seconds": 1.0,
    "steps": 10,
    "outcome": "succeeded",           # succeeded | failed | never
    "error": "CUDA out of memory. Tried to allocate 2.00 GiB",
    "output": "png",                  # png | png_array | wav | mp4 | data_png | json | null
    "output_json": {"text": "hello"},
    "file_base": None,                # origin for output URLs; None: the request's Host
    "create_429": 0,                  # the first N creates answer 429
    "retry_after": 1,                 # seconds, sent with each 429
    "create_500": 0,                  # the next N creates answer 500
    "get_500": 0,                     # the first N polls answer 500
    "get_bad_json": 0,                # the first N polls answer a body that is not JSON
    "slow_get_ms": 0,                 # the first slow_get_count polls wait this long first
    "slow_get_count": 0,
}

VERSION_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CREATE_KEYS = {"version", "input", "webhook", "webhook_events_filter", "stream"}
WEBHOOK_EVENTS = {"start", "output", "logs", "completed"}


def now_iso(t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d" % d.microsecond + "Z"


# ------------------------------------------------------------------------------------------
# Output files
# ------------------------------------------------------------------------------------------

def make_png(width=64, height=48):
    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    rows = b""
    for y in range(height):
        rows += b"\x00" + bytes(v for x in range(width)
                                for v in ((x * 4) & 255, (y * 5) & 255, 128))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def make_wav(seconds=0.25, rate=16000):
    import math
    n = int(seconds * rate)
    samples = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                       for i in range(n))
    return (b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", len(samples)) + samples)


_mp4_lock = threading.Lock()
_mp4_bytes = None


def make_mp4():
    """A one-second 64x64 H.264 clip, or None when ffmpeg is not installed."""
    global _mp4_bytes
    with _mp4_lock:
        if _mp4_bytes is None and shutil.which("ffmpeg"):
            d = tempfile.mkdtemp(prefix="fake-replicate-")
            try:
                out = os.path.join(d, "v.mp4")
                subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                                "-i", "testsrc=size=64x64:rate=10", "-t", "1", "-pix_fmt",
                                "yuv420p", "-y", out], check=True, timeout=60,
                               stdin=subprocess.DEVNULL)
                with open(out, "rb") as f:
                    _mp4_bytes = f.read()
            except (OSError, subprocess.SubprocessError):
                _mp4_bytes = None
            finally:
                shutil.rmtree(d, ignore_errors=True)
        return _mp4_bytes


FILE_TYPES = {"png": "image/png", "wav": "audio/wav", "mp4": "video/mp4"}


def file_bytes(name):
    ext = name.rsplit(".", 1)[-1]
    if ext == "png":
        return make_png()
    if ext == "wav":
        return make_wav()
    if ext == "mp4":
        return make_mp4()
    return None


# ------------------------------------------------------------------------------------------
# State
# ------------------------------------------------------------------------------------------

class State:
    def __init__(self, token):
        self.lock = threading.Lock()
        self.base_token = token
        self.reset()

    def reset(self):
        with self.lock:
            self.config = dict(DEFAULTS)
            self.config["token"] = self.base_token
            self.requests = []
            self.predictions = {}
            self.counters = {}

    def take(self, key, limit):
        """True for the first `limit` calls with this key (a fault still to inject)."""
        n = self.counters.get(key, 0)
        if n < limit:
            self.counters[key] = n + 1
            return True
        return False


class Prediction:
    def __init__(self, cfg, model, version, inp, host, stream=False):
        self.id = "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(26))
        self.model = model
        self.version = version
        self.input = inp
        self.host = host
        self.created = time.time()
        self.start_s = float(cfg["start_seconds"])
        self.run_s = float(cfg["run_seconds"])
        self.steps = max(1, int(cfg["steps"]))
        self.outcome = cfg["outcome"]
        self.error = cfg["error"]
        self.output_kind = cfg["output"]
        self.output_json = cfg["output_json"]
        self.file_base = cfg["file_base"] or ("http://%s" % host)
        self.canceled_at = None
        self.cancel_calls = 0
        self.stream = stream

    def state(self, t):
        """(status, started_at, completed_at, steps done)."""
        started = self.created + self.start_s
        ends = started + self.run_s
        if self.canceled_at is not None:
            began = started if self.canceled_at >= started else None
            done = self._steps_at(min(self.canceled_at, ends)) if began else 0
            return "canceled", began, self.canceled_at, done
        if t < started:
            return "starting", None, None, 0
        if t < ends or self.outcome == "never":
            return "processing", started, None, self._steps_at(min(t, ends))
        return self.outcome, started, ends, self.steps

    def _steps_at(self, t):
        started = self.created + self.start_s
        if self.run_s <= 0:
            return self.steps
        return max(0, min(self.steps, int((t - started) / self.run_s * self.steps)))

    def logs(self, done):
        lines = ["Using seed: %d" % (self.input.get("seed") or 1234)]
        for k in range(done + 1):
            pct = k * 100 // self.steps
            filled = k * 10 // self.steps
            bar = "\u2588" * filled + " " * (10 - filled)
            lines.append("%3d%%|%s| %d/%d [00:0%d<00:0%d,  7.41it/s]"
                         % (pct, bar, k, self.steps, k % 10, (self.steps - k) % 10))
        return "\n".join(lines) + "\n"

    def output(self):
        base = "%s/files/%s/" % (self.file_base, self.id)
        kind = self.output_kind
        if kind == "png":
            return base + "out-0.png"
        if kind == "png_array":
            return [base + "out-0.png", base + "out-1.png"]
        if kind == "wav":
            return base + "speech.wav"
        if kind == "mp4":
            return base + "video.mp4"
        if kind == "data_png":
            return "data:image/png;base64," + base64.b64encode(make_png()).decode()
        if kind == "json":
            return self.output_json
        return None

    def to_json(self):
        t = time.time()
        status, started, completed, done = self.state(t)
        urls = {"get": "http://%s/v1/predictions/%s" % (self.host, self.id),
                "cancel": "http://%s/v1/predictions/%s/cancel" % (self.host, self.id),
                "web": "https://replicate.com/p/%s" % self.id}
        if self.stream:
            urls["stream"] = "http://%s/v1/stream/%s" % (self.host, self.id)
        obj = {"id": self.id, "model": self.model, "version": self.version, "input": self.input,
               "logs": self.logs(done) if started is not None else "", "output": None,
               "data_removed": False, "error": None, "source": "api", "status": status,
               "created_at": now_iso(self.created), "urls": urls}
        if started is not None:
            obj["started_at"] = now_iso(started)
        if completed is not None:
            obj["completed_at"] = now_iso(completed)
            obj["metrics"] = {"predict_time": round(completed - (started or completed), 6),
                              "total_time": round(completed - self.created, 6)}
        if status == "succeeded":
            obj["output"] = self.output()
        elif status == "failed":
            obj["error"] = self.error
        return obj


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------

def problem(status, title, detail):
    return status, {"title": title, "detail": detail, "status": status}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-replicate/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-replicate: %s\n" % (fmt % args))

    # -- plumbing --
    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)) or body is None and ctype.endswith("json"):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _record(self, raw):
        """Logged when the request arrives, so a test can see a request that is still hanging;
        the status is filled in when the answer goes out."""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        keep = ("authorization", "content-type", "cancel-after", "prefer", "accept")
        entry = {"method": self.command, "path": self.path, "t": time.time(), "status": None,
                 "headers": {k.lower(): v for k, v in self.headers.items() if k.lower() in keep},
                 "body": parsed}
        with STATE.lock:
            STATE.requests.append(entry)
        return entry

    def _authed(self):
        with STATE.lock:
            token = STATE.config["token"]
        return self.headers.get("Authorization") == "Bearer %s" % token

    def _dispatch(self):
        raw = self._read_body()
        entry = None if self.path.startswith("/_fake/") else self._record(raw)
        status, body, ctype, headers = 404, None, "application/json", {}
        try:
            status, body, ctype, headers = self._route(raw)
        except Exception as e:  # a bug here must show up as a 500, not a hung client
            status, body = 500, {"detail": "fake error: %r" % e, "status": 500}
        if entry is not None:
            with STATE.lock:
                entry["status"] = status
        self._send(status, body, ctype, headers)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    # -- routes --
    def _route(self, raw):
        path = self.path.split("?", 1)[0]
        if path.startswith("/_fake/"):
            return self._control(path, raw)
        if path.startswith("/files/") and self.command == "GET":
            name = path.rsplit("/", 1)[-1]
            data = file_bytes(name)
            if data is None:
                return 404, b"not found", "text/plain", {}
            return 200, data, FILE_TYPES[name.rsplit(".", 1)[-1]], {}
        if not path.startswith("/v1/"):
            s, b = problem(404, "Not found", "Not found.")
            return s, b, "application/problem+json", {}
        if not self._authed():
            s, b = problem(401, "Unauthenticated", "You did not pass a valid authentication token")
            return s, b, "application/problem+json", {}
        m = re.match(r"^/v1/models/([^/]+)/([^/]+)/predictions$", path)
        if m and self.command == "POST":
            return self._create(raw, "%s/%s" % (m.group(1), m.group(2)), official=True)
        if path == "/v1/predictions" and self.command == "POST":
            return self._create(raw, None, official=False)
        m = re.match(r"^/v1/predictions/([a-z0-9]+)(/cancel)?$", path)
        if m:
            with STATE.lock:
                p = STATE.predictions.get(m.group(1))
            if p is None:
                s, b = problem(404, "Not found", "Not found.")
                return s, b, "application/problem+json", {}
            if m.group(2) and self.command == "POST":
                with STATE.lock:
                    p.cancel_calls += 1
                    status, _, _, _ = p.state(time.time())
                    if status in ("starting", "processing"):
                        p.canceled_at = time.time()
                return 200, p.to_json(), "application/json", {}
            if not m.group(2) and self.command == "GET":
                return self._get(p)
        s, b = problem(404, "Not found", "Not found.")
        return s, b, "application/problem+json", {}

    def _get(self, p):
        with STATE.lock:
            cfg = dict(STATE.config)
            slow = STATE.take("slow_get", int(cfg["slow_get_count"]))
            fail = STATE.take("get_500", int(cfg["get_500"]))
            bad = not fail and STATE.take("get_bad_json", int(cfg["get_bad_json"]))
        if slow:
            time.sleep(float(cfg["slow_get_ms"]) / 1000.0)
        if fail:
            return 500, {"detail": "Internal server error", "status": 500}, \
                "application/problem+json", {}
        if bad:
            return 200, b"<html>502 Bad Gateway</html>", "text/html", {}
        return 200, p.to_json(), "application/json", {"ratelimit-remaining": "59999"}

    def _create(self, raw, model, official):
        with STATE.lock:
            cfg = dict(STATE.config)
            throttled = STATE.take("create_429", int(cfg["create_429"]))
            broken = not throttled and STATE.take("create_500", int(cfg["create_500"]))
        if throttled:
            ra = int(cfg["retry_after"])
            return 429, {"detail": "Request was throttled. Your rate limit resets in ~%ds." % ra,
                         "status": 429}, "application/problem+json", {"Retry-After": str(ra)}
        if broken:
            return 500, {"detail": "Internal server error", "status": 500}, \
                "application/problem+json", {}
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            s, b = problem(400, "Bad request", "The request body is not valid JSON.")
            return s, b, "application/problem+json", {}
        errors = []
        if not isinstance(body, dict):
            errors.append("- (root): Invalid type. Expected: object")
            body = {}
        allowed = CREATE_KEYS - ({"version"} if official else set())
        for k in body:
            if k not in allowed:
                errors.append("- (root): Additional property %s is not allowed" % k)
        if "input" not in body:
            errors.append("- (root): input is required")
        elif not isinstance(body["input"], dict):
            errors.append("- input: Invalid type. Expected: object")
        if "webhook_events_filter" in body and not (
                isinstance(body["webhook_events_filter"], list)
                and set(body["webhook_events_filter"]) <= WEBHOOK_EVENTS):
            errors.append("- webhook_events_filter: invalid")
        version = "hidden"
        if official:
            owner, name = model.split("/")
            if not NAME_RE.match(owner) or not NAME_RE.match(name):
                s, b = problem(404, "Not found", "Not found.")
                return s, b, "application/problem+json", {}
        else:
            version = body.get("version")
            if "version" not in body:
                errors.append("- (root): version is required")
            elif not isinstance(version, str) or not (
                    VERSION_RE.match(version) or re.match(r"^[^/]+/[^/:]+(:[0-9a-f]{64})?$", version)):
                errors.append("- version: Invalid version or not permitted")
            model = "fake/model-by-version"
            if isinstance(version, str) and ":" in version:
                model, version = version.split(":", 1)
        if errors:
            s, b = problem(422, "Input validation failed", "\n".join(errors) + "\n")
            return s, b, "application/problem+json", {}
        if model == "fake/missing":
            s, b = problem(404, "Not found", "Not found.")
            return s, b, "application/problem+json", {}
        p = Prediction(cfg, model, version, body["input"], self.headers.get("Host") or "127.0.0.1",
                       stream=body.get("stream") is True)
        with STATE.lock:
            STATE.predictions[p.id] = p
        return 201, p.to_json(), "application/json", {"ratelimit-remaining": "599"}

    def _control(self, path, raw):
        if path == "/_fake/config" and self.command == "POST":
            try:
                upd = json.loads(raw or b"{}")
            except ValueError:
                return 400, {"error": "bad JSON"}, "application/json", {}
            with STATE.lock:
                unknown = [k for k in upd if k not in DEFAULTS]
                if unknown:
                    return 400, {"error": "unknown keys %s" % unknown}, "application/json", {}
                STATE.config.update(upd)
                return 200, dict(STATE.config), "application/json", {}
        if path == "/_fake/reset" and self.command == "POST":
            STATE.reset()
            return 200, {}, "application/json", {}
        if path == "/_fake/requests" and self.command == "GET":
            with STATE.lock:
                return 200, list(STATE.requests), "application/json", {}
        if path == "/_fake/predictions" and self.command == "GET":
            with STATE.lock:
                preds = list(STATE.predictions.values())
            out = {}
            for p in preds:
                obj = p.to_json()
                obj["_cancel_calls"] = p.cancel_calls
                out[p.id] = obj
            return 200, out, "application/json", {}
        return 404, {"error": "no such control"}, "application/json", {}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


STATE = None


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="test-token")
    args = ap.parse_args()
    STATE = State(args.token)
    srv = Server(("127.0.0.1", args.port), Handler)
    print("fake-replicate ready port=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()

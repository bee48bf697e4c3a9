"""Shared plumbing of the provider fakes (openai_images.py, kling.py, volcengine.py).

Python 3 standard library only. A fake is a ThreadingHTTPServer on 127.0.0.1 whose handler
subclasses FakeHandler and implements api(method, path, query, body_bytes). The base adds:

  control API  POST /_fake/config   merge a JSON object into the fault/behaviour config
               POST /_fake/reset    forget config, requests and tasks
               GET  /_fake/requests every API request so far: method, path, query, headers,
                                    json (parsed body or null), t (unix time)
               GET  /_fake/outputs  every generated image/video: content_type, b64
               GET  /files/<name>   media the fake serves (generated images and videos,
                                    and input.png, a 16x16 PNG for image inputs)
  faults       config "fail_429": N   the next N API requests answer 429 with
                                      Retry-After: config "retry_after" (default 1)
               config "fail_500": N   the next N API requests answer 500
               config "raw": [{"match", "status", "body"}, ...]  canned replies: the first
                                      entry whose match is a substring of the path?query
                                      answers the next such request verbatim, and is used up
  helpers      png(w, h, rgb) -> bytes (a real PNG made with zlib + struct)
               mp4() -> bytes or None (a real 1 s MP4 made with the ffmpeg CLI, if present)
"""
import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def png(width=8, height=8, rgb=(200, 30, 60)):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


_mp4_lock = threading.Lock()
_mp4_cache = []


def mp4():
    """A tiny real H.264 (or MPEG-4 part 2) MP4, or None without ffmpeg."""
    with _mp4_lock:
        if _mp4_cache:
            return _mp4_cache[0]
        data = None
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            d = tempfile.mkdtemp(prefix="fake-mp4-")
            out = os.path.join(d, "v.mp4")
            for codec in (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:v", "mpeg4"]):
                r = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f",
                                    "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1"] +
                                   codec + ["-movflags", "+faststart", out],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
                if r.returncode == 0 and os.path.getsize(out) > 0:
                    with open(out, "rb") as f:
                        data = f.read()
                    break
            shutil.rmtree(d, ignore_errors=True)
        _mp4_cache.append(data)
        return data


class FakeState:
    def __init__(self):
        self.lock = threading.RLock()  # handlers call helpers that lock again
        self.reset()

    def reset(self):
        self.config = {}
        self.requests = []
        self.tasks = {}
        self.files = {}  # name -> (content_type, bytes)
        self.outputs = []  # every generated output, in order: {"content_type", "b64"}
        # an input image tests can hand to image-to-X tasks as a URL
        self.files["input.png"] = ("image/png", png(16, 16, (10, 200, 10)))


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # a FakeState, set by serve()

    def log_message(self, fmt, *args):  # stderr stays quiet unless something breaks
        pass

    # -- replies --
    def reply(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def base_url(self):
        return "http://%s:%d" % self.server.server_address[:2]

    def serve_file(self, content_type, data):
        """Registers bytes under a fresh name; returns the absolute URL they are served at."""
        st = self.state
        with st.lock:
            name = "f%d" % (len(st.files) + 1)
            ext = {"image/png": ".png", "video/mp4": ".mp4", "image/jpeg": ".jpg"}.get(
                content_type, "")
            name += ext
            st.files[name] = (content_type, data)
        return "%s/files/%s" % (self.base_url(), name)

    def record_output(self, content_type, data):
        with self.state.lock:
            self.state.outputs.append({"content_type": content_type,
                                       "b64": base64.b64encode(data).decode()})

    def cfg(self, key, default=None):
        with self.state.lock:
            return self.state.config.get(key, default)

    # -- to be provided by the fake --
    def api(self, method, path, query, raw):
        raise NotImplementedError

    def error_body(self, status, message):
        return {"error": {"message": message}}

    # -- dispatch --
    def _handle(self):
        st = self.state
        parsed = urllib.parse.urlsplit(self.path)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if path == "/_fake/config" and self.command == "POST":
            with st.lock:
                st.config.update(json.loads(raw or b"{}"))
                cfg = dict(st.config)
            return self.reply(200, cfg)
        if path == "/_fake/reset" and self.command == "POST":
            with st.lock:
                st.reset()
            return self.reply(200, {})
        if path == "/_fake/requests" and self.command == "GET":
            with st.lock:
                return self.reply(200, list(st.requests))
        if path == "/_fake/outputs" and self.command == "GET":
            with st.lock:
                return self.reply(200, list(st.outputs))
        if path.startswith("/files/") and self.command in ("GET", "HEAD"):
            with st.lock:
                f = st.files.get(path[len("/files/"):])
            if f is None:
                return self.reply(404, {"error": "no such file"})
            return self.reply(200, f[1], ctype=f[0])

        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with st.lock:
            st.requests.append({"method": self.command, "path": path, "query": parsed.query,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "json": body, "t": time.time()})
            fault = None
            if st.config.get("fail_429", 0) > 0:
                st.config["fail_429"] -= 1
                fault = 429
            elif st.config.get("fail_500", 0) > 0:
                st.config["fail_500"] -= 1
                fault = 500
            retry_after = str(st.config.get("retry_after", 1))
            canned = None
            target = path + ("?" + parsed.query if parsed.query else "")
            for i, c in enumerate(st.config.get("raw") or []):
                if fault is None and c.get("match", "") in target:
                    canned = st.config["raw"].pop(i)
                    break
        if fault == 429:
            return self.reply(429, self.error_body(429, "Rate limit reached, slow down"),
                              headers={"Retry-After": retry_after})
        if fault == 500:
            return self.reply(500, self.error_body(500, "The server had an error"))
        if canned is not None:
            return self.reply(int(canned.get("status", 200)), canned.get("body", ""),
                              ctype=canned.get("content_type", "application/json"))
        try:
            return self.api(self.command, path, query, raw)
        except Exception as e:  # a fake bug must show up in its stderr, not hang the client
            print("fake error: %r" % (e,), file=sys.stderr, flush=True)
            return self.reply(500, {"error": {"message": "fake crashed: %r" % (e,)}})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def serve(handler_cls, name, argv=None, extra_args=None):
    import argparse
    ap = argparse.ArgumentParser(description="fake %s API" % name)
    ap.add_argument("--port", type=int, default=0)
    for args, kw in (extra_args or []):
        ap.add_argument(*args, **kw)
    opts = ap.parse_args(argv)
    handler_cls.state = FakeState()
    handler_cls.opts = opts
    srv = ThreadingHTTPServer(("127.0.0.1", opts.port), handler_cls)
    srv.daemon_threads = True
    print("fake-%s ready port=%d" % (name, srv.server_address[1]), flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass

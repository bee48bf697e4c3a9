"""Local media providers end to end: vips (image-to-image) fed from a URL and a data: URL,
kenburns (text-to-video, image-to-video) with a first-frame preview on the event stream,
and cancel of a long encode. Outputs are checked by parsing the files themselves (JPEG SOF,
MP4 mvhd), not only the asset metadata."""
import base64
import http.server
import os
import struct
import threading

from harness import Skip, case, check, short, sse_collect, url_path

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "media",
                       "photo_noise_64x48.png")


def _fixture_png():
    with open(FIXTURE, "rb") as f:
        return f.read()


def _fetch(srv, url):
    r = srv.get(url_path(url))
    check(r.status == 200, "GET %s: %r" % (url, r))
    return r


def _jpeg_size(data):
    """(width, height) from the first SOF marker of a JPEG."""
    check(data[:2] == b"\xff\xd8", "not a JPEG: %r" % data[:8])
    i = 2
    while i + 9 < len(data):
        check(data[i] == 0xFF, "JPEG marker expected at %d" % i)
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise AssertionError("JPEG without a SOF marker")


def _mp4_duration(data):
    """Movie duration in seconds from the mvhd box."""
    check(data[4:8] == b"ftyp", "MP4 does not start with ftyp: %r" % data[:12])
    i = data.find(b"mvhd")
    check(i > 0, "MP4 has no mvhd box")
    if data[i + 4] == 1:
        timescale, duration = struct.unpack(">IQ", data[i + 24:i + 36])
    else:
        timescale, duration = struct.unpack(">II", data[i + 16:i + 24])
    check(timescale > 0, "mvhd timescale 0")
    return duration / timescale


class _OneFile(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def _serve_png():
    handler = type("Handler", (_OneFile,), {"body": _fixture_png()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd


def _check_image_asset(srv, done, content_type, size):
    check(done["status"] == "succeeded", "task ended %s: %s" % (done["status"], done["error"]))
    assets = (done["result"] or {}).get("assets")
    check(isinstance(assets, list) and len(assets) == 1, "expected one asset, got %r" % (assets,))
    a = assets[0]
    check(a.get("content_type") == content_type, "asset content_type %r" % a.get("content_type"))
    body = _fetch(srv, a["url"]).body
    check(len(body) == a.get("bytes"), "asset bytes %r but served %d" % (a.get("bytes"), len(body)))
    if content_type == "image/jpeg":
        check(_jpeg_size(body) == size, "JPEG is %s, expected %s" % (_jpeg_size(body), size))
    # The core analyses every stored image: size and a 4x3 BlurHash (28 characters).
    check(a.get("width") == size[0] and a.get("height") == size[1],
          "asset width/height %r/%r, expected %s: %s" % (a.get("width"), a.get("height"), size,
                                                        short(str(a))))
    check(isinstance(a.get("blurhash"), str) and len(a["blurhash"]) == 28,
          "asset blurhash %r" % a.get("blurhash"))
    return a


@case("basic")
def test_vips_resize_from_url(ctx):
    srv = ctx.srv
    httpd = _serve_png()
    try:
        url = "http://127.0.0.1:%d/photo.png" % httpd.server_address[1]
        r = srv.post("/v1/tasks", {"task_type": "image-to-image",
                                   "params": {"provider": "vips", "image": url,
                                              "operation": "resize", "width": 32,
                                              "format": "jpeg"}})
        if r.status == 422 and "127.0.0.1" in str(r.json):
            raise Skip("server refuses loopback input URLs: %s" % short(str(r.json)))
        check(r.status == 202, "POST /v1/tasks: %r" % r)
        done = srv.wait_terminal(r.json["id"], 20)
        err = done.get("error") or {}
        if done["status"] == "failed" and "127.0.0.1" in str(err.get("message", "")):
            raise Skip("server refuses loopback input URLs: %s" % err.get("message"))
        _check_image_asset(srv, done, "image/jpeg", (32, 24))
    finally:
        httpd.shutdown()
        httpd.server_close()


@case("basic")
def test_vips_crop_from_data_url(ctx):
    srv = ctx.srv
    data_url = "data:image/png;base64," + base64.b64encode(_fixture_png()).decode()
    t = srv.create("image-to-image", {"provider": "vips", "image": data_url,
                                      "operation": "crop", "width": 20, "height": 10,
                                      "format": "png"})
    done = srv.wait_terminal(t["id"], 20)
    a = _check_image_asset(srv, done, "image/png", (20, 10))
    body = _fetch(srv, a["url"]).body
    w, h = struct.unpack(">II", body[16:24])
    check((w, h) == (20, 10), "PNG IHDR is %dx%d" % (w, h))


@case("basic")
def test_vips_rejects_a_non_image(ctx):
    srv = ctx.srv
    data_url = "data:image/png;base64," + base64.b64encode(b"this is not a picture").decode()
    t = srv.create("image-to-image", {"provider": "vips", "image": data_url, "width": 10})
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "failed", "non-image input ended %s" % done["status"])
    check((done["error"] or {}).get("code") == "invalid_input",
          "non-image input error %r" % done["error"])
    check(done["attempts"] == 1, "permanent failure was retried (%d attempts)" % done["attempts"])


@case("serial")
def test_kenburns_text_to_video_with_preview(ctx):
    srv = ctx.srv
    # Hold the only worker so the event stream is open before the video task starts.
    blocker = srv.create("text-to-image", {"prompt": "wait", "width": 64, "height": 64,
                                           "delay_ms": 800, "steps": 2})
    t = srv.create("text-to-video", {"provider": "kenburns", "prompt": "a lighthouse at dusk",
                                     "duration": 2, "width": 320, "height": 240, "seed": 5})
    ev = sse_collect(srv.port, t["id"], max_time=40)
    check(ev["status"] == 200 and ev["ended"],
          "event stream: HTTP %s ended=%s" % (ev["status"], ev["ended"]))
    previews = [e["json"]["preview_url"] for e in ev["events"]
                if isinstance(e.get("json"), dict) and isinstance(e["json"].get("preview_url"), str)]
    check(previews, "no event carried a preview_url (events: %s)"
          % [e["data"][:120] for e in ev["events"]])
    r = _fetch(srv, previews[0])
    check(r.headers.get("content-type", "").split(";")[0].strip() == "image/jpeg",
          "preview served as %r" % r.headers.get("content-type"))
    check(_jpeg_size(r.body) == (320, 240), "preview is %s" % (_jpeg_size(r.body),))

    done = srv.wait_terminal(t["id"], 5)
    check(done["status"] == "succeeded", "video task ended %s: %s" % (done["status"], done["error"]))
    check(srv.wait_terminal(blocker["id"], 5)["status"] == "succeeded", "blocker did not succeed")
    assets = (done["result"] or {}).get("assets")
    check(isinstance(assets, list) and len(assets) == 1, "expected one asset, got %r" % (assets,))
    a = assets[0]
    check(a.get("content_type") == "video/mp4", "asset content_type %r" % a.get("content_type"))
    body = _fetch(srv, a["url"]).body
    check(len(body) == a.get("bytes"), "asset bytes %r but served %d" % (a.get("bytes"), len(body)))
    duration = _mp4_duration(body)
    check(abs(duration - 2.0) < 0.1, "MP4 lasts %.3f s, expected 2" % duration)
    # The core's own analysis of the stored video, when it reports one.
    for key in ("duration", "duration_s"):
        if key in a:
            check(abs(float(a[key]) - 2.0) < 0.1, "asset %s %r" % (key, a[key]))
    if "width" in a:
        check((a.get("width"), a.get("height")) == (320, 240),
              "asset size %r x %r" % (a.get("width"), a.get("height")))


@case("basic")
def test_kenburns_image_to_video(ctx):
    srv = ctx.srv
    data_url = "data:image/png;base64," + base64.b64encode(_fixture_png()).decode()
    t = srv.create("image-to-video", {"provider": "kenburns", "image": data_url, "duration": 1,
                                      "fps": 12, "width": 160})
    done = srv.wait_terminal(t["id"], 30)
    check(done["status"] == "succeeded", "video task ended %s: %s" % (done["status"], done["error"]))
    a = done["result"]["assets"][0]
    check(a.get("content_type") == "video/mp4", "asset content_type %r" % a.get("content_type"))
    duration = _mp4_duration(_fetch(srv, a["url"]).body)
    check(abs(duration - 1.0) < 0.1, "MP4 lasts %.3f s, expected 1" % duration)


@case("basic")
def test_kenburns_cancel_long_encode(ctx):
    srv = ctx.srv
    t = srv.create("text-to-video", {"provider": "kenburns", "prompt": "long", "duration": 30,
                                     "fps": 60, "width": 1280, "height": 720})
    srv.wait_for(t["id"], lambda x: x.get("status") == "processing" and x.get("progress", 0) >= 5,
                 20, "encoding")
    r = srv.post("/v1/tasks/%s/cancel" % t["id"])
    check(r.status in (200, 202), "cancel: %r" % r)
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "canceled", "canceled encode ended %s" % done["status"])
    check(not (done["result"] or {}).get("assets"), "canceled encode stored assets")

"""Uploads (POST /v1/assets), media analysis of outputs, and the `command` provider."""
import json
import os
import uuid

from harness import case, check, check_error, url_path, raw_request

ENGINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "command",
                      "fake_engine.py")
FIXTURE_PNG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "media")


def _png_bytes():
    for name in sorted(os.listdir(FIXTURE_PNG)):
        if name.endswith(".png"):
            with open(os.path.join(FIXTURE_PNG, name), "rb") as f:
                data = f.read()
            if len(data) > 200:
                return data
    raise AssertionError("no PNG fixture")


def upload(srv, data, filename="in.png", ctype="image/png", field="file"):
    boundary = "gpbound" + uuid.uuid4().hex
    body = ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
            "Content-Type: %s\r\n\r\n" % (boundary, field, filename, ctype)).encode() + data + \
        ("\r\n--%s--\r\n" % boundary).encode()
    return srv.req("POST", "/v1/assets", body,
                   content_type="multipart/form-data; boundary=" + boundary)


@case("basic")
def test_asset_upload_and_use(ctx):
    srv = ctx.srv
    r = upload(srv, _png_bytes())
    check(r.status == 201, "upload: %r" % r)
    a = r.json
    for k in ("id", "url", "content_type", "bytes", "width", "height", "blurhash"):
        check(k in a, "asset lacks %s: %s" % (k, a))
    check(a["content_type"] == "image/png", "content_type %r" % a["content_type"])
    g = srv.get("/v1/assets/" + a["id"])
    check(g.status == 200 and g.json["id"] == a["id"], "GET asset: %r" % g)
    f = srv.get(url_path(a["url"]))
    check(f.status == 200 and f.body[:8] == b"\x89PNG\r\n\x1a\n", "asset file: %r" % f)
    # the asset id is a valid image input
    t = srv.create("image-to-image", {"image": a["id"], "operation": "grayscale"})
    done = srv.wait_terminal(t["id"], 30)
    check(done["status"] == "succeeded", "image-to-image from asset ended %s: %s"
          % (done["status"], done["error"]))
    out = done["result"]["assets"][0]
    for k in ("width", "height", "blurhash", "thumbnail_url"):
        check(k in out, "output asset lacks %s: %s" % (k, out))
    check(done["result"].get("blurhash") == out["blurhash"], "task blurhash not stored")
    th = srv.get(url_path(out["thumbnail_url"]))
    check(th.status == 200 and th.body[:2] == b"\xff\xd8", "thumbnail: %r" % th)


@case("basic")
def test_asset_upload_errors(ctx):
    srv = ctx.srv
    r = upload(srv, b"#!/bin/sh\necho hi\n", "x.sh", "image/png")
    check_error(r, 415, "unsupported_media_type", ["body.file"], "script upload")
    r = upload(srv, _png_bytes(), field="other")
    check_error(r, 422, "validation_error", ["body.file"], "no file field")
    r = srv.req("POST", "/v1/assets", b"{}", content_type="application/json")
    check_error(r, 415, "unsupported_media_type", ["headers.Content-Type"], "json body")
    r = upload(srv, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    check_error(r, 422, "validation_error", ["body.file"], "corrupt png")
    check(srv.get("/v1/assets/" + str(uuid.uuid4())).status == 404, "unknown asset not 404")
    check(srv.get("/v1/assets/nope").status == 404, "bad asset id not 404")
    t = srv.create("image-to-image", {"image": "ftp://example.com/x.png"}, expect=422)
    check("params.image" in json.dumps(t), "media ref error lacks params.image: %s" % t)
    t = srv.create("image-to-image", {"image": str(uuid.uuid4())})
    done = srv.wait_terminal(t["id"], 15)
    check(done["status"] == "failed" and done["error"]["code"] == "invalid_input",
          "missing asset ended %s %s" % (done["status"], done["error"]))


@case(args=["--max-upload-bytes", "2048"])
def test_asset_upload_too_large(ctx):
    r = upload(ctx.srv, b"\x89PNG\r\n\x1a\n" + b"\x00" * 10000)
    check_error(r, 413, "payload_too_large", (), "big upload")


def command_server(ctx, extra=()):
    srv = ctx.new_server(["--command-program", "/usr/bin/python3", "--command-args", ENGINE,
                          "--retry-base-ms", "10", "--retry-max-ms", "50"] + list(extra),
                         name="command")
    srv.start()
    return srv


@case(own=True)
def test_command_provider_success_and_inputs(ctx):
    srv = command_server(ctx)
    t = srv.create("text-to-image", {"provider": "command", "prompt": "x", "width": 80,
                                     "height": 64, "options": {"steps": 4}})
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "command task ended %s: %s" % (done["status"], done["error"]))
    a = done["result"]["assets"]
    check(len(a) == 1 and a[0]["content_type"] == "image/png", "assets %s" % a)
    check((a[0].get("width"), a[0].get("height")) == (80, 64), "size %s" % a[0])
    check(done["result"].get("engine") == "fake_engine", "result line not merged: %s" % done["result"])
    # leftovers are stored when the program names no output; outside paths are refused
    t = srv.create("text-to-image", {"provider": "command", "prompt": "x",
                                     "options": {"leave": True, "escape": True}})
    done = srv.wait_terminal(t["id"], 20)
    names = [x["name"] for x in done["result"]["assets"]]
    check(done["status"] == "succeeded" and names == ["image.png"], "leftover/escape: %s %s"
          % (done["status"], names))
    # media inputs arrive as local files
    data_url = "data:image/png;base64," + __import__("base64").b64encode(_png_bytes()).decode()
    t = srv.create("image-to-image", {"provider": "command", "image": data_url})
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded" and done["result"].get("inputs") == ["image"],
          "inputs: %s %s" % (done["status"], done["result"]))


@case(own=True)
def test_command_provider_failures_and_cancel(ctx):
    srv = command_server(ctx)
    t = srv.create("text-to-image", {"provider": "command", "prompt": "x",
                                     "options": {"exit": 3, "stderr": "CUDA out of memory"}},
                   max_retries=0)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "failed" and "CUDA out of memory" in done["error"]["message"],
          "failure: %s %s" % (done["status"], done["error"]))
    check(done["attempts"] == 1, "permanent failure retried")
    t = srv.create("text-to-image", {"provider": "command", "prompt": "x",
                                     "options": {"exit": 75}}, max_retries=1)
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "failed" and done["attempts"] == 2, "EX_TEMPFAIL not retried: %s"
          % done["attempts"])
    t = srv.create("text-to-image", {"provider": "command", "prompt": "x",
                                     "options": {"steps": 100, "sleep": 0.2}})
    srv.wait_for(t["id"], lambda x: x.get("progress", 0) > 0, 15, "progress")
    srv.post("/v1/tasks/%s/cancel" % t["id"])
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "canceled", "cancel ended %s" % done["status"])


@case(own=True)
def test_command_provider_unconfigured(ctx):
    srv = ctx.new_server([], name="nocmd")
    srv.start()
    t = srv.create("text-to-image", {"provider": "command", "prompt": "x"})
    done = srv.wait_terminal(t["id"], 10)
    check(done["status"] == "failed" and done["error"]["code"] == "not_configured",
          "unconfigured: %s" % done["error"])


@case(own=True)
def test_private_input_urls_refused_by_default(ctx):
    srv = ctx.new_server(["--retry-base-ms", "10"], name="private")
    srv.start()
    for url in ("http://127.0.0.1:%d/x.png" % srv.port, "http://169.254.169.254/latest/meta-data",
                "http://[::1]:%d/x.png" % srv.port, "http://10.1.2.3/x.png"):
        t = srv.create("image-to-image", {"image": url, "operation": "grayscale"})
        done = srv.wait_terminal(t["id"], 15)
        err = done["error"] or {}
        check(done["status"] == "failed" and err.get("code") == "invalid_input" and
              "private" in err.get("message", "") and done["attempts"] == 1,
              "%s: %s %s (attempts %s)" % (url, done["status"], err, done["attempts"]))

"""Outputs in S3: `serve --storage-url s3://...` against s3rver (tools/test-services.sh sets
GENPULSE_TEST_S3_URL); skipped without it. The asset URL is a presigned link to the object
store, fetched here like any client would, without going through GenPulse."""
import os
import struct
import urllib.error
import urllib.request

from harness import Skip, case, check

S3 = os.environ.get("GENPULSE_TEST_S3_URL")


def _fetch(url, timeout=15):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@case(own=True)
def test_storage_s3_text_to_image(ctx):
    if not S3:
        raise Skip("no GENPULSE_TEST_S3_URL")
    url = S3 + ("&" if "?" in S3 else "?") + "prefix=blackbox/"
    srv = ctx.new_server(["--storage-url", url], name="s3").start()
    t = srv.create("text-to-image", {"prompt": "a red fox", "width": 64, "height": 72, "seed": 3,
                                     "steps": 2})
    done = srv.wait_terminal(t["id"], 20)
    check(done["status"] == "succeeded", "image task ended %s: %s" % (done["status"], done["error"]))
    assets = (done["result"] or {}).get("assets") or []
    check(len(assets) == 1, "expected one asset, got %r" % (assets,))
    link = assets[0].get("url") or ""
    check(link.startswith("http://") and "X-Amz-Signature=" in link,
          "asset URL is not a presigned S3 link: %r" % link)
    check("/blackbox/%s/" % t["id"] in link, "object key lacks prefix and task id: %r" % link)
    status, body = _fetch(link)
    check(status == 200, "GET presigned asset: HTTP %s %r" % (status, body[:200]))
    check(body[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature: %r" % body[:8])
    w, h = struct.unpack(">II", body[16:24])
    check((w, h) == (64, 72), "PNG IHDR is %dx%d, expected 64x72" % (w, h))
    # a link with a forged signature is refused by the store
    forged = link[:-1] + ("0" if link[-1] != "0" else "1")
    status, _ = _fetch(forged)
    check(status == 403, "forged presigned link: HTTP %s, expected 403" % status)


@case(own=True)
def test_storage_s3_bad_credentials_fail_at_start(ctx):
    if not S3:
        raise Skip("no GENPULSE_TEST_S3_URL")
    at = S3.index("@")
    bad = "s3://S3RVER:wrong-secret" + S3[at:]
    srv = ctx.new_server(["--storage-url", bad], name="s3bad")
    try:
        srv.start(timeout=10)
    except AssertionError:
        pass  # exited during start-up, as it should
    else:
        check(False, "serve started with a wrong S3 secret")
    with open(srv.stderr_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    check("SignatureDoesNotMatch" in log, "start-up error does not name the S3 error: %s" % log[-800:])
    check("wrong-secret" not in log.split("=== start:")[-1].split("\n", 1)[1],
          "the secret appears in the server's log")

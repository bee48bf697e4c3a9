"""The volcengine provider against a fake VolcEngine visual API (tests/fakes/volcengine.py) on
127.0.0.1. The fake recomputes every request's V4 signature with its own Python code, so each
passing case also checks GenPulse's signer against an independent implementation."""
import shutil

from harness import case, check, Skip
from provider_fakes import (assets_of, cancel_promptly, expect_failed, fetch, gaps,
                            secrets_not_logged, start, succeeded, survive_malformed)

AK, SK = "AKLTtestvolc", "c2VjcmV0LXRlc3Qtdm9sYw=="


def start_volc(ctx, secret=SK, **config):
    return start(ctx, "volcengine.py", "volcengine",
                 lambda fake: {"base-url": fake.origin, "access-key": AK, "secret-key": secret,
                               "poll-interval-ms": 100},
                 fake_args=["--access-key", AK, "--secret-key", SK], **config)


def submits(fake):
    return [q for q in fake.requests("POST") if "Action=CVSync2AsyncSubmitTask" in q["query"]]


def results(fake):
    return [q for q in fake.requests("POST") if "Action=CVSync2AsyncGetResult" in q["query"]]


@case(own=True)
def test_volcengine_text_to_image_url(ctx):
    fake, srv = start_volc(ctx)
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "a lantern",
                                     "width": 512, "height": 768, "seed": 42}, max_retries=0)
    done = succeeded(srv, t["id"])
    body = fetch(srv, assets_of(done)[0], "image/png")
    outputs = fake.outputs()
    check(len(outputs) == 1 and body == outputs[0][1], "stored bytes differ from the fake's PNG")
    sent = submits(fake)[0]["json"]
    check(sent == {"req_key": "jimeng_t2i_v31", "prompt": "a lantern", "seed": 42, "width": 512,
                   "height": 768}, "submit body %r" % (sent,))
    polled = results(fake)
    check(len(polled) >= 2, "only %d result checks" % len(polled))
    check(polled[0]["json"].get("req_json") == '{"return_url":true}',
          "req_json %r" % polled[0]["json"].get("req_json"))
    check(done["result"].get("req_key") == "jimeng_t2i_v31", "result %r" % done["result"])
    secrets_not_logged(srv, SK)


@case(own=True)
def test_volcengine_text_to_image_base64(ctx):
    fake, srv = start_volc(ctx)
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "a lantern",
                                     "return_url": False, "req_key": "jimeng_t2i_v30",
                                     "scale": 0.7}, max_retries=0)
    done = succeeded(srv, t["id"])
    body = fetch(srv, assets_of(done)[0], "image/png")
    check(body == fake.outputs()[0][1], "stored bytes differ from the fake's PNG")
    sent = submits(fake)[0]["json"]
    check(sent.get("req_key") == "jimeng_t2i_v30" and sent.get("scale") == 0.7 and
          sent.get("seed") == -1, "submit body %r" % (sent,))
    check(results(fake)[0]["json"].get("req_json") == '{"return_url":false}', "req_json")


@case(own=True)
def test_volcengine_image_to_image(ctx):
    fake, srv = start_volc(ctx)
    image = fake.origin + "/files/input.png"
    t = srv.create("image-to-image", {"provider": "volcengine", "image": image,
                                      "prompt": "make it blue"}, max_retries=0)
    done = succeeded(srv, t["id"])
    fetch(srv, assets_of(done)[0], "image/png")
    sent = submits(fake)[0]["json"]
    check(sent.get("req_key") == "jimeng_i2i_v30" and sent.get("image_urls") == [image],
          "submit body %r" % (sent,))


@case(own=True)
def test_volcengine_text_to_video(ctx):
    if not shutil.which("ffmpeg"):
        raise Skip("no ffmpeg CLI: the fake cannot make an MP4")
    fake, srv = start_volc(ctx)
    t = srv.create("text-to-video", {"provider": "volcengine", "prompt": "waves",
                                     "duration": 10, "aspect_ratio": "1:1"}, max_retries=0)
    done = succeeded(srv, t["id"])
    body = fetch(srv, assets_of(done)[0], "video/mp4")
    check(body == fake.outputs()[0][1], "stored bytes differ from the fake's MP4")
    sent = submits(fake)[0]["json"]
    check(sent.get("req_key") == "jimeng_t2v_v30" and sent.get("frames") == 241 and
          sent.get("aspect_ratio") == "1:1", "submit body %r" % (sent,))


@case(own=True)
def test_volcengine_bad_secret(ctx):
    fake, srv = start_volc(ctx, secret="d3JvbmctdGVzdA==")
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "x"}, max_retries=2)
    expect_failed(srv, t["id"], "provider_auth", ("SignatureDoesNotMatch",), attempts=1)
    secrets_not_logged(srv, "d3JvbmctdGVzdA==")


@case(own=True)
def test_volcengine_429_retry_after(ctx):
    fake, srv = start_volc(ctx, fail_429=2, retry_after=1)
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "x"}, max_retries=0)
    succeeded(srv, t["id"])
    subs = submits(fake)
    check(len(subs) == 3, "expected 2 throttled submits and 1 good one, saw %d" % len(subs))
    for g in gaps(subs):
        check(g >= 0.9, "Retry-After: 1 not honoured: submits %.2fs apart" % g)


@case(own=True)
def test_volcengine_task_failed(ctx):
    msg = "Post Img Risk Not Pass"
    fake, srv = start_volc(ctx, task_fail=msg)
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "x"}, max_retries=2)
    expect_failed(srv, t["id"], "provider_failed", (msg, "50511"), attempts=1)


@case(own=True)
def test_volcengine_expired(ctx):
    fake, srv = start_volc(ctx, expire=True)
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "x"}, max_retries=2)
    expect_failed(srv, t["id"], "provider_failed", ("expired",), attempts=1)


@case(own=True)
def test_volcengine_cancel_while_polling(ctx):
    fake, srv = start_volc(ctx, never_finish=True)
    t = srv.create("text-to-image", {"provider": "volcengine", "prompt": "x"}, max_retries=0)
    fake.wait_requests("a result check", lambda q: "GetResult" in q["query"])
    cancel_promptly(srv, t["id"])


@case(own=True)
def test_volcengine_malformed_replies(ctx):
    fake, srv = start_volc(ctx)
    sub, res = "SubmitTask", "GetResult"
    cases = [(sub, 200, body, True) for body in (
        "not json", "[]", '{"code": 10000}', '{"code": 10000, "data": {"task_id": 5}}',
        '{"code": 10000, "data": {"task_id": "a/b"}}', '{"code": "10000"}')]
    cases += [(sub, 401, '{"ResponseMetadata": {"Error": "x"}}', True),
              (sub, 401, '{"ResponseMetadata": {"Error": {"Code": 5, "Message": null}}}', True)]
    cases += [(res, 200, body, True) for body in (
        '{"code": 10000, "data": {"status": "done"}}',
        '{"code": 10000, "data": {"status": ["x"]}}',
        '{"code": 10000, "data": {"status": "done", "image_urls": [5]}}',
        '{"code": 10000, "data": {"status": "done", "binary_data_base64": ["bm90IGFuIGltYWdl"]}}',
        '{"code": 10000, "data": {"status": "done", "binary_data_base64": [null]}}',
        '{"code": 10000, "data": {"status": "done", "video_url": "file:///etc/passwd"}}',
        '{"code": 10000, "data": {"status": "done", "image_urls": '
        '["http://127.0.0.1:1/nothing-listens.png"]}}')]
    cases += [(res, 200, body, False) for body in ("[]", '{"code": 10000, "data": 7}')]
    survive_malformed(fake, srv, "text-to-image", {"provider": "volcengine", "prompt": "x"}, cases)

"""The kling provider against a fake Kling API (tests/fakes/kling.py) on 127.0.0.1. The fake
verifies every request's HS256 JWT, so each passing case also proves the token is right.
Video cases need the ffmpeg CLI (the fake makes a real MP4 with it)."""
import shutil
import time

from harness import case, check, Skip
from provider_fakes import (assets_of, cancel_promptly, expect_failed, fetch, gaps,
                            secrets_not_logged, start, succeeded, survive_malformed)

AK, SK = "ak-test-kling", "sk-test-kling-secret"


def need_ffmpeg():
    if not shutil.which("ffmpeg"):
        raise Skip("no ffmpeg CLI: the fake cannot make an MP4")


def start_kling(ctx, secret=SK, **config):
    return start(ctx, "kling.py", "kling",
                 lambda fake: {"base-url": fake.origin, "access-key": AK, "secret-key": secret,
                               "poll-interval-ms": 100},
                 fake_args=["--access-key", AK, "--secret-key", SK], **config)


@case(own=True)
def test_kling_text_to_video(ctx):
    need_ffmpeg()
    fake, srv = start_kling(ctx)
    t = srv.create("text-to-video", {"provider": "kling", "prompt": "a cat surfing",
                                     "negative_prompt": "blur", "duration": 7,
                                     "aspect_ratio": "9:16", "mode": "pro", "cfg_scale": 0.4},
                   max_retries=0)
    done = succeeded(srv, t["id"])
    asset = assets_of(done)[0]
    body = fetch(srv, asset, "video/mp4")
    outputs = fake.outputs()
    check(len(outputs) == 1 and body == outputs[0][1], "stored bytes differ from the fake's MP4")
    check(abs(float(done["result"].get("duration", -1)) - 10.1) < 1e-6,
          "result.duration %r" % done["result"].get("duration"))
    check(done["result"].get("provider_task_id", "").isdigit(),
          "result.provider_task_id %r" % done["result"].get("provider_task_id"))
    creates = fake.requests("POST", "/v1/videos/text2video")
    check(len(creates) == 1, "saw %d creates" % len(creates))
    sent = creates[0]["json"]
    want = {"model_name": "kling-v1", "mode": "pro", "duration": "10", "prompt": "a cat surfing",
            "negative_prompt": "blur", "aspect_ratio": "9:16", "cfg_scale": 0.4,
            "external_task_id": t["id"]}
    check(sent == want, "create body %r, expected %r" % (sent, want))
    polls = fake.requests("GET", "/v1/videos/text2video/")
    check(len(polls) >= 2, "only %d status checks" % len(polls))
    secrets_not_logged(srv, SK)


@case(own=True)
def test_kling_image_to_video_url(ctx):
    need_ffmpeg()
    fake, srv = start_kling(ctx)
    image = fake.origin + "/files/input.png"
    t = srv.create("image-to-video", {"provider": "kling", "image": image, "prompt": "zoom in",
                                      "duration": 5, "model_name": "kling-v1-6"}, max_retries=0)
    done = succeeded(srv, t["id"])
    body = fetch(srv, assets_of(done)[0], "video/mp4")
    check(body[4:8] == b"ftyp", "not an MP4: %r" % body[:12])
    sent = fake.requests("POST", "/v1/videos/image2video")[0]["json"]
    check(sent.get("image") == image and sent.get("duration") == "5" and
          sent.get("model_name") == "kling-v1-6" and "aspect_ratio" not in sent,
          "create body %r" % (sent,))
    check(fake.requests("GET", "/v1/videos/image2video/"), "polled the wrong endpoint")


@case(own=True)
def test_kling_bad_secret(ctx):
    fake, srv = start_kling(ctx, secret="not-the-secret")
    t = srv.create("text-to-video", {"provider": "kling", "prompt": "x"}, max_retries=2)
    expect_failed(srv, t["id"], "provider_auth", ("signature mismatch",), attempts=1)
    secrets_not_logged(srv, "not-the-secret")


@case(own=True)
def test_kling_429_retry_after(ctx):
    need_ffmpeg()
    fake, srv = start_kling(ctx, fail_429=2, retry_after=1)
    t = srv.create("text-to-video", {"provider": "kling", "prompt": "x"}, max_retries=0)
    succeeded(srv, t["id"])
    creates = fake.requests("POST")
    check(len(creates) == 3, "expected 2 throttled creates and 1 good one, saw %d" % len(creates))
    for g in gaps(creates):
        check(g >= 0.9, "Retry-After: 1 not honoured: creates %.2fs apart" % g)


@case(own=True)
def test_kling_task_failed(ctx):
    msg = "Failure to pass the risk control system"
    fake, srv = start_kling(ctx, task_fail=msg)
    t = srv.create("text-to-video", {"provider": "kling", "prompt": "x"}, max_retries=2)
    expect_failed(srv, t["id"], "provider_failed", (msg,), attempts=1)


@case(own=True)
def test_kling_create_rejected(ctx):
    fake, srv = start_kling(ctx)
    # the fake, like Kling, refuses cfg_scale on kling-v2 models
    t = srv.create("text-to-video", {"provider": "kling", "prompt": "x", "cfg_scale": 0.5,
                                     "model_name": "kling-v2-master"}, max_retries=2)
    expect_failed(srv, t["id"], "provider_rejected", ("cfg_scale",), attempts=1)


@case(own=True)
def test_kling_cancel_while_polling(ctx):
    fake, srv = start_kling(ctx, never_finish=True)
    t = srv.create("text-to-video", {"provider": "kling", "prompt": "x"}, max_retries=0)
    fake.wait_requests("a status check", lambda q: q["method"] == "GET")
    cancel_promptly(srv, t["id"])
    # Kling has no cancel call: the provider just stops asking
    n = len(fake.requests("GET"))
    time.sleep(0.6)
    check(len(fake.requests("GET")) == n, "still polling after the cancel")
    check(not [q for q in fake.requests() if q["method"] not in ("GET", "POST")],
          "unexpected request methods")


@case(own=True)
def test_kling_malformed_replies(ctx):
    fake, srv = start_kling(ctx)
    create, poll = "/v1/videos/text2video", "/v1/videos/text2video/"
    cases = [(create, 200, body, True) for body in (
        "not json", "[]", '{"code": 0}', '{"code": 0, "data": []}',
        '{"code": 0, "data": {"task_id": 123}}', '{"code": 0, "data": {"task_id": "../../x"}}',
        '{"code": "0", "data": {"task_id": "1"}}', '{"code": 1e400}')]
    cases += [(create, 400, body, True) for body in ('{"code": 1201}', '{"message": []}', "")]
    cases += [(poll, 200, body, True) for body in (
        '{"code": 0, "data": {"task_status": 5}}',
        '{"code": 0, "data": {"task_status": "succeed"}}',
        '{"code": 0, "data": {"task_status": "succeed", "task_result": {"videos": "x"}}}',
        '{"code": 0, "data": {"task_status": "succeed", "task_result": {"videos": [{"url": 5}]}}}',
        '{"code": 0, "data": {"task_status": "succeed", "task_result": '
        '{"videos": [{"url": "file:///etc/passwd"}]}}}',
        '{"code": 0, "data": {"task_status": "failed", "task_status_msg": {"a": 1}}}')]
    # a transient garbage status reply is retried: the task may still succeed
    if shutil.which("ffmpeg"):
        cases += [(poll, 200, body, False) for body in ("[]", "not json", '{"code": 0}')]
    survive_malformed(fake, srv, "text-to-video", {"provider": "kling", "prompt": "x"}, cases)

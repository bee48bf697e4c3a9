"""The openai provider against a fake OpenAI Images API (tests/fakes/openai_images.py) on
127.0.0.1: b64_json and url replies, auth errors, 429 with Retry-After, 5xx, content-policy
rejections and cancel during a slow generation."""
from harness import case, check
from provider_fakes import (assets_of, cancel_promptly, expect_failed, fetch, gaps,
                            secrets_not_logged, start, succeeded, survive_malformed)

KEY = "sk-test-0123456789"
MODEL = "sd-turbo"  # an OpenAI-compatible server's model: any WxH size is fine


def start_openai(ctx, key=KEY, **config):
    return start(ctx, "openai_images.py", "openai",
                 lambda fake: {"base-url": fake.origin + "/v1", "api-key": key, "model": MODEL},
                 fake_args=["--key", KEY], **config)


def params(**extra):
    p = {"provider": "openai", "prompt": "a red fox in snow", "width": 80, "height": 64}
    p.update(extra)
    return p


@case(own=True)
def test_openai_b64_json(ctx):
    fake, srv = start_openai(ctx)
    t = srv.create("text-to-image", params(), max_retries=0)
    done = succeeded(srv, t["id"])
    asset = assets_of(done)[0]
    body = fetch(srv, asset, "image/png")
    outputs = fake.outputs()
    check(len(outputs) == 1 and body == outputs[0][1], "stored bytes differ from the fake's PNG")
    check(done["result"].get("revised_prompt") == "A vivid rendering of: a red fox in snow",
          "result.revised_prompt %r" % done["result"].get("revised_prompt"))
    reqs = fake.requests("POST", "/v1/images/generations")
    check(len(reqs) == 1, "expected one generation request, saw %d" % len(reqs))
    q = reqs[0]
    check(q["headers"].get("authorization") == "Bearer " + KEY, "no Bearer key sent")
    sent = q["json"]
    check(sent == {"prompt": "a red fox in snow", "size": "80x64", "n": 1, "model": MODEL,
                   "response_format": "b64_json"}, "request body %r" % (sent,))
    secrets_not_logged(srv, KEY)


@case(own=True)
def test_openai_url_two_images(ctx):
    fake, srv = start_openai(ctx)
    t = srv.create("text-to-image", params(response_format="url", n=2, size="96x64",
                                           negative_prompt="dogs"), max_retries=0)
    done = succeeded(srv, t["id"])
    assets = assets_of(done, 2)
    outputs = fake.outputs()
    check(len(outputs) == 2, "fake made %d images" % len(outputs))
    for a, (_, want) in zip(assets, outputs):
        check(fetch(srv, a, "image/png") == want, "stored bytes differ from the fake's PNG")
        check(a.get("revised_prompt"), "asset lacks revised_prompt: %r" % a)
    sent = fake.requests("POST")[0]["json"]
    check(sent.get("size") == "96x64" and sent.get("n") == 2 and
          sent.get("response_format") == "url", "request body %r" % (sent,))
    # not api.openai.com: the LocalAI-style negative_prompt goes along
    check(sent.get("negative_prompt") == "dogs", "negative_prompt not sent: %r" % (sent,))


@case(own=True)
def test_openai_bad_key(ctx):
    fake, srv = start_openai(ctx, key="sk-wrong-key")
    t = srv.create("text-to-image", params(), max_retries=2)
    expect_failed(srv, t["id"], "provider_auth", ("Incorrect API key provided",), attempts=1)
    check(len(fake.requests("POST")) == 1, "a 401 was retried")
    secrets_not_logged(srv, "sk-wrong-key")


@case(own=True)
def test_openai_429_retry_after(ctx):
    fake, srv = start_openai(ctx, fail_429=2, retry_after=1)
    t = srv.create("text-to-image", params(), max_retries=0)
    done = succeeded(srv, t["id"])
    assets_of(done)
    reqs = fake.requests("POST")
    check(len(reqs) == 3, "expected 2 throttled requests and 1 good one, saw %d" % len(reqs))
    for g in gaps(reqs):
        check(g >= 0.9, "Retry-After: 1 not honoured: requests %.2fs apart" % g)


@case(own=True)
def test_openai_content_policy(ctx):
    msg = "Your request was rejected as a result of our safety system."
    fake, srv = start_openai(ctx, reject=msg)
    t = srv.create("text-to-image", params(), max_retries=2)
    expect_failed(srv, t["id"], "provider_rejected", (msg,), attempts=1)


@case(own=True)
def test_openai_server_errors_retryable(ctx):
    fake, srv = start_openai(ctx, fail_500=100)
    t = srv.create("text-to-image", params(), max_retries=1)
    expect_failed(srv, t["id"], "provider_unavailable", ("HTTP 500",), attempts=2)
    # a POST that may have run is not repeated inside one attempt
    check(len(fake.requests("POST")) == 2, "saw %d generation requests for 2 attempts"
          % len(fake.requests("POST")))


@case(own=True)
def test_openai_cancel_while_generating(ctx):
    fake, srv = start_openai(ctx, delay_s=30)
    t = srv.create("text-to-image", params(), max_retries=0)
    fake.wait_requests("the generation request", lambda q: q["method"] == "POST")
    cancel_promptly(srv, t["id"])


@case(own=True)
def test_openai_malformed_replies(ctx):
    fake, srv = start_openai(ctx)
    gen = "/v1/images/generations"
    cases = [(gen, 200, body, True) for body in (
        "not json", "[]", "null", '{"data": 5}', '{"data": []}', '{"data": [5]}',
        '{"data": [{}]}', '{"data": [{"b64_json": "!!!"}]}',
        '{"data": [{"b64_json": "aGVsbG8="}]}', '{"data": [{"url": "ftp://x/y.png"}]}',
        '{"data": [{"url": "file:///etc/passwd"}]}', '{"data": [{"url": 7}]}',
        '{"data": [{"b64_json": null, "url": null}]}',
        '{"data": [' + ",".join(['{"b64_json": "aGVsbG8="}'] * 9) + "]}")]
    cases += [(gen, 400, '{"error": "plain string"}', True),
              (gen, 400, '{"error": {"message": 5, "code": []}}', True),
              (gen, 418, "<html>teapot</html>", True),
              (gen, 200, '{"data": [{"url": "http://127.0.0.1:1/nothing-listens.png"}]}', True)]
    survive_malformed(fake, srv, "text-to-image", params(), cases)

"""API surface: health, task types, routing, request-body errors, validation, listing,
idempotency."""
import json
import threading
import time
import uuid

from harness import (TestFailure, case, check, check_error, check_task_shape, parse_time,
                     raw_request, short, url_path)


# ------------------------------------------------------------------------------------------
# Health, task types, routing
# ------------------------------------------------------------------------------------------

@case("basic")
def test_health(ctx):
    r = ctx.srv.get("/health")
    check(r.status == 200, "GET /health: %r" % r)
    check(isinstance(r.json, dict) and r.json.get("status") == "ok",
          "GET /health body should have status \"ok\": %r" % r)
    check("application/json" in r.headers.get("content-type", ""),
          "GET /health content-type %r" % r.headers.get("content-type"))


@case("basic")
def test_task_types(ctx):
    r = ctx.srv.get("/v1/task-types")
    check(r.status == 200 and isinstance(r.json, dict), "GET /v1/task-types: %r" % r)
    data = r.json.get("data")
    check(isinstance(data, list), "task-types: data not a list")
    by_name = {}
    for tt in data:
        for k in ("name", "description", "default_provider", "providers"):
            check(k in tt, "task type lacks %r: %s" % (k, short(json.dumps(tt))))
        by_name[tt["name"]] = tt
    expect = {"echo": ("echo", "echo"), "text-to-image": ("simulator", "simulator"),
              "text-to-audio": ("espeak", "espeak")}
    for name, (default, prov) in expect.items():
        check(name in by_name, "task type %r missing (have %s)" % (name, sorted(by_name)))
        tt = by_name[name]
        check(tt["default_provider"] == default, "%s default_provider %r, expected %r"
              % (name, tt["default_provider"], default))
        provs = {p.get("name"): p for p in tt["providers"]}
        check(prov in provs, "%s: provider %r missing (have %s)" % (name, prov, sorted(provs)))
        for pname, p in provs.items():
            check(isinstance(p.get("description"), str), "%s/%s: no description" % (name, pname))
            s = p.get("params_schema")
            check(isinstance(s, dict), "%s/%s: params_schema not an object" % (name, pname))
            check(s.get("$schema") == "https://json-schema.org/draft/2020-12/schema",
                  "%s/%s: $schema is %r" % (name, pname, s.get("$schema")))
            check(s.get("type") == "object", "%s/%s: type %r" % (name, pname, s.get("type")))
            check(isinstance(s.get("properties"), dict), "%s/%s: properties" % (name, pname))
            check(isinstance(s.get("required"), list), "%s/%s: required not a list" % (name, pname))
            check(s.get("additionalProperties") is False,
                  "%s/%s: additionalProperties is %r, expected false"
                  % (name, pname, s.get("additionalProperties")))
            for req in s["required"]:
                check(req in s["properties"], "%s/%s: required %r not in properties" % (name, pname, req))
    sim = {p["name"]: p for p in by_name["text-to-image"]["providers"]}["simulator"]["params_schema"]
    props = sim["properties"]
    for k in ("prompt", "negative_prompt", "width", "height", "seed", "delay_ms", "steps", "fail",
              "fail_times"):
        check(k in props, "text-to-image/simulator schema lacks property %r (has %s)" % (k, sorted(props)))
    check("prompt" in sim["required"], "prompt not required in simulator schema")
    w = props["width"]
    check(w.get("type") == "integer" and w.get("minimum") == 64 and w.get("maximum") == 4096
          and w.get("default") == 512, "width schema: %s" % json.dumps(w))
    p = props["prompt"]
    check(p.get("type") == "string" and p.get("minLength") == 1 and p.get("maxLength") == 4000,
          "prompt schema: %s" % json.dumps(p))
    es = {p["name"]: p for p in by_name["text-to-audio"]["providers"]}["espeak"]["params_schema"]
    for k in ("text", "voice", "rate", "pitch"):
        check(k in es["properties"], "text-to-audio/espeak schema lacks %r" % k)
    check("text" in es["required"], "text not required in espeak schema")
    check(es["properties"]["rate"].get("minimum") == 80 and es["properties"]["rate"].get("maximum") == 450,
          "rate schema: %s" % json.dumps(es["properties"]["rate"]))
    check(es["properties"]["pitch"].get("minimum") == 0 and es["properties"]["pitch"].get("maximum") == 99,
          "pitch schema: %s" % json.dumps(es["properties"]["pitch"]))


@case("basic")
def test_unknown_route_404(ctx):
    for path in ("/nope", "/v1/nope", "/v1/tasks/%s/bogus" % uuid.uuid4(), "/v1", "/v2/tasks"):
        check_error(ctx.srv.get(path), 404, "not_found", what="GET %s" % path)
    check_error(ctx.srv.post("/nope", {"a": 1}), 404, "not_found", what="POST /nope")


@case("basic")
def test_wrong_method_405(ctx):
    t = ctx.srv.create("echo", {"message": "m"})
    tid = t["id"]
    cases = [("DELETE", "/v1/tasks"), ("PUT", "/v1/tasks"), ("PATCH", "/v1/tasks"),
             ("DELETE", "/v1/tasks/%s" % tid), ("PUT", "/v1/tasks/%s" % tid),
             ("POST", "/v1/tasks/%s" % tid), ("GET", "/v1/tasks/%s/cancel" % tid),
             ("POST", "/v1/tasks/%s/events" % tid), ("POST", "/v1/task-types"),
             ("DELETE", "/health")]
    for method, path in cases:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        r = ctx.srv.req(method, path, body)
        check_error(r, 405, "method_not_allowed", what="%s %s" % (method, path))


@case("basic")
def test_get_unknown_and_malformed_id_404(ctx):
    for tid in (str(uuid.uuid4()), "not-a-uuid", "1", "x" * 300, "..%2F..%2Fetc",
                str(uuid.uuid4()).upper()[:-1] + "Z"):
        check_error(ctx.srv.get("/v1/tasks/%s" % tid), 404, "not_found", what="GET task %s" % tid[:40])
    check_error(ctx.srv.post("/v1/tasks/%s/cancel" % uuid.uuid4()), 404, "not_found",
                what="cancel unknown")
    check_error(ctx.srv.post("/v1/tasks/not-a-uuid/cancel"), 404, "not_found",
                what="cancel malformed id")


@case("basic")
def test_nul_byte_in_path_404(ctx):
    # %00 must not cut the path short: "/v1/tasks/%00" is not "/v1/tasks/".
    for method, path in (("GET", "/v1/tasks/%00"), ("GET", "/health%00junk"),
                         ("GET", "/v1/tasks%00/whatever"), ("POST", "/v1/tasks%00x")):
        body = {"task_type": "echo", "params": {"message": "nul"}} if method == "POST" else None
        r = ctx.srv.req(method, path, body)
        check_error(r, 404, "not_found", what="%s %s" % (method, path))


@case("basic")
def test_keep_alive_connection(ctx):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", ctx.srv.port, timeout=10)
    try:
        for i in range(5):
            conn.request("GET", "/health")
            r = conn.getresponse()
            r.read()
            check(r.status == 200, "request %d on a kept-alive connection: %d" % (i, r.status))
        body = json.dumps({"task_type": "echo", "params": {"message": "ka"}})
        conn.request("POST", "/v1/tasks", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        check(r.status == 202, "POST on a kept-alive connection: %d" % r.status)
        conn.request("GET", "/nope")
        r = conn.getresponse()
        r.read()
        check(r.status == 404, "404 on a kept-alive connection: %d" % r.status)
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------
# Request-body errors
# ------------------------------------------------------------------------------------------

@case("basic")
def test_invalid_json_400(ctx):
    for body in (b"{", b"not json", b'{"task_type": "echo",}', b'{"task_type": echo}', b"",
                 b'{"task_type":"echo","params":{}} trailing', b"\x00\x01"):
        r = ctx.srv.post("/v1/tasks", body)
        check_error(r, 400, "invalid_json", what="body %r" % body[:40])


@case("basic")
def test_invalid_utf8_400(ctx):
    for body in (b'{"task_type":"echo","params":{"message":"\xff\xfe"}}',
                 b'{"task_type":"echo","params":{"message":"\xc0\xaf"}}',   # overlong '/'
                 b'{"task_type":"echo","params":{"message":"\xed\xa0\x80"}}',  # UTF-16 surrogate
                 b'{"task_type":"ech\x80o","params":{}}'):
        r = ctx.srv.post("/v1/tasks", body)
        check_error(r, 400, "invalid_json", what="invalid UTF-8 body %r" % body)
    check(ctx.srv.get("/health").status == 200, "server unhealthy after invalid UTF-8")


@case("basic")
def test_unsupported_media_type_415(ctx):
    body = json.dumps({"task_type": "echo", "params": {}})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", None):
        r = ctx.srv.post("/v1/tasks", body, content_type=ctype)
        check_error(r, 415, "unsupported_media_type", what="Content-Type %r" % ctype)
    for ctype in ("application/json; charset=utf-8", "Application/JSON"):
        r = ctx.srv.post("/v1/tasks", body, content_type=ctype)
        check(r.status == 202, "Content-Type %r should be accepted, got %r" % (ctype, r))


@case("basic")
def test_payload_too_large_413(ctx):
    # A real body just over the default limit (1 MiB).
    big = json.dumps({"task_type": "echo", "params": {"message": "x",
                                                     "data": {"blob": "y" * (1100 * 1024)}}}).encode()
    req = (b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(big)) + big
    r, send_err = raw_request(ctx.srv.port, req, timeout=10)
    check(r is not None, "no HTTP response to a %d-byte body (send error: %r)" % (len(big), send_err))
    check_error(r, 413, "payload_too_large", what="%d-byte body" % len(big))
    # A Content-Length far over the limit with no body sent: must answer at once, not wait.
    req = (b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 10000000000\r\nConnection: close\r\n\r\n{")
    t0 = time.time()
    r, send_err = raw_request(ctx.srv.port, req, timeout=5)
    check(r is not None, "no response to Content-Length: 10000000000 within 5 s (%r)" % (send_err,))
    check_error(r, 413, "payload_too_large", what="Content-Length: 10000000000")
    check(time.time() - t0 < 3, "413 for a huge Content-Length took %.1fs" % (time.time() - t0))
    check(ctx.srv.get("/health").status == 200, "server unhealthy after 413s")


@case("basic")
def test_big_allowed_body_ok(ctx):
    # ~900 KB, under the 1 MiB default, spread over many keys.
    data = {"k%04d" % i: ("v%04d" % i) * 180 for i in range(1000)}
    body = {"task_type": "echo", "params": {"message": "big", "data": data}}
    size = len(json.dumps(body))
    check(size < 1048576 - 1024, "test bug: body is %d bytes" % size)
    r = ctx.srv.post("/v1/tasks", body)
    check(r.status == 202, "a %d-byte body (under the limit) should be accepted: %r" % (size, r))
    t = ctx.srv.wait_terminal(r.json["id"], 15)
    check(t["status"] == "succeeded", "big echo task ended %s: %s" % (t["status"], t.get("error")))
    check(t["result"].get("data") == data, "big echo result data differs from the input")


@case("basic")
def test_deeply_nested_json(ctx):
    for depth in (3000, 100000):
        body = ('{"task_type":"echo","params":{"data":' + '{"a":' * depth + '1' + '}' * depth
                + '}}').encode()
        r = ctx.srv.post("/v1/tasks", body)
        check(r.status in (400, 413, 422), "nesting depth %d: expected 400 or 422, got %r" % (depth, r))
        arr = ('{"task_type":"echo","params":{"data":{"x":' + '[' * depth + ']' * depth + '}}}').encode()
        r = ctx.srv.post("/v1/tasks", arr)
        check(r.status in (400, 413, 422), "array nesting depth %d: expected 400 or 422, got %r" % (depth, r))
    check(ctx.srv.get("/health").status == 200, "server unhealthy after deeply nested JSON")


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------

def _v(ctx, body, fields, what):
    r = ctx.srv.post("/v1/tasks", body)
    check_error(r, 422, "validation_error", fields, what=what)


@case("basic")
def test_validation_task_type_and_provider(ctx):
    _v(ctx, {"task_type": "no-such-type", "params": {}}, ["task_type"], "unknown task type")
    _v(ctx, {"params": {"prompt": "x"}}, ["task_type"], "missing task_type")
    _v(ctx, {"task_type": 5, "params": {}}, ["task_type"], "task_type not a string")
    _v(ctx, {"task_type": "text-to-image", "params": {"prompt": "x", "provider": "nope"}},
       ["params.provider"], "unknown provider")
    _v(ctx, {"task_type": "text-to-image", "params": {"prompt": "x", "provider": "espeak"}},
       ["params.provider"], "provider that does not serve the type")
    _v(ctx, {"task_type": "text-to-image", "params": {"prompt": "x", "provider": 7}},
       ["params.provider"], "provider not a string")
    _v(ctx, {"task_type": "echo", "params": "x"}, ["params"], "params not an object")


@case("basic")
def test_validation_top_level_not_object(ctx):
    for body in ("[]", "1", '"x"', "null"):
        r = ctx.srv.post("/v1/tasks", body)
        check(r.status in (400, 422), "body %s: expected 400/422, got %r" % (body, r))
        check(isinstance(r.json, dict) and "error" in r.json, "body %s: no error envelope: %r" % (body, r))


@case("basic")
def test_validation_params(ctx):
    tti = "text-to-image"
    _v(ctx, {"task_type": tti, "params": {}}, ["params.prompt"], "missing prompt")
    _v(ctx, {"task_type": tti, "params": {"prompt": ""}}, ["params.prompt"], "empty prompt")
    _v(ctx, {"task_type": tti, "params": {"prompt": "p" * 4001}}, ["params.prompt"], "4001-char prompt")
    _v(ctx, {"task_type": tti, "params": {"prompt": 12}}, ["params.prompt"], "prompt not a string")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "width": 10, "height": 99999}},
       ["params.width", "params.height"], "width and height out of range")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "width": 63, "height": 4097}},
       ["params.width", "params.height"], "width 63 / height 4097")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "width": "abc"}}, ["params.width"],
       "width a string")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "width": True}}, ["params.width"],
       "width a boolean")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "width": 100.5}}, ["params.width"],
       "width fractional")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "seed": -1}}, ["params.seed"], "seed -1")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "bogus": 1}}, ["params.bogus"],
       "unknown param")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "delay_ms": -1}}, ["params.delay_ms"],
       "delay_ms -1")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "delay_ms": 600001}}, ["params.delay_ms"],
       "delay_ms 600001")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "steps": 0}}, ["params.steps"], "steps 0")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "steps": 1001}}, ["params.steps"], "steps 1001")
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "fail": 3}}, ["params.fail"], "fail not a string")
    # every bad field at once
    _v(ctx, {"task_type": tti, "params": {"width": 1, "height": "h", "steps": 0, "extra": 1}},
       ["params.prompt", "params.width", "params.height", "params.steps", "params.extra"],
       "five bad fields at once")
    # echo: simulator params are unknown there; message is a string
    _v(ctx, {"task_type": "echo", "params": {"delay_ms": 5}}, ["params.delay_ms"],
       "simulator param on echo")
    _v(ctx, {"task_type": "echo", "params": {"message": 5, "data": "s"}},
       ["params.message", "params.data"], "echo message/data mistyped")
    # text-to-audio / espeak
    tta = "text-to-audio"
    _v(ctx, {"task_type": tta, "params": {}}, ["params.text"], "missing text")
    _v(ctx, {"task_type": tta, "params": {"text": "hi", "rate": 79, "pitch": 100}},
       ["params.rate", "params.pitch"], "rate 79 / pitch 100")
    _v(ctx, {"task_type": tta, "params": {"text": "hi", "rate": 451, "pitch": -1}},
       ["params.rate", "params.pitch"], "rate 451 / pitch -1")
    _v(ctx, {"task_type": tta, "params": {"text": "hi", "voice": 3}}, ["params.voice"], "voice mistyped")


@case("basic")
def test_validation_envelope(ctx):
    base = {"task_type": "echo", "params": {}}
    for bad in (-1, 10, "high", 1.5, True):
        _v(ctx, dict(base, priority=bad), ["priority"], "priority %r" % (bad,))
    for bad in (-1, "3", 1.5, True, 101):
        _v(ctx, dict(base, max_retries=bad), ["max_retries"], "max_retries %r" % (bad,))
    _v(ctx, {"task_type": "text-to-image", "params": {"width": 5}, "priority": 11},
       ["params.prompt", "params.width", "priority"], "envelope and params errors together")
    for ok in (0, 9):
        r = ctx.srv.post("/v1/tasks", dict(base, priority=ok))
        check(r.status == 202, "priority %d should be accepted: %r" % (ok, r))
        check(r.json["priority"] == ok, "priority echoed as %r" % r.json.get("priority"))


# ------------------------------------------------------------------------------------------
# Task object basics
# ------------------------------------------------------------------------------------------

@case("basic")
def test_create_and_get_echo(ctx):
    params = {"message": "hello ✓", "data": {"n": 1, "list": [1, 2, {"x": None}], "s": "é"}}
    r = ctx.srv.post("/v1/tasks", {"task_type": "echo", "params": params, "priority": 3,
                                   "max_retries": 2})
    check(r.status == 202, "create echo: %r" % r)
    t = r.json
    check_task_shape(t, "POST response")
    check(t["task_type"] == "echo" and t["provider"] == "echo", "type/provider: %s/%s"
          % (t["task_type"], t["provider"]))
    check(t["priority"] == 3 and t["max_retries"] == 2, "priority/max_retries not echoed: %s/%s"
          % (t["priority"], t["max_retries"]))
    check(t["params"] == dict(params, provider="echo"),
          "params should be the request params plus provider: %s" % short(json.dumps(t["params"])))
    check(t["status"] in ("pending", "processing", "succeeded"), "initial status %s" % t["status"])
    got = ctx.srv.get(url_path(t["urls"]["get"]))
    check(got.status == 200 and got.json.get("id") == t["id"], "GET urls.get: %r" % got)
    done = ctx.srv.wait_terminal(t["id"], 10)
    check_task_shape(done, "finished echo task")
    check(done["status"] == "succeeded", "echo ended %s (%s)" % (done["status"], done["error"]))
    check(done["error"] is None, "succeeded task has error %r" % done["error"])
    check(done["attempts"] == 1, "echo attempts %r" % done["attempts"])
    check(isinstance(done["result"], dict), "echo result %r" % done["result"])
    for k, v in done["params"].items():
        check(done["result"].get(k) == v, "echo result[%r] = %r, expected %r"
              % (k, done["result"].get(k), v))
    c, s, e = (parse_time(done[k]) for k in ("created_at", "started_at", "completed_at"))
    check(c <= s + 0.001 <= e + 0.002, "times out of order: %s %s %s"
          % (done["created_at"], done["started_at"], done["completed_at"]))
    check(abs(c - time.time()) < 60, "created_at %s is not now" % done["created_at"])


@case("basic")
def test_defaults_filled(ctx):
    t = ctx.srv.create("text-to-image", {"prompt": "a cat"})
    p = t["params"]
    want = {"prompt": "a cat", "width": 512, "height": 512, "seed": 0, "provider": "simulator"}
    for k, v in want.items():
        check(p.get(k) == v, "text-to-image params.%s = %r, expected default %r" % (k, p.get(k), v))
    for k, v in (("delay_ms", 0), ("steps", 10)):
        check(p.get(k) == v, "simulator params.%s = %r, expected default %r" % (k, p.get(k), v))
    check(t["provider"] == "simulator", "provider %r" % t["provider"])
    check("negative_prompt" not in p or p["negative_prompt"] is None or isinstance(p["negative_prompt"], str),
          "negative_prompt %r" % p.get("negative_prompt"))
    a = ctx.srv.create("text-to-audio", {"text": "hi"})
    check(a["provider"] == "espeak" and a["params"].get("voice") == "en",
          "text-to-audio defaults: provider %r voice %r" % (a["provider"], a["params"].get("voice")))
    ctx.srv.wait_terminal(t["id"], 15)
    ctx.srv.wait_terminal(a["id"], 20)


# ------------------------------------------------------------------------------------------
# Listing
# ------------------------------------------------------------------------------------------

@case(args=["--retry-base-ms", "10"])
def test_list_pagination_and_filters(ctx):
    srv = ctx.srv
    ids = []
    for i in range(23):
        ids.append(srv.create("echo", {"message": "m%d" % i})["id"])
        if i in (5, 15):
            ids.append(srv.create("text-to-image", {"prompt": "x", "fail": "nope", "width": 64,
                                                    "height": 64}, max_retries=0)["id"])
    for tid in ids:
        srv.wait_terminal(tid, 15)
    newest_first = list(reversed(ids))

    r = srv.get("/v1/tasks")
    check(r.status == 200 and isinstance(r.json, dict), "GET /v1/tasks: %r" % r)
    check(set(r.json) >= {"data", "next_cursor"}, "list keys: %s" % sorted(r.json))
    page = r.json["data"]
    check(len(page) == 20, "default limit should give 20 items, got %d" % len(page))
    check([t["id"] for t in page] == newest_first[:20], "default page is not newest-first")
    check(isinstance(r.json["next_cursor"], str), "next_cursor %r after a full first page"
          % r.json["next_cursor"])
    for t in page:
        check_task_shape(t, "list item")

    for limit in (1, 7, 25, 100):
        seen = srv.list_all(limit=limit)
        got = [t["id"] for t in seen]
        check(got == newest_first, "limit=%d pagination: %d items, %d distinct, order ok=%s"
              % (limit, len(got), len(set(got)), got == newest_first))

    r = srv.get("/v1/tasks?limit=100")
    check(r.json["next_cursor"] is None, "next_cursor should be null when all fit: %r"
          % r.json["next_cursor"])

    failed = srv.list_all("status=failed", limit=10)
    check(len(failed) == 2 and all(t["status"] == "failed" for t in failed),
          "status=failed gave %d items" % len(failed))
    tti = srv.list_all("task_type=text-to-image", limit=10)
    check(len(tti) == 2 and all(t["task_type"] == "text-to-image" for t in tti),
          "task_type=text-to-image gave %d items" % len(tti))
    both = srv.list_all("status=succeeded&task_type=echo", limit=4)
    check(len(both) == 23, "status=succeeded&task_type=echo gave %d items (expected 23)" % len(both))
    none = srv.list_all("status=canceled", limit=10)
    check(none == [], "status=canceled gave %d items" % len(none))

    for bad in ("0", "101", "-1", "abc", "1.5"):
        check_error(srv.get("/v1/tasks?limit=" + bad), 422, "validation_error", ["limit"],
                    what="limit=%r" % bad)
    for bad in ("bogus", "SUCCEEDED"):
        check_error(srv.get("/v1/tasks?status=" + bad), 422, "validation_error", ["status"],
                    what="status=%r" % bad)
    for bad in ("garbage", "%00%01", "9" * 60):
        r = srv.get("/v1/tasks?cursor=" + bad)
        check(r.status in (200, 400, 422), "cursor=%r: expected 400/422 (or 200), got %r" % (bad, r))
        if r.status != 200:
            check(isinstance(r.json, dict) and "error" in r.json, "cursor=%r: no error envelope" % bad)

    # Tasks created while paginating must not make the walk repeat or skip old ones.
    r = srv.get("/v1/tasks?limit=5")
    walked = [t["id"] for t in r.json["data"]]
    cursor = r.json["next_cursor"]
    for i in range(3):
        srv.create("echo", {"message": "late%d" % i})
    while cursor is not None:
        r = srv.get("/v1/tasks?limit=5&cursor=" + cursor)
        check(r.status == 200, "page after new inserts: %r" % r)
        walked += [t["id"] for t in r.json["data"]]
        cursor = r.json["next_cursor"]
    check(walked == newest_first, "walk with inserts in between: %d items (%d distinct), expected %d"
          % (len(walked), len(set(walked)), len(newest_first)))


# ------------------------------------------------------------------------------------------
# Idempotency
# ------------------------------------------------------------------------------------------

@case(args=["--retry-base-ms", "10"])
def test_idempotency_key(ctx):
    srv = ctx.srv
    body = {"task_type": "echo", "params": {"message": "once"}}
    key = "key-%s" % uuid.uuid4()
    r1 = srv.post("/v1/tasks", body, headers={"Idempotency-Key": key})
    check(r1.status == 202, "first submission: %r" % r1)
    r2 = srv.post("/v1/tasks", body, headers={"Idempotency-Key": key})
    check(r2.status in (200, 202), "repeat with the same key: %r" % r2)
    check(r2.json.get("id") == r1.json["id"], "repeat returned a different task: %s vs %s"
          % (r2.json.get("id"), r1.json["id"]))
    srv.wait_terminal(r1.json["id"])
    r3 = srv.post("/v1/tasks", body, headers={"Idempotency-Key": key})
    check(r3.status in (200, 202) and r3.json.get("id") == r1.json["id"],
          "repeat after completion: %r" % r3)
    all_tasks = srv.list_all()
    check(len(all_tasks) == 1, "list shows %d tasks after 3 submissions with one key" % len(all_tasks))
    # a different key creates a new task
    r4 = srv.post("/v1/tasks", body, headers={"Idempotency-Key": key + "-2"})
    check(r4.status == 202 and r4.json["id"] != r1.json["id"], "different key: %r" % r4)
    # no key: always new
    r5 = srv.post("/v1/tasks", body)
    r6 = srv.post("/v1/tasks", body)
    check(r5.json["id"] != r6.json["id"], "two submissions without a key got the same id")

    # concurrent submissions with one key: one task
    key2 = "race-%s" % uuid.uuid4()
    results = []
    barrier = threading.Barrier(12)

    def go():
        barrier.wait()
        try:
            results.append(srv.post("/v1/tasks", body, headers={"Idempotency-Key": key2}))
        except Exception as e:  # noqa: BLE001
            results.append(e)
    threads = [threading.Thread(target=go) for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    errs = [x for x in results if not hasattr(x, "status") or x.status not in (200, 202)]
    check(not errs, "concurrent same-key submissions: %d bad answers, e.g. %r" % (len(errs), errs[:1]))
    ids = {x.json["id"] for x in results}
    check(len(ids) == 1, "12 concurrent submissions with one key made %d tasks" % len(ids))
    total = len(srv.list_all())
    check(total == 5, "list shows %d tasks, expected 5" % total)


@case(own=True)
def test_max_body_bytes_flag_and_env(ctx):
    def body_of(n):
        b = {"task_type": "echo", "params": {"message": ""}}
        pad = n - len(json.dumps(b))
        b["params"]["message"] = "z" * pad
        s = json.dumps(b)
        assert len(s) == n
        return s
    for how, srv in (("--max-body-bytes 2048",
                      ctx.new_server(["--max-body-bytes", "2048"], name="maxbody-flag")),
                     ("GENPULSE_MAX_BODY_BYTES=2048",
                      ctx.new_server([], name="maxbody-env", env={"GENPULSE_MAX_BODY_BYTES": "2048"}))):
        srv.start()
        r = srv.post("/v1/tasks", body_of(2000))
        check(r.status == 202, "%s: a 2000-byte body: %r" % (how, r))
        r = srv.post("/v1/tasks", body_of(3000))
        check_error(r, 413, "payload_too_large", what="%s: a 3000-byte body" % how)
        check(srv.get("/health").status == 200, "%s: unhealthy after 413" % how)


@case("basic")
def test_validation_length_counts_characters(ctx):
    # The published schema says maxLength 4000 for prompt; JSON Schema counts characters, and
    # the spec says "1..4000 chars", so 4000 two-byte characters must be accepted.
    r = ctx.srv.post("/v1/tasks", {"task_type": "text-to-image",
                                   "params": {"prompt": "é" * 4000, "width": 64, "height": 64}})
    check(r.status == 202, "prompt of 4000 characters (8000 UTF-8 bytes): expected 202, got %r" % r)
    r = ctx.srv.post("/v1/tasks", {"task_type": "text-to-image",
                                   "params": {"prompt": "€" * 4001, "width": 64, "height": 64}})
    check_error(r, 422, "validation_error", ["params.prompt"], what="prompt of 4001 characters")


@case("basic")
def test_odd_numbers_and_queries(ctx):
    srv = ctx.srv
    tti = "text-to-image"
    _v(ctx, {"task_type": tti, "params": {"prompt": "x", "seed": 4294967296}}, ["params.seed"],
       "seed 2^32")
    # (1e3 / 1000.0 are integers in JSON Schema 2020-12, so either answer is fine for them)
    r = srv.post("/v1/tasks", {"task_type": tti, "params": {"prompt": "x", "seed": 4294967295,
                                                           "width": 4096, "height": 64,
                                                           "delay_ms": 600000, "steps": 1000}})
    check(r.status == 202, "maximum values should be accepted: %r" % r)
    srv.post("/v1/tasks/%s/cancel" % r.json["id"])
    for body in ('{"task_type":"echo","params":{"data":{"n":99999999999999999999999999}}}',
                 '{"task_type":"text-to-image","params":{"prompt":"x","width":1e400}}',
                 '{"task_type":"text-to-image","params":{"prompt":"x","width":-0}}',
                 '{"task_type":"echo","params":{"message":"\\ud800"}}',
                 '{"task_type":"echo","params":{"message":"a\\u0000b"}}',
                 '{"task_type":"echo","task_type":"echo","params":{}}'):
        r = srv.post("/v1/tasks", body)
        check(r.status in (202, 400, 422), "body %s: expected 202/400/422, got %r" % (body[:60], r))
        check(r.status == 202 or (isinstance(r.json, dict) and "error" in r.json),
              "body %s: no error envelope: %r" % (body[:60], r))
    for q in ("limit=10&limit=20", "status=%ff", "task_type=%00", "cursor=", "limit=99999999999999999999",
              "limit=%20%205", "status=pending&status=failed", "foo=bar", "&&&", "limit"):
        r = srv.get("/v1/tasks?" + q)
        check(r.status in (200, 400, 422), "GET /v1/tasks?%s: %r" % (q, r))
    check(srv.get("/health").status == 200, "unhealthy after odd inputs")


@case("basic")
def test_http10_and_chunked_bodies(ctx):
    srv = ctx.srv
    r, err = raw_request(srv.port, b"GET /health HTTP/1.0\r\n\r\n")
    check(r is not None and r.status == 200, "HTTP/1.0 GET /health: %r (%r)" % (r, err))
    body = json.dumps({"task_type": "echo", "params": {"message": "chunked"}}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    req = (b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    r, err = raw_request(srv.port, req)
    check(r is not None and r.status == 202, "chunked POST /v1/tasks: %r (%r)" % (r, err))
    # a chunked body over the limit is refused like any other
    part = b"x" * 65536
    big = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for _ in range(20))  # 1.25 MiB
    req = (b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + big + b"0\r\n\r\n")
    r, err = raw_request(srv.port, req)
    check(r is not None, "no response to a 1.25 MiB chunked body (%r)" % (err,))
    check_error(r, 413, "payload_too_large", what="1.25 MiB chunked body")
    check(srv.get("/health").status == 200, "unhealthy after chunked bodies")


@case("basic")
def test_idempotency_key_odd_values(ctx):
    srv = ctx.srv
    body = {"task_type": "echo", "params": {"message": "k"}}
    for key in ("k" * 5000, "ключ-✓", " spaced key ", "a\tb"):
        try:
            enc = key.encode("utf-8").decode("latin-1")
        except UnicodeError:
            enc = key
        r = srv.post("/v1/tasks", body, headers={"Idempotency-Key": enc})
        check(r.status in (202, 400, 422), "Idempotency-Key %r: %r" % (key[:20], r))
        if r.status == 202:
            r2 = srv.post("/v1/tasks", body, headers={"Idempotency-Key": enc})
            check(r2.status in (200, 202) and r2.json.get("id") == r.json["id"],
                  "Idempotency-Key %r not honored on repeat: %r" % (key[:20], r2))
    check(srv.get("/health").status == 200, "unhealthy after odd idempotency keys")


# ------------------------------------------------------------------------------------------
# Provider settings are checked at start
# ------------------------------------------------------------------------------------------

@case(own=True)
def test_bad_provider_setting_stops_start(ctx):
    """A provider setting that does not parse as its kind stops the process before it serves:
    exit status 2 and one line naming the flag and the environment variable, whether the
    value came from the command line or the environment."""
    want = ('genpulse: --replicate-poll-interval-ms (GENPULSE_REPLICATE_POLL_INTERVAL_MS): '
            '"12x" is not an integer from 20 to 60000 (milliseconds)')
    for how, args, env in (("flag", ["--replicate-poll-interval-ms", "12x"], None),
                           ("environment", [], {"GENPULSE_REPLICATE_POLL_INTERVAL_MS": "12x"})):
        srv = ctx.new_server(args, name="bad-setting-" + how, env=env)
        try:
            srv.start(timeout=5)
        except TestFailure:
            pass
        else:
            raise TestFailure("server started with a bad setting given by %s" % how)
        check(srv.wait_exit(5) and srv.exit_code == 2,
              "bad setting by %s: exit code %r, want 2" % (how, srv.exit_code))
        check(want in srv.stderr_text(),
              "bad setting by %s: stderr lacks %r: %s" % (how, want, short(srv.stderr_text())))

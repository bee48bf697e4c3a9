"""GET /openapi.json and GET /docs from outside: the document validates with standard
validators (@apidevtools/swagger-parser validate(), `redocly lint` with the recommended rules;
both pinned in tests/openapi/package-lock.json, installed with `npm ci`), it names exactly the
routes the server answers, it covers every `METHOD /path` docs/api.md mentions, and Swagger UI
works in real Chromium (tests/browser/docs.mjs): authorize with a key, try a route.

The validator and browser tests skip, saying why, without node/npm or chromium."""
import json
import os
import re
import shutil
import subprocess
import time
import uuid

from harness import BIN, RUN_DIR, Skip, case, check, check_error, http_request, npm_ci
from test_identity import new_user_key, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPENAPI_DIR = os.path.join(ROOT, "tests", "openapi")
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "docs-screenshots")
METHODS = ("get", "post", "put", "patch", "delete")


def _npm_ci(directory):
    npm_ci(directory, skip_on_failure=True)


def _validate(path):
    """swagger-parser validate() and redocly lint (recommended rules, tests/openapi/redocly.yaml):
    both must pass with no error and no warning."""
    _npm_ci(OPENAPI_DIR)
    p = subprocess.run(["node", os.path.join(OPENAPI_DIR, "validate.mjs"), path], cwd=OPENAPI_DIR,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and p.stdout.startswith("ok 3.1"),
          "swagger-parser validate(): %s%s" % (p.stdout[-1500:], p.stderr[-1500:]))
    redocly = os.path.join(OPENAPI_DIR, "node_modules", ".bin", "redocly")
    p = subprocess.run([redocly, "lint", path, "--config", os.path.join(OPENAPI_DIR, "redocly.yaml"),
                        "--format", "json"], cwd=OPENAPI_DIR, capture_output=True, text=True,
                       timeout=180, env=dict(os.environ, REDOCLY_TELEMETRY="off",
                                             REDOCLY_SUPPRESS_UPDATE_NOTICE="true"))
    try:
        report = json.loads(p.stdout)
    except ValueError:
        report = None
    check(report is not None, "redocly lint gave no JSON report (exit %d): %s %s"
          % (p.returncode, p.stdout[-800:], p.stderr[-800:]))
    problems = ["%s %s: %s" % (x.get("severity"), x.get("ruleId"), x.get("message"))
                + " at " + ",".join(l.get("pointer", "") for l in x.get("location", []))
                for x in report.get("problems", [])]
    check(p.returncode == 0 and not problems,
          "redocly lint: %d problem(s):\n%s" % (len(problems), "\n".join(problems[:30])))


def _fetch_doc(srv):
    r = srv.get("/openapi.json")
    check(r.status == 200 and isinstance(r.json, dict), "GET /openapi.json: %r" % r)
    check("application/json" in r.headers.get("content-type", ""),
          "content-type %r" % r.headers.get("content-type"))
    return r


def _norm(path):
    """"/v1/tasks/{id}/cancel?x=" → "/v1/tasks/{}/cancel": the router's spelling."""
    path = path.split("?")[0].rstrip(".,;:)`")
    if len(path) > 1:
        path = path.rstrip("/")
    return "/".join("{}" if seg.startswith("{") else seg for seg in path.split("/"))


def _operations(doc):
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                yield m.upper(), path, item[m]


@case("basic")
def test_openapi_document_shape(ctx):
    doc = _fetch_doc(ctx.srv).json
    check(doc.get("openapi") == "3.1.0", "openapi %r" % doc.get("openapi"))
    check(doc["info"]["title"] == "GenPulse" and doc["info"]["version"], "info %r" % doc["info"])
    check(doc["servers"] == [{"url": "/"}], "servers without --public-url: %r" % doc["servers"])
    comp = doc["components"]
    for name in ("Error", "Task", "TaskEvent", "TaskResult", "Asset", "Worker", "User", "ApiKey",
                 "Provider", "CreateTask"):
        check(name in comp["schemas"], "components.schemas lacks %s" % name)
    codes = comp["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    for c in ("validation_error", "not_found", "unauthenticated", "task_not_finished"):
        check(c in codes, "Error code enum lacks %s" % c)
    schemes = comp["securitySchemes"]
    check(schemes["apiKey"]["type"] == "http" and schemes["apiKey"]["scheme"] == "bearer",
          "apiKey scheme %r" % schemes["apiKey"])
    check(schemes["oidc"].get("bearerFormat") == "JWT", "oidc without an issuer: %r" % schemes["oidc"])
    check(schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "gp_session",
                                 "description": schemes["session"]["description"]},
          "session scheme %r" % schemes["session"])
    # The create body: one schema per task type, each with one params schema per provider.
    create = comp["schemas"]["CreateTask"]
    check(create["discriminator"]["propertyName"] == "task_type", "CreateTask discriminator")
    types = ctx.srv.get("/v1/task-types").json["data"]
    for tt in types:
        one = comp["schemas"]["CreateTask." + tt["name"]]
        params = one["properties"]["params"]
        check(params["discriminator"]["propertyName"] == "provider", "%s params discriminator" % tt["name"])
        check(len(params["oneOf"]) == len(tt["providers"]),
              "%s: %d params schemas for %d providers" % (tt["name"], len(params["oneOf"]), len(tt["providers"])))
        for prov in tt["providers"]:
            mine = comp["schemas"]["Params.%s.%s" % (tt["name"], prov["name"])]
            theirs = prov["params_schema"]
            check(set(mine["properties"]) == set(theirs["properties"]),
                  "Params.%s.%s properties differ from /v1/task-types" % (tt["name"], prov["name"]))
            for k, v in theirs["properties"].items():
                for kw in ("minimum", "maximum", "maxLength", "enum", "default"):
                    check(mine["properties"][k].get(kw) == v.get(kw),
                          "Params.%s.%s.%s: %s differs" % (tt["name"], prov["name"], k, kw))
    for key in ("priority", "max_retries", "webhook", "webhook_events_filter"):
        check(key in comp["schemas"]["CreateTask.echo"]["properties"], "envelope lacks %s" % key)
    wef = comp["schemas"]["CreateTask.echo"]["properties"]["webhook_events_filter"]["items"]
    check(wef == {"$ref": "#/components/schemas/WebhookEvent"}
          and comp["schemas"]["WebhookEvent"]["enum"] == ["start", "output", "logs", "completed"],
          "webhook_events_filter items %r" % wef)
    # Per-route security and status codes.
    ops = {(m, p): o for m, p, o in _operations(doc)}
    check(ops[("GET", "/health")]["security"] == [], "GET /health is public")
    check(ops[("GET", "/openapi.json")]["security"] == [], "GET /openapi.json is public")
    sec = ops[("GET", "/v1/tasks")]["security"]
    check({"apiKey": ["tasks:read"]} in sec, "GET /v1/tasks security %r" % sec)
    create_op = ops[("POST", "/v1/tasks")]
    for st in ("202", "400", "401", "403", "405", "413", "415", "422", "429", "503"):
        check(st in create_op["responses"], "POST /v1/tasks lacks %s" % st)
    check("Prefer" in [p["name"] for p in create_op["parameters"]], "POST /v1/tasks: Prefer")
    check("Preference-Applied" in create_op["responses"]["200"].get("headers", {}),
          "POST /v1/tasks 200 documents Preference-Applied")
    res = ops[("GET", "/v1/tasks/{id}/result")]["responses"]
    for st in ("200", "404", "409"):
        check(st in res, "GET /v1/tasks/{id}/result lacks %s" % st)
    listing = [p["name"] for p in ops[("GET", "/v1/tasks")]["parameters"]]
    for q in ("status", "task_type", "provider", "id", "error_code", "q", "user", "limit", "cursor"):
        check(q in listing, "GET /v1/tasks lacks ?%s" % q)
    ids = [o.get("operationId") for o in ops.values()]
    check(all(ids) and len(ids) == len(set(ids)), "operationIds unique and present")


@case("basic")
def test_openapi_matches_router(ctx):
    """Every documented operation is routed (not 404 "no such route", not 405), and a method
    the document does not list on a path is 405 there."""
    doc = _fetch_doc(ctx.srv).json
    probed = 0
    for method, path, op in _operations(doc):
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        ok = op["responses"].get("200", {}).get("content", {})
        if "text/event-stream" in ok and concrete == path:
            continue  # a stream that would not end; /v1/tasks/x/events (404) is probed
        # Only the route lookup matters: an empty body, answered by the route or admission.
        r = http_request(ctx.srv.port, method, concrete, b"" if method != "GET" else None,
                         timeout=10)
        no_route = r.status == 404 and isinstance(r.json, dict) and \
            r.json.get("error", {}).get("message") == "no such route"
        check(not no_route and r.status != 405, "%s %s (as %s): %r" % (method, path, concrete, r))
        probed += 1
    check(probed >= 30, "probed %d operations" % probed)
    for path, item in doc["paths"].items():
        if "delete" not in item:
            r = http_request(ctx.srv.port, "DELETE", re.sub(r"\{[^}]+\}", "x", path), timeout=10)
            check(r.status == 405 and r.headers.get("allow"), "DELETE %s: %r" % (path, r))


@case("basic")
def test_openapi_covers_docs(ctx):
    """Every `METHOD /path` that docs/api.md (and the README) mention is in the document (a line
    that says the route is not provided does not count)."""
    doc = _fetch_doc(ctx.srv).json
    have = {(m, _norm(p)) for m, p, _ in _operations(doc)}
    mentioned = set()
    for name in ("docs/api.md", "README.md"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        for line in text.splitlines():
            if re.search(r"not (provided|supported|served)", line, re.I):
                continue  # "Not provided: POST /v1/files" names a route on purpose absent
            for m, p in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_./{}|:-]*)", line):
                mentioned.add((m, _norm(p)))
    missing = sorted("%s %s" % mp for mp in mentioned - have)
    check(not missing, "routes in docs/api.md missing from /openapi.json: %s" % missing)
    check(len(mentioned) >= 20, "found only %d routes in the docs" % len(mentioned))


@case("basic")
def test_openapi_validates(ctx):
    r = _fetch_doc(ctx.srv)
    path = os.path.join(RUN_DIR, "openapi.json")
    with open(path, "wb") as f:
        f.write(r.body)
    _validate(path)


@case(own=True)
def test_openapi_every_doc_entry_validates(ctx):
    """The document of every doc entry, the routes other surfaces add included (written by the
    unit test binary beside GENPULSE_BIN: BUILD/tests/test_openapi)."""
    unit = os.path.join(os.path.dirname(os.path.abspath(BIN)), "tests", "test_openapi")
    if not os.path.exists(unit):
        raise Skip("no %s (make unit-bins)" % unit)
    out = os.path.join(RUN_DIR, "openapi-full.json")
    p = subprocess.run([unit], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, GP_OPENAPI_FULL_OUT=out))
    check(p.returncode == 0 and os.path.exists(out), "test_openapi: %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))
    with open(out) as f:
        paths = json.load(f)["paths"]
    for want in ("/v1/webhooks", "/v1/predictions", "/v1/models/{owner}/{name}/versions/{version}"):
        check(want in paths, "full document lacks %s" % want)
    _validate(out)


@case(own=True)
def test_openapi_public_and_configured(ctx):
    """Public with keys required; servers is the public URL; an OIDC issuer makes the oidc scheme
    openIdConnect."""
    srv = ctx.new_server(["--public-url", "https://api.example.test", "--oidc-issuer",
                          "https://issuer.example.test", "--oidc-client-id", "cid"]).start()
    new_user_key(srv, "someone@example.com")
    check_error(srv.get("/v1/tasks"), 401, "unauthenticated", what="keys are required")
    doc = _fetch_doc(srv).json
    check(doc["servers"] == [{"url": "https://api.example.test"}], "servers %r" % doc["servers"])
    oidc = doc["components"]["securitySchemes"]["oidc"]
    check(oidc["type"] == "openIdConnect" and oidc["openIdConnectUrl"] ==
          "https://issuer.example.test/.well-known/openid-configuration", "oidc %r" % oidc)
    r = srv.get("/docs")
    check(r.status == 200 and "text/html" in r.headers.get("content-type", ""), "GET /docs: %r" % r)
    csp = r.headers.get("content-security-policy", "")
    check("default-src 'self'" in csp and "frame-ancestors 'none'" in csp, "CSP %r" % csp)
    check("connect-src 'self' https://api.example.test https://issuer.example.test;" in csp,
          "the issuer's origin may be read (its discovery document): %r" % csp)
    check(r.headers.get("x-content-type-options") == "nosniff", "nosniff")
    check(b"/openapi.json" not in r.body and b"/docs/init.js" in r.body, "the page loads init.js")
    js = srv.get("/docs/init.js")
    check(js.status == 200 and b"/openapi.json" in js.body and b"persistAuthorization" in js.body,
          "init.js: %r" % js)
    bundle = srv.get("/docs/swagger-ui-bundle.js")
    check(bundle.status == 200 and len(bundle.body) > 1000000
          and "javascript" in bundle.headers.get("content-type", ""), "bundle: %r" % bundle)
    lic = srv.get("/docs/LICENSE")
    check(lic.status == 200 and b"Apache License" in lic.body, "LICENSE: %r" % lic)
    check_error(srv.get("/docs/nope.js"), 404, "not_found", what="unknown docs file")
    _validate_text = os.path.join(RUN_DIR, "openapi-configured.json")
    with open(_validate_text, "w") as f:
        json.dump(doc, f)
    _validate(_validate_text)


@case(own=True)
def test_docs_in_chromium(ctx):
    if not os.path.exists(CHROMIUM):
        raise Skip("no %s (Debian package chromium; tools/deps.sh test installs it)" % CHROMIUM)
    _npm_ci(BROWSER_DIR)
    srv = ctx.new_server().start()
    _, key = new_user_key(srv, "docs@example.com", scopes="tasks:read,tasks:write")
    out = os.path.join(SCREENSHOTS)
    shutil.rmtree(out, ignore_errors=True)
    cfg = {"base": "http://127.0.0.1:%d" % srv.port, "key": key, "out": out}
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "docs.mjs")], cwd=BROWSER_DIR,
                       env=dict(os.environ, GENPULSE_DOCS_TEST=json.dumps(cfg), CHROMIUM=CHROMIUM),
                       capture_output=True, text=True, timeout=150)
    text = p.stdout + p.stderr
    check(p.returncode == 0 and "all checks passed" in text, "docs.mjs:\n%s" % text[-3000:])
    # The task the UI created exists and belongs to the key's user.
    r = srv.get("/v1/tasks?task_type=echo", headers={"Authorization": "Bearer " + key})
    check(r.status == 200 and len(r.json["data"]) >= 1, "the task made from /docs: %r" % r)


def _png_bytes():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@case(own=True)
def test_openapi_responses_match(ctx):
    """Real answers of (nearly) every route, checked against the schemas the document gives
    for that operation and status (tests/openapi/check_responses.mjs, ajv 2020-12)."""
    srv = ctx.new_server(["--concurrency", "2"]).start()
    _, admin = new_user_key(srv, "root@example.com", scopes="admin,tasks:read,tasks:write")
    _, user = new_user_key(srv, "u@example.com")
    A = {"Authorization": "Bearer " + admin}
    U = {"Authorization": "Bearer " + user}
    wait_until(lambda: srv.get("/v1/tasks").status == 401, 10, "keys required (cached open rule)")
    doc = _fetch_doc(srv).json
    samples = []

    def take(method, template, path, body=None, headers=None, expect=None, **kw):
        r = http_request(srv.port, method, path, body, headers=headers, **kw)
        if expect is not None:
            check(r.status == expect, "%s %s: expected %d, got %r" % (method, path, expect, r))
        media = r.headers.get("content-type", "").split(";")[0]
        if r.json is not None:
            samples.append({"method": method, "path": template, "status": r.status,
                            "media": media, "body": r.json})
        return r

    t = take("POST", "/v1/tasks", "/v1/tasks", {"task_type": "echo", "params": {"message": "x"},
             "webhook": "http://127.0.0.1:9/hook", "webhook_events_filter": ["completed"]},
             headers=U, expect=202).json
    slow = take("POST", "/v1/tasks", "/v1/tasks", {"task_type": "echo", "params": {"sleep_ms": 3000}},
                headers=U, expect=202).json
    take("GET", "/v1/tasks/{id}/result", "/v1/tasks/%s/result" % slow["id"], headers=U, expect=409)
    # Prefer: wait (200 with the finished task; 202 from a binary without it)
    waited = take("POST", "/v1/tasks", "/v1/tasks", {"task_type": "echo", "params": {}},
                  headers=dict(U, Prefer="wait=5"))
    check(waited.status in (200, 202), "Prefer: wait: %r" % waited)
    failing = take("POST", "/v1/tasks", "/v1/tasks", {"task_type": "text-to-image", "params": {
        "prompt": "p", "fail": "boom", "width": 64, "height": 64}}, headers=U, expect=202).json
    img = take("POST", "/v1/tasks", "/v1/tasks", {"task_type": "text-to-image", "params": {
        "prompt": "p", "width": 64, "height": 64, "steps": 2}}, headers=U, expect=202).json
    for tid in (t["id"], failing["id"], img["id"]):
        deadline = time.time() + 20
        while time.time() < deadline:
            r = srv.get("/v1/tasks/%s" % tid, headers=U)
            if r.json and r.json["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        take("GET", "/v1/tasks/{id}", "/v1/tasks/%s" % tid, headers=U, expect=200)
        take("GET", "/v1/tasks/{id}/result", "/v1/tasks/%s/result" % tid, headers=U, expect=200)
        take("GET", "/v1/tasks/{id}/attempts", "/v1/tasks/%s/attempts" % tid, headers=U, expect=200)
    take("GET", "/v1/tasks", "/v1/tasks?limit=2", headers=U, expect=200)
    take("POST", "/v1/tasks/{id}/cancel", "/v1/tasks/%s/cancel" % slow["id"], headers=U)
    take("POST", "/v1/tasks/{id}/cancel", "/v1/tasks/%s/cancel" % t["id"], headers=U, expect=409)
    take("POST", "/v1/tasks/{id}/retry", "/v1/tasks/%s/retry" % failing["id"], headers=U, expect=202)
    take("POST", "/v1/tasks/{id}/retry", "/v1/tasks/%s/retry" % t["id"], headers=U, expect=409)
    # errors admission answers
    take("POST", "/v1/tasks", "/v1/tasks", {"task_type": "nope"}, headers=U, expect=422)
    take("POST", "/v1/tasks", "/v1/tasks", "{", headers=U, expect=400)
    take("POST", "/v1/tasks", "/v1/tasks", "{}", headers=U, content_type="text/plain", expect=415)
    take("POST", "/v1/tasks", "/v1/tasks", {}, expect=401)
    take("GET", "/v1/users", "/v1/users", headers=U, expect=403)
    take("GET", "/v1/tasks/{id}", "/v1/tasks/%s" % uuid.uuid4(), headers=U, expect=404)
    r = http_request(srv.port, "DELETE", "/v1/tasks", headers=U)
    samples.append({"method": "GET", "path": "/v1/tasks", "status": 405,
                    "media": "application/json", "body": r.json})
    # discovery, account, admin
    take("GET", "/v1/task-types", "/v1/task-types", headers=U, expect=200)
    take("GET", "/v1/providers", "/v1/providers", headers=U, expect=200)
    take("GET", "/v1/providers/{name}", "/v1/providers/echo", headers=U, expect=200)
    take("GET", "/v1/providers/{name}", "/v1/providers/nope", headers=U, expect=404)
    take("GET", "/v1/account", "/v1/account", headers=U, expect=200)
    take("GET", "/v1/account/ledger", "/v1/account/ledger", headers=U, expect=200)
    u = take("POST", "/v1/users", "/v1/users", {"email": "n@example.com", "plan": "free"},
             headers=A, expect=201).json
    take("GET", "/v1/users", "/v1/users", headers=A, expect=200)
    take("GET", "/v1/users/{id}", "/v1/users/%s" % u["id"], headers=A, expect=200)
    take("PATCH", "/v1/users/{id}", "/v1/users/%s" % u["id"], {"disabled": False}, headers=A,
         expect=200)
    take("POST", "/v1/users/{id}/credits", "/v1/users/%s/credits" % u["id"], {"amount": 5},
         headers=A, expect=201)
    k = take("POST", "/v1/keys", "/v1/keys", {"user": u["id"], "scopes": ["tasks:read"]},
             headers=A, expect=201).json
    take("GET", "/v1/keys", "/v1/keys", headers=A, expect=200)
    take("POST", "/v1/keys/{id}/revoke", "/v1/keys/%s/revoke" % k["id"], headers=A, expect=200)
    take("GET", "/v1/stats", "/v1/stats", headers=U, expect=200)
    take("GET", "/v1/workers", "/v1/workers", headers=A, expect=200)
    take("GET", "/health", "/health", expect=200)
    take("GET", "/ready", "/ready")
    take("GET", "/", "/", expect=200)
    take("GET", "/v1/auth/login", "/v1/auth/login", expect=404)
    boundary = "gpboundary"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
             "Content-Type: image/png\r\n\r\n" % boundary).encode() + _png_bytes()
            + ("\r\n--%s--\r\n" % boundary).encode())
    a = take("POST", "/v1/assets", "/v1/assets", body, headers=U,
             content_type="multipart/form-data; boundary=" + boundary, expect=201).json
    take("GET", "/v1/assets/{id}", "/v1/assets/%s" % a["id"], headers=U, expect=200)
    if "/v1/webhooks" in doc["paths"]:
        _webhook_samples(take, U, t["id"])
    if "/v1/predictions" in doc["paths"]:
        _replicate_samples(take, U)
    # SSE: each event's data is a TaskEvent
    events = _sse_events(srv.port, "/v1/tasks/%s/events" % img["id"], U)
    check(events, "no SSE events")
    for e in events:
        samples.append({"schema": "TaskEvent", "body": json.loads(e)})
    path_doc = os.path.join(RUN_DIR, "openapi-responses-doc.json")
    path_samples = os.path.join(RUN_DIR, "openapi-responses.json")
    with open(path_doc, "w") as f:
        json.dump(doc, f)
    with open(path_samples, "w") as f:
        json.dump(samples, f)
    _npm_ci(OPENAPI_DIR)
    p = subprocess.run(["node", os.path.join(OPENAPI_DIR, "check_responses.mjs"), path_doc,
                        path_samples], cwd=OPENAPI_DIR, capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "responses that do not match the document:\n%s%s"
          % (p.stdout[-4000:], p.stderr[-1500:]))
    check(len(samples) >= 45, "only %d samples" % len(samples))


def _webhook_samples(take, U, task_id):
    """The webhook routes (when this binary has them); nothing is delivered anywhere: the
    endpoint is disabled and the task's own webhook points at a closed loopback port."""
    ep = take("POST", "/v1/webhooks", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
              "disabled": True, "description": "d"}, headers=U, expect=201).json
    take("GET", "/v1/webhooks", "/v1/webhooks", headers=U, expect=200)
    take("GET", "/v1/webhooks/{id}", "/v1/webhooks/%s" % ep["id"], headers=U, expect=200)
    take("PATCH", "/v1/webhooks/{id}", "/v1/webhooks/%s" % ep["id"], {"description": None},
         headers=U, expect=200)
    take("GET", "/v1/webhooks/{id}/secret", "/v1/webhooks/%s/secret" % ep["id"], headers=U,
         expect=200)
    take("POST", "/v1/webhooks/{id}/rotate-secret", "/v1/webhooks/%s/rotate-secret" % ep["id"],
         headers=U, expect=200)
    take("GET", "/v1/webhooks/default/secret", "/v1/webhooks/default/secret", headers=U, expect=200)
    take("POST", "/v1/webhooks", "/v1/webhooks", {"url": "ftp://x"}, headers=U, expect=422)
    take("GET", "/v1/webhooks/{id}", "/v1/webhooks/ep_nope", headers=U, expect=404)
    page = take("GET", "/v1/webhook-deliveries", "/v1/webhook-deliveries?task_id=%s" % task_id,
                headers=U, expect=200).json
    if page["data"]:
        did = page["data"][0]["id"]
        take("GET", "/v1/webhook-deliveries/{id}", "/v1/webhook-deliveries/%s" % did, headers=U,
             expect=200)
        take("POST", "/v1/webhook-deliveries/{id}/resend", "/v1/webhook-deliveries/%s/resend" % did,
             headers=U, expect=202)
    take("DELETE", "/v1/webhooks/{id}", "/v1/webhooks/%s" % ep["id"], headers=U, expect=204)


def _replicate_samples(take, U):
    """The Replicate-compatible routes (when this binary has them): bodies and problem+json."""
    model = take("GET", "/v1/models/{owner}/{name}", "/v1/models/genpulse/echo", headers=U,
                 expect=200).json
    take("GET", "/v1/models", "/v1/models", headers=U, expect=200)
    take("GET", "/v1/models/{owner}/{name}/versions", "/v1/models/genpulse/echo/versions",
         headers=U, expect=200)
    vid = model["latest_version"]["id"]
    take("GET", "/v1/models/{owner}/{name}/versions/{version}",
         "/v1/models/genpulse/echo/versions/%s" % vid, headers=U, expect=200)
    p = take("POST", "/v1/predictions", "/v1/predictions", {"version": vid, "input": {
             "message": "hi"}}, headers=U).json
    take("POST", "/v1/models/{owner}/{name}/predictions", "/v1/models/genpulse/echo/predictions",
         {"input": {"message": "hi"}}, headers=dict(U, Prefer="wait=5"))
    slow = take("POST", "/v1/models/{owner}/{name}/predictions",
                "/v1/models/genpulse/echo/predictions", {"input": {"sleep_ms": 5000}},
                headers=U).json
    take("POST", "/v1/predictions/{id}/cancel", "/v1/predictions/%s/cancel" % slow["id"], headers=U)
    take("GET", "/v1/predictions/{id}", "/v1/predictions/%s" % p["id"], headers=U, expect=200)
    take("GET", "/v1/predictions", "/v1/predictions", headers=U, expect=200)
    take("GET", "/v1/predictions/{id}", "/v1/predictions/%s" % uuid.uuid4(), headers=U, expect=404)
    take("POST", "/v1/predictions", "/v1/predictions", {"input": {}}, headers=U, expect=422)
    take("GET", "/v1/predictions", "/v1/predictions", expect=401)


def _sse_events(port, path, headers, max_time=10):
    """The data lines of a finished task's stream (it ends after the terminal event)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max_time)
    try:
        conn.request("GET", path, headers=dict(headers, Accept="text/event-stream"))
        r = conn.getresponse()
        check(r.status == 200, "GET %s: %d" % (path, r.status))
        text = r.read().decode()
    finally:
        conn.close()
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]

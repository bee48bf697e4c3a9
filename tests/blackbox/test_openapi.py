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
import tempfile

from harness import BIN, RUN_DIR, Skip, case, check, check_error, http_request
from test_identity import new_user_key

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPENAPI_DIR = os.path.join(ROOT, "tests", "openapi")
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "docs-screenshots")
METHODS = ("get", "post", "put", "patch", "delete")


def _npm_ci(directory):
    if not shutil.which("node") or not shutil.which("npm"):
        raise Skip("no node/npm")
    lock = os.path.join(directory, "package-lock.json")
    stamp = os.path.join(directory, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        p = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"],
                           cwd=directory, capture_output=True, timeout=300)
        if p.returncode != 0:
            raise Skip("npm ci in %s failed: %s" % (directory, p.stderr.decode()[-400:]))


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
    """Every `METHOD /path` that docs/api.md (and the README) mention is in the document."""
    doc = _fetch_doc(ctx.srv).json
    have = {(m, _norm(p)) for m, p, _ in _operations(doc)}
    mentioned = set()
    for name in ("docs/api.md", "README.md"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        for m, p in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_./{}|:-]*)", text):
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

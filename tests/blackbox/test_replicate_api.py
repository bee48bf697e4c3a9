"""The Replicate-compatible API (/v1/predictions, /v1/models): the prediction object field by
field, both create routes, version forms, the model-name mapping, problem+json errors (the
gateway's own included), Bearer and Token auth, isolation, cancel, cursor pages, the SSE
stream, Prefer: wait, and the official JavaScript client (npm replicate, pinned in
tests/clients/replicate; skipped only without node/npm)."""
import json
import os
import re
import subprocess
import time
import urllib.parse

from harness import (BIN, TIME_RE, Skip, SSEStream, case, check, free_port, http_request,
                     npm_ci, raw_request, short, url_path)
from test_identity import new_user_key

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLIENT_DIR = os.path.join(ROOT, "tests", "clients", "replicate")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
STATUSES = ("starting", "processing", "succeeded", "failed", "canceled")


def bearer(key):
    return {"Authorization": "Bearer " + key} if key else {}


def create(srv, body, key=None, path="/v1/predictions", expect=201, headers=None):
    h = bearer(key)
    h.update(headers or {})
    r = srv.post(path, body, headers=h)
    check(r.status == expect, "POST %s: expected %d, got %r" % (path, expect, r))
    return r


def get(srv, pid, key=None):
    r = srv.get("/v1/predictions/" + pid, headers=bearer(key))
    check(r.status == 200, "GET prediction: %r" % r)
    return r.json


def wait_for(srv, pid, statuses, key=None, timeout=15):
    deadline = time.time() + timeout
    p = None
    while time.time() < deadline:
        p = get(srv, pid, key)
        if p["status"] in statuses:
            return p
        time.sleep(0.05)
    raise AssertionError("prediction %s not %s within %ss (last %r)" % (pid, statuses, timeout, p))


def check_problem(r, status, fields=(), what=""):
    """An RFC 9457 problem as Replicate sends it: title, detail, status (+ invalid_fields)."""
    label = (what + ": ") if what else ""
    check(r.status == status, "%sexpected HTTP %d, got %r" % (label, status, r))
    check(r.headers.get("content-type", "").startswith("application/problem+json"),
          "%scontent-type %r" % (label, r.headers.get("content-type")))
    j = r.json
    check(isinstance(j, dict) and isinstance(j.get("title"), str) and j["title"] and
          isinstance(j.get("detail"), str) and j["detail"] and j.get("status") == status,
          "%snot a problem body: %s" % (label, short(r.body)))
    if fields:
        got = [f.get("field") for f in j.get("invalid_fields", [])]
        for f in j.get("invalid_fields", []):
            check(set(f) >= {"type", "field", "description"}, "%sinvalid_fields entry %r" % (label, f))
        missing = [f for f in fields if f not in got]
        check(not missing, "%sinvalid_fields lacks %s: %s" % (label, missing, short(r.body)))
    return j


def check_prediction(p, port, where="prediction"):
    """Every field Replicate's schema and the official clients read."""
    base = "http://127.0.0.1:%d" % port
    for k in ("id", "model", "version", "status"):
        check(isinstance(p.get(k), str) and p[k], "%s: %s must be a non-empty string: %r" % (where, k, p))
    check(p["status"] in STATUSES, "%s: status %r" % (where, p["status"]))
    check(re.match(r"^[^/]+/[^/]+$", p["model"]), "%s: model %r" % (where, p["model"]))
    check(HEX64.match(p["version"]), "%s: version %r" % (where, p["version"]))
    check(isinstance(p.get("input"), dict), "%s: input %r" % (where, p.get("input")))
    check("output" in p, "%s: no output" % where)
    check(isinstance(p.get("logs"), str), "%s: logs %r" % (where, p.get("logs")))
    check(p.get("error") is None or isinstance(p["error"], str), "%s: error %r" % (where, p.get("error")))
    check(TIME_RE.match(p["created_at"] or ""), "%s: created_at %r" % (where, p.get("created_at")))
    for k in ("started_at", "completed_at"):
        check(p.get(k) is None or TIME_RE.match(p[k]), "%s: %s %r" % (where, k, p.get(k)))
    urls = p.get("urls")
    check(isinstance(urls, dict) and all(isinstance(v, str) for v in urls.values()),
          "%s: urls must be strings, never null: %r" % (where, urls))
    for k in ("get", "cancel", "stream", "web"):
        check(urls.get(k, "").startswith(base + "/"), "%s: urls.%s not absolute on %s: %r"
              % (where, k, base, urls.get(k)))
    path = lambda u: urllib.parse.urlsplit(u).path
    check(path(urls["get"]) == "/v1/predictions/" + p["id"], "%s: urls.get %r" % (where, urls["get"]))
    check(path(urls["cancel"]) == "/v1/predictions/%s/cancel" % p["id"], "%s: urls.cancel" % where)
    check(path(urls["stream"]) == "/v1/predictions/%s/stream" % p["id"] and
          "signature=" in urls["stream"] and "expires=" in urls["stream"], "%s: urls.stream" % where)
    check(p.get("data_removed") is False and p.get("source") == "api", "%s: data_removed/source %r" % (where, p))
    check(isinstance(p.get("metrics"), dict), "%s: metrics %r" % (where, p.get("metrics")))
    if p["status"] in ("succeeded", "failed", "canceled"):
        m = p["metrics"]
        check(isinstance(m.get("predict_time"), (int, float)) and isinstance(m.get("total_time"), (int, float))
              and m["total_time"] >= m["predict_time"] >= 0, "%s: metrics %r" % (where, m))
        check(p["completed_at"], "%s: finished without completed_at" % where)
    if p["status"] == "failed":
        check(isinstance(p["error"], str) and p["error"], "%s: failed without an error string" % where)
    else:
        check(p["error"] is None, "%s: error %r on status %s" % (where, p["error"], p["status"]))


def sse_events(url, timeout=15):
    """Reads a stream by its absolute link (no Authorization, like the JS client)."""
    parts = urllib.parse.urlsplit(url)
    st = SSEStream(parts.port, parts.path + "?" + parts.query)
    out = {"status": st.status, "headers": st.headers, "events": [], "ended": False, "body": b""}
    deadline = time.time() + timeout
    try:
        if st.status != 200:
            out["body"] = st.read_body(deadline)
            return out
        cur, data = {}, []
        for _, line in st.lines(deadline):
            if line == "":
                if data:
                    cur["data"] = "\n".join(data)
                    out["events"].append(cur)
                cur, data = {}, []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            else:
                cur[field] = value
        out["ended"] = True
        return out
    finally:
        st.close()


def check_stream_events(s, where):
    check(s["status"] == 200 and s["headers"].get("content-type", "").startswith("text/event-stream"),
          "%s: stream answer %r %r" % (where, s["status"], s.get("body")))
    check(s["ended"], "%s: the stream did not end after done" % where)
    evs = s["events"]
    check(evs, "%s: no events" % where)
    for e in evs:
        check(e.get("event") in ("output", "logs", "error", "done"), "%s: event name %r" % (where, e))
        check(e.get("id"), "%s: event without an id line: %r" % (where, e))
    check(evs[-1]["event"] == "done", "%s: last event %r" % (where, evs[-1]))
    check(sum(1 for e in evs if e["event"] == "done") == 1, "%s: done twice" % where)
    return evs


# ------------------------------------------------------------------------------------------

@case(group="basic")
def test_replicate_api_prediction_fields(ctx):
    srv = ctx.srv
    r = create(srv, {"version": "genpulse/echo", "input": {"message": "hi", "data": {"k": [1, 2]}}})
    p = r.json
    check_prediction(p, srv.port, "created")
    check(p["status"] == "starting", "a fresh prediction is starting, not %r" % p["status"])
    check(p["model"] == "genpulse/echo" and p["input"] == {"message": "hi", "data": {"k": [1, 2]}},
          "model/input as given: %r" % p)
    check(r.headers.get("location") == p["urls"]["get"], "Location %r vs urls.get %r"
          % (r.headers.get("location"), p["urls"]["get"]))
    check(p["logs"] == "" and p["output"] is None and p["metrics"] == {}, "fresh: %r" % p)
    done = wait_for(srv, p["id"], ("succeeded",))
    check_prediction(done, srv.port, "succeeded")
    check(done["output"]["message"] == "hi" and done["output"]["data"] == {"k": [1, 2]},
          "echo output %r" % done["output"])
    check(re.search(r"^\s*100%\|.+?\|\s*100/100", done["logs"], re.M), "tqdm logs %r" % done["logs"])
    check(done["version"] == p["version"] and done["started_at"], "version/started_at %r" % done)
    # the same task through /v1/tasks hides the Replicate view from params
    t = srv.get("/v1/tasks/" + p["id"]).json
    check("_replicate" not in t["params"] and t["params"]["message"] == "hi", "task params %r" % t["params"])
    # a task created by /v1/tasks renders as a genpulse/<type> prediction
    tid = srv.create("echo", {"message": "native"})["id"]
    q = wait_for(srv, tid, ("succeeded",))
    check_prediction(q, srv.port, "native task")
    check(q["model"] == "genpulse/echo" and q["input"] == {"message": "native"} and
          q["version"] == p["version"], "native task as a prediction: %r" % q)


@case(group="basic")
def test_replicate_api_create_routes_and_versions(ctx):
    srv = ctx.srv
    m = srv.get("/v1/models/genpulse/echo")
    check(m.status == 200, "GET model %r" % m)
    model = m.json
    for k in ("url", "owner", "name", "description", "visibility", "github_url", "paper_url",
              "license_url", "run_count", "cover_image_url", "default_example", "latest_version"):
        check(k in model, "model lacks %s: %r" % (k, model))
    lv = model["latest_version"]
    check(HEX64.match(lv["id"]) and TIME_RE.match(lv["created_at"]) and
          tuple(int(x) for x in lv["cog_version"].split(".")) >= (0, 3, 9), "latest_version %r" % lv)
    schemas = lv["openapi_schema"]["components"]["schemas"]
    check("message" in schemas["Input"]["properties"] and "provider" not in schemas["Input"]["properties"]
          and "Output" in schemas, "schemas %r" % schemas)
    vid = lv["id"]
    by_model = create(srv, {"input": {"message": "a"}}, path="/v1/models/genpulse/echo/predictions").json
    pinned = create(srv, {"version": "genpulse/echo:" + vid, "input": {"message": "b"}}).json
    bare = create(srv, {"version": vid, "input": {"message": "c"}, "stream": True}).json
    for p in (by_model, pinned, bare):
        check_prediction(p, srv.port)
        check(p["model"] == "genpulse/echo" and p["version"] == vid, "version form: %r" % p)
        check(wait_for(srv, p["id"], ("succeeded",))["output"]["message"] == p["input"]["message"], "output")
    # versions: the default provider's first; each gets
    vs = srv.get("/v1/models/genpulse/text-to-image/versions")
    check(vs.status == 200 and vs.json["next"] is None and "previous" in vs.json, "versions %r" % vs)
    ids = [v["id"] for v in vs.json["results"]]
    check(len(ids) >= 2 and len(set(ids)) == len(ids) and all(HEX64.match(i) for i in ids), "ids %r" % ids)
    check(ids[0] == srv.get("/v1/models/genpulse/text-to-image").json["latest_version"]["id"], "latest first")
    one = srv.get("/v1/models/genpulse/text-to-image/versions/" + ids[1])
    check(one.status == 200 and one.json["id"] == ids[1], "version get %r" % one)
    check_problem(srv.get("/v1/models/genpulse/text-to-image/versions/" + "0" * 64), 404)
    check_problem(srv.get("/v1/models/nobody/nothing"), 404)
    # versions are stable: the same id for the same task type and provider
    check(HEX64.match(vid) and vid == __import__("hashlib").sha256(b"echo/echo").hexdigest(),
          "version id is SHA-256 of task_type/provider")
    # version refs that name nothing
    for ver in ("nobody/nothing", "genpulse/echo:" + "f" * 64, "e" * 64, 42):
        r = srv.post("/v1/predictions", {"version": ver, "input": {}})
        check_problem(r, 422, fields=("version",), what="version %r" % (ver,))
    check_problem(srv.post("/v1/models/nobody/nothing/predictions", {"input": {}}), 404)


@case(group="basic")
def test_replicate_api_model_mapping(ctx):
    srv = ctx.srv
    models = srv.get("/v1/models")
    check(models.status == 200 and models.json["next"] is None, "models %r" % models)
    names = {m["owner"] + "/" + m["name"] for m in models.json["results"]}
    for n in ("genpulse/echo", "genpulse/text-to-image", "black-forest-labs/flux-schnell", "stability-ai/sdxl"):
        check(n in names, "GET /v1/models lacks %s: %s" % (n, sorted(names)))
    flux = srv.get("/v1/models/black-forest-labs/flux-schnell").json
    props = flux["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]["properties"]
    check("prompt" in props and "steps" not in props and "provider" not in props, "flux Input %r" % sorted(props))
    out_schema = flux["latest_version"]["openapi_schema"]["components"]["schemas"]["Output"]
    check(out_schema.get("type") == "array", "flux Output %r" % out_schema)
    # Replicate-only inputs are accepted and dropped; the model's fixed params apply
    r = create(srv, {"input": {"prompt": "a lighthouse", "num_outputs": 1, "aspect_ratio": "1:1",
                               "output_format": "webp", "go_fast": True}},
               path="/v1/models/black-forest-labs/flux-schnell/predictions", headers={"Prefer": "wait=20"})
    p = r.json
    check_prediction(p, srv.port, "flux")
    check(p["status"] == "succeeded" and p["model"] == "black-forest-labs/flux-schnell" and
          p["input"]["aspect_ratio"] == "1:1", "flux prediction %r" % p)
    check(isinstance(p["output"], list) and len(p["output"]) == 1, "flux output %r" % p["output"])
    img = http_request(srv.port, "GET", url_path(p["output"][0]))
    check(img.status == 200 and img.body[:8] == b"\x89PNG\r\n\x1a\n", "output link fetch %r" % img)
    t = srv.get("/v1/tasks/" + p["id"]).json
    check(t["task_type"] == "text-to-image" and t["provider"] == "simulator" and t["params"]["steps"] == 4
          and "aspect_ratio" not in t["params"], "mapped task %r" % t["params"])
    # the mapped model's own version id, and the failure path as an error string
    sdxl = srv.get("/v1/models/stability-ai/sdxl").json["latest_version"]["id"]
    f = create(srv, {"version": "stability-ai/sdxl:" + sdxl, "input": {"prompt": "x", "fail": "nope"}}).json
    f = wait_for(srv, f["id"], ("failed",))
    check_prediction(f, srv.port, "failed")
    check(f["model"] == "stability-ai/sdxl" and "nope" in f["error"] and f["version"] == sdxl, "failed %r" % f)
    # a mapped model refuses a provider in the input
    check_problem(srv.post("/v1/predictions", {"version": "stability-ai/sdxl", "input": {"prompt": "x", "provider": "openai"}}),
                  422, fields=("input.provider",))


@case(own=True)
def test_replicate_api_models_table_file(ctx):
    table = os.path.join(ctx.new_server().data_dir, "models.json")
    with open(table, "w") as f:
        json.dump({"acme/talker": {"task_type": "text-to-audio", "provider": "espeak",
                                   "rename": {"prompt": "text"}, "params": {"rate": 200},
                                   "ignore": ["temperature"], "output": "file",
                                   "description": "speaks"}}, f)
    srv = ctx.new_server(["--replicate-models", table]).start()
    m = srv.get("/v1/models/acme/talker")
    check(m.status == 200 and m.json["description"] == "speaks", "table model %r" % m)
    props = m.json["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]
    check("prompt" in props["properties"] and "text" not in props["properties"] and
          "prompt" in props["required"] and "rate" not in props["properties"], "renamed Input %r" % props)
    check(srv.get("/v1/models/black-forest-labs/flux-schnell").status == 404, "a file replaces the built-in table")
    p = create(srv, {"version": "acme/talker", "input": {"prompt": "hello there", "temperature": 0.7}},
               headers={"Prefer": "wait=30"}).json
    check(p["status"] == "succeeded" and isinstance(p["output"], str) and
          p["output"].startswith("http://127.0.0.1:%d/files/" % srv.port), "single file output %r" % p)
    r = srv.post("/v1/predictions", {"version": "acme/talker", "input": {"prompt": ""}})
    check_problem(r, 422, fields=("input.prompt",), what="renamed field named as sent")
    # a broken table stops the server at start
    bad = os.path.join(srv.data_dir, "bad.json")
    for content in ('{"genpulse/x": {"task_type": "echo"}}', '{"a/b": {"task_type": "nope"}}',
                    '{"a/b": {"task_type": "echo", "provider": "simulator"}}', "[1]", "{"):
        with open(bad, "w") as f:
            f.write(content)
        p = subprocess.run([BIN, "serve", "--port", str(free_port()), "--data-dir",
                            srv.data_dir + "-bad", "--replicate-models", bad], capture_output=True, timeout=20)
        check(p.returncode != 0 and b"replicate-models" in p.stderr, "table %s: exit %d %s"
              % (content, p.returncode, p.stderr[-300:]))


@case(group="basic")
def test_replicate_api_validation_problems(ctx):
    srv = ctx.srv
    cases = [
        ({"version": "genpulse/echo"}, ("input",)),
        ({"version": "genpulse/echo", "input": []}, ("input",)),
        ({"input": {}}, ("version",)),
        ({"version": "genpulse/echo", "input": {}, "colour": "red"}, ("colour",)),
        ({"version": "genpulse/echo", "input": {"bogus": 1}}, ("input.bogus",)),
        ({"version": "genpulse/text-to-image", "input": {"prompt": "x", "width": 1}}, ("input.width",)),
        ({"version": "genpulse/text-to-image", "input": {}}, ("input.prompt",)),
        ({"version": "genpulse/echo", "input": {}, "stream": "yes"}, ("stream",)),
        ({"version": "genpulse/echo", "input": {}, "webhook": "ftp://x"}, ("webhook",)),
        ({"version": "genpulse/echo", "input": {}, "webhook": "https://example.com/h",
          "webhook_events_filter": ["begin"]}, ("webhook_events_filter[0]",)),
    ]
    for body, fields in cases:
        check_problem(srv.post("/v1/predictions", body), 422, fields=fields, what=json.dumps(body))
    # the model route takes no version
    check_problem(srv.post("/v1/models/genpulse/echo/predictions", {"version": "x", "input": {}}), 422,
                  fields=("version",))
    # the gateway's own refusals on these paths are problems too
    check_problem(http_request(srv.port, "POST", "/v1/predictions", "not json"), 400, what="bad JSON")
    check_problem(http_request(srv.port, "POST", "/v1/predictions", "{}", content_type="text/plain"), 415)
    check_problem(http_request(srv.port, "PUT", "/v1/predictions"), 405)
    check_problem(http_request(srv.port, "DELETE", "/v1/models/genpulse/echo"), 405)
    check_problem(srv.get("/v1/predictions/not-an-id"), 404)
    check_problem(srv.get("/v1/predictions/01a2425a-36e5-7e14-8333-f64490adda2d"), 404)
    req = (b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 10000000000\r\nConnection: close\r\n\r\n{")
    r, err = raw_request(srv.port, req, timeout=5)
    check(r is not None, "no answer to a huge body (%r)" % (err,))
    check_problem(r, 413)
    check_problem(srv.post("/v1/predictions", {"version": "genpulse/echo", "input": {}},
                           headers={"Prefer": "wait=61"}), 400, what="Prefer wait=61")
    check_problem(srv.get("/v1/predictions?cursor=abc"), 422, fields=("cursor",))
    # other routes keep GenPulse's error shape
    r = srv.get("/v1/tasks/not-an-id")
    check(r.status == 404 and "error" in r.json and r.headers["content-type"].startswith("application/json"),
          "GenPulse routes keep their errors: %r" % r)


@case(own=True)
def test_replicate_api_auth_and_isolation(ctx):
    srv = ctx.new_server().start()
    _, ka = new_user_key(srv, "ra@example.com")
    _, kb = new_user_key(srv, "rb@example.com")
    _, kadmin = new_user_key(srv, "radmin@example.com", scopes="admin")
    _, kread = new_user_key(srv, "rr@example.com", scopes="tasks:read")
    body = {"version": "genpulse/echo", "input": {"message": "mine"}}
    deadline = time.time() + 10  # the open-server rule ends within the auth cache time
    while srv.get("/v1/predictions").status != 401 and time.time() < deadline:
        time.sleep(0.2)
    j = check_problem(srv.post("/v1/predictions", body), 401, what="no key")
    check(j["title"] == "Unauthenticated", "401 title %r" % j)
    check_problem(srv.post("/v1/predictions", body, headers={"Authorization": "Bearer gp_nope"}), 401)
    check_problem(srv.get("/v1/models", headers={"Authorization": "Token gp_nope"}), 401, what="bad Token")
    check_problem(srv.post("/v1/predictions", body, headers=bearer(kread)), 403, what="read-only key")
    pa = create(srv, body, key=ka).json
    pt = srv.post("/v1/predictions", body, headers={"Authorization": "Token " + ka})
    check(pt.status == 201, "Token scheme create: %r" % pt)
    check(srv.get("/v1/predictions/" + pa["id"], headers={"Authorization": "Token " + ka}).status == 200, "Token get")
    # isolation: B sees nothing of A's
    check_problem(srv.get("/v1/predictions/" + pa["id"], headers=bearer(kb)), 404, what="foreign get")
    check_problem(srv.post("/v1/predictions/%s/cancel" % pa["id"], headers=bearer(kb)), 404, what="foreign cancel")
    pb = create(srv, {"version": "genpulse/echo", "input": {"message": "b"}}, key=kb).json
    ids_b = [p["id"] for p in srv.get("/v1/predictions", headers=bearer(kb)).json["results"]]
    check(ids_b == [pb["id"]], "B's list: %r" % ids_b)
    ids_a = [p["id"] for p in srv.get("/v1/predictions", headers=bearer(ka)).json["results"]]
    check(set(ids_a) == {pa["id"], pt.json["id"]}, "A's list: %r" % ids_a)
    ids_admin = [p["id"] for p in srv.get("/v1/predictions", headers=bearer(kadmin)).json["results"]]
    check(set(ids_admin) >= {pa["id"], pb["id"]}, "admin's list %r" % ids_admin)
    # the stream link is its own credential: no key needed, a forged one refused
    s = sse_events(get(srv, pa["id"], ka)["urls"]["stream"])
    check_stream_events(s, "stream without a key")
    bad = pa["urls"]["stream"].replace("signature=", "signature=x")
    parts = urllib.parse.urlsplit(bad)
    check_problem(http_request(srv.port, "GET", parts.path + "?" + parts.query), 403, what="forged stream link")
    check_problem(http_request(srv.port, "GET", parts.path), 403, what="unsigned stream link")


@case(group="serial")
def test_replicate_api_cancel(ctx):
    srv = ctx.srv
    # running: echo sleeps; pending: queued behind it (one worker slot)
    run = create(srv, {"version": "genpulse/echo", "input": {"sleep_ms": 20000}}).json
    wait_for(srv, run["id"], ("processing",))
    pend = create(srv, {"version": "genpulse/echo", "input": {"sleep_ms": 10}}).json
    c = srv.post("/v1/predictions/%s/cancel" % pend["id"], headers={"Content-Type": "application/json"})
    check(c.status == 200 and c.json["status"] == "canceled", "cancel pending: %r" % c)
    check_prediction(c.json, srv.port, "canceled pending")
    check(c.json["error"] is None and c.json["output"] is None, "canceled pending %r" % c.json)
    c = srv.post("/v1/predictions/%s/cancel" % run["id"])
    check(c.status == 200 and c.json["status"] in ("processing", "canceled"), "cancel running: %r" % c)
    done = wait_for(srv, run["id"], ("canceled",), timeout=10)
    check_prediction(done, srv.port, "canceled running")
    check(done["started_at"] and done["metrics"]["predict_time"] >= 0, "canceled running %r" % done)
    # a finished prediction: cancel answers it as it is
    again = srv.post("/v1/predictions/%s/cancel" % run["id"])
    check(again.status == 200 and again.json["status"] == "canceled", "cancel again %r" % again)
    # streams end with done {"reason": "canceled"}
    evs = check_stream_events(sse_events(done["urls"]["stream"]), "canceled stream")
    check(json.loads(evs[-1]["data"]) == {"reason": "canceled"}, "done of canceled %r" % evs[-1])


@case(own=True)
def test_replicate_api_list_pages(ctx):
    srv = ctx.new_server().start()
    ids = [create(srv, {"version": "genpulse/echo", "input": {"message": str(i)}}).json["id"] for i in range(7)]
    page = srv.get("/v1/predictions").json
    check(page["next"] is None and page["previous"] is None and
          [p["id"] for p in page["results"]] == ids[::-1], "one page, newest first: %r" % page.get("next"))
    seen, url, pages = [], "/v1/predictions?limit=3", 0
    while url:
        r = http_request(srv.port, "GET", url)
        check(r.status == 200, "page %r" % r)
        for p in r.json["results"]:
            check_prediction(p, srv.port, "listed")
        seen += [p["id"] for p in r.json["results"]]
        nxt = r.json["next"]
        pages += 1
        if nxt:
            check(nxt.startswith("http://127.0.0.1:%d/v1/predictions?" % srv.port) and "cursor=" in nxt,
                  "next must be absolute with a cursor: %r" % nxt)
            url = url_path(nxt)
        else:
            url = None
        check(pages < 10, "pages never end")
    check(seen == ids[::-1] and pages == 3, "paged: %r pages %d" % (seen, pages))
    check_problem(srv.get("/v1/predictions?limit=0"), 422, fields=("limit",))
    check_problem(srv.get("/v1/predictions?created_after=2020-01-01"), 422, fields=("created_after",))


@case(group="basic")
def test_replicate_api_stream(ctx):
    srv = ctx.srv
    p = create(srv, {"version": "genpulse/text-to-image", "input": {"prompt": "a boat", "delay_ms": 600, "steps": 5}}).json
    s = sse_events(p["urls"]["stream"])
    evs = check_stream_events(s, "image stream")
    logs = [e["data"] for e in evs if e["event"] == "logs"]
    check(any(re.match(r"^\s*\d+%\|.+?\|\s*\d+/100", line) for line in logs), "tqdm lines %r" % logs)
    outs = [e["data"] for e in evs if e["event"] == "output"]
    check(len(outs) == 1 and outs[0].startswith("http://127.0.0.1:%d/files/" % srv.port), "outputs %r" % outs)
    check(json.loads(evs[-1]["data"]) == {}, "done of a success %r" % evs[-1])
    # a finished prediction's stream replays the end and stops
    again = check_stream_events(sse_events(p["urls"]["stream"]), "finished stream")
    check([e["event"] for e in again][-2:] == ["output", "done"], "replay %r" % again)
    # failure: error {"detail"} then done {"reason": "error"}
    f = create(srv, {"version": "genpulse/text-to-image", "input": {"prompt": "x", "fail": "broken brush"}}).json
    evs = check_stream_events(sse_events(f["urls"]["stream"]), "failed stream")
    errs = [json.loads(e["data"]) for e in evs if e["event"] == "error"]
    check(errs and "broken brush" in errs[0]["detail"], "error event %r" % evs)
    check(json.loads(evs[-1]["data"]) == {"reason": "error"}, "done of a failure %r" % evs[-1])
    # echo: the result as the output event
    e = create(srv, {"version": "genpulse/echo", "input": {"message": "streamed"}}).json
    evs = check_stream_events(sse_events(e["urls"]["stream"]), "echo stream")
    out = [json.loads(x["data"]) for x in evs if x["event"] == "output"]
    check(out and out[0]["message"] == "streamed", "echo output event %r" % evs)


@case(group="basic")
def test_replicate_api_prefer_wait(ctx):
    srv = ctx.srv
    t0 = time.time()
    r = create(srv, {"version": "genpulse/echo", "input": {"message": "w", "sleep_ms": 200}},
               headers={"Prefer": "wait=10"})
    check(r.json["status"] == "succeeded" and r.json["output"]["message"] == "w", "finished wait %r" % r)
    check(r.headers.get("preference-applied") == "wait=10", "Preference-Applied %r" % r.headers)
    check_prediction(r.json, srv.port, "waited")
    r = create(srv, {"version": "genpulse/echo", "input": {"message": "bare"}}, headers={"Prefer": "wait"})
    check(r.json["status"] == "succeeded" and r.headers.get("preference-applied") == "wait", "bare wait %r" % r)
    # a wait that runs out: "starting" even though the task is processing
    t0 = time.time()
    r = create(srv, {"version": "genpulse/echo", "input": {"sleep_ms": 4000}}, headers={"Prefer": "wait=1"})
    took = time.time() - t0
    check(r.json["status"] == "starting" and r.json["output"] is None, "timed-out wait %r" % r.json)
    check(0.9 <= took < 3, "wait=1 took %.2f s" % took)
    check(get(srv, r.json["id"])["status"] == "processing", "really processing meanwhile")
    wait_for(srv, r.json["id"], ("succeeded",), timeout=10)


@case(own=True)
def test_replicate_api_idempotency(ctx):
    srv = ctx.new_server().start()
    body = {"version": "genpulse/echo", "input": {"message": "once"}}
    a = create(srv, body, headers={"Idempotency-Key": "rep-1"})
    b = create(srv, body, headers={"Idempotency-Key": "rep-1"})
    check(a.json["id"] == b.json["id"] and b.headers.get("idempotent-replayed") == "true", "replay %r %r" % (a, b))
    r = srv.post("/v1/predictions", {"version": "genpulse/echo", "input": {"message": "other"}},
                 headers={"Idempotency-Key": "rep-1"})
    check_problem(r, 422, what="key reused with another body")


@case(own=True)
def test_replicate_api_js_client(ctx):
    """npm replicate 1.4.0 against GenPulse with only baseUrl and auth changed."""
    npm_ci(CLIENT_DIR)
    srv = ctx.new_server().start()
    _, key = new_user_key(srv, "js@example.com", plan="unlimited")
    # more than one page (100) so paginate() follows next
    for i in range(101):
        create(srv, {"version": "genpulse/echo", "input": {"message": "fill %d" % i}}, key=key)
    cfg = {"base": "http://127.0.0.1:%d" % srv.port, "key": key, "min_predictions": 101}
    p = subprocess.run(["node", os.path.join(CLIENT_DIR, "replicate_client.mjs")], cwd=CLIENT_DIR,
                       env=dict(os.environ, GENPULSE_REPLICATE_TEST=json.dumps(cfg)),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
    out = p.stdout.decode()
    print(out.strip())
    check(p.returncode == 0 and "ALL OK" in out, "the JS client script failed:\n%s" % out[-3000:])


@case(own=True)
def test_replicate_api_rate_limit_problem(ctx):
    srv = ctx.new_server().start()
    _, key = new_user_key(srv, "busy-rep@example.com", plan="free")  # 120 requests a minute
    statuses = [srv.get("/v1/models/genpulse/echo", headers=bearer(key)).status for _ in range(122)]
    check(statuses[-1] == 429, "statuses %r" % statuses[115:])
    r = srv.get("/v1/predictions", headers={"Authorization": "Token " + key})
    j = check_problem(r, 429, what="rate limited")
    check(int(r.headers.get("retry-after", "0")) > 0 and j["title"] == "Too many requests",
          "429: %r %r" % (r.headers, j))


@case(own=True)
def test_replicate_api_distributed(ctx):
    """Two gateways and a worker over PostgreSQL and Redis: Prefer: wait, a stream opened on the
    other gateway (the same link secret), cancel of a running prediction from the other side."""
    from test_distributed import PG, REDIS, _cluster
    if not (PG and REDIS):
        raise Skip("no GENPULSE_TEST_PG_URL / GENPULSE_TEST_REDIS_URL")
    (a, b), _ = _cluster(ctx, apis=2, workers=1)
    for i in range(5):
        r = create(b, {"version": "genpulse/echo", "input": {"message": "d%d" % i}}, headers={"Prefer": "wait=15"})
        check(r.json["status"] == "succeeded" and r.json["output"]["message"] == "d%d" % i, "wait %d: %r" % (i, r))
    p = create(b, {"version": "genpulse/text-to-image",
                   "input": {"prompt": "x", "width": 64, "height": 64, "delay_ms": 800, "steps": 4}}).json
    link = p["urls"]["stream"].replace(":%d/" % b.port, ":%d/" % a.port)
    evs = check_stream_events(sse_events(link, timeout=20), "stream on the other gateway")
    check([e["event"] for e in evs][-2:] == ["output", "done"], "events %r" % evs)
    slow = create(a, {"version": "genpulse/echo", "input": {"sleep_ms": 20000}}).json
    wait_for(b, slow["id"], ("processing",), timeout=15)
    c = b.post("/v1/predictions/%s/cancel" % slow["id"])
    check(c.status == 200, "cancel %r" % c)
    check(wait_for(a, slow["id"], ("canceled",), timeout=15)["status"] == "canceled", "canceled")

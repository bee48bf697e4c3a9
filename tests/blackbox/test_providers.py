"""GET /v1/providers, GET /v1/providers/{name} (form rendering: task types, params schemas,
settings by name only, price, limits) and GET /v1/tasks/{id}/result (200 finished, 409 while
not, 404 unknown or foreign)."""
import json
import time
import uuid

from harness import case, check, check_error
from test_identity import auth, new_user_key, wait_until

SECRET = "rp-very-secret-token-1234567890"


@case(own=True)
def test_providers_list_and_get(ctx):
    srv = ctx.new_server(env={"GENPULSE_REPLICATE_API_TOKEN": SECRET}).start()
    r = srv.get("/v1/providers")
    check(r.status == 200 and isinstance(r.json, dict), "GET /v1/providers: %r" % r)
    check(SECRET.encode() not in r.body, "a secret's value is in the answer")
    data = {p["name"]: p for p in r.json["data"]}
    for name in ("echo", "simulator", "espeak", "replicate"):
        check(name in data, "provider %s missing (have %s)" % (name, sorted(data)))
    types = {t["name"]: t for t in srv.get("/v1/task-types").json["data"]}
    for p in data.values():
        for k in ("name", "description", "task_types", "price", "settings", "limits"):
            check(k in p, "%s lacks %s" % (p["name"], k))
        for tt in p["task_types"]:
            # The same schema as /v1/task-types (and so as the validator).
            theirs = [x for x in types[tt["name"]]["providers"] if x["name"] == p["name"]][0]
            check(tt["params_schema"] == theirs["params_schema"],
                  "%s/%s: params_schema differs from /v1/task-types" % (p["name"], tt["name"]))
            check(tt["default"] == (types[tt["name"]]["default_provider"] == p["name"]),
                  "%s/%s default flag" % (p["name"], tt["name"]))
        check(p["price"] == theirs["price"], "%s price differs" % p["name"])
        for s in p["settings"]:
            check(set(s) >= {"name", "kind", "description", "flag", "env", "secret", "configured"},
                  "%s setting %r" % (p["name"], s))
            check("value" not in s and "default" not in s, "a setting value is shown: %r" % s)
    rep = data["replicate"]
    token = [s for s in rep["settings"] if s["name"] == "api-token"]
    check(token and token[0]["secret"] and token[0]["configured"] and token[0]["kind"] == "secret"
          and token[0]["env"] == "GENPULSE_REPLICATE_API_TOKEN"
          and token[0]["flag"] == "--replicate-api-token", "replicate api-token: %r" % token)
    check(rep["limits"].get("requests_per_minute") == 600 and "concurrency" in rep["limits"]
          and "request-timeout-ms" in rep["limits"]["timeouts_ms"], "limits %r" % rep["limits"])
    one = srv.get("/v1/providers/replicate")
    check(one.status == 200 and one.json == rep, "GET /v1/providers/replicate: %r" % one)
    check_error(srv.get("/v1/providers/nope"), 404, "not_found", what="unknown provider")
    check_error(srv.get("/v1/providers/%2e%2e"), 404, "not_found", what="odd name")
    # Keys required: any key with tasks:read may read it.
    _, key = new_user_key(srv, "reader@example.com", scopes="tasks:read")
    r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(srv.get("/v1/providers")),
                   10, "keys required after the first key")
    check_error(r, 401, "unauthenticated", what="no key")
    r = srv.get("/v1/providers/echo", headers=auth(key))
    check(r.status == 200 and r.json["name"] == "echo", "with a key: %r" % r)


@case(own=True)
def test_task_result(ctx):
    srv = ctx.new_server().start()
    _, alice = new_user_key(srv, "alice@example.com")
    _, bob = new_user_key(srv, "bob@example.com")
    r = srv.post("/v1/tasks", {"task_type": "echo", "params": {"message": "hi", "sleep_ms": 1500}},
                 headers=auth(alice))
    check(r.status == 202, "create: %r" % r)
    tid = r.json["id"]
    e = check_error(srv.get("/v1/tasks/%s/result" % tid, headers=auth(alice)), 409,
                    "task_not_finished", fields=("status",), what="while running")
    check(e["details"][0]["message"] in ("pending", "processing") and
          e["details"][0]["message"] in e["message"], "the status is named: %r" % e)
    check_error(srv.get("/v1/tasks/%s/result" % tid, headers=auth(bob)), 404, "not_found",
                what="another user's task")
    deadline = time.time() + 15
    while time.time() < deadline:
        r = srv.get("/v1/tasks/%s/result" % tid, headers=auth(alice))
        if r.status != 409:
            break
        time.sleep(0.1)
    check(r.status == 200 and list(r.json) == ["id", "status", "result", "error"],
          "finished: %r" % r)
    check(r.json["id"] == tid and r.json["status"] == "succeeded" and r.json["error"] is None,
          "result %r" % r.json)
    full = srv.get("/v1/tasks/%s" % tid, headers=auth(alice)).json
    check(r.json["result"] == full["result"], "the same result as GET /v1/tasks/{id}")
    check_error(srv.get("/v1/tasks/%s/result" % tid, headers=auth(bob)), 404, "not_found",
                what="another user's finished task")
    check_error(srv.get("/v1/tasks/%s/result" % uuid.uuid4(), headers=auth(alice)), 404,
                "not_found", what="unknown id")
    check_error(srv.get("/v1/tasks/not-a-uuid/result", headers=auth(alice)), 404, "not_found",
                what="not a uuid")
    r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(
        srv.get("/v1/tasks/%s/result" % tid)), 10, "keys required (the open rule is cached)")
    check_error(r, 401, "unauthenticated", what="no key")
    # A failed task: 200 with its error.
    r = srv.post("/v1/tasks", {"task_type": "text-to-image",
                               "params": {"prompt": "x", "fail": "boom", "width": 64, "height": 64}},
                 headers=auth(alice))
    check(r.status == 202, "create failing: %r" % r)
    fid = r.json["id"]
    deadline = time.time() + 15
    while time.time() < deadline:
        r = srv.get("/v1/tasks/%s/result" % fid, headers=auth(alice))
        if r.status != 409:
            break
        time.sleep(0.1)
    check(r.status == 200 and r.json["status"] == "failed" and r.json["error"]["code"],
          "failed task result: %r" % r)
    # Canceled.
    r = srv.post("/v1/tasks", {"task_type": "echo", "params": {"sleep_ms": 20000}},
                 headers=auth(alice))
    cid = r.json["id"]
    srv.post("/v1/tasks/%s/cancel" % cid, headers=auth(alice))
    deadline = time.time() + 15
    while time.time() < deadline:
        r = srv.get("/v1/tasks/%s/result" % cid, headers=auth(alice))
        if r.status != 409:
            break
        time.sleep(0.1)
    check(r.status == 200 and r.json["status"] == "canceled", "canceled task result: %r" % r)

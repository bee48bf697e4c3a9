"""Identity and tenancy: the open-server rule, API keys and scopes, per-user isolation of
tasks, streams, assets and files, per-user idempotency, signed file links, admin routes and
the `genpulse users|keys` commands."""
import json
import os
import subprocess
import time
import urllib.parse

from harness import (BIN, case, check, check_error, http_request, short, sse_collect,
                     url_path)

PNG = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "media",
                        "solid_red_8x8.png"), "rb").read()


def cli(srv, *args, expect=0):
    """Runs `genpulse ARGS --data-dir <srv's>`; returns (parsed stdout or None, stderr)."""
    p = subprocess.run([BIN] + list(args) + ["--data-dir", srv.data_dir], capture_output=True,
                       timeout=30, env=dict(os.environ, ASAN_OPTIONS="abort_on_error=0"))
    check(p.returncode == expect, "genpulse %s: exit %d (expected %d): %s" %
          (" ".join(args), p.returncode, expect, p.stderr.decode()[-600:]))
    out = p.stdout.decode()
    return (json.loads(out) if out.strip() else None), p.stderr.decode()


def new_user_key(srv, email, scopes="tasks:read,tasks:write", **kw):
    kw.setdefault("plan", "pro")
    user, _ = cli(srv, "users", "create", "--email", email, *sum(
        (["--" + k, v] for k, v in kw.items()), []))
    key, _ = cli(srv, "keys", "create", "--user", email, "--scopes", scopes)
    return user, key["key"]


def auth(key):
    return {"Authorization": "Bearer " + key}


def wait_until(fn, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("not %s within %ss (last %r)" % (what, timeout, last))


def create(srv, key, task_type="echo", params=None, expect=202, headers=None, **env):
    body = {"task_type": task_type, "params": params or {"message": "hi"}}
    body.update(env)
    h = auth(key) if key else {}
    h.update(headers or {})
    r = srv.post("/v1/tasks", body, headers=h)
    check(r.status == expect, "POST /v1/tasks: expected %d, got %r" % (expect, r))
    return r.json


def upload(srv, key, data=PNG, name="x.png"):
    boundary = "gpboundary"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: image/png\r\n\r\n" % (boundary, name)).encode() + data +
            ("\r\n--%s--\r\n" % boundary).encode())
    return http_request(srv.port, "POST", "/v1/assets", body, headers=auth(key),
                        content_type="multipart/form-data; boundary=" + boundary)


# ------------------------------------------------------------------------------------------

@case(own=True)
def test_identity_open_until_a_key_exists(ctx):
    srv = ctx.new_server().start()
    check("auth: open" in srv.stderr_text(), "start-up log does not say the server is open: %s"
          % srv.stderr_tail(5))
    t = create(srv, None)
    acct = srv.get("/v1/account")
    check(acct.status == 200 and acct.json["user"]["id"] == "local" and
          acct.json["authenticated_by"] == "local", "account of an open server: %r" % acct)
    check(srv.get("/v1/tasks/%s" % t["id"]).status == 200, "open server hides its task")
    _, key = new_user_key(srv, "a@example.com")
    # within the cache time every request needs a key
    r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(srv.get("/v1/tasks")), 10,
                   "closed after the first key")
    check_error(r, 401, "unauthenticated")
    check(r.headers.get("www-authenticate", "").startswith("Bearer"),
          "401 without a Bearer challenge: %r" % r.headers)
    mine = create(srv, key)
    check(srv.get("/v1/tasks/%s" % mine["id"], headers=auth(key)).status == 200, "key rejected")
    # the local user's earlier task is not this user's
    check_error(srv.get("/v1/tasks/%s" % t["id"], headers=auth(key)), 404, "not_found")
    acct = srv.get("/v1/account", headers=auth(key))
    check(acct.status == 200 and acct.json["user"]["email"] == "a@example.com" and
          acct.json["scopes"] == ["tasks:read", "tasks:write"] and
          acct.json["authenticated_by"] == "api_key", "account: %r" % acct)


@case(own=True)
def test_identity_two_users_isolated(ctx):
    srv = ctx.new_server(["--allow-private-inputs", "1"]).start()
    _, ka = new_user_key(srv, "alice@example.com")
    _, kb = new_user_key(srv, "bob@example.com")
    _, kadmin = new_user_key(srv, "root@example.com", scopes="admin")
    ta = create(srv, ka, "text-to-image", {"prompt": "fox", "width": 64, "height": 64,
                                            "delay_ms": 1500, "steps": 3})
    tb = create(srv, kb)
    tid = ta["id"]
    # B never sees, streams, cancels or retries A's task: 404, not 403
    check_error(srv.get("/v1/tasks/" + tid, headers=auth(kb)), 404, "not_found", what="get")
    check_error(srv.post("/v1/tasks/%s/cancel" % tid, headers=auth(kb)), 404, "not_found",
                what="cancel")
    check_error(srv.post("/v1/tasks/%s/retry" % tid, headers=auth(kb)), 404, "not_found",
                what="retry")
    check_error(srv.get("/v1/tasks/%s/events" % tid, headers=auth(kb)), 404, "not_found",
                what="events")
    ids_b = [t["id"] for t in srv.get("/v1/tasks?limit=100", headers=auth(kb)).json["data"]]
    check(tid not in ids_b and tb["id"] in ids_b, "B's list: %r" % ids_b)
    ids_a = [t["id"] for t in srv.get("/v1/tasks?limit=100", headers=auth(ka)).json["data"]]
    check(tid in ids_a and tb["id"] not in ids_a, "A's list: %r" % ids_a)
    # the admin sees both
    ids_admin = [t["id"] for t in srv.get("/v1/tasks?limit=100", headers=auth(kadmin)).json["data"]]
    check(tid in ids_admin and tb["id"] in ids_admin, "admin's list: %r" % ids_admin)
    check(srv.get("/v1/tasks/" + tb["id"], headers=auth(kadmin)).status == 200, "admin get")
    # A streams its own task to the end
    done = wait_until(lambda: (lambda t: t if t["status"] == "succeeded" else None)(
        srv.get("/v1/tasks/" + tid, headers=auth(ka)).json), 20, "A's task done")
    url = done["result"]["assets"][0]["url"]
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    check("signature" in q and "expires" in q, "output link is not signed: %s" % url)
    r = srv.get(url_path(url))
    check(r.status == 200 and r.body[:4] == b"\x89PNG", "signed link does not serve: %r" % r)
    bare = urllib.parse.urlsplit(url).path
    check_error(srv.get(bare), 403, "invalid_signature", what="unsigned link")
    tampered = url_path(url).replace("expires=", "expires=9")
    check_error(srv.get(tampered), 403, "invalid_signature", what="tampered link")
    other = url_path(url).replace(tid, tb["id"])
    check_error(srv.get(other), 403, "invalid_signature", what="link moved to another task")
    # assets belong to their uploader
    up = upload(srv, ka)
    check(up.status == 201, "upload: %r" % up)
    aid = up.json["id"]
    check("owner" not in up.json, "asset JSON leaks the owner field: %r" % up.json)
    check(srv.get("/v1/assets/" + aid, headers=auth(ka)).status == 200, "A reads A's asset")
    check_error(srv.get("/v1/assets/" + aid, headers=auth(kb)), 404, "not_found", what="asset")
    # B's task cannot read A's upload either
    tb2 = create(srv, kb, "image-to-image", {"image": aid, "width": 8, "height": 8})
    end = wait_until(lambda: (lambda t: t if t["status"] in ("succeeded", "failed") else None)(
        srv.get("/v1/tasks/" + tb2["id"], headers=auth(kb)).json), 20, "B's task ends")
    check(end["status"] == "failed" and end["error"]["code"] == "invalid_input",
          "B's task used A's asset: %r" % end)
    ta2 = create(srv, ka, "image-to-image", {"image": aid, "width": 8, "height": 8})
    end = wait_until(lambda: (lambda t: t if t["status"] in ("succeeded", "failed") else None)(
        srv.get("/v1/tasks/" + ta2["id"], headers=auth(ka)).json), 20, "A's task ends")
    check(end["status"] == "succeeded", "A's task could not use A's asset: %r" % end)


@case(own=True)
def test_identity_scopes_revoke_expire(ctx):
    srv = ctx.new_server().start()
    _, reader = new_user_key(srv, "r@example.com", scopes="tasks:read")
    cli(srv, "users", "create", "--email", "w@example.com")
    writer, _ = cli(srv, "keys", "create", "--user", "w@example.com", "--scopes", "tasks:write",
                    "--name", "ci")
    check(writer["name"] == "ci" and writer["key"].startswith("gp_") and len(writer["key"]) == 41,
          "key JSON: %r" % writer)
    r = srv.post("/v1/tasks", {"task_type": "echo", "params": {}}, headers=auth(reader))
    check_error(r, 403, "insufficient_scope", what="read-only key creating")
    check(srv.get("/v1/tasks", headers=auth(reader)).status == 200, "reader cannot list")
    t = create(srv, writer["key"])
    check_error(srv.get("/v1/tasks/" + t["id"], headers=auth(writer["key"])), 403,
                "insufficient_scope", what="write-only key reading")
    check_error(srv.get("/v1/users", headers=auth(reader)), 403, "insufficient_scope",
                what="non-admin on /v1/users")
    # malformed credentials
    check_error(srv.get("/v1/tasks", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401,
                "unauthenticated")
    check_error(srv.get("/v1/tasks", headers=auth("gp_notakey")), 401, "invalid_key")
    fake = writer["key"][:-7] + ("A" if writer["key"][-7] != "A" else "B") + writer["key"][-6:]
    check_error(srv.get("/v1/tasks", headers=auth(fake)), 401, "invalid_key")
    # revoke via the command line: refused within the cache time
    cli(srv, "keys", "revoke", writer["id"])
    r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(
        srv.post("/v1/tasks", {"task_type": "echo", "params": {}}, headers=auth(writer["key"]))),
        10, "revoked key refused")
    check_error(r, 401, "key_revoked")
    # expiry
    short_lived, _ = cli(srv, "keys", "create", "--user", "r@example.com", "--expires", "2s")
    check(srv.get("/v1/tasks", headers=auth(short_lived["key"])).status == 200, "fresh key")
    time.sleep(2.5)
    check_error(srv.get("/v1/tasks", headers=auth(short_lived["key"])), 401, "key_expired")
    # keys list shows no secret
    listed, _ = cli(srv, "keys", "list")
    check(len(listed) == 3 and all("key" not in k and "hash" not in k for k in listed),
          "keys list: %r" % listed)
    check("gp_" not in srv.stderr_text().replace(writer["prefix"], "").replace(
        short_lived["prefix"], ""), "a key appears in the server log")


@case(own=True)
def test_identity_failed_auth_throttled(ctx):
    srv = ctx.new_server().start()
    _, key = new_user_key(srv, "t@example.com")
    bad = "gp_" + "0" * 38
    statuses = [srv.get("/v1/tasks", headers=auth(bad)).status for _ in range(25)]
    check(statuses[0] == 401 and statuses[-1] == 429, "statuses: %r" % statuses)
    r = srv.get("/v1/tasks", headers=auth(bad))
    check_error(r, 429, "too_many_auth_failures")
    check(int(r.headers.get("retry-after", "0")) > 0, "429 without Retry-After: %r" % r.headers)


@case(own=True)
def test_identity_idempotency_per_user(ctx):
    srv = ctx.new_server().start()
    _, ka = new_user_key(srv, "ia@example.com")
    _, kb = new_user_key(srv, "ib@example.com")
    h = {"Idempotency-Key": "order-42"}
    a1 = create(srv, ka, params={"message": "one", "data": {"x": 1, "y": 2}}, headers=h)
    b1 = create(srv, kb, params={"message": "one", "data": {"x": 1, "y": 2}}, headers=h)
    check(a1["id"] != b1["id"], "two users' same Idempotency-Key gave one task")
    # same body, keys in another order: a replay
    r = srv.post("/v1/tasks", '{"params": {"data": {"y": 2, "x": 1}, "message": "one"}, "task_type": "echo"}',
                 headers=dict(auth(ka), **h))
    check(r.status == 202 and r.json["id"] == a1["id"] and
          r.headers.get("idempotent-replayed") == "true", "replay: %r" % r)
    # same key, different body: 422
    r = srv.post("/v1/tasks", {"task_type": "echo", "params": {"message": "two"}},
                 headers=dict(auth(ka), **h))
    check_error(r, 422, "idempotency_key_reused", ["headers.Idempotency-Key"])


@case(own=True)
def test_identity_admin_routes(ctx):
    srv = ctx.new_server().start()
    _, admin = new_user_key(srv, "boss@example.com", scopes="admin")
    r = srv.post("/v1/users", {"email": "New@Example.com", "display_name": "New", "plan": "pro"},
                 headers=auth(admin))
    check(r.status == 201 and r.json["email"] == "new@example.com" and r.json["plan"] == "pro",
          "POST /v1/users: %r" % r)
    uid = r.json["id"]
    check_error(srv.post("/v1/users", {"email": "new@example.com"}, headers=auth(admin)), 409,
                "conflict", what="duplicate email")
    check_error(srv.post("/v1/users", {"email": "nope", "colour": "red"}, headers=auth(admin)),
                422, "validation_error", ["body.colour"], what="unknown field")
    check_error(srv.post("/v1/users", {"email": "not an email"}, headers=auth(admin)), 422,
                "validation_error", ["body.email"])
    r = srv.post("/v1/keys", {"user": uid, "scopes": ["tasks:read"], "name": "dash"},
                 headers=auth(admin))
    check(r.status == 201 and r.json["key"].startswith("gp_") and r.json["scopes"] == ["tasks:read"],
          "POST /v1/keys: %r" % r)
    newkey, kid = r.json["key"], r.json["id"]
    check_error(srv.post("/v1/keys", {"user": uid, "scopes": "tasks:everything"},
                         headers=auth(admin)), 422, "validation_error", ["body.scopes"])
    check(srv.get("/v1/account", headers=auth(newkey)).json["user"]["id"] == uid, "new key's user")
    lst = srv.get("/v1/keys?user=" + uid, headers=auth(admin))
    check(lst.status == 200 and [k["id"] for k in lst.json["data"]] == [kid] and
          "key" not in lst.json["data"][0], "GET /v1/keys: %r" % lst)
    users = srv.get("/v1/users?limit=100", headers=auth(admin)).json["data"]
    check({"local", uid} <= {u["id"] for u in users}, "GET /v1/users: %r" % users)
    check(srv.get("/v1/users/new@example.com", headers=auth(admin)).status == 200, "user by email")
    # change the plan, then disable the user: its key is refused at once on this gateway
    r = srv.req("PATCH", "/v1/users/" + uid, {"plan": "free"}, headers=auth(admin))
    check(r.status == 200 and r.json["plan"] == "free", "PATCH plan: %r" % r)
    check_error(srv.req("PATCH", "/v1/users/" + uid, {"disabled": "yes", "x": 1},
                        headers=auth(admin)), 422, "validation_error",
                ["body.disabled", "body.x"])
    r = srv.req("PATCH", "/v1/users/" + uid, {"disabled": True}, headers=auth(admin))
    check(r.status == 200 and r.json["disabled"] is True, "PATCH disabled: %r" % r)
    check_error(srv.get("/v1/account", headers=auth(newkey)), 403, "user_disabled")
    r = srv.req("PATCH", "/v1/users/" + uid, {"disabled": False}, headers=auth(admin))
    check(srv.get("/v1/account", headers=auth(newkey)).status == 200, "re-enabled user refused")
    r = srv.post("/v1/keys/%s/revoke" % kid, headers=auth(admin))
    check(r.status == 200 and r.json["revoked"] is True, "revoke: %r" % r)
    check_error(srv.get("/v1/account", headers=auth(newkey)), 401, "key_revoked")


@case(own=True)
def test_identity_cli_errors(ctx):
    srv = ctx.new_server()  # not started: the commands work on the store alone
    u, _ = cli(srv, "users", "create", "--email", "c@example.com", "--plan", "pro")
    check(u["plan"] == "pro" and u["email"] == "c@example.com", "users create: %r" % u)
    _, err = cli(srv, "users", "create", "--email", "c@example.com", expect=2)
    check("exists" in err, "duplicate email message: %r" % err)
    _, err = cli(srv, "keys", "create", "--user", "c@example.com", "--scopes", "root", expect=2)
    check("scopes" in err and "root" in err, "bad scope message: %r" % err)
    _, err = cli(srv, "keys", "create", "--user", "nobody@example.com", expect=2)
    check("no such user" in err, "unknown user message: %r" % err)
    _, err = cli(srv, "keys", "create", "--user", "c@example.com", "--expires", "soon", expect=2)
    check("expires" in err, "bad expiry message: %r" % err)
    _, err = cli(srv, "keys", "revoke", "00000000-0000-0000-0000-000000000000", expect=1)
    check("no key" in err, "revoke unknown: %r" % err)
    listed, _ = cli(srv, "users", "list")
    check([x["id"] for x in listed][0] == "local" and len(listed) == 2, "users list: %r" % listed)
    p = subprocess.run([BIN, "keys", "--help"], capture_output=True, timeout=10)
    check(p.returncode == 0 and b"scopes" in p.stdout, "keys --help: %r" % p.stdout[:200])


@case(own=True)
def test_identity_public_address_rules(ctx):
    srv = ctx.new_server(["--host", "0.0.0.0", "--auth", "open"])
    try:
        srv.start(timeout=5)
        started = True
    except Exception:
        started = False
    check(not started or not srv.alive(), "--auth open on 0.0.0.0 started")
    check("open-public" in srv.stderr_text(), "the refusal does not say how to proceed: %s"
          % srv.stderr_tail(5))
    # beyond loopback with the default rule: keys required even before one exists
    srv2 = ctx.new_server(["--host", "0.0.0.0"]).start()
    check_error(srv2.get("/v1/tasks"), 401, "unauthenticated")
    check(srv2.get("/health").status == 200, "health needs no key")


@case(own=True)
def test_identity_cors(ctx):
    srv = ctx.new_server(["--cors-origins", "https://app.example.com"]).start()
    pre = srv.req("OPTIONS", "/v1/tasks", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    check(pre.status == 204 and pre.headers.get("access-control-allow-origin") ==
          "https://app.example.com" and "Authorization" in
          pre.headers.get("access-control-allow-headers", ""), "preflight: %r %r" % (pre, pre.headers))
    r = srv.get("/v1/task-types", headers={"Origin": "https://app.example.com"})
    check(r.headers.get("access-control-allow-origin") == "https://app.example.com" and
          "Origin" in r.headers.get("vary", ""), "CORS on a response: %r" % r.headers)
    r = srv.get("/v1/task-types", headers={"Origin": "https://evil.example.com"})
    check("access-control-allow-origin" not in r.headers, "foreign origin allowed: %r" % r.headers)
    bad = srv.req("OPTIONS", "/v1/tasks", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    check(bad.status == 403, "preflight from a foreign origin: %r" % bad)

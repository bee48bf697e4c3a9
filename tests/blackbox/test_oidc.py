"""OpenID Connect ID tokens as bearer tokens, against the fake issuer (tests/fakes/oidc.py):
valid tokens map (iss, sub) to a user created on first sight; every forged, stale or
misdirected token is refused with 401 and its own error.code; key rotation is picked up."""
import time

from harness import case, check, check_error, http_request
from provider_fakes import FakeAPI

CLIENT = "genpulse-test-client"


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def setup(ctx, extra=()):
    fake = FakeAPI("oidc.py", ["--client-id", CLIENT])
    ctx.servers.append(fake)
    srv = ctx.new_server(["--oidc-issuer", fake.origin, "--oidc-client-id", CLIENT] +
                         list(extra)).start()
    return fake, srv


def mint(fake, **kw):
    return fake.control("POST", "/_mint", kw)["token"]


@case(own=True)
def test_oidc_tokens_accepted_and_refused(ctx):
    fake, srv = setup(ctx)
    # an issuer is configured: no more open access, even on loopback with no key
    check_error(srv.get("/v1/tasks"), 401, "unauthenticated")
    now = int(time.time())
    tok = mint(fake, claims={"sub": "alice", "email": "alice@example.com",
                             "email_verified": True, "name": "Alice"})
    r = srv.get("/v1/account", headers=bearer(tok))
    check(r.status == 200 and r.json["authenticated_by"] == "oidc" and
          r.json["user"]["email"] == "alice@example.com" and
          r.json["user"]["oidc"]["subject"] == "alice", "account via ID token: %r" % r)
    uid = r.json["user"]["id"]
    ec = mint(fake, alg="ES256", claims={"sub": "alice"})
    r = srv.get("/v1/account", headers=bearer(ec))
    check(r.status == 200 and r.json["user"]["id"] == uid, "ES256 token, same user: %r" % r)
    t = srv.post("/v1/tasks", {"task_type": "echo", "params": {"message": "m"}},
                 headers=bearer(tok))
    check(t.status == 202, "create with an ID token: %r" % t)
    bob = mint(fake, claims={"sub": "bob"})
    check_error(srv.get("/v1/tasks/" + t.json["id"], headers=bearer(bob)), 404, "not_found",
                what="another OIDC user")
    cases = [
        ("token_wrong_audience", dict(claims={"aud": "someone-else"})),
        ("token_wrong_issuer", dict(claims={"iss": "https://evil.example.com"})),
        ("token_expired", dict(claims={"exp": now - 3600, "iat": now - 7200})),
        ("token_not_yet_valid", dict(claims={"nbf": now + 3600})),
        ("token_alg_not_allowed", dict(alg="none")),
        ("token_alg_not_allowed", dict(alg="HS256")),
        ("token_unknown_kid", dict(kid="no-such-kid")),
        ("token_bad_signature", dict(key="stranger")),
    ]
    for code, kw in cases:
        bad = mint(fake, **kw)
        check_error(srv.get("/v1/account", headers=bearer(bad)), 401, code, what=str(kw))
    head, payload, sig = tok.split(".")
    forged = head + "." + payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB") + "." + sig
    r = srv.get("/v1/account", headers=bearer(forged))
    check(r.status == 401 and r.json["error"]["code"] in ("token_bad_signature", "token_malformed"),
          "tampered payload: %r" % r)
    check(tok not in srv.stderr_text(), "an ID token appears in the server log")


@case(own=True)
def test_oidc_key_rotation(ctx):
    fake, srv = setup(ctx)
    tok = mint(fake, claims={"sub": "carol"})
    check(srv.get("/v1/account", headers=bearer(tok)).status == 200, "first token")
    fake.control("POST", "/_rotate", {"keep_previous": False})
    time.sleep(10.5)  # refetches on an unknown kid are rate-limited to one per 10 s
    new = mint(fake, claims={"sub": "carol"})
    r = srv.get("/v1/account", headers=bearer(new))
    check(r.status == 200, "token signed with the rotated key: %r" % r)
    stats = fake.control("GET", "/_stats")
    check(stats["jwks_fetches"] >= 2, "JWKS not refetched after rotation: %r" % stats)


def _cookies(resp):
    """The Set-Cookie headers the harness kept (it keeps the last of repeated headers)."""
    raw = resp.headers.get("set-cookie", "")
    out = {}
    for part in raw.split(", "):
        if "=" in part.split(";")[0]:
            k, v = part.split(";")[0].split("=", 1)
            out[k.strip()] = (v, part)
    return out


@case(own=True)
def test_oidc_browser_sign_in(ctx):
    import urllib.parse
    fake, srv = setup(ctx, ["--oidc-client-secret", "test-secret"])
    r = srv.get("/v1/auth/login?return_to=/v1/account")
    check(r.status == 302, "login: %r" % r)
    auth_url = r.headers["location"]
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(auth_url).query)
    check(q["response_type"] == ["code"] and q["code_challenge_method"] == ["S256"] and
          q["client_id"] == [CLIENT] and "state" in q and "nonce" in q, "authorize URL %s" % auth_url)
    flow = _cookies(r)["gp_signin"]
    check("HttpOnly" in flow[1] and "SameSite=Lax" in flow[1], "flow cookie %r" % flow[1])
    # the fake issuer answers at once with a redirect carrying the code
    p = urllib.parse.urlsplit(auth_url)
    fr = http_request(fake.port, "GET", p.path + "?" + p.query)
    check(fr.status == 302, "fake authorize: %r" % fr)
    cb = urllib.parse.urlsplit(fr.headers["location"])
    # a callback without the flow cookie (another browser) is refused
    check_error(srv.get(cb.path + "?" + cb.query), 401, "unauthenticated")
    r = srv.get(cb.path + "?" + cb.query, headers={"Cookie": "gp_signin=" + flow[0]})
    check(r.status == 302 and r.headers["location"] == "/v1/account", "callback: %r" % r)
    sess = _cookies(r)["gp_session"]
    check("HttpOnly" in sess[1] and "SameSite=Lax" in sess[1], "session cookie %r" % sess[1])
    jar = {"Cookie": "gp_session=" + sess[0]}
    acct = srv.get("/v1/account", headers=jar)
    check(acct.status == 200 and acct.json["authenticated_by"] == "session" and
          acct.json.get("csrf_token"), "account via session: %r" % acct)
    body = {"task_type": "echo", "params": {"message": "from the browser"}}
    check_error(srv.post("/v1/tasks", body, headers=jar), 403, "csrf_token_invalid",
                ["headers.X-CSRF-Token"])
    r = srv.post("/v1/tasks", body, headers=dict(jar, **{"X-CSRF-Token": acct.json["csrf_token"]}))
    check(r.status == 202, "write with session + CSRF token: %r" % r)
    # a forged cookie is refused; a replayed code is refused by the issuer
    check_error(srv.get("/v1/account", headers={"Cookie": "gp_session=" + sess[0][:-2] + "xx"}),
                401, "unauthenticated")
    r = srv.get(cb.path + "?" + cb.query, headers={"Cookie": "gp_signin=" + flow[0]})
    check(r.status == 401, "second use of one code: %r" % r)
    out = srv.post("/v1/auth/logout", headers=dict(jar, **{"X-CSRF-Token": acct.json["csrf_token"]}))
    check(out.status == 204 and "Max-Age=0" in out.headers.get("set-cookie", ""), "logout %r" % out)
    check_error(srv.get("/v1/auth/login?return_to=//evil.example.com"), 422, "validation_error",
                ["return_to"])

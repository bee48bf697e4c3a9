#!/usr/bin/python3
"""Fake OpenID Connect issuer (discovery, JWKS, authorization code flow with PKCE).

Usage: oidc.py [--port N] [--client-id ID] [--client-secret S]. Prints "fake-oidc ready
port=N". Needs Debian's python3-jwt and python3-cryptography. The issuer is the fake's own
base URL, http://127.0.0.1:N.

  GET  /.well-known/openid-configuration   issuer, authorization_endpoint, token_endpoint,
                                            jwks_uri (base/authorize, base/token, base/jwks)
  GET  /jwks        the current RSA and EC P-256 public keys, with
                    Cache-Control: public, max-age=<config "max_age", default 3600>
                    (config "max_age": null sends no Cache-Control at all)
  GET  /authorize   checks response_type=code, client_id, redirect_uri, S256 challenge;
                    answers 302 to redirect_uri?code=C&state=S at once, remembering the
                    nonce, the code_challenge and the redirect_uri under C
  POST /token       form grant_type=authorization_code, code, redirect_uri, client_id,
                    client_secret, code_verifier: checks each (S256(verifier) must be the
                    challenge; codes are single-use) and answers {id_token, access_token, ...}
                    with an RS256 ID token carrying the remembered nonce; else 400
                    {"error": "invalid_grant" | "invalid_client" | "invalid_request"}

Test controls:
  POST /_mint    {claims, alg, kid, key, header} -> {"token": "..."}
                 claims  merged over the defaults iss=<issuer>, sub="user-1",
                         aud=<client id>, iat=now, exp=now+600 (a null value removes one)
                 alg     "RS256" (default) | "ES256" | "none" (unsigned, empty signature) |
                         "HS256" (HMAC keyed with the current RSA public key's PEM: the
                         algorithm-confusion attack)
                 kid     the header's kid (default: the signing key's; null: no kid)
                 key     "current" (default) | "previous" (the set before the last rotate) |
                         "stranger" (a key never published, same kid)
                 header  extra header fields merged in
  POST /_rotate  {"keep_previous": false} new RSA and EC keys with new kids ("rsa-2",
                 "ec-2", ...); with keep_previous the JWKS lists the old ones too
  GET  /_stats   {"jwks_fetches": N, "discovery_fetches": N, "token_requests": N}
  plus fakebase's /_fake/config (keys above, fail_500, ...), /_fake/reset, /_fake/requests.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakebase  # noqa: E402


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def int_b64(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return b64url(n.to_bytes(length, "big"))


class KeySet:
    """One generation of signing keys: an RSA-2048 and an EC P-256 key."""

    def __init__(self, generation):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid = "rsa-%d" % generation
        self.ec_kid = "ec-%d" % generation

    def jwks(self):
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        return [
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.rsa_kid,
             "n": int_b64(rn.n), "e": int_b64(rn.e)},
            {"kty": "EC", "use": "sig", "alg": "ES256", "kid": self.ec_kid, "crv": "P-256",
             "x": int_b64(en.x, 32), "y": int_b64(en.y, 32)},
        ]

    def rsa_public_pem(self):
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Handler(fakebase.FakeHandler):
    keys = None        # current KeySet
    previous = None    # the KeySet before the last rotate
    keep_previous = False
    generation = 1
    stranger = None    # never published
    codes = {}         # authorization code -> what /authorize remembered
    stats = {"jwks_fetches": 0, "discovery_fetches": 0, "token_requests": 0}

    def error_body(self, status, message):
        return {"error": "server_error", "error_description": message}

    def count(self, what):
        with self.state.lock:
            Handler.stats[what] += 1

    # -- tokens --
    def sign(self, claims, alg="RS256", kid=Ellipsis, key="current", header=None):
        with self.state.lock:
            ks = {"current": Handler.keys, "previous": Handler.previous or Handler.keys,
                  "stranger": Handler.stranger}[key]
            current = Handler.keys
        if alg in ("none", "HS256"):
            hdr = {"alg": alg, "typ": "JWT"}
            if kid is Ellipsis:
                kid = current.rsa_kid
            if kid is not None:
                hdr["kid"] = kid
            hdr.update(header or {})
            signing_input = (b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
                             b64url(json.dumps(claims, separators=(",", ":")).encode()))
            if alg == "none":
                return signing_input + "."
            mac = hmac.new(current.rsa_public_pem(), signing_input.encode(), hashlib.sha256)
            return signing_input + "." + b64url(mac.digest())
        if alg == "RS256":
            priv, default_kid = ks.rsa, (current.rsa_kid if key == "stranger" else ks.rsa_kid)
        elif alg == "ES256":
            priv, default_kid = ks.ec, (current.ec_kid if key == "stranger" else ks.ec_kid)
        else:
            raise ValueError("unsupported alg %r" % alg)
        hdr = {}
        kid = default_kid if kid is Ellipsis else kid
        if kid is not None:
            hdr["kid"] = kid
        hdr.update(header or {})
        return jwt.encode(claims, priv, algorithm=alg, headers=hdr)

    def default_claims(self, extra):
        now = int(time.time())
        claims = {"iss": self.base_url(), "sub": "user-1", "aud": self.opts.client_id,
                  "iat": now, "exp": now + 600}
        for k, v in (extra or {}).items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return claims

    # -- endpoints --
    def api(self, method, path, query, raw):
        base = self.base_url()
        if path == "/.well-known/openid-configuration" and method == "GET":
            self.count("discovery_fetches")
            return self.reply(200, {
                "issuer": self.cfg("discovery_issuer", base),
                "authorization_endpoint": base + "/authorize",
                "token_endpoint": base + "/token",
                "jwks_uri": base + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "code_challenge_methods_supported": ["S256"],
            })
        if path == "/jwks" and method == "GET":
            self.count("jwks_fetches")
            with self.state.lock:
                keys = Handler.keys.jwks()
                if Handler.keep_previous and Handler.previous:
                    keys += Handler.previous.jwks()
            max_age = self.cfg("max_age", 3600)
            headers = {} if max_age is None else {"Cache-Control": "public, max-age=%d" % max_age}
            return self.reply(200, {"keys": keys}, headers=headers)
        if path == "/authorize" and method == "GET":
            return self.authorize(query)
        if path == "/token" and method == "POST":
            self.count("token_requests")
            return self.token(urllib.parse.parse_qs(raw.decode(), keep_blank_values=True))
        if path == "/_mint" and method == "POST":
            req = json.loads(raw or b"{}")
            token = self.sign(self.default_claims(req.get("claims")), req.get("alg", "RS256"),
                              req["kid"] if "kid" in req else Ellipsis,
                              req.get("key", "current"), req.get("header"))
            return self.reply(200, {"token": token})
        if path == "/_rotate" and method == "POST":
            req = json.loads(raw or b"{}")
            with self.state.lock:
                Handler.generation += 1
                Handler.previous = Handler.keys
                Handler.keys = KeySet(Handler.generation)
                Handler.keep_previous = bool(req.get("keep_previous"))
                kids = [k["kid"] for k in Handler.keys.jwks()]
            return self.reply(200, {"kids": kids})
        if path == "/_stats" and method == "GET":
            with self.state.lock:
                return self.reply(200, dict(Handler.stats))
        return self.reply(404, {"error": "not_found"})

    def authorize(self, query):
        q = {k: v[0] for k, v in query.items()}
        redirect = q.get("redirect_uri", "")
        if (q.get("response_type") != "code" or q.get("client_id") != self.opts.client_id or
                not redirect or q.get("code_challenge_method") != "S256" or
                len(q.get("code_challenge", "")) != 43 or "openid" not in
                q.get("scope", "").split()):
            return self.reply(400, {"error": "invalid_request"})
        code = secrets.token_urlsafe(16)
        with self.state.lock:
            Handler.codes[code] = {"nonce": q.get("nonce"), "challenge": q["code_challenge"],
                                   "redirect_uri": redirect}
        sep = "&" if "?" in redirect else "?"
        location = redirect + sep + urllib.parse.urlencode({"code": code,
                                                            "state": q.get("state", "")})
        return self.reply(302, b"", headers={"Location": location})

    def token(self, form):
        f = {k: v[0] for k, v in form.items()}
        if f.get("grant_type") != "authorization_code":
            return self.reply(400, {"error": "unsupported_grant_type"})
        if (f.get("client_id") != self.opts.client_id or
                f.get("client_secret") != self.opts.client_secret):
            return self.reply(401, {"error": "invalid_client"})
        with self.state.lock:
            remembered = Handler.codes.pop(f.get("code", ""), None)
        if remembered is None or remembered["redirect_uri"] != f.get("redirect_uri"):
            return self.reply(400, {"error": "invalid_grant"})
        verifier = f.get("code_verifier", "")
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        if not hmac.compare_digest(challenge, remembered["challenge"]):
            return self.reply(400, {"error": "invalid_grant",
                                    "error_description": "PKCE verification failed"})
        extra = {"email": "user@example.com", "email_verified": True, "name": "Test User"}
        if remembered["nonce"] is not None:
            extra["nonce"] = remembered["nonce"]
        return self.reply(200, {"access_token": secrets.token_urlsafe(24),
                                "token_type": "Bearer", "expires_in": 3600,
                                "scope": "openid email profile",
                                "id_token": self.sign(self.default_claims(extra))})


def main():
    Handler.keys = KeySet(1)
    Handler.stranger = KeySet(0)
    fakebase.serve(Handler, "oidc", extra_args=[
        (("--client-id",), {"default": "test-client"}),
        (("--client-secret",), {"default": "test-secret"}),
    ])


if __name__ == "__main__":
    main()

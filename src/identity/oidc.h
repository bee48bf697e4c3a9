/*
 * identity/oidc.h — OpenID Connect ID tokens: verification against the issuers' published
 * keys (bearer tokens on the API), and the few steps of the browser sign-in (authorization
 * code flow with PKCE, RFC 7636).
 *
 * Verification never trusts the token to choose how it is checked: the algorithm must be
 * RS256 or ES256 AND agree with the key the issuer published under the token's `kid` (no
 * `none`, no HMAC, so a public key can never serve as an HMAC secret); signatures are checked
 * with OpenSSL directly. Keys come from the issuer's JWKS (found through its discovery
 * document unless configured), fetched with the HTTP client (include/genpulse/http.h) and
 * cached for the response's Cache-Control max-age, bounded to [60 s, 1 day] (1 h when absent).
 * An unknown `kid` refetches the JWKS (key rotation), at most once per 10 s per issuer, so a
 * flood of made-up kids cannot hammer the issuer. A failed refresh keeps the previous keys
 * for up to a day past their expiry. Issuers must be https:// (http:// only on loopback).
 *
 * The clock: every call takes now_s (wall-clock seconds, time(NULL) in production). It drives
 * the claim checks AND the key cache's expiry and rate limit, so tests can move time.
 *
 * Ownership: gp_oidc_new() copies the configuration; strings passed to any call are never
 * retained. An identity's strings are the caller's, freed by gp_oidc_identity_clear(); every
 * `char **` result is malloc'd and freed by the caller with free(). Error codes are static
 * strings (GP_OIDC_CODES below); messages are written into the caller's buffer, never contain
 * the token, and are safe to send to the client. Out-parameters are untouched on failure.
 *
 * Thread-safety: one gp_oidc_t per process, shared by every HTTP thread; all calls may run
 * concurrently (each issuer's key cache has its own mutex, never held across network I/O;
 * one fetch per issuer is in flight at a time and other callers wait for it, or use the keys
 * they already have). gp_oidc_free() only once no call is running.
 */
#ifndef GP_IDENTITY_OIDC_H
#define GP_IDENTITY_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Google's issuer. Its tokens say either this or the bare "accounts.google.com"; configured
 * under this name, both are accepted (and reported as this one). */
#define GP_OIDC_GOOGLE_ISSUER "https://accounts.google.com"

#define GP_OIDC_MAX_TOKEN 16384 /* longest compact JWS accepted, in bytes */
#define GP_OIDC_DEFAULT_SKEW_S 60
#define GP_OIDC_RANDOM_LEN 44 /* gp_oidc_random() and challenge buffers: 43 chars + NUL */

/*
 * Every refusal: the machine code for `error.code`, the HTTP status to send, the meaning.
 * Codes are stable; compare them with strcmp or against the GP_OIDC_E_* names.
 */
#define GP_OIDC_CODES(X)                                                                           \
    X(MALFORMED, "token_malformed", 401, "the token is not a well-formed ID token")                \
    X(ALG_NOT_ALLOWED, "token_alg_not_allowed", 401,                                               \
      "the token's algorithm is not RS256/ES256 or does not match the issuer's key")               \
    X(UNKNOWN_KID, "token_unknown_kid", 401, "the issuer publishes no key with the token's kid")   \
    X(BAD_SIGNATURE, "token_bad_signature", 401, "the token's signature is not valid")             \
    X(EXPIRED, "token_expired", 401, "the token has expired")                                      \
    X(NOT_YET_VALID, "token_not_yet_valid", 401, "the token's nbf or iat is in the future")        \
    X(WRONG_ISSUER, "token_wrong_issuer", 401, "the token's issuer is not accepted here")          \
    X(WRONG_AUDIENCE, "token_wrong_audience", 401, "the token was issued for another client")      \
    X(WRONG_DOMAIN, "token_wrong_domain", 401, "the account is not in the allowed domain")         \
    X(BAD_NONCE, "token_bad_nonce", 401, "the token's nonce is not the sign-in's nonce")           \
    X(JWKS_UNAVAILABLE, "jwks_unavailable", 503, "the issuer's keys could not be fetched")         \
    X(ISSUER_UNAVAILABLE, "issuer_unavailable", 503,                                               \
      "the issuer's discovery document or token endpoint could not be reached")                    \
    X(ISSUER_UNKNOWN, "issuer_unknown", 400, "no issuer of that name is configured")               \
    X(CODE_REJECTED, "code_rejected", 401, "the issuer refused the authorization code")

#define GP__OIDC_CODE_DECL(name, code, status, text) extern const char GP_OIDC_E_##name[];
GP_OIDC_CODES(GP__OIDC_CODE_DECL)
#undef GP__OIDC_CODE_DECL

/* The HTTP status for a code from this module (401 for one it does not know). */
int gp_oidc_code_status(const char *code);

typedef struct gp_oidc gp_oidc_t;

typedef struct gp_oidc_issuer_cfg {
    const char *issuer;        /* exact `iss` value, e.g. GP_OIDC_GOOGLE_ISSUER */
    const char *client_id;     /* required: the audience tokens must name */
    const char *client_secret; /* for gp_oidc_exchange_code(); NULL = public client */
    const char *hosted_domain; /* required `hd` claim (Google Workspace domain); NULL = any */
    const char *jwks_uri;      /* NULL = from ISSUER/.well-known/openid-configuration */
} gp_oidc_issuer_cfg_t;

/* n issuers (distinct), clock skew allowed on exp/nbf/iat (< 0: GP_OIDC_DEFAULT_SKEW_S, at most
 * 600). Nothing is fetched yet. NULL with the reason in err on a bad configuration. */
gp_oidc_t *gp_oidc_new(const gp_oidc_issuer_cfg_t *issuers, size_t n, int64_t skew_s, char *err,
                       size_t cap);
void gp_oidc_free(gp_oidc_t *o);

/* Pins issuer's keys to the JWKS document `json`: that issuer is never fetched from again
 * (static keys; tests and fuzzing run without a network). 0, or -1 with the reason in err. */
int gp_oidc_add_jwks(gp_oidc_t *o, const char *issuer, const char *json, char *err, size_t cap);

typedef struct gp_oidc_identity {
    char *issuer;  /* the configured issuer (canonical even when the token used an alias) */
    char *subject; /* `sub`: with issuer, the stable identity of the user */
    char *email;   /* NULL when absent */
    char *name;    /* NULL when absent */
    char *hd;      /* NULL when absent */
    bool email_verified;
    int64_t exp; /* seconds since the epoch */
} gp_oidc_identity_t;
void gp_oidc_identity_clear(gp_oidc_identity_t *id);

/*
 * Verifies an ID token (the bearer's compact JWS) from any configured issuer at now_s.
 * 0 = valid, out (required) filled. Else -1 with *code (a GP_OIDC_E_*) and a message in msg
 * (code and msg may be NULL). Access tokens (typ at+jwt) are refused. May block
 * on a JWKS fetch (bounded: about 10 s at worst), never while holding a lock others need.
 */
int gp_oidc_verify(gp_oidc_t *o, const char *token, int64_t now_s, gp_oidc_identity_t *out,
                   const char **code, char *msg, size_t cap);

/* Cheap shape check (no decoding) to route a bearer to OIDC rather than API keys: three
 * base64url parts starting with a JSON object, within GP_OIDC_MAX_TOKEN. */
bool gp_oidc_looks_like_jwt(const char *bearer);

/* ---- browser sign-in: authorization code flow with PKCE (S256) -----------------------------
 * 1. gp_oidc_random() three times: state, nonce, code verifier; keep them with the browser
 *    session (server side or in a signed cookie).
 * 2. Redirect to gp_oidc_authorization_url().
 * 3. On the callback, check `state`, then gp_oidc_exchange_code() and gp_oidc_verify_login().
 * These return 0 / a string, or -1 / NULL with *code and msg set like gp_oidc_verify(). */

/* 43 base64url chars of 32 random bytes (OpenSSL RAND_bytes). 0, or -1 if the RNG failed. */
int gp_oidc_random(char out[GP_OIDC_RANDOM_LEN]);
/* PKCE S256: base64url(SHA-256(verifier)). */
void gp_oidc_pkce_challenge(const char *verifier, char out[GP_OIDC_RANDOM_LEN]);
/* The issuer's authorization and token endpoints from its discovery document (fetched once,
 * then cached). Either out pointer may be NULL. */
int gp_oidc_endpoints(gp_oidc_t *o, const char *issuer, char **authorization_endpoint,
                      char **token_endpoint, const char **code, char *msg, size_t cap);
/* The URL to send the browser to: response_type=code, client_id, redirect_uri,
 * scope "openid email profile", state, nonce, code_challenge=S256(verifier). */
char *gp_oidc_authorization_url(gp_oidc_t *o, const char *issuer, const char *redirect_uri,
                                const char *state, const char *nonce, const char *verifier,
                                const char **code, char *msg, size_t cap);
/* Redeems an authorization code at the token endpoint; *id_token is the issuer's raw ID token,
 * not yet verified. */
int gp_oidc_exchange_code(gp_oidc_t *o, const char *issuer, const char *auth_code,
                          const char *redirect_uri, const char *verifier, char **id_token,
                          const char **code, char *msg, size_t cap);
/* gp_oidc_verify(), plus: the token comes from `issuer` and carries `nonce`. */
int gp_oidc_verify_login(gp_oidc_t *o, const char *id_token, const char *issuer, const char *nonce,
                         int64_t now_s, gp_oidc_identity_t *out, const char **code, char *msg,
                         size_t cap);

#endif

/*
 * signin.c — browser sign-in through OpenID Connect: authorization code flow with PKCE
 * (S256), `state` and `nonce`, ending in a session cookie.
 *
 *   GET  /v1/auth/login?issuer=&return_to=   → (offload pool: the issuer's discovery document
 *                                              may be fetched) 302 to the issuer, with a short-lived signed
 *                                              cookie holding state, nonce and the verifier
 *   GET  /v1/auth/callback?code=&state=      → the code is exchanged (offload pool: network
 *                                              I/O), the ID token verified with the nonce, the
 *                                              user found or created → Set-Cookie gp_session
 *                                              and 302 to return_to
 *   POST /v1/auth/logout                     → the cookie is cleared
 *
 * Cookies are HttpOnly, SameSite=Lax, Path=/, and Secure when --public-url is https. A
 * session cookie authenticates reads; writes made with it must also send the session's CSRF
 * token (GET /v1/account → csrf_token) as X-CSRF-Token (server.c checks it).
 */
#include "api/reply.h"
#include "core/crypto.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/session_token.h"
#include "core/util.h"
#include "identity/oidc.h"
#include "identity/oidc_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLOW_COOKIE "gp_signin"
#define FLOW_TTL_S 600
#define RETURN_TO_MAX 60

/* return_to must be a path on this server ("/…", not "//…": no open redirect). */
static bool return_to_ok(const char *s)
{
    if (!s || s[0] != '/' || s[1] == '/' || s[1] == '\\' || strlen(s) > RETURN_TO_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
            return false;
    return true;
}

static void hex_encode(const char *s, char *out)
{
    gp_hex((const uint8_t *)s, strlen(s), out);
}

static bool hex_decode(const char *hex, char *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 >= cap)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return true;
}

static enum MHD_Result redirect(request_t *r, const char *location, const char *cookie1,
                                const char *cookie2)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (cookie1)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie1);
    if (cookie2)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie2);
    enum MHD_Result ret = gp_queue_response(r->conn, 302, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* "name=value; HttpOnly; SameSite=Lax; Path=/; Max-Age=N[; Secure]", malloc'd. */
static char *cookie(request_t *r, const char *name, const char *value, int64_t max_age)
{
    bool secure = !strncmp(r->http->rt->public_url, "https://", 8);
    return gp_xasprintf("%s=%s; HttpOnly; SameSite=Lax; Path=/; Max-Age=%lld%s", name, value,
                        (long long)max_age, secure ? "; Secure" : "");
}

/* The configured issuer a request names (?issuer=google, or its URL), else the first. */
static int issuer_index(request_t *r, const char *name)
{
    gp_http_t *h = r->http;
    if (!name || !*name)
        return h->n_issuers > 0 ? 0 : -1;
    for (size_t i = 0; i < h->n_issuers; i++)
        if (!strcmp(h->issuers[i], name) ||
            (!strcmp(name, "google") && !strcmp(h->issuers[i], GP_OIDC_GOOGLE_ISSUER)))
            return (int)i;
    return -1;
}

/* Offload job: the issuer's authorization URL (its discovery document is fetched once). */
static void build_login_url(request_t *r)
{
    gp_http_t *h = r->http;
    signin_job_t *j = &r->signin;
    char *redirect_uri = gp_xasprintf("%s/v1/auth/callback", h->rt->public_url);
    j->url = gp_oidc_authorization_url(h->oidc, h->issuers[j->issuer], redirect_uri, j->state,
                                       j->nonce, j->verifier, &j->code, j->msg, sizeof j->msg);
    free(redirect_uri);
}

static enum MHD_Result login(request_t *r)
{
    gp_http_t *h = r->http;
    if (!h->oidc)
        return gp_send_error(r->conn, GP_E_NOT_FOUND,
                             "sign-in is not configured (--oidc-google-client-id or --oidc-issuer)",
                             NULL);
    int idx = issuer_index(r, gp_req_query(r, "issuer"));
    if (idx < 0)
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL,
                             gp_one_detail("issuer", "not a configured issuer"));
    const char *rt = gp_req_query(r, "return_to");
    if (rt && !return_to_ok(rt))
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL,
                             gp_one_detail("return_to", "must be a path on this server, at most "
                                                        "60 characters"));
    char state[GP_OIDC_RANDOM_LEN], nonce[GP_OIDC_RANDOM_LEN], verifier[GP_OIDC_RANDOM_LEN];
    if (gp_oidc_random(state) || gp_oidc_random(nonce) || gp_oidc_random(verifier))
        return gp_send_error(r->conn, GP_E_INTERNAL, "no randomness available", NULL);
    char back[2 * RETURN_TO_MAX + 1], idxs[16];
    hex_encode(rt ? rt : "/", back);
    snprintf(idxs, sizeof idxs, "%d", idx);
    const char *fields[] = {state, nonce, verifier, idxs, back};
    signin_job_t *j = &r->signin;
    if (gp_token_sign(h->session_secret, fields, 5, (int64_t)time(NULL) + FLOW_TTL_S, j->flow,
                      sizeof j->flow) != 0)
        return gp_send_error(r->conn, GP_E_INTERNAL, NULL, NULL);
    j->issuer = idx;
    snprintf(j->state, sizeof j->state, "%s", state);
    snprintf(j->nonce, sizeof j->nonce, "%s", nonce);
    snprintf(j->verifier, sizeof j->verifier, "%s", verifier);
    gp_http_offload(r, build_login_url); /* may fetch the discovery document */
    return MHD_YES;
}

static enum MHD_Result login_finish(request_t *r)
{
    signin_job_t *j = &r->signin;
    if (!j->url)
        return gp_send_error_full(
            r->conn, gp_oidc_code_status(j->code) == 503 ? GP_E_UNAVAILABLE : GP_E_INVALID_TOKEN,
            j->code, j->msg, NULL, NULL, NULL);
    char *c = cookie(r, FLOW_COOKIE, j->flow, FLOW_TTL_S);
    enum MHD_Result ret = redirect(r, j->url, c, NULL);
    free(c);
    return ret;
}

/* Offload job: code → ID token → verified identity → principal. */
static void finish_signin(request_t *r)
{
    gp_http_t *h = r->http;
    signin_job_t *j = &r->signin;
    char *redirect_uri = gp_xasprintf("%s/v1/auth/callback", h->rt->public_url);
    char *id_token = NULL;
    const char *issuer = h->issuers[j->issuer];
    j->rc = gp_oidc_exchange_code(h->oidc, issuer, gp_req_query(r, "code"), redirect_uri,
                                  j->verifier, &id_token, &j->code, j->msg, sizeof j->msg);
    free(redirect_uri);
    gp_oidc_identity_t id = {0};
    if (j->rc == 0)
        j->rc = gp_oidc_verify_login(h->oidc, id_token, issuer, j->nonce, (int64_t)time(NULL), &id,
                                     &j->code, j->msg, sizeof j->msg);
    free(id_token);
    if (j->rc == 0) {
        j->rc = gp_oidc_bridge_principal(h->rt->store, &id, h->rt->settings->default_plan,
                                         &j->principal, &j->code, j->msg, sizeof j->msg);
        gp_oidc_identity_clear(&id);
    } else {
        j->rc = gp_oidc_code_status(j->code) == 503 ? -GP_E_UNAVAILABLE : -GP_E_INVALID_TOKEN;
    }
}

static enum MHD_Result callback(request_t *r)
{
    gp_http_t *h = r->http;
    if (!h->oidc)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "sign-in is not configured", NULL);
    const char *err = gp_req_query(r, "error");
    if (err)
        return gp_send_error_full(r->conn, GP_E_INVALID_TOKEN, GP_OIDC_E_CODE_REJECTED,
                                  "the issuer ended the sign-in with an error", NULL, NULL, NULL);
    char f[5][128];
    const char *flow = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, FLOW_COOKIE);
    int rc = gp_token_check(h->session_secret, flow, 5, (int64_t)time(NULL), f, 128);
    const char *state = gp_req_query(r, "state");
    if (rc != 0 || !state || strlen(state) != strlen(f[0]) ||
        !gp_ct_equal(state, f[0], strlen(f[0])) || !gp_req_query(r, "code"))
        return gp_send_error(r->conn, GP_E_UNAUTHENTICATED,
                             rc == -2 ? "the sign-in took too long: start again"
                                      : "this callback does not match a sign-in started here "
                                        "(state or cookie missing or wrong)",
                             NULL);
    signin_job_t *j = &r->signin;
    snprintf(j->nonce, sizeof j->nonce, "%.47s", f[1]);
    snprintf(j->verifier, sizeof j->verifier, "%.47s", f[2]);
    j->issuer = atoi(f[3]);
    if (j->issuer < 0 || (size_t)j->issuer >= h->n_issuers ||
        !hex_decode(f[4], j->return_to, sizeof j->return_to) || !return_to_ok(j->return_to))
        snprintf(j->return_to, sizeof j->return_to, "/");
    if (j->issuer < 0 || (size_t)j->issuer >= h->n_issuers)
        j->issuer = 0;
    gp_http_offload(r, finish_signin);
    return MHD_YES;
}

static enum MHD_Result callback_finish(request_t *r)
{
    gp_http_t *h = r->http;
    signin_job_t *j = &r->signin;
    if (j->rc != 0)
        return gp_send_error_full(r->conn, j->rc, j->code, j->msg, NULL, NULL, NULL);
    char csrf[GP_OIDC_RANDOM_LEN];
    gp_oidc_random(csrf);
    const char *fields[] = {j->principal.user_id, csrf};
    char value[GP_TOKEN_MAX];
    if (gp_token_sign(h->session_secret, fields, 2, (int64_t)time(NULL) + GP_SESSION_TTL_S, value,
                      sizeof value) != 0)
        return gp_send_error(r->conn, GP_E_INTERNAL, NULL, NULL);
    char *session = cookie(r, GP_SESSION_COOKIE, value, GP_SESSION_TTL_S);
    char *clear = cookie(r, FLOW_COOKIE, "", 0);
    gp_log(GP_LOG_INFO, NULL, "user %s signed in (browser session)", j->principal.user_id);
    enum MHD_Result ret = redirect(r, j->return_to, clear, session);
    free(session);
    free(clear);
    return ret;
}

static enum MHD_Result logout(request_t *r)
{
    char *clear = cookie(r, GP_SESSION_COOKIE, "", 0);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, clear);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    free(clear);
    enum MHD_Result ret = gp_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    return ret;
}

const gp_route_t gp_routes_signin[] = {
    {"GET", "/v1/auth/login", GP_BODY_NONE, NULL, login, login_finish},
    {"GET", "/v1/auth/callback", GP_BODY_NONE, NULL, callback, callback_finish},
    {"POST", "/v1/auth/logout", GP_BODY_NONE, "", logout, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

/*
 * server.c — the HTTP gateway's libmicrohttpd glue: start/stop/quiesce, request admission,
 * body reading, and the phase a request is in. Routes live in their surface files
 * (tasks.c, events.c, assets.c, health.c) and are found through router.c.
 *
 * DESIGN
 * - libmicrohttpd (epoll + a thread pool) rather than evhttp: it hands us the headers before
 *   the body, so an oversized or mistyped body gets a JSON 413/415 without being read, and it
 *   costs less CPU per request (research/c_deps.md §1). Its pitfalls are handled here: an
 *   explicit connection limit, a thread pool >= 2, suspend instead of busy-returning 0.
 * - A request runs in phases: admission (route, body limit, content type) on the headers,
 *   body reading, then the route's `start`. A `start` that needs a commit or blocking work
 *   suspends the connection (counted in `inflight`); the committer's callback or the offload
 *   job resumes it and the route's `finish` answers on an event thread.
 * - Shutdown: streams end, suspended requests are waited for (bounded), the offload pool
 *   drains, and only then does MHD stop (it must not stop with suspended connections).
 */
#include "api/replicate.h"
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/registry.h"
#include "core/util.h"
#include "identity/oidc.h"
#include "identity/plans.h"
#include "core/crypto.h"
#include "core/session_token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BODY_DISCARD_FACTOR 4 /* past limit * this, an oversized upload is cut off */
#define OFFLOAD_THREADS 4         /* storage round trips dominate: a few overlap well */

/* ---------------------------------------------------------------- suspend / resume */

static void on_commit_done(gp_store_op_t *op, void *arg)
{
    (void)op;
    request_t *r = arg;
    gp_http_t *h = r->http;
    r->state = REQ_READY; /* the queue and the bus are touched on resume, not on this thread */
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&h->inflight, 1);
}

void gp_http_defer_commit(request_t *r)
{
    r->state = REQ_WAITING;
    r->op.done = on_commit_done;
    r->op.done_arg = r;
    atomic_fetch_add(&r->http->inflight, 1);
    MHD_suspend_connection(r->conn);
    gp_committer_submit(r->http->rt->committer, &r->op);
}

static void run_offload(void *arg)
{
    request_t *r = arg;
    gp_http_t *h = r->http;
    gp_log_set_request_id(r->request_id); /* the job's log lines belong to the request */
    r->offload_job(r);
    gp_log_set_request_id(NULL);
    r->state = REQ_READY;
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&h->inflight, 1);
}

void gp_http_offload(request_t *r, void (*job)(request_t *r))
{
    r->offload_job = job;
    r->state = REQ_WAITING;
    atomic_fetch_add(&r->http->inflight, 1);
    MHD_suspend_connection(r->conn);
    if (gp_offload_submit(r->http->offload, run_offload, r) != 0)
        run_offload(r); /* stopping: no pool left, do it here */
}

/* ---------------------------------------------------------------- admission */

static enum MHD_Result too_large(struct MHD_Connection *conn, int64_t limit)
{
    char msg[128];
    snprintf(msg, sizeof msg, "the request body is larger than %lld bytes", (long long)limit);
    return gp_send_error(conn, GP_E_PAYLOAD_TOO_LARGE, msg, NULL);
}

/* The peer address as text ("" when unknown). */
static void client_address(struct MHD_Connection *conn, char *out, size_t cap)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

/* 429 with Retry-After, the IETF draft's RateLimit-Policy / RateLimit fields and OpenAI's
 * x-ratelimit-* headers (docs/api.md "Rate limits"). */
static enum MHD_Result send_rate_limited(request_t *r, const gp_plan_t *plan, int reset_s)
{
    char msg[160];
    snprintf(msg, sizeof msg, "the %s plan allows %d requests a minute; retry in %d s", plan->name,
             plan->requests_per_minute, reset_s);
    const char *ctype = NULL;
    json_t *body = gp_error_body(GP_E_RATE_LIMITED, NULL, msg, NULL, &ctype);
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    char v[96];
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    snprintf(v, sizeof v, "%d", reset_s);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    snprintf(v, sizeof v, "\"minute\";q=%d;w=60", plan->requests_per_minute);
    MHD_add_response_header(resp, "RateLimit-Policy", v);
    snprintf(v, sizeof v, "\"minute\";r=0;t=%d", reset_s);
    MHD_add_response_header(resp, "RateLimit", v);
    snprintf(v, sizeof v, "%d", plan->requests_per_minute);
    MHD_add_response_header(resp, "x-ratelimit-limit-requests", v);
    MHD_add_response_header(resp, "x-ratelimit-remaining-requests", "0");
    snprintf(v, sizeof v, "%ds", reset_s);
    MHD_add_response_header(resp, "x-ratelimit-reset-requests", v);
    enum MHD_Result ret = gp_queue_response(r->conn, 429, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Authenticates r for its route (which has a scope): MHD_YES to go on, else the answer is
 * queued into *ret. */
static bool authorize(request_t *r, enum MHD_Result *ret)
{
    char client[64], msg[256];
    client_address(r->conn, client, sizeof client);
    const char *code = NULL;
    int retry_after = 0;
    const char *cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, GP_SESSION_COOKIE);
    int rc = gp_auth_authenticate(r->http->auth, gp_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION),
                                  cookie, client[0] ? client : NULL, &r->principal, &code, msg,
                                  sizeof msg, &retry_after);
    if (rc == -GP_E_TOO_MANY_AUTH_FAILURES) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", retry_after);
        *ret = gp_send_error_full(r->conn, rc, code, NULL, NULL, MHD_HTTP_HEADER_RETRY_AFTER, secs);
        return false;
    }
    if (rc != 0) {
        bool challenge = gp_err_http_status(rc) == 401;
        *ret = gp_send_error_full(r->conn, rc, code, msg, NULL,
                                  challenge ? MHD_HTTP_HEADER_WWW_AUTHENTICATE : NULL,
                                  "Bearer realm=\"genpulse\"");
        return false;
    }
    /* Cookies ride along on cross-site requests: a write made with one must prove it comes
     * from a page that could read the session's CSRF token (double submit). */
    if (r->principal.via == GP_VIA_SESSION && r->unsafe_method) {
        const char *sent = gp_req_header(r, "X-CSRF-Token");
        size_t n = strlen(r->principal.csrf);
        if (!sent || strlen(sent) != n || !gp_ct_equal(sent, r->principal.csrf, n)) {
            *ret = gp_send_error(r->conn, GP_E_CSRF, NULL,
                                 gp_one_detail("headers.X-CSRF-Token",
                                               "required with a session cookie: the csrf_token "
                                               "of GET /v1/account"));
            return false;
        }
    }
    if (!gp_principal_allows(&r->principal, r->route->scope)) {
        snprintf(msg, sizeof msg, "this route needs the %s scope", r->route->scope);
        *ret = gp_send_error_full(r->conn, GP_E_FORBIDDEN, NULL, msg, NULL,
                                  MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  "Bearer realm=\"genpulse\", error=\"insufficient_scope\"");
        return false;
    }
    const gp_plan_t *plan = gp_plan_find(r->principal.plan);
    int remaining = 0, reset = 0;
    if (gp_auth_rate(r->http->auth, r->principal.user_id, plan->requests_per_minute, &remaining,
                     &reset) != 0) {
        *ret = send_rate_limited(r, plan, reset);
        return false;
    }
    return true;
}

/* On the headers: finds the route and checks the declared length and type. */
static enum MHD_Result admit(request_t *r, const char *method, const char *url)
{
    gp_http_t *h = r->http;
    struct MHD_Connection *conn = r->conn;
    char allow[64];
    if (!strcmp(method, "OPTIONS") && gp_req_header(r, "Origin") &&
        gp_req_header(r, "Access-Control-Request-Method"))
        return gp_send_preflight(conn);
    r->route = gp_route_find(method, url, r->path_params, allow, sizeof allow);
    if (!r->route) {
        if (allow[0]) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s is not allowed here; use %s", method, allow);
            return gp_send_error_allow(conn, GP_E_METHOD_NOT_ALLOWED, msg, NULL, allow);
        }
        return gp_send_error(conn, GP_E_NOT_FOUND, "no such route", NULL);
    }
    enum MHD_Result denied = MHD_NO;
    r->unsafe_method = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    if (r->route->scope && !authorize(r, &denied))
        return denied;
    const char *cl = gp_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t limit = r->route->body == GP_BODY_UPLOAD ? h->rt->settings->max_upload_bytes + 65536
                                                     : h->rt->settings->max_body_bytes;
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > (unsigned long long)limit)
            return too_large(conn, limit);
    }
    if (r->route->body == GP_BODY_JSON &&
        !gp_is_json_content_type(gp_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return gp_send_error(conn, GP_E_UNSUPPORTED_MEDIA_TYPE,
                             "send the body as Content-Type: application/json",
                             gp_one_detail("headers.Content-Type", "must be application/json"));
    if (r->route->body == GP_BODY_UPLOAD) {
        enum MHD_Result ret = gp_upload_begin(r);
        if (!r->post)
            return ret;
    }
    r->state = REQ_BODY;
    return MHD_YES;
}

/* ---------------------------------------------------------------- body */

/* One chunk of a body kept in memory (bounded by max_body_bytes). */
static enum MHD_Result read_body(request_t *r, const char *data, size_t n)
{
    size_t limit = (size_t)r->http->rt->settings->max_body_bytes;
    if (r->too_large || r->body_len + n > limit) {
        r->too_large = true; /* chunked body: read and drop, answer 413 at the end */
        r->discarded += n;
        return r->discarded > limit * MAX_BODY_DISCARD_FACTOR ? MHD_NO : MHD_YES;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return MHD_NO;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    return MHD_YES;
}

/* ---------------------------------------------------------------- request id, access log */

/* A client's X-Request-Id is kept when it is short and plain (it lands in log lines and
 * response headers); anything else gets a fresh one. */
static bool request_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > GP_REQUEST_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == ':';
        if (!plain)
            return false;
    }
    return true;
}

static void request_begin(request_t *r, const char *method)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST", "PUT",
                                          "DELETE", "OPTIONS", "PATCH"};
    r->started = gp_metrics_clock();
    snprintf(r->method, sizeof r->method, "other");
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(method, methods[i]))
            snprintf(r->method, sizeof r->method, "%s", methods[i]);
    const char *id = gp_req_header(r, "X-Request-Id");
    if (id && request_id_ok(id))
        snprintf(r->request_id, sizeof r->request_id, "%s", id);
    else
        gp_uuid7(r->request_id);
}

/* One line and the HTTP metrics per request: the route's pattern, never the raw path or
 * its query string (they may carry ids or secrets), and the caller's user id. */
static void request_end(request_t *r)
{
    double secs = gp_metrics_clock() - r->started;
    const char *route = r->route ? r->route->pattern : "unmatched";
    char status[8];
    snprintf(status, sizeof status, "%u", r->status);
    gp_metrics_inc(GP_M_HTTP_REQUESTS, r->method, route, status);
    gp_metrics_observe(GP_M_HTTP_DURATION, secs, r->method, route);
    gp_log_set_request_id(r->request_id);
    gp_log(GP_LOG_INFO, NULL, "access method=%s route=%s status=%u duration_ms=%.3f user=%s",
           r->method, route, r->status, secs * 1000,
           r->principal.user_id[0] ? r->principal.user_id : "-");
    gp_log_set_request_id(NULL);
}

/* ---------------------------------------------------------------- MHD callbacks */

static enum MHD_Result request_step(request_t *r, const char *url, const char *method,
                                    const char *upload_data, size_t *upload_data_size, bool first)
{
    gp_http_t *h = r->http;
    struct MHD_Connection *conn = r->conn;
    if (first)
        return admit(r, method, url);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return r->post ? gp_upload_feed(r, upload_data, n) : read_body(r, upload_data, n);
    }
    if (r->state == REQ_WAITING)
        return MHD_YES; /* spurious call while suspended */
    if (r->state == REQ_READY) {
        gp_wait_release(r, true); /* a Prefer: wait ended: r->task is re-read */
        return r->route->finish(r);
    }
    if (r->too_large && !r->post)
        return too_large(conn, h->rt->settings->max_body_bytes);
    return r->route->start(r);
}

/* The Replicate-compatible routes answer errors, the gateway's own included, as problem+json
 * (reply.h), as Replicate's clients expect. */
static bool replicate_path(const char *url)
{
    static const char *const prefixes[] = {"/v1/predictions", "/v1/models",
                                           "/v1/webhooks/default/secret"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(url, prefixes[i], n) && (url[n] == '\0' || url[n] == '/' || url[n] == '?'))
            return true;
    }
    return false;
}

/* Every call for a request runs with its id on this thread (log lines, X-Request-Id) and
 * notes the status of a response it queued. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    request_t *r = *con_cls;
    bool first = !r;
    if (first) {
        r = gp_xcalloc(1, sizeof *r);
        r->http = cls;
        r->conn = conn;
        *con_cls = r;
        request_begin(r, method);
    }
    gp_log_set_request_id(r->request_id);
    gp_reply_begin();
    gp_reply_set_problem(replicate_path(url));
    enum MHD_Result ret = request_step(r, url, method, upload_data, upload_data_size, first);
    if (gp_reply_status())
        r->status = gp_reply_status();
    gp_log_set_request_id(NULL);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    request_t *r = *con_cls;
    if (!r)
        return;
    request_end(r);
    gp_wait_release(r, false); /* resumed from a wait, but the client left first */
    gp_tasks_on_completed(r);
    gp_upload_cleanup(r);
    free(r->metrics_text);
    free(r->signin.url);
    json_decref(r->job_body);
    free(r->body);
    gp_task_clear(&r->task);
    free(r);
    *con_cls = NULL;
}

static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return gp_path_unescape(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    gp_log(GP_LOG_DEBUG, NULL, "http: %s", msg);
}

/* The listen address from host and port; an IPv6 host adds MHD_USE_IPv6 to flags. */
static int listen_addr(const gp_settings_t *s, struct sockaddr_storage *addr, unsigned *flags,
                       char *err, size_t cap)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, s->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->port);
    } else if (inet_pton(AF_INET6, s->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->port);
        *flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, cap, "host \"%s\" is not an IPv4 or IPv6 address", s->host);
        return -1;
    }
    return 0;
}

static bool host_is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

/* The configured ID token issuers (Google and/or one by URL); NULL when none, or on a bad
 * configuration (err set). */
static gp_oidc_t *start_oidc(gp_http_t *h, const gp_settings_t *s, bool *failed, char *err,
                             size_t cap)
{
    gp_oidc_issuer_cfg_t issuers[2];
    size_t n = 0;
    const char *hd = s->oidc_hosted_domain[0] ? s->oidc_hosted_domain : NULL;
    if (s->oidc_google_client_id[0])
        issuers[n++] = (gp_oidc_issuer_cfg_t){
            .issuer = GP_OIDC_GOOGLE_ISSUER,
            .client_id = s->oidc_google_client_id,
            .client_secret = s->oidc_google_client_secret[0] ? s->oidc_google_client_secret : NULL,
            .hosted_domain = hd};
    if (s->oidc_issuer[0]) {
        if (!s->oidc_client_id[0]) {
            snprintf(err, cap, "--oidc-issuer needs --oidc-client-id (the audience to accept)");
            *failed = true;
            return NULL;
        }
        issuers[n++] = (gp_oidc_issuer_cfg_t){
            .issuer = s->oidc_issuer,
            .client_id = s->oidc_client_id,
            .client_secret = s->oidc_client_secret[0] ? s->oidc_client_secret : NULL,
            .hosted_domain = hd};
    }
    if (n == 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        h->issuers[i] = issuers[i].issuer;
    h->n_issuers = n;
    char why[256] = "";
    gp_oidc_t *o = gp_oidc_new(issuers, n, -1, why, sizeof why);
    if (!o) {
        snprintf(err, cap, "OIDC: %s", why);
        *failed = true;
    } else {
        for (size_t i = 0; i < n; i++)
            GP_INFO("auth: ID tokens accepted from %s", issuers[i].issuer);
    }
    return o;
}

/* The authenticator for this listener; NULL (err set) when the settings would open the
 * server to the network without saying so. */
static gp_auth_t *start_auth(gp_runtime_t *rt, gp_oidc_t *oidc, char *err, size_t cap)
{
    const gp_settings_t *s = rt->settings;
    static const char *const names[] = {"auto", "keys", "open", "open-public"};
    gp_auth_config_t cfg = {.mode = GP_AUTH_AUTO,
                            .loopback_only = host_is_loopback(s->host),
                            .oidc = oidc,
                            .default_plan = s->default_plan};
    gp_token_derive_secret(rt->link_secret, cfg.session_secret);
    for (int i = 0; i < 4; i++)
        if (!strcmp(s->auth_mode, names[i]))
            cfg.mode = (gp_auth_mode_t)i;
    if (cfg.mode == GP_AUTH_OPEN && !cfg.loopback_only) {
        snprintf(err, cap,
                 "refusing to serve %s without keys: --auth open is for loopback addresses; "
                 "create a key (genpulse keys create) and use --auth auto, or say "
                 "--auth open-public if anyone who reaches the port may use it",
                 s->host);
        return NULL;
    }
    gp_auth_t *a = gp_auth_new(rt->store, &cfg);
    if (!a) {
        snprintf(err, cap, "cannot start the authenticator");
        return NULL;
    }
    if (gp_auth_open(a))
        GP_INFO("auth: open — requests without a key run as the built-in local user (%s; "
                "create an API key to require keys)",
                cfg.mode == GP_AUTH_AUTO ? "loopback, no API key exists" : "--auth open");
    else
        GP_INFO("auth: every request needs Authorization: Bearer <key>%s",
                cfg.mode == GP_AUTH_AUTO && !cfg.loopback_only ? " (listening beyond loopback)"
                                                               : "");
    return a;
}

gp_http_t *gp_http_start(gp_runtime_t *rt, char *err, size_t cap)
{
    const gp_settings_t *s = rt->settings;
    gp_http_t *h = gp_xcalloc(1, sizeof *h);
    h->rt = rt;
    h->quiesced_fd = MHD_INVALID_SOCKET;
    pthread_mutex_init(&h->clients_lock, NULL);
    pthread_mutex_init(&h->hb_lock, NULL);
    pthread_cond_init(&h->hb_cond, NULL);
    json_t *types = gp_registry_describe();
    h->task_types_json = json_dumps(types, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(types);
    h->task_types_len = strlen(h->task_types_json);
    gp_openapi_build(h); /* without it GET /openapi.json answers 503 */
    h->upload_dir = gp_xasprintf("%s/uploads", s->data_dir);
    gp_mkdirs(h->upload_dir, 0700);
    memcpy(h->link_secret, rt->link_secret, sizeof h->link_secret);
    gp_reply_set_cors(s->cors_origins);
    bool oidc_failed = false;
    h->oidc = start_oidc(h, s, &oidc_failed, err, cap);
    gp_token_derive_secret(rt->link_secret, h->session_secret);
    h->auth = oidc_failed ? NULL : start_auth(rt, h->oidc, err, cap);
    if (!h->auth)
        goto fail;
    h->replicate = gp_replicate_catalog_new(s->replicate_models, err, cap);
    if (!h->replicate)
        goto fail;

    struct sockaddr_storage addr;
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (listen_addr(s, &addr, &flags, err, cap) != 0)
        goto fail;
    /* Before the daemon: its threads may take a request (and offload it) at once. */
    h->offload = gp_offload_start(OFFLOAD_THREADS);
    if (!h->offload) {
        snprintf(err, cap, "cannot start the gateway's threads");
        goto fail;
    }
    /* Before the daemon too: its first request may ask Prefer: wait (h->waits). */
    if (gp_waits_start(h) != 0) {
        snprintf(err, cap, "cannot start the gateway's threads");
        goto fail;
    }
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)s->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_keep_nul, h, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, cap, "cannot listen on %s:%lld (is the port in use?)", s->host,
                 (long long)s->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : (int)s->port;
    if (gp_sse_start(h) != 0) {
        snprintf(err, cap, "cannot start the gateway's threads");
        MHD_stop_daemon(h->daemon);
        goto fail;
    }
    if (gp_webhooks_api_start(h, err, cap) != 0) {
        gp_sse_stop(h);
        MHD_stop_daemon(h->daemon);
        goto fail;
    }
    return h;
fail:
    gp_waits_stop(h);
    gp_replicate_catalog_free(h->replicate);
    gp_offload_free(h->offload);
    gp_auth_free(h->auth);
    gp_oidc_free(h->oidc);
    free(h->task_types_json);
    free(h->openapi_json);
    free(h->upload_dir);
    free(h);
    return NULL;
}

int gp_http_port(gp_http_t *h)
{
    return h->port;
}

void gp_http_quiesce(gp_http_t *h)
{
    if (h && h->daemon) {
        /* The pool threads drop the socket from their epoll sets on their own time, so it is
         * closed only after MHD_stop_daemon (closing it here raced with them). */
        h->quiesced_fd = MHD_quiesce_daemon(h->daemon);
    }
}

void gp_http_stop(gp_http_t *h)
{
    if (!h)
        return;
    gp_webhooks_api_stop(h);
    gp_sse_stop(h);
    /* End every stream and let suspended requests answer: MHD must not stop while
     * connections are suspended. */
    gp_sse_end_all(h);
    gp_waits_end_all(h);
    for (int i = 0; i < 500 && atomic_load(&h->inflight) > 0; i++)
        usleep(10000);
    gp_offload_stop(h->offload); /* a job still running resumes its connection first */
    usleep(50000);               /* let resumed streams flush their last bytes */
    MHD_stop_daemon(h->daemon);
    gp_waits_stop(h);
    gp_offload_free(h->offload);
    gp_auth_free(h->auth);
    gp_oidc_free(h->oidc);
    gp_replicate_catalog_free(h->replicate);
    if (h->quiesced_fd != MHD_INVALID_SOCKET)
        close(h->quiesced_fd);
    pthread_mutex_destroy(&h->clients_lock);
    pthread_mutex_destroy(&h->hb_lock);
    pthread_cond_destroy(&h->hb_cond);
    free(h->task_types_json);
    free(h->openapi_json);
    free(h->upload_dir);
    free(h);
    gp_reply_set_cors(NULL);
}

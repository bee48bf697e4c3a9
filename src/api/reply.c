/*
 * reply.c — responses, JSON errors, body parsing and task rendering for every route.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CORS (--cors-origins): set once at start, before the daemon runs; read-only after. */
static char *cors_origins;

void gp_reply_set_cors(const char *origins)
{
    free(cors_origins);
    cors_origins = origins && *origins ? gp_xstrdup(origins) : NULL;
}

/* Whether origin is in the comma-separated allow list ("*" = any). */
static bool origin_allowed(const char *origin)
{
    if (!cors_origins || !origin || !*origin)
        return false;
    size_t n = strlen(origin);
    for (const char *p = cors_origins; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if ((end - p == 1 && *p == '*') || ((size_t)(end - p) == n && !strncmp(p, origin, n)))
            return true;
        p = end;
    }
    return false;
}

static void add_cors(struct MHD_Connection *c, struct MHD_Response *resp)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin_allowed(origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(
        resp, "Access-Control-Expose-Headers",
        "Retry-After, RateLimit, RateLimit-Policy, Idempotent-Replayed, "
        "WWW-Authenticate, x-ratelimit-limit-requests, "
        "x-ratelimit-remaining-requests, x-ratelimit-reset-requests, X-Request-Id, "
        "Location, Preference-Applied");
}

/* The status queued by this thread since gp_reply_begin (server.c reads it back). */
static _Thread_local unsigned t_status;

void gp_reply_begin(void)
{
    t_status = 0;
}

unsigned gp_reply_status(void)
{
    return t_status;
}

enum MHD_Result gp_queue_response(struct MHD_Connection *c, unsigned status,
                                  struct MHD_Response *resp)
{
    add_cors(c, resp);
    const char *rid = gp_log_request_id();
    if (rid)
        MHD_add_response_header(resp, "X-Request-Id", rid);
    t_status = status;
    return MHD_queue_response(c, status, resp);
}

enum MHD_Result gp_send_preflight(struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin_allowed(origin))
        return gp_send_error(c, GP_E_FORBIDDEN, "this origin may not call the API (--cors-origins)",
                             gp_one_detail("headers.Origin", "not allowed"));
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            "GET, POST, PATCH, DELETE, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, Prefer");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    enum MHD_Result ret = gp_queue_response(c, 204, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result gp_send_text(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *content_type, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (content_type) /* NULL: no body (a 204) */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = gp_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result gp_send_json(struct MHD_Connection *c, unsigned status, json_t *body,
                             const char *extra_header, const char *extra_value)
{
    const char *headers[] = {extra_header, extra_value, NULL};
    return gp_send_json_headers(c, status, body, headers);
}

enum MHD_Result gp_send_json_headers(struct MHD_Connection *c, unsigned status, json_t *body,
                                     const char *const *headers)
{
    char *text = json_dumps(body, GP_JSON_WIRE | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    enum MHD_Result ret = gp_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The error style of this thread's current request (gp_reply_set_problem). */
static _Thread_local bool t_problem;

void gp_reply_set_problem(bool on)
{
    t_problem = on;
}

bool gp_reply_problem(void)
{
    return t_problem;
}

static const char *problem_title(int status)
{
    static const struct {
        int status;
        const char *title;
    } titles[] = {
        {400, "Bad request"},
        {401, "Unauthenticated"},
        {402, "Insufficient credit"},
        {403, "Forbidden"},
        {404, "Not found"},
        {405, "Method not allowed"},
        {409, "Conflict"},
        {413, "Payload too large"},
        {415, "Unsupported media type"},
        {422, "Input validation failed"},
        {429, "Too many requests"},
        {503, "Service unavailable"},
        {504, "Gateway timeout"},
    };
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        if (titles[i].status == status)
            return titles[i].title;
    return status >= 500 ? "Internal server error" : "Bad request";
}

/* Replicate's problem body: the details become invalid_fields and a "- field: message"
 * list in detail. */
static json_t *problem_body(int err, const char *code, const char *message, json_t *details)
{
    int status = gp_err_http_status(err);
    size_t n = json_array_size(details);
    char *detail = gp_xstrdup(message);
    json_t *fields = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(details, i);
        const char *f = json_string_value(json_object_get(d, "field"));
        const char *m = json_string_value(json_object_get(d, "message"));
        f = f ? f : "";
        m = m ? m : "";
        char *next = gp_xasprintf("%s\n- %s%s%s", detail, f, *f ? ": " : "", m);
        free(detail);
        detail = next;
        json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "type",
                                                !strcmp(m, "is required") ? "required" : "invalid",
                                                "field", f, "description", m));
    }
    json_t *body = json_pack("{s:s, s:s, s:i, s:s}", "title", problem_title(status), "detail",
                             detail, "status", status, "code", code);
    free(detail);
    if (status == 422 || n > 0)
        json_object_set_new(body, "invalid_fields", fields);
    else
        json_decref(fields);
    json_decref(details);
    return body;
}

json_t *gp_error_body(int err, const char *code, const char *message, json_t *details,
                      const char **content_type)
{
    code = code ? code : gp_err_code(err);
    message = message && *message ? message : gp_err_message(err);
    if (t_problem) {
        *content_type = "application/problem+json";
        return problem_body(err, code, message, details ? details : json_array());
    }
    *content_type = "application/json";
    return json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", message, "details",
                     details ? details : json_array());
}

enum MHD_Result gp_send_error_full(struct MHD_Connection *c, int err, const char *code,
                                   const char *message, json_t *details, const char *header,
                                   const char *value)
{
    const char *ctype = NULL;
    json_t *body = gp_error_body(err, code, message, details, &ctype);
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header)
        MHD_add_response_header(resp, header, value);
    enum MHD_Result ret = gp_queue_response(c, (unsigned)gp_err_http_status(err), resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result gp_send_error_allow(struct MHD_Connection *c, int err, const char *message,
                                    json_t *details, const char *allow)
{
    return gp_send_error_full(c, err, NULL, message, details, allow ? MHD_HTTP_HEADER_ALLOW : NULL,
                              allow);
}

enum MHD_Result gp_send_error(struct MHD_Connection *c, int err, const char *message,
                              json_t *details)
{
    return gp_send_error_allow(c, err, message, details, NULL);
}

json_t *gp_one_detail(const char *field, const char *message)
{
    return json_pack("[{s:s, s:s}]", "field", field, "message", message);
}

const char *gp_req_header(request_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *gp_req_query(request_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool gp_is_json_content_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return !strncasecmp(ct, "application/json", n) &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

json_t *gp_parse_body(request_t *r, enum MHD_Result *ret)
{
    if (r->body_len == 0) {
        *ret = gp_send_error(r->conn, GP_E_INVALID_JSON, "the request body is empty", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        *ret = gp_send_error(r->conn, GP_E_INVALID_JSON, msg, NULL);
    }
    return body;
}

char *gp_object_link(gp_http_t *h, const char *owner, const char *name)
{
    gp_storage_t *st = h->rt->storage;
    char *url = NULL;
    if (st->vt->presign && st->vt->presign(st, owner, name, 0, &url) == 0)
        return url;
    return gp_xasprintf("%s/files/%s/%s", h->rt->public_url, owner, name);
}

/* Re-links result.assets[] (url, thumbnail_url) for the client about to read them. */
static void refresh_links(gp_http_t *h, json_t *task)
{
    json_t *result = json_object_get(task, "result");
    json_t *assets = json_object_get(result, "assets");
    if (!json_is_array(assets) || json_array_size(assets) == 0)
        return;
    const char *id = json_string_value(json_object_get(task, "id"));
    json_t *copy = json_deep_copy(result); /* the stored result is shared: do not touch it */
    json_t *list = json_object_get(copy, "assets");
    size_t i;
    json_t *a;
    json_array_foreach (list, i, a) {
        const char *name = json_string_value(json_object_get(a, "name"));
        if (!id || !name || !gp_storage_name_ok(name))
            continue;
        char *link = gp_object_link(h, id, name);
        json_object_set_new(a, "url", json_string(link));
        free(link);
        if (json_object_get(a, "thumbnail_url")) {
            char *thumb = gp_storage_derived_name(
                name, json_string_value(json_object_get(a, "content_type")));
            link = gp_object_link(h, id, thumb);
            json_object_set_new(a, "thumbnail_url", json_string(link));
            free(link);
            free(thumb);
        }
    }
    json_object_set_new(task, "result", copy);
}

json_t *gp_task_json(gp_http_t *h, const gp_task_t *t)
{
    gp_hot_state_t hot;
    /* A task that never started has no hot state: spare the event bus a round trip. */
    bool have_hot = !(t->status == GP_TASK_PENDING && t->attempts == 0) &&
                    gp_events_get_hot(h->rt->events, t->id, &hot) == 0;
    json_t *o = gp_task_to_json(t, have_hot ? &hot : NULL, h->rt->public_url);
    refresh_links(h, o);
    return o;
}

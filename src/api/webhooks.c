/*
 * webhooks.c — the webhooks surface: per-user endpoints (/v1/webhooks), the default secret
 * that signs per-task webhooks (/v1/webhooks/default/secret, which Replicate clients read),
 * and the deliveries with their attempts (/v1/webhook-deliveries). Also the gateway's part
 * of the delivery loop: the renderers it registers and the loop it starts and stops
 * (runtime/webhooks.h).
 *
 * Isolation: a caller sees only their own endpoints and deliveries; an admin sees all. A
 * foreign id answers 404, like an unknown one. Small store calls, made on the event thread
 * like task reads.
 */
#include "api/replicate.h"
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "core/webhook.h"
#include "runtime/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 100
#define DESCRIPTION_MAX 512
#define ATTEMPTS_MAX 100

/* ---- renderers (the delivery loop calls them on its threads) ---- */

static json_t *render_task(void *ctx, const gp_task_t *t)
{
    return gp_task_json(ctx, t);
}

static json_t *render_prediction(void *ctx, const gp_task_t *t)
{
    return gp_replicate_prediction_json(ctx, t);
}

int gp_webhooks_api_start(gp_http_t *h, char *err, size_t cap)
{
    gp_webhooks_set_renderer(GP_WEBHOOK_FORMAT_TASK, render_task, h);
    gp_webhooks_set_renderer(GP_WEBHOOK_FORMAT_REPLICATE, render_prediction, h);
    if (!h->rt->settings->webhooks)
        return 0;
    h->webhooks = gp_webhooks_start(h->rt, err, cap);
    return h->webhooks ? 0 : -1;
}

void gp_webhooks_api_stop(gp_http_t *h)
{
    gp_webhooks_stop(h->webhooks);
    h->webhooks = NULL;
}

/* ---- JSON ---- */

static json_t *time_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    gp_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *types_json(unsigned mask)
{
    json_t *a = json_array();
    for (unsigned bit = 1; bit <= GP_WH_TYPE_ALL; bit <<= 1)
        if (mask & bit)
            json_array_append_new(a, json_string(gp_webhook_type_name(bit)));
    return a;
}

static json_t *endpoint_json(const gp_webhook_endpoint_t *e, bool with_secret)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:b, s:o, s:o, s:o}", "id", e->id, "owner", e->owner, "url",
        e->url ? e->url : "", "event_types", types_json(e->event_types), "description",
        e->description ? json_string(e->description) : json_null(), "disabled", e->disabled,
        "disabled_reason", e->disabled_reason[0] ? json_string(e->disabled_reason) : json_null(),
        "created_at", time_or_null(e->created_at), "updated_at", time_or_null(e->updated_at));
    if (with_secret)
        json_object_set_new(o, "secret", json_string(e->secret));
    return o;
}

static json_t *delivery_json(const gp_webhook_delivery_t *d)
{
    return json_pack(
        "{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:o}", "id", d->id, "owner",
        d->owner, "endpoint_id", d->endpoint_id[0] ? json_string(d->endpoint_id) : json_null(),
        "task_id", d->task_id, "event_type", d->event_type, "url", d->url ? d->url : "", "status",
        d->status, "attempts", d->attempts, "next_attempt_at",
        !strcmp(d->status, "pending") ? time_or_null(d->next_attempt_at) : json_null(),
        "last_status_code", d->last_status_code ? json_integer(d->last_status_code) : json_null(),
        "last_error", d->last_error[0] ? json_string(d->last_error) : json_null(), "created_at",
        time_or_null(d->created_at), "completed_at", time_or_null(d->completed_at));
}

static json_t *attempt_json(const gp_webhook_attempt_t *a)
{
    return json_pack("{s:i, s:o, s:I, s:o, s:o, s:o}", "attempt", a->attempt, "started_at",
                     time_or_null(a->started_at), "duration_ms", (json_int_t)a->duration_ms,
                     "status_code", a->status_code ? json_integer(a->status_code) : json_null(),
                     "error", a->error[0] ? json_string(a->error) : json_null(), "response",
                     a->response[0] ? json_string(a->response) : json_null());
}

/* ---- helpers ---- */

static void add_detail(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

static bool is_admin(request_t *r)
{
    return gp_principal_is_admin(&r->principal);
}

static bool visible(request_t *r, const char *owner)
{
    return is_admin(r) || !strcmp(owner, r->principal.user_id);
}

static enum MHD_Result store_error(request_t *r, int rc)
{
    return gp_send_error(r->conn, rc == -GP_E_NOT_FOUND ? GP_E_NOT_FOUND : GP_E_UNAVAILABLE, NULL,
                         NULL);
}

/* The endpoint named by the path, if the caller may see it: 0, or an answer was queued. */
static int load_endpoint(request_t *r, gp_webhook_endpoint_t *e, enum MHD_Result *ret)
{
    gp_store_t *st = r->http->rt->store;
    const char *id = r->path_params[0];
    int rc = strlen(id) < GP_WH_ID_LEN ? st->vt->wh_endpoint_get(st, id, e) : -GP_E_NOT_FOUND;
    if (rc == 0 && !visible(r, e->owner)) {
        gp_webhook_endpoint_clear(e);
        rc = -GP_E_NOT_FOUND;
    }
    if (rc != 0)
        *ret = store_error(r, rc);
    return rc;
}

/* Reads the fields of a create (all) or a patch (those present) into e; details collects
 * what is wrong. */
static void read_endpoint_body(const json_t *body, gp_webhook_endpoint_t *e, bool create,
                               json_t *details)
{
    if (!json_is_object(body)) {
        add_detail(details, "body", "must be a JSON object");
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)body, key, v) {
        if (strcmp(key, "url") && strcmp(key, "event_types") && strcmp(key, "description") &&
            strcmp(key, "disabled")) {
            char field[96];
            snprintf(field, sizeof field, "body.%.80s", key);
            add_detail(details, field,
                       "unknown field (expected url, event_types, description, "
                       "disabled)");
        }
    }
    json_t *url = json_object_get(body, "url");
    if (url || create) {
        const char *why =
            gp_webhook_url_problem(json_is_string(url) ? json_string_value(url) : NULL);
        if (!why && strlen(json_string_value(url)) != json_string_length(url))
            why = "must not contain NUL";
        if (why)
            add_detail(details, "body.url", why);
        else {
            free(e->url);
            e->url = gp_xstrdup(json_string_value(url));
        }
    }
    json_t *types = json_object_get(body, "event_types");
    if (types && !json_is_null(types)) {
        if (!json_is_array(types) || json_array_size(types) == 0) {
            add_detail(details, "body.event_types",
                       "must be a non-empty list of: task.started, task.output, task.logs, "
                       "task.succeeded, task.failed, task.canceled");
        } else {
            unsigned mask = 0;
            size_t i;
            json_t *t;
            json_array_foreach (types, i, t) {
                char field[64];
                snprintf(field, sizeof field, "body.event_types[%zu]", i);
                unsigned bit = json_is_string(t) ? gp_webhook_type_parse(json_string_value(t)) : 0;
                if (!bit)
                    add_detail(details, field,
                               "must be one of: task.started, task.output, task.logs, "
                               "task.succeeded, task.failed, task.canceled");
                else if (mask & bit)
                    add_detail(details, field, "is listed twice");
                mask |= bit;
            }
            e->event_types = mask;
        }
    } else if (create) {
        e->event_types = GP_WH_TYPE_ALL;
    }
    json_t *desc = json_object_get(body, "description");
    if (desc && !json_is_null(desc)) {
        if (!json_is_string(desc))
            add_detail(details, "body.description", "must be a string");
        else if (json_string_length(desc) > DESCRIPTION_MAX)
            add_detail(details, "body.description", "must be at most 512 bytes long");
        else if (strlen(json_string_value(desc)) != json_string_length(desc))
            add_detail(details, "body.description", "must not contain NUL");
        else {
            free(e->description);
            e->description = gp_xstrdup(json_string_value(desc));
        }
    } else if (desc) {
        free(e->description);
        e->description = NULL;
    }
    json_t *dis = json_object_get(body, "disabled");
    if (dis && !json_is_boolean(dis))
        add_detail(details, "body.disabled", "must be true or false");
    else if (dis) {
        bool was = e->disabled;
        e->disabled = json_is_true(dis);
        if (!e->disabled)
            e->disabled_reason[0] = '\0';
        else if (!was)
            snprintf(e->disabled_reason, sizeof e->disabled_reason, "disabled by request");
    }
}

/* ---- endpoints ---- */

static enum MHD_Result list_endpoints(request_t *r)
{
    gp_store_t *st = r->http->rt->store;
    const char *user = gp_req_query(r, "user");
    if (user && !is_admin(r) && strcmp(user, r->principal.user_id))
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL,
                             gp_one_detail("user", "only an admin can list another user's"));
    const char *owner = user && *user ? user : is_admin(r) ? NULL : r->principal.user_id;
    gp_webhook_endpoint_t rows[PAGE_MAX];
    size_t n = 0;
    if (st->vt->wh_endpoint_list(st, owner, rows, PAGE_MAX, &n) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(data, endpoint_json(&rows[i], false));
        gp_webhook_endpoint_clear(&rows[i]);
    }
    return gp_send_json(r->conn, 200, json_pack("{s:o}", "data", data), NULL, NULL);
}

static enum MHD_Result create_endpoint(request_t *r)
{
    enum MHD_Result ret;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    gp_webhook_endpoint_t e = {0};
    json_t *details = json_array();
    read_endpoint_body(body, &e, true, details);
    json_decref(body);
    if (json_array_size(details) > 0) {
        gp_webhook_endpoint_clear(&e);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    json_decref(details);
    gp_store_t *st = r->http->rt->store;
    size_t max = (size_t)r->http->rt->settings->webhook_max_endpoints;
    gp_webhook_endpoint_t *rows = gp_xcalloc(max, sizeof *rows);
    size_t n = 0;
    int rc = st->vt->wh_endpoint_list(st, r->principal.user_id, rows, max, &n);
    for (size_t i = 0; i < n; i++)
        gp_webhook_endpoint_clear(&rows[i]);
    free(rows);
    if (rc == 0 && n >= max) {
        gp_webhook_endpoint_clear(&e);
        char msg[96];
        snprintf(msg, sizeof msg, "at most %zu webhook endpoints per user", max);
        return gp_send_error(r->conn, GP_E_CONFLICT, msg, gp_one_detail("body.url", msg));
    }
    gp_webhook_id_new("ep_", 24, e.id);
    snprintf(e.owner, sizeof e.owner, "%s", r->principal.user_id);
    gp_webhook_secret_new(e.secret);
    e.created_at = e.updated_at = gp_now_ms();
    if (rc == 0)
        rc = st->vt->wh_endpoint_create(st, &e);
    if (rc != 0) {
        gp_webhook_endpoint_clear(&e);
        return store_error(r, rc == -GP_E_NOT_FOUND ? -GP_E_UNAVAILABLE : rc);
    }
    gp_log(GP_LOG_INFO, NULL, "webhook endpoint %s created by %s", e.id, e.owner);
    ret = gp_send_json(r->conn, 201, endpoint_json(&e, true), NULL, NULL);
    gp_webhook_endpoint_clear(&e);
    return ret;
}

static enum MHD_Result get_endpoint(request_t *r)
{
    gp_webhook_endpoint_t e;
    enum MHD_Result ret;
    if (load_endpoint(r, &e, &ret) != 0)
        return ret;
    ret = gp_send_json(r->conn, 200, endpoint_json(&e, false), NULL, NULL);
    gp_webhook_endpoint_clear(&e);
    return ret;
}

static enum MHD_Result update_endpoint(request_t *r)
{
    enum MHD_Result ret;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    gp_webhook_endpoint_t e;
    if (load_endpoint(r, &e, &ret) != 0) {
        json_decref(body);
        return ret;
    }
    json_t *details = json_array();
    read_endpoint_body(body, &e, false, details);
    json_decref(body);
    if (json_array_size(details) > 0) {
        gp_webhook_endpoint_clear(&e);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    json_decref(details);
    e.updated_at = gp_now_ms();
    gp_store_t *st = r->http->rt->store;
    int rc = st->vt->wh_endpoint_update(st, &e);
    ret = rc == 0 ? gp_send_json(r->conn, 200, endpoint_json(&e, false), NULL, NULL)
                  : store_error(r, rc);
    gp_webhook_endpoint_clear(&e);
    return ret;
}

static enum MHD_Result delete_endpoint(request_t *r)
{
    gp_webhook_endpoint_t e;
    enum MHD_Result ret;
    if (load_endpoint(r, &e, &ret) != 0)
        return ret;
    gp_store_t *st = r->http->rt->store;
    int rc = st->vt->wh_endpoint_delete(st, e.id);
    gp_webhook_endpoint_clear(&e);
    if (rc != 0)
        return store_error(r, rc);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = gp_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result endpoint_secret(request_t *r)
{
    gp_webhook_endpoint_t e;
    enum MHD_Result ret;
    if (load_endpoint(r, &e, &ret) != 0)
        return ret;
    ret = gp_send_json(r->conn, 200, json_pack("{s:s}", "key", e.secret), NULL, NULL);
    gp_webhook_endpoint_clear(&e);
    return ret;
}

static enum MHD_Result rotate_secret(request_t *r)
{
    gp_webhook_endpoint_t e;
    enum MHD_Result ret;
    if (load_endpoint(r, &e, &ret) != 0)
        return ret;
    gp_webhook_secret_new(e.secret);
    e.updated_at = gp_now_ms();
    gp_store_t *st = r->http->rt->store;
    int rc = st->vt->wh_endpoint_update(st, &e);
    ret = rc == 0 ? gp_send_json(r->conn, 200, json_pack("{s:s}", "key", e.secret), NULL, NULL)
                  : store_error(r, rc);
    gp_webhook_endpoint_clear(&e);
    return ret;
}

static enum MHD_Result default_secret(request_t *r)
{
    gp_store_t *st = r->http->rt->store;
    char candidate[GP_WH_SECRET_LEN], secret[GP_WH_SECRET_LEN];
    gp_webhook_secret_new(candidate);
    int rc = st->vt->wh_default_secret(st, r->principal.user_id, candidate, secret);
    if (rc == -GP_E_UNAVAILABLE) /* a concurrent first read stored another: read it */
        rc = st->vt->wh_default_secret(st, r->principal.user_id, candidate, secret);
    if (rc != 0)
        return store_error(r, rc == -GP_E_NOT_FOUND ? -GP_E_UNAVAILABLE : rc);
    return gp_send_json(r->conn, 200, json_pack("{s:s}", "key", secret), NULL, NULL);
}

/* ---- deliveries ---- */

static int load_delivery(request_t *r, gp_webhook_delivery_t *d, enum MHD_Result *ret)
{
    gp_store_t *st = r->http->rt->store;
    const char *id = r->path_params[0];
    int rc = strlen(id) < GP_WH_ID_LEN ? st->vt->wh_delivery_get(st, id, d) : -GP_E_NOT_FOUND;
    if (rc == 0 && !visible(r, d->owner)) {
        gp_webhook_delivery_clear(d);
        rc = -GP_E_NOT_FOUND;
    }
    if (rc != 0)
        *ret = store_error(r, rc);
    return rc;
}

static enum MHD_Result list_deliveries(request_t *r)
{
    json_t *details = json_array();
    gp_webhook_filter_t f = {.limit = 20};
    f.owner = is_admin(r) ? NULL : r->principal.user_id;
    f.endpoint_id = gp_req_query(r, "endpoint_id");
    f.task_id = gp_req_query(r, "task_id");
    f.status = gp_req_query(r, "status");
    if (f.endpoint_id && strlen(f.endpoint_id) >= GP_WH_ID_LEN)
        add_detail(details, "endpoint_id", "is not a webhook endpoint id");
    if (f.task_id && strlen(f.task_id) > 36)
        add_detail(details, "task_id", "is not a task id");
    if (f.status && strcmp(f.status, "pending") && strcmp(f.status, "succeeded") &&
        strcmp(f.status, "failed"))
        add_detail(details, "status", "must be one of: pending, succeeded, failed");
    const char *v = gp_req_query(r, "limit");
    if (v) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > PAGE_MAX)
            add_detail(details, "limit", "must be an integer from 1 to 100");
        else
            f.limit = (size_t)n;
    }
    const char *cursor = gp_req_query(r, "cursor");
    if (cursor && *cursor) {
        char *end = NULL;
        long long c = strtoll(cursor, &end, 10);
        if (*end || c < 1)
            add_detail(details, "cursor", "must be a next_cursor value from an earlier page");
        else
            f.before_seq = c;
    }
    if (json_array_size(details) > 0)
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    json_decref(details);
    gp_store_t *st = r->http->rt->store;
    gp_webhook_delivery_t rows[PAGE_MAX];
    size_t n = 0;
    if (st->vt->wh_delivery_list(st, &f, rows, &n) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    int64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(data, delivery_json(&rows[i]));
        last = rows[i].seq;
        gp_webhook_delivery_clear(&rows[i]);
    }
    char next[24];
    snprintf(next, sizeof next, "%lld", (long long)last);
    return gp_send_json(r->conn, 200,
                        json_pack("{s:o, s:o}", "data", data, "next_cursor",
                                  n == f.limit && n > 0 ? json_string(next) : json_null()),
                        NULL, NULL);
}

static enum MHD_Result get_delivery(request_t *r)
{
    gp_webhook_delivery_t d;
    enum MHD_Result ret;
    if (load_delivery(r, &d, &ret) != 0)
        return ret;
    gp_store_t *st = r->http->rt->store;
    gp_webhook_attempt_t *rows = gp_xcalloc(ATTEMPTS_MAX, sizeof *rows);
    size_t n = 0;
    int rc = st->vt->wh_attempts_list(st, d.id, rows, ATTEMPTS_MAX, &n);
    json_t *o = delivery_json(&d);
    json_t *list = json_array();
    for (size_t i = 0; rc == 0 && i < n; i++)
        json_array_append_new(list, attempt_json(&rows[i]));
    free(rows);
    json_object_set_new(o, "attempt_list", list);
    if (d.payload)
        json_object_set_new(o, "payload", json_loads(d.payload, JSON_DECODE_ANY, NULL));
    gp_webhook_delivery_clear(&d);
    if (rc != 0) {
        json_decref(o);
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    }
    return gp_send_json(r->conn, 200, o, NULL, NULL);
}

static enum MHD_Result resend_delivery(request_t *r)
{
    gp_webhook_delivery_t d;
    enum MHD_Result ret;
    if (load_delivery(r, &d, &ret) != 0)
        return ret;
    gp_store_t *st = r->http->rt->store;
    int rc = st->vt->wh_resend(st, d.id, gp_now_ms());
    gp_webhook_delivery_clear(&d);
    if (rc != 0)
        return store_error(r, rc);
    gp_webhooks_wake();
    if (load_delivery(r, &d, &ret) != 0)
        return ret;
    ret = gp_send_json(r->conn, 202, delivery_json(&d), NULL, NULL);
    gp_webhook_delivery_clear(&d);
    return ret;
}

const gp_route_t gp_routes_webhooks[] = {
    {"GET", "/v1/webhooks/default/secret", GP_BODY_NONE, "tasks:read", default_secret, NULL},
    {"GET", "/v1/webhooks", GP_BODY_NONE, "tasks:read", list_endpoints, NULL},
    {"POST", "/v1/webhooks", GP_BODY_JSON, "tasks:write", create_endpoint, NULL},
    {"GET", "/v1/webhooks/{}", GP_BODY_NONE, "tasks:read", get_endpoint, NULL},
    {"PATCH", "/v1/webhooks/{}", GP_BODY_JSON, "tasks:write", update_endpoint, NULL},
    {"DELETE", "/v1/webhooks/{}", GP_BODY_NONE, "tasks:write", delete_endpoint, NULL},
    {"GET", "/v1/webhooks/{}/secret", GP_BODY_NONE, "tasks:read", endpoint_secret, NULL},
    {"POST", "/v1/webhooks/{}/rotate-secret", GP_BODY_NONE, "tasks:write", rotate_secret, NULL},
    {"GET", "/v1/webhook-deliveries", GP_BODY_NONE, "tasks:read", list_deliveries, NULL},
    {"GET", "/v1/webhook-deliveries/{}", GP_BODY_NONE, "tasks:read", get_delivery, NULL},
    {"POST", "/v1/webhook-deliveries/{}/resend", GP_BODY_NONE, "tasks:write", resend_delivery,
     NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

/*
 * tasks.c — the task surface: create, get, list, cancel, retry.
 *
 * Create, cancel and retry write through the group committer: `start` validates and
 * suspends the connection with the op; `finish` answers once the commit is done, and only
 * then touches the queue and the event bus (that I/O stays off the committer thread).
 */
#include "api/reply.h"
#include "core/crypto.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/registry.h"
#include "core/util.h"
#include "identity/plans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result no_task(request_t *r, int rc)
{
    return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL, NULL);
}

static bool idempotency_key_ok(const char *key)
{
    size_t n = strlen(key);
    bool ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++)
        ok = key[i] > 0x20 && key[i] < 0x7f;
    return ok;
}

int gp_tasks_begin_create(request_t *r, const json_t *body, gp_submission_t *sub,
                          const char *idempotency_key, char *msg, size_t cap)
{
    gp_http_t *h = r->http;
    /* The request's fingerprint: a replayed Idempotency-Key must come with the same body
     * (key order and spacing aside). */
    char *canonical = idempotency_key ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *hash = r->request_hash; /* kept: a replay compares it with the stored one */
    hash[0] = '\0';
    if (canonical)
        gp_sha256_hex(canonical, strlen(canonical), hash);
    free(canonical);
    /* The plan's queue limit: counted in the store, so every gateway sees the same queue. */
    const gp_plan_t *plan = gp_plan_find(r->principal.plan);
    gp_store_t *st = h->rt->store;
    int64_t pending = 0;
    if (plan->max_queued > 0 && st->vt->count_pending &&
        st->vt->count_pending(st, r->principal.user_id, plan->max_queued, &pending) == 0 &&
        pending >= plan->max_queued) {
        gp_submission_clear(sub);
        snprintf(msg, cap, "the %s plan allows %d pending tasks; wait for some to start",
                 plan->name, plan->max_queued);
        return -GP_E_TOO_MANY_QUEUED;
    }
    gp_task_t *t = &r->task;
    gp_uuid7(t->id);
    t->task_type = gp_xstrdup(sub->task_type->name);
    t->provider = gp_xstrdup(sub->provider->name);
    t->status = GP_TASK_PENDING;
    t->params = json_incref(sub->params);
    t->max_retries = sub->max_retries;
    /* The plan: Pro work runs ahead of Free work; charged plans pay the provider's price. */
    t->priority =
        sub->priority + plan->priority_boost > 9 ? 9 : sub->priority + plan->priority_boost;
    t->price = plan->charged ? gp_price_of(sub->provider, sub->params) : 0;
    t->idempotency_key = idempotency_key ? gp_xstrdup(idempotency_key) : NULL;
    t->request_hash = hash[0] ? gp_xstrdup(hash) : NULL;
    snprintf(t->owner, sizeof t->owner, "%s", r->principal.user_id);
    t->created_at = gp_now_ms();
    t->webhook = sub->webhook; /* stolen */
    t->webhook_events = sub->webhook ? sub->webhook_events : 0;
    t->webhook_format = sub->webhook_format;
    sub->webhook = NULL;
    gp_submission_clear(sub);
    /* The request id rides in params so the worker's log lines for this task show it. */
    json_object_set_new(t->params, GP_TASK_REQUEST_ID_PARAM, json_string(r->request_id));
    r->op.kind = GP_OP_CREATE;
    r->op.task = t;
    gp_http_defer_commit(r);
    return 0;
}

/* The commit's outcome: 0 when the task was created and dispatched or replayed, else a
 * -GP_E_* with the client's message in msg. */
static int end_create(request_t *r, char *msg, size_t cap)
{
    gp_http_t *h = r->http;
    msg[0] = '\0';
    if (r->op.result == -GP_E_INSUFFICIENT_CREDITS) {
        snprintf(msg, cap, "this task costs %lld credits, more than the account has",
                 (long long)r->task.price);
        return -GP_E_INSUFFICIENT_CREDITS;
    }
    if (r->op.result == -GP_E_CONFLICT) {
        snprintf(msg, cap, "a task with this Idempotency-Key is being created");
        return -GP_E_CONFLICT;
    }
    if (r->op.result != 0) {
        snprintf(msg, cap, "the task could not be stored; try again");
        return -GP_E_UNAVAILABLE;
    }
    if (r->op.replayed) {
        /* r->task is now the first request's row. Rows stored before request hashes existed
         * replay as before. */
        if (r->request_hash[0] && r->task.request_hash &&
            strcmp(r->task.request_hash, r->request_hash) != 0) {
            snprintf(msg, cap,
                     "this Idempotency-Key was used with a different request body; "
                     "use a new key for a new request");
            return -GP_E_IDEMPOTENCY_MISMATCH;
        }
        return 0;
    }
    gp_runtime_dispatch(h->rt, &r->task); /* after the commit; lost → the reconciler */
    r->dispatched = true;
    const char *tt, *prov;
    gp_metrics_task_labels(r->task.task_type, r->task.provider, &tt, &prov);
    gp_metrics_inc(GP_M_TASKS_CREATED, tt, prov, NULL);
    gp_log(GP_LOG_DEBUG, r->task.id, "accepted %s/%s priority %d", r->task.task_type,
           r->task.provider, r->task.priority);
    return 0;
}

bool gp_tasks_create_outcome(request_t *r, enum MHD_Result *ret)
{
    if (r->wait_over)
        return true;
    char msg[200];
    int rc = end_create(r, msg, sizeof msg);
    if (rc == -GP_E_IDEMPOTENCY_MISMATCH) {
        *ret = gp_send_error(r->conn, GP_E_IDEMPOTENCY_MISMATCH, msg,
                             gp_one_detail("headers.Idempotency-Key", "reused"));
        return false;
    }
    if (rc != 0) {
        *ret = gp_send_error(r->conn, -rc, msg, NULL);
        return false;
    }
    if (r->wait_s > 0 && !gp_task_status_terminal(r->task.status)) {
        gp_http_wait_task(r, r->wait_s); /* the finish hook runs again when it is over */
        *ret = MHD_YES;
        return false;
    }
    return true;
}

void gp_tasks_create_headers(request_t *r, const char **headers, size_t n, char applied[16])
{
    if (r->wait_s > 0) {
        const char *pref = gp_req_header(r, "Prefer"); /* echo the form the client used */
        if (pref && strcasestr(pref, "wait="))
            snprintf(applied, 16, "wait=%d", r->wait_s);
        else
            snprintf(applied, 16, "wait");
        headers[n++] = "Preference-Applied";
        headers[n++] = applied;
    }
    if (r->op.replayed) {
        headers[n++] = "Idempotent-Replayed";
        headers[n++] = "true";
    }
    headers[n] = NULL;
}

static enum MHD_Result create_start(request_t *r)
{
    gp_http_t *h = r->http;
    const char *key = gp_req_header(r, "Idempotency-Key");
    if (key && !idempotency_key_ok(key))
        return gp_send_error(
            r->conn, GP_E_BAD_REQUEST, "invalid Idempotency-Key header",
            gp_one_detail("headers.Idempotency-Key", "must be 1 to 255 visible ASCII characters"));
    r->wait_s = gp_prefer_wait(r);
    if (r->wait_s < 0)
        return gp_send_error(r->conn, GP_E_BAD_REQUEST, "invalid Prefer header",
                             gp_one_detail("headers.Prefer", "wait must be 1 to 60 seconds"));
    enum MHD_Result ret = MHD_NO;
    json_t *body = gp_parse_body(r, &ret);
    if (!body)
        return ret;
    gp_submission_t sub;
    json_t *details = NULL;
    int rc =
        gp_validate_submission(body, (int)h->rt->settings->default_max_retries, &sub, &details);
    if (rc != 0) {
        json_decref(body);
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    }
    char msg[160];
    rc = gp_tasks_begin_create(r, body, &sub, key, msg, sizeof msg);
    json_decref(body);
    if (rc == -GP_E_TOO_MANY_QUEUED)
        return gp_send_error_full(r->conn, GP_E_TOO_MANY_QUEUED, NULL, msg, NULL,
                                  MHD_HTTP_HEADER_RETRY_AFTER, "5");
    return MHD_YES;
}

/* Answers 202 with the task; with Prefer: wait, first waits (wait.c) and answers 200 when
 * the task finished in time, 202 when not. */
static enum MHD_Result create_finish(request_t *r)
{
    gp_http_t *h = r->http;
    enum MHD_Result ret;
    if (!gp_tasks_create_outcome(r, &ret))
        return ret;
    const char *headers[5] = {NULL};
    char applied[16];
    gp_tasks_create_headers(r, headers, 0, applied);
    unsigned status = r->wait_s > 0 && gp_task_status_terminal(r->task.status) ? 200 : 202;
    return gp_send_json_headers(r->conn, status, gp_task_json(h, &r->task), headers);
}

void gp_tasks_on_completed(request_t *r)
{
    /* The client left before its 202: the task is committed, so it still gets queued. */
    if (r->op.kind == GP_OP_CREATE && r->op.task && r->state == REQ_READY && r->op.result == 0 &&
        !r->op.replayed && !r->dispatched)
        gp_runtime_dispatch(r->http->rt, &r->task);
}

/* Reads the task r's path names, as r's caller may see it: another user's task is
 * -GP_E_NOT_FOUND, never forbidden (its existence is not confirmed). */
int gp_tasks_load_visible(request_t *r, const char *id, gp_task_t *t)
{
    int rc = gp_is_uuid(id) ? gp_store_get(r->http->rt->store, id, t) : -GP_E_NOT_FOUND;
    if (rc == 0 && !gp_principal_owns(&r->principal, t->owner)) {
        gp_task_clear(t);
        rc = -GP_E_NOT_FOUND;
    }
    return rc;
}

static enum MHD_Result get_task(request_t *r)
{
    const char *id = r->path_params[0];
    gp_task_t t;
    int rc = gp_tasks_load_visible(r, id, &t);
    if (rc != 0)
        return no_task(r, rc);
    json_t *j = gp_task_json(r->http, &t);
    gp_task_clear(&t);
    return gp_send_json(r->conn, 200, j, NULL, NULL);
}

static void add_detail(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* A provider name or error code: 1..64 of [a-z0-9_.-] (every one the registry has). */
static bool plain_name_ok(const char *v)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '_' ||
             v[i] == '-' || v[i] == '.';
    return ok;
}

#define LIST_Q_MAX 200 /* ?q: longer than any useful search, short enough to stay cheap */

/* The dashboard's search fields: ?id, ?provider, ?error_code, ?q (params text), ?user. */
static void list_search(request_t *r, gp_task_filter_t *f, json_t *details)
{
    const char *v;
    if ((v = gp_req_query(r, "id")) && *v) {
        if (!gp_is_uuid(v))
            add_detail(details, "id", "must be a task id (a lowercase UUID)");
        f->id = v;
    }
    if ((v = gp_req_query(r, "provider")) && *v) {
        if (!plain_name_ok(v))
            add_detail(details, "provider", "must be 1 to 64 of a-z, 0-9, '_', '-', '.'");
        f->provider = v;
    }
    if ((v = gp_req_query(r, "error_code")) && *v) {
        if (!plain_name_ok(v))
            add_detail(details, "error_code", "must be 1 to 64 of a-z, 0-9, '_', '-', '.'");
        f->error_code = v;
    }
    if ((v = gp_req_query(r, "q")) && *v) {
        if (strlen(v) > LIST_Q_MAX)
            add_detail(details, "q", "must be at most 200 bytes");
        f->params_text = v;
    }
    if ((v = gp_req_query(r, "user")) && *v) {
        if (strlen(v) > 64)
            add_detail(details, "user", "must be a user id");
        else if (!gp_principal_is_admin(&r->principal) && strcmp(v, r->principal.user_id) != 0)
            add_detail(details, "user", "only an admin can list another user's tasks");
        f->owner = v;
    }
}

/* Reads ?limit, ?status, ?task_type, ?cursor and the search fields into f; problems go to
 * details. */
static void list_filter(request_t *r, gp_task_filter_t *f, json_t *details)
{
    const char *v;
    list_search(r, f, details);
    if ((v = gp_req_query(r, "limit"))) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > 100)
            add_detail(details, "limit", "must be an integer from 1 to 100");
        else
            f->limit = (size_t)n;
    }
    if ((v = gp_req_query(r, "status")) && *v) {
        f->status = gp_task_status_parse(v);
        if (f->status < 0)
            add_detail(details, "status",
                       "must be one of: pending, processing, succeeded, failed, canceled");
    }
    if ((v = gp_req_query(r, "task_type")) && *v) {
        if (!gp_registry_task_type(v))
            add_detail(details, "task_type", "unknown task type");
        f->task_type = v;
    }
    if ((v = gp_req_query(r, "cursor")) && *v) {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (*end || n < 1)
            add_detail(details, "cursor", "is not a cursor from a previous page");
        else
            f->before_seq = n;
    }
}

static enum MHD_Result list_tasks(request_t *r)
{
    json_t *details = json_array();
    gp_task_filter_t f = {.status = -1, .limit = 20};
    list_filter(r, &f, details);
    if (!gp_principal_is_admin(&r->principal))
        f.owner = r->principal.user_id;
    if (json_array_size(details) > 0)
        return gp_send_error(r->conn, GP_E_VALIDATION, NULL, details);
    json_decref(details);
    gp_task_t rows[100];
    size_t n = 0;
    int rc = gp_store_list(r->http->rt->store, &f, rows, &n);
    if (rc != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, gp_task_json(r->http, &rows[i]));
    json_t *next = json_null();
    if (n == f.limit && n > 0) {
        char cursor[32];
        snprintf(cursor, sizeof cursor, "%lld", (long long)rows[n - 1].seq);
        json_decref(next);
        next = json_string(cursor);
    }
    for (size_t i = 0; i < n; i++)
        gp_task_clear(&rows[i]);
    return gp_send_json(r->conn, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next),
                        NULL, NULL);
}

bool gp_tasks_idempotency_key_ok(const char *key)
{
    return idempotency_key_ok(key);
}

int gp_tasks_cancel_begin(request_t *r, const char *id)
{
    gp_task_t seen;
    int rc = gp_tasks_load_visible(r, id, &seen);
    if (rc != 0)
        return rc;
    gp_task_clear(&seen);
    r->op.kind = GP_OP_CANCEL;
    memcpy(r->op.cancel_id, id, sizeof r->op.cancel_id);
    gp_http_defer_commit(r);
    return 0;
}

void gp_tasks_cancel_announce(request_t *r, const gp_task_t *t)
{
    gp_http_t *h = r->http;
    if (r->op.cancel_outcome == GP_CANCEL_DONE) {
        gp_events_publish_status(h->rt->events, t, false);
        gp_log(GP_LOG_INFO, t->id, "canceled while pending");
    } else if (r->op.cancel_outcome == GP_CANCEL_REQUESTED) {
        gp_events_publish_cancel(h->rt->events, t->id);
        gp_log(GP_LOG_INFO, t->id, "cancel requested while running");
    }
}

static enum MHD_Result cancel_start(request_t *r)
{
    int rc = gp_tasks_cancel_begin(r, r->path_params[0]);
    return rc != 0 ? no_task(r, rc) : MHD_YES;
}

static enum MHD_Result cancel_finish(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (r->op.result == -GP_E_NOT_FOUND)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no task with this id", NULL);
    if (r->op.result != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    gp_task_t t;
    if (gp_store_get(h->rt->store, id, &t) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    gp_tasks_cancel_announce(r, &t);
    enum MHD_Result ret;
    bool done = r->op.cancel_outcome == GP_CANCEL_DONE;
    if (done || r->op.cancel_outcome == GP_CANCEL_REQUESTED) {
        ret = gp_send_json(r->conn, done ? 200 : 202, gp_task_json(h, &t), NULL, NULL);
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "the task already finished (%s)", gp_task_status_name(t.status));
        ret = gp_send_error(r->conn, GP_E_CONFLICT, msg, NULL);
    }
    gp_task_clear(&t);
    return ret;
}

/* Puts a failed task back: failed(n) → pending with a fresh retry budget. */
static enum MHD_Result retry_start(request_t *r)
{
    const char *id = r->path_params[0];
    gp_task_t t;
    int rc = gp_tasks_load_visible(r, id, &t);
    if (rc != 0)
        return no_task(r, rc);
    if (t.status != GP_TASK_FAILED) {
        char msg[128];
        snprintf(msg, sizeof msg, "only failed tasks can be retried (this one is %s)",
                 gp_task_status_name(t.status));
        gp_task_clear(&t);
        return gp_send_error(r->conn, GP_E_CONFLICT, msg, NULL);
    }
    gp_transition_t *tr = &r->op.tr;
    r->op.kind = GP_OP_TRANSITION;
    memcpy(tr->id, id, sizeof tr->id);
    tr->from_status = GP_TASK_FAILED;
    tr->from_attempts = t.attempts;
    tr->to_status = GP_TASK_PENDING;
    tr->to_attempts = 0;
    tr->completed_at = -1;
    tr->reserve_again = t.price > 0; /* its first reservation was released when it failed */
    gp_task_clear(&t);
    gp_http_defer_commit(r);
    return MHD_YES;
}

static enum MHD_Result retry_finish(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (r->op.result == -GP_E_CONFLICT)
        return gp_send_error(r->conn, GP_E_CONFLICT, "the task changed meanwhile; look again",
                             NULL);
    if (r->op.result == -GP_E_INSUFFICIENT_CREDITS)
        return gp_send_error(r->conn, GP_E_INSUFFICIENT_CREDITS,
                             "running this task again costs more credits than the account has",
                             NULL);
    if (r->op.result != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    gp_task_t t;
    if (gp_store_get(h->rt->store, id, &t) != 0)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    gp_runtime_dispatch(h->rt, &t);
    gp_events_publish_status(h->rt->events, &t, true);
    gp_log(GP_LOG_INFO, id, "put back by request after failing");
    enum MHD_Result ret = gp_send_json(r->conn, 202, gp_task_json(h, &t), NULL, NULL);
    gp_task_clear(&t);
    return ret;
}

const gp_route_t gp_routes_tasks[] = {
    {"POST", "/v1/tasks", GP_BODY_JSON, "tasks:write", create_start, create_finish},
    {"GET", "/v1/tasks", GP_BODY_NONE, "tasks:read", list_tasks, NULL},
    {"GET", "/v1/tasks/{}", GP_BODY_NONE, "tasks:read", get_task, NULL},
    {"POST", "/v1/tasks/{}/cancel", GP_BODY_NONE, "tasks:write", cancel_start, cancel_finish},
    {"POST", "/v1/tasks/{}/retry", GP_BODY_NONE, "tasks:write", retry_start, retry_finish},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

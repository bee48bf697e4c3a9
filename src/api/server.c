/*
 * server.c — the HTTP gateway on libmicrohttpd.
 *
 * DESIGN
 * - libmicrohttpd (epoll + a thread pool) rather than evhttp: it hands us the headers before
 *   the body, so an oversized or mistyped body gets a JSON 413/415 without being read, and it
 *   costs less CPU per request (research/c_deps.md §1). Its pitfalls are handled here: an
 *   explicit connection limit, a thread pool >= 2, suspend instead of busy-returning 0.
 * - A submission is answered only after its row commits: the connection is suspended, the
 *   create op goes to the group committer, and the committer's callback resumes it.
 * - An event stream is a callback response. Between events its connection is suspended
 *   (no thread, no polling); the event bus callback appends to the stream's buffer and
 *   resumes it. A heartbeat thread writes comment lines, which also finds dead clients.
 * - Routes are a table; a path that matches with another method answers 405 with Allow.
 */
#include "api/server.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/media_type.h"
#include "core/registry.h"
#include "core/util.h"
#include "media/media.h"
#include "worker/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SSE_MAX_BUFFERED (1u << 20) /* a client this far behind is dropped */
#define MAX_PATH_PARAMS 2
#define MAX_PATH_PARAM_LEN 160
#define MAX_BODY_DISCARD_FACTOR 4 /* past limit * this, an oversized upload is cut off */
#define VERSION "0.1.0"

typedef struct sse_client sse_client_t;

struct gp_http {
    gp_runtime_t *rt;
    struct MHD_Daemon *daemon;
    int port;
    char *task_types_json; /* built once: the registry never changes */
    char *upload_dir;      /* DATA_DIR/uploads: uploads in flight */
    size_t task_types_len;
    pthread_mutex_t clients_lock;
    sse_client_t *clients;
    atomic_int inflight;    /* suspended requests waiting for a commit */
    MHD_socket quiesced_fd; /* listen socket handed back by quiesce; closed after stop */
    pthread_t heartbeat;
    pthread_mutex_t hb_lock;
    pthread_cond_t hb_cond;
    bool hb_stop;
};

typedef struct request request_t;
typedef enum MHD_Result (*route_fn)(request_t *r);

typedef struct route {
    const char *method;
    const char *pattern; /* segments; "{}" matches one segment */
    route_fn fn;
    bool json_body; /* expects an application/json body */
    bool upload;    /* multipart/form-data file upload (POST /v1/assets) */
} route_t;

typedef enum req_state {
    REQ_NEW,
    REQ_BODY,
    REQ_WAITING,
    REQ_READY
} req_state_t;

struct request {
    gp_http_t *http;
    struct MHD_Connection *conn;
    const route_t *route;
    char path_params[MAX_PATH_PARAMS][MAX_PATH_PARAM_LEN];
    char *body;
    size_t body_len, body_cap, discarded;
    bool too_large;
    req_state_t state;
    gp_store_op_t op;
    gp_task_t task;
    bool head;
    bool dispatched; /* a created task was handed to the queue */
    /* uploads: the "file" part streams into upload_path */
    struct MHD_PostProcessor *post;
    char *upload_path;
    FILE *upload_file;
    char upload_declared_type[128];
    uint64_t upload_bytes;
    bool upload_has_file, upload_failed;
};

struct sse_client {
    pthread_mutex_t lock;
    gp_http_t *http;
    struct MHD_Connection *conn;
    char task_id[37];
    gp_subscription_t *sub;
    char *buf;
    size_t len, off, cap;
    uint64_t last_seq;
    bool suspended, ended, closed;
    sse_client_t *prev, *next;
};

/* ---------------------------------------------------------------- responses */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                 const char *content_type, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body,
                                 const char *extra_header, const char *extra_value)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
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
    if (extra_header)
        MHD_add_response_header(resp, extra_header, extra_value);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* err: a gp_err_t; message NULL = the default; details stolen (NULL = []). */
static enum MHD_Result send_error_allow(struct MHD_Connection *c, int err, const char *message,
                                        json_t *details, const char *allow)
{
    json_t *body = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", gp_err_code(err), "message",
                             message ? message : gp_err_message(err), "details",
                             details ? details : json_array());
    return send_json(c, (unsigned)gp_err_http_status(err), body,
                     allow ? MHD_HTTP_HEADER_ALLOW : NULL, allow);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int err, const char *message,
                                  json_t *details)
{
    return send_error_allow(c, err, message, details, NULL);
}

static json_t *one_detail(const char *field, const char *message)
{
    return json_pack("[{s:s, s:s}]", "field", field, "message", message);
}

/* ---------------------------------------------------------------- helpers */

static const char *header(request_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *query(request_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* A link to a stored object as this gateway serves it: a fresh presigned URL for object
 * stores (stored links expire), else this gateway's /files/ route. Caller frees. */
static char *object_link(gp_http_t *h, const char *owner, const char *name)
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
        char *link = object_link(h, id, name);
        json_object_set_new(a, "url", json_string(link));
        free(link);
        if (json_object_get(a, "thumbnail_url")) {
            char *thumb = gp_storage_derived_name(
                name, json_string_value(json_object_get(a, "content_type")));
            link = object_link(h, id, thumb);
            json_object_set_new(a, "thumbnail_url", json_string(link));
            free(link);
            free(thumb);
        }
    }
    json_object_set_new(task, "result", copy);
}

static json_t *task_json(gp_http_t *h, const gp_task_t *t)
{
    gp_hot_state_t hot;
    /* A task that never started has no hot state: spare the event bus a round trip. */
    bool have_hot = !(t->status == GP_TASK_PENDING && t->attempts == 0) &&
                    gp_events_get_hot(h->rt->events, t->id, &hot) == 0;
    json_t *o = gp_task_to_json(t, have_hot ? &hot : NULL, h->rt->public_url);
    refresh_links(h, o);
    return o;
}

static bool is_json_content_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return !strncasecmp(ct, "application/json", n) &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Parses the JSON body; on failure answers 400 and returns NULL. */
static json_t *parse_body(request_t *r, enum MHD_Result *ret)
{
    if (r->body_len == 0) {
        *ret = send_error(r->conn, GP_E_INVALID_JSON, "the request body is empty", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        *ret = send_error(r->conn, GP_E_INVALID_JSON, msg, NULL);
    }
    return body;
}

/* ---------------------------------------------------------------- routes: tasks */

static void on_commit_done(gp_store_op_t *op, void *arg)
{
    (void)op;
    request_t *r = arg;
    gp_http_t *h = r->http;
    r->state = REQ_READY; /* dispatch happens on resume: queue I/O stays off this thread */
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&h->inflight, 1);
}

static void defer_commit(request_t *r)
{
    r->state = REQ_WAITING;
    r->op.done = on_commit_done;
    r->op.done_arg = r;
    atomic_fetch_add(&r->http->inflight, 1);
    MHD_suspend_connection(r->conn);
    gp_committer_submit(r->http->rt->committer, &r->op);
}

static enum MHD_Result create_task(request_t *r)
{
    gp_http_t *h = r->http;
    if (r->state == REQ_READY) {
        if (r->op.result != 0)
            return send_error(
                r->conn, r->op.result == -GP_E_CONFLICT ? GP_E_CONFLICT : GP_E_UNAVAILABLE,
                r->op.result == -GP_E_CONFLICT ? "a task with this Idempotency-Key is being created"
                                               : "the task could not be stored; try again",
                NULL);
        if (r->op.replayed)
            return send_json(r->conn, 202, task_json(h, &r->task), "Idempotent-Replayed", "true");
        gp_runtime_dispatch(h->rt, &r->task); /* after the commit; lost → the reconciler */
        r->dispatched = true;
        gp_log(GP_LOG_DEBUG, r->task.id, "accepted %s/%s priority %d", r->task.task_type,
               r->task.provider, r->task.priority);
        return send_json(r->conn, 202, task_json(h, &r->task), NULL, NULL);
    }
    const char *key = header(r, "Idempotency-Key");
    if (key) {
        size_t n = strlen(key);
        bool ok = n >= 1 && n <= 255;
        for (size_t i = 0; ok && i < n; i++)
            ok = key[i] > 0x20 && key[i] < 0x7f;
        if (!ok)
            return send_error(
                r->conn, GP_E_BAD_REQUEST, "invalid Idempotency-Key header",
                one_detail("headers.Idempotency-Key", "must be 1 to 255 visible ASCII characters"));
    }
    enum MHD_Result ret = MHD_NO;
    json_t *body = parse_body(r, &ret);
    if (!body)
        return ret;
    gp_submission_t sub;
    json_t *details = NULL;
    int rc =
        gp_validate_submission(body, (int)h->rt->settings->default_max_retries, &sub, &details);
    json_decref(body);
    if (rc != 0)
        return send_error(r->conn, GP_E_VALIDATION, NULL, details);

    gp_task_t *t = &r->task;
    gp_uuid7(t->id);
    t->task_type = gp_xstrdup(sub.task_type->name);
    t->provider = gp_xstrdup(sub.provider->name);
    t->status = GP_TASK_PENDING;
    t->params = json_incref(sub.params);
    t->max_retries = sub.max_retries;
    t->priority = sub.priority;
    t->idempotency_key = key ? gp_xstrdup(key) : NULL;
    t->created_at = gp_now_ms();
    gp_submission_clear(&sub);
    r->op.kind = GP_OP_CREATE;
    r->op.task = t;
    defer_commit(r);
    return MHD_YES;
}

static bool valid_task_id(const char *id)
{
    return gp_is_uuid(id);
}

static enum MHD_Result get_task(request_t *r)
{
    const char *id = r->path_params[0];
    gp_task_t t;
    int rc = valid_task_id(id) ? gp_store_get(r->http->rt->store, id, &t) : -GP_E_NOT_FOUND;
    if (rc != 0)
        return send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL,
                          NULL);
    json_t *j = task_json(r->http, &t);
    gp_task_clear(&t);
    return send_json(r->conn, 200, j, NULL, NULL);
}

static enum MHD_Result list_tasks(request_t *r)
{
    json_t *details = json_array();
    gp_task_filter_t f = {.status = -1, .limit = 20};
    const char *v;
    if ((v = query(r, "limit"))) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > 100)
            json_array_append_new(details, json_pack("{s:s, s:s}", "field", "limit", "message",
                                                     "must be an integer from 1 to 100"));
        else
            f.limit = (size_t)n;
    }
    if ((v = query(r, "status")) && *v) {
        f.status = gp_task_status_parse(v);
        if (f.status < 0)
            json_array_append_new(
                details, json_pack("{s:s, s:s}", "field", "status", "message",
                                   "must be one of: pending, processing, succeeded, failed, "
                                   "canceled"));
    }
    if ((v = query(r, "task_type")) && *v) {
        if (!gp_registry_task_type(v))
            json_array_append_new(details, json_pack("{s:s, s:s}", "field", "task_type", "message",
                                                     "unknown task type"));
        f.task_type = v;
    }
    if ((v = query(r, "cursor")) && *v) {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (*end || n < 1)
            json_array_append_new(details, json_pack("{s:s, s:s}", "field", "cursor", "message",
                                                     "is not a cursor from a previous page"));
        else
            f.before_seq = n;
    }
    if (json_array_size(details) > 0)
        return send_error(r->conn, GP_E_VALIDATION, NULL, details);
    json_decref(details);
    gp_task_t rows[100];
    size_t n = 0;
    int rc = gp_store_list(r->http->rt->store, &f, rows, &n);
    if (rc != 0)
        return send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(data, task_json(r->http, &rows[i]));
    }
    json_t *next = json_null();
    if (n == f.limit && n > 0) {
        char cursor[32];
        snprintf(cursor, sizeof cursor, "%lld", (long long)rows[n - 1].seq);
        json_decref(next);
        next = json_string(cursor);
    }
    for (size_t i = 0; i < n; i++)
        gp_task_clear(&rows[i]);
    return send_json(r->conn, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next), NULL,
                     NULL);
}

static enum MHD_Result cancel_task(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (r->state == REQ_READY) {
        if (r->op.result == -GP_E_NOT_FOUND)
            return send_error(r->conn, GP_E_NOT_FOUND, "no task with this id", NULL);
        if (r->op.result != 0)
            return send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
        gp_task_t t;
        if (gp_store_get(h->rt->store, id, &t) != 0)
            return send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
        enum MHD_Result ret;
        switch (r->op.cancel_outcome) {
        case GP_CANCEL_DONE:
            gp_events_publish_status(h->rt->events, &t, false);
            gp_log(GP_LOG_INFO, id, "canceled while pending");
            ret = send_json(r->conn, 200, task_json(h, &t), NULL, NULL);
            break;
        case GP_CANCEL_REQUESTED:
            gp_events_publish_cancel(h->rt->events, id);
            gp_log(GP_LOG_INFO, id, "cancel requested while running");
            ret = send_json(r->conn, 202, task_json(h, &t), NULL, NULL);
            break;
        default: {
            char msg[128];
            snprintf(msg, sizeof msg, "the task already finished (%s)",
                     gp_task_status_name(t.status));
            ret = send_error(r->conn, GP_E_CONFLICT, msg, NULL);
        }
        }
        gp_task_clear(&t);
        return ret;
    }
    if (!valid_task_id(id))
        return send_error(r->conn, GP_E_NOT_FOUND, "no task with this id", NULL);
    r->op.kind = GP_OP_CANCEL;
    memcpy(r->op.cancel_id, id, sizeof r->op.cancel_id);
    defer_commit(r);
    return MHD_YES;
}

/* Puts a failed task back: failed(n) → pending with a fresh retry budget. */
static enum MHD_Result retry_task(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (r->state == REQ_READY) {
        if (r->op.result == -GP_E_CONFLICT)
            return send_error(r->conn, GP_E_CONFLICT, "the task changed meanwhile; look again",
                              NULL);
        if (r->op.result != 0)
            return send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
        gp_task_t t;
        if (gp_store_get(h->rt->store, id, &t) != 0)
            return send_error(r->conn, GP_E_UNAVAILABLE, NULL, NULL);
        gp_runtime_dispatch(h->rt, &t);
        gp_events_publish_status(h->rt->events, &t, true);
        gp_log(GP_LOG_INFO, id, "put back by request after failing");
        enum MHD_Result ret = send_json(r->conn, 202, task_json(h, &t), NULL, NULL);
        gp_task_clear(&t);
        return ret;
    }
    gp_task_t t;
    int rc = valid_task_id(id) ? gp_store_get(h->rt->store, id, &t) : -GP_E_NOT_FOUND;
    if (rc != 0)
        return send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL,
                          NULL);
    if (t.status != GP_TASK_FAILED) {
        char msg[128];
        snprintf(msg, sizeof msg, "only failed tasks can be retried (this one is %s)",
                 gp_task_status_name(t.status));
        gp_task_clear(&t);
        return send_error(r->conn, GP_E_CONFLICT, msg, NULL);
    }
    gp_transition_t *tr = &r->op.tr;
    r->op.kind = GP_OP_TRANSITION;
    memcpy(tr->id, id, sizeof tr->id);
    tr->from_status = GP_TASK_FAILED;
    tr->from_attempts = t.attempts;
    tr->to_status = GP_TASK_PENDING;
    tr->to_attempts = 0;
    tr->completed_at = -1;
    gp_task_clear(&t);
    defer_commit(r);
    return MHD_YES;
}

/* ---------------------------------------------------------------- routes: events (SSE) */

/* With c->lock held. Returns false when the client should be dropped. */
static bool sse_append(sse_client_t *c, const char *text, size_t n)
{
    if (c->len - c->off + n > SSE_MAX_BUFFERED)
        return false;
    if (c->off > 0 && c->off == c->len)
        c->off = c->len = 0;
    if (c->len + n > c->cap) {
        if (c->off > 0) { /* compact before growing */
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len + n > c->cap) {
            size_t cap = c->cap ? c->cap : 1024;
            while (cap < c->len + n)
                cap *= 2;
            char *nb = realloc(c->buf, cap);
            if (!nb)
                return false;
            c->buf = nb;
            c->cap = cap;
        }
    }
    memcpy(c->buf + c->len, text, n);
    c->len += n;
    return true;
}

static void sse_append_event(sse_client_t *c, uint64_t seq, const char *type, const char *data,
                             size_t len)
{
    char head[96];
    int hn =
        snprintf(head, sizeof head, "id: %llu\nevent: %s\ndata: ", (unsigned long long)seq, type);
    if (!sse_append(c, head, (size_t)hn) || !sse_append(c, data, len) || !sse_append(c, "\n\n", 2))
        c->ended = true; /* too far behind: end the stream; the client resumes by id */
}

/* With c->lock held. */
static void sse_wake(sse_client_t *c)
{
    if (c->suspended && !c->closed) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

static void sse_on_event(const gp_event_t *ev, void *arg)
{
    sse_client_t *c = arg;
    pthread_mutex_lock(&c->lock);
    if (!c->closed && !c->ended && ev->seq > c->last_seq) {
        c->last_seq = ev->seq;
        sse_append_event(c, ev->seq, ev->type, ev->data, ev->data_len);
        if (ev->terminal)
            c->ended = true;
        sse_wake(c);
    }
    pthread_mutex_unlock(&c->lock);
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_client_t *c = cls;
    pthread_mutex_lock(&c->lock);
    if (c->len > c->off) {
        size_t n = c->len - c->off;
        if (n > max)
            n = max;
        memcpy(buf, c->buf + c->off, n);
        c->off += n;
        pthread_mutex_unlock(&c->lock);
        return (ssize_t)n;
    }
    if (c->ended) {
        pthread_mutex_unlock(&c->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing to send: park the connection until an event or heartbeat resumes it. */
    c->suspended = true;
    MHD_suspend_connection(c->conn);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static void sse_free(void *cls)
{
    sse_client_t *c = cls;
    gp_http_t *h = c->http;
    pthread_mutex_lock(&h->clients_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (h->clients == c)
        h->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&h->clients_lock);
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_mutex_unlock(&c->lock);
    if (c->sub)
        gp_events_unsubscribe(h->rt->events, c->sub);
    pthread_mutex_destroy(&c->lock);
    free(c->buf);
    free(c);
}

static enum MHD_Result task_events(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (!valid_task_id(id))
        return send_error(r->conn, GP_E_NOT_FOUND, "no task with this id", NULL);
    sse_client_t *c = gp_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->http = h;
    c->conn = r->conn;
    memcpy(c->task_id, id, sizeof c->task_id);

    pthread_mutex_lock(&c->lock);
    /* Subscribe first, then read: an event that lands in between is not lost. The hot
     * state is read before the row, so the row is at least as new as the sequence. */
    gp_events_subscribe(h->rt->events, id, sse_on_event, c, &c->sub);
    gp_hot_state_t hot = {.progress = -1};
    bool have_hot = gp_events_get_hot(h->rt->events, id, &hot) == 0;
    gp_task_t t;
    int rc = gp_store_get(h->rt->store, id, &t);
    if (rc != 0) {
        pthread_mutex_unlock(&c->lock);
        gp_events_unsubscribe(h->rt->events, c->sub);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL,
                          NULL);
    }
    uint64_t resume_from = 0;
    const char *last = header(r, "Last-Event-ID");
    if (last) {
        char *end = NULL;
        unsigned long long v = strtoull(last, &end, 10);
        if (end != last && !*end)
            resume_from = v;
    }
    uint64_t seq = have_hot ? hot.seq : 0;
    sse_append(c, "retry: 1000\n\n", 13);
    /* Resume only from an id this bus issued: an id past ours (say, from before a restart,
     * when sequences began again) gets the full snapshot instead of silence. */
    if (resume_from > seq)
        resume_from = 0;
    if (!(resume_from && resume_from == seq)) {
        json_t *snap = gp_task_snapshot(&t, have_hot ? &hot : NULL);
        char *data = json_dumps(snap, JSON_COMPACT);
        json_decref(snap);
        sse_append_event(c, seq, "status", data ? data : "{}", data ? strlen(data) : 2);
        free(data);
    }
    c->last_seq = seq > resume_from ? seq : resume_from;
    if (gp_task_status_terminal(t.status))
        c->ended = true;
    gp_task_clear(&t);
    pthread_mutex_unlock(&c->lock);

    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 2048, sse_reader, c, sse_free);
    if (!resp) {
        sse_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&h->clients_lock);
    c->next = h->clients;
    if (h->clients)
        h->clients->prev = c;
    h->clients = c;
    pthread_mutex_unlock(&h->clients_lock);
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void *heartbeat_main(void *arg)
{
    gp_http_t *h = arg;
    pthread_setname_np(pthread_self(), "gp-sse-ping");
    pthread_mutex_lock(&h->hb_lock);
    while (!h->hb_stop) {
        struct timespec ts =
            gp_deadline_in(CLOCK_REALTIME, h->rt->settings->sse_heartbeat_s * 1000);
        pthread_cond_timedwait(&h->hb_cond, &h->hb_lock, &ts);
        if (h->hb_stop)
            break;
        pthread_mutex_lock(&h->clients_lock);
        for (sse_client_t *c = h->clients; c; c = c->next) {
            pthread_mutex_lock(&c->lock);
            if (!c->ended && !sse_append(c, ": ping\n\n", 8))
                c->ended = true;
            sse_wake(c);
            pthread_mutex_unlock(&c->lock);
        }
        pthread_mutex_unlock(&h->clients_lock);
    }
    pthread_mutex_unlock(&h->hb_lock);
    return NULL;
}

/* ---------------------------------------------------------------- other routes */

static enum MHD_Result task_types(request_t *r)
{
    char *copy = gp_xmalloc(r->http->task_types_len);
    memcpy(copy, r->http->task_types_json, r->http->task_types_len);
    return send_text(r->conn, 200, copy, r->http->task_types_len, "application/json", NULL);
}

static enum MHD_Result health(request_t *r)
{
    gp_runtime_t *rt = r->http->rt;
    json_t *workers = json_pack("{s:i, s:i}", "concurrency", gp_worker_pool_size(rt->workers),
                                "busy", gp_worker_pool_busy(rt->workers));
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:I, s:o}", "status", "ok", "version", VERSION, "uptime_s",
                  (json_int_t)((gp_now_ms() - rt->started_at) / 1000), "queue_depth",
                  (json_int_t)gp_queue_depth(rt->queue), "workers", workers);
    return send_json(r->conn, 200, body, NULL, NULL);
}

static enum MHD_Result serve_file(request_t *r)
{
    gp_storage_t *st = r->http->rt->storage;
    char path[4096];
    if (!st->vt->local_path && st->vt->presign && gp_storage_name_ok(r->path_params[1]) &&
        gp_is_uuid(r->path_params[0])) {
        /* Object stores: a stable link that redirects to a freshly presigned one. */
        char *url = NULL;
        if (st->vt->presign(st, r->path_params[0], r->path_params[1], 0, &url) != 0)
            return send_error(r->conn, GP_E_NOT_FOUND, "no such file", NULL);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, url);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        free(url);
        enum MHD_Result ret = MHD_queue_response(r->conn, 302, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (!st->vt->local_path ||
        st->vt->local_path(st, r->path_params[0], r->path_params[1], path, sizeof path) != 0)
        return send_error(r->conn, GP_E_NOT_FOUND, "no such file", NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return send_error(r->conn, GP_E_NOT_FOUND, "no such file", NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            gp_media_type_of_name(r->path_params[1]));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            "public, max-age=86400, immutable");
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---------------------------------------------------------------- uploads (POST /v1/assets) */

static enum MHD_Result on_upload_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *filename, const char *content_type,
                                      const char *transfer_encoding, const char *data, uint64_t off,
                                      size_t size)
{
    (void)kind, (void)filename, (void)transfer_encoding, (void)off;
    request_t *r = cls;
    if (!key || strcmp(key, "file") != 0)
        return MHD_YES; /* other form fields are ignored */
    if (!r->upload_file) {
        if (r->upload_has_file)
            return MHD_YES; /* a second "file" part: keep the first */
        r->upload_has_file = true;
        snprintf(r->upload_declared_type, sizeof r->upload_declared_type, "%s",
                 content_type ? content_type : "");
        r->upload_file = fopen(r->upload_path, "wb");
        if (!r->upload_file) {
            r->upload_failed = true;
            return MHD_NO;
        }
    }
    r->upload_bytes += size;
    if (r->upload_bytes > (uint64_t)r->http->rt->settings->max_upload_bytes) {
        r->too_large = true;
        return MHD_YES; /* keep reading, answer 413 at the end */
    }
    if (size && fwrite(data, 1, size, r->upload_file) != size) {
        r->upload_failed = true;
        return MHD_NO;
    }
    return MHD_YES;
}

static void upload_cleanup(request_t *r)
{
    if (r->post)
        MHD_destroy_post_processor(r->post);
    r->post = NULL;
    if (r->upload_file)
        fclose(r->upload_file);
    r->upload_file = NULL;
    if (r->upload_path) {
        remove(r->upload_path);
        free(r->upload_path);
        r->upload_path = NULL;
    }
}

static enum MHD_Result create_asset(request_t *r)
{
    gp_http_t *h = r->http;
    if (r->upload_file) {
        fclose(r->upload_file);
        r->upload_file = NULL;
    }
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the file is larger than %lld bytes",
                 (long long)h->rt->settings->max_upload_bytes);
        return send_error(r->conn, GP_E_PAYLOAD_TOO_LARGE, msg, one_detail("body.file", msg));
    }
    if (r->upload_failed)
        return send_error(r->conn, GP_E_IO, "the upload could not be stored", NULL);
    if (!r->upload_has_file || r->upload_bytes == 0)
        return send_error(r->conn, GP_E_VALIDATION,
                          "send the file as a non-empty form field "
                          "named \"file\"",
                          one_detail("body.file", "required"));
    unsigned char head[16] = {0};
    FILE *f = fopen(r->upload_path, "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    const char *type = gp_media_sniff(head, n); /* the declared type is not trusted */
    if (!type)
        return send_error(r->conn, GP_E_UNSUPPORTED_MEDIA_TYPE,
                          "the file is not a supported type (PNG, JPEG, GIF, WebP, MP4, WebM, "
                          "WAV, MP3)",
                          one_detail("body.file", "unsupported file type"));
    json_t *meta = json_pack("{s:s, s:s, s:I}", "content_type", type, "name", "", "bytes",
                             (json_int_t)r->upload_bytes);
    if (!strncmp(type, "image/", 6)) {
        gp_image_info_t info;
        char err[256];
        if (gp_media_probe_image(r->upload_path, &info, NULL, 0, err, sizeof err) != 0) {
            json_decref(meta);
            return send_error(r->conn, GP_E_VALIDATION, "the image cannot be decoded",
                              one_detail("body.file", err));
        }
        json_object_set_new(meta, "width", json_integer(info.width));
        json_object_set_new(meta, "height", json_integer(info.height));
        if (info.blurhash[0])
            json_object_set_new(meta, "blurhash", json_string(info.blurhash));
    }
    char id[37];
    gp_uuid7(id);
    char name[16];
    snprintf(name, sizeof name, "file.%s", gp_media_ext_of_type(type));
    json_object_set_new(meta, "name", json_string(name));
    json_object_set_new(meta, "id", json_string(id));
    json_object_set_new(meta, "created_at", json_integer((json_int_t)gp_now_ms()));
    char *url = NULL;
    int rc = gp_storage_put_file(h->rt->storage, id, name, r->upload_path, type, &url);
    free(url);
    char *text = rc == 0 ? json_dumps(meta, JSON_COMPACT) : NULL;
    if (rc == 0)
        rc = gp_storage_put_bytes(h->rt->storage, id, "meta.json", text, strlen(text),
                                  "application/json", &url);
    free(text);
    if (rc == 0)
        free(url);
    if (rc != 0) {
        json_decref(meta);
        return send_error(r->conn, GP_E_UNAVAILABLE, "the upload could not be stored", NULL);
    }
    char *link = object_link(h, id, name);
    json_object_set_new(meta, "url", json_string(link));
    free(link);
    gp_log(GP_LOG_INFO, NULL, "asset %s stored (%s, %llu bytes)", id, type,
           (unsigned long long)r->upload_bytes);
    return send_json(r->conn, 201, meta, NULL, NULL);
}

static enum MHD_Result get_asset(request_t *r)
{
    gp_http_t *h = r->http;
    const char *id = r->path_params[0];
    if (!gp_is_uuid(id))
        return send_error(r->conn, GP_E_NOT_FOUND, "no such asset", NULL);
    char tmpl[] = "/tmp/genpulse-meta-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return send_error(r->conn, GP_E_IO, NULL, NULL);
    close(fd);
    json_t *meta = NULL;
    if (gp_storage_get_file(h->rt->storage, id, "meta.json", tmpl) == 0)
        meta = json_load_file(tmpl, 0, NULL);
    remove(tmpl);
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || !gp_storage_name_ok(name)) {
        json_decref(meta);
        return send_error(r->conn, GP_E_NOT_FOUND, "no such asset", NULL);
    }
    char *link = object_link(h, id, name);
    json_object_set_new(meta, "url", json_string(link));
    free(link);
    return send_json(r->conn, 200, meta, NULL, NULL);
}

static enum MHD_Result root(request_t *r)
{
    json_t *body =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "name", "genpulse", "version", VERSION, "links",
                  "tasks", "/v1/tasks", "task_types", "/v1/task-types", "health", "/health");
    return send_json(r->conn, 200, body, NULL, NULL);
}

static const route_t routes[] = {
    {"POST", "/v1/tasks", create_task, true, false},
    {"GET", "/v1/tasks", list_tasks, false, false},
    {"GET", "/v1/tasks/{}", get_task, false, false},
    {"POST", "/v1/tasks/{}/cancel", cancel_task, false, false},
    {"POST", "/v1/tasks/{}/retry", retry_task, false, false},
    {"GET", "/v1/tasks/{}/events", task_events, false, false},
    {"GET", "/v1/task-types", task_types, false, false},
    {"POST", "/v1/assets", create_asset, false, true},
    {"GET", "/v1/assets/{}", get_asset, false, false},
    {"GET", "/health", health, false, false},
    {"GET", "/files/{}/{}", serve_file, false, false},
    {"GET", "/", root, false, false},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Matches path against pattern, capturing "{}" segments. */
static bool match(const char *pattern, const char *path, char params[][MAX_PATH_PARAM_LEN])
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '/' && *s == '/') {
            p++;
            s++;
            continue;
        }
        if (!strncmp(p, "{}", 2)) {
            const char *end = strchr(s, '/');
            size_t n = end ? (size_t)(end - s) : strlen(s);
            if (n == 0 || n >= MAX_PATH_PARAM_LEN || np >= MAX_PATH_PARAMS)
                return false;
            memcpy(params[np], s, n);
            params[np++][n] = '\0';
            p += 2;
            s += n;
            continue;
        }
        const char *pend = strchr(p, '/'), *send = strchr(s, '/');
        size_t pn = pend ? (size_t)(pend - p) : strlen(p);
        size_t sn = send ? (size_t)(send - s) : strlen(s);
        if (pn != sn || strncmp(p, s, pn) != 0)
            return false;
        p += pn;
        s += sn;
    }
    if (*s == '/' && s[1] == '\0' && s != path)
        s++; /* tolerate one trailing slash */
    return *p == '\0' && *s == '\0';
}

/* Finds the route; on a method mismatch fills allow and returns NULL. */
static const route_t *find_route(const char *method, const char *url, request_t *r, char *allow,
                                 size_t cap)
{
    allow[0] = '\0';
    bool head = !strcmp(method, "HEAD");
    for (size_t i = 0; i < N_ROUTES; i++) {
        char params[MAX_PATH_PARAMS][MAX_PATH_PARAM_LEN];
        if (!match(routes[i].pattern, url, params))
            continue;
        if (!strcmp(routes[i].method, method) || (head && !strcmp(routes[i].method, "GET"))) {
            memcpy(r->path_params, params, sizeof params);
            return &routes[i];
        }
        size_t o = strlen(allow);
        snprintf(allow + o, cap - o, "%s%s", o ? ", " : "", routes[i].method);
    }
    return NULL;
}

/* ---------------------------------------------------------------- MHD glue */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    gp_http_t *h = cls;
    request_t *r = *con_cls;
    if (!r) {
        r = gp_xcalloc(1, sizeof *r);
        r->http = h;
        r->conn = conn;
        *con_cls = r;
        char allow[64];
        r->route = find_route(method, url, r, allow, sizeof allow);
        if (!r->route) {
            if (allow[0]) {
                char msg[160];
                snprintf(msg, sizeof msg, "%s is not allowed here; use %s", method, allow);
                return send_error_allow(conn, GP_E_METHOD_NOT_ALLOWED, msg, NULL, allow);
            }
            return send_error(conn, GP_E_NOT_FOUND, "no such route", NULL);
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t limit = r->route->upload ? h->rt->settings->max_upload_bytes + 65536
                                         : h->rt->settings->max_body_bytes;
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > (unsigned long long)limit) {
                char msg[128];
                snprintf(msg, sizeof msg, "the request body is larger than %lld bytes",
                         (long long)limit);
                return send_error(conn, GP_E_PAYLOAD_TOO_LARGE, msg, NULL);
            }
        }
        if (r->route->json_body) {
            const char *ct =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
            if (!is_json_content_type(ct))
                return send_error(conn, GP_E_UNSUPPORTED_MEDIA_TYPE,
                                  "send the body as Content-Type: application/json",
                                  one_detail("headers.Content-Type", "must be application/json"));
        }
        if (r->route->upload) {
            const char *ct =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
            if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
                return send_error(
                    conn, GP_E_UNSUPPORTED_MEDIA_TYPE,
                    "send the file as multipart/form-data with a field \"file\"",
                    one_detail("headers.Content-Type", "must be multipart/form-data"));
            r->post = MHD_create_post_processor(conn, 65536, on_upload_part, r);
            if (!r->post)
                return send_error(conn, GP_E_BAD_REQUEST,
                                  "malformed multipart/form-data "
                                  "(boundary missing?)",
                                  one_detail("headers.Content-Type", "needs a boundary"));
            r->upload_path = gp_xasprintf("%s/upload-%p-%lld.part", h->upload_dir, (void *)r,
                                          (long long)gp_mono_ms());
        }
        r->state = REQ_BODY;
        return MHD_YES;
    }
    if (*upload_data_size > 0 && r->post) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->upload_failed)
            return MHD_NO;
        if (MHD_post_process(r->post, upload_data, n) != MHD_YES && !r->upload_failed)
            r->upload_failed = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        size_t limit = (size_t)h->rt->settings->max_body_bytes;
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
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        return MHD_YES;
    }
    if (r->state == REQ_WAITING)
        return MHD_YES; /* spurious call while suspended */
    if (r->too_large && !r->post) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %lld bytes",
                 (long long)h->rt->settings->max_body_bytes);
        return send_error(conn, GP_E_PAYLOAD_TOO_LARGE, msg, NULL);
    }
    return r->route->fn(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    request_t *r = *con_cls;
    if (!r)
        return;
    /* The client left before its 202: the task is committed, so it still gets queued. */
    if (r->op.kind == GP_OP_CREATE && r->op.task && r->state == REQ_READY && r->op.result == 0 &&
        !r->op.replayed && !r->dispatched)
        gp_runtime_dispatch(r->http->rt, &r->task);
    upload_cleanup(r);
    free(r->body);
    gp_task_clear(&r->task);
    free(r);
    *con_cls = NULL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes in place like MHD's default, except that %00 stays as the three literal
 * characters: a decoded NUL would cut the path short ("/health%00x" matching "/health"). */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    char *out = s;
    for (const char *in = s; *in;) {
        int hi, lo;
        if (in[0] == '%' && (hi = hexval(in[1])) >= 0 && (lo = hexval(in[2])) >= 0 &&
            (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
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
    h->upload_dir = gp_xasprintf("%s/uploads", s->data_dir);
    gp_mkdirs(h->upload_dir, 0700);

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, s->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->port);
    } else if (inet_pton(AF_INET6, s->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, cap, "host \"%s\" is not an IPv4 or IPv6 address", s->host);
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
    if (pthread_create(&h->heartbeat, NULL, heartbeat_main, h) != 0) {
        snprintf(err, cap, "cannot start the heartbeat thread");
        MHD_stop_daemon(h->daemon);
        goto fail;
    }
    return h;
fail:
    free(h->task_types_json);
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
    pthread_mutex_lock(&h->hb_lock);
    h->hb_stop = true;
    pthread_cond_signal(&h->hb_cond);
    pthread_mutex_unlock(&h->hb_lock);
    pthread_join(h->heartbeat, NULL);
    /* End every stream and let in-flight commits answer: MHD must not stop while
     * connections are suspended. */
    pthread_mutex_lock(&h->clients_lock);
    for (sse_client_t *c = h->clients; c; c = c->next) {
        pthread_mutex_lock(&c->lock);
        c->ended = true;
        sse_wake(c);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&h->clients_lock);
    for (int i = 0; i < 500 && atomic_load(&h->inflight) > 0; i++)
        usleep(10000);
    usleep(50000); /* let resumed streams flush their last bytes */
    MHD_stop_daemon(h->daemon);
    if (h->quiesced_fd != MHD_INVALID_SOCKET)
        close(h->quiesced_fd);
    pthread_mutex_destroy(&h->clients_lock);
    pthread_mutex_destroy(&h->hb_lock);
    pthread_cond_destroy(&h->hb_cond);
    free(h->task_types_json);
    free(h->upload_dir);
    free(h);
}

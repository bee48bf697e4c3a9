/*
 * events.c — GET /v1/tasks/{id}/events: a task's status as a Server-Sent Events stream;
 * GET /v1/events: every task the caller may see, one stream (the dashboard's live view).
 *
 * DESIGN
 * - A stream is a callback response. Between events its connection is suspended (no
 *   thread, no polling); the event bus callback appends to the stream's buffer and resumes
 *   it. A heartbeat thread writes comment lines, which also finds dead clients.
 * - Subscribe first, then read the row: an event that lands in between is not lost.
 * - A stream of a finished task ends after its last event, and a reconnect that already has
 *   that event (Last-Event-ID) gets 204: a standard EventSource then stops for good instead
 *   of reconnecting every `retry` forever.
 * - Other wire formats (the Replicate stream) plug in as a gp_sse_format_t: the same
 *   subscription, suspension and heartbeat, with their own opening and event rendering.
 * - Locks: h->clients_lock (the list) is taken before a client's lock, never after.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/metrics.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define SSE_MAX_BUFFERED (1u << 20) /* a client this far behind is dropped */

struct sse_client {
    pthread_mutex_t lock;
    gp_http_t *http;
    struct MHD_Connection *conn;
    char task_id[37];
    gp_subscription_t *sub;
    char *buf;
    size_t len, off, cap;
    uint64_t last_seq;
    /* The every-task stream: owner = the only user whose tasks it carries ("" = all). */
    char owner[37];
    const gp_sse_format_t *fmt; /* NULL = GenPulse's own events */
    void *fmt_state;            /* fmt->state_size zeroed bytes, freed with the stream */
    bool suspended, ended, closed;
    bool listed; /* on h->clients (and counted in genpulse_sse_streams) */
    sse_client_t *prev, *next;
};

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
        if (c->fmt)
            c->fmt->event(c, ev, c->fmt_state);
        else
            sse_append_event(c, ev->seq, ev->type, ev->data, ev->data_len);
        if (ev->terminal)
            c->ended = true;
        sse_wake(c);
    }
    pthread_mutex_unlock(&c->lock);
}

void gp_sse_write(sse_client_t *c, const char *text, size_t n)
{
    if (!c->ended && !sse_append(c, text, n))
        c->ended = true;
}

void gp_sse_write_event(sse_client_t *c, const char *id, const char *type, const char *data,
                        size_t n)
{
    char head[160];
    int hn = snprintf(head, sizeof head, "%s%s%sevent: %s\n", id ? "id: " : "", id ? id : "",
                      id ? "\n" : "", type);
    gp_sse_write(c, head, (size_t)hn);
    /* Every line of data gets its own "data:" field (the SSE rules for multi-line data). */
    const char *p = data, *end = data + n;
    do {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        gp_sse_write(c, "data: ", 6);
        gp_sse_write(c, p, len);
        gp_sse_write(c, "\n", 1);
        p = nl ? nl + 1 : end;
    } while (p < end);
    gp_sse_write(c, "\n", 1);
}

void gp_sse_close(sse_client_t *c)
{
    c->ended = true;
}

gp_http_t *gp_sse_http(const sse_client_t *c)
{
    return c->http;
}

/* The every-task stream: sequences are per task, so the stream numbers its own events
 * (a reconnect starts afresh: the client reloads the list, then listens). */
static void sse_on_any_event(const gp_event_t *ev, void *arg)
{
    sse_client_t *c = arg;
    if (c->owner[0]) {
        const char *owner = ev->owner && ev->owner[0] ? ev->owner : "";
        if (strcmp(owner, c->owner) != 0)
            return; /* another user's task, or a publisher that did not say whose */
    }
    pthread_mutex_lock(&c->lock);
    if (!c->closed && !c->ended) {
        sse_append_event(c, ++c->last_seq, ev->type, ev->data, ev->data_len);
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
    if (c->listed)
        gp_metrics_add(GP_M_SSE_STREAMS, -1, NULL, NULL, NULL);
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_mutex_unlock(&c->lock);
    if (c->sub)
        gp_events_unsubscribe(h->rt->events, c->sub);
    pthread_mutex_destroy(&c->lock);
    free(c->fmt_state);
    free(c->buf);
    free(c);
}

/* The Last-Event-ID the client resumes from, 0 = none. */
static uint64_t resume_id(request_t *r)
{
    const char *last = gp_req_header(r, "Last-Event-ID");
    if (!last)
        return 0;
    char *end = NULL;
    unsigned long long v = strtoull(last, &end, 10);
    return end != last && !*end ? v : 0;
}

/* With c->lock held: the stream's opening (retry hint, then a snapshot unless the client
 * already has the latest event). */
static void sse_open(sse_client_t *c, const gp_task_t *t, const gp_hot_state_t *hot,
                     uint64_t resume_from)
{
    uint64_t seq = hot ? hot->seq : 0;
    sse_append(c, "retry: 1000\n\n", 13);
    /* Resume only from an id this bus issued: an id past ours (say, from before a restart,
     * when sequences began again) gets the full snapshot instead of silence. */
    if (resume_from > seq)
        resume_from = 0;
    if (!(resume_from && resume_from == seq)) {
        json_t *snap = gp_task_snapshot(t, hot);
        char *data = json_dumps(snap, GP_JSON_WIRE);
        json_decref(snap);
        sse_append_event(c, seq, "status", data ? data : "{}", data ? strlen(data) : 2);
        free(data);
    }
    c->last_seq = seq > resume_from ? seq : resume_from;
    if (gp_task_status_terminal(t->status))
        c->ended = true;
}

static enum MHD_Result sse_respond(request_t *r, sse_client_t *c)
{
    gp_http_t *h = r->http;
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
    c->listed = true;
    pthread_mutex_unlock(&h->clients_lock);
    gp_metrics_add(GP_M_SSE_STREAMS, 1, NULL, NULL, NULL);
    enum MHD_Result ret = gp_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* A finished task's stream that the client already read to its end: nothing more will come. */
static bool already_ended(request_t *r, const gp_task_t *t, const gp_hot_state_t *hot)
{
    if (!gp_task_status_terminal(t->status) || !gp_req_header(r, "Last-Event-ID"))
        return false;
    return resume_id(r) == (hot ? hot->seq : 0);
}

enum MHD_Result gp_sse_task_stream(request_t *r, const char *id, bool any_owner,
                                   const gp_sse_format_t *fmt)
{
    gp_http_t *h = r->http;
    if (!gp_is_uuid(id))
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no task with this id", NULL);
    sse_client_t *c = gp_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->http = h;
    c->conn = r->conn;
    c->fmt = fmt;
    if (fmt && fmt->state_size)
        c->fmt_state = gp_xcalloc(1, fmt->state_size);
    memcpy(c->task_id, id, sizeof c->task_id);

    pthread_mutex_lock(&c->lock);
    /* The hot state is read before the row, so the row is at least as new as the sequence. */
    gp_events_subscribe(h->rt->events, id, sse_on_event, c, &c->sub);
    gp_hot_state_t hot = {.progress = -1};
    bool have_hot = gp_events_get_hot(h->rt->events, id, &hot) == 0;
    gp_task_t t;
    int rc = any_owner ? gp_store_get(h->rt->store, id, &t) : gp_tasks_load_visible(r, id, &t);
    bool done = rc == 0 && !fmt && already_ended(r, &t, have_hot ? &hot : NULL);
    if (rc != 0 || done) {
        pthread_mutex_unlock(&c->lock);
        gp_events_unsubscribe(h->rt->events, c->sub);
        pthread_mutex_destroy(&c->lock);
        free(c->fmt_state);
        free(c);
        if (done) {
            gp_task_clear(&t);
            return gp_send_text(r->conn, 204, NULL, 0, NULL, NULL);
        }
        return gp_send_error(r->conn, -rc, rc == -GP_E_NOT_FOUND ? "no task with this id" : NULL,
                             NULL);
    }
    if (fmt) {
        c->last_seq = have_hot ? hot.seq : 0;
        fmt->open(c, &t, have_hot ? &hot : NULL, c->fmt_state);
        if (gp_task_status_terminal(t.status))
            c->ended = true;
    } else {
        sse_open(c, &t, have_hot ? &hot : NULL, resume_id(r));
    }
    gp_task_clear(&t);
    pthread_mutex_unlock(&c->lock);
    return sse_respond(r, c);
}

static enum MHD_Result task_events(request_t *r)
{
    return gp_sse_task_stream(r, r->path_params[0], false, NULL);
}

static enum MHD_Result all_events(request_t *r)
{
    gp_http_t *h = r->http;
    sse_client_t *c = gp_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->http = h;
    c->conn = r->conn;
    if (!gp_principal_is_admin(&r->principal))
        snprintf(c->owner, sizeof c->owner, "%s", r->principal.user_id);
    pthread_mutex_lock(&c->lock);
    static const char opening[] = "retry: 1000\n\n: every task\n\n"; /* sent at once */
    sse_append(c, opening, sizeof opening - 1);
    gp_events_subscribe(h->rt->events, NULL, sse_on_any_event, c, &c->sub);
    pthread_mutex_unlock(&c->lock);
    return sse_respond(r, c);
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

int gp_sse_start(gp_http_t *h)
{
    return pthread_create(&h->heartbeat, NULL, heartbeat_main, h) == 0 ? 0 : -1;
}

void gp_sse_stop(gp_http_t *h)
{
    pthread_mutex_lock(&h->hb_lock);
    h->hb_stop = true;
    pthread_cond_signal(&h->hb_cond);
    pthread_mutex_unlock(&h->hb_lock);
    pthread_join(h->heartbeat, NULL);
}

void gp_sse_end_all(gp_http_t *h)
{
    pthread_mutex_lock(&h->clients_lock);
    for (sse_client_t *c = h->clients; c; c = c->next) {
        pthread_mutex_lock(&c->lock);
        c->ended = true;
        sse_wake(c);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&h->clients_lock);
}

const gp_route_t gp_routes_events[] = {
    {"GET", "/v1/tasks/{}/events", GP_BODY_NONE, "tasks:read", task_events, NULL},
    {"GET", "/v1/events", GP_BODY_NONE, "tasks:read", all_events, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

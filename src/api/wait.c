/*
 * wait.c — `Prefer: wait[=N]`: a create answers when its task ends or after N seconds.
 *
 * DESIGN
 * - A waiting request holds no thread: its connection is suspended (as for a commit or an
 *   SSE stream) and a waiter on the gateway's list subscribes to the task's events. The
 *   first of a terminal event, the deadline (one timer thread for every waiter) or the
 *   gateway stopping resumes the connection; the route's finish hook then runs again on an
 *   event thread, after gp_wait_release has unsubscribed and re-read the task.
 * - Subscribe first, then read the row: a task that ended in between is seen by the read.
 * - A waiter is freed only on the event thread, after unsubscribe() (the bus callback is not
 *   running then) and after leaving the list under its lock (the timer is not touching it).
 * - Locks: waits->lock guards the list and each waiter's `fired`.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREFER_WAIT_MAX 60 /* Replicate's bound, and the longest a client should hold a socket */

struct gp_task_waiter {
    request_t *r;
    gp_subscription_t *sub;
    int64_t deadline_ms;
    bool fired, listed;
    struct gp_task_waiter *prev, *next;
};

struct gp_waits {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t timer;
    bool stop;
    bool closing; /* the gateway is stopping: a new wait ends at once */
    gp_task_waiter_t *head;
};

/* With ws->lock held: resumes w's request, once. */
static void fire_locked(gp_waits_t *ws, gp_task_waiter_t *w)
{
    (void)ws;
    if (w->fired)
        return;
    w->fired = true;
    request_t *r = w->r;
    r->state = REQ_READY;
    r->wait_over = true;
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&r->http->inflight, 1);
}

static void on_task_event(const gp_event_t *ev, void *arg)
{
    gp_task_waiter_t *w = arg;
    if (!ev->terminal)
        return;
    gp_waits_t *ws = w->r->http->waits;
    pthread_mutex_lock(&ws->lock);
    fire_locked(ws, w);
    pthread_mutex_unlock(&ws->lock);
}

static void *timer_main(void *arg)
{
    gp_waits_t *ws = arg;
    pthread_setname_np(pthread_self(), "gp-wait-timer");
    pthread_mutex_lock(&ws->lock);
    while (!ws->stop) {
        int64_t now = gp_now_ms(), next = now + 60000;
        for (gp_task_waiter_t *w = ws->head; w; w = w->next) {
            if (w->fired)
                continue;
            if (w->deadline_ms <= now)
                fire_locked(ws, w);
            else if (w->deadline_ms < next)
                next = w->deadline_ms;
        }
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, next - now);
        pthread_cond_timedwait(&ws->cond, &ws->lock, &ts);
    }
    pthread_mutex_unlock(&ws->lock);
    return NULL;
}

int gp_waits_start(gp_http_t *h)
{
    gp_waits_t *ws = gp_xcalloc(1, sizeof *ws);
    pthread_mutex_init(&ws->lock, NULL);
    pthread_cond_init(&ws->cond, NULL);
    if (pthread_create(&ws->timer, NULL, timer_main, ws) != 0) {
        pthread_mutex_destroy(&ws->lock);
        pthread_cond_destroy(&ws->cond);
        free(ws);
        return -1;
    }
    h->waits = ws;
    return 0;
}

void gp_waits_end_all(gp_http_t *h)
{
    gp_waits_t *ws = h->waits;
    if (!ws)
        return;
    pthread_mutex_lock(&ws->lock);
    ws->closing = true;
    for (gp_task_waiter_t *w = ws->head; w; w = w->next)
        fire_locked(ws, w);
    pthread_mutex_unlock(&ws->lock);
}

void gp_waits_stop(gp_http_t *h)
{
    gp_waits_t *ws = h->waits;
    if (!ws)
        return;
    pthread_mutex_lock(&ws->lock);
    ws->stop = true;
    pthread_cond_signal(&ws->cond);
    pthread_mutex_unlock(&ws->lock);
    pthread_join(ws->timer, NULL);
    pthread_mutex_destroy(&ws->lock);
    pthread_cond_destroy(&ws->cond);
    free(ws);
    h->waits = NULL;
}

/* Parses one Prefer header value: RFC 7240 preferences, comma-separated, each a token with
 * an optional "=value" (quoted or not) and ";parameters". Returns the wait or 0/-1. */
static int parse_prefer(const char *v)
{
    int found = 0;
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *tok = v;
        while (*v && *v != '=' && *v != ',' && *v != ';' && *v != ' ' && *v != '\t')
            v++;
        size_t tn = (size_t)(v - tok);
        while (*v == ' ' || *v == '\t')
            v++;
        bool is_wait = tn == 4 && !strncasecmp(tok, "wait", 4);
        int secs = PREFER_WAIT_MAX;
        if (*v == '=') {
            v++;
            while (*v == ' ' || *v == '\t')
                v++;
            bool quoted = *v == '"';
            if (quoted)
                v++;
            const char *val = v;
            while (*v && (quoted ? *v != '"' : (*v != ',' && *v != ';' && *v != ' ')))
                v++;
            size_t vn = (size_t)(v - val);
            if (quoted && *v == '"')
                v++;
            if (is_wait) {
                long n = 0;
                bool digits = vn >= 1 && vn <= 3;
                for (size_t i = 0; digits && i < vn; i++) {
                    digits = isdigit((unsigned char)val[i]) != 0;
                    n = n * 10 + (val[i] - '0');
                }
                if (!digits || n < 1 || n > PREFER_WAIT_MAX)
                    return -1;
                secs = (int)n;
            }
        }
        while (*v && *v != ',') /* parameters of this preference: not ours */
            v++;
        if (is_wait && !found)
            found = secs;
    }
    return found;
}

int gp_prefer_wait(request_t *r)
{
    const char *v = gp_req_header(r, "Prefer");
    return v ? parse_prefer(v) : 0;
}

void gp_http_wait_task(request_t *r, int seconds)
{
    gp_http_t *h = r->http;
    gp_waits_t *ws = h->waits;
    gp_task_waiter_t *w = gp_xcalloc(1, sizeof *w);
    w->r = r;
    w->deadline_ms = gp_now_ms() + (int64_t)seconds * 1000;
    r->waiter = w;
    r->wait_over = false;
    r->state = REQ_WAITING;
    atomic_fetch_add(&h->inflight, 1);
    MHD_suspend_connection(r->conn);
    gp_events_subscribe(h->rt->events, r->task.id, on_task_event, w, &w->sub);
    /* The task may have ended before the subscription: the row says so. */
    gp_task_t now;
    bool ended = gp_store_get(h->rt->store, r->task.id, &now) == 0;
    if (ended) {
        ended = gp_task_status_terminal(now.status);
        gp_task_clear(&now);
    }
    pthread_mutex_lock(&ws->lock);
    if (ws->closing || ended) {
        fire_locked(ws, w);
    } else {
        w->listed = true;
        w->next = ws->head;
        if (ws->head)
            ws->head->prev = w;
        ws->head = w;
        pthread_cond_signal(&ws->cond); /* a nearer deadline than the timer sleeps to */
    }
    pthread_mutex_unlock(&ws->lock);
}

void gp_wait_release(request_t *r, bool reread)
{
    gp_task_waiter_t *w = r->waiter;
    if (!w)
        return;
    gp_http_t *h = r->http;
    gp_waits_t *ws = h->waits;
    if (w->sub)
        gp_events_unsubscribe(h->rt->events, w->sub);
    pthread_mutex_lock(&ws->lock);
    if (w->listed) {
        if (w->prev)
            w->prev->next = w->next;
        else
            ws->head = w->next;
        if (w->next)
            w->next->prev = w->prev;
    }
    pthread_mutex_unlock(&ws->lock);
    free(w);
    r->waiter = NULL;
    gp_task_t fresh;
    if (reread && gp_store_get(h->rt->store, r->task.id, &fresh) == 0) {
        gp_task_clear(&r->task);
        r->task = fresh;
    }
}

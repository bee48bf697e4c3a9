/* monitor.c — Celery events and remote control for a GenPulse worker process (monitor.h).
 *
 * DESIGN
 * - Wire: kombu's Redis transport turns fanout exchanges into PUBLISH on
 *   "/<db>.<exchange>[/<routing key>]" (queues.md §1.6): events go to
 *   /<db>.celeryev/<type with dots>, broadcasts arrive on /<db>.celery.pidbox, replies are
 *   LPUSHed on the queue bound to the reply exchange for the message's routing key (found in
 *   _kombu.binding.<exchange>, as kombu's direct-exchange publish does). Envelopes and body
 *   decoding are wire.c's (gp_celery_encode_envelope, gp_celery_decode_control).
 * - Never block a task: task_event() builds the event body (a few µs) and appends it to a
 *   bounded ring under a mutex; the publisher thread encodes and PUBLISHes. A full ring drops
 *   the event (counted, logged once per burst). A task worker or the committer never waits
 *   for Redis here.
 * - Lamport clock: one counter, incremented for every event and reply, raised past any
 *   clock header a control message brings (Celery's app.clock).
 * - Remote control runs on the listener thread: answers read the host's snapshot (a mutex
 *   held for a copy of the busy slots) and the monitor's own counters; revoke calls
 *   host->cancel, which only queues a commit.
 */
#include "infra/celery/monitor.h"
#include "infra/celery/wire.h"
#include "core/log.h"
#include "core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SW_IDENT "genpulse"
#define SW_VER "0.1.0" /* main.c's VERSION */
#define HEARTBEAT_MS 2000
#define RING_MAX 4096
#define IO_MS 1000
#define CONNECT_MS 1000
#define REPR_MAX 1024 /* Celery's resultrepr_maxsize */
#define MAX_ACTIVE 256
#define MAX_TOTALS 64

typedef struct pending {
    char rk[32];
    json_t *body;
} pending_t;

struct gp_celery_monitor {
    gp_redis_url_t url;
    gp_worker_host_t host;
    char node[192];
    char hostname[64];
    int pid;
    int64_t started_ms;
    char ev_prefix[32]; /* "/<db>.celeryev/" */
    char pidbox[32];    /* "/<db>.celery.pidbox" */
    atomic_llong clock;
    atomic_llong processed;

    pthread_mutex_t lock; /* ring, totals, flags, ctl_fd */
    pthread_cond_t wake;
    pending_t ring[RING_MAX];
    size_t r_head, r_len;
    long long dropped;
    bool stop;
    bool beat_now; /* a heartbeat control command asked for one */
    struct {
        char name[65];
        long long n;
    } totals[MAX_TOTALS];
    int ctl_fd;
    pthread_t publisher, listener;
};

/* ---- event bodies -------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long tick(gp_celery_monitor_t *m)
{
    return atomic_fetch_add(&m->clock, 1) + 1;
}

/* Celery's utcoffset(): hours west of UTC. */
static int utcoffset(void)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    return (int)(-tm.tm_gmtoff / 3600);
}

/* {hostname, utcoffset, pid, clock} — the fields every event starts with. */
static json_t *event_head(gp_celery_monitor_t *m)
{
    return json_pack("{s:s, s:i, s:i, s:I}", "hostname", m->node, "utcoffset", utcoffset(), "pid",
                     m->pid, "clock", (json_int_t)tick(m));
}

/* Appends timestamp and type (last, as Celery's Event()) and queues the body. Takes body. */
static void queue_event(gp_celery_monitor_t *m, json_t *body, const char *type)
{
    if (!body)
        return;
    json_object_set_new(body, "timestamp", json_real(now_s()));
    json_object_set_new(body, "type", json_string(type));
    pthread_mutex_lock(&m->lock);
    if (m->r_len == RING_MAX) {
        if (m->dropped++ == 0)
            GP_WARN("celery monitor: event queue full; dropping events");
        pthread_mutex_unlock(&m->lock);
        json_decref(body);
        return;
    }
    pending_t *p = &m->ring[(m->r_head + m->r_len++) % RING_MAX];
    snprintf(p->rk, sizeof p->rk, "%s", type);
    for (char *c = p->rk; *c; c++)
        if (*c == '-')
            *c = '.';
    p->body = body;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

static size_t active_count(gp_celery_monitor_t *m)
{
    gp_active_task_t a[MAX_ACTIVE];
    return m->host.active ? m->host.active(m->host.arg, a, MAX_ACTIVE) : 0;
}

static void queue_worker_event(gp_celery_monitor_t *m, const char *type)
{
    json_t *b = event_head(m);
    double la[3] = {0, 0, 0};
    if (getloadavg(la, 3) < 0)
        la[0] = la[1] = la[2] = 0;
    for (int i = 0; i < 3; i++)
        la[i] = (double)(long long)(la[i] * 100 + 0.5) / 100;
    json_t *fields = json_pack(
        "{s:f, s:I, s:I, s:[f,f,f], s:s, s:s, s:s}", "freq", HEARTBEAT_MS / 1000.0, "active",
        (json_int_t)active_count(m), "processed", (json_int_t)atomic_load(&m->processed), "loadavg",
        la[0], la[1], la[2], "sw_ident", SW_IDENT, "sw_ver", SW_VER, "sw_sys", "Linux");
    if (b && fields)
        json_object_update(b, fields);
    json_decref(fields);
    queue_event(m, b, type);
}

static void count_received(gp_celery_monitor_t *m, const char *type)
{
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < MAX_TOTALS; i++) {
        if (!m->totals[i].name[0])
            snprintf(m->totals[i].name, sizeof m->totals[i].name, "%s", type);
        if (!strcmp(m->totals[i].name, type)) {
            m->totals[i].n++;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

static json_t *repr_json(const json_t *v)
{
    char *r = gp_celery_pyrepr(v, REPR_MAX);
    json_t *s = r ? json_string(r) : NULL;
    free(r);
    return s ? s : json_string("");
}

/* exception and traceback of a failed attempt, as Celery's task-failed carries them. */
static void add_exception(json_t *b, const gp_task_event_t *ev)
{
    char *text = gp_xasprintf("%s: %s", ev->error_code ? ev->error_code : "error",
                              ev->error_message ? ev->error_message : "failed");
    json_t *s = json_string(text);
    char *r = s ? gp_celery_pyrepr(s, REPR_MAX) : NULL;
    char *exc = gp_xasprintf("GenPulseTaskFailed(%s)", r ? r : "''");
    char *tb = gp_xasprintf("GenPulseTaskFailed: %s", text);
    json_object_set_new(b, "exception", json_string(exc));
    json_object_set_new(b, "traceback", json_string(tb));
    json_decref(s);
    free(r);
    free(exc);
    free(tb);
    free(text);
}

void gp_celery_monitor_task_event(gp_celery_monitor_t *m, const gp_task_event_t *ev)
{
    static const char *const types[] = {
        [GP_TEV_RECEIVED] = "task-received",   [GP_TEV_STARTED] = "task-started",
        [GP_TEV_SUCCEEDED] = "task-succeeded", [GP_TEV_FAILED] = "task-failed",
        [GP_TEV_RETRIED] = "task-retried",     [GP_TEV_REVOKED] = "task-revoked"};
    if (!m || !ev->task_id || (unsigned)ev->kind > GP_TEV_REVOKED)
        return;
    json_t *b = event_head(m);
    if (!b)
        return;
    json_object_set_new(b, "uuid", json_string(ev->task_id));
    switch (ev->kind) {
    case GP_TEV_RECEIVED:
        count_received(m, ev->task_type ? ev->task_type : "");
        json_object_set_new(b, "name", json_string(ev->task_type ? ev->task_type : ""));
        json_object_set_new(b, "args", json_string("()"));
        json_object_set_new(b, "kwargs", ev->params ? repr_json(ev->params) : json_string("{}"));
        json_object_set_new(b, "root_id", json_string(ev->task_id));
        json_object_set_new(b, "parent_id", json_null());
        json_object_set_new(b, "retries", json_integer(ev->retries));
        json_object_set_new(b, "eta", json_null());
        json_object_set_new(b, "expires", json_null());
        break;
    case GP_TEV_STARTED: break;
    case GP_TEV_SUCCEEDED:
        atomic_fetch_add(&m->processed, 1);
        json_object_set_new(b, "result", repr_json(ev->result));
        json_object_set_new(b, "runtime", json_real(ev->runtime_s));
        break;
    case GP_TEV_FAILED:
        atomic_fetch_add(&m->processed, 1);
        add_exception(b, ev);
        break;
    case GP_TEV_RETRIED: add_exception(b, ev); break;
    case GP_TEV_REVOKED:
        atomic_fetch_add(&m->processed, 1);
        json_object_set_new(b, "terminated", json_boolean(ev->terminated));
        json_object_set_new(b, "signum", ev->terminated ? json_integer(15) : json_null());
        json_object_set_new(b, "expired", json_false());
        break;
    }
    queue_event(m, b, types[ev->kind]);
}

/* ---- the publisher thread ---------------------------------------------------------------- */

typedef struct link {
    redisContext *c;
    int64_t retry_at; /* mono ms: no reconnect before */
    const gp_redis_url_t *url;
    const char *name;
} link_t;

static redisContext *link_get(link_t *l)
{
    if (l->c || gp_mono_ms() < l->retry_at)
        return l->c;
    char err[256];
    l->c = gp_redis_connect(l->url, CONNECT_MS, IO_MS, l->name, err, sizeof err);
    if (!l->c)
        l->retry_at = gp_mono_ms() + 1000; /* events are soft state: drop until then */
    return l->c;
}

static void link_check(link_t *l, redisReply *r)
{
    if (r)
        freeReplyObject(r);
    if (l->c && (!r || l->c->err)) {
        redisFree(l->c);
        l->c = NULL;
        l->retry_at = gp_mono_ms() + 1000;
    }
}

static void publish(gp_celery_monitor_t *m, link_t *l, const pending_t *p)
{
    redisContext *c = link_get(l);
    if (!c)
        return;
    char tag[37], channel[64];
    gp_uuid4(tag);
    snprintf(channel, sizeof channel, "%s%s", m->ev_prefix, p->rk);
    char *text = gp_celery_encode_envelope(p->body, json_pack("{s:s}", "hostname", m->node),
                                           "celeryev", p->rk, tag);
    if (!text)
        return;
    link_check(l, redisCommand(c, "PUBLISH %s %b", channel, text, strlen(text)));
    free(text);
}

static void *publisher_main(void *arg)
{
    gp_celery_monitor_t *m = arg;
    pthread_setname_np(pthread_self(), "gp-celery-ev");
    link_t l = {.url = &m->url, .name = "genpulse-celery-events"};
    int64_t next_beat = gp_mono_ms() + HEARTBEAT_MS;
    pending_t batch[64];
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (!m->r_len && !m->stop && !m->beat_now && gp_mono_ms() < next_beat) {
            struct timespec ts = gp_deadline_in(CLOCK_REALTIME, next_beat - gp_mono_ms());
            pthread_cond_timedwait(&m->wake, &m->lock, &ts);
        }
        size_t n = 0;
        while (m->r_len && n < 64) {
            batch[n++] = m->ring[m->r_head];
            m->r_head = (m->r_head + 1) % RING_MAX;
            m->r_len--;
        }
        bool stop = m->stop && !m->r_len && !n;
        bool beat = m->beat_now || gp_mono_ms() >= next_beat;
        m->beat_now = false;
        pthread_mutex_unlock(&m->lock);
        for (size_t i = 0; i < n; i++) {
            publish(m, &l, &batch[i]);
            json_decref(batch[i].body);
        }
        if (stop)
            break;
        if (beat) {
            next_beat = gp_mono_ms() + HEARTBEAT_MS;
            queue_worker_event(m, "worker-heartbeat");
        }
        pthread_mutex_lock(&m->lock);
    }
    /* worker-offline last, after every task event queued before stop(). */
    queue_worker_event(m, "worker-offline");
    pthread_mutex_lock(&m->lock);
    while (m->r_len) {
        pending_t p = m->ring[m->r_head];
        m->r_head = (m->r_head + 1) % RING_MAX;
        m->r_len--;
        pthread_mutex_unlock(&m->lock);
        publish(m, &l, &p);
        json_decref(p.body);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    if (l.c)
        redisFree(l.c);
    return NULL;
}

/* ---- remote control ---------------------------------------------------------------------- */

typedef json_t *(*control_fn)(gp_celery_monitor_t *m, const gp_celery_control_t *c);

static json_t *ok(const char *text)
{
    return json_pack("{s:s}", "ok", text);
}

static json_t *c_ping(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)m, (void)c;
    return ok("pong");
}

static json_t *c_clock(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)c;
    return json_pack("{s:I}", "clock", (json_int_t)atomic_load(&m->clock));
}

static json_t *c_events(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)m, (void)c;
    return ok("task events enabled");
}

static json_t *c_empty_list(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)m, (void)c;
    return json_array();
}

static json_t *c_empty_object(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)m, (void)c;
    return json_object();
}

static json_t *c_heartbeat(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)c;
    pthread_mutex_lock(&m->lock);
    m->beat_now = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    return NULL; /* Celery's heartbeat command answers nothing */
}

static json_t *c_active_queues(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)m, (void)c;
    return json_pack("[{s:s, s:{s:s, s:s, s:b, s:b}, s:s, s:b, s:b, s:b, s:b}]", "name", "celery",
                     "exchange", "name", "celery", "type", "direct", "durable", 1, "auto_delete", 0,
                     "routing_key", "celery", "durable", 1, "exclusive", 0, "auto_delete", 0,
                     "no_ack", 0);
}

static json_t *c_active(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)c;
    gp_active_task_t *a = gp_xcalloc(MAX_ACTIVE, sizeof *a);
    size_t n = m->host.active ? m->host.active(m->host.arg, a, MAX_ACTIVE) : 0;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:[], s:{}, s:s, s:s, s:f, s:b, s:{s:s, s:s, s:i, s:b}, "
                      "s:i, s:i}",
                      "id", a[i].id, "name", a[i].task_type, "args", "kwargs", "type",
                      a[i].task_type, "hostname", m->node, "time_start",
                      (double)a[i].started_at / 1000.0, "acknowledged", 1, "delivery_info",
                      "exchange", "", "routing_key", "celery", "priority", 0, "redelivered", 0,
                      "worker_pid", m->pid, "retries", a[i].attempts > 0 ? a[i].attempts - 1 : 0));
    free(a);
    return list;
}

static json_t *c_stats(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)c;
    json_t *total = json_object();
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < MAX_TOTALS && m->totals[i].name[0]; i++)
        json_object_set_new(total, m->totals[i].name, json_integer(m->totals[i].n));
    pthread_mutex_unlock(&m->lock);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char clock[24];
    snprintf(clock, sizeof clock, "%lld", (long long)atomic_load(&m->clock));
    char vhost[16];
    snprintf(vhost, sizeof vhost, "%d", m->url.db);
    return json_pack("{s:o, s:i, s:s, s:I, s:{s:s, s:i, s:[i], s:s, s:b, s:[i,i]}, "
                     "s:{s:s, s:i, s:s, s:s, s:b}, s:i, s:{s:f, s:f, s:I}, s:s, s:s}",
                     "total", total, "pid", m->pid, "clock", clock, "uptime",
                     (json_int_t)((gp_now_ms() - m->started_ms) / 1000), "pool", "implementation",
                     "genpulse.worker", "max-concurrency", m->host.concurrency, "processes", m->pid,
                     "max-tasks-per-child", "N/A", "put-guarded-by-semaphore", 0, "timeouts", 0, 0,
                     "broker", "hostname", m->url.host, "port", m->url.port, "transport", "redis",
                     "virtual_host", vhost, "ssl", 0, "prefetch_count", m->host.concurrency,
                     "rusage", "utime",
                     (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6, "stime",
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, "maxrss",
                     (json_int_t)ru.ru_maxrss, "sw_ident", SW_IDENT, "sw_ver", SW_VER);
}

/* revoke(task_id: str | [str], terminate=False, signal=…): a GenPulse cancel of each;
 * terminate(signal, task_id) is revoke with terminate (`celery control terminate`). */
static json_t *revoke_ids(gp_celery_monitor_t *m, const gp_celery_control_t *c, bool terminate)
{
    const json_t *ids = json_object_get(c->arguments, "task_id");
    json_t *list = json_is_array(ids) ? json_incref((json_t *)ids) : json_pack("[O]", ids);
    if (!list || !(json_is_string(ids) || json_is_array(ids))) {
        json_decref(list);
        return json_pack("{s:s}", "error", "task_id is not a string or a list of strings");
    }
    char shown[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < json_array_size(list) && i < 1000; i++) {
        const char *id = json_string_value(json_array_get(list, i));
        if (!id || strlen(id) > 36)
            continue;
        if (m->host.cancel)
            m->host.cancel(m->host.arg, id, terminate);
        int w = snprintf(shown + used, sizeof shown - used, "%s%s", used ? ", " : "", id);
        if (w > 0 && (size_t)w < sizeof shown - used)
            used += (size_t)w;
    }
    json_decref(list);
    char *text = gp_xasprintf("tasks %s flagged as revoked", shown);
    json_t *r = ok(text);
    free(text);
    return r;
}

static json_t *c_revoke(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    return revoke_ids(m, c, json_is_true(json_object_get(c->arguments, "terminate")));
}

static json_t *c_terminate(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    return revoke_ids(m, c, true);
}

static json_t *c_registered(gp_celery_monitor_t *m, const gp_celery_control_t *c)
{
    (void)c;
    json_t *list = json_array();
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < MAX_TOTALS && m->totals[i].name[0]; i++)
        json_array_append_new(list, json_string(m->totals[i].name));
    pthread_mutex_unlock(&m->lock);
    return list;
}

static const struct {
    const char *method;
    control_fn fn;
} CONTROLS[] = {
    {"ping", c_ping},
    {"stats", c_stats},
    {"active", c_active},
    {"revoke", c_revoke},
    {"terminate", c_terminate},
    {"heartbeat", c_heartbeat},
    {"clock", c_clock},
    {"enable_events", c_events},
    {"disable_events", c_events},
    {"registered", c_registered},
    {"active_queues", c_active_queues},
    {"reserved", c_empty_list},
    {"scheduled", c_empty_list},
    {"revoked", c_empty_list},
    {"conf", c_empty_object},
    {"query_task", c_empty_object},
};

/* The reply queue bound to (exchange, routing key): kombu's direct-exchange lookup. */
static bool reply_queue(redisContext *c, const gp_celery_control_t *ctl, char *out, size_t cap)
{
    redisReply *r = redisCommand(c, "SMEMBERS _kombu.binding.%s", ctl->reply_exchange);
    bool found = false;
    size_t rk_len = strlen(ctl->reply_routing_key);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || (size_t)e->len < rk_len + 4)
            continue;
        /* routing_key SEP pattern SEP queue */
        if (memcmp(e->str, ctl->reply_routing_key, rk_len) ||
            memcmp(e->str + rk_len, GP_CELERY_SEP, 2))
            continue;
        const char *rest = e->str + rk_len + 2;
        const char *sep = strstr(rest, GP_CELERY_SEP);
        if (sep && strlen(sep + 2) > 0 && strlen(sep + 2) < cap) {
            snprintf(out, cap, "%s", sep + 2);
            found = true;
        }
    }
    if (r)
        freeReplyObject(r);
    return found;
}

static void send_reply(gp_celery_monitor_t *m, link_t *l, const gp_celery_control_t *ctl,
                       json_t *answer)
{
    redisContext *c = link_get(l);
    char queue[GP_CELERY_MAX_NAME * 2 + 8];
    if (!c || !reply_queue(c, ctl, queue, sizeof queue)) {
        if (c && c->err)
            link_check(l, NULL);
        json_decref(answer);
        return;
    }
    json_t *body = json_object();
    json_object_set_new(body, m->node, answer);
    char tag[37];
    gp_uuid4(tag);
    json_t *headers = json_pack("{s:s, s:I}", "ticket", ctl->ticket, "clock", (json_int_t)tick(m));
    char *text =
        gp_celery_encode_envelope(body, headers, ctl->reply_exchange, ctl->reply_routing_key, tag);
    json_decref(body);
    if (text)
        link_check(l, redisCommand(c, "LPUSH %s %b", queue, text, strlen(text)));
    free(text);
}

static void handle_control(gp_celery_monitor_t *m, link_t *l, const char *msg, size_t len)
{
    gp_celery_control_t ctl;
    char err[160];
    if (gp_celery_decode_control(msg, len, &ctl, err, sizeof err) != 0) {
        GP_DEBUG("celery monitor: ignoring a control message: %s", err);
        return;
    }
    if ((ctl.expires > 0 && ctl.expires < now_s()) || !gp_celery_control_for(&ctl, m->node)) {
        gp_celery_control_clear(&ctl);
        return;
    }
    long long seen = atomic_load(&m->clock); /* Lamport: past the sender's clock */
    while (ctl.clock > seen && !atomic_compare_exchange_weak(&m->clock, &seen, ctl.clock))
        ;
    tick(m);
    json_t *answer = NULL;
    bool known = false;
    for (size_t i = 0; i < sizeof CONTROLS / sizeof *CONTROLS && !known; i++)
        if (!strcmp(CONTROLS[i].method, ctl.method)) {
            known = true;
            answer = CONTROLS[i].fn(m, &ctl);
        }
    if (!known) {
        char *text = gp_xasprintf("unknown command '%s'", ctl.method);
        answer = json_pack("{s:s}", "error", text);
        free(text);
    }
    if (answer && ctl.ticket)
        send_reply(m, l, &ctl, answer);
    else
        json_decref(answer);
    gp_celery_control_clear(&ctl);
}

static void *listener_main(void *arg)
{
    gp_celery_monitor_t *m = arg;
    pthread_setname_np(pthread_self(), "gp-celery-ctl");
    link_t replies = {.url = &m->url, .name = "genpulse-celery-reply"};
    int backoff = 100;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        bool stop = m->stop;
        pthread_mutex_unlock(&m->lock);
        if (stop)
            break;
        char err[256];
        redisContext *c =
            gp_redis_connect(&m->url, CONNECT_MS, IO_MS, "genpulse-celery-pidbox", err, sizeof err);
        redisReply *r = c ? redisCommand(c, "SUBSCRIBE %s", m->pidbox) : NULL;
        if (!r) {
            if (c)
                redisFree(c);
            for (int w = 0; w < backoff; w += 50) {
                usleep(50000);
                pthread_mutex_lock(&m->lock);
                stop = m->stop;
                pthread_mutex_unlock(&m->lock);
                if (stop)
                    break;
            }
            backoff = backoff < 5000 ? backoff * 2 : 5000;
            continue;
        }
        freeReplyObject(r);
        backoff = 100;
        struct timeval forever = {0, 0}; /* subscribed: wait as long as it takes */
        redisSetTimeout(c, forever);
        redisEnableKeepAlive(c);
        pthread_mutex_lock(&m->lock);
        m->ctl_fd = c->fd;
        if (m->stop)
            shutdown(c->fd, SHUT_RDWR);
        pthread_mutex_unlock(&m->lock);
        void *v = NULL;
        while (redisGetReply(c, &v) == REDIS_OK) {
            redisReply *msg = v;
            if (msg && msg->type == REDIS_REPLY_ARRAY && msg->elements == 3 &&
                msg->element[2]->type == REDIS_REPLY_STRING)
                handle_control(m, &replies, msg->element[2]->str, (size_t)msg->element[2]->len);
            freeReplyObject(v);
            v = NULL;
        }
        pthread_mutex_lock(&m->lock);
        m->ctl_fd = -1;
        pthread_mutex_unlock(&m->lock);
        redisFree(c);
    }
    if (replies.c)
        redisFree(replies.c);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------ */

gp_celery_monitor_t *gp_celery_monitor_start(const gp_redis_url_t *url,
                                             const gp_worker_host_t *host)
{
    gp_celery_monitor_t *m = gp_xcalloc(1, sizeof *m);
    m->url = *url;
    m->host = *host;
    m->pid = (int)getpid();
    m->started_ms = gp_now_ms();
    m->ctl_fd = -1;
    if (gethostname(m->hostname, sizeof m->hostname - 1) != 0)
        snprintf(m->hostname, sizeof m->hostname, "localhost");
    snprintf(m->node, sizeof m->node, "genpulse-%d@%s", m->pid, m->hostname);
    snprintf(m->ev_prefix, sizeof m->ev_prefix, "/%d.celeryev/", url->db);
    snprintf(m->pidbox, sizeof m->pidbox, "/%d.celery.pidbox", url->db);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);
    queue_worker_event(m, "worker-online");
    if (pthread_create(&m->publisher, NULL, publisher_main, m) != 0) {
        GP_ERROR("celery monitor: cannot start a thread");
        free(m); /* at start only: nothing else holds m */
        return NULL;
    }
    if (pthread_create(&m->listener, NULL, listener_main, m) != 0) {
        GP_ERROR("celery monitor: cannot start a thread");
        m->listener = 0;
    }
    return m;
}

void gp_celery_monitor_stop(gp_celery_monitor_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    if (m->ctl_fd >= 0)
        shutdown(m->ctl_fd, SHUT_RDWR);
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    if (m->listener)
        pthread_join(m->listener, NULL);
    pthread_join(m->publisher, NULL);
    while (m->r_len) {
        json_decref(m->ring[m->r_head].body);
        m->r_head = (m->r_head + 1) % RING_MAX;
        m->r_len--;
    }
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    free(m);
}

/*
 * redis.c — the event bus and hot store on Redis (distributed mode).
 *
 * DESIGN
 * - Hot state per task is a hash genpulse:hot:<id> {progress, step, seq} with a TTL; one Lua
 *   script updates it and increments the event sequence atomically, so every process sees
 *   one sequence per task (the SSE `id:`), whichever process published.
 * - Events go to one channel, genpulse:events, as "<id> <seq> <type> <terminal> <owner>\n<json>";
 *   cancel requests go to genpulse:cancel. Every process runs one subscriber thread that
 *   hands events to its local subscribers (fanout.c). One channel keeps the subscriber
 *   static (no SUBSCRIBE traffic per stream); per-task channels are the next step if event
 *   volume per gateway becomes the limit.
 * - Publishers share a small pool of synchronous connections (hiredis contexts are not
 *   thread-safe). Every call has a timeout; a broken connection is dropped and reopened on
 *   the next call, and the caller gets -GP_E_UNAVAILABLE meanwhile. Events are soft state:
 *   a lost event costs a client one intermediate update, never the task (the store has it).
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/events/events.h"
#include "infra/celery/wire.h"
#include "infra/events/fanout.h"
#include "infra/redis/conn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_SIZE 4
#define CMD_TIMEOUT_MS 2000
#define HOT_TTL_S 86400
#define EVENTS_CHANNEL "genpulse:events"
#define CANCEL_CHANNEL "genpulse:cancel"

/* Updates hot state and returns {seq, progress, step}. */
static const char hot_script[] =
    "if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'progress', 0, 'step', '') end\n"
    "if tonumber(ARGV[2]) >= 0 then redis.call('HSET', KEYS[1], 'progress', ARGV[2]) end\n"
    "if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'step', ARGV[4]) end\n"
    "if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'progress', 100) end\n"
    "local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
    "local h = redis.call('HMGET', KEYS[1], 'progress', 'step')\n"
    "return {seq, h[1] or '-1', h[2] or ''}\n";

typedef struct redis_events {
    gp_events_t base;
    gp_redis_url_t url;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    redisContext *pool[POOL_SIZE];
    bool busy[POOL_SIZE];
    gp_fanout_t *fanout;
    pthread_t subscriber;
    atomic_bool stop;
    pthread_mutex_t sub_lock; /* guards sub_fd and the cancel listener */
    int sub_fd;
    gp_cancel_cb cancel_cb;
    void *cancel_arg;
} redis_events_t;

static int take(redis_events_t *e, redisContext **out)
{
    pthread_mutex_lock(&e->pool_lock);
    int slot = -1;
    while (slot < 0) {
        for (int i = 0; i < POOL_SIZE && slot < 0; i++)
            if (!e->busy[i])
                slot = i;
        if (slot < 0)
            pthread_cond_wait(&e->pool_cond, &e->pool_lock);
    }
    e->busy[slot] = true;
    pthread_mutex_unlock(&e->pool_lock);
    if (!e->pool[slot]) {
        char err[256];
        e->pool[slot] = gp_redis_connect(&e->url, CMD_TIMEOUT_MS, CMD_TIMEOUT_MS, "genpulse-events",
                                         err, sizeof err);
        if (!e->pool[slot])
            GP_WARN("events: %s", err);
    }
    *out = e->pool[slot];
    return slot;
}

/* Returns the slot; drops its connection when the last command failed at the I/O level. */
static void give(redis_events_t *e, int slot, bool broken)
{
    pthread_mutex_lock(&e->pool_lock);
    if (broken && e->pool[slot]) {
        redisFree(e->pool[slot]);
        e->pool[slot] = NULL;
    }
    e->busy[slot] = false;
    pthread_cond_signal(&e->pool_cond);
    pthread_mutex_unlock(&e->pool_lock);
}

static void handle_message(redis_events_t *e, const char *channel, const char *msg, size_t len)
{
    if (!strcmp(channel, CANCEL_CHANNEL)) {
        char id[37];
        snprintf(id, sizeof id, "%.*s", (int)(len < 36 ? len : 36), msg);
        pthread_mutex_lock(&e->sub_lock);
        gp_cancel_cb cb = e->cancel_cb;
        void *arg = e->cancel_arg;
        pthread_mutex_unlock(&e->sub_lock);
        if (cb)
            cb(id, arg);
        return;
    }
    const char *nl = memchr(msg, '\n', len);
    if (!nl)
        return;
    char head[160];
    size_t hl = (size_t)(nl - msg);
    if (hl >= sizeof head)
        return;
    memcpy(head, msg, hl);
    head[hl] = '\0';
    char id[37], type[16], owner[37] = "";
    unsigned long long seq;
    int terminal;
    if (sscanf(head, "%36s %llu %15s %d %36s", id, &seq, type, &terminal, owner) < 4)
        return;
    gp_event_t ev = {.task_id = id,
                     .owner = owner,
                     .type = type,
                     .seq = seq,
                     .data = nl + 1,
                     .data_len = len - hl - 1,
                     .terminal = terminal != 0};
    gp_fanout_deliver(e->fanout, &ev);
}

static void *subscriber_main(void *arg)
{
    redis_events_t *e = arg;
    pthread_setname_np(pthread_self(), "gp-redis-sub");
    int backoff_ms = 100;
    while (!atomic_load(&e->stop)) {
        char err[256];
        /* No I/O timeout: it blocks between messages; keepalive finds dead peers. */
        redisContext *c =
            gp_redis_connect(&e->url, CMD_TIMEOUT_MS, 0, "genpulse-events-sub", err, sizeof err);
        if (!c) {
            GP_WARN("events: subscriber: %s; retrying in %d ms", err, backoff_ms);
            for (int waited = 0; waited < backoff_ms && !atomic_load(&e->stop); waited += 50)
                usleep(50000);
            backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
            continue;
        }
        redisEnableKeepAlive(c);
        redisReply *r = redisCommand(c, "SUBSCRIBE %s %s", EVENTS_CHANNEL, CANCEL_CHANNEL);
        if (r)
            freeReplyObject(r); /* first confirmation; the second arrives as a reply below */
        pthread_mutex_lock(&e->sub_lock);
        e->sub_fd = c->fd;
        pthread_mutex_unlock(&e->sub_lock);
        if (atomic_load(&e->stop))
            shutdown(c->fd, SHUT_RDWR);
        backoff_ms = 100;
        void *reply = NULL;
        while (!atomic_load(&e->stop) && redisGetReply(c, &reply) == REDIS_OK) {
            redisReply *m = reply;
            if (m && m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                m->element[0]->type == REDIS_REPLY_STRING &&
                !strcmp(m->element[0]->str, "message") && m->element[2]->type == REDIS_REPLY_STRING)
                handle_message(e, m->element[1]->str, m->element[2]->str,
                               (size_t)m->element[2]->len);
            freeReplyObject(reply);
            reply = NULL;
        }
        pthread_mutex_lock(&e->sub_lock);
        e->sub_fd = -1;
        pthread_mutex_unlock(&e->sub_lock);
        if (!atomic_load(&e->stop))
            GP_WARN("events: subscriber connection lost (%s); reconnecting",
                    c->errstr[0] ? c->errstr : "closed");
        redisFree(c);
    }
    return NULL;
}

static int re_open(gp_events_t **out, const char *url, const gp_settings_t *s, char *err,
                   size_t cap)
{
    (void)s;
    redis_events_t *e = gp_xcalloc(1, sizeof *e);
    if (gp_redis_url_parse(url, &e->url, err, cap) != 0) {
        free(e);
        return -GP_E_INTERNAL;
    }
    extern const gp_events_vt_t gp_events_backend_redis;
    e->base.vt = &gp_events_backend_redis;
    pthread_mutex_init(&e->pool_lock, NULL);
    pthread_cond_init(&e->pool_cond, NULL);
    pthread_mutex_init(&e->sub_lock, NULL);
    e->sub_fd = -1;
    e->fanout = gp_fanout_new();
    /* Fail fast on a wrong URL; later outages are handled by reconnecting. */
    redisContext *probe =
        gp_redis_connect(&e->url, CMD_TIMEOUT_MS, CMD_TIMEOUT_MS, "genpulse-events", err, cap);
    if (!probe) {
        gp_fanout_free(e->fanout);
        free(e);
        return -GP_E_UNAVAILABLE;
    }
    e->pool[0] = probe;
    if (pthread_create(&e->subscriber, NULL, subscriber_main, e) != 0)
        abort(); /* at start only */
    *out = &e->base;
    return 0;
}

static void re_close(gp_events_t *base)
{
    redis_events_t *e = (redis_events_t *)base;
    atomic_store(&e->stop, true);
    pthread_mutex_lock(&e->sub_lock);
    if (e->sub_fd >= 0)
        shutdown(e->sub_fd, SHUT_RDWR); /* unblocks the subscriber's read */
    pthread_mutex_unlock(&e->sub_lock);
    pthread_join(e->subscriber, NULL);
    for (int i = 0; i < POOL_SIZE; i++)
        if (e->pool[i])
            redisFree(e->pool[i]);
    gp_fanout_free(e->fanout);
    pthread_mutex_destroy(&e->pool_lock);
    pthread_cond_destroy(&e->pool_cond);
    pthread_mutex_destroy(&e->sub_lock);
    free(e);
}

static int append_celery_meta(redisContext *c, const gp_task_t *t, const gp_hot_state_t *hot);

/* Updates hot state, then publishes the event. */
static int publish(redis_events_t *e, const gp_task_t *t, const char *type, bool reset, int percent,
                   const char *step)
{
    redisContext *c;
    int slot = take(e, &c);
    if (!c) {
        give(e, slot, true);
        return -GP_E_UNAVAILABLE;
    }
    bool terminal = gp_task_status_terminal(t->status);
    char key[64], pct[16], ttl[16];
    snprintf(key, sizeof key, "genpulse:hot:%s", t->id);
    snprintf(pct, sizeof pct, "%d", percent);
    snprintf(ttl, sizeof ttl, "%d", HOT_TTL_S);
    /* A final state's Celery result meta needs no hot state: it goes first, in the same
     * round trip as the hot-state script (a Celery client's .get() waits for it). */
    gp_hot_state_t none = {.progress = -1};
    int early = terminal ? append_celery_meta(c, t, &none) : 0;
    redisAppendCommand(c, "EVAL %s 1 %s %s %s %s %s %s %s", hot_script, key, reset ? "1" : "0", pct,
                       step ? "1" : "0", step ? step : "", ttl,
                       t->status == GP_TASK_SUCCEEDED ? "1" : "0");
    redisReply *r = NULL;
    for (int i = 0; i <= early; i++) {
        if (r)
            freeReplyObject(r);
        void *v = NULL;
        r = redisGetReply(c, &v) == REDIS_OK ? v : NULL;
        if (!r)
            break;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r && r->type == REDIS_REPLY_ERROR)
            GP_ERROR("events: hot-state script failed: %s", r->str);
        bool broken = !r;
        if (r)
            freeReplyObject(r);
        give(e, slot, broken);
        return -GP_E_UNAVAILABLE;
    }
    gp_hot_state_t hot = {.seq = (uint64_t)r->element[0]->integer, .progress = -1};
    if (r->element[1]->type == REDIS_REPLY_STRING)
        hot.progress = atoi(r->element[1]->str);
    if (r->element[2]->type == REDIS_REPLY_STRING)
        snprintf(hot.step, sizeof hot.step, "%s", r->element[2]->str);
    freeReplyObject(r);

    json_t *snap = gp_task_snapshot(t, &hot);
    char *data = json_dumps(snap, GP_JSON_WIRE);
    json_decref(snap);
    /* The owner rides last in the head: a reader that parses four fields ignores it. */
    char *msg = gp_xasprintf("%s %llu %s %d %s\n%s", t->id, (unsigned long long)hot.seq, type,
                             terminal ? 1 : 0, t->owner[0] ? t->owner : GP_LOCAL_USER_ID,
                             data ? data : "{}");
    free(data);
    /* A progress event and its Celery meta (which shows the hot state) in one round trip. */
    redisAppendCommand(c, "PUBLISH %s %b", EVENTS_CHANNEL, msg, strlen(msg));
    free(msg);
    int replies = 1;
    if (!terminal && !strcmp(type, "progress"))
        replies += append_celery_meta(c, t, &hot);
    bool broken = false;
    for (int i = 0; i < replies && !broken; i++) {
        void *reply = NULL;
        broken = redisGetReply(c, &reply) != REDIS_OK;
        if (reply)
            freeReplyObject(reply);
    }
    broken = broken || c->err != 0;
    give(e, slot, broken);
    return broken ? -GP_E_UNAVAILABLE : 0;
}

/*
 * Writes the task's state the way Celery's Redis result backend does (SETEX + PUBLISH of
 * celery-task-meta-<id>, research/queues.md §1.7), so `AsyncResult.get()` from Python works:
 * SUCCESS with the result object, FAILURE with a synthetic exception, REVOKED when canceled,
 * and a custom PROGRESS state (like `update_state`) while running. Appends the commands
 * (MULTI, SETEX, PUBLISH, EXEC) to c's pipeline and returns how many replies to read.
 */
static int append_celery_meta(redisContext *c, const gp_task_t *t, const gp_hot_state_t *hot)
{
    const char *state;
    json_t *result;
    switch (t->status) {
    case GP_TASK_SUCCEEDED:
        state = GP_CELERY_SUCCESS;
        result = t->result ? json_incref(t->result) : json_object();
        break;
    case GP_TASK_FAILED:
        state = GP_CELERY_FAILURE;
        result = gp_celery_exception("GenPulseTaskFailed",
                                     t->error_message ? t->error_message : "failed", NULL);
        break;
    case GP_TASK_CANCELED:
        state = GP_CELERY_REVOKED;
        result =
            gp_celery_exception("TaskRevokedError", "canceled by request", "celery.exceptions");
        break;
    default:
        state = GP_CELERY_PROGRESS;
        result = json_pack("{s:i, s:s}", "pct", hot->progress < 0 ? 0 : hot->progress, "step",
                           hot->step);
    }
    char ts[40];
    bool done = gp_task_status_terminal(t->status);
    if (done)
        gp_celery_format_date_done(t->completed_at ? t->completed_at : gp_now_ms(), ts, sizeof ts);
    char *text = gp_celery_encode_meta(t->id, state, result, done ? ts : NULL);
    if (!text)
        return 0;
    char key[80];
    snprintf(key, sizeof key, GP_CELERY_KEY_PREFIX "%s", t->id);
    size_t len = strlen(text);
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SETEX %s %d %b", key, HOT_TTL_S, text, len);
    redisAppendCommand(c, "PUBLISH %s %b", key, text, len);
    redisAppendCommand(c, "EXEC");
    free(text);
    return 4;
}

static int re_publish_status(gp_events_t *base, const gp_task_t *t, bool reset_progress)
{
    return publish((redis_events_t *)base, t, "status", reset_progress, -1, NULL);
}

static int re_publish_progress(gp_events_t *base, const gp_task_t *t, int percent, const char *step)
{
    return publish((redis_events_t *)base, t, "progress", false, percent, step);
}

static int re_get_hot(gp_events_t *base, const char *id, gp_hot_state_t *out)
{
    redis_events_t *e = (redis_events_t *)base;
    redisContext *c;
    int slot = take(e, &c);
    if (!c) {
        give(e, slot, true);
        return -GP_E_UNAVAILABLE;
    }
    redisReply *r = redisCommand(c, "HMGET genpulse:hot:%s progress step seq", id);
    int rc = -GP_E_NOT_FOUND;
    if (!r) {
        rc = -GP_E_UNAVAILABLE;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               r->element[2]->type == REDIS_REPLY_STRING) {
        out->seq = strtoull(r->element[2]->str, NULL, 10);
        out->progress = r->element[0]->type == REDIS_REPLY_STRING ? atoi(r->element[0]->str) : -1;
        snprintf(out->step, sizeof out->step, "%s",
                 r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
        rc = 0;
    }
    if (r)
        freeReplyObject(r);
    give(e, slot, rc == -GP_E_UNAVAILABLE);
    return rc;
}

static int re_subscribe(gp_events_t *base, const char *id, gp_event_cb cb, void *arg,
                        gp_subscription_t **out)
{
    *out = gp_fanout_subscribe(((redis_events_t *)base)->fanout, id, cb, arg);
    return 0;
}

static void re_unsubscribe(gp_events_t *base, gp_subscription_t *sub)
{
    gp_fanout_unsubscribe(((redis_events_t *)base)->fanout, sub);
}

static int re_publish_cancel(gp_events_t *base, const char *task_id)
{
    redis_events_t *e = (redis_events_t *)base;
    redisContext *c;
    int slot = take(e, &c);
    if (!c) {
        give(e, slot, true);
        return -GP_E_UNAVAILABLE;
    }
    redisReply *r = redisCommand(c, "PUBLISH %s %s", CANCEL_CHANNEL, task_id);
    bool broken = !r;
    if (r)
        freeReplyObject(r);
    give(e, slot, broken);
    return broken ? -GP_E_UNAVAILABLE : 0;
}

static int re_on_cancel(gp_events_t *base, gp_cancel_cb cb, void *arg)
{
    redis_events_t *e = (redis_events_t *)base;
    pthread_mutex_lock(&e->sub_lock);
    e->cancel_cb = cb;
    e->cancel_arg = arg;
    pthread_mutex_unlock(&e->sub_lock);
    return 0;
}

const gp_events_vt_t gp_events_backend_redis = {
    .scheme = "redis",
    .open = re_open,
    .close = re_close,
    .publish_status = re_publish_status,
    .publish_progress = re_publish_progress,
    .get_hot = re_get_hot,
    .subscribe = re_subscribe,
    .unsubscribe = re_unsubscribe,
    .publish_cancel = re_publish_cancel,
    .on_cancel = re_on_cancel,
};

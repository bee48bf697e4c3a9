/*
 * redis.c — the limiter shared by every process on one Redis (distributed mode; limiter.h).
 *
 * DESIGN
 * - Slots of key K are the sorted set genpulse:limit:K:slots: member = the holder's token,
 *   score = when the slot expires, in Redis TIME milliseconds. One script drops expired
 *   members and adds ours only if fewer than max remain, so checking and taking are one
 *   atomic step for every process; release is ZREM of our token. Expiry uses the server's
 *   clock only, so hosts with skewed clocks still agree on when a slot ran out.
 * - The rate of K is GCRA on genpulse:limit:K:rate, which stores the theoretical arrival time
 *   (µs, Redis TIME) and expires once it is in the past (a missing key means "idle", the same
 *   as a TAT in the past). The script answers 0 (go) or the milliseconds to wait.
 * - Waiting is done here, not in Redis: sleep min(wait, 50 ms), look at cancel() and the
 *   deadline, ask again. A slot wait cannot know when another process releases, so it polls
 *   every 50 ms; each poll is one EVALSHA of a few microseconds on the server.
 * - Calls are one short EVALSHA each, so a small pool of idle connections serves any number
 *   of threads (hiredis contexts are single-threaded: a connection is borrowed for one call).
 *   All have connect and I/O timeouts of 1 s. A failed call drops the idle connections
 *   (Redis probably restarted), and a failed connect makes calls fail at once for a growing
 *   back-off, so while Redis is down every call returns -GP_E_UNAVAILABLE quickly and the
 *   worker proceeds without the limit instead of stalling on it.
 * - A connection that was idle may have died with a Redis restart: a call that fails on one
 *   is retried once on a fresh connection. Retrying is safe: the slot script re-adds the same
 *   token (ZADD only moves its score), and at worst the rate script counts one extra request.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/limiter/limiter.h"
#include "infra/limiter/wait.h"
#include "infra/redis/conn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 1000
#define IO_TIMEOUT_MS 1000
#define MAX_IDLE 8
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000

/* Before Redis 5 a script that read TIME could not write unless it asked for effects
 * replication; from 5 on that is the default and the call is a no-op. */
#define EFFECTS "if redis.replicate_commands then redis.replicate_commands() end\n"

/* KEYS[1] slots; ARGV token, max, lifetime ms. 1 = taken, 0 = all max slots are held. */
static const char SLOT_LUA[] =
    EFFECTS "local t = redis.call('TIME')\n"
            "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
            "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end\n"
            "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])\n"
            "local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
            "redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)\n"
            "return 1\n";

/* KEYS[1] slots; ARGV token. */
static const char RELEASE_LUA[] = "return redis.call('ZREM', KEYS[1], ARGV[1])\n";

/* KEYS[1] rate; ARGV emission interval T µs, tolerance tau µs. 0 = go, else ms to wait.
 * '%.0f' because Lua would print a 16-digit TAT in exponent form and lose digits. */
static const char RATE_LUA[] =
    EFFECTS "local t = redis.call('TIME')\n"
            "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
            "local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0\n"
            "if tat < now then tat = now end\n"
            "local wait = tat - tonumber(ARGV[2]) - now\n"
            "if wait > 0 then return math.ceil(wait / 1000) end\n"
            "tat = tat + tonumber(ARGV[1])\n"
            "redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
            "           math.ceil((tat - now) / 1000) + 1000)\n"
            "return 0\n";

enum {
    S_SLOT,
    S_RELEASE,
    S_RATE,
    S__COUNT
};
static const char *const SCRIPTS[S__COUNT] = {SLOT_LUA, RELEASE_LUA, RATE_LUA};
static const char *const SCRIPT_NAMES[S__COUNT] = {"slot", "release", "rate"};

typedef struct conn {
    redisContext *c;
    char sha[S__COUNT][41];
    struct conn *next;
} conn_t;

typedef struct redis_limiter {
    gp_limiter_t base;
    gp_redis_url_t url;
    pthread_mutex_t lock; /* guards everything below */
    conn_t *idle;
    size_t n_idle;
    int64_t retry_at; /* mono ms: no connect attempt before this */
    int64_t backoff_ms;
    bool down; /* an outage was logged; the next good connect logs the recovery */
} redis_limiter_t;

extern const gp_limiter_vt_t gp_limiter_backend_redis;

static void conn_free(conn_t *c)
{
    while (c) {
        conn_t *next = c->next;
        redisFree(c->c);
        free(c);
        c = next;
    }
}

/* A new connection with every script loaded; NULL with err filled. */
static conn_t *conn_open(redis_limiter_t *l, char *err, size_t cap)
{
    redisContext *rc =
        gp_redis_connect(&l->url, CONNECT_TIMEOUT_MS, IO_TIMEOUT_MS, "genpulse-limiter", err, cap);
    if (!rc)
        return NULL;
    conn_t *c = gp_xcalloc(1, sizeof *c);
    c->c = rc;
    for (int i = 0; i < S__COUNT; i++) {
        redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", SCRIPTS[i]);
        bool ok = r && r->type == REDIS_REPLY_STRING;
        if (ok)
            snprintf(c->sha[i], sizeof c->sha[i], "%s", r->str);
        else
            snprintf(err, cap, "SCRIPT LOAD: %s",
                     r ? (r->str ? r->str : "unexpected reply") : rc->errstr);
        if (r)
            freeReplyObject(r);
        if (!ok) {
            conn_free(c);
            return NULL;
        }
    }
    return c;
}

/* An idle connection (*reused = true) or a new one; NULL while Redis is unreachable. */
static conn_t *borrow(redis_limiter_t *l, bool *reused)
{
    pthread_mutex_lock(&l->lock);
    conn_t *c = l->idle;
    if (c) {
        l->idle = c->next;
        l->n_idle--;
        c->next = NULL;
    }
    bool backing_off = !c && gp_mono_ms() < l->retry_at;
    pthread_mutex_unlock(&l->lock);
    *reused = c != NULL;
    if (c || backing_off)
        return c;

    char err[256] = "";
    c = conn_open(l, err, sizeof err);
    pthread_mutex_lock(&l->lock);
    bool report_down = !c && !l->down, report_up = c && l->down;
    if (c) {
        l->down = false;
        l->backoff_ms = 0;
        l->retry_at = 0;
    } else {
        l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (l->backoff_ms > BACKOFF_MAX_MS)
            l->backoff_ms = BACKOFF_MAX_MS;
        l->retry_at = gp_mono_ms() + l->backoff_ms;
        l->down = true;
    }
    pthread_mutex_unlock(&l->lock);
    if (report_down)
        GP_WARN("limiter: redis %s:%d unavailable (%s); limits are off until it is back",
                l->url.host, l->url.port, err);
    if (report_up)
        gp_log(GP_LOG_INFO, NULL, "limiter: redis %s:%d reachable again; limits are back",
               l->url.host, l->url.port);
    return c;
}

/* Returns a borrowed connection; after an I/O error it is closed along with the idle ones,
 * which the same outage most likely broke too. */
static void give_back(redis_limiter_t *l, conn_t *c)
{
    conn_t *drop = NULL;
    pthread_mutex_lock(&l->lock);
    if (c->c->err) {
        c->next = l->idle;
        drop = c;
        l->idle = NULL;
        l->n_idle = 0;
    } else if (l->n_idle < MAX_IDLE) {
        c->next = l->idle;
        l->idle = c;
        l->n_idle++;
    } else {
        drop = c;
    }
    pthread_mutex_unlock(&l->lock);
    conn_free(drop);
}

/* EVALSHA of script s with one key; EVAL when Redis lost its script cache (restart or
 * SCRIPT FLUSH), which also puts the script back for the next EVALSHA. NULL on I/O error. */
static redisReply *evalsha(conn_t *c, int s, const char *key, int nargs, const char **args)
{
    const char *argv[8] = {"EVALSHA", c->sha[s], "1", key};
    int argc = 4;
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    redisReply *r = redisCommandArgv(c->c, argc, argv, NULL);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = SCRIPTS[s];
        r = redisCommandArgv(c->c, argc, argv, NULL);
    }
    return r;
}

/* Runs script s and stores its integer answer in *out. 0 or -GP_E_UNAVAILABLE. */
static int run(redis_limiter_t *l, int s, const char *key, int nargs, const char **args,
               long long *out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused;
        conn_t *c = borrow(l, &reused);
        if (!c)
            return -GP_E_UNAVAILABLE;
        redisReply *r = evalsha(c, s, key, nargs, args);
        if (!r) {
            char why[128];
            snprintf(why, sizeof why, "%s", c->c->errstr);
            give_back(l, c);
            if (reused)
                continue;
            GP_WARN("limiter: redis %s script: %s", SCRIPT_NAMES[s], why);
            return -GP_E_UNAVAILABLE;
        }
        int rc = 0;
        if (r->type == REDIS_REPLY_INTEGER) {
            *out = r->integer;
        } else {
            GP_ERROR("limiter: redis %s script: %s", SCRIPT_NAMES[s],
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            rc = -GP_E_UNAVAILABLE;
        }
        freeReplyObject(r);
        give_back(l, c);
        return rc;
    }
    return -GP_E_UNAVAILABLE;
}

static int rl_open(gp_limiter_t **out, const char *url, const gp_settings_t *s, char *err,
                   size_t cap)
{
    (void)s;
    redis_limiter_t *l = gp_xcalloc(1, sizeof *l);
    if (gp_redis_url_parse(url, &l->url, err, cap) != 0) {
        free(l);
        return -GP_E_INTERNAL;
    }
    l->base.vt = &gp_limiter_backend_redis;
    pthread_mutex_init(&l->lock, NULL);
    /* Connect now so a wrong address shows in the log at start; an unreachable Redis is not
     * fatal here, since limits are allowed to lapse while it is down. */
    bool reused;
    conn_t *c = borrow(l, &reused);
    if (c)
        give_back(l, c);
    *out = &l->base;
    return 0;
}

static void rl_close(gp_limiter_t *base)
{
    redis_limiter_t *l = (redis_limiter_t *)base;
    conn_free(l->idle);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static void slots_key(const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "genpulse:limit:%s:slots", key);
}

static int rl_acquire_slot(gp_limiter_t *base, const char *key, int max, int64_t lifetime_ms,
                           int64_t deadline_ms, bool (*cancel)(void *), void *cancel_arg,
                           gp_limit_slot_t *slot)
{
    redis_limiter_t *l = (redis_limiter_t *)base;
    memset(slot, 0, sizeof *slot);
    if (max <= 0)
        return 0;
    snprintf(slot->key, sizeof slot->key, "%s", key);
    char rkey[sizeof slot->key + 32], smax[16], slife[24];
    slots_key(slot->key, rkey, sizeof rkey);
    char token[37];
    gp_uuid4(token);
    snprintf(smax, sizeof smax, "%d", max);
    snprintf(slife, sizeof slife, "%lld",
             (long long)(lifetime_ms > 0 ? lifetime_ms : GP_LIMIT_DEFAULT_LIFETIME_MS));
    const char *args[3] = {token, smax, slife};
    for (;;) {
        long long taken = 0;
        int rc = run(l, S_SLOT, rkey, 3, args, &taken);
        if (rc != 0)
            return rc;
        if (taken == 1) {
            snprintf(slot->token, sizeof slot->token, "%s", token);
            slot->held = true;
            return 0;
        }
        rc = gp_limit_check(deadline_ms, cancel, cancel_arg);
        if (rc != 0)
            return rc;
        gp_limit_sleep(gp_limit_slice(GP_LIMIT_SLICE_MS, deadline_ms));
    }
}

static void rl_release_slot(gp_limiter_t *base, gp_limit_slot_t *slot)
{
    if (!slot || !slot->held)
        return;
    slot->held = false;
    char rkey[sizeof slot->key + 32];
    slots_key(slot->key, rkey, sizeof rkey);
    const char *args[1] = {slot->token};
    long long removed;
    if (run((redis_limiter_t *)base, S_RELEASE, rkey, 1, args, &removed) != 0)
        GP_WARN("limiter: could not release a slot of \"%s\"; it frees itself when its "
                "lifetime ends",
                slot->key);
}

/* GCRA (see memory.c for the arithmetic); the script keeps the TAT, this loop waits. */
static int rl_take_token(gp_limiter_t *base, const char *key, int per_minute, int64_t deadline_ms,
                         bool (*cancel)(void *), void *cancel_arg)
{
    if (per_minute <= 0)
        return 0;
    char rkey[GP_LIMIT_KEY_MAX + 1 + 32];
    snprintf(rkey, sizeof rkey, "genpulse:limit:%.*s:rate", GP_LIMIT_KEY_MAX, key);
    long long t_us = 60000000LL / per_minute;
    if (t_us < 1)
        t_us = 1;
    long long burst = per_minute / 10 < 1 ? 1 : per_minute / 10;
    char st[24], stau[24];
    snprintf(st, sizeof st, "%lld", t_us);
    snprintf(stau, sizeof stau, "%lld", (burst - 1) * t_us);
    const char *args[2] = {st, stau};
    for (;;) {
        long long wait_ms = 0;
        int rc = run((redis_limiter_t *)base, S_RATE, rkey, 2, args, &wait_ms);
        if (rc != 0)
            return rc;
        if (wait_ms <= 0)
            return 0;
        rc = gp_limit_check(deadline_ms, cancel, cancel_arg);
        if (rc != 0)
            return rc;
        /* The TAT only moves forward: a wait that ends past the deadline cannot shrink. */
        if (gp_mono_ms() + wait_ms > deadline_ms)
            return -GP_E_TIMEOUT;
        gp_limit_sleep(gp_limit_slice(wait_ms, deadline_ms));
    }
}

const gp_limiter_vt_t gp_limiter_backend_redis = {
    .scheme = "redis",
    .open = rl_open,
    .close = rl_close,
    .acquire_slot = rl_acquire_slot,
    .release_slot = rl_release_slot,
    .take_token = rl_take_token,
};

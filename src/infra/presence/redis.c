/*
 * redis.c — presence shared by every process on one Redis (distributed mode; presence.h).
 *
 * DESIGN
 * - A worker is alive while its key genpulse:worker:<id> exists: each beat SETs it with
 *   PX = GP_PRESENCE_TTL_MS, so a killed worker vanishes by itself one TTL after its last
 *   beat. The same beat writes the description into the hash genpulse:workers (id -> JSON
 *   with last_beat), which outlives the key: a lost worker stays listed ("alive": false)
 *   until its last beat is GP_PRESENCE_LOST_KEEP_MS old, when list() prunes it.
 * - Times come from the Redis server's clock (TIME inside the scripts), so hosts with skewed
 *   clocks agree on who is alive; list() shifts last_beat onto this host's clock (by the
 *   difference between the two clocks at the call) so callers compare with gp_now_ms().
 * - FLUSHALL wipes both: live workers write them again on their next beat. Readers that
 *   declare workers dead must allow for that (presence.h, reconciler.c).
 * - Calls are rare (a beat every couple of seconds per process, list() from the reconciler,
 *   /ready, /metrics, /v1/workers), so one connection under a mutex serves them all. It has
 *   connect and I/O timeouts of 1 s; after a failure it is dropped, and calls fail fast with
 *   -GP_E_UNAVAILABLE for a growing back-off before the next connect.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/presence/presence.h"
#include "infra/redis/conn.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 1000
#define IO_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define KEY_PREFIX "genpulse:worker:"
#define HASH_KEY "genpulse:workers"

/* Before Redis 5 a script that read TIME could not write unless it asked for effects
 * replication; from 5 on that is the default and the call is a no-op. */
#define EFFECTS "if redis.replicate_commands then redis.replicate_commands() end\n"
#define NOW_MS                                                                                     \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* KEYS: the worker's key, the hash. ARGV: id, description (JSON object), TTL ms. */
static const char BEAT_LUA[] =
    EFFECTS NOW_MS "local w = cjson.decode(ARGV[2])\n"
                   "w.last_beat = now\n"
                   "local v = cjson.encode(w)\n"
                   "redis.call('SET', KEYS[1], v, 'PX', tonumber(ARGV[3]))\n"
                   "redis.call('HSET', KEYS[2], ARGV[1], v)\n"
                   "return now\n";

/* KEYS: the hash. ARGV: id, description (JSON object), its last beat and the caller's now
 * (both ms, the caller's clock: the beat's age is kept, on the server's clock). */
static const char REMEMBER_LUA[] =
    EFFECTS NOW_MS "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end\n"
                   "local w = cjson.decode(ARGV[2])\n"
                   "w.last_beat = now - (tonumber(ARGV[4]) - tonumber(ARGV[3]))\n"
                   "redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(w))\n"
                   "return 1\n";

/* KEYS: the worker's key, the hash. ARGV: id. */
static const char LEAVE_LUA[] = "redis.call('DEL', KEYS[1])\n"
                                "local v = redis.call('HGET', KEYS[2], ARGV[1])\n"
                                "if v then\n"
                                "  local ok, w = pcall(cjson.decode, v)\n"
                                "  if ok and type(w) == 'table' then\n"
                                "    w.busy = 0\n"
                                "    w.left = true\n"
                                "    redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(w))\n"
                                "  end\n"
                                "end\n"
                                "return 1\n";

/* KEYS: the hash. ARGV: key prefix, keep ms. Prunes entries older than keep; returns
 * {now, json1, exists1, json2, exists2, ...}. */
static const char LIST_LUA[] =
    EFFECTS NOW_MS "local all = redis.call('HGETALL', KEYS[1])\n"
                   "local out = {now}\n"
                   "for i = 1, #all, 2 do\n"
                   "  local ok, w = pcall(cjson.decode, all[i + 1])\n"
                   "  local lb = ok and type(w) == 'table' and tonumber(w.last_beat) or 0\n"
                   "  if now - lb > tonumber(ARGV[2]) then\n"
                   "    redis.call('HDEL', KEYS[1], all[i])\n"
                   "  else\n"
                   "    out[#out + 1] = all[i + 1]\n"
                   "    out[#out + 1] = redis.call('EXISTS', ARGV[1] .. all[i])\n"
                   "  end\n"
                   "end\n"
                   "return out\n";

typedef struct redis_presence {
    gp_presence_t base;
    gp_redis_url_t url;
    pthread_mutex_t lock; /* guards everything below */
    redisContext *c;
    int64_t retry_at; /* mono ms: no connect attempt before this */
    int64_t backoff_ms;
    bool down; /* an outage was logged; the next good connect logs the recovery */
} redis_presence_t;

extern const gp_presence_vt_t gp_presence_backend_redis;

static int rp_open(gp_presence_t **out, const char *url, const gp_settings_t *s, char *err,
                   size_t cap)
{
    (void)s;
    redis_presence_t *p = gp_xcalloc(1, sizeof *p);
    if (gp_redis_url_parse(url, &p->url, err, cap) != 0) {
        free(p);
        return -GP_E_INTERNAL;
    }
    p->base.vt = &gp_presence_backend_redis;
    pthread_mutex_init(&p->lock, NULL);
    *out = &p->base; /* connects on first use: a Redis down at start is an outage, not fatal */
    return 0;
}

static void rp_close(gp_presence_t *base)
{
    redis_presence_t *p = (redis_presence_t *)base;
    if (p->c)
        redisFree(p->c);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Runs a script on the connection (connecting first if needed). Called with p->lock held.
 * Returns the reply (not an error reply) or NULL after logging once per outage. */
static redisReply *eval_locked(redis_presence_t *p, const char *script, int nkeys,
                               const char *const *keys, int nargs, const char *const *args)
{
    char err[256] = "";
    if (!p->c) {
        if (gp_mono_ms() < p->retry_at)
            return NULL;
        p->c = gp_redis_connect(&p->url, CONNECT_TIMEOUT_MS, IO_TIMEOUT_MS, "genpulse-presence",
                                err, sizeof err);
    }
    redisReply *r = NULL;
    if (p->c) {
        const char *argv[12];
        char nk[8];
        snprintf(nk, sizeof nk, "%d", nkeys);
        int n = 0;
        argv[n++] = "EVAL";
        argv[n++] = script;
        argv[n++] = nk;
        for (int i = 0; i < nkeys; i++)
            argv[n++] = keys[i];
        for (int i = 0; i < nargs; i++)
            argv[n++] = args[i];
        r = redisCommandArgv(p->c, n, argv, NULL);
        if (!r || p->c->err) {
            snprintf(err, sizeof err, "%s", p->c->errstr[0] ? p->c->errstr : "connection lost");
            if (r)
                freeReplyObject(r);
            r = NULL;
            redisFree(p->c);
            p->c = NULL;
        } else if (r->type == REDIS_REPLY_ERROR) {
            gp_log(GP_LOG_ERROR, NULL, "presence: redis: %.*s", (int)r->len, r->str);
            freeReplyObject(r);
            return NULL; /* a server-side error: the connection itself is fine */
        }
    }
    if (!r) {
        p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (p->backoff_ms > BACKOFF_MAX_MS)
            p->backoff_ms = BACKOFF_MAX_MS;
        p->retry_at = gp_mono_ms() + p->backoff_ms;
        if (!p->down)
            gp_log(GP_LOG_WARN, NULL, "presence: redis %s:%d unavailable: %s", p->url.host,
                   p->url.port, err);
        p->down = true;
        return NULL;
    }
    if (p->down)
        gp_log(GP_LOG_INFO, NULL, "presence: redis %s:%d reachable again", p->url.host,
               p->url.port);
    p->down = false;
    p->backoff_ms = 0;
    return r;
}

static redisReply *eval(redis_presence_t *p, const char *script, int nkeys, const char *const *keys,
                        int nargs, const char *const *args)
{
    pthread_mutex_lock(&p->lock);
    redisReply *r = eval_locked(p, script, nkeys, keys, nargs, args);
    pthread_mutex_unlock(&p->lock);
    return r;
}

static json_t *describe(const gp_worker_info_t *w)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:s, s:I}", "id", w->id, "host", w->host,
                     "pid", w->pid, "version", w->version, "concurrency", w->concurrency, "busy",
                     w->busy, "queues", w->queues, "started_at", (json_int_t)w->started_at);
}

static int rp_beat(gp_presence_t *base, const gp_worker_info_t *self)
{
    redis_presence_t *p = (redis_presence_t *)base;
    json_t *d = describe(self);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!text)
        return -GP_E_INTERNAL; /* not UTF-8: gp_worker_id_make keeps ids and hosts ASCII */
    char key[sizeof KEY_PREFIX + GP_WORKER_ID_LEN], ttl[24];
    snprintf(key, sizeof key, KEY_PREFIX "%s", self->id);
    snprintf(ttl, sizeof ttl, "%d", GP_PRESENCE_TTL_MS);
    const char *keys[2] = {key, HASH_KEY};
    const char *args[3] = {self->id, text, ttl};
    redisReply *r = eval(p, BEAT_LUA, 2, keys, 3, args);
    free(text);
    if (!r)
        return -GP_E_UNAVAILABLE;
    freeReplyObject(r);
    return 0;
}

static int rp_leave(gp_presence_t *base, const char *id)
{
    redis_presence_t *p = (redis_presence_t *)base;
    char key[sizeof KEY_PREFIX + GP_WORKER_ID_LEN];
    snprintf(key, sizeof key, KEY_PREFIX "%s", id);
    const char *keys[2] = {key, HASH_KEY};
    const char *args[1] = {id};
    redisReply *r = eval(p, LEAVE_LUA, 2, keys, 1, args);
    if (!r)
        return -GP_E_UNAVAILABLE;
    freeReplyObject(r);
    return 0;
}

static int rp_remember(gp_presence_t *base, const gp_worker_info_t *w)
{
    redis_presence_t *p = (redis_presence_t *)base;
    json_t *d = describe(w);
    json_object_set_new(d, "busy", json_integer(0));
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!text)
        return -GP_E_INTERNAL;
    char last[24], now[24];
    snprintf(last, sizeof last, "%lld", (long long)w->last_beat);
    snprintf(now, sizeof now, "%lld", (long long)gp_now_ms());
    const char *keys[1] = {HASH_KEY};
    const char *args[4] = {w->id, text, last, now};
    redisReply *r = eval(p, REMEMBER_LUA, 1, keys, 4, args);
    free(text);
    if (!r)
        return -GP_E_UNAVAILABLE;
    freeReplyObject(r);
    return 0;
}

static void copy_str(json_t *o, const char *name, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, name));
    snprintf(out, cap, "%s", v ? v : "");
}

static int64_t get_int(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_integer(v) ? json_integer_value(v)
           : json_is_real(v)  ? (int64_t)json_real_value(v)
                              : 0;
}

/* One hash entry into w (clock shifted by offset ms); false if unreadable. */
static bool parse_entry(const redisReply *text, bool exists, int64_t now, int64_t offset,
                        gp_worker_info_t *w)
{
    if (text->type != REDIS_REPLY_STRING)
        return false;
    json_t *o = json_loadb(text->str, text->len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    memset(w, 0, sizeof *w);
    copy_str(o, "id", w->id, sizeof w->id);
    copy_str(o, "host", w->host, sizeof w->host);
    copy_str(o, "version", w->version, sizeof w->version);
    copy_str(o, "queues", w->queues, sizeof w->queues);
    w->pid = (int)get_int(o, "pid");
    w->concurrency = (int)get_int(o, "concurrency");
    w->busy = (int)get_int(o, "busy");
    w->started_at = get_int(o, "started_at");
    int64_t last = get_int(o, "last_beat");
    w->alive = exists && now - last <= GP_PRESENCE_TTL_MS;
    w->last_beat = last + offset;
    json_decref(o);
    return w->id[0] != '\0';
}

static int by_newest_beat(const void *a, const void *b)
{
    const gp_worker_info_t *x = a, *y = b;
    return (x->last_beat < y->last_beat) - (x->last_beat > y->last_beat);
}

static int rp_list(gp_presence_t *base, gp_worker_info_t **out, size_t *n)
{
    redis_presence_t *p = (redis_presence_t *)base;
    char keep[24];
    snprintf(keep, sizeof keep, "%lld", (long long)GP_PRESENCE_LOST_KEEP_MS);
    const char *keys[1] = {HASH_KEY};
    const char *args[2] = {KEY_PREFIX, keep};
    redisReply *r = eval(p, LIST_LUA, 1, keys, 2, args);
    if (!r)
        return -GP_E_UNAVAILABLE;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return -GP_E_UNAVAILABLE;
    }
    int64_t now = r->element[0]->integer, offset = gp_now_ms() - now;
    size_t max = (r->elements - 1) / 2;
    gp_worker_info_t *list = gp_xcalloc(max ? max : 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < max; i++) {
        const redisReply *text = r->element[1 + 2 * i], *ex = r->element[2 + 2 * i];
        bool exists = ex->type == REDIS_REPLY_INTEGER && ex->integer > 0;
        if (parse_entry(text, exists, now, offset, &list[k]))
            k++;
    }
    freeReplyObject(r);
    qsort(list, k, sizeof *list, by_newest_beat);
    *out = list;
    *n = k;
    return 0;
}

const gp_presence_vt_t gp_presence_backend_redis = {
    .scheme = "redis",
    .open = rp_open,
    .close = rp_close,
    .beat = rp_beat,
    .leave = rp_leave,
    .list = rp_list,
    .remember = rp_remember,
};

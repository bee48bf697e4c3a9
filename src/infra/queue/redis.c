/*
 * redis.c — the dispatch queue on Redis (distributed mode), in Celery protocol v2 on kombu's
 * Redis layout, so Celery's own tools (Flower, `celery inspect`, a Python worker's
 * restore_visible) can read it. URL: redis://[[user]:password@]host[:port][/db].
 *
 * Owns: the queue "celery" (its four priority lists and its delayed set), the wake list,
 * and this queue's entries in kombu's shared `unacked` / `unacked_index`. Nothing else.
 *
 * Key layout (sep = "\x06\x16", kombu's Channel.sep; queues.md §1.2–1.4):
 *   genpulse                LIST  kombu priority 0–2 (our 7–9)  ┐ LPUSH by producers, taken
 *   genpulse\x06\x163       LIST  kombu priority 3–5 (our 4–6)  │ from the right (RPOP), so
 *   genpulse\x06\x166       LIST  kombu priority 6–8 (our 1–3)  │ FIFO within a list; lists
 *   genpulse\x06\x169       LIST  kombu priority 9   (our 0)    ┘ are tried in this order
 *   genpulse.delayed        ZSET  score ready_at ms, member = the message (not yet due)
 *   genpulse.wake           LIST  one token per push: what idle GenPulse workers block on
 *   unacked                 HASH  delivery_tag -> [message, exchange, routing_key] (JSON)
 *   unacked_index           ZSET  delivery_tag, score = lease start, unix seconds (float)
 * Kombu numbers priorities 0 = first (Redis emulation, §1.3); ours are 0–9 with 9 first, so
 * properties.priority = 9 - ours, and four buckets as kombu's PRIORITY_STEPS [0, 3, 6, 9]:
 * priorities within one bucket (e.g. 8 and 9) are served FIFO, not by priority.
 *
 * Loss window. kombu pops with BRPOP and records the delivery in `unacked` in a second round
 * trip, so a consumer killed (or a connection reset) in between loses the message (§1.5.1).
 * Here the pop and the unacked record are one Lua script (POP_LUA): Redis runs it atomically,
 * so at every instant the message is in a list, in the delayed set, or in `unacked`. Lua
 * cannot block, so idle workers block on a separate wake list instead (BLPOP genpulse.wake):
 * every push adds a token in the same script as the message, and a worker that wakes runs
 * POP_LUA again. Losing a token loses nothing (the worst case is a worker that sleeps until
 * its BLPOP times out, at most POP_BLOCK_MAX_MS), and POP_LUA deletes the tokens whenever it
 * finds the queue empty, so they do not pile up. Messages LPUSHed by Python producers bring no
 * token: a process that pops starts a watcher (infra/celery/kombu_wake.c) that hears of any
 * write to the four lists through Redis client tracking and pushes the tokens for them; where
 * the server refuses tracking they are picked up when the BLPOP times out.
 * What remains: the reply carrying a popped message can be lost (the worker dies or the
 * connection drops after Redis ran the script). The message is then in `unacked` with a lease
 * nobody renews, and gp_redis_queue_restore_expired() (the core's reconciler) puts it back
 * after the lease; the claim compare-and-set in the store makes any duplicate harmless.
 * Redis itself losing data (FLUSHALL, restart without AOF) is covered by the store being the
 * truth: the reconciler re-dispatches committed, unfinished tasks.
 *
 * Connections: hiredis 0.14 contexts are not thread-safe, so each call borrows one from a
 * mutex-guarded pool (idle list) and returns it; a blocked pop holds one. Connect, command
 * and BLPOP all have timeouts. On an I/O error the context is dropped (with the idle ones: a
 * restarted Redis killed them all); the next call reconnects, and failed connects back off
 * (100 ms doubling to 5 s) with -GP_E_UNAVAILABLE returned meanwhile. shutdown() also shuts
 * the sockets of pops blocked in BLPOP, so they wake at once. Host names are resolved with a
 * blocking getaddrinfo inside hiredis 0.14: give an IP address to keep the bounds strict.
 * hiredis writes with write(2): the process must ignore SIGPIPE (main.c does).
 * Needs Redis >= 6.0 (fractional BLPOP timeouts). hiredis 0.14 has no TLS: rediss:// fails.
 */
#include "infra/queue/redis_queue.h"
#include "infra/celery/kombu_wake.h"
#include "infra/celery/monitor.h"
#include "infra/celery/wire.h"
#include "infra/redis/conn.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Celery's default queue, so a plain send_task() from Python reaches GenPulse workers. */
#define QUEUE_NAME "celery"
#define TASK_NAME "genpulse.run"
#define CONNECT_TIMEOUT_MS 1000
#define IO_TIMEOUT_MS 3000    /* any command, including a BLPOP of at most POP_BLOCK_MAX_MS */
#define POP_BLOCK_MAX_MS 1000 /* shutdown and Python-pushed messages are seen within this */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_IDLE_CONNS 16
#define WAKE_TOKENS_MAX 4096
#define PROMOTE_BATCH 100
#define RESTORE_BATCH 200

enum {
    K_L0,
    K_L3,
    K_L6,
    K_L9,
    K_DELAYED,
    K_UNACKED,
    K_INDEX,
    K_WAKE,
    K__COUNT
};

/* ---- Lua scripts (loaded per connection with SCRIPT LOAD, run with EVALSHA) ------------ */

/* KEYS: 4 lists in consume order, delayed, unacked, unacked_index, wake.
 * ARGV: now ms, now s (lease score), default exchange, default routing key, promote limit.
 * Moves due delayed messages to their lists, then takes the first message of the first
 * non-empty list and records it in unacked/unacked_index — all in one atomic step.
 * Returns {1, message, delivery_tag} or {0, next delayed ready_at ms or -1}. */
static const char POP_LUA[] =
    "local function props(msg)\n"
    "  local ok, m = pcall(cjson.decode, msg)\n"
    "  if ok and type(m) == 'table' and type(m.properties) == 'table' then\n"
    "    return m.properties\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[1], 'LIMIT', 0,\n"
    "                       tonumber(ARGV[5]))\n"
    "for _, msg in ipairs(due) do\n"
    "  local p = props(msg)\n"
    "  local pri = p and tonumber(p.priority) or 0\n"
    "  local k = 4\n"
    "  if pri < 3 then k = 1 elseif pri < 6 then k = 2 elseif pri < 9 then k = 3 end\n"
    "  redis.call('LPUSH', KEYS[k], msg)\n"
    "  redis.call('ZREM', KEYS[5], msg)\n"
    "  redis.call('LPUSH', KEYS[8], '1')\n"
    "end\n"
    "for i = 1, 4 do\n"
    "  local msg = redis.call('RPOP', KEYS[i])\n"
    "  if msg then\n"
    "    local tag, ex, rk = nil, ARGV[3], ARGV[4]\n"
    "    local p = props(msg)\n"
    "    if p then\n"
    "      if type(p.delivery_tag) == 'string' then tag = p.delivery_tag end\n"
    "      local di = p.delivery_info\n"
    "      if type(di) == 'table' then\n"
    "        if type(di.exchange) == 'string' then ex = di.exchange end\n"
    "        if type(di.routing_key) == 'string' then rk = di.routing_key end\n"
    "      end\n"
    "    end\n"
    "    if not tag then tag = 'gp-' .. redis.sha1hex(msg) end\n"
    "    redis.call('HSET', KEYS[6], tag,\n"
    "               '[' .. msg .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']')\n"
    "    redis.call('ZADD', KEYS[7], ARGV[2], tag)\n"
    "    return {1, msg, tag}\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[8])\n"
    "local nxt = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')\n"
    "if nxt[2] then return {0, tonumber(nxt[2])} end\n"
    "return {0, -1}\n";

/* KEYS: list, delayed, wake. ARGV: message, ready_at ms (0 = now), wake cap, front (1 = a
 * redelivery: RPUSH to the consuming end, as kombu's restore does, so it runs next). */
static const char PUSH_LUA[] = "if tonumber(ARGV[2]) > 0 then\n"
                               "  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
                               "elseif ARGV[4] == '1' then\n"
                               "  redis.call('RPUSH', KEYS[1], ARGV[1])\n"
                               "else\n"
                               "  redis.call('LPUSH', KEYS[1], ARGV[1])\n"
                               "end\n"
                               "redis.call('LPUSH', KEYS[3], '1')\n"
                               "redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)\n"
                               "return 1\n";

/* KEYS: unacked, unacked_index. ARGV: delivery tag. */
static const char ACK_LUA[] = "redis.call('HDEL', KEYS[1], ARGV[1])\n"
                              "return redis.call('ZREM', KEYS[2], ARGV[1])\n";

/* KEYS: unacked_index. ARGV: now s, delivery tag. 1 = renewed, 0 = no longer held. */
static const char RENEW_LUA[] = "if redis.call('ZSCORE', KEYS[1], ARGV[2]) then\n"
                                "  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])\n"
                                "  return 1\n"
                                "end\n"
                                "return 0\n";

/* KEYS: unacked, unacked_index, list, wake. ARGV: tag, mode, cutoff s, old value, new message.
 * Re-checks under atomicity that the lease is still expired and the entry unchanged (a renew
 * or ack in between wins). mode "missing": index entry without hash entry, drop it.
 * Returns 1 restored, 2 dropped, 0 nothing done. */
static const char RESTORE_LUA[] = "local s = redis.call('ZSCORE', KEYS[2], ARGV[1])\n"
                                  "if not s or tonumber(s) > tonumber(ARGV[3]) then return 0 end\n"
                                  "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
                                  "if ARGV[2] == 'missing' then\n"
                                  "  if cur then return 0 end\n"
                                  "  redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                  "  return 2\n"
                                  "end\n"
                                  "if cur ~= ARGV[4] then return 0 end\n"
                                  "redis.call('RPUSH', KEYS[3], ARGV[5])\n"
                                  "redis.call('HDEL', KEYS[1], ARGV[1])\n"
                                  "redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                  "redis.call('LPUSH', KEYS[4], '1')\n"
                                  "return 1\n";

enum {
    S_POP,
    S_PUSH,
    S_ACK,
    S_RENEW,
    S_RESTORE,
    S__COUNT
};
static const char *const SCRIPTS[S__COUNT] = {POP_LUA, PUSH_LUA, ACK_LUA, RENEW_LUA, RESTORE_LUA};

/* ---- state -------------------------------------------------------------------------------- */

typedef struct conn {
    redisContext *c;
    struct conn *prev, *next; /* idle list (next only) or busy list */
    bool blocking;            /* in BLPOP: shutdown() may shut its socket (under q->lock) */
    char sha[S__COUNT][41];
} conn_t;

typedef struct redis_queue {
    gp_queue_t base;
    gp_redis_url_t url;
    char origin[128];
    const char *keys[K__COUNT];
    size_t key_len[K__COUNT];

    pthread_mutex_t lock;
    pthread_cond_t cond; /* naps while Redis is unavailable; broadcast by shutdown() */
    conn_t *idle;
    size_t n_idle;
    conn_t *busy;
    bool shut;
    gp_kombu_wake_t *wake; /* started by the first pop: only processes that pop need it */
    /* Celery events and remote control while a worker pool is attached (monitor_lock: a
     * task event may race with the detach). */
    pthread_mutex_t monitor_lock;
    gp_celery_monitor_t *monitor;
    bool down;        /* logged as unreachable; the next successful connect logs recovery */
    int64_t retry_at; /* mono ms: no connect attempt before */
    int64_t backoff_ms;
} redis_queue_t;

extern const gp_queue_vt_t gp_queue_backend_redis;

static const char *const KEY_NAMES[K__COUNT] = {
    QUEUE_NAME,
    QUEUE_NAME GP_CELERY_SEP "3",
    QUEUE_NAME GP_CELERY_SEP "6",
    QUEUE_NAME GP_CELERY_SEP "9",
    QUEUE_NAME ".delayed",
    "unacked",
    "unacked_index",
    QUEUE_NAME ".wake",
};

/* ---- small helpers ------------------------------------------------------------------------ */

static void seconds_str(int64_t ms, char *buf, size_t cap)
{
    snprintf(buf, cap, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}

/* List index (K_L0..K_L9) for a kombu priority (0 = first). */
static int list_for_kombu_priority(int kp)
{
    return K_L0 + gp_celery_priority_step(kp) / 3;
}

static void nap(redis_queue_t *q, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = gp_deadline_in(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&q->lock);
    while (!q->shut) {
        if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&q->lock);
}

static bool is_shut(redis_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    bool s = q->shut;
    pthread_mutex_unlock(&q->lock);
    return s;
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_free(conn_t *c)
{
    if (!c)
        return;
    if (c->c)
        redisFree(c->c);
    free(c);
}

/* One command on a fresh context; false (with err filled) on any failure. */
static bool setup_command(redisContext *rc, int argc, const char **argv, char *out, size_t out_cap,
                          char *err, size_t cap)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    if (!r) {
        snprintf(err, cap, "%s", rc->errstr[0] ? rc->errstr : "I/O error");
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, cap, "%s: %.*s", argv[0], (int)r->len, r->str);
    else if (out && r->type == REDIS_REPLY_STRING)
        snprintf(out, out_cap, "%.*s", (int)r->len, r->str);
    freeReplyObject(r);
    return ok;
}

static conn_t *conn_open(redis_queue_t *q, char *err, size_t cap)
{
    redisContext *rc =
        gp_redis_connect(&q->url, CONNECT_TIMEOUT_MS, IO_TIMEOUT_MS, "genpulse-queue", err, cap);
    if (!rc)
        return NULL;
    conn_t *c = gp_xcalloc(1, sizeof *c);
    c->c = rc;
    for (int i = 0; i < S__COUNT; i++) {
        const char *a[3] = {"SCRIPT", "LOAD", SCRIPTS[i]};
        if (!setup_command(rc, 3, a, c->sha[i], sizeof c->sha[i], err, cap))
            goto fail;
    }
    return c;
fail:
    conn_free(c);
    return NULL;
}

/* Borrows a connection: an idle one, or a new one unless connects are backing off.
 * 0 or -GP_E_UNAVAILABLE. */
static int acquire(redis_queue_t *q, conn_t **out)
{
    pthread_mutex_lock(&q->lock);
    conn_t *c = q->idle;
    if (c) {
        q->idle = c->next;
        q->n_idle--;
    } else if (gp_mono_ms() < q->retry_at) {
        pthread_mutex_unlock(&q->lock);
        return -GP_E_UNAVAILABLE;
    }
    pthread_mutex_unlock(&q->lock);
    if (!c) {
        char err[256] = "";
        c = conn_open(q, err, sizeof err);
        pthread_mutex_lock(&q->lock);
        if (!c) {
            q->backoff_ms = q->backoff_ms ? q->backoff_ms * 2 : BACKOFF_MIN_MS;
            if (q->backoff_ms > BACKOFF_MAX_MS)
                q->backoff_ms = BACKOFF_MAX_MS;
            q->retry_at = gp_mono_ms() + q->backoff_ms;
            bool log = !q->down;
            q->down = true;
            pthread_mutex_unlock(&q->lock);
            if (log)
                gp_log(GP_LOG_WARN, NULL,
                       "redis queue %s:%d unavailable: %s; retrying with backoff", q->url.host,
                       q->url.port, err);
            return -GP_E_UNAVAILABLE;
        }
        bool was_down = q->down;
        q->down = false;
        q->backoff_ms = 0;
        q->retry_at = 0;
        pthread_mutex_unlock(&q->lock);
        if (was_down)
            gp_log(GP_LOG_INFO, NULL, "redis queue %s:%d reconnected", q->url.host, q->url.port);
        pthread_mutex_lock(&q->lock);
    } else {
        pthread_mutex_lock(&q->lock);
    }
    c->prev = NULL;
    c->next = q->busy;
    if (q->busy)
        q->busy->prev = c;
    q->busy = c;
    c->blocking = false;
    pthread_mutex_unlock(&q->lock);
    *out = c;
    return 0;
}

/* Returns a borrowed connection. A broken one is freed, and so are the idle ones: an I/O
 * error usually means Redis restarted or went away, which killed them too. The next call
 * reconnects; connect failures then back off (acquire). */
static void release(redis_queue_t *q, conn_t *c)
{
    if (!c)
        return;
    bool broken = c->c->err != 0, report = false;
    conn_t *drop = NULL;
    char why[128] = "";
    pthread_mutex_lock(&q->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        q->busy = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (broken) {
        drop = q->idle; /* an I/O error usually means every connection is gone */
        q->idle = NULL;
        q->n_idle = 0;
        c->next = drop;
        drop = c;
        report = !q->down && !q->shut; /* once per outage; shutdown's own wake-ups are quiet */
        q->down = q->down || report;
        snprintf(why, sizeof why, "%s", c->c->errstr);
    } else if (q->n_idle < MAX_IDLE_CONNS) {
        c->next = q->idle;
        q->idle = c;
        q->n_idle++;
    } else {
        drop = c;
    }
    pthread_mutex_unlock(&q->lock);
    if (report)
        gp_log(GP_LOG_WARN, NULL, "redis queue %s:%d connection lost: %s", q->url.host, q->url.port,
               why);
    while (drop) {
        conn_t *n = drop->next;
        conn_free(drop);
        drop = n;
    }
}

/* Runs script `s` (EVALSHA, or EVAL when the server lost its script cache). Returns the
 * reply — possibly an error reply — or NULL after an I/O error (c->c->err set). */
static redisReply *run_script(conn_t *c, int s, int nkeys, const char *const *keys,
                              const size_t *key_len, int nargs, const char *const *args,
                              const size_t *arg_len)
{
    const char *argv[32];
    size_t lens[32];
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    int n = 0;
    argv[n] = "EVALSHA", lens[n++] = 7;
    argv[n] = c->sha[s], lens[n++] = strlen(c->sha[s]);
    argv[n] = nk, lens[n++] = strlen(nk);
    for (int i = 0; i < nkeys; i++)
        argv[n] = keys[i], lens[n++] = key_len[i];
    for (int i = 0; i < nargs; i++)
        argv[n] = args[i], lens[n++] = arg_len ? arg_len[i] : strlen(args[i]);
    redisReply *r = redisCommandArgv(c->c, n, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        argv[0] = "EVAL", lens[0] = 4;
        argv[1] = SCRIPTS[s], lens[1] = strlen(SCRIPTS[s]);
        r = redisCommandArgv(c->c, n, argv, lens);
    }
    return r;
}

/* Maps a script reply to 0 or -GP_E_UNAVAILABLE (I/O or a server-side error). */
static int reply_status(redisReply *r, const char *what)
{
    if (!r)
        return -GP_E_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR) {
        gp_log(GP_LOG_ERROR, NULL, "redis queue %s: %.*s", what, (int)r->len, r->str);
        return -GP_E_UNAVAILABLE;
    }
    return 0;
}

/* ---- open / close ------------------------------------------------------------------------- */

static void rq_close(gp_queue_t *base);
static void rq_detach_worker(gp_queue_t *base);

static int rq_open(gp_queue_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap)
{
    (void)s;
    redis_queue_t *q = gp_xcalloc(1, sizeof *q);
    q->base.vt = &gp_queue_backend_redis;
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->monitor_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    for (int i = 0; i < K__COUNT; i++) {
        q->keys[i] = KEY_NAMES[i];
        q->key_len[i] = strlen(KEY_NAMES[i]);
    }
    char hn[64] = "localhost";
    gethostname(hn, sizeof hn - 1);
    hn[sizeof hn - 1] = '\0';
    snprintf(q->origin, sizeof q->origin, "genpulse-%d@%s", (int)getpid(), hn);
    int rc = gp_redis_url_parse(url ? url : "", &q->url, err, cap) == 0 ? 0 : -GP_E_VALIDATION;
    if (rc != 0) {
        rq_close(&q->base);
        return rc;
    }
    /* Try once now so a wrong address shows in the log at start; not fatal: workers and
     * gateways start before Redis and catch up with backoff. */
    conn_t *c;
    if (acquire(q, &c) == 0)
        release(q, c);
    *out = &q->base;
    return 0;
}

static void rq_close(gp_queue_t *base)
{
    redis_queue_t *q = (redis_queue_t *)base;
    gp_kombu_wake_stop(q->wake);
    rq_detach_worker(base);
    while (q->idle) {
        conn_t *n = q->idle->next;
        conn_free(q->idle);
        q->idle = n;
    }
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->monitor_lock);
    pthread_cond_destroy(&q->cond);
    free(q);
}

/* ---- messages ----------------------------------------------------------------------------- */

/* A Celery protocol v2 message for the item (queues.md §1.1, written by infra/celery/wire.c).
 * Returns its JSON; *list_key is the kombu list it belongs to. */
static char *build_message(redis_queue_t *q, const gp_queue_item_t *it, bool delayed, int *list_key)
{
    int kp = gp_celery_kombu_priority(it->priority);
    *list_key = list_for_kombu_priority(kp);
    char tag[37], eta[48];
    gp_uuid4(tag);
    if (delayed)
        gp_celery_format_eta(it->ready_at, eta, sizeof eta);
    /* kwargsrepr is Python's repr of the kwargs dict; ids are [0-9a-z-] so no escaping. */
    char kwrepr[80];
    snprintf(kwrepr, sizeof kwrepr, "{'task_id': '%s'}", it->id);
    json_t *kwargs = json_pack("{s:s}", "task_id", it->id);
    /* Ours (consumers ignore headers they do not know): keeps the within-priority age, and
     * marks a task re-dispatched by the reconciler after its holder vanished. */
    json_t *extra = json_pack("{s:I}", "genpulse_enqueued_at", (json_int_t)it->enqueued_at);
    if (it->owner[0]) /* the task's user: workers apply its plan's running limit */
        json_object_set_new(extra, "genpulse_owner", json_string(it->owner));
    if (extra && it->redelivered)
        json_object_set_new(extra, "redelivered", json_true());
    gp_celery_task_t t = {.task = TASK_NAME,
                          .id = it->id,
                          .kwargs = kwargs,
                          .kwargsrepr = kwrepr,
                          .kombu_priority = kp,
                          .eta = delayed ? eta : NULL,
                          .origin = q->origin,
                          .delivery_tag = tag,
                          .routing_key = QUEUE_NAME,
                          .extra_headers = extra};
    char *out = kwargs && extra ? gp_celery_encode_task(&t) : NULL;
    json_decref(kwargs);
    json_decref(extra);
    if (!out)
        abort(); /* OOM on a message of a few hundred bytes */
    return out;
}

/* Fills out (all but delivery_tag) from a message; false (the reason in err) when it is not
 * one we can run. A Celery-sent task (its name is a task type, not ours) carries its params
 * as kwargs. */
static bool parse_message(const char *msg, size_t len, gp_queue_item_t *out, char *err, size_t cap)
{
    gp_celery_decoded_t d;
    if (gp_celery_decode_task(msg, len, &d, err, cap) != 0)
        return false;
    bool foreign = d.task && strcmp(d.task, TASK_NAME) != 0;
    json_t *kwargs = foreign ? gp_celery_decode_kwargs(&d, err, cap) : NULL;
    char *params = kwargs ? json_dumps(kwargs, JSON_COMPACT) : NULL;
    json_decref(kwargs);
    bool ok = false;
    if (strlen(d.id) >= sizeof out->id)
        snprintf(err, cap, "headers.id longer than %zu bytes", sizeof out->id - 1);
    else if (foreign && strlen(d.task) >= sizeof out->task_type)
        snprintf(err, cap, "task name longer than %zu bytes", sizeof out->task_type - 1);
    else if (foreign && kwargs && !params)
        snprintf(err, cap, "out of memory");
    else
        ok = !foreign || params;
    if (ok) {
        memset(out, 0, sizeof *out);
        memcpy(out->id, d.id, strlen(d.id) + 1);
        out->priority = gp_celery_genpulse_priority(d.kombu_priority);
        json_t *enq = json_object_get(d.headers, "genpulse_enqueued_at");
        out->enqueued_at = json_is_integer(enq) ? json_integer_value(enq) : 0;
        const char *owner = json_string_value(json_object_get(d.headers, "genpulse_owner"));
        if (owner && strlen(owner) < sizeof out->owner)
            memcpy(out->owner, owner, strlen(owner) + 1);
        /* Put back after its lease expired: the claim may take over the task. */
        out->redelivered = json_is_true(json_object_get(d.headers, "redelivered"));
        if (foreign) {
            memcpy(out->task_type, d.task, strlen(d.task) + 1);
            out->foreign_params = params;
            params = NULL;
        }
    }
    free(params);
    gp_celery_decoded_clear(&d);
    return ok;
}

/* ---- the vtable --------------------------------------------------------------------------- */

static int rq_push(gp_queue_t *base, const gp_queue_item_t *item)
{
    redis_queue_t *q = (redis_queue_t *)base;
    conn_t *c;
    int rc = acquire(q, &c);
    if (rc != 0)
        return rc;
    bool delayed = item->ready_at > gp_now_ms();
    int lk;
    char *msg = build_message(q, item, delayed, &lk);
    char ready[24], cap[16];
    snprintf(ready, sizeof ready, "%lld", delayed ? (long long)item->ready_at : 0LL);
    snprintf(cap, sizeof cap, "%d", WAKE_TOKENS_MAX);
    const char *keys[3] = {q->keys[lk], q->keys[K_DELAYED], q->keys[K_WAKE]};
    size_t klen[3] = {q->key_len[lk], q->key_len[K_DELAYED], q->key_len[K_WAKE]};
    const char *args[4] = {msg, ready, cap, item->redelivered ? "1" : "0"};
    redisReply *r = run_script(c, S_PUSH, 3, keys, klen, 4, args, NULL);
    rc = reply_status(r, "push");
    if (r)
        freeReplyObject(r);
    free(msg);
    release(q, c);
    return rc;
}

static int ack_tag(redis_queue_t *q, conn_t *c, const char *tag, size_t len)
{
    const char *keys[2] = {q->keys[K_UNACKED], q->keys[K_INDEX]};
    size_t klen[2] = {q->key_len[K_UNACKED], q->key_len[K_INDEX]};
    const char *args[1] = {tag};
    size_t alen[1] = {len};
    redisReply *r = run_script(c, S_ACK, 2, keys, klen, 1, args, alen);
    int rc = reply_status(r, "ack");
    if (r)
        freeReplyObject(r);
    return rc;
}

/* One atomic pop attempt. 0 = got one (out filled), 1 = nothing ready (*next_due = the next
 * delayed ready_at ms, or -1), <0 = error. */
static int pop_once(redis_queue_t *q, conn_t *c, gp_queue_item_t *out, int64_t *next_due)
{
    for (;;) {
        int64_t now = gp_now_ms();
        char now_ms[24], now_s[32], limit[16];
        snprintf(now_ms, sizeof now_ms, "%lld", (long long)now);
        seconds_str(now, now_s, sizeof now_s);
        snprintf(limit, sizeof limit, "%d", PROMOTE_BATCH);
        const char *args[5] = {now_ms, now_s, "", QUEUE_NAME, limit};
        redisReply *r = run_script(c, S_POP, K__COUNT, q->keys, q->key_len, 5, args, NULL);
        int rc = reply_status(r, "pop");
        if (rc != 0) {
            if (r)
                freeReplyObject(r);
            return rc;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            gp_log(GP_LOG_ERROR, NULL, "redis queue pop: unexpected reply");
            return -GP_E_UNAVAILABLE;
        }
        if (r->element[0]->integer == 0) {
            *next_due = r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : -1;
            freeReplyObject(r);
            return 1;
        }
        if (r->elements < 3 || r->element[1]->type != REDIS_REPLY_STRING ||
            r->element[2]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            gp_log(GP_LOG_ERROR, NULL, "redis queue pop: unexpected reply");
            return -GP_E_UNAVAILABLE;
        }
        redisReply *m = r->element[1], *t = r->element[2];
        char why[160] = "delivery tag too long";
        if (t->len < sizeof out->delivery_tag &&
            parse_message(m->str, m->len, out, why, sizeof why)) {
            memcpy(out->delivery_tag, t->str, t->len);
            out->delivery_tag[t->len] = '\0';
            freeReplyObject(r);
            return 0;
        }
        /* Not a message we can run (no usable headers.id): drop it rather than let it come
         * back forever. Tasks live in the store; a lost queue entry is re-dispatched. */
        gp_log(GP_LOG_ERROR, NULL, "redis queue: dropping a malformed message (%s): %.200s", why,
               m->str);
        rc = ack_tag(q, c, t->str, t->len);
        freeReplyObject(r);
        if (rc != 0)
            return rc;
    }
}

/* Blocks on the wake list for up to ms (shutdown() may cut it short). 0 or <0 on error. */
static int block_wait(redis_queue_t *q, conn_t *c, int64_t ms)
{
    pthread_mutex_lock(&q->lock);
    if (q->shut) {
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    c->blocking = true;
    pthread_mutex_unlock(&q->lock);
    char secs[24];
    seconds_str(ms < 1 ? 1 : ms, secs, sizeof secs);
    const char *argv[3] = {"BLPOP", q->keys[K_WAKE], secs};
    redisReply *r = redisCommandArgv(c->c, 3, argv, NULL);
    pthread_mutex_lock(&q->lock);
    c->blocking = false;
    pthread_mutex_unlock(&q->lock);
    int rc = reply_status(r, "wait");
    if (r)
        freeReplyObject(r);
    return rc;
}

static int rq_pop(gp_queue_t *base, gp_queue_item_t *out, int timeout_ms)
{
    redis_queue_t *q = (redis_queue_t *)base;
    int64_t deadline = gp_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    conn_t *c = NULL;
    int rc;
    pthread_mutex_lock(&q->lock);
    if (!q->wake && !q->shut)
        q->wake = gp_kombu_wake_start(&q->url, q->keys, 4, q->keys[K_WAKE], WAKE_TOKENS_MAX);
    pthread_mutex_unlock(&q->lock);
    for (;;) {
        if (is_shut(q)) {
            rc = -GP_E_SHUTTING_DOWN;
            break;
        }
        if (!c && acquire(q, &c) != 0) {
            /* Wait for the next connect attempt (or the deadline) so the caller's loop does
             * not spin while Redis is down. */
            pthread_mutex_lock(&q->lock);
            int64_t wait = q->retry_at - gp_mono_ms();
            pthread_mutex_unlock(&q->lock);
            int64_t left = deadline - gp_mono_ms();
            nap(q, wait < left ? wait : left);
            rc = is_shut(q) ? -GP_E_SHUTTING_DOWN : -GP_E_UNAVAILABLE;
            break;
        }
        int64_t next_due = -1;
        rc = pop_once(q, c, out, &next_due);
        if (rc == 0)
            break;
        if (rc < 0) {
            bool io = c->c->err != 0;
            release(q, c);
            c = NULL;
            if (!io) { /* a server-side error: do not let the caller's loop spin on it */
                int64_t left = deadline - gp_mono_ms();
                nap(q, left < 200 ? left : 200);
            }
            rc = is_shut(q) ? -GP_E_SHUTTING_DOWN : -GP_E_UNAVAILABLE;
            break;
        }
        int64_t left = deadline - gp_mono_ms();
        if (left <= 0) {
            rc = -GP_E_TIMEOUT;
            break;
        }
        int64_t block = left < POP_BLOCK_MAX_MS ? left : POP_BLOCK_MAX_MS;
        if (next_due >= 0) {
            int64_t until_due = next_due - gp_now_ms() + 1;
            if (until_due < block)
                block = until_due < 1 ? 1 : until_due;
        }
        if (block_wait(q, c, block) != 0) {
            bool shut = is_shut(q); /* shutdown() shuts the socket to wake us */
            release(q, c);
            c = NULL;
            rc = shut ? -GP_E_SHUTTING_DOWN : -GP_E_UNAVAILABLE;
            break;
        }
    }
    release(q, c);
    return rc;
}

static int rq_ack(gp_queue_t *base, const gp_queue_item_t *item)
{
    redis_queue_t *q = (redis_queue_t *)base;
    if (!item->delivery_tag[0])
        return 0;
    conn_t *c;
    int rc = acquire(q, &c);
    if (rc != 0)
        return rc;
    rc = ack_tag(q, c, item->delivery_tag, strlen(item->delivery_tag));
    release(q, c);
    return rc;
}

/* 0 renewed; -GP_E_CONFLICT when the delivery is no longer held (acked, or restored after
 * its lease expired: another worker may run it; the store's claim decides); or unavailable. */
static int rq_renew(gp_queue_t *base, const gp_queue_item_t *item)
{
    redis_queue_t *q = (redis_queue_t *)base;
    if (!item->delivery_tag[0])
        return 0;
    conn_t *c;
    int rc = acquire(q, &c);
    if (rc != 0)
        return rc;
    char now_s[32];
    seconds_str(gp_now_ms(), now_s, sizeof now_s);
    const char *keys[1] = {q->keys[K_INDEX]};
    size_t klen[1] = {q->key_len[K_INDEX]};
    const char *args[2] = {now_s, item->delivery_tag};
    redisReply *r = run_script(c, S_RENEW, 1, keys, klen, 2, args, NULL);
    rc = reply_status(r, "renew");
    if (rc == 0 && !(r->type == REDIS_REPLY_INTEGER && r->integer == 1))
        rc = -GP_E_CONFLICT;
    if (r)
        freeReplyObject(r);
    release(q, c);
    return rc;
}

static void rq_shutdown(gp_queue_t *base)
{
    redis_queue_t *q = (redis_queue_t *)base;
    pthread_mutex_lock(&q->lock);
    q->shut = true;
    /* Pops blocked in BLPOP: shut their sockets so they return now, not at the BLPOP
     * timeout. The owner frees the context only after clearing `blocking` under this lock,
     * so the fd is still theirs. */
    for (conn_t *c = q->busy; c; c = c->next)
        if (c->blocking)
            shutdown(c->c->fd, SHUT_RDWR);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

/* ---- worker monitoring: Celery's tools see this worker (infra/celery/monitor.c) ---------- */

static void rq_attach_worker(gp_queue_t *base, const gp_worker_host_t *host)
{
    redis_queue_t *q = (redis_queue_t *)base;
    gp_celery_monitor_t *m = gp_celery_monitor_start(&q->url, host);
    pthread_mutex_lock(&q->monitor_lock);
    gp_celery_monitor_t *old = q->monitor;
    q->monitor = m;
    pthread_mutex_unlock(&q->monitor_lock);
    gp_celery_monitor_stop(old);
}

static void rq_task_event(gp_queue_t *base, const gp_task_event_t *ev)
{
    redis_queue_t *q = (redis_queue_t *)base;
    pthread_mutex_lock(&q->monitor_lock);
    gp_celery_monitor_task_event(q->monitor, ev); /* queues only */
    pthread_mutex_unlock(&q->monitor_lock);
}

static void rq_detach_worker(gp_queue_t *base)
{
    redis_queue_t *q = (redis_queue_t *)base;
    pthread_mutex_lock(&q->monitor_lock);
    gp_celery_monitor_t *m = q->monitor;
    q->monitor = NULL;
    pthread_mutex_unlock(&q->monitor_lock);
    gp_celery_monitor_stop(m);
}

/* The four kombu lists (their bands in our priorities) and the delayed set, one pipeline. */
static int rq_depth_by_priority(gp_queue_t *base, gp_queue_depths_t *out)
{
    redis_queue_t *q = (redis_queue_t *)base;
    conn_t *c;
    int rc = acquire(q, &c);
    if (rc != 0)
        return rc;
    static const int lists[4] = {K_L0, K_L3, K_L6, K_L9};
    static const char *const bands[4] = {"7-9", "4-6", "1-3", "0"};
    for (int i = 0; i < 4; i++) {
        const char *argv[2] = {"LLEN", q->keys[lists[i]]};
        redisAppendCommandArgv(c->c, 2, argv, NULL);
    }
    const char *zc[2] = {"ZCARD", q->keys[K_DELAYED]};
    redisAppendCommandArgv(c->c, 2, zc, NULL);
    gp_queue_depths_t d = {.n = 4};
    for (int i = 0; i < 5; i++) {
        void *v = NULL;
        if (redisGetReply(c->c, &v) != REDIS_OK) {
            rc = -GP_E_UNAVAILABLE;
            break;
        }
        redisReply *r = v;
        size_t n = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (size_t)r->integer : 0;
        freeReplyObject(r);
        if (i < 4) {
            snprintf(d.band[i].priority, sizeof d.band[i].priority, "%s", bands[i]);
            d.band[i].ready = n;
        } else {
            d.delayed = n;
        }
    }
    release(q, c);
    if (rc == 0)
        *out = d;
    return rc;
}

static size_t rq_depth(gp_queue_t *base)
{
    gp_queue_depths_t d;
    if (rq_depth_by_priority(base, &d) != 0)
        return 0;
    size_t n = d.delayed;
    for (size_t i = 0; i < d.n; i++)
        n += d.band[i].ready;
    return n;
}

static int rq_ping(gp_queue_t *base)
{
    redis_queue_t *q = (redis_queue_t *)base;
    conn_t *c;
    if (acquire(q, &c) != 0)
        return -GP_E_UNAVAILABLE;
    redisReply *r = redisCommand(c->c, "PING");
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : -GP_E_UNAVAILABLE;
    if (r)
        freeReplyObject(r);
    release(q, c);
    return rc;
}

/* ---- which ids the queue holds (the reconciler compares ids, not counts) ------------------ */

/* headers.id of a message (unacked: [message, exchange, routing_key]); NULL if unreadable. */
static const char *message_id(json_t *m)
{
    if (json_is_array(m))
        m = json_array_get(m, 0);
    return json_string_value(json_object_get(json_object_get(m, "headers"), "id"));
}

static void mark_messages(const redisReply *arr, const gp_queue_id_slot_t *slots, size_t n,
                          unsigned char held, unsigned char *where)
{
    if (!arr || arr->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        json_t *m = json_loadb(e->str, e->len, 0, NULL);
        const char *id = message_id(m);
        if (id)
            gp_queue_id_slots_mark(slots, n, id, held, where);
        json_decref(m);
    }
}

/* One MULTI/EXEC reads the delayed set, the four lists and the unacked hash at one instant,
 * so a message moving between them (pop: list -> unacked) is seen exactly once. Messages
 * are parsed here, not in a script: Redis only copies them out. */
static int rq_holds(gp_queue_t *base, const char *const *ids, size_t n, unsigned char *where)
{
    redis_queue_t *q = (redis_queue_t *)base;
    gp_queue_id_slot_t *slots = gp_queue_id_slots(ids, n, where);
    conn_t *c;
    int rc = acquire(q, &c);
    if (rc != 0) {
        free(slots);
        return rc;
    }
    static const int lists[4] = {K_L0, K_L3, K_L6, K_L9};
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
    const char *zr[4] = {"ZRANGE", q->keys[K_DELAYED], "0", "-1"};
    const char *hv[2] = {"HVALS", q->keys[K_UNACKED]};
    redisAppendCommandArgv(c->c, 1, multi, NULL);
    redisAppendCommandArgv(c->c, 4, zr, NULL);
    for (int i = 0; i < 4; i++) {
        const char *lr[4] = {"LRANGE", q->keys[lists[i]], "0", "-1"};
        redisAppendCommandArgv(c->c, 4, lr, NULL);
    }
    redisAppendCommandArgv(c->c, 2, hv, NULL);
    redisAppendCommandArgv(c->c, 1, exec, NULL);
    redisReply *result = NULL;
    for (int i = 0; i < 8; i++) { /* OK, six QUEUED, then EXEC's array */
        void *v = NULL;
        if (redisGetReply(c->c, &v) != REDIS_OK) {
            rc = -GP_E_UNAVAILABLE;
            break;
        }
        if (i == 7)
            result = v;
        else
            freeReplyObject(v);
    }
    release(q, c);
    if (rc == 0 && (!result || result->type != REDIS_REPLY_ARRAY || result->elements != 6))
        rc = -GP_E_UNAVAILABLE;
    if (rc == 0) {
        for (size_t i = 0; i < 5; i++)
            mark_messages(result->element[i], slots, n, GP_HELD_QUEUED, where);
        mark_messages(result->element[5], slots, n, GP_HELD_DELIVERED, where);
    }
    if (result)
        freeReplyObject(result);
    free(slots);
    return rc;
}

/* ---- lease expiry (called by the core's reconciler) --------------------------------------- */

/* Runs RESTORE_LUA for one tag: mode "missing" (index entry without hash entry) or
 * "restore" (old = the unacked value read, msg = the message to push back on list lk).
 * 1 restored, 0 nothing done, <0 error. */
static int restore_script(redis_queue_t *q, conn_t *c, const redisReply *tag, const char *mode,
                          const char *cutoff, const redisReply *old, const char *msg, int lk)
{
    const char *keys[4] = {q->keys[K_UNACKED], q->keys[K_INDEX], q->keys[lk], q->keys[K_WAKE]};
    size_t klen[4] = {q->key_len[K_UNACKED], q->key_len[K_INDEX], q->key_len[lk],
                      q->key_len[K_WAKE]};
    const char *args[5] = {tag->str, mode, cutoff, old ? old->str : "", msg ? msg : ""};
    size_t alen[5] = {tag->len, strlen(mode), strlen(cutoff), old ? old->len : 0,
                      msg ? strlen(msg) : 0};
    redisReply *r = run_script(c, S_RESTORE, 4, keys, klen, 5, args, alen);
    int rc = reply_status(r, "restore");
    if (rc == 0)
        rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Restores one expired delivery. 1 restored, 0 nothing done (renewed, acked or dropped),
 * 2 not ours / unreadable (left alone), <0 error. */
static int restore_one(redis_queue_t *q, conn_t *c, const redisReply *tag, const char *cutoff)
{
    const char *hget[3] = {"HGET", q->keys[K_UNACKED], tag->str};
    size_t hlen[3] = {4, q->key_len[K_UNACKED], tag->len};
    redisReply *v = redisCommandArgv(c->c, 3, hget, hlen);
    if (!v)
        return -GP_E_UNAVAILABLE;
    int rc;
    if (v->type == REDIS_REPLY_NIL) {
        rc = restore_script(q, c, tag, "missing", cutoff, NULL, NULL, K_L0);
    } else if (v->type != REDIS_REPLY_STRING) {
        rc = -GP_E_UNAVAILABLE;
    } else {
        char *msg = NULL, why[160];
        int kp = 0;
        rc = gp_celery_redeliver(v->str, v->len, QUEUE_NAME, &msg, &kp, why, sizeof why);
        if (rc == 0)
            rc = restore_script(q, c, tag, "restore", cutoff, v, msg, list_for_kombu_priority(kp));
        else
            rc = 2; /* another queue's delivery (its consumers restore it), or unreadable */
        free(msg);
    }
    freeReplyObject(v);
    return rc;
}

int gp_redis_queue_restore_expired(gp_queue_t *base, int64_t lease_ms)
{
    if (!base || base->vt != &gp_queue_backend_redis)
        return 0;
    redis_queue_t *q = (redis_queue_t *)base;
    conn_t *c;
    int rc = acquire(q, &c);
    if (rc != 0)
        return rc;
    char cutoff[32];
    seconds_str(gp_now_ms() - (lease_ms > 0 ? lease_ms : 0), cutoff, sizeof cutoff);
    int restored = 0;
    long skipped = 0; /* entries left in place: page past them */
    for (int round = 0; round < 50 && rc == 0; round++) {
        char off[24], cnt[16];
        snprintf(off, sizeof off, "%ld", skipped);
        snprintf(cnt, sizeof cnt, "%d", RESTORE_BATCH);
        /* Newest first, each RPUSHed to the consuming end: the oldest runs first (kombu). */
        const char *argv[7] = {
            "ZREVRANGEBYSCORE", q->keys[K_INDEX], cutoff, "-inf", "LIMIT", off, cnt};
        redisReply *r = redisCommandArgv(c->c, 7, argv, NULL);
        rc = reply_status(r, "restore");
        if (rc != 0 || r->type != REDIS_REPLY_ARRAY) {
            if (rc == 0)
                rc = -GP_E_UNAVAILABLE;
            if (r)
                freeReplyObject(r);
            break;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            int one = restore_one(q, c, r->element[i], cutoff);
            if (one < 0)
                rc = one;
            else if (one == 1)
                restored++;
            else if (one == 2)
                skipped++;
        }
        freeReplyObject(r);
        if (n < RESTORE_BATCH)
            break;
    }
    release(q, c);
    if (restored > 0)
        gp_log(GP_LOG_INFO, NULL, "redis queue: %d expired deliveries put back", restored);
    return rc != 0 ? rc : restored;
}

const gp_queue_vt_t gp_queue_backend_redis = {
    .scheme = "redis",
    .open = rq_open,
    .close = rq_close,
    .push = rq_push,
    .pop = rq_pop,
    .ack = rq_ack,
    .renew = rq_renew,
    .restore_expired = gp_redis_queue_restore_expired,
    .shutdown = rq_shutdown,
    .depth = rq_depth,
    .ping = rq_ping,
    .depth_by_priority = rq_depth_by_priority,
    .holds = rq_holds,
    .attach_worker = rq_attach_worker,
    .task_event = rq_task_event,
    .detach_worker = rq_detach_worker,
};

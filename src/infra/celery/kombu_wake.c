/* kombu_wake.c — push wake-ups for kombu lists through Redis client tracking (kombu_wake.h).
 *
 * Two connections: `sub` (CLIENT ID, then SUBSCRIBE __redis__:invalidate; blocks without an
 * I/O timeout, stop() shuts its socket) and `trk` (CLIENT TRACKING ON REDIRECT <sub's id>;
 * its reads arm the tracking). Redis forgets a tracked key once it sent its invalidation, so
 * every invalidation is answered by reading the lists again — which also says how many
 * messages wait. Either connection failing drops both and reconnects with backoff: the
 * tracking belongs to `trk` and points at `sub`.
 */
#include "infra/celery/kombu_wake.h"
#include "core/log.h"
#include "core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTS 8
#define CONNECT_MS 1000
#define IO_MS 2000
#define REFUSED_RETRY_MS 60000
#define TOKENS_PER_WAKE 32 /* more than the idle pops of a process; a backlog needs none */

struct gp_kombu_wake {
    gp_redis_url_t url;
    char *lists[MAX_LISTS];
    int n;
    char *wake_key;
    int tokens_max;
    bool warned; /* CLIENT TRACKING refused: said once */
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards sub_fd */
    int sub_fd;
};

static void sleep_ms(gp_kombu_wake_t *w, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&w->stop); waited += 50)
        usleep(50000);
}

/* One pipelined round trip: LLEN every list (re-arms the tracking), then `extra` + 1 wake
 * tokens if anything waits. Returns 0, or -1 on an I/O error. */
static int rearm_and_wake(gp_kombu_wake_t *w, redisContext *trk, bool wake)
{
    for (int i = 0; i < w->n; i++) {
        const char *argv[2] = {"LLEN", w->lists[i]};
        redisAppendCommandArgv(trk, 2, argv, NULL);
    }
    long long waiting = 0;
    for (int i = 0; i < w->n; i++) {
        void *v = NULL;
        if (redisGetReply(trk, &v) != REDIS_OK)
            return -1;
        redisReply *r = v;
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
            waiting += r->integer;
        freeReplyObject(r);
    }
    if (!wake || waiting == 0)
        return 0;
    if (waiting > TOKENS_PER_WAKE)
        waiting = TOKENS_PER_WAKE;
    /* LPUSH key 1 1 1 …: one token per waiting message, then the cap. */
    int n = (int)waiting + 2;
    const char **argv = gp_xcalloc((size_t)n, sizeof *argv);
    argv[0] = "LPUSH";
    argv[1] = w->wake_key;
    for (int i = 2; i < n; i++)
        argv[i] = "1";
    char cap[16];
    snprintf(cap, sizeof cap, "%d", w->tokens_max - 1);
    const char *trim[4] = {"LTRIM", w->wake_key, "0", cap};
    redisAppendCommandArgv(trk, n, argv, NULL);
    redisAppendCommandArgv(trk, 4, trim, NULL);
    free(argv);
    for (int i = 0; i < 2; i++) {
        void *v = NULL;
        if (redisGetReply(trk, &v) != REDIS_OK)
            return -1;
        freeReplyObject(v);
    }
    return 0;
}

/* Sets up both connections. 0, -1 (retry soon) or 1 (tracking refused: retry much later). */
static int connect_pair(gp_kombu_wake_t *w, redisContext **sub_out, redisContext **trk_out)
{
    char err[256];
    redisContext *sub =
        gp_redis_connect(&w->url, CONNECT_MS, IO_MS, "genpulse-wake-sub", err, sizeof err);
    redisContext *trk =
        sub ? gp_redis_connect(&w->url, CONNECT_MS, IO_MS, "genpulse-wake", err, sizeof err) : NULL;
    int rc = -1;
    redisReply *id = trk ? redisCommand(sub, "CLIENT ID") : NULL;
    if (id && id->type == REDIS_REPLY_INTEGER) {
        redisReply *t = redisCommand(trk, "CLIENT TRACKING ON REDIRECT %lld", id->integer);
        if (t && t->type == REDIS_REPLY_ERROR) {
            if (!w->warned)
                GP_WARN(
                    "kombu wake: CLIENT TRACKING refused (%s): tasks LPUSHed by other clients are "
                    "picked up at the next poll",
                    t->str);
            w->warned = true;
            rc = 1;
        } else if (t) {
            redisReply *s = redisCommand(sub, "SUBSCRIBE __redis__:invalidate");
            rc = s && s->type == REDIS_REPLY_ARRAY ? 0 : -1;
            if (s)
                freeReplyObject(s);
        }
        if (t)
            freeReplyObject(t);
    }
    if (id)
        freeReplyObject(id);
    if (rc == 0 && rearm_and_wake(w, trk, true) != 0)
        rc = -1;
    if (rc != 0) {
        if (!sub || !trk)
            GP_WARN("kombu wake: %s", err);
        if (sub)
            redisFree(sub);
        if (trk)
            redisFree(trk);
        return rc;
    }
    /* Set up with a timeout; from now on it waits for invalidations as long as it takes
     * (keepalive finds a dead peer, stop() shuts the socket). */
    struct timeval forever = {0, 0};
    redisSetTimeout(sub, forever);
    redisEnableKeepAlive(sub);
    *sub_out = sub;
    *trk_out = trk;
    return 0;
}

static void *wake_main(void *arg)
{
    gp_kombu_wake_t *w = arg;
    pthread_setname_np(pthread_self(), "gp-kombu-wake");
    int backoff = 100;
    while (!atomic_load(&w->stop)) {
        redisContext *sub, *trk;
        int rc = connect_pair(w, &sub, &trk);
        if (rc != 0) {
            sleep_ms(w, rc > 0 ? REFUSED_RETRY_MS : backoff);
            backoff = backoff < 5000 ? backoff * 2 : 5000;
            continue;
        }
        backoff = 100;
        pthread_mutex_lock(&w->lock);
        w->sub_fd = sub->fd;
        pthread_mutex_unlock(&w->lock);
        if (atomic_load(&w->stop))
            shutdown(sub->fd, SHUT_RDWR);
        void *v = NULL;
        while (!atomic_load(&w->stop) && redisGetReply(sub, &v) == REDIS_OK) {
            freeReplyObject(v); /* any invalidation (or a flush) means: look again */
            v = NULL;
            if (rearm_and_wake(w, trk, true) != 0)
                break;
        }
        pthread_mutex_lock(&w->lock);
        w->sub_fd = -1;
        pthread_mutex_unlock(&w->lock);
        redisFree(sub);
        redisFree(trk);
    }
    return NULL;
}

gp_kombu_wake_t *gp_kombu_wake_start(const gp_redis_url_t *url, const char *const *lists, int n,
                                     const char *wake_key, int tokens_max)
{
    gp_kombu_wake_t *w = gp_xcalloc(1, sizeof *w);
    w->url = *url;
    w->n = n < MAX_LISTS ? n : MAX_LISTS;
    for (int i = 0; i < w->n; i++)
        w->lists[i] = gp_xstrdup(lists[i]);
    w->wake_key = gp_xstrdup(wake_key);
    w->tokens_max = tokens_max > 1 ? tokens_max : 2;
    w->sub_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    if (pthread_create(&w->thread, NULL, wake_main, w) != 0) {
        w->thread = 0;
        gp_kombu_wake_stop(w);
        return NULL;
    }
    return w;
}

void gp_kombu_wake_stop(gp_kombu_wake_t *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_mutex_lock(&w->lock);
    if (w->sub_fd >= 0)
        shutdown(w->sub_fd, SHUT_RDWR);
    pthread_mutex_unlock(&w->lock);
    if (w->thread)
        pthread_join(w->thread, NULL);
    for (int i = 0; i < w->n; i++)
        free(w->lists[i]);
    free(w->wake_key);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/*
 * heartbeat.c — a worker process's identity and its beats in the presence registry
 * (infra/presence/presence.h).
 *
 * The first beat is sent before start returns, so the process is listed as soon as it takes
 * work. A failed beat (Redis down) is retried on the next tick; the backend logs the outage
 * once. A FLUSHALL is healed by the next beat, which writes the key and the hash again.
 */
#include "core/log.h"
#include "core/util.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct gp_heartbeat {
    gp_runtime_t *rt;
    gp_worker_info_t self; /* the fixed part; busy is refreshed per beat */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

void gp_worker_id_make(char out[GP_WORKER_ID_LEN])
{
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++) /* ids travel in logs, JSON and Redis keys: keep them plain */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            *p = '_';
    uint32_t rnd;
    gp_random_bytes(&rnd, sizeof rnd);
    snprintf(out, GP_WORKER_ID_LEN, "%s:%d:%08x", host, (int)getpid(), rnd);
}

static void beat(gp_heartbeat_t *hb)
{
    hb->self.busy = gp_worker_pool_busy(hb->rt->workers);
    gp_presence_beat(hb->rt->presence, &hb->self);
}

static void *heartbeat_main(void *arg)
{
    gp_heartbeat_t *hb = arg;
    pthread_setname_np(pthread_self(), "gp-heartbeat");
    pthread_mutex_lock(&hb->lock);
    while (!hb->stop) {
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, GP_PRESENCE_BEAT_MS);
        pthread_cond_timedwait(&hb->wake, &hb->lock, &ts);
        if (hb->stop)
            break;
        pthread_mutex_unlock(&hb->lock);
        beat(hb);
        pthread_mutex_lock(&hb->lock);
    }
    pthread_mutex_unlock(&hb->lock);
    return NULL;
}

gp_heartbeat_t *gp_heartbeat_start(gp_runtime_t *rt, const char *version, const char *queues)
{
    gp_heartbeat_t *hb = gp_xcalloc(1, sizeof *hb);
    hb->rt = rt;
    gp_worker_info_t *w = &hb->self;
    snprintf(w->id, sizeof w->id, "%s", rt->worker_id);
    const char *colon = strchr(rt->worker_id, ':');
    snprintf(w->host, sizeof w->host, "%.*s",
             (int)(colon ? (size_t)(colon - rt->worker_id) : strlen(rt->worker_id)), rt->worker_id);
    w->pid = (int)getpid();
    snprintf(w->version, sizeof w->version, "%s", version);
    w->concurrency = gp_worker_pool_size(rt->workers);
    snprintf(w->queues, sizeof w->queues, "%s", queues);
    w->started_at = rt->started_at;
    pthread_mutex_init(&hb->lock, NULL);
    pthread_cond_init(&hb->wake, NULL);
    beat(hb);
    if (pthread_create(&hb->thread, NULL, heartbeat_main, hb) != 0)
        abort(); /* at start only */
    return hb;
}

void gp_heartbeat_stop(gp_heartbeat_t *hb)
{
    if (!hb)
        return;
    pthread_mutex_lock(&hb->lock);
    hb->stop = true;
    pthread_cond_signal(&hb->wake);
    pthread_mutex_unlock(&hb->lock);
    pthread_join(hb->thread, NULL);
    if (gp_presence_leave(hb->rt->presence, hb->self.id) != 0)
        GP_WARN("presence: could not announce the stop; the entry expires by itself");
    pthread_mutex_destroy(&hb->lock);
    pthread_cond_destroy(&hb->wake);
    free(hb);
}

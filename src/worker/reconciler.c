/*
 * reconciler.c — puts back work the dispatch queue lost.
 *
 * The store is the truth and the queue is soft state: a Redis FLUSHALL or restart without
 * persistence drops messages, and a worker that dies after Redis lost its unacked record
 * leaves a task "processing" with nobody to restore it. Every RECONCILE_EVERY_MS a worker
 * process compares the store with the queue:
 *   - pending tasks older than a grace period must all be in the queue; if the store has
 *     more of them than the queue holds, they are dispatched again (a duplicate message is
 *     harmless: the claim's compare-and-set lets one delivery run and the others fall away);
 *   - processing tasks started longer ago than the hard timeout plus two leases cannot have a
 *     live holder (its watchdog would have finalized them), so they are dispatched as
 *     redelivered, which lets a claim take them over with attempt + 1.
 * Any number of worker processes may run it at once.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECONCILE_EVERY_MS 10000
#define PENDING_GRACE_MS 5000

struct gp_reconciler {
    gp_runtime_t *rt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

typedef struct scan {
    int64_t now;
    int64_t stale_before; /* processing started before this is orphaned */
    gp_task_t *pending;   /* copies, re-dispatched only if the queue lost some */
    size_t n_pending, cap;
    int orphans;
    gp_runtime_t *rt;
} scan_t;

static void visit(const gp_task_t *t, void *arg)
{
    scan_t *sc = arg;
    if (t->status == GP_TASK_PENDING && t->created_at < sc->now - PENDING_GRACE_MS) {
        if (sc->n_pending == sc->cap) {
            size_t cap = sc->cap ? sc->cap * 2 : 256;
            gp_task_t *bigger = realloc(sc->pending, cap * sizeof *bigger);
            if (!bigger)
                return;
            sc->pending = bigger;
            sc->cap = cap;
        }
        /* Only what dispatch needs: id, priority, times. */
        gp_task_t *c = &sc->pending[sc->n_pending++];
        memset(c, 0, sizeof *c);
        memcpy(c->id, t->id, sizeof c->id);
        c->priority = t->priority;
        c->created_at = t->created_at;
        c->not_before = t->not_before;
    } else if (t->status == GP_TASK_PROCESSING && t->started_at &&
               t->started_at < sc->stale_before) {
        gp_queue_item_t item = {
            .priority = t->priority, .enqueued_at = t->created_at, .redelivered = true};
        memcpy(item.id, t->id, sizeof item.id);
        memcpy(item.owner, t->owner, sizeof item.owner);
        memcpy(item.owner, t->owner, sizeof item.owner);
        if (gp_queue_push(sc->rt->queue, &item) == 0) {
            sc->orphans++;
            gp_log(GP_LOG_WARN, t->id,
                   "processing since %lld s with no live holder; "
                   "dispatched again",
                   (long long)((sc->now - t->started_at) / 1000));
        }
    }
}

static void reconcile_once(gp_runtime_t *rt)
{
    const gp_settings_t *s = rt->settings;
    scan_t sc = {.now = gp_now_ms(), .rt = rt};
    sc.stale_before = sc.now - (s->task_timeout_s + 2 * s->lease_s) * 1000;
    size_t depth_before = gp_queue_depth(rt->queue);
    if (gp_store_scan_unfinished(rt->store, visit, &sc) != 0) {
        free(sc.pending);
        return; /* store unavailable: try next round */
    }
    size_t depth = gp_queue_depth(rt->queue);
    if (depth_before < depth)
        depth = depth_before; /* orphans pushed during the scan are not queue backlog */
    if (sc.n_pending > depth) {
        GP_WARN("reconciler: %zu pending task(s) in the store, %zu in the queue; "
                "dispatching them again",
                sc.n_pending, depth);
        for (size_t i = 0; i < sc.n_pending; i++)
            gp_runtime_dispatch(rt, &sc.pending[i]);
    }
    free(sc.pending);
}

static void *reconciler_main(void *arg)
{
    gp_reconciler_t *r = arg;
    pthread_setname_np(pthread_self(), "gp-reconcile");
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, RECONCILE_EVERY_MS);
        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        reconcile_once(r->rt);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

gp_reconciler_t *gp_reconciler_start(gp_runtime_t *rt)
{
    gp_reconciler_t *r = gp_xcalloc(1, sizeof *r);
    r->rt = rt;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (pthread_create(&r->thread, NULL, reconciler_main, r) != 0)
        abort(); /* at start only */
    return r;
}

void gp_reconciler_stop(gp_reconciler_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}

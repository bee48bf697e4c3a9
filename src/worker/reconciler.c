/*
 * reconciler.c — puts back work the dispatch queue lost, and work whose worker died.
 *
 * The store is the truth and the queue is soft state: a Redis FLUSHALL or restart without
 * persistence drops messages, and a worker killed mid-attempt leaves a task "processing"
 * with nobody to finish it. Every RECONCILE_EVERY_MS a worker process compares the store
 * with the queue and with the presence registry (the processing tasks' holders every round,
 * a cheap read of ids; the whole unfinished set every FULL_SCAN_EVERY rounds):
 *   - pending tasks older than a grace period must be in the queue: the ids the queue does
 *     not hold (queue.h, holds()) are dispatched again. A duplicate message is harmless: the
 *     claim's compare-and-set lets one delivery run and the others fall away;
 *   - a processing task whose worker (tasks.worker_id) is not alive is dispatched again as
 *     redelivered, unless a redelivery is already queued: the claim takes it over with
 *     attempt + 1 and ends the dead worker's attempt "lost" in the same transaction;
 *   - a processing task with no worker_id (a row from before migration 3) keeps the old
 *     rule: started longer ago than the hard timeout plus two leases.
 *
 * Liveness after a FLUSHALL. The registry is soft state too: right after a FLUSHALL nobody
 * is listed, and live workers appear again on their next beat. So a worker is judged by
 * what this reconciler has watched: listed and alive = alive; listed and lost (its key
 * expired) = dead; not listed = dead only once this reconciler has watched presence for
 * WATCH_MS and has not seen that worker alive for WATCH_MS (TTL + a beat: a live worker
 * beats at least once in that time, whatever was flushed). A presence read that fails
 * judges nobody that round.
 *
 * Any number of worker processes may run it at once; the store's compare-and-set makes
 * their duplicate dispatches harmless.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECONCILE_EVERY_MS 2000
#define FULL_SCAN_EVERY 5 /* rounds: the pending comparison (a scan of every unfinished task) */
#define HOLDERS_MAX 10000
#define PENDING_GRACE_MS 5000
#define WATCH_MS (GP_PRESENCE_TTL_MS + GP_PRESENCE_BEAT_MS)
#define SEEN_MAX 256 /* workers remembered; the oldest sighting is forgotten first */

typedef struct seen {
    gp_worker_info_t last; /* as listed when last seen alive */
    int64_t alive_at;      /* mono ms this reconciler last saw it alive */
    bool remembered;       /* written back to the registry as lost (after a FLUSHALL) */
} seen_t;

struct gp_reconciler {
    gp_runtime_t *rt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    /* Owned by the reconciler thread: */
    int64_t watching_since; /* mono ms of the first presence read that worked; 0 = none yet */
    seen_t *seen;
    size_t n_seen;
};

/* What one round found: candidates to dispatch, compared with the queue by id. */
typedef struct scan {
    struct gp_reconciler *r;
    int64_t now, mono;
    int64_t stale_before; /* legacy rule: processing started before this is orphaned */
    bool judge;           /* presence was read: workers can be judged this round */
    gp_worker_info_t *workers;
    size_t n_workers;
    gp_task_t *cand; /* copies of id, owner, priority, times, status, worker_id */
    size_t n, cap;
    int legacy_orphans;
} scan_t;

static seen_t *seen_find(struct gp_reconciler *r, const char *id)
{
    for (size_t i = 0; i < r->n_seen; i++)
        if (!strcmp(r->seen[i].last.id, id))
            return &r->seen[i];
    return NULL;
}

/* Records the live workers of this presence read. */
static void note_alive(struct gp_reconciler *r, const gp_worker_info_t *w, size_t n, int64_t mono)
{
    for (size_t i = 0; i < n; i++) {
        if (!w[i].alive)
            continue;
        seen_t *s = seen_find(r, w[i].id);
        if (!s && r->n_seen < SEEN_MAX)
            s = &r->seen[r->n_seen++];
        if (!s) { /* full: replace the oldest sighting */
            s = &r->seen[0];
            for (size_t j = 1; j < r->n_seen; j++)
                if (r->seen[j].alive_at < s->alive_at)
                    s = &r->seen[j];
        }
        s->last = w[i];
        s->alive_at = mono;
        s->remembered = false;
    }
}

/* True if the worker `id` is known to be dead (see DESIGN). */
static bool worker_dead(const scan_t *sc, const char *id)
{
    if (!sc->judge)
        return false;
    for (size_t i = 0; i < sc->n_workers; i++)
        if (!strcmp(sc->workers[i].id, id))
            return !sc->workers[i].alive; /* listed: the registry knows */
    const struct gp_reconciler *r = sc->r;
    if (sc->mono - r->watching_since < WATCH_MS)
        return false; /* not watched long enough to tell "flushed" from "gone" */
    for (size_t i = 0; i < r->n_seen; i++)
        if (!strcmp(r->seen[i].last.id, id))
            return sc->mono - r->seen[i].alive_at >= WATCH_MS;
    return true;
}

/* Workers this reconciler saw alive, now dead and no longer listed (a FLUSHALL wiped the
 * registry after they died): listed again as lost, so operators still see them. */
static void remember_unlisted_dead(scan_t *sc)
{
    struct gp_reconciler *r = sc->r;
    for (size_t i = 0; i < r->n_seen; i++) {
        seen_t *s = &r->seen[i];
        bool listed = false;
        for (size_t j = 0; j < sc->n_workers && !listed; j++)
            listed = !strcmp(sc->workers[j].id, s->last.id);
        if (listed || s->remembered || !worker_dead(sc, s->last.id))
            continue;
        if (gp_presence_remember(r->rt->presence, &s->last) == 0) {
            s->remembered = true;
            GP_WARN("reconciler: worker %s stopped heartbeating %lld s ago; listed as lost",
                    s->last.id, (long long)((sc->mono - s->alive_at) / 1000));
        }
    }
}

static void add_candidate(scan_t *sc, const gp_task_t *t)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 256;
        gp_task_t *bigger = realloc(sc->cand, cap * sizeof *bigger);
        if (!bigger)
            return;
        sc->cand = bigger;
        sc->cap = cap;
    }
    /* Only what dispatch needs: no owned strings. */
    gp_task_t *c = &sc->cand[sc->n++];
    memset(c, 0, sizeof *c);
    memcpy(c->id, t->id, sizeof c->id);
    memcpy(c->owner, t->owner, sizeof c->owner);
    memcpy(c->worker_id, t->worker_id, sizeof c->worker_id);
    c->status = t->status;
    c->attempts = t->attempts;
    c->priority = t->priority;
    c->created_at = t->created_at;
    c->started_at = t->started_at;
    c->not_before = t->not_before;
}

static void visit(const gp_task_t *t, void *arg)
{
    scan_t *sc = arg;
    if (t->status == GP_TASK_PENDING) {
        if (t->created_at < sc->now - PENDING_GRACE_MS)
            add_candidate(sc, t);
    } else if (t->status == GP_TASK_PROCESSING) {
        if (t->worker_id[0] ? worker_dead(sc, t->worker_id)
                            : t->started_at && t->started_at < sc->stale_before)
            add_candidate(sc, t);
    }
}

static void redeliver(gp_runtime_t *rt, const gp_task_t *t, int64_t now)
{
    gp_queue_item_t item = {
        .priority = t->priority, .enqueued_at = t->created_at, .redelivered = true};
    memcpy(item.id, t->id, sizeof item.id);
    memcpy(item.owner, t->owner, sizeof item.owner);
    if (gp_queue_push(rt->queue, &item) != 0)
        return;
    if (t->worker_id[0])
        gp_log(GP_LOG_WARN, t->id,
               "worker %s stopped heartbeating; attempt %d lost, dispatched again", t->worker_id,
               t->attempts);
    else
        gp_log(GP_LOG_WARN, t->id, "processing since %lld s with no live holder; dispatched again",
               (long long)((now - t->started_at) / 1000));
}

/* Dispatches the candidates the queue does not hold. */
static void dispatch_missing(gp_runtime_t *rt, scan_t *sc)
{
    if (sc->n == 0)
        return;
    const char **ids = gp_xmalloc(sc->n * sizeof *ids);
    unsigned char *where = gp_xmalloc(sc->n);
    for (size_t i = 0; i < sc->n; i++)
        ids[i] = sc->cand[i].id;
    int rc = gp_queue_holds(rt->queue, ids, sc->n, where);
    if (rc != 0) /* cannot tell: dispatch them all (duplicates are harmless) */
        memset(where, GP_HELD_NONE, sc->n);
    size_t pending = 0, orphans = 0;
    for (size_t i = 0; i < sc->n; i++) {
        const gp_task_t *t = &sc->cand[i];
        if (t->status == GP_TASK_PENDING && where[i] == GP_HELD_NONE) {
            gp_runtime_dispatch(rt, t);
            pending++;
        } else if (t->status == GP_TASK_PROCESSING && where[i] != GP_HELD_QUEUED) {
            /* A dead worker's own delivery may still sit in unacked until its lease runs
             * out; the takeover does not wait for that. */
            redeliver(rt, t, sc->now);
            orphans++;
        }
    }
    if (pending)
        GP_WARN("reconciler: %zu pending task(s) were not in the queue; dispatched again", pending);
    if (orphans)
        GP_WARN("reconciler: %zu task(s) of dead workers dispatched again", orphans);
    free(ids);
    free(where);
}

/* The cheap round: only processing tasks whose worker is dead, read by id. */
static void scan_holders(gp_runtime_t *rt, scan_t *sc)
{
    if (!rt->store->vt->holders_list || !sc->judge)
        return;
    gp_task_holder_t *h = gp_xcalloc(HOLDERS_MAX, sizeof *h);
    size_t n = 0;
    if (rt->store->vt->holders_list(rt->store, h, HOLDERS_MAX, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            gp_task_t t;
            if (!h[i].worker_id[0] || !worker_dead(sc, h[i].worker_id) ||
                gp_store_get(rt->store, h[i].task_id, &t) != 0)
                continue;
            if (t.status == GP_TASK_PROCESSING && !strcmp(t.worker_id, h[i].worker_id))
                add_candidate(sc, &t);
            gp_task_clear(&t);
        }
    free(h);
}

static void reconcile_once(struct gp_reconciler *r, bool full)
{
    gp_runtime_t *rt = r->rt;
    const gp_settings_t *s = rt->settings;
    scan_t sc = {.r = r, .now = gp_now_ms(), .mono = gp_mono_ms()};
    sc.stale_before = sc.now - (s->task_timeout_s + 2 * s->lease_s) * 1000;
    if (gp_presence_list(rt->presence, &sc.workers, &sc.n_workers) == 0) {
        if (!r->watching_since)
            r->watching_since = sc.mono;
        note_alive(r, sc.workers, sc.n_workers, sc.mono);
        sc.judge = true;
        remember_unlisted_dead(&sc);
    }
    if (!full)
        scan_holders(rt, &sc);
    if (full ? gp_store_scan_unfinished(rt->store, visit, &sc) == 0 : sc.n > 0)
        dispatch_missing(rt, &sc);
    /* else nothing to do, or the store is unavailable: try next round */
    free(sc.workers);
    free(sc.cand);
}

static void *reconciler_main(void *arg)
{
    gp_reconciler_t *r = arg;
    pthread_setname_np(pthread_self(), "gp-reconcile");
    /* The first round at once: it starts the watch, and sees the workers alive now. */
    unsigned round = 0;
    reconcile_once(r, true);
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, RECONCILE_EVERY_MS);
        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        reconcile_once(r, ++round % FULL_SCAN_EVERY == 0);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

gp_reconciler_t *gp_reconciler_start(gp_runtime_t *rt)
{
    gp_reconciler_t *r = gp_xcalloc(1, sizeof *r);
    r->rt = rt;
    r->seen = gp_xcalloc(SEEN_MAX, sizeof *r->seen);
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
    free(r->seen);
    free(r);
}

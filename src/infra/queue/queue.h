/*
 * queue.h — dispatch: which task a free worker slot runs next.
 *
 * The queue holds soft state: the store is the truth, and anything lost here is pushed again
 * from the store (at start, or by a reconciler). Order: highest priority first, then oldest
 * (enqueued_at), and never before ready_at (retry backoff).
 *
 * A backend is a const gp_queue_vt_t named gp_queue_backend_<stem>; gp_queue_open() picks
 * it by URL scheme ("memory" when the URL is empty). All functions are thread-safe.
 */
#ifndef GP_QUEUE_H
#define GP_QUEUE_H

#include "core/errors.h"
#include "core/settings.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct gp_queue gp_queue_t;

typedef struct gp_queue_item {
    char id[37];
    char owner[37]; /* the task's user: backends may share capacity fairly among users */
    int priority;
    int64_t enqueued_at;   /* ms; older first within a priority */
    int64_t ready_at;      /* ms; 0 = now */
    char delivery_tag[64]; /* set by pop() for backends that need ack(); "" otherwise */
    bool redelivered;      /* set by pop(): the previous holder's lease expired unacked */
    /* A task sent by another client (e.g. Celery's send_task) that may have no row yet:
     * its task type and its params as JSON text (malloc'd; whoever pops the item frees it
     * with gp_queue_item_release). NULL for tasks GenPulse dispatched itself. */
    char task_type[65];
    char *foreign_params;
} gp_queue_item_t;

/* The ready items by priority band, for /metrics. A backend names its own bands (memory:
 * one per priority "0".."9"; Redis: kombu's four lists "0", "1-3", "4-6", "7-9"). */
#define GP_QUEUE_BANDS_MAX 10
typedef struct gp_queue_depths {
    size_t n; /* bands filled */
    struct {
        char priority[8];
        size_t ready;
    } band[GP_QUEUE_BANDS_MAX];
    size_t delayed; /* waiting for their ready_at (retry backoff) */
} gp_queue_depths_t;
/* ---- worker monitoring hooks (optional) ---------------------------------------------------
 * A queue whose ecosystem has monitoring tools of its own (the Redis backend speaks Celery's
 * events and remote control, so `celery events`, `celery inspect` and Flower see GenPulse
 * workers) hears about the worker pool through these neutral calls; the pool names no
 * backend, and a backend without such tools leaves the three vtable slots NULL.
 *   attach_worker(host)  the pool started: announce the worker (and keep it announced, e.g.
 *                        heartbeats); host lets remote tools list and cancel its tasks.
 *   task_event(ev)       a task changed state in this process. Must not block (the backend
 *                        copies what it needs and publishes from its own thread).
 *   detach_worker()      clean stop: announce the worker gone. After it returns no host
 *                        callback runs again. */
typedef struct gp_active_task {
    char id[37];
    char task_type[65];
    int64_t started_at; /* ms since epoch */
    int attempts;
} gp_active_task_t;

typedef struct gp_worker_host {
    void *arg;
    int concurrency;
    /* A snapshot of the tasks running in this process (at most cap): how many were written.
     * Read-only; any thread. */
    size_t (*active)(void *arg, gp_active_task_t *out, size_t cap);
    /* A remote cancel, the same path as the HTTP cancel (a queued task ends canceled, a
     * running one has its cancel recorded); terminate also stops a provider already running.
     * Queues the work and returns at once. */
    void (*cancel)(void *arg, const char *task_id, bool terminate);
} gp_worker_host_t;

typedef enum gp_task_event_kind {
    GP_TEV_RECEIVED, /* claimed by this process */
    GP_TEV_STARTED,  /* its provider is about to run */
    GP_TEV_SUCCEEDED,
    GP_TEV_FAILED,
    GP_TEV_RETRIED, /* failed, back to pending for another attempt */
    GP_TEV_REVOKED, /* canceled */
} gp_task_event_kind_t;

/* Everything is borrowed for the duration of the call. */
typedef struct gp_task_event {
    gp_task_event_kind_t kind;
    const char *task_id;
    const char *task_type;     /* RECEIVED */
    const json_t *params;      /* RECEIVED: the task's params (kwargs); may be NULL */
    int retries;               /* attempts before the current one */
    const json_t *result;      /* SUCCEEDED; may be NULL */
    const char *error_code;    /* FAILED, RETRIED */
    const char *error_message; /* FAILED, RETRIED */
    double runtime_s;          /* SUCCEEDED, FAILED: since the attempt started */
    bool terminated;           /* REVOKED: it was running when canceled */
} gp_task_event_t;

typedef struct gp_queue_vt {
    const char *scheme;
    int (*open)(gp_queue_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap);
    void (*close)(gp_queue_t *q);
    int (*push)(gp_queue_t *q, const gp_queue_item_t *item);
    /* Blocks up to timeout_ms for a ready item. 0, -GP_E_TIMEOUT or -GP_E_SHUTTING_DOWN. */
    int (*pop)(gp_queue_t *q, gp_queue_item_t *out, int timeout_ms);
    /* Optional (NULL = nothing to do). ack(): the popped item is finished with (its outcome
     * is committed), the queue may forget it. renew(): the item's worker is alive and still
     * running it (lease heartbeat; called from a thread other than the one running it). */
    int (*ack)(gp_queue_t *q, const gp_queue_item_t *item);
    int (*renew)(gp_queue_t *q, const gp_queue_item_t *item);
    /* Optional: puts back deliveries whose lease (last renew) is older than lease_ms, marked
     * redelivered. Returns how many, or -GP_E_*. */
    int (*restore_expired)(gp_queue_t *q, int64_t lease_ms);
    /* Wakes every blocked pop with -GP_E_SHUTTING_DOWN, now and later. */
    void (*shutdown)(gp_queue_t *q);
    /* Items waiting (ready or delayed). */
    size_t (*depth)(gp_queue_t *q);
    /* Optional (NULL = always reachable): one bounded round trip to the backend, for
     * readiness. 0 or -GP_E_UNAVAILABLE. */
    int (*ping)(gp_queue_t *q);
    /* Optional: the same, split by priority band. 0 or -GP_E_* (*out untouched). */
    int (*depth_by_priority)(gp_queue_t *q, gp_queue_depths_t *out);
    /* Optional (NULL = cannot tell): where the queue holds each of the n task ids, as one
     * GP_HELD_* per id in where[] (a task held twice reports the earlier of queued, delivered).
     * Lets the reconciler compare ids, not counts. 0, or -GP_E_* (where[] undefined). */
    int (*holds)(gp_queue_t *q, const char *const *ids, size_t n, unsigned char *where);
    /* Optional: the worker monitoring hooks above. */
    void (*attach_worker)(gp_queue_t *q, const gp_worker_host_t *host);
    void (*task_event)(gp_queue_t *q, const gp_task_event_t *ev);
    void (*detach_worker)(gp_queue_t *q);
} gp_queue_vt_t;

enum {
    GP_HELD_NONE = 0,      /* not in the queue: lost, or never pushed */
    GP_HELD_QUEUED = 1,    /* waiting (ready or delayed) */
    GP_HELD_DELIVERED = 2, /* popped, not yet acked (its worker runs it, or died holding it) */
};

struct gp_queue {
    const gp_queue_vt_t *vt;
};

extern const gp_queue_vt_t *const gp_generated_queue_backends[];
int gp_queue_open(gp_queue_t **out, const gp_settings_t *s, char *err, size_t cap);

static inline void gp_queue_close(gp_queue_t *q)
{
    if (q)
        q->vt->close(q);
}
static inline int gp_queue_push(gp_queue_t *q, const gp_queue_item_t *it)
{
    return q->vt->push(q, it);
}
static inline int gp_queue_pop(gp_queue_t *q, gp_queue_item_t *out, int timeout_ms)
{
    return q->vt->pop(q, out, timeout_ms);
}
static inline int gp_queue_ack(gp_queue_t *q, const gp_queue_item_t *it)
{
    return q->vt->ack ? q->vt->ack(q, it) : 0;
}
static inline int gp_queue_renew(gp_queue_t *q, const gp_queue_item_t *it)
{
    return q->vt->renew ? q->vt->renew(q, it) : 0;
}
static inline int gp_queue_restore_expired(gp_queue_t *q, int64_t lease_ms)
{
    return q->vt->restore_expired ? q->vt->restore_expired(q, lease_ms) : 0;
}
static inline void gp_queue_item_release(gp_queue_item_t *it)
{
    free(it->foreign_params);
    it->foreign_params = NULL;
}
static inline void gp_queue_shutdown(gp_queue_t *q)
{
    q->vt->shutdown(q);
}
static inline int gp_queue_ping(gp_queue_t *q)
{
    return q->vt->ping ? q->vt->ping(q) : 0;
}
static inline size_t gp_queue_depth(gp_queue_t *q)
{
    return q->vt->depth(q);
}
/* A backend that cannot split its depth reports one band "all" (delayed included). */
static inline int gp_queue_depth_by_priority(gp_queue_t *q, gp_queue_depths_t *out)
{
    if (q->vt->depth_by_priority)
        return q->vt->depth_by_priority(q, out);
    *out = (gp_queue_depths_t){.n = 1, .band = {{"all", q->vt->depth(q)}}};
    return 0;
}

/* For holds() implementations: the ids sorted with their positions (where[] is cleared to
 * GP_HELD_NONE; free() the result), and marking the positions of one id found in the queue
 * (a lower GP_HELD_* never replaces a set one, except NONE). */
typedef struct gp_queue_id_slot {
    const char *id;
    size_t pos;
} gp_queue_id_slot_t;
gp_queue_id_slot_t *gp_queue_id_slots(const char *const *ids, size_t n, unsigned char *where);
void gp_queue_id_slots_mark(const gp_queue_id_slot_t *slots, size_t n, const char *id,
                            unsigned char held, unsigned char *where);

/* -GP_E_INTERNAL when the backend cannot tell. */
static inline int gp_queue_holds(gp_queue_t *q, const char *const *ids, size_t n,
                                 unsigned char *where)
{
    return q->vt->holds ? q->vt->holds(q, ids, n, where) : -GP_E_INTERNAL;
}

static inline void gp_queue_attach_worker(gp_queue_t *q, const gp_worker_host_t *host)
{
    if (q->vt->attach_worker)
        q->vt->attach_worker(q, host);
}
static inline void gp_queue_task_event(gp_queue_t *q, const gp_task_event_t *ev)
{
    if (q->vt->task_event)
        q->vt->task_event(q, ev);
}
static inline void gp_queue_detach_worker(gp_queue_t *q)
{
    if (q->vt->detach_worker)
        q->vt->detach_worker(q);
}

#endif

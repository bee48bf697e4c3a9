/*
 * presence.h — which worker processes are alive: registration and heartbeats.
 *
 * Every worker process beats every GP_PRESENCE_BEAT_MS with its description; a worker whose
 * last beat is older than GP_PRESENCE_TTL_MS is lost. Readers (the reconciler, /ready,
 * /v1/workers, /metrics, the dashboard) list the live set and the recently lost.
 *
 * Liveness, not age, decides orphans: a processing task whose worker_id is not alive runs
 * again. The registry itself is soft state (a Redis FLUSHALL wipes it): live workers appear
 * again on their next beat, so a reader must have watched for GP_PRESENCE_TTL_MS before it
 * declares a worker it has never seen, or no longer sees, dead (see reconciler.c).
 *
 * Backends: "memory" (in-process; embedded mode) and "redis" (distributed mode: a key per
 * worker with a TTL plus a hash that remembers lost ones for a while), picked by the queue
 * URL's scheme like the queue, the event bus and the limiter. A backend is a const
 * gp_presence_vt_t named gp_presence_backend_<stem>. All functions are thread-safe.
 */
#ifndef GP_PRESENCE_H
#define GP_PRESENCE_H

#include "core/settings.h"
#include "core/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_PRESENCE_BEAT_MS 2000
#define GP_PRESENCE_TTL_MS 10000
#define GP_PRESENCE_LOST_KEEP_MS (3600 * 1000) /* lost workers stay listed this long */

typedef struct gp_worker_info {
    char id[GP_WORKER_ID_LEN]; /* "<host>:<pid>:<8 hex>", unique per process start */
    char host[64];             /* gethostname() */
    int pid;
    char version[32];   /* VERSION */
    int concurrency;    /* task slots */
    int busy;           /* slots running a task at the last beat */
    char queues[128];   /* comma-separated queue names this worker consumes */
    int64_t started_at; /* ms since epoch */
    int64_t last_beat;  /* ms since epoch; set by beat() from the backend's clock */
    bool alive;         /* list(): last_beat within GP_PRESENCE_TTL_MS */
} gp_worker_info_t;

typedef struct gp_presence gp_presence_t;

typedef struct gp_presence_vt {
    const char *scheme;
    int (*open)(gp_presence_t **out, const char *url, const gp_settings_t *s, char *err,
                size_t cap);
    void (*close)(gp_presence_t *p);
    /* Registers or refreshes `self` (last_beat and alive are ignored). 0 or -GP_E_*. */
    int (*beat)(gp_presence_t *p, const gp_worker_info_t *self);
    /* A clean stop: the worker is gone at once (listed as lost, not alive). */
    int (*leave)(gp_presence_t *p, const char *id);
    /* The live workers and the ones lost within GP_PRESENCE_LOST_KEEP_MS, newest beat first.
     * *out is malloc'd (caller frees); 0 or -GP_E_* (backend unreachable). */
    int (*list)(gp_presence_t *p, gp_worker_info_t **out, size_t *n);
    /* Optional (NULL = nothing to do): lists `w` again as lost, with its last_beat (this
     * host's clock), unless the registry already has an entry for it. A reconciler that
     * watched a worker die calls it when a FLUSHALL made the registry forget that worker,
     * so /v1/workers still shows it lost. 0 or -GP_E_*. */
    int (*remember)(gp_presence_t *p, const gp_worker_info_t *w);
} gp_presence_vt_t;

struct gp_presence {
    const gp_presence_vt_t *vt;
};

extern const gp_presence_vt_t *const gp_generated_presence_backends[];
/* Opens the backend for s->queue_url's scheme ("memory" when empty). */
int gp_presence_open(gp_presence_t **out, const gp_settings_t *s, char *err, size_t cap);

static inline void gp_presence_close(gp_presence_t *p)
{
    if (p)
        p->vt->close(p);
}
static inline int gp_presence_beat(gp_presence_t *p, const gp_worker_info_t *self)
{
    return p->vt->beat(p, self);
}
static inline int gp_presence_leave(gp_presence_t *p, const char *id)
{
    return p->vt->leave(p, id);
}
static inline int gp_presence_list(gp_presence_t *p, gp_worker_info_t **out, size_t *n)
{
    return p->vt->list(p, out, n);
}
static inline int gp_presence_remember(gp_presence_t *p, const gp_worker_info_t *w)
{
    return p->vt->remember ? p->vt->remember(p, w) : 0;
}

#endif

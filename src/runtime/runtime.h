/*
 * runtime.h — the services one process shares: settings, the four backend families and the
 * committer. Built once by main, read-only afterwards (the services themselves are
 * thread-safe).
 */
#ifndef GP_RUNTIME_H
#define GP_RUNTIME_H

#include "runtime/committer.h"
#include "core/settings.h"
#include "infra/events/events.h"
#include "infra/limiter/limiter.h"
#include "infra/presence/presence.h"
#include "infra/queue/queue.h"
#include "infra/storage/storage.h"
#include "infra/store/store.h"

typedef struct gp_runtime {
    const gp_settings_t *settings;
    const char *public_url;
    gp_store_t *store;
    gp_queue_t *queue;
    gp_events_t *events;
    gp_storage_t *storage;
    gp_limiter_t *limiter;   /* provider limits; NULL in a gateway-only process */
    gp_presence_t *presence; /* live workers (every process: gateways read it for /ready) */
    gp_committer_t *committer;
    struct gp_worker_pool *workers; /* NULL in a gateway-only process */
    int64_t started_at;
    uint8_t link_secret[32]; /* signs /files/ links (core/link_secret.h) */
    char service_user[37];   /* owner of work that enters through Redis (worker processes) */
    char worker_id[GP_WORKER_ID_LEN]; /* this process's worker id; "" = not a worker process */
} gp_runtime_t;

/* Pushes a committed pending task to the dispatch queue. */
int gp_runtime_dispatch(gp_runtime_t *rt, const gp_task_t *t);

/* Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^(retry-1))]. `rnd` is a
 * uniform 64-bit random value (passed in so tests are deterministic). */
int64_t gp_backoff_ms(int retry, int64_t base_ms, int64_t cap_ms, uint64_t rnd);

#endif

/*
 * worker.h — the generic worker: take a task, run its provider, commit the outcome.
 * It knows no task type; everything specific lives behind gp_provider_t.
 *
 * Threading: the pool owns `concurrency` worker threads, one watchdog thread and one finisher
 * thread (publishes, dispatches retries and acks once an outcome committed, so the
 * committer's callbacks only enqueue). start/stop are called from the main thread only;
 * gp_worker_pool_busy() from any thread.
 */
#ifndef GP_WORKER_H
#define GP_WORKER_H

#include "runtime/runtime.h"

#include <genpulse/handler.h>

typedef struct gp_worker_pool gp_worker_pool_t;

gp_worker_pool_t *gp_worker_pool_start(gp_runtime_t *rt, int concurrency);
/*
 * Stops taking tasks, lets running ones finish for up to grace_ms, then asks the rest to
 * stop and hands them back to the queue (pending, same attempt count). Frees the pool.
 */
void gp_worker_pool_stop(gp_worker_pool_t *pool, int64_t grace_ms);
/* The two halves of stop, for a process whose other threads (HTTP handlers, the heartbeat)
 * still read the pool's counters while it drains: drain() leaves the pool readable
 * (gp_worker_pool_busy/size stay valid) until free(), once no reader is left. */
void gp_worker_pool_drain(gp_worker_pool_t *pool, int64_t grace_ms);
void gp_worker_pool_free(gp_worker_pool_t *pool);
int gp_worker_pool_busy(gp_worker_pool_t *pool);
int gp_worker_pool_size(gp_worker_pool_t *pool);
/* Milliseconds since the pool's watchdog thread last went round (it does every 100 ms while
 * the pool works): the systemd watchdog's proof of life. 0 before its first round. */
int64_t gp_worker_pool_progress_ms(gp_worker_pool_t *pool);

/*
 * Embedded-mode recovery at start, before workers run: pending tasks are queued again;
 * processing ones were interrupted by a crash and are queued for another attempt (or failed
 * with `interrupted` when no retries are left). Returns the number of tasks queued.
 */
int gp_recover_embedded(gp_runtime_t *rt);

/*
 * Distributed mode: a thread that re-dispatches committed, unfinished work the queue lost
 * (see reconciler.c). start/stop from the main thread only.
 */
typedef struct gp_reconciler gp_reconciler_t;
gp_reconciler_t *gp_reconciler_start(gp_runtime_t *rt);
void gp_reconciler_stop(gp_reconciler_t *r);

/*
 * Worker identity and heartbeats (heartbeat.c). gp_worker_id_make writes a fresh id
 * "<host>:<pid>:<8 hex>" (host cut to [A-Za-z0-9._-]). gp_heartbeat_start registers the
 * process in rt->presence and beats every GP_PRESENCE_BEAT_MS from its own thread (busy =
 * gp_worker_pool_busy(rt->workers)); stop ends the thread and leave()s the registry.
 * start/stop from the main thread only.
 */
void gp_worker_id_make(char out[GP_WORKER_ID_LEN]);
typedef struct gp_heartbeat gp_heartbeat_t;
gp_heartbeat_t *gp_heartbeat_start(gp_runtime_t *rt, const char *version, const char *queues);
void gp_heartbeat_stop(gp_heartbeat_t *hb);

/* What a finished attempt turns into. Pure function, unit-tested. */
typedef struct gp_outcome {
    gp_task_status_t status; /* SUCCEEDED, FAILED, CANCELED, or PENDING (retry) */
    int64_t retry_delay_ms;  /* PENDING only */
    const char *error_code;  /* NULL on success */
    const char *error_message;
} gp_outcome_t;

typedef struct gp_attempt_report {
    int rc; /* provider return value */
    bool cancel_requested;
    bool timed_out;
    bool shutting_down;    /* drain: hand back without counting a failure */
    const char *fail_code; /* from gp_ctx_fail, may be NULL */
    const char *fail_message;
    int attempts; /* including this one */
    int max_retries;
} gp_attempt_report_t;

gp_outcome_t gp_decide_outcome(const gp_attempt_report_t *r, int64_t base_ms, int64_t cap_ms,
                               uint64_t rnd);

#endif

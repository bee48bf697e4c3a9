/*
 * pool.c — the worker pool: claim → run → commit, plus a watchdog for hard timeouts and
 * unresponsive cancels.
 *
 * DESIGN: each slot is claimed with a compare-and-set (pending, n) → (processing, n + 1) and
 * finished with (processing, n + 1) → outcome, so a second execution of the same attempt
 * (another process, a recovered duplicate) commits nothing. Within the process, whoever
 * first flips slot->finalized (the worker when run() returns, or the watchdog when the
 * deadline passes) decides the outcome; the loser only cleans up. That way a provider stuck
 * in a blocking call cannot keep its task "processing" past the hard timeout.
 *
 * Commit callbacks only enqueue: the committer runs every op's done callback on its own
 * thread, so a slow Redis call there would stall every commit of the process. An outcome
 * that committed (or a bus cancel that did) is handed to the pool's finisher thread, which
 * publishes the status event, dispatches the retry and acks the delivery, in commit order.
 */
#include "identity/plans.h"
#include "worker/worker.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/registry.h"
#include "core/util.h"
#include "worker/ctx.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POP_TIMEOUT_MS 500
#define WATCHDOG_TICK_MS 100
#define CANCEL_GRACE_MS 10000 /* a canceled provider that ignores us this long is cut loose */
#define COMMIT_RETRY_MS 500   /* an outcome the store refused is offered again this often */

/* Work the committer hands to the finisher thread: run(w) does the I/O and frees w. */
typedef struct pool_work {
    struct pool_work *next;
    void (*run)(struct pool_work *w);
} pool_work_t;

typedef struct slot {
    /* Guarded by pool->lock: */
    bool busy;
    char task_id[37];
    gp_queue_item_t item;
    gp_ctx_t *ctx;     /* NULL until the claim commits */
    int64_t deadline;  /* mono ms */
    int64_t cancel_at; /* mono ms; 0 = no cancel */
    atomic_bool finalized;
} slot_t;

struct gp_worker_pool {
    gp_runtime_t *rt;
    int n;
    pthread_t *threads;
    slot_t *slots;
    pthread_t watchdog;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_cond_t watchdog_wake; /* ticks, and thread exits; not every task */
    atomic_bool stopping;         /* take no new tasks */
    atomic_bool draining;         /* grace expired: hand running tasks back */
    atomic_int busy;
    int threads_alive;
    struct finish_job *commit_retries; /* outcomes waiting for the store to come back */
    atomic_bool stopped;               /* threads joined: retries are given up */
    atomic_int jobs_in_flight;         /* outcomes and bus cancels not yet settled */
    atomic_llong watchdog_tick;        /* mono ms of the watchdog's last round (liveness) */
    bool keep_allocated;               /* drain left outcomes in flight: never freed */
    /* The finisher thread and its list (guarded by finish_lock, not lock: the committer
     * must never wait behind the watchdog's queue I/O). */
    pthread_t finisher;
    pthread_mutex_t finish_lock;
    pthread_cond_t finish_wake;
    pool_work_t *finish_head, *finish_tail;
    bool finish_stopping;  /* drain the list, then exit */
    bool finisher_gone;    /* joined: late callbacks run inline (exit path only) */
    gp_worker_host_t host; /* what the queue's monitoring tools may ask (queue.h) */
};

typedef struct worker_arg {
    gp_worker_pool_t *pool;
    int index;
} worker_arg_t;

gp_outcome_t gp_decide_outcome(const gp_attempt_report_t *r, int64_t base_ms, int64_t cap_ms,
                               uint64_t rnd)
{
    gp_outcome_t o = {0};
    if (r->shutting_down && !r->cancel_requested) {
        o.status = GP_TASK_PENDING; /* handed back: not the task's fault */
        return o;
    }
    if (r->cancel_requested) {
        o.status = GP_TASK_CANCELED;
        o.error_code = gp_task_error_code(GP_TE_CANCELED);
        o.error_message = "canceled by request";
        return o;
    }
    bool retryable;
    if (r->timed_out) {
        retryable = true;
        o.error_code = gp_task_error_code(GP_TE_TIMEOUT);
        o.error_message = "the task exceeded its time limit";
    } else if (r->rc == 0) {
        o.status = GP_TASK_SUCCEEDED;
        return o;
    } else if (r->rc == GP_CTX_FAILED_RETRYABLE || r->rc == GP_CTX_FAILED_PERMANENT) {
        retryable = r->rc == GP_CTX_FAILED_RETRYABLE;
        o.error_code = r->fail_code ? r->fail_code : gp_task_error_code(GP_TE_PROVIDER_ERROR);
        o.error_message = r->fail_message ? r->fail_message : "the provider failed";
    } else if (r->rc == GP_CTX_CANCELED) {
        /* Stopped without a cancel request or timeout: treat as a transient failure. */
        retryable = true;
        o.error_code = gp_task_error_code(GP_TE_INTERRUPTED);
        o.error_message = "the provider stopped early";
    } else {
        retryable = false;
        o.error_code = gp_task_error_code(GP_TE_INTERNAL_ERROR);
        o.error_message = "the provider returned an unexpected value";
    }
    if (retryable && r->attempts <= r->max_retries) {
        o.status = GP_TASK_PENDING;
        o.retry_delay_ms = gp_backoff_ms(r->attempts, base_ms, cap_ms, rnd);
    } else {
        o.status = GP_TASK_FAILED;
    }
    return o;
}

/* Hands w to the finisher thread. Called from the committer thread: takes only finish_lock. */
static void finisher_enqueue(gp_worker_pool_t *pool, pool_work_t *w)
{
    w->next = NULL;
    pthread_mutex_lock(&pool->finish_lock);
    if (pool->finisher_gone) {
        /* Only after a stop that gave up waiting: the process is exiting, and the committer
         * is the last thread that can still settle this. */
        pthread_mutex_unlock(&pool->finish_lock);
        w->run(w);
        return;
    }
    if (pool->finish_tail)
        pool->finish_tail->next = w;
    else
        pool->finish_head = w;
    pool->finish_tail = w;
    pthread_cond_signal(&pool->finish_wake);
    pthread_mutex_unlock(&pool->finish_lock);
}

/* Runs the queued work in the order the committer finished it, until told to stop and the
 * list is empty. */
static void *finisher_main(void *arg)
{
    gp_worker_pool_t *pool = arg;
    pthread_setname_np(pthread_self(), "gp-finisher");
    pthread_mutex_lock(&pool->finish_lock);
    for (;;) {
        while (!pool->finish_head && !pool->finish_stopping)
            pthread_cond_wait(&pool->finish_wake, &pool->finish_lock);
        pool_work_t *w = pool->finish_head;
        if (!w)
            break;
        pool->finish_head = w->next;
        if (!pool->finish_head)
            pool->finish_tail = NULL;
        pthread_mutex_unlock(&pool->finish_lock);
        w->run(w);
        pthread_mutex_lock(&pool->finish_lock);
    }
    pool->finisher_gone = true; /* in the same critical section that saw the list empty */
    pthread_mutex_unlock(&pool->finish_lock);
    return NULL;
}

/* One attempt's outcome on its way to the store. Owns copies of everything it needs, so the
 * worker can free its context and take the next task before the commit lands. */
typedef struct finish_job {
    pool_work_t work; /* first: the finisher hands back this pointer */
    gp_store_op_t op;
    gp_runtime_t *rt;
    struct gp_worker_pool *pool;
    struct finish_job *next_retry; /* on pool->commit_retries while the store is down */
    int64_t retry_at;              /* mono ms */
    gp_task_t task;                /* copy, updated to the outcome */
    int64_t retry_delay_ms;
    bool handed_back;
    gp_queue_item_t item; /* the delivery, acknowledged once the outcome is committed */
    char request_id[65];  /* for the log lines of the settlement */
} finish_job_t;

/* A cancel won the race against the outcome: the task is what the store applied. */
static void take_applied_cancel(gp_task_t *t, gp_task_status_t applied)
{
    t->status = applied;
    free(t->error_code);
    free(t->error_message);
    t->error_code = gp_xstrdup(gp_task_error_code(GP_TE_CANCELED));
    t->error_message = gp_xstrdup("canceled by request");
    json_decref(t->result);
    t->result = NULL;
    if (!t->completed_at)
        t->completed_at = gp_now_ms();
}

/* genpulse_tasks_finished_total / genpulse_task_retries_total for a committed outcome. */
static void count_outcome(const gp_task_t *t, bool handed_back)
{
    const char *tt, *prov;
    gp_metrics_task_labels(t->task_type, t->provider, &tt, &prov);
    if (t->status == GP_TASK_PENDING) {
        if (!handed_back)
            gp_metrics_inc(GP_M_TASK_RETRIES, tt, prov, NULL);
    } else {
        gp_metrics_inc(GP_M_TASKS_FINISHED, tt, prov, gp_task_status_name(t->status));
    }
}

/* Tells the queue's monitoring tools (task_event hook, queue.h) how an attempt ended. */
static void announce_outcome(gp_runtime_t *rt, const gp_task_t *t)
{
    static const gp_task_event_kind_t kinds[] = {[GP_TASK_SUCCEEDED] = GP_TEV_SUCCEEDED,
                                                 [GP_TASK_FAILED] = GP_TEV_FAILED,
                                                 [GP_TASK_CANCELED] = GP_TEV_REVOKED,
                                                 [GP_TASK_PENDING] = GP_TEV_RETRIED};
    if (t->status != GP_TASK_SUCCEEDED && t->status != GP_TASK_FAILED &&
        t->status != GP_TASK_CANCELED && t->status != GP_TASK_PENDING)
        return;
    gp_task_event_t ev = {.kind = kinds[t->status],
                          .task_id = t->id,
                          .task_type = t->task_type,
                          .retries = t->attempts > 0 ? t->attempts - 1 : 0,
                          .result = t->result,
                          .error_code = t->error_code,
                          .error_message = t->error_message,
                          .runtime_s =
                              t->started_at ? (double)(gp_now_ms() - t->started_at) / 1000.0 : 0,
                          .terminated = t->status == GP_TASK_CANCELED};
    gp_queue_task_event(rt->queue, &ev);
}

/* Finisher thread: tells the world about a committed outcome, queues its retry, acks its
 * delivery (in that order: an ack before the publish could lose the event on a crash). */
static void settle_outcome(pool_work_t *w)
{
    finish_job_t *job = (finish_job_t *)w;
    gp_store_op_t *op = &job->op;
    gp_task_t *t = &job->task;
    gp_log_set_request_id(job->request_id);
    if (op->result != 0) {
        gp_log(op->result == -GP_E_CONFLICT ? GP_LOG_INFO : GP_LOG_ERROR, t->id,
               "outcome %s not committed: %s", gp_task_status_name(t->status),
               gp_err_code(op->result));
    } else {
        if (op->tr.applied_status != t->status)
            take_applied_cancel(t, op->tr.applied_status);
        count_outcome(t, job->handed_back);
        gp_events_publish_status(job->rt->events, t, false);
        if (!job->handed_back)
            announce_outcome(job->rt, t);
        if (t->status == GP_TASK_PENDING) {
            gp_log(GP_LOG_INFO, t->id, "attempt %d %s; retry in %lld ms", t->attempts,
                   job->handed_back ? "handed back at shutdown"
                                    : (t->error_message ? t->error_message : "failed"),
                   (long long)job->retry_delay_ms);
            gp_runtime_dispatch(job->rt, t);
        } else {
            gp_log(t->status == GP_TASK_SUCCEEDED ? GP_LOG_DEBUG : GP_LOG_INFO, t->id,
                   "%s after %d attempt(s)%s%s", gp_task_status_name(t->status), t->attempts,
                   t->error_message ? ": " : "", t->error_message ? t->error_message : "");
        }
    }
    if (op->result != -GP_E_UNAVAILABLE) /* else the lease runs out and it runs again */
        gp_queue_ack(job->rt->queue, &job->item);
    gp_task_clear(t);
    gp_log_set_request_id(NULL);
    atomic_fetch_sub(&job->pool->jobs_in_flight, 1); /* last touch of the pool */
    free(job);
}

/* Committer thread: only enqueues (the store-down retry list or the finisher). */
static void finish_committed(gp_store_op_t *op, void *arg)
{
    finish_job_t *job = arg;
    if (op->result == -GP_E_UNAVAILABLE && !atomic_load(&job->pool->stopped)) {
        /* The store is down: keep the outcome (and the delivery's lease) and commit it again
         * shortly; the watchdog resubmits it. Losing it would leave the task "processing". */
        pthread_mutex_lock(&job->pool->lock);
        job->retry_at = gp_mono_ms() + COMMIT_RETRY_MS;
        job->next_retry = job->pool->commit_retries;
        job->pool->commit_retries = job;
        pthread_mutex_unlock(&job->pool->lock);
        return;
    }
    job->work.run = settle_outcome;
    finisher_enqueue(job->pool, &job->work);
}

/* Decides the outcome of ctx's attempt and queues its commit (asynchronously). */
static void finish_attempt(gp_worker_pool_t *pool, const gp_queue_item_t *item, gp_ctx_t *ctx,
                           int rc, bool timed_out)
{
    gp_runtime_t *rt = pool->rt;
    const gp_settings_t *s = rt->settings;
    bool cancel = atomic_load(&ctx->cancel);
    bool draining = atomic_load(&pool->draining);
    uint64_t rnd;
    gp_random_bytes(&rnd, sizeof rnd);
    gp_attempt_report_t report = {
        .rc = rc,
        .cancel_requested = cancel && !draining,
        .timed_out = timed_out,
        .shutting_down = draining,
        .fail_code = ctx->fail_code,
        .fail_message = ctx->fail_message,
        .attempts = ctx->task.attempts,
        .max_retries = ctx->task.max_retries,
    };
    /* A drain also sets ctx->cancel; a client's cancel is in the store's flag. */
    if (draining && cancel) {
        gp_task_t now;
        if (gp_store_get(rt->store, ctx->task.id, &now) == 0) {
            report.cancel_requested = now.cancel_requested;
            report.shutting_down = !now.cancel_requested;
            gp_task_clear(&now);
        }
    }
    gp_outcome_t o = gp_decide_outcome(&report, s->retry_base_ms, s->retry_max_ms, rnd);
    finish_job_t *job = gp_xcalloc(1, sizeof *job);
    job->rt = rt;
    job->pool = pool;
    job->item = *item;
    job->retry_delay_ms = o.retry_delay_ms;
    job->handed_back = report.shutting_down && o.status == GP_TASK_PENDING;
    memcpy(job->request_id, ctx->request_id, sizeof job->request_id);
    gp_task_copy(&job->task, &ctx->task);
    gp_task_t *t = &job->task;
    int64_t now_ms = gp_now_ms();
    free(t->error_code);
    free(t->error_message);
    t->error_code = o.error_code ? gp_xstrdup(o.error_code) : NULL;
    t->error_message = o.error_message ? gp_xstrdup(o.error_message) : NULL;
    t->status = o.status;
    gp_transition_t *tr = &job->op.tr;
    job->op.kind = GP_OP_TRANSITION;
    memcpy(tr->id, t->id, sizeof tr->id);
    tr->from_status = GP_TASK_PROCESSING;
    tr->from_attempts = t->attempts;
    tr->to_status = o.status;
    tr->to_attempts = t->attempts;
    tr->error_code = t->error_code;
    tr->error_message = t->error_message;
    tr->honor_cancel = true;
    tr->known_free = t->price == 0;
    /* A provider that timed out or a run cut short may still have done (and billed) the
     * work: its credits stay reserved rather than coming back unseen. */
    tr->keep_reservation = o.status == GP_TASK_FAILED && t->error_code &&
                           (!strcmp(t->error_code, gp_task_error_code(GP_TE_TIMEOUT)) ||
                            !strcmp(t->error_code, gp_task_error_code(GP_TE_INTERRUPTED)));
    if (o.status == GP_TASK_PENDING) {
        tr->not_before = o.retry_delay_ms ? now_ms + o.retry_delay_ms : 0;
        t->not_before = tr->not_before;
    } else {
        tr->completed_at = t->completed_at = now_ms;
        if (o.status == GP_TASK_SUCCEEDED) {
            json_decref(t->result);
            t->result = json_deep_copy(ctx->result); /* ctx may be freed before the commit */
            tr->result = t->result;
        }
    }
    job->op.done = finish_committed;
    job->op.done_arg = job;
    atomic_fetch_add(&pool->jobs_in_flight, 1);
    gp_committer_submit(rt->committer, &job->op);
}

static int run_limited(gp_ctx_t *ctx, const gp_provider_t *provider);

/* Queue wait: from when the task could run (created, or its retry's not_before) to its claim. */
static void observe_queue_wait(const gp_task_t *t, int64_t claimed_at)
{
    int64_t ready = t->not_before > t->created_at ? t->not_before : t->created_at;
    if (ready <= 0 || claimed_at < ready)
        ready = claimed_at;
    const char *tt, *prov;
    gp_metrics_task_labels(t->task_type, t->provider, &tt, &prov);
    gp_metrics_observe(GP_M_TASK_QUEUE_WAIT, (double)(claimed_at - ready) / 1000.0, tt, prov);
}

/* Tells the queue's monitoring tools (task_event hook, queue.h) that t was claimed and runs. */
static void announce_start(gp_worker_pool_t *pool, const gp_task_t *t)
{
    gp_task_event_t ev = {.kind = GP_TEV_RECEIVED,
                          .task_id = t->id,
                          .task_type = t->task_type,
                          .params = t->params,
                          .retries = t->attempts > 0 ? t->attempts - 1 : 0};
    gp_queue_task_event(pool->rt->queue, &ev);
    ev.kind = GP_TEV_STARTED;
    gp_queue_task_event(pool->rt->queue, &ev);
}

static void run_one(gp_worker_pool_t *pool, slot_t *slot, const gp_queue_item_t *item)
{
    gp_runtime_t *rt = pool->rt;
    /* Registered before the claim commits, so a cancel right after the claim finds it. */
    pthread_mutex_lock(&pool->lock);
    memcpy(slot->task_id, item->id, sizeof slot->task_id);
    slot->item = *item;
    slot->ctx = NULL;
    slot->busy = true;
    slot->cancel_at = 0;
    slot->deadline = INT64_MAX;
    atomic_store(&slot->finalized, false);
    pthread_mutex_unlock(&pool->lock);

    /* The claim reads the row as it commits it: no separate read, and a task canceled or
     * already taken while queued simply loses the compare-and-set. */
    gp_task_t t = {0};
    gp_store_op_t op = {.kind = GP_OP_CLAIM,
                        .task = &t,
                        .claim_started_at = gp_now_ms(),
                        .claim_takeover = item->redelivered,
                        .claim_worker_id = rt->worker_id};
    memcpy(op.cancel_id, item->id, sizeof op.cancel_id);
    int rc = gp_committer_run_sync(rt->committer, &op);
    gp_ctx_t *ctx = NULL;
    if (rc != 0) {
        gp_log(rc == -GP_E_CONFLICT ? GP_LOG_DEBUG : GP_LOG_WARN, item->id, "not claimed: %s",
               gp_err_code(rc));
        if (rc == -GP_E_CONFLICT)
            gp_queue_ack(rt->queue, item); /* canceled or taken: this delivery is spent */
    } else {
        const gp_task_type_t *type = gp_registry_task_type(t.task_type);
        const gp_provider_t *provider = type ? gp_registry_provider(type, t.provider) : NULL;
        ctx = gp_xmalloc(sizeof *ctx);
        gp_ctx_init(ctx, rt, &t);
        pthread_mutex_lock(&pool->lock);
        slot->ctx = ctx;
        if (slot->cancel_at || atomic_load(&pool->draining))
            atomic_store(&ctx->cancel, true);
        slot->deadline = gp_mono_ms() + rt->settings->task_timeout_s * 1000;
        ctx->deadline_ms = slot->deadline;
        ctx->provider = provider;
        pthread_mutex_unlock(&pool->lock);
        atomic_fetch_add(&pool->busy, 1);
        gp_log_set_request_id(ctx->request_id);
        observe_queue_wait(&t, op.claim_started_at);
        gp_events_publish_status(rt->events, &ctx->task, true);
        announce_start(pool, &ctx->task);
        gp_log(GP_LOG_DEBUG, t.id, "attempt %d on %s/%s", ctx->task.attempts, t.task_type,
               t.provider);
        int run_rc;
        if (!provider)
            run_rc = gp_ctx_fail(ctx, false, GP_TE_UNKNOWN_PROVIDER,
                                 "this worker has no provider %s for %s", t.provider, t.task_type);
        else if (gp_ctx_is_canceled(ctx))
            run_rc = GP_CTX_CANCELED;
        else {
            double t0 = gp_metrics_clock();
            run_rc = run_limited(ctx, provider);
            const char *tt, *prov;
            gp_metrics_task_labels(t.task_type, t.provider, &tt, &prov);
            gp_metrics_observe(GP_M_TASK_RUN, gp_metrics_clock() - t0, tt, prov);
        }
        if (!atomic_exchange(&slot->finalized, true))
            finish_attempt(pool, item, ctx, run_rc, atomic_load(&ctx->timed_out));
        atomic_fetch_sub(&pool->busy, 1);
        gp_log_set_request_id(NULL);
    }
    pthread_mutex_lock(&pool->lock);
    slot->busy = false;
    slot->ctx = NULL;
    if (atomic_load(&pool->stopping))
        pthread_cond_broadcast(&pool->changed); /* stop() waits for idle slots */
    pthread_mutex_unlock(&pool->lock);
    if (ctx) {
        gp_ctx_destroy(ctx);
        free(ctx);
    }
    gp_task_clear(&t);
}

static bool ctx_canceled(void *arg)
{
    return gp_ctx_is_canceled(arg);
}

/* Runs the provider inside its concurrency limit ("concurrency" setting, shared by every
 * worker through the limiter). The wait counts against the task's hard timeout. */
static int run_limited(gp_ctx_t *ctx, const gp_provider_t *provider)
{
    long max = strtol(gp_ctx_setting(ctx, "concurrency"), NULL, 10);
    gp_limiter_t *lim = ctx->rt->limiter;
    if (max <= 0 || !lim)
        return provider->run(ctx);
    gp_limit_slot_t slot = {0};
    int64_t lifetime = ctx->rt->settings->task_timeout_s * 1000 + 60000;
    int rc = lim->vt->acquire_slot(lim, provider->name, (int)max, lifetime, ctx->deadline_ms,
                                   ctx_canceled, ctx, &slot);
    if (rc == -GP_E_CANCELED || gp_ctx_is_canceled(ctx))
        return GP_CTX_CANCELED;
    if (rc == -GP_E_TIMEOUT)
        return gp_ctx_fail(ctx, true, GP_TE_TIMEOUT, "waited too long for a free %s slot",
                           provider->name);
    if (rc != 0)
        gp_log(GP_LOG_WARN, ctx->task.id, "%s concurrency limit unavailable; running without it",
               provider->name);
    int run_rc = provider->run(ctx);
    if (slot.held)
        lim->vt->release_slot(lim, &slot);
    return run_rc;
}

/* A foreign task's row, created without waiting: the claim run_one submits right after it
 * usually lands in the same committer batch (one commit, not two, on a Celery client's
 * round trip). A create that fails (the store down) leaves the claim nothing to claim: that
 * delivery is not acked and comes back after its lease. An existing row (a redelivery, or
 * the sender created it) is a conflict the claim does not mind. */
typedef struct pipelined_create {
    gp_store_op_t op;
    gp_task_t task;
} pipelined_create_t;

static void pipelined_create_done(gp_store_op_t *op, void *arg)
{
    (void)op;
    pipelined_create_t *pc = arg; /* committer thread: only frees */
    gp_task_clear(&pc->task);
    free(pc);
}

/* Takes over *t (left cleared). Returns 0. */
static int create_pipelined(gp_runtime_t *rt, gp_task_t *t)
{
    pipelined_create_t *pc = gp_xcalloc(1, sizeof *pc);
    pc->task = *t;
    memset(t, 0, sizeof *t);
    pc->op = (gp_store_op_t){
        .kind = GP_OP_CREATE, .task = &pc->task, .done = pipelined_create_done, .done_arg = pc};
    gp_committer_submit(rt->committer, &pc->op);
    return 0;
}

/*
 * A task another client queued directly (Celery's send_task: the task name is a GenPulse
 * task type, kwargs its params) has no row yet: validate it and create the row under the
 * sender's id, so the normal claim runs it and its outcome reaches the sender through the
 * event bus (which also writes Celery's result keys). An invalid one is stored as failed
 * with the validation messages. Returns 0 when the task is ready to be claimed.
 */
static int adopt_foreign(gp_worker_pool_t *pool, const gp_queue_item_t *item)
{
    gp_runtime_t *rt = pool->rt;
    if (!gp_is_uuid(item->id)) {
        gp_log(GP_LOG_WARN, NULL, "dropping foreign task \"%s\": its id is not a UUID",
               item->task_type);
        return -GP_E_BAD_REQUEST;
    }
    json_t *params = json_loads(item->foreign_params, 0, NULL);
    json_t *body = json_pack("{s:s, s:o}", "task_type", item->task_type, "params",
                             params ? params : json_object());
    gp_submission_t sub;
    json_t *details = NULL;
    int valid =
        gp_validate_submission(body, (int)rt->settings->default_max_retries, &sub, &details);
    json_decref(body);
    gp_task_t t = {0};
    memcpy(t.id, item->id, sizeof t.id);
    t.task_type = gp_xstrdup(valid == 0 ? sub.task_type->name : item->task_type);
    t.provider = gp_xstrdup(valid == 0 ? sub.provider->name : "none");
    t.params = valid == 0 ? json_incref(sub.params) : json_loads(item->foreign_params, 0, NULL);
    if (!t.params)
        t.params = json_object();
    t.max_retries = valid == 0 ? sub.max_retries : 0;
    t.priority = item->priority;
    t.created_at = gp_now_ms();
    snprintf(t.owner, sizeof t.owner, "%s",
             rt->service_user[0] ? rt->service_user : GP_LOCAL_USER_ID);
    if (valid == 0) {
        gp_submission_clear(&sub);
        json_decref(details);
        return create_pipelined(rt, &t);
    }
    gp_store_op_t op = {.kind = GP_OP_CREATE, .task = &t};
    int rc = gp_committer_run_sync(rt->committer, &op);
    if (rc == -GP_E_CONFLICT)
        rc = 0; /* the row exists: an earlier delivery or the sender created it */
    if (rc == 0 && !op.replayed) { /* invalid: stored as failed with the reasons */
        char *why = json_dumps(details, JSON_COMPACT);
        gp_store_op_t fail = {.kind = GP_OP_TRANSITION};
        memcpy(fail.tr.id, t.id, sizeof fail.tr.id);
        fail.tr.from_status = fail.tr.to_status = GP_TASK_PENDING;
        fail.tr.to_status = GP_TASK_FAILED;
        fail.tr.completed_at = gp_now_ms();
        fail.tr.error_code = gp_task_error_code(GP_TE_VALIDATION_ERROR);
        fail.tr.error_message = why ? why : "invalid params";
        if (gp_committer_run_sync(rt->committer, &fail) == 0) {
            t.status = GP_TASK_FAILED;
            t.error_code = gp_xstrdup(fail.tr.error_code);
            t.error_message = gp_xstrdup(fail.tr.error_message);
            t.completed_at = fail.tr.completed_at;
            gp_events_publish_status(rt->events, &t, false);
        }
        gp_log(GP_LOG_INFO, t.id, "foreign task %s rejected: %s", item->task_type,
               why ? why : "invalid");
        free(why);
        rc = -GP_E_VALIDATION;
    }
    json_decref(details);
    gp_task_clear(&t);
    return rc;
}

/* ---- the plan's running limit per user ------------------------------------------------
 * Before a task is claimed, its user takes one of their plan's max_running slots in the
 * limiter (shared by every worker through Redis in distributed mode; slots expire on their
 * own if a worker dies). A user at the limit gets the task put back for a moment instead,
 * so a worker thread never sits waiting on one user while others have work. Plans are read
 * once per user per minute. */
#define PLAN_CACHE_SLOTS 256
#define PLAN_CACHE_MS 60000
#define DEFER_MS 200

static pthread_mutex_t plan_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char owner[37];
    int max_running;
    int64_t until;
} plan_cache[PLAN_CACHE_SLOTS];

static int owner_max_running(gp_runtime_t *rt, const char *owner)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)owner; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    size_t i = (size_t)(h % PLAN_CACHE_SLOTS);
    int64_t now = gp_mono_ms();
    pthread_mutex_lock(&plan_cache_lock);
    if (!strcmp(plan_cache[i].owner, owner) && now < plan_cache[i].until) {
        int max = plan_cache[i].max_running;
        pthread_mutex_unlock(&plan_cache_lock);
        return max;
    }
    pthread_mutex_unlock(&plan_cache_lock);
    gp_user_t u;
    int max = 0;
    if (rt->store->vt->user_get(rt->store, owner, &u) == 0) {
        max = gp_plan_find(u.plan)->max_running;
        gp_user_clear(&u);
    }
    pthread_mutex_lock(&plan_cache_lock);
    snprintf(plan_cache[i].owner, sizeof plan_cache[i].owner, "%s", owner);
    plan_cache[i].max_running = max;
    plan_cache[i].until = now + PLAN_CACHE_MS;
    pthread_mutex_unlock(&plan_cache_lock);
    return max;
}

/* True when item may run now (user_slot then holds the user's slot if one was needed). */
static bool take_user_slot(gp_worker_pool_t *pool, const gp_queue_item_t *item,
                           gp_limit_slot_t *user_slot)
{
    memset(user_slot, 0, sizeof *user_slot);
    gp_limiter_t *lim = pool->rt->limiter;
    if (!item->owner[0] || !lim)
        return true;
    int max = owner_max_running(pool->rt, item->owner);
    if (max <= 0)
        return true;
    char key[64];
    snprintf(key, sizeof key, "user:%s", item->owner);
    int64_t lifetime = pool->rt->settings->task_timeout_s * 1000 + 60000;
    int rc = lim->vt->acquire_slot(lim, key, max, lifetime, gp_mono_ms(), NULL, NULL, user_slot);
    return rc != -GP_E_TIMEOUT; /* the limiter unreachable: run rather than stall */
}

/* A redelivered item may take over a processing task (its holder's lease ran out, or the
 * reconciler found its worker gone); not while that holder is still alive and running it. */
static bool holder_alive(gp_worker_pool_t *pool, const char *task_id)
{
    gp_runtime_t *rt = pool->rt;
    gp_task_t t;
    if (gp_store_get(rt->store, task_id, &t) != 0)
        return false; /* the claim decides */
    bool alive = false;
    if (t.status == GP_TASK_PROCESSING && t.worker_id[0]) {
        if (!strcmp(t.worker_id, rt->worker_id)) {
            pthread_mutex_lock(&pool->lock);
            for (int i = 0; i < pool->n && !alive; i++)
                alive = pool->slots[i].busy && !strcmp(pool->slots[i].task_id, task_id);
            pthread_mutex_unlock(&pool->lock);
        } else {
            gp_worker_info_t *w = NULL;
            size_t n = 0;
            /* Alive = beat within two beat periods: a holder that died before its lease ran
             * out has not beaten for most of a lease, so a short --lease still takes over
             * fast, while a live holder whose renewals stalled keeps its task. */
            int64_t now = gp_now_ms();
            if (gp_presence_list(rt->presence, &w, &n) == 0)
                for (size_t i = 0; i < n && !alive; i++)
                    alive = w[i].alive && !strcmp(w[i].id, t.worker_id) &&
                            now - w[i].last_beat < 2 * GP_PRESENCE_BEAT_MS;
            free(w);
        }
        if (alive)
            gp_log(GP_LOG_INFO, task_id, "redelivery dropped: worker %s is alive and runs it",
                   t.worker_id);
    }
    gp_task_clear(&t);
    return alive;
}

static void *worker_main(void *arg)
{
    worker_arg_t *wa = arg;
    gp_worker_pool_t *pool = wa->pool;
    slot_t *slot = &pool->slots[wa->index];
    char name[16];
    snprintf(name, sizeof name, "gp-worker-%d", wa->index);
    pthread_setname_np(pthread_self(), name);
    free(wa);
    while (!atomic_load(&pool->stopping)) {
        gp_queue_item_t item;
        int rc = gp_queue_pop(pool->rt->queue, &item, POP_TIMEOUT_MS);
        if (rc == -GP_E_SHUTTING_DOWN)
            break;
        if (rc != 0)
            continue;
        if (item.foreign_params) {
            int arc = adopt_foreign(pool, &item);
            gp_queue_item_release(&item);
            if (arc != 0) {
                gp_queue_ack(pool->rt->queue, &item);
                continue;
            }
        }
        if (atomic_load(&pool->stopping)) {
            gp_queue_push(pool->rt->queue, &item); /* not ours to run any more */
            gp_queue_ack(pool->rt->queue, &item);  /* the new push replaces this delivery */
            break;
        }
        if (item.redelivered && holder_alive(pool, item.id)) {
            gp_queue_ack(pool->rt->queue, &item);
            continue;
        }
        gp_limit_slot_t user_slot;
        if (!take_user_slot(pool, &item, &user_slot)) {
            gp_queue_item_t later = item; /* the user is at their plan's running limit */
            later.ready_at = gp_now_ms() + DEFER_MS;
            later.delivery_tag[0] = '\0';
            gp_queue_push(pool->rt->queue, &later);
            gp_queue_ack(pool->rt->queue, &item);
            continue;
        }
        run_one(pool, slot, &item);
        if (user_slot.held)
            pool->rt->limiter->vt->release_slot(pool->rt->limiter, &user_slot);
    }
    pthread_mutex_lock(&pool->lock);
    pool->threads_alive--;
    pthread_cond_broadcast(&pool->changed);
    pthread_cond_signal(&pool->watchdog_wake);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* The watchdog finalizes attempts whose provider overran its deadline or ignored a cancel. */
/* Commits again the outcomes the store refused, once their retry time has come.
 * Called with pool->lock held. */
static void resubmit_refused_outcomes(gp_worker_pool_t *pool, int64_t now)
{
    for (finish_job_t **pp = &pool->commit_retries; *pp;) {
        finish_job_t *job = *pp;
        if (job->retry_at <= now) {
            *pp = job->next_retry;
            job->next_retry = NULL;
            gp_committer_submit(pool->rt->committer, &job->op);
        } else {
            pp = &job->next_retry;
        }
    }
}

/* Leases: renews the deliveries this process runs and puts back those dead workers left
 * reserved. Called with pool->lock held; drops it around the queue I/O. held has pool->n
 * entries. */
static void renew_leases(gp_worker_pool_t *pool, gp_queue_item_t *held)
{
    int64_t lease_ms = pool->rt->settings->lease_s * 1000;
    int n = 0;
    for (int i = 0; i < pool->n; i++)
        if (pool->slots[i].busy && pool->slots[i].item.delivery_tag[0])
            held[n++] = pool->slots[i].item;
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < n; i++)
        if (gp_queue_renew(pool->rt->queue, &held[i]) == -GP_E_CONFLICT)
            gp_log(GP_LOG_WARN, held[i].id, "lease lost; another worker may take over");
    gp_queue_restore_expired(pool->rt->queue, lease_ms);
    pthread_mutex_lock(&pool->lock);
}

/* Finalizes attempts past their hard deadline or whose provider ignored a cancel.
 * Called with pool->lock held: the worker frees a ctx only after clearing its slot, which
 * needs the lock, and finish_attempt copies what it needs without waiting. */
static void enforce_deadlines(gp_worker_pool_t *pool, int64_t now)
{
    for (int i = 0; i < pool->n; i++) {
        slot_t *s = &pool->slots[i];
        if (!s->busy || !s->ctx || atomic_load(&s->finalized))
            continue;
        bool overdue = now >= s->deadline;
        bool cancel_ignored = s->cancel_at && now - s->cancel_at > CANCEL_GRACE_MS;
        if (overdue)
            atomic_store(&s->ctx->timed_out, true); /* the provider sees it as a cancel */
        if ((overdue || cancel_ignored) && !atomic_exchange(&s->finalized, true)) {
            s->deadline = INT64_MAX;
            gp_log(GP_LOG_WARN, s->ctx->task.id, "%s; finalizing without the provider",
                   overdue ? "hard timeout" : "provider ignored cancel");
            finish_attempt(pool, &s->item, s->ctx, GP_CTX_CANCELED, overdue);
        }
    }
}

static void *watchdog_main(void *arg)
{
    gp_worker_pool_t *pool = arg;
    pthread_setname_np(pthread_self(), "gp-watchdog");
    gp_queue_item_t *held = gp_xcalloc((size_t)pool->n, sizeof *held);
    int64_t next_lease_work = 0;
    pthread_mutex_lock(&pool->lock);
    while (pool->threads_alive > 0) {
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, WATCHDOG_TICK_MS);
        pthread_cond_timedwait(&pool->watchdog_wake, &pool->lock, &ts);
        resubmit_refused_outcomes(pool, gp_mono_ms());
        if (gp_mono_ms() >= next_lease_work) {
            next_lease_work = gp_mono_ms() + pool->rt->settings->lease_s * 1000 / 3;
            renew_leases(pool, held);
        }
        enforce_deadlines(pool, gp_mono_ms());
        atomic_store(&pool->watchdog_tick, gp_mono_ms());
    }
    pthread_mutex_unlock(&pool->lock);
    free(held);
    return NULL;
}

typedef struct bus_cancel {
    pool_work_t work; /* first: the finisher hands back this pointer */
    gp_store_op_t op;
    gp_worker_pool_t *pool;
    bool remote;    /* a remote revoke (the worker host's cancel), not a bus cancel */
    bool terminate; /* remote: also stop the provider if the task is running */
} bus_cancel_t;

/* Finisher thread: announces a cancel the bus asked for and the store applied. */
static void settle_bus_cancel(pool_work_t *w)
{
    bus_cancel_t *bc = (bus_cancel_t *)w;
    gp_runtime_t *rt = bc->pool->rt;
    gp_task_t t;
    if (bc->op.cancel_outcome == GP_CANCEL_REQUESTED) {
        /* A remote revoke with terminate of a running task: tell whichever process runs it,
         * as the HTTP cancel does. */
        gp_events_publish_cancel(rt->events, bc->op.cancel_id);
        gp_log(GP_LOG_INFO, bc->op.cancel_id, "cancel requested while running (remote revoke)");
    } else if (gp_store_get(rt->store, bc->op.cancel_id, &t) == 0) {
        gp_events_publish_status(rt->events, &t, false);
        gp_task_event_t ev = {.kind = GP_TEV_REVOKED, .task_id = t.id, .task_type = t.task_type};
        gp_queue_task_event(rt->queue, &ev);
        gp_log(GP_LOG_INFO, t.id, "canceled while pending (%s)",
               bc->remote ? "remote revoke" : "request from the bus");
        gp_task_clear(&t);
    }
    atomic_fetch_sub(&bc->pool->jobs_in_flight, 1); /* last touch of the pool */
    free(bc);
}

/* Committer thread: only enqueues. */
static void bus_cancel_done(gp_store_op_t *op, void *arg)
{
    bus_cancel_t *bc = arg;
    if (op->result == 0 && (op->cancel_outcome == GP_CANCEL_DONE ||
                            (bc->terminate && op->cancel_outcome == GP_CANCEL_REQUESTED))) {
        bc->work.run = settle_bus_cancel;
        finisher_enqueue(bc->pool, &bc->work);
        return;
    }
    atomic_fetch_sub(&bc->pool->jobs_in_flight, 1);
    free(bc);
}

static void submit_cancel(gp_worker_pool_t *pool, const char *task_id, bool remote, bool terminate)
{
    bus_cancel_t *bc = gp_xcalloc(1, sizeof *bc);
    bc->pool = pool;
    bc->remote = remote;
    bc->terminate = terminate;
    bc->op.kind = GP_OP_CANCEL;
    memcpy(bc->op.cancel_id, task_id, sizeof bc->op.cancel_id);
    bc->op.done = bus_cancel_done;
    bc->op.done_arg = bc;
    atomic_fetch_add(&pool->jobs_in_flight, 1);
    gp_committer_submit(pool->rt->committer, &bc->op);
}

static void on_cancel(const char *task_id, void *arg)
{
    gp_worker_pool_t *pool = arg;
    bool found = false;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->n; i++) {
        slot_t *s = &pool->slots[i];
        if (s->busy && !strcmp(s->task_id, task_id)) {
            if (s->ctx)
                atomic_store(&s->ctx->cancel, true);
            s->cancel_at = gp_mono_ms(); /* seen by run_one if the claim is in flight */
            found = true;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    if (found || !gp_is_uuid(task_id))
        return;
    /* Not running here: it may be queued (an RPC client's cancel goes only to the bus).
     * Every worker process tries; the store's compare-and-set lets one of them win. */
    submit_cancel(pool, task_id, false, false);
}

/* ---- the worker host: what the queue's monitoring tools may ask (queue.h) --------------- */

/* Remote cancel (e.g. Celery's revoke): GP_OP_CANCEL as the HTTP cancel; the committed
 * outcome is settled by the finisher (settle_bus_cancel). */
static void host_cancel(void *arg, const char *task_id, bool terminate)
{
    if (gp_is_uuid(task_id))
        submit_cancel(arg, task_id, true, terminate);
}

/* Read-only snapshot of the claimed, running slots. */
static size_t host_active(void *arg, gp_active_task_t *out, size_t cap)
{
    gp_worker_pool_t *pool = arg;
    size_t n = 0;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->n && n < cap; i++) {
        const slot_t *s = &pool->slots[i];
        if (!s->busy || !s->ctx)
            continue;
        gp_active_task_t *a = &out[n++];
        memcpy(a->id, s->task_id, sizeof a->id);
        snprintf(a->task_type, sizeof a->task_type, "%s", s->ctx->task.task_type);
        a->started_at = s->ctx->task.started_at;
        a->attempts = s->ctx->task.attempts;
    }
    pthread_mutex_unlock(&pool->lock);
    return n;
}

gp_worker_pool_t *gp_worker_pool_start(gp_runtime_t *rt, int concurrency)
{
    gp_worker_pool_t *pool = gp_xcalloc(1, sizeof *pool);
    pool->rt = rt;
    pool->n = concurrency;
    pool->slots = gp_xcalloc((size_t)concurrency, sizeof *pool->slots);
    pool->threads = gp_xcalloc((size_t)concurrency, sizeof *pool->threads);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->changed, NULL);
    pthread_cond_init(&pool->watchdog_wake, NULL);
    pthread_mutex_init(&pool->finish_lock, NULL);
    pthread_cond_init(&pool->finish_wake, NULL);
    if (pthread_create(&pool->finisher, NULL, finisher_main, pool) != 0)
        abort(); /* at start only; before anything can commit an outcome */
    gp_events_on_cancel(rt->events, on_cancel, pool);
    pool->threads_alive = concurrency;
    for (int i = 0; i < concurrency; i++) {
        worker_arg_t *wa = gp_xmalloc(sizeof *wa);
        wa->pool = pool;
        wa->index = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0)
            abort(); /* at start only */
    }
    if (pthread_create(&pool->watchdog, NULL, watchdog_main, pool) != 0)
        abort();
    pool->host = (gp_worker_host_t){
        .arg = pool, .concurrency = concurrency, .active = host_active, .cancel = host_cancel};
    gp_queue_attach_worker(rt->queue, &pool->host);
    return pool;
}

/* Lets the finisher run what is queued, then joins it; later callbacks run inline. */
static void stop_finisher(gp_worker_pool_t *pool)
{
    pthread_mutex_lock(&pool->finish_lock);
    pool->finish_stopping = true;
    pthread_cond_signal(&pool->finish_wake);
    pthread_mutex_unlock(&pool->finish_lock);
    pthread_join(pool->finisher, NULL);
}

void gp_worker_pool_drain(gp_worker_pool_t *pool, int64_t grace_ms)
{
    if (!pool)
        return;
    atomic_store(&pool->stopping, true);
    int64_t deadline = gp_mono_ms() + grace_ms;
    pthread_mutex_lock(&pool->lock);
    while (atomic_load(&pool->busy) > 0 && gp_mono_ms() < deadline) {
        struct timespec ts = gp_deadline_in(CLOCK_REALTIME, 50);
        pthread_cond_timedwait(&pool->changed, &pool->lock, &ts);
    }
    if (atomic_load(&pool->busy) > 0) {
        GP_WARN("workers: grace period over; handing %d running task(s) back",
                atomic_load(&pool->busy));
        atomic_store(&pool->draining, true);
        for (int i = 0; i < pool->n; i++)
            if (pool->slots[i].busy && pool->slots[i].ctx) {
                atomic_store(&pool->slots[i].ctx->cancel, true);
                pool->slots[i].cancel_at = gp_mono_ms();
            }
    }
    pthread_mutex_unlock(&pool->lock);
    gp_queue_shutdown(pool->rt->queue);
    for (int i = 0; i < pool->n; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_join(pool->watchdog, NULL);
    gp_events_on_cancel(pool->rt->events, NULL, NULL);
    /* Settle the outcomes still on their way: offer the refused ones a last time, then wait
     * for the committer and the finisher to settle every job (they point at this pool). */
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stopped, true);
    finish_job_t *retry = pool->commit_retries;
    pool->commit_retries = NULL;
    pthread_mutex_unlock(&pool->lock);
    while (retry) {
        finish_job_t *next = retry->next_retry;
        gp_committer_submit(pool->rt->committer, &retry->op);
        retry = next;
    }
    for (int i = 0; i < 500 && atomic_load(&pool->jobs_in_flight) > 0; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    stop_finisher(pool);
    /* After the last outcomes' events; no host callback runs after this. */
    gp_queue_detach_worker(pool->rt->queue);
    if (atomic_load(&pool->jobs_in_flight) > 0) {
        GP_WARN("workers: %d outcome(s) not settled at exit; their tasks are recovered later",
                atomic_load(&pool->jobs_in_flight));
        pool->keep_allocated = true; /* the committer may still reach it */
    }
}

void gp_worker_pool_free(gp_worker_pool_t *pool)
{
    if (!pool || pool->keep_allocated)
        return;
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->changed);
    pthread_cond_destroy(&pool->watchdog_wake);
    pthread_mutex_destroy(&pool->finish_lock);
    pthread_cond_destroy(&pool->finish_wake);
    free(pool->slots);
    free(pool->threads);
    free(pool);
}

void gp_worker_pool_stop(gp_worker_pool_t *pool, int64_t grace_ms)
{
    gp_worker_pool_drain(pool, grace_ms);
    gp_worker_pool_free(pool);
}

int gp_worker_pool_busy(gp_worker_pool_t *pool)
{
    return pool ? atomic_load(&pool->busy) : 0;
}
int64_t gp_worker_pool_progress_ms(gp_worker_pool_t *pool)
{
    int64_t t = pool ? atomic_load(&pool->watchdog_tick) : 0;
    return t ? gp_mono_ms() - t : 0;
}

int gp_worker_pool_size(gp_worker_pool_t *pool)
{
    return pool ? pool->n : 0;
}

typedef struct recover_state {
    gp_runtime_t *rt;
    int queued;
} recover_state_t;

static void recover_one(const gp_task_t *t, void *arg)
{
    recover_state_t *rs = arg;
    gp_runtime_t *rt = rs->rt;
    if (t->status == GP_TASK_PENDING) {
        gp_runtime_dispatch(rt, t);
        rs->queued++;
        return;
    }
    /* processing: the process that ran it died mid-attempt */
    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    gp_transition_t *tr = &op.tr;
    memcpy(tr->id, t->id, sizeof tr->id);
    tr->from_status = GP_TASK_PROCESSING;
    tr->from_attempts = t->attempts;
    tr->to_attempts = t->attempts;
    if (t->cancel_requested) {
        tr->to_status = GP_TASK_CANCELED;
        tr->completed_at = gp_now_ms();
        tr->error_code = gp_task_error_code(GP_TE_CANCELED);
        tr->error_message = "canceled by request";
    } else if (t->attempts > t->max_retries) {
        tr->to_status = GP_TASK_FAILED;
        tr->completed_at = gp_now_ms();
        tr->error_code = gp_task_error_code(GP_TE_INTERRUPTED);
        tr->error_message = "the process running the task stopped, and no retries are left";
        tr->keep_reservation = true; /* the outcome of the cut-short run is unknown */
    } else {
        tr->to_status = GP_TASK_PENDING;
    }
    if (gp_committer_run_sync(rt->committer, &op) != 0)
        return;
    gp_task_t copy;
    gp_task_copy(&copy, t);
    copy.status = tr->to_status;
    gp_events_publish_status(rt->events, &copy, false);
    if (copy.status == GP_TASK_PENDING) {
        gp_log(GP_LOG_INFO, t->id, "recovered after attempt %d was interrupted", t->attempts);
        gp_runtime_dispatch(rt, &copy);
        rs->queued++;
    }
    gp_task_clear(&copy);
}

int gp_recover_embedded(gp_runtime_t *rt)
{
    recover_state_t rs = {.rt = rt};
    int rc = gp_store_scan_unfinished(rt->store, recover_one, &rs);
    return rc != 0 ? rc : rs.queued;
}

/* committer.c — the group-commit thread (see committer.h). */
#include "runtime/committer.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "runtime/webhooks.h"

#include <pthread.h>
#include <stdlib.h>

struct gp_committer {
    gp_store_t *store;
    size_t batch_max;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gp_store_op_t *head, *tail;
    bool stopping;
};

static void *committer_main(void *arg)
{
    gp_committer_t *c = arg;
    pthread_setname_np(pthread_self(), "gp-commit");
    gp_store_op_t **batch = gp_xcalloc(c->batch_max, sizeof *batch);
    for (;;) {
        pthread_mutex_lock(&c->lock);
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->cond, &c->lock);
        if (!c->head && c->stopping) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        size_t n = 0;
        while (c->head && n < c->batch_max) {
            batch[n++] = c->head;
            c->head = c->head->next;
        }
        if (!c->head)
            c->tail = NULL;
        pthread_mutex_unlock(&c->lock);

        double t0 = gp_metrics_clock();
        int rc = gp_store_apply_batch(c->store, batch, n);
        gp_metrics_observe(GP_M_COMMIT_DURATION, gp_metrics_clock() - t0, NULL, NULL);
        gp_metrics_observe(GP_M_COMMIT_BATCH, (double)n, NULL, NULL);
        if (rc != 0) {
            gp_metrics_inc(GP_M_COMMIT_FAILURES, NULL, NULL, NULL);
            GP_ERROR("committer: batch of %zu failed: %s", n, gp_err_code(rc));
        }
        bool webhooks = false;
        for (size_t i = 0; i < n && !webhooks; i++)
            webhooks = batch[i]->webhooks_added > 0;
        if (webhooks) /* the outbox rows are committed: the delivery loop may take them */
            gp_webhooks_wake();
        for (size_t i = 0; i < n; i++) {
            batch[i]->next = NULL;
            batch[i]->done(batch[i], batch[i]->done_arg);
        }
    }
    free(batch);
    return NULL;
}

gp_committer_t *gp_committer_start(gp_store_t *store, size_t batch_max)
{
    gp_committer_t *c = gp_xcalloc(1, sizeof *c);
    c->store = store;
    c->batch_max = batch_max ? batch_max : 1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, committer_main, c) != 0)
        abort(); /* cannot run without it; only fails on resource exhaustion at start */
    return c;
}

void gp_committer_submit(gp_committer_t *c, gp_store_op_t *op)
{
    op->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

typedef struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} sync_wait_t;

static void sync_done(gp_store_op_t *op, void *arg)
{
    (void)op;
    sync_wait_t *w = arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int gp_committer_run_sync(gp_committer_t *c, gp_store_op_t *op)
{
    sync_wait_t w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    op->done = sync_done;
    op->done_arg = &w;
    gp_committer_submit(c, op);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return op->result;
}

void gp_committer_stop(gp_committer_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

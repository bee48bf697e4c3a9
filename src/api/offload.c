/*
 * offload.c — the gateway's blocking-work pool: a mutex-guarded FIFO and a few threads.
 */
#include "api/offload.h"
#include "core/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define MAX_THREADS 16

typedef struct job {
    gp_offload_fn fn;
    void *arg;
    struct job *next;
} job_t;

struct gp_offload {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *head, *tail;
    bool stopping;
    int n_threads;
    pthread_t threads[MAX_THREADS];
};

static void *offload_main(void *arg)
{
    gp_offload_t *p = arg;
    pthread_setname_np(pthread_self(), "gp-offload");
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        job_t *j = p->head;
        if (!j)
            break; /* stopping and drained */
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

gp_offload_t *gp_offload_start(int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    gp_offload_t *p = gp_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, offload_main, p) != 0)
            break;
        p->n_threads++;
    }
    if (p->n_threads == 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

int gp_offload_submit(gp_offload_t *p, gp_offload_fn fn, void *arg)
{
    if (!p)
        return -1;
    job_t *j = gp_xcalloc(1, sizeof *j);
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        free(j);
        return -1;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void gp_offload_stop(gp_offload_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool joined = p->stopping;
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (joined)
        return;
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
}

void gp_offload_free(gp_offload_t *p)
{
    if (!p)
        return;
    gp_offload_stop(p);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

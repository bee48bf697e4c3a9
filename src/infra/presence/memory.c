/*
 * memory.c — presence for a single process (embedded mode; see presence.h): a small table
 * under one lock. Beats come every couple of seconds per worker process, so a lock is plenty.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/presence/presence.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64 /* one process holds one pool; the cap only bounds a misuse */

typedef struct mem_presence {
    gp_presence_t base;
    pthread_mutex_t lock;
    gp_worker_info_t workers[MAX_WORKERS];
    size_t n;
} mem_presence_t;

extern const gp_presence_vt_t gp_presence_backend_memory;

static int mp_open(gp_presence_t **out, const char *url, const gp_settings_t *s, char *err,
                   size_t cap)
{
    (void)url, (void)s, (void)err, (void)cap;
    mem_presence_t *p = gp_xcalloc(1, sizeof *p);
    p->base.vt = &gp_presence_backend_memory;
    pthread_mutex_init(&p->lock, NULL);
    *out = &p->base;
    return 0;
}

static void mp_close(gp_presence_t *base)
{
    mem_presence_t *p = (mem_presence_t *)base;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static gp_worker_info_t *find(mem_presence_t *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->workers[i].id, id))
            return &p->workers[i];
    return NULL;
}

static int mp_beat(gp_presence_t *base, const gp_worker_info_t *self)
{
    mem_presence_t *p = (mem_presence_t *)base;
    pthread_mutex_lock(&p->lock);
    gp_worker_info_t *w = find(p, self->id);
    if (!w && p->n < MAX_WORKERS)
        w = &p->workers[p->n++];
    if (w) {
        *w = *self;
        w->last_beat = gp_now_ms();
        w->alive = true;
    }
    pthread_mutex_unlock(&p->lock);
    return w ? 0 : -GP_E_UNAVAILABLE;
}

static int mp_leave(gp_presence_t *base, const char *id)
{
    mem_presence_t *p = (mem_presence_t *)base;
    pthread_mutex_lock(&p->lock);
    gp_worker_info_t *w = find(p, id);
    if (w) {
        w->alive = false;
        w->busy = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static int by_newest_beat(const void *a, const void *b)
{
    const gp_worker_info_t *x = a, *y = b;
    return (x->last_beat < y->last_beat) - (x->last_beat > y->last_beat);
}

static int mp_list(gp_presence_t *base, gp_worker_info_t **out, size_t *n)
{
    mem_presence_t *p = (mem_presence_t *)base;
    int64_t now = gp_now_ms();
    pthread_mutex_lock(&p->lock);
    gp_worker_info_t *copy = gp_xmalloc((p->n ? p->n : 1) * sizeof *copy);
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        gp_worker_info_t w = p->workers[i];
        w.alive = w.alive && now - w.last_beat <= GP_PRESENCE_TTL_MS;
        if (w.alive || now - w.last_beat <= GP_PRESENCE_LOST_KEEP_MS)
            copy[k++] = w;
    }
    pthread_mutex_unlock(&p->lock);
    qsort(copy, k, sizeof *copy, by_newest_beat);
    *out = copy;
    *n = k;
    return 0;
}

const gp_presence_vt_t gp_presence_backend_memory = {
    .scheme = "memory",
    .open = mp_open,
    .close = mp_close,
    .beat = mp_beat,
    .leave = mp_leave,
    .list = mp_list,
};

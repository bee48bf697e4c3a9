/*
 * memory.c — the in-process dispatch queue (embedded mode).
 *
 * Two binary heaps under one mutex: `ready` ordered by (priority desc, fair tag asc,
 * push order asc) and `delayed` ordered by ready_at. pop() moves due items from delayed to
 * ready, then waits on a condition variable until the next one is due, so idle workers
 * sleep instead of polling.
 *
 * Fairness among users (start-time fair queueing): each push gets the tag
 * max(virtual time, the owner's last tag + 1), and the virtual time is the tag of the last
 * item popped. A user who queues 10,000 tasks takes tags far ahead; another user's next task
 * is tagged near the virtual time and runs after at most about one task per other active
 * user, not after the whole flood. Owners share a fixed table by hash (a collision only
 * merges two owners' shares). Priority still comes first.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/queue/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    gp_queue_item_t item;
    uint64_t order;
    uint64_t tag; /* fair-queueing start tag */
} entry_t;

#define OWNER_SLOTS 4096

typedef struct heap {
    entry_t *v;
    size_t n, cap;
    bool (*before)(const entry_t *a, const entry_t *b);
} heap_t;

typedef struct memory_queue {
    gp_queue_t base;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    heap_t ready, delayed;
    uint64_t next_order;
    uint64_t vtime;                  /* tag of the last item popped */
    uint64_t owner_tag[OWNER_SLOTS]; /* each owner's last tag */
    bool shut;
} memory_queue_t;

static size_t owner_slot(const char *owner)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)owner; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % OWNER_SLOTS);
}

static bool ready_before(const entry_t *a, const entry_t *b)
{
    if (a->item.priority != b->item.priority)
        return a->item.priority > b->item.priority;
    if (a->tag != b->tag)
        return a->tag < b->tag;
    return a->order < b->order;
}

static bool delayed_before(const entry_t *a, const entry_t *b)
{
    return a->item.ready_at != b->item.ready_at ? a->item.ready_at < b->item.ready_at
                                                : a->order < b->order;
}

static void heap_push(heap_t *h, const entry_t *e)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        entry_t *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            abort(); /* one small entry per accepted task; OOM here is fatal */
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    h->v[i] = *e;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!h->before(&h->v[i], &h->v[parent]))
            break;
        entry_t t = h->v[i];
        h->v[i] = h->v[parent];
        h->v[parent] = t;
        i = parent;
    }
}

static entry_t heap_pop(heap_t *h)
{
    entry_t top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < h->n && h->before(&h->v[l], &h->v[best]))
            best = l;
        if (r < h->n && h->before(&h->v[r], &h->v[best]))
            best = r;
        if (best == i)
            break;
        entry_t t = h->v[i];
        h->v[i] = h->v[best];
        h->v[best] = t;
        i = best;
    }
    return top;
}

static int mq_open(gp_queue_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap)
{
    (void)url, (void)s, (void)err, (void)cap;
    memory_queue_t *q = gp_xcalloc(1, sizeof *q);
    extern const gp_queue_vt_t gp_queue_backend_memory;
    q->base.vt = &gp_queue_backend_memory;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    q->ready.before = ready_before;
    q->delayed.before = delayed_before;
    *out = &q->base;
    return 0;
}

static void mq_close(gp_queue_t *base)
{
    memory_queue_t *q = (memory_queue_t *)base;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q->ready.v);
    free(q->delayed.v);
    free(q);
}

static int mq_push(gp_queue_t *base, const gp_queue_item_t *item)
{
    memory_queue_t *q = (memory_queue_t *)base;
    entry_t e = {.item = *item};
    pthread_mutex_lock(&q->lock);
    e.order = q->next_order++;
    uint64_t *last = &q->owner_tag[owner_slot(item->owner)];
    e.tag = *last + 1 > q->vtime ? *last + 1 : q->vtime;
    *last = e.tag;
    bool delayed = item->ready_at > gp_now_ms();
    heap_push(delayed ? &q->delayed : &q->ready, &e);
    /* A delayed item may now be the earliest deadline: wake one waiter to re-arm its timer. */
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

static int mq_pop(gp_queue_t *base, gp_queue_item_t *out, int timeout_ms)
{
    memory_queue_t *q = (memory_queue_t *)base;
    int64_t deadline = gp_mono_ms() + timeout_ms;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->shut) {
            pthread_mutex_unlock(&q->lock);
            return -GP_E_SHUTTING_DOWN;
        }
        int64_t now = gp_now_ms();
        while (q->delayed.n > 0 && q->delayed.v[0].item.ready_at <= now) {
            entry_t e = heap_pop(&q->delayed);
            heap_push(&q->ready, &e);
        }
        if (q->ready.n > 0) {
            entry_t e = heap_pop(&q->ready);
            if (e.tag > q->vtime)
                q->vtime = e.tag;
            *out = e.item;
            if (q->ready.n > 0)
                pthread_cond_signal(&q->cond); /* more work: let another worker look */
            pthread_mutex_unlock(&q->lock);
            return 0;
        }
        int64_t wait = deadline - gp_mono_ms();
        if (wait <= 0) {
            pthread_mutex_unlock(&q->lock);
            return -GP_E_TIMEOUT;
        }
        if (q->delayed.n > 0 && q->delayed.v[0].item.ready_at - now < wait)
            wait = q->delayed.v[0].item.ready_at - now + 1;
        struct timespec ts = gp_deadline_in(CLOCK_MONOTONIC, wait);
        pthread_cond_timedwait(&q->cond, &q->lock, &ts);
    }
}

static void mq_shutdown(gp_queue_t *base)
{
    memory_queue_t *q = (memory_queue_t *)base;
    pthread_mutex_lock(&q->lock);
    q->shut = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static size_t mq_depth(gp_queue_t *base)
{
    memory_queue_t *q = (memory_queue_t *)base;
    pthread_mutex_lock(&q->lock);
    size_t n = q->ready.n + q->delayed.n;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* One pass over the ready heap (a scrape, not a hot path). */
static int mq_depth_by_priority(gp_queue_t *base, gp_queue_depths_t *out)
{
    memory_queue_t *q = (memory_queue_t *)base;
    gp_queue_depths_t d = {.n = GP_QUEUE_BANDS_MAX};
    for (size_t b = 0; b < GP_QUEUE_BANDS_MAX; b++)
        snprintf(d.band[b].priority, sizeof d.band[b].priority, "%zu", b);
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->ready.n; i++) {
        int p = q->ready.v[i].item.priority;
        d.band[p < 0 ? 0 : p >= GP_QUEUE_BANDS_MAX ? GP_QUEUE_BANDS_MAX - 1 : p].ready++;
    }
    d.delayed = q->delayed.n;
    pthread_mutex_unlock(&q->lock);
    *out = d;
    return 0;
}

static void mark_heap(const heap_t *h, gp_queue_id_slot_t *slots, size_t n, unsigned char *where)
{
    for (size_t i = 0; i < h->n; i++)
        gp_queue_id_slots_mark(slots, n, h->v[i].item.id, GP_HELD_QUEUED, where);
}

static int mq_holds(gp_queue_t *base, const char *const *ids, size_t n, unsigned char *where)
{
    memory_queue_t *q = (memory_queue_t *)base;
    gp_queue_id_slot_t *slots = gp_queue_id_slots(ids, n, where);
    pthread_mutex_lock(&q->lock);
    mark_heap(&q->ready, slots, n, where);
    mark_heap(&q->delayed, slots, n, where);
    pthread_mutex_unlock(&q->lock);
    free(slots);
    return 0;
}

const gp_queue_vt_t gp_queue_backend_memory = {
    .scheme = "memory",
    .open = mq_open,
    .close = mq_close,
    .push = mq_push,
    .pop = mq_pop,
    .shutdown = mq_shutdown,
    .depth = mq_depth,
    .depth_by_priority = mq_depth_by_priority,
    .holds = mq_holds,
};

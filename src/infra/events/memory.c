/*
 * memory.c — the in-process event bus and hot store (embedded mode).
 *
 * DESIGN: one mutex guards a map task_id → entry {hot state, subscribers}. Callbacks run
 * outside the mutex (a subscriber may take its own locks, e.g. to wake an HTTP connection),
 * and each subscription counts its in-flight calls so unsubscribe() can wait them out.
 * Entries of finished tasks are swept a few seconds after their last event, so memory does
 * not grow with the number of tasks ever run.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/events/events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TERMINAL_RETENTION_MS 10000
#define MAX_FANOUT_STACK 16

struct gp_subscription {
    char task_id[37];
    gp_event_cb cb;
    void *arg;
    int in_flight;
    bool dead;
    gp_subscription_t *next;
};

typedef struct entry {
    gp_hot_state_t hot;
    gp_subscription_t *subs;
    int64_t terminal_at; /* 0 = not terminal */
} entry_t;

typedef struct memory_events {
    gp_events_t base;
    pthread_mutex_t lock;
    pthread_cond_t calls_done;
    gp_strmap_t *entries;
    int64_t last_sweep;
    gp_cancel_cb cancel_cb;
    void *cancel_arg;
} memory_events_t;

static int me_open(gp_events_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap)
{
    (void)url, (void)s, (void)err, (void)cap;
    memory_events_t *e = gp_xcalloc(1, sizeof *e);
    extern const gp_events_vt_t gp_events_backend_memory;
    e->base.vt = &gp_events_backend_memory;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->calls_done, NULL);
    e->entries = gp_strmap_new();
    *out = &e->base;
    return 0;
}

static void free_entry(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    entry_t *en = value;
    gp_subscription_t *s = en->subs;
    while (s) {
        gp_subscription_t *next = s->next;
        free(s);
        s = next;
    }
    free(en);
}

static void me_close(gp_events_t *base)
{
    memory_events_t *e = (memory_events_t *)base;
    gp_strmap_each(e->entries, free_entry, NULL);
    gp_strmap_free(e->entries);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->calls_done);
    free(e);
}

static entry_t *entry_for(memory_events_t *e, const char *id)
{
    entry_t *en = gp_strmap_get(e->entries, id);
    if (!en) {
        en = gp_xcalloc(1, sizeof *en);
        en->hot.progress = -1;
        gp_strmap_put(e->entries, id, en);
    }
    return en;
}

typedef struct sweep_ctx {
    int64_t now;
    char (*victims)[37];
    size_t n, cap;
} sweep_ctx_t;

static void collect_expired(const char *key, void *value, void *arg)
{
    sweep_ctx_t *sc = arg;
    entry_t *en = value;
    if (en->terminal_at && !en->subs && sc->now - en->terminal_at > TERMINAL_RETENTION_MS &&
        sc->n < sc->cap)
        memcpy(sc->victims[sc->n++], key, 37);
}

/* Called with the lock held, at most once a second. */
static void sweep(memory_events_t *e)
{
    int64_t now = gp_mono_ms();
    if (now - e->last_sweep < 1000)
        return;
    e->last_sweep = now;
    sweep_ctx_t sc = {.now = now, .cap = 65536};
    sc.victims = malloc(sc.cap * sizeof *sc.victims);
    if (!sc.victims)
        return;
    gp_strmap_each(e->entries, collect_expired, &sc);
    for (size_t i = 0; i < sc.n; i++)
        free(gp_strmap_del(e->entries, sc.victims[i]));
    free(sc.victims);
}

/* Builds the event under the lock, then calls subscribers outside it. */
static int publish(memory_events_t *e, const gp_task_t *t, const char *type, bool reset,
                   int percent, const char *step)
{
    pthread_mutex_lock(&e->lock);
    entry_t *en = entry_for(e, t->id);
    if (reset) {
        en->hot.progress = 0;
        en->hot.step[0] = '\0';
    }
    if (percent >= 0)
        en->hot.progress = percent;
    if (step)
        snprintf(en->hot.step, sizeof en->hot.step, "%s", step);
    bool terminal = gp_task_status_terminal(t->status);
    if (terminal && t->status == GP_TASK_SUCCEEDED)
        en->hot.progress = 100;
    en->terminal_at = terminal ? gp_mono_ms() : 0;
    uint64_t seq = ++en->hot.seq;
    gp_subscription_t *stack_subs[MAX_FANOUT_STACK], **subs = stack_subs;
    size_t n = 0, cap = MAX_FANOUT_STACK;
    for (gp_subscription_t *s = en->subs; s; s = s->next) {
        if (s->dead)
            continue;
        if (n == cap) {
            gp_subscription_t **bigger = gp_xmalloc(cap * 2 * sizeof *bigger);
            memcpy(bigger, subs, n * sizeof *bigger);
            if (subs != stack_subs)
                free(subs);
            subs = bigger;
            cap *= 2;
        }
        s->in_flight++;
        subs[n++] = s;
    }
    char *data = NULL;
    size_t len = 0;
    if (n > 0) {
        json_t *snap = gp_task_snapshot(t, &en->hot);
        data = json_dumps(snap, JSON_COMPACT);
        json_decref(snap);
        len = data ? strlen(data) : 0;
    }
    sweep(e);
    pthread_mutex_unlock(&e->lock);

    if (n > 0 && data) {
        gp_event_t ev = {.task_id = t->id, .type = type, .seq = seq, .data = data,
                         .data_len = len, .terminal = terminal};
        for (size_t i = 0; i < n; i++)
            subs[i]->cb(&ev, subs[i]->arg);
    }
    if (n > 0) {
        pthread_mutex_lock(&e->lock);
        for (size_t i = 0; i < n; i++)
            subs[i]->in_flight--;
        pthread_cond_broadcast(&e->calls_done);
        pthread_mutex_unlock(&e->lock);
    }
    free(data);
    if (subs != stack_subs)
        free(subs);
    return 0;
}

static int me_publish_status(gp_events_t *base, const gp_task_t *t, bool reset_progress)
{
    return publish((memory_events_t *)base, t, "status", reset_progress, -1, NULL);
}

static int me_publish_progress(gp_events_t *base, const gp_task_t *t, int percent, const char *step)
{
    return publish((memory_events_t *)base, t, "progress", false, percent, step);
}

static int me_get_hot(gp_events_t *base, const char *id, gp_hot_state_t *out)
{
    memory_events_t *e = (memory_events_t *)base;
    pthread_mutex_lock(&e->lock);
    entry_t *en = gp_strmap_get(e->entries, id);
    if (en)
        *out = en->hot;
    pthread_mutex_unlock(&e->lock);
    return en ? 0 : -GP_E_NOT_FOUND;
}

static int me_subscribe(gp_events_t *base, const char *id, gp_event_cb cb, void *arg,
                        gp_subscription_t **out)
{
    memory_events_t *e = (memory_events_t *)base;
    gp_subscription_t *s = gp_xcalloc(1, sizeof *s);
    snprintf(s->task_id, sizeof s->task_id, "%s", id);
    s->cb = cb;
    s->arg = arg;
    pthread_mutex_lock(&e->lock);
    entry_t *en = entry_for(e, id);
    s->next = en->subs;
    en->subs = s;
    pthread_mutex_unlock(&e->lock);
    *out = s;
    return 0;
}

static void me_unsubscribe(gp_events_t *base, gp_subscription_t *sub)
{
    memory_events_t *e = (memory_events_t *)base;
    pthread_mutex_lock(&e->lock);
    sub->dead = true;
    while (sub->in_flight > 0)
        pthread_cond_wait(&e->calls_done, &e->lock);
    entry_t *en = gp_strmap_get(e->entries, sub->task_id);
    if (en) {
        for (gp_subscription_t **pp = &en->subs; *pp; pp = &(*pp)->next)
            if (*pp == sub) {
                *pp = sub->next;
                break;
            }
        if (!en->subs && en->terminal_at == 0 && en->hot.seq == 0)
            free(gp_strmap_del(e->entries, sub->task_id)); /* never published: no state */
    }
    pthread_mutex_unlock(&e->lock);
    free(sub);
}

static int me_publish_cancel(gp_events_t *base, const char *task_id)
{
    memory_events_t *e = (memory_events_t *)base;
    pthread_mutex_lock(&e->lock);
    gp_cancel_cb cb = e->cancel_cb;
    void *arg = e->cancel_arg;
    pthread_mutex_unlock(&e->lock);
    if (cb)
        cb(task_id, arg);
    return 0;
}

static int me_on_cancel(gp_events_t *base, gp_cancel_cb cb, void *arg)
{
    memory_events_t *e = (memory_events_t *)base;
    pthread_mutex_lock(&e->lock);
    e->cancel_cb = cb;
    e->cancel_arg = arg;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

const gp_events_vt_t gp_events_backend_memory = {
    .scheme = "memory",
    .open = me_open,
    .close = me_close,
    .publish_status = me_publish_status,
    .publish_progress = me_publish_progress,
    .get_hot = me_get_hot,
    .subscribe = me_subscribe,
    .unsubscribe = me_unsubscribe,
    .publish_cancel = me_publish_cancel,
    .on_cancel = me_on_cancel,
};

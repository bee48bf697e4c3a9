/*
 * memory.c — the in-process event bus and hot store (embedded mode).
 *
 * DESIGN: one mutex guards a map task_id → hot state (progress, step, event sequence);
 * subscribers live in a fanout (fanout.c), which calls them outside any lock and lets
 * unsubscribe() wait out calls in flight. Entries of finished tasks are swept a few seconds
 * after their last event, so memory does not grow with the number of tasks ever run.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/events/events.h"
#include "infra/events/fanout.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TERMINAL_RETENTION_MS 10000

typedef struct entry {
    gp_hot_state_t hot;
    int64_t terminal_at; /* 0 = not terminal */
} entry_t;

typedef struct memory_events {
    gp_events_t base;
    pthread_mutex_t lock;
    gp_strmap_t *entries;
    int64_t last_sweep;
    gp_fanout_t *fanout;
    gp_cancel_cb cancel_cb;
    void *cancel_arg;
} memory_events_t;

static int me_open(gp_events_t **out, const char *url, const gp_settings_t *s, char *err,
                   size_t cap)
{
    (void)url, (void)s, (void)err, (void)cap;
    memory_events_t *e = gp_xcalloc(1, sizeof *e);
    extern const gp_events_vt_t gp_events_backend_memory;
    e->base.vt = &gp_events_backend_memory;
    pthread_mutex_init(&e->lock, NULL);
    e->entries = gp_strmap_new();
    e->fanout = gp_fanout_new();
    *out = &e->base;
    return 0;
}

static void free_entry(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    free(value);
}

static void me_close(gp_events_t *base)
{
    memory_events_t *e = (memory_events_t *)base;
    gp_strmap_each(e->entries, free_entry, NULL);
    gp_strmap_free(e->entries);
    gp_fanout_free(e->fanout);
    pthread_mutex_destroy(&e->lock);
    free(e);
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
    if (en->terminal_at && sc->now - en->terminal_at > TERMINAL_RETENTION_MS && sc->n < sc->cap)
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

/* Updates hot state and the sequence under the lock, then delivers outside it. */
static int publish(memory_events_t *e, const gp_task_t *t, const char *type, bool reset,
                   int percent, const char *step)
{
    pthread_mutex_lock(&e->lock);
    entry_t *en = gp_strmap_get(e->entries, t->id);
    if (!en) {
        en = gp_xcalloc(1, sizeof *en);
        en->hot.progress = -1;
        gp_strmap_put(e->entries, t->id, en);
    }
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
    en->hot.seq++;
    gp_hot_state_t hot = en->hot;
    sweep(e);
    pthread_mutex_unlock(&e->lock);

    if (!gp_fanout_has(e->fanout, t->id))
        return 0; /* nobody listening here: skip building the event */
    json_t *snap = gp_task_snapshot(t, &hot);
    char *data = json_dumps(snap, GP_JSON_WIRE);
    json_decref(snap);
    if (!data)
        return -GP_E_NOMEM;
    gp_event_t ev = {.task_id = t->id,
                     .owner = t->owner[0] ? t->owner : GP_LOCAL_USER_ID,
                     .type = type,
                     .seq = hot.seq,
                     .data = data,
                     .data_len = strlen(data),
                     .terminal = terminal};
    gp_fanout_deliver(e->fanout, &ev);
    free(data);
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
    *out = gp_fanout_subscribe(((memory_events_t *)base)->fanout, id, cb, arg);
    return 0;
}

static void me_unsubscribe(gp_events_t *base, gp_subscription_t *sub)
{
    gp_fanout_unsubscribe(((memory_events_t *)base)->fanout, sub);
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

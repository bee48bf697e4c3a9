/*
 * events.h — the event bus and the hot store (progress, step, event sequence).
 *
 * Status and progress changes are published here, never polled from the database. Each
 * task has a monotonically increasing event sequence (the SSE `id:`). Subscribers get
 * every event published after subscribe() returns. Cancel requests travel on the same bus
 * so that the process running a task hears about it.
 *
 * Callbacks run on the publishing thread (or the backend's I/O thread) and must not block;
 * copy what you need and hand it to your own thread. After unsubscribe() returns, the
 * callback is not running and will not be called again. All functions are thread-safe.
 *
 * A backend is a const gp_events_vt_t named gp_events_backend_<stem>; gp_events_open()
 * picks it by the queue URL's scheme ("memory" when empty).
 */
#ifndef GP_EVENTS_H
#define GP_EVENTS_H

#include "core/settings.h"
#include "core/task.h"

typedef struct gp_events gp_events_t;
typedef struct gp_subscription gp_subscription_t;

typedef struct gp_event {
    const char *task_id;
    const char *owner; /* the task's user id; "" when the publisher did not say (older) */
    const char *type;  /* "status" | "progress" */
    uint64_t seq;
    const char *data; /* JSON snapshot text (gp_task_snapshot) */
    size_t data_len;
    bool terminal; /* the task reached a terminal status with this event */
} gp_event_t;

typedef void (*gp_event_cb)(const gp_event_t *ev, void *arg);
typedef void (*gp_cancel_cb)(const char *task_id, void *arg);

typedef struct gp_events_vt {
    const char *scheme;
    int (*open)(gp_events_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap);
    void (*close)(gp_events_t *ev);
    /* Publishes a status event for t (snapshot built from t + hot state); resets progress
     * to 0 when t is pending/processing with a new attempt (reset_progress). */
    int (*publish_status)(gp_events_t *ev, const gp_task_t *t, bool reset_progress);
    /* Updates hot progress/step (step NULL keeps it) and publishes a progress event. */
    int (*publish_progress)(gp_events_t *ev, const gp_task_t *t, int percent, const char *step);
    /* 0 and fills out, or -GP_E_NOT_FOUND when the bus knows nothing of the task. */
    int (*get_hot)(gp_events_t *ev, const char *task_id, gp_hot_state_t *out);
    /* task_id NULL: every task's events (the dashboard's stream). */
    int (*subscribe)(gp_events_t *ev, const char *task_id, gp_event_cb cb, void *arg,
                     gp_subscription_t **out);
    void (*unsubscribe)(gp_events_t *ev, gp_subscription_t *sub);
    int (*publish_cancel)(gp_events_t *ev, const char *task_id);
    /* One process-wide cancel listener (the worker pool). */
    int (*on_cancel)(gp_events_t *ev, gp_cancel_cb cb, void *arg);
} gp_events_vt_t;

struct gp_events {
    const gp_events_vt_t *vt;
};

extern const gp_events_vt_t *const gp_generated_events_backends[];
int gp_events_open(gp_events_t **out, const gp_settings_t *s, char *err, size_t cap);

static inline void gp_events_close(gp_events_t *e)
{
    if (e)
        e->vt->close(e);
}
static inline int gp_events_publish_status(gp_events_t *e, const gp_task_t *t, bool reset)
{
    return e->vt->publish_status(e, t, reset);
}
static inline int gp_events_publish_progress(gp_events_t *e, const gp_task_t *t, int pct,
                                             const char *step)
{
    return e->vt->publish_progress(e, t, pct, step);
}
static inline int gp_events_get_hot(gp_events_t *e, const char *id, gp_hot_state_t *out)
{
    return e->vt->get_hot(e, id, out);
}
static inline int gp_events_subscribe(gp_events_t *e, const char *id, gp_event_cb cb, void *arg,
                                      gp_subscription_t **out)
{
    return e->vt->subscribe(e, id, cb, arg, out);
}
static inline void gp_events_unsubscribe(gp_events_t *e, gp_subscription_t *s)
{
    e->vt->unsubscribe(e, s);
}
static inline int gp_events_publish_cancel(gp_events_t *e, const char *id)
{
    return e->vt->publish_cancel(e, id);
}
static inline int gp_events_on_cancel(gp_events_t *e, gp_cancel_cb cb, void *arg)
{
    return e->vt->on_cancel(e, cb, arg);
}

#endif

/*
 * webhooks.h — the webhook delivery loop (Standard Webhooks; store.h, "webhooks").
 *
 * A few delivery threads per process claim due rows of the store's outbox with a lease,
 * render a delivery's body once (through the renderer registered for its format; the loop
 * knows nothing of the API layer), sign it, POST it with libcurl (connect 5 s, total 15 s,
 * no redirects, TLS verified, response read capped), and record the attempt: 2xx =
 * succeeded; else another attempt on the schedule (gp_webhook_retry_delay_ms, scaled by
 * --webhook-retry-scale, Retry-After honoured) until it is exhausted; 410 Gone disables a
 * per-user endpoint. The address a host resolves to is checked at connect time (no
 * loopback, private, link-local, CGNAT, multicast or unspecified address unless
 * --webhook-allow-private). Task workers never wait for any of it.
 *
 * Threading: set_renderer before start; wake, progress from any thread; start/stop from the
 * main thread. One loop per process.
 */
#ifndef GP_RUNTIME_WEBHOOKS_H
#define GP_RUNTIME_WEBHOOKS_H

#include "runtime/runtime.h"

#include <jansson.h>

/* Renders a task for a delivery body (new reference; NULL = cannot). ctx as registered.
 * Called on a delivery thread. */
typedef json_t *(*gp_webhook_render_fn)(void *ctx, const gp_task_t *t);

/* GP_WEBHOOK_FORMAT_TASK: the renderer gives the task object (GET /v1/tasks/{id}); the body
 * is the envelope {"type", "timestamp", "data": <it>}. Other formats: the renderer's object
 * is the whole body. A format with no renderer falls back to the task format. */
void gp_webhooks_set_renderer(int format, gp_webhook_render_fn fn, void *ctx);

typedef struct gp_webhooks gp_webhooks_t;

/* Starts the delivery threads (NULL with err when a setting is invalid). */
gp_webhooks_t *gp_webhooks_start(gp_runtime_t *rt, char *err, size_t cap);
/* Stops them: an attempt in flight ends (its lease lets another process retry it). */
void gp_webhooks_stop(gp_webhooks_t *w);
/* New deliveries are due: the loop claims them now instead of at its next poll. A no-op
 * when no loop runs in this process. */
void gp_webhooks_wake(void);

/* The body of delivery d (rendered once by the loop; exposed for tests and the API). */
char *gp_webhooks_render(gp_runtime_t *rt, const gp_webhook_delivery_t *d, const gp_task_t *t);

/* A best-effort task.output / task.logs event of task t (type GP_WH_TYPE_OUTPUT or _LOGS),
 * at most one per type per GP_WH_PROGRESS_MIN_MS (last_ms[0] for output, [1] for logs: the
 * caller's state, one pair per running task). Adds outbox rows only when the task has a
 * webhook asking for the event, or its owner may have endpoints (checked by the store). */
#define GP_WH_PROGRESS_MIN_MS 500
void gp_webhooks_progress(gp_runtime_t *rt, const gp_task_t *t, unsigned type, int64_t last_ms[2]);

#endif

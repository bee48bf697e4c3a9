/*
 * ctx.h — the task context behind genpulse/handler.h (internal to the worker).
 */
#ifndef GP_CTX_INTERNAL_H
#define GP_CTX_INTERNAL_H

#include "runtime/runtime.h"

#include <genpulse/handler.h>
#include <stdatomic.h>

struct gp_ctx {
    gp_runtime_t *rt;
    gp_task_t task;                /* owned copy, status/attempts as of the claim */
    const gp_provider_t *provider; /* NULL when this worker lacks it */
    int64_t deadline_ms;           /* hard timeout, gp_mono_ms clock */
    atomic_bool cancel;            /* cancel requested (by a client or by shutdown) */
    atomic_bool timed_out;         /* the hard timeout passed */
    json_t *result;                /* result object; "assets" array inside */
    char *fail_code, *fail_message;
    char *scratch_dir;
    int last_percent;
    char last_step[256];
    int download_seq;           /* names scratch downloads */
    char request_id[65];        /* of the request that created the task ("" = none), for logs */
    int64_t webhook_last_ms[2]; /* last task.output / task.logs event (runtime/webhooks.h) */
};

/* Sends the progress event that carries the link of preview object `name` (already stored). */
void gp_ctx_announce_preview(gp_ctx_t *ctx, const char *name);

/* Takes a copy of t. */
void gp_ctx_init(gp_ctx_t *ctx, gp_runtime_t *rt, const gp_task_t *t);
void gp_ctx_destroy(gp_ctx_t *ctx);

#endif

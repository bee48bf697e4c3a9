/*
 * echo.c — the "echo" task type and its only provider. The result is a copy of the validated
 * params, which makes it the cheapest possible round trip through the queue, the worker pool
 * and the result store: benchmarks and smoke tests use it.
 */
#include "genpulse/handler.h"

#include <time.h>

static const gp_param_spec_t echo_params[] = {
    GP_P_STRING("message", false, 0, 10000, NULL, "Any text; returned unchanged."),
    GP_P_OBJECT("data", false, "Any JSON object; returned unchanged."),
    GP_P_INT("sleep_ms", false, 0, 60000, NULL,
             "Wait this long before answering (tests of in-flight work); absent = no wait."),
    GP_P_END,
};

const gp_task_type_t gp_task_type_echo = {
    .name = "echo",
    .description = "Return the request params as the result. For benchmarks and smoke tests.",
    .default_provider = "echo",
    .params = echo_params,
};

static const char *const echo_task_types[] = {"echo", NULL};

static int echo_run(gp_ctx_t *ctx)
{
    /* Sleeps in 10 ms steps so a cancel or the hard timeout stops it promptly. */
    for (int64_t left = gp_ctx_param_int(ctx, "sleep_ms", 0); left > 0; left -= 10) {
        if (gp_ctx_is_canceled(ctx))
            return GP_CTX_CANCELED;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (left < 10 ? left : 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
    json_t *copy = json_deep_copy(gp_ctx_params(ctx));
    if (copy == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not copy the params");
    gp_ctx_set_result(ctx, copy);
    return 0;
}

const gp_provider_t gp_provider_echo = {
    .name = "echo",
    .description = "Copies the validated params (defaults filled in) into the result. "
                   "No outputs, no progress, no delay unless sleep_ms asks for one.",
    .task_types = echo_task_types,
    .params = NULL,
    .run = echo_run,
};

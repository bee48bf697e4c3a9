/*
 * echo.c — the "echo" task type and its only provider. The result is a copy of the validated
 * params, which makes it the cheapest possible round trip through the queue, the worker pool
 * and the result store: benchmarks and smoke tests use it.
 */
#include "genpulse/handler.h"

static const gp_param_spec_t echo_params[] = {
    GP_P_STRING("message", false, 0, 10000, NULL, "Any text; returned unchanged."),
    GP_P_OBJECT("data", false, "Any JSON object; returned unchanged."),
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
    json_t *copy = json_deep_copy(gp_ctx_params(ctx));
    if (copy == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not copy the params");
    gp_ctx_set_result(ctx, copy);
    return 0;
}

const gp_provider_t gp_provider_echo = {
    .name = "echo",
    .description = "Copies the validated params (defaults filled in) into the result. "
                   "No outputs, no progress, no delay.",
    .task_types = echo_task_types,
    .params = NULL,
    .run = echo_run,
};

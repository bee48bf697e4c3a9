/* ctx.c — what a provider can do while it runs (genpulse/handler.h). */
#include "worker/ctx.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void gp_ctx_init(gp_ctx_t *ctx, gp_runtime_t *rt, const gp_task_t *t)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->rt = rt;
    gp_task_copy(&ctx->task, t);
    atomic_init(&ctx->cancel, t->cancel_requested);
    atomic_init(&ctx->timed_out, false);
    ctx->result = json_pack("{s:[]}", "assets");
    ctx->last_percent = -1;
}

void gp_ctx_destroy(gp_ctx_t *ctx)
{
    if (ctx->scratch_dir) {
        gp_rmtree(ctx->scratch_dir);
        free(ctx->scratch_dir);
    }
    gp_task_clear(&ctx->task);
    json_decref(ctx->result);
    free(ctx->fail_code);
    free(ctx->fail_message);
    memset(ctx, 0, sizeof *ctx);
}

const char *gp_ctx_task_id(const gp_ctx_t *ctx) { return ctx->task.id; }
int gp_ctx_attempt(const gp_ctx_t *ctx) { return ctx->task.attempts; }
const json_t *gp_ctx_params(const gp_ctx_t *ctx) { return ctx->task.params; }

const char *gp_ctx_param_str(const gp_ctx_t *ctx, const char *name, const char *fallback)
{
    json_t *v = json_object_get(ctx->task.params, name);
    return json_is_string(v) ? json_string_value(v) : fallback;
}

int64_t gp_ctx_param_int(const gp_ctx_t *ctx, const char *name, int64_t fallback)
{
    json_t *v = json_object_get(ctx->task.params, name);
    if (json_is_integer(v))
        return json_integer_value(v);
    return json_is_real(v) ? (int64_t)json_real_value(v) : fallback;
}

double gp_ctx_param_num(const gp_ctx_t *ctx, const char *name, double fallback)
{
    json_t *v = json_object_get(ctx->task.params, name);
    return json_is_number(v) ? json_number_value(v) : fallback;
}

bool gp_ctx_param_bool(const gp_ctx_t *ctx, const char *name, bool fallback)
{
    json_t *v = json_object_get(ctx->task.params, name);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}

bool gp_ctx_is_canceled(const gp_ctx_t *ctx)
{
    return atomic_load(&ctx->cancel) || atomic_load(&ctx->timed_out);
}

int gp_ctx_canceled_error(gp_ctx_t *ctx)
{
    (void)ctx;
    return GP_CTX_CANCELED;
}

int gp_ctx_progress(gp_ctx_t *ctx, int percent, const char *step)
{
    if (gp_ctx_is_canceled(ctx))
        return GP_CTX_CANCELED;
    if (percent < 0)
        percent = 0;
    if (percent > 100)
        percent = 100;
    bool step_changed = step && strncmp(step, ctx->last_step, sizeof ctx->last_step - 1) != 0;
    if (percent == ctx->last_percent && !step_changed)
        return 0; /* nothing new: spare the bus */
    ctx->last_percent = percent;
    if (step_changed)
        snprintf(ctx->last_step, sizeof ctx->last_step, "%s", step);
    gp_events_publish_progress(ctx->rt->events, &ctx->task, percent, step);
    return 0;
}

int gp_ctx_sleep_ms(gp_ctx_t *ctx, int64_t ms)
{
    int64_t end = gp_mono_ms() + ms;
    for (;;) {
        if (gp_ctx_is_canceled(ctx))
            return GP_CTX_CANCELED;
        int64_t left = end - gp_mono_ms();
        if (left <= 0)
            return 0;
        int64_t slice = left < 20 ? left : 20; /* cancel reaction time */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int add_asset(gp_ctx_t *ctx, const char *name, const char *url, size_t bytes,
                     const char *content_type, json_t *extra)
{
    json_t *asset = json_pack("{s:s, s:s, s:s, s:I}", "name", name, "url", url, "content_type",
                              content_type, "bytes", (json_int_t)bytes);
    if (extra) {
        json_object_update_missing(asset, extra);
        json_decref(extra);
    }
    json_array_append_new(json_object_get(ctx->result, "assets"), asset);
    return 0;
}

int gp_ctx_store_bytes(gp_ctx_t *ctx, const char *name, const void *data, size_t len,
                       const char *content_type, json_t *extra)
{
    if (!gp_storage_name_ok(name)) {
        json_decref(extra);
        return gp_ctx_fail(ctx, false, "invalid_output", "bad output name \"%s\"", name);
    }
    char *url = NULL;
    int rc = gp_storage_put_bytes(ctx->rt->storage, ctx->task.id, name, data, len, content_type,
                                  &url);
    if (rc != 0) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, "storage_error", "storing %s failed: %s", name,
                           gp_err_message(rc));
    }
    add_asset(ctx, name, url, len, content_type, extra);
    free(url);
    return 0;
}

int gp_ctx_store_file(gp_ctx_t *ctx, const char *name, const char *path, const char *content_type,
                      json_t *extra)
{
    struct stat st;
    if (!gp_storage_name_ok(name) || stat(path, &st) != 0) {
        json_decref(extra);
        return gp_ctx_fail(ctx, false, "invalid_output", "output %s (%s) is missing", name, path);
    }
    char *url = NULL;
    int rc = gp_storage_put_file(ctx->rt->storage, ctx->task.id, name, path, content_type, &url);
    if (rc != 0) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, "storage_error", "storing %s failed: %s", name,
                           gp_err_message(rc));
    }
    add_asset(ctx, name, url, (size_t)st.st_size, content_type, extra);
    free(url);
    return 0;
}

void gp_ctx_set_result(gp_ctx_t *ctx, json_t *fields)
{
    if (!fields)
        return;
    if (json_is_object(fields)) {
        json_t *assets = json_incref(json_object_get(ctx->result, "assets"));
        json_object_update(ctx->result, fields);
        json_object_set_new(ctx->result, "assets", assets); /* assets stay ours */
    }
    json_decref(fields);
}

int gp_ctx_fail(gp_ctx_t *ctx, bool retryable, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(ctx->fail_code);
    free(ctx->fail_message);
    ctx->fail_code = gp_xstrdup(code && *code ? code : "provider_error");
    ctx->fail_message = gp_xstrdup(msg);
    return retryable ? GP_CTX_FAILED_RETRYABLE : GP_CTX_FAILED_PERMANENT;
}

const char *gp_ctx_scratch_dir(gp_ctx_t *ctx)
{
    if (ctx->scratch_dir)
        return ctx->scratch_dir;
    const char *tmp = getenv("TMPDIR");
    char *dir = gp_xasprintf("%s/genpulse-%s-%d", tmp && *tmp ? tmp : "/tmp", ctx->task.id,
                             ctx->task.attempts);
    if (gp_mkdirs(dir, 0700) != 0) {
        free(dir);
        return NULL;
    }
    ctx->scratch_dir = dir;
    return dir;
}

void gp_ctx_log(gp_ctx_t *ctx, gp_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(level, ctx->task.id, fmt, ap);
    va_end(ap);
}

/* ctx.c — what a provider can do while it runs (genpulse/handler.h). */
#include "worker/ctx.h"
#include "runtime/webhooks.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/media_type.h"
#include "core/settings.h"
#include "core/util.h"
#include "media/media.h"

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
    /* The request id is ours, not the handler's: keep it for log lines, out of params. */
    const char *rid = gp_task_request_id(ctx->task.params);
    if (rid) {
        snprintf(ctx->request_id, sizeof ctx->request_id, "%s", rid);
        json_object_del(ctx->task.params, GP_TASK_REQUEST_ID_PARAM);
    }
    json_object_del(ctx->task.params, GP_TASK_SURFACE_PARAM); /* the Replicate view: ours too */
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

const char *gp_ctx_task_id(const gp_ctx_t *ctx)
{
    return ctx->task.id;
}
int gp_ctx_attempt(const gp_ctx_t *ctx)
{
    return ctx->task.attempts;
}
const char *gp_ctx_task_type(const gp_ctx_t *ctx)
{
    return ctx->task.task_type;
}
int64_t gp_ctx_deadline_ms(const gp_ctx_t *ctx)
{
    return ctx->deadline_ms;
}
const json_t *gp_ctx_params(const gp_ctx_t *ctx)
{
    return ctx->task.params;
}

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

/* Typed provider settings: parsed and checked once by gp_settings_load(), read-only after. */
static gp_setting_value_t setting_value(const gp_ctx_t *ctx, const char *name)
{
    gp_setting_value_t zero = {0};
    if (!ctx->provider)
        return zero;
    return gp_settings_provider_value(ctx->rt->settings, ctx->provider->name, name);
}

int64_t gp_ctx_setting_int(const gp_ctx_t *ctx, const char *name)
{
    return setting_value(ctx, name).i;
}

bool gp_ctx_setting_bool(const gp_ctx_t *ctx, const char *name)
{
    return setting_value(ctx, name).i != 0;
}

double gp_ctx_setting_num(const gp_ctx_t *ctx, const char *name)
{
    return setting_value(ctx, name).d;
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
    gp_webhooks_progress(ctx->rt, &ctx->task, GP_WH_TYPE_LOGS, ctx->webhook_last_ms);
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

/* Stores a derived image (thumbnail, first frame) next to the output; its link or NULL. */
static char *store_derived(gp_ctx_t *ctx, const char *name, const char *path)
{
    char *url = NULL;
    if (gp_storage_put_file(ctx->rt->storage, ctx->task.id, name, path, "image/jpeg", &url) != 0) {
        gp_ctx_log(ctx, GP_LOG_WARN, "storing %s failed", name);
        return NULL;
    }
    return url;
}

/*
 * What the media libraries tell about an output: width/height/blurhash/thumbnail for images,
 * width/height/duration/first-frame preview for videos. Analysis failing never fails the
 * task: the asset is published without the extras and the reason is logged.
 */
static json_t *analyze(gp_ctx_t *ctx, const char *name, const char *path, const char *ct)
{
    bool image = !strncmp(ct, "image/", 6), video = !strncmp(ct, "video/", 6);
    if (!image && !video)
        return NULL;
    const char *dir = gp_ctx_scratch_dir(ctx);
    if (!dir)
        return NULL;
    char err[256] = "";
    json_t *extra = json_object();
    char *thumb_name = gp_storage_derived_name(name, ct);
    char *thumb_path = gp_xasprintf("%s/%s", dir, thumb_name);
    char *thumb_url = NULL;
    if (image) {
        gp_image_info_t info;
        if (gp_media_probe_image(path, &info, thumb_path, 320, err, sizeof err) == 0) {
            json_object_set_new(extra, "width", json_integer(info.width));
            json_object_set_new(extra, "height", json_integer(info.height));
            if (info.blurhash[0]) {
                json_object_set_new(extra, "blurhash", json_string(info.blurhash));
                if (!json_object_get(ctx->result, "blurhash")) /* the task's own (seed 003) */
                    json_object_set_new(ctx->result, "blurhash", json_string(info.blurhash));
            }
            thumb_url = store_derived(ctx, thumb_name, thumb_path);
        } else {
            gp_ctx_log(ctx, GP_LOG_WARN, "%s: not analysed as an image: %s", name, err);
        }
    } else {
        gp_video_info_t info;
        if (gp_media_probe_video(path, &info, thumb_path, err, sizeof err) == 0) {
            json_object_set_new(extra, "width", json_integer(info.width));
            json_object_set_new(extra, "height", json_integer(info.height));
            if (info.duration_s > 0)
                json_object_set_new(
                    extra, "duration",
                    json_real((double)(int64_t)(info.duration_s * 1000.0 + 0.5) / 1000.0));
            thumb_url = store_derived(ctx, thumb_name, thumb_path);
            if (thumb_url)
                gp_ctx_announce_preview(ctx, thumb_name);
        } else {
            gp_ctx_log(ctx, GP_LOG_WARN, "%s: not analysed as a video: %s", name, err);
        }
    }
    if (thumb_url)
        json_object_set_new(extra, "thumbnail_url", json_string(thumb_url));
    free(thumb_url);
    remove(thumb_path);
    free(thumb_path);
    free(thumb_name);
    return extra;
}

int gp_ctx_store_bytes(gp_ctx_t *ctx, const char *name, const void *data, size_t len,
                       const char *content_type, json_t *extra)
{
    if (!gp_storage_name_ok(name)) {
        json_decref(extra);
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT, "bad output name \"%s\"", name);
    }
    if (!content_type || !*content_type)
        content_type = gp_media_type_of_name(name);
    if ((!strncmp(content_type, "image/", 6) || !strncmp(content_type, "video/", 6))) {
        /* media is analysed from a file: go through one */
        const char *dir = gp_ctx_scratch_dir(ctx);
        if (dir) {
            char *path = gp_xasprintf("%s/bytes-%s", dir, name);
            int rc = gp_write_file_atomic(path, data, len) == 0
                         ? gp_ctx_store_file(ctx, name, path, content_type, extra)
                         : gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot write %s", name);
            remove(path);
            free(path);
            return rc;
        }
    }
    char *url = NULL;
    int rc =
        gp_storage_put_bytes(ctx->rt->storage, ctx->task.id, name, data, len, content_type, &url);
    if (rc != 0) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "storing %s failed: %s", name,
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
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT, "output %s (%s) is missing", name,
                           path);
    }
    if (!content_type || !*content_type)
        content_type = gp_media_type_of_name(name);
    char *url = NULL;
    int rc = gp_storage_put_file(ctx->rt->storage, ctx->task.id, name, path, content_type, &url);
    if (rc != 0) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "storing %s failed: %s", name,
                           gp_err_message(rc));
    }
    json_t *media = analyze(ctx, name, path, content_type);
    if (media) {
        if (extra)
            json_object_update(media, extra); /* the provider's own fields win */
        json_decref(extra);
        extra = media;
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

int gp_ctx_fail(gp_ctx_t *ctx, bool retryable, gp_task_error_t code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(ctx->fail_code);
    free(ctx->fail_message);
    ctx->fail_code = gp_xstrdup(gp_task_error_code(code));
    ctx->fail_message = gp_xstrdup(msg);
    return gp_task_error_retryable(code, retryable) ? GP_CTX_FAILED_RETRYABLE
                                                    : GP_CTX_FAILED_PERMANENT;
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

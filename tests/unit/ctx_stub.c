/*
 * ctx_stub.c — a stand-alone gp_ctx_* implementation for unit tests of providers.
 *
 * It keeps stored outputs in memory, builds result.assets the way the core does, records
 * progress calls and the last failure, and lets a test set the attempt number and the
 * cancel flag (from any thread) or arm an automatic cancel after N progress calls.
 * The stub_ctx_* functions below are its test-facing API; test_engines.c declares them.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw, nanosleep, strdup */

#include "genpulse/handler.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STUB_SLEEP_SLICE_MS 5 /* how quickly gp_ctx_sleep_ms notices a cancel */

typedef struct stub_output {
    char *name;
    char *content_type;
    unsigned char *data;
    size_t length;
} stub_output_t;

struct gp_ctx {
    char task_id[32];
    int attempt;
    json_t *params;
    json_t *result;

    atomic_bool canceled;
    int cancel_after_progress; /* 0 = never */
    bool canceled_error_returned;

    int progress_calls;
    int last_percent;
    bool progress_monotonic;
    char *last_step;

    stub_output_t *outputs;
    size_t output_count;

    bool failed;
    bool failure_retryable;
    char *failure_code;
    char *failure_message;

    char *scratch_dir;
    struct stub_media *media;      /* inputs, previews, settings: see the block at the end */
    const gp_provider_t *provider; /* declares the settings' defaults; may be NULL */
};

static void stub_media_free(gp_ctx_t *ctx);

/* ---------------------------------------------------------------------------------------
 * Test-facing API
 * ------------------------------------------------------------------------------------- */

/* Takes ownership of params (a JSON object with defaults already filled in). */
gp_ctx_t *stub_ctx_new(json_t *params)
{
    gp_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        json_decref(params);
        return NULL;
    }
    (void)snprintf(ctx->task_id, sizeof ctx->task_id, "stub-task");
    ctx->attempt = 1;
    ctx->params = params;
    ctx->result = json_object();
    atomic_init(&ctx->canceled, false);
    ctx->progress_monotonic = true;
    if (ctx->params == NULL || ctx->result == NULL) {
        json_decref(ctx->params);
        json_decref(ctx->result);
        free(ctx);
        return NULL;
    }
    return ctx;
}

static int remove_scratch_entry(const char *path, const struct stat *info, int type,
                                struct FTW *walk)
{
    (void)info;
    (void)type;
    (void)walk;
    if (remove(path) != 0)
        fprintf(stderr, "ctx_stub: cannot remove %s: %s\n", path, strerror(errno));
    return 0; /* keep going: remove as much as possible */
}

void stub_ctx_free(gp_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    stub_media_free(ctx);
    if (ctx->scratch_dir != NULL) {
        if (nftw(ctx->scratch_dir, remove_scratch_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            fprintf(stderr, "ctx_stub: cannot walk %s\n", ctx->scratch_dir);
        free(ctx->scratch_dir);
    }
    for (size_t i = 0; i < ctx->output_count; i++) {
        free(ctx->outputs[i].name);
        free(ctx->outputs[i].content_type);
        free(ctx->outputs[i].data);
    }
    free(ctx->outputs);
    free(ctx->last_step);
    free(ctx->failure_code);
    free(ctx->failure_message);
    json_decref(ctx->params);
    json_decref(ctx->result);
    free(ctx);
}

void stub_ctx_set_attempt(gp_ctx_t *ctx, int attempt)
{
    ctx->attempt = attempt;
}

/* Safe from any thread, like the core's cancel request. */
void stub_ctx_set_canceled(gp_ctx_t *ctx, bool canceled)
{
    atomic_store(&ctx->canceled, canceled);
}

/* Cancel the task as the calls-th progress report arrives (that call already sees it). */
void stub_ctx_cancel_after_progress(gp_ctx_t *ctx, int calls)
{
    ctx->cancel_after_progress = calls;
}

int stub_ctx_progress_calls(const gp_ctx_t *ctx)
{
    return ctx->progress_calls;
}

int stub_ctx_last_percent(const gp_ctx_t *ctx)
{
    return ctx->last_percent;
}

bool stub_ctx_progress_monotonic(const gp_ctx_t *ctx)
{
    return ctx->progress_monotonic;
}

const char *stub_ctx_last_step(const gp_ctx_t *ctx)
{
    return ctx->last_step;
}

bool stub_ctx_canceled_error_returned(const gp_ctx_t *ctx)
{
    return ctx->canceled_error_returned;
}

const json_t *stub_ctx_result(const gp_ctx_t *ctx)
{
    return ctx->result;
}

size_t stub_ctx_output_count(const gp_ctx_t *ctx)
{
    return ctx->output_count;
}

/* The stored bytes of output `name`, or NULL. */
const unsigned char *stub_ctx_output(const gp_ctx_t *ctx, const char *name, size_t *length)
{
    for (size_t i = 0; i < ctx->output_count; i++) {
        if (strcmp(ctx->outputs[i].name, name) == 0) {
            if (length != NULL)
                *length = ctx->outputs[i].length;
            return ctx->outputs[i].data;
        }
    }
    return NULL;
}

/* The asset object in result.assets for output `name`, or NULL. */
const json_t *stub_ctx_asset(const gp_ctx_t *ctx, const char *name)
{
    const json_t *assets = json_object_get(ctx->result, "assets");
    size_t index;
    const json_t *asset;
    json_array_foreach (assets, index, asset) {
        const char *asset_name = json_string_value(json_object_get(asset, "name"));
        if (asset_name != NULL && strcmp(asset_name, name) == 0)
            return asset;
    }
    return NULL;
}

const char *stub_ctx_error_code(const gp_ctx_t *ctx)
{
    return ctx->failure_code;
}

const char *stub_ctx_error_message(const gp_ctx_t *ctx)
{
    return ctx->failure_message;
}

bool stub_ctx_error_retryable(const gp_ctx_t *ctx)
{
    return ctx->failure_retryable;
}

/* ---------------------------------------------------------------------------------------
 * gp_ctx_* (handler.h)
 * ------------------------------------------------------------------------------------- */

const char *gp_ctx_task_id(const gp_ctx_t *ctx)
{
    return ctx->task_id;
}

int gp_ctx_attempt(const gp_ctx_t *ctx)
{
    return ctx->attempt;
}

const json_t *gp_ctx_params(const gp_ctx_t *ctx)
{
    return ctx->params;
}

const char *gp_ctx_param_str(const gp_ctx_t *ctx, const char *name, const char *fallback)
{
    const json_t *value = json_object_get(ctx->params, name);
    return json_is_string(value) ? json_string_value(value) : fallback;
}

int64_t gp_ctx_param_int(const gp_ctx_t *ctx, const char *name, int64_t fallback)
{
    const json_t *value = json_object_get(ctx->params, name);
    return json_is_integer(value) ? (int64_t)json_integer_value(value) : fallback;
}

double gp_ctx_param_num(const gp_ctx_t *ctx, const char *name, double fallback)
{
    const json_t *value = json_object_get(ctx->params, name);
    return json_is_number(value) ? json_number_value(value) : fallback;
}

bool gp_ctx_param_bool(const gp_ctx_t *ctx, const char *name, bool fallback)
{
    const json_t *value = json_object_get(ctx->params, name);
    return json_is_boolean(value) ? json_is_true(value) : fallback;
}

int gp_ctx_progress(gp_ctx_t *ctx, int percent, const char *step)
{
    if (percent < 0)
        percent = 0;
    if (percent > 100)
        percent = 100;
    ctx->progress_calls++;
    if (ctx->progress_calls > 1 && percent < ctx->last_percent)
        ctx->progress_monotonic = false;
    ctx->last_percent = percent;
    if (step != NULL) {
        char *copy = strdup(step);
        if (copy != NULL) {
            free(ctx->last_step);
            ctx->last_step = copy;
        }
    }
    if (ctx->cancel_after_progress > 0 && ctx->progress_calls >= ctx->cancel_after_progress)
        atomic_store(&ctx->canceled, true);
    return atomic_load(&ctx->canceled) ? GP_CTX_CANCELED : 0;
}

bool gp_ctx_is_canceled(const gp_ctx_t *ctx)
{
    return atomic_load(&ctx->canceled);
}

int gp_ctx_sleep_ms(gp_ctx_t *ctx, int64_t ms)
{
    while (ms > 0) {
        if (gp_ctx_is_canceled(ctx))
            return GP_CTX_CANCELED;
        int64_t slice = ms < STUB_SLEEP_SLICE_MS ? ms : STUB_SLEEP_SLICE_MS;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)(slice * 1000000)};
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
        }
        ms -= slice;
    }
    return gp_ctx_is_canceled(ctx) ? GP_CTX_CANCELED : 0;
}

int gp_ctx_canceled_error(gp_ctx_t *ctx)
{
    ctx->canceled_error_returned = true;
    return GP_CTX_CANCELED;
}

/* The core's rule for output names: [A-Za-z0-9._-], no leading dot. */
static bool output_name_is_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.')
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int gp_ctx_store_bytes(gp_ctx_t *ctx, const char *name, const void *data, size_t len,
                       const char *content_type, json_t *extra)
{
    if (!output_name_is_valid(name)) {
        json_decref(extra);
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT, "bad output name \"%s\"",
                           name != NULL ? name : "(null)");
    }
    if (stub_ctx_output(ctx, name, NULL) != NULL) {
        json_decref(extra);
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT, "output \"%s\" stored twice", name);
    }

    stub_output_t *grown = realloc(ctx->outputs, (ctx->output_count + 1) * sizeof *grown);
    if (grown == NULL) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "stub: no memory for output");
    }
    ctx->outputs = grown;
    stub_output_t *output = &ctx->outputs[ctx->output_count];
    output->name = strdup(name);
    output->content_type = strdup(content_type != NULL ? content_type : "application/octet-stream");
    output->data = malloc(len > 0 ? len : 1);
    output->length = len;
    if (output->name == NULL || output->content_type == NULL || output->data == NULL) {
        free(output->name);
        free(output->content_type);
        free(output->data);
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "stub: no memory for output");
    }
    if (len > 0)
        memcpy(output->data, data, len);
    ctx->output_count++;

    char url[300];
    (void)snprintf(url, sizeof url, "stub://%s/%s", ctx->task_id, name);
    json_t *asset = json_pack("{s:s, s:s, s:s, s:I}", "name", name, "url", url, "content_type",
                              output->content_type, "bytes", (json_int_t)len);
    json_t *assets = json_object_get(ctx->result, "assets");
    if (assets == NULL) {
        assets = json_array();
        if (assets == NULL || json_object_set_new(ctx->result, "assets", assets) != 0)
            assets = NULL;
    }
    if (asset == NULL || assets == NULL ||
        (extra != NULL && json_object_update(asset, extra) != 0) ||
        json_array_append(assets, asset) != 0) {
        json_decref(asset);
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "stub: no memory for asset");
    }
    json_decref(asset);
    json_decref(extra);
    return 0;
}

int gp_ctx_store_file(gp_ctx_t *ctx, const char *name, const char *path, const char *content_type,
                      json_t *extra)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        json_decref(extra);
        return gp_ctx_fail(ctx, false, GP_TE_STORAGE_ERROR, "cannot open %s: %s", path,
                           strerror(errno));
    }
    unsigned char *data = NULL;
    size_t length = 0, capacity = 0;
    for (;;) {
        if (length == capacity) {
            capacity = capacity > 0 ? capacity * 2 : 65536;
            unsigned char *grown = realloc(data, capacity);
            if (grown == NULL) {
                free(data);
                fclose(file);
                json_decref(extra);
                return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "stub: no memory for %s", path);
            }
            data = grown;
        }
        size_t got = fread(data + length, 1, capacity - length, file);
        length += got;
        if (got == 0)
            break;
    }
    bool read_failed = ferror(file) != 0;
    fclose(file);
    if (read_failed) {
        free(data);
        json_decref(extra);
        return gp_ctx_fail(ctx, false, GP_TE_STORAGE_ERROR, "cannot read %s", path);
    }
    int rc = gp_ctx_store_bytes(ctx, name, data, length, content_type, extra);
    free(data);
    return rc;
}

void gp_ctx_set_result(gp_ctx_t *ctx, json_t *fields)
{
    if (json_is_object(fields) && json_object_update(ctx->result, fields) != 0)
        fprintf(stderr, "ctx_stub: could not merge result fields\n");
    json_decref(fields);
}

int gp_ctx_fail(gp_ctx_t *ctx, bool retryable, gp_task_error_t code, const char *fmt, ...)
{
    char message[1024];
    va_list args;
    va_start(args, fmt);
    (void)vsnprintf(message, sizeof message, fmt, args);
    va_end(args);

    free(ctx->failure_code);
    free(ctx->failure_message);
    retryable = gp_task_error_retryable(code, retryable);
    ctx->failure_code = strdup(gp_task_error_code(code));
    ctx->failure_message = strdup(message);
    ctx->failed = true;
    ctx->failure_retryable = retryable;
    return retryable ? GP_CTX_FAILED_RETRYABLE : GP_CTX_FAILED_PERMANENT;
}

const char *gp_ctx_scratch_dir(gp_ctx_t *ctx)
{
    if (ctx->scratch_dir == NULL) {
        char template[] = "/tmp/genpulse-stub-XXXXXX";
        if (mkdtemp(template) == NULL)
            return NULL;
        ctx->scratch_dir = strdup(template);
        if (ctx->scratch_dir == NULL)
            (void)remove(template);
    }
    return ctx->scratch_dir;
}

void gp_ctx_log(gp_ctx_t *ctx, gp_log_level_t level, const char *fmt, ...)
{
    static const char *const level_names[] = {"debug", "info", "warn", "error"};
    const char *level_name = (unsigned)level < 4 ? level_names[level] : "?";
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "[%s] %s: ", level_name, ctx->task_id);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

/* ---------------------------------------------------------------------------------------
 * Media inputs, previews and provider settings
 *
 * A test names the file behind a media param with stub_ctx_set_input(); gp_ctx_input_file()
 * copies it into the scratch dir the way the core downloads it, so a provider cannot depend
 * on the original path. Published previews are kept in memory, with the number of progress
 * calls seen before them (a test can check the preview came before the end).
 * ------------------------------------------------------------------------------------- */

#define STUB_MAX_INPUTS 4
#define STUB_MAX_SETTINGS 8

struct stub_media {
    struct {
        char *param, *path, *content_type;
    } inputs[STUB_MAX_INPUTS];
    struct {
        char *name, *value;
    } settings[STUB_MAX_SETTINGS];
    stub_output_t preview; /* the last one published */
    int preview_count;
    int progress_calls_before_preview;
};

static struct stub_media *stub_media(gp_ctx_t *ctx)
{
    if (ctx->media == NULL)
        ctx->media = calloc(1, sizeof *ctx->media);
    return ctx->media;
}

static void stub_media_free(gp_ctx_t *ctx)
{
    struct stub_media *media = ctx->media;
    if (media == NULL)
        return;
    for (size_t i = 0; i < STUB_MAX_INPUTS; i++) {
        free(media->inputs[i].param);
        free(media->inputs[i].path);
        free(media->inputs[i].content_type);
    }
    for (size_t i = 0; i < STUB_MAX_SETTINGS; i++) {
        free(media->settings[i].name);
        free(media->settings[i].value);
    }
    free(media->preview.name);
    free(media->preview.content_type);
    free(media->preview.data);
    free(media);
    ctx->media = NULL;
}

/* The file that media param `param` refers to (content_type may be NULL). 0 or -1. */
int stub_ctx_set_input(gp_ctx_t *ctx, const char *param, const char *path, const char *content_type)
{
    struct stub_media *media = stub_media(ctx);
    if (media == NULL)
        return -1;
    for (size_t i = 0; i < STUB_MAX_INPUTS; i++) {
        if (media->inputs[i].param == NULL) {
            media->inputs[i].param = strdup(param);
            media->inputs[i].path = strdup(path);
            media->inputs[i].content_type = content_type != NULL ? strdup(content_type) : NULL;
            return media->inputs[i].param != NULL && media->inputs[i].path != NULL ? 0 : -1;
        }
    }
    return -1;
}

int stub_ctx_set_setting(gp_ctx_t *ctx, const char *name, const char *value)
{
    struct stub_media *media = stub_media(ctx);
    if (media == NULL)
        return -1;
    for (size_t i = 0; i < STUB_MAX_SETTINGS; i++) {
        if (media->settings[i].name == NULL) {
            media->settings[i].name = strdup(name);
            media->settings[i].value = strdup(value);
            return media->settings[i].name != NULL && media->settings[i].value != NULL ? 0 : -1;
        }
    }
    return -1;
}

int stub_ctx_preview_count(const gp_ctx_t *ctx)
{
    return ctx->media != NULL ? ctx->media->preview_count : 0;
}

/* The last published preview's bytes (NULL if none); name/content type/progress optional. */
const unsigned char *stub_ctx_preview(const gp_ctx_t *ctx, size_t *length, const char **name,
                                      const char **content_type, int *progress_calls_before)
{
    if (ctx->media == NULL || ctx->media->preview_count == 0)
        return NULL;
    const struct stub_media *media = ctx->media;
    if (length != NULL)
        *length = media->preview.length;
    if (name != NULL)
        *name = media->preview.name;
    if (content_type != NULL)
        *content_type = media->preview.content_type;
    if (progress_calls_before != NULL)
        *progress_calls_before = media->progress_calls_before_preview;
    return media->preview.data;
}

static unsigned char *stub_read_whole_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    unsigned char *data = NULL;
    size_t used = 0, capacity = 0;
    for (;;) {
        if (used == capacity) {
            capacity = capacity > 0 ? capacity * 2 : 65536;
            unsigned char *grown = realloc(data, capacity);
            if (grown == NULL) {
                free(data);
                fclose(file);
                return NULL;
            }
            data = grown;
        }
        size_t got = fread(data + used, 1, capacity - used, file);
        used += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(file) != 0;
    fclose(file);
    if (failed) {
        free(data);
        return NULL;
    }
    *length = used;
    return data;
}

int gp_ctx_input_file(gp_ctx_t *ctx, const char *param, char *path_out, size_t path_cap,
                      char *content_type_out, size_t ct_cap)
{
    struct stub_media *media = ctx->media;
    for (size_t i = 0; media != NULL && i < STUB_MAX_INPUTS; i++) {
        if (media->inputs[i].param == NULL || strcmp(media->inputs[i].param, param) != 0)
            continue;
        const char *dir = gp_ctx_scratch_dir(ctx);
        size_t length = 0;
        unsigned char *data = stub_read_whole_file(media->inputs[i].path, &length);
        if (dir == NULL || data == NULL) {
            free(data);
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot read input %s", param);
        }
        int written = snprintf(path_out, path_cap, "%s/input-%s", dir, param);
        FILE *copy = written > 0 && (size_t)written < path_cap ? fopen(path_out, "wb") : NULL;
        bool ok = copy != NULL && fwrite(data, 1, length, copy) == length;
        if (copy != NULL && fclose(copy) != 0)
            ok = false;
        free(data);
        if (!ok)
            return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot copy input %s", param);
        if (content_type_out != NULL && ct_cap > 0)
            (void)snprintf(content_type_out, ct_cap, "%s",
                           media->inputs[i].content_type != NULL ? media->inputs[i].content_type
                                                                 : "application/octet-stream");
        return 0;
    }
    return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "no input for param %s", param);
}

int gp_ctx_input_bytes(gp_ctx_t *ctx, const char *param, size_t max, unsigned char **out,
                       size_t *len, char *content_type, size_t ct_cap)
{
    struct stub_media *media = ctx->media;
    for (size_t i = 0; media != NULL && i < STUB_MAX_INPUTS; i++) {
        if (media->inputs[i].param == NULL || strcmp(media->inputs[i].param, param) != 0)
            continue;
        size_t length = 0;
        unsigned char *data = stub_read_whole_file(media->inputs[i].path, &length);
        if (data == NULL || length == 0 || length > max) {
            free(data);
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "stub: bad input %s", param);
        }
        *out = data;
        *len = length;
        if (content_type != NULL && ct_cap > 0)
            (void)snprintf(content_type, ct_cap, "%s",
                           media->inputs[i].content_type != NULL ? media->inputs[i].content_type
                                                                 : "application/octet-stream");
        return 0;
    }
    return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "no input for param %s", param);
}

int gp_ctx_input_url(gp_ctx_t *ctx, const char *param, char **url_out)
{
    struct stub_media *media = ctx->media;
    for (size_t i = 0; media != NULL && i < STUB_MAX_INPUTS; i++) {
        if (media->inputs[i].param != NULL && strcmp(media->inputs[i].param, param) == 0) {
            size_t length = strlen(media->inputs[i].path) + sizeof "file://";
            *url_out = malloc(length);
            if (*url_out == NULL)
                return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "stub: no memory for URL");
            (void)snprintf(*url_out, length, "file://%s", media->inputs[i].path);
            return 0;
        }
    }
    return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "no input for param %s", param);
}

int gp_ctx_publish_preview(gp_ctx_t *ctx, const char *name, const char *path,
                           const char *content_type)
{
    struct stub_media *media = stub_media(ctx);
    if (media == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "stub: no memory for preview");
    if (!output_name_is_valid(name))
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT, "bad preview name \"%s\"",
                           name != NULL ? name : "(null)");
    size_t length = 0;
    unsigned char *data = stub_read_whole_file(path, &length);
    if (data == NULL)
        return gp_ctx_fail(ctx, false, GP_TE_STORAGE_ERROR, "cannot read preview %s", path);
    free(media->preview.name);
    free(media->preview.content_type);
    free(media->preview.data);
    media->preview.name = strdup(name);
    media->preview.content_type = strdup(content_type != NULL ? content_type : "");
    media->preview.data = data;
    media->preview.length = length;
    media->preview_count++;
    media->progress_calls_before_preview = ctx->progress_calls;
    return 0;
}

/* Settings' defaults come from this provider's table, as in the real core. */
void stub_ctx_set_provider(gp_ctx_t *ctx, const gp_provider_t *provider)
{
    ctx->provider = provider;
}

/* The value a test set, else the provider's declared default, else NULL. */
static const char *stub_setting_text(const gp_ctx_t *ctx, const char *name)
{
    const struct stub_media *media = ctx->media;
    for (size_t i = 0; media != NULL && i < STUB_MAX_SETTINGS; i++)
        if (media->settings[i].name != NULL && strcmp(media->settings[i].name, name) == 0)
            return media->settings[i].value;
    for (const gp_provider_setting_t *ps = ctx->provider != NULL ? ctx->provider->settings : NULL;
         ps != NULL && ps->name != NULL; ps++)
        if (strcmp(ps->name, name) == 0)
            return ps->default_value;
    return NULL;
}

const char *gp_ctx_setting(const gp_ctx_t *ctx, const char *name)
{
    const char *text = stub_setting_text(ctx, name);
    return text != NULL ? text : "";
}

/* The stub trusts the test's values (the core checks them at start); no suffixes. */
int64_t gp_ctx_setting_int(const gp_ctx_t *ctx, const char *name)
{
    const char *text = stub_setting_text(ctx, name);
    return text != NULL ? strtoll(text, NULL, 10) : 0;
}

bool gp_ctx_setting_bool(const gp_ctx_t *ctx, const char *name)
{
    const char *text = stub_setting_text(ctx, name);
    return text != NULL && (strcmp(text, "1") == 0 || strcmp(text, "true") == 0 ||
                            strcmp(text, "yes") == 0 || strcmp(text, "on") == 0);
}

double gp_ctx_setting_num(const gp_ctx_t *ctx, const char *name)
{
    const char *text = stub_setting_text(ctx, name);
    return text != NULL ? strtod(text, NULL) : 0.0;
}

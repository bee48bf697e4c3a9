/*
 * ctx_io.c — the parts of the task context that reach outside the process: provider
 * settings, HTTP with the task's cancel flag and deadline, media inputs (asset ids, URLs,
 * data: URLs), outputs fetched from URLs, and previews.
 */
#include "core/base64.h"
#include "core/errors.h"
#include "core/link_secret.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "core/media_type.h"
#include "worker/ctx.h"
#include "runtime/webhooks.h"

#include <genpulse/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_INPUT_BYTES (512u << 20)

const char *gp_ctx_setting(const gp_ctx_t *ctx, const char *name)
{
    if (!ctx->provider)
        return "";
    return gp_settings_provider(ctx->rt->settings, ctx->provider->name, name);
}

static bool ctx_cancel_cb(void *arg)
{
    return gp_ctx_is_canceled(arg);
}

/* The provider's name comes from the registry (a fixed set), never from the request. */
static void count_provider_call(const char *provider, int rc, const gp_http_response_t *resp)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    long cls = resp->status / 100;
    const char *code = rc == GP_HTTP_OK && cls >= 1 && cls <= 5 ? classes[cls - 1] : "error";
    gp_metrics_inc(GP_M_PROVIDER_CALLS, provider, code, NULL);
    if (resp->attempts > 1)
        gp_metrics_add(GP_M_PROVIDER_RETRIES, resp->attempts - 1, provider, NULL, NULL);
    if (resp->throttled > 0)
        gp_metrics_add(GP_M_PROVIDER_THROTTLED, resp->throttled, provider, NULL, NULL);
}

int gp_ctx_http(gp_ctx_t *ctx, gp_http_request_t *req, gp_http_response_t *resp)
{
    if (!req->cancel) {
        req->cancel = ctx_cancel_cb;
        req->cancel_arg = ctx;
    }
    if (req->deadline_ms == 0 && ctx->deadline_ms > 0)
        req->deadline_ms = ctx->deadline_ms;
    if (!req->log_id)
        req->log_id = ctx->task.id;
    if (!req->limit_key && ctx->provider) {
        req->limit_key = ctx->provider->name;
        if (req->limit_per_minute == 0)
            req->limit_per_minute = (int)strtol(gp_ctx_setting(ctx, "rate-per-minute"), NULL, 10);
    }
    int rc = gp_http_do(req, resp);
    if (ctx->provider)
        count_provider_call(ctx->provider->name, rc, resp);
    return rc;
}

int gp_ctx_poll_wait(gp_ctx_t *ctx, gp_poller_t *p)
{
    if (p->polls == 0 && p->next_ms == 0) {
        p->polls = 1;
        p->next_ms = p->first_ms > 0 ? p->first_ms : 500;
        return gp_ctx_is_canceled(ctx) ? GP_HTTP_E_CANCELED : 0; /* the first check is now */
    }
    int wait = p->next_ms;
    int64_t deadline = p->deadline_ms;
    if (ctx->deadline_ms > 0 && (deadline == 0 || ctx->deadline_ms < deadline))
        deadline = ctx->deadline_ms;
    if (deadline > 0 && gp_mono_ms() + wait >= deadline)
        return GP_HTTP_E_TIMEOUT;
    if (gp_ctx_sleep_ms(ctx, wait) != 0)
        return GP_HTTP_E_CANCELED;
    int max = p->max_ms > 0 ? p->max_ms : 10000;
    p->next_ms = wait + wait / 2 > max ? max : wait + wait / 2;
    p->polls++;
    return 0;
}

/* ---- names and types ------------------------------------------------------------------ */

/* "<stem>.<ext>" with the usual extension of ct, or just "<stem>" for an unknown type. */
static void name_with_ext(char *out, size_t cap, const char *stem, const char *ct)
{
    const char *ext = gp_media_ext_of_type(ct);
    int n = snprintf(out, cap, "%s%s%s", stem, ext ? "." : "", ext ? ext : "");
    if (n < 0 || (size_t)n >= cap) /* cannot happen for our stems and extensions */
        snprintf(out, cap, "%s", stem);
}

/* A safe output name from the last segment of a URL path, or "output<ext>". */
static void name_from_url(const char *url, const char *ct, char *out, size_t cap)
{
    const char *end = url + strcspn(url, "?#");
    const char *seg = end;
    while (seg > url && seg[-1] != '/')
        seg--;
    size_t n = 0;
    for (const char *p = seg; p < end && n + 1 < cap && n < 100; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
    while (out[0] == '.')
        memmove(out, out + 1, strlen(out));
    if (!out[0] || !gp_storage_name_ok(out))
        name_with_ext(out, cap, "output", ct);
    else if (!strchr(out, '.') && gp_media_ext_of_type(ct) && strlen(out) + 6 < cap) {
        size_t len = strlen(out);
        int w = snprintf(out + len, cap - len, ".%s", gp_media_ext_of_type(ct));
        if (w < 0 || (size_t)w >= cap - len)
            out[len] = '\0';
    }
}

/* Decodes a data: URL into a malloc'd buffer; its media type into ct. NULL if malformed. */
static unsigned char *decode_data_url(const char *url, size_t *len, char *ct, size_t ct_cap)
{
    const char *comma = strchr(url, ',');
    if (strncasecmp(url, "data:", 5) != 0 || !comma)
        return NULL;
    const char *meta = url + 5;
    size_t meta_len = (size_t)(comma - meta);
    bool b64 = meta_len >= 7 && !strncasecmp(comma - 7, ";base64", 7);
    gp_media_bare_type(meta_len ? meta : "text/plain", ct, ct_cap);
    if (!ct[0] || ct[0] == ',')
        snprintf(ct, ct_cap, "text/plain");
    const char *data = comma + 1;
    if (b64)
        return gp_base64_decode(data, strlen(data), len);
    /* percent-encoded text */
    size_t n = strlen(data);
    unsigned char *out = gp_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '%' && i + 2 < n) {
            char hex[3] = {data[i + 1], data[i + 2], 0};
            out[o++] = (unsigned char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = (unsigned char)data[i];
        }
    }
    out[o] = 0;
    *len = o;
    return out;
}

/* ---- outputs from URLs ------------------------------------------------------------------ */

int gp_ctx_store_url(gp_ctx_t *ctx, const char *name, const char *url, const char *content_type,
                     const char *const *headers, json_t *extra)
{
    char ct[128] = "", auto_name[128];
    if (url && !strncasecmp(url, "data:", 5)) {
        size_t len = 0;
        unsigned char *data = decode_data_url(url, &len, ct, sizeof ct);
        if (!data) {
            json_decref(extra);
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT,
                               "the provider returned a malformed "
                               "data: URL");
        }
        if (content_type)
            gp_media_bare_type(content_type, ct, sizeof ct);
        if (!name) {
            name_with_ext(auto_name, sizeof auto_name, "output", ct);
            name = auto_name;
        }
        int rc = gp_ctx_store_bytes(ctx, name, data, len, ct, extra);
        free(data);
        return rc;
    }
    const char *dir = gp_ctx_scratch_dir(ctx);
    if (!dir) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "no scratch directory");
    }
    char *path = gp_xasprintf("%s/download-%d", dir, ctx->download_seq++);
    gp_http_request_t req = {.url = url,
                             .headers = headers,
                             .download_path = path,
                             .timeout_ms = 600000,
                             .max_attempts = 4};
    gp_http_response_t resp;
    int rc = gp_ctx_http(ctx, &req, &resp);
    int ret = 0;
    if (rc == GP_HTTP_E_CANCELED) {
        ret = GP_CTX_CANCELED;
    } else if (rc != GP_HTTP_OK) {
        ret = gp_ctx_fail(ctx, rc != GP_HTTP_E_INVALID && rc != GP_HTTP_E_TOO_LARGE,
                          GP_TE_DOWNLOAD_FAILED, "fetching the output failed: %s", resp.error);
    } else if (resp.status < 200 || resp.status >= 300) {
        ret = gp_ctx_fail(ctx, gp_http_status_retryable(resp.status), GP_TE_DOWNLOAD_FAILED,
                          "fetching the output failed: HTTP %ld", resp.status);
    } else {
        gp_media_bare_type(content_type ? content_type : resp.content_type, ct, sizeof ct);
        if (!name) {
            name_from_url(url, ct, auto_name, sizeof auto_name);
            name = auto_name;
        }
        if (!ct[0] || !strcmp(ct, "application/octet-stream") || !strcmp(ct, "binary/octet-stream"))
            snprintf(ct, sizeof ct, "%s", gp_media_type_of_name(name));
        ret = gp_ctx_store_file(ctx, name, path, ct, extra);
        extra = NULL;
    }
    json_decref(extra);
    gp_http_response_free(&resp);
    remove(path);
    free(path);
    return ret;
}

/* ---- inputs ----------------------------------------------------------------------------- */

/* Reads an uploaded asset's meta.json (written by POST /v1/assets). */
static json_t *asset_meta(gp_ctx_t *ctx, const char *asset_id)
{
    const char *dir = gp_ctx_scratch_dir(ctx);
    if (!dir)
        return NULL;
    char *path = gp_xasprintf("%s/asset-%s.json", dir, asset_id);
    json_t *meta = NULL;
    if (gp_storage_get_file(ctx->rt->storage, asset_id, "meta.json", path) == 0)
        meta = json_load_file(path, 0, NULL);
    remove(path);
    free(path);
    if (meta && !json_is_string(json_object_get(meta, "name"))) {
        json_decref(meta);
        meta = NULL;
    }
    /* A task reads only its own user's uploads: another user's asset does not exist. */
    const char *owner = json_string_value(json_object_get(meta, "owner"));
    const char *task_owner = ctx->task.owner[0] ? ctx->task.owner : GP_LOCAL_USER_ID;
    if (meta && strcmp(owner ? owner : GP_LOCAL_USER_ID, task_owner) != 0) {
        json_decref(meta);
        meta = NULL;
    }
    return meta;
}

int gp_ctx_input_file(gp_ctx_t *ctx, const char *param, char *path_out, size_t path_cap,
                      char *content_type_out, size_t ct_cap)
{
    const char *ref = gp_ctx_param_str(ctx, param, NULL);
    if (!ref || !*ref)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "params.%s is missing", param);
    const char *dir = gp_ctx_scratch_dir(ctx);
    if (!dir)
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "no scratch directory");
    char ct[128] = "";
    int n = snprintf(path_out, path_cap, "%s/input-%s", dir, param);
    if (n < 0 || (size_t)n >= path_cap)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "input path too long");
    if (gp_is_uuid(ref)) {
        json_t *meta = asset_meta(ctx, ref);
        if (!meta)
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "params.%s: no asset %s", param,
                               ref);
        const char *name = json_string_value(json_object_get(meta, "name"));
        gp_media_bare_type(json_string_value(json_object_get(meta, "content_type")), ct, sizeof ct);
        int rc = gp_storage_get_file(ctx->rt->storage, ref, name, path_out);
        json_decref(meta);
        if (rc != 0)
            return gp_ctx_fail(ctx, rc != -GP_E_NOT_FOUND, GP_TE_INVALID_INPUT,
                               "params.%s: asset %s could not be read: %s", param, ref,
                               gp_err_message(rc));
    } else if (!strncasecmp(ref, "data:", 5)) {
        size_t len = 0;
        unsigned char *data = decode_data_url(ref, &len, ct, sizeof ct);
        if (!data)
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "params.%s: malformed data: URL",
                               param);
        int rc = gp_write_file_atomic(path_out, data, len);
        free(data);
        if (rc != 0)
            return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot write the input");
    } else {
        gp_http_request_t req = {.url = ref,
                                 .download_path = path_out,
                                 .max_response_bytes = MAX_INPUT_BYTES,
                                 .timeout_ms = 300000,
                                 .public_only = !ctx->rt->settings->allow_private_inputs};
        gp_http_response_t resp;
        int rc = gp_ctx_http(ctx, &req, &resp);
        if (rc == GP_HTTP_E_CANCELED) {
            gp_http_response_free(&resp);
            return GP_CTX_CANCELED;
        }
        if (rc != GP_HTTP_OK || resp.status < 200 || resp.status >= 300) {
            bool retry = rc == GP_HTTP_E_CONNECT || rc == GP_HTTP_E_TIMEOUT ||
                         (rc == GP_HTTP_OK && gp_http_status_retryable(resp.status));
            int r =
                gp_ctx_fail(ctx, retry, GP_TE_INVALID_INPUT, "params.%s: fetching %s failed: %s",
                            param, ref, rc != GP_HTTP_OK ? resp.error : "HTTP error status");
            gp_http_response_free(&resp);
            return r;
        }
        gp_media_bare_type(resp.content_type, ct, sizeof ct);
        gp_http_response_free(&resp);
    }
    if (content_type_out && ct_cap)
        snprintf(content_type_out, ct_cap, "%s", ct[0] ? ct : "application/octet-stream");
    return 0;
}

/* Reads at most max + 1 bytes: one more than allowed tells "too large" from "exactly max". */
static int read_capped(const char *path, size_t max, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    bool err = false;
    while (n <= max) {
        if (n == cap) {
            size_t want = cap == 0 ? 65536 : cap * 2;
            cap = want > max + 1 ? max + 1 : want;
            unsigned char *p = realloc(buf, cap + 1);
            if (!p) {
                err = true;
                break;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    err = err || ferror(f) != 0;
    (void)fclose(f);
    if (err) {
        free(buf);
        return -1;
    }
    if (buf)
        buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int gp_ctx_input_bytes(gp_ctx_t *ctx, const char *param, size_t max, unsigned char **out,
                       size_t *len, char *content_type, size_t ct_cap)
{
    char path[4096], ct[128];
    int rc = gp_ctx_input_file(ctx, param, path, sizeof path, ct, sizeof ct);
    if (rc != 0)
        return rc;
    unsigned char *buf = NULL;
    size_t n = 0;
    if (read_capped(path, max, &buf, &n) != 0)
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot read the input %s", param);
    if (n == 0 || n > max) {
        free(buf);
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                           n == 0 ? "the input %s is empty" : "the input %s is larger than %zu MB",
                           param, max >> 20);
    }
    *out = buf;
    *len = n;
    if (content_type && ct_cap)
        snprintf(content_type, ct_cap, "%s", ct);
    return 0;
}

int gp_ctx_input_url(gp_ctx_t *ctx, const char *param, char **url_out)
{
    const char *ref = gp_ctx_param_str(ctx, param, NULL);
    *url_out = NULL;
    if (!ref || !*ref)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "params.%s is missing", param);
    if (!gp_is_uuid(ref)) {
        *url_out = gp_xstrdup(ref);
        return 0;
    }
    json_t *meta = asset_meta(ctx, ref);
    if (!meta)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT, "params.%s: no asset %s", param, ref);
    const char *name = json_string_value(json_object_get(meta, "name"));
    gp_storage_t *st = ctx->rt->storage;
    int rc = 0;
    if (st->vt->presign)
        rc = st->vt->presign(st, ref, name, 0, url_out);
    else
        *url_out = gp_files_link(ctx->rt->link_secret, ctx->rt->public_url, ref, name,
                                 ctx->rt->settings->link_ttl_s);
    json_decref(meta);
    if (rc != 0)
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot link asset %s: %s", ref,
                           gp_err_message(rc));
    return 0;
}

/* ---- previews --------------------------------------------------------------------------- */

int gp_ctx_publish_preview(gp_ctx_t *ctx, const char *name, const char *path,
                           const char *content_type)
{
    if (!gp_storage_name_ok(name))
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_OUTPUT, "bad preview name \"%s\"", name);
    char *url = NULL;
    int rc = gp_storage_put_file(ctx->rt->storage, ctx->task.id, name, path, content_type, &url);
    if (rc != 0)
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "storing the preview failed: %s",
                           gp_err_message(rc));
    free(url);
    gp_ctx_announce_preview(ctx, name);
    return 0;
}

void gp_ctx_announce_preview(gp_ctx_t *ctx, const char *name)
{
    /* The event carries the stable link (served or redirected by the gateway) because it must
     * fit the hot state's step field; a presigned URL would not. */
    char step[sizeof ctx->last_step];
    char *link = gp_files_link(ctx->rt->link_secret, ctx->rt->public_url, ctx->task.id, name,
                               ctx->rt->settings->link_ttl_s);
    int n = snprintf(step, sizeof step, GP_STEP_PREVIEW "%s", link);
    free(link);
    if (n < 0 || (size_t)n >= sizeof step) {
        gp_ctx_log(ctx, GP_LOG_WARN, "preview link too long for an event; not announced");
        return;
    }
    snprintf(ctx->last_step, sizeof ctx->last_step, "%s", step);
    gp_events_publish_progress(ctx->rt->events, &ctx->task,
                               ctx->last_percent < 0 ? 0 : ctx->last_percent, step);
    gp_webhooks_progress(ctx->rt, &ctx->task, GP_WH_TYPE_OUTPUT, ctx->webhook_last_ms);
}

/*
 * volcengine.c — the "volcengine" provider: ByteDance's visual API (Jimeng image and video
 * models) for text-to-image, image-to-image and text-to-video.
 *
 * Every capability goes through the same asynchronous pair of actions, told apart only by
 * req_key: CVSync2AsyncSubmitTask returns a task_id, CVSync2AsyncGetResult is polled until
 * data.status is "done" (or "not_found" / "expired"). Both are POSTs to the service root
 * with Action and Version in the query, signed with VolcEngine's V4 variant (HMAC-SHA256,
 * X-Date, X-Content-Sha256, scope ending in "request"; see src/infra/sign/sigv4.h).
 *
 * Submitting is not idempotent and the API has no client token, so a submit is retried only
 * when it provably never arrived. GetResult only reads, so it is retried freely.
 * There is no cancel action: a canceled task stops polling and the remote job is dropped.
 */
#include "genpulse/handler.h"
#include "genpulse/http.h"

#include "core/base64.h"
#include "core/crypto.h"
#include "core/media_type.h"
#include "infra/sign/sigv4.h"
#include "providers/api_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VOLC_DEFAULT_BASE_URL "https://visual.volcengineapi.com"
#define VOLC_API_VERSION "2022-08-31"
#define VOLC_OK 10000
#define VOLC_MAX_URL 2048
#define VOLC_MAX_TASK_ID 64
#define VOLC_MAX_OUTPUTS 8
#define VOLC_MAX_POLL_FAILURES 5
#define VOLC_MAX_IMAGE_BYTES (10u << 20)
#define VOLC_MAX_POLL_MS 20000

typedef enum volc_kind {
    VOLC_T2I,
    VOLC_I2I,
    VOLC_T2V
} volc_kind_t;

typedef struct volc {
    gp_ctx_t *ctx;
    volc_kind_t kind;
    char scheme_authority[512]; /* "https://visual.volcengineapi.com" */
    char host[256];             /* the signed Host value: default ports dropped */
    char path[512];             /* base path + "/", as sent and signed */
    gp_sigv4_creds_t creds;
    const char *req_key;
    char task_id[VOLC_MAX_TASK_ID + 1];
    int poll_ms;
} volc_t;

/* ---------------------------------------------------------------------------------------
 * Base URL
 * ------------------------------------------------------------------------------------- */

/* Splits base-url into what is sent and what is signed. Returns false when malformed. */
static bool parse_base(volc_t *v, const char *base)
{
    size_t scheme_len;
    const char *default_port;
    if (strncmp(base, "https://", 8) == 0) {
        scheme_len = 8;
        default_port = ":443";
    } else if (strncmp(base, "http://", 7) == 0) {
        scheme_len = 7;
        default_port = ":80";
    } else {
        return false;
    }
    const char *auth = base + scheme_len;
    size_t auth_len = strcspn(auth, "/?#");
    if (auth_len == 0 || auth_len >= sizeof v->host || auth[auth_len] == '?' ||
        auth[auth_len] == '#' || memchr(auth, '@', auth_len) != NULL)
        return false;
    const char *rest = auth + auth_len;
    size_t rest_len = strlen(rest);
    while (rest_len > 0 && rest[rest_len - 1] == '/')
        rest_len--;
    if (strpbrk(rest, "?#") != NULL || rest_len + 2 > sizeof v->path ||
        scheme_len + auth_len >= sizeof v->scheme_authority)
        return false;
    memcpy(v->scheme_authority, base, scheme_len + auth_len);
    v->scheme_authority[scheme_len + auth_len] = '\0';
    memcpy(v->host, auth, auth_len);
    v->host[auth_len] = '\0';
    /* The official SDK signs the host without the scheme's default port. */
    size_t dp = strlen(default_port);
    if (auth_len > dp && strcmp(v->host + auth_len - dp, default_port) == 0)
        v->host[auth_len - dp] = '\0';
    memcpy(v->path, rest, rest_len);
    v->path[rest_len] = '/';
    v->path[rest_len + 1] = '\0';
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Signed calls
 * ------------------------------------------------------------------------------------- */

typedef struct volc_sign {
    const volc_t *v;
    const char *query;
} volc_sign_t;

/* Signs the request (V4: Content-Type, Host, X-Date and X-Content-Sha256 are signed). */
static int volc_headers(void *arg, const gp_api_send_t *send, gp_api_headers_t *h, const char **why)
{
    const volc_sign_t *s = arg;
    time_t now = time(NULL);
    char stamp[17], hash[GP_SHA256_HEX_LEN];
    gp_sigv4_stamp(now, stamp);
    gp_sha256_hex(send->body, send->body_len, hash);
    *why = "could not sign the request";
    if (gp_api_header_add(h, "Content-Type: application/json") != 0 ||
        gp_api_header_add(h, "Host: %s", s->v->host) != 0 ||
        gp_api_header_add(h, "X-Date: %s", stamp) != 0 ||
        gp_api_header_add(h, "X-Content-Sha256: %s", hash) != 0)
        return -1;
    gp_sigv4_request_t sreq = {
        .method = send->method,
        .path = s->v->path,
        .query = s->query,
        .headers = h->line,
        .payload_sha256 = hash,
        .when = now,
    };
    gp_sigv4_result_t sig = {0};
    int rc = gp_sigv4_sign_headers(&gp_sigv4_volc, &s->v->creds, &sreq, &sig) == 0 &&
                     sig.authorization != NULL
                 ? gp_api_header_add(h, "Authorization: %s", sig.authorization)
                 : -1;
    gp_sigv4_result_free(&sig);
    return rc;
}

/*
 * Throttling and server trouble in the visual API's code table: 50429 (QPS limit), 50430
 * (concurrency limit), 50500 / 50501 (internal errors). Everything else that is not 10000 —
 * parameter errors, content-audit rejections (504xx/505xx) — does not change on a retry.
 */
static const gp_api_code_t volc_codes[] = {
    {50429, 50430, GP_API_THROTTLE},
    {50500, 50501, GP_API_SERVER},
    {0, 0, GP_API_NONE},
};
/* Signature and account errors come from the API gateway in its own envelope. */
static const char *const volc_message[] = {"ResponseMetadata.Error.Message", "message", NULL};
static const char *const volc_text_code[] = {"ResponseMetadata.Error.Code", NULL};

static const gp_api_profile_t volc_api = {
    .name = "VolcEngine",
    .headers = volc_headers,
    .max_response_bytes = 64u << 20, /* binary_data_base64 images */
    .code_field = "code",
    .ok_code = VOLC_OK,
    .data_field = "data",
    .envelope_required = true,
    .message_paths = volc_message,
    .text_code_paths = volc_text_code,
    .codes = volc_codes,
    .auth_403 = true,
    .throttle_429 = true,
};

/* One signed POST of `body` to ?Action=action. Fills reply (free it); returns reply->rc. */
static int volc_call(volc_t *v, const char *action, const json_t *body, bool idempotent,
                     gp_api_reply_t *reply)
{
    char query[128], url[VOLC_MAX_URL];
    (void)snprintf(query, sizeof query, "Action=%s&Version=%s", action, VOLC_API_VERSION);
    int w = snprintf(url, sizeof url, "%s%s?%s", v->scheme_authority, v->path, query);
    if (w < 0 || (size_t)w >= sizeof url) {
        *reply = (gp_api_reply_t){.rc = GP_HTTP_E_INVALID};
        gp_api_copy_line(reply->message, sizeof reply->message, "could not build the request");
        return reply->rc;
    }
    volc_sign_t sign = {v, query};
    gp_http_request_t req = {.method = "POST", .url = url, .retry_unsafe = idempotent};
    return gp_api_call(v->ctx, &volc_api, &sign, &req, body, reply);
}

/* ---------------------------------------------------------------------------------------
 * Submit
 * ------------------------------------------------------------------------------------- */

static int image_input(volc_t *v, json_t *body)
{
    gp_ctx_t *ctx = v->ctx;
    const char *how = gp_ctx_param_str(ctx, "send_image_as", "url");
    if (strcmp(how, "base64") == 0) {
        unsigned char *buf = NULL;
        size_t n = 0;
        int rc = gp_ctx_input_bytes(ctx, "image", VOLC_MAX_IMAGE_BYTES, &buf, &n, NULL, 0);
        if (rc != 0)
            return rc;
        char *b64 = gp_base64_encode(buf, n);
        free(buf);
        json_object_set_new(body, "binary_data_base64", json_pack("[s]", b64));
        free(b64);
        return 0;
    }
    char *url = NULL;
    int rc = gp_ctx_input_url(ctx, "image", &url);
    if (rc != 0)
        return rc;
    if (strncmp(url, "data:", 5) == 0) {
        /* image_urls must be fetchable; inline data goes in binary_data_base64. */
        const char *comma = strchr(url, ',');
        if (comma == NULL || comma - url < 12 || strncmp(comma - 7, ";base64", 7) != 0) {
            free(url);
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                               "a data: URL image must be base64-encoded");
        }
        json_object_set_new(body, "binary_data_base64", json_pack("[s]", comma + 1));
    } else {
        json_object_set_new(body, "image_urls", json_pack("[s]", url));
    }
    free(url);
    return 0;
}

static int build_submit_body(volc_t *v, json_t **out)
{
    gp_ctx_t *ctx = v->ctx;
    json_t *body = json_pack("{s:s}", "req_key", v->req_key);
    if (body == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the request");
    const char *prompt = gp_ctx_param_str(ctx, "prompt", "");
    if (prompt[0] != '\0')
        json_object_set_new(body, "prompt", json_string(prompt));
    /* Jimeng's seed -1 means random; the task type's 0 means "no preference". */
    int64_t seed = gp_ctx_param_int(ctx, "seed", 0);
    json_object_set_new(body, "seed", json_integer(seed > 0 ? (json_int_t)seed : -1));
    int rc = 0;
    switch (v->kind) {
    case VOLC_T2I:
        json_object_set_new(body, "width", json_integer(gp_ctx_param_int(ctx, "width", 1328)));
        json_object_set_new(body, "height", json_integer(gp_ctx_param_int(ctx, "height", 1328)));
        if (prompt[0] == '\0')
            rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "prompt is required");
        break;
    case VOLC_I2I: rc = image_input(v, body); break;
    case VOLC_T2V:
        /* Jimeng video renders at 24 fps: 121 frames is 5 s, 241 is 10 s. */
        json_object_set_new(body, "frames",
                            json_integer(gp_ctx_param_int(ctx, "duration", 5) <= 5 ? 121 : 241));
        json_object_set_new(body, "aspect_ratio",
                            json_string(gp_ctx_param_str(ctx, "aspect_ratio", "16:9")));
        if (prompt[0] == '\0')
            rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "prompt is required");
        break;
    }
    if (rc == 0 && v->kind != VOLC_T2V && json_object_get(gp_ctx_params(ctx), "scale") != NULL)
        json_object_set_new(body, "scale", json_real(gp_ctx_param_num(ctx, "scale", 0.5)));
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return 0;
}

static int submit(volc_t *v)
{
    json_t *body = NULL;
    int rc = build_submit_body(v, &body);
    if (rc != 0)
        return rc;
    gp_api_reply_t r;
    (void)volc_call(v, "CVSync2AsyncSubmitTask", body, false, &r);
    json_decref(body);
    if (!gp_api_ok(&volc_api, &r)) {
        rc = gp_api_fail(v->ctx, &volc_api, &r, "submit");
        gp_api_reply_free(&r);
        return rc;
    }
    const char *id = json_string_value(json_object_get(r.data, "task_id"));
    if (!gp_api_id_ok(id, VOLC_MAX_TASK_ID))
        rc = gp_ctx_fail(v->ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                         "VolcEngine submit reply has no usable data.task_id");
    else
        (void)snprintf(v->task_id, sizeof v->task_id, "%s", id);
    gp_api_reply_free(&r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Outputs
 * ------------------------------------------------------------------------------------- */

/* Jimeng makes PNG, JPEG and WebP images only: anything else in a reply is broken. */
static const char *jimeng_image_type(const char *type)
{
    static const char *const known[] = {"image/png", "image/jpeg", "image/webp", NULL};
    for (const char *const *k = known; type != NULL && *k != NULL; k++)
        if (strcmp(type, *k) == 0)
            return type;
    return NULL;
}

/* The extension a result URL's path ends in, for a readable asset name; png otherwise. */
static const char *ext_of_url(const char *url)
{
    char path[VOLC_MAX_URL];
    (void)snprintf(path, sizeof path, "%.*s", (int)strcspn(url, "?#"), url);
    const char *type = jimeng_image_type(gp_media_type_of_name(path));
    return type != NULL ? gp_media_ext_of_type(type) : "png";
}

static void image_name(char *out, size_t cap, size_t i, size_t count, const char *ext)
{
    if (count == 1)
        (void)snprintf(out, cap, "image.%s", ext);
    else
        (void)snprintf(out, cap, "image-%zu.%s", i + 1, ext);
}

static int store_outputs(volc_t *v, const json_t *data)
{
    gp_ctx_t *ctx = v->ctx;
    json_t *b64s = json_object_get(data, "binary_data_base64");
    json_t *urls = json_object_get(data, "image_urls");
    const char *video = json_string_value(json_object_get(data, "video_url"));
    size_t nb = json_array_size(b64s), nu = json_array_size(urls);
    int rc = 0;

    if (video != NULL && video[0] != '\0') {
        if (!gp_api_is_http_url(video))
            return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                               "VolcEngine data.video_url is not an http(s) URL");
        rc = gp_ctx_progress(ctx, 92, "downloading video");
        if (rc == 0)
            rc = gp_ctx_store_url(ctx, "video.mp4", video, "video/mp4", NULL, NULL);
    } else if (nb > 0) {
        /* Inline bytes win when both are given: no second download. */
        if (nb > VOLC_MAX_OUTPUTS)
            return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_BAD_RESPONSE,
                               "VolcEngine returned %zu images, more than %d", nb,
                               VOLC_MAX_OUTPUTS);
        for (size_t i = 0; i < nb; i++)
            if (!json_is_string(json_array_get(b64s, i)))
                return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                                   "VolcEngine binary_data_base64[%zu] is not a string", i);
        for (size_t i = 0; i < nb && rc == 0; i++) {
            const char *s = json_string_value(json_array_get(b64s, i));
            size_t len = 0;
            unsigned char *bytes = gp_base64_decode(s, strlen(s), &len);
            const char *type = bytes != NULL ? jimeng_image_type(gp_media_sniff(bytes, len)) : NULL;
            if (type == NULL) {
                free(bytes);
                return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                                   "VolcEngine binary_data_base64[%zu] is not a base64 PNG, "
                                   "JPEG or WebP image",
                                   i);
            }
            char name[32];
            image_name(name, sizeof name, i, nb, gp_media_ext_of_type(type));
            rc = gp_ctx_store_bytes(ctx, name, bytes, len, type, NULL);
            free(bytes);
        }
    } else if (nu > 0) {
        if (nu > VOLC_MAX_OUTPUTS)
            return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_BAD_RESPONSE,
                               "VolcEngine returned %zu images, more than %d", nu,
                               VOLC_MAX_OUTPUTS);
        for (size_t i = 0; i < nu; i++)
            if (!gp_api_is_http_url(json_string_value(json_array_get(urls, i))))
                return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                                   "VolcEngine image_urls[%zu] is not an http(s) URL", i);
        for (size_t i = 0; i < nu && rc == 0; i++) {
            const char *url = json_string_value(json_array_get(urls, i));
            char name[32];
            image_name(name, sizeof name, i, nu, ext_of_url(url));
            rc = gp_ctx_progress(ctx, 90 + (int)(8 * i / nu), "downloading image");
            if (rc == 0)
                rc = gp_ctx_store_url(ctx, name, url, NULL, NULL, NULL);
        }
    } else {
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "VolcEngine reports the task done but returned no image or video");
    }
    if (rc != 0)
        return rc;
    json_t *result = json_pack("{s:s, s:s}", "provider_task_id", v->task_id, "req_key", v->req_key);
    if (result == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the result");
    gp_ctx_set_result(ctx, result);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Polling
 * ------------------------------------------------------------------------------------- */

static int poll_result(volc_t *v)
{
    gp_ctx_t *ctx = v->ctx;
    const char *req_json = gp_ctx_param_bool(ctx, "return_url", true) ? "{\"return_url\":true}"
                                                                      : "{\"return_url\":false}";
    json_t *body = json_pack("{s:s, s:s, s:s}", "req_key", v->req_key, "task_id", v->task_id,
                             "req_json", req_json);
    if (body == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the request");
    int max_ms = v->poll_ms * 8;
    if (max_ms > VOLC_MAX_POLL_MS)
        max_ms = VOLC_MAX_POLL_MS > v->poll_ms ? VOLC_MAX_POLL_MS : v->poll_ms;
    gp_poller_t poller = {.first_ms = v->poll_ms, .max_ms = max_ms};
    int failures = 0, rc = 0;
    for (;;) {
        rc = gp_api_poll_wait(ctx, &poller, "VolcEngine", v->task_id);
        if (rc != 0)
            break;
        gp_api_reply_t r;
        (void)volc_call(v, "CVSync2AsyncGetResult", body, true, &r);
        if (!gp_api_ok(&volc_api, &r)) {
            if (gp_api_retryable(&volc_api, &r) && ++failures < VOLC_MAX_POLL_FAILURES) {
                gp_ctx_log(ctx, GP_LOG_WARN, "volcengine: result check %d failed (HTTP %ld): %s",
                           failures, r.status, r.message);
                gp_api_reply_free(&r);
                continue;
            }
            /* A non-retryable code from GetResult is the generation's own failure (an audit
             * rejection, a bad input image), not a problem with the call. */
            rc = r.has_code && r.code != VOLC_OK
                     ? gp_api_fail_job(ctx, &volc_api, &r, "result check", v->task_id)
                     : gp_api_fail(ctx, &volc_api, &r, "result check");
            gp_api_reply_free(&r);
            break;
        }
        failures = 0;
        const char *status = json_string_value(json_object_get(r.data, "status"));
        bool finished = true;
        if (status == NULL)
            rc = gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                             "VolcEngine result reply has no data.status");
        else if (strcmp(status, "done") == 0)
            rc = store_outputs(v, r.data);
        else if (strcmp(status, "not_found") == 0)
            rc = gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_FOUND,
                             "VolcEngine does not know task %s (not_found)", v->task_id);
        else if (strcmp(status, "expired") == 0)
            rc =
                gp_ctx_fail(ctx, false, GP_TE_PROVIDER_FAILED,
                            "VolcEngine task %s expired before its result was fetched", v->task_id);
        else {
            finished = false;
            if (strcmp(status, "in_queue") == 0) {
                rc = gp_ctx_progress(ctx, 10, "queued at VolcEngine");
            } else {
                int percent = 15 + poller.polls * 4;
                rc = gp_ctx_progress(ctx, percent > 85 ? 85 : percent, "generating");
            }
        }
        gp_api_reply_free(&r);
        if (finished || rc != 0)
            break;
    }
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

static int volc_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);
    volc_t v = {.ctx = ctx};
    v.creds.access_key = gp_ctx_setting(ctx, "access-key");
    v.creds.secret_key = gp_ctx_setting(ctx, "secret-key");
    if (v.creds.access_key[0] == '\0' || v.creds.secret_key[0] == '\0')
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "the volcengine provider needs --volcengine-access-key and "
                           "--volcengine-secret-key (or GENPULSE_VOLCENGINE_ACCESS_KEY / "
                           "GENPULSE_VOLCENGINE_SECRET_KEY)");
    v.creds.region = gp_ctx_setting(ctx, "region");
    if (v.creds.region[0] == '\0')
        v.creds.region = "cn-north-1";
    v.creds.service = gp_ctx_setting(ctx, "service");
    if (v.creds.service[0] == '\0')
        v.creds.service = "cv";
    const char *base = gp_ctx_setting(ctx, "base-url");
    if (!parse_base(&v, base[0] != '\0' ? base : VOLC_DEFAULT_BASE_URL))
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "volcengine base-url must be an http(s) URL without query or "
                           "user info");
    v.poll_ms = (int)gp_ctx_setting_int(ctx, "poll-interval-ms"); /* 10..600000, checked at start */

    const char *type = gp_ctx_task_type(ctx);
    v.kind = !strcmp(type, "image-to-image")  ? VOLC_I2I
             : !strcmp(type, "text-to-video") ? VOLC_T2V
                                              : VOLC_T2I;
    static const char *const default_keys[] = {[VOLC_T2I] = "jimeng_t2i_v31",
                                               [VOLC_I2I] = "jimeng_i2i_v30",
                                               [VOLC_T2V] = "jimeng_t2v_v30"};
    v.req_key = gp_ctx_param_str(ctx, "req_key", NULL);
    if (v.req_key == NULL || v.req_key[0] == '\0')
        v.req_key = default_keys[v.kind];

    int rc = gp_ctx_progress(ctx, 2, "submitting");
    if (rc == 0)
        rc = submit(&v);
    if (rc != 0)
        return rc;
    json_t *id = json_pack("{s:s}", "provider_task_id", v.task_id);
    if (id != NULL)
        gp_ctx_set_result(ctx, id);
    rc = gp_ctx_progress(ctx, 5, "submitted");
    if (rc == 0)
        rc = poll_result(&v);
    if (rc != 0)
        return rc;
    return gp_ctx_progress(ctx, 100, "done");
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const char *const image_transfers[] = {"url", "base64", NULL};

static const gp_param_spec_t volc_params[] = {
    GP_P_STRING("req_key", false, 1, 64, NULL,
                "The VolcEngine capability; absent: jimeng_t2i_v31 (text-to-image), "
                "jimeng_i2i_v30 (image-to-image) or jimeng_t2v_v30 (text-to-video)."),
    GP_P_NUMBER("scale", false, 0, 1, NULL,
                "Images: how strongly the prompt steers the result (Jimeng's scale); absent: "
                "the model's default."),
    GP_P_BOOL("return_url", "true",
              "Images: ask for result URLs (downloaded by GenPulse) instead of base64 in the "
              "reply."),
    GP_P_ENUM("send_image_as", image_transfers, "\"url\"",
              "image-to-image: pass the input as a URL VolcEngine downloads (must be reachable "
              "from it) or inline as base64 (at most 10 MB)."),
    GP_P_END,
};

static const gp_provider_setting_t volc_settings[] = {
    GP_S_SECRET("access-key", "VolcEngine access key id (AK)."),
    GP_S_SECRET("secret-key", "VolcEngine secret access key (SK): signs every request."),
    GP_S_URL("base-url", VOLC_DEFAULT_BASE_URL, "Visual API endpoint."),
    GP_S_STRING("region", "cn-north-1", "Region in the signing scope."),
    GP_S_STRING("service", "cv", "Service in the signing scope."),
    GP_S_MS("poll-interval-ms", "2000", 10, 600000,
            "First wait between two result checks; later waits grow up to 8x (at most 20 s)."),
    GP_S_INT("concurrency", "0", 0, 1000000,
             "VolcEngine tasks running at once across all workers (0: any)."),
    GP_S_INT("rate-per-minute", "0", 0, 1000000,
             "Requests per minute to VolcEngine across all workers (0: any)."),
    GP_S_END,
};

static const char *const volc_task_types[] = {"text-to-image", "image-to-image", "text-to-video",
                                              NULL};

const gp_provider_t gp_provider_volcengine = {
    .name = "volcengine",
    .description = "ByteDance VolcEngine visual API (Jimeng image and video models, chosen by "
                   "req_key) for text-to-image, image-to-image and text-to-video. Requests are "
                   "signed with the access/secret key; results are copied into GenPulse "
                   "storage.",
    .task_types = volc_task_types,
    .params = volc_params,
    .run = volc_run,
    .settings = volc_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 10, NULL, NULL},
};

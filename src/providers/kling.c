/*
 * kling.c — the "kling" provider for text-to-video and image-to-video on the Kling AI API.
 *
 * Every request carries a fresh HS256 JWT made from the access and secret keys (Kling has no
 * static API token). A task is created with POST /v1/videos/{text2video|image2video}, then
 * polled with GET .../{task_id} until task_status is "succeed" or "failed"; the videos are
 * copied into GenPulse storage because Kling purges its own links after 30 days.
 *
 * Idempotency: the create carries external_task_id = our task id, which Kling keeps unique
 * per account. When an attempt after the first one starts, the task list is searched for
 * that id first, so a retry resumes the video already paid for instead of making another.
 *
 * Cancel: Kling has no cancel endpoint. A canceled task stops polling at once; the remote
 * generation runs to its end on Kling's side (and is billed) and its result is dropped.
 */
#include "genpulse/handler.h"
#include "genpulse/http.h"

#include "core/base64.h"
#include "core/crypto.h"
#include "providers/api_call.h"
#include "providers/kling.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KLING_DEFAULT_BASE_URL "https://api.klingai.com"
#define KLING_JWT_TTL_S 1800
#define KLING_JWT_SKEW_S 5 /* nbf in the past: the two clocks never agree exactly */
#define KLING_MAX_URL 2048
#define KLING_MAX_TOKEN 2048
#define KLING_MAX_MESSAGE 600
#define KLING_MAX_TASK_ID 64
#define KLING_MAX_VIDEOS 4
#define KLING_MAX_IMAGE_BYTES (10u << 20) /* Kling's limit for a base64 image */
#define KLING_MAX_POLL_FAILURES 5         /* consecutive failed status checks tolerated */
#define KLING_LIST_PAGE_SIZE 100
#define KLING_MAX_POLL_MS 30000

/* ---------------------------------------------------------------------------------------
 * JWT
 * ------------------------------------------------------------------------------------- */

static size_t b64url_cap(size_t n)
{
    return 4 * ((n + 2) / 3) + 1;
}

long gp_kling_jwt(const char *access_key, const char *secret_key, int64_t now, char *out,
                  size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    json_t *claims =
        json_pack("{s:s, s:I, s:I}", "iss", access_key, "exp", (json_int_t)(now + KLING_JWT_TTL_S),
                  "nbf", (json_int_t)(now - KLING_JWT_SKEW_S));
    char *claims_json =
        claims != NULL ? json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(claims);
    if (claims_json == NULL)
        return -1;
    size_t header_len = sizeof header - 1, claims_len = strlen(claims_json);
    size_t need =
        b64url_cap(header_len) + 1 + b64url_cap(claims_len) + 1 + b64url_cap(GP_SHA256_LEN);
    if (cap < need) {
        free(claims_json);
        return -1;
    }
    char *p = out;
    p += gp_base64url(header, header_len, p);
    *p++ = '.';
    p += gp_base64url(claims_json, claims_len, p);
    free(claims_json);
    uint8_t mac[GP_SHA256_LEN];
    gp_hmac_sha256(secret_key, strlen(secret_key), out, (size_t)(p - out), mac);
    *p++ = '.';
    p += gp_base64url(mac, sizeof mac, p);
    *p = '\0';
    return (long)(p - out);
}

/* ---------------------------------------------------------------------------------------
 * Calls and replies
 * ------------------------------------------------------------------------------------- */

typedef struct kling {
    gp_ctx_t *ctx;
    char base[KLING_MAX_URL / 2];
    const char *access_key, *secret_key;
    const char *kind; /* "text2video" or "image2video": path segment of every call */
    char task_id[KLING_MAX_TASK_ID + 1];
    int poll_ms;
} kling_t;

/* Every request carries a fresh token. */
static int kling_headers(void *arg, const gp_api_send_t *send, gp_api_headers_t *h,
                         const char **why)
{
    (void)send;
    const kling_t *k = arg;
    char token[KLING_MAX_TOKEN];
    long n = gp_kling_jwt(k->access_key, k->secret_key, (int64_t)time(NULL), token, sizeof token);
    int rc = n >= 0 ? gp_api_header_add(h, "Authorization: Bearer %s", token) : -1;
    explicit_bzero(token, sizeof token);
    if (rc != 0)
        *why = "access-key too long for a token";
    return rc;
}

/* Kling's business codes (its error-code table): 1000-1004 authentication, 1302/1303 rate
 * and concurrency limits, 1203 unknown task, 5000-5002 server trouble. Every other code —
 * account problems (1100-1102: arrears, no resource pack) come with HTTP 429 too — does not
 * clear up by waiting, whatever the HTTP status says. */
static const gp_api_code_t kling_codes[] = {
    {1000, 1004, GP_API_AUTH},
    {1302, 1303, GP_API_THROTTLE},
    {5000, 5002, GP_API_SERVER},
    {1203, 1203, GP_API_NOT_FOUND},
    {LLONG_MIN, LLONG_MAX, GP_API_PERMANENT},
    {0, 0, GP_API_NONE},
};
static const char *const kling_message[] = {"message", NULL};

static const gp_api_profile_t kling_api = {
    .name = "Kling",
    .headers = kling_headers,
    .max_response_bytes = 8u << 20,
    .code_field = "code",
    .ok_code = 0,
    .data_field = "data",
    .envelope_required = true,
    .message_paths = kling_message,
    .codes = kling_codes,
    .not_found_404 = true,
};

/* One authenticated call; path starts with "/v1/". Fills reply (free it); returns its rc. */
static int kling_call(kling_t *k, const char *method, const char *path, const json_t *body,
                      gp_api_reply_t *reply)
{
    char url[KLING_MAX_URL];
    int w = snprintf(url, sizeof url, "%s%s", k->base, path);
    if (w < 0 || (size_t)w >= sizeof url) {
        *reply = (gp_api_reply_t){.rc = GP_HTTP_E_INVALID};
        gp_api_copy_line(reply->message, sizeof reply->message, "URL too long");
        return reply->rc;
    }
    gp_http_request_t req = {.method = method, .url = url};
    return gp_api_call(k->ctx, &kling_api, k, &req, body, reply);
}

/* ---------------------------------------------------------------------------------------
 * Create, or find the task an earlier attempt created
 * ------------------------------------------------------------------------------------- */

/* Returns true and fills k->task_id when the task list already holds our external id. */
static int find_existing(kling_t *k, bool *found)
{
    *found = false;
    char path[128];
    (void)snprintf(path, sizeof path, "/v1/videos/%s?pageNum=1&pageSize=%d", k->kind,
                   KLING_LIST_PAGE_SIZE);
    gp_api_reply_t r;
    (void)kling_call(k, "GET", path, NULL, &r);
    json_t *list = r.root != NULL ? json_object_get(r.root, "data") : NULL;
    if (r.rc == GP_HTTP_E_CANCELED || gp_api_auth_failed(&kling_api, &r)) {
        int rc = gp_api_fail(k->ctx, &kling_api, &r, "task list");
        gp_api_reply_free(&r);
        return rc;
    }
    if (r.rc != GP_HTTP_OK || r.status < 200 || r.status > 299 || !json_is_array(list)) {
        /* Creating is still safe: Kling refuses a second task with the same external id. */
        gp_ctx_log(k->ctx, GP_LOG_WARN, "kling: could not list earlier tasks (HTTP %ld): %s",
                   r.status, r.message);
        gp_api_reply_free(&r);
        return 0;
    }
    const char *mine = gp_ctx_task_id(k->ctx);
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        json_t *info = json_object_get(item, "task_info");
        const char *ext = json_string_value(json_object_get(info, "external_task_id"));
        const char *id = json_string_value(json_object_get(item, "task_id"));
        if (ext != NULL && strcmp(ext, mine) == 0 && gp_api_id_ok(id, KLING_MAX_TASK_ID)) {
            (void)snprintf(k->task_id, sizeof k->task_id, "%s", id);
            *found = true;
            break;
        }
    }
    gp_api_reply_free(&r);
    return 0;
}

/* Kling's `image`: a URL it fetches itself, or raw base64 without a data: prefix. */
static int image_field(kling_t *k, json_t *body)
{
    gp_ctx_t *ctx = k->ctx;
    const char *how = gp_ctx_param_str(ctx, "send_image_as", "url");
    char *value = NULL;
    int rc;
    if (strcmp(how, "base64") == 0) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        rc = gp_ctx_input_bytes(ctx, "image", KLING_MAX_IMAGE_BYTES, &bytes, &len, NULL, 0);
        if (rc == 0)
            value = gp_base64_encode(bytes, len);
        free(bytes);
    } else {
        rc = gp_ctx_input_url(ctx, "image", &value);
        if (rc == 0 && strncmp(value, "data:", 5) == 0) {
            const char *comma = strchr(value, ',');
            if (comma == NULL || comma - value < 12 || strncmp(comma - 7, ";base64", 7) != 0)
                rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                                 "a data: URL image must be base64-encoded");
            else
                memmove(value, comma + 1, strlen(comma + 1) + 1);
        }
    }
    if (rc == 0)
        json_object_set_new(body, "image", json_string(value));
    free(value);
    return rc;
}

static int build_create_body(kling_t *k, json_t **out)
{
    gp_ctx_t *ctx = k->ctx;
    const json_t *params = gp_ctx_params(ctx);
    int64_t seconds = gp_ctx_param_int(ctx, "duration", 5);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "model_name",
                             gp_ctx_param_str(ctx, "model_name", "kling-v1"), "mode",
                             gp_ctx_param_str(ctx, "mode", "std"), "duration",
                             seconds <= 5 ? "5" : "10", "external_task_id", gp_ctx_task_id(ctx));
    if (body == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the request");
    const char *prompt = gp_ctx_param_str(ctx, "prompt", "");
    if (prompt[0] != '\0')
        json_object_set_new(body, "prompt", json_string(prompt));
    const char *negative = gp_ctx_param_str(ctx, "negative_prompt", "");
    if (negative[0] != '\0')
        json_object_set_new(body, "negative_prompt", json_string(negative));
    /* Sent only when asked for: the kling-v2 models reject cfg_scale. */
    if (json_object_get(params, "cfg_scale") != NULL)
        json_object_set_new(body, "cfg_scale", json_real(gp_ctx_param_num(ctx, "cfg_scale", 0.5)));
    int rc = 0;
    if (strcmp(k->kind, "image2video") == 0) {
        rc = image_field(k, body);
    } else {
        json_object_set_new(body, "aspect_ratio",
                            json_string(gp_ctx_param_str(ctx, "aspect_ratio", "16:9")));
        if (prompt[0] == '\0')
            rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "prompt is required");
    }
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return 0;
}

static int create_task(kling_t *k)
{
    json_t *body = NULL;
    int rc = build_create_body(k, &body);
    if (rc != 0)
        return rc;
    char path[64];
    (void)snprintf(path, sizeof path, "/v1/videos/%s", k->kind);
    gp_api_reply_t r;
    (void)kling_call(k, "POST", path, body, &r);
    json_decref(body);
    if (!gp_api_ok(&kling_api, &r)) {
        rc = gp_api_fail(k->ctx, &kling_api, &r, "create request");
        gp_api_reply_free(&r);
        return rc;
    }
    const char *id = json_string_value(json_object_get(r.data, "task_id"));
    if (!gp_api_id_ok(id, KLING_MAX_TASK_ID))
        rc = gp_ctx_fail(k->ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                         "Kling's create reply has no usable data.task_id");
    else
        (void)snprintf(k->task_id, sizeof k->task_id, "%s", id);
    gp_api_reply_free(&r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------------------- */

/* Kling sends durations as strings ("5.1"); accept numbers too. Negative when absent. */
static double duration_of(const json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0')
        return -1;
    char *end = NULL;
    double d = strtod(s, &end);
    return (end != NULL && *end == '\0' && d >= 0 && d < 1e6) ? d : -1;
}

static int store_videos(kling_t *k, const json_t *data)
{
    gp_ctx_t *ctx = k->ctx;
    json_t *videos = json_object_get(json_object_get(data, "task_result"), "videos");
    size_t count = json_array_size(videos);
    if (!json_is_array(videos) || count == 0)
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "Kling reports success but task_result.videos is empty");
    if (count > KLING_MAX_VIDEOS)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_BAD_RESPONSE,
                           "Kling returned %zu videos, more than the %d expected", count,
                           KLING_MAX_VIDEOS);
    for (size_t i = 0; i < count; i++) {
        const char *url = json_string_value(json_object_get(json_array_get(videos, i), "url"));
        if (!gp_api_is_http_url(url))
            return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                               "Kling task_result.videos[%zu].url is not an http(s) URL", i);
    }
    double first_duration = -1;
    for (size_t i = 0; i < count; i++) {
        json_t *video = json_array_get(videos, i);
        double duration = duration_of(json_object_get(video, "duration"));
        if (i == 0)
            first_duration = duration;
        json_t *extra = json_object();
        if (extra == NULL)
            return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the asset");
        if (duration >= 0)
            json_object_set_new(extra, "duration", json_real(duration));
        const char *vid = json_string_value(json_object_get(video, "id"));
        if (vid != NULL)
            json_object_set_new(extra, "provider_video_id", json_string(vid));
        char name[32];
        if (count == 1)
            (void)snprintf(name, sizeof name, "video.mp4");
        else
            (void)snprintf(name, sizeof name, "video-%zu.mp4", i + 1);
        int rc = gp_ctx_progress(ctx, 90 + (int)(8 * i / count), "downloading video");
        if (rc != 0) {
            json_decref(extra);
            return rc;
        }
        rc = gp_ctx_store_url(ctx, name, json_string_value(json_object_get(video, "url")),
                              "video/mp4", NULL, extra);
        if (rc != 0)
            return rc;
    }
    json_t *result = json_pack("{s:s, s:s}", "provider_task_id", k->task_id, "model_name",
                               gp_ctx_param_str(ctx, "model_name", "kling-v1"));
    if (result == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the result");
    if (first_duration >= 0)
        json_object_set_new(result, "duration", json_real(first_duration));
    gp_ctx_set_result(ctx, result);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Polling
 * ------------------------------------------------------------------------------------- */

static int poll_task(kling_t *k)
{
    gp_ctx_t *ctx = k->ctx;
    int max_ms = k->poll_ms * 8;
    if (max_ms > KLING_MAX_POLL_MS)
        max_ms = KLING_MAX_POLL_MS > k->poll_ms ? KLING_MAX_POLL_MS : k->poll_ms;
    gp_poller_t poller = {.first_ms = k->poll_ms, .max_ms = max_ms};
    char path[128];
    (void)snprintf(path, sizeof path, "/v1/videos/%s/%s", k->kind, k->task_id);
    int failures = 0;
    for (;;) {
        int w = gp_api_poll_wait(ctx, &poller, "Kling", k->task_id);
        if (w != 0)
            return w;
        gp_api_reply_t r;
        (void)kling_call(k, "GET", path, NULL, &r);
        if (!gp_api_ok(&kling_api, &r)) {
            if (gp_api_retryable(&kling_api, &r) && ++failures < KLING_MAX_POLL_FAILURES) {
                gp_ctx_log(ctx, GP_LOG_WARN, "kling: status check %d failed (HTTP %ld): %s",
                           failures, r.status, r.message);
                gp_api_reply_free(&r);
                continue;
            }
            int rc = gp_api_fail(ctx, &kling_api, &r, "status check");
            gp_api_reply_free(&r);
            return rc;
        }
        failures = 0;
        const char *status = json_string_value(json_object_get(r.data, "task_status"));
        int rc = 0;
        if (status == NULL) {
            rc = gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                             "Kling status reply has no data.task_status");
        } else if (strcmp(status, "succeed") == 0) {
            rc = store_videos(k, r.data);
            gp_api_reply_free(&r);
            return rc;
        } else if (strcmp(status, "failed") == 0) {
            char msg[KLING_MAX_MESSAGE];
            gp_api_copy_line(msg, sizeof msg,
                             json_string_value(json_object_get(r.data, "task_status_msg")));
            rc = gp_ctx_fail(ctx, false, GP_TE_PROVIDER_FAILED, "Kling task %s failed: %s",
                             k->task_id, msg[0] ? msg : "no reason given");
        } else if (strcmp(status, "submitted") == 0) {
            rc = gp_ctx_progress(ctx, 10, "queued at Kling");
        } else {
            /* "processing", or a state added later: Kling gives no percentage, so creep. */
            int percent = 15 + poller.polls * 3;
            rc = gp_ctx_progress(ctx, percent > 85 ? 85 : percent, "generating");
        }
        gp_api_reply_free(&r);
        if (rc != 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

static int kling_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);
    kling_t k = {.ctx = ctx};
    k.access_key = gp_ctx_setting(ctx, "access-key");
    k.secret_key = gp_ctx_setting(ctx, "secret-key");
    if (k.access_key[0] == '\0' || k.secret_key[0] == '\0')
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "the kling provider needs --kling-access-key and --kling-secret-key "
                           "(or GENPULSE_KLING_ACCESS_KEY / GENPULSE_KLING_SECRET_KEY)");
    const char *base = gp_ctx_setting(ctx, "base-url");
    if (base[0] == '\0')
        base = KLING_DEFAULT_BASE_URL;
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    if (!gp_api_is_http_url(base) || base_len >= sizeof k.base)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "kling base-url must be an http(s) URL of at most %zu bytes",
                           sizeof k.base - 1);
    memcpy(k.base, base, base_len);
    k.base[base_len] = '\0';
    k.poll_ms = (int)gp_ctx_setting_int(ctx, "poll-interval-ms"); /* 10..600000, checked at start */
    /* The image param exists only in image-to-video. */
    k.kind = !strcmp(gp_ctx_task_type(ctx), "image-to-video") ? "image2video" : "text2video";

    int rc = gp_ctx_progress(ctx, 2, "submitting");
    if (rc != 0)
        return rc;
    bool found = false;
    if (gp_ctx_attempt(ctx) > 1) {
        rc = find_existing(&k, &found);
        if (rc != 0)
            return rc;
        if (found)
            gp_ctx_log(ctx, GP_LOG_INFO, "kling: resuming task %s from an earlier attempt",
                       k.task_id);
    }
    if (!found) {
        rc = create_task(&k);
        if (rc != 0)
            return rc;
    }
    json_t *id = json_pack("{s:s}", "provider_task_id", k.task_id);
    if (id != NULL)
        gp_ctx_set_result(ctx, id);
    rc = gp_ctx_progress(ctx, 5, "submitted");
    if (rc != 0)
        return rc;
    rc = poll_task(&k);
    if (rc != 0)
        return rc;
    return gp_ctx_progress(ctx, 100, "done");
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const char *const modes[] = {"std", "pro", NULL};
static const char *const image_transfers[] = {"url", "base64", NULL};

static const gp_param_spec_t kling_params[] = {
    GP_P_STRING("model_name", false, 1, 64, "\"kling-v1\"",
                "Kling model: kling-v1, kling-v1-6, kling-v2-master, kling-v2-1-master, ..."),
    GP_P_ENUM("mode", modes, "\"std\"", "std (faster, cheaper) or pro (higher quality)."),
    GP_P_NUMBER("cfg_scale", false, 0, 1, NULL,
                "How closely to follow the prompt (0..1); not supported by kling-v2 models, "
                "sent only when given."),
    GP_P_ENUM("send_image_as", image_transfers, "\"url\"",
              "image-to-video: pass the input image to Kling as a URL it downloads (needs a "
              "URL Kling can reach) or inline as base64 (at most 10 MB)."),
    GP_P_END,
};

static const gp_provider_setting_t kling_settings[] = {
    GP_S_SECRET("access-key", "Kling access key: the `iss` of the JWT sent on each request."),
    GP_S_SECRET("secret-key", "Kling secret key: signs the JWT (HS256)."),
    GP_S_URL("base-url", KLING_DEFAULT_BASE_URL,
             "Kling API origin (https://api-singapore.klingai.com for the Singapore region)."),
    GP_S_MS("poll-interval-ms", "3000", 10, 600000,
            "First wait between two status checks of a Kling task; later waits grow up to 8x "
            "(at most 30 s)."),
    GP_S_INT("concurrency", "0", 0, 1000000,
             "Kling tasks running at once across all workers (0: any)."),
    GP_S_INT("rate-per-minute", "0", 0, 1000000,
             "Requests per minute to Kling across all workers (0: any)."),
    GP_S_END,
};

static const char *const kling_task_types[] = {"text-to-video", "image-to-video", NULL};

const gp_provider_t gp_provider_kling = {
    .name = "kling",
    .description = "Kling AI video generation (text-to-video, image-to-video). Videos are 5 or "
                   "10 s (duration <= 5 gives 5, else 10). Kling cannot cancel a started "
                   "generation: a canceled task stops waiting, the remote job still runs.",
    .task_types = kling_task_types,
    .params = kling_params,
    .run = kling_run,
    .settings = kling_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_SECOND, 10, "duration", NULL},
};

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
#include "providers/kling.h"

#include <errno.h>
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

typedef struct kling_reply {
    int rc;       /* GP_HTTP_* */
    long status;  /* HTTP status */
    json_t *root; /* the JSON object, or NULL */
    json_t *data; /* root.data (borrowed), or NULL */
    bool has_code;
    long long code; /* the envelope's code; 0 = success */
    char message[KLING_MAX_MESSAGE];
} kling_reply_t;

static void reply_free(kling_reply_t *r)
{
    json_decref(r->root);
    r->root = NULL;
    r->data = NULL;
}

static bool reply_ok(const kling_reply_t *r)
{
    return r->rc == GP_HTTP_OK && r->status >= 200 && r->status <= 299 && r->has_code &&
           r->code == 0 && json_is_object(r->data);
}

static void copy_message(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in != NULL && in[n] != '\0' && n + 1 < cap; n++)
        out[n] = (unsigned char)in[n] < 0x20 ? ' ' : in[n];
    out[n] = '\0';
}

/*
 * One authenticated call. path starts with "/v1/". The reply is always filled (free it);
 * the return value is reply->rc.
 */
static int kling_call(kling_t *k, const char *method, const char *path, const json_t *body,
                      kling_reply_t *reply)
{
    *reply = (kling_reply_t){.rc = GP_HTTP_E_INVALID};
    char url[KLING_MAX_URL];
    int w = snprintf(url, sizeof url, "%s%s", k->base, path);
    if (w < 0 || (size_t)w >= sizeof url) {
        copy_message(reply->message, sizeof reply->message, "URL too long");
        return reply->rc;
    }
    char *payload = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    char auth[KLING_MAX_TOKEN + 32];
    int plen = snprintf(auth, sizeof auth, "Authorization: Bearer ");
    long tlen = gp_kling_jwt(k->access_key, k->secret_key, (int64_t)time(NULL), auth + plen,
                             sizeof auth - (size_t)plen);
    if ((body != NULL && payload == NULL) || tlen < 0) {
        free(payload);
        copy_message(reply->message, sizeof reply->message,
                     tlen < 0 ? "access-key too long for a token" : "out of memory");
        return reply->rc;
    }
    const char *headers[] = {auth, "Content-Type: application/json", "Accept: application/json",
                             NULL};
    gp_http_request_t req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = payload,
        .body_len = payload != NULL ? strlen(payload) : 0,
        .max_response_bytes = 8u << 20,
    };
    gp_http_response_t resp = {0};
    reply->rc = gp_ctx_http(k->ctx, &req, &resp);
    explicit_bzero(auth, sizeof auth);
    free(payload);
    reply->status = resp.status;
    if (reply->rc != GP_HTTP_OK) {
        copy_message(reply->message, sizeof reply->message, resp.error);
        gp_http_response_free(&resp);
        return reply->rc;
    }
    json_t *root = resp.body != NULL ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
    gp_http_response_free(&resp);
    if (!json_is_object(root)) {
        json_decref(root);
        return reply->rc;
    }
    reply->root = root;
    json_t *code = json_object_get(root, "code");
    if (json_is_integer(code)) {
        reply->has_code = true;
        reply->code = json_integer_value(code);
    }
    copy_message(reply->message, sizeof reply->message,
                 json_string_value(json_object_get(root, "message")));
    json_t *data = json_object_get(root, "data");
    if (!json_is_null(data) && data != NULL)
        reply->data = data;
    return reply->rc;
}

/* Kling's business codes (its error-code table): 1000-1004 authentication, 1302/1303 rate
 * and concurrency limits, 5000-5002 server trouble. Account problems (1100-1102: arrears,
 * no resource pack) come with HTTP 429 too but do not clear up by waiting. */
static bool code_is_auth(long long code)
{
    return code >= 1000 && code <= 1004;
}

static bool code_is_throttle(long long code)
{
    return code == 1302 || code == 1303;
}

static bool code_is_server(long long code)
{
    return code >= 5000 && code <= 5002;
}

static bool reply_retryable(const kling_reply_t *r)
{
    if (r->rc == GP_HTTP_E_INVALID || r->rc == GP_HTTP_E_CANCELED)
        return false;
    if (r->rc != GP_HTTP_OK)
        return true;
    if (r->has_code && r->code != 0)
        return code_is_throttle(r->code) || code_is_server(r->code);
    return (r->root == NULL && r->status < 300) || gp_http_status_retryable(r->status);
}

/* Turn a failed reply into run()'s return value; `what` names the call. */
static int fail_reply(kling_t *k, const kling_reply_t *r, const char *what)
{
    gp_ctx_t *ctx = k->ctx;
    if (r->rc == GP_HTTP_E_CANCELED)
        return gp_ctx_canceled_error(ctx);
    if (r->rc != GP_HTTP_OK)
        return gp_ctx_fail(ctx, reply_retryable(r), GP_TE_PROVIDER_UNAVAILABLE,
                           "Kling %s failed: %s%s%s", what, gp_http_strerror(r->rc),
                           r->message[0] ? ": " : "", r->message);
    const char *detail = r->message[0] ? r->message : "no message given";
    char code_text[32] = "";
    if (r->has_code)
        (void)snprintf(code_text, sizeof code_text, ", code %lld", r->code);
    if (r->status == 401 || (r->has_code && code_is_auth(r->code)))
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_AUTH,
                           "Kling refused the credentials for the %s (HTTP %ld%s): %s", what,
                           r->status, code_text, detail);
    if (r->root == NULL) {
        bool retry = r->status < 300 || gp_http_status_retryable(r->status);
        gp_task_error_t code = r->status < 300 ? GP_TE_PROVIDER_BAD_RESPONSE
                               : retry         ? GP_TE_PROVIDER_UNAVAILABLE
                                               : GP_TE_PROVIDER_REJECTED;
        return gp_ctx_fail(ctx, retry, code,
                           "Kling %s: HTTP %ld with a body that is not a JSON object", what,
                           r->status);
    }
    if (r->has_code && code_is_throttle(r->code))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_RATE_LIMITED,
                           "Kling rate limited the %s (HTTP %ld%s): %s", what, r->status, code_text,
                           detail);
    if (reply_retryable(r))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_UNAVAILABLE,
                           "Kling %s failed (HTTP %ld%s): %s", what, r->status, code_text, detail);
    if (r->status >= 200 && r->status <= 299 && (!r->has_code || r->code == 0))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE, "Kling %s reply lacks %s", what,
                           r->has_code ? "data" : "code");
    gp_task_error_t code = r->status == 404 || (r->has_code && r->code == 1203)
                               ? GP_TE_PROVIDER_NOT_FOUND
                               : GP_TE_PROVIDER_REJECTED;
    return gp_ctx_fail(ctx, false, code, "Kling rejected the %s (HTTP %ld%s): %s", what, r->status,
                       code_text, detail);
}

/* Kling ids are long digit strings; anything outside a safe path alphabet is refused
 * before it is pasted into a URL. */
static bool task_id_is_valid(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > KLING_MAX_TASK_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
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
    kling_reply_t r;
    (void)kling_call(k, "GET", path, NULL, &r);
    json_t *list = r.root != NULL ? json_object_get(r.root, "data") : NULL;
    if (r.rc == GP_HTTP_E_CANCELED || r.status == 401 || (r.has_code && code_is_auth(r.code))) {
        int rc = fail_reply(k, &r, "task list");
        reply_free(&r);
        return rc;
    }
    if (r.rc != GP_HTTP_OK || r.status < 200 || r.status > 299 || !json_is_array(list)) {
        /* Creating is still safe: Kling refuses a second task with the same external id. */
        gp_ctx_log(k->ctx, GP_LOG_WARN, "kling: could not list earlier tasks (HTTP %ld): %s",
                   r.status, r.message);
        reply_free(&r);
        return 0;
    }
    const char *mine = gp_ctx_task_id(k->ctx);
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        json_t *info = json_object_get(item, "task_info");
        const char *ext = json_string_value(json_object_get(info, "external_task_id"));
        const char *id = json_string_value(json_object_get(item, "task_id"));
        if (ext != NULL && strcmp(ext, mine) == 0 && task_id_is_valid(id)) {
            (void)snprintf(k->task_id, sizeof k->task_id, "%s", id);
            *found = true;
            break;
        }
    }
    reply_free(&r);
    return 0;
}

static int read_file_base64(gp_ctx_t *ctx, const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot open the input image (errno %d)",
                           errno);
    unsigned char *buf = malloc(KLING_MAX_IMAGE_BYTES + 1);
    size_t n = buf != NULL ? fread(buf, 1, KLING_MAX_IMAGE_BYTES + 1, f) : 0;
    bool read_error = ferror(f) != 0;
    (void)fclose(f);
    int rc = 0;
    if (buf == NULL)
        rc = gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "no memory for the input image");
    else if (read_error)
        rc = gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot read the input image");
    else if (n > KLING_MAX_IMAGE_BYTES)
        rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                         "the input image is larger than Kling's 10 MB limit");
    else if (n == 0)
        rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "the input image is empty");
    else
        *out = gp_base64_encode(buf, n);
    free(buf);
    return rc;
}

/* Kling's `image`: a URL it fetches itself, or raw base64 without a data: prefix. */
static int image_field(kling_t *k, json_t *body)
{
    gp_ctx_t *ctx = k->ctx;
    const char *how = gp_ctx_param_str(ctx, "send_image_as", "url");
    char *value = NULL;
    int rc;
    if (strcmp(how, "base64") == 0) {
        char path[4096], ctype[128];
        rc = gp_ctx_input_file(ctx, "image", path, sizeof path, ctype, sizeof ctype);
        if (rc == 0)
            rc = read_file_base64(ctx, path, &value);
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
    kling_reply_t r;
    (void)kling_call(k, "POST", path, body, &r);
    json_decref(body);
    if (!reply_ok(&r)) {
        rc = fail_reply(k, &r, "create request");
        reply_free(&r);
        return rc;
    }
    const char *id = json_string_value(json_object_get(r.data, "task_id"));
    if (!task_id_is_valid(id))
        rc = gp_ctx_fail(k->ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                         "Kling's create reply has no usable data.task_id");
    else
        (void)snprintf(k->task_id, sizeof k->task_id, "%s", id);
    reply_free(&r);
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
        if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
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
        int w = gp_ctx_poll_wait(ctx, &poller);
        if (w == GP_HTTP_E_CANCELED)
            return gp_ctx_canceled_error(ctx);
        if (w != 0)
            return gp_ctx_fail(ctx, true, GP_TE_TIMEOUT, "Kling task %s did not finish in time",
                               k->task_id);
        kling_reply_t r;
        (void)kling_call(k, "GET", path, NULL, &r);
        if (!reply_ok(&r)) {
            if (reply_retryable(&r) && ++failures < KLING_MAX_POLL_FAILURES) {
                gp_ctx_log(ctx, GP_LOG_WARN, "kling: status check %d failed (HTTP %ld): %s",
                           failures, r.status, r.message);
                reply_free(&r);
                continue;
            }
            int rc = fail_reply(k, &r, "status check");
            reply_free(&r);
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
            reply_free(&r);
            return rc;
        } else if (strcmp(status, "failed") == 0) {
            char msg[KLING_MAX_MESSAGE];
            copy_message(msg, sizeof msg,
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
        reply_free(&r);
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
    if ((strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) ||
        base_len >= sizeof k.base)
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
};

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
#include "infra/sign/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VOLC_DEFAULT_BASE_URL "https://visual.volcengineapi.com"
#define VOLC_API_VERSION "2022-08-31"
#define VOLC_OK 10000
#define VOLC_MAX_URL 2048
#define VOLC_MAX_MESSAGE 600
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

typedef struct volc_reply {
    int rc;
    long status;
    json_t *root;
    json_t *data; /* root.data when an object (borrowed) */
    bool has_code;
    long long code;
    char error_code[64]; /* the gateway's ResponseMetadata.Error.Code, if any */
    char message[VOLC_MAX_MESSAGE];
} volc_reply_t;

static void copy_message(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in != NULL && in[n] != '\0' && n + 1 < cap; n++)
        out[n] = (unsigned char)in[n] < 0x20 ? ' ' : in[n];
    out[n] = '\0';
}

static void reply_free(volc_reply_t *r)
{
    json_decref(r->root);
    r->root = NULL;
    r->data = NULL;
}

static bool reply_ok(const volc_reply_t *r)
{
    return r->rc == GP_HTTP_OK && r->status >= 200 && r->status <= 299 && r->has_code &&
           r->code == VOLC_OK && json_is_object(r->data);
}

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

/* One signed POST of `body` to ?Action=action. Fills reply (free it); returns reply->rc. */
static int volc_call(volc_t *v, const char *action, const json_t *body, bool idempotent,
                     volc_reply_t *reply)
{
    *reply = (volc_reply_t){.rc = GP_HTTP_E_INVALID};
    char query[128], url[VOLC_MAX_URL];
    (void)snprintf(query, sizeof query, "Action=%s&Version=%s", action, VOLC_API_VERSION);
    int w = snprintf(url, sizeof url, "%s%s?%s", v->scheme_authority, v->path, query);
    char *payload = json_dumps(body, JSON_COMPACT);
    if (w < 0 || (size_t)w >= sizeof url || payload == NULL) {
        free(payload);
        copy_message(reply->message, sizeof reply->message, "could not build the request");
        return reply->rc;
    }
    size_t payload_len = strlen(payload);

    time_t now = time(NULL);
    char stamp[17], hash[GP_SHA256_HEX_LEN];
    gp_sigv4_stamp(now, stamp);
    gp_sha256_hex(payload, payload_len, hash);
    char host_h[300], date_h[40], hash_h[100];
    (void)snprintf(host_h, sizeof host_h, "Host: %s", v->host);
    (void)snprintf(date_h, sizeof date_h, "X-Date: %s", stamp);
    (void)snprintf(hash_h, sizeof hash_h, "X-Content-Sha256: %s", hash);
    const char *signed_headers[] = {"Content-Type: application/json", host_h, date_h, hash_h, NULL};
    gp_sigv4_request_t sreq = {
        .method = "POST",
        .path = v->path,
        .query = query,
        .headers = signed_headers,
        .payload_sha256 = hash,
        .when = now,
    };
    gp_sigv4_result_t sig = {0};
    if (gp_sigv4_sign_headers(&gp_sigv4_volc, &v->creds, &sreq, &sig) != 0 ||
        sig.authorization == NULL) {
        gp_sigv4_result_free(&sig);
        free(payload);
        copy_message(reply->message, sizeof reply->message, "could not sign the request");
        return reply->rc;
    }
    size_t auth_len = strlen(sig.authorization) + 32;
    char *auth_h = malloc(auth_len);
    if (auth_h == NULL) {
        gp_sigv4_result_free(&sig);
        free(payload);
        copy_message(reply->message, sizeof reply->message, "out of memory");
        return reply->rc;
    }
    (void)snprintf(auth_h, auth_len, "Authorization: %s", sig.authorization);
    gp_sigv4_result_free(&sig);
    const char *headers[] = {signed_headers[0],          host_h, date_h, hash_h, auth_h,
                             "Accept: application/json", NULL};
    gp_http_request_t req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = payload,
        .body_len = payload_len,
        .retry_unsafe = idempotent,
        .max_response_bytes = 64u << 20, /* binary_data_base64 images */
    };
    gp_http_response_t resp = {0};
    reply->rc = gp_ctx_http(v->ctx, &req, &resp);
    free(auth_h);
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
    json_t *data = json_object_get(root, "data");
    if (json_is_object(data))
        reply->data = data;
    copy_message(reply->message, sizeof reply->message,
                 json_string_value(json_object_get(root, "message")));
    /* Signature and account errors come from the API gateway in its own envelope. */
    json_t *gw = json_object_get(json_object_get(root, "ResponseMetadata"), "Error");
    if (json_is_object(gw)) {
        copy_message(reply->error_code, sizeof reply->error_code,
                     json_string_value(json_object_get(gw, "Code")));
        copy_message(reply->message, sizeof reply->message,
                     json_string_value(json_object_get(gw, "Message")));
    }
    return reply->rc;
}

/*
 * Throttling and server trouble in the visual API's code table: 50429 (QPS limit), 50430
 * (concurrency limit), 50500 / 50501 (internal errors). Everything else that is not 10000 —
 * parameter errors, content-audit rejections (504xx/505xx) — does not change on a retry.
 */
static bool code_retryable(long long code)
{
    return code == 50429 || code == 50430 || code == 50500 || code == 50501;
}

static bool reply_retryable(const volc_reply_t *r)
{
    if (r->rc == GP_HTTP_E_INVALID || r->rc == GP_HTTP_E_CANCELED)
        return false;
    if (r->rc != GP_HTTP_OK || (r->root == NULL && r->status < 300))
        return true;
    if (r->has_code && code_retryable(r->code))
        return true;
    return gp_http_status_retryable(r->status);
}

/* `what` names the call; `task_failure` marks replies about the generation itself. */
static int fail_reply(volc_t *v, const volc_reply_t *r, const char *what, bool task_failure)
{
    gp_ctx_t *ctx = v->ctx;
    if (r->rc == GP_HTTP_E_CANCELED)
        return gp_ctx_canceled_error(ctx);
    if (r->rc != GP_HTTP_OK)
        return gp_ctx_fail(ctx, reply_retryable(r), GP_TE_PROVIDER_UNAVAILABLE,
                           "VolcEngine %s failed: %s%s%s", what, gp_http_strerror(r->rc),
                           r->message[0] ? ": " : "", r->message);
    const char *detail = r->message[0] ? r->message : "no message given";
    char code_text[96] = "";
    if (r->error_code[0])
        (void)snprintf(code_text, sizeof code_text, ", %s", r->error_code);
    else if (r->has_code)
        (void)snprintf(code_text, sizeof code_text, ", code %lld", r->code);
    if (r->status == 401 || r->status == 403)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_AUTH,
                           "VolcEngine refused the credentials for the %s (HTTP %ld%s): %s", what,
                           r->status, code_text, detail);
    if (r->root == NULL) {
        bool retry = r->status < 300 || gp_http_status_retryable(r->status);
        gp_task_error_t code = r->status < 300 ? GP_TE_PROVIDER_BAD_RESPONSE
                               : retry         ? GP_TE_PROVIDER_UNAVAILABLE
                                               : GP_TE_PROVIDER_REJECTED;
        return gp_ctx_fail(ctx, retry, code,
                           "VolcEngine %s: HTTP %ld with a body that is not a JSON object", what,
                           r->status);
    }
    if (r->status == 429 || (r->has_code && (r->code == 50429 || r->code == 50430)))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_RATE_LIMITED,
                           "VolcEngine rate limited the %s (HTTP %ld%s): %s", what, r->status,
                           code_text, detail);
    if (reply_retryable(r))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_UNAVAILABLE,
                           "VolcEngine %s failed (HTTP %ld%s): %s", what, r->status, code_text,
                           detail);
    if (r->status >= 200 && r->status <= 299 && (!r->has_code || r->code == VOLC_OK))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE, "VolcEngine %s reply lacks %s",
                           what, r->has_code ? "data" : "an integer code");
    if (task_failure)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_FAILED,
                           "VolcEngine task %s failed (HTTP %ld%s): %s", v->task_id, r->status,
                           code_text, detail);
    return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_REJECTED,
                       "VolcEngine rejected the %s (HTTP %ld%s): %s", what, r->status, code_text,
                       detail);
}

/* ---------------------------------------------------------------------------------------
 * Submit
 * ------------------------------------------------------------------------------------- */

static int image_input(volc_t *v, json_t *body)
{
    gp_ctx_t *ctx = v->ctx;
    const char *how = gp_ctx_param_str(ctx, "send_image_as", "url");
    if (strcmp(how, "base64") == 0) {
        char path[4096], ctype[128];
        int rc = gp_ctx_input_file(ctx, "image", path, sizeof path, ctype, sizeof ctype);
        if (rc != 0)
            return rc;
        FILE *f = fopen(path, "rb");
        unsigned char *buf = f != NULL ? malloc(VOLC_MAX_IMAGE_BYTES + 1) : NULL;
        size_t n = buf != NULL ? fread(buf, 1, VOLC_MAX_IMAGE_BYTES + 1, f) : 0;
        bool bad = f == NULL || buf == NULL || ferror(f) != 0;
        if (f != NULL)
            (void)fclose(f);
        if (bad || n == 0 || n > VOLC_MAX_IMAGE_BYTES) {
            free(buf);
            if (bad)
                return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "cannot read the input image");
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                               "the input image must be 1 byte to 10 MB");
        }
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

static bool task_id_is_valid(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > VOLC_MAX_TASK_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static int submit(volc_t *v)
{
    json_t *body = NULL;
    int rc = build_submit_body(v, &body);
    if (rc != 0)
        return rc;
    volc_reply_t r;
    (void)volc_call(v, "CVSync2AsyncSubmitTask", body, false, &r);
    json_decref(body);
    if (!reply_ok(&r)) {
        rc = fail_reply(v, &r, "submit", false);
        reply_free(&r);
        return rc;
    }
    const char *id = json_string_value(json_object_get(r.data, "task_id"));
    if (!task_id_is_valid(id))
        rc = gp_ctx_fail(v->ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                         "VolcEngine submit reply has no usable data.task_id");
    else
        (void)snprintf(v->task_id, sizeof v->task_id, "%s", id);
    reply_free(&r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Outputs
 * ------------------------------------------------------------------------------------- */

typedef struct image_kind {
    const char *content_type;
    const char *ext;
} image_kind_t;

static bool sniff_image(const unsigned char *b, size_t n, image_kind_t *kind)
{
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        *kind = (image_kind_t){"image/png", "png"};
    else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        *kind = (image_kind_t){"image/jpeg", "jpg"};
    else if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        *kind = (image_kind_t){"image/webp", "webp"};
    else
        return false;
    return true;
}

/* The extension a result URL's path ends in, for a readable asset name; png otherwise. */
static const char *ext_of_url(const char *url)
{
    size_t path_len = strcspn(url, "?#");
    static const char *const exts[] = {"png", "jpg", "jpeg", "webp", NULL};
    for (const char *const *e = exts; *e != NULL; e++) {
        size_t n = strlen(*e);
        if (path_len > n + 1 && url[path_len - n - 1] == '.' &&
            strncasecmp(url + path_len - n, *e, n) == 0)
            return strcmp(*e, "jpeg") == 0 ? "jpg" : *e;
    }
    return "png";
}

static void image_name(char *out, size_t cap, size_t i, size_t count, const char *ext)
{
    if (count == 1)
        (void)snprintf(out, cap, "image.%s", ext);
    else
        (void)snprintf(out, cap, "image-%zu.%s", i + 1, ext);
}

static bool is_http_url(const char *s)
{
    return s != NULL && (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0);
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
        if (!is_http_url(video))
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
            image_kind_t kind;
            if (bytes == NULL || !sniff_image(bytes, len, &kind)) {
                free(bytes);
                return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                                   "VolcEngine binary_data_base64[%zu] is not a base64 PNG, "
                                   "JPEG or WebP image",
                                   i);
            }
            char name[32];
            image_name(name, sizeof name, i, nb, kind.ext);
            rc = gp_ctx_store_bytes(ctx, name, bytes, len, kind.content_type, NULL);
            free(bytes);
        }
    } else if (nu > 0) {
        if (nu > VOLC_MAX_OUTPUTS)
            return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_BAD_RESPONSE,
                               "VolcEngine returned %zu images, more than %d", nu,
                               VOLC_MAX_OUTPUTS);
        for (size_t i = 0; i < nu; i++)
            if (!is_http_url(json_string_value(json_array_get(urls, i))))
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
        int w = gp_ctx_poll_wait(ctx, &poller);
        if (w == GP_HTTP_E_CANCELED) {
            rc = gp_ctx_canceled_error(ctx);
            break;
        }
        if (w != 0) {
            rc = gp_ctx_fail(ctx, true, GP_TE_TIMEOUT, "VolcEngine task %s did not finish in time",
                             v->task_id);
            break;
        }
        volc_reply_t r;
        (void)volc_call(v, "CVSync2AsyncGetResult", body, true, &r);
        if (!reply_ok(&r)) {
            if (reply_retryable(&r) && ++failures < VOLC_MAX_POLL_FAILURES) {
                gp_ctx_log(ctx, GP_LOG_WARN, "volcengine: result check %d failed (HTTP %ld): %s",
                           failures, r.status, r.message);
                reply_free(&r);
                continue;
            }
            /* A non-retryable code from GetResult is the generation's own failure (an audit
             * rejection, a bad input image), not a problem with the call. */
            rc = fail_reply(v, &r, "result check", r.has_code && r.code != VOLC_OK);
            reply_free(&r);
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
        reply_free(&r);
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
};

/*
 * openai.c — the "openai" provider for text-to-image: POST {base}/images/generations of the
 * OpenAI Images API, or of any server that speaks it (stable-diffusion.cpp's server, LocalAI,
 * LlamaEdge). One synchronous request; the images come back either as base64 in the body or
 * as short-lived URLs, and both are copied into GenPulse storage before the task ends.
 *
 * Generation is not idempotent and OpenAI offers no idempotency key, so the create request is
 * retried by the HTTP client only when the request provably never ran (connect failure, 429,
 * 503); anything else becomes a retryable task failure and the worker decides.
 */
#include "genpulse/handler.h"
#include "genpulse/http.h"
#include "providers/api_call.h"

#include "core/base64.h"
#include "core/media_type.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPENAI_DEFAULT_BASE_URL "https://api.openai.com/v1"
#define OPENAI_MAX_IMAGES 4
#define OPENAI_MAX_URL 2048

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

/* "WxH" with 1..5 digits each, or "auto" (gpt-image-1, stable-diffusion.cpp). */
static bool size_is_valid(const char *size)
{
    if (strcmp(size, "auto") == 0)
        return true;
    const char *x = strchr(size, 'x');
    if (x == NULL)
        return false;
    size_t left = (size_t)(x - size), right = strlen(x + 1);
    if (left < 1 || left > 5 || right < 1 || right > 5)
        return false;
    for (const char *p = size; *p != '\0'; p++)
        if (p != x && !isdigit((unsigned char)*p))
            return false;
    return true;
}

static const char *ext_for_format(const char *format)
{
    if (format == NULL)
        return "png";
    if (strcmp(format, "jpeg") == 0)
        return "jpg";
    if (strcmp(format, "webp") == 0)
        return "webp";
    return "png";
}

/* The stable asset name: image.png for one image, image-1.png... for several. */
static void asset_name(char *out, size_t cap, size_t index, size_t count, const char *ext)
{
    if (count == 1)
        (void)snprintf(out, cap, "image.%s", ext);
    else
        (void)snprintf(out, cap, "image-%zu.%s", index + 1, ext);
}

/* ---------------------------------------------------------------------------------------
 * Request
 * ------------------------------------------------------------------------------------- */

typedef struct openai_request {
    char url[OPENAI_MAX_URL];
    json_t *body;
    const char *model;         /* may be "" */
    const char *output_format; /* may be NULL */
    int n;
} openai_request_t;

static bool is_official_api(const char *base_url)
{
    return strncmp(base_url, "https://api.openai.com/", 23) == 0 ||
           strcmp(base_url, "https://api.openai.com") == 0;
}

/* Reads params and settings into the JSON body. Returns 0 or a gp_ctx_fail() value. */
static int build_request(gp_ctx_t *ctx, openai_request_t *req)
{
    const char *base = gp_ctx_setting(ctx, "base-url");
    if (base[0] == '\0')
        base = OPENAI_DEFAULT_BASE_URL;
    if (!gp_api_is_http_url(base))
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "openai base-url must start with http:// or https://");
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    int w = snprintf(req->url, sizeof req->url, "%.*s/images/generations", (int)base_len, base);
    if (w < 0 || (size_t)w >= sizeof req->url)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "openai base-url is too long");

    const char *prompt = gp_ctx_param_str(ctx, "prompt", "");
    if (prompt[0] == '\0')
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "prompt is required");

    req->model = gp_ctx_param_str(ctx, "model", NULL);
    if (req->model == NULL || req->model[0] == '\0')
        req->model = gp_ctx_setting(ctx, "model");

    char derived[32];
    const char *size = gp_ctx_param_str(ctx, "size", NULL);
    if (size == NULL || size[0] == '\0') {
        (void)snprintf(derived, sizeof derived, "%lldx%lld",
                       (long long)gp_ctx_param_int(ctx, "width", 1024),
                       (long long)gp_ctx_param_int(ctx, "height", 1024));
        size = derived;
    } else if (!size_is_valid(size)) {
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                           "size must be WIDTHxHEIGHT (e.g. \"1024x1024\") or \"auto\"");
    }
    int64_t n = gp_ctx_param_int(ctx, "n", 1);
    if (n < 1 || n > OPENAI_MAX_IMAGES)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "n must be 1 to %d",
                           OPENAI_MAX_IMAGES);
    req->n = (int)n;

    req->body = json_pack("{s:s, s:s, s:i}", "prompt", prompt, "size", size, "n", req->n);
    if (req->body == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the request");
    if (req->model[0] != '\0')
        json_object_set_new(req->body, "model", json_string(req->model));

    /* gpt-image models always answer in base64 and reject the field. */
    if (strncmp(req->model, "gpt-image", 9) != 0)
        json_object_set_new(req->body, "response_format",
                            json_string(gp_ctx_param_str(ctx, "response_format", "b64_json")));
    static const char *const optional[] = {"quality", "style", "output_format", NULL};
    for (const char *const *k = optional; *k != NULL; k++) {
        const char *v = gp_ctx_param_str(ctx, *k, NULL);
        if (v != NULL && v[0] != '\0')
            json_object_set_new(req->body, *k, json_string(v));
    }
    req->output_format = gp_ctx_param_str(ctx, "output_format", NULL);

    /* OpenAI itself answers 400 to unknown fields, while LocalAI and friends use it. */
    const char *negative = gp_ctx_param_str(ctx, "negative_prompt", NULL);
    if (negative != NULL && negative[0] != '\0' && !is_official_api(base))
        json_object_set_new(req->body, "negative_prompt", json_string(negative));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------------------- */

static int openai_headers(void *arg, const gp_api_send_t *send, gp_api_headers_t *h,
                          const char **why)
{
    (void)send;
    *why = "could not build the request";
    return gp_api_header_add(h, "Authorization: Bearer %s", (const char *)arg);
}

/* {"error": {"message", "type", "param", "code"}}; some compatible servers send a string. */
static const char *const openai_message[] = {"error.message", "error", "message", NULL};
static const char *const openai_text_code[] = {"error.code", "error.type", NULL};
/* A 429 for an exhausted quota or budget does not clear up by waiting. */
static const gp_api_text_code_t openai_text_codes[] = {
    {"insufficient_quota", GP_API_PERMANENT},
    {"billing_hard_limit_reached", GP_API_PERMANENT},
    {NULL, GP_API_NONE},
};

static const gp_api_profile_t openai_api = {
    .name = "OpenAI",
    .headers = openai_headers,
    .message_paths = openai_message,
    .text_code_paths = openai_text_code,
    .text_codes = openai_text_codes,
    .auth_403 = true,
    .throttle_429 = true,
    .not_found_404 = true,
    .too_large_permanent = true,
};

/* ---------------------------------------------------------------------------------------
 * Outputs
 * ------------------------------------------------------------------------------------- */

static int store_b64(gp_ctx_t *ctx, const char *b64, size_t index, size_t count, json_t *extra)
{
    size_t len = 0;
    unsigned char *bytes = gp_base64_decode(b64, strlen(b64), &len);
    if (bytes == NULL) {
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "OpenAI returned data[%zu].b64_json that is not base64", index);
    }
    /* Decoded bytes decide the type: output_format is only a request, and OpenAI-compatible
     * servers do not all honour it. */
    const char *type = gp_media_sniff(bytes, len);
    if (!gp_media_is(type, "image")) {
        free(bytes);
        json_decref(extra);
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "OpenAI returned data[%zu] that is not a PNG, JPEG, WebP or GIF image "
                           "(%zu bytes)",
                           index, len);
    }
    char name[64];
    asset_name(name, sizeof name, index, count, gp_media_ext_of_type(type));
    int rc = gp_ctx_store_bytes(ctx, name, bytes, len, type, extra);
    free(bytes);
    return rc;
}

/* Validates the whole reply before storing anything, so a bad item never leaves half the
 * outputs behind. */
static int store_outputs(gp_ctx_t *ctx, const openai_request_t *req, json_t *root)
{
    json_t *data = json_object_get(root, "data");
    size_t count = json_array_size(data);
    if (!json_is_array(data) || count == 0)
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "OpenAI reply has no data[] with images");
    if (count > OPENAI_MAX_IMAGES)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_BAD_RESPONSE,
                           "OpenAI returned %zu images, more than the %d allowed", count,
                           OPENAI_MAX_IMAGES);
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(data, i);
        const char *url = json_string_value(json_object_get(item, "url"));
        const char *b64 = json_string_value(json_object_get(item, "b64_json"));
        if (!json_is_object(item) ||
            ((b64 == NULL || b64[0] == '\0') && (url == NULL || url[0] == '\0')))
            return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                               "OpenAI reply data[%zu] has neither url nor b64_json", i);
        if ((b64 == NULL || b64[0] == '\0') && strncmp(url, "http://", 7) != 0 &&
            strncmp(url, "https://", 8) != 0)
            return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_BAD_RESPONSE,
                               "OpenAI reply data[%zu].url is not an http(s) URL", i);
    }

    /* The reply's output_format (gpt-image-1, sd.cpp) beats what was asked for. */
    const char *format = json_string_value(json_object_get(root, "output_format"));
    if (format == NULL)
        format = req->output_format;

    json_t *revised = json_array();
    if (revised == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the result");
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        json_t *item = json_array_get(data, i);
        const char *b64 = json_string_value(json_object_get(item, "b64_json"));
        const char *url = json_string_value(json_object_get(item, "url"));
        json_t *rp = json_object_get(item, "revised_prompt");
        json_t *extra = json_object();
        if (extra == NULL) {
            rc = gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the asset");
            break;
        }
        if (json_is_string(rp)) {
            json_object_set(extra, "revised_prompt", rp);
            json_array_append(revised, rp);
        }
        rc = gp_ctx_progress(ctx, 80 + (int)(15 * i / count), "storing");
        if (rc != 0) {
            json_decref(extra);
            break;
        }
        if (b64 != NULL && b64[0] != '\0') {
            rc = store_b64(ctx, b64, i, count, extra);
        } else {
            char name[64];
            asset_name(name, sizeof name, i, count, ext_for_format(format));
            /* The response's own Content-Type is the truth for a downloaded image. */
            rc = gp_ctx_store_url(ctx, name, url, NULL, NULL, extra);
        }
    }
    if (rc != 0) {
        json_decref(revised);
        return rc;
    }

    json_t *result = json_object();
    if (result == NULL) {
        json_decref(revised);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the result");
    }
    if (json_array_size(revised) > 0)
        json_object_set(result, "revised_prompt", json_array_get(revised, 0));
    if (json_array_size(revised) > 1)
        json_object_set(result, "revised_prompts", revised);
    json_decref(revised);
    if (req->model[0] != '\0')
        json_object_set_new(result, "model", json_string(req->model));
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage))
        json_object_set(result, "usage", usage);
    gp_ctx_set_result(ctx, result);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

static int openai_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);
    const char *key = gp_ctx_setting(ctx, "api-key");
    if (key[0] == '\0')
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "the openai provider has no API key: set --openai-api-key or "
                           "GENPULSE_OPENAI_API_KEY");
    int64_t timeout_s = gp_ctx_setting_int(ctx, "timeout-s"); /* 1..3600, checked at start */

    openai_request_t req = {0};
    int rc = build_request(ctx, &req);
    if (rc != 0) {
        json_decref(req.body);
        return rc;
    }
    rc = gp_ctx_progress(ctx, 5, "generating");
    if (rc == 0) {
        gp_http_request_t hreq = {
            .method = "POST",
            .url = req.url,
            .timeout_ms = (int)(timeout_s * 1000),
        };
        gp_api_reply_t reply;
        (void)gp_api_call(ctx, &openai_api, (void *)key, &hreq, req.body, &reply);
        rc = gp_api_ok(&openai_api, &reply)
                 ? store_outputs(ctx, &req, reply.root)
                 : gp_api_fail(ctx, &openai_api, &reply, "images request");
        gp_api_reply_free(&reply);
    }
    json_decref(req.body);
    if (rc != 0)
        return rc;
    return gp_ctx_progress(ctx, 100, "done");
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const char *const response_formats[] = {"b64_json", "url", NULL};
static const char *const qualities[] = {"standard", "hd", "low", "medium", "high", "auto", NULL};
static const char *const styles[] = {"vivid", "natural", NULL};
static const char *const output_formats[] = {"png", "jpeg", "webp", NULL};

static const gp_param_spec_t openai_params[] = {
    GP_P_STRING("model", false, 0, 100, NULL,
                "Model name (\"dall-e-3\", \"gpt-image-1\", or whatever the server at base-url "
                "serves); absent: the provider's model setting, or the server's default."),
    GP_P_STRING("size", false, 0, 16, NULL,
                "\"WIDTHxHEIGHT\" or \"auto\"; absent: width x height. dall-e-3 takes "
                "1024x1024, 1792x1024 and 1024x1792 only."),
    GP_P_ENUM("quality", qualities, NULL,
              "standard|hd (dall-e-3) or low|medium|high|auto (gpt-image-1); absent: the "
              "server's default."),
    GP_P_ENUM("style", styles, NULL, "dall-e-3 only: vivid or natural."),
    GP_P_ENUM("response_format", response_formats, "\"b64_json\"",
              "How the server returns images: inline base64 or a URL GenPulse downloads. "
              "Not sent for gpt-image models, which always answer in base64."),
    GP_P_ENUM("output_format", output_formats, NULL,
              "gpt-image-1 and stable-diffusion.cpp: the encoding of the image."),
    GP_P_INT("n", false, 1, OPENAI_MAX_IMAGES, "1",
             "Number of images (dall-e-3 allows only 1); several are stored as image-1.png, "
             "image-2.png, ..."),
    GP_P_END,
};

static const gp_provider_setting_t openai_settings[] = {
    GP_S_SECRET("api-key", "API key, sent as `Authorization: Bearer` to base-url only."),
    GP_S_URL("base-url", OPENAI_DEFAULT_BASE_URL,
             "Base URL including /v1; any OpenAI-compatible image server (stable-diffusion.cpp "
             "server, LocalAI) works."),
    GP_S_STRING("model", "", "Model used when a task names none (\"\": the server's default)."),
    GP_S_INT("timeout-s", "300", 1, 3600, "Longest wait for one generation request, in seconds."),
    GP_S_INT("concurrency", "0", 0, 1000000,
             "OpenAI tasks running at once across all workers (0: any)."),
    GP_S_INT("rate-per-minute", "0", 0, 1000000,
             "Requests per minute to base-url across all workers (0: any)."),
    GP_S_END,
};

static const char *const openai_task_types[] = {"text-to-image", NULL};

const gp_provider_t gp_provider_openai = {
    .name = "openai",
    .description = "OpenAI Images API (DALL-E, gpt-image-1) or any server that speaks it, such "
                   "as stable-diffusion.cpp's server or LocalAI. Images come back as base64 or "
                   "URLs and are copied into GenPulse storage; revised_prompt is kept.",
    .task_types = openai_task_types,
    .params = openai_params,
    .run = openai_run,
    .settings = openai_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 20, NULL, "n"},
};

/*
 * replicate.c — the "replicate" provider: runs a model on Replicate (api.replicate.com) for
 * text-to-image, image-to-image, image-to-video, text-to-video and text-to-audio.
 *
 * One run() = one prediction: create it, poll it until it ends, copy its file outputs into
 * our own storage (Replicate deletes API outputs after an hour), and cancel it on Replicate
 * whenever we stop waiting for it, so an abandoned prediction does not keep billing.
 *
 * The task type's params are passed to the model under their own names and the `input`
 * param is merged over them, so any model can be driven without a per-model mapping table.
 *
 * Everything Replicate sends is treated as untrusted: each field is type-checked before use,
 * URLs it hands back are only followed (with our token) when they point at the configured
 * API origin, and output files are fetched without credentials unless they live there too.
 */
#include "genpulse/handler.h"
#include "genpulse/http.h"
#include "providers/api_call.h"

#include "core/base64.h"
#include "core/media_type.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RP_DEFAULT_BASE_URL "https://api.replicate.com/v1"
#define RP_MIN_POLL_MS 20
#define RP_MAX_POLL_MS 60000
#define RP_POLL_BACKOFF 4        /* polls slow down to this many times the first interval */
#define RP_POLL_CEILING_MS 10000 /* ...but never to more than this */
#define RP_MAX_BASE_URL 1024
#define RP_MAX_URL 4096
#define RP_MAX_TOKEN 512
#define RP_MAX_MODEL_PART 128
#define RP_VERSION_HEX 64
#define RP_MAX_ID 128
#define RP_MIN_REQUEST_MS 100
#define RP_MAX_REQUEST_MS 600000
/* Outputs can arrive inline as data: URLs, so a prediction body may be several megabytes. */
#define RP_MAX_API_RESPONSE (32u << 20)
#define RP_CANCEL_TIMEOUT_MS 5000
#define RP_CANCEL_BUDGET_MS 8000
#define RP_MAX_OUTPUT_FILES 16
#define RP_MAX_POLL_FAILURES 3  /* consecutive failed polls before the task gives up */
#define RP_LOG_SCAN_BYTES 65536 /* tail of `logs` searched for a progress bar */
#define RP_MAX_DETAIL 600

/* Progress bands: waiting for a worker, the model's own progress bar, copying outputs. */
#define PROGRESS_CREATED 1
#define PROGRESS_STARTING 2
#define PROGRESS_RUN_START 5
#define PROGRESS_RUN_END 90
#define PROGRESS_OUTPUTS_END 99

typedef struct rp_conf {
    char base[RP_MAX_BASE_URL];   /* no trailing '/' */
    size_t origin_len;            /* "scheme://host[:port]" prefix of base */
    char auth[RP_MAX_TOKEN + 32]; /* the whole Authorization header line */
    int poll_ms;
    int request_timeout_ms;
} rp_conf_t;

typedef struct rp_model {
    char owner[RP_MAX_MODEL_PART + 1];
    char name[RP_MAX_MODEL_PART + 1];
    char version[RP_VERSION_HEX + 1]; /* "" when the model's latest version is meant */
} rp_model_t;

typedef enum rp_state {
    RP_STARTING,
    RP_PROCESSING,
    RP_SUCCEEDED,
    RP_FAILED,
    RP_CANCELED,
    RP_ABORTED,
    RP_UNKNOWN,
} rp_state_t;

/* ---------------------------------------------------------------------------------------
 * Small string helpers
 * ------------------------------------------------------------------------------------- */

static bool is_hex_string(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Owner and model names as Replicate allows them; also keeps them safe as URL path parts. */
static bool model_part_ok(const char *s, size_t n)
{
    if (n == 0 || n > RP_MAX_MODEL_PART || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

static bool prediction_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > RP_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '-' && c != '_')
            return false;
    }
    return true;
}

/* Copy text meant for a client-facing message: control characters become spaces, and an
 * over-long text is cut with an ellipsis so the reader knows. */
static void copy_printable(char *out, size_t cap, const char *in, size_t n)
{
    if (cap == 0)
        return;
    size_t o = 0;
    for (size_t i = 0; i < n && in[i] != '\0'; i++) {
        if (o + 1 >= cap) {
            if (cap > 4) {
                memcpy(out + cap - 4, "...", 3);
                o = cap - 1;
            }
            break;
        }
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    out[o] = '\0';
}

static bool format_url(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool format_url(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < cap;
}

/* ---------------------------------------------------------------------------------------
 * Settings and params
 * ------------------------------------------------------------------------------------- */

static int load_conf(gp_ctx_t *ctx, rp_conf_t *conf)
{
    const char *token = gp_ctx_setting(ctx, "api-token");
    size_t token_len = strlen(token);
    if (token_len == 0)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "the Replicate API token is not set (--replicate-api-token or "
                           "GENPULSE_REPLICATE_API_TOKEN)");
    bool token_ok = token_len <= RP_MAX_TOKEN;
    for (size_t i = 0; token_ok && i < token_len; i++)
        token_ok = token[i] > 0x20 && token[i] < 0x7f; /* anything else could split the header */
    if (!token_ok)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "the Replicate API token is malformed (expected at most %d "
                           "printable characters without spaces)",
                           RP_MAX_TOKEN);
    (void)snprintf(conf->auth, sizeof conf->auth, "Authorization: Bearer %s", token);

    const char *base = gp_ctx_setting(ctx, "base-url");
    if (base[0] == '\0')
        base = RP_DEFAULT_BASE_URL;
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    const char *scheme_end = strstr(base, "://");
    bool base_ok = base_len > 0 && base_len < sizeof conf->base &&
                   (strncmp(base, "http://", 7) == 0 || strncmp(base, "https://", 8) == 0) &&
                   scheme_end != NULL && (size_t)(scheme_end + 3 - base) < base_len;
    for (size_t i = 0; base_ok && i < base_len; i++)
        base_ok = base[i] > 0x20 && base[i] < 0x7f && base[i] != '?' && base[i] != '#';
    if (!base_ok)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "replicate base-url must be an http(s) URL without query, e.g. %s",
                           RP_DEFAULT_BASE_URL);
    memcpy(conf->base, base, base_len);
    conf->base[base_len] = '\0';
    const char *host = conf->base + (scheme_end + 3 - base);
    const char *path = strchr(host, '/');
    conf->origin_len = path != NULL ? (size_t)(path - conf->base) : base_len;

    /* Bounded by the settings table (RP_MIN/MAX_*), checked at start. */
    conf->poll_ms = (int)gp_ctx_setting_int(ctx, "poll-interval-ms");
    conf->request_timeout_ms = (int)gp_ctx_setting_int(ctx, "request-timeout-ms");
    return 0;
}

/* Our token goes only to the API we were configured with, never to a host a response names. */
static bool same_origin(const rp_conf_t *conf, const char *url)
{
    return strncmp(url, conf->base, conf->origin_len) == 0 &&
           (url[conf->origin_len] == '/' || url[conf->origin_len] == '\0');
}

/*
 * The three reference forms Replicate accepts: "owner/name" (an official model, its latest
 * version), "owner/name:<64 hex>" and a bare 64-hex version id. Returns false with a reason.
 */
static bool parse_model(const char *ref, rp_model_t *m, const char **why)
{
    memset(m, 0, sizeof *m);
    size_t n = strlen(ref);
    if (n == RP_VERSION_HEX && is_hex_string(ref, n)) {
        memcpy(m->version, ref, n);
        return true;
    }
    const char *slash = strchr(ref, '/');
    if (slash == NULL) {
        *why = "has no '/' and is not a 64-hex version id";
        return false;
    }
    const char *colon = strchr(slash + 1, ':');
    size_t owner_len = (size_t)(slash - ref);
    size_t name_len = colon != NULL ? (size_t)(colon - slash - 1) : strlen(slash + 1);
    if (!model_part_ok(ref, owner_len) || !model_part_ok(slash + 1, name_len)) {
        *why = "owner and name must be 1-128 letters, digits, '-', '_' or '.', starting with a "
               "letter or digit";
        return false;
    }
    memcpy(m->owner, ref, owner_len);
    memcpy(m->name, slash + 1, name_len);
    if (colon != NULL) {
        const char *version = colon + 1;
        if (strlen(version) != RP_VERSION_HEX || !is_hex_string(version, RP_VERSION_HEX)) {
            *why = "the version after ':' must be 64 hex digits";
            return false;
        }
        memcpy(m->version, version, RP_VERSION_HEX);
    }
    return true;
}

static bool is_provider_own_param(const char *key)
{
    return strcmp(key, "provider") == 0 || strcmp(key, "model") == 0 || strcmp(key, "input") == 0;
}

/*
 * The model input: every task param under its own name (media refs turned into URLs the
 * model can fetch), then `input` on top. A null in `input` removes a mapped param, for
 * models that reject one of the task type's defaults.
 */
static int build_input(gp_ctx_t *ctx, json_t **out)
{
    const json_t *params = gp_ctx_params(ctx);
    json_t *input = json_object();
    if (input == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the model input");
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)params, key, value) {
        if (is_provider_own_param(key))
            continue;
        if (strcmp(key, "image") == 0 && json_is_string(value)) {
            char *url = NULL;
            int rc = gp_ctx_input_url(ctx, key, &url);
            if (rc != 0) {
                json_decref(input);
                return rc;
            }
            json_object_set_new(input, key, json_string(url));
            free(url);
            continue;
        }
        json_object_set(input, key, value);
    }
    json_t *extra = json_object_get(params, "input");
    if (json_is_object(extra)) {
        json_object_foreach (extra, key, value) {
            if (json_is_null(value))
                json_object_del(input, key);
            else
                json_object_set(input, key, value);
        }
    }
    *out = input;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * API calls
 * ------------------------------------------------------------------------------------- */

static bool never_canceled(void *arg)
{
    (void)arg;
    return false;
}

typedef struct rp_call {
    gp_ctx_t *ctx;
    const rp_conf_t *conf;
    bool detached;
} rp_call_t;

static int rp_headers(void *arg, const gp_api_send_t *send, gp_api_headers_t *h, const char **why)
{
    const rp_call_t *c = arg;
    *why = "could not build the request headers";
    if (gp_api_header_add(h, "%s", c->conf->auth) != 0)
        return -1;
    /* Creates carry Cancel-After = the attempt's remaining time, so Replicate stops the
     * prediction by itself even if this process dies before it can cancel (minimum 5 s). */
    int64_t deadline = gp_ctx_deadline_ms(c->ctx);
    size_t url_len = strlen(send->url);
    bool create = !c->detached && !strcmp(send->method, "POST") &&
                  !(url_len >= 7 && !strcmp(send->url + url_len - 7, "/cancel"));
    if (create && deadline > 0) {
        int64_t left_s = (deadline - gp_http_now_ms()) / 1000;
        return gp_api_header_add(h, "Cancel-After: %llds", (long long)(left_s < 5 ? 5 : left_s));
    }
    return 0;
}

/* Replicate answers errors as problem+json: detail, else title, else the raw text. */
static const char *const rp_message[] = {"detail", "title", NULL};

static const gp_api_profile_t rp_api = {
    .name = "Replicate",
    .headers = rp_headers,
    .max_response_bytes = RP_MAX_API_RESPONSE,
    .message_paths = rp_message,
    .auth_403 = true,
    .throttle_429 = true,
    .not_found_404 = true,
    .invalid_input_422 = true,
};

/*
 * One call to the API. `detached` is for the cancel request sent after the task itself was
 * canceled or timed out: it must not be aborted by that same cancel flag or hard deadline,
 * so both are set here (gp_ctx_http keeps what the caller set) and kept short.
 */
static void api_call(gp_ctx_t *ctx, const rp_conf_t *conf, const char *method, const char *url,
                     const char *body, bool detached, gp_api_reply_t *reply)
{
    gp_http_request_t req = {
        .method = method,
        .url = url,
        .body = body != NULL ? body : "",
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = conf->request_timeout_ms,
    };
    if (detached) {
        req.timeout_ms = RP_CANCEL_TIMEOUT_MS;
        req.connect_timeout_ms = RP_CANCEL_TIMEOUT_MS;
        req.deadline_ms = gp_http_now_ms() + RP_CANCEL_BUDGET_MS;
        req.max_attempts = 2;
        req.cancel = never_canceled;
    }
    rp_call_t call = {ctx, conf, detached};
    (void)gp_api_call(ctx, &rp_api, &call, &req, NULL, reply);
}

/* The prediction object of a good reply, handed over; NULL otherwise. */
static json_t *take_prediction(gp_api_reply_t *reply)
{
    json_t *prediction = NULL;
    if (gp_api_ok(&rp_api, reply)) {
        prediction = reply->root;
        reply->root = reply->data = NULL;
    }
    gp_api_reply_free(reply);
    return prediction;
}

/* ---------------------------------------------------------------------------------------
 * The prediction object
 * ------------------------------------------------------------------------------------- */

static rp_state_t parse_state(const json_t *prediction)
{
    const char *s = json_string_value(json_object_get(prediction, "status"));
    if (s == NULL)
        return RP_UNKNOWN;
    static const struct {
        const char *name;
        rp_state_t state;
    } names[] = {
        {"starting", RP_STARTING}, {"processing", RP_PROCESSING}, {"succeeded", RP_SUCCEEDED},
        {"failed", RP_FAILED},     {"canceled", RP_CANCELED},     {"aborted", RP_ABORTED},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].state;
    return RP_UNKNOWN;
}

/*
 * Where to poll or cancel: the URL the prediction names when it is on our API origin (it may
 * carry a path we do not know), else the documented path under base-url.
 */
static bool prediction_url(const rp_conf_t *conf, const json_t *prediction, const char *id,
                           const char *key, char *out, size_t cap)
{
    const char *given =
        json_string_value(json_object_get(json_object_get(prediction, "urls"), key));
    if (given != NULL && same_origin(conf, given) && strlen(given) < cap) {
        bool clean = true;
        for (const char *p = given; clean && *p; p++)
            clean = *p > 0x20 && *p < 0x7f;
        if (clean) {
            memcpy(out, given, strlen(given) + 1);
            return true;
        }
    }
    if (strcmp(key, "cancel") == 0)
        return format_url(out, cap, "%s/predictions/%s/cancel", conf->base, id);
    return format_url(out, cap, "%s/predictions/%s", conf->base, id);
}

/*
 * One tqdm line, matched like the official clients' /^\s*(\d+)%\s*\|.+?\|\s*(\d+)\/(\d+)/.
 * The lazy `.+?` means: the first closing '|' (at least one character after the opening one)
 * that is followed by "current/total". Returns the percent or -1.
 */
static int tqdm_line_percent(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    size_t digits_start = i;
    long percent = 0;
    while (i < n && isdigit((unsigned char)s[i])) {
        if (percent < 1000)
            percent = percent * 10 + (s[i] - '0');
        i++;
    }
    if (i == digits_start || i >= n || s[i] != '%')
        return -1;
    i++;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    if (i >= n || s[i] != '|')
        return -1;
    for (size_t bar = i + 2; bar < n; bar++) {
        if (s[bar] != '|')
            continue;
        size_t j = bar + 1;
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        size_t a = j;
        while (j < n && isdigit((unsigned char)s[j]))
            j++;
        if (j == a || j >= n || s[j] != '/')
            continue;
        j++;
        if (j < n && isdigit((unsigned char)s[j]))
            return percent > 100 ? 100 : (int)percent;
    }
    return -1;
}

/*
 * The last progress bar in the logs. tqdm redraws with '\r', so both '\r' and '\n' end a
 * line here (the clients split on '\n' only, which sees the same last bar in Replicate's
 * logs). Only the tail is searched: logs grow for the whole prediction and are re-sent on
 * every poll.
 */
static int logs_percent(const char *logs, size_t len)
{
    size_t floor = len > RP_LOG_SCAN_BYTES ? len - RP_LOG_SCAN_BYTES : 0;
    size_t end = len;
    while (end > floor) {
        size_t start = end;
        while (start > floor && logs[start - 1] != '\n' && logs[start - 1] != '\r')
            start--;
        if (start == floor && floor > 0)
            break; /* a line cut by the scan window could fake a match */
        int percent = tqdm_line_percent(logs + start, end - start);
        if (percent >= 0)
            return percent;
        if (start == floor)
            break;
        end = start - 1;
    }
    return -1;
}

static int report_progress(gp_ctx_t *ctx, rp_state_t state, const json_t *prediction,
                           int *last_percent)
{
    int percent = PROGRESS_STARTING;
    const char *step = "waiting for a Replicate worker";
    if (state == RP_PROCESSING) {
        step = "running on Replicate";
        percent = PROGRESS_RUN_START;
        json_t *logs = json_object_get(prediction, "logs");
        if (json_is_string(logs)) {
            int bar = logs_percent(json_string_value(logs), json_string_length(logs));
            if (bar >= 0)
                percent = PROGRESS_RUN_START + (PROGRESS_RUN_END - PROGRESS_RUN_START) * bar / 100;
        }
    }
    /* A model may run several bars in a row; the task's progress must not go backwards. */
    if (percent < *last_percent)
        percent = *last_percent;
    *last_percent = percent;
    return gp_ctx_progress(ctx, percent, step);
}

/* ---------------------------------------------------------------------------------------
 * Outputs
 * ------------------------------------------------------------------------------------- */

static bool is_file_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0 ||
           strncmp(s, "data:", 5) == 0;
}

/* "output-<i>.<ext>", the extension taken from the URL's last path segment when sane. */
static void name_from_url(const char *url, size_t index, char *out, size_t cap)
{
    const char *path = strstr(url, "://");
    path = path != NULL ? strchr(path + 3, '/') : NULL;
    size_t path_len = path != NULL ? strcspn(path, "?#") : 0;
    const char *ext = NULL;
    size_t ext_len = 0;
    for (size_t i = path_len; i > 0; i--) {
        char c = path[i - 1];
        if (c == '/')
            break;
        if (c == '.') {
            ext = path + i;
            ext_len = path_len - i;
            break;
        }
    }
    bool ext_ok = ext != NULL && ext_len >= 1 && ext_len <= 10;
    for (size_t i = 0; ext_ok && i < ext_len; i++)
        ext_ok = isalnum((unsigned char)ext[i]);
    if (ext_ok)
        (void)snprintf(out, cap, "output-%zu.%.*s", index, (int)ext_len, ext);
    else
        (void)snprintf(out, cap, "output-%zu", index);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* data:[<type>][;param]*[;base64],<payload>, the way some models return small files. */
static int store_data_url(gp_ctx_t *ctx, const char *url, size_t index)
{
    const char *meta = url + 5;
    const char *comma = strchr(meta, ',');
    if (comma == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "Replicate output %zu is a data: URL without ','", index);
    size_t meta_len = (size_t)(comma - meta);
    bool base64 = meta_len >= 7 && strncasecmp(comma - 7, ";base64", 7) == 0;
    size_t type_len = strcspn(meta, ";,");
    char type[100] = "application/octet-stream";
    bool type_ok = type_len > 0 && type_len < sizeof type;
    for (size_t i = 0; type_ok && i < type_len; i++) {
        unsigned char c = (unsigned char)meta[i];
        type_ok = isalnum(c) || c == '/' || c == '.' || c == '+' || c == '-';
    }
    if (type_ok) {
        for (size_t i = 0; i < type_len; i++)
            type[i] = (char)tolower((unsigned char)meta[i]);
        type[type_len] = '\0';
    }

    const char *payload = comma + 1;
    size_t payload_len = strlen(payload);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (base64) {
        bytes = gp_base64_decode(payload, payload_len, &len);
        if (bytes == NULL)
            return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                               "Replicate output %zu is a data: URL with invalid base64", index);
    } else {
        bytes = malloc(payload_len + 1);
        if (bytes == NULL)
            return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not decode output %zu",
                               index);
        for (size_t i = 0; i < payload_len; i++) {
            int hi, lo;
            if (payload[i] == '%' && i + 2 < payload_len && (hi = hex_value(payload[i + 1])) >= 0 &&
                (lo = hex_value(payload[i + 2])) >= 0) {
                bytes[len++] = (unsigned char)(hi * 16 + lo);
                i += 2;
            } else {
                bytes[len++] = (unsigned char)payload[i];
            }
        }
    }
    char name[64];
    (void)snprintf(name, sizeof name, "output-%zu.%s", index,
                   gp_media_ext_of_type(type) != NULL ? gp_media_ext_of_type(type) : "bin");
    int rc = gp_ctx_store_bytes(ctx, name, bytes, len, type, NULL);
    free(bytes);
    return rc;
}

static int store_one(gp_ctx_t *ctx, const rp_conf_t *conf, const char *url, size_t index)
{
    if (strncmp(url, "data:", 5) == 0)
        return store_data_url(ctx, url, index);
    if (strlen(url) >= RP_MAX_URL)
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                           "Replicate output %zu has a URL longer than %d bytes", index,
                           RP_MAX_URL);
    char name[64];
    name_from_url(url, index, name, sizeof name);
    const char *with_auth[] = {conf->auth, NULL};
    /* Delivery hosts (replicate.delivery) need no token, and must not get one. */
    return gp_ctx_store_url(ctx, name, url, NULL, same_origin(conf, url) ? with_auth : NULL, NULL);
}

/*
 * Collect the file URLs of an output: a URL, an array of values, or an object of named
 * values (one level; deeper structures are kept as JSON only). Returns the count, or -1
 * when there are more than `cap`.
 */
static int collect_files(json_t *output, const char **urls, int cap, bool *has_other)
{
    int count = 0;
    *has_other = false;
    if (json_is_string(output)) {
        if (!is_file_url(json_string_value(output))) {
            *has_other = true;
            return 0;
        }
        urls[0] = json_string_value(output);
        return 1;
    }
    json_t *items = NULL;
    if (json_is_array(output)) {
        items = output;
    } else if (json_is_object(output)) {
        items = json_array();
        const char *key;
        json_t *value;
        json_object_foreach (output, key, value)
            json_array_append(items, value);
    } else {
        *has_other = !json_is_null(output);
        return 0;
    }
    size_t i;
    json_t *item;
    json_array_foreach (items, i, item) {
        if (json_is_string(item) && is_file_url(json_string_value(item))) {
            if (count == cap) {
                count = -1;
                break;
            }
            urls[count++] = json_string_value(item); /* borrowed from output, not items */
        } else {
            *has_other = true;
        }
    }
    if (items != output)
        json_decref(items);
    return count;
}

static int store_outputs(gp_ctx_t *ctx, const rp_conf_t *conf, json_t *prediction, json_t *result)
{
    json_t *output = json_object_get(prediction, "output");
    if (output == NULL || json_is_null(output))
        return gp_ctx_fail(ctx, false, GP_TE_EMPTY_OUTPUT,
                           "the Replicate prediction succeeded without output%s",
                           json_is_true(json_object_get(prediction, "data_removed"))
                               ? " (Replicate already removed its data)"
                               : "");
    const char *urls[RP_MAX_OUTPUT_FILES];
    bool has_other = false;
    int count = collect_files(output, urls, RP_MAX_OUTPUT_FILES, &has_other);
    if (count < 0)
        return gp_ctx_fail(ctx, false, GP_TE_TOO_MANY_OUTPUTS,
                           "the Replicate prediction returned more than %d files",
                           RP_MAX_OUTPUT_FILES);
    for (int i = 0; i < count; i++) {
        int rc = gp_ctx_progress(
            ctx, PROGRESS_RUN_END + (PROGRESS_OUTPUTS_END - PROGRESS_RUN_END) * i / count,
            "copying outputs");
        if (rc == 0)
            rc = store_one(ctx, conf, urls[i], (size_t)i);
        if (rc != 0)
            return rc;
    }
    /* Text, numbers and structures are the output itself; file URLs would expire. */
    if (has_other || count == 0)
        json_object_set(result, "output", output);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

/* Best effort: the prediction may already be over, and we are giving up on it anyway. */
static void cancel_prediction(gp_ctx_t *ctx, const rp_conf_t *conf, const char *cancel_url,
                              const char *id)
{
    gp_api_reply_t reply;
    api_call(ctx, conf, "POST", cancel_url, NULL, true, &reply);
    if (reply.rc != GP_HTTP_OK || reply.status >= 300)
        gp_ctx_log(ctx, GP_LOG_WARN, "canceling Replicate prediction %s failed: %s (HTTP %ld) %s",
                   id, gp_http_strerror(reply.rc), reply.status, reply.message);
    else
        gp_ctx_log(ctx, GP_LOG_INFO, "canceled Replicate prediction %s", id);
    gp_api_reply_free(&reply);
}

static int create_prediction(gp_ctx_t *ctx, const rp_conf_t *conf, const rp_model_t *model,
                             json_t *input, json_t **prediction)
{
    char url[RP_MAX_URL];
    json_t *body;
    bool url_ok;
    if (model->version[0] != '\0') {
        url_ok = format_url(url, sizeof url, "%s/predictions", conf->base);
        body = json_pack("{s:s, s:O}", "version", model->version, "input", input);
    } else {
        url_ok = format_url(url, sizeof url, "%s/models/%s/%s/predictions", conf->base,
                            model->owner, model->name);
        body = json_pack("{s:O}", "input", input);
    }
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!url_ok || text == NULL) {
        free(text);
        return gp_ctx_fail(ctx, !url_ok ? false : true,
                           !url_ok ? GP_TE_PROVIDER_NOT_CONFIGURED : GP_TE_OUT_OF_MEMORY,
                           "could not build the Replicate create request");
    }
    gp_api_reply_t reply;
    api_call(ctx, conf, "POST", url, text, false, &reply);
    free(text);
    if (!gp_api_ok(&rp_api, &reply)) {
        int rc = gp_api_fail(ctx, &rp_api, &reply, "prediction create");
        gp_api_reply_free(&reply);
        return rc;
    }
    *prediction = take_prediction(&reply);
    return 0;
}

/* Why a prediction that ended without output failed, as Replicate put it. */
static void prediction_error(const json_t *prediction, char *out, size_t cap)
{
    json_t *error = json_object_get(prediction, "error");
    if (json_is_string(error) && json_string_length(error) > 0) {
        copy_printable(out, cap, json_string_value(error), json_string_length(error));
        return;
    }
    if (error != NULL && !json_is_null(error)) {
        char *text = json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text != NULL) {
            copy_printable(out, cap, text, strlen(text));
            free(text);
            return;
        }
    }
    (void)snprintf(out, cap, "no error message given");
}

/* Poll until the prediction ends; on any early exit the prediction is canceled remotely. */
static int wait_prediction(gp_ctx_t *ctx, const rp_conf_t *conf, const char *id,
                           json_t **prediction)
{
    char get_url[RP_MAX_URL], cancel_url[RP_MAX_URL];
    if (!prediction_url(conf, *prediction, id, "get", get_url, sizeof get_url) ||
        !prediction_url(conf, *prediction, id, "cancel", cancel_url, sizeof cancel_url))
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_NOT_CONFIGURED,
                           "replicate base-url is too long");

    int max_ms = conf->poll_ms * RP_POLL_BACKOFF;
    if (max_ms > RP_POLL_CEILING_MS)
        max_ms = conf->poll_ms > RP_POLL_CEILING_MS ? conf->poll_ms : RP_POLL_CEILING_MS;
    gp_poller_t poller = {.first_ms = conf->poll_ms, .max_ms = max_ms, .deadline_ms = 0};
    int last_percent = PROGRESS_CREATED;
    int failures = 0;
    int rc = 0;
    for (;;) {
        rp_state_t state = parse_state(*prediction);
        if (state == RP_SUCCEEDED || state == RP_FAILED || state == RP_CANCELED ||
            state == RP_ABORTED)
            return 0;
        if (state == RP_UNKNOWN) {
            rc = gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                             "Replicate prediction %s has an unknown status", id);
            break;
        }
        rc = report_progress(ctx, state, *prediction, &last_percent);
        if (rc != 0)
            break;
        rc = gp_api_poll_wait(ctx, &poller, "Replicate", id);
        if (rc != 0)
            break;
        gp_api_reply_t reply;
        api_call(ctx, conf, "GET", get_url, NULL, false, &reply);
        if (gp_api_ok(&rp_api, &reply)) {
            json_t *got_prediction = take_prediction(&reply);
            const char *got = json_string_value(json_object_get(got_prediction, "id"));
            if (got != NULL && strcmp(got, id) != 0) {
                json_decref(got_prediction);
                rc = gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                                 "Replicate answered a poll of prediction %s with another "
                                 "prediction",
                                 id);
                break;
            }
            json_decref(*prediction);
            *prediction = got_prediction;
            failures = 0;
            continue;
        }
        /* The client already retried this poll; a few more rounds ride out a longer blip. */
        if (gp_api_retryable(&rp_api, &reply) && ++failures < RP_MAX_POLL_FAILURES) {
            gp_ctx_log(ctx, GP_LOG_WARN, "polling Replicate prediction %s: %s (HTTP %ld) %s", id,
                       gp_http_strerror(reply.rc), reply.status, reply.message);
            gp_api_reply_free(&reply);
            continue;
        }
        rc = gp_api_fail(ctx, &rp_api, &reply, "prediction poll");
        gp_api_reply_free(&reply);
        break;
    }
    cancel_prediction(ctx, conf, cancel_url, id);
    return rc;
}

static int replicate_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);

    rp_conf_t conf;
    memset(&conf, 0, sizeof conf);
    int rc = load_conf(ctx, &conf);
    if (rc != 0) {
        explicit_bzero(conf.auth, sizeof conf.auth);
        return rc;
    }

    const char *model_ref = gp_ctx_param_str(ctx, "model", "");
    rp_model_t model;
    const char *why = "is empty";
    if (model_ref[0] == '\0' || !parse_model(model_ref, &model, &why)) {
        explicit_bzero(conf.auth, sizeof conf.auth);
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                           "model \"%.200s\" %s; use \"owner/name\", \"owner/name:<version>\" "
                           "or a 64-hex version id",
                           model_ref, why);
    }

    json_t *input = NULL;
    json_t *prediction = NULL;
    json_t *result = NULL;
    rc = build_input(ctx, &input);
    if (rc == 0)
        rc = gp_ctx_progress(ctx, PROGRESS_CREATED, "creating Replicate prediction");
    if (rc == 0)
        rc = create_prediction(ctx, &conf, &model, input, &prediction);
    if (rc != 0)
        goto done;

    const char *id = json_string_value(json_object_get(prediction, "id"));
    if (id == NULL || !prediction_id_ok(id)) {
        rc = gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE,
                         "Replicate created a prediction without a usable id");
        goto done;
    }
    char pred_id[RP_MAX_ID + 1];
    (void)snprintf(pred_id, sizeof pred_id, "%s", id);
    gp_ctx_log(ctx, GP_LOG_INFO, "Replicate prediction %s created for %s", pred_id, model_ref);
    /* Set now so a failed or canceled task still says which prediction it was. */
    gp_ctx_set_result(ctx, json_pack("{s:s}", "provider_id", pred_id));

    rc = wait_prediction(ctx, &conf, pred_id, &prediction);
    if (rc != 0)
        goto done;

    char error[RP_MAX_DETAIL];
    switch (parse_state(prediction)) {
    case RP_SUCCEEDED: break;
    case RP_FAILED:
        prediction_error(prediction, error, sizeof error);
        rc = gp_ctx_fail(ctx, false, GP_TE_PROVIDER_FAILED, "Replicate prediction %s failed: %s",
                         pred_id, error);
        goto done;
    case RP_ABORTED:
        rc = gp_ctx_fail(ctx, true, GP_TE_PROVIDER_ABORTED,
                         "Replicate aborted prediction %s before it started", pred_id);
        goto done;
    case RP_CANCELED:
    default:
        rc = gp_ctx_fail(ctx, false, GP_TE_PROVIDER_CANCELED,
                         "Replicate prediction %s was canceled on Replicate's side", pred_id);
        goto done;
    }

    result = json_object();
    if (result == NULL) {
        rc = gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the result");
        goto done;
    }
    rc = store_outputs(ctx, &conf, prediction, result);
    if (rc != 0)
        goto done;
    json_t *metrics = json_object_get(prediction, "metrics");
    json_t *predict_time = json_object_get(metrics, "predict_time");
    if (json_is_number(predict_time))
        json_object_set(result, "predict_time", predict_time);
    gp_ctx_set_result(ctx, result);
    result = NULL;
    rc = gp_ctx_progress(ctx, 100, "done");

done:
    json_decref(result);
    json_decref(prediction);
    json_decref(input);
    explicit_bzero(conf.auth, sizeof conf.auth);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const gp_param_spec_t replicate_params[] = {
    {.name = "model",
     .type = GP_PARAM_STRING,
     .required = true,
     .min_length = 1,
     .max_length = 300,
     .example_json = "\"black-forest-labs/flux-schnell\"",
     .description = "The Replicate model: \"owner/name\" (its latest version), "
                    "\"owner/name:<64-hex version>\" or a bare 64-hex version id."},
    GP_P_OBJECT("input", false,
                "Extra model inputs, merged over the task's params (which are passed under "
                "their own names); a null value removes a param the model does not accept."),
    GP_P_END,
};

static const gp_provider_setting_t replicate_settings[] = {
    GP_S_SECRET("api-token", "Replicate API token, sent as `Authorization: Bearer`."),
    GP_S_URL("base-url", RP_DEFAULT_BASE_URL,
             "Replicate API base URL, including /v1. The token is sent only to this origin."),
    GP_S_MS("poll-interval-ms", "1000", RP_MIN_POLL_MS, RP_MAX_POLL_MS,
            "First wait between two status checks of a prediction; later waits grow up to 4x."),
    GP_S_MS("request-timeout-ms", "30000", RP_MIN_REQUEST_MS, RP_MAX_REQUEST_MS,
            "Time allowed for one API request (create, status check, cancel) before it is "
            "retried."),
    GP_S_INT("concurrency", "0", 0, 1000000,
             "Replicate tasks running at once across all workers (0: any)."),
    GP_S_INT("rate-per-minute", "600", 0, 1000000,
             "Requests per minute to Replicate across all workers (its documented create limit)."),
    GP_S_END,
};

static const char *const replicate_task_types[] = {
    "text-to-image", "image-to-image", "image-to-video", "text-to-video", "text-to-audio", NULL,
};

const gp_provider_t gp_provider_replicate = {
    .name = "replicate",
    .description = "Runs any model hosted on Replicate. The task's params go to the model under "
                   "their own names, `input` adds or overrides model inputs; file outputs are "
                   "copied into GenPulse storage, other outputs land in result.output.",
    .task_types = replicate_task_types,
    .params = replicate_params,
    .run = replicate_run,
    .settings = replicate_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 10, NULL, NULL},
};

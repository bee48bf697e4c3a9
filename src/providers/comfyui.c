/*
 * comfyui.c — the "comfyui" provider: runs a client-supplied ComfyUI workflow (API format) on
 * a ComfyUI server and stores the files it saves.
 *
 * Protocol (Comfy-Org/ComfyUI server.py / execution.py; see shared/research/genai_apis.md §3):
 * the WebSocket /ws?clientId=<id> is opened *before* POST /prompt, because ComfyUI sends a
 * prompt's execution events only to the socket whose id equals the prompt's client_id, and
 * only while that socket is connected. Each run uses its own random client_id, so two tasks
 * never see each other's events. The prompt_id is ours too, derived from task id and attempt,
 * so an HTTP-level retry of the submit names the same prompt instead of queueing a twin.
 *
 * The socket only makes things faster and gives progress; /history/{prompt_id} is the source
 * of truth. Sockets to ComfyUI are known to go silent or die on long runs, so when the socket
 * drops the run continues by polling /history, and while it is silent for ws-silence-ms the
 * history is checked every few seconds. Even after execution_success the outputs are read
 * from /history (ComfyUI records the history only after sending that event).
 *
 * Cancel: POST /queue {"delete":[id]} for a pending prompt and POST /interrupt {"prompt_id"}
 * for a running one (the per-prompt form; a bare /interrupt would stop whatever runs, which
 * may be another client's job). Both are sent without the task's cancel flag, which is
 * already set. Finished prompts are removed from the server's history afterwards, because
 * ComfyUI keeps up to 10 000 entries in memory and slows down as they grow.
 */
#include "genpulse/handler.h"
#include "genpulse/http.h"

#include "core/crypto.h"
#include "core/util.h"
#include "infra/http/websocket.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMFY_DEFAULT_BASE_URL "http://127.0.0.1:8188"
#define COMFY_MAX_NODES 10000
#define COMFY_MAX_OUTPUT_FILES 100
#define COMFY_MAX_UPLOAD_BYTES (100u << 20)
#define COMFY_MAX_HISTORY_BYTES (32u << 20)
#define COMFY_RECV_SLICE_MS 250       /* how quickly a cancel is noticed while listening */
#define COMFY_QUIET_POLL_MS 2000      /* /history checks while the socket is silent */
#define COMFY_CONFIRM_WAIT_MS 30000   /* finished per the socket, not yet in /history */
#define COMFY_CONTROL_TIMEOUT_MS 3000 /* cancel and cleanup requests */
#define COMFY_INTERRUPT_WAIT_MS 1000  /* for the history entry of an interrupted prompt */
#define COMFY_MAX_TRANSIENT_ERRORS 10 /* consecutive failed /history reads before giving up */
#define COMFY_LINK_DEPTH 8            /* conditioning nodes followed to find a text encoder */

/* Progress bands: submit 0..5, execution 5..90, downloads 90..99. */
#define PROGRESS_SUBMITTED 3
#define PROGRESS_RUN_START 5
#define PROGRESS_RUN_END 90
#define PROGRESS_STORE 92

/* ---------------------------------------------------------------------------------------
 * Run state
 * ------------------------------------------------------------------------------------- */

typedef struct comfy {
    gp_ctx_t *ctx;
    char base[512]; /* base URL without trailing slash */
    char *auth;     /* "Authorization: Bearer ..." or NULL; never logged */
    const char *auth_headers[2];
    int silence_ms;

    json_t *workflow; /* our patched copy */
    json_t *patched;  /* ["node.input", ...] applied automatically or from `patch` */
    const char *output_node;

    char client_id[37];
    char prompt_id[128];
    bool submitted;
    bool ws_connected;

    /* From the socket. */
    bool started, finished;
    int percent;
    char step[160];
    char ws_error[1024]; /* execution_error seen on the socket, used if /history lacks it */
    bool ws_interrupted;
} comfy_t;

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static char *url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = gp_xmalloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15u];
        }
    }
    out[o] = '\0';
    return out;
}

static const char *node_class(const json_t *wf, const char *node_id)
{
    const char *cls =
        json_string_value(json_object_get(json_object_get(wf, node_id), "class_type"));
    return cls != NULL ? cls : "?";
}

static json_t *node_inputs(json_t *wf, const char *node_id)
{
    return json_object_get(json_object_get(wf, node_id), "inputs");
}

static bool is_link(const json_t *v)
{
    return json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
           json_is_integer(json_array_get(v, 1));
}

static void set_input(comfy_t *c, const char *node_id, const char *name, json_t *value)
{
    json_t *inputs = node_inputs(c->workflow, node_id);
    if (inputs == NULL || value == NULL) {
        json_decref(value);
        return;
    }
    json_object_set_new(inputs, name, value);
    json_array_append_new(c->patched, json_sprintf("%s.%s", node_id, name));
}

/*
 * A prompt_id that is the same for every HTTP try of one attempt and differs between
 * attempts: a UUIDv8 (RFC 9562 "custom") over SHA-256 of task id and attempt.
 */
static void derive_prompt_id(const char *task_id, int attempt, char out[37])
{
    char *seed = gp_xasprintf("genpulse/comfyui/%s/%d", task_id, attempt);
    uint8_t d[GP_SHA256_LEN];
    gp_sha256(seed, strlen(seed), d);
    free(seed);
    d[6] = (uint8_t)((d[6] & 0x0Fu) | 0x80u);
    d[8] = (uint8_t)((d[8] & 0x3Fu) | 0x80u);
    (void)snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                   d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12],
                   d[13], d[14], d[15]);
}

/* ---------------------------------------------------------------------------------------
 * HTTP
 * ------------------------------------------------------------------------------------- */

/* One request through the task's client (cancel, deadline, rate limit filled in). */
static int comfy_request(comfy_t *c, const char *method, const char *path, const char *body,
                         size_t body_len, const char *content_type, bool idempotent,
                         gp_http_response_t *resp)
{
    char *url = gp_xasprintf("%s%s", c->base, path);
    char *ct = content_type != NULL ? gp_xasprintf("Content-Type: %s", content_type) : NULL;
    const char *headers[3];
    size_t h = 0;
    if (c->auth != NULL)
        headers[h++] = c->auth;
    if (ct != NULL)
        headers[h++] = ct;
    headers[h] = NULL;
    gp_http_request_t req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body_len,
        .max_response_bytes = COMFY_MAX_HISTORY_BYTES,
        .retry_unsafe = idempotent,
    };
    memset(resp, 0, sizeof *resp);
    int rc = gp_ctx_http(c->ctx, &req, resp);
    free(url);
    free(ct);
    return rc;
}

static int comfy_post_json(comfy_t *c, const char *path, json_t *body, bool idempotent,
                           gp_http_response_t *resp)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) {
        memset(resp, 0, sizeof *resp);
        return GP_HTTP_E_INVALID;
    }
    int rc =
        comfy_request(c, "POST", path, text, strlen(text), "application/json", idempotent, resp);
    free(text);
    return rc;
}

/*
 * A request that must go out even though the task was canceled (its cancel flag is set and
 * its deadline may have passed): plain gp_http_do with no cancel hook and a short timeout.
 */
static void comfy_control(comfy_t *c, const char *path, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return;
    char *url = gp_xasprintf("%s%s", c->base, path);
    const char *headers[3] = {"Content-Type: application/json", c->auth, NULL};
    gp_http_request_t req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = text,
        .body_len = strlen(text),
        .connect_timeout_ms = COMFY_CONTROL_TIMEOUT_MS,
        .timeout_ms = COMFY_CONTROL_TIMEOUT_MS,
        .max_attempts = 1,
        .cancel = NULL,
        .log_id = gp_ctx_task_id(c->ctx),
    };
    gp_http_response_t resp;
    memset(&resp, 0, sizeof resp);
    int rc = gp_http_do(&req, &resp);
    if (rc != GP_HTTP_OK || resp.status != 200)
        gp_ctx_log(c->ctx, GP_LOG_WARN, "comfyui: POST %s failed (%s, HTTP %ld)", path,
                   rc != GP_HTTP_OK ? gp_http_strerror(rc) : "ok", resp.status);
    gp_http_response_free(&resp);
    free(url);
    free(text);
}

static json_t *parse_json_body(const gp_http_response_t *resp)
{
    if (resp->body == NULL || resp->body_len == 0)
        return NULL;
    return json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, NULL);
}

/*
 * After an interrupt ComfyUI records the prompt in its history a moment later; wait for that
 * briefly (without the task's cancel flag) so the entry can be deleted instead of left behind.
 */
static void await_history_entry(comfy_t *c)
{
    char *pid = url_encode(c->prompt_id);
    char *url = gp_xasprintf("%s/history/%s", c->base, pid);
    free(pid);
    const char *headers[2] = {c->auth, NULL};
    int64_t deadline = gp_http_now_ms() + COMFY_INTERRUPT_WAIT_MS;
    while (gp_http_now_ms() < deadline) {
        gp_http_request_t req = {
            .url = url,
            .headers = headers,
            .connect_timeout_ms = COMFY_CONTROL_TIMEOUT_MS,
            .timeout_ms = COMFY_CONTROL_TIMEOUT_MS,
            .max_attempts = 1,
            .log_id = gp_ctx_task_id(c->ctx),
        };
        gp_http_response_t resp;
        memset(&resp, 0, sizeof resp);
        int rc = gp_http_do(&req, &resp);
        json_t *all = rc == GP_HTTP_OK && resp.status == 200 ? parse_json_body(&resp) : NULL;
        bool present = json_object_get(all, c->prompt_id) != NULL;
        json_decref(all);
        gp_http_response_free(&resp);
        if (present || rc != GP_HTTP_OK)
            break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        (void)nanosleep(&pause, NULL);
    }
    free(url);
}

/* Turns a transport error or unexpected status into a run() result. */
static int http_failure(comfy_t *c, const char *what, int rc, const gp_http_response_t *resp)
{
    if (rc == GP_HTTP_E_CANCELED || gp_ctx_is_canceled(c->ctx))
        return GP_CTX_CANCELED;
    if (rc != GP_HTTP_OK)
        return gp_ctx_fail(c->ctx, rc != GP_HTTP_E_INVALID, GP_TE_PROVIDER_UNAVAILABLE,
                           "ComfyUI %s failed: %s%s%s", what, gp_http_strerror(rc),
                           resp->error[0] != '\0' ? ": " : "", resp->error);
    if (resp->status == 401 || resp->status == 403)
        return gp_ctx_fail(c->ctx, false, GP_TE_PROVIDER_AUTH,
                           "ComfyUI refused %s with HTTP %ld; check the comfyui api-key setting "
                           "and the server's access rules",
                           what, resp->status);
    return gp_ctx_fail(c->ctx, gp_http_status_retryable(resp->status), GP_TE_PROVIDER_ERROR,
                       "ComfyUI %s answered HTTP %ld", what, resp->status);
}

/* ---------------------------------------------------------------------------------------
 * Workflow validation and patching
 * ------------------------------------------------------------------------------------- */

static int check_workflow(comfy_t *c, const json_t *wf)
{
    gp_ctx_t *ctx = c->ctx;
    if (!json_is_object(wf))
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                           "workflow must be a JSON object in ComfyUI's API format: "
                           "{\"<node id>\": {\"class_type\": ..., \"inputs\": {...}}}");
    if (json_is_array(json_object_get(wf, "nodes")) || json_object_get(wf, "links") != NULL ||
        json_object_get(wf, "last_node_id") != NULL)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                           "workflow is in ComfyUI's UI (editor) format, which the /prompt API "
                           "does not accept; in ComfyUI use Workflow > Export (API) (or \"Save "
                           "(API Format)\" with dev mode on) and send that file");
    if (json_is_object(json_object_get(wf, "prompt")) &&
        json_object_get(json_object_get(wf, "prompt"), "class_type") == NULL)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                           "workflow looks like a whole /prompt request body; send only the "
                           "graph (the value of its \"prompt\" key)");
    size_t n = json_object_size(wf);
    if (n == 0)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW, "workflow has no nodes");
    if (n > COMFY_MAX_NODES)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW, "workflow has more than %d nodes",
                           COMFY_MAX_NODES);
    const char *id;
    const json_t *node;
    json_object_foreach ((json_t *)wf, id, node) {
        if (!json_is_object(node))
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                               "workflow node \"%.64s\" is not an object", id);
        const char *cls = json_string_value(json_object_get(node, "class_type"));
        if (cls == NULL || cls[0] == '\0')
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                               "workflow node \"%.64s\" has no class_type string; is this an "
                               "API-format workflow?",
                               id);
        const json_t *inputs = json_object_get(node, "inputs");
        if (!json_is_object(inputs))
            return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                               "workflow node \"%.64s\" (%.64s) has no inputs object", id, cls);
        const char *name;
        const json_t *value;
        json_object_foreach ((json_t *)inputs, name, value) {
            if (!json_is_array(value))
                continue;
            /* In API format every list input is a link [source node id, output index]. */
            if (!is_link(value))
                return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                                   "node \"%.64s\" input \"%.64s\" is a list but not a link "
                                   "[\"<node id>\", <output index>]",
                                   id, name);
            const char *src = json_string_value(json_array_get(value, 0));
            if (json_object_get(wf, src) == NULL)
                return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                                   "node \"%.64s\" input \"%.64s\" links to node \"%.64s\", "
                                   "which is not in the workflow",
                                   id, name, src);
        }
    }
    return 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Sets the prompt text on the text encoder that `link` leads to. Encoders are found through
 * conditioning pass-through nodes (ControlNet and the like), but not through
 * ConditioningZeroOut, whose input is usually the *positive* encoder. `claimed` maps node ids
 * already given a text, so one encoder never gets both prompts.
 */
static bool patch_text(comfy_t *c, const json_t *link, const char *role, const char *text,
                       json_t *claimed, int depth)
{
    if (!is_link(link) || depth > COMFY_LINK_DEPTH)
        return false;
    const char *id = json_string_value(json_array_get(link, 0));
    const char *cls = node_class(c->workflow, id);
    json_t *inputs = node_inputs(c->workflow, id);
    if (inputs == NULL)
        return false;
    if (starts_with(cls, "CLIPTextEncode") || starts_with(cls, "TextEncode")) {
        const char *owner = json_string_value(json_object_get(claimed, id));
        if (owner != NULL && strcmp(owner, role) != 0) {
            gp_ctx_log(c->ctx, GP_LOG_WARN,
                       "comfyui: node %s feeds both positive and negative; not patched twice", id);
            return false;
        }
        static const char *const fields[] = {"text",   "text_g", "text_l", "clip_l",
                                             "clip_g", "t5xxl",  "prompt", NULL};
        bool any = false;
        for (size_t i = 0; fields[i] != NULL; i++) {
            if (json_is_string(json_object_get(inputs, fields[i]))) {
                set_input(c, id, fields[i], json_string(text));
                any = true;
            }
        }
        if (any)
            json_object_set_new(claimed, id, json_string(role));
        return any;
    }
    if (strcmp(cls, "ConditioningZeroOut") == 0)
        return false;
    if (patch_text(c, json_object_get(inputs, role), role, text, claimed, depth + 1))
        return true;
    return patch_text(c, json_object_get(inputs, "conditioning"), role, text, claimed, depth + 1);
}

static bool is_sampler(const char *cls)
{
    return strcmp(cls, "KSampler") == 0 || strcmp(cls, "KSamplerAdvanced") == 0 ||
           strcmp(cls, "SamplerCustom") == 0;
}

/* Applies the task's common params to the nodes that conventionally hold them (§3.3). */
static void patch_common(comfy_t *c)
{
    const json_t *params = gp_ctx_params(c->ctx);
    const char *prompt = json_string_value(json_object_get(params, "prompt"));
    const char *negative = json_string_value(json_object_get(params, "negative_prompt"));
    const json_t *seed = json_object_get(params, "seed");
    const json_t *width = json_object_get(params, "width");
    const json_t *height = json_object_get(params, "height");
    const json_t *strength = json_object_get(params, "strength");
    bool prompt_set = false, negative_set = false;
    json_t *claimed = json_object();

    const char *id;
    json_t *node;
    json_object_foreach (c->workflow, id, node) {
        const char *cls = node_class(c->workflow, id);
        json_t *inputs = node_inputs(c->workflow, id);
        if (is_sampler(cls)) {
            if (prompt != NULL)
                prompt_set |= patch_text(c, json_object_get(inputs, "positive"), "positive", prompt,
                                         claimed, 0);
            if (negative != NULL)
                negative_set |= patch_text(c, json_object_get(inputs, "negative"), "negative",
                                           negative, claimed, 0);
        }
        if (json_is_integer(seed)) {
            /* Only literal seeds: a linked seed belongs to a node the workflow controls. */
            if ((is_sampler(cls) || strcmp(cls, "RandomNoise") == 0) &&
                json_is_integer(json_object_get(inputs, "noise_seed")))
                set_input(c, id, "noise_seed", json_integer(json_integer_value(seed)));
            else if (is_sampler(cls) && json_is_integer(json_object_get(inputs, "seed")))
                set_input(c, id, "seed", json_integer(json_integer_value(seed)));
        }
        if (json_is_number(strength) && strcmp(cls, "KSampler") == 0 &&
            json_is_number(json_object_get(inputs, "denoise")))
            set_input(c, id, "denoise", json_real(json_number_value(strength)));
        if (starts_with(cls, "Empty") && strstr(cls, "Latent") != NULL) {
            if (json_is_integer(width) && json_is_integer(json_object_get(inputs, "width")))
                set_input(c, id, "width", json_integer(json_integer_value(width)));
            if (json_is_integer(height) && json_is_integer(json_object_get(inputs, "height")))
                set_input(c, id, "height", json_integer(json_integer_value(height)));
        }
    }
    json_decref(claimed);
    if (prompt != NULL && !prompt_set)
        gp_ctx_log(c->ctx, GP_LOG_WARN,
                   "comfyui: no text encoder linked to a sampler's positive input; prompt not "
                   "applied (use patch {\"<node>.text\": ...})");
    if (negative != NULL && !negative_set)
        gp_ctx_log(c->ctx, GP_LOG_WARN,
                   "comfyui: no text encoder linked to a sampler's negative input; "
                   "negative_prompt not applied");
}

/* The `patch` param: {"<node id>.<input>": value}, applied after (and over) patch_common. */
static int patch_explicit(comfy_t *c)
{
    const json_t *patch = json_object_get(gp_ctx_params(c->ctx), "patch");
    if (patch == NULL || json_is_null(patch))
        return 0;
    if (!json_is_object(patch))
        return gp_ctx_fail(c->ctx, false, GP_TE_INVALID_PARAMS,
                           "patch must be an object {\"<node id>.<input name>\": value}");
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)patch, key, value) {
        const char *dot = strrchr(key, '.');
        if (dot == NULL || dot == key || dot[1] == '\0')
            return gp_ctx_fail(c->ctx, false, GP_TE_INVALID_PARAMS,
                               "patch key \"%.100s\" is not \"<node id>.<input name>\"", key);
        char *node_id = gp_xasprintf("%.*s", (int)(dot - key), key);
        bool exists = node_inputs(c->workflow, node_id) != NULL;
        if (exists)
            set_input(c, node_id, dot + 1, json_deep_copy(value));
        free(node_id);
        if (!exists)
            return gp_ctx_fail(c->ctx, false, GP_TE_INVALID_PARAMS,
                               "patch key \"%.100s\": the workflow has no node \"%.*s\"", key,
                               (int)(dot - key), key);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Input image upload
 * ------------------------------------------------------------------------------------- */

static const char *image_extension(const char *content_type)
{
    if (content_type == NULL)
        return "png";
    if (strstr(content_type, "jpeg") != NULL)
        return "jpg";
    if (strstr(content_type, "webp") != NULL)
        return "webp";
    if (strstr(content_type, "gif") != NULL)
        return "gif";
    return "png";
}

static unsigned char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1)
                break;
            cap = cap == 0 ? 65536 : cap * 2;
            if (cap > max + 1)
                cap = max + 1;
            unsigned char *p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                (void)fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    bool err = ferror(f) != 0;
    (void)fclose(f);
    if (err || n > max) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Uploads params.image to ComfyUI's input folder and points every LoadImage node at it. */
static int upload_image(comfy_t *c)
{
    gp_ctx_t *ctx = c->ctx;
    const char *id;
    json_t *node;
    size_t loaders = 0;
    json_object_foreach (c->workflow, id, node) {
        if (strcmp(node_class(c->workflow, id), "LoadImage") == 0)
            loaders++;
    }
    if (loaders == 0)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_WORKFLOW,
                           "this task has an input image but the workflow has no LoadImage "
                           "node to receive it");

    char path[4096], content_type[128] = "";
    int rc = gp_ctx_input_file(ctx, "image", path, sizeof path, content_type, sizeof content_type);
    if (rc != 0)
        return rc;
    size_t len = 0;
    unsigned char *data = read_file(path, COMFY_MAX_UPLOAD_BYTES, &len);
    if (data == NULL)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_INPUT,
                           "the input image could not be read or is larger than %u MiB",
                           COMFY_MAX_UPLOAD_BYTES >> 20);

    unsigned char nonce[12];
    gp_random_bytes(nonce, sizeof nonce);
    char boundary[48] = "genpulse-";
    gp_hex(nonce, sizeof nonce, boundary + strlen(boundary));
    /* Task id in the name: uploads of different tasks never overwrite each other. */
    char *filename = gp_xasprintf("genpulse-%s.%s", gp_ctx_task_id(ctx),
                                  image_extension(content_type[0] ? content_type : NULL));
    char *head = gp_xasprintf("--%s\r\nContent-Disposition: form-data; name=\"image\"; "
                              "filename=\"%s\"\r\nContent-Type: %s\r\n\r\n",
                              boundary, filename,
                              content_type[0] ? content_type : "application/octet-stream");
    char *tail = gp_xasprintf("\r\n--%s\r\nContent-Disposition: form-data; name=\"overwrite\""
                              "\r\n\r\ntrue\r\n--%s\r\nContent-Disposition: form-data; "
                              "name=\"type\"\r\n\r\ninput\r\n--%s--\r\n",
                              boundary, boundary, boundary);
    size_t hl = strlen(head), tl = strlen(tail);
    unsigned char *body = malloc(hl + len + tl);
    if (body == NULL) {
        free(data);
        free(filename);
        free(head);
        free(tail);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "out of memory building the upload");
    }
    memcpy(body, head, hl);
    memcpy(body + hl, data, len);
    memcpy(body + hl + len, tail, tl);
    free(data);
    free(head);
    free(tail);
    free(filename);
    char *ct = gp_xasprintf("multipart/form-data; boundary=%s", boundary);

    gp_http_response_t resp;
    /* overwrite=true makes a repeated upload harmless, so retries are safe. */
    rc = comfy_request(c, "POST", "/upload/image", (const char *)body, hl + len + tl, ct, true,
                       &resp);
    free(body);
    free(ct);
    if (rc != GP_HTTP_OK || resp.status != 200) {
        rc = http_failure(c, "image upload", rc, &resp);
        gp_http_response_free(&resp);
        return rc;
    }
    json_t *answer = parse_json_body(&resp);
    gp_http_response_free(&resp);
    const char *name = json_string_value(json_object_get(answer, "name"));
    const char *subfolder = json_string_value(json_object_get(answer, "subfolder"));
    if (name == NULL || name[0] == '\0') {
        json_decref(answer);
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_ERROR,
                           "ComfyUI's /upload/image answer has no file name");
    }
    char *value = subfolder != NULL && subfolder[0] != '\0' ? gp_xasprintf("%s/%s", subfolder, name)
                                                            : gp_xstrdup(name);
    json_decref(answer);
    json_object_foreach (c->workflow, id, node) {
        if (strcmp(node_class(c->workflow, id), "LoadImage") == 0)
            set_input(c, id, "image", json_string(value));
    }
    free(value);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Submit
 * ------------------------------------------------------------------------------------- */

/* "a; b" appender bounded by the buffer. */
static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/* A readable text for POST /prompt's 400 body: {error: {type, message, details}, node_errors}. */
static void describe_prompt_error(const json_t *body, char *out, size_t cap)
{
    out[0] = '\0';
    const json_t *error = json_object_get(body, "error");
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *message = json_is_string(error)
                              ? json_string_value(error)
                              : json_string_value(json_object_get(error, "message"));
    const char *details = json_string_value(json_object_get(error, "details"));
    append(out, cap, "%.300s", message != NULL ? message : "invalid prompt");
    if (details != NULL && details[0] != '\0')
        append(out, cap, ": %.300s", details);
    if (type != NULL && strcmp(type, "prompt_no_outputs") == 0)
        append(out, cap, " (the workflow needs an output node such as SaveImage)");

    const json_t *node_errors = json_object_get(body, "node_errors");
    const char *node_id;
    const json_t *ne;
    json_object_foreach ((json_t *)node_errors, node_id, ne) {
        const char *cls = json_string_value(json_object_get(ne, "class_type"));
        const json_t *errors = json_object_get(ne, "errors");
        size_t i;
        const json_t *e;
        json_array_foreach (errors, i, e) {
            const char *m = json_string_value(json_object_get(e, "message"));
            const char *d = json_string_value(json_object_get(e, "details"));
            append(out, cap, "; node %.32s (%.64s): %.200s", node_id, cls ? cls : "?",
                   m ? m : "error");
            if (d != NULL && d[0] != '\0')
                append(out, cap, ": %.200s", d);
        }
    }
}

static int submit(comfy_t *c)
{
    json_t *body = json_pack("{s:O, s:s, s:s}", "prompt", c->workflow, "client_id", c->client_id,
                             "prompt_id", c->prompt_id);
    if (body == NULL)
        return gp_ctx_fail(c->ctx, true, GP_TE_OUT_OF_MEMORY, "out of memory building the prompt");
    gp_http_response_t resp;
    /* Safe to retry: the prompt_id is fixed, so ComfyUI sees the same prompt again. */
    int rc = comfy_post_json(c, "/prompt", body, true, &resp);
    json_decref(body);
    /* Once the request may have reached the server, stopping the task must also tell
     * ComfyUI; only a connection that was never made proves nothing was queued. */
    c->submitted = rc != GP_HTTP_E_CONNECT || resp.attempts > 1;
    if (rc != GP_HTTP_OK || (resp.status != 200 && resp.status != 400)) {
        rc = http_failure(c, "POST /prompt", rc, &resp);
        gp_http_response_free(&resp);
        return rc;
    }
    json_t *answer = parse_json_body(&resp);
    long status = resp.status;
    gp_http_response_free(&resp);
    if (status == 400) {
        c->submitted = false; /* rejected: nothing was queued */
        char text[1500];
        describe_prompt_error(answer, text, sizeof text);
        json_decref(answer);
        return gp_ctx_fail(c->ctx, false, GP_TE_INVALID_WORKFLOW,
                           "ComfyUI rejected the workflow: %s", text);
    }
    const char *pid = json_string_value(json_object_get(answer, "prompt_id"));
    if (pid == NULL || pid[0] == '\0' || strlen(pid) >= sizeof c->prompt_id) {
        json_decref(answer);
        return gp_ctx_fail(c->ctx, true, GP_TE_PROVIDER_ERROR,
                           "ComfyUI's POST /prompt answer has no usable prompt_id");
    }
    /* Servers older than client-chosen ids pick their own; theirs is the one to follow. */
    if (strcmp(pid, c->prompt_id) != 0)
        (void)snprintf(c->prompt_id, sizeof c->prompt_id, "%s", pid);
    if (json_object_size(json_object_get(answer, "node_errors")) > 0)
        gp_ctx_log(c->ctx, GP_LOG_WARN,
                   "comfyui: prompt accepted but some output nodes failed validation and will "
                   "not run");
    json_decref(answer);
    gp_ctx_log(c->ctx, GP_LOG_INFO, "comfyui: queued prompt %s", c->prompt_id);
    return gp_ctx_progress(c->ctx, PROGRESS_SUBMITTED, "queued on ComfyUI");
}

/* ---------------------------------------------------------------------------------------
 * Progress events from the socket
 * ------------------------------------------------------------------------------------- */

static int report(comfy_t *c, double fraction, const char *step)
{
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    int percent = PROGRESS_RUN_START + (int)((PROGRESS_RUN_END - PROGRESS_RUN_START) * fraction);
    bool step_changed = step != NULL && strcmp(step, c->step) != 0;
    /* Sampler progress restarts at 0 for every sampler: never let the bar move back. */
    if (percent <= c->percent && !step_changed)
        return 0;
    if (percent > c->percent)
        c->percent = percent;
    if (step_changed)
        (void)snprintf(c->step, sizeof c->step, "%s", step);
    return gp_ctx_progress(c->ctx, c->percent, step_changed ? c->step : NULL);
}

static bool number_pair(const json_t *obj, double *value, double *max)
{
    const json_t *v = json_object_get(obj, "value"), *m = json_object_get(obj, "max");
    if (!json_is_number(v) || !json_is_number(m))
        return false;
    *value = json_number_value(v);
    *max = json_number_value(m);
    return *max > 0 && *value >= 0 && *value <= *max;
}

/* One text frame. Returns 0 or GP_CTX_CANCELED (from gp_ctx_progress). */
static int on_event(comfy_t *c, const unsigned char *text, size_t len)
{
    json_t *msg = json_loadb((const char *)text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    json_t *data = json_object_get(msg, "data");
    int rc = 0;
    if (type == NULL || !json_is_object(data))
        goto out;

    if (strcmp(type, "status") == 0) {
        json_int_t remaining = json_integer_value(json_object_get(
            json_object_get(json_object_get(data, "status"), "exec_info"), "queue_remaining"));
        if (!c->started && remaining > 0) {
            char step[64];
            (void)snprintf(step, sizeof step, "queued on ComfyUI (%lld in queue)",
                           (long long)remaining);
            rc = report(c, 0, step);
        }
        goto out;
    }
    /* Everything else is about one prompt; ignore other prompts' events. */
    const char *pid = json_string_value(json_object_get(data, "prompt_id"));
    if (pid == NULL || strcmp(pid, c->prompt_id) != 0)
        goto out;

    if (strcmp(type, "execution_start") == 0) {
        c->started = true;
        rc = report(c, 0, "running");
    } else if (strcmp(type, "executing") == 0) {
        c->started = true;
        const json_t *node = json_object_get(data, "node");
        if (json_is_null(node)) {
            c->finished = true;
        } else if (json_is_string(node)) {
            char step[160];
            (void)snprintf(step, sizeof step, "running node %.32s (%.64s)", json_string_value(node),
                           node_class(c->workflow, json_string_value(node)));
            rc = report(c, 0, step);
        }
    } else if (strcmp(type, "progress") == 0) {
        double value, max;
        if (number_pair(data, &value, &max))
            rc = report(c, value / max, NULL);
    } else if (strcmp(type, "progress_state") == 0) {
        /* Sum over the prompt's nodes, so two samplers make one bar. */
        double sum_value = 0, sum_max = 0, value, max;
        const char *key;
        const json_t *node;
        json_object_foreach (json_object_get(data, "nodes"), key, node) {
            if (number_pair(node, &value, &max)) {
                sum_value += value;
                sum_max += max;
            }
        }
        if (sum_max > 0)
            rc = report(c, sum_value / sum_max, NULL);
    } else if (strcmp(type, "execution_success") == 0) {
        c->finished = true;
    } else if (strcmp(type, "execution_error") == 0) {
        const char *m = json_string_value(json_object_get(data, "exception_message"));
        const char *et = json_string_value(json_object_get(data, "exception_type"));
        const char *nid = json_string_value(json_object_get(data, "node_id"));
        const char *nt = json_string_value(json_object_get(data, "node_type"));
        (void)snprintf(c->ws_error, sizeof c->ws_error, "node %.32s (%.64s) failed: %.300s%s%.700s",
                       nid ? nid : "?", nt ? nt : "?", et ? et : "error", m ? ": " : "",
                       m ? m : "");
        c->finished = true;
    } else if (strcmp(type, "execution_interrupted") == 0) {
        c->ws_interrupted = true;
        c->finished = true;
    }
out:
    json_decref(msg);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * History
 * ------------------------------------------------------------------------------------- */

/*
 * GET /history/{prompt_id}. Returns 0 with *entry (a new reference, or NULL while the prompt
 * has not finished), 1 on a transient failure (logged), or a run() result.
 */
static int get_history(comfy_t *c, json_t **entry)
{
    *entry = NULL;
    char *pid = url_encode(c->prompt_id);
    char *path = gp_xasprintf("/history/%s", pid);
    free(pid);
    gp_http_response_t resp;
    int rc = comfy_request(c, "GET", path, NULL, 0, NULL, true, &resp);
    free(path);
    if (rc == GP_HTTP_E_CANCELED || gp_ctx_is_canceled(c->ctx)) {
        gp_http_response_free(&resp);
        return GP_CTX_CANCELED;
    }
    if (rc != GP_HTTP_OK || resp.status != 200) {
        if (rc == GP_HTTP_OK && (resp.status == 401 || resp.status == 403)) {
            rc = http_failure(c, "GET /history", rc, &resp);
            gp_http_response_free(&resp);
            return rc;
        }
        gp_ctx_log(c->ctx, GP_LOG_WARN, "comfyui: GET /history failed (%s, HTTP %ld)",
                   rc != GP_HTTP_OK ? gp_http_strerror(rc) : "ok", resp.status);
        gp_http_response_free(&resp);
        return 1;
    }
    json_t *all = parse_json_body(&resp);
    gp_http_response_free(&resp);
    if (!json_is_object(all)) {
        json_decref(all);
        gp_ctx_log(c->ctx, GP_LOG_WARN, "comfyui: GET /history answered with no JSON object");
        return 1;
    }
    json_t *e = json_object_get(all, c->prompt_id);
    if (json_is_object(e))
        *entry = json_incref(e);
    json_decref(all);
    return 0;
}

/* Is the prompt still queued or running? 1 yes, 0 no, -1 unknown. */
static int prompt_in_queue(comfy_t *c)
{
    gp_http_response_t resp;
    int rc = comfy_request(c, "GET", "/queue", NULL, 0, NULL, true, &resp);
    if (rc != GP_HTTP_OK || resp.status != 200) {
        gp_http_response_free(&resp);
        return -1;
    }
    json_t *q = parse_json_body(&resp);
    gp_http_response_free(&resp);
    if (!json_is_object(q)) {
        json_decref(q);
        return -1;
    }
    int found = 0;
    static const char *const lists[] = {"queue_running", "queue_pending"};
    for (size_t l = 0; l < 2 && !found; l++) {
        size_t i;
        const json_t *item;
        /* Items are [number, prompt_id, prompt, extra_data, outputs_to_execute]. */
        json_array_foreach (json_object_get(q, lists[l]), i, item) {
            const char *pid = json_string_value(json_array_get(item, 1));
            if (pid != NULL && strcmp(pid, c->prompt_id) == 0) {
                found = 1;
                break;
            }
        }
    }
    json_decref(q);
    return found;
}

/*
 * Waits until /history has the prompt. Listens on the socket while it is alive; polls when
 * it is gone, silent, or has said the prompt finished. Returns 0 with *entry, or a result.
 */
static int wait_for_history(comfy_t *c, gp_ws_t **wsp, json_t **entry)
{
    *entry = NULL;
    int64_t last_message = gp_http_now_ms();
    int64_t next_quiet_check = 0;
    int transient = 0, empty_checks = 0;
    gp_poller_t poller = {.first_ms = 1000, .max_ms = 5000};
    bool confirming = false;

    for (;;) {
        if (gp_ctx_is_canceled(c->ctx))
            return GP_CTX_CANCELED;
        if (c->finished && !confirming) {
            /* ComfyUI records the history just after its last event: poll it quickly. */
            confirming = true;
            poller = (gp_poller_t){.first_ms = 50,
                                   .max_ms = 1000,
                                   .deadline_ms = gp_http_now_ms() + COMFY_CONFIRM_WAIT_MS};
            gp_ws_close(*wsp);
            *wsp = NULL;
        }

        if (*wsp != NULL) {
            int opcode = 0;
            const unsigned char *data = NULL;
            size_t len = 0;
            int rc = gp_ws_recv(*wsp, COMFY_RECV_SLICE_MS, &opcode, &data, &len);
            int64_t now = gp_http_now_ms();
            if (rc == GP_WS_OK) {
                last_message = now;
                if (opcode == GP_WS_TEXT && on_event(c, data, len) != 0)
                    return GP_CTX_CANCELED;
                continue; /* binary frames are previews: not stored */
            }
            if (rc != GP_WS_TIMEOUT) {
                gp_ctx_log(c->ctx, GP_LOG_WARN,
                           "comfyui: progress socket lost (%s); following the prompt by "
                           "polling /history",
                           rc == GP_WS_CLOSED ? "closed" : gp_ws_error(*wsp));
                gp_ws_close(*wsp);
                *wsp = NULL;
                continue;
            }
            if (now - last_message < c->silence_ms || now < next_quiet_check)
                continue;
            /* Silent for long: a long node or a zombie socket. Ask /history meanwhile. */
            if (next_quiet_check == 0)
                gp_ctx_log(c->ctx, GP_LOG_INFO,
                           "comfyui: no progress message for %d ms; checking /history",
                           c->silence_ms);
            next_quiet_check = now + COMFY_QUIET_POLL_MS;
        } else {
            int rc = gp_ctx_poll_wait(c->ctx, &poller);
            if (rc == GP_HTTP_E_CANCELED)
                return GP_CTX_CANCELED;
            if (rc == GP_HTTP_E_TIMEOUT) {
                if (c->ws_error[0] != '\0')
                    return gp_ctx_fail(c->ctx, false, GP_TE_GENERATION_FAILED, "ComfyUI: %s",
                                       c->ws_error);
                return gp_ctx_fail(c->ctx, true, GP_TE_PROVIDER_ERROR,
                                   "ComfyUI reported prompt %s finished, but /history did not "
                                   "show it within %d s",
                                   c->prompt_id, COMFY_CONFIRM_WAIT_MS / 1000);
            }
        }

        int rc = get_history(c, entry);
        if (rc == 1) {
            if (++transient >= COMFY_MAX_TRANSIENT_ERRORS)
                return gp_ctx_fail(c->ctx, true, GP_TE_PROVIDER_UNAVAILABLE,
                                   "ComfyUI's /history failed %d times in a row",
                                   COMFY_MAX_TRANSIENT_ERRORS);
            continue;
        }
        if (rc != 0)
            return rc;
        transient = 0;
        if (*entry != NULL)
            return 0;
        /* Not finished. A prompt neither queued nor in history was lost (server restart). */
        if (!confirming && ++empty_checks % 3 == 0 && prompt_in_queue(c) == 0) {
            rc = get_history(c, entry);
            if (rc == 0 && *entry != NULL)
                return 0;
            if (rc == GP_CTX_CANCELED)
                return rc;
            if (rc == 0)
                return gp_ctx_fail(c->ctx, true, GP_TE_PROVIDER_ERROR,
                                   "ComfyUI no longer knows prompt %s (neither queued nor in "
                                   "history; was the server restarted?)",
                                   c->prompt_id);
        }
    }
}

/* The failure recorded in a history entry's status.messages, if any. */
static int history_failure(comfy_t *c, const json_t *entry)
{
    const json_t *status = json_object_get(entry, "status");
    const char *status_str = json_string_value(json_object_get(status, "status_str"));
    size_t i;
    const json_t *m;
    json_array_foreach (json_object_get(status, "messages"), i, m) {
        const char *event = json_string_value(json_array_get(m, 0));
        const json_t *data = json_array_get(m, 1);
        if (event == NULL)
            continue;
        if (strcmp(event, "execution_interrupted") == 0) {
            if (gp_ctx_is_canceled(c->ctx))
                return GP_CTX_CANCELED;
            /* Someone else stopped it (a global interrupt): worth another try. */
            return gp_ctx_fail(c->ctx, true, GP_TE_INTERRUPTED,
                               "the prompt was interrupted on the ComfyUI server");
        }
        if (strcmp(event, "execution_error") == 0) {
            const char *msg = json_string_value(json_object_get(data, "exception_message"));
            const char *type = json_string_value(json_object_get(data, "exception_type"));
            const char *nid = json_string_value(json_object_get(data, "node_id"));
            const char *nt = json_string_value(json_object_get(data, "node_type"));
            /* Running out of GPU memory can pass once other work has finished. */
            bool oom = (type != NULL && strstr(type, "OutOfMemory") != NULL) ||
                       (msg != NULL && strstr(msg, "out of memory") != NULL);
            return gp_ctx_fail(c->ctx, oom, GP_TE_GENERATION_FAILED,
                               "ComfyUI node %.32s (%.64s) failed: %.1000s", nid ? nid : "?",
                               nt ? nt : "?", msg ? msg : (type ? type : "unknown error"));
        }
    }
    if (c->ws_interrupted && gp_ctx_is_canceled(c->ctx))
        return GP_CTX_CANCELED;
    if (status_str != NULL && strcmp(status_str, "error") == 0) {
        if (c->ws_error[0] != '\0')
            return gp_ctx_fail(c->ctx, false, GP_TE_GENERATION_FAILED, "ComfyUI %s", c->ws_error);
        return gp_ctx_fail(c->ctx, false, GP_TE_GENERATION_FAILED,
                           "ComfyUI reports the prompt failed without details");
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Outputs
 * ------------------------------------------------------------------------------------- */

/* A storage-safe name: [A-Za-z0-9._-], no leading dot, at most 100 bytes. */
static void safe_name(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i] != '\0' && o + 1 < cap && o < 100; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[o++] = isalnum(ch) || ch == '.' || ch == '-' || ch == '_' ? (char)ch : '_';
    }
    out[o] = '\0';
    if (o == 0 || out[0] == '.')
        out[0] = o == 0 ? '\0' : '_';
    if (o == 0)
        (void)snprintf(out, cap, "output");
}

static int cmp_node_ids(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t lx = strlen(x), ly = strlen(y);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

static int store_node_files(comfy_t *c, const char *node_id, const json_t *node_out, json_t *names,
                            int *stored)
{
    static const char *const kinds[] = {"images", "gifs", "videos", "audio", NULL};
    for (size_t k = 0; kinds[k] != NULL; k++) {
        size_t i;
        const json_t *item;
        json_array_foreach (json_object_get(node_out, kinds[k]), i, item) {
            const char *filename = json_string_value(json_object_get(item, "filename"));
            const char *subfolder = json_string_value(json_object_get(item, "subfolder"));
            const char *type = json_string_value(json_object_get(item, "type"));
            /* temp files are previews (PreviewImage), not results. */
            if (filename == NULL || filename[0] == '\0' || type == NULL ||
                strcmp(type, "output") != 0)
                continue;
            if (*stored >= COMFY_MAX_OUTPUT_FILES)
                return gp_ctx_fail(c->ctx, false, GP_TE_TOO_MANY_OUTPUTS,
                                   "the workflow saved more than %d files", COMFY_MAX_OUTPUT_FILES);
            char name[128], unique[160];
            safe_name(filename, name, sizeof name);
            (void)snprintf(unique, sizeof unique, "%s", name);
            if (json_object_get(names, unique) != NULL)
                (void)snprintf(unique, sizeof unique, "%d-%s", *stored + 1, name);
            json_object_set_new(names, unique, json_true());

            char *fn = url_encode(filename), *sf = url_encode(subfolder ? subfolder : "");
            char *url =
                gp_xasprintf("%s/view?filename=%s&subfolder=%s&type=output", c->base, fn, sf);
            free(fn);
            free(sf);
            json_t *extra = json_pack("{s:s}", "comfyui_node", node_id);
            int rc = gp_ctx_store_url(c->ctx, unique, url, NULL, c->auth_headers, extra);
            free(url);
            if (rc != 0)
                return rc;
            (*stored)++;
        }
    }
    return 0;
}

static int store_outputs(comfy_t *c, const json_t *entry)
{
    const json_t *outputs = json_object_get(entry, "outputs");
    if (!json_is_object(outputs))
        return gp_ctx_fail(c->ctx, true, GP_TE_PROVIDER_ERROR,
                           "ComfyUI's history entry has no outputs object");
    int rc = gp_ctx_progress(c->ctx, PROGRESS_STORE, "downloading outputs");
    if (rc != 0)
        return rc;

    size_t n = json_object_size(outputs), k = 0;
    const char **ids = gp_xcalloc(n + 1, sizeof *ids);
    const char *key;
    const json_t *value;
    json_object_foreach ((json_t *)outputs, key, value) {
        if (c->output_node == NULL || strcmp(key, c->output_node) == 0)
            ids[k++] = key;
    }
    qsort(ids, k, sizeof *ids, cmp_node_ids);
    json_t *names = json_object();
    int stored = 0;
    rc = 0;
    for (size_t i = 0; i < k && rc == 0; i++)
        rc = store_node_files(c, ids[i], json_object_get(outputs, ids[i]), names, &stored);
    free(ids);
    json_decref(names);
    if (rc != 0)
        return rc;
    if (stored == 0) {
        if (c->output_node != NULL)
            return gp_ctx_fail(c->ctx, false, GP_TE_EMPTY_OUTPUT,
                               "output node \"%.64s\" saved no files", c->output_node);
        return gp_ctx_fail(c->ctx, false, GP_TE_EMPTY_OUTPUT,
                           "the workflow finished without saving any file; it needs a save "
                           "node such as SaveImage (PreviewImage only writes temp files)");
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

static int setup(comfy_t *c, gp_ctx_t *ctx)
{
    c->ctx = ctx;
    const char *base = gp_ctx_setting(ctx, "base-url");
    if (base[0] == '\0')
        base = COMFY_DEFAULT_BASE_URL;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if ((!starts_with(base, "http://") && !starts_with(base, "https://")) ||
        bl >= sizeof c->base - 64)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_MISCONFIGURED,
                           "the comfyui base-url setting must be an http:// or https:// URL");
    memcpy(c->base, base, bl);
    c->base[bl] = '\0';

    const char *key = gp_ctx_setting(ctx, "api-key");
    if (key[0] != '\0') {
        if (strpbrk(key, "\r\n") != NULL)
            return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_MISCONFIGURED,
                               "the comfyui api-key setting contains a line break");
        c->auth = gp_xasprintf("Authorization: Bearer %s", key);
    }
    c->auth_headers[0] = c->auth;
    c->auth_headers[1] = NULL;

    c->silence_ms = (int)gp_ctx_setting_int(ctx, "ws-silence-ms"); /* 100..3600000, checked */

    const json_t *params = gp_ctx_params(ctx);
    const json_t *wf = json_object_get(params, "workflow");
    int rc = check_workflow(c, wf);
    if (rc != 0)
        return rc;
    c->workflow = json_deep_copy(wf);
    c->patched = json_array();
    if (c->workflow == NULL || c->patched == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "out of memory copying the workflow");
    c->output_node = json_string_value(json_object_get(params, "output_node"));
    if (c->output_node != NULL && json_object_get(c->workflow, c->output_node) == NULL)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                           "output_node \"%.64s\" is not a node of the workflow", c->output_node);
    patch_common(c);
    rc = patch_explicit(c);
    if (rc != 0)
        return rc;
    if (json_is_string(json_object_get(params, "image")))
        rc = upload_image(c);
    return rc;
}

static int connect_socket(comfy_t *c, gp_ws_t **ws)
{
    bool tls = starts_with(c->base, "https://");
    char *url = gp_xasprintf("%s%s/ws?clientId=%s", tls ? "wss://" : "ws://",
                             c->base + (tls ? 8 : 7), c->client_id);
    char err[256];
    int rc = gp_ws_connect(url, c->auth_headers, 10000, ws, err, sizeof err);
    free(url);
    c->ws_connected = rc == 0;
    if (rc != 0) {
        /* Not fatal: the run is followed through /history without live progress. */
        gp_ctx_log(c->ctx, GP_LOG_WARN,
                   "comfyui: progress socket unavailable (%s); polling /history instead", err);
        *ws = NULL;
    }
    return 0;
}

static int comfyui_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);
    comfy_t c;
    memset(&c, 0, sizeof c);
    gp_ws_t *ws = NULL;
    json_t *entry = NULL;

    int rc = setup(&c, ctx);
    if (rc == 0) {
        gp_uuid4(c.client_id);
        char pid[37];
        derive_prompt_id(gp_ctx_task_id(ctx), gp_ctx_attempt(ctx), pid);
        (void)snprintf(c.prompt_id, sizeof c.prompt_id, "%s", pid);
        rc = connect_socket(&c, &ws);
    }
    if (rc == 0)
        rc = submit(&c);
    if (rc == 0)
        rc = wait_for_history(&c, &ws, &entry);
    bool got_history = entry != NULL;
    gp_ws_close(ws);
    if (rc == 0)
        rc = history_failure(&c, entry);
    if (rc == 0)
        rc = store_outputs(&c, entry);
    json_decref(entry);

    bool canceled = rc == GP_CTX_CANCELED || (rc != 0 && gp_ctx_is_canceled(ctx));
    if (c.submitted) {
        /* Without a history entry the prompt may still be queued or running: stop it, or it
         * would run for nobody (and a retry would queue a second copy). */
        if (canceled || !got_history) {
            comfy_control(&c, "/queue", json_pack("{s:[s]}", "delete", c.prompt_id));
            comfy_control(&c, "/interrupt", json_pack("{s:s}", "prompt_id", c.prompt_id));
            /* A prompt the socket saw still waiting in the queue leaves no history. */
            if (c.started || !c.ws_connected)
                await_history_entry(&c);
        }
        /* Until the history entry exists there is nothing to delete; ComfyUI ignores it. */
        comfy_control(&c, "/history", json_pack("{s:[s]}", "delete", c.prompt_id));
    }
    if (rc == 0) {
        json_t *result =
            json_pack("{s:{s:s, s:O}}", "comfyui", "prompt_id", c.prompt_id, "patched", c.patched);
        if (result != NULL)
            gp_ctx_set_result(ctx, result);
        rc = gp_ctx_progress(ctx, 100, "done");
        canceled = rc == GP_CTX_CANCELED;
    }
    json_decref(c.workflow);
    json_decref(c.patched);
    if (c.auth != NULL) {
        memset(c.auth, 0, strlen(c.auth));
        free(c.auth);
    }
    if (canceled)
        return gp_ctx_canceled_error(ctx);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const gp_param_spec_t comfyui_params[] = {
    GP_P_OBJECT("workflow", true,
                "The ComfyUI workflow in API format ({\"<node id>\": {\"class_type\", "
                "\"inputs\"}}, from Workflow > Export (API)). The task's prompt, "
                "negative_prompt, seed, width/height and input image are written into it: "
                "prompt into the text encoder linked to a sampler's positive input, "
                "negative_prompt into the one on its negative input, seed into KSampler "
                "seed / noise_seed, width/height into Empty*LatentImage, the image into every "
                "LoadImage."),
    GP_P_STRING("output_node", false, 1, 64, NULL,
                "Store only the files saved by this node id; by default every save node's "
                "files are stored."),
    GP_P_OBJECT("patch", false,
                "Extra input values, {\"<node id>.<input name>\": value}, applied after the "
                "automatic ones (e.g. {\"3.steps\": 30, \"4.ckpt_name\": \"sdxl.safetensors\"})."),
    GP_P_END,
};

static const gp_provider_setting_t comfyui_settings[] = {
    GP_S_URL("base-url", COMFY_DEFAULT_BASE_URL,
             "ComfyUI server URL (http:// or https://); the WebSocket URL is derived from it."),
    GP_S_SECRET("api-key",
                "Sent as \"Authorization: Bearer <key>\" when set (for ComfyUI behind an "
                "authenticating proxy)."),
    GP_S_INT("concurrency", "1", 0, 1000000,
             "Tasks running on the server at once; ComfyUI executes one prompt at a time."),
    GP_S_INT("rate-per-minute", "0", 0, 1000000,
             "HTTP requests per minute to the server (0: unlimited)."),
    GP_S_MS("ws-silence-ms", "15000", 100, 3600000,
            "After this long without a progress message, /history is also polled (every 2 s) "
            "in case the socket silently died."),
    GP_S_END,
};

static const char *const comfyui_task_types[] = {"text-to-image", "image-to-image",
                                                 "image-to-video", "text-to-video", NULL};

const gp_provider_t gp_provider_comfyui = {
    .name = "comfyui",
    .description = "Runs a ComfyUI workflow (API format) on a ComfyUI server, with live "
                   "progress over its WebSocket and /history polling as a fallback; stores "
                   "every file the workflow saves.",
    .task_types = comfyui_task_types,
    .params = comfyui_params,
    .run = comfyui_run,
    .settings = comfyui_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 5, NULL, NULL},
};

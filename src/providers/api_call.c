/*
 * api_call.c — one provider call: headers, send, envelope, and the one failure mapping (see
 * api_call.h for the order). What differs between providers is in their profile.
 */
#include "providers/api_call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------------------- */

void gp_api_copy_line(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in != NULL && in[n] != '\0' && n + 1 < cap; n++)
        out[n] = (unsigned char)in[n] < 0x20 ? ' ' : in[n];
    out[n] = '\0';
}

bool gp_api_is_http_url(const char *s)
{
    return s != NULL && (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0);
}

bool gp_api_id_ok(const char *id, size_t max)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int gp_api_header_add(gp_api_headers_t *h, const char *fmt, ...)
{
    if (h->n >= GP_API_MAX_HEADERS || h->used >= sizeof h->buf)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(h->buf + h->used, sizeof h->buf - h->used, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof h->buf - h->used)
        return -1;
    h->line[h->n++] = h->buf + h->used;
    h->line[h->n] = NULL;
    h->used += (size_t)w + 1;
    return 0;
}

static bool has_header(const gp_api_headers_t *h, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < h->n; i++)
        if (strncasecmp(h->line[i], name, n) == 0 && h->line[i][n] == ':')
            return true;
    return false;
}

/* The member at a dotted path ("ResponseMetadata.Error.Code"), or NULL. */
static json_t *get_path(json_t *root, const char *path)
{
    json_t *v = root;
    while (v != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        char key[64];
        if (n >= sizeof key || !json_is_object(v))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

/* ---- the call ------------------------------------------------------------------------- */

/* Business code, text code, message and payload out of a parsed JSON object. */
static void read_envelope(const gp_api_profile_t *p, gp_api_reply_t *r)
{
    json_t *code = p->code_field != NULL ? get_path(r->root, p->code_field) : NULL;
    if (json_is_integer(code)) {
        r->has_code = true;
        r->code = json_integer_value(code);
    }
    for (const char *const *t = p->text_code_paths; t != NULL && *t != NULL; t++) {
        const char *s = json_string_value(get_path(r->root, *t));
        if (s != NULL) {
            gp_api_copy_line(r->text_code, sizeof r->text_code, s);
            break;
        }
    }
    for (const char *const *m = p->message_paths; m != NULL && *m != NULL; m++) {
        const char *s = json_string_value(get_path(r->root, *m));
        if (s != NULL && s[0] != '\0') {
            gp_api_copy_line(r->message, sizeof r->message, s);
            break;
        }
    }
    json_t *data = p->data_field != NULL ? get_path(r->root, p->data_field) : r->root;
    if (json_is_object(data))
        r->data = data;
}

static void read_body(const gp_api_profile_t *p, const gp_http_response_t *resp, gp_api_reply_t *r)
{
    json_t *root = resp->body != NULL ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    if (json_is_object(root)) {
        r->root = root;
        read_envelope(p, r);
        return;
    }
    /* Not an envelope: the start of the text may still say what went wrong. */
    if (root == NULL && resp->body != NULL && resp->body_len > 0 && r->status >= 300) {
        size_t n = resp->body_len < 200 ? resp->body_len : 200;
        char text[201];
        memcpy(text, resp->body, n);
        text[n] = '\0';
        gp_api_copy_line(r->message, sizeof r->message, text);
    }
    json_decref(root);
}

int gp_api_call(gp_ctx_t *ctx, const gp_api_profile_t *p, void *arg, gp_http_request_t *req,
                const json_t *body, gp_api_reply_t *reply)
{
    *reply = (gp_api_reply_t){.rc = GP_HTTP_E_INVALID};
    char *payload = NULL;
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        if (payload == NULL) {
            gp_api_copy_line(reply->message, sizeof reply->message, "out of memory");
            return reply->rc;
        }
        req->body = payload;
        req->body_len = strlen(payload);
    }
    gp_api_headers_t *h = calloc(1, sizeof *h);
    const char *why = "out of memory";
    gp_api_send_t send = {req->method != NULL ? req->method : "GET", req->url, req->body,
                          req->body_len};
    if (h == NULL || (p->headers != NULL && p->headers(arg, &send, h, &why) != 0) ||
        (!has_header(h, "Content-Type") &&
         gp_api_header_add(h, "Content-Type: application/json") != 0) ||
        (!has_header(h, "Accept") && gp_api_header_add(h, "Accept: application/json") != 0)) {
        gp_api_copy_line(reply->message, sizeof reply->message, why);
        if (h != NULL)
            explicit_bzero(h, sizeof *h);
        free(h);
        free(payload);
        return reply->rc;
    }
    req->headers = h->line;
    if (req->max_response_bytes == 0)
        req->max_response_bytes = p->max_response_bytes;
    gp_http_response_t resp = {0};
    reply->rc = gp_ctx_http(ctx, req, &resp);
    explicit_bzero(h, sizeof *h);
    free(h);
    free(payload);
    req->headers = NULL;
    if (payload != NULL)
        req->body = NULL;
    reply->status = resp.status;
    if (reply->rc != GP_HTTP_OK)
        gp_api_copy_line(reply->message, sizeof reply->message, resp.error);
    else
        read_body(p, &resp, reply);
    gp_http_response_free(&resp);
    return reply->rc;
}

void gp_api_reply_free(gp_api_reply_t *r)
{
    json_decref(r->root);
    r->root = NULL;
    r->data = NULL;
}

/* ---- what a reply means --------------------------------------------------------------- */

static bool is_2xx(long status)
{
    return status >= 200 && status <= 299;
}

bool gp_api_ok(const gp_api_profile_t *p, const gp_api_reply_t *r)
{
    if (r->rc != GP_HTTP_OK || !is_2xx(r->status) || r->data == NULL)
        return false;
    return p->code_field == NULL || (r->has_code && r->code == p->ok_code);
}

/* The class of the reply's business code; GP_API_NONE when absent, success or unlisted. */
static gp_api_class_t code_class(const gp_api_profile_t *p, const gp_api_reply_t *r)
{
    if (r->has_code && r->code != p->ok_code)
        for (const gp_api_code_t *c = p->codes; c != NULL && c->cls != GP_API_NONE; c++)
            if (r->code >= c->lo && r->code <= c->hi)
                return c->cls;
    for (const gp_api_text_code_t *t = p->text_codes; t != NULL && t->code != NULL; t++)
        if (strcmp(r->text_code, t->code) == 0)
            return t->cls;
    return GP_API_NONE;
}

static bool transport_retryable(const gp_api_profile_t *p, int rc)
{
    return rc != GP_HTTP_E_INVALID && rc != GP_HTTP_E_CANCELED &&
           !(p->too_large_permanent && rc == GP_HTTP_E_TOO_LARGE);
}

/* A body that is not the envelope: a 2xx is a broken reply, else the status decides. */
static bool broken_body(const gp_api_profile_t *p, const gp_api_reply_t *r)
{
    return r->root == NULL && (p->envelope_required || is_2xx(r->status));
}

bool gp_api_retryable(const gp_api_profile_t *p, const gp_api_reply_t *r)
{
    if (r->rc != GP_HTTP_OK)
        return transport_retryable(p, r->rc);
    if (broken_body(p, r))
        return r->status < 300 || gp_http_status_retryable(r->status);
    gp_api_class_t cls = code_class(p, r);
    if (cls != GP_API_NONE)
        return cls == GP_API_THROTTLE || cls == GP_API_SERVER;
    return gp_http_status_retryable(r->status);
}

static bool is_auth(const gp_api_profile_t *p, const gp_api_reply_t *r, gp_api_class_t cls)
{
    return r->status == 401 || (p->auth_403 && r->status == 403) || cls == GP_API_AUTH;
}

static bool is_throttle(const gp_api_profile_t *p, const gp_api_reply_t *r, gp_api_class_t cls)
{
    return cls == GP_API_THROTTLE ||
           (p->throttle_429 && r->status == 429 && cls != GP_API_PERMANENT);
}

bool gp_api_auth_failed(const gp_api_profile_t *p, const gp_api_reply_t *r)
{
    return r->rc == GP_HTTP_OK && is_auth(p, r, code_class(p, r));
}

/* The permanent end of the mapping: not found, invalid input, or rejected. */
static gp_task_error_t refusal_code(const gp_api_profile_t *p, const gp_api_reply_t *r,
                                    gp_api_class_t cls)
{
    if (cls == GP_API_NOT_FOUND || (p->not_found_404 && r->status == 404))
        return GP_TE_PROVIDER_NOT_FOUND;
    if (p->invalid_input_422 && r->status == 422)
        return GP_TE_PROVIDER_INVALID_INPUT;
    return GP_TE_PROVIDER_REJECTED;
}

static int fail_reply(gp_ctx_t *ctx, const gp_api_profile_t *p, const gp_api_reply_t *r,
                      const char *what, const char *job_id)
{
    const char *name = p->name;
    if (r->rc == GP_HTTP_E_CANCELED)
        return gp_ctx_canceled_error(ctx);
    if (r->rc != GP_HTTP_OK)
        return gp_ctx_fail(ctx, transport_retryable(p, r->rc), GP_TE_PROVIDER_UNAVAILABLE,
                           "%s %s failed: %s%s%s", name, what, gp_http_strerror(r->rc),
                           r->message[0] ? ": " : "", r->message);
    const char *detail = r->message[0] ? r->message : "no message given";
    char code[96] = "";
    if (r->text_code[0])
        (void)snprintf(code, sizeof code, ", %s", r->text_code);
    else if (r->has_code)
        (void)snprintf(code, sizeof code, ", code %lld", r->code);
    gp_api_class_t cls = code_class(p, r);
    if (is_auth(p, r, cls))
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_AUTH,
                           "%s refused the credentials for the %s (HTTP %ld%s): %s", name, what,
                           r->status, code, detail);
    if (broken_body(p, r)) {
        bool retry = gp_api_retryable(p, r);
        gp_task_error_t te = r->status < 300 ? GP_TE_PROVIDER_BAD_RESPONSE
                             : retry         ? GP_TE_PROVIDER_UNAVAILABLE
                                             : GP_TE_PROVIDER_REJECTED;
        return gp_ctx_fail(ctx, retry, te, "%s %s: HTTP %ld with a body that is not a JSON object",
                           name, what, r->status);
    }
    if (is_throttle(p, r, cls))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_RATE_LIMITED,
                           "%s rate limited the %s (HTTP %ld%s): %s", name, what, r->status, code,
                           detail);
    if (gp_api_retryable(p, r))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_UNAVAILABLE, "%s %s failed (HTTP %ld%s): %s",
                           name, what, r->status, code, detail);
    if (is_2xx(r->status) && (!r->has_code || r->code == p->ok_code))
        return gp_ctx_fail(ctx, true, GP_TE_PROVIDER_BAD_RESPONSE, "%s %s reply lacks %s", name,
                           what, r->has_code || p->code_field == NULL ? "data" : "a code");
    if (job_id != NULL)
        return gp_ctx_fail(ctx, false, GP_TE_PROVIDER_FAILED, "%s task %s failed (HTTP %ld%s): %s",
                           name, job_id, r->status, code, detail);
    return gp_ctx_fail(ctx, false, refusal_code(p, r, cls), "%s rejected the %s (HTTP %ld%s): %s",
                       name, what, r->status, code, detail);
}

int gp_api_fail(gp_ctx_t *ctx, const gp_api_profile_t *p, const gp_api_reply_t *r, const char *what)
{
    return fail_reply(ctx, p, r, what, NULL);
}

int gp_api_fail_job(gp_ctx_t *ctx, const gp_api_profile_t *p, const gp_api_reply_t *r,
                    const char *what, const char *job_id)
{
    return fail_reply(ctx, p, r, what, job_id);
}

int gp_api_poll_wait(gp_ctx_t *ctx, gp_poller_t *poller, const char *name, const char *job_id)
{
    int w = gp_ctx_poll_wait(ctx, poller);
    if (w == 0)
        return 0;
    if (w == GP_HTTP_E_CANCELED)
        return gp_ctx_canceled_error(ctx);
    return gp_ctx_fail(ctx, true, GP_TE_TIMEOUT, "%s task %s did not finish in time", name, job_id);
}

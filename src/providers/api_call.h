/*
 * providers/api_call.h — the one "call the API, read its JSON envelope, turn a failure into a
 * task error" path of the remote providers.
 *
 * A provider describes its API once, as data (gp_api_profile_t): how a request is
 * authenticated, where its replies keep the business code, the message and the payload, which
 * business codes mean "throttled", "bad credentials", "server trouble", ... and a few HTTP
 * status rules. gp_api_call() sends one request through gp_ctx_http() (retries, timeouts,
 * cancel and rate limits live there) and parses the reply; gp_api_fail() maps a failed reply
 * to a gp_ctx_fail() value with a GP_TE_* code, in one order for every provider:
 *   canceled → transport error → credentials → body not JSON → throttled → worth retrying →
 *   2xx without the envelope's payload → not found → invalid input → rejected.
 *
 * Thread-safety: profiles are immutable constants shared by every task; replies belong to one
 * call. Ownership: a reply owns its parsed body until gp_api_reply_free(); everything a
 * request points to stays the caller's.
 */
#ifndef GP_PROVIDERS_API_CALL_H
#define GP_PROVIDERS_API_CALL_H

#include "genpulse/handler.h"
#include "genpulse/http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define GP_API_MAX_MESSAGE 600
#define GP_API_MAX_HEADERS 12

/* What a business code (or a string error code) means. */
typedef enum gp_api_class {
    GP_API_NONE = 0,  /* not listed: the HTTP status decides */
    GP_API_AUTH,      /* credentials refused: permanent, provider_auth */
    GP_API_THROTTLE,  /* rate or concurrency limit: retried, provider_rate_limited */
    GP_API_SERVER,    /* server trouble: retried, provider_unavailable */
    GP_API_NOT_FOUND, /* permanent, provider_not_found */
    GP_API_PERMANENT, /* does not clear up by waiting (bad input, no quota): rejected */
} gp_api_class_t;

typedef struct gp_api_code {
    long long lo, hi; /* integer codes lo..hi */
    gp_api_class_t cls;
} gp_api_code_t;

typedef struct gp_api_text_code {
    const char *code; /* a string code (OpenAI's error.code); NULL ends the table */
    gp_api_class_t cls;
} gp_api_text_code_t;

/* Header lines a request carries, built per request (they may hold secrets: wiped after). */
typedef struct gp_api_headers {
    const char *line[GP_API_MAX_HEADERS + 1];
    int n;
    size_t used;
    char buf[8192];
} gp_api_headers_t;

/* Appends one "Name: value" line; -1 when the table or buffer is full. */
int gp_api_header_add(gp_api_headers_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What the authentication callback may look at to sign a request. */
typedef struct gp_api_send {
    const char *method, *url;
    const char *body; /* may be NULL */
    size_t body_len;
} gp_api_send_t;

typedef struct gp_api_profile {
    const char *name; /* "Kling": starts every message */
    /* Adds the request's authentication (and any other per-request) headers. arg is what
     * the provider passed to gp_api_call(). Returns 0, or -1 with a reason in why. NULL: no
     * authentication. Content-Type and Accept JSON lines are added after unless present. */
    int (*headers)(void *arg, const gp_api_send_t *send, gp_api_headers_t *h, const char **why);
    size_t max_response_bytes; /* 0: gp_http's default */

    /* The envelope. Paths are member names joined by '.'. */
    const char *code_field;           /* integer business code; NULL: the API has none */
    long long ok_code;                /* its success value */
    const char *data_field;           /* where the payload lives; NULL: the root object itself */
    bool envelope_required;           /* error replies carry the envelope too: a body that is not a
                               JSON object is a broken reply whatever the status */
    const char *const *message_paths; /* first non-empty string is the message */
    const char *const *text_code_paths; /* first string is the text code (may be NULL) */
    const gp_api_code_t *codes;         /* ends with a row whose cls is GP_API_NONE */
    const gp_api_text_code_t *text_codes;

    /* HTTP status rules. */
    bool auth_403;            /* 403 means bad credentials (else: rejected) */
    bool throttle_429;        /* 429 means throttled (else: only the throttle codes do) */
    bool not_found_404;       /* 404 means provider_not_found (else: rejected) */
    bool invalid_input_422;   /* 422 means provider_invalid_input */
    bool too_large_permanent; /* a reply over max_response_bytes is not retried */
} gp_api_profile_t;

typedef struct gp_api_reply {
    int rc;       /* GP_HTTP_OK or a GP_HTTP_E_* code */
    long status;  /* HTTP status; 0 when none arrived */
    json_t *root; /* the body when it is a JSON object, else NULL (owned) */
    json_t *data; /* the payload member when it is a JSON object (borrowed), else NULL */
    bool has_code;
    long long code;                   /* the business code, when has_code */
    char text_code[64];               /* the string code, "" if none */
    char message[GP_API_MAX_MESSAGE]; /* one line: provider message or transport error */
} gp_api_reply_t;

/*
 * One request. req carries method, url and any timeouts or retry flags; its headers, and its
 * body when `body` is not NULL (sent compact), are set here. max_response_bytes defaults to
 * the profile's. The reply is always filled (free it); returns reply->rc.
 */
int gp_api_call(gp_ctx_t *ctx, const gp_api_profile_t *p, void *arg, gp_http_request_t *req,
                const json_t *body, gp_api_reply_t *reply);

/* A 2xx JSON object with the success code (when the API has one) and the payload. */
bool gp_api_ok(const gp_api_profile_t *p, const gp_api_reply_t *r);

/* Whether a failed reply is worth sending again (polls use it to ride out blips). */
bool gp_api_retryable(const gp_api_profile_t *p, const gp_api_reply_t *r);

/* The reply refuses the credentials (401, 403 when auth_403, or an auth code). */
bool gp_api_auth_failed(const gp_api_profile_t *p, const gp_api_reply_t *r);

/* A failed reply as run()'s return value; `what` names the call ("create request"). */
int gp_api_fail(gp_ctx_t *ctx, const gp_api_profile_t *p, const gp_api_reply_t *r,
                const char *what);

/* The same, except that a refusal is the remote job's own failure (provider_failed). */
int gp_api_fail_job(gp_ctx_t *ctx, const gp_api_profile_t *p, const gp_api_reply_t *r,
                    const char *what, const char *job_id);

void gp_api_reply_free(gp_api_reply_t *r);

/* Copies a provider string as one line (control characters become spaces). */
void gp_api_copy_line(char *out, size_t cap, const char *in);

/* True for "http://..." and "https://..." (NULL-safe). */
bool gp_api_is_http_url(const char *s);

/* Provider task ids pasted into paths: 1..max bytes of [A-Za-z0-9_-]. */
bool gp_api_id_ok(const char *id, size_t max);

/* The poll loop's wait: 0 to poll now, else run()'s return value (canceled or timed out). */
int gp_api_poll_wait(gp_ctx_t *ctx, gp_poller_t *poller, const char *name, const char *job_id);

#endif

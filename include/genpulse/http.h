/*
 * genpulse/http.h — the one HTTP client every provider and the S3 storage use (libcurl).
 *
 * What it adds over a bare curl_easy_perform():
 *   - connect and total timeouts on every call (defaults below; never infinite);
 *   - retries with full-jitter exponential backoff on connection errors, timeouts, 429 and
 *     5xx, honouring Retry-After (seconds or HTTP date), bounded by attempts AND a deadline;
 *     non-idempotent methods (POST, PATCH) are retried only on errors that prove the request
 *     was not processed (connect failures, 429, 503) unless retry_unsafe is set;
 *   - cancellation: a transfer in flight aborts within ~100 ms of cancel() turning true, and
 *     backoff sleeps wake on it;
 *   - limits: response bodies above max_response_bytes are cut off with GP_HTTP_E_TOO_LARGE;
 *   - per-provider request rate limits (limit_key), shared by every process through the
 *     limiter backend (Redis in distributed mode); concurrency limits are taken per task by
 *     the worker, not per request;
 *   - logs carry the task id and never the query string or headers (they may hold secrets).
 *
 * Thread-safety: every function may be called from any thread; requests are independent.
 * Ownership: the request and everything it points to stay the caller's; the response owns
 * its body and headers until gp_http_response_free().
 */
#ifndef GENPULSE_HTTP_H
#define GENPULSE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_ctx gp_ctx_t;

#define GP_HTTP_DEFAULT_CONNECT_MS 10000
#define GP_HTTP_DEFAULT_TIMEOUT_MS 60000
#define GP_HTTP_DEFAULT_MAX_ATTEMPTS 4
#define GP_HTTP_DEFAULT_MAX_RESPONSE (64u << 20)     /* in memory */
#define GP_HTTP_DEFAULT_MAX_DOWNLOAD (4096ull << 20) /* to a file */

/* Transport-level results (negative); an HTTP status, even 500, is a response (0). */
enum {
    GP_HTTP_OK = 0,
    GP_HTTP_E_CONNECT = -1,   /* DNS, refused, reset, TLS: the server never answered */
    GP_HTTP_E_TIMEOUT = -2,   /* connect or total timeout, or the deadline passed */
    GP_HTTP_E_CANCELED = -3,  /* cancel() turned true */
    GP_HTTP_E_TOO_LARGE = -4, /* response larger than allowed */
    GP_HTTP_E_IO = -5,        /* local file could not be read/written */
    GP_HTTP_E_INVALID = -6,   /* bad URL or request (not retried) */
};

typedef struct gp_http_request {
    const char *method;         /* "GET" when NULL */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* NULL-terminated "Name: value" lines; may be NULL */
    const void *body;           /* request body (may be NULL) */
    size_t body_len;
    const char *body_path;     /* or: send this file as the body (PUT uploads) */
    const char *download_path; /* write the response body here instead of memory;
                                    only for 2xx, others are read into memory */
    size_t max_response_bytes; /* 0: the defaults above */
    int connect_timeout_ms;    /* 0: GP_HTTP_DEFAULT_CONNECT_MS */
    int timeout_ms;            /* one attempt, total; 0: GP_HTTP_DEFAULT_TIMEOUT_MS */
    int64_t deadline_ms;       /* absolute gp monotonic ms bounding all attempts; 0: none */
    int max_attempts;          /* 0: GP_HTTP_DEFAULT_MAX_ATTEMPTS; 1: no retries */
    bool retry_unsafe;         /* retry POST/PATCH on 5xx/timeouts too (idempotent APIs) */
    int retry_base_ms;         /* backoff base; 0: 500 */
    int retry_max_ms;          /* backoff cap and cap of honoured Retry-After; 0: 30000 */
    const char *limit_key;     /* rate-limit bucket (the provider's name); NULL: none */
    int limit_per_minute;      /* requests per minute allowed for limit_key; 0: no limit */
    bool (*cancel)(void *arg); /* polled during transfers and sleeps; NULL: never */
    void *cancel_arg;
    const char *log_id; /* task id for log lines; NULL: none */
    bool public_only;   /* refuse loopback/private/link-local addresses (URLs that
                                    clients supplied: they must not reach internal services) */
} gp_http_request_t;

typedef struct gp_http_response {
    long status;            /* 0 when no response arrived */
    char *body;             /* NUL-terminated (not counted in body_len); NULL when saved
                                 to download_path */
    size_t body_len;        /* bytes received (also when saved to a file) */
    char *content_type;     /* lower-cased, parameters kept; NULL if absent */
    char *headers;          /* raw header block of the final response */
    int64_t retry_after_ms; /* parsed Retry-After of the final response; -1 if none */
    int attempts;           /* attempts made */
    int throttled;          /* attempts answered 429 (for metrics) */
    char error[256];        /* transport error text when the result is negative */
} gp_http_response_t;

/* One request with the retry policy above. Returns GP_HTTP_OK when a response arrived (read
 * resp->status) or a negative GP_HTTP_E_* code. Always call gp_http_response_free(). */
int gp_http_do(const gp_http_request_t *req, gp_http_response_t *resp);
void gp_http_response_free(gp_http_response_t *resp);

/* Value of header `name` (case-insensitive) in resp->headers, copied into out; false if absent. */
bool gp_http_header(const gp_http_response_t *resp, const char *name, char *out, size_t cap);

/* Short text for a GP_HTTP_E_* code. */
const char *gp_http_strerror(int rc);

/* True for statuses worth retrying later (408, 425, 429, 5xx). */
bool gp_http_status_retryable(long status);

/*
 * From a provider's run(): gp_http_do() with the task's cancel flag, hard deadline, task id
 * and the provider's limits filled in (fields the caller set are kept). Returns like
 * gp_http_do().
 */
int gp_ctx_http(gp_ctx_t *ctx, gp_http_request_t *req, gp_http_response_t *resp);

/*
 * Polling with a deadline: waits before the next status check, growing the interval from
 * first_ms by half each time up to max_ms. Returns 0 (poll now), GP_HTTP_E_CANCELED, or
 * GP_HTTP_E_TIMEOUT when deadline_ms (absolute monotonic ms; 0 = none) would pass.
 */
typedef struct gp_poller {
    int first_ms, max_ms;
    int64_t deadline_ms;
    int next_ms; /* internal */
    int polls;   /* polls so far */
} gp_poller_t;
int gp_ctx_poll_wait(gp_ctx_t *ctx, gp_poller_t *p);

/*
 * Download url into the task's outputs as `name` (a plain file name; NULL: derived from the
 * URL path), with the content type from the response (or content_type when not NULL). Media
 * analysis (dimensions, BlurHash, thumbnail, video preview) runs as for gp_ctx_store_file().
 * `extra` is merged into the asset (stolen). Sends `headers` (may be NULL) on the request.
 * Returns 0 or a gp_ctx_fail() value.
 */
int gp_ctx_store_url(gp_ctx_t *ctx, const char *name, const char *url, const char *content_type,
                     const char *const *headers, json_t *extra);

/* Monotonic clock in ms (same clock as deadline_ms). */
int64_t gp_http_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif

/*
 * genpulse/handler.h — the ABI between the GenPulse core and the code that does the work.
 *
 * Two kinds of plug-in live behind this header:
 *
 *   - a task type (src/handlers/<name>.c) says WHAT a client can ask for: its name, the
 *     parameters every provider of it accepts, and its default provider;
 *   - a provider (src/engines/<name>.c for local engines, src/providers/<name>.c for
 *     remote APIs) says HOW: which task types it serves, its own extra parameters, and run().
 *
 * Each file defines one `const gp_task_type_t gp_task_type_<stem>` or
 * `const gp_provider_t gp_provider_<stem>` (or both); tools/gen_registry.sh finds the
 * definitions at build time and writes the registry table, so adding one touches no core file.
 * Duplicate names are rejected when the registry starts.
 *
 * Parameters are declared once, as data (gp_param_spec_t). The same table validates requests
 * (422 with one detail per bad field), fills defaults, and produces the JSON Schema served by
 * GET /v1/task-types and the OpenAPI document.
 *
 * Threading: run() is called on a worker thread; many run() calls for different tasks may be
 * in flight at once, so providers keep no unguarded mutable globals. Every gp_ctx_* function
 * may be called only from the thread running that task's run(), unless it says otherwise.
 */
#ifndef GENPULSE_HANDLER_H
#define GENPULSE_HANDLER_H

#include <genpulse/task_errors.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GP_HANDLER_ABI 4

/* ---------------------------------------------------------------------------------------
 * Parameter declarations
 * ------------------------------------------------------------------------------------- */

typedef enum gp_param_type {
    GP_PARAM_STRING = 1,
    GP_PARAM_INTEGER,
    GP_PARAM_NUMBER,
    GP_PARAM_BOOLEAN,
    GP_PARAM_OBJECT, /* any JSON object, size-bounded by the request body limit */
} gp_param_type_t;

/* Extra checks on a string param (JSON Schema `format` / pattern in the docs). */
typedef enum gp_param_format {
    GP_FMT_NONE = 0,
    GP_FMT_URL,       /* http:// or https:// URL */
    GP_FMT_MEDIA_REF, /* an uploaded asset id (POST /v1/assets) or an http(s)/data: URL */
} gp_param_format_t;

/*
 * One parameter. Tables end with an entry whose name is NULL.
 * Strings without max_length are capped at GP_PARAM_DEFAULT_MAX_LENGTH characters: every input
 * has a limit. default_json is a JSON literal ("512", "\"en-us\"", "true") checked against
 * the spec itself when the registry starts, so a bad declaration fails at start, not at
 * request time.
 */
typedef struct gp_param_spec {
    const char *name;
    gp_param_type_t type;
    bool required;
    const char *description;
    const char *default_json;      /* NULL: no default; absent stays absent */
    bool has_minimum, has_maximum; /* integer and number */
    double minimum, maximum;
    size_t min_length, max_length; /* string, in characters (code points); 0 = unset */
    const char *const *choices;    /* string enum, NULL-terminated; NULL = any string */
    const char *example_json;      /* optional, for docs */
    gp_param_format_t format;      /* extra string checks; GP_FMT_NONE = none */
} gp_param_spec_t;

#define GP_PARAM_DEFAULT_MAX_LENGTH 65536

#define GP_P_STRING(n, req, minl, maxl, def, desc)                                                 \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_STRING, .required = (req), .min_length = (minl),             \
        .max_length = (maxl), .default_json = (def), .description = (desc)                         \
    }
#define GP_P_ENUM(n, choices_, def, desc)                                                          \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_STRING, .choices = (choices_), .default_json = (def),        \
        .description = (desc)                                                                      \
    }
#define GP_P_INT(n, req, lo, hi, def, desc)                                                        \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_INTEGER, .required = (req), .has_minimum = true,             \
        .minimum = (lo), .has_maximum = true, .maximum = (hi), .default_json = (def),              \
        .description = (desc)                                                                      \
    }
#define GP_P_NUMBER(n, req, lo, hi, def, desc)                                                     \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_NUMBER, .required = (req), .has_minimum = true,              \
        .minimum = (lo), .has_maximum = true, .maximum = (hi), .default_json = (def),              \
        .description = (desc)                                                                      \
    }
#define GP_P_BOOL(n, def, desc)                                                                    \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_BOOLEAN, .default_json = (def), .description = (desc)        \
    }
#define GP_P_OBJECT(n, req, desc)                                                                  \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_OBJECT, .required = (req), .description = (desc)             \
    }
#define GP_P_MEDIA(n, req, desc)                                                                   \
    {                                                                                              \
        .name = (n), .type = GP_PARAM_STRING, .required = (req), .min_length = 1,                  \
        .max_length = 1000000, .format = GP_FMT_MEDIA_REF, .description = (desc)                   \
    }
#define GP_P_END                                                                                   \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* ---------------------------------------------------------------------------------------
 * Task types and providers
 * ------------------------------------------------------------------------------------- */

typedef struct gp_ctx gp_ctx_t;

typedef struct gp_task_type {
    const char *name; /* "text-to-image": [a-z0-9_-], at most 64 bytes */
    const char *description;
    const char *default_provider;  /* used when params.provider is omitted; may be NULL */
    const gp_param_spec_t *params; /* shared by every provider of this type */
} gp_task_type_t;

/*
 * run() returns 0 when the task succeeded (its outputs stored and its result set through the
 * context), or the value of gp_ctx_fail() / gp_ctx_canceled_error(). It must return soon
 * after gp_ctx_is_canceled() turns true (cancel request or hard timeout).
 */
typedef int (*gp_run_fn)(gp_ctx_t *ctx);

/*
 * A provider's own setting (API token, base URL, limits), read at start like every other
 * setting: flag --<provider>-<name>, environment GENPULSE_<PROVIDER>_<NAME> ('-' → '_',
 * upper case), listed with its kind and bounds in --help and docs/settings.md. Every value,
 * default included, is checked against its kind when the process starts (serve, worker): a
 * bad one stops the process with exit status 2, so run() only ever sees valid values.
 * Secret values are never printed or logged. Two names have a meaning to the core:
 *   "concurrency"      tasks of this provider running at once, across all workers (0: any);
 *   "rate-per-minute"  HTTP requests per minute to the provider, across all workers (0: any).
 * Tables end with an entry whose name is NULL (GP_S_END).
 */
typedef enum gp_setting_kind {
    GP_SETTING_STRING = 0,  /* free text, at most 4096 bytes */
    GP_SETTING_SECRET,      /* free text, never printed or logged */
    GP_SETTING_URL,         /* http:// or https:// URL; "" allowed only if the default is "" */
    GP_SETTING_INT,         /* decimal integer in [min, max] */
    GP_SETTING_BOOL,        /* true/false, 1/0, yes/no, on/off */
    GP_SETTING_DURATION_MS, /* integer ms in [min, max]; suffix ms, s, m or h optional */
    GP_SETTING_NUMBER,      /* decimal number in [min, max] */
} gp_setting_kind_t;

typedef struct gp_provider_setting {
    const char *name;          /* [a-z0-9-], at most 40 bytes */
    const char *default_value; /* never NULL ("" for unset) */
    gp_setting_kind_t kind;
    double min, max; /* GP_SETTING_INT, _DURATION_MS (in ms), _NUMBER: inclusive bounds */
    const char *doc;
} gp_provider_setting_t;

#define GP_S_STRING(n, def, doc_)                                                                  \
    {                                                                                              \
        .name = (n), .default_value = (def), .kind = GP_SETTING_STRING, .doc = (doc_)              \
    }
#define GP_S_SECRET(n, doc_)                                                                       \
    {                                                                                              \
        .name = (n), .default_value = "", .kind = GP_SETTING_SECRET, .doc = (doc_)                 \
    }
#define GP_S_URL(n, def, doc_)                                                                     \
    {                                                                                              \
        .name = (n), .default_value = (def), .kind = GP_SETTING_URL, .doc = (doc_)                 \
    }
#define GP_S_INT(n, def, lo, hi, doc_)                                                             \
    {                                                                                              \
        .name = (n), .default_value = (def), .kind = GP_SETTING_INT, .min = (lo), .max = (hi),     \
        .doc = (doc_)                                                                              \
    }
#define GP_S_BOOL(n, def, doc_)                                                                    \
    {                                                                                              \
        .name = (n), .default_value = (def), .kind = GP_SETTING_BOOL, .doc = (doc_)                \
    }
#define GP_S_MS(n, def, lo, hi, doc_)                                                              \
    {                                                                                              \
        .name = (n), .default_value = (def), .kind = GP_SETTING_DURATION_MS, .min = (lo),          \
        .max = (hi), .doc = (doc_)                                                                 \
    }
#define GP_S_NUMBER(n, def, lo, hi, doc_)                                                          \
    {                                                                                              \
        .name = (n), .default_value = (def), .kind = GP_SETTING_NUMBER, .min = (lo), .max = (hi),  \
        .doc = (doc_)                                                                              \
    }
#define GP_S_END                                                                                   \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* What a task costs, in credits, declared by its provider as its real API bills: per task,
 * per megapixel of output (width × height params; 1 MP when absent), or per second of output
 * (the `quantity_param`, "duration" when NULL). count_param (e.g. "num_outputs", NULL = 1)
 * multiplies. Fractions round up; a priced task costs at least 1. The price is reserved at
 * submit and captured on success (docs/api.md "Credits"). {0} = free. */
typedef enum gp_price_unit {
    GP_PRICE_FREE = 0,
    GP_PRICE_PER_TASK,
    GP_PRICE_PER_MEGAPIXEL,
    GP_PRICE_PER_SECOND,
} gp_price_unit_t;

typedef struct gp_price {
    gp_price_unit_t unit;
    int64_t credits; /* per unit */
    const char *quantity_param;
    const char *count_param;
} gp_price_t;

typedef struct gp_provider {
    const char *name; /* "espeak", "simulator", "replicate", ... */
    const char *description;
    const char *const *task_types; /* NULL-terminated: the task types it serves */
    const gp_param_spec_t *params; /* provider-specific params; may be NULL */
    gp_run_fn run;
    const gp_provider_setting_t *settings; /* may be NULL */
    gp_price_t price;                      /* {0}: free */
} gp_provider_t;

/* ---------------------------------------------------------------------------------------
 * The task context: everything a provider may do while it runs.
 * ------------------------------------------------------------------------------------- */

/* The task id, a NUL-terminated string owned by the context. */
const char *gp_ctx_task_id(const gp_ctx_t *ctx);
/* The task type's name ("text-to-video"), owned by the context. */
const char *gp_ctx_task_type(const gp_ctx_t *ctx);
/* Absolute hard deadline of this attempt in gp monotonic ms (gp_http_now_ms()); 0 if none. */
int64_t gp_ctx_deadline_ms(const gp_ctx_t *ctx);
/* 1 on the first run, 2 on the first retry, ... */
int gp_ctx_attempt(const gp_ctx_t *ctx);
/* Validated params with defaults filled in (provider included). Borrowed: do not decref. */
const json_t *gp_ctx_params(const gp_ctx_t *ctx);

/* Convenience readers for validated params; the fallback is used when the key is absent. */
const char *gp_ctx_param_str(const gp_ctx_t *ctx, const char *name, const char *fallback);
int64_t gp_ctx_param_int(const gp_ctx_t *ctx, const char *name, int64_t fallback);
double gp_ctx_param_num(const gp_ctx_t *ctx, const char *name, double fallback);
bool gp_ctx_param_bool(const gp_ctx_t *ctx, const char *name, bool fallback);

/*
 * Report progress: percent is clamped to 0..100, step may be NULL (keeps the last one).
 * Progress goes to the event bus and the hot store, never to the database. Returns 0, or
 * GP_CTX_CANCELED once the task was asked to stop, so a loop can `if (r) return r;`.
 */
int gp_ctx_progress(gp_ctx_t *ctx, int percent, const char *step);

#define GP_CTX_CANCELED (-1000)
#define GP_CTX_FAILED_RETRYABLE (-1001)
#define GP_CTX_FAILED_PERMANENT (-1002)

/* True once a cancel was requested or the hard timeout passed. Any thread may call it. */
bool gp_ctx_is_canceled(const gp_ctx_t *ctx);
/* Sleep up to ms milliseconds, waking early on cancel. Returns 0 or GP_CTX_CANCELED. */
int gp_ctx_sleep_ms(gp_ctx_t *ctx, int64_t ms);
/* What run() returns when it stops because gp_ctx_is_canceled() turned true. */
int gp_ctx_canceled_error(gp_ctx_t *ctx);

/*
 * Store one output. The bytes (or the file at path, which stays the caller's) are copied to
 * the output storage under `name` (a plain file name: [A-Za-z0-9._-], no leading dot) and an
 * asset {url, content_type, bytes, ...} is appended to result.assets. `extra` (may be NULL) is
 * merged into the asset object; the reference is stolen. Returns 0 or a gp_ctx_fail() value.
 */
int gp_ctx_store_bytes(gp_ctx_t *ctx, const char *name, const void *data, size_t len,
                       const char *content_type, json_t *extra);
int gp_ctx_store_file(gp_ctx_t *ctx, const char *name, const char *path, const char *content_type,
                      json_t *extra);

/*
 * This provider's setting `name`, already checked at start against its declared kind (see
 * gp_provider_setting_t). Any thread. gp_ctx_setting() gives the text ("" when unset, never
 * NULL; for strings, secrets and URLs); the typed readers give the parsed value: _int for
 * GP_SETTING_INT and GP_SETTING_DURATION_MS (in ms), _bool for GP_SETTING_BOOL, _num for
 * GP_SETTING_NUMBER. Reading a name the provider does not declare, or with the wrong reader,
 * gives 0 / false.
 */
const char *gp_ctx_setting(const gp_ctx_t *ctx, const char *name);
int64_t gp_ctx_setting_int(const gp_ctx_t *ctx, const char *name);
bool gp_ctx_setting_bool(const gp_ctx_t *ctx, const char *name);
double gp_ctx_setting_num(const gp_ctx_t *ctx, const char *name);

/*
 * Inputs that name media (GP_FMT_MEDIA_REF params: an asset id or a URL).
 * gp_ctx_input_file() fetches the param's media into the scratch dir and writes its path
 * (and content type, may be NULL) into the caller's buffers. gp_ctx_input_url() gives a URL
 * a remote provider can fetch: the URL as given, or a (presigned) link to the stored asset;
 * *url_out is malloc'd, caller frees. Both return 0 or a gp_ctx_fail() value.
 */
int gp_ctx_input_file(gp_ctx_t *ctx, const char *param, char *path_out, size_t path_cap,
                      char *content_type_out, size_t ct_cap);
int gp_ctx_input_url(gp_ctx_t *ctx, const char *param, char **url_out);

/*
 * The param's media read into memory: *out (malloc'd, caller frees, NUL-terminated past len)
 * holds 1..max bytes, its content type goes into content_type (may be NULL). Untouched on
 * failure. Returns 0 or a gp_ctx_fail() value: the fetch's own errors, storage_error
 * (retried) when the fetched file cannot be read, invalid_params when it is empty or larger
 * than max.
 */
int gp_ctx_input_bytes(gp_ctx_t *ctx, const char *param, size_t max, unsigned char **out,
                       size_t *len, char *content_type, size_t ct_cap);

/*
 * Publish a preview image (e.g. a video's first frame) before the task ends: stores the
 * file as an output-side object (not in result.assets) and sends a progress event carrying
 * its URL as `preview_url`. Returns 0 or a gp_ctx_fail() value.
 */
int gp_ctx_publish_preview(gp_ctx_t *ctx, const char *name, const char *path,
                           const char *content_type);

/* Merge fields into the task's result object (the reference is stolen). */
void gp_ctx_set_result(gp_ctx_t *ctx, json_t *fields);

/*
 * Record the failure and return GP_CTX_FAILED_RETRYABLE or GP_CTX_FAILED_PERMANENT, for
 * `return gp_ctx_fail(...)`. code comes from the one list in genpulse/task_errors.h; its
 * retry class decides unless it is GP_RETRY_CALLER, when `retryable` does. The message is
 * what the client sees in error.message.
 */
int gp_ctx_fail(gp_ctx_t *ctx, bool retryable, gp_task_error_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A directory private to this run (created on first call, removed after); NULL on error. */
const char *gp_ctx_scratch_dir(gp_ctx_t *ctx);

typedef enum gp_log_level {
    GP_LOG_DEBUG,
    GP_LOG_INFO,
    GP_LOG_WARN,
    GP_LOG_ERROR
} gp_log_level_t;
/* Log a line that carries the task id. */
void gp_ctx_log(gp_ctx_t *ctx, gp_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif

/*
 * replicate.h — the Replicate-compatible surface (/v1/predictions, /v1/models): the model
 * catalog every GenPulse task type appears in, and a task rendered as a Replicate prediction.
 *
 * Ownership: the catalog belongs to the gateway (gp_http_t.replicate), built once by
 * gp_replicate_catalog_new before the daemon starts and read-only afterwards; the pointers
 * gp_replicate_* return into it stay valid until gp_replicate_catalog_free.
 * Threading: after start every function here is thread-safe (the catalog is immutable;
 * gp_replicate_prediction_json only reads the task, the event bus and the storage).
 */
#ifndef GP_API_REPLICATE_H
#define GP_API_REPLICATE_H

#include "api/http_internal.h"

#include <jansson.h>
#include <stdbool.h>

#define GP_REPLICATE_VERSION_LEN 64 /* a version id: 64 lowercase hex digits */
/* The params key a prediction's Replicate view travels in ({model, version, input}); like the
 * request id it is the gateway's, never the handler's (gp_ctx_init removes it). */
#define GP_REPLICATE_PARAM GP_TASK_SURFACE_PARAM

typedef struct gp_rep_version {
    char id[GP_REPLICATE_VERSION_LEN + 1];
    const gp_provider_t *provider;
} gp_rep_version_t;

/* One model: genpulse/<task type> (a version per provider) or a name mapped by the
 * --replicate-models table onto a task type, one provider and fixed params. */
typedef struct gp_rep_model {
    char *owner, *name, *full; /* "genpulse", "echo", "genpulse/echo" */
    char *description;
    const gp_task_type_t *type;
    json_t *fixed;  /* params the mapping sets (object; {} for genpulse models) */
    json_t *ignore; /* input names accepted and dropped (array; [] = none) */
    json_t *rename; /* input name → param name (object; {} = none) */
    bool mapped;    /* from the table (fixed provider) rather than genpulse/<task type> */
    int output;     /* GP_REP_OUTPUT_* */
    gp_rep_version_t *versions;
    size_t n_versions;
    size_t latest; /* index of the default provider's version */
} gp_rep_model_t;

enum {
    GP_REP_OUTPUT_OBJECT = 0,
    GP_REP_OUTPUT_FILE = 1,
    GP_REP_OUTPUT_FILES = 2
};

typedef struct gp_rep_catalog gp_rep_catalog_t;

/* The catalog: every task type, then the table's models (file: the --replicate-models JSON,
 * "" = the built-in table). NULL with the reason in err. */
gp_rep_catalog_t *gp_replicate_catalog_new(const char *file, char *err, size_t cap);
void gp_replicate_catalog_free(gp_rep_catalog_t *c);

size_t gp_replicate_model_count(const gp_rep_catalog_t *c);
const gp_rep_model_t *gp_replicate_model_at(const gp_rep_catalog_t *c, size_t i);
/* "owner/name" → the model, NULL when none. */
const gp_rep_model_t *gp_replicate_model_find(const gp_rep_catalog_t *c, const char *owner,
                                              const char *name);
/* A version id → its model and version, NULL when none. */
const gp_rep_model_t *gp_replicate_version_find(const gp_rep_catalog_t *c, const char *id,
                                                const gp_rep_version_t **version);
/* genpulse/<task type>'s version for that provider (a task created by /v1/tasks). */
void gp_replicate_version_id(const char *task_type, const char *provider,
                             char out[GP_REPLICATE_VERSION_LEN + 1]);

/* A Replicate create body as a GenPulse submission. model NULL: POST /v1/predictions (the body
 * names the version: owner/name, owner/name:<id> or <id>); else the model route's model (the
 * body may not). Returns 0 and fills sub (free with gp_submission_clear): its params carry
 * GP_REPLICATE_PARAM {model, version, input} and webhook_format is Replicate's. Else -1 with
 * *details a new array of {field, message}, fields named as the client sent them (input.<name>,
 * version, webhook, …). Pure; thread-safe. */
int gp_replicate_translate(const gp_rep_catalog_t *c, const gp_rep_model_t *model,
                           const json_t *body, int default_max_retries, gp_submission_t *sub,
                           json_t **details);

/* Model and version JSON (new references). */
json_t *gp_replicate_model_json(gp_http_t *h, const gp_rep_model_t *m);
json_t *gp_replicate_version_json(const gp_rep_model_t *m, const gp_rep_version_t *v);

/* The task as a Replicate prediction (new reference): id, model, version, input, output (file
 * outputs as fresh absolute links), logs (tqdm-style progress), error (string or null),
 * status (starting, processing, succeeded, failed, canceled), times, urls (get, cancel,
 * stream — a signed, expiring link —, web), metrics when finished, data_removed, source.
 * Any task renders, whichever surface made it. */
json_t *gp_replicate_prediction_json(gp_http_t *h, const gp_task_t *t);

/* tqdm's progress bar, which the official clients' progress parsers read:
 * " 45%|████▌     | 45/100" (no newline; cap >= 64). */
void gp_replicate_tqdm_line(int pct, char *out, size_t cap);

/* The signed stream link's path for a prediction id (cap >= 80). */
void gp_replicate_stream_path(const char *id, char *out, size_t cap);

#endif

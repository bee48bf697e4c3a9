/*
 * registry.h — the task types and providers compiled into this binary, and the validation
 * of a submission against their parameter declarations.
 *
 * The table comes from build/gen/registry_gen.c, generated from the source files present
 * (tools/gen_registry.sh). gp_registry_init() checks it once at start; afterwards the
 * registry is read-only and every function here is thread-safe.
 */
#ifndef GP_REGISTRY_H
#define GP_REGISTRY_H

#include <genpulse/handler.h>
#include <jansson.h>

/* Generated: NULL-terminated. */
extern const gp_task_type_t *const gp_generated_task_types[];
extern const gp_provider_t *const gp_generated_providers[];

/*
 * Checks names (unique, well-formed), every default against its own spec, every provider's
 * task types and every task type's default provider. On error writes a message to err and
 * returns -1. Uses the generated tables; gp_registry_init_from() takes explicit ones (tests).
 */
int gp_registry_init(char *err, size_t cap);
int gp_registry_init_from(const gp_task_type_t *const *types, const gp_provider_t *const *providers,
                          char *err, size_t cap);

const gp_task_type_t *gp_registry_task_type(const char *name);
/* The provider `name` if it serves `type`, else NULL. */
const gp_provider_t *gp_registry_provider(const gp_task_type_t *type, const char *name);
/* The i-th task type / provider in registration order (the order GET /v1/task-types lists
 * them); NULL past the end. The provider named `name` whatever it serves, or NULL. */
const gp_task_type_t *gp_registry_task_type_at(size_t i);
const gp_provider_t *gp_registry_provider_at(size_t i);
const gp_provider_t *gp_registry_provider_named(const char *name);
/* Whether provider p serves the task type named type_name. */
bool gp_registry_serves(const gp_provider_t *p, const char *type_name);

/* Limits on the envelope of a submission. */
#define GP_PRIORITY_MIN 0
#define GP_PRIORITY_MAX 9
#define GP_MAX_RETRIES_MAX 100

typedef struct gp_submission {
    const gp_task_type_t *task_type;
    const gp_provider_t *provider;
    json_t *params; /* owned: validated, defaults filled, "provider" set */
    int priority;
    int max_retries;
    char *webhook;           /* owned; NULL = none (an http(s) URL, at most GP_WEBHOOK_URL_MAX) */
    unsigned webhook_events; /* GP_WEBHOOK_EV_* (task.h); all of them when not given */
    int webhook_format;      /* GP_WEBHOOK_FORMAT_* (task.h): set by the surface, not the body */
} gp_submission_t;

#define GP_WEBHOOK_URL_MAX 2048

/*
 * Validates a POST /v1/tasks body. Returns 0 and fills out (free with gp_submission_clear),
 * or returns -1 and sets *details to a new JSON array of {field, message}, one per bad
 * field (caller decrefs). default_max_retries is used when the body has none.
 */
int gp_validate_submission(const json_t *body, int default_max_retries, gp_submission_t *out,
                           json_t **details);
void gp_submission_clear(gp_submission_t *s);

/* The credits a task with these validated params costs on provider p (0 = free). */
int64_t gp_price_of(const gp_provider_t *p, const json_t *params);
/* The price declaration as JSON ({"unit": "task", "credits": 10, ...}), new reference. */
json_t *gp_price_json(const gp_provider_t *p);

/* GET /v1/task-types: {"data": [{name, description, default_provider, providers: [...]}]}. */
json_t *gp_registry_describe(void);
/* JSON Schema (draft 2020-12) of params for one (task type, provider) pair. New reference. */
json_t *gp_params_schema(const gp_task_type_t *type, const gp_provider_t *provider);

#endif

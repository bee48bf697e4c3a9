/*
 * openapi.h — the route documentation table and the OpenAPI 3.1 document built from it.
 *
 * The document is generated once at start (gp_openapi_build) by walking the real route table
 * (gp_route_surfaces): each row is looked up by (method, pattern) in the documentation table
 * (openapi_routes.c, data only), and the declared params (gp_params_schema) become one create
 * schema per task type × provider. A route without a doc entry is a unit-test failure
 * (tests/unit/test_openapi.c); a doc entry for a route this binary lacks is not emitted.
 *
 * Private to src/api/. Threading: the table is immutable; gp_openapi_build runs once before
 * the daemon starts, and its text is read-only afterwards.
 */
#ifndef GP_API_OPENAPI_H
#define GP_API_OPENAPI_H

#include "api/router.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A query, header or path parameter. schema is JSON text (a JSON Schema). */
typedef struct gp_doc_param {
    const char *name;
    const char *in; /* "path", "query", "header" */
    const char *schema;
    const char *description;
    bool required;
} gp_doc_param_t;

/* A success (or notable) answer. schema: NULL = no body; "Name" = #/components/schemas/Name;
 * "{...}" = an inline JSON Schema. media NULL = application/json. */
typedef struct gp_doc_response {
    int status;
    const char *description;
    const char *schema;
    const char *media;
} gp_doc_response_t;

#define GP_DOC_MAX_PARAMS 10
#define GP_DOC_MAX_RESPONSES 4

typedef struct gp_route_doc {
    const char *method;
    const char *pattern; /* exactly as the route table spells it ("{}" per segment) */
    const char *tag;
    const char *operation_id;
    const char *summary;
    const char *description;
    /* Path params first, one per "{}" in order, then query and header params. */
    gp_doc_param_t params[GP_DOC_MAX_PARAMS];
    const char *request;       /* body schema as in responses; NULL = none */
    const char *request_media; /* NULL = application/json */
    gp_doc_response_t responses[GP_DOC_MAX_RESPONSES];
    /* Error statuses this route itself answers, space-separated ("404 409 503"); the ones
     * admission adds (401 403 429 for a scope, 400 413 415 for a JSON body) come on top. */
    const char *errors;
    bool problem; /* errors are application/problem+json (the Replicate surface) */
} gp_route_doc_t;

/* The table: ends with an entry whose method is NULL. */
extern const gp_route_doc_t gp_route_docs[];

/* A component schema: name and JSON text with ' for " (openapi_schemas.c). Ends with NULL. */
typedef struct gp_doc_schema {
    const char *name;
    const char *json;
} gp_doc_schema_t;
extern const gp_doc_schema_t gp_doc_schemas[];

/* Parses JSON text written with single quotes (new reference; NULL when it does not parse). */
json_t *gp_doc_json(const char *text);

/* The entry for (method, pattern), or NULL. */
const gp_route_doc_t *gp_route_doc_find(const char *method, const char *pattern);

/* What the document depends on besides the route table and the registry. */
typedef struct gp_openapi_config {
    const char *version;     /* info.version */
    const char *public_url;  /* servers[0].url; NULL/"" = "/" */
    const char *oidc_issuer; /* an openIdConnect scheme when set; else an http bearer JWT one */
    const char *session_cookie;
} gp_openapi_config_t;

/* The OpenAPI 3.1 document of this binary's routes (new reference). Needs the registry
 * initialized. */
json_t *gp_openapi_document(const gp_openapi_config_t *cfg);
/* The same for the given route surfaces (n NULL-ended arrays): tests document route tables
 * other than this binary's. */
json_t *gp_openapi_document_from(const gp_openapi_config_t *cfg, const gp_route_t *const *surfaces,
                                 size_t n);

#endif

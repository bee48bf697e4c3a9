/*
 * openapi.c — GET /openapi.json: the OpenAPI 3.1 document, built once at start from the route
 * table, the route documentation (openapi_routes.c), the component schemas
 * (openapi_schemas.c), the error list (core/errors.h) and the registry's param declarations.
 *
 * DESIGN
 * - The real route table drives it: an operation exists in the document because a row exists
 *   in gp_route_surfaces(), never because documentation says so. A row without a doc entry
 *   still appears (a bare operation) and fails tests/unit/test_openapi.c.
 * - Status codes an operation can answer come from three places: its doc entry (what its
 *   handler answers), its scope (admission: 401, 403, 429), its body kind (400, 413, 415,
 *   422) — plus 405, which admission answers on every path for a method it does not take.
 * - Create bodies: one schema per task type (discriminated by task_type), whose params are
 *   one schema per provider (discriminated by provider), each from gp_params_schema(), so the
 *   document, /v1/task-types, /v1/providers and the validator read the same declarations.
 * - OpenAPI 3.1 schemas are JSON Schema 2020-12, the dialect gp_params_schema() writes; its
 *   "$schema" member is dropped inside the document (the document's dialect applies).
 */
#include "api/openapi.h"
#include "api/reply.h"
#include "core/errors.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/util.h"
#include "identity/auth.h"
#include "identity/oidc.h"

#include <genpulse/task_errors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_SCHEMAS "#/components/schemas/"

json_t *gp_doc_json(const char *text)
{
    char *copy = gp_xstrdup(text);
    for (char *p = copy; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *j = json_loads(copy, JSON_DECODE_ANY, NULL);
    free(copy);
    return j;
}

static json_t *ref(const char *name)
{
    char *r = gp_xasprintf(REF_SCHEMAS "%s", name);
    json_t *o = json_pack("{s:s}", "$ref", r);
    free(r);
    return o;
}

/* A doc schema: "{...}" inline JSON, else a component name. */
static json_t *doc_schema(const char *spec)
{
    if (spec[0] == '{' || spec[0] == '[') {
        json_t *j = gp_doc_json(spec);
        return j ? j : json_object();
    }
    return ref(spec);
}

/* ------------------------------------------------------------------ components */

static json_t *error_schema(void)
{
    json_t *codes = json_array();
    for (int e = 1; e < GP_E__COUNT; e++) {
        const char *code = gp_err_code(e);
        bool seen = false;
        for (size_t i = 0; i < json_array_size(codes); i++)
            seen |= !strcmp(json_string_value(json_array_get(codes, i)), code);
        if (!seen)
            json_array_append_new(codes, json_string(code));
    }
    return json_pack(
        "{s:s, s:s, s:[s], s:{s:{s:s, s:[s,s,s], s:{s:{s:s, s:o}, s:{s:s}, s:{s:s, s:o}}}}}",
        "type", "object", "description",
        "Every GenPulse error: a stable machine code, a message for people, and one detail per "
        "field at fault.",
        "required", "error", "properties", "error", "type", "object", "required", "code", "message",
        "details", "properties", "code", "type", "string", "enum", codes, "message", "type",
        "string", "details", "type", "array", "items", ref("ErrorDetail"));
}

static json_t *task_error_code_schema(void)
{
    json_t *codes = json_array();
#define GP__TE_CODE(name, code, retry, meaning) json_array_append_new(codes, json_string(code));
    GP_TASK_ERROR_LIST(GP__TE_CODE)
#undef GP__TE_CODE
    return json_pack("{s:s, s:s, s:o}", "type", "string", "description",
                     "A failed task's error code (docs/api.md \"Task error codes\").", "enum",
                     codes);
}

/* The provider's params schema as the document shows it: gp_params_schema() with `provider`
 * required in every variant, as a discriminator wants it (the server still fills in the
 * task type's default when it is omitted; the schema's `default` says which). */
static json_t *params_schema(const gp_task_type_t *t, const gp_provider_t *p)
{
    json_t *s = gp_params_schema(t, p);
    json_object_del(s, "$schema");
    json_t *req = json_object_get(s, "required");
    bool listed = false;
    for (size_t i = 0; i < json_array_size(req); i++)
        listed |= !strcmp(json_string_value(json_array_get(req, i)), "provider");
    if (!listed)
        json_array_append_new(req, json_string("provider"));
    return s;
}

/* A value for one param in an example: its example, its default, or one that validates. */
static json_t *example_value(const gp_param_spec_t *sp)
{
    const char *lit = sp->example_json ? sp->example_json : sp->default_json;
    json_t *v = lit ? json_loads(lit, JSON_DECODE_ANY, NULL) : NULL;
    if (v)
        return v;
    switch (sp->type) {
    case GP_PARAM_STRING:
        if (sp->choices)
            return json_string(sp->choices[0]);
        if (sp->format == GP_FMT_URL || sp->format == GP_FMT_MEDIA_REF)
            return json_string("https://example.org/input.png");
        return json_string(sp->min_length > 7 ? "an example text, long enough" : "example");
    case GP_PARAM_INTEGER: return json_integer(sp->has_minimum ? (json_int_t)sp->minimum : 1);
    case GP_PARAM_NUMBER: return json_real(sp->has_minimum ? sp->minimum : 1);
    case GP_PARAM_BOOLEAN: return json_false();
    default: return json_object();
    }
}

/* The params of an example create body: provider, the required params and those with an
 * example. */
static json_t *example_params(const gp_task_type_t *t, const gp_provider_t *p)
{
    json_t *o = json_pack("{s:s}", "provider", p->name);
    const gp_param_spec_t *lists[2] = {t->params, p->params};
    for (int l = 0; l < 2; l++)
        for (const gp_param_spec_t *sp = lists[l]; sp && sp->name; sp++)
            if (sp->required || sp->example_json)
                json_object_set_new(o, sp->name, example_value(sp));
    return o;
}

/* The provider an example uses: the default, else the first that serves t. */
static const gp_provider_t *example_provider(const gp_task_type_t *t)
{
    const gp_provider_t *p =
        t->default_provider ? gp_registry_provider(t, t->default_provider) : NULL;
    for (size_t i = 0; !p && gp_registry_provider_at(i); i++)
        if (gp_registry_serves(gp_registry_provider_at(i), t->name))
            p = gp_registry_provider_at(i);
    return p;
}

/* CreateTask.<type>: the envelope, with params one of the providers' schemas. */
static json_t *create_schema_for(const gp_task_type_t *t, json_t *schemas)
{
    json_t *one = json_array(), *mapping = json_object();
    bool params_optional = false;
    const gp_provider_t *p;
    for (size_t i = 0; (p = gp_registry_provider_at(i)); i++) {
        if (!gp_registry_serves(p, t->name))
            continue;
        char *name = gp_xasprintf("Params.%s.%s", t->name, p->name);
        json_t *ps = params_schema(t, p);
        if (t->default_provider && !strcmp(t->default_provider, p->name))
            params_optional = json_array_size(json_object_get(ps, "required")) == 1;
        json_object_set_new(schemas, name, ps);
        json_array_append_new(one, ref(name));
        char *r = gp_xasprintf(REF_SCHEMAS "%s", name);
        json_object_set_new(mapping, p->name, json_string(r));
        free(r);
        free(name);
    }
    char *desc =
        gp_xasprintf("The params of %s: one schema per provider, chosen by `provider`%s.", t->name,
                     t->default_provider ? " (the server also accepts it omitted: the task type's "
                                           "default provider, whose schema says so in `default`)"
                                         : "");
    json_t *params = json_pack("{s:s, s:o, s:{s:s, s:o}}", "description", desc, "oneOf", one,
                               "discriminator", "propertyName", "provider", "mapping", mapping);
    free(desc);
    json_t *props = json_pack(
        "{s:{s:s, s:s, s:s}, s:o, s:{s:s, s:i, s:i, s:i, s:s}, s:{s:s, s:i, s:i, s:s},"
        " s:{s:s, s:s, s:i, s:s, s:s}, s:{s:s, s:i, s:b, s:o, s:s}}",
        "task_type", "type", "string", "const", t->name, "description",
        t->description ? t->description : "", "params", params, "priority", "type", "integer",
        "minimum", GP_PRIORITY_MIN, "maximum", GP_PRIORITY_MAX, "default", 0, "description",
        "0 (default) to 9; higher runs first (the plan may add a boost).", "max_retries", "type",
        "integer", "minimum", 0, "maximum", GP_MAX_RETRIES_MAX, "description",
        "Retries after a retryable failure (default: --default-max-retries).", "webhook", "type",
        "string", "format", "uri", "maxLength", GP_WEBHOOK_URL_MAX, "pattern", "^https?://",
        "description",
        "A URL that receives the task (signed, Standard Webhooks) on the events of "
        "webhook_events_filter.",
        "webhook_events_filter", "type", "array", "minItems", 1, "uniqueItems", 1, "items",
        ref("WebhookEvent"), "description", "Which events reach `webhook` (default: all).");
    json_t *required =
        params_optional ? json_pack("[s]", "task_type") : json_pack("[s,s]", "task_type", "params");
    char *title = gp_xasprintf("Create a %s task", t->name);
    json_t *s = json_pack("{s:s, s:s, s:o, s:o, s:b}", "title", title, "type", "object", "required",
                          required, "properties", props, "additionalProperties", 0);
    free(title);
    return s;
}

/* CreateTask (one of CreateTask.<type> by task_type) and the body's examples. */
static void add_create_schemas(json_t *schemas, json_t *examples)
{
    json_t *one = json_array(), *mapping = json_object();
    const gp_task_type_t *t;
    for (size_t i = 0; (t = gp_registry_task_type_at(i)); i++) {
        char *name = gp_xasprintf("CreateTask.%s", t->name);
        json_object_set_new(schemas, name, create_schema_for(t, schemas));
        json_array_append_new(one, ref(name));
        char *r = gp_xasprintf(REF_SCHEMAS "%s", name);
        json_object_set_new(mapping, t->name, json_string(r));
        free(r);
        free(name);
        const gp_provider_t *p = example_provider(t);
        if (p)
            json_object_set_new(examples, t->name,
                                json_pack("{s:s, s:{s:s, s:o}}", "summary",
                                          t->description ? t->description : "", "value",
                                          "task_type", t->name, "params", example_params(t, p)));
    }
    json_object_set_new(schemas, "CreateTask",
                        json_pack("{s:s, s:o, s:{s:s, s:o}}", "description",
                                  "A task to create: the schema of its task_type.", "oneOf", one,
                                  "discriminator", "propertyName", "task_type", "mapping",
                                  mapping));
}

/* ------------------------------------------------------------------ responses */

static const struct {
    int status;
    const char *text;
} error_texts[] = {
    {400, "Bad request: the body is not JSON, or a header is malformed."},
    {401, "Not authenticated: no key or token, or one that is not valid (WWW-Authenticate)."},
    {402, "The account does not have the credits this costs."},
    {403, "Forbidden: the key lacks the scope, the account is disabled, a signed link is wrong, "
          "or a write with a session cookie lacks X-CSRF-Token."},
    {404, "Not found (also another user's resource)."},
    {405, "This path does not take the method; the Allow header lists those it takes."},
    {409, "Conflict: the resource is in a state that does not allow this."},
    {413, "The request body is larger than the server accepts."},
    {415, "Unsupported media type: see the request body's content type."},
    {422, "Validation failed: one detail per field at fault."},
    {429, "Too many requests, or too many pending tasks for the plan; see Retry-After."},
    {500, "Internal error."},
    {503, "A backend (store, queue, registry) is unavailable; try again."},
    {504, "Timed out."},
};

static const char *error_text(int status)
{
    for (size_t i = 0; i < sizeof error_texts / sizeof error_texts[0]; i++)
        if (error_texts[i].status == status)
            return error_texts[i].text;
    return "Error.";
}

/* components.responses.Error<status> / Problem<status>, added once; returns its $ref. */
static json_t *error_response(json_t *responses, int status, bool problem)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", problem ? "Problem" : "Error", status);
    if (!json_object_get(responses, name)) {
        json_t *content =
            json_pack("{s:{s:o}}", problem ? "application/problem+json" : "application/json",
                      "schema", ref(problem ? "Problem" : "Error"));
        json_t *resp =
            json_pack("{s:s, s:o}", "description", error_text(status), "content", content);
        json_t *headers = NULL;
        if (status == 429 || status == 503)
            headers = json_pack("{s:{s:s, s:{s:s}}}", "Retry-After", "description",
                                "Seconds to wait before retrying.", "schema", "type", "integer");
        else if (status == 405)
            headers = json_pack("{s:{s:s, s:{s:s}}}", "Allow", "description",
                                "The methods this path takes.", "schema", "type", "string");
        else if (status == 401)
            headers =
                json_pack("{s:{s:s, s:{s:s}}}", "WWW-Authenticate", "description",
                          "The challenge (Bearer realm=\"genpulse\").", "schema", "type", "string");
        if (headers)
            json_object_set_new(resp, "headers", headers);
        json_object_set_new(responses, name, resp);
    }
    char *r = gp_xasprintf("#/components/responses/%s", name);
    json_t *o = json_pack("{s:s}", "$ref", r);
    free(r);
    return o;
}

static bool has_param(const gp_route_doc_t *d, const char *name)
{
    for (int i = 0; d && i < GP_DOC_MAX_PARAMS && d->params[i].name; i++)
        if (!strcmp(d->params[i].name, name))
            return true;
    return false;
}

static json_t *success_response(const gp_route_doc_t *d, const gp_doc_response_t *dr)
{
    json_t *o = json_pack("{s:s}", "description", dr->description);
    if (dr->schema)
        json_object_set_new(o, "content",
                            json_pack("{s:{s:o}}", dr->media ? dr->media : "application/json",
                                      "schema", doc_schema(dr->schema)));
    json_t *headers = json_object();
    if (has_param(d, "Prefer") && dr->status < 300)
        json_object_set_new(headers, "Preference-Applied",
                            json_pack("{s:s, s:{s:s}}", "description",
                                      "The wait applied (wait=N), when Prefer asked one.", "schema",
                                      "type", "string"));
    if (has_param(d, "Idempotency-Key") && dr->status < 300)
        json_object_set_new(headers, "Idempotent-Replayed",
                            json_pack("{s:s, s:{s:s}}", "description",
                                      "true when this answers an earlier request with the same "
                                      "Idempotency-Key.",
                                      "schema", "type", "string"));
    if (dr->status == 302)
        json_object_set_new(
            headers, "Location",
            json_pack("{s:s, s:{s:s}}", "description", "Where to go.", "schema", "type", "string"));
    if (json_object_size(headers))
        json_object_set_new(o, "headers", headers);
    else
        json_decref(headers);
    return o;
}

/* ------------------------------------------------------------------ operations */

/* "/v1/tasks/{}/cancel" → "/v1/tasks/{id}/cancel", names from the doc's path params. */
static char *path_template(const char *pattern, const gp_route_doc_t *d)
{
    char out[512];
    size_t o = 0;
    int next = 0, np = 0; /* next: where to look for the next path param in d->params */
    for (const char *p = pattern; *p && o + 40 < sizeof out;) {
        if (strncmp(p, "{}", 2) != 0) {
            out[o++] = *p++;
            continue;
        }
        const char *name = NULL;
        while (d && !name && next < GP_DOC_MAX_PARAMS && d->params[next].name) {
            if (!strcmp(d->params[next].in, "path"))
                name = d->params[next].name;
            next++;
        }
        char fallback[24];
        snprintf(fallback, sizeof fallback, "param%d", ++np);
        o += (size_t)snprintf(out + o, sizeof out - o, "{%s}", name ? name : fallback);
        p += 2;
    }
    out[o] = '\0';
    return gp_xstrdup(out);
}

static json_t *parameters(const gp_route_doc_t *d, const char *pattern)
{
    json_t *list = json_array();
    int declared = 0;
    for (int i = 0; d && i < GP_DOC_MAX_PARAMS && d->params[i].name; i++) {
        const gp_doc_param_t *p = &d->params[i];
        bool path = !strcmp(p->in, "path");
        declared += path;
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:o}", "name", p->name, "in", p->in,
                              "description", p->description ? p->description : "", "required",
                              path || p->required, "schema", doc_schema(p->schema));
        json_array_append_new(list, o);
    }
    /* A route without docs: its path params still have to be declared. */
    int np = 0;
    for (const char *s = pattern; (s = strstr(s, "{}")); s += 2)
        np++;
    for (int i = declared; i < np; i++) {
        char name[24];
        snprintf(name, sizeof name, "param%d", i + 1);
        json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in",
                                              "path", "required", 1, "schema", "type", "string"));
    }
    return list;
}

static json_t *security(const gp_route_t *rt)
{
    if (!rt->scope)
        return json_array(); /* public */
    json_t *roles = rt->scope[0] ? json_pack("[s]", rt->scope) : json_array();
    return json_pack("[{s:O}, {s:[]}, {s:o}]", "apiKey", roles, "oidc", "session", roles);
}

static void add_errors(json_t *responses, json_t *comp_responses, const char *list, bool problem)
{
    for (const char *p = list; p && *p;) {
        char *end = NULL;
        long st = strtol(p, &end, 10);
        if (end == p)
            break;
        char key[8];
        snprintf(key, sizeof key, "%ld", st);
        if (!json_object_get(responses, key))
            json_object_set_new(responses, key, error_response(comp_responses, (int)st, problem));
        p = end;
    }
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* responses with its status keys in ascending order (stolen; new reference). */
static json_t *sorted_responses(json_t *responses)
{
    const char *keys[64];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach (responses, key, v)
        if (n < sizeof keys / sizeof keys[0])
            keys[n++] = key;
    qsort(keys, n, sizeof keys[0], cmp_keys); /* three digits each: text order is numeric */
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set(out, keys[i], json_object_get(responses, keys[i]));
    json_decref(responses);
    return out;
}

/* The sentence saying who may call rt. */
static void access_text(const gp_route_t *rt, char *out, size_t cap)
{
    if (!rt->scope)
        snprintf(out, cap, "Public: no authentication.");
    else if (!rt->scope[0])
        snprintf(out, cap, "Any authenticated caller.");
    else
        snprintf(out, cap, "Needs the scope `%s`.", rt->scope);
}

static json_t *operation(const gp_route_t *rt, const gp_route_doc_t *d, json_t *components,
                         json_t *create_examples)
{
    json_t *comp_responses = json_object_get(components, "responses");
    json_t *op = json_object();
    char fallback_id[160];
    snprintf(fallback_id, sizeof fallback_id, "%s %s", rt->method, rt->pattern);
    json_object_set_new(op, "tags", json_pack("[s]", d ? d->tag : "Undocumented"));
    json_object_set_new(op, "summary", json_string(d ? d->summary : fallback_id));
    char who[96];
    access_text(rt, who, sizeof who);
    char *desc = gp_xasprintf("%s%s%s", d && d->description ? d->description : "",
                              d && d->description ? "\n\n" : "", who);
    json_object_set_new(op, "description", json_string(desc));
    free(desc);
    if (d)
        json_object_set_new(op, "operationId", json_string(d->operation_id));
    json_t *params = parameters(d, rt->pattern);
    if (json_array_size(params))
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);
    if (d && d->request) {
        const char *media = d->request_media ? d->request_media : "application/json";
        json_t *mt = json_pack("{s:o}", "schema", doc_schema(d->request));
        if (!strcmp(d->request, "CreateTask"))
            json_object_set_new(mt, "examples", json_incref(create_examples));
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:o}}", "required", 1, "content", media, mt));
    }
    json_t *responses = json_object();
    for (int i = 0; d && i < GP_DOC_MAX_RESPONSES && d->responses[i].status; i++) {
        char key[8];
        snprintf(key, sizeof key, "%d", d->responses[i].status);
        json_object_set_new(responses, key, success_response(d, &d->responses[i]));
    }
    if (!json_object_size(responses))
        json_object_set_new(responses, "200", json_pack("{s:s}", "description", "OK."));
    bool problem = d && d->problem;
    if (rt->body == GP_BODY_JSON)
        add_errors(responses, comp_responses, "400 413 415 422", problem);
    if (rt->body == GP_BODY_UPLOAD)
        add_errors(responses, comp_responses, "413 415", problem);
    if (rt->scope)
        add_errors(responses, comp_responses, "401 403 429", problem);
    add_errors(responses, comp_responses, d ? d->errors : NULL, problem);
    add_errors(responses, comp_responses, "405", problem);
    json_object_set_new(op, "responses", sorted_responses(responses));
    json_object_set_new(op, "security", security(rt));
    if (rt->scope && rt->scope[0])
        json_object_set_new(op, "x-genpulse-scope", json_string(rt->scope));
    return op;
}

/* ------------------------------------------------------------------ the document */

static const struct {
    const char *name, *description;
} tag_docs[] = {
    {"Tasks", "Create, read, list, cancel and retry tasks."},
    {"Events", "Server-Sent Events streams of task status and progress."},
    {"Discovery", "Task types, providers, their param schemas, and this document."},
    {"Assets", "Uploaded inputs and stored outputs."},
    {"Account", "The caller, its credits, and browser sign-in."},
    {"Admin", "Users, API keys and credit grants (scope admin)."},
    {"Operations", "Health, readiness, metrics, workers, stats and the dashboard."},
    {"Webhooks", "Registered webhook endpoints and their deliveries (Standard Webhooks)."},
    {"Replicate", "A Replicate-compatible API: errors as application/problem+json."},
    {"Undocumented", "Routes that have no documentation entry yet."},
};

static json_t *security_schemes(const gp_openapi_config_t *cfg)
{
    json_t *s = json_object();
    json_object_set_new(s, "apiKey",
                        json_pack("{s:s, s:s, s:s, s:s}", "type", "http", "scheme", "bearer",
                                  "bearerFormat", "gp_… API key", "description",
                                  "An API key (`genpulse keys create`, or POST /v1/keys): "
                                  "`Authorization: Bearer gp_…`. The Replicate routes also take "
                                  "`Authorization: Token gp_…`."));
    if (cfg->oidc_issuer && cfg->oidc_issuer[0]) {
        char *url = gp_xasprintf("%s/.well-known/openid-configuration", cfg->oidc_issuer);
        json_object_set_new(s, "oidc",
                            json_pack("{s:s, s:s, s:s}", "type", "openIdConnect",
                                      "openIdConnectUrl", url, "description",
                                      "An ID token from the configured issuer, sent as "
                                      "`Authorization: Bearer <JWT>`."));
        free(url);
    } else {
        json_object_set_new(s, "oidc",
                            json_pack("{s:s, s:s, s:s, s:s}", "type", "http", "scheme", "bearer",
                                      "bearerFormat", "JWT", "description",
                                      "An OIDC ID token (when an issuer is configured: "
                                      "--oidc-issuer or --oidc-google-client-id)."));
    }
    json_object_set_new(s, "session",
                        json_pack("{s:s, s:s, s:s, s:s}", "type", "apiKey", "in", "cookie", "name",
                                  cfg->session_cookie, "description",
                                  "The browser session cookie set by /v1/auth/callback. Writes "
                                  "made with it also need the X-CSRF-Token header (the "
                                  "csrf_token of GET /v1/account)."));
    return s;
}

static json_t *components(void)
{
    json_t *schemas = json_object();
    for (const gp_doc_schema_t *s = gp_doc_schemas; s->name; s++) {
        json_t *j = gp_doc_json(s->json);
        json_object_set_new(schemas, s->name, j ? j : json_object());
    }
    json_object_set_new(schemas, "Error", error_schema());
    json_object_set_new(schemas, "TaskErrorCode", task_error_code_schema());
    return json_pack("{s:o, s:{}}", "schemas", schemas, "responses");
}

/* Adds to `seen` every component schema that j refers to ($ref), and what those refer to. */
static void collect_refs(json_t *j, json_t *schemas, json_t *seen)
{
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach (j, i, v)
            collect_refs(v, schemas, seen);
        return;
    }
    if (!json_is_object(j))
        return;
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        const char *r = json_string_value(v);
        size_t n = strlen(REF_SCHEMAS);
        if (!strcmp(key, "$ref") && r && !strncmp(r, REF_SCHEMAS, n) &&
            !json_object_get(seen, r + n)) {
            json_object_set_new(seen, r + n, json_true());
            collect_refs(json_object_get(schemas, r + n), schemas, seen);
        } else {
            collect_refs(v, schemas, seen);
        }
    }
}

/* Drops the component schemas no emitted operation reaches (those of documented routes this
 * binary does not have). */
static void prune_schemas(json_t *paths, json_t *comp)
{
    json_t *schemas = json_object_get(comp, "schemas"), *seen = json_object();
    collect_refs(paths, schemas, seen);
    collect_refs(json_object_get(comp, "responses"), schemas, seen);
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(schemas, tmp, key, v) if (!json_object_get(seen, key))
        json_object_del(schemas, key);
    json_decref(seen);
}

json_t *gp_openapi_document(const gp_openapi_config_t *cfg)
{
    size_t n;
    const gp_route_t *const *surfaces = gp_route_surfaces(&n);
    return gp_openapi_document_from(cfg, surfaces, n);
}

json_t *gp_openapi_document_from(const gp_openapi_config_t *cfg, const gp_route_t *const *surfaces,
                                 size_t n)
{
    json_t *comp = components();
    json_t *examples = json_object();
    add_create_schemas(json_object_get(comp, "schemas"), examples);
    json_t *paths = json_object(), *used_tags = json_object();
    for (size_t i = 0; i < n; i++)
        for (const gp_route_t *rt = surfaces[i]; rt->method; rt++) {
            const gp_route_doc_t *d = gp_route_doc_find(rt->method, rt->pattern);
            char *path = path_template(rt->pattern, d);
            json_t *item = json_object_get(paths, path);
            if (!item) {
                item = json_object();
                json_object_set_new(paths, path, item);
            }
            char method[8];
            size_t k = 0;
            for (; rt->method[k] && k + 1 < sizeof method; k++)
                method[k] = (char)(rt->method[k] | 0x20);
            method[k] = '\0';
            json_object_set_new(item, method, operation(rt, d, comp, examples));
            json_object_set_new(used_tags, d ? d->tag : "Undocumented", json_true());
            free(path);
        }
    json_decref(examples);
    prune_schemas(paths, comp);
    json_object_set_new(comp, "securitySchemes", security_schemes(cfg));
    json_t *tags = json_array();
    for (size_t i = 0; i < sizeof tag_docs / sizeof tag_docs[0]; i++)
        if (json_object_get(used_tags, tag_docs[i].name))
            json_array_append_new(tags, json_pack("{s:s, s:s}", "name", tag_docs[i].name,
                                                  "description", tag_docs[i].description));
    json_decref(used_tags);
    const char *server = cfg->public_url && cfg->public_url[0] ? cfg->public_url : "/";
    return json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:o, s:o}", "openapi", "3.1.0", "info", "title",
        "GenPulse", "version", cfg->version, "description",
        "A generative-AI task backend: submit a task of a task type to a provider, follow it "
        "(poll, SSE, webhooks), read its outputs. Every error is "
        "{\"error\":{\"code\",\"message\",\"details\":[{\"field\",\"message\"}]}} except on the "
        "Replicate-compatible routes (application/problem+json).",
        "servers", "url", server, "tags", tags, "paths", paths, "components", comp);
}

/* ------------------------------------------------------------------ the route */

static enum MHD_Result get_openapi(request_t *r)
{
    gp_http_t *h = r->http;
    if (!h->openapi_json)
        return gp_send_error(r->conn, GP_E_UNAVAILABLE, "the document was not built", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        h->openapi_len, (void *)h->openapi_json, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = gp_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

int gp_openapi_build(gp_http_t *h)
{
    const gp_settings_t *s = h->rt->settings;
    /* Without --public-url the start-up fills in http://HOST:PORT (main.c); that default
     * stays out of `servers`, so a browser that reached us by another name calls its own
     * origin ("/"). */
    char *derived = strchr(s->host, ':')
                        ? gp_xasprintf("http://[%s]:%lld", s->host, (long long)s->port)
                        : gp_xasprintf("http://%s:%lld", s->host, (long long)s->port);
    gp_openapi_config_t cfg = {
        .version = GP_HTTP_VERSION,
        .public_url = strcmp(s->public_url, derived) != 0 ? s->public_url : NULL,
        .oidc_issuer = s->oidc_issuer[0]             ? s->oidc_issuer
                       : s->oidc_google_client_id[0] ? GP_OIDC_GOOGLE_ISSUER
                                                     : NULL,
        .session_cookie = GP_SESSION_COOKIE,
    };
    json_t *doc = gp_openapi_document(&cfg);
    free(derived);
    h->openapi_json = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    h->openapi_len = h->openapi_json ? strlen(h->openapi_json) : 0;
    return h->openapi_json ? 0 : -GP_E_NOMEM;
}

const gp_route_t gp_routes_openapi[] = {
    {"GET", "/openapi.json", GP_BODY_NONE, NULL, get_openapi, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

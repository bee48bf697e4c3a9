/*
 * replicate_models.c — the Replicate model catalog and its routes: GET /v1/models,
 * GET /v1/models/{owner}/{name}, its versions, and a version.
 *
 * DESIGN
 * - Every task type is a model genpulse/<task type> with one version per provider; a version
 *   id is the SHA-256 hex of "<task type>/<provider>" (stable across processes and restarts,
 *   so a pinned "owner/name:<id>" keeps working). The default provider's version is latest.
 * - Other names (Replicate's catalog: black-forest-labs/flux-schnell, …) come from a table
 *   (--replicate-models, else the built-in one below): a task type, one provider, fixed
 *   params, input names to drop or rename. Their version id hashes "<owner>/<name>:<task
 *   type>/<provider>", so it never equals a genpulse version.
 * - Built once before the daemon starts; read-only afterwards.
 */
#include "api/replicate.h"
#include "api/reply.h"
#include "core/crypto.h"
#include "core/errors.h"
#include "core/registry.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REP_NAME_MAX 64     /* an owner or a model name */
#define REP_MODELS_MAX 256  /* models in a table */
#define COG_VERSION "0.9.0" /* >= 0.3.9: the Python client reads components.schemas */
#define VERSION_CREATED "2026-01-01T00:00:00.000Z" /* versions are code: one fixed date */

struct gp_rep_catalog {
    gp_rep_model_t *models;
    size_t n;
};

/* Replicate's catalog names onto the engines every build has (docs/api.md lists them). */
static const char builtin_table[] =
    "{"
    "\"black-forest-labs/flux-schnell\": {\"task_type\": \"text-to-image\", \"provider\": "
    "\"simulator\", \"params\": {\"steps\": 4}, \"ignore\": [\"aspect_ratio\", \"num_outputs\", "
    "\"output_format\", \"output_quality\", \"go_fast\", \"megapixels\", "
    "\"num_inference_steps\", \"disable_safety_checker\"], \"description\": \"FLUX.1 "
    "[schnell] names, served by the local image simulator.\"},"
    "\"black-forest-labs/flux-dev\": {\"task_type\": \"text-to-image\", \"provider\": "
    "\"simulator\", \"params\": {\"steps\": 28}, \"ignore\": [\"aspect_ratio\", \"num_outputs\", "
    "\"output_format\", \"output_quality\", \"go_fast\", \"megapixels\", "
    "\"num_inference_steps\", \"guidance\", \"disable_safety_checker\"], \"description\": "
    "\"FLUX.1 [dev] names, served by the local image simulator.\"},"
    "\"stability-ai/sdxl\": {\"task_type\": \"text-to-image\", \"provider\": \"simulator\", "
    "\"ignore\": [\"num_outputs\", \"scheduler\", \"num_inference_steps\", "
    "\"guidance_scale\", \"refine\", \"high_noise_frac\", \"apply_watermark\", "
    "\"lora_scale\", \"prompt_strength\", \"disable_safety_checker\"], \"description\": "
    "\"SDXL names, served by the local image simulator.\"},"
    "\"suno-ai/bark\": {\"task_type\": \"text-to-audio\", \"provider\": \"espeak\", "
    "\"rename\": {\"prompt\": \"text\"}, \"ignore\": [\"history_prompt\", \"text_temp\", "
    "\"waveform_temp\", \"output_full\"], \"output\": \"file\", \"description\": \"Bark "
    "names, spoken by eSpeak NG.\"}"
    "}";

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > REP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

void gp_replicate_version_id(const char *task_type, const char *provider,
                             char out[GP_REPLICATE_VERSION_LEN + 1])
{
    char *text = gp_xasprintf("%s/%s", task_type, provider);
    gp_sha256_hex(text, strlen(text), out);
    free(text);
}

static bool serves(const gp_provider_t *p, const char *type)
{
    for (const char *const *t = p->task_types; t && *t; t++)
        if (!strcmp(*t, type))
            return true;
    return false;
}

static int default_output(const gp_task_type_t *t)
{
    if (!strcmp(t->name, "echo"))
        return GP_REP_OUTPUT_OBJECT;
    return strstr(t->name, "-to-image") ? GP_REP_OUTPUT_FILES : GP_REP_OUTPUT_FILE;
}

static void model_init(gp_rep_model_t *m, const char *owner, const char *name,
                       const gp_task_type_t *type)
{
    m->owner = gp_xstrdup(owner);
    m->name = gp_xstrdup(name);
    m->full = gp_xasprintf("%s/%s", owner, name);
    m->type = type;
    m->output = default_output(type);
    m->fixed = json_object();
    m->ignore = json_array();
    m->rename = json_object();
}

static void add_genpulse_models(gp_rep_catalog_t *c)
{
    for (size_t i = 0; gp_generated_task_types[i]; i++) {
        const gp_task_type_t *t = gp_generated_task_types[i];
        gp_rep_model_t *m = &c->models[c->n++];
        model_init(m, "genpulse", t->name, t);
        m->description = gp_xstrdup(t->description ? t->description : "");
        size_t np = 0;
        for (size_t k = 0; gp_generated_providers[k]; k++)
            np += serves(gp_generated_providers[k], t->name);
        m->versions = gp_xcalloc(np ? np : 1, sizeof *m->versions);
        for (size_t k = 0; gp_generated_providers[k]; k++) {
            const gp_provider_t *p = gp_generated_providers[k];
            if (!serves(p, t->name))
                continue;
            gp_rep_version_t *v = &m->versions[m->n_versions];
            v->provider = p;
            gp_replicate_version_id(t->name, p->name, v->id);
            if (t->default_provider && !strcmp(t->default_provider, p->name))
                m->latest = m->n_versions;
            m->n_versions++;
        }
    }
}

/* One table entry into m; false with the reason in err. */
static bool parse_entry(const char *full, json_t *e, gp_rep_model_t *m, char *err, size_t cap)
{
    const char *slash = strchr(full, '/');
    if (!slash || !name_ok(full, (size_t)(slash - full)) ||
        !name_ok(slash + 1, strlen(slash + 1))) {
        snprintf(err, cap, "model \"%.80s\": the name must be owner/name (a-z, 0-9, - _ .)", full);
        return false;
    }
    char owner[REP_NAME_MAX + 1];
    snprintf(owner, sizeof owner, "%.*s", (int)(slash - full), full);
    if (!strcmp(owner, "genpulse")) {
        snprintf(err, cap, "model \"%.80s\": the owner genpulse is the task types' own", full);
        return false;
    }
    const char *tt = json_string_value(json_object_get(e, "task_type"));
    const gp_task_type_t *type = tt ? gp_registry_task_type(tt) : NULL;
    if (!json_is_object(e) || !type) {
        snprintf(err, cap, "model \"%.80s\": task_type must name a task type", full);
        return false;
    }
    json_t *pv = json_object_get(e, "provider");
    const char *pname = pv ? json_string_value(pv) : type->default_provider;
    const gp_provider_t *p = pname ? gp_registry_provider(type, pname) : NULL;
    if (!p) {
        snprintf(err, cap, "model \"%.80s\": provider must be one serving %s", full, type->name);
        return false;
    }
    json_t *params = json_object_get(e, "params"), *ignore = json_object_get(e, "ignore");
    json_t *rename = json_object_get(e, "rename"), *out = json_object_get(e, "output");
    json_t *desc = json_object_get(e, "description");
    if ((params && !json_is_object(params)) || (ignore && !json_is_array(ignore)) ||
        (rename && !json_is_object(rename)) || (desc && !json_is_string(desc))) {
        snprintf(err, cap,
                 "model \"%.80s\": params and rename must be objects, ignore a list of names, "
                 "description a string",
                 full);
        return false;
    }
    static const char *const outputs[] = {"object", "file", "files"};
    int output = -1;
    for (int i = 0; out && i < 3; i++)
        if (json_is_string(out) && !strcmp(json_string_value(out), outputs[i]))
            output = i;
    if (out && output < 0) {
        snprintf(err, cap, "model \"%.80s\": output must be object, file or files", full);
        return false;
    }
    model_init(m, owner, slash + 1, type);
    m->mapped = true;
    if (output >= 0)
        m->output = output;
    if (params)
        json_object_update(m->fixed, params);
    json_object_del(m->fixed, "provider");
    if (ignore)
        json_array_extend(m->ignore, ignore);
    if (rename)
        json_object_update(m->rename, rename);
    m->description = gp_xstrdup(desc                ? json_string_value(desc)
                                : type->description ? type->description
                                                    : "");
    m->versions = gp_xcalloc(1, sizeof *m->versions);
    m->n_versions = 1;
    m->versions[0].provider = p;
    char *text = gp_xasprintf("%s:%s/%s", full, type->name, p->name);
    gp_sha256_hex(text, strlen(text), m->versions[0].id);
    free(text);
    return true;
}

gp_rep_catalog_t *gp_replicate_catalog_new(const char *file, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *table = file && *file ? json_load_file(file, JSON_REJECT_DUPLICATES, &jerr)
                                  : json_loads(builtin_table, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(table)) {
        snprintf(err, cap, "--replicate-models %s: %s", file && *file ? file : "(built in)",
                 table ? "must be a JSON object of \"owner/name\": {…}" : jerr.text);
        json_decref(table);
        return NULL;
    }
    size_t n_types = 0;
    while (gp_generated_task_types[n_types])
        n_types++;
    if (json_object_size(table) > REP_MODELS_MAX) {
        snprintf(err, cap, "--replicate-models: at most %d models", REP_MODELS_MAX);
        json_decref(table);
        return NULL;
    }
    gp_rep_catalog_t *c = gp_xcalloc(1, sizeof *c);
    c->models = gp_xcalloc(n_types + json_object_size(table) + 1, sizeof *c->models);
    add_genpulse_models(c);
    const char *key;
    json_t *e;
    json_object_foreach (table, key, e) {
        char why[200];
        if (gp_replicate_model_find(c, key, NULL)) {
            snprintf(err, cap, "--replicate-models: model \"%.80s\" appears twice", key);
            goto fail;
        }
        if (!parse_entry(key, e, &c->models[c->n], why, sizeof why)) {
            snprintf(err, cap, "--replicate-models: %s", why);
            goto fail;
        }
        c->n++;
    }
    json_decref(table);
    return c;
fail:
    json_decref(table);
    gp_replicate_catalog_free(c);
    return NULL;
}

void gp_replicate_catalog_free(gp_rep_catalog_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        gp_rep_model_t *m = &c->models[i];
        free(m->owner);
        free(m->name);
        free(m->full);
        free(m->description);
        json_decref(m->fixed);
        json_decref(m->ignore);
        json_decref(m->rename);
        free(m->versions);
    }
    free(c->models);
    free(c);
}

size_t gp_replicate_model_count(const gp_rep_catalog_t *c)
{
    return c->n;
}

const gp_rep_model_t *gp_replicate_model_at(const gp_rep_catalog_t *c, size_t i)
{
    return i < c->n ? &c->models[i] : NULL;
}

const gp_rep_model_t *gp_replicate_model_find(const gp_rep_catalog_t *c, const char *owner,
                                              const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        const gp_rep_model_t *m = &c->models[i];
        if (name ? !strcmp(m->owner, owner) && !strcmp(m->name, name) : !strcmp(m->full, owner))
            return m;
    }
    return NULL;
}

const gp_rep_model_t *gp_replicate_version_find(const gp_rep_catalog_t *c, const char *id,
                                                const gp_rep_version_t **version)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < c->models[i].n_versions; k++)
            if (!strcmp(c->models[i].versions[k].id, id)) {
                *version = &c->models[i].versions[k];
                return &c->models[i];
            }
    return NULL;
}

/* ---------------------------------------------------------------- JSON */

/* Cog's Input: the params schema less what the model fixes, with renamed inputs. */
static json_t *input_schema(const gp_rep_model_t *m, const gp_rep_version_t *v)
{
    json_t *s = gp_params_schema(m->type, v->provider);
    json_object_del(s, "$schema");
    json_object_set_new(s, "title", json_string("Input"));
    json_t *props = json_object_get(s, "properties"), *required = json_object_get(s, "required");
    json_object_del(props, "provider");
    const char *k;
    json_t *val;
    json_object_foreach (m->fixed, k, val)
        json_object_del(props, k);
    json_object_foreach (m->rename, k, val) {
        const char *to = json_string_value(val);
        json_t *p = to ? json_object_get(props, to) : NULL;
        if (p) {
            json_object_set(props, k, p);
            json_object_del(props, to);
        }
    }
    json_t *req = json_array();
    size_t i;
    json_array_foreach (required, i, val) {
        const char *name = json_string_value(val);
        json_object_foreach (m->rename, k, val)
            if (json_is_string(val) && !strcmp(json_string_value(val), name))
                name = k;
        if (json_object_get(props, name))
            json_array_append_new(req, json_string(name));
    }
    json_object_set_new(s, "required", req);
    int order = 0;
    json_object_foreach (props, k, val)
        json_object_set_new(val, "x-order", json_integer(order++));
    return s;
}

static json_t *output_schema(const gp_rep_model_t *m)
{
    if (m->output == GP_REP_OUTPUT_FILES)
        return json_pack("{s:s, s:s, s:{s:s, s:s}}", "title", "Output", "type", "array", "items",
                         "type", "string", "format", "uri");
    if (m->output == GP_REP_OUTPUT_FILE)
        return json_pack("{s:s, s:s, s:s}", "title", "Output", "type", "string", "format", "uri");
    return json_pack("{s:s, s:s}", "title", "Output", "type", "object");
}

json_t *gp_replicate_version_json(const gp_rep_model_t *m, const gp_rep_version_t *v)
{
    json_t *schemas =
        json_pack("{s:o, s:o}", "Input", input_schema(m, v), "Output", output_schema(m));
    json_t *api =
        json_pack("{s:s, s:{s:s, s:s}, s:{}, s:{s:o}}", "openapi", "3.0.2", "info", "title", "Cog",
                  "version", "0.1.0", "paths", "components", "schemas", schemas);
    return json_pack("{s:s, s:s, s:s, s:o}", "id", v->id, "created_at", VERSION_CREATED,
                     "cog_version", COG_VERSION, "openapi_schema", api);
}

json_t *gp_replicate_model_json(gp_http_t *h, const gp_rep_model_t *m)
{
    char *url = gp_xasprintf("%s/v1/models/%s", h->rt->public_url, m->full);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:n, s:i, s:n, s:n}", "url", url,
                          "owner", m->owner, "name", m->name, "description", m->description,
                          "visibility", "public", "github_url", "paper_url", "license_url",
                          "run_count", 0, "cover_image_url", "default_example");
    free(url);
    json_object_set_new(o, "latest_version",
                        m->n_versions ? gp_replicate_version_json(m, &m->versions[m->latest])
                                      : json_null());
    return o;
}

/* ---------------------------------------------------------------- routes */

static enum MHD_Result no_model(request_t *r)
{
    return gp_send_error(r->conn, GP_E_NOT_FOUND, "no model with this name", NULL);
}

static enum MHD_Result list_models(request_t *r)
{
    gp_http_t *h = r->http;
    json_t *results = json_array();
    for (size_t i = 0; i < h->replicate->n; i++)
        json_array_append_new(results, gp_replicate_model_json(h, &h->replicate->models[i]));
    return gp_send_json(r->conn, 200,
                        json_pack("{s:n, s:n, s:o}", "next", "previous", "results", results), NULL,
                        NULL);
}

static enum MHD_Result get_model(request_t *r)
{
    const gp_rep_model_t *m =
        gp_replicate_model_find(r->http->replicate, r->path_params[0], r->path_params[1]);
    if (!m)
        return no_model(r);
    return gp_send_json(r->conn, 200, gp_replicate_model_json(r->http, m), NULL, NULL);
}

static enum MHD_Result list_versions(request_t *r)
{
    const gp_rep_model_t *m =
        gp_replicate_model_find(r->http->replicate, r->path_params[0], r->path_params[1]);
    if (!m)
        return no_model(r);
    json_t *results = json_array();
    /* Newest first, as Replicate lists them: the latest version leads. */
    json_array_append_new(results, gp_replicate_version_json(m, &m->versions[m->latest]));
    for (size_t i = 0; i < m->n_versions; i++)
        if (i != m->latest)
            json_array_append_new(results, gp_replicate_version_json(m, &m->versions[i]));
    return gp_send_json(r->conn, 200,
                        json_pack("{s:n, s:n, s:o}", "next", "previous", "results", results), NULL,
                        NULL);
}

static enum MHD_Result get_version(request_t *r)
{
    const gp_rep_model_t *m =
        gp_replicate_model_find(r->http->replicate, r->path_params[0], r->path_params[1]);
    if (!m)
        return no_model(r);
    for (size_t i = 0; i < m->n_versions; i++)
        if (!strcmp(m->versions[i].id, r->path_params[2]))
            return gp_send_json(r->conn, 200, gp_replicate_version_json(m, &m->versions[i]), NULL,
                                NULL);
    return gp_send_error(r->conn, GP_E_NOT_FOUND, "this model has no version with this id", NULL);
}

const gp_route_t gp_routes_replicate_models[] = {
    {"GET", "/v1/models", GP_BODY_NONE, "tasks:read", list_models, NULL},
    {"GET", "/v1/models/{}/{}", GP_BODY_NONE, "tasks:read", get_model, NULL},
    {"GET", "/v1/models/{}/{}/versions", GP_BODY_NONE, "tasks:read", list_versions, NULL},
    {"GET", "/v1/models/{}/{}/versions/{}", GP_BODY_NONE, "tasks:read", get_version, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

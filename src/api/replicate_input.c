/*
 * replicate_input.c — a Replicate create body as a GenPulse submission: the body's fields, the
 * version reference, the model's input renames, dropped names and fixed params, then the same
 * validation /v1/tasks uses, with its details renamed to what the client sent (input.<name>).
 *
 * Pure (no request, no I/O): the HTTP routes (replicate.c) and the fuzz target
 * (tests/fuzz/fuzz_replicate_create.c) call gp_replicate_translate alike.
 */
#include "api/replicate.h"
#include "core/registry.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_detail(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* The body's fields: every one known (Replicate's schema has additionalProperties: false). */
static void check_fields(const json_t *body, bool with_version, json_t *details)
{
    static const char *const known[] = {
        "version", "input", "webhook", "webhook_events_filter", "stream", "webhook_completed"};
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)body, k, v) {
        bool ok = false;
        for (size_t i = with_version ? 0 : 1; i < sizeof known / sizeof known[0]; i++)
            ok = ok || !strcmp(k, known[i]);
        if (!ok) {
            char field[96];
            snprintf(field, sizeof field, "%.80s", k);
            add_detail(details, field,
                       with_version ? "is not a field of a prediction request"
                                    : "is not a field of a model's prediction request (the "
                                      "model in the path is the version)");
        }
    }
    json_t *s = json_object_get(body, "stream");
    if (s && !json_is_boolean(s))
        add_detail(details, "stream", "must be a boolean");
    json_t *in = json_object_get(body, "input");
    if (!in)
        add_detail(details, "input", "is required");
    else if (!json_is_object(in))
        add_detail(details, "input", "must be an object");
}

/* The input as params: renamed, the ignored names dropped, the model's fixed params on top. */
static json_t *input_params(const gp_rep_model_t *m, const gp_rep_version_t *v, bool pinned,
                            const json_t *input, json_t *details)
{
    json_t *params = json_object();
    const char *k;
    json_t *val;
    json_object_foreach ((json_t *)input, k, val) {
        bool dropped = false;
        size_t i;
        json_t *ig;
        json_array_foreach (m->ignore, i, ig)
            dropped = dropped || (json_is_string(ig) && !strcmp(json_string_value(ig), k));
        if (dropped)
            continue;
        const char *to = json_string_value(json_object_get(m->rename, k));
        json_object_set(params, to ? to : k, val);
    }
    json_t *prov = json_object_get(params, "provider");
    if (prov && (m->mapped || pinned)) {
        if (!json_is_string(prov) || strcmp(json_string_value(prov), v->provider->name) != 0)
            add_detail(details, "input.provider",
                       m->mapped ? "is not an input of this model"
                                 : "differs from the provider the version names");
    }
    if (!prov || m->mapped || pinned)
        json_object_set_new(params, "provider", json_string(v->provider->name));
    json_object_update(params, m->fixed);
    return params;
}

/* Validation details on params.X name the input the client sent: input.<its name>. */
static json_t *input_details(const gp_rep_model_t *m, json_t *details)
{
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach (details, i, d) {
        const char *field = json_string_value(json_object_get(d, "field"));
        const char *msg = json_string_value(json_object_get(d, "message"));
        char name[160];
        if (field && !strncmp(field, "params.", 7)) {
            const char *param = field + 7, *k;
            json_t *to;
            json_object_foreach (m->rename, k, to)
                if (json_is_string(to) && !strcmp(json_string_value(to), param))
                    param = k;
            snprintf(name, sizeof name, "input.%.140s", param);
        } else if (field && !strcmp(field, "params")) {
            snprintf(name, sizeof name, "input");
        } else {
            snprintf(name, sizeof name, "%.150s", field ? field : "");
        }
        add_detail(out, name, msg ? msg : "is invalid");
    }
    json_decref(details);
    return out;
}

/* The submission for a body whose fields were checked and whose model is known. */
static int translate(const gp_rep_model_t *m, const gp_rep_version_t *v, bool pinned,
                     const json_t *body, int default_max_retries, gp_submission_t *sub,
                     json_t **details)
{
    const json_t *input = json_object_get(body, "input");
    json_t *own = json_array();
    json_t *params = input_params(m, v, pinned, input, own);
    json_t *sb = json_pack("{s:s, s:o}", "task_type", m->type->name, "params", params);
    json_t *hook = json_object_get(body, "webhook");
    json_t *legacy = json_object_get(body, "webhook_completed");
    if (hook)
        json_object_set(sb, "webhook", hook);
    else if (legacy && !json_is_null(legacy)) { /* the Python client's legacy field */
        json_object_set(sb, "webhook", legacy);
        json_object_set_new(sb, "webhook_events_filter", json_pack("[s]", "completed"));
    }
    json_t *filter = json_object_get(body, "webhook_events_filter");
    if (filter)
        json_object_set(sb, "webhook_events_filter", filter);
    json_t *vd = NULL;
    int rc = gp_validate_submission(sb, default_max_retries, sub, &vd);
    json_decref(sb);
    if (rc != 0 || json_array_size(own) > 0) {
        if (rc == 0)
            gp_submission_clear(sub);
        json_t *all = input_details(m, vd ? vd : json_array());
        json_array_extend(own, all);
        json_decref(all);
        *details = own;
        return -1;
    }
    json_decref(own);
    char vid[GP_REPLICATE_VERSION_LEN + 1];
    if (m->mapped)
        memcpy(vid, v->id, sizeof vid);
    else
        gp_replicate_version_id(m->type->name, sub->provider->name, vid);
    json_object_set_new(
        sub->params, GP_REPLICATE_PARAM,
        json_pack("{s:s, s:s, s:O}", "model", m->full, "version", vid, "input", input));
    sub->webhook_format = GP_WEBHOOK_FORMAT_REPLICATE;
    return 0;
}

/* version: "owner/name", "owner/name:<id>" or a bare id. NULL with the reason in why. */
static const gp_rep_model_t *resolve_version(const gp_rep_catalog_t *c, const char *ref,
                                             const gp_rep_version_t **v, bool *pinned,
                                             const char **why)
{
    const char *colon = strchr(ref, ':'), *slash = strchr(ref, '/');
    *pinned = true;
    if (!slash) {
        const gp_rep_model_t *m = gp_replicate_version_find(c, ref, v);
        *why = "is not the id of a version (GET /v1/models/{owner}/{name}/versions)";
        return m;
    }
    char name[2 * GP_PATH_PARAM_LEN];
    size_t n = colon ? (size_t)(colon - ref) : strlen(ref);
    *why = "names no model (GET /v1/models lists them)";
    if (n >= sizeof name)
        return NULL;
    memcpy(name, ref, n);
    name[n] = '\0';
    const gp_rep_model_t *m = gp_replicate_model_find(c, name, NULL);
    if (!m)
        return NULL;
    if (!colon) {
        *pinned = false;
        *v = &m->versions[m->latest];
        return m;
    }
    for (size_t i = 0; i < m->n_versions; i++)
        if (!strcmp(m->versions[i].id, colon + 1)) {
            *v = &m->versions[i];
            return m;
        }
    *why = "names a version this model does not have";
    return NULL;
}

int gp_replicate_translate(const gp_rep_catalog_t *c, const gp_rep_model_t *model,
                           const json_t *body, int default_max_retries, gp_submission_t *sub,
                           json_t **details)
{
    json_t *d = json_array();
    const gp_rep_model_t *m = model;
    const gp_rep_version_t *v = model ? &model->versions[model->latest] : NULL;
    bool pinned = false;
    if (!json_is_object(body)) {
        add_detail(d, "", "the body must be a JSON object");
        *details = d;
        return -1;
    }
    check_fields(body, !model, d);
    json_t *ver = json_object_get(body, "version");
    if (!model && !ver) {
        add_detail(d, "version", "is required");
    } else if (!model && !json_is_string(ver)) {
        add_detail(d, "version", "must be a string: owner/name, owner/name:<id> or <id>");
    } else if (!model) {
        const char *why = NULL;
        m = resolve_version(c, json_string_value(ver), &v, &pinned, &why);
        if (!m)
            add_detail(d, "version", why);
    }
    if (json_array_size(d) > 0) {
        *details = d;
        return -1;
    }
    json_decref(d);
    return translate(m, v, pinned, body, default_max_retries, sub, details);
}

/*
 * fuzz_replicate_create.c — libFuzzer target for the Replicate create bodies
 * (POST /v1/predictions and POST /v1/models/{owner}/{name}/predictions) without the HTTP
 * layer: the body is parsed as the server parses it (json_loadb, JSON_REJECT_DUPLICATES) and
 * translated with gp_replicate_translate against the built-in model catalog, once as the
 * version route and once for each of two models (genpulse/echo, a mapped catalog name).
 * Everything is freed, so LeakSanitizer checks ownership on every input.
 *
 * Contracts checked (abort when broken):
 *   - a refusal has a non-empty details array of {field: string, message: string};
 *   - an acceptance has params with "provider" = the provider's name, the task type of the
 *     model, and GP_REPLICATE_PARAM = {model: a catalog model, version: 64 hex digits of one
 *     of its versions, input: equal to the body's input}; webhook_format is Replicate's;
 *   - the task rendered from it (gp_task_to_json) hides GP_REPLICATE_PARAM from params.
 *
 * Coverage: only this translation unit is instrumented, so the file under test
 * (src/api/replicate_input.c) is compiled into it.
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "api/replicate_input.c"

#include "api/replicate.h"
#include "core/registry.h"
#include "core/task.h"
#include "core/util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gp_rep_catalog_t *catalog;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_replicate_create: contract violated: %s\n", what);
        abort();
    }
}

static void init_once(void)
{
    if (catalog)
        return;
    char err[512] = "";
    if (gp_registry_init(err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_replicate_create: gp_registry_init: %s\n", err);
        abort();
    }
    catalog = gp_replicate_catalog_new("", err, sizeof err);
    check(catalog != NULL, "the built-in catalog loads");
}

static void check_details(json_t *details)
{
    check(json_is_array(details) && json_array_size(details) > 0, "a refusal has details");
    size_t i;
    json_t *d;
    json_array_foreach (details, i, d) {
        check(json_is_string(json_object_get(d, "field")), "detail.field is a string");
        check(json_is_string(json_object_get(d, "message")), "detail.message is a string");
    }
}

static void check_accepted(const json_t *body, const gp_rep_model_t *route_model,
                           const gp_submission_t *sub)
{
    const json_t *params = sub->params;
    check(json_is_object(params), "params is an object");
    const char *prov = json_string_value(json_object_get(params, "provider"));
    check(prov && sub->provider && !strcmp(prov, sub->provider->name), "params.provider");
    const json_t *view = json_object_get(params, GP_REPLICATE_PARAM);
    const char *model = json_string_value(json_object_get(view, "model"));
    const char *version = json_string_value(json_object_get(view, "version"));
    check(model && version, "the Replicate view has model and version");
    const gp_rep_model_t *m = gp_replicate_model_find(catalog, model, NULL);
    check(m != NULL, "the model is in the catalog");
    check(!route_model || m == route_model, "the model route keeps its model");
    check(m->type == sub->task_type, "the model's task type");
    check(strlen(version) == GP_REPLICATE_VERSION_LEN, "a 64-hex version");
    const gp_rep_version_t *v = NULL;
    if (m->mapped)
        check(gp_replicate_version_find(catalog, version, &v) == m, "a version of the model");
    else {
        char want[GP_REPLICATE_VERSION_LEN + 1];
        gp_replicate_version_id(m->type->name, sub->provider->name, want);
        check(!strcmp(want, version), "the version names the provider that runs");
    }
    check(json_equal(json_object_get(view, "input"), json_object_get(body, "input")),
          "the input as given");
    check(sub->webhook_format == GP_WEBHOOK_FORMAT_REPLICATE, "webhook format");
}

static void render(const gp_submission_t *sub)
{
    gp_task_t t;
    memset(&t, 0, sizeof t);
    gp_uuid7(t.id);
    t.task_type = gp_xstrdup(sub->task_type->name);
    t.provider = gp_xstrdup(sub->provider->name);
    t.params = json_incref(sub->params);
    t.created_at = gp_now_ms();
    json_t *j = gp_task_to_json(&t, NULL, "http://127.0.0.1:8080");
    check(json_object_get(json_object_get(j, "params"), GP_REPLICATE_PARAM) == NULL,
          "/v1/tasks hides the Replicate view");
    json_decref(j);
    gp_task_clear(&t);
}

static void one(const json_t *body, const gp_rep_model_t *route_model)
{
    gp_submission_t sub;
    json_t *details = NULL;
    int rc = gp_replicate_translate(catalog, route_model, body, 3, &sub, &details);
    if (rc == 0) {
        check(details == NULL, "no details on success");
        check_accepted(body, route_model, &sub);
        render(&sub);
        gp_submission_clear(&sub);
    } else {
        check(rc == -1, "a refusal returns -1");
        check_details(details);
        json_decref(details);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    one(body, NULL);
    one(body, gp_replicate_model_find(catalog, "genpulse", "echo"));
    one(body, gp_replicate_model_find(catalog, "suno-ai", "bark"));
    json_decref(body);
    return 0;
}

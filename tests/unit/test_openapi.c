/*
 * test_openapi.c — the route documentation against the real route table: every route has a
 * doc entry (method, pattern), every entry is well formed (its JSON parses, one path param per
 * "{}", named schemas exist), and the generated document holds every route with the status
 * codes admission adds.
 *
 * With GP_OPENAPI_FULL_OUT=FILE it also writes the document of every doc entry — the routes
 * other surfaces add too — so tests/blackbox/test_openapi.py can validate entries whose routes
 * are not in this binary yet.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api/openapi.h"
#include "core/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gp_openapi_config_t cfg = {
    .version = "test", .public_url = "", .oidc_issuer = NULL, .session_cookie = "gp_session"};

static int setup(void **state)
{
    (void)state;
    char err[256];
    return gp_registry_init(err, sizeof err);
}

static void test_every_route_documented(void **state)
{
    (void)state;
    size_t n, missing = 0;
    const gp_route_t *const *surfaces = gp_route_surfaces(&n);
    for (size_t i = 0; i < n; i++)
        for (const gp_route_t *rt = surfaces[i]; rt->method; rt++)
            if (!gp_route_doc_find(rt->method, rt->pattern)) {
                fprintf(stderr, "no doc entry (src/api/openapi_routes.c) for %s %s\n", rt->method,
                        rt->pattern);
                missing++;
            }
    assert_int_equal(missing, 0);
}

static bool schema_exists(const char *name)
{
    for (const gp_doc_schema_t *s = gp_doc_schemas; s->name; s++)
        if (!strcmp(s->name, name))
            return true;
    return !strcmp(name, "Error") || !strcmp(name, "TaskErrorCode") || !strcmp(name, "CreateTask");
}

static void check_schema_text(const char *what, const char *spec)
{
    if (!spec)
        return;
    if (spec[0] == '{' || spec[0] == '[') {
        json_t *j = gp_doc_json(spec);
        if (!j)
            fprintf(stderr, "%s: schema does not parse: %s\n", what, spec);
        assert_non_null(j);
        json_decref(j);
    } else {
        if (!schema_exists(spec))
            fprintf(stderr, "%s: no component schema %s\n", what, spec);
        assert_true(schema_exists(spec));
    }
}

static void test_entries_well_formed(void **state)
{
    (void)state;
    for (const gp_route_doc_t *d = gp_route_docs; d->method; d++) {
        char what[200];
        snprintf(what, sizeof what, "%s %s", d->method, d->pattern);
        assert_non_null(d->tag);
        assert_non_null(d->operation_id);
        assert_non_null(d->summary);
        int holes = 0, path_params = 0;
        for (const char *s = d->pattern; (s = strstr(s, "{}")); s += 2)
            holes++;
        for (int i = 0; i < GP_DOC_MAX_PARAMS && d->params[i].name; i++) {
            path_params += !strcmp(d->params[i].in, "path");
            check_schema_text(what, d->params[i].schema);
        }
        if (holes != path_params)
            fprintf(stderr, "%s: %d path segments, %d path params\n", what, holes, path_params);
        assert_int_equal(holes, path_params);
        check_schema_text(what, d->request);
        assert_true(d->responses[0].status >= 200);
        for (int i = 0; i < GP_DOC_MAX_RESPONSES && d->responses[i].status; i++)
            check_schema_text(what, d->responses[i].schema);
        for (const gp_route_doc_t *e = d + 1; e->method; e++) {
            assert_false(!strcmp(e->method, d->method) && !strcmp(e->pattern, d->pattern));
            assert_string_not_equal(e->operation_id, d->operation_id);
        }
    }
    for (const gp_doc_schema_t *s = gp_doc_schemas; s->name; s++) {
        json_t *j = gp_doc_json(s->json);
        if (!j)
            fprintf(stderr, "component %s does not parse\n", s->name);
        assert_non_null(j);
        json_decref(j);
    }
}

static void test_document(void **state)
{
    (void)state;
    json_t *doc = gp_openapi_document(&cfg);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    json_t *create = json_object_get(json_object_get(paths, "/v1/tasks"), "post");
    assert_non_null(create);
    json_t *resp = json_object_get(create, "responses");
    const char *expect[] = {"202", "400", "401", "403", "413", "415", "422", "429", "405"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_non_null(json_object_get(resp, expect[i]));
    json_t *get = json_object_get(json_object_get(paths, "/v1/tasks/{id}"), "get");
    assert_non_null(get);
    assert_non_null(json_object_get(json_object_get(get, "responses"), "404"));
    json_t *health = json_object_get(json_object_get(paths, "/health"), "get");
    assert_int_equal(json_array_size(json_object_get(health, "security")), 0);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    assert_non_null(json_object_get(schemas, "CreateTask"));
    assert_non_null(json_object_get(schemas, "Task"));
    assert_non_null(json_object_get(schemas, "Error"));
    json_decref(doc);
}

/* Every doc entry as a route (scope "", a JSON body when it takes one), for the full file. */
static void write_full_document(void)
{
    const char *out = getenv("GP_OPENAPI_FULL_OUT");
    if (!out || !*out)
        return;
    size_t n = 0;
    while (gp_route_docs[n].method)
        n++;
    gp_route_t *rows = calloc(n + 1, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        const gp_route_doc_t *d = &gp_route_docs[i];
        rows[i] = (gp_route_t){
            .method = d->method,
            .pattern = d->pattern,
            .body = d->request ? (d->request_media ? GP_BODY_UPLOAD : GP_BODY_JSON) : GP_BODY_NONE,
            .scope = ""};
    }
    const gp_route_t *const surfaces[] = {rows};
    json_t *doc = gp_openapi_document_from(&cfg, surfaces, 1);
    json_dump_file(doc, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_documented),
        cmocka_unit_test(test_entries_well_formed),
        cmocka_unit_test(test_document),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    char err[256];
    if (gp_registry_init(err, sizeof err) == 0)
        write_full_document();
    return rc;
}

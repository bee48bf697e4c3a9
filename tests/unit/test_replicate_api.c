/*
 * test_replicate_api.c — the Replicate model catalog (api/replicate.h): genpulse/<task type>
 * models and their stable version ids, the built-in and file tables, refusals of bad tables,
 * version JSON, and the tqdm progress line the official clients parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api/replicate.h"
#include "core/crypto.h"
#include "core/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    char err[512] = "";
    if (gp_registry_init(err, sizeof err) != 0) {
        fprintf(stderr, "gp_registry_init: %s\n", err);
        return -1;
    }
    return 0;
}

static void test_genpulse_models(void **state)
{
    (void)state;
    char err[256] = "";
    gp_rep_catalog_t *c = gp_replicate_catalog_new("", err, sizeof err);
    assert_non_null(c);
    const gp_rep_model_t *echo = gp_replicate_model_find(c, "genpulse", "echo");
    assert_non_null(echo);
    assert_ptr_equal(gp_replicate_model_find(c, "genpulse/echo", NULL), echo);
    assert_false(echo->mapped);
    assert_int_equal(echo->n_versions, 1);
    char want[GP_SHA256_HEX_LEN];
    gp_sha256_hex("echo/echo", 9, want);
    assert_string_equal(echo->versions[0].id, want);
    char id[GP_REPLICATE_VERSION_LEN + 1];
    gp_replicate_version_id("echo", "echo", id);
    assert_string_equal(id, want);
    const gp_rep_version_t *v = NULL;
    assert_ptr_equal(gp_replicate_version_find(c, want, &v), echo);
    assert_string_equal(v->provider->name, "echo");
    /* text-to-image: a version per provider, the default one latest */
    const gp_rep_model_t *tti = gp_replicate_model_find(c, "genpulse", "text-to-image");
    assert_non_null(tti);
    assert_true(tti->n_versions >= 2);
    assert_string_equal(tti->versions[tti->latest].provider->name, "simulator");
    assert_int_equal(tti->output, GP_REP_OUTPUT_FILES);
    /* the built-in table */
    const gp_rep_model_t *flux = gp_replicate_model_find(c, "black-forest-labs", "flux-schnell");
    assert_non_null(flux);
    assert_true(flux->mapped);
    assert_ptr_equal(flux->type, tti->type);
    assert_int_equal(json_integer_value(json_object_get(flux->fixed, "steps")), 4);
    for (size_t i = 0; i < tti->n_versions; i++)
        assert_string_not_equal(flux->versions[0].id, tti->versions[i].id);
    assert_null(gp_replicate_model_find(c, "nobody", "nothing"));
    assert_null(gp_replicate_version_find(c, "0123", &v));
    gp_replicate_catalog_free(c);
}

static void test_version_json(void **state)
{
    (void)state;
    char err[256] = "";
    gp_rep_catalog_t *c = gp_replicate_catalog_new("", err, sizeof err);
    const gp_rep_model_t *bark = gp_replicate_model_find(c, "suno-ai", "bark");
    assert_non_null(bark);
    json_t *v = gp_replicate_version_json(bark, &bark->versions[0]);
    json_t *schemas = json_object_get(
        json_object_get(json_object_get(v, "openapi_schema"), "components"), "schemas");
    json_t *input = json_object_get(schemas, "Input");
    json_t *props = json_object_get(input, "properties");
    assert_non_null(json_object_get(props, "prompt")); /* renamed from text */
    assert_null(json_object_get(props, "text"));
    assert_null(json_object_get(props, "provider"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(input, "required"), 0)),
                        "prompt");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(schemas, "Output"), "format")), "uri");
    assert_string_equal(json_string_value(json_object_get(v, "cog_version")), "0.9.0");
    json_decref(v);
    gp_replicate_catalog_free(c);
}

static char *write_table(const char *text)
{
    char *path = strdup("/tmp/gp-rep-table-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_bad_tables(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[]",
        "{",
        "{\"noslash\": {\"task_type\": \"echo\"}}",
        "{\"genpulse/x\": {\"task_type\": \"echo\"}}",
        "{\"a/b\": {\"task_type\": \"nope\"}}",
        "{\"a/b\": {\"task_type\": \"echo\", \"provider\": \"simulator\"}}",
        "{\"a/b\": {\"task_type\": \"echo\", \"params\": []}}",
        "{\"a/b\": {\"task_type\": \"echo\", \"output\": \"many\"}}",
        "{\"a/b c\": {\"task_type\": \"echo\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_table(bad[i]);
        char err[256] = "";
        gp_rep_catalog_t *c = gp_replicate_catalog_new(path, err, sizeof err);
        if (c)
            fail_msg("table %s was accepted", bad[i]);
        assert_non_null(strstr(err, "replicate-models"));
        unlink(path);
        free(path);
    }
    char *path =
        write_table("{\"acme/echoer\": {\"task_type\": \"echo\", \"output\": \"object\"}}");
    char err[256] = "";
    gp_rep_catalog_t *c = gp_replicate_catalog_new(path, err, sizeof err);
    assert_non_null(c);
    assert_non_null(gp_replicate_model_find(c, "acme", "echoer"));
    assert_null(gp_replicate_model_find(c, "stability-ai", "sdxl")); /* the file replaces */
    gp_replicate_catalog_free(c);
    unlink(path);
    free(path);
}

static void test_tqdm_line(void **state)
{
    (void)state;
    char line[128];
    gp_replicate_tqdm_line(45, line, sizeof line);
    assert_string_equal(line, " 45%|████▌     | 45/100");
    gp_replicate_tqdm_line(0, line, sizeof line);
    assert_string_equal(line, "  0%|          | 0/100");
    gp_replicate_tqdm_line(100, line, sizeof line);
    assert_string_equal(line, "100%|██████████| 100/100");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_genpulse_models, setup),
        cmocka_unit_test_setup(test_version_json, setup),
        cmocka_unit_test_setup(test_bad_tables, setup),
        cmocka_unit_test(test_tqdm_line),
    };
    return cmocka_run_group_tests_name("replicate_api", tests, NULL, NULL);
}

/*
 * test_registry.c — gp_registry_init_from() checks on hand-made tables, then
 * gp_validate_submission() and gp_params_schema() against the real generated registry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/registry.h"
#include "core/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Hand-made task types and providers
 * ------------------------------------------------------------------------------------- */

static int dummy_run(gp_ctx_t *ctx)
{
    (void)ctx;
    return 0;
}

static const gp_param_spec_t good_params[] = {
    GP_P_STRING("prompt", true, 1, 100, NULL, "prompt"),
    GP_P_INT("width", false, 64, 4096, "512", "width"),
    GP_P_END,
};
static const gp_param_spec_t bad_int_default[] = {
    GP_P_STRING("prompt", true, 1, 100, NULL, "prompt"),
    GP_P_INT("width", false, 64, 4096, "5000", "width"),
    GP_P_END,
};
static const gp_param_spec_t string_default_for_int[] = {
    GP_P_INT("height", false, 64, 4096, "\"big\"", "height"),
    GP_P_END,
};
static const gp_param_spec_t unparsable_default[] = {
    GP_P_BOOL("fast", "yes please", "fast"),
    GP_P_END,
};
static const gp_param_spec_t bad_provider_default[] = {
    GP_P_INT("quality", false, 1, 10, "11", "quality"),
    GP_P_END,
};

static const gp_task_type_t tt_alpha = {
    .name = "alpha", .description = "a", .default_provider = "pa", .params = good_params};
static const gp_task_type_t tt_alpha_again = {
    .name = "alpha", .description = "again", .default_provider = "pa", .params = good_params};
static const gp_task_type_t tt_beta = {
    .name = "beta", .description = "b", .default_provider = "pb", .params = NULL};
static const gp_task_type_t tt_bad_default = {
    .name = "gamma", .description = "g", .default_provider = NULL, .params = bad_int_default};
static const gp_task_type_t tt_string_default = {.name = "delta",
                                                 .description = "d",
                                                 .default_provider = NULL,
                                                 .params = string_default_for_int};
static const gp_task_type_t tt_unparsable_default = {
    .name = "epsilon", .description = "e", .default_provider = NULL, .params = unparsable_default};
static const gp_task_type_t tt_alpha_default_pb = {
    .name = "alpha", .description = "a", .default_provider = "pb", .params = good_params};

static const char *const serves_alpha[] = {"alpha", NULL};
static const char *const serves_beta[] = {"beta", NULL};
static const char *const serves_unknown[] = {"alpha", "no-such-type", NULL};

static const gp_provider_t pv_a = {
    .name = "pa", .description = "a", .task_types = serves_alpha, .run = dummy_run};
static const gp_provider_t pv_a_again = {
    .name = "pa", .description = "a2", .task_types = serves_alpha, .run = dummy_run};
static const gp_provider_t pv_b = {
    .name = "pb", .description = "b", .task_types = serves_beta, .run = dummy_run};
static const gp_provider_t pv_unknown_type = {
    .name = "pu", .description = "u", .task_types = serves_unknown, .run = dummy_run};
static const gp_provider_t pv_bad_default = {.name = "pq",
                                             .description = "q",
                                             .task_types = serves_alpha,
                                             .params = bad_provider_default,
                                             .run = dummy_run};

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void test_init_from_ok(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_alpha, &tt_beta, NULL};
    const gp_provider_t *providers[] = {&pv_a, &pv_b, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), 0);
    const gp_task_type_t *a = gp_registry_task_type("alpha");
    assert_ptr_equal(a, &tt_alpha);
    assert_ptr_equal(gp_registry_provider(a, "pa"), &pv_a);
    assert_null(gp_registry_provider(a, "pb")); /* exists, but does not serve alpha */
    assert_null(gp_registry_provider(a, "nope"));
    assert_null(gp_registry_task_type("nope"));
}

static void test_init_from_duplicate_task_type(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_alpha, &tt_alpha_again, NULL};
    const gp_provider_t *providers[] = {&pv_a, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "alpha");
    assert_contains(err, "twice");
}

static void test_init_from_duplicate_provider(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_alpha, NULL};
    const gp_provider_t *providers[] = {&pv_a, &pv_a_again, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "\"pa\"");
    assert_contains(err, "twice");
}

static void test_init_from_default_out_of_range(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_bad_default, NULL};
    const gp_provider_t *providers[] = {NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "gamma");
    assert_contains(err, "\"width\"");
    assert_contains(err, "64");
    assert_contains(err, "4096");
}

static void test_init_from_string_default_for_integer(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_string_default, NULL};
    const gp_provider_t *providers[] = {NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "\"height\"");
    assert_contains(err, "must be an integer");
}

static void test_init_from_unparsable_default(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_unparsable_default, NULL};
    const gp_provider_t *providers[] = {NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "\"fast\"");
}

static void test_init_from_provider_bad_default(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_alpha, NULL};
    const gp_provider_t *providers[] = {&pv_a, &pv_bad_default, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "pq");
    assert_contains(err, "\"quality\"");
}

static void test_init_from_provider_unknown_task_type(void **state)
{
    (void)state;
    const gp_task_type_t *types[] = {&tt_alpha, NULL};
    const gp_provider_t *providers[] = {&pv_a, &pv_unknown_type, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "\"pu\"");
    assert_contains(err, "no-such-type");
}

static void test_init_from_default_provider_not_serving(void **state)
{
    (void)state;
    /* alpha's default provider is pb, which exists but serves only beta. */
    const gp_task_type_t *types[] = {&tt_alpha_default_pb, &tt_beta, NULL};
    const gp_provider_t *providers[] = {&pv_a, &pv_b, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "alpha");
    assert_contains(err, "\"pb\"");
}

static void test_init_from_default_provider_missing(void **state)
{
    (void)state;
    /* beta's default provider pb is not registered at all. */
    const gp_task_type_t *types[] = {&tt_alpha, &tt_beta, NULL};
    const gp_provider_t *providers[] = {&pv_a, NULL};
    char err[256] = "";
    assert_int_equal(gp_registry_init_from(types, providers, err, sizeof err), -1);
    assert_contains(err, "beta");
    assert_contains(err, "\"pb\"");
}

/* ---------------------------------------------------------------------------------------
 * Validation against the real registry
 * ------------------------------------------------------------------------------------- */

static int setup_real_registry(void **state)
{
    (void)state;
    char err[512] = "";
    if (gp_registry_init(err, sizeof err) != 0) {
        fprintf(stderr, "gp_registry_init: %s\n", err);
        return -1;
    }
    return 0;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        fail_msg("bad test JSON (%s): %s", jerr.text, text);
    return j;
}

/* The message for field, or NULL when no detail names it. */
static const char *detail_for(const json_t *details, const char *field)
{
    size_t i;
    json_t *d;
    json_array_foreach (details, i, d) {
        const char *f = json_string_value(json_object_get(d, "field"));
        if (f && !strcmp(f, field))
            return json_string_value(json_object_get(d, "message"));
    }
    return NULL;
}

static void assert_details_valid_shape(const json_t *details)
{
    assert_true(json_is_array(details));
    size_t i;
    json_t *d;
    json_array_foreach (details, i, d) {
        assert_true(json_is_object(d));
        assert_int_equal(json_object_size(d), 2);
        assert_true(json_is_string(json_object_get(d, "field")));
        assert_true(json_is_string(json_object_get(d, "message")));
    }
}

/* Validates text, expecting failure; returns the details (caller decrefs). */
static json_t *expect_invalid(const char *text)
{
    json_t *body = parse(text);
    gp_submission_t sub;
    json_t *details = NULL;
    int rc = gp_validate_submission(body, 3, &sub, &details);
    json_decref(body);
    if (rc == 0) {
        gp_submission_clear(&sub);
        fail_msg("expected a validation failure for %s", text);
    }
    assert_int_equal(rc, -1);
    assert_non_null(details);
    assert_true(json_array_size(details) > 0);
    assert_details_valid_shape(details);
    assert_null(sub.params);
    return details;
}

static void expect_valid(const char *text, gp_submission_t *sub)
{
    json_t *body = parse(text);
    json_t *details = NULL;
    int rc = gp_validate_submission(body, 3, sub, &details);
    json_decref(body);
    if (rc != 0) {
        char *d = json_dumps(details, JSON_COMPACT);
        json_decref(details);
        fail_msg("expected %s to be valid; details: %s", text, d ? d : "?");
    }
    assert_null(details);
    assert_non_null(sub->params);
}

static void test_valid_minimal_text_to_image(void **state)
{
    (void)state;
    gp_submission_t sub;
    expect_valid("{\"task_type\": \"text-to-image\", \"params\": {\"prompt\": \"a red fox\"}}",
                 &sub);
    assert_non_null(sub.task_type);
    assert_string_equal(sub.task_type->name, "text-to-image");
    assert_non_null(sub.provider);
    assert_string_equal(sub.provider->name, "simulator");
    assert_int_equal(sub.priority, 0);
    assert_int_equal(sub.max_retries, 3); /* the default passed in */
    const json_t *p = sub.params;
    assert_string_equal(json_string_value(json_object_get(p, "prompt")), "a red fox");
    assert_string_equal(json_string_value(json_object_get(p, "provider")), "simulator");
    assert_true(json_is_integer(json_object_get(p, "width")));
    assert_int_equal(json_integer_value(json_object_get(p, "width")), 512);
    assert_int_equal(json_integer_value(json_object_get(p, "height")), 512);
    assert_int_equal(json_integer_value(json_object_get(p, "seed")), 0);
    /* the simulator's own defaults are filled too */
    assert_int_equal(json_integer_value(json_object_get(p, "delay_ms")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "steps")), 10);
    assert_int_equal(json_integer_value(json_object_get(p, "fail_times")), 0);
    /* no default: stays absent */
    assert_null(json_object_get(p, "negative_prompt"));
    assert_null(json_object_get(p, "fail"));
    gp_submission_clear(&sub);
    assert_null(sub.params);
    assert_null(sub.task_type);
}

static void test_valid_full_envelope(void **state)
{
    (void)state;
    gp_submission_t sub;
    expect_valid("{\"task_type\": \"text-to-image\", \"priority\": 9, \"max_retries\": 0,"
                 " \"params\": {\"prompt\": \"x\", \"width\": 64, \"height\": 4096,"
                 " \"provider\": \"simulator\", \"steps\": 3, \"seed\": 4294967295}}",
                 &sub);
    assert_int_equal(sub.priority, 9);
    assert_int_equal(sub.max_retries, 0);
    assert_int_equal(json_integer_value(json_object_get(sub.params, "width")), 64);
    assert_int_equal(json_integer_value(json_object_get(sub.params, "height")), 4096);
    assert_int_equal(json_integer_value(json_object_get(sub.params, "steps")), 3);
    assert_int_equal(json_integer_value(json_object_get(sub.params, "seed")), 4294967295LL);
    gp_submission_clear(&sub);

    /* null priority / max_retries / params mean "absent" */
    expect_valid("{\"task_type\": \"echo\", \"priority\": null, \"max_retries\": null,"
                 " \"params\": null}",
                 &sub);
    assert_int_equal(sub.priority, 0);
    assert_int_equal(sub.max_retries, 3);
    assert_string_equal(sub.provider->name, "echo");
    assert_string_equal(json_string_value(json_object_get(sub.params, "provider")), "echo");
    gp_submission_clear(&sub);
}

static void test_valid_text_to_audio_defaults(void **state)
{
    (void)state;
    gp_submission_t sub;
    expect_valid("{\"task_type\": \"text-to-audio\", \"params\": {\"text\": \"hello\"}}", &sub);
    assert_string_equal(sub.provider->name, "espeak");
    assert_string_equal(json_string_value(json_object_get(sub.params, "voice")), "en");
    assert_int_equal(json_integer_value(json_object_get(sub.params, "rate")), 175);
    assert_int_equal(json_integer_value(json_object_get(sub.params, "pitch")), 50);
    gp_submission_clear(&sub);
}

static void test_every_bad_field_reported(void **state)
{
    (void)state;
    json_t *details =
        expect_invalid("{\"task_type\": \"text-to-image\", \"priority\": 12, \"max_retries\": -1,"
                       " \"colour\": \"blue\","
                       " \"params\": {\"width\": \"wide\", \"height\": 5000, \"bogus\": 1}}");
    const char *m;
    assert_non_null(m = detail_for(details, "params.prompt"));
    assert_string_equal(m, "is required");
    assert_non_null(m = detail_for(details, "params.width"));
    assert_string_equal(m, "must be an integer");
    assert_non_null(m = detail_for(details, "params.height"));
    assert_string_equal(m, "must be an integer from 64 to 4096");
    assert_non_null(m = detail_for(details, "params.bogus"));
    assert_contains(m, "not a parameter");
    assert_contains(m, "prompt");
    assert_non_null(m = detail_for(details, "priority"));
    assert_string_equal(m, "must be an integer from 0 to 9");
    assert_non_null(m = detail_for(details, "max_retries"));
    assert_string_equal(m, "must be an integer from 0 to 100");
    assert_non_null(m = detail_for(details, "colour"));
    assert_contains(m, "not a known field");
    assert_int_equal(json_array_size(details), 7);
    json_decref(details);
}

static void test_envelope_bounds(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"task_type\": \"echo\", \"priority\": -1}",
        "{\"task_type\": \"echo\", \"priority\": 10}",
        "{\"task_type\": \"echo\", \"priority\": \"1\"}",
        "{\"task_type\": \"echo\", \"priority\": 1.5}",
        "{\"task_type\": \"echo\", \"max_retries\": 101}",
        "{\"task_type\": \"echo\", \"max_retries\": true}",
    };
    const char *field[] = {"priority", "priority",    "priority",
                           "priority", "max_retries", "max_retries"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *details = expect_invalid(bad[i]);
        assert_non_null(detail_for(details, field[i]));
        assert_int_equal(json_array_size(details), 1);
        json_decref(details);
    }
    gp_submission_t sub;
    expect_valid("{\"task_type\": \"echo\", \"max_retries\": 100, \"priority\": 0}", &sub);
    assert_int_equal(sub.max_retries, 100);
    gp_submission_clear(&sub);
}

static void test_unknown_task_type(void **state)
{
    (void)state;
    json_t *details = expect_invalid("{\"task_type\": \"text-to-hologram\", \"params\": {}}");
    const char *m = detail_for(details, "task_type");
    assert_non_null(m);
    assert_contains(m, "unknown task type");
    assert_contains(m, "text-to-image"); /* lists the known ones */
    assert_int_equal(json_array_size(details), 1);
    json_decref(details);

    details = expect_invalid("{\"params\": {\"prompt\": \"x\"}}");
    assert_string_equal(detail_for(details, "task_type"), "is required");
    json_decref(details);

    details = expect_invalid("{\"task_type\": 7}");
    assert_string_equal(detail_for(details, "task_type"), "must be a string");
    json_decref(details);
}

static void test_unknown_provider(void **state)
{
    (void)state;
    /* provider params of an unknown provider are unknowable, so they are not reported */
    json_t *details = expect_invalid("{\"task_type\": \"text-to-image\","
                                     " \"params\": {\"prompt\": \"x\", \"provider\": \"dalle\","
                                     " \"quality\": \"hd\"}}");
    const char *m = detail_for(details, "params.provider");
    assert_non_null(m);
    assert_contains(m, "unknown provider");
    assert_contains(m, "simulator");
    assert_int_equal(json_array_size(details), 1);
    json_decref(details);

    /* a real provider that does not serve this type */
    details = expect_invalid("{\"task_type\": \"text-to-image\","
                             " \"params\": {\"prompt\": \"x\", \"provider\": \"espeak\"}}");
    assert_non_null(detail_for(details, "params.provider"));
    assert_int_equal(json_array_size(details), 1);
    json_decref(details);

    details = expect_invalid("{\"task_type\": \"text-to-image\","
                             " \"params\": {\"prompt\": \"x\", \"provider\": 3}}");
    assert_string_equal(detail_for(details, "params.provider"), "must be a string");
    json_decref(details);
}

static void test_provider_params_validated(void **state)
{
    (void)state;
    /* espeak's own params of text-to-image's provider are unknown for simulator */
    json_t *details = expect_invalid("{\"task_type\": \"text-to-image\","
                                     " \"params\": {\"prompt\": \"x\", \"rate\": 100,"
                                     " \"steps\": 0}}");
    assert_non_null(detail_for(details, "params.rate"));
    assert_string_equal(detail_for(details, "params.steps"), "must be an integer from 1 to 1000");
    assert_int_equal(json_array_size(details), 2);
    json_decref(details);
}

static void test_integer_given_as_real(void **state)
{
    (void)state;
    gp_submission_t sub;
    expect_valid("{\"task_type\": \"text-to-image\","
                 " \"params\": {\"prompt\": \"x\", \"width\": 1024.0, \"seed\": 1.0}}",
                 &sub);
    const json_t *w = json_object_get(sub.params, "width");
    assert_true(json_is_integer(w)); /* normalized */
    assert_int_equal(json_integer_value(w), 1024);
    assert_true(json_is_integer(json_object_get(sub.params, "seed")));
    assert_int_equal(json_integer_value(json_object_get(sub.params, "seed")), 1);
    gp_submission_clear(&sub);

    json_t *details = expect_invalid("{\"task_type\": \"text-to-image\","
                                     " \"params\": {\"prompt\": \"x\", \"width\": 1.5}}");
    assert_string_equal(detail_for(details, "params.width"), "must be an integer");
    assert_int_equal(json_array_size(details), 1);
    json_decref(details);

    /* a real that is integral but out of range reports the range, not the type */
    details = expect_invalid("{\"task_type\": \"text-to-image\","
                             " \"params\": {\"prompt\": \"x\", \"width\": 8192.0}}");
    assert_string_equal(detail_for(details, "params.width"), "must be an integer from 64 to 4096");
    json_decref(details);

    details = expect_invalid("{\"task_type\": \"text-to-image\","
                             " \"params\": {\"prompt\": \"x\", \"width\": 1e300}}");
    assert_non_null(detail_for(details, "params.width"));
    json_decref(details);
}

/* A string of n copies of the UTF-8 sequence ch. */
static char *repeat(const char *ch, size_t n)
{
    size_t l = strlen(ch);
    char *s = malloc(l * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * l, ch, l);
    s[l * n] = '\0';
    return s;
}

static int validate_prompt(const char *prompt, json_t **details)
{
    json_t *body =
        json_pack("{s:s, s:{s:s}}", "task_type", "text-to-image", "params", "prompt", prompt);
    assert_non_null(body);
    gp_submission_t sub;
    int rc = gp_validate_submission(body, 3, &sub, details);
    json_decref(body);
    if (rc == 0)
        gp_submission_clear(&sub);
    return rc;
}

static void test_string_length_in_characters(void **state)
{
    (void)state;
    /* prompt: 1 to 4000 characters. 4000 three-byte characters = 12000 bytes: accepted. */
    const char *chars[] = {"a", "\xc3\xa9" /* é */, "\xe2\x82\xac" /* € */,
                           "\xf0\x9f\x98\x80" /* 😀 */};
    for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++) {
        json_t *details = NULL;
        char *ok = repeat(chars[i], 4000);
        assert_int_equal(validate_prompt(ok, &details), 0);
        assert_null(details);
        free(ok);

        char *too_long = repeat(chars[i], 4001);
        assert_int_equal(validate_prompt(too_long, &details), -1);
        free(too_long);
        const char *m = detail_for(details, "params.prompt");
        assert_non_null(m);
        assert_string_equal(m, "must be 1 to 4000 characters long (got 4001)");
        json_decref(details);
    }
    json_t *details = NULL;
    assert_int_equal(validate_prompt("", &details), -1);
    assert_string_equal(detail_for(details, "params.prompt"),
                        "must be 1 to 4000 characters long (got 0)");
    json_decref(details);
}

static void test_string_with_nul_rejected(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *body = json_loads("{\"task_type\": \"text-to-image\","
                              " \"params\": {\"prompt\": \"a\\u0000b\"}}",
                              JSON_ALLOW_NUL, &jerr);
    assert_non_null(body);
    gp_submission_t sub;
    json_t *details = NULL;
    assert_int_equal(gp_validate_submission(body, 3, &sub, &details), -1);
    json_decref(body);
    assert_string_equal(detail_for(details, "params.prompt"), "must not contain NUL characters");
    json_decref(details);
}

static void test_wrong_types(void **state)
{
    (void)state;
    json_t *details =
        expect_invalid("{\"task_type\": \"echo\", \"params\": {\"message\": 5, \"data\": [1]}}");
    assert_string_equal(detail_for(details, "params.message"), "must be a string");
    assert_string_equal(detail_for(details, "params.data"), "must be an object");
    assert_int_equal(json_array_size(details), 2);
    json_decref(details);

    details = expect_invalid("{\"task_type\": \"echo\", \"params\": [\"message\"]}");
    assert_string_equal(detail_for(details, "params"), "must be an object");
    assert_int_equal(json_array_size(details), 1);
    json_decref(details);
}

static void test_non_object_body(void **state)
{
    (void)state;
    const char *bodies[] = {"[]", "[{\"task_type\": \"echo\"}]", "\"echo\"", "42", "null", "true"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_error_t jerr;
        json_t *body = json_loads(bodies[i], JSON_DECODE_ANY, &jerr);
        assert_non_null(body);
        gp_submission_t sub;
        json_t *details = NULL;
        assert_int_equal(gp_validate_submission(body, 3, &sub, &details), -1);
        json_decref(body);
        assert_details_valid_shape(details);
        assert_int_equal(json_array_size(details), 1);
        assert_non_null(detail_for(details, ""));
        assert_null(sub.params);
        json_decref(details);
    }
    /* NULL body too (what the server never passes, but must not crash) */
    gp_submission_t sub;
    json_t *details = NULL;
    assert_int_equal(gp_validate_submission(NULL, 3, &sub, &details), -1);
    json_decref(details);
}

/*
 * Field names are truncated to 100 bytes before they go into a detail. A name made of
 * three-byte characters gets cut inside a character, and the detail must still be reported.
 */
static void test_long_multibyte_unknown_field_reported(void **state)
{
    (void)state;
    char *key = repeat("\xe2\x82\xac", 40); /* 120 bytes: cut at 100 falls inside a char */
    json_t *body = json_pack("{s:s, s:i}", "task_type", "echo", key, 1);
    assert_non_null(body);
    json_t *pbody =
        json_pack("{s:s, s:{s:s, s:i}}", "task_type", "echo", "params", "message", "hi", key, 1);
    assert_non_null(pbody);
    free(key);
    gp_submission_t sub;
    json_t *details = NULL;
    int rc = gp_validate_submission(body, 3, &sub, &details);
    json_decref(body);
    if (rc == 0)
        gp_submission_clear(&sub);
    json_decref(details);
    details = NULL;
    int prc = gp_validate_submission(pbody, 3, &sub, &details);
    json_decref(pbody);
    if (prc == 0)
        gp_submission_clear(&sub);
    json_decref(details);
    assert_int_not_equal(rc, 0); /* the unknown field is reported, not dropped */
    assert_int_not_equal(prc, 0);
}

static void test_params_schema(void **state)
{
    (void)state;
    const gp_task_type_t *t = gp_registry_task_type("text-to-image");
    assert_non_null(t);
    const gp_provider_t *p = gp_registry_provider(t, "simulator");
    assert_non_null(p);
    json_t *s = gp_params_schema(t, p);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "$schema")),
                        "https://json-schema.org/draft/2020-12/schema");
    assert_string_equal(json_string_value(json_object_get(s, "type")), "object");
    assert_true(json_is_false(json_object_get(s, "additionalProperties")));

    json_t *req = json_object_get(s, "required");
    assert_true(json_is_array(req));
    bool has_prompt = false, has_provider = false;
    size_t i;
    json_t *r;
    json_array_foreach (req, i, r) {
        if (!strcmp(json_string_value(r), "prompt"))
            has_prompt = true;
        if (!strcmp(json_string_value(r), "provider"))
            has_provider = true;
    }
    assert_true(has_prompt);
    assert_false(has_provider); /* simulator is the default provider */

    json_t *props = json_object_get(s, "properties");
    json_t *w = json_object_get(props, "width");
    assert_non_null(w);
    assert_string_equal(json_string_value(json_object_get(w, "type")), "integer");
    assert_int_equal(json_integer_value(json_object_get(w, "minimum")), 64);
    assert_int_equal(json_integer_value(json_object_get(w, "maximum")), 4096);
    assert_int_equal(json_integer_value(json_object_get(w, "default")), 512);
    json_t *prompt = json_object_get(props, "prompt");
    assert_int_equal(json_integer_value(json_object_get(prompt, "minLength")), 1);
    assert_int_equal(json_integer_value(json_object_get(prompt, "maxLength")), 4000);
    /* provider-specific params are in the same schema */
    assert_non_null(json_object_get(props, "delay_ms"));
    json_t *prov = json_object_get(props, "provider");
    assert_string_equal(json_string_value(json_object_get(prov, "const")), "simulator");
    json_decref(s);

    json_t *desc = gp_registry_describe();
    assert_non_null(desc);
    assert_true(json_array_size(json_object_get(desc, "data")) >= 3);
    json_decref(desc);
}

/* ---------------------------------------------------------------------------------------
 * Provider setting kinds (core/settings.c): the one parser, and the check at start
 * ------------------------------------------------------------------------------------- */

static gp_setting_value_t parse_ok(gp_setting_kind_t kind, double lo, double hi, const char *text)
{
    gp_setting_value_t v = {-7, -7.0};
    char why[160] = "";
    if (gp_setting_parse(kind, lo, hi, false, text, &v, why, sizeof why) != 0)
        fail_msg("\"%s\" refused: %s", text, why);
    return v;
}

static void parse_bad(gp_setting_kind_t kind, double lo, double hi, const char *text,
                      const char *reason)
{
    gp_setting_value_t v = {-7, -7.0};
    char why[160] = "";
    assert_int_equal(gp_setting_parse(kind, lo, hi, false, text, &v, why, sizeof why), -1);
    assert_int_equal(v.i, -7); /* untouched on failure */
    assert_contains(why, reason);
}

static void test_setting_integers(void **state)
{
    (void)state;
    assert_int_equal(parse_ok(GP_SETTING_INT, 100, 60000, "100").i, 100);
    assert_int_equal(parse_ok(GP_SETTING_INT, 100, 60000, "60000").i, 60000);
    assert_int_equal(parse_ok(GP_SETTING_INT, -5, 5, "-5").i, -5);
    const char *bad[] = {"12x", "", "99", "60001", "1.5", "0x10", "99999999999999999999", "1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(GP_SETTING_INT, 100, 60000, bad[i], "is not an integer from 100 to 60000");
}

static void test_setting_durations(void **state)
{
    (void)state;
    assert_int_equal(parse_ok(GP_SETTING_DURATION_MS, 10, 3600000, "1500").i, 1500);
    assert_int_equal(parse_ok(GP_SETTING_DURATION_MS, 10, 3600000, "1500ms").i, 1500);
    assert_int_equal(parse_ok(GP_SETTING_DURATION_MS, 10, 3600000, "2s").i, 2000);
    assert_int_equal(parse_ok(GP_SETTING_DURATION_MS, 10, 3600000, "5m").i, 300000);
    assert_int_equal(parse_ok(GP_SETTING_DURATION_MS, 10, 3600000, "1h").i, 3600000);
    const char *bad[] = {"12x", "", "s", "2 s", "9", "2h", "1.5s", "9223372036854775807h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(GP_SETTING_DURATION_MS, 10, 3600000, bad[i],
                  "is not an integer from 10 to 3600000 (milliseconds)");
}

static void test_setting_booleans_numbers_urls(void **state)
{
    (void)state;
    const char *yes[] = {"1", "true", "TRUE", "yes", "on"}, *no[] = {"0", "false", "No", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_int_equal(parse_ok(GP_SETTING_BOOL, 0, 0, yes[i]).i, 1);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(parse_ok(GP_SETTING_BOOL, 0, 0, no[i]).i, 0);
    parse_bad(GP_SETTING_BOOL, 0, 0, "2", "is not a boolean");
    parse_bad(GP_SETTING_BOOL, 0, 0, "", "is not a boolean");

    assert_true(parse_ok(GP_SETTING_NUMBER, 0.001, 1000, "0.5").d == 0.5);
    assert_true(parse_ok(GP_SETTING_NUMBER, 0.001, 1000, "1000").d == 1000.0);
    const char *bad_num[] = {"0", "1001", "nan", "inf", "1e9", "5x", ""};
    for (size_t i = 0; i < sizeof bad_num / sizeof bad_num[0]; i++)
        parse_bad(GP_SETTING_NUMBER, 0.001, 1000, bad_num[i], "is not a number from 0.001 to 1000");

    parse_ok(GP_SETTING_URL, 0, 0, "https://api.replicate.com/v1");
    parse_ok(GP_SETTING_URL, 0, 0, "http://127.0.0.1:8188");
    const char *bad_url[] = {"ftp://x", "https://", "http:///path", "https://a b", "api.x.com", ""};
    for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
        parse_bad(GP_SETTING_URL, 0, 0, bad_url[i], "is not an http:// or https:// URL");
    gp_setting_value_t v;
    char why[160];
    assert_int_equal(gp_setting_parse(GP_SETTING_URL, 0, 0, true, "", &v, why, sizeof why), 0);

    parse_ok(GP_SETTING_STRING, 0, 0, "");
    parse_ok(GP_SETTING_SECRET, 0, 0, "s3cr3t with spaces");
    char *huge = calloc(5000, 1);
    assert_non_null(huge);
    memset(huge, 'a', 4999);
    parse_bad(GP_SETTING_SECRET, 0, 0, huge, "longer than 4096");
    free(huge);
}

/* Every provider's declared defaults pass their own kinds, and a value is parsed at start. */
static void test_settings_load_checks_providers(void **state)
{
    (void)state;
    char *argv[] = {
        "genpulse", "serve", "--replicate-poll-interval-ms", "2s", "--vips-max-megapixels=0.5",
        NULL};
    gp_settings_t s;
    assert_int_equal(gp_settings_load(&s, GP_CMD_SERVE, "serve", "doc", 5, argv, 2), 0);
    assert_int_equal(gp_settings_provider_value(&s, "replicate", "poll-interval-ms").i, 2000);
    assert_string_equal(gp_settings_provider(&s, "replicate", "poll-interval-ms"), "2s");
    assert_int_equal(gp_settings_provider_value(&s, "replicate", "request-timeout-ms").i, 30000);
    assert_true(gp_settings_provider_value(&s, "vips", "max-megapixels").d == 0.5);
    assert_int_equal(gp_settings_provider_value(&s, "replicate", "no-such").i, 0);
    gp_settings_free(&s);

    char *bad_flag[] = {"genpulse", "serve", "--replicate-poll-interval-ms", "12x", NULL};
    assert_int_equal(gp_settings_load(&s, GP_CMD_SERVE, "serve", "doc", 4, bad_flag, 2), -1);
    gp_settings_free(&s);

    char *plain[] = {"genpulse", "worker", NULL};
    setenv("GENPULSE_KLING_POLL_INTERVAL_MS", "0", 1);
    assert_int_equal(gp_settings_load(&s, GP_CMD_WORKER, "worker", "doc", 2, plain, 2), -1);
    gp_settings_free(&s);
    /* api and migrate do not run providers: the variable is not theirs to read. */
    assert_int_equal(gp_settings_load(&s, GP_CMD_API, "api", "doc", 2, plain, 2), 0);
    gp_settings_free(&s);
    unsetenv("GENPULSE_KLING_POLL_INTERVAL_MS");
}

int main(void)
{
    const struct CMUnitTest init_tests[] = {
        cmocka_unit_test(test_init_from_ok),
        cmocka_unit_test(test_init_from_duplicate_task_type),
        cmocka_unit_test(test_init_from_duplicate_provider),
        cmocka_unit_test(test_init_from_default_out_of_range),
        cmocka_unit_test(test_init_from_string_default_for_integer),
        cmocka_unit_test(test_init_from_unparsable_default),
        cmocka_unit_test(test_init_from_provider_bad_default),
        cmocka_unit_test(test_init_from_provider_unknown_task_type),
        cmocka_unit_test(test_init_from_default_provider_not_serving),
        cmocka_unit_test(test_init_from_default_provider_missing),
    };
    const struct CMUnitTest validate_tests[] = {
        cmocka_unit_test_setup(test_valid_minimal_text_to_image, setup_real_registry),
        cmocka_unit_test_setup(test_valid_full_envelope, setup_real_registry),
        cmocka_unit_test_setup(test_valid_text_to_audio_defaults, setup_real_registry),
        cmocka_unit_test_setup(test_every_bad_field_reported, setup_real_registry),
        cmocka_unit_test_setup(test_envelope_bounds, setup_real_registry),
        cmocka_unit_test_setup(test_unknown_task_type, setup_real_registry),
        cmocka_unit_test_setup(test_unknown_provider, setup_real_registry),
        cmocka_unit_test_setup(test_provider_params_validated, setup_real_registry),
        cmocka_unit_test_setup(test_integer_given_as_real, setup_real_registry),
        cmocka_unit_test_setup(test_string_length_in_characters, setup_real_registry),
        cmocka_unit_test_setup(test_string_with_nul_rejected, setup_real_registry),
        cmocka_unit_test_setup(test_wrong_types, setup_real_registry),
        cmocka_unit_test_setup(test_non_object_body, setup_real_registry),
        cmocka_unit_test_setup(test_long_multibyte_unknown_field_reported, setup_real_registry),
        cmocka_unit_test_setup(test_params_schema, setup_real_registry),
    };
    const struct CMUnitTest setting_tests[] = {
        cmocka_unit_test(test_setting_integers),
        cmocka_unit_test(test_setting_durations),
        cmocka_unit_test(test_setting_booleans_numbers_urls),
        cmocka_unit_test(test_settings_load_checks_providers),
    };
    int failed = cmocka_run_group_tests_name("registry_init", init_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("provider_settings", setting_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("validate_submission", validate_tests, NULL, NULL);
    return failed;
}

/*
 * fuzz_submit.c — libFuzzer target for the POST /v1/tasks path without the HTTP layer:
 * the body is parsed exactly as the server parses it (json_loadb with
 * JSON_REJECT_DUPLICATES), validated with gp_validate_submission() against the real
 * registry, and then either turned into the client-facing task JSON (gp_task_to_json) or into
 * the 422 body (json_dumps of the details). Everything is freed, so LeakSanitizer checks the
 * validator's ownership rules on every input.
 *
 * Besides "no crash, no leak, no UB", it checks the validator's contract and aborts when one
 * is broken:
 *   - a failure has a non-empty details array of {field: string, message: string};
 *   - a success has params that are an object with "provider" = the provider's name, an
 *     envelope in range, and no field of the body that is not known;
 *   - validating the accepted, normalized submission again succeeds with identical params.
 *
 * Coverage: the Makefile compiles the core archive without -fsanitize=fuzzer, so only this
 * file is coverage-instrumented. registry.c and task.c (the code under test) are therefore
 * compiled into this translation unit; since it defines every external symbol of
 * registry.o and task.o, the linker never pulls those members from the archive.
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "core/registry.c"
#include "core/task.c"

#include "core/registry.h"
#include "core/task.h"
#include "core/util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_RETRIES 3

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_submit: contract violated: %s\n", what);
        abort();
    }
}

static void init_once(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    char err[512] = "";
    if (gp_registry_init(err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_submit: gp_registry_init: %s\n", err);
        abort();
    }
    /* input-independent, but run once under the sanitizers */
    json_t *desc = gp_registry_describe();
    char *text = json_dumps(desc, JSON_COMPACT);
    check(text != NULL, "registry description serializes");
    free(text);
    json_decref(desc);
}

static bool known_top_level(const char *key)
{
    return !strcmp(key, "task_type") || !strcmp(key, "params") || !strcmp(key, "priority") ||
           !strcmp(key, "max_retries");
}

static void check_details(json_t *details)
{
    check(json_is_array(details), "details is an array");
    check(json_array_size(details) > 0, "a failure has at least one detail");
    size_t i;
    json_t *d;
    json_array_foreach (details, i, d) {
        check(json_is_object(d), "detail is an object");
        check(json_is_string(json_object_get(d, "field")), "detail.field is a string");
        check(json_is_string(json_object_get(d, "message")), "detail.message is a string");
    }
    /* the 422 body the server sends */
    json_t *body = json_pack("{s:{s:s, s:s, s:O}}", "error", "code", "validation_error", "message",
                             "the request has invalid fields", "details", details);
    check(body != NULL, "422 body builds");
    char *text = json_dumps(body, JSON_COMPACT);
    check(text != NULL, "422 body serializes");
    free(text);
    json_decref(body);
}

static void check_accepted(const json_t *body, const gp_submission_t *sub)
{
    check(sub->task_type != NULL && sub->provider != NULL, "type and provider set");
    check(json_is_object(sub->params), "params is an object");
    check(json_is_string(json_object_get(sub->params, "provider")) &&
              !strcmp(json_string_value(json_object_get(sub->params, "provider")),
                      sub->provider->name),
          "params.provider is the provider's name");
    check(sub->priority >= GP_PRIORITY_MIN && sub->priority <= GP_PRIORITY_MAX, "priority range");
    check(sub->max_retries >= 0 && sub->max_retries <= GP_MAX_RETRIES_MAX, "max_retries range");
    check(gp_registry_provider(sub->task_type, sub->provider->name) == sub->provider,
          "provider serves the type");

    /* Nothing unknown slipped through, however long or multibyte its name. */
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)body, key, value) {
        check(known_top_level(key), "unknown top-level field accepted");
    }
    json_t *params = json_object_get(body, "params");
    if (json_is_object(params)) {
        json_object_foreach (params, key, value) {
            if (!json_is_null(value))
                check(json_object_get(sub->params, key) != NULL, "unknown param accepted");
        }
    }
}

/* The normalized submission, sent again, must be accepted unchanged. */
static void check_revalidates(const gp_submission_t *sub)
{
    json_t *again =
        json_pack("{s:s, s:O, s:i, s:i}", "task_type", sub->task_type->name, "params", sub->params,
                  "priority", sub->priority, "max_retries", sub->max_retries);
    check(again != NULL, "resubmission builds");
    gp_submission_t sub2;
    json_t *details = NULL;
    int rc = gp_validate_submission(again, DEFAULT_MAX_RETRIES, &sub2, &details);
    json_decref(again);
    if (rc != 0) {
        char *d = json_dumps(details, JSON_COMPACT);
        fprintf(stderr, "fuzz_submit: resubmission rejected: %s\n", d ? d : "?");
        free(d);
        json_decref(details);
        abort();
    }
    check(details == NULL, "no details on success");
    check(sub2.task_type == sub->task_type && sub2.provider == sub->provider, "same type");
    check(json_equal(sub2.params, sub->params), "normalized params are a fixed point");
    check(sub2.priority == sub->priority && sub2.max_retries == sub->max_retries, "envelope");
    gp_submission_clear(&sub2);
}

static void render_task(const gp_submission_t *sub)
{
    /* built the way the server's create_task() builds it */
    gp_task_t t;
    memset(&t, 0, sizeof t);
    gp_uuid7(t.id);
    t.task_type = gp_xstrdup(sub->task_type->name);
    t.provider = gp_xstrdup(sub->provider->name);
    t.status = GP_TASK_PENDING;
    t.params = json_incref(sub->params);
    t.max_retries = sub->max_retries;
    t.priority = sub->priority;
    t.idempotency_key = gp_xstrdup("fuzz-key");
    t.created_at = gp_now_ms();

    json_t *j = gp_task_to_json(&t, NULL, "http://127.0.0.1:8080");
    check(j != NULL, "task JSON builds");
    check(json_equal(json_object_get(j, "params"), sub->params), "task JSON carries params");
    char *text = json_dumps(j, JSON_COMPACT);
    check(text != NULL, "task JSON serializes");
    free(text);
    json_decref(j);

    /* and the snapshot an event carries, with hot state */
    gp_hot_state_t hot = {.progress = 42, .step = "rendering", .seq = 7};
    t.status = GP_TASK_PROCESSING;
    t.attempts = 1;
    json_t *snap = gp_task_snapshot(&t, &hot);
    text = json_dumps(snap, JSON_COMPACT);
    check(text != NULL, "snapshot serializes");
    free(text);
    json_decref(snap);
    gp_task_clear(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    gp_submission_t sub;
    json_t *details = NULL;
    int rc = gp_validate_submission(body, DEFAULT_MAX_RETRIES, &sub, &details);
    if (rc == 0) {
        check(details == NULL, "no details on success");
        check_accepted(body, &sub);
        check_revalidates(&sub);
        render_task(&sub);
        gp_submission_clear(&sub);
    } else {
        check(rc == -1, "failure returns -1");
        check(sub.params == NULL, "no params on failure");
        check_details(details);
        json_decref(details);
    }
    json_decref(body);
    return 0;
}

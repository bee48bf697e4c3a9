/*
 * fuzz_celery.c — libFuzzer target for the Celery wire decoders (src/infra/celery/wire.c):
 * the task-message envelope, its base64 body's kwargs, and the result-backend meta. Every
 * message a Redis client can push lands in these functions, so beyond "no crash, no leak, no
 * UB" it checks their contract: a decoded message has a non-empty id and a priority in 0..9;
 * a decoded meta has a state; a re-encoded message decodes to the same id and priority.
 *
 * wire.c is compiled into this translation unit so that it is coverage-instrumented (the
 * core archive is not; see fuzz_submit.c). Build and run: make fuzz
 */
#include "infra/celery/wire.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_celery: contract violated: %s\n", what);
        abort();
    }
}

static void round_trip(const gp_celery_decoded_t *d, json_t *kwargs)
{
    gp_celery_task_t t = {.task = d->task ? d->task : "x",
                          .id = d->id,
                          .kwargs = kwargs,
                          .kombu_priority = d->kombu_priority,
                          .delivery_tag = "tag",
                          .routing_key = "celery"};
    char *text = gp_celery_encode_task(&t);
    check(text != NULL, "encode of a decoded message failed");
    gp_celery_decoded_t again;
    check(gp_celery_decode_task(text, strlen(text), &again) == 0, "re-encoded message undecodable");
    check(!strcmp(again.id, d->id), "id changed in the round trip");
    check(again.kombu_priority == d->kombu_priority, "priority changed in the round trip");
    json_t *k2 = gp_celery_decode_kwargs(&again);
    check(k2 && (!kwargs || json_equal(k2, kwargs)), "kwargs changed in the round trip");
    json_decref(k2);
    gp_celery_decoded_clear(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp_celery_decoded_t d;
    if (gp_celery_decode_task((const char *)data, size, &d) == 0) {
        check(d.id && *d.id, "decoded message without an id");
        check(d.kombu_priority >= 0 && d.kombu_priority <= 9, "priority out of range");
        json_t *kwargs = gp_celery_decode_kwargs(&d);
        check(!kwargs || json_is_object(kwargs), "kwargs not an object");
        if (d.task == NULL || strlen(d.task) < 200)
            round_trip(&d, kwargs);
        json_decref(kwargs);
    }
    check(d.root == NULL || d.id != NULL, "state left behind");
    gp_celery_decoded_clear(&d);
    gp_celery_meta_t m;
    if (gp_celery_decode_meta((const char *)data, size, &m) == 0) {
        check(m.state != NULL, "meta without a state");
        (void)gp_celery_meta_error(&m);
    }
    gp_celery_meta_clear(&m);
    return 0;
}

/*
 * fuzz_celery.c — libFuzzer target for the Celery wire decoders (src/infra/celery/wire.c):
 * the task-message envelope, its base64 body's kwargs, kombu's `unacked` entries, and the
 * result-backend meta. Every message a Redis client can push lands in these functions, so
 * beyond "no crash, no leak, no UB" it checks their contract: a decoded message has a bounded
 * id and a priority in 0..9; a re-encoded message decodes to the same id, priority and
 * kwargs; a redelivered entry carries both redelivered flags; a decoded meta has a state;
 * every refusal says why.
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
    char err[256] = "";
    check(gp_celery_decode_task(text, strlen(text), &again, err, sizeof err) == 0,
          "re-encoded message undecodable");
    check(!strcmp(again.id, d->id), "id changed in the round trip");
    check(again.kombu_priority == d->kombu_priority, "priority changed in the round trip");
    json_t *k2 = gp_celery_decode_kwargs(&again, err, sizeof err);
    check(k2 && (!kwargs || json_equal(k2, kwargs)), "kwargs changed in the round trip");
    json_decref(k2);
    gp_celery_decoded_clear(&again);
    free(text);
}

static void message(const uint8_t *data, size_t size)
{
    gp_celery_decoded_t d;
    char err[256] = "";
    if (gp_celery_decode_task((const char *)data, size, &d, err, sizeof err) == 0) {
        check(d.id && *d.id && strlen(d.id) <= GP_CELERY_MAX_NAME, "bad id");
        check(!d.task || (*d.task && strlen(d.task) <= GP_CELERY_MAX_NAME), "bad task name");
        check(d.kombu_priority >= 0 && d.kombu_priority <= 9, "priority out of range");
        json_t *kwargs = gp_celery_decode_kwargs(&d, err, sizeof err);
        check(kwargs ? json_is_object(kwargs) : err[0] != '\0', "kwargs not an object");
        round_trip(&d, kwargs);
        json_decref(kwargs);
    } else {
        check(err[0] != '\0' && d.root == NULL, "failure without a reason, or state left");
    }
    gp_celery_decoded_clear(&d);
}

/* The input as an `unacked` value: either redelivered (and then a decodable message with the
 * flags set), left alone, or refused with a reason. */
static void unacked(const uint8_t *data, size_t size)
{
    char *msg = NULL, err[256] = "";
    int kp = -1;
    int rc = gp_celery_redeliver((const char *)data, size, "celery", &msg, &kp, err, sizeof err);
    if (rc == 0) {
        check(msg && kp >= 0 && kp <= 9, "redeliver outputs");
        json_t *m = json_loads(msg, 0, NULL);
        json_t *di = json_object_get(json_object_get(m, "properties"), "delivery_info");
        check(json_is_true(json_object_get(json_object_get(m, "headers"), "redelivered")) &&
                  json_is_true(json_object_get(di, "redelivered")),
              "redelivered flags not set");
        json_decref(m);
    } else {
        check(msg == NULL && kp == -1, "outputs touched on failure");
        check(rc == 1 || err[0] != '\0', "failure without a reason");
    }
    free(msg);
}

static void meta(const uint8_t *data, size_t size)
{
    gp_celery_meta_t m;
    char err[256] = "";
    if (gp_celery_decode_meta((const char *)data, size, &m, err, sizeof err) == 0) {
        check(m.state != NULL && *m.state, "meta without a state");
        (void)gp_celery_meta_error(&m);
    } else {
        check(err[0] != '\0' && m.root == NULL, "failure without a reason, or state left");
    }
    gp_celery_meta_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    message(data, size);
    unacked(data, size);
    meta(data, size);
    return 0;
}

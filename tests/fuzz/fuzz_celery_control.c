/*
 * fuzz_celery_control.c — libFuzzer target for the Celery remote-control decoder and the
 * encoders the worker monitor answers with (src/infra/celery/wire.c): every message any
 * Redis client PUBLISHes on /<db>.celery.pidbox reaches gp_celery_decode_control(). Beyond
 * "no crash, no leak, no UB" it checks the contract: a decoded message has a [a-z_] method
 * of bounded length, arguments that are an object or absent, a destination that is a list of
 * strings, a ticket only together with a reply_to; a refusal says why and leaves nothing;
 * a reply envelope built from it decodes as a kombu envelope again; the input's Python repr
 * (as JSON) stays within its bound.
 *
 * wire.c is compiled into this translation unit so that it is coverage-instrumented (see
 * fuzz_celery.c). Build and run: make fuzz
 */
#include "infra/celery/wire.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_celery_control: contract violated: %s\n", what);
        abort();
    }
}

/* A reply as the monitor sends it must parse back as an envelope with a base64 body. */
static void reply_round_trip(const gp_celery_control_t *c)
{
    json_t *body = json_pack("{s:{s:s}}", "genpulse-1@host", "method", c->method);
    json_t *headers = json_pack("{s:s, s:i}", "ticket", c->ticket ? c->ticket : "t", "clock", 1);
    char *text = gp_celery_encode_envelope(body, headers, "reply.celery.pidbox",
                                           c->reply_routing_key ? c->reply_routing_key : "rk",
                                           "00000000-0000-4000-8000-000000000000");
    check(text != NULL, "reply envelope not encoded");
    json_t *m = json_loads(text, 0, NULL);
    const char *b64 = json_string_value(json_object_get(m, "body"));
    size_t n = 0;
    unsigned char *raw = b64 ? gp_base64_decode(b64, strlen(b64), &n) : NULL;
    json_t *back = raw ? json_loadb((const char *)raw, n, 0, NULL) : NULL;
    check(back && json_equal(back, body), "reply body changed in the envelope");
    json_decref(back);
    free(raw);
    json_decref(m);
    json_decref(body);
    free(text);
}

static void control(const uint8_t *data, size_t size)
{
    gp_celery_control_t c;
    char err[256] = "";
    if (gp_celery_decode_control((const char *)data, size, &c, err, sizeof err) == 0) {
        check(c.root && c.method && *c.method && strlen(c.method) <= GP_CELERY_MAX_METHOD,
              "bad method");
        for (const char *p = c.method; *p; p++)
            check((*p >= 'a' && *p <= 'z') || *p == '_', "method outside [a-z_]");
        check(!c.arguments || json_is_object(c.arguments), "arguments not an object");
        check(!c.destination || json_is_array(c.destination), "destination not a list");
        for (size_t i = 0; c.destination && i < json_array_size(c.destination); i++)
            check(json_is_string(json_array_get(c.destination, i)), "destination entry");
        check(!c.ticket || (c.reply_exchange && c.reply_routing_key), "ticket without reply_to");
        check(c.clock >= 0, "negative clock");
        (void)gp_celery_control_for(&c, "genpulse-1@host");
        reply_round_trip(&c);
    } else {
        check(err[0] != '\0' && c.root == NULL && c.method == NULL,
              "failure without a reason, or state left");
    }
    gp_celery_control_clear(&c);
}

static void repr(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!v)
        return;
    for (size_t max = 0; max <= 64; max += 16) {
        char *r = gp_celery_pyrepr(v, max);
        check(r != NULL, "repr failed");
        check(strlen(r) <= (max > 3 ? max : 3), "repr longer than its bound");
        free(r);
    }
    char *full = gp_celery_pyrepr(v, 1 << 20);
    check(full != NULL, "repr failed");
    free(full);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    control(data, size);
    repr(data, size);
    return 0;
}

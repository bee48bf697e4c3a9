/* test_celery_control.c — the Celery remote-control decoder, reply/event envelopes and the
 * Python repr the worker monitor sends (src/infra/celery/wire.c), on captured messages
 * (research/queues_celery_monitor_capture.log). */
#include "core/base64.h"
#include "infra/celery/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* An envelope around body, as kombu's Redis transport publishes a broadcast. */
static char *envelope(const char *body, const char *headers)
{
    char *b64 = gp_base64_encode_or_null(body, strlen(body));
    size_t n = strlen(b64) + strlen(headers) + 512;
    char *out = malloc(n);
    snprintf(out, n,
             "{\"body\": \"%s\", \"content-encoding\": \"utf-8\", \"content-type\": "
             "\"application/json\", \"headers\": %s, \"properties\": {\"delivery_mode\": 2, "
             "\"delivery_info\": {\"exchange\": \"celery.pidbox\", \"routing_key\": \"\"}, "
             "\"priority\": 0, \"body_encoding\": \"base64\", \"delivery_tag\": \"t\"}}",
             b64, headers);
    free(b64);
    return out;
}

static void test_captured_ping(void **state)
{
    (void)state;
    /* The ping body and headers of the capture, byte for byte. */
    char *msg = envelope(
        "{\"method\": \"ping\", \"arguments\": {}, \"destination\": null, \"pattern\": null, "
        "\"matcher\": null, \"ticket\": \"3714c618-d8d1-4c95-a880-6a783aa055f9\", \"reply_to\": "
        "{\"exchange\": \"reply.celery.pidbox\", \"routing_key\": "
        "\"e36503f8-6652-3159-ada3-3efeca750286\"}}",
        "{\"clock\": 1, \"expires\": 1795424348.1587586}");
    gp_celery_control_t c;
    char err[160] = "";
    assert_int_equal(gp_celery_decode_control(msg, strlen(msg), &c, err, sizeof err), 0);
    assert_string_equal(c.method, "ping");
    assert_string_equal(c.ticket, "3714c618-d8d1-4c95-a880-6a783aa055f9");
    assert_string_equal(c.reply_exchange, "reply.celery.pidbox");
    assert_string_equal(c.reply_routing_key, "e36503f8-6652-3159-ada3-3efeca750286");
    assert_int_equal(c.clock, 1);
    assert_true(c.expires > 1795424348.0 && c.expires < 1795424349.0);
    assert_true(gp_celery_control_for(&c, "genpulse-1@vm"));
    gp_celery_control_clear(&c);
    gp_celery_control_clear(&c); /* idempotent */
    free(msg);
}

static void test_destination_and_pattern(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        bool mine;
    } cases[] = {
        {"{\"method\": \"stats\", \"destination\": [\"genpulse-1@vm\"]}", true},
        {"{\"method\": \"stats\", \"destination\": [\"celery@other\"]}", false},
        {"{\"method\": \"stats\", \"destination\": []}", true},
        {"{\"method\": \"stats\", \"pattern\": \"genpulse-*@*\", \"matcher\": \"glob\"}", true},
        {"{\"method\": \"stats\", \"pattern\": \"w*\"}", false},
        {"{\"method\": \"stats\", \"pattern\": \".*\", \"matcher\": \"pcre\"}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *msg = envelope(cases[i].body, "{}");
        gp_celery_control_t c;
        char err[160];
        assert_int_equal(gp_celery_decode_control(msg, strlen(msg), &c, err, sizeof err), 0);
        assert_int_equal(gp_celery_control_for(&c, "genpulse-1@vm"), cases[i].mine);
        assert_null(c.ticket); /* no reply_to: nothing to answer */
        gp_celery_control_clear(&c);
        free(msg);
    }
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *body, *headers;
    } bad[] = {
        {"[]", "{}"},
        {"{\"arguments\": {}}", "{}"},
        {"{\"method\": \"Ping\"}", "{}"},
        {"{\"method\": \"ping; rm\"}", "{}"},
        {"{\"method\": \"ping\", \"arguments\": []}", "{}"},
        {"{\"method\": \"ping\", \"destination\": \"w1@vm\"}", "{}"},
        {"{\"method\": \"ping\", \"destination\": [1]}", "{}"},
        {"{\"method\": \"ping\", \"ticket\": 5, \"reply_to\": {}}", "{}"},
        {"{\"method\": \"ping\", \"ticket\": \"t\", \"reply_to\": {\"exchange\": \"x\"}}", "{}"},
        {"{\"method\": \"ping\", \"ticket\": \"a\\nb\"}", "{}"},
        {"{\"method\": \"ping\"}", "{\"clock\": \"1\"}"},
        {"{\"method\": \"ping\"}", "{\"expires\": \"soon\"}"},
        {"{\"method\": \"ping\"}", "[]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *msg = envelope(bad[i].body, bad[i].headers);
        gp_celery_control_t c;
        char err[160] = "";
        assert_int_equal(gp_celery_decode_control(msg, strlen(msg), &c, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_null(c.root);
        free(msg);
    }
    const char *not_b64 = "{\"body\": \"%%%\", \"content-type\": \"application/json\", "
                          "\"properties\": {\"body_encoding\": \"base64\"}}";
    gp_celery_control_t c;
    char err[160] = "";
    assert_int_equal(gp_celery_decode_control(not_b64, strlen(not_b64), &c, err, sizeof err), -1);
    const char *yaml = "{\"body\": \"e30=\", \"content-type\": \"application/x-yaml\"}";
    assert_int_equal(gp_celery_decode_control(yaml, strlen(yaml), &c, err, sizeof err), -1);
    size_t big_n = GP_CELERY_MAX_CONTROL + 16;
    char *big = malloc(big_n + 1);
    memset(big, ' ', big_n);
    big[big_n] = '\0';
    assert_int_equal(gp_celery_decode_control(big, big_n, &c, err, sizeof err), -1);
    free(big);
}

static void test_pyrepr(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"message\": \"x\", \"n\": 3, \"ok\": true, \"no\": false, "
                           "\"nothing\": null, \"f\": 1.5, \"list\": [1, \"it's\"], "
                           "\"q\": \"say \\\"hi\\\"\\n\"}",
                           JSON_PRESERVE_ORDER, NULL);
    char *r = gp_celery_pyrepr(v, 1024);
    assert_string_equal(r, "{'message': 'x', 'n': 3, 'ok': True, 'no': False, 'nothing': None, "
                           "'f': 1.5, 'list': [1, \"it's\"], 'q': 'say \"hi\"\\n'}");
    free(r);
    r = gp_celery_pyrepr(v, 20);
    assert_int_equal(strlen(r), 20);
    assert_string_equal(r + 17, "...");
    free(r);
    json_decref(v);
    json_t *u = json_string("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* éééé: cut between bytes */
    r = gp_celery_pyrepr(u, 8);
    json_t *again = json_string(r); /* still valid UTF-8 */
    assert_non_null(again);
    json_decref(again);
    free(r);
    json_decref(u);
}

static void test_reply_envelope(void **state)
{
    (void)state;
    json_t *body = json_pack("{s:{s:s}}", "genpulse-1@vm", "ok", "pong");
    char *text =
        gp_celery_encode_envelope(body, json_pack("{s:s, s:i}", "ticket", "t1", "clock", 3),
                                  "reply.celery.pidbox", "rk1", "tag1");
    /* The capture's reply, with our node name, ticket and tag. */
    assert_string_equal(
        text, "{\"body\": \"eyJnZW5wdWxzZS0xQHZtIjogeyJvayI6ICJwb25nIn19\", \"content-encoding\": "
              "\"utf-8\", \"content-type\": \"application/json\", \"headers\": {\"ticket\": "
              "\"t1\", \"clock\": 3}, \"properties\": {\"delivery_mode\": 1, \"delivery_info\": "
              "{\"exchange\": \"reply.celery.pidbox\", \"routing_key\": \"rk1\"}, \"priority\": 0, "
              "\"body_encoding\": \"base64\", \"delivery_tag\": \"tag1\"}}");
    free(text);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captured_ping),  cmocka_unit_test(test_destination_and_pattern),
        cmocka_unit_test(test_refused),        cmocka_unit_test(test_pyrepr),
        cmocka_unit_test(test_reply_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

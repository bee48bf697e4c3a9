/*
 * test_webhook.c — Standard Webhooks signing (the spec's test vector), secrets, ids, event
 * names, the retry schedule and delivery URL checks (core/webhook.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/net_guard.h"
#include "core/task.h"
#include "core/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* standard-webhooks/libraries/go/webhook_test.go::TestWebhookSign (genai_apis.md §6). */
static void test_sign_vector(void **state)
{
    (void)state;
    const char *payload = "{\"test\": 2432232314}";
    char sig[GP_WH_SIGNATURE_LEN];
    assert_int_equal(gp_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload,
                                     strlen(payload), sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* The prefix is optional (the libraries accept both). */
    assert_int_equal(gp_webhook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload,
                                     strlen(payload), sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Another timestamp, another signature (the spec's negative vector is a wrong one). */
    assert_int_equal(gp_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, payload,
                                     strlen(payload), sig),
                     0);
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(gp_webhook_sign("whsec_", "msg_x", 1, "{}", 2, sig), -1);
}

static void test_secret_and_ids(void **state)
{
    (void)state;
    char a[GP_WH_SECRET_LEN], b[GP_WH_SECRET_LEN];
    gp_webhook_secret_new(a);
    gp_webhook_secret_new(b);
    assert_int_equal(strncmp(a, "whsec_", 6), 0);
    assert_int_equal(strlen(a), 6 + 44);
    assert_string_not_equal(a, b);
    size_t n = 0;
    unsigned char *key = gp_base64_decode(a + 6, strlen(a + 6), &n);
    assert_non_null(key);
    assert_int_equal(n, 32);
    free(key);
    char id[GP_WH_ID_LEN];
    gp_webhook_id_new("msg_", 32, id);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(strncmp(id, "msg_", 4), 0);
    gp_webhook_id_new("ep_", 24, id);
    assert_int_equal(strlen(id), 27);
}

static void test_types(void **state)
{
    (void)state;
    assert_int_equal(gp_webhook_type_parse("task.started"), GP_WH_TYPE_STARTED);
    assert_int_equal(gp_webhook_type_parse("task.canceled"), GP_WH_TYPE_CANCELED);
    assert_int_equal(gp_webhook_type_parse("task.cancelled"), 0);
    assert_int_equal(gp_webhook_type_parse(NULL), 0);
    assert_string_equal(gp_webhook_type_name(GP_WH_TYPE_LOGS), "task.logs");
    assert_null(gp_webhook_type_name(GP_WH_TYPE_ALL));
    assert_int_equal(gp_webhook_type_task_event(GP_WH_TYPE_FAILED), GP_WEBHOOK_EV_COMPLETED);
    assert_int_equal(gp_webhook_type_task_event(GP_WH_TYPE_STARTED), GP_WEBHOOK_EV_START);
}

static void test_schedule(void **state)
{
    (void)state;
    /* rnd in the middle: no jitter. */
    uint64_t mid = 1ull << 63;
    assert_int_equal(gp_webhook_retry_delay_ms(1, 1.0, mid), 5000);
    assert_int_equal(gp_webhook_retry_delay_ms(2, 1.0, mid), 300000);
    assert_int_equal(gp_webhook_retry_delay_ms(9, 1.0, mid), 24LL * 3600 * 1000);
    assert_int_equal(gp_webhook_retry_delay_ms(10, 1.0, mid), -1);
    assert_int_equal(gp_webhook_retry_delay_ms(0, 1.0, mid), -1);
    assert_int_equal(gp_webhook_retry_delay_ms(1, 0.001, mid), 5);
    /* Jitter stays within ±10 %. */
    assert_true(gp_webhook_retry_delay_ms(2, 1.0, 0) >= 270000);
    assert_true(gp_webhook_retry_delay_ms(2, 1.0, UINT64_MAX) <= 330000);
    int64_t total = 0;
    for (int n = 1; n < GP_WH_MAX_ATTEMPTS; n++)
        total += gp_webhook_retry_delay_ms(n, 1.0, mid);
    assert_true(total > 75LL * 3600 * 1000 && total < 76LL * 3600 * 1000); /* ≈ 3 days */
}

static void test_urls(void **state)
{
    (void)state;
    assert_null(gp_webhook_url_problem("https://example.com/hook?x=1"));
    assert_null(gp_webhook_url_problem("http://127.0.0.1:8080/"));
    assert_non_null(gp_webhook_url_problem("ftp://example.com/"));
    assert_non_null(gp_webhook_url_problem("https://"));
    assert_non_null(gp_webhook_url_problem("https:///path"));
    assert_non_null(gp_webhook_url_problem("https://user:pw@example.com/"));
    assert_non_null(gp_webhook_url_problem("https://exa mple.com/"));
    assert_non_null(gp_webhook_url_problem("https://ex\xc3\xa4mple.com/"));
    assert_non_null(gp_webhook_url_problem(NULL));
}

static bool private_addr(const char *text)
{
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1)
        return gp_addr_is_private((const struct sockaddr *)&v4);
    assert_int_equal(inet_pton(AF_INET6, text, &v6.sin6_addr), 1);
    return gp_addr_is_private((const struct sockaddr *)&v6);
}

static void test_private_addresses(void **state)
{
    (void)state;
    static const char *const denied[] = {
        "127.0.0.1",       "10.1.2.3",         "172.16.0.1", "172.31.255.255",
        "192.168.1.1",     "169.254.169.254",  "100.64.0.1", "0.0.0.0",
        "224.0.0.1",       "255.255.255.255",  "::1",        "::",
        "fe80::1",         "fc00::1",          "fd12::1",    "ff02::1",
        "::ffff:10.0.0.1", "::ffff:127.0.0.1", "fec0::1"};
    static const char *const allowed[] = {"8.8.8.8", "172.32.0.1",           "100.128.0.1",
                                          "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        assert_true(private_addr(denied[i]));
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        assert_false(private_addr(allowed[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vector), cmocka_unit_test(test_secret_and_ids),
        cmocka_unit_test(test_types),       cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_urls),        cmocka_unit_test(test_private_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

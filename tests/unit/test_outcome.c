/*
 * test_outcome.c — gp_decide_outcome(), the attempt → task status state machine, and
 * gp_backoff_ms(), the full-jitter retry delay.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "genpulse/handler.h" /* GP_CTX_* (worker.h does not include it) */
#include "worker/worker.h"

#include <limits.h>
#include <string.h>

#define BASE 1000
#define CAP 300000

static gp_outcome_t decide(const gp_attempt_report_t *r, uint64_t rnd)
{
    return gp_decide_outcome(r, BASE, CAP, rnd);
}

/* ---- gp_decide_outcome ---- */

static void test_success(void **state)
{
    (void)state;
    gp_attempt_report_t r = {.rc = 0, .attempts = 1, .max_retries = 3};
    gp_outcome_t o = decide(&r, 12345);
    assert_int_equal(o.status, GP_TASK_SUCCEEDED);
    assert_null(o.error_code);
    assert_null(o.error_message);
    assert_int_equal(o.retry_delay_ms, 0);

    /* success on the last allowed attempt is still success */
    r.attempts = 4;
    o = decide(&r, 12345);
    assert_int_equal(o.status, GP_TASK_SUCCEEDED);
}

static void test_permanent_fails_at_once(void **state)
{
    (void)state;
    gp_attempt_report_t r = {.rc = GP_CTX_FAILED_PERMANENT,
                             .fail_code = "bad_prompt",
                             .fail_message = "the prompt is unusable",
                             .attempts = 1,
                             .max_retries = 5};
    gp_outcome_t o = decide(&r, UINT64_MAX);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "bad_prompt");
    assert_string_equal(o.error_message, "the prompt is unusable");
    assert_int_equal(o.retry_delay_ms, 0);

    /* no code/message from the provider: generic ones */
    r.fail_code = NULL;
    r.fail_message = NULL;
    o = decide(&r, 0);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "provider_error");
    assert_non_null(o.error_message);
}

static void test_retryable_then_exhausted(void **state)
{
    (void)state;
    gp_attempt_report_t r = {.rc = GP_CTX_FAILED_RETRYABLE,
                             .fail_code = "engine_busy",
                             .fail_message = "try later",
                             .max_retries = 2};
    /* attempts 1 and 2 (<= max_retries) are retried with a backoff delay */
    for (int attempt = 1; attempt <= 2; attempt++) {
        r.attempts = attempt;
        gp_outcome_t o = decide(&r, UINT64_MAX);
        assert_int_equal(o.status, GP_TASK_PENDING);
        assert_int_equal(o.retry_delay_ms, gp_backoff_ms(attempt, BASE, CAP, UINT64_MAX));
        assert_true(o.retry_delay_ms > 0);
        assert_true(o.retry_delay_ms <= (int64_t)BASE << (attempt - 1));
        assert_string_equal(o.error_code, "engine_busy"); /* the last error stays visible */
    }
    /* attempt 3 > max_retries: failed, carrying the last error */
    r.attempts = 3;
    gp_outcome_t o = decide(&r, UINT64_MAX);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "engine_busy");
    assert_string_equal(o.error_message, "try later");
    assert_int_equal(o.retry_delay_ms, 0);

    /* max_retries 0: the first retryable failure is final */
    r.max_retries = 0;
    r.attempts = 1;
    o = decide(&r, 7);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "engine_busy");
}

static void test_retry_delay_uses_rnd(void **state)
{
    (void)state;
    gp_attempt_report_t r = {.rc = GP_CTX_FAILED_RETRYABLE, .attempts = 1, .max_retries = 3};
    gp_outcome_t o = decide(&r, 0);
    assert_int_equal(o.status, GP_TASK_PENDING);
    assert_int_equal(o.retry_delay_ms, 0); /* full jitter: may retry at once */
    assert_string_equal(o.error_code, "provider_error");
}

static void test_timeout_retry_then_failed(void **state)
{
    (void)state;
    gp_attempt_report_t r = {
        .rc = GP_CTX_CANCELED, .timed_out = true, .attempts = 1, .max_retries = 1};
    gp_outcome_t o = decide(&r, UINT64_MAX);
    assert_int_equal(o.status, GP_TASK_PENDING);
    assert_string_equal(o.error_code, "timeout");
    assert_true(o.retry_delay_ms > 0);

    r.attempts = 2;
    o = decide(&r, UINT64_MAX);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "timeout");
    assert_non_null(o.error_message);
}

static void test_cancel_wins(void **state)
{
    (void)state;
    const int rcs[] = {0, GP_CTX_CANCELED, GP_CTX_FAILED_RETRYABLE, GP_CTX_FAILED_PERMANENT, 17};
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++) {
        gp_attempt_report_t r = {.rc = rcs[i],
                                 .cancel_requested = true,
                                 .attempts = 1,
                                 .max_retries = 3,
                                 .fail_code = "x",
                                 .fail_message = "y"};
        gp_outcome_t o = decide(&r, UINT64_MAX);
        assert_int_equal(o.status, GP_TASK_CANCELED);
        assert_string_equal(o.error_code, "canceled");
        assert_int_equal(o.retry_delay_ms, 0);
        /* and over a timeout */
        r.timed_out = true;
        o = decide(&r, UINT64_MAX);
        assert_int_equal(o.status, GP_TASK_CANCELED);
    }
}

static void test_shutting_down_hands_back(void **state)
{
    (void)state;
    const int rcs[] = {GP_CTX_CANCELED, 0, GP_CTX_FAILED_RETRYABLE, GP_CTX_FAILED_PERMANENT};
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++) {
        /* even with no retries left: a hand-back is not the task's failure */
        gp_attempt_report_t r = {.rc = rcs[i],
                                 .shutting_down = true,
                                 .attempts = 5,
                                 .max_retries = 0,
                                 .fail_code = "x",
                                 .fail_message = "y"};
        gp_outcome_t o = decide(&r, UINT64_MAX);
        assert_int_equal(o.status, GP_TASK_PENDING);
        assert_null(o.error_code);
        assert_null(o.error_message);
        assert_int_equal(o.retry_delay_ms, 0);
        r.timed_out = true;
        o = decide(&r, UINT64_MAX);
        assert_int_equal(o.status, GP_TASK_PENDING);
        assert_null(o.error_code);
    }
}

static void test_interrupted_and_unexpected(void **state)
{
    (void)state;
    /* stopped early without cancel or timeout: transient */
    gp_attempt_report_t r = {.rc = GP_CTX_CANCELED, .attempts = 1, .max_retries = 1};
    gp_outcome_t o = decide(&r, 3);
    assert_int_equal(o.status, GP_TASK_PENDING);
    assert_string_equal(o.error_code, "interrupted");
    r.attempts = 2;
    o = decide(&r, 3);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "interrupted");

    /* a return value outside the contract: permanent internal error */
    gp_attempt_report_t u = {.rc = -5, .attempts = 1, .max_retries = 10};
    o = decide(&u, 3);
    assert_int_equal(o.status, GP_TASK_FAILED);
    assert_string_equal(o.error_code, "internal_error");
    u.rc = 1;
    o = decide(&u, 3);
    assert_int_equal(o.status, GP_TASK_FAILED);
}

/* ---- gp_backoff_ms ---- */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int64_t expected_ceiling(int retry, int64_t base, int64_t cap)
{
    int64_t c = base;
    for (int i = 1; i < retry && c < cap; i++)
        c *= 2;
    return c < cap ? c : cap;
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int retry = 1; retry <= 20; retry++) {
        int64_t ceil = expected_ceiling(retry, 100, 30000);
        int64_t lo = INT64_MAX, hi = -1;
        for (int k = 0; k < 5000; k++) {
            int64_t d = gp_backoff_ms(retry, 100, 30000, xorshift(&seed));
            assert_true(d >= 0);
            assert_true(d <= ceil);
            if (d < lo)
                lo = d;
            if (d > hi)
                hi = d;
        }
        /* spread over the whole range, not a constant */
        assert_true(lo < ceil / 10 + 1);
        assert_true(hi > ceil - ceil / 10 - 1);
    }
}

static void test_backoff_extremes(void **state)
{
    (void)state;
    for (int retry = 1; retry <= 12; retry++) {
        assert_int_equal(gp_backoff_ms(retry, 1000, 300000, 0), 0);
        assert_int_equal(gp_backoff_ms(retry, 1000, 300000, UINT64_MAX),
                         expected_ceiling(retry, 1000, 300000));
    }
    assert_int_equal(gp_backoff_ms(1, 1000, 300000, UINT64_MAX), 1000);
    assert_int_equal(gp_backoff_ms(2, 1000, 300000, UINT64_MAX), 2000);
    assert_int_equal(gp_backoff_ms(3, 1000, 300000, UINT64_MAX), 4000);
    assert_int_equal(gp_backoff_ms(9, 1000, 300000, UINT64_MAX), 256000);
    /* monotonic in rnd: the middle of the range lands in the middle */
    int64_t mid = gp_backoff_ms(1, 1000, 300000, UINT64_MAX / 2);
    assert_true(mid >= 499 && mid <= 501);
    /* retry < 1 is treated as the first retry */
    assert_int_equal(gp_backoff_ms(0, 1000, 300000, UINT64_MAX), 1000);
    assert_int_equal(gp_backoff_ms(-7, 1000, 300000, UINT64_MAX), 1000);
}

static void test_backoff_cap(void **state)
{
    (void)state;
    /* 1000 * 2^9 = 512000 > cap 300000 */
    assert_int_equal(gp_backoff_ms(10, 1000, 300000, UINT64_MAX), 300000);
    assert_int_equal(gp_backoff_ms(50, 1000, 300000, UINT64_MAX), 300000);
    /* a base above the cap is capped on the first retry */
    assert_int_equal(gp_backoff_ms(1, 5000, 3000, UINT64_MAX), 3000);
    /* zero base or zero cap: no delay */
    assert_int_equal(gp_backoff_ms(5, 0, 300000, UINT64_MAX), 0);
    assert_int_equal(gp_backoff_ms(5, 1000, 0, UINT64_MAX), 0);
    uint64_t seed = 42;
    for (int k = 0; k < 10000; k++)
        assert_true(gp_backoff_ms(30, 1000, 300000, xorshift(&seed)) <= 300000);
}

static void test_backoff_no_overflow(void **state)
{
    (void)state;
    /* huge retry numbers with an effectively unbounded cap: saturate, never wrap */
    assert_int_equal(gp_backoff_ms(INT_MAX, 1, INT64_MAX, UINT64_MAX), INT64_MAX);
    assert_int_equal(gp_backoff_ms(INT_MAX, 1000, INT64_MAX, UINT64_MAX), INT64_MAX);
    assert_int_equal(gp_backoff_ms(INT_MAX, 1000, INT64_MAX, 0), 0);
    assert_int_equal(gp_backoff_ms(1000, INT64_MAX / 3, INT64_MAX, UINT64_MAX), INT64_MAX);
    assert_int_equal(gp_backoff_ms(INT_MAX, 1000, 300000, UINT64_MAX), 300000);
    assert_int_equal(gp_backoff_ms(64, 1, INT64_MAX, UINT64_MAX), INT64_MAX);
    assert_int_equal(gp_backoff_ms(63, 1, INT64_MAX, UINT64_MAX), INT64_C(1) << 62);
    uint64_t seed = 7;
    for (int k = 0; k < 1000; k++) {
        int64_t d = gp_backoff_ms(INT_MAX, 1000, INT64_MAX, xorshift(&seed));
        assert_true(d >= 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_permanent_fails_at_once),
        cmocka_unit_test(test_retryable_then_exhausted),
        cmocka_unit_test(test_retry_delay_uses_rnd),
        cmocka_unit_test(test_timeout_retry_then_failed),
        cmocka_unit_test(test_cancel_wins),
        cmocka_unit_test(test_shutting_down_hands_back),
        cmocka_unit_test(test_interrupted_and_unexpected),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_extremes),
        cmocka_unit_test(test_backoff_cap),
        cmocka_unit_test(test_backoff_no_overflow),
    };
    return cmocka_run_group_tests_name("outcome", tests, NULL, NULL);
}

/*
 * test_metrics.c — the metrics registry and its text exposition: label escaping, counter,
 * gauge and histogram lines, the "other" series past the cardinality cap, label values from
 * the registry only, --metrics 0, and exact totals under concurrent writers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/metrics.h"
#include "core/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    (void)state;
    gp_metrics_setup(true, "1.2.3", 1700000000123);
    gp_metrics_reset();
    return 0;
}

/* The rendered text (caller frees). */
static char *render(void)
{
    size_t len = 0;
    char *s = gp_metrics_render(&len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    return s;
}

/* Whether the exposition has exactly this line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void test_escape_label(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(gp_metrics_escape_label("plain", out, sizeof out), 5);
    assert_string_equal(out, "plain");
    gp_metrics_escape_label("a\\b\"c\nd", out, sizeof out);
    assert_string_equal(out, "a\\\\b\\\"c\\nd");
    /* Other bytes (tabs, UTF-8, '}' and ',') pass through: inside quotes they are plain. */
    gp_metrics_escape_label("t\t}{,=é", out, sizeof out);
    assert_string_equal(out, "t\t}{,=é");
    /* Cut at a whole escape, never half of one. */
    char small[4];
    assert_int_equal(gp_metrics_escape_label("a\"b", small, sizeof small), 3);
    assert_string_equal(small, "a\\\"");
    assert_int_equal(gp_metrics_escape_label("ab\"", small, sizeof small), 2);
    assert_string_equal(small, "ab");
    assert_int_equal(gp_metrics_escape_label("x", small, 0), 0);
}

static void test_counter_and_gauge_lines(void **state)
{
    (void)state;
    gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", "/v1/tasks/{}", "200");
    gp_metrics_add(GP_M_HTTP_REQUESTS, 2, "GET", "/v1/tasks/{}", "200");
    gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", "odd\"route\\\n", "404");
    gp_metrics_add(GP_M_SSE_STREAMS, 3, NULL, NULL, NULL);
    gp_metrics_add(GP_M_SSE_STREAMS, -1, NULL, NULL, NULL);
    gp_metrics_set(GP_M_QUEUE_DEPTH, 7, "4-6", NULL, NULL);
    gp_metrics_set(GP_M_START_TIME, 1700000000123, NULL, NULL, NULL);
    gp_metrics_set(GP_M_BUILD_INFO, 1, "1.2.3", NULL, NULL);
    char *t = render();
    assert_true(has_line(t, "# TYPE genpulse_http_requests_total counter"));
    assert_true(has_line(t, "# HELP genpulse_http_requests_total HTTP requests answered, by "
                            "route pattern and status."));
    assert_true(has_line(t, "genpulse_http_requests_total{method=\"GET\",route=\"/v1/tasks/{}\","
                            "status=\"200\"} 3"));
    assert_true(has_line(t, "genpulse_http_requests_total{method=\"GET\",route=\"odd\\\"route"
                            "\\\\\\n\",status=\"404\"} 1"));
    assert_true(has_line(t, "# TYPE genpulse_sse_streams gauge"));
    assert_true(has_line(t, "genpulse_sse_streams 2"));
    assert_true(has_line(t, "genpulse_queue_depth{priority=\"4-6\"} 7"));
    assert_true(has_line(t, "process_start_time_seconds 1700000000.123"));
    assert_true(has_line(t, "genpulse_build_info{version=\"1.2.3\"} 1"));
    /* Unlabelled families show from the start; a labelled one with no series only its
     * HELP and TYPE. */
    assert_true(has_line(t, "genpulse_commit_failures_total 0"));
    assert_true(has_line(t, "# TYPE genpulse_task_retries_total counter"));
    assert_null(strstr(t, "genpulse_task_retries_total{"));
    free(t);
}

static void test_histogram_lines(void **state)
{
    (void)state;
    /* commit_batch_size buckets: 1, 2, 4, 8, ... 1024 */
    gp_metrics_observe(GP_M_COMMIT_BATCH, 1, NULL, NULL);
    gp_metrics_observe(GP_M_COMMIT_BATCH, 3, NULL, NULL);
    gp_metrics_observe(GP_M_COMMIT_BATCH, 4, NULL, NULL); /* le is inclusive */
    gp_metrics_observe(GP_M_COMMIT_BATCH, 5000, NULL, NULL);
    gp_metrics_observe(GP_M_TASK_RUN, 0.25, "echo", "echo");
    gp_metrics_observe(GP_M_TASK_RUN, 1.5, "echo", "echo");
    gp_metrics_observe(GP_M_TASK_RUN, -3, "echo", "echo"); /* a clock step: counted as 0 */
    char *t = render();
    assert_true(has_line(t, "# TYPE genpulse_commit_batch_size histogram"));
    assert_true(has_line(t, "genpulse_commit_batch_size_bucket{le=\"1\"} 1"));
    assert_true(has_line(t, "genpulse_commit_batch_size_bucket{le=\"2\"} 1"));
    assert_true(has_line(t, "genpulse_commit_batch_size_bucket{le=\"4\"} 3"));
    assert_true(has_line(t, "genpulse_commit_batch_size_bucket{le=\"1024\"} 3"));
    assert_true(has_line(t, "genpulse_commit_batch_size_bucket{le=\"+Inf\"} 4"));
    assert_true(has_line(t, "genpulse_commit_batch_size_sum 5008.000000"));
    assert_true(has_line(t, "genpulse_commit_batch_size_count 4"));
    assert_true(has_line(t, "genpulse_task_run_seconds_bucket{task_type=\"echo\",provider="
                            "\"echo\",le=\"0.01\"} 1"));
    assert_true(has_line(t, "genpulse_task_run_seconds_bucket{task_type=\"echo\",provider="
                            "\"echo\",le=\"0.25\"} 2"));
    assert_true(has_line(t, "genpulse_task_run_seconds_bucket{task_type=\"echo\",provider="
                            "\"echo\",le=\"2.5\"} 3"));
    assert_true(has_line(
        t, "genpulse_task_run_seconds_sum{task_type=\"echo\",provider=\"echo\"} 1.750000"));
    assert_true(
        has_line(t, "genpulse_task_run_seconds_count{task_type=\"echo\",provider=\"echo\"} 3"));
    free(t);
}

static void test_cardinality_cap(void **state)
{
    (void)state;
    for (int i = 0; i < GP_METRICS_SERIES_MAX + 100; i++) {
        char status[16];
        snprintf(status, sizeof status, "%d", i);
        gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", "/x", status);
    }
    char *t = render();
    int series = 0;
    for (const char *p = t; (p = strstr(p, "\ngenpulse_http_requests_total{")); p++)
        series++;
    assert_int_equal(series, GP_METRICS_SERIES_MAX);
    /* 255 distinct label sets, then the rest lands in the one reserved series. */
    assert_true(has_line(t, "genpulse_http_requests_total{method=\"other\",route=\"other\","
                            "status=\"other\"} 101"));
    free(t);
}

static void test_long_label_is_cut_consistently(void **state)
{
    (void)state;
    char long_route[200];
    memset(long_route, 'r', sizeof long_route - 1);
    long_route[sizeof long_route - 1] = '\0';
    gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", long_route, "200");
    gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", long_route, "200");
    char *t = render();
    char want[256];
    snprintf(want, sizeof want,
             "genpulse_http_requests_total{method=\"GET\",route=\"%.*s\","
             "status=\"200\"} 2",
             GP_METRICS_LABEL_LEN - 1, long_route);
    assert_true(has_line(t, want));
    free(t);
    /* A cut never splits a UTF-8 sequence: 46 ASCII bytes then "é" (2 bytes) keeps 46. */
    gp_metrics_reset();
    char utf[64];
    memset(utf, 'u', 46);
    snprintf(utf + 46, sizeof utf - 46, "\xc3\xa9tail");
    gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", utf, "200");
    t = render();
    snprintf(want, sizeof want,
             "genpulse_http_requests_total{method=\"GET\",route=\"%.46s\",status=\"200\"} 1", utf);
    assert_true(has_line(t, want));
    free(t);
}

static void test_task_labels_come_from_the_registry(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(gp_registry_init(err, sizeof err), 0);
    const char *tt, *prov;
    gp_metrics_task_labels("echo", "echo", &tt, &prov);
    assert_string_equal(tt, "echo");
    assert_string_equal(prov, "echo");
    gp_metrics_task_labels("echo", "no-such-provider", &tt, &prov);
    assert_string_equal(tt, "echo");
    assert_string_equal(prov, "other");
    gp_metrics_task_labels("user-chosen-type-42", "echo", &tt, &prov);
    assert_string_equal(tt, "other");
    assert_string_equal(prov, "other");
    gp_metrics_task_labels(NULL, NULL, &tt, &prov);
    assert_string_equal(tt, "other");
}

static void test_disabled_records_nothing(void **state)
{
    (void)state;
    gp_metrics_setup(false, "1.2.3", 0);
    assert_false(gp_metrics_enabled());
    gp_metrics_inc(GP_M_COMMIT_FAILURES, NULL, NULL, NULL);
    gp_metrics_observe(GP_M_COMMIT_BATCH, 3, NULL, NULL);
    gp_metrics_set(GP_M_WORKER_SLOTS, 16, NULL, NULL, NULL); /* scrape-time gauges still are */
    char *t = render();
    assert_true(has_line(t, "genpulse_commit_failures_total 0"));
    assert_true(has_line(t, "genpulse_commit_batch_size_count 0"));
    assert_true(has_line(t, "genpulse_worker_slots 16"));
    free(t);
    gp_metrics_setup(true, "1.2.3", 0);
}

#define THREADS 4
#define PER_THREAD 50000

static void *hammer(void *arg)
{
    long id = (long)arg;
    char route[16];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(route, sizeof route, "/r%d", i % 8); /* new label sets meet concurrently */
        gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", route, "200");
        gp_metrics_observe(GP_M_HTTP_DURATION, 0.001 * (double)(id + 1), "GET", route);
    }
    return NULL;
}

static void test_concurrent_writers_lose_nothing(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render();
    for (int r = 0; r < 8; r++) {
        char want[160];
        snprintf(want, sizeof want,
                 "genpulse_http_requests_total{method=\"GET\",route=\"/r%d\",status=\"200\"} %d", r,
                 THREADS * PER_THREAD / 8);
        assert_true(has_line(t, want));
        snprintf(want, sizeof want,
                 "genpulse_http_request_duration_seconds_count{method=\"GET\",route=\"/r%d\"} %d",
                 r, THREADS * PER_THREAD / 8);
        assert_true(has_line(t, want));
    }
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_escape_label, setup),
        cmocka_unit_test_setup(test_counter_and_gauge_lines, setup),
        cmocka_unit_test_setup(test_histogram_lines, setup),
        cmocka_unit_test_setup(test_cardinality_cap, setup),
        cmocka_unit_test_setup(test_long_label_is_cut_consistently, setup),
        cmocka_unit_test_setup(test_task_labels_come_from_the_registry, setup),
        cmocka_unit_test_setup(test_disabled_records_nothing, setup),
        cmocka_unit_test_setup(test_concurrent_writers_lose_nothing, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

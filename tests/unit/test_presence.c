/*
 * test_presence.c — the presence backends (infra/presence/presence.h): the in-process one
 * always; the Redis one when GENPULSE_TEST_REDIS_URL is set (database 9, flushed per test):
 * beat, list, leave, the lost worker kept listed, the FLUSHALL case and remember().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/presence/presence.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_empty[1];
static char g_redis[256];

static gp_presence_t *open_backend(const char *url)
{
    gp_settings_t s = {0};
    s.queue_url = (char *)url;
    s.host = s.database_url = s.storage_url = s.public_url = s.log_level = s.log_format = g_empty;
    gp_presence_t *p = NULL;
    char err[256] = "";
    if (gp_presence_open(&p, &s, err, sizeof err) != 0)
        fail_msg("open %s: %s", url, err);
    return p;
}

static void flush_redis(void)
{
    const char *port = strrchr(g_redis, ':');
    redisContext *c = redisConnect("127.0.0.1", atoi(port + 1));
    assert_non_null(c);
    redisReply *r = redisCommand(c, "SELECT 9");
    freeReplyObject(r);
    r = redisCommand(c, "FLUSHDB");
    freeReplyObject(r);
    redisFree(c);
}

static int setup_memory(void **state)
{
    *state = open_backend("");
    return 0;
}

static int setup_redis(void **state)
{
    if (!g_redis[0]) {
        *state = NULL;
        return 0;
    }
    flush_redis();
    *state = open_backend(g_redis);
    return 0;
}

static int teardown(void **state)
{
    gp_presence_close(*state);
    return 0;
}

static gp_worker_info_t info(const char *id, int busy)
{
    gp_worker_info_t w = {0};
    snprintf(w.id, sizeof w.id, "%s", id);
    snprintf(w.host, sizeof w.host, "host-%s", id);
    w.pid = 4242;
    snprintf(w.version, sizeof w.version, "0.1.0");
    w.concurrency = 8;
    w.busy = busy;
    snprintf(w.queues, sizeof w.queues, "celery");
    w.started_at = gp_now_ms() - 1000;
    return w;
}

static const gp_worker_info_t *find(const gp_worker_info_t *w, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w[i].id, id))
            return &w[i];
    return NULL;
}

static void test_beat_list_leave(void **state)
{
    gp_presence_t *p = *state;
    if (!p)
        skip();
    gp_worker_info_t a = info("a:1:00000001", 3), b = info("b:2:00000002", 0);
    assert_int_equal(gp_presence_beat(p, &a), 0);
    assert_int_equal(gp_presence_beat(p, &b), 0);
    gp_worker_info_t *w = NULL;
    size_t n = 0;
    assert_int_equal(gp_presence_list(p, &w, &n), 0);
    assert_int_equal(n, 2);
    const gp_worker_info_t *got = find(w, n, a.id);
    assert_non_null(got);
    assert_true(got->alive);
    assert_string_equal(got->host, "host-a:1:00000001");
    assert_int_equal(got->pid, 4242);
    assert_int_equal(got->concurrency, 8);
    assert_int_equal(got->busy, 3);
    assert_string_equal(got->queues, "celery");
    assert_int_equal(got->started_at, a.started_at);
    int64_t age = gp_now_ms() - got->last_beat;
    assert_true(age >= -200 && age < 2000);        /* on this host's clock */
    assert_true(w[0].last_beat >= w[1].last_beat); /* newest beat first */
    free(w);

    /* a clean stop: still listed, lost at once */
    assert_int_equal(gp_presence_leave(p, a.id), 0);
    assert_int_equal(gp_presence_list(p, &w, &n), 0);
    assert_int_equal(n, 2);
    assert_false(find(w, n, a.id)->alive);
    assert_int_equal(find(w, n, a.id)->busy, 0);
    assert_true(find(w, n, b.id)->alive);
    free(w);
    /* beating again brings it back */
    assert_int_equal(gp_presence_beat(p, &a), 0);
    assert_int_equal(gp_presence_list(p, &w, &n), 0);
    assert_true(find(w, n, a.id)->alive);
    free(w);
}

static void test_redis_flush_and_remember(void **state)
{
    gp_presence_t *p = *state;
    if (!p)
        skip();
    gp_worker_info_t a = info("a:1:00000001", 1), dead = info("d:9:0000dead", 2);
    assert_int_equal(gp_presence_beat(p, &a), 0);
    assert_int_equal(gp_presence_beat(p, &dead), 0);
    gp_worker_info_t *w = NULL;
    size_t n = 0;
    assert_int_equal(gp_presence_list(p, &w, &n), 0);
    gp_worker_info_t last = *find(w, n, dead.id);
    free(w);
    flush_redis(); /* the registry forgets everyone */
    assert_int_equal(gp_presence_list(p, &w, &n), 0);
    assert_int_equal(n, 0);
    free(w);
    assert_int_equal(gp_presence_beat(p, &a), 0); /* the live one's next beat */
    last.last_beat -= 15000;                      /* it died 15 s ago */
    assert_int_equal(gp_presence_remember(p, &last), 0);
    assert_int_equal(gp_presence_remember(p, &a), 0); /* listed already: no change */
    assert_int_equal(gp_presence_list(p, &w, &n), 0);
    assert_int_equal(n, 2);
    assert_true(find(w, n, a.id)->alive);
    const gp_worker_info_t *d = find(w, n, dead.id);
    assert_false(d->alive);
    assert_int_equal(d->busy, 0);
    int64_t age = gp_now_ms() - d->last_beat;
    assert_true(age >= 14000 && age < 17000);
    free(w);
}

static void test_redis_unreachable(void **state)
{
    (void)state;
    gp_presence_t *p = open_backend("redis://127.0.0.1:1/0");
    gp_worker_info_t a = info("a:1:00000001", 0);
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_presence_beat(p, &a), -GP_E_UNAVAILABLE);
    gp_worker_info_t *w = NULL;
    size_t n = 0;
    assert_int_equal(gp_presence_list(p, &w, &n), -GP_E_UNAVAILABLE); /* fails fast now */
    assert_true(gp_mono_ms() - t0 < 1500);
    gp_presence_close(p);
}

int main(void)
{
    gp_log_setup(GP_LOG_ERROR, false);
    const char *url = getenv("GENPULSE_TEST_REDIS_URL");
    if (url && *url) {
        snprintf(g_redis, sizeof g_redis, "%s", url);
        char *slash = strrchr(g_redis, '/');
        if (slash && slash > g_redis + 8)
            snprintf(slash, sizeof g_redis - (size_t)(slash - g_redis), "/9");
        else
            snprintf(g_redis + strlen(g_redis), sizeof g_redis - strlen(g_redis), "/9");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_beat_list_leave, setup_memory, teardown),
        cmocka_unit_test_setup_teardown(test_beat_list_leave, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_redis_flush_and_remember, setup_redis, teardown),
        cmocka_unit_test(test_redis_unreachable),
    };
    return cmocka_run_group_tests_name("presence", tests, NULL, NULL);
}

/*
 * test_queue_redis.c — the Redis dispatch queue (src/infra/queue/redis.c) against a real
 * Redis named by GENPULSE_TEST_REDIS_URL (every test is skipped when it is unset). Each test
 * starts from FLUSHDB. Covers order, delayed items, blocking, timeouts, shutdown, the kombu
 * ack emulation (unacked / unacked_index), lease renewal and expiry, the Celery protocol v2
 * message as stored, and an unreachable or dropped Redis. The Celery wire codec
 * (src/infra/celery/wire.c) it stores is tested first, with no Redis needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/util.h"
#include "infra/celery/wire.h"
#include "infra/queue/queue.h"
#include "infra/queue/redis_queue.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fixture {
    gp_queue_t *q;
    redisContext *rc; /* the test's own connection, for inspection */
} fixture_t;

static gp_settings_t g_settings;
static char g_empty[1];
static char *g_url;
static char g_host[256];
static int g_port;
static int g_db;

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Only the redis://host:port/db form the tests are given. */
static void parse_test_url(const char *url)
{
    const char *a = url + strlen("redis://");
    const char *at = strchr(a, '@');
    if (at)
        a = at + 1;
    const char *colon = strchr(a, ':');
    size_t hlen = colon ? (size_t)(colon - a) : strcspn(a, "/");
    snprintf(g_host, sizeof g_host, "%.*s", (int)hlen, a);
    g_port = colon ? atoi(colon + 1) : 6379;
    const char *slash = strchr(a, '/');
    g_db = slash ? atoi(slash + 1) : 0;
}

static redisReply *cmd(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static void cmd_ok(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static int open_url(const char *url, gp_queue_t **q)
{
    memset(&g_settings, 0, sizeof g_settings);
    char *empty = g_empty;
    g_settings.host = g_settings.data_dir = g_settings.database_url = empty;
    g_settings.storage_url = g_settings.public_url = empty;
    g_settings.log_level = g_settings.log_format = g_settings.sqlite_synchronous = empty;
    g_settings.queue_url = (char *)url;
    char err[256] = "";
    int rc = gp_queue_open(q, &g_settings, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "gp_queue_open: %s\n", err);
    return rc;
}

static int setup(void **state)
{
    if (!g_url)
        return 0;
    fixture_t *f = calloc(1, sizeof *f);
    struct timeval tv = {.tv_sec = 2};
    f->rc = redisConnectWithTimeout(g_host, g_port, tv);
    if (!f->rc || f->rc->err) {
        fprintf(stderr, "cannot reach test Redis at %s\n", g_url);
        return -1;
    }
    redisSetTimeout(f->rc, tv);
    cmd_ok(f->rc, "SELECT %d", g_db);
    cmd_ok(f->rc, "FLUSHDB");
    if (open_url(g_url, &f->q) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    gp_queue_close(f->q);
    redisFree(f->rc);
    free(f);
    return 0;
}

#define SKIP_IF_NO_REDIS()                                                                         \
    do {                                                                                           \
        if (!g_url)                                                                                \
            skip();                                                                                \
    } while (0)

static void push(gp_queue_t *q, const char *id, int priority, int64_t enqueued_at, int64_t ready_at)
{
    gp_queue_item_t it = {.priority = priority, .enqueued_at = enqueued_at, .ready_at = ready_at};
    snprintf(it.id, sizeof it.id, "%s", id);
    assert_int_equal(gp_queue_push(q, &it), 0);
}

static void expect_pop(gp_queue_t *q, const char *id, gp_queue_item_t *out_opt)
{
    gp_queue_item_t out;
    memset(&out, 0, sizeof out);
    assert_int_equal(gp_queue_pop(q, &out, 2000), 0);
    assert_string_equal(out.id, id);
    assert_true(out.delivery_tag[0] != '\0');
    if (out_opt)
        *out_opt = out;
    else
        assert_int_equal(gp_queue_ack(q, &out), 0);
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes padded base64; NULL when malformed. */
static char *b64decode(const char *s)
{
    size_t n = strlen(s);
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' ? 0 : b64val(s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
            free(out);
            return NULL;
        }
        unsigned w =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (char)(w >> 16);
        if (s[i + 2] != '=')
            out[o++] = (char)(w >> 8 & 255);
        if (s[i + 3] != '=')
            out[o++] = (char)(w & 255);
    }
    out[o] = '\0';
    return out;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_priority_and_fifo(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    gp_queue_t *q = f->q;
    assert_int_equal(gp_queue_depth(q), 0);
    /* kombu has 4 buckets: ours 7–9, 4–6, 1–3, 0; FIFO within a bucket */
    push(q, "lo-1", 0, 1, 0);
    push(q, "mid-1", 5, 2, 0);
    push(q, "hi-1", 9, 3, 0);
    push(q, "low-1", 2, 4, 0);
    push(q, "mid-2", 4, 5, 0);
    push(q, "lo-2", 0, 6, 0);
    push(q, "hi-2", 7, 7, 0);
    push(q, "mid-3", 6, 8, 0);
    assert_int_equal(gp_queue_depth(q), 8);
    gp_queue_item_t it;
    expect_pop(q, "hi-1", &it);
    assert_int_equal(it.priority, 9);
    assert_int_equal(it.enqueued_at, 3);
    assert_int_equal(gp_queue_ack(q, &it), 0);
    expect_pop(q, "hi-2", NULL);
    expect_pop(q, "mid-1", NULL);
    expect_pop(q, "mid-2", NULL);
    expect_pop(q, "mid-3", NULL);
    expect_pop(q, "low-1", NULL);
    expect_pop(q, "lo-1", NULL);
    expect_pop(q, "lo-2", NULL);
    assert_int_equal(gp_queue_depth(q), 0);

    char id[37];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "same-%03d", i);
        push(q, id, 5, i, 0);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "same-%03d", i);
        expect_pop(q, id, NULL);
    }
}

/* /metrics: ready items by kombu band (ours 7-9, 4-6, 1-3, 0), delayed ones apart. */
static void test_depth_by_priority(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    push(f->q, "a", 0, 1, 0);
    push(f->q, "b", 5, 2, 0);
    push(f->q, "c", 4, 3, 0);
    push(f->q, "d", 8, 4, 0);
    push(f->q, "e", 9, 5, gp_now_ms() + 60000);
    gp_queue_depths_t d;
    assert_int_equal(gp_queue_depth_by_priority(f->q, &d), 0);
    assert_int_equal(d.n, 4);
    const char *names[4] = {"7-9", "4-6", "1-3", "0"};
    size_t want[4] = {1, 2, 0, 1};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(d.band[i].priority, names[i]);
        assert_int_equal(d.band[i].ready, want[i]);
    }
    assert_int_equal(d.delayed, 1);
}

static void test_delayed_not_before_ready_at(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    gp_queue_t *q = f->q;
    int64_t ready = gp_now_ms() + 400;
    push(q, "later", 5, 1, ready);
    push(q, "later-hi", 9, 2, ready + 200);
    assert_int_equal(gp_queue_depth(q), 2);
    gp_queue_item_t out;
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(q, &out, 150), -GP_E_TIMEOUT);
    assert_true(gp_mono_ms() - t0 >= 140);
    /* blocks until it is due, then returns promptly (not at the 1 s BLPOP bound) */
    assert_int_equal(gp_queue_pop(q, &out, 3000), 0);
    int64_t now = gp_now_ms();
    assert_string_equal(out.id, "later");
    assert_true(now >= ready);
    assert_true(now - ready < 300);
    assert_int_equal(gp_queue_ack(q, &out), 0);
    assert_int_equal(gp_queue_pop(q, &out, 3000), 0);
    assert_string_equal(out.id, "later-hi");
    assert_true(gp_now_ms() >= ready + 200);
    assert_int_equal(gp_queue_ack(q, &out), 0);
    assert_int_equal(gp_queue_depth(q), 0);

    /* the delayed message carries a Celery eta */
    push(q, "eta", 5, 1, gp_now_ms() + 60000);
    redisReply *r = cmd(f->rc, "ZRANGE celery.delayed 0 -1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    json_t *m = json_loads(r->element[0]->str, 0, NULL);
    const char *eta = json_string_value(json_object_get(json_object_get(m, "headers"), "eta"));
    assert_non_null(eta);
    assert_non_null(strstr(eta, "+00:00"));
    json_decref(m);
    freeReplyObject(r);
}

typedef struct popper {
    gp_queue_t *q;
    int timeout_ms;
    int rc;
    gp_queue_item_t item;
    int64_t elapsed_ms;
} popper_t;

static void *pop_thread(void *arg)
{
    popper_t *p = arg;
    int64_t t0 = gp_mono_ms();
    p->rc = gp_queue_pop(p->q, &p->item, p->timeout_ms);
    p->elapsed_ms = gp_mono_ms() - t0;
    return NULL;
}

static void test_pop_blocks_until_push(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    popper_t p = {.q = f->q, .timeout_ms = 5000};
    pthread_t th;
    pthread_create(&th, NULL, pop_thread, &p);
    sleep_ms(300);
    int64_t pushed = gp_mono_ms();
    push(f->q, "wake", 5, 1, 0);
    pthread_join(th, NULL);
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.item.id, "wake");
    assert_true(p.elapsed_ms >= 250);
    /* woken by the push, not by a poll tick */
    assert_true(gp_mono_ms() - pushed < 200);
    assert_int_equal(gp_queue_ack(f->q, &p.item), 0);

    /* several blocked workers, several pushes: each gets one */
    popper_t ps[3];
    pthread_t ths[3];
    for (int i = 0; i < 3; i++) {
        ps[i] = (popper_t){.q = f->q, .timeout_ms = 5000};
        pthread_create(&ths[i], NULL, pop_thread, &ps[i]);
    }
    sleep_ms(200);
    push(f->q, "w1", 5, 1, 0);
    push(f->q, "w2", 5, 2, 0);
    push(f->q, "w3", 5, 3, 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(ths[i], NULL);
        assert_int_equal(ps[i].rc, 0);
        assert_true(ps[i].elapsed_ms < 1000);
        assert_int_equal(gp_queue_ack(f->q, &ps[i].item), 0);
    }
}

static void test_pop_timeout(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    gp_queue_item_t out;
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(f->q, &out, 300), -GP_E_TIMEOUT);
    int64_t el = gp_mono_ms() - t0;
    assert_true(el >= 290 && el < 800);
    t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(f->q, &out, 0), -GP_E_TIMEOUT);
    assert_true(gp_mono_ms() - t0 < 200);
    /* longer than one BLPOP round */
    t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(f->q, &out, 1500), -GP_E_TIMEOUT);
    el = gp_mono_ms() - t0;
    assert_true(el >= 1490 && el < 2000);
}

static void test_shutdown_wakes_blocked_pop(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    popper_t p[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        p[i] = (popper_t){.q = f->q, .timeout_ms = 10000};
        pthread_create(&th[i], NULL, pop_thread, &p[i]);
    }
    sleep_ms(300);
    int64_t t0 = gp_mono_ms();
    gp_queue_shutdown(f->q);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p[i].rc, -GP_E_SHUTTING_DOWN);
    }
    assert_true(gp_mono_ms() - t0 < 1100);
    /* and later pops, even with items waiting; push and ack still work */
    push(f->q, "after", 5, 1, 0);
    gp_queue_item_t out;
    t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(f->q, &out, 5000), -GP_E_SHUTTING_DOWN);
    assert_true(gp_mono_ms() - t0 < 200);
    assert_int_equal(gp_queue_depth(f->q), 1);
}

static void test_unacked_record_and_ack(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    push(f->q, "acked", 5, 1, 0);
    gp_queue_item_t it;
    double before = (double)gp_now_ms() / 1000.0;
    expect_pop(f->q, "acked", &it);
    double after = (double)gp_now_ms() / 1000.0;

    redisReply *r = cmd(f->rc, "HGET unacked %s", it.delivery_tag);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    json_t *v = json_loads(r->str, 0, NULL);
    assert_true(json_is_array(v));
    assert_int_equal(json_array_size(v), 3);
    json_t *m = json_array_get(v, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "headers"), "id")),
                        "acked");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(m, "properties"), "delivery_tag")),
        it.delivery_tag);
    assert_string_equal(json_string_value(json_array_get(v, 1)), "");
    assert_string_equal(json_string_value(json_array_get(v, 2)), "celery");
    json_decref(v);
    freeReplyObject(r);

    r = cmd(f->rc, "ZSCORE unacked_index %s", it.delivery_tag);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    double score = atof(r->str);
    freeReplyObject(r);
    assert_true(score >= before - 0.001 && score <= after + 0.001);
    assert_int_equal(gp_queue_depth(f->q), 0);

    assert_int_equal(gp_queue_ack(f->q, &it), 0);
    r = cmd(f->rc, "HEXISTS unacked %s", it.delivery_tag);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = cmd(f->rc, "ZSCORE unacked_index %s", it.delivery_tag);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* acking twice is harmless; an item without a tag (memory backend style) is a no-op */
    assert_int_equal(gp_queue_ack(f->q, &it), 0);
    gp_queue_item_t none = {.id = "x"};
    assert_int_equal(gp_queue_ack(f->q, &none), 0);
    assert_int_equal(gp_queue_renew(f->q, &none), 0);
}

static void test_renew_updates_score(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    push(f->q, "leased", 5, 1, 0);
    gp_queue_item_t it;
    expect_pop(f->q, "leased", &it);
    redisReply *r = cmd(f->rc, "ZSCORE unacked_index %s", it.delivery_tag);
    double s1 = atof(r->str);
    freeReplyObject(r);
    sleep_ms(120);
    assert_int_equal(gp_queue_renew(f->q, &it), 0);
    r = cmd(f->rc, "ZSCORE unacked_index %s", it.delivery_tag);
    double s2 = atof(r->str);
    freeReplyObject(r);
    assert_true(s2 - s1 >= 0.1);
    /* a renewed lease is not expired */
    sleep_ms(150);
    assert_int_equal(gp_queue_renew(f->q, &it), 0);
    assert_int_equal(gp_redis_queue_restore_expired(f->q, 100), 0);
    assert_int_equal(gp_queue_depth(f->q), 0);
    /* after the ack the lease is gone: renew says so */
    assert_int_equal(gp_queue_ack(f->q, &it), 0);
    assert_int_equal(gp_queue_renew(f->q, &it), -GP_E_CONFLICT);
    r = cmd(f->rc, "ZCARD unacked_index");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_restore_expired(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    push(f->q, "lost", 5, 1, 0);
    push(f->q, "kept", 5, 2, 0);
    gp_queue_item_t lost, kept;
    expect_pop(f->q, "lost", &lost);
    expect_pop(f->q, "kept", &kept);
    /* a delivery of another kombu queue in the same hash: not ours to restore */
    cmd_ok(f->rc, "HSET unacked foreign-tag %s",
           "[{\"body\": \"\", \"headers\": {\"id\": \"c1\"}, \"properties\": "
           "{\"delivery_tag\": \"foreign-tag\"}}, \"\", \"otherqueue\"]");
    cmd_ok(f->rc, "ZADD unacked_index 1 foreign-tag");
    /* and an index entry without its hash entry (half-written by someone): dropped */
    cmd_ok(f->rc, "ZADD unacked_index 1 orphan-tag");

    assert_int_equal(gp_redis_queue_restore_expired(f->q, 60000), 0);
    sleep_ms(150);
    assert_int_equal(gp_queue_renew(f->q, &kept), 0);
    assert_int_equal(gp_redis_queue_restore_expired(f->q, 100), 1);
    assert_int_equal(gp_queue_depth(f->q), 1);

    /* back in its list, redelivered, same tag; the un-acked hash entry is gone */
    redisReply *r = cmd(f->rc, "HEXISTS unacked %s", lost.delivery_tag);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = cmd(f->rc, "LRANGE celery%b3 0 -1", "\x06\x16", (size_t)2);
    assert_int_equal(r->elements, 1);
    json_t *m = json_loads(r->element[0]->str, 0, NULL);
    assert_true(json_is_true(json_object_get(json_object_get(m, "headers"), "redelivered")));
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(m, "properties"), "delivery_info"), "redelivered")));
    json_decref(m);
    freeReplyObject(r);
    r = cmd(f->rc, "ZSCORE unacked_index orphan-tag");
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = cmd(f->rc, "HEXISTS unacked foreign-tag");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    gp_queue_item_t again;
    expect_pop(f->q, "lost", &again);
    assert_string_equal(again.delivery_tag, lost.delivery_tag);
    assert_int_equal(again.priority, 5);
    assert_int_equal(again.enqueued_at, 1);
    assert_int_equal(gp_queue_ack(f->q, &again), 0);
    assert_int_equal(gp_queue_ack(f->q, &kept), 0);
    /* a queue that is not the Redis backend has nothing to restore */
    assert_int_equal(gp_redis_queue_restore_expired(NULL, 0), 0);
}

/* ---- the Celery wire codec (no Redis) ----------------------------------------------------- */

static void test_wire_priorities_and_times(void **state)
{
    (void)state;
    assert_int_equal(gp_celery_kombu_priority(9), 0);
    assert_int_equal(gp_celery_kombu_priority(0), 9);
    assert_int_equal(gp_celery_kombu_priority(42), 0); /* clamped */
    assert_int_equal(gp_celery_genpulse_priority(4), 5);
    static const int steps[10] = {0, 0, 0, 3, 3, 3, 6, 6, 6, 9};
    for (int kp = 0; kp < 10; kp++)
        assert_int_equal(gp_celery_priority_step(kp), steps[kp]);
    char name[32];
    gp_celery_list_name("celery", 1, name, sizeof name);
    assert_string_equal(name, "celery");
    gp_celery_list_name("celery", 7, name, sizeof name);
    assert_string_equal(name, "celery\x06\x16"
                              "6");
    char ts[48];
    gp_celery_format_eta(1795424361402, ts, sizeof ts);
    assert_string_equal(ts, "2026-11-23T08:59:21.402000+00:00");
    gp_celery_format_date_done(1795424361002, ts, sizeof ts);
    assert_string_equal(ts, "2026-11-23T08:59:21.002");
}

static void test_wire_task_round_trip(void **state)
{
    (void)state;
    json_t *kwargs = json_pack("{s:s, s:i}", "prompt", "a \"boat\" \xc3\xa9", "width", 128);
    json_t *extra = json_pack("{s:b}", "redelivered", 1);
    gp_celery_task_t t = {.task = "text-to-image",
                          .id = "id-1",
                          .kwargs = kwargs,
                          .kombu_priority = 3,
                          .eta = "2026-11-23T08:59:21.402000+00:00",
                          .origin = "gen1@host",
                          .delivery_tag = "tag-1",
                          .routing_key = "celery",
                          .extra_headers = extra};
    char *text = gp_celery_encode_task(&t);
    assert_non_null(text);
    /* Celery 5's field order and json.dumps separators */
    assert_non_null(strstr(text, "{\"body\": \""));
    assert_non_null(strstr(text, "\"content-encoding\": \"utf-8\", \"content-type\": "));
    gp_celery_decoded_t d;
    char err[256] = "";
    assert_int_equal(gp_celery_decode_task(text, strlen(text), &d, err, sizeof err), 0);
    assert_string_equal(d.id, "id-1");
    assert_string_equal(d.task, "text-to-image");
    assert_int_equal(d.kombu_priority, 3);
    assert_true(json_is_true(json_object_get(d.headers, "redelivered")));
    assert_string_equal(json_string_value(json_object_get(d.headers, "eta")), t.eta);
    json_t *back = gp_celery_decode_kwargs(&d, err, sizeof err);
    assert_true(json_equal(back, kwargs));
    json_decref(back);
    gp_celery_decoded_clear(&d);
    gp_celery_decoded_clear(&d); /* idempotent */
    free(text);
    json_decref(kwargs);
    json_decref(extra);
}

/* Each malformed message is refused with a reason naming what is wrong. */
static void test_wire_decode_strict(void **state)
{
    (void)state;
    static const struct {
        const char *msg, *reason;
    } bad[] = {
        {"not json", "not JSON"},
        {"[1]", "not a JSON object"},
        {"{\"headers\": 1}", "headers"},
        {"{\"headers\": {}}", "headers.id"},
        {"{\"headers\": {\"id\": \"\"}}", "headers.id"},
        {"{\"headers\": {\"id\": \"a\\u0000b\"}}", "not JSON"}, /* jansson refuses NUL */
        {"{\"headers\": {\"id\": 7}}", "headers.id"},
        {"{\"headers\": {\"id\": \"x\", \"task\": 3}}", "headers.task"},
        {"{\"headers\": {\"id\": \"x\"}, \"properties\": []}", "properties"},
        {"{\"headers\": {\"id\": \"x\"}, \"properties\": {\"priority\": \"9\"}}", "priority"},
        {"{\"headers\": {\"id\": \"x\"}, \"properties\": {\"body_encoding\": \"hex\"}}",
         "body_encoding"},
        {"{\"headers\": {\"id\": \"x\"}, \"content-type\": \"application/x-python-serialize\"}",
         "content-type"},
        {"{\"headers\": {\"id\": \"x\"}, \"body\": 5}", "body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gp_celery_decoded_t d;
        char err[256] = "";
        assert_int_equal(gp_celery_decode_task(bad[i].msg, strlen(bad[i].msg), &d, err, sizeof err),
                         -1);
        assert_null(d.root);
        if (!strstr(err, bad[i].reason))
            fail_msg("%s: reason \"%s\" does not name %s", bad[i].msg, err, bad[i].reason);
    }
    char id[300];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    char *big = gp_xasprintf("{\"headers\": {\"id\": \"%s\"}}", id);
    gp_celery_decoded_t d;
    char err[256];
    assert_int_equal(gp_celery_decode_task(big, strlen(big), &d, err, sizeof err), -1);
    free(big);
    /* null and absent optional fields are fine; priority is clamped */
    const char *ok = "{\"headers\": {\"id\": \"x\", \"task\": null}, \"properties\": "
                     "{\"priority\": 42, \"body_encoding\": null}, \"body\": null}";
    assert_int_equal(gp_celery_decode_task(ok, strlen(ok), &d, err, sizeof err), 0);
    assert_null(d.task);
    assert_int_equal(d.kombu_priority, 9);
    assert_null(gp_celery_decode_kwargs(&d, err, sizeof err));
    assert_non_null(strstr(err, "no body"));
    gp_celery_decoded_clear(&d);
    /* a body that is not [args, kwargs, embed] */
    const char *two = "{\"headers\": {\"id\": \"x\"}, \"body\": \"[[], {}]\"}";
    assert_int_equal(gp_celery_decode_task(two, strlen(two), &d, err, sizeof err), 0);
    assert_null(gp_celery_decode_kwargs(&d, err, sizeof err));
    assert_non_null(strstr(err, "[args, kwargs, embed]"));
    gp_celery_decoded_clear(&d);
    const char *b64 = "{\"headers\": {\"id\": \"x\"}, \"properties\": {\"body_encoding\": "
                      "\"base64\"}, \"body\": \"%%%\"}";
    assert_int_equal(gp_celery_decode_task(b64, strlen(b64), &d, err, sizeof err), 0);
    assert_null(gp_celery_decode_kwargs(&d, err, sizeof err));
    assert_non_null(strstr(err, "base64"));
    gp_celery_decoded_clear(&d);
}

static void test_wire_redeliver(void **state)
{
    (void)state;
    const char *entry = "[{\"headers\": {\"id\": \"x\"}, \"properties\": {\"priority\": 7, "
                        "\"delivery_info\": {\"routing_key\": \"celery\"}}}, \"\", \"celery\"]";
    char *msg = NULL, err[256] = "";
    int kp = -1;
    assert_int_equal(
        gp_celery_redeliver(entry, strlen(entry), "celery", &msg, &kp, err, sizeof err), 0);
    assert_int_equal(kp, 7);
    json_t *m = json_loads(msg, 0, NULL);
    assert_true(json_is_true(json_object_get(json_object_get(m, "headers"), "redelivered")));
    json_t *di = json_object_get(json_object_get(m, "properties"), "delivery_info");
    assert_true(json_is_true(json_object_get(di, "redelivered")));
    assert_string_equal(json_string_value(json_object_get(di, "routing_key")), "celery");
    json_decref(m);
    free(msg);
    /* no headers or properties: created, as kombu's restore would */
    const char *bare = "[{}, \"\", \"celery\"]";
    msg = NULL;
    assert_int_equal(gp_celery_redeliver(bare, strlen(bare), "celery", &msg, &kp, err, sizeof err),
                     0);
    assert_int_equal(kp, 0);
    assert_non_null(strstr(msg, "\"redelivered\": true"));
    free(msg);
    msg = NULL;
    kp = -1;
    const char *other = "[{}, \"\", \"reports\"]";
    assert_int_equal(
        gp_celery_redeliver(other, strlen(other), "celery", &msg, &kp, err, sizeof err), 1);
    const char *junk = "[\"m\", \"\", \"celery\"]";
    assert_int_equal(gp_celery_redeliver(junk, strlen(junk), "celery", &msg, &kp, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "[message, exchange, routing_key]"));
    assert_null(msg);
    assert_int_equal(kp, -1);
}

static void test_wire_meta(void **state)
{
    (void)state;
    char *text = gp_celery_encode_meta("id-1", GP_CELERY_FAILURE,
                                       gp_celery_exception("GenPulseTaskFailed", "boom", NULL),
                                       "2026-11-23T08:59:21.402");
    assert_string_equal(text, "{\"status\":\"FAILURE\",\"result\":{\"exc_type\":"
                              "\"GenPulseTaskFailed\",\"exc_message\":[\"boom\"],\"exc_module\":"
                              "null},\"traceback\":null,\"children\":[],\"date_done\":"
                              "\"2026-11-23T08:59:21.402\",\"task_id\":\"id-1\"}");
    gp_celery_meta_t m;
    char err[256] = "";
    assert_int_equal(gp_celery_decode_meta(text, strlen(text), &m, err, sizeof err), 0);
    assert_string_equal(m.state, "FAILURE");
    assert_string_equal(gp_celery_meta_error(&m), "boom");
    gp_celery_meta_clear(&m);
    free(text);
    text = gp_celery_encode_meta("id-2", GP_CELERY_PROGRESS, NULL, NULL);
    assert_non_null(strstr(text, "\"result\":null"));
    assert_non_null(strstr(text, "\"date_done\":null"));
    free(text);
    static const char *const bad[] = {"", "[]", "{\"status\": 1}", "{\"status\": \"\"}",
                                      "{\"result\": 5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(gp_celery_decode_meta(bad[i], strlen(bad[i]), &m, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_null(m.root);
    }
}

static void test_celery_v2_message(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    const char *id = "0192f0c4-1f2e-7a00-8000-0123456789ab";
    push(f->q, id, 5, 1234, 0); /* ours 5 -> kombu 4 -> the "\x06\x163" bucket */
    push(f->q, "top", 9, 1, 0); /* ours 9 -> kombu 0 -> the bare queue name */
    redisReply *r = cmd(f->rc, "LRANGE celery 0 -1");
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    r = cmd(f->rc, "LRANGE %b 0 -1",
            "celery\x06\x16"
            "3",
            (size_t)9);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    json_error_t e;
    json_t *m = json_loads(r->element[0]->str, 0, &e);
    freeReplyObject(r);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "content-type")), "application/json");
    assert_string_equal(json_string_value(json_object_get(m, "content-encoding")), "utf-8");
    json_t *h = json_object_get(m, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "lang")), "py");
    assert_string_equal(json_string_value(json_object_get(h, "task")), "genpulse.run");
    assert_string_equal(json_string_value(json_object_get(h, "id")), id);
    assert_string_equal(json_string_value(json_object_get(h, "root_id")), id);
    assert_true(json_is_null(json_object_get(h, "parent_id")));
    assert_true(json_is_null(json_object_get(h, "eta")));
    assert_int_equal(json_integer_value(json_object_get(h, "retries")), 0);
    assert_int_equal(json_array_size(json_object_get(h, "timelimit")), 2);
    assert_non_null(json_string_value(json_object_get(h, "argsrepr")));
    assert_non_null(strstr(json_string_value(json_object_get(h, "kwargsrepr")), id));
    json_t *p = json_object_get(m, "properties");
    assert_string_equal(json_string_value(json_object_get(p, "body_encoding")), "base64");
    assert_int_equal(json_integer_value(json_object_get(p, "priority")), 4);
    assert_int_equal(json_integer_value(json_object_get(p, "delivery_mode")), 2);
    const char *tag = json_string_value(json_object_get(p, "delivery_tag"));
    assert_non_null(tag);
    assert_int_equal(strlen(tag), 36);
    assert_int_equal(tag[14], '4'); /* uuid4 */
    json_t *di = json_object_get(p, "delivery_info");
    assert_string_equal(json_string_value(json_object_get(di, "exchange")), "");
    assert_string_equal(json_string_value(json_object_get(di, "routing_key")), "celery");

    char *body = b64decode(json_string_value(json_object_get(m, "body")));
    assert_non_null(body);
    json_t *b = json_loads(body, 0, &e);
    free(body);
    assert_true(json_is_array(b));
    assert_int_equal(json_array_size(b), 3);
    assert_true(json_is_array(json_array_get(b, 0)));
    assert_string_equal(json_string_value(json_object_get(json_array_get(b, 1), "task_id")), id);
    json_t *embed = json_array_get(b, 2);
    assert_true(json_is_object(embed));
    assert_non_null(json_object_get(embed, "callbacks"));
    assert_non_null(json_object_get(embed, "chord"));
    json_decref(b);
    json_decref(m);

    /* base64 padding: ids of three lengths give bodies of every length mod 3 */
    for (int n = 1; n <= 3; n++) {
        char small[8];
        snprintf(small, sizeof small, "%.*s", n, "abc");
        push(f->q, small, 0, 1, 0);
    }
    r = cmd(f->rc, "LRANGE %b 0 -1",
            "celery\x06\x16"
            "9",
            (size_t)9);
    assert_int_equal(r->elements, 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *mm = json_loads(r->element[i]->str, 0, NULL);
        char *bb = b64decode(json_string_value(json_object_get(mm, "body")));
        assert_non_null(bb);
        json_t *bj = json_loads(bb, 0, NULL);
        assert_true(json_is_array(bj));
        const char *tid = json_string_value(json_object_get(json_array_get(bj, 1), "task_id"));
        assert_string_equal(
            tid, json_string_value(json_object_get(json_object_get(mm, "headers"), "id")));
        json_decref(bj);
        free(bb);
        json_decref(mm);
    }
    freeReplyObject(r);

    /* a message a Python producer LPUSHed (no wake token) is taken too */
    r = cmd(f->rc, "DEL celery celery%b3 celery%b9", "\x06\x16", (size_t)2, "\x06\x16", (size_t)2);
    freeReplyObject(r);
    cmd_ok(f->rc, "LPUSH celery %s",
           "{\"body\": \"W1tdLCB7fSwge31d\", \"content-encoding\": \"utf-8\", "
           "\"content-type\": \"application/json\", \"headers\": {\"lang\": \"py\", "
           "\"task\": \"text-to-audio\", \"id\": \"py-1\"}, \"properties\": {\"priority\": 0, "
           "\"body_encoding\": \"base64\", \"delivery_tag\": \"py-tag\", \"delivery_info\": "
           "{\"exchange\": \"\", \"routing_key\": \"celery\"}}}");
    gp_queue_item_t it;
    expect_pop(f->q, "py-1", &it);
    assert_string_equal(it.delivery_tag, "py-tag");
    assert_int_equal(it.priority, 9);
    /* Celery-sent: the task name is the task type, kwargs ({} here) the params */
    assert_string_equal(it.task_type, "text-to-audio");
    assert_non_null(it.foreign_params);
    assert_string_equal(it.foreign_params, "{}");
    gp_queue_item_release(&it);
    assert_int_equal(gp_queue_ack(f->q, &it), 0);
    /* and a malformed one is dropped, not handed out */
    cmd_ok(f->rc, "LPUSH celery not-json");
    gp_queue_item_t out;
    assert_int_equal(gp_queue_pop(f->q, &out, 100), -GP_E_TIMEOUT);
    r = cmd(f->rc, "HLEN unacked");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_unreachable(void **state)
{
    (void)state;
    gp_queue_t *q = NULL;
    /* port 1 on loopback: nothing listens there */
    int64_t t0 = gp_mono_ms();
    assert_int_equal(open_url("redis://127.0.0.1:1/0", &q), 0);
    assert_true(gp_mono_ms() - t0 < 1500);
    gp_queue_item_t it = {.id = "x", .priority = 5};
    snprintf(it.delivery_tag, sizeof it.delivery_tag, "tag");
    for (int i = 0; i < 3; i++) {
        t0 = gp_mono_ms();
        assert_int_equal(gp_queue_push(q, &it), -GP_E_UNAVAILABLE);
        assert_int_equal(gp_queue_ack(q, &it), -GP_E_UNAVAILABLE);
        assert_int_equal(gp_queue_renew(q, &it), -GP_E_UNAVAILABLE);
        assert_int_equal(gp_queue_depth(q), 0);
        assert_int_equal(gp_redis_queue_restore_expired(q, 1000), -GP_E_UNAVAILABLE);
        assert_true(gp_mono_ms() - t0 < 1500);
        gp_queue_item_t out;
        t0 = gp_mono_ms();
        assert_int_equal(gp_queue_pop(q, &out, 300), -GP_E_UNAVAILABLE);
        assert_true(gp_mono_ms() - t0 < 1500);
    }
    /* shutdown cuts a pop waiting out the backoff */
    gp_queue_shutdown(q);
    gp_queue_item_t out;
    assert_int_equal(gp_queue_pop(q, &out, 300), -GP_E_SHUTTING_DOWN);
    gp_queue_close(q);

    /* bad URLs are refused at open */
    assert_int_not_equal(open_url("redis://127.0.0.1:99999/0", &q), 0);
    assert_int_not_equal(open_url("rediss://127.0.0.1:6379/0", &q), 0);
    assert_int_not_equal(open_url("redis://127.0.0.1:6379/x", &q), 0);
}

/* Redis drops our connections (as a restart would): calls fail fast, then recover. */
static void test_connection_dropped(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    push(f->q, "before", 5, 1, 0);
    expect_pop(f->q, "before", NULL);
    redisReply *r = cmd(f->rc, "CLIENT LIST");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    int killed = 0;
    for (char *line = strtok(r->str, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, " name=genpulse-queue "))
            continue;
        long long cid = atoll(line + 3); /* "id=N ..." */
        redisReply *k = cmd(f->rc, "CLIENT KILL ID %lld", cid);
        freeReplyObject(k);
        killed++;
    }
    freeReplyObject(r);
    assert_true(killed >= 1);
    /* the first call on a dead connection may fail (fast); then we are back */
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++) {
        gp_queue_item_t it = {.id = "after", .priority = 5, .enqueued_at = 2};
        int rc = gp_queue_push(f->q, &it);
        assert_true(rc == 0 || rc == -GP_E_UNAVAILABLE);
        ok = rc == 0;
        if (!ok)
            sleep_ms(150);
    }
    assert_true(ok);
    expect_pop(f->q, "after", NULL);
}

/* Many pushers and poppers at once: every item is delivered exactly once. */
#define STRESS_ITEMS 1500
typedef struct stress {
    gp_queue_t *q;
    int base, n;
    pthread_mutex_t *lock;
    unsigned char *seen;
    int *dups, *got;
} stress_t;

static void *stress_push(void *arg)
{
    stress_t *s = arg;
    for (int i = s->base; i < s->base + s->n; i++) {
        gp_queue_item_t it = {.priority = i % 10, .enqueued_at = i};
        snprintf(it.id, sizeof it.id, "s-%05d", i);
        if (gp_queue_push(s->q, &it) != 0)
            abort();
    }
    return NULL;
}

static void *stress_pop(void *arg)
{
    stress_t *s = arg;
    for (;;) {
        gp_queue_item_t it;
        int rc = gp_queue_pop(s->q, &it, 1500);
        if (rc == -GP_E_TIMEOUT)
            break;
        if (rc != 0)
            abort();
        if (gp_queue_ack(s->q, &it) != 0)
            abort();
        int i = atoi(it.id + 2);
        pthread_mutex_lock(s->lock);
        if (s->seen[i])
            (*s->dups)++;
        s->seen[i] = 1;
        (*s->got)++;
        pthread_mutex_unlock(s->lock);
    }
    return NULL;
}

static void test_concurrent_push_pop(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static unsigned char seen[STRESS_ITEMS];
    memset(seen, 0, sizeof seen);
    int dups = 0, got = 0;
    stress_t pushers[3], poppers[5];
    pthread_t tp[3], tc[5];
    for (int i = 0; i < 5; i++) {
        poppers[i] = (stress_t){.q = f->q, .lock = &lock, .seen = seen, .dups = &dups, .got = &got};
        pthread_create(&tc[i], NULL, stress_pop, &poppers[i]);
    }
    for (int i = 0; i < 3; i++) {
        pushers[i] = (stress_t){.q = f->q, .base = i * (STRESS_ITEMS / 3), .n = STRESS_ITEMS / 3};
        pthread_create(&tp[i], NULL, stress_push, &pushers[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(tp[i], NULL);
    for (int i = 0; i < 5; i++)
        pthread_join(tc[i], NULL);
    assert_int_equal(dups, 0);
    assert_int_equal(got, STRESS_ITEMS);
    assert_int_equal(gp_queue_depth(f->q), 0);
    redisReply *r = cmd(f->rc, "HLEN unacked");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = cmd(f->rc, "LLEN celery.wake");
    assert_true(r->integer <= 8); /* tokens do not pile up once the queue is drained */
    freeReplyObject(r);
}

/* The URL's database is selected, and a password is sent (this Redis has none: refused). */
static void test_url_db_and_auth(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    int db = (g_db + 1) % 16;
    char url[512];
    snprintf(url, sizeof url, "redis://%s:%d/%d", g_host, g_port, db);
    gp_queue_t *q2 = NULL;
    assert_int_equal(open_url(url, &q2), 0);
    push(q2, "other-db", 5, 1, 0);
    assert_int_equal(gp_queue_depth(f->q), 0);
    assert_int_equal(gp_queue_depth(q2), 1);
    expect_pop(q2, "other-db", NULL);
    gp_queue_close(q2);
    cmd_ok(f->rc, "SELECT %d", db);
    cmd_ok(f->rc, "DEL celery.wake");
    cmd_ok(f->rc, "SELECT %d", g_db);

    snprintf(url, sizeof url, "redis://:s%%65cret@%s:%d/%d", g_host, g_port, g_db);
    assert_int_equal(open_url(url, &q2), 0);
    gp_queue_item_t it = {.id = "auth", .priority = 5};
    assert_int_equal(gp_queue_push(q2, &it), -GP_E_UNAVAILABLE);
    gp_queue_close(q2);
}

static void test_holds_by_id(void **state)
{
    SKIP_IF_NO_REDIS();
    fixture_t *f = *state;
    push(f->q, "held-ready", 5, 1, 0);
    push(f->q, "held-later", 5, 1, gp_now_ms() + 60000);
    push(f->q, "held-popped", 9, 1, 0);
    gp_queue_item_t it;
    expect_pop(f->q, "held-popped", &it);
    const char *ids[4] = {"held-later", "held-gone", "held-ready", "held-popped"};
    unsigned char where[4] = {9, 9, 9, 9};
    assert_int_equal(gp_queue_holds(f->q, ids, 4, where), 0);
    assert_int_equal(where[0], GP_HELD_QUEUED);
    assert_int_equal(where[1], GP_HELD_NONE);
    assert_int_equal(where[2], GP_HELD_QUEUED);
    assert_int_equal(where[3], GP_HELD_DELIVERED);
    assert_int_equal(gp_queue_ack(f->q, &it), 0);
    assert_int_equal(gp_queue_holds(f->q, ids, 4, where), 0);
    assert_int_equal(where[3], GP_HELD_NONE);
    cmd_ok(f->rc, "FLUSHDB"); /* everything lost: nothing held */
    assert_int_equal(gp_queue_holds(f->q, ids, 4, where), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(where[i], GP_HELD_NONE);
    /* a redelivery goes to the consuming end: it runs before older work */
    push(f->q, "older", 5, 1, 0);
    gp_queue_item_t re = {.priority = 5, .enqueued_at = 2, .redelivered = true};
    snprintf(re.id, sizeof re.id, "%s", "redelivered");
    assert_int_equal(gp_queue_push(f->q, &re), 0);
    expect_pop(f->q, "redelivered", &it);
    assert_true(it.redelivered);
    expect_pop(f->q, "older", NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    g_url = getenv("GENPULSE_TEST_REDIS_URL");
    if (g_url && !*g_url)
        g_url = NULL;
    if (g_url)
        parse_test_url(g_url);
    else
        fprintf(stderr, "GENPULSE_TEST_REDIS_URL is not set: skipping the Redis queue tests\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_priorities_and_times),
        cmocka_unit_test(test_wire_task_round_trip),
        cmocka_unit_test(test_wire_decode_strict),
        cmocka_unit_test(test_wire_redeliver),
        cmocka_unit_test(test_wire_meta),
        cmocka_unit_test_setup_teardown(test_priority_and_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_not_before_ready_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_by_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop_blocks_until_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_wakes_blocked_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unacked_record_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renew_updates_score, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_celery_v2_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_push_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_db_and_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holds_by_id, setup, teardown),
    };
    return cmocka_run_group_tests_name("queue_redis", tests, NULL, NULL);
}

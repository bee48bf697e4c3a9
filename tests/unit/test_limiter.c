/*
 * test_limiter.c — both limiter backends (src/infra/limiter/) through gp_limiter_open: the
 * in-process one always, the Redis one against GENPULSE_TEST_REDIS_URL (skipped, with a
 * message, when it is unset; each Redis test starts from FLUSHDB). Timing assertions use
 * wide margins: they tell "waited" from "did not wait", never a precise schedule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/util.h"
#include "infra/limiter/limiter.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char *g_url; /* the test Redis, or NULL */
static char g_host[256];
static int g_port, g_db;

typedef struct fixture {
    const char *url; /* "" = memory backend */
    gp_limiter_t *l;
    redisContext *rc; /* Redis only: the test's own connection, for inspection */
} fixture_t;

static fixture_t g_memory = {.url = ""};
static fixture_t g_redis;

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Only the redis://host:port/db form the test services hand out. */
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
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    return r;
}

static long long cmd_int(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static gp_limiter_t *open_url(const char *url)
{
    gp_settings_t s;
    memset(&s, 0, sizeof s);
    s.queue_url = (char *)url;
    char err[256] = "";
    gp_limiter_t *l = NULL;
    int rc = gp_limiter_open(&l, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "gp_limiter_open(%s): %s\n", url, err);
    assert_int_equal(rc, 0);
    assert_non_null(l);
    return l;
}

static int setup(void **state)
{
    fixture_t *f = *state;
    if (f == &g_redis) {
        if (!g_url)
            return 0; /* the test skips itself */
        f->url = g_url;
        struct timeval tv = {.tv_sec = 2};
        f->rc = redisConnectWithTimeout(g_host, g_port, tv);
        if (!f->rc || f->rc->err) {
            fprintf(stderr, "cannot reach the test Redis at %s\n", g_url);
            return -1;
        }
        redisSetTimeout(f->rc, tv);
        freeReplyObject(cmd(f->rc, "SELECT %d", g_db));
        freeReplyObject(cmd(f->rc, "FLUSHDB"));
    }
    f->l = open_url(f->url);
    assert_string_equal(f->l->vt->scheme, f == &g_redis ? "redis" : "memory");
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gp_limiter_close(f->l);
    f->l = NULL;
    if (f->rc)
        redisFree(f->rc);
    f->rc = NULL;
    return 0;
}

static fixture_t *fixture(void **state)
{
    fixture_t *f = *state;
    if (!f->l)
        skip();
    return f;
}

static bool cancel_flag(void *arg)
{
    return atomic_load((atomic_bool *)arg);
}

static int acquire(gp_limiter_t *l, const char *key, int max, int64_t lifetime_ms, int64_t wait_ms,
                   atomic_bool *cancel, gp_limit_slot_t *slot)
{
    return l->vt->acquire_slot(l, key, max, lifetime_ms, gp_mono_ms() + wait_ms,
                               cancel ? cancel_flag : NULL, cancel, slot);
}

static int take(gp_limiter_t *l, const char *key, int per_minute, int64_t wait_ms,
                atomic_bool *cancel)
{
    return l->vt->take_token(l, key, per_minute, gp_mono_ms() + wait_ms,
                             cancel ? cancel_flag : NULL, cancel);
}

static void release(gp_limiter_t *l, gp_limit_slot_t *slot)
{
    l->vt->release_slot(l, slot);
}

/* ---- concurrency slots ------------------------------------------------------------------- */

#define WORKERS 6
#define ROUNDS 3

typedef struct crowd {
    gp_limiter_t *l;
    pthread_barrier_t start;
    atomic_int inside, most, runs, errors;
} crowd_t;

static void *crowd_worker(void *arg)
{
    crowd_t *c = arg;
    pthread_barrier_wait(&c->start);
    for (int i = 0; i < ROUNDS; i++) {
        gp_limit_slot_t slot;
        if (acquire(c->l, "crowd", 2, 30000, 30000, NULL, &slot) != 0 || !slot.held) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        int now = atomic_fetch_add(&c->inside, 1) + 1;
        int most = atomic_load(&c->most);
        while (now > most && !atomic_compare_exchange_weak(&c->most, &most, now)) {
        }
        sleep_ms(60);
        atomic_fetch_sub(&c->inside, 1);
        atomic_fetch_add(&c->runs, 1);
        release(c->l, &slot);
    }
    return NULL;
}

/* max=2 with 6 threads: never more than 2 inside, and everybody gets through. */
static void test_two_slots_six_threads(void **state)
{
    fixture_t *f = fixture(state);
    crowd_t c = {.l = f->l};
    pthread_barrier_init(&c.start, NULL, WORKERS);
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, crowd_worker, &c), 0);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&c.start);
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_int_equal(atomic_load(&c.runs), WORKERS * ROUNDS);
    assert_int_equal(atomic_load(&c.most), 2); /* at most 2, and the 2 were used */
    if (f->rc) {
        redisReply *r = cmd(f->rc, "EXISTS genpulse:limit:crowd:slots");
        assert_int_equal(r->integer, 0); /* every slot given back: nothing left in the set */
        freeReplyObject(r);
    }
}

static void test_deadline(void **state)
{
    fixture_t *f = fixture(state);
    gp_limit_slot_t a, b;
    assert_int_equal(acquire(f->l, "dl", 1, 30000, 1000, NULL, &a), 0);
    assert_true(a.held);
    int64_t t0 = gp_mono_ms();
    assert_int_equal(acquire(f->l, "dl", 1, 30000, 200, NULL, &b), -GP_E_TIMEOUT);
    int64_t took = gp_mono_ms() - t0;
    assert_false(b.held);
    assert_true(took >= 190 && took < 1500);
    /* Another key is not affected. */
    assert_int_equal(acquire(f->l, "dl-other", 1, 30000, 1000, NULL, &b), 0);
    release(f->l, &b);
    /* A release lets a waiter in well before its deadline. */
    release(f->l, &a);
    assert_false(a.held);
    release(f->l, &a); /* a second release is harmless */
    t0 = gp_mono_ms();
    assert_int_equal(acquire(f->l, "dl", 1, 30000, 5000, NULL, &b), 0);
    assert_true(gp_mono_ms() - t0 < 1000);
    release(f->l, &b);
}

typedef struct later {
    atomic_bool *flag;
    long after_ms;
    int64_t set_at;
} later_t;

static void *set_later(void *arg)
{
    later_t *x = arg;
    sleep_ms(x->after_ms);
    x->set_at = gp_mono_ms();
    atomic_store(x->flag, true);
    return NULL;
}

static void test_cancel(void **state)
{
    fixture_t *f = fixture(state);
    gp_limit_slot_t a, b;
    assert_int_equal(acquire(f->l, "cx", 1, 30000, 1000, NULL, &a), 0);

    atomic_bool flag = false;
    later_t x = {.flag = &flag, .after_ms = 100};
    pthread_t th;
    pthread_create(&th, NULL, set_later, &x);
    int rc = acquire(f->l, "cx", 1, 30000, 10000, &flag, &b);
    int64_t now = gp_mono_ms();
    pthread_join(th, NULL);
    assert_int_equal(rc, -GP_E_CANCELED);
    assert_false(b.held);
    printf("%s: slot wait noticed cancel after %lld ms\n", f->l->vt->scheme,
           (long long)(now - x.set_at));
    assert_true(now - x.set_at < 200);
    release(f->l, &a);

    /* The same for a rate wait: 6/min allows one request, then one every 10 s. */
    assert_int_equal(take(f->l, "cx", 6, 1000, NULL), 0);
    atomic_store(&flag, false);
    pthread_create(&th, NULL, set_later, &x);
    rc = take(f->l, "cx", 6, 30000, &flag);
    now = gp_mono_ms();
    pthread_join(th, NULL);
    assert_int_equal(rc, -GP_E_CANCELED);
    assert_true(now - x.set_at < 200);
    /* A wait that cannot end before the deadline fails at once instead of at the deadline. */
    int64_t t0 = gp_mono_ms();
    assert_int_equal(take(f->l, "cx", 6, 2000, NULL), -GP_E_TIMEOUT);
    assert_true(gp_mono_ms() - t0 < 1000);
}

/* A holder that never releases loses its slot when the lifetime ends. */
static void test_expired_slot_reclaimed(void **state)
{
    fixture_t *f = fixture(state);
    gp_limit_slot_t dead, b, c;
    assert_int_equal(acquire(f->l, "exp", 1, 200, 1000, NULL, &dead), 0);
    int64_t t0 = gp_mono_ms();
    assert_int_equal(acquire(f->l, "exp", 1, 30000, 5000, NULL, &b), 0);
    int64_t took = gp_mono_ms() - t0;
    printf("%s: expired slot reclaimed after %lld ms\n", f->l->vt->scheme, (long long)took);
    assert_true(took >= 100 && took < 2000);
    /* The late release of the expired slot must not free the new holder's. */
    release(f->l, &dead);
    assert_int_equal(acquire(f->l, "exp", 1, 30000, 150, NULL, &c), -GP_E_TIMEOUT);
    release(f->l, &b);
    assert_int_equal(acquire(f->l, "exp", 1, 30000, 1000, NULL, &c), 0);
    release(f->l, &c);
}

/* 600/min = one per 100 ms after a burst of 60: 80 takes end near 2 s, the first 60 at once. */
static void test_rate(void **state)
{
    fixture_t *f = fixture(state);
    int64_t t0 = gp_mono_ms(), burst_done = 0;
    for (int i = 0; i < 80; i++) {
        assert_int_equal(take(f->l, "rate", 600, 10000, NULL), 0);
        if (i == 59)
            burst_done = gp_mono_ms() - t0;
    }
    int64_t total = gp_mono_ms() - t0;
    printf("%s: 600/min: burst of 60 in %lld ms, 80 takes in %lld ms (ideal 2000)\n",
           f->l->vt->scheme, (long long)burst_done, (long long)total);
    assert_true(burst_done < 1500);
    assert_true(total >= 1800 && total < 4500);
    if (f->rc) {
        redisReply *r = cmd(f->rc, "PTTL genpulse:limit:rate:rate");
        assert_true(r->integer > 0); /* the state disappears by itself once idle */
        freeReplyObject(r);
    }
}

static void test_no_limit(void **state)
{
    fixture_t *f = fixture(state);
    atomic_bool canceled = true;
    gp_limit_slot_t s;
    for (int max = -1; max <= 0; max++) {
        /* Immediate even with the deadline gone and cancel set: there is nothing to wait for. */
        assert_int_equal(acquire(f->l, "free", max, 1000, -1, &canceled, &s), 0);
        assert_false(s.held);
        release(f->l, &s);
        assert_int_equal(take(f->l, "free", max, -1, &canceled), 0);
    }
}

/* ---- Redis only ---------------------------------------------------------------------------- */

/* Two limiter instances stand for two processes sharing the Redis. */
typedef struct taker {
    gp_limiter_t *l;
    int n;
    atomic_int *errors;
} taker_t;

static void *take_many(void *arg)
{
    taker_t *t = arg;
    for (int i = 0; i < t->n; i++)
        if (take(t->l, "shared", 600, 10000, NULL) != 0)
            atomic_fetch_add(t->errors, 1);
    return NULL;
}

static void test_redis_instances_share(void **state)
{
    fixture_t *f = fixture(state);
    gp_limiter_t *other = open_url(f->url);
    gp_limit_slot_t a, b;
    assert_int_equal(acquire(f->l, "shared", 1, 30000, 1000, NULL, &a), 0);
    assert_int_equal(acquire(other, "shared", 1, 30000, 200, NULL, &b), -GP_E_TIMEOUT);
    release(f->l, &a);
    assert_int_equal(acquire(other, "shared", 1, 30000, 1000, NULL, &b), 0);
    release(other, &b);

    atomic_int errors = 0;
    taker_t t1 = {.l = f->l, .n = 40, .errors = &errors};
    taker_t t2 = {.l = other, .n = 40, .errors = &errors};
    pthread_t th1, th2;
    int64_t t0 = gp_mono_ms();
    pthread_create(&th1, NULL, take_many, &t1);
    pthread_create(&th2, NULL, take_many, &t2);
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    int64_t total = gp_mono_ms() - t0;
    printf("redis: 600/min shared by two instances: 80 takes in %lld ms (ideal 2000)\n",
           (long long)total);
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(total >= 1800 && total < 4500);
    gp_limiter_close(other);
}

static void test_redis_layout(void **state)
{
    fixture_t *f = fixture(state);
    gp_limit_slot_t a;
    assert_int_equal(acquire(f->l, "lay", 3, 60000, 1000, NULL, &a), 0);
    redisReply *t = cmd(f->rc, "TIME");
    long long now = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    redisReply *r = cmd(f->rc, "ZSCORE genpulse:limit:lay:slots %s", a.token);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    long long expiry = atoll(r->str);
    freeReplyObject(r);
    assert_true(expiry > now + 55000 && expiry <= now + 60000);
    assert_int_equal(cmd_int(f->rc, "ZCARD genpulse:limit:lay:slots"), 1);
    long long pttl = cmd_int(f->rc, "PTTL genpulse:limit:lay:slots");
    assert_true(pttl > 55000 && pttl <= 61000);
    release(f->l, &a);
    assert_int_equal(cmd_int(f->rc, "EXISTS genpulse:limit:lay:slots"), 0);
}

/* A Redis that lost its scripts (restart, SCRIPT FLUSH) or dropped our connections. */
static void test_redis_recovers(void **state)
{
    fixture_t *f = fixture(state);
    gp_limit_slot_t a;
    assert_int_equal(acquire(f->l, "rec", 1, 30000, 1000, NULL, &a), 0);
    freeReplyObject(cmd(f->rc, "SCRIPT FLUSH"));
    release(f->l, &a);
    assert_int_equal(take(f->l, "rec", 600, 1000, NULL), 0);
    assert_int_equal(cmd_int(f->rc, "EXISTS genpulse:limit:rec:slots"), 0);

    freeReplyObject(cmd(f->rc, "CLIENT KILL TYPE normal SKIPME yes"));
    assert_int_equal(acquire(f->l, "rec", 1, 30000, 1000, NULL, &a), 0);
    assert_true(a.held);
    freeReplyObject(cmd(f->rc, "CLIENT KILL TYPE normal SKIPME yes"));
    release(f->l, &a);
    assert_int_equal(cmd_int(f->rc, "EXISTS genpulse:limit:rec:slots"), 0);
}

/* Runs without the test Redis: a port nobody listens on. */
static void test_redis_unreachable(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd); /* bound, never listened: connecting is refused */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", ntohs(sa.sin_port));

    int64_t t0 = gp_mono_ms();
    gp_limiter_t *l = open_url(url); /* not fatal: limits may lapse while Redis is down */
    gp_limit_slot_t s;
    assert_int_equal(acquire(l, "down", 2, 30000, 10000, NULL, &s), -GP_E_UNAVAILABLE);
    assert_false(s.held);
    assert_int_equal(take(l, "down", 60, 10000, NULL), -GP_E_UNAVAILABLE);
    release(l, &s);
    int64_t took = gp_mono_ms() - t0;
    printf("redis down: open + acquire + take answered in %lld ms\n", (long long)took);
    assert_true(took < 2000);
    gp_limiter_close(l);
}

/* ---- figures ------------------------------------------------------------------------------- */

static void test_round_trip_latency(void **state)
{
    fixture_t *f = fixture(state);
    int n = f->rc ? 2000 : 100000;
    gp_limit_slot_t s;
    int64_t t0 = gp_mono_ms();
    for (int i = 0; i < n; i++) {
        assert_int_equal(acquire(f->l, "bench", 1000, 60000, 1000, NULL, &s), 0);
        release(f->l, &s);
    }
    double slot_us = (double)(gp_mono_ms() - t0) * 1000.0 / n;
    t0 = gp_mono_ms();
    for (int i = 0; i < n; i++)
        assert_int_equal(take(f->l, "bench", INT_MAX, 1000, NULL), 0);
    double take_us = (double)(gp_mono_ms() - t0) * 1000.0 / n;
    printf("%s: acquire+release %.1f us, take_token %.1f us (%d loops, one thread)\n",
           f->l->vt->scheme, slot_us, take_us, n);
}

/* Each test once per backend, named after it ("memory/test_rate"). */
#define ON(backend, fn)                                                                            \
    {                                                                                              \
#backend "/" #fn, fn, setup, teardown, &g_##backend                                        \
    }
#define BOTH(fn) ON(memory, fn), ON(redis, fn)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    g_url = getenv("GENPULSE_TEST_REDIS_URL");
    if (g_url && !*g_url)
        g_url = NULL;
    if (g_url)
        parse_test_url(g_url);
    else
        fprintf(stderr, "GENPULSE_TEST_REDIS_URL is not set: skipping the Redis limiter tests\n");
    const struct CMUnitTest tests[] = {
        BOTH(test_two_slots_six_threads),
        BOTH(test_deadline),
        BOTH(test_cancel),
        BOTH(test_expired_slot_reclaimed),
        BOTH(test_rate),
        BOTH(test_no_limit),
        ON(redis, test_redis_instances_share),
        ON(redis, test_redis_layout),
        ON(redis, test_redis_recovers),
        cmocka_unit_test(test_redis_unreachable),
        BOTH(test_round_trip_latency),
    };
    return cmocka_run_group_tests_name("limiter", tests, NULL, NULL);
}

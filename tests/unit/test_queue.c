/*
 * test_queue.c — the in-process dispatch queue through gp_queue_open() with an empty
 * queue_url: order, delayed items, timeouts and shutdown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/util.h"
#include "infra/queue/queue.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static gp_settings_t g_settings;
static char g_empty[1];

static int open_queue(void **state)
{
    memset(&g_settings, 0, sizeof g_settings);
    char *empty = g_empty;
    g_settings.host = g_settings.data_dir = g_settings.database_url = empty;
    g_settings.queue_url = g_settings.storage_url = g_settings.public_url = empty;
    g_settings.log_level = g_settings.log_format = g_settings.sqlite_synchronous = empty;
    gp_queue_t *q = NULL;
    char err[256] = "";
    if (gp_queue_open(&q, &g_settings, err, sizeof err) != 0 || !q) {
        fprintf(stderr, "gp_queue_open: %s\n", err);
        return -1;
    }
    *state = q;
    return 0;
}

static int close_queue(void **state)
{
    gp_queue_close(*state);
    return 0;
}

static void push(gp_queue_t *q, const char *id, int priority, int64_t enqueued_at, int64_t ready_at)
{
    gp_queue_item_t it = {.priority = priority, .enqueued_at = enqueued_at, .ready_at = ready_at};
    snprintf(it.id, sizeof it.id, "%s", id);
    assert_int_equal(gp_queue_push(q, &it), 0);
}

static void expect_pop(gp_queue_t *q, const char *id)
{
    gp_queue_item_t out;
    memset(&out, 0, sizeof out);
    assert_int_equal(gp_queue_pop(q, &out, 1000), 0);
    assert_string_equal(out.id, id);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_empty_depth(void **state)
{
    gp_queue_t *q = *state;
    assert_int_equal(gp_queue_depth(q), 0);
}

/* /metrics: ready items by priority (one band each), delayed ones apart. */
static void test_depth_by_priority(void **state)
{
    gp_queue_t *q = *state;
    push(q, "a", 0, 1, 0);
    push(q, "b", 5, 2, 0);
    push(q, "c", 5, 3, 0);
    push(q, "d", 9, 4, gp_now_ms() + 60000);
    gp_queue_depths_t d;
    assert_int_equal(gp_queue_depth_by_priority(q, &d), 0);
    assert_int_equal(d.n, 10);
    assert_string_equal(d.band[0].priority, "0");
    assert_int_equal(d.band[0].ready, 1);
    assert_string_equal(d.band[5].priority, "5");
    assert_int_equal(d.band[5].ready, 2);
    assert_int_equal(d.band[9].ready, 0);
    assert_int_equal(d.delayed, 1);
}

static void test_priority_order(void **state)
{
    gp_queue_t *q = *state;
    int64_t t = 1000;
    push(q, "p0", 0, t, 0);
    push(q, "p5", 5, t, 0);
    push(q, "p9", 9, t, 0);
    push(q, "p1", 1, t, 0);
    push(q, "p7", 7, t, 0);
    assert_int_equal(gp_queue_depth(q), 5);
    expect_pop(q, "p9");
    expect_pop(q, "p7");
    expect_pop(q, "p5");
    expect_pop(q, "p1");
    expect_pop(q, "p0");
    assert_int_equal(gp_queue_depth(q), 0);

    /* a newer high-priority item beats an older low-priority one */
    push(q, "old-low", 0, 1, 0);
    push(q, "new-high", 9, 999999, 0);
    expect_pop(q, "new-high");
    expect_pop(q, "old-low");
}

static void test_fifo_within_priority(void **state)
{
    gp_queue_t *q = *state;
    /* one user's tasks leave in the order they were dispatched */
    push(q, "a", 3, 300, 0);
    push(q, "b", 3, 100, 0);
    push(q, "c", 3, 200, 0);
    expect_pop(q, "a");
    expect_pop(q, "b");
    expect_pop(q, "c");

    /* equal enqueued_at: push order */
    char id[37];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "same-%02d", i);
        push(q, id, 4, 500, 0);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "same-%02d", i);
        expect_pop(q, id);
    }
}

static void push_owned(gp_queue_t *q, const char *id, const char *owner, int priority)
{
    gp_queue_item_t it = {.priority = priority, .enqueued_at = 1};
    snprintf(it.id, sizeof it.id, "%s", id);
    snprintf(it.owner, sizeof it.owner, "%s", owner);
    assert_int_equal(gp_queue_push(q, &it), 0);
}

/* A flood from one user does not starve another: their tasks interleave. */
static void test_fair_among_owners(void **state)
{
    gp_queue_t *q = *state;
    char id[37];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "a-%04d", i);
        push_owned(q, id, "alice", 0);
    }
    expect_pop(q, "a-0000");
    expect_pop(q, "a-0001");
    push_owned(q, "b-0", "bob", 0);
    push_owned(q, "b-1", "bob", 0);
    gp_queue_item_t out;
    int seen_b = 0, popped = 0;
    while (seen_b < 2) {
        assert_int_equal(gp_queue_pop(q, &out, 1000), 0);
        popped++;
        if (out.id[0] == 'b')
            seen_b++;
    }
    assert_true(popped <= 4); /* bob's two tasks interleave with alice's, not after 998 */
    /* priority still comes first */
    push_owned(q, "urgent", "alice", 9);
    expect_pop(q, "urgent");
}

static void test_many_items_ordered(void **state)
{
    gp_queue_t *q = *state;
    /* more than the initial heap capacity, interleaved priorities */
    char id[37];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "%d-%04d", i % 10, i);
        push(q, id, i % 10, i, 0);
    }
    assert_int_equal(gp_queue_depth(q), 1000);
    int last_prio = 10;
    int64_t last_enq = -1;
    for (int i = 0; i < 1000; i++) {
        gp_queue_item_t out;
        assert_int_equal(gp_queue_pop(q, &out, 1000), 0);
        if (out.priority != last_prio) {
            assert_true(out.priority < last_prio);
            last_prio = out.priority;
            last_enq = -1;
        }
        assert_true(out.enqueued_at > last_enq);
        last_enq = out.enqueued_at;
    }
    assert_int_equal(gp_queue_depth(q), 0);
}

static void test_pop_timeout(void **state)
{
    gp_queue_t *q = *state;
    gp_queue_item_t out;
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(q, &out, 150), -GP_E_TIMEOUT);
    int64_t waited = gp_mono_ms() - t0;
    assert_true(waited >= 140);
    assert_true(waited < 5000);
    /* timeout 0: a non-blocking poll */
    assert_int_equal(gp_queue_pop(q, &out, 0), -GP_E_TIMEOUT);
}

static void test_delayed_items(void **state)
{
    gp_queue_t *q = *state;
    int64_t now = gp_now_ms();
    push(q, "later", 9, now, now + 400);
    assert_int_equal(gp_queue_depth(q), 1);
    gp_queue_item_t out;
    /* not before it is due */
    assert_int_equal(gp_queue_pop(q, &out, 100), -GP_E_TIMEOUT);
    assert_int_equal(gp_queue_depth(q), 1);

    /* a ready item of lower priority is not held up by the delayed one */
    push(q, "now", 0, now, 0);
    push(q, "past", 0, now + 1, now - 1000); /* ready_at in the past: ready at once */
    expect_pop(q, "now");
    expect_pop(q, "past");

    /* popped once due: the pop blocks until then and no longer than needed */
    assert_int_equal(gp_queue_pop(q, &out, 5000), 0);
    assert_string_equal(out.id, "later");
    int64_t after = gp_now_ms();
    assert_true(after >= now + 400);
    assert_true(after < now + 3000);
    assert_int_equal(gp_queue_depth(q), 0);
}

static void test_delayed_order(void **state)
{
    gp_queue_t *q = *state;
    int64_t now = gp_now_ms();
    push(q, "d2", 0, now, now + 250);
    push(q, "d1", 0, now + 5, now + 120);
    push(q, "d3-high", 9, now + 10, now + 400);
    expect_pop(q, "d1");
    expect_pop(q, "d2");
    expect_pop(q, "d3-high");

    /* once due, delayed items are ordered like ready ones (priority first) */
    now = gp_now_ms();
    push(q, "low", 1, now, now + 100);
    push(q, "high", 8, now + 1, now + 150);
    sleep_ms(250);
    expect_pop(q, "high");
    expect_pop(q, "low");
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

static void test_push_wakes_blocked_pop(void **state)
{
    gp_queue_t *q = *state;
    popper_t p = {.q = q, .timeout_ms = 10000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pop_thread, &p), 0);
    sleep_ms(100);
    push(q, "wake", 0, 1, 0);
    pthread_join(th, NULL);
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.item.id, "wake");
    assert_true(p.elapsed_ms < 5000);
}

static void test_delayed_push_rearms_blocked_pop(void **state)
{
    gp_queue_t *q = *state;
    /* a pop already waiting (long timeout) must notice a delayed item due soon */
    popper_t p = {.q = q, .timeout_ms = 10000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pop_thread, &p), 0);
    sleep_ms(50);
    int64_t now = gp_now_ms();
    push(q, "soon", 0, now, now + 200);
    pthread_join(th, NULL);
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.item.id, "soon");
    assert_true(gp_now_ms() >= now + 200);
    assert_true(p.elapsed_ms < 5000);
}

static void test_shutdown_wakes_blocked_pop(void **state)
{
    gp_queue_t *q = *state;
    popper_t p[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        p[i] = (popper_t){.q = q, .timeout_ms = 20000};
        assert_int_equal(pthread_create(&th[i], NULL, pop_thread, &p[i]), 0);
    }
    sleep_ms(100);
    gp_queue_shutdown(q);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p[i].rc, -GP_E_SHUTTING_DOWN);
        assert_true(p[i].elapsed_ms < 10000);
    }
    /* and later pops, even with items waiting */
    push(q, "after", 5, 1, 0);
    gp_queue_item_t out;
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_queue_pop(q, &out, 5000), -GP_E_SHUTTING_DOWN);
    assert_true(gp_mono_ms() - t0 < 1000);
}

static void test_holds_by_id(void **state)
{
    gp_queue_t *q = *state;
    push(q, "ready", 5, 1, 0);
    push(q, "later", 5, 1, gp_now_ms() + 60000);
    push(q, "ready", 5, 2, 0); /* a duplicate counts once */
    const char *ids[4] = {"later", "gone", "ready", "popped"};
    push(q, "popped", 9, 1, 0);
    expect_pop(q, "popped");
    unsigned char where[4] = {9, 9, 9, 9};
    assert_int_equal(gp_queue_holds(q, ids, 4, where), 0);
    assert_int_equal(where[0], GP_HELD_QUEUED);
    assert_int_equal(where[1], GP_HELD_NONE);
    assert_int_equal(where[2], GP_HELD_QUEUED);
    assert_int_equal(where[3], GP_HELD_NONE); /* the memory queue forgets what it hands out */
    assert_int_equal(gp_queue_holds(q, ids, 0, where), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_depth, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_priority_order, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_depth_by_priority, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_fifo_within_priority, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_many_items_ordered, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_fair_among_owners, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_pop_timeout, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_delayed_items, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_delayed_order, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_push_wakes_blocked_pop, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_delayed_push_rearms_blocked_pop, open_queue,
                                        close_queue),
        cmocka_unit_test_setup_teardown(test_shutdown_wakes_blocked_pop, open_queue, close_queue),
        cmocka_unit_test_setup_teardown(test_holds_by_id, open_queue, close_queue),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}

/* test_events_redis.c — the Redis event bus: cross-instance delivery, hot state, cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/util.h"
#include "infra/events/events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct seen {
    pthread_mutex_t lock;
    int events;
    uint64_t last_seq;
    char last_type[16];
    bool terminal;
    char data[4096];
    char canceled[37];
} seen_t;

static void on_event(const gp_event_t *ev, void *arg)
{
    seen_t *s = arg;
    pthread_mutex_lock(&s->lock);
    s->events++;
    s->last_seq = ev->seq;
    snprintf(s->last_type, sizeof s->last_type, "%s", ev->type);
    s->terminal = ev->terminal;
    snprintf(s->data, sizeof s->data, "%.*s", (int)ev->data_len, ev->data);
    pthread_mutex_unlock(&s->lock);
}

static void on_cancel(const char *id, void *arg)
{
    seen_t *s = arg;
    pthread_mutex_lock(&s->lock);
    snprintf(s->canceled, sizeof s->canceled, "%s", id);
    pthread_mutex_unlock(&s->lock);
}

static int wait_events(seen_t *s, int n)
{
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&s->lock);
        int got = s->events;
        pthread_mutex_unlock(&s->lock);
        if (got >= n)
            return got;
        usleep(10000);
    }
    return s->events;
}

static gp_settings_t settings(void)
{
    gp_settings_t s;
    memset(&s, 0, sizeof s);
    s.queue_url = getenv("GENPULSE_TEST_REDIS_URL");
    return s;
}

static void make_task(gp_task_t *t, gp_task_status_t status)
{
    memset(t, 0, sizeof *t);
    gp_uuid7(t->id);
    t->status = status;
    t->attempts = 1;
}

static void test_cross_instance_delivery(void **state)
{
    (void)state;
    if (!getenv("GENPULSE_TEST_REDIS_URL"))
        skip();
    gp_settings_t s = settings();
    char err[256];
    gp_events_t *a = NULL, *b = NULL;
    assert_int_equal(gp_events_open(&a, &s, err, sizeof err), 0);
    assert_int_equal(gp_events_open(&b, &s, err, sizeof err), 0);
    usleep(200000); /* let both subscribers attach */
    seen_t seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    gp_task_t t;
    make_task(&t, GP_TASK_PROCESSING);
    gp_subscription_t *sub = NULL;
    assert_int_equal(gp_events_subscribe(b, t.id, on_event, &seen, &sub), 0);

    assert_int_equal(gp_events_publish_status(a, &t, true), 0);
    assert_int_equal(gp_events_publish_progress(a, &t, 40, "step 2/5"), 0);
    assert_int_equal(wait_events(&seen, 2), 2);
    assert_string_equal(seen.last_type, "progress");
    assert_int_equal(seen.last_seq, 2);
    assert_non_null(strstr(seen.data, "\"progress\":40"));
    assert_non_null(strstr(seen.data, "step 2/5"));

    gp_hot_state_t hot;
    assert_int_equal(gp_events_get_hot(b, t.id, &hot), 0);
    assert_int_equal(hot.progress, 40);
    assert_string_equal(hot.step, "step 2/5");
    assert_int_equal(hot.seq, 2);

    t.status = GP_TASK_SUCCEEDED;
    assert_int_equal(gp_events_publish_status(a, &t, false), 0);
    assert_int_equal(wait_events(&seen, 3), 3);
    assert_true(seen.terminal);
    assert_non_null(strstr(seen.data, "\"progress\":100"));

    gp_events_unsubscribe(b, sub);
    t.status = GP_TASK_PROCESSING;
    assert_int_equal(gp_events_publish_progress(a, &t, 50, NULL), 0);
    usleep(100000);
    assert_int_equal(seen.events, 3); /* nothing after unsubscribe */

    gp_task_t other;
    make_task(&other, GP_TASK_PENDING);
    assert_int_equal(gp_events_get_hot(a, other.id, &hot), -GP_E_NOT_FOUND);

    assert_int_equal(gp_events_on_cancel(b, on_cancel, &seen), 0);
    assert_int_equal(gp_events_publish_cancel(a, other.id), 0);
    for (int i = 0; i < 300 && !seen.canceled[0]; i++)
        usleep(10000);
    assert_string_equal(seen.canceled, other.id);
    gp_events_on_cancel(b, NULL, NULL);
    gp_events_close(a);
    gp_events_close(b);
}

static void test_unreachable(void **state)
{
    (void)state;
    gp_settings_t s;
    memset(&s, 0, sizeof s);
    s.queue_url = "redis://127.0.0.1:1/0";
    char err[256] = "";
    gp_events_t *e = NULL;
    assert_int_equal(gp_events_open(&e, &s, err, sizeof err), -GP_E_UNAVAILABLE);
    assert_non_null(strstr(err, "cannot connect"));
    s.queue_url = "redis://:nope";
    assert_int_not_equal(gp_events_open(&e, &s, err, sizeof err), 0);
}

int main(void)
{
    if (!getenv("GENPULSE_TEST_REDIS_URL"))
        print_message("GENPULSE_TEST_REDIS_URL unset: Redis tests skipped\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_instance_delivery),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

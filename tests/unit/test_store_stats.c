/*
 * test_store_stats.c — the dashboard's store queries: the bucket aggregator (stats.c) on
 * hand-made rows, then the stats entry and the search filters of list() on the SQLite
 * store and, when GENPULSE_TEST_PG_URL is set, on the PostgreSQL store (same checks).
 * Tasks are written with apply_batch directly (one thread); times are far in the past and
 * owners are unique per run, so other tests' rows never fall in a window.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/util.h"
#include "infra/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1000000000000LL /* 2001-09-09: no real task is this old */
#define MIN 60000LL

static char g_empty[1];
static char g_normal[] = "normal";

/* ---------------------------------------------------------------- the aggregator */

static void test_aggregator_buckets(void **state)
{
    (void)state;
    gp_stats_query_t q = {.since_ms = T0, .bucket_ms = MIN, .n_buckets = 4};
    gp_stats_acc_t *a = gp_stats_begin(&q);
    /* created in bucket 0, started in 1 (wait 90 s), succeeded in 2 */
    gp_stats_add(a, T0 + 10000, T0 + 100000, T0 + 130000, GP_TASK_SUCCEEDED);
    /* created before the window, still pending */
    gp_stats_add(a, T0 - 5 * MIN, 0, 0, GP_TASK_PENDING);
    /* created in 1, started at once (wait 1 s), failed in 3 */
    gp_stats_add(a, T0 + MIN + 1000, T0 + MIN + 2000, T0 + 3 * MIN + 1, GP_TASK_FAILED);
    /* canceled while pending: created in 0, canceled in 1 */
    gp_stats_add(a, T0 + 1, 0, T0 + MIN + 5, GP_TASK_CANCELED);
    /* started in 1 too, wait 3 s; still running */
    gp_stats_add(a, T0 + MIN + 10000, T0 + MIN + 13000, 0, GP_TASK_PROCESSING);
    gp_stats_bucket_t b[4];
    gp_stats_finish(a, b);
    assert_int_equal(b[0].start_ms, T0);
    assert_int_equal(b[3].start_ms, T0 + 3 * MIN);
    assert_int_equal(b[0].created, 2);
    assert_int_equal(b[1].created, 2);
    assert_int_equal(b[2].succeeded, 1);
    assert_int_equal(b[3].failed, 1);
    assert_int_equal(b[1].canceled, 1);
    assert_int_equal(b[1].started, 3);
    assert_int_equal(b[1].wait_p50_ms, 3000); /* of 1 s, 3 s, 90 s */
    assert_true(b[1].wait_avg_ms > 31332 && b[1].wait_avg_ms < 31334);
    /* at the end of bucket 0: the old one, the first (not started), the canceled one */
    assert_int_equal(b[0].pending, 3);
    assert_int_equal(b[0].processing, 0);
    /* end of 1: only the old one pends; first, second and fifth are running */
    assert_int_equal(b[1].pending, 1);
    assert_int_equal(b[1].processing, 3);
    assert_int_equal(b[2].processing, 2); /* the first finished inside bucket 2 */
    assert_int_equal(b[3].processing, 1); /* the second failed inside 3 */
    assert_int_equal(b[3].pending, 1);
    assert_int_equal(b[0].started, 0);
    assert_int_equal(b[0].wait_p50_ms, 0);
}

static void test_aggregator_edges(void **state)
{
    (void)state;
    gp_stats_query_t q = {.since_ms = T0, .bucket_ms = MIN, .n_buckets = 2};
    gp_stats_acc_t *a = gp_stats_begin(&q);
    gp_stats_add(a, T0 + 2 * MIN, 0, 0, GP_TASK_PENDING);     /* at the window's end: outside */
    gp_stats_add(a, T0 + MIN, 0, 0, GP_TASK_PENDING);         /* exactly at bucket 1's start */
    gp_stats_add(a, T0 - 1, T0 + MIN, 0, GP_TASK_PROCESSING); /* starts at bucket 0's end */
    gp_stats_bucket_t b[2];
    gp_stats_finish(a, b);
    assert_int_equal(b[0].created + b[1].created, 1);
    assert_int_equal(b[1].created, 1);
    /* a state entered exactly at a bucket's end counts at that end (the instant belongs
     * to the next bucket's events, though) */
    assert_int_equal(b[0].pending, 1);
    assert_int_equal(b[0].processing, 1);
    assert_int_equal(b[1].pending, 2); /* and the one created at the window's end */
    assert_int_equal(b[1].started, 1);
    /* empty: all zero */
    a = gp_stats_begin(&q);
    gp_stats_finish(a, b);
    assert_int_equal(b[1].pending + b[1].created + b[1].wait_p50_ms, 0);
}

/* ---------------------------------------------------------------- the stores */

typedef struct fixture {
    char dir[64];
    gp_settings_t settings;
    gp_store_t *store;
    char owner[37], other[37];
} fixture_t;

static int open_fixture(void **state, const char *url)
{
    gp_log_setup(GP_LOG_WARN, false);
    fixture_t *f = gp_xcalloc(1, sizeof *f);
    gp_settings_t *s = &f->settings;
    s->host = s->queue_url = s->storage_url = s->public_url = g_empty;
    s->log_level = s->log_format = g_empty;
    s->sqlite_synchronous = g_normal;
    s->commit_batch_max = 64;
    if (url) {
        s->database_url = (char *)url;
        s->data_dir = g_empty;
    } else {
        snprintf(f->dir, sizeof f->dir, "/tmp/gp-test-stats-XXXXXX");
        if (!mkdtemp(f->dir)) {
            free(f);
            return -1;
        }
        s->database_url = g_empty;
        s->data_dir = f->dir;
    }
    char err[512] = "";
    if (gp_store_open(&f->store, s, err, sizeof err) != 0 ||
        gp_store_migrate(f->store, err, sizeof err) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return -1;
    }
    gp_uuid7(f->owner);
    gp_uuid7(f->other);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    return open_fixture(state, NULL);
}

static int setup_pg(void **state)
{
    const char *url = getenv("GENPULSE_TEST_PG_URL");
    if (!url || !*url) {
        *state = NULL;
        return 0;
    }
    return open_fixture(state, url);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    gp_store_close(f->store);
    if (f->dir[0])
        gp_rmtree(f->dir);
    free(f);
    return 0;
}

/* Writes a task that was created at `created`, claimed at `started` (0 = never) and ended
 * `end` at `completed` (0 = not ended). Returns its id in id. */
static void put_task(fixture_t *f, const char *owner, const char *type, const char *provider,
                     const char *prompt, int64_t created, int64_t started, int64_t completed,
                     gp_task_status_t end, const char *error_code, char id[37])
{
    gp_task_t t = {0};
    gp_uuid7(t.id);
    memcpy(id, t.id, 37);
    snprintf(t.owner, sizeof t.owner, "%s", owner);
    t.task_type = gp_xstrdup(type);
    t.provider = gp_xstrdup(provider);
    t.status = GP_TASK_PENDING;
    t.params = json_pack("{s:s, s:i, s:s}", "prompt", prompt, "width", 64, "provider", provider);
    t.max_retries = 0;
    t.created_at = created;
    gp_store_op_t op = {.kind = GP_OP_CREATE, .task = &t}, *ops[1] = {&op};
    assert_int_equal(gp_store_apply_batch(f->store, ops, 1), 0);
    assert_int_equal(op.result, 0);
    gp_task_clear(&t);
    if (started) {
        gp_task_t claimed = {0};
        gp_store_op_t c = {.kind = GP_OP_CLAIM, .task = &claimed, .claim_started_at = started};
        memcpy(c.cancel_id, id, 37);
        ops[0] = &c;
        assert_int_equal(gp_store_apply_batch(f->store, ops, 1), 0);
        assert_int_equal(c.result, 0);
        gp_task_clear(&claimed);
    }
    if (completed) {
        gp_store_op_t tr = {.kind = GP_OP_TRANSITION,
                            .tr = {.from_status = started ? GP_TASK_PROCESSING : GP_TASK_PENDING,
                                   .from_attempts = started ? 1 : 0,
                                   .to_status = end,
                                   .to_attempts = started ? 1 : 0,
                                   .completed_at = completed,
                                   .error_code = error_code,
                                   .error_message = error_code ? "it broke" : NULL,
                                   .known_free = true}};
        memcpy(tr.tr.id, id, 37);
        ops[0] = &tr;
        assert_int_equal(gp_store_apply_batch(f->store, ops, 1), 0);
        assert_int_equal(tr.result, 0);
    }
}

static void test_stats_from_store(void **state)
{
    fixture_t *f = *state;
    if (!f) {
        skip();
        return;
    }
    char id[37];
    put_task(f, f->owner, "text-to-image", "simulator", "a", T0 + 10000, T0 + 100000, T0 + 130000,
             GP_TASK_SUCCEEDED, NULL, id);
    put_task(f, f->owner, "text-to-image", "simulator", "b", T0 - 5 * MIN, 0, 0, GP_TASK_PENDING,
             NULL, id);
    put_task(f, f->owner, "echo", "echo", "c", T0 + MIN + 1000, T0 + MIN + 2000, T0 + 3 * MIN + 1,
             GP_TASK_FAILED, "boom", id);
    /* finished before the window: not selected at all */
    put_task(f, f->owner, "echo", "echo", "d", T0 - 9 * MIN, T0 - 8 * MIN, T0 - 7 * MIN,
             GP_TASK_SUCCEEDED, NULL, id);
    put_task(f, f->other, "echo", "echo", "e", T0 + 1, 0, 0, GP_TASK_PENDING, NULL, id);
    gp_stats_query_t q = {.owner = f->owner, .since_ms = T0, .bucket_ms = MIN, .n_buckets = 4};
    gp_stats_bucket_t b[4];
    assert_int_equal(f->store->vt->stats(f->store, &q, b), 0);
    assert_int_equal(b[0].created, 1);
    assert_int_equal(b[1].created, 1);
    assert_int_equal(b[2].succeeded, 1);
    assert_int_equal(b[3].failed, 1);
    assert_int_equal(b[1].started, 2);
    assert_int_equal(b[1].wait_p50_ms, 1000);
    assert_int_equal(b[0].pending, 2);
    assert_int_equal(b[1].pending, 1);
    assert_int_equal(b[1].processing, 2);
    assert_int_equal(b[3].processing, 0);
    /* the other user's task shows only in its owner's (or everyone's) view */
    q.owner = f->other;
    assert_int_equal(f->store->vt->stats(f->store, &q, b), 0);
    assert_int_equal(b[0].created, 1);
    assert_int_equal(b[1].pending, 1);
    assert_int_equal(b[2].succeeded + b[3].failed, 0);
}

static size_t list_ids(fixture_t *f, gp_task_filter_t *flt, char ids[][37], size_t cap)
{
    gp_task_t rows[16];
    size_t n = 0;
    flt->limit = cap < 16 ? cap : 16;
    assert_int_equal(gp_store_list(f->store, flt, rows, &n), 0);
    for (size_t i = 0; i < n; i++) {
        memcpy(ids[i], rows[i].id, 37);
        gp_task_clear(&rows[i]);
    }
    return n;
}

static void test_list_search_filters(void **state)
{
    fixture_t *f = *state;
    if (!f) {
        skip();
        return;
    }
    char a[37], b[37], c[37], got[16][37];
    put_task(f, f->owner, "text-to-image", "simulator", "A Red Lighthouse", T0, T0 + 1, T0 + 2,
             GP_TASK_FAILED, "provider_timeout", a);
    put_task(f, f->owner, "text-to-image", "openai", "blue sea, calm", T0, 0, 0, GP_TASK_PENDING,
             NULL, b);
    put_task(f, f->other, "echo", "echo", "red herring", T0, T0 + 1, T0 + 2, GP_TASK_FAILED,
             "simulated_failure", c);
    gp_task_filter_t flt = {.owner = f->owner, .status = -1};
    assert_int_equal(list_ids(f, &flt, got, 16), 2);
    flt.id = a;
    assert_int_equal(list_ids(f, &flt, got, 16), 1);
    assert_string_equal(got[0], a);
    flt.id = c; /* another user's id under this owner: nothing */
    assert_int_equal(list_ids(f, &flt, got, 16), 0);
    flt = (gp_task_filter_t){.owner = f->owner, .status = -1, .provider = "openai"};
    assert_int_equal(list_ids(f, &flt, got, 16), 1);
    assert_string_equal(got[0], b);
    flt = (gp_task_filter_t){.owner = f->owner, .status = -1, .error_code = "provider_timeout"};
    assert_int_equal(list_ids(f, &flt, got, 16), 1);
    assert_string_equal(got[0], a);
    /* params text: any top-level value, ASCII case-insensitive, never the keys */
    flt = (gp_task_filter_t){.owner = f->owner, .status = -1, .params_text = "red light"};
    assert_int_equal(list_ids(f, &flt, got, 16), 1);
    assert_string_equal(got[0], a);
    flt.params_text = "sea, CALM";
    assert_int_equal(list_ids(f, &flt, got, 16), 1);
    assert_string_equal(got[0], b);
    flt.params_text = "prompt"; /* a key, not a value */
    assert_int_equal(list_ids(f, &flt, got, 16), 0);
    flt.params_text = "%"; /* no wildcard meaning */
    assert_int_equal(list_ids(f, &flt, got, 16), 0);
    /* every user (admin) with the text: both red ones */
    flt = (gp_task_filter_t){.status = -1, .params_text = "RED", .task_type = NULL};
    flt.error_code = "simulated_failure";
    assert_int_equal(list_ids(f, &flt, got, 16), 1);
    assert_string_equal(got[0], c);
    /* filters combine with status */
    flt = (gp_task_filter_t){.owner = f->owner, .status = GP_TASK_PENDING, .params_text = "red"};
    assert_int_equal(list_ids(f, &flt, got, 16), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregator_buckets),
        cmocka_unit_test(test_aggregator_edges),
        cmocka_unit_test_setup_teardown(test_stats_from_store, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_list_search_filters, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_stats_from_store, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_list_search_filters, setup_pg, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

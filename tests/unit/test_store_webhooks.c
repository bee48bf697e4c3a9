/*
 * test_store_webhooks.c — the webhook outbox of both stores (store.h, "webhooks"): rows
 * written by the claim and the ending transition in their own transaction (and not twice
 * by a replay), endpoints and their types, the default secret, claims with a lease,
 * attempts, 410's disabling, resend and released leases. SQLite always; PostgreSQL when
 * GENPULSE_TEST_PG_URL is set (its tables are dropped first).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "core/webhook.h"
#include "infra/store/store.h"
#include "runtime/committer.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fixture {
    char dir[64];
    gp_settings_t settings;
    gp_store_t *store;
    gp_committer_t *committer;
} fixture_t;

static char g_empty[1];
static char g_normal[] = "normal";
static char *g_pg_url; /* the PostgreSQL run's URL; NULL = SQLite */

static int setup_with(void **state, const char *url)
{
    gp_log_setup(GP_LOG_WARN, false);
    if (url) {
        PGconn *c = PQconnectdb(url);
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            return -1;
        }
        PQclear(PQexec(c, "DROP TABLE IF EXISTS task_attempts, credit_ledger, api_keys, users,"
                          " tasks, schema_migrations, webhook_endpoints, webhook_secrets,"
                          " webhook_deliveries, webhook_attempts CASCADE"));
        PQfinish(c);
    }
    fixture_t *f = gp_xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gp-test-whstore-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    gp_settings_t *s = &f->settings;
    s->host = s->queue_url = s->storage_url = s->public_url = g_empty;
    s->database_url = url ? (char *)url : g_empty;
    s->log_level = s->log_format = g_empty;
    s->data_dir = f->dir;
    s->sqlite_synchronous = g_normal;
    s->commit_batch_max = 64;
    char err[512] = "";
    if (gp_store_open(&f->store, s, err, sizeof err) != 0 ||
        gp_store_migrate(f->store, err, sizeof err) != 0) {
        fprintf(stderr, "store: %s\n", err);
        gp_store_close(f->store);
        gp_rmtree(f->dir);
        free(f);
        return -1;
    }
    f->committer = gp_committer_start(f->store, 64);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup_with(state, NULL);
}

static int setup_pg(void **state)
{
    if (!g_pg_url) {
        *state = NULL;
        return 0;
    }
    return setup_with(state, g_pg_url);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    gp_committer_stop(f->committer);
    gp_store_close(f->store);
    gp_rmtree(f->dir);
    free(f);
    return 0;
}

#define NEED(f)                                                                                    \
    do {                                                                                           \
        if (!(f))                                                                                  \
            skip();                                                                                \
    } while (0)

static void make_task(fixture_t *f, gp_task_t *t, const char *webhook, unsigned events)
{
    memset(t, 0, sizeof *t);
    gp_uuid7(t->id);
    t->task_type = gp_xstrdup("echo");
    t->provider = gp_xstrdup("echo");
    t->params = json_pack("{s:s}", "message", "hi");
    t->max_retries = 1;
    t->created_at = gp_now_ms();
    t->webhook = webhook ? gp_xstrdup(webhook) : NULL;
    t->webhook_events = events;
    gp_store_op_t op = {.kind = GP_OP_CREATE, .task = t};
    assert_int_equal(gp_committer_run_sync(f->committer, &op), 0);
    assert_int_equal(op.webhooks_added, 0);
}

static int claim(fixture_t *f, gp_task_t *t, int *added)
{
    gp_task_t out = {0};
    gp_store_op_t op = {.kind = GP_OP_CLAIM, .task = &out, .claim_started_at = gp_now_ms()};
    snprintf(op.cancel_id, sizeof op.cancel_id, "%s", t->id);
    int rc = gp_committer_run_sync(f->committer, &op);
    *added = op.webhooks_added;
    if (rc == 0) {
        assert_string_equal(out.webhook ? out.webhook : "", t->webhook ? t->webhook : "");
        assert_int_equal(out.webhook_events, t->webhook ? t->webhook_events : 0);
    }
    gp_task_clear(&out);
    return rc;
}

static int finish(fixture_t *f, const char *id, gp_task_status_t to, int *added)
{
    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    snprintf(op.tr.id, sizeof op.tr.id, "%s", id);
    op.tr.from_status = GP_TASK_PROCESSING;
    op.tr.from_attempts = 1;
    op.tr.to_status = to;
    op.tr.to_attempts = 1;
    op.tr.completed_at = gp_now_ms();
    op.tr.error_code = to == GP_TASK_FAILED ? "boom" : NULL;
    op.tr.error_message = to == GP_TASK_FAILED ? "it broke" : NULL;
    op.tr.known_free = true;
    int rc = gp_committer_run_sync(f->committer, &op);
    *added = op.webhooks_added;
    return rc;
}

static void add_endpoint(fixture_t *f, gp_webhook_endpoint_t *e, const char *owner, unsigned types)
{
    memset(e, 0, sizeof *e);
    gp_webhook_id_new("ep_", 24, e->id);
    snprintf(e->owner, sizeof e->owner, "%s", owner);
    e->url = gp_xstrdup("https://example.com/hook");
    gp_webhook_secret_new(e->secret);
    e->event_types = types;
    e->created_at = e->updated_at = gp_now_ms();
    assert_int_equal(f->store->vt->wh_endpoint_create(f->store, e), 0);
}

static size_t deliveries_of(fixture_t *f, const char *task_id, gp_webhook_delivery_t *out,
                            size_t cap)
{
    gp_webhook_filter_t flt = {.task_id = task_id, .limit = cap};
    size_t n = 0;
    assert_int_equal(f->store->vt->wh_delivery_list(f->store, &flt, out, &n), 0);
    return n;
}

static void test_outbox_in_the_transition(void **state)
{
    fixture_t *f = *state;
    NEED(f);
    gp_webhook_endpoint_t ep, other;
    add_endpoint(f, &ep, GP_LOCAL_USER_ID, GP_WH_TYPE_STARTED | GP_WH_TYPE_SUCCEEDED);
    add_endpoint(f, &other, "someone-else", GP_WH_TYPE_ALL); /* not the task's owner */
    gp_task_t t;
    make_task(f, &t, "https://example.com/task", GP_WEBHOOK_EV_START | GP_WEBHOOK_EV_COMPLETED);
    int added = -1;
    assert_int_equal(claim(f, &t, &added), 0);
    assert_int_equal(added, 2); /* the task's webhook + the owner's endpoint */
    assert_int_equal(claim(f, &t, &added), -GP_E_CONFLICT);
    assert_int_equal(added, 0);
    assert_int_equal(finish(f, t.id, GP_TASK_SUCCEEDED, &added), 0);
    assert_int_equal(added, 2);
    assert_int_equal(finish(f, t.id, GP_TASK_SUCCEEDED, &added), -GP_E_CONFLICT); /* a replay */
    assert_int_equal(added, 0);

    gp_webhook_delivery_t d[8];
    size_t n = deliveries_of(f, t.id, d, 8);
    assert_int_equal(n, 4);
    int task_rows = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(d[i].status, "pending");
        assert_string_equal(d[i].owner, GP_LOCAL_USER_ID);
        assert_int_equal(strncmp(d[i].id, "msg_", 4), 0);
        assert_null(d[i].payload);
        if (!d[i].endpoint_id[0]) {
            task_rows++;
            assert_string_equal(d[i].url, "https://example.com/task");
        } else {
            assert_string_equal(d[i].endpoint_id, ep.id);
        }
        gp_webhook_delivery_clear(&d[i]);
    }
    assert_int_equal(task_rows, 2);
    assert_true(d[0].seq > d[3].seq); /* newest first */

    /* A filter without "completed" and an endpoint without the type: nothing at the end. */
    gp_task_t t2;
    make_task(f, &t2, "https://example.com/task2", GP_WEBHOOK_EV_START);
    assert_int_equal(claim(f, &t2, &added), 0);
    assert_int_equal(added, 2);
    assert_int_equal(finish(f, t2.id, GP_TASK_FAILED, &added), 0);
    assert_int_equal(added, 0);
    /* A manual retry (failed → pending, attempts 0) runs it again: a new start. */
    gp_store_op_t retry = {.kind = GP_OP_TRANSITION};
    snprintf(retry.tr.id, sizeof retry.tr.id, "%s", t2.id);
    retry.tr.from_status = GP_TASK_FAILED;
    retry.tr.from_attempts = 1;
    retry.tr.to_status = GP_TASK_PENDING;
    retry.tr.completed_at = -1;
    retry.tr.known_free = true;
    assert_int_equal(gp_committer_run_sync(f->committer, &retry), 0);
    assert_int_equal(retry.webhooks_added, 0);
    struct timespec ms2 = {0, 2000000}; /* a start in another millisecond (the event's key) */
    nanosleep(&ms2, NULL);
    assert_int_equal(claim(f, &t2, &added), 0);
    assert_int_equal(added, 2);
    /* Best-effort events: the task webhook does not take logs; the endpoint does not either. */
    assert_int_equal(
        f->store->vt->wh_enqueue(f->store, t2.id, GP_WH_TYPE_LOGS, gp_now_ms(), &added), 0);
    assert_int_equal(added, 0);
    gp_task_t t3;
    make_task(f, &t3, "https://example.com/task3", GP_WEBHOOK_EV_ALL);
    assert_int_equal(f->store->vt->wh_enqueue(f->store, t3.id, GP_WH_TYPE_LOGS, 1000, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(f->store->vt->wh_enqueue(f->store, t3.id, GP_WH_TYPE_LOGS, 2000, &added), 0);
    assert_int_equal(added, 1);
    /* A cancel of a pending task ends it: task.canceled. */
    gp_task_t t4;
    make_task(f, &t4, "https://example.com/task4", GP_WEBHOOK_EV_COMPLETED);
    gp_store_op_t op = {.kind = GP_OP_CANCEL};
    snprintf(op.cancel_id, sizeof op.cancel_id, "%s", t4.id);
    assert_int_equal(gp_committer_run_sync(f->committer, &op), 0);
    assert_int_equal(op.webhooks_added, 1);
    n = deliveries_of(f, t4.id, d, 8);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_type, "task.canceled");
    gp_webhook_delivery_clear(&d[0]);

    gp_task_clear(&t);
    gp_task_clear(&t2);
    gp_task_clear(&t3);
    gp_task_clear(&t4);
    gp_webhook_endpoint_clear(&ep);
    gp_webhook_endpoint_clear(&other);
}

static void test_claim_record_resend(void **state)
{
    fixture_t *f = *state;
    NEED(f);
    gp_store_t *st = f->store;
    gp_webhook_endpoint_t ep;
    add_endpoint(f, &ep, GP_LOCAL_USER_ID, GP_WH_TYPE_SUCCEEDED);
    gp_task_t t;
    make_task(f, &t, NULL, 0);
    int added;
    assert_int_equal(claim(f, &t, &added), 0);
    assert_int_equal(added, 0);
    assert_int_equal(finish(f, t.id, GP_TASK_SUCCEEDED, &added), 0);
    assert_int_equal(added, 1);

    int64_t now = gp_now_ms() + 10;
    gp_webhook_delivery_t d[4];
    size_t n = 0;
    assert_int_equal(st->vt->wh_claim(st, now, 20000, d, 4, &n), 0);
    assert_int_equal(n, 1);
    char id[GP_WH_ID_LEN];
    snprintf(id, sizeof id, "%s", d[0].id);
    assert_string_equal(d[0].event_type, "task.succeeded");
    gp_webhook_delivery_clear(&d[0]);
    size_t again = 9;
    assert_int_equal(st->vt->wh_claim(st, now, 20000, d, 4, &again), 0);
    assert_int_equal(again, 0); /* leased */
    assert_int_equal(st->vt->wh_set_payload(st, id, "{\"a\":1}"), 0);
    assert_int_equal(st->vt->wh_set_payload(st, id, "{\"b\":2}"), 0); /* kept: rendered once */

    gp_webhook_attempt_t a = {
        .attempt = 1, .started_at = now, .duration_ms = 3, .status_code = 500};
    snprintf(a.error, sizeof a.error, "HTTP 500");
    snprintf(a.response, sizeof a.response, "oops");
    gp_webhook_outcome_t o = {.status = "pending", .next_attempt_at = now - 1};
    assert_int_equal(st->vt->wh_record(st, id, &a, &o), 0);
    assert_int_equal(st->vt->wh_claim(st, now, 20000, d, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].payload, "{\"a\":1}");
    assert_int_equal(d[0].attempts, 1);
    gp_webhook_delivery_clear(&d[0]);
    /* 410: failed, and the endpoint disabled. */
    gp_webhook_attempt_t b = {.attempt = 2, .started_at = now, .status_code = 410};
    gp_webhook_outcome_t gone = {
        .status = "failed", .disable_endpoint = true, .reason = "410 Gone from the endpoint"};
    assert_int_equal(st->vt->wh_record(st, id, &b, &gone), 0);
    gp_webhook_endpoint_t got;
    assert_int_equal(st->vt->wh_endpoint_get(st, ep.id, &got), 0);
    assert_true(got.disabled);
    assert_string_equal(got.disabled_reason, "410 Gone from the endpoint");
    gp_webhook_endpoint_clear(&got);
    gp_webhook_delivery_t one;
    assert_int_equal(st->vt->wh_delivery_get(st, id, &one), 0);
    assert_string_equal(one.status, "failed");
    assert_int_equal(one.attempts, 2);
    assert_int_equal(one.last_status_code, 410);
    assert_true(one.completed_at > 0);
    gp_webhook_delivery_clear(&one);
    gp_webhook_attempt_t at[4];
    assert_int_equal(st->vt->wh_attempts_list(st, id, at, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(at[0].status_code, 500);
    assert_string_equal(at[0].response, "oops");
    assert_int_equal(at[1].status_code, 410);

    /* Resend: due now, a new round. A lease a dead process left is released. */
    assert_int_equal(st->vt->wh_resend(st, id, now), 0);
    assert_int_equal(st->vt->wh_resend(st, "msg_none", now), -GP_E_NOT_FOUND);
    assert_int_equal(st->vt->wh_claim(st, now, 20000, d, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].round_start, 2);
    gp_webhook_delivery_clear(&d[0]);
    assert_int_equal(st->vt->wh_release_leases(st), 0);
    assert_int_equal(st->vt->wh_claim(st, gp_now_ms() + 10, 20000, d, 4, &n), 0);
    assert_int_equal(n, g_pg_url && f->settings.database_url != g_empty ? 0 : 1);
    for (size_t i = 0; i < n; i++)
        gp_webhook_delivery_clear(&d[i]);
    gp_task_clear(&t);
    gp_webhook_endpoint_clear(&ep);
}

static void test_endpoints_and_secret(void **state)
{
    fixture_t *f = *state;
    NEED(f);
    gp_store_t *st = f->store;
    gp_webhook_endpoint_t e;
    add_endpoint(f, &e, "u1", GP_WH_TYPE_ALL);
    gp_webhook_endpoint_t rows[4];
    size_t n = 0;
    assert_int_equal(st->vt->wh_endpoint_list(st, "u1", rows, 4, &n), 0);
    assert_int_equal(n, 1);
    gp_webhook_endpoint_clear(&rows[0]);
    assert_int_equal(st->vt->wh_endpoint_list(st, "u2", rows, 4, &n), 0);
    assert_int_equal(n, 0);
    free(e.url);
    e.url = gp_xstrdup("https://example.org/new");
    e.description = gp_xstrdup("desc");
    assert_int_equal(st->vt->wh_endpoint_update(st, &e), 0);
    gp_webhook_endpoint_t got;
    assert_int_equal(st->vt->wh_endpoint_get(st, e.id, &got), 0);
    assert_string_equal(got.url, "https://example.org/new");
    assert_string_equal(got.description, "desc");
    assert_string_equal(got.secret, e.secret);
    gp_webhook_endpoint_clear(&got);
    assert_int_equal(st->vt->wh_endpoint_delete(st, e.id), 0);
    assert_int_equal(st->vt->wh_endpoint_delete(st, e.id), -GP_E_NOT_FOUND);
    assert_int_equal(st->vt->wh_endpoint_get(st, e.id, &got), -GP_E_NOT_FOUND);
    gp_webhook_endpoint_clear(&e);

    char a[GP_WH_SECRET_LEN], b[GP_WH_SECRET_LEN], c1[GP_WH_SECRET_LEN], c2[GP_WH_SECRET_LEN];
    gp_webhook_secret_new(c1);
    gp_webhook_secret_new(c2);
    assert_int_equal(st->vt->wh_default_secret(st, "u1", c1, a), 0);
    assert_string_equal(a, c1);
    assert_int_equal(st->vt->wh_default_secret(st, "u1", c2, b), 0);
    assert_string_equal(b, c1); /* stable */
    assert_int_equal(st->vt->wh_default_secret(st, "u2", c2, b), 0);
    assert_string_equal(b, c2);
}

int main(void)
{
    g_pg_url = getenv("GENPULSE_TEST_PG_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox_in_the_transition, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_claim_record_resend, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints_and_secret, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_in_the_transition, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_claim_record_resend, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints_and_secret, setup_pg, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

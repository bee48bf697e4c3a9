/*
 * test_store_pg.c — the PostgreSQL store through gp_store_open() (database_url from
 * GENPULSE_TEST_PG_URL; every test is skipped when it is unset), mirroring test_store.c:
 * migrations, create, idempotency, compare-and-set transitions, claim, cancel, keyset lists
 * and the unfinished scan, plus what only a client/server store has: pipelined batches, a
 * batch that fails as a whole on an SQL error, a key held by a concurrent transaction, and a
 * lost connection (the store reconnects by itself).
 *
 * Identity (migration 2): users and API keys, task owners and per-owner idempotency keys,
 * and the upgrade of a version-1 database. Credits (migration 2 too): reserve on create,
 * capture, release, reserve again, each exactly once; grants and the ledger; and two
 * stores (two gateways) spending one balance at once, or crossing two users' rows.
 *
 * The group setup drops the tables; each test then opens + migrates and empties `tasks`,
 * `credit_ledger`, `api_keys` and `users` (all but the built-in user, whose balance it
 * zeroes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/committer.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fixture {
    gp_settings_t settings;
    gp_store_t *store;
    gp_committer_t *committer;
} fixture_t;

#define DROP_ALL                                                                                   \
    "DROP TABLE IF EXISTS task_attempts, credit_ledger, api_keys, users, tasks, schema_migrations" \
    ", webhook_endpoints, webhook_secrets, webhook_deliveries, webhook_attempts CASCADE"

static const char *g_url; /* NULL: skip everything */
static char g_empty[1];
static char g_normal[] = "normal";

/* ---- a raw libpq connection for checks behind the store's back ---- */

static PGconn *raw_connect(void)
{
    PGconn *c = PQconnectdb(g_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "raw connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

/* Runs sql on c; returns true when it succeeded. */
static bool raw_exec_on(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "raw exec (%s): %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static bool raw_exec(const char *sql)
{
    PGconn *c = raw_connect();
    bool ok = c && raw_exec_on(c, sql);
    PQfinish(c);
    return ok;
}

/* First column of the first row as an integer (-1 on error or no row). */
static long long raw_int(const char *sql)
{
    PGconn *c = raw_connect();
    long long v = -1;
    if (c) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

/* ---- fixture ---- */

static int open_store(fixture_t *f)
{
    char err[512] = "";
    if (gp_store_open(&f->store, &f->settings, err, sizeof err) != 0) {
        fprintf(stderr, "gp_store_open: %s\n", err);
        return -1;
    }
    if (gp_store_migrate(f->store, err, sizeof err) != 0) {
        fprintf(stderr, "gp_store_migrate: %s\n", err);
        gp_store_close(f->store);
        f->store = NULL;
        return -1;
    }
    f->committer = gp_committer_start(f->store, 64);
    return 0;
}

static void close_store(fixture_t *f)
{
    gp_committer_stop(f->committer);
    f->committer = NULL;
    gp_store_close(f->store);
    f->store = NULL;
}

static int group_setup(void **state)
{
    (void)state;
    gp_log_setup(GP_LOG_WARN, false);
    g_url = getenv("GENPULSE_TEST_PG_URL");
    if (g_url && !*g_url)
        g_url = NULL;
    if (!g_url) {
        printf("GENPULSE_TEST_PG_URL is not set: skipping the PostgreSQL store tests\n");
        return 0;
    }
    return raw_exec(DROP_ALL) ? 0 : -1;
}

static int setup(void **state)
{
    if (!g_url) {
        *state = NULL;
        return 0;
    }
    fixture_t *f = gp_xcalloc(1, sizeof *f);
    gp_settings_t *s = &f->settings;
    s->host = s->queue_url = s->storage_url = s->public_url = g_empty;
    s->log_level = s->log_format = g_empty;
    s->database_url = (char *)g_url;
    s->data_dir = g_empty;
    s->sqlite_synchronous = g_normal;
    s->commit_batch_max = 64;
    if (open_store(f) != 0 ||
        !raw_exec(
            "TRUNCATE tasks, credit_ledger, task_attempts, webhook_endpoints, webhook_secrets,"
            " webhook_deliveries, webhook_attempts RESTART IDENTITY; DELETE FROM api_keys;"
            " DELETE FROM users WHERE id <> '" GP_LOCAL_USER_ID "';"
            " UPDATE users SET credits = 0, reserved = 0")) {
        if (f->store)
            close_store(f);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    /* Leave no key behind: a later gateway on this database would then require keys. */
    raw_exec("DELETE FROM api_keys; DELETE FROM users WHERE id <> '" GP_LOCAL_USER_ID "'");
    close_store(f);
    free(f);
    return 0;
}

#define FIXTURE(state)                                                                             \
    fixture_t *f = *(state);                                                                       \
    if (!f)                                                                                        \
        skip();

/* ---- helpers (as in test_store.c) ---- */

/* A new pending task (caller clears). */
static void make_task(gp_task_t *t, const char *task_type, const char *key, int priority)
{
    memset(t, 0, sizeof *t);
    gp_uuid7(t->id);
    t->task_type = gp_xstrdup(task_type);
    t->provider = gp_xstrdup(!strcmp(task_type, "text-to-image") ? "simulator" : "echo");
    t->status = GP_TASK_PENDING;
    t->params = json_pack("{s:s, s:i}", "prompt", "a lighthouse", "width", 512);
    t->max_retries = 2;
    t->priority = priority;
    t->idempotency_key = key ? gp_xstrdup(key) : NULL;
    t->created_at = gp_now_ms();
}

static int create(fixture_t *f, gp_task_t *t, bool *replayed)
{
    gp_store_op_t op = {.kind = GP_OP_CREATE, .task = t};
    int rc = gp_committer_run_sync(f->committer, &op);
    if (replayed)
        *replayed = op.replayed;
    return rc;
}

static int transition(fixture_t *f, const char *id, gp_task_status_t from, int from_attempts,
                      gp_task_status_t to, int to_attempts)
{
    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    snprintf(op.tr.id, sizeof op.tr.id, "%s", id);
    op.tr.from_status = from;
    op.tr.from_attempts = from_attempts;
    op.tr.to_status = to;
    op.tr.to_attempts = to_attempts;
    if (to == GP_TASK_PROCESSING)
        op.tr.started_at = gp_now_ms();
    if (gp_task_status_terminal(to))
        op.tr.completed_at = gp_now_ms();
    return gp_committer_run_sync(f->committer, &op);
}

static int cancel(fixture_t *f, const char *id, gp_cancel_outcome_t *outcome)
{
    gp_store_op_t op = {.kind = GP_OP_CANCEL};
    snprintf(op.cancel_id, sizeof op.cancel_id, "%s", id);
    op.cancel_outcome = (gp_cancel_outcome_t)-1;
    int rc = gp_committer_run_sync(f->committer, &op);
    *outcome = op.cancel_outcome;
    return rc;
}

static size_t list(fixture_t *f, int status, const char *task_type, int64_t before_seq,
                   size_t limit, gp_task_t *out)
{
    gp_task_filter_t filt = {
        .status = status, .task_type = task_type, .before_seq = before_seq, .limit = limit};
    size_t n = 99999;
    assert_int_equal(gp_store_list(f->store, &filt, out, &n), 0);
    assert_true(n <= limit);
    return n;
}

static void clear_all(gp_task_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gp_task_clear(&v[i]);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- tests ---- */

static void test_migrate_idempotent(void **state)
{
    FIXTURE(state);
    long long rows = raw_int("SELECT COUNT(*) FROM schema_migrations");
    long long version = raw_int("SELECT MAX(version) FROM schema_migrations");
    assert_true(rows >= 1);
    assert_int_equal(rows, version);

    gp_task_t t;
    make_task(&t, "echo", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);

    /* every start migrates again: reopen twice more */
    for (int i = 0; i < 2; i++) {
        close_store(f);
        assert_int_equal(open_store(f), 0); /* open + migrate */
        assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_migrations"), rows);
        assert_int_equal(raw_int("SELECT MAX(version) FROM schema_migrations"), version);
        gp_task_t got;
        assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
        assert_string_equal(got.id, t.id);
        assert_int_equal(got.seq, t.seq);
        gp_task_clear(&got);
        gp_task_t more;
        make_task(&more, "echo", NULL, 0);
        assert_int_equal(create(f, &more, NULL), 0);
        assert_true(more.seq > t.seq);
        gp_task_clear(&more);
    }
    gp_task_clear(&t);
}

static void test_migrate_twice_same_handle(void **state)
{
    FIXTURE(state);
    char err[512] = "";
    /* statements are prepared after a batch; migrating again must neither prepare them a
     * second time ("already exists") nor lose them */
    gp_task_t t;
    make_task(&t, "echo", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    gp_task_t u;
    make_task(&u, "echo", NULL, 0);
    assert_int_equal(create(f, &u, NULL), 0);
    assert_true(u.seq > t.seq);
    gp_task_clear(&t);
    gp_task_clear(&u);
}

/* Many processes start at once on an empty database: each migrates through its own store
 * (own connections); every one succeeds and each migration is applied once. */
#define N_MIGRATORS 6

typedef struct migrator {
    gp_settings_t *settings;
    int rc;
    char err[512];
} migrator_t;

static void *migrate_thread(void *arg)
{
    migrator_t *m = arg;
    gp_store_t *st = NULL;
    m->rc = gp_store_open(&st, m->settings, m->err, sizeof m->err);
    if (m->rc == 0) {
        m->rc = gp_store_migrate(st, m->err, sizeof m->err);
        gp_store_close(st);
    }
    return NULL;
}

static void test_migrate_concurrent_start(void **state)
{
    FIXTURE(state);
    long long version = raw_int("SELECT MAX(version) FROM schema_migrations");
    close_store(f);
    assert_true(raw_exec(DROP_ALL));
    migrator_t m[N_MIGRATORS];
    pthread_t th[N_MIGRATORS];
    for (int i = 0; i < N_MIGRATORS; i++) {
        m[i] = (migrator_t){.settings = &f->settings};
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &m[i]), 0);
    }
    for (int i = 0; i < N_MIGRATORS; i++) {
        pthread_join(th[i], NULL);
        if (m[i].rc != 0)
            fprintf(stderr, "migrator %d: %s\n", i, m[i].err);
        assert_int_equal(m[i].rc, 0);
    }
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_migrations"), version);
    assert_int_equal(raw_int("SELECT MAX(version) FROM schema_migrations"), version);
    assert_int_equal(open_store(f), 0);
    gp_task_t t;
    make_task(&t, "echo", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);
    gp_task_clear(&t);
}

static void test_open_unreachable(void **state)
{
    (void)state;
    if (!g_url)
        skip();
    gp_settings_t s = {0};
    s.host = s.queue_url = s.storage_url = s.public_url = s.log_level = s.log_format = g_empty;
    s.data_dir = g_empty;
    s.sqlite_synchronous = g_normal;
    char url[] = "postgresql://genpulse:secret-pw@127.0.0.1:1/nothing";
    s.database_url = url;
    gp_store_t *st = NULL;
    char err[512] = "";
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_store_open(&st, &s, err, sizeof err), -GP_E_UNAVAILABLE);
    assert_true(gp_mono_ms() - t0 < 7000);
    assert_null(st);
    assert_non_null(strstr(err, "cannot connect"));
    assert_null(strstr(err, "secret-pw"));
}

static void test_create_and_get(void **state)
{
    FIXTURE(state);
    gp_task_t t;
    make_task(&t, "text-to-image", NULL, 7);
    char id[37];
    memcpy(id, t.id, sizeof id);
    int64_t created = t.created_at;
    bool replayed = true;
    assert_int_equal(create(f, &t, &replayed), 0);
    assert_false(replayed);
    assert_true(t.seq > 0);
    assert_string_equal(t.id, id);

    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, id, &got), 0);
    assert_string_equal(got.id, id);
    assert_int_equal(got.seq, t.seq);
    assert_string_equal(got.task_type, "text-to-image");
    assert_string_equal(got.provider, "simulator");
    assert_int_equal(got.status, GP_TASK_PENDING);
    assert_true(json_equal(got.params, t.params));
    assert_null(got.result);
    assert_null(got.error_code);
    assert_null(got.error_message);
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.max_retries, 2);
    assert_int_equal(got.priority, 7);
    assert_false(got.cancel_requested);
    assert_null(got.idempotency_key);
    assert_int_equal(got.created_at, created);
    assert_int_equal(got.started_at, 0);
    assert_int_equal(got.completed_at, 0);
    assert_int_equal(got.not_before, 0);
    assert_int_equal(got.price, 0);
    assert_int_equal(got.charge_round, 0);
    gp_task_clear(&got);

    gp_task_t t2;
    make_task(&t2, "echo", NULL, 0);
    assert_int_equal(create(f, &t2, NULL), 0);
    assert_true(t2.seq > t.seq);

    char other[37];
    gp_uuid7(other);
    assert_int_equal(gp_store_get(f->store, other, &got), -GP_E_NOT_FOUND);
    assert_int_equal(gp_store_get(f->store, "not-a-uuid", &got), -GP_E_NOT_FOUND);

    /* the same id twice (no idempotency key) is a conflict, not a second row */
    gp_task_t dup;
    make_task(&dup, "echo", NULL, 0);
    memcpy(dup.id, id, sizeof dup.id);
    assert_int_equal(create(f, &dup, NULL), -GP_E_CONFLICT);
    gp_task_clear(&dup);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 2);

    /* JSON of all kinds survives jsonb (which reorders keys; jansson compares by value) */
    gp_task_t j;
    make_task(&j, "echo", NULL, 0);
    json_decref(j.params);
    j.params = json_pack("{s:s, s:I, s:f, s:b, s:n, s:[i,s], s:{s:s}}", "text", "héllo \"q\" \\ ✓",
                         "big", (json_int_t)9007199254740993LL, "r", 0.1, "yes", 1, "none", "arr",
                         1, "x", "obj", "k", "v");
    assert_int_equal(create(f, &j, NULL), 0);
    assert_int_equal(gp_store_get(f->store, j.id, &got), 0);
    assert_true(json_equal(got.params, j.params));
    gp_task_clear(&got);
    gp_task_clear(&j);

    gp_task_clear(&t);
    gp_task_clear(&t2);
}

static void test_idempotency_replay(void **state)
{
    FIXTURE(state);
    gp_task_t a;
    make_task(&a, "text-to-image", "client-key-1", 1);
    bool replayed = true;
    assert_int_equal(create(f, &a, &replayed), 0);
    assert_false(replayed);

    gp_task_t b;
    make_task(&b, "echo", "client-key-1", 5);
    char b_id[37];
    memcpy(b_id, b.id, sizeof b_id);
    assert_int_equal(create(f, &b, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(b.id, a.id);
    assert_int_equal(b.seq, a.seq);
    assert_string_equal(b.task_type, "text-to-image");
    assert_int_equal(b.priority, 1);
    assert_string_equal(b.idempotency_key, "client-key-1");
    assert_true(json_equal(b.params, a.params));

    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, b_id, &got), -GP_E_NOT_FOUND);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks WHERE idempotency_key = 'client-key-1'"),
                     1);

    gp_task_t c;
    make_task(&c, "echo", "client-key-2", 0);
    assert_int_equal(create(f, &c, &replayed), 0);
    assert_false(replayed);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 2);

    /* replay of a task that moved on returns its current state */
    assert_int_equal(transition(f, a.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    gp_task_t d;
    make_task(&d, "echo", "client-key-1", 0);
    assert_int_equal(create(f, &d, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(d.id, a.id);
    assert_int_equal(d.status, GP_TASK_PROCESSING);
    assert_int_equal(d.attempts, 1);

    gp_task_clear(&a);
    gp_task_clear(&b);
    gp_task_clear(&c);
    gp_task_clear(&d);
}

static void test_transition_cas(void **state)
{
    FIXTURE(state);
    gp_task_t t;
    make_task(&t, "text-to-image", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);

    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 3, GP_TASK_PROCESSING, 4),
                     -GP_E_CONFLICT);
    assert_int_equal(transition(f, t.id, GP_TASK_PROCESSING, 0, GP_TASK_SUCCEEDED, 0),
                     -GP_E_CONFLICT);
    char other[37];
    gp_uuid7(other);
    assert_int_equal(transition(f, other, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1),
                     -GP_E_CONFLICT);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PENDING);
    assert_int_equal(got.attempts, 0);
    gp_task_clear(&got);

    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1),
                     -GP_E_CONFLICT);
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PROCESSING);
    assert_int_equal(got.attempts, 1);
    assert_true(got.started_at > 0);
    int64_t started = got.started_at;
    gp_task_clear(&got);

    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    memcpy(op.tr.id, t.id, sizeof op.tr.id);
    op.tr.from_status = GP_TASK_PROCESSING;
    op.tr.from_attempts = 1;
    op.tr.to_status = GP_TASK_PENDING;
    op.tr.to_attempts = 1;
    op.tr.not_before = gp_now_ms() + 5000;
    op.tr.error_code = "engine_busy";
    op.tr.error_message = "try later";
    assert_int_equal(gp_committer_run_sync(f->committer, &op), 0);
    assert_int_equal(op.tr.applied_status, GP_TASK_PENDING);
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PENDING);
    assert_int_equal(got.not_before, op.tr.not_before);
    assert_string_equal(got.error_code, "engine_busy");
    assert_string_equal(got.error_message, "try later");
    assert_int_equal(got.started_at, started);
    gp_task_clear(&got);

    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 1, GP_TASK_PROCESSING, 2), 0);
    json_t *result = json_pack("{s:[{s:s}]}", "assets", "url", "http://x/files/a.png");
    gp_store_op_t done = {.kind = GP_OP_TRANSITION};
    memcpy(done.tr.id, t.id, sizeof done.tr.id);
    done.tr.from_status = GP_TASK_PROCESSING;
    done.tr.from_attempts = 2;
    done.tr.to_status = GP_TASK_SUCCEEDED;
    done.tr.to_attempts = 2;
    done.tr.completed_at = gp_now_ms();
    done.tr.result = result;
    assert_int_equal(gp_committer_run_sync(f->committer, &done), 0);
    assert_int_equal(gp_committer_run_sync(f->committer, &done), -GP_E_CONFLICT);
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_SUCCEEDED);
    assert_int_equal(got.attempts, 2);
    assert_true(json_equal(got.result, result));
    assert_null(got.error_code);
    assert_null(got.error_message);
    assert_int_equal(got.completed_at, done.tr.completed_at);
    assert_int_equal(got.not_before, 0);
    gp_task_clear(&got);
    json_decref(result);
    gp_task_clear(&t);
}

/* Finishes a processing task with honor_cancel; returns the op (result, applied_status). */
static gp_store_op_t finish(fixture_t *f, const char *id, int attempts, json_t *result)
{
    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    snprintf(op.tr.id, sizeof op.tr.id, "%s", id);
    op.tr.from_status = GP_TASK_PROCESSING;
    op.tr.from_attempts = attempts;
    op.tr.to_status = GP_TASK_SUCCEEDED;
    op.tr.to_attempts = attempts;
    op.tr.completed_at = gp_now_ms();
    op.tr.result = result;
    op.tr.honor_cancel = true;
    op.tr.applied_status = (gp_task_status_t)-1;
    gp_committer_run_sync(f->committer, &op);
    return op;
}

static void test_honor_cancel(void **state)
{
    FIXTURE(state);
    gp_task_t a, b;
    make_task(&a, "echo", NULL, 0);
    make_task(&b, "echo", NULL, 0);
    assert_int_equal(create(f, &a, NULL), 0);
    assert_int_equal(create(f, &b, NULL), 0);
    assert_int_equal(transition(f, a.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, b.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    gp_cancel_outcome_t out;
    assert_int_equal(cancel(f, a.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);

    json_t *result = json_pack("{s:s}", "text", "done");
    /* wrong attempts: a lost CAS even with a cancel pending */
    gp_store_op_t op = finish(f, a.id, 2, result);
    assert_int_equal(op.result, -GP_E_CONFLICT);
    /* a cancel was requested: the success ends canceled, and the op says so */
    op = finish(f, a.id, 1, result);
    assert_int_equal(op.result, 0);
    assert_int_equal(op.tr.applied_status, GP_TASK_CANCELED);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, a.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_CANCELED);
    assert_string_equal(got.error_code, "canceled");
    assert_string_equal(got.error_message, "canceled by request");
    assert_null(got.result);
    assert_int_equal(got.completed_at, op.tr.completed_at);
    assert_int_equal(got.attempts, 1);
    gp_task_clear(&got);
    /* no cancel requested: succeeded as asked */
    op = finish(f, b.id, 1, result);
    assert_int_equal(op.result, 0);
    assert_int_equal(op.tr.applied_status, GP_TASK_SUCCEEDED);
    assert_int_equal(gp_store_get(f->store, b.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_SUCCEEDED);
    assert_true(json_equal(got.result, result));
    gp_task_clear(&got);
    json_decref(result);
    gp_task_clear(&a);
    gp_task_clear(&b);
}

static void test_claim(void **state)
{
    FIXTURE(state);
    gp_task_t t;
    make_task(&t, "text-to-image", NULL, 3);
    assert_int_equal(create(f, &t, NULL), 0);
    /* a failed attempt left an error and a not_before: the claim clears them */
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    gp_store_op_t back = {.kind = GP_OP_TRANSITION};
    memcpy(back.tr.id, t.id, sizeof back.tr.id);
    back.tr.from_status = GP_TASK_PROCESSING;
    back.tr.from_attempts = 1;
    back.tr.to_status = GP_TASK_PENDING;
    back.tr.to_attempts = 1;
    back.tr.not_before = gp_now_ms() + 1000;
    back.tr.error_code = "engine_busy";
    back.tr.error_message = "later";
    assert_int_equal(gp_committer_run_sync(f->committer, &back), 0);

    gp_task_t claimed = {0};
    gp_store_op_t op = {.kind = GP_OP_CLAIM, .task = &claimed, .claim_started_at = gp_now_ms()};
    memcpy(op.cancel_id, t.id, sizeof op.cancel_id);
    assert_int_equal(gp_committer_run_sync(f->committer, &op), 0);
    assert_string_equal(claimed.id, t.id);
    assert_int_equal(claimed.seq, t.seq);
    assert_int_equal(claimed.status, GP_TASK_PROCESSING);
    assert_int_equal(claimed.attempts, 2);
    assert_int_equal(claimed.started_at, op.claim_started_at);
    assert_int_equal(claimed.not_before, 0);
    assert_null(claimed.error_code);
    assert_null(claimed.error_message);
    assert_int_equal(claimed.priority, 3);
    assert_string_equal(claimed.provider, "simulator");
    assert_true(json_equal(claimed.params, t.params));

    /* a second claim of the same task loses */
    gp_task_t again = {0};
    gp_store_op_t op2 = {.kind = GP_OP_CLAIM, .task = &again, .claim_started_at = gp_now_ms()};
    memcpy(op2.cancel_id, t.id, sizeof op2.cancel_id);
    assert_int_equal(gp_committer_run_sync(f->committer, &op2), -GP_E_CONFLICT);
    /* unknown id too */
    gp_uuid7(op2.cancel_id);
    assert_int_equal(gp_committer_run_sync(f->committer, &op2), -GP_E_CONFLICT);
    gp_task_clear(&again);
    gp_task_clear(&claimed);
    gp_task_clear(&t);
}

static void test_cancel(void **state)
{
    FIXTURE(state);
    gp_task_t p, r, s;
    make_task(&p, "echo", NULL, 0);
    make_task(&r, "echo", NULL, 0);
    make_task(&s, "echo", NULL, 0);
    assert_int_equal(create(f, &p, NULL), 0);
    assert_int_equal(create(f, &r, NULL), 0);
    assert_int_equal(create(f, &s, NULL), 0);
    assert_int_equal(transition(f, r.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, s.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, s.id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1), 0);

    gp_cancel_outcome_t out;
    gp_task_t got;

    assert_int_equal(cancel(f, p.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_DONE);
    assert_int_equal(gp_store_get(f->store, p.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_CANCELED);
    assert_true(got.cancel_requested);
    assert_true(got.completed_at > 0);
    assert_string_equal(got.error_code, "canceled");
    assert_string_equal(got.error_message, "canceled by request");
    gp_task_clear(&got);

    assert_int_equal(cancel(f, r.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);
    assert_int_equal(gp_store_get(f->store, r.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PROCESSING);
    assert_true(got.cancel_requested);
    assert_int_equal(got.completed_at, 0);
    assert_null(got.error_code);
    gp_task_clear(&got);
    assert_int_equal(cancel(f, r.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);

    assert_int_equal(cancel(f, s.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_TOO_LATE);
    assert_int_equal(gp_store_get(f->store, s.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_SUCCEEDED);
    assert_false(got.cancel_requested);
    gp_task_clear(&got);
    assert_int_equal(cancel(f, p.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_TOO_LATE);

    char other[37];
    gp_uuid7(other);
    assert_int_equal(cancel(f, other, &out), -GP_E_NOT_FOUND);

    assert_int_equal(transition(f, p.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1),
                     -GP_E_CONFLICT);

    gp_task_clear(&p);
    gp_task_clear(&r);
    gp_task_clear(&s);
}

#define N_LIST 25

static void test_list_pagination_and_filter(void **state)
{
    FIXTURE(state);
    char ids[N_LIST][37];
    int64_t seqs[N_LIST];
    for (int i = 0; i < N_LIST; i++) {
        gp_task_t t;
        make_task(&t, i % 3 == 0 ? "text-to-image" : "echo", NULL, 0);
        assert_int_equal(create(f, &t, NULL), 0);
        memcpy(ids[i], t.id, sizeof ids[i]);
        seqs[i] = t.seq;
        gp_task_clear(&t);
    }
    for (int i = 0; i < N_LIST; i += 4)
        assert_int_equal(transition(f, ids[i], GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);

    gp_task_t page[10];
    int64_t before = 0;
    int expect = N_LIST - 1;
    size_t total = 0, n;
    do {
        n = list(f, -1, NULL, before, 10, page);
        for (size_t i = 0; i < n; i++, expect--) {
            assert_true(expect >= 0);
            assert_string_equal(page[i].id, ids[expect]);
            assert_int_equal(page[i].seq, seqs[expect]);
            if (i > 0)
                assert_true(page[i].seq < page[i - 1].seq);
        }
        total += n;
        if (n > 0)
            before = page[n - 1].seq;
        clear_all(page, n);
    } while (n == 10);
    assert_int_equal(total, N_LIST);
    assert_int_equal(expect, -1);
    assert_int_equal(list(f, -1, NULL, seqs[0], 10, page), 0);

    size_t processing = 0;
    before = 0;
    do {
        n = list(f, GP_TASK_PROCESSING, NULL, before, 3, page);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(page[i].status, GP_TASK_PROCESSING);
            assert_int_equal(page[i].attempts, 1);
            if (before)
                assert_true(page[i].seq < before);
        }
        processing += n;
        if (n > 0)
            before = page[n - 1].seq;
        clear_all(page, n);
    } while (n == 3);
    assert_int_equal(processing, (N_LIST + 3) / 4);

    n = list(f, GP_TASK_PENDING, NULL, 0, 10, page);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(page[i].status, GP_TASK_PENDING);
    clear_all(page, n);
    assert_int_equal(list(f, GP_TASK_SUCCEEDED, NULL, 0, 10, page), 0);

    gp_task_t big[N_LIST];
    n = list(f, -1, "text-to-image", 0, N_LIST, big);
    assert_int_equal(n, (N_LIST + 2) / 3);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(big[i].task_type, "text-to-image");
    clear_all(big, n);
    n = list(f, GP_TASK_PROCESSING, "text-to-image", 0, N_LIST, big);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(big[i].task_type, "text-to-image");
        assert_int_equal(big[i].status, GP_TASK_PROCESSING);
    }
    assert_int_equal(n, 3);
    clear_all(big, n);
    /* all three filters */
    n = list(f, GP_TASK_PROCESSING, "text-to-image", seqs[24], N_LIST, big);
    assert_int_equal(n, 2); /* i = 0, 12 */
    clear_all(big, n);
    assert_int_equal(list(f, -1, "no-such-type", 0, 10, page), 0);
    assert_int_equal(list(f, -1, NULL, 0, 0, page), 0);

    n = list(f, -1, NULL, 0, 1, page);
    assert_int_equal(n, 1);
    assert_string_equal(page[0].id, ids[N_LIST - 1]);
    clear_all(page, n);
}

typedef struct scan_acc {
    int n;
    char ids[16][37];
    gp_task_status_t status[16];
} scan_acc_t;

static void scan_cb(const gp_task_t *t, void *arg)
{
    scan_acc_t *a = arg;
    if (a->n < 16) {
        memcpy(a->ids[a->n], t->id, 37);
        a->status[a->n] = t->status;
    }
    a->n++;
}

static void test_scan_unfinished(void **state)
{
    FIXTURE(state);
    scan_acc_t acc = {0};
    assert_int_equal(gp_store_scan_unfinished(f->store, scan_cb, &acc), 0);
    assert_int_equal(acc.n, 0);

    gp_task_t t[6];
    for (int i = 0; i < 6; i++) {
        make_task(&t[i], "echo", NULL, 0);
        assert_int_equal(create(f, &t[i], NULL), 0);
    }
    assert_int_equal(transition(f, t[1].id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, t[2].id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, t[2].id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1), 0);
    gp_cancel_outcome_t out;
    assert_int_equal(cancel(f, t[3].id, &out), 0);
    assert_int_equal(out, GP_CANCEL_DONE);
    assert_int_equal(transition(f, t[4].id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, t[4].id, GP_TASK_PROCESSING, 1, GP_TASK_FAILED, 1), 0);

    memset(&acc, 0, sizeof acc);
    assert_int_equal(gp_store_scan_unfinished(f->store, scan_cb, &acc), 0);
    assert_int_equal(acc.n, 3);
    assert_string_equal(acc.ids[0], t[0].id);
    assert_int_equal(acc.status[0], GP_TASK_PENDING);
    assert_string_equal(acc.ids[1], t[1].id);
    assert_int_equal(acc.status[1], GP_TASK_PROCESSING);
    assert_string_equal(acc.ids[2], t[5].id);
    assert_int_equal(acc.status[2], GP_TASK_PENDING);
    for (int i = 0; i < 6; i++)
        gp_task_clear(&t[i]);
}

typedef struct seq_acc {
    int n;
    int64_t last;
    bool ordered;
} seq_acc_t;

static void seq_cb(const gp_task_t *t, void *arg)
{
    seq_acc_t *a = arg;
    if (t->seq <= a->last)
        a->ordered = false;
    a->last = t->seq;
    a->n++;
}

static void test_scan_unfinished_many(void **state)
{
    FIXTURE(state);
    /* more rows than one page of the scan: every unfinished one once, oldest first */
    enum {
        N = 1100
    };
    static gp_task_t t[N];
    static gp_store_op_t ops[N];
    static gp_store_op_t *batch[N];
    for (int i = 0; i < N; i++) {
        make_task(&t[i], "echo", NULL, 0);
        ops[i] = (gp_store_op_t){.kind = GP_OP_CREATE, .task = &t[i]};
        batch[i] = &ops[i];
    }
    assert_int_equal(gp_store_apply_batch(f->store, batch, N / 2), 0);
    assert_int_equal(gp_store_apply_batch(f->store, batch + N / 2, N - N / 2), 0);
    /* every 10th finished */
    gp_store_op_t c[N / 10];
    gp_store_op_t *cb[N / 10];
    for (int i = 0; i < N / 10; i++) {
        c[i] = (gp_store_op_t){.kind = GP_OP_CANCEL};
        memcpy(c[i].cancel_id, t[i * 10].id, sizeof c[i].cancel_id);
        cb[i] = &c[i];
    }
    assert_int_equal(gp_store_apply_batch(f->store, cb, N / 10), 0);
    for (int i = 0; i < N / 10; i++)
        assert_int_equal(c[i].cancel_outcome, GP_CANCEL_DONE);
    seq_acc_t acc = {.ordered = true};
    assert_int_equal(gp_store_scan_unfinished(f->store, seq_cb, &acc), 0);
    assert_int_equal(acc.n, N - N / 10);
    assert_true(acc.ordered);
    for (int i = 0; i < N; i++)
        gp_task_clear(&t[i]);
}

static void test_batch_ops_independent(void **state)
{
    FIXTURE(state);
    gp_task_t a, dup, b;
    make_task(&a, "echo", NULL, 0);
    make_task(&b, "echo", "batch-key", 0);
    make_task(&dup, "echo", NULL, 0);
    memcpy(dup.id, a.id, sizeof dup.id);
    gp_store_op_t ops[5] = {
        {.kind = GP_OP_CREATE, .task = &a},
        {.kind = GP_OP_TRANSITION},
        {.kind = GP_OP_CREATE, .task = &dup},
        {.kind = GP_OP_CREATE, .task = &b},
        {.kind = GP_OP_CANCEL},
    };
    gp_uuid7(ops[1].tr.id);
    ops[1].tr.from_status = GP_TASK_PENDING;
    ops[1].tr.to_status = GP_TASK_PROCESSING;
    ops[1].tr.to_attempts = 1;
    gp_uuid7(ops[4].cancel_id);
    gp_store_op_t *batch[5] = {&ops[0], &ops[1], &ops[2], &ops[3], &ops[4]};
    assert_int_equal(gp_store_apply_batch(f->store, batch, 5), 0);
    assert_int_equal(ops[0].result, 0);
    assert_int_equal(ops[1].result, -GP_E_CONFLICT);
    assert_int_equal(ops[2].result, -GP_E_CONFLICT);
    assert_int_equal(ops[3].result, 0);
    assert_int_equal(ops[4].result, -GP_E_NOT_FOUND);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, a.id, &got), 0);
    assert_string_equal(got.provider, "echo");
    gp_task_clear(&got);
    assert_int_equal(gp_store_get(f->store, b.id, &got), 0);
    gp_task_clear(&got);

    /* two creates with the same key in one batch: one row, the second replays the first */
    gp_task_t c, d;
    make_task(&c, "echo", "same-batch-key", 0);
    make_task(&d, "echo", "same-batch-key", 0);
    gp_store_op_t o2[2] = {{.kind = GP_OP_CREATE, .task = &c}, {.kind = GP_OP_CREATE, .task = &d}};
    gp_store_op_t *b2[2] = {&o2[0], &o2[1]};
    assert_int_equal(gp_store_apply_batch(f->store, b2, 2), 0);
    assert_int_equal(o2[0].result, 0);
    assert_int_equal(o2[1].result, 0);
    assert_false(o2[0].replayed);
    assert_true(o2[1].replayed);
    assert_string_equal(d.id, c.id);
    assert_int_equal(d.seq, c.seq);

    /* create, claim and cancel of one task in one batch see each other, in order */
    gp_task_t e, claimed = {0};
    make_task(&e, "echo", NULL, 0);
    gp_store_op_t o3[3] = {{.kind = GP_OP_CREATE, .task = &e},
                           {.kind = GP_OP_CLAIM, .task = &claimed, .claim_started_at = 42},
                           {.kind = GP_OP_CANCEL}};
    memcpy(o3[1].cancel_id, e.id, sizeof o3[1].cancel_id);
    memcpy(o3[2].cancel_id, e.id, sizeof o3[2].cancel_id);
    gp_store_op_t *b3[3] = {&o3[0], &o3[1], &o3[2]};
    assert_int_equal(gp_store_apply_batch(f->store, b3, 3), 0);
    assert_int_equal(o3[0].result, 0);
    assert_int_equal(o3[1].result, 0);
    assert_int_equal(claimed.attempts, 1);
    assert_int_equal(claimed.started_at, 42);
    assert_int_equal(o3[2].result, 0);
    assert_int_equal(o3[2].cancel_outcome, GP_CANCEL_REQUESTED);

    gp_task_clear(&a);
    gp_task_clear(&b);
    gp_task_clear(&dup);
    gp_task_clear(&c);
    gp_task_clear(&d);
    gp_task_clear(&e);
    gp_task_clear(&claimed);
}

#define N_BATCH 200

static void test_batch_200_creates(void **state)
{
    FIXTURE(state);
    /* 200 creates with ~16 KB of params each in one pipeline (3 MB each way: libpq must
     * read while it writes), every fifth with a key that the batch repeats */
    static gp_task_t t[N_BATCH];
    static gp_store_op_t ops[N_BATCH];
    gp_store_op_t *batch[N_BATCH];
    char *blob = gp_xmalloc(16 * 1024 + 1);
    memset(blob, 'x', 16 * 1024);
    blob[16 * 1024] = '\0';
    for (int i = 0; i < N_BATCH; i++) {
        char key[32];
        snprintf(key, sizeof key, "k-%d", (i % 5 == 0) ? i % 20 : -1);
        make_task(&t[i], "echo", i % 5 == 0 ? key : NULL, i);
        json_object_set_new(t[i].params, "blob", json_string(blob));
        ops[i] = (gp_store_op_t){.kind = GP_OP_CREATE, .task = &t[i]};
        batch[i] = &ops[i];
    }
    free(blob);
    assert_int_equal(gp_store_apply_batch(f->store, batch, N_BATCH), 0);
    int replays = 0;
    for (int i = 0; i < N_BATCH; i++) {
        assert_int_equal(ops[i].result, 0);
        assert_true(t[i].seq > 0);
        if (ops[i].replayed) {
            replays++;
            assert_int_equal(t[i].priority, i % 20); /* the first holder of k-(i%20) */
        }
    }
    /* keys k-0, k-5, k-10, k-15 each used 10 times: 4 rows, 36 replays */
    assert_int_equal(replays, N_BATCH / 5 - 4);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), N_BATCH - replays);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, t[N_BATCH - 1].id, &got), 0);
    assert_true(json_equal(got.params, t[N_BATCH - 1].params));
    gp_task_clear(&got);
    for (int i = 0; i < N_BATCH; i++)
        gp_task_clear(&t[i]);
}

static void test_batch_sql_error_is_atomic(void **state)
{
    FIXTURE(state);
    /* A constraint the statements do not expect turns one op into an SQL error: the whole
     * batch rolls back and reports unavailable, and the next batch works on the same
     * session. */
    assert_true(raw_exec("ALTER TABLE tasks ADD CONSTRAINT test_prio CHECK (priority < 1000)"));
    gp_task_t ok, bad;
    make_task(&ok, "echo", NULL, 0);
    make_task(&bad, "echo", NULL, 5000);
    gp_store_op_t ops[2] = {{.kind = GP_OP_CREATE, .task = &ok},
                            {.kind = GP_OP_CREATE, .task = &bad}};
    gp_store_op_t *batch[2] = {&ops[0], &ops[1]};
    assert_int_equal(gp_store_apply_batch(f->store, batch, 2), -GP_E_UNAVAILABLE);
    assert_int_equal(ops[0].result, -GP_E_UNAVAILABLE);
    assert_int_equal(ops[1].result, -GP_E_UNAVAILABLE);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 0);
    assert_true(raw_exec("ALTER TABLE tasks DROP CONSTRAINT test_prio"));
    gp_task_t again;
    make_task(&again, "echo", NULL, 0);
    assert_int_equal(create(f, &again, NULL), 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 1);
    gp_task_clear(&ok);
    gp_task_clear(&bad);
    gp_task_clear(&again);
}

static void test_unstorable_input(void **state)
{
    FIXTURE(state);
    /* jsonb has no U+0000 and the server checks UTF-8: such ops fail alone (or are
     * sanitized), never aborting the ops batched with them */
    gp_task_t nul, good, badtype;
    make_task(&nul, "echo", NULL, 0);
    json_object_set_new(nul.params, "s", json_stringn("a\0b", 3));
    make_task(&good, "echo", NULL, 0);
    json_object_set_new(good.params, "s", json_string("literal \\u0000 text"));
    make_task(&badtype, "ec\xff", NULL, 0);
    gp_store_op_t ops[3] = {{.kind = GP_OP_CREATE, .task = &nul},
                            {.kind = GP_OP_CREATE, .task = &good},
                            {.kind = GP_OP_CREATE, .task = &badtype}};
    gp_store_op_t *batch[3] = {&ops[0], &ops[1], &ops[2]};
    assert_int_equal(gp_store_apply_batch(f->store, batch, 3), 0);
    assert_int_equal(ops[0].result, -GP_E_VALIDATION);
    assert_int_equal(ops[1].result, 0);
    assert_int_equal(ops[2].result, -GP_E_VALIDATION);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, good.id, &got), 0);
    assert_true(json_equal(got.params, good.params));
    gp_task_clear(&got);

    /* a provider's message with invalid UTF-8 and a result with U+0000 still commit */
    assert_int_equal(transition(f, good.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    memcpy(op.tr.id, good.id, sizeof op.tr.id);
    op.tr.from_status = GP_TASK_PROCESSING;
    op.tr.from_attempts = 1;
    op.tr.to_status = GP_TASK_FAILED;
    op.tr.to_attempts = 1;
    op.tr.completed_at = gp_now_ms();
    op.tr.error_code = "engine_error";
    op.tr.error_message = "bad \xc3\x28 byte";
    op.tr.result = json_pack("{s:s%}", "t", "x\0y", (size_t)3);
    assert_int_equal(gp_committer_run_sync(f->committer, &op), 0);
    assert_int_equal(gp_store_get(f->store, good.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_FAILED);
    assert_string_equal(got.error_message, "bad ?( byte");
    assert_string_equal(json_string_value(json_object_get(got.result, "t")), "x\xef\xbf\xbdy");
    gp_task_clear(&got);
    json_decref(op.tr.result);
    gp_cancel_outcome_t out;
    assert_int_equal(cancel(f, "\xff\xfe", &out), -GP_E_NOT_FOUND);
    gp_task_clear(&nul);
    gp_task_clear(&good);
    gp_task_clear(&badtype);
}

typedef struct async_state {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} async_state_t;

static void async_done(gp_store_op_t *op, void *arg)
{
    (void)op;
    async_state_t *a = arg;
    pthread_mutex_lock(&a->lock);
    a->done++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static void test_key_held_by_concurrent_transaction(void **state)
{
    FIXTURE(state);
    /* another process inserted the key and has not committed yet: our insert waits for it,
     * then finds the key taken by a row our snapshot cannot see → conflict (retryable) */
    PGconn *other = raw_connect();
    assert_non_null(other);
    assert_true(raw_exec_on(other, "BEGIN"));
    char ins[512];
    char oid[37];
    gp_uuid7(oid);
    snprintf(ins, sizeof ins,
             "INSERT INTO tasks (id, task_type, provider, status, params, max_retries, priority,"
             " idempotency_key, created_at) VALUES ('%s', 'echo', 'echo', 'pending', '{}', 0, 0,"
             " 'held-key', 1)",
             oid);
    assert_true(raw_exec_on(other, ins));

    /* keys are per owner: another owner's create with the same key does not wait */
    gp_task_t mine;
    make_task(&mine, "echo", "held-key", 0);
    snprintf(mine.owner, sizeof mine.owner, "u-other");
    gp_store_op_t own_op = {.kind = GP_OP_CREATE, .task = &mine};
    gp_store_op_t *own_batch[1] = {&own_op};
    int64_t t0 = gp_mono_ms();
    assert_int_equal(gp_store_apply_batch(f->store, own_batch, 1), 0);
    assert_true(gp_mono_ms() - t0 < 2000);
    assert_int_equal(own_op.result, 0);
    assert_false(own_op.replayed);
    gp_task_clear(&mine);

    async_state_t a = {.done = 0};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cond, NULL);
    gp_task_t t;
    make_task(&t, "echo", "held-key", 0);
    gp_store_op_t op = {.kind = GP_OP_CREATE, .task = &t, .done = async_done, .done_arg = &a};
    gp_committer_submit(f->committer, &op);
    sleep_ms(300);
    pthread_mutex_lock(&a.lock);
    assert_int_equal(a.done, 0); /* blocked on the other transaction */
    pthread_mutex_unlock(&a.lock);
    assert_true(raw_exec_on(other, "COMMIT"));
    PQfinish(other);
    pthread_mutex_lock(&a.lock);
    while (a.done < 1)
        pthread_cond_wait(&a.cond, &a.lock);
    pthread_mutex_unlock(&a.lock);
    assert_int_equal(op.result, -GP_E_CONFLICT);
    /* a retry replays the committed row */
    bool replayed = false;
    assert_int_equal(create(f, &t, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(t.id, oid);
    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cond);
    gp_task_clear(&t);
}

/* ---- concurrent submitters and readers ---- */

#define N_THREADS 4
#define PER_THREAD 50

typedef struct submitter {
    fixture_t *f;
    int index;
    int failures;
} submitter_t;

static void *submit_thread(void *arg)
{
    submitter_t *s = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        gp_task_t t;
        make_task(&t, "echo", NULL, 0);
        if (i % 5 == 0) {
            char key[32];
            snprintf(key, sizeof key, "shared-%d", i);
            free(t.idempotency_key);
            t.idempotency_key = gp_xstrdup(key);
        }
        gp_store_op_t op = {.kind = GP_OP_CREATE, .task = &t};
        int rc = gp_committer_run_sync(s->f->committer, &op);
        if (rc != 0) {
            s->failures++;
        } else {
            /* read it back at once through the reader pool */
            gp_task_t got;
            if (gp_store_get(s->f->store, t.id, &got) != 0)
                s->failures++;
            else
                gp_task_clear(&got);
        }
        gp_task_clear(&t);
    }
    return NULL;
}

static void test_concurrent_group_commit(void **state)
{
    FIXTURE(state);
    submitter_t subs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        subs[i] = (submitter_t){.f = f, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, submit_thread, &subs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(subs[i].failures, 0);
    }
    int expected = N_THREADS * (PER_THREAD - PER_THREAD / 5) + PER_THREAD / 5;
    int rows = 0;
    gp_task_t page[100];
    int64_t before = 0;
    size_t n;
    do {
        n = list(f, -1, NULL, before, 100, page);
        rows += (int)n;
        if (n)
            before = page[n - 1].seq;
        clear_all(page, n);
    } while (n == 100);
    assert_int_equal(rows, expected);

    async_state_t a = {.done = 0};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cond, NULL);
    gp_task_t t[20];
    gp_store_op_t ops[20];
    for (int i = 0; i < 20; i++) {
        make_task(&t[i], "echo", NULL, 0);
        ops[i] = (gp_store_op_t){
            .kind = GP_OP_CREATE, .task = &t[i], .done = async_done, .done_arg = &a};
        gp_committer_submit(f->committer, &ops[i]);
    }
    pthread_mutex_lock(&a.lock);
    while (a.done < 20)
        pthread_cond_wait(&a.cond, &a.lock);
    pthread_mutex_unlock(&a.lock);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ops[i].result, 0);
        assert_true(t[i].seq > 0);
        if (i)
            assert_true(t[i].seq > t[i - 1].seq);
        gp_task_clear(&t[i]);
    }
    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cond);
}

/* ---- connection loss ---- */

static void test_connection_loss(void **state)
{
    FIXTURE(state);
    gp_task_t first;
    make_task(&first, "echo", NULL, 0);
    assert_int_equal(create(f, &first, NULL), 0);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, first.id, &got), 0); /* a reader exists too */
    gp_task_clear(&got);

    for (int round = 0; round < 2; round++) {
        /* kill every other session of this database: the writer and the readers */
        assert_true(raw_int("SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM"
                            " pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid()) AS k") >= 2);
        gp_task_t t;
        make_task(&t, "echo", NULL, 0);
        gp_store_op_t op = {.kind = GP_OP_CREATE, .task = &t};
        gp_store_op_t *batch[1] = {&op};
        int64_t t0 = gp_mono_ms();
        int rc = gp_store_apply_batch(f->store, batch, 1);
        assert_true(rc == 0 || rc == -GP_E_UNAVAILABLE);
        assert_int_equal(op.result, rc);
        /* a later batch succeeds once the store reconnected (within its backoff) */
        int tries = 0;
        while (rc != 0 && tries++ < 50) {
            sleep_ms(100);
            rc = gp_store_apply_batch(f->store, batch, 1);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(op.result, 0);
        assert_true(gp_mono_ms() - t0 < 10000);
        /* readers reconnect by themselves */
        assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
        gp_task_clear(&got);
        assert_int_equal(gp_store_get(f->store, first.id, &got), 0);
        gp_task_clear(&got);
        /* and the committer path works too */
        gp_task_t u;
        make_task(&u, "echo", NULL, 0);
        assert_int_equal(create(f, &u, NULL), 0);
        gp_task_clear(&u);
        gp_task_clear(&t);
    }
    gp_task_clear(&first);
}

/* ---- identity (migration 2) ---- */

/* store.h has no inline wrappers for the identity entries yet: call through the vtable. */
#define VT(f) ((f)->store->vt)

/* A user with a fresh id (caller clears). */
static void make_user(gp_user_t *u, const char *email, int64_t created_at)
{
    memset(u, 0, sizeof *u);
    gp_uuid7(u->id);
    u->email = email ? gp_xstrdup(email) : NULL;
    u->display_name = gp_xstrdup("Ada");
    u->created_at = created_at;
}

/* A key of user_id with hash "<hash_seed>" padded to 64 hex digits (caller clears). */
static void make_key(gp_api_key_t *k, const char *user_id, int seed, int64_t created_at)
{
    memset(k, 0, sizeof *k);
    gp_uuid7(k->id);
    snprintf(k->user_id, sizeof k->user_id, "%s", user_id);
    k->name = gp_xstrdup("ci");
    snprintf(k->prefix, sizeof k->prefix, "gp_%08d", seed);
    snprintf(k->hash, sizeof k->hash, "%064x", seed);
    k->scopes = gp_xstrdup("tasks:read,tasks:write");
    k->created_at = created_at;
}

/* Rows in the order the lists promise: (created_at, id). */
typedef struct ordered {
    int64_t created_at;
    char id[37];
} ordered_t;

static int cmp_ordered(const void *a, const void *b)
{
    const ordered_t *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void clear_users(gp_user_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gp_user_clear(&v[i]);
}

static void clear_keys(gp_api_key_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gp_api_key_clear(&v[i]);
}

static void test_local_user_after_migrate(void **state)
{
    FIXTURE(state);
    assert_true(raw_int("SELECT MAX(version) FROM schema_migrations") >= 2);
    gp_user_t u;
    assert_int_equal(VT(f)->user_get(f->store, GP_LOCAL_USER_ID, &u), 0);
    assert_string_equal(u.id, GP_LOCAL_USER_ID);
    assert_null(u.email);
    assert_string_equal(u.display_name, "Local user");
    assert_string_equal(u.plan, "unlimited");
    assert_false(u.disabled);
    assert_int_equal(u.credits, 0);
    assert_int_equal(u.reserved, 0);
    assert_true(u.created_at > 1700000000000LL && u.created_at <= gp_now_ms());
    assert_null(u.oidc_issuer);
    assert_null(u.oidc_subject);
    int64_t created = u.created_at;
    gp_user_clear(&u);

    /* migrating again adds nothing and keeps the built-in user as it was */
    char err[512] = "";
    long long rows = raw_int("SELECT COUNT(*) FROM schema_migrations");
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_migrations"), rows);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM users"), 1);
    assert_int_equal(VT(f)->user_get(f->store, GP_LOCAL_USER_ID, &u), 0);
    assert_int_equal(u.created_at, created);
    gp_user_clear(&u);
}

static void test_user_create_get(void **state)
{
    FIXTURE(state);
    gp_user_t a;
    make_user(&a, "Ada.Lovelace@Example.COM", 1000);
    a.plan = gp_xstrdup("pro");
    a.disabled = true;
    assert_int_equal(VT(f)->user_create(f->store, &a), 0);

    gp_user_t got;
    assert_int_equal(VT(f)->user_get(f->store, a.id, &got), 0);
    assert_string_equal(got.id, a.id);
    assert_string_equal(got.email, "ada.lovelace@example.com"); /* stored lower-case */
    assert_string_equal(got.display_name, "Ada");
    assert_string_equal(got.plan, "pro");
    assert_int_equal(got.created_at, 1000);
    assert_true(got.disabled);
    assert_null(got.oidc_issuer);
    gp_user_clear(&got);
    /* by email, in any case */
    assert_int_equal(VT(f)->user_get(f->store, "ada.lovelace@example.com", &got), 0);
    assert_string_equal(got.id, a.id);
    gp_user_clear(&got);
    assert_int_equal(VT(f)->user_get(f->store, "ADA.LOVELACE@example.Com", &got), 0);
    assert_string_equal(got.id, a.id);
    gp_user_clear(&got);
    assert_int_equal(VT(f)->user_get(f->store, "nobody@example.com", &got), -GP_E_NOT_FOUND);
    assert_int_equal(VT(f)->user_get(f->store, "\xff\xfe", &got), -GP_E_NOT_FOUND);

    /* no plan given: "free"; no email: any number of such users */
    gp_user_t b, c;
    make_user(&b, NULL, 0);
    make_user(&c, NULL, 0);
    assert_int_equal(VT(f)->user_create(f->store, &b), 0);
    assert_int_equal(VT(f)->user_create(f->store, &c), 0);
    assert_int_equal(VT(f)->user_get(f->store, b.id, &got), 0);
    assert_string_equal(got.plan, "free");
    assert_null(got.email);
    assert_false(got.disabled);
    assert_true(got.created_at > 0); /* 0 = now */
    gp_user_clear(&got);

    /* unique fields: the email in another case, the id */
    gp_user_t dup;
    make_user(&dup, "ada.LOVELACE@example.com", 0);
    assert_int_equal(VT(f)->user_create(f->store, &dup), -GP_E_CONFLICT);
    free(dup.email);
    dup.email = gp_xstrdup("other@example.com");
    memcpy(dup.id, a.id, sizeof dup.id);
    assert_int_equal(VT(f)->user_create(f->store, &dup), -GP_E_CONFLICT);
    /* text PostgreSQL cannot store */
    gp_uuid7(dup.id);
    free(dup.display_name);
    dup.display_name = gp_xstrdup("bad \xc3\x28");
    assert_int_equal(VT(f)->user_create(f->store, &dup), -GP_E_BAD_REQUEST);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM users"), 4);
    /* the store still works after the refused statements */
    free(dup.display_name);
    dup.display_name = NULL;
    assert_int_equal(VT(f)->user_create(f->store, &dup), 0);

    gp_user_clear(&a);
    gp_user_clear(&b);
    gp_user_clear(&c);
    gp_user_clear(&dup);
}

#define N_USERS 7

static void test_user_list_paging(void **state)
{
    FIXTURE(state);
    /* created_at ties (pairs) are ordered by id */
    ordered_t ord[N_USERS];
    char ids[N_USERS][37];
    for (int i = 0; i < N_USERS; i++) {
        gp_user_t u;
        char email[64];
        snprintf(email, sizeof email, "user%d@example.com", i);
        make_user(&u, email, 2000 + i / 2);
        assert_int_equal(VT(f)->user_create(f->store, &u), 0);
        ord[i].created_at = u.created_at;
        memcpy(ord[i].id, u.id, sizeof ord[i].id);
        gp_user_clear(&u);
    }
    qsort(ord, N_USERS, sizeof ord[0], cmp_ordered);
    for (int i = 0; i < N_USERS; i++)
        memcpy(ids[i], ord[i].id, sizeof ids[i]);
    /* the built-in user was created now, after all of them */
    gp_user_t page[3];
    size_t n = 99, total = 0;
    char after[37] = "";
    int expect = 0;
    do {
        assert_int_equal(VT(f)->user_list(f->store, after[0] ? after : NULL, page, 3, &n), 0);
        assert_true(n <= 3);
        for (size_t i = 0; i < n; i++, expect++) {
            if (expect < N_USERS)
                assert_string_equal(page[i].id, ids[expect]);
            else
                assert_string_equal(page[i].id, GP_LOCAL_USER_ID);
            assert_non_null(page[i].plan);
        }
        total += n;
        if (n)
            memcpy(after, page[n - 1].id, sizeof after);
        clear_users(page, n);
    } while (n == 3);
    assert_int_equal(total, N_USERS + 1);
    assert_int_equal(VT(f)->user_list(f->store, ids[0], page, 0, &n), 0);
    assert_int_equal(n, 0);
    /* an unknown cursor gives nothing */
    char other[37];
    gp_uuid7(other);
    assert_int_equal(VT(f)->user_list(f->store, other, page, 3, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(VT(f)->user_list(f->store, ids[N_USERS - 2], page, 3, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(page[0].id, ids[N_USERS - 1]);
    assert_string_equal(page[1].id, GP_LOCAL_USER_ID);
    clear_users(page, n);
}

static void test_user_oidc(void **state)
{
    FIXTURE(state);
    gp_user_t a;
    make_user(&a, "oidc@example.com", 0);
    a.oidc_issuer = gp_xstrdup("https://issuer.example");
    a.oidc_subject = gp_xstrdup("sub-1");
    assert_int_equal(VT(f)->user_create(f->store, &a), 0);
    gp_user_t got;
    assert_int_equal(VT(f)->user_by_oidc(f->store, "https://issuer.example", "sub-1", &got), 0);
    assert_string_equal(got.id, a.id);
    assert_string_equal(got.oidc_issuer, "https://issuer.example");
    assert_string_equal(got.oidc_subject, "sub-1");
    gp_user_clear(&got);
    assert_int_equal(VT(f)->user_by_oidc(f->store, "https://issuer.example", "sub-2", &got),
                     -GP_E_NOT_FOUND);
    assert_int_equal(VT(f)->user_by_oidc(f->store, "https://other.example", "sub-1", &got),
                     -GP_E_NOT_FOUND);
    assert_int_equal(VT(f)->user_by_oidc(f->store, "\xff", "sub-1", &got), -GP_E_NOT_FOUND);

    /* the pair is unique; the same subject at another issuer is another person */
    gp_user_t b;
    make_user(&b, NULL, 0);
    b.oidc_issuer = gp_xstrdup("https://issuer.example");
    b.oidc_subject = gp_xstrdup("sub-1");
    assert_int_equal(VT(f)->user_create(f->store, &b), -GP_E_CONFLICT);
    free(b.oidc_issuer);
    b.oidc_issuer = gp_xstrdup("https://other.example");
    assert_int_equal(VT(f)->user_create(f->store, &b), 0);
    assert_int_equal(VT(f)->user_by_oidc(f->store, "https://other.example", "sub-1", &got), 0);
    assert_string_equal(got.id, b.id);
    gp_user_clear(&got);
    gp_user_clear(&a);
    gp_user_clear(&b);
}

static void test_keys(void **state)
{
    FIXTURE(state);
    gp_user_t u;
    make_user(&u, "keys@example.com", 0);
    assert_int_equal(VT(f)->user_create(f->store, &u), 0);

    gp_api_key_t k;
    make_key(&k, u.id, 1, 5000);
    k.expires_at = 9000000000000LL;
    assert_int_equal(VT(f)->key_create(f->store, &k), 0);
    gp_api_key_t got;
    assert_int_equal(VT(f)->key_by_hash(f->store, k.hash, &got), 0);
    assert_string_equal(got.id, k.id);
    assert_string_equal(got.user_id, u.id);
    assert_string_equal(got.name, "ci");
    assert_string_equal(got.prefix, "gp_00000001");
    assert_string_equal(got.hash, k.hash);
    assert_string_equal(got.scopes, "tasks:read,tasks:write");
    assert_int_equal(got.created_at, 5000);
    assert_int_equal(got.last_used_at, 0);
    assert_int_equal(got.expires_at, 9000000000000LL);
    assert_int_equal(got.revoked_at, 0);
    gp_api_key_clear(&got);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM api_keys WHERE last_used_at IS NULL"
                             " AND revoked_at IS NULL AND expires_at IS NOT NULL"),
                     1);
    char other_hash[65];
    snprintf(other_hash, sizeof other_hash, "%064x", 99);
    assert_int_equal(VT(f)->key_by_hash(f->store, other_hash, &got), -GP_E_NOT_FOUND);

    /* unique hash and id; an unknown user; unstorable text */
    gp_api_key_t bad;
    make_key(&bad, u.id, 1, 0);
    assert_int_equal(VT(f)->key_create(f->store, &bad), -GP_E_CONFLICT);
    snprintf(bad.hash, sizeof bad.hash, "%064x", 2);
    memcpy(bad.id, k.id, sizeof bad.id);
    assert_int_equal(VT(f)->key_create(f->store, &bad), -GP_E_CONFLICT);
    gp_uuid7(bad.id);
    gp_uuid7(bad.user_id);
    assert_int_equal(VT(f)->key_create(f->store, &bad), -GP_E_NOT_FOUND);
    memcpy(bad.user_id, u.id, sizeof bad.user_id);
    free(bad.name);
    bad.name = gp_xstrdup("\xe2\x82");
    assert_int_equal(VT(f)->key_create(f->store, &bad), -GP_E_BAD_REQUEST);
    free(bad.name);
    bad.name = NULL;
    assert_int_equal(VT(f)->key_create(f->store, &bad), 0);
    assert_int_equal(VT(f)->key_by_hash(f->store, bad.hash, &got), 0);
    assert_null(got.name);
    assert_true(got.created_at > 0);
    gp_api_key_clear(&got);

    /* touch: last_used_at, never backwards */
    assert_int_equal(VT(f)->key_touch(f->store, k.id, 7000), 0);
    assert_int_equal(VT(f)->key_touch(f->store, k.id, 6000), 0);
    assert_int_equal(VT(f)->key_by_hash(f->store, k.hash, &got), 0);
    assert_int_equal(got.last_used_at, 7000);
    gp_api_key_clear(&got);
    char unknown[37];
    gp_uuid7(unknown);
    assert_int_equal(VT(f)->key_touch(f->store, unknown, 7000), -GP_E_NOT_FOUND);

    /* revoke: the first time counts */
    assert_int_equal(VT(f)->key_revoke(f->store, k.id, 8000), 0);
    assert_int_equal(VT(f)->key_revoke(f->store, k.id, 8500), 0);
    assert_int_equal(VT(f)->key_by_hash(f->store, k.hash, &got), 0); /* still found */
    assert_int_equal(got.revoked_at, 8000);
    gp_api_key_clear(&got);
    assert_int_equal(VT(f)->key_revoke(f->store, unknown, 8000), -GP_E_NOT_FOUND);
    assert_int_equal(VT(f)->key_revoke(f->store, "\xff", 8000), -GP_E_NOT_FOUND);

    gp_user_clear(&u);
    gp_api_key_clear(&k);
    gp_api_key_clear(&bad);
}

static void test_keys_list_and_active(void **state)
{
    FIXTURE(state);
    gp_user_t a, b;
    make_user(&a, NULL, 0);
    make_user(&b, NULL, 0);
    assert_int_equal(VT(f)->user_create(f->store, &a), 0);
    assert_int_equal(VT(f)->user_create(f->store, &b), 0);
    /* 5 keys of a and 3 of b, interleaved in time, with created_at ties; the expected order
     * is fixed by giving each tie's second key the larger id */
    char ids[8][37];
    int64_t now = 100000;
    for (int i = 0; i < 8; i++) {
        gp_api_key_t k;
        make_key(&k, i == 2 || i == 5 || i == 7 ? b.id : a.id, 100 + i, 1000 + i / 2);
        if (i % 2 == 1 && strcmp(k.id, ids[i - 1]) < 0)
            k.id[0] = 'f'; /* still unique: uuid7 ids start with 0 for centuries */
        if (i == 0)
            k.expires_at = now - 1; /* expired */
        if (i == 1)
            k.expires_at = now; /* expires at now: no longer active */
        if (i == 3)
            k.expires_at = now + 1;
        if (i == 4)
            k.revoked_at = 50;
        assert_int_equal(VT(f)->key_create(f->store, &k), 0);
        memcpy(ids[i], k.id, sizeof ids[i]);
        gp_api_key_clear(&k);
    }
    gp_api_key_t page[2];
    size_t n = 99;
    /* everyone's keys, in pages of 2 */
    char after[37] = "";
    int expect = 0;
    do {
        assert_int_equal(VT(f)->key_list(f->store, NULL, after[0] ? after : NULL, page, 2, &n), 0);
        for (size_t i = 0; i < n; i++, expect++)
            assert_string_equal(page[i].id, ids[expect]);
        if (n)
            memcpy(after, page[n - 1].id, sizeof after);
        clear_keys(page, n);
    } while (n == 2);
    assert_int_equal(expect, 8);
    /* a's keys only: 0, 1, 3, 4, 6 */
    const int of_a[] = {0, 1, 3, 4, 6};
    after[0] = '\0';
    expect = 0;
    do {
        assert_int_equal(VT(f)->key_list(f->store, a.id, after[0] ? after : NULL, page, 2, &n), 0);
        for (size_t i = 0; i < n; i++, expect++) {
            assert_string_equal(page[i].id, ids[of_a[expect]]);
            assert_string_equal(page[i].user_id, a.id);
        }
        if (n)
            memcpy(after, page[n - 1].id, sizeof after);
        clear_keys(page, n);
    } while (n == 2);
    assert_int_equal(expect, 5);
    gp_api_key_t all[8];
    assert_int_equal(VT(f)->key_list(f->store, b.id, NULL, all, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(all[0].id, ids[2]);
    assert_string_equal(all[2].id, ids[7]);
    clear_keys(all, n);
    assert_int_equal(VT(f)->key_list(f->store, GP_LOCAL_USER_ID, NULL, all, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(VT(f)->key_list(f->store, a.id, NULL, all, 0, &n), 0);
    assert_int_equal(n, 0);

    /* active at now: 2, 3, 5, 6, 7 (0 and 1 expired, 4 revoked) */
    int64_t count = -1;
    assert_int_equal(VT(f)->keys_active(f->store, now, &count), 0);
    assert_int_equal(count, 5);
    assert_int_equal(VT(f)->keys_active(f->store, now + 1, &count), 0);
    assert_int_equal(count, 4);
    assert_int_equal(VT(f)->key_revoke(f->store, ids[7], now), 0);
    assert_int_equal(VT(f)->keys_active(f->store, now, &count), 0);
    assert_int_equal(count, 4);
    assert_int_equal(VT(f)->keys_active(f->store, 0, &count), 0);
    assert_int_equal(count, 6);
    gp_user_clear(&a);
    gp_user_clear(&b);
}

/* ---- task owners ---- */

static void make_owned_task(gp_task_t *t, const char *owner, const char *key, const char *hash)
{
    make_task(t, "echo", key, 0);
    snprintf(t->owner, sizeof t->owner, "%s", owner);
    t->request_hash = hash ? gp_xstrdup(hash) : NULL;
}

static size_t list_owner(fixture_t *f, const char *owner, int status, gp_task_t *out, size_t cap)
{
    gp_task_filter_t filt = {.owner = owner, .status = status, .limit = cap};
    size_t n = 99999;
    assert_int_equal(gp_store_list(f->store, &filt, out, &n), 0);
    return n;
}

static void test_task_owner(void **state)
{
    FIXTURE(state);
    gp_task_t t[6];
    const char *owners[6] = {"", "u-1", "u-2", "u-1", GP_LOCAL_USER_ID, "u-1"};
    for (int i = 0; i < 6; i++) {
        make_owned_task(&t[i], owners[i], NULL, "abc");
        assert_int_equal(create(f, &t[i], NULL), 0);
    }
    assert_string_equal(t[0].owner, GP_LOCAL_USER_ID); /* "" is the built-in user */
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, t[0].id, &got), 0);
    assert_string_equal(got.owner, GP_LOCAL_USER_ID);
    assert_string_equal(got.request_hash, "abc");
    gp_task_clear(&got);
    assert_int_equal(gp_store_get(f->store, t[1].id, &got), 0);
    assert_string_equal(got.owner, "u-1");
    gp_task_clear(&got);
    /* the claim returns the owner too */
    gp_task_t claimed = {0};
    gp_store_op_t op = {.kind = GP_OP_CLAIM, .task = &claimed, .claim_started_at = gp_now_ms()};
    memcpy(op.cancel_id, t[3].id, sizeof op.cancel_id);
    assert_int_equal(gp_committer_run_sync(f->committer, &op), 0);
    assert_string_equal(claimed.owner, "u-1");
    gp_task_clear(&claimed);

    gp_task_t page[8];
    size_t n = list_owner(f, "u-1", -1, page, 8);
    assert_int_equal(n, 3);
    assert_string_equal(page[0].id, t[5].id); /* newest first */
    assert_string_equal(page[1].id, t[3].id);
    assert_string_equal(page[2].id, t[1].id);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(page[i].owner, "u-1");
    clear_all(page, n);
    n = list_owner(f, "u-1", GP_TASK_PROCESSING, page, 8);
    assert_int_equal(n, 1);
    assert_string_equal(page[0].id, t[3].id);
    clear_all(page, n);
    n = list_owner(f, GP_LOCAL_USER_ID, -1, page, 8);
    assert_int_equal(n, 2);
    clear_all(page, n);
    assert_int_equal(list_owner(f, "u-3", -1, page, 8), 0);
    assert_int_equal(list_owner(f, "\xff", -1, page, 8), 0);
    n = list_owner(f, NULL, -1, page, 8);
    assert_int_equal(n, 6);
    clear_all(page, n);

    /* an owner PostgreSQL cannot store fails alone */
    gp_task_t bad;
    make_owned_task(&bad, "u-\xff", NULL, NULL);
    assert_int_equal(create(f, &bad, NULL), -GP_E_VALIDATION);
    gp_task_clear(&bad);
    for (int i = 0; i < 6; i++)
        gp_task_clear(&t[i]);
}

static void test_idempotency_per_owner(void **state)
{
    FIXTURE(state);
    bool replayed = true;
    gp_task_t a, b, c, d;
    make_owned_task(&a, "u-1", "shared-key", "hash-a");
    make_owned_task(&b, "u-2", "shared-key", "hash-b");
    assert_int_equal(create(f, &a, &replayed), 0);
    assert_false(replayed);
    /* the same key for another owner is another task */
    assert_int_equal(create(f, &b, &replayed), 0);
    assert_false(replayed);
    assert_string_not_equal(a.id, b.id);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks WHERE idempotency_key = 'shared-key'"), 2);
    /* the same owner replays its first task, with the first request's hash */
    make_owned_task(&c, "u-1", "shared-key", "hash-c");
    assert_int_equal(create(f, &c, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(c.id, a.id);
    assert_string_equal(c.owner, "u-1");
    assert_string_equal(c.request_hash, "hash-a");
    /* "" and "local" are the same owner */
    make_owned_task(&d, "", "shared-key", NULL);
    assert_int_equal(create(f, &d, &replayed), 0);
    assert_false(replayed);
    gp_task_t e;
    make_owned_task(&e, GP_LOCAL_USER_ID, "shared-key", "hash-e");
    assert_int_equal(create(f, &e, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(e.id, d.id);
    assert_null(e.request_hash);

    /* in one batch: two owners, one key, plus a repeat of each */
    gp_task_t g[4];
    const char *owners[4] = {"u-3", "u-4", "u-3", "u-4"};
    gp_store_op_t ops[4];
    gp_store_op_t *batch[4];
    for (int i = 0; i < 4; i++) {
        make_owned_task(&g[i], owners[i], "batch-key", i < 2 ? "first" : "second");
        ops[i] = (gp_store_op_t){.kind = GP_OP_CREATE, .task = &g[i]};
        batch[i] = &ops[i];
    }
    assert_int_equal(gp_store_apply_batch(f->store, batch, 4), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ops[i].result, 0);
        assert_int_equal(ops[i].replayed, i >= 2);
        assert_string_equal(g[i].request_hash, "first");
    }
    assert_string_equal(g[2].id, g[0].id);
    assert_string_equal(g[3].id, g[1].id);
    assert_string_not_equal(g[0].id, g[1].id);
    for (int i = 0; i < 4; i++)
        gp_task_clear(&g[i]);
    gp_task_clear(&a);
    gp_task_clear(&b);
    gp_task_clear(&c);
    gp_task_clear(&d);
    gp_task_clear(&e);
}

/* ---- credits ---- */

/* A user holding `credits` (granted through the ledger); its id in id. */
static void funded_user(fixture_t *f, int64_t credits, char id[37])
{
    gp_user_t u;
    make_user(&u, NULL, 0);
    assert_int_equal(VT(f)->user_create(f->store, &u), 0);
    memcpy(id, u.id, 37);
    gp_user_clear(&u);
    if (credits > 0) {
        char key[64];
        snprintf(key, sizeof key, "seed-%s", id);
        int64_t bal = -1;
        assert_int_equal(VT(f)->credits_grant(f->store, id, credits, key, "seed", &bal), 0);
        assert_int_equal(bal, credits);
    }
}

static void priced_task(gp_task_t *t, const char *owner, int64_t price, const char *key)
{
    make_task(t, "echo", key, 0);
    snprintf(t->owner, sizeof t->owner, "%s", owner);
    t->price = price;
}

/* Asserts the user's (credits, reserved). */
static void assert_balance(fixture_t *f, const char *id, int64_t credits, int64_t reserved)
{
    gp_user_t u;
    assert_int_equal(VT(f)->user_get(f->store, id, &u), 0);
    assert_int_equal(u.credits, credits);
    assert_int_equal(u.reserved, reserved);
    gp_user_clear(&u);
}

/* Ledger rows of a task (kind NULL = any). */
static long long ledger_rows(const char *task_id, const char *kind)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM credit_ledger WHERE task_id = '%s'%s%s%s",
             task_id, kind ? " AND kind = '" : "", kind ? kind : "", kind ? "'" : "");
    return raw_int(sql);
}

/* The newest ledger entry of user_id (caller clears). */
static void newest_entry(fixture_t *f, const char *user_id, gp_ledger_entry_t *e)
{
    size_t n = 0;
    assert_int_equal(VT(f)->ledger_list(f->store, user_id, 0, e, 1, &n), 0);
    assert_int_equal(n, 1);
}

typedef struct tr_flags {
    bool keep, again, honor;
} tr_flags_t;

/* Runs one transition; returns the op (result, applied_status). */
static gp_store_op_t run_tr(fixture_t *f, const char *id, gp_task_status_t from, int fa,
                            gp_task_status_t to, int ta, tr_flags_t fl)
{
    gp_store_op_t op = {.kind = GP_OP_TRANSITION};
    snprintf(op.tr.id, sizeof op.tr.id, "%s", id);
    op.tr.from_status = from;
    op.tr.from_attempts = fa;
    op.tr.to_status = to;
    op.tr.to_attempts = ta;
    if (gp_task_status_terminal(to))
        op.tr.completed_at = gp_now_ms();
    else if (to == GP_TASK_PENDING)
        op.tr.completed_at = -1;
    if (to == GP_TASK_FAILED) {
        op.tr.error_code = "engine_error";
        op.tr.error_message = "boom";
    }
    op.tr.keep_reservation = fl.keep;
    op.tr.reserve_again = fl.again;
    op.tr.honor_cancel = fl.honor;
    op.tr.applied_status = (gp_task_status_t)-1;
    gp_committer_run_sync(f->committer, &op);
    return op;
}

static const tr_flags_t NO_FLAGS = {false, false, false};

static void test_credits_reserve_on_create(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 10, uid);
    gp_task_t a;
    priced_task(&a, uid, 3, NULL);
    assert_int_equal(create(f, &a, NULL), 0);
    assert_true(a.seq > 0);
    assert_balance(f, uid, 7, 3);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, a.id, &got), 0);
    assert_int_equal(got.price, 3);
    assert_int_equal(got.charge_round, 0);
    gp_task_clear(&got);
    gp_ledger_entry_t e;
    newest_entry(f, uid, &e);
    assert_string_equal(e.kind, "reserve");
    assert_string_equal(e.task_id, a.id);
    assert_string_equal(e.user_id, uid);
    assert_int_equal(e.amount, 3);
    assert_int_equal(e.balance_after, 7);
    assert_true(e.created_at > 0);
    gp_ledger_entry_clear(&e);
    char key[128];
    snprintf(key, sizeof key,
             "SELECT COUNT(*) FROM credit_ledger WHERE unique_key = '%s:reserve:0'", a.id);
    assert_int_equal(raw_int(key), 1);

    /* short: 402, no task row, nothing moved */
    gp_task_t b;
    priced_task(&b, uid, 8, NULL);
    assert_int_equal(create(f, &b, NULL), -GP_E_INSUFFICIENT_CREDITS);
    assert_int_equal(gp_store_get(f->store, b.id, &got), -GP_E_NOT_FOUND);
    assert_balance(f, uid, 7, 3);
    assert_int_equal(ledger_rows(b.id, NULL), 0);
    /* exactly the balance */
    gp_task_t c;
    priced_task(&c, uid, 7, NULL);
    assert_int_equal(create(f, &c, NULL), 0);
    assert_balance(f, uid, 0, 10);
    /* a free task needs no balance; an unknown owner cannot pay */
    gp_task_t d, g;
    priced_task(&d, uid, 0, NULL);
    assert_int_equal(create(f, &d, NULL), 0);
    priced_task(&g, "no-such-user", 1, NULL);
    assert_int_equal(create(f, &g, NULL), -GP_E_INSUFFICIENT_CREDITS);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 3);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'reserve'"), 2);
    gp_task_clear(&a);
    gp_task_clear(&b);
    gp_task_clear(&c);
    gp_task_clear(&d);
    gp_task_clear(&g);
}

static void test_credits_replay_reserves_once(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 5, uid);
    gp_task_t a, b, c;
    priced_task(&a, uid, 5, "pay-once");
    bool replayed = true;
    assert_int_equal(create(f, &a, &replayed), 0);
    assert_false(replayed);
    assert_balance(f, uid, 0, 5);
    /* the replay succeeds although the balance is now 0, and reserves nothing */
    priced_task(&b, uid, 5, "pay-once");
    assert_int_equal(create(f, &b, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(b.id, a.id);
    assert_int_equal(b.price, 5);
    assert_balance(f, uid, 0, 5);
    /* the same in one batch with a fresh key: one reservation, one replay */
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 4, "more", NULL, NULL), 0);
    gp_task_t d;
    priced_task(&c, uid, 4, "batch-pay");
    priced_task(&d, uid, 4, "batch-pay");
    gp_store_op_t ops[2] = {{.kind = GP_OP_CREATE, .task = &c}, {.kind = GP_OP_CREATE, .task = &d}};
    gp_store_op_t *batch[2] = {&ops[0], &ops[1]};
    assert_int_equal(gp_store_apply_batch(f->store, batch, 2), 0);
    assert_int_equal(ops[0].result, 0);
    assert_int_equal(ops[1].result, 0);
    assert_true(ops[1].replayed);
    assert_balance(f, uid, 0, 9);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'reserve'"), 2);
    gp_task_clear(&a);
    gp_task_clear(&b);
    gp_task_clear(&c);
    gp_task_clear(&d);
}

static void test_credits_capture_once(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 10, uid);
    gp_task_t t;
    priced_task(&t, uid, 4, NULL);
    assert_int_equal(create(f, &t, NULL), 0);
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_balance(f, uid, 6, 4); /* starting moves nothing */
    gp_store_op_t op = run_tr(f, t.id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_int_equal(op.tr.applied_status, GP_TASK_SUCCEEDED);
    assert_balance(f, uid, 6, 0);
    gp_ledger_entry_t e;
    newest_entry(f, uid, &e);
    assert_string_equal(e.kind, "capture");
    assert_int_equal(e.amount, 4);
    assert_int_equal(e.balance_after, 6);
    gp_ledger_entry_clear(&e);
    /* the same transition again loses its CAS and captures nothing */
    op = run_tr(f, t.id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1, NO_FLAGS);
    assert_int_equal(op.result, -GP_E_CONFLICT);
    assert_balance(f, uid, 6, 0);
    /* a second settle of the same round (the row forced back behind the store's back):
     * neither another capture nor a release of the captured round */
    assert_true(raw_exec("UPDATE tasks SET status = 'processing'"));
    op = run_tr(f, t.id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_true(raw_exec("UPDATE tasks SET status = 'processing'"));
    op = run_tr(f, t.id, GP_TASK_PROCESSING, 1, GP_TASK_FAILED, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 6, 0);
    assert_int_equal(ledger_rows(t.id, "capture"), 1);
    assert_int_equal(ledger_rows(t.id, "release"), 0);
    /* free tasks settle nothing */
    gp_task_t free_t;
    priced_task(&free_t, uid, 0, NULL);
    assert_int_equal(create(f, &free_t, NULL), 0);
    assert_int_equal(transition(f, free_t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    op = run_tr(f, free_t.id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_int_equal(ledger_rows(free_t.id, NULL), 0);
    assert_balance(f, uid, 6, 0);
    gp_task_clear(&free_t);
    gp_task_clear(&t);
}

static void test_credits_release(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 20, uid);
    gp_task_t failed, pending, honored, kept;
    priced_task(&failed, uid, 2, NULL);
    priced_task(&pending, uid, 3, NULL);
    priced_task(&honored, uid, 4, NULL);
    priced_task(&kept, uid, 5, NULL);
    assert_int_equal(create(f, &failed, NULL), 0);
    assert_int_equal(create(f, &pending, NULL), 0);
    assert_int_equal(create(f, &honored, NULL), 0);
    assert_int_equal(create(f, &kept, NULL), 0);
    assert_balance(f, uid, 6, 14);

    /* failure releases */
    assert_int_equal(transition(f, failed.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    gp_store_op_t op = run_tr(f, failed.id, GP_TASK_PROCESSING, 1, GP_TASK_FAILED, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 8, 12);
    gp_ledger_entry_t e;
    newest_entry(f, uid, &e);
    assert_string_equal(e.kind, "release");
    assert_string_equal(e.task_id, failed.id);
    assert_int_equal(e.amount, 2);
    assert_int_equal(e.balance_after, 8);
    gp_ledger_entry_clear(&e);

    /* cancel of a pending task releases; cancelling again does nothing */
    gp_cancel_outcome_t out;
    assert_int_equal(cancel(f, pending.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_DONE);
    assert_balance(f, uid, 11, 9);
    assert_int_equal(cancel(f, pending.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_TOO_LATE);
    assert_balance(f, uid, 11, 9);
    assert_int_equal(ledger_rows(pending.id, "release"), 1);

    /* a cancel requested while processing: the success ends canceled and releases */
    assert_int_equal(transition(f, honored.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(cancel(f, honored.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);
    assert_balance(f, uid, 11, 9); /* requesting moves nothing */
    op = run_tr(f, honored.id, GP_TASK_PROCESSING, 1, GP_TASK_SUCCEEDED, 1,
                (tr_flags_t){.honor = true});
    assert_int_equal(op.result, 0);
    assert_int_equal(op.tr.applied_status, GP_TASK_CANCELED);
    assert_balance(f, uid, 15, 5);
    assert_int_equal(ledger_rows(honored.id, "release"), 1);
    assert_int_equal(ledger_rows(honored.id, "capture"), 0);

    /* keep_reservation: failed, but the credits stay reserved */
    assert_int_equal(transition(f, kept.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    op = run_tr(f, kept.id, GP_TASK_PROCESSING, 1, GP_TASK_FAILED, 1, (tr_flags_t){.keep = true});
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 15, 5);
    assert_int_equal(ledger_rows(kept.id, NULL), 1); /* the reserve only */
    /* a retry that keeps the round (no reserve_again) captures the kept reservation */
    op = run_tr(f, kept.id, GP_TASK_FAILED, 1, GP_TASK_PENDING, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_int_equal(transition(f, kept.id, GP_TASK_PENDING, 1, GP_TASK_PROCESSING, 2), 0);
    op = run_tr(f, kept.id, GP_TASK_PROCESSING, 2, GP_TASK_SUCCEEDED, 2, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 15, 0);
    assert_int_equal(ledger_rows(kept.id, "capture"), 1);

    /* the ledger adds up: 20 granted, 5 captured */
    assert_int_equal(raw_int("SELECT SUM(CASE kind WHEN 'grant' THEN amount WHEN 'reserve'"
                             " THEN -amount WHEN 'release' THEN amount ELSE 0 END)"
                             " FROM credit_ledger"),
                     15);
    gp_task_clear(&failed);
    gp_task_clear(&pending);
    gp_task_clear(&honored);
    gp_task_clear(&kept);
}

static void test_credits_reserve_again(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 10, uid);
    gp_task_t t, hog;
    priced_task(&t, uid, 4, NULL);
    assert_int_equal(create(f, &t, NULL), 0);
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    gp_store_op_t op = run_tr(f, t.id, GP_TASK_PROCESSING, 1, GP_TASK_FAILED, 1, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 10, 0);

    /* a manual retry reserves again, in round 1 */
    op = run_tr(f, t.id, GP_TASK_FAILED, 1, GP_TASK_PENDING, 1, (tr_flags_t){.again = true});
    assert_int_equal(op.result, 0);
    assert_int_equal(op.tr.applied_status, GP_TASK_PENDING);
    assert_balance(f, uid, 6, 4);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PENDING);
    assert_int_equal(got.charge_round, 1);
    assert_int_equal(got.completed_at, 0);
    gp_task_clear(&got);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM credit_ledger WHERE unique_key = '%s:reserve:1'"
             " AND balance_after = 6",
             t.id);
    assert_int_equal(raw_int(sql), 1);
    /* the retried run's success captures round 1 */
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 1, GP_TASK_PROCESSING, 2), 0);
    op = run_tr(f, t.id, GP_TASK_PROCESSING, 2, GP_TASK_FAILED, 2, NO_FLAGS);
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 10, 0);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM credit_ledger WHERE unique_key = '%s:release:1'", t.id);
    assert_int_equal(raw_int(sql), 1);

    /* short balance: 402 and nothing changes */
    priced_task(&hog, uid, 8, NULL);
    assert_int_equal(create(f, &hog, NULL), 0);
    assert_balance(f, uid, 2, 8);
    op = run_tr(f, t.id, GP_TASK_FAILED, 2, GP_TASK_PENDING, 2, (tr_flags_t){.again = true});
    assert_int_equal(op.result, -GP_E_INSUFFICIENT_CREDITS);
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_FAILED);
    assert_int_equal(got.charge_round, 1);
    assert_string_equal(got.error_code, "engine_error");
    gp_task_clear(&got);
    assert_balance(f, uid, 2, 8);
    /* a lost CAS is still a conflict, whatever the balance */
    op = run_tr(f, t.id, GP_TASK_FAILED, 9, GP_TASK_PENDING, 9, (tr_flags_t){.again = true});
    assert_int_equal(op.result, -GP_E_CONFLICT);
    /* with the credits back, the retry goes through */
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 2, "topup", NULL, NULL), 0);
    op = run_tr(f, t.id, GP_TASK_FAILED, 2, GP_TASK_PENDING, 2, (tr_flags_t){.again = true});
    assert_int_equal(op.result, 0);
    assert_balance(f, uid, 0, 12);
    assert_int_equal(ledger_rows(t.id, "reserve"), 3);
    gp_task_clear(&t);
    gp_task_clear(&hog);
}

static void test_credits_grant(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 0, uid);
    int64_t bal = -1;
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 50, "order-1", "welcome", &bal), 0);
    assert_int_equal(bal, 50);
    bal = -1;
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 50, "order-1", "welcome", &bal),
                     -GP_E_CONFLICT);
    assert_int_equal(bal, -1); /* untouched on failure */
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 5, "order-2", NULL, &bal), 0);
    assert_int_equal(bal, 55);
    assert_balance(f, uid, 55, 0);
    assert_int_equal(VT(f)->credits_grant(f->store, "nobody", 5, "order-3", NULL, &bal),
                     -GP_E_NOT_FOUND);
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 0, "order-4", NULL, &bal),
                     -GP_E_BAD_REQUEST);
    assert_int_equal(VT(f)->credits_grant(f->store, uid, -3, "order-5", NULL, &bal),
                     -GP_E_BAD_REQUEST);
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 1, "", NULL, &bal), -GP_E_BAD_REQUEST);
    assert_int_equal(VT(f)->credits_grant(f->store, uid, 1, "k\xff", NULL, &bal),
                     -GP_E_BAD_REQUEST);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM credit_ledger"), 2);
    /* balances stay far from bigint overflow (which would fail whole batches) */
    char big[37];
    funded_user(f, 0, big);
    assert_int_equal(VT(f)->credits_grant(f->store, big, INT64_C(1) << 62, "huge", NULL, &bal), 0);
    assert_int_equal(VT(f)->credits_grant(f->store, big, 1, "one-more", NULL, &bal),
                     -GP_E_BAD_REQUEST);
    assert_int_equal(VT(f)->credits_grant(f->store, uid, INT64_MAX, "max", NULL, &bal),
                     -GP_E_BAD_REQUEST);
    assert_balance(f, big, INT64_C(1) << 62, 0);
    gp_ledger_entry_t e[4];
    size_t n = 0;
    assert_int_equal(VT(f)->ledger_list(f->store, uid, 0, e, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[1].kind, "grant");
    assert_string_equal(e[1].task_id, "");
    assert_int_equal(e[1].amount, 50);
    assert_int_equal(e[1].balance_after, 50);
    assert_string_equal(e[1].note, "welcome");
    assert_null(e[0].note);
    assert_int_equal(e[0].balance_after, 55);
    for (size_t i = 0; i < n; i++)
        gp_ledger_entry_clear(&e[i]);

    /* user_update: plan and disabled, each kept when not given */
    assert_int_equal(VT(f)->user_update(f->store, uid, "pro", -1), 0);
    gp_user_t u;
    assert_int_equal(VT(f)->user_get(f->store, uid, &u), 0);
    assert_string_equal(u.plan, "pro");
    assert_false(u.disabled);
    assert_int_equal(u.credits, 55);
    gp_user_clear(&u);
    assert_int_equal(VT(f)->user_update(f->store, uid, NULL, 1), 0);
    assert_int_equal(VT(f)->user_get(f->store, uid, &u), 0);
    assert_string_equal(u.plan, "pro");
    assert_true(u.disabled);
    gp_user_clear(&u);
    assert_int_equal(VT(f)->user_update(f->store, uid, NULL, 0), 0);
    assert_int_equal(VT(f)->user_get(f->store, uid, &u), 0);
    assert_false(u.disabled);
    gp_user_clear(&u);
    assert_int_equal(VT(f)->user_update(f->store, "nobody", "pro", 1), -GP_E_NOT_FOUND);
    assert_int_equal(VT(f)->user_update(f->store, "\xff", NULL, 1), -GP_E_NOT_FOUND);
}

#define N_GRANTS 7

static void test_ledger_paging(void **state)
{
    FIXTURE(state);
    char uid[37], other[37];
    funded_user(f, 0, uid);
    funded_user(f, 100, other);
    for (int i = 0; i < N_GRANTS; i++) {
        char key[32];
        snprintf(key, sizeof key, "g-%d", i);
        assert_int_equal(VT(f)->credits_grant(f->store, uid, i + 1, key, NULL, NULL), 0);
    }
    /* pages of 3, newest first, until the end */
    int64_t before = 0, last_seq = INT64_MAX;
    int seen = 0;
    gp_ledger_entry_t page[3];
    for (int round = 0; round < 5; round++) {
        size_t n = 99;
        assert_int_equal(VT(f)->ledger_list(f->store, uid, before, page, 3, &n), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(page[i].seq < last_seq);
            last_seq = page[i].seq;
            assert_string_equal(page[i].user_id, uid);
            assert_int_equal(page[i].amount, N_GRANTS - seen); /* newest = largest */
            seen++;
            gp_ledger_entry_clear(&page[i]);
        }
        if (n == 0)
            break;
        before = last_seq;
    }
    assert_int_equal(seen, N_GRANTS);
    size_t n = 99;
    assert_int_equal(VT(f)->ledger_list(f->store, "nobody", 0, page, 3, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(VT(f)->ledger_list(f->store, uid, 0, page, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(VT(f)->ledger_list(f->store, other, 0, page, 3, &n), 0);
    assert_int_equal(n, 1);
    gp_ledger_entry_clear(&page[0]);
}

static void test_credits_batch_same_user(void **state)
{
    FIXTURE(state);
    /* five creates of 3 against 10 in one batch: each sees the debits before it */
    char uid[37];
    funded_user(f, 10, uid);
    gp_task_t t[5];
    gp_store_op_t ops[6];
    gp_store_op_t *batch[6];
    for (int i = 0; i < 5; i++) {
        priced_task(&t[i], uid, 3, NULL);
        ops[i] = (gp_store_op_t){.kind = GP_OP_CREATE, .task = &t[i]};
        batch[i] = &ops[i];
    }
    /* ... and a cancel of the first, after them: its release does not help the others */
    ops[5] = (gp_store_op_t){.kind = GP_OP_CANCEL};
    memcpy(ops[5].cancel_id, t[0].id, sizeof ops[5].cancel_id);
    batch[5] = &ops[5];
    assert_int_equal(gp_store_apply_batch(f->store, batch, 6), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ops[i].result, i < 3 ? 0 : -GP_E_INSUFFICIENT_CREDITS);
    assert_int_equal(ops[5].result, 0);
    assert_int_equal(ops[5].cancel_outcome, GP_CANCEL_DONE);
    assert_balance(f, uid, 4, 6);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 3);
    /* the ledger's balances follow the batch's order */
    gp_ledger_entry_t e[8];
    size_t n = 0;
    assert_int_equal(VT(f)->ledger_list(f->store, uid, 0, e, 8, &n), 0);
    assert_int_equal(n, 5); /* grant, 3 reserves, release */
    const int64_t after[5] = {4, 1, 4, 7, 10};
    const char *kinds[5] = {"release", "reserve", "reserve", "reserve", "grant"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(e[i].kind, kinds[i]);
        assert_int_equal(e[i].balance_after, after[i]);
        gp_ledger_entry_clear(&e[i]);
    }
    for (int i = 0; i < 5; i++)
        gp_task_clear(&t[i]);
}

/* ---- credits across gateways (two stores, two writer connections) ---- */

#define GW_CREATES 60

typedef struct gateway {
    fixture_t fx;
    const char *user;
    int ok, short_balance, other;
} gateway_t;

static void *gateway_thread(void *arg)
{
    gateway_t *g = arg;
    static __thread gp_task_t t[GW_CREATES];
    gp_store_op_t ops[GW_CREATES];
    async_state_t a = {.done = 0};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cond, NULL);
    for (int i = 0; i < GW_CREATES; i++) {
        priced_task(&t[i], g->user, 1, NULL);
        ops[i] = (gp_store_op_t){
            .kind = GP_OP_CREATE, .task = &t[i], .done = async_done, .done_arg = &a};
        gp_committer_submit(g->fx.committer, &ops[i]);
    }
    pthread_mutex_lock(&a.lock);
    while (a.done < GW_CREATES)
        pthread_cond_wait(&a.cond, &a.lock);
    pthread_mutex_unlock(&a.lock);
    for (int i = 0; i < GW_CREATES; i++) {
        if (ops[i].result == 0)
            g->ok++;
        else if (ops[i].result == -GP_E_INSUFFICIENT_CREDITS)
            g->short_balance++;
        else
            g->other++;
        gp_task_clear(&t[i]);
    }
    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cond);
    return NULL;
}

static void test_credits_two_gateways(void **state)
{
    FIXTURE(state);
    char uid[37];
    funded_user(f, 100, uid);
    gateway_t gw[2];
    for (int i = 0; i < 2; i++) {
        memset(&gw[i], 0, sizeof gw[i]);
        gw[i].fx.settings = f->settings;
        assert_int_equal(open_store(&gw[i].fx), 0);
        gw[i].user = uid;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, gateway_thread, &gw[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        close_store(&gw[i].fx);
    assert_int_equal(gw[0].other + gw[1].other, 0);
    assert_int_equal(gw[0].ok + gw[1].ok, 100);
    assert_int_equal(gw[0].short_balance + gw[1].short_balance, 2 * GW_CREATES - 100);
    assert_balance(f, uid, 0, 100);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks"), 100);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'reserve'"), 100);
    assert_int_equal(raw_int("SELECT MIN(balance_after) FROM credit_ledger"), 0);
    assert_int_equal(raw_int("SELECT COUNT(DISTINCT balance_after) FROM credit_ledger"
                             " WHERE kind = 'reserve'"),
                     100);
}

#define DL_ROUNDS 25

typedef struct crosser {
    fixture_t fx;
    const char *first, *second;
    int failures;
} crosser_t;

/* Batches that touch two users in opposite orders from two sessions: the user lock taken
 * in id order first keeps them from deadlocking (a deadlock aborts a whole batch). */
static void *crosser_thread(void *arg)
{
    crosser_t *c = arg;
    for (int r = 0; r < DL_ROUNDS; r++) {
        gp_task_t t[2];
        priced_task(&t[0], c->first, 1, NULL);
        priced_task(&t[1], c->second, 1, NULL);
        gp_store_op_t ops[2] = {{.kind = GP_OP_CREATE, .task = &t[0]},
                                {.kind = GP_OP_CREATE, .task = &t[1]}};
        gp_store_op_t *batch[2] = {&ops[0], &ops[1]};
        if (gp_store_apply_batch(c->fx.store, batch, 2) != 0 || ops[0].result != 0 ||
            ops[1].result != 0)
            c->failures++;
        /* and settle them crosswise too */
        gp_store_op_t cancels[2] = {{.kind = GP_OP_CANCEL}, {.kind = GP_OP_CANCEL}};
        memcpy(cancels[0].cancel_id, t[1].id, sizeof cancels[0].cancel_id);
        memcpy(cancels[1].cancel_id, t[0].id, sizeof cancels[1].cancel_id);
        gp_store_op_t *cb[2] = {&cancels[0], &cancels[1]};
        if (gp_store_apply_batch(c->fx.store, cb, 2) != 0 || cancels[0].result != 0 ||
            cancels[1].result != 0)
            c->failures++;
        gp_task_clear(&t[0]);
        gp_task_clear(&t[1]);
    }
    return NULL;
}

static void test_credits_no_deadlock(void **state)
{
    FIXTURE(state);
    char a[37], b[37];
    funded_user(f, 1000, a);
    funded_user(f, 1000, b);
    crosser_t cr[2] = {{.first = a, .second = b}, {.first = b, .second = a}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        cr[i].fx.settings = f->settings;
        assert_int_equal(open_store(&cr[i].fx), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, crosser_thread, &cr[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        close_store(&cr[i].fx);
    assert_int_equal(cr[0].failures + cr[1].failures, 0);
    assert_balance(f, a, 1000, 0);
    assert_balance(f, b, 1000, 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'release'"),
                     4 * DL_ROUNDS);
}

/* The schema as migration 1 left it (frozen: this is the past, not the current migration). */
static const char v1_schema[] =
    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);"
    "INSERT INTO schema_migrations VALUES (1, 1);"
    "CREATE TABLE tasks ("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  task_type TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  params JSONB NOT NULL,"
    "  result JSONB,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_retries INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  cancel_requested BOOLEAN NOT NULL DEFAULT false,"
    "  idempotency_key TEXT UNIQUE,"
    "  created_at BIGINT NOT NULL,"
    "  started_at BIGINT,"
    "  completed_at BIGINT,"
    "  not_before BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX tasks_status_seq ON tasks(status, seq);"
    "CREATE INDEX tasks_type_seq ON tasks(task_type, seq);"
    "CREATE INDEX tasks_unfinished_seq ON tasks(seq) WHERE status IN ('pending', 'processing');"
    "INSERT INTO tasks (id, task_type, provider, status, params, max_retries, priority,"
    " idempotency_key, created_at) VALUES"
    " ('00000000-0000-7000-8000-000000000001', 'echo', 'echo', 'pending', '{\"a\":1}', 2, 0,"
    "  'old-key', 10),"
    " ('00000000-0000-7000-8000-000000000002', 'echo', 'echo', 'succeeded', '{}', 2, 0,"
    "  NULL, 11)";

static void test_migrate_from_v1(void **state)
{
    FIXTURE(state);
    close_store(f);
    assert_true(raw_exec(DROP_ALL));
    assert_true(raw_exec(v1_schema));
    assert_int_equal(open_store(f), 0);
    long long version = raw_int("SELECT MAX(version) FROM schema_migrations");
    assert_true(version >= 2);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_migrations"), version);
    /* migrate twice more: nothing changes */
    char err[512] = "";
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_migrations"), version);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM users"), 1);

    /* the old tasks are kept and belong to the built-in user */
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tasks WHERE owner = 'local'"), 2);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, "00000000-0000-7000-8000-000000000001", &got), 0);
    assert_string_equal(got.owner, GP_LOCAL_USER_ID);
    assert_null(got.request_hash);
    assert_string_equal(got.idempotency_key, "old-key");
    assert_int_equal(got.seq, 1);
    assert_int_equal(got.price, 0); /* old tasks are free */
    assert_int_equal(got.charge_round, 0);
    gp_task_clear(&got);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM credit_ledger"), 0);
    gp_task_t page[4];
    size_t n = list_owner(f, GP_LOCAL_USER_ID, -1, page, 4);
    assert_int_equal(n, 2);
    clear_all(page, n);
    gp_user_t u;
    assert_int_equal(VT(f)->user_get(f->store, GP_LOCAL_USER_ID, &u), 0);
    gp_user_clear(&u);

    /* the old key replays for its owner and is free for any other one */
    bool replayed = false;
    gp_task_t t;
    make_owned_task(&t, "", "old-key", NULL);
    assert_int_equal(create(f, &t, &replayed), 0);
    assert_true(replayed);
    assert_string_equal(t.id, "00000000-0000-7000-8000-000000000001");
    gp_task_clear(&t);
    make_owned_task(&t, "u-1", "old-key", NULL);
    assert_int_equal(create(f, &t, &replayed), 0);
    assert_false(replayed);
    assert_true(t.seq > 2); /* the identity kept counting */
    gp_task_clear(&t);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM pg_constraint"
                             " WHERE conname = 'tasks_idempotency_key_key'"),
                     0);
}

#define ATTEMPTS_FIXTURE(state) FIXTURE(state)
/* ---- attempts history (migration 3) ---- */

static int claim_as(fixture_t *f, const char *id, const char *worker, bool takeover)
{
    gp_task_t claimed = {0};
    gp_store_op_t op = {.kind = GP_OP_CLAIM,
                        .task = &claimed,
                        .claim_started_at = gp_now_ms(),
                        .claim_takeover = takeover,
                        .claim_worker_id = worker};
    memcpy(op.cancel_id, id, sizeof op.cancel_id);
    int rc = gp_committer_run_sync(f->committer, &op);
    if (rc == 0)
        assert_string_equal(claimed.worker_id, worker);
    gp_task_clear(&claimed);
    return rc;
}

static size_t attempts_of(fixture_t *f, const char *id, gp_attempt_t *out, size_t cap)
{
    size_t n = 99999;
    assert_int_equal(f->store->vt->attempts_list(f->store, id, out, cap, &n), 0);
    assert_true(n <= cap);
    return n;
}

static bool holds(fixture_t *f, const char *task_id, const char *worker)
{
    gp_task_holder_t h[64];
    size_t n = 0;
    assert_int_equal(f->store->vt->holders_list(f->store, h, 64, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(h[i].task_id, task_id))
            return !strcmp(h[i].worker_id, worker);
    return false;
}

static void test_attempts_history(void **state)
{
    ATTEMPTS_FIXTURE(state);
    gp_task_t t;
    gp_attempt_t a[8];
    make_task(&t, "echo", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);
    assert_int_equal(attempts_of(f, t.id, a, 8), 0);

    /* claim: the task names its worker, the attempt begins */
    assert_int_equal(claim_as(f, t.id, "h:1:aaaaaaaa", false), 0);
    gp_task_t got;
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_string_equal(got.worker_id, "h:1:aaaaaaaa");
    gp_task_clear(&got);
    assert_true(holds(f, t.id, "h:1:aaaaaaaa"));
    assert_int_equal(attempts_of(f, t.id, a, 8), 1);
    assert_int_equal(a[0].attempt, 1);
    assert_string_equal(a[0].status, "running");
    assert_string_equal(a[0].worker_id, "h:1:aaaaaaaa");
    assert_true(a[0].started_at > 0);
    assert_int_equal(a[0].ended_at, 0);

    /* a retryable failure ends it "retried" with the error */
    gp_store_op_t back = {.kind = GP_OP_TRANSITION};
    memcpy(back.tr.id, t.id, sizeof back.tr.id);
    back.tr.from_status = GP_TASK_PROCESSING;
    back.tr.from_attempts = 1;
    back.tr.to_status = GP_TASK_PENDING;
    back.tr.to_attempts = 1;
    back.tr.error_code = "engine_busy";
    back.tr.error_message = "later";
    assert_int_equal(gp_committer_run_sync(f->committer, &back), 0);
    assert_int_equal(attempts_of(f, t.id, a, 8), 1);
    assert_string_equal(a[0].status, "retried");
    assert_string_equal(a[0].error_code, "engine_busy");
    assert_string_equal(a[0].error_message, "later");
    assert_true(a[0].ended_at >= a[0].started_at);

    /* another worker claims; a takeover by a third ends that attempt "lost" */
    assert_int_equal(claim_as(f, t.id, "h:2:bbbbbbbb", false), 0);
    assert_int_equal(claim_as(f, t.id, "h:3:cccccccc", false), -GP_E_CONFLICT);
    assert_int_equal(claim_as(f, t.id, "h:3:cccccccc", true), 0);
    assert_true(holds(f, t.id, "h:3:cccccccc"));
    assert_int_equal(attempts_of(f, t.id, a, 8), 3);
    assert_string_equal(a[1].worker_id, "h:2:bbbbbbbb");
    assert_string_equal(a[1].status, "lost");
    assert_true(a[1].ended_at > 0);
    assert_string_equal(a[2].status, "running");
    assert_int_equal(a[2].attempt, 3);

    /* the dead holder's late outcome loses the CAS and leaves the history alone */
    assert_int_equal(transition(f, t.id, GP_TASK_PROCESSING, 2, GP_TASK_SUCCEEDED, 2),
                     -GP_E_CONFLICT);
    assert_int_equal(transition(f, t.id, GP_TASK_PROCESSING, 3, GP_TASK_SUCCEEDED, 3), 0);
    assert_int_equal(attempts_of(f, t.id, a, 8), 3);
    assert_string_equal(a[1].status, "lost");
    assert_string_equal(a[2].status, "succeeded");
    assert_string_equal(a[2].error_code, "");
    assert_false(holds(f, t.id, "h:3:cccccccc"));
    /* cap respected */
    assert_int_equal(attempts_of(f, t.id, a, 2), 2);

    /* a cancel honoured at the outcome ends the attempt "canceled" */
    gp_task_t c;
    make_task(&c, "echo", NULL, 0);
    assert_int_equal(create(f, &c, NULL), 0);
    assert_int_equal(claim_as(f, c.id, "h:1:aaaaaaaa", false), 0);
    gp_cancel_outcome_t out;
    assert_int_equal(cancel(f, c.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);
    gp_store_op_t fin = {.kind = GP_OP_TRANSITION};
    memcpy(fin.tr.id, c.id, sizeof fin.tr.id);
    fin.tr.from_status = GP_TASK_PROCESSING;
    fin.tr.from_attempts = 1;
    fin.tr.to_status = GP_TASK_SUCCEEDED;
    fin.tr.to_attempts = 1;
    fin.tr.completed_at = gp_now_ms();
    fin.tr.honor_cancel = true;
    assert_int_equal(gp_committer_run_sync(f->committer, &fin), 0);
    assert_int_equal(fin.tr.applied_status, GP_TASK_CANCELED);
    assert_int_equal(attempts_of(f, c.id, a, 8), 1);
    assert_string_equal(a[0].status, "canceled");
    assert_string_equal(a[0].error_code, "canceled");

    /* a hand-back (no error) is "interrupted"; unknown ids have no attempts */
    gp_task_t h;
    make_task(&h, "echo", NULL, 0);
    assert_int_equal(create(f, &h, NULL), 0);
    assert_int_equal(claim_as(f, h.id, "h:1:aaaaaaaa", false), 0);
    assert_int_equal(transition(f, h.id, GP_TASK_PROCESSING, 1, GP_TASK_PENDING, 1), 0);
    assert_int_equal(attempts_of(f, h.id, a, 8), 1);
    assert_string_equal(a[0].status, "interrupted");
    char other[37];
    gp_uuid7(other);
    assert_int_equal(attempts_of(f, other, a, 8), 0);
    gp_task_clear(&h);
    gp_task_clear(&c);
    gp_task_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_twice_same_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_concurrent_start, setup, teardown),
        cmocka_unit_test(test_open_unreachable),
        cmocka_unit_test_setup_teardown(test_create_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_honor_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_unfinished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_unfinished_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_ops_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_200_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_sql_error_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unstorable_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_held_by_concurrent_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_user_after_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_oidc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_list_and_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_per_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_reserve_on_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_replay_reserves_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_capture_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_reserve_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_batch_same_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_two_gateways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_no_deadlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_history, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_pg", tests, group_setup, NULL);
}

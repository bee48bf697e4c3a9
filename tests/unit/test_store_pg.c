/*
 * test_store_pg.c — the PostgreSQL store through gp_store_open() (database_url from
 * GENPULSE_TEST_PG_URL; every test is skipped when it is unset), mirroring test_store.c:
 * migrations, create, idempotency, compare-and-set transitions, claim, cancel, keyset lists
 * and the unfinished scan, plus what only a client/server store has: pipelined batches, a
 * batch that fails as a whole on an SQL error, a key held by a concurrent transaction, and a
 * lost connection (the store reconnects by itself).
 *
 * The group setup drops the tables; each test then opens + migrates and empties `tasks`.
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
    return raw_exec("DROP TABLE IF EXISTS tasks, schema_migrations CASCADE") ? 0 : -1;
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
    if (open_store(f) != 0 || !raw_exec("TRUNCATE tasks RESTART IDENTITY")) {
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
    assert_true(raw_exec("DROP TABLE IF EXISTS tasks, schema_migrations CASCADE"));
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
    };
    return cmocka_run_group_tests_name("store_pg", tests, group_setup, NULL);
}

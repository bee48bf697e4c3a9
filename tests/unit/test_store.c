/*
 * test_store.c — the SQLite store through gp_store_open() (empty database_url: a file in
 * data_dir), written through the group committer: create, idempotency, compare-and-set
 * transitions, cancel, keyset-paginated lists and the unfinished scan.
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

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    char dir[64];
    gp_settings_t settings;
    gp_store_t *store;
    gp_committer_t *committer;
} fixture_t;

static char g_empty[1];
static char g_normal[] = "normal";

static int open_store(fixture_t *f)
{
    char err[512] = "";
    if (gp_store_open(&f->store, &f->settings, err, sizeof err) != 0) {
        fprintf(stderr, "gp_store_open: %s\n", err);
        return -1;
    }
    if (gp_store_migrate(f->store, err, sizeof err) != 0) {
        fprintf(stderr, "gp_store_migrate: %s\n", err);
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

static int setup(void **state)
{
    gp_log_setup(GP_LOG_WARN, false);
    fixture_t *f = gp_xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gp-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    gp_settings_t *s = &f->settings;
    s->host = s->database_url = s->queue_url = s->storage_url = s->public_url = g_empty;
    s->log_level = s->log_format = g_empty;
    s->data_dir = f->dir;
    s->sqlite_synchronous = g_normal;
    s->commit_batch_max = 64;
    if (open_store(f) != 0) {
        gp_rmtree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    close_store(f);
    gp_rmtree(f->dir);
    free(f);
    return 0;
}

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

/* ---- tests ---- */

/* Rows in schema_migrations, read with a separate connection. */
static int migration_rows(fixture_t *f, int *max_version)
{
    char *path = gp_xasprintf("%s/genpulse.db", f->dir);
    sqlite3 *db = NULL;
    int rows = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(version) FROM schema_migrations", -1, &st,
                               NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            rows = sqlite3_column_int(st, 0);
            *max_version = sqlite3_column_int(st, 1);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    free(path);
    return rows;
}

static void test_migrate_idempotent(void **state)
{
    fixture_t *f = *state;
    int version = 0;
    /* setup opened and migrated once */
    int rows = migration_rows(f, &version);
    assert_true(rows >= 1);
    int first_version = version;
    assert_int_equal(rows, first_version);

    gp_task_t t;
    make_task(&t, "echo", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);

    /* every start migrates again: reopen the same file twice more */
    for (int i = 0; i < 2; i++) {
        close_store(f);
        assert_int_equal(open_store(f), 0); /* open + migrate */
        assert_int_equal(migration_rows(f, &version), rows);
        assert_int_equal(version, first_version);
        /* data kept, and the store still works */
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
    fixture_t *f = *state;
    char err[512] = "";
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
    assert_int_equal(gp_store_migrate(f->store, err, sizeof err), 0);
}

static void test_create_and_get(void **state)
{
    fixture_t *f = *state;
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

    /* a second create gets a larger seq */
    gp_task_t t2;
    make_task(&t2, "echo", NULL, 0);
    assert_int_equal(create(f, &t2, NULL), 0);
    assert_true(t2.seq > t.seq);

    /* unknown id */
    char other[37];
    gp_uuid7(other);
    assert_int_equal(gp_store_get(f->store, other, &got), -GP_E_NOT_FOUND);

    /* the same id twice (no idempotency key) is a conflict, not a second row */
    gp_task_t dup;
    make_task(&dup, "echo", NULL, 0);
    memcpy(dup.id, id, sizeof dup.id);
    assert_int_equal(create(f, &dup, NULL), -GP_E_CONFLICT);
    gp_task_clear(&dup);

    gp_task_clear(&t);
    gp_task_clear(&t2);
}

static void test_idempotency_replay(void **state)
{
    fixture_t *f = *state;
    gp_task_t a;
    make_task(&a, "text-to-image", "client-key-1", 1);
    bool replayed = true;
    assert_int_equal(create(f, &a, &replayed), 0);
    assert_false(replayed);

    /* same key, new id and different params: the first task comes back */
    gp_task_t b;
    make_task(&b, "echo", "client-key-1", 5);
    char b_id[37];
    memcpy(b_id, b.id, sizeof b_id);
    assert_string_not_equal(a.id, b_id);
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

    /* a different key is a different task */
    gp_task_t c;
    make_task(&c, "echo", "client-key-2", 0);
    assert_int_equal(create(f, &c, &replayed), 0);
    assert_false(replayed);

    gp_task_t rows[10];
    size_t n = list(f, -1, NULL, 0, 10, rows);
    assert_int_equal(n, 2);
    size_t with_key1 = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].idempotency_key && !strcmp(rows[i].idempotency_key, "client-key-1"))
            with_key1++;
    assert_int_equal(with_key1, 1);
    clear_all(rows, n);

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
    fixture_t *f = *state;
    gp_task_t t;
    make_task(&t, "text-to-image", NULL, 0);
    assert_int_equal(create(f, &t, NULL), 0);

    /* wrong attempts, wrong status, unknown id: nothing changes */
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

    /* the right one wins, once */
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);
    assert_int_equal(transition(f, t.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1),
                     -GP_E_CONFLICT);
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PROCESSING);
    assert_int_equal(got.attempts, 1);
    assert_true(got.started_at > 0);
    int64_t started = got.started_at;
    gp_task_clear(&got);

    /* retryable failure: back to pending with the error and not_before */
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
    assert_int_equal(gp_store_get(f->store, t.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PENDING);
    assert_int_equal(got.not_before, op.tr.not_before);
    assert_string_equal(got.error_code, "engine_busy");
    assert_string_equal(got.error_message, "try later");
    assert_int_equal(got.started_at, started); /* 0 = keep */
    gp_task_clear(&got);

    /* second attempt succeeds with a result; error cleared */
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
    /* a duplicate execution of the same commit changes nothing */
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

static void test_cancel(void **state)
{
    fixture_t *f = *state;
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

    /* pending → canceled at once */
    assert_int_equal(cancel(f, p.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_DONE);
    assert_int_equal(gp_store_get(f->store, p.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_CANCELED);
    assert_true(got.cancel_requested);
    assert_true(got.completed_at > 0);
    assert_string_equal(got.error_code, "canceled");
    gp_task_clear(&got);

    /* processing → cancel requested, still processing */
    assert_int_equal(cancel(f, r.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);
    assert_int_equal(gp_store_get(f->store, r.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_PROCESSING);
    assert_true(got.cancel_requested);
    assert_int_equal(got.completed_at, 0);
    gp_task_clear(&got);
    /* asking again is still "requested" */
    assert_int_equal(cancel(f, r.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_REQUESTED);

    /* terminal: too late, unchanged */
    assert_int_equal(cancel(f, s.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_TOO_LATE);
    assert_int_equal(gp_store_get(f->store, s.id, &got), 0);
    assert_int_equal(got.status, GP_TASK_SUCCEEDED);
    assert_false(got.cancel_requested);
    gp_task_clear(&got);
    /* canceled is terminal too */
    assert_int_equal(cancel(f, p.id, &out), 0);
    assert_int_equal(out, GP_CANCEL_TOO_LATE);

    /* unknown */
    char other[37];
    gp_uuid7(other);
    assert_int_equal(cancel(f, other, &out), -GP_E_NOT_FOUND);

    /* a canceled pending task cannot be picked up afterwards */
    assert_int_equal(transition(f, p.id, GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1),
                     -GP_E_CONFLICT);

    gp_task_clear(&p);
    gp_task_clear(&r);
    gp_task_clear(&s);
}

#define N_LIST 25

static void test_list_pagination_and_filter(void **state)
{
    fixture_t *f = *state;
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
    /* every fourth one is processing */
    for (int i = 0; i < N_LIST; i += 4)
        assert_int_equal(transition(f, ids[i], GP_TASK_PENDING, 0, GP_TASK_PROCESSING, 1), 0);

    /* all, newest first, in pages of 10: 10 + 10 + 5, no gaps or repeats */
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
    /* past the oldest: empty */
    assert_int_equal(list(f, -1, NULL, seqs[0], 10, page), 0);

    /* status filter, also paginated */
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

    /* task type filter */
    gp_task_t big[N_LIST];
    n = list(f, -1, "text-to-image", 0, N_LIST, big);
    assert_int_equal(n, (N_LIST + 2) / 3);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(big[i].task_type, "text-to-image");
    clear_all(big, n);
    /* both filters */
    n = list(f, GP_TASK_PROCESSING, "text-to-image", 0, N_LIST, big);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(big[i].task_type, "text-to-image");
        assert_int_equal(big[i].status, GP_TASK_PROCESSING);
    }
    assert_int_equal(n, 3); /* i = 0, 12, 24 */
    clear_all(big, n);

    /* limit 1 */
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
    fixture_t *f = *state;
    scan_acc_t acc = {0};
    assert_int_equal(gp_store_scan_unfinished(f->store, scan_cb, &acc), 0);
    assert_int_equal(acc.n, 0);

    gp_task_t t[6];
    for (int i = 0; i < 6; i++) {
        make_task(&t[i], "echo", NULL, 0);
        assert_int_equal(create(f, &t[i], NULL), 0);
    }
    /* 0 pending, 1 processing, 2 succeeded, 3 canceled, 4 failed, 5 pending */
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
    /* oldest first */
    assert_string_equal(acc.ids[0], t[0].id);
    assert_int_equal(acc.status[0], GP_TASK_PENDING);
    assert_string_equal(acc.ids[1], t[1].id);
    assert_int_equal(acc.status[1], GP_TASK_PROCESSING);
    assert_string_equal(acc.ids[2], t[5].id);
    assert_int_equal(acc.status[2], GP_TASK_PENDING);
    for (int i = 0; i < 6; i++)
        gp_task_clear(&t[i]);
}

static void test_batch_ops_independent(void **state)
{
    fixture_t *f = *state;
    /* one transaction, four ops: two failures must not undo the successes around them */
    gp_task_t a, dup, b;
    make_task(&a, "echo", NULL, 0);
    make_task(&b, "echo", "batch-key", 0);
    make_task(&dup, "echo", NULL, 0);
    memcpy(dup.id, a.id, sizeof dup.id); /* same id as a: constraint violation */
    gp_store_op_t ops[4] = {
        {.kind = GP_OP_CREATE, .task = &a},
        {.kind = GP_OP_TRANSITION},
        {.kind = GP_OP_CREATE, .task = &dup},
        {.kind = GP_OP_CREATE, .task = &b},
    };
    gp_uuid7(ops[1].tr.id);
    ops[1].tr.from_status = GP_TASK_PENDING;
    ops[1].tr.to_status = GP_TASK_PROCESSING;
    ops[1].tr.to_attempts = 1;
    gp_store_op_t *batch[4] = {&ops[0], &ops[1], &ops[2], &ops[3]};
    /* the committer is idle: calling apply_batch directly keeps one writer at a time */
    assert_int_equal(gp_store_apply_batch(f->store, batch, 4), 0);
    assert_int_equal(ops[0].result, 0);
    assert_int_equal(ops[1].result, -GP_E_CONFLICT);
    assert_int_equal(ops[2].result, -GP_E_CONFLICT);
    assert_int_equal(ops[3].result, 0);
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

    gp_task_clear(&a);
    gp_task_clear(&b);
    gp_task_clear(&dup);
    gp_task_clear(&c);
    gp_task_clear(&d);
}

/* ---- concurrent submitters: group commit keeps every op ---- */

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
            snprintf(key, sizeof key, "shared-%d", i); /* every thread uses the same keys */
            free(t.idempotency_key);
            t.idempotency_key = gp_xstrdup(key);
        }
        gp_store_op_t op = {.kind = GP_OP_CREATE, .task = &t};
        if (gp_committer_run_sync(s->f->committer, &op) != 0)
            s->failures++;
        gp_task_clear(&t);
    }
    return NULL;
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

static void test_concurrent_group_commit(void **state)
{
    fixture_t *f = *state;
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
    /* keyed ones (10 keys) exist once; the rest once per thread */
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

    /* asynchronous submit with a done callback */
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
            assert_true(t[i].seq > t[i - 1].seq); /* applied in submission order */
        gp_task_clear(&t[i]);
    }
    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cond);
}

#define ATTEMPTS_FIXTURE(state) fixture_t *f = *(state)
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
        cmocka_unit_test_setup_teardown(test_create_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_unfinished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_ops_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_history, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

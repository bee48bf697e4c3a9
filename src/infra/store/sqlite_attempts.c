/*
 * sqlite_attempts.c — the attempts history of the SQLite store (store.h, "attempts
 * history"): one task_attempts row per attempt, written on the writer inside the
 * committer's transaction by the claim and by the transition or cancel that ends it.
 *
 * History is a record, not a decision: a failed history write is logged and leaves its op's
 * result alone (the task row is what the lifecycle depends on).
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/sqlite_internal.h"

#include <stdio.h>
#include <string.h>

enum {
    A_LOSE,  /* a takeover: the open attempt of the previous holder ends "lost" */
    A_BEGIN, /* the claim's attempt, "running" */
    A_END,   /* attempt ?2 (0 = whichever is open) ends with ?3 */
    A__COUNT
};

static const char *const attempt_sql[A__COUNT] = {
    "UPDATE task_attempts SET status = 'lost', ended_at = ?3 WHERE task_id = ?1"
    " AND attempt < ?2 AND ended_at IS NULL",
    /* REPLACE: an attempt number is used once, but a replayed claim must not fail. */
    "INSERT OR REPLACE INTO task_attempts (task_id, attempt, worker_id, started_at, status)"
    " VALUES (?1, ?2, ?3, ?4, 'running')",
    "UPDATE task_attempts SET status = ?3, ended_at = ?4, error_code = ?5, error_message = ?6"
    " WHERE task_id = ?1 AND (?2 = 0 OR attempt = ?2) AND ended_at IS NULL",
};

int gp_sqlite_attempts_prepare(sqlite_store_t *s, char *err, size_t cap)
{
    for (int i = 0; i < A__COUNT; i++) {
        sqlite3_finalize(s->attempt_stmts[i]); /* migrate may run twice on one handle */
        s->attempt_stmts[i] = NULL;
        if (sqlite3_prepare_v3(s->writer, attempt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->attempt_stmts[i], NULL) != SQLITE_OK) {
            snprintf(err, cap, "prepare failed: %s (%s)", sqlite3_errmsg(s->writer),
                     attempt_sql[i]);
            return -GP_E_INTERNAL;
        }
    }
    return 0;
}

void gp_sqlite_attempts_finalize(sqlite_store_t *s)
{
    for (int i = 0; i < A__COUNT; i++) {
        sqlite3_finalize(s->attempt_stmts[i]);
        s->attempt_stmts[i] = NULL;
    }
}

static void run(sqlite_store_t *s, sqlite3_stmt *st, const char *task_id)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        gp_log(GP_LOG_ERROR, task_id, "store: attempts history not written: %s",
               sqlite3_errmsg(s->writer));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

void gp_sqlite_attempt_begin(sqlite_store_t *s, const char *task_id, int attempt,
                             const char *worker_id, int64_t started_at)
{
    sqlite3_stmt *lose = s->attempt_stmts[A_LOSE], *begin = s->attempt_stmts[A_BEGIN];
    if (!lose || !begin)
        return;
    sqlite3_bind_text(lose, 1, task_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(lose, 2, attempt);
    sqlite3_bind_int64(lose, 3, started_at);
    run(s, lose, task_id);
    sqlite3_bind_text(begin, 1, task_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(begin, 2, attempt);
    bind_text_or_null(begin, 3, worker_id);
    sqlite3_bind_int64(begin, 4, started_at);
    run(s, begin, task_id);
}

void gp_sqlite_attempt_end(sqlite_store_t *s, const char *task_id, int attempt, gp_task_status_t to,
                           const char *error_code, const char *error_message)
{
    sqlite3_stmt *st = s->attempt_stmts[A_END];
    if (!st)
        return;
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, attempt);
    sqlite3_bind_text(st, 3, gp_attempt_status_for(to, error_code), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, gp_now_ms());
    bind_text_or_null(st, 5, error_code);
    bind_text_or_null(st, 6, error_code ? error_message : NULL);
    run(s, st, task_id);
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", v ? v : "");
}

/* Runs a read on a pooled reader: bind(st, arg) then one row(st, i) per result row. */
static int read_rows(sqlite_store_t *s, const char *sql, void (*bind)(sqlite3_stmt *, const void *),
                     const void *arg, void (*row)(sqlite3_stmt *, void *, size_t), void *out,
                     size_t cap, size_t *n)
{
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    *n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = -GP_E_IO;
    } else {
        bind(st, arg);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)cap);
        int step = SQLITE_DONE;
        while (*n < cap && (step = sqlite3_step(st)) == SQLITE_ROW)
            row(st, out, (*n)++);
        if (*n < cap && step != SQLITE_DONE)
            rc = -GP_E_IO;
    }
    sqlite3_finalize(st);
    gp_sqlite_give_reader(s, slot);
    return rc;
}

static void bind_task(sqlite3_stmt *st, const void *arg)
{
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
}

static void attempt_row(sqlite3_stmt *st, void *out, size_t i)
{
    gp_attempt_t *a = &((gp_attempt_t *)out)[i];
    memset(a, 0, sizeof *a);
    a->attempt = sqlite3_column_int(st, 0);
    copy_col(st, 1, a->worker_id, sizeof a->worker_id);
    a->started_at = sqlite3_column_int64(st, 2);
    a->ended_at = sqlite3_column_int64(st, 3);
    copy_col(st, 4, a->status, sizeof a->status);
    copy_col(st, 5, a->error_code, sizeof a->error_code);
    copy_col(st, 6, a->error_message, sizeof a->error_message);
}

int gp_sqlite_attempts_list(gp_store_t *st, const char *task_id, gp_attempt_t *out, size_t cap,
                            size_t *n)
{
    return read_rows((sqlite_store_t *)st,
                     "SELECT attempt, worker_id, started_at, ended_at, status, error_code,"
                     " error_message FROM task_attempts WHERE task_id = ?1 ORDER BY attempt"
                     " LIMIT ?9",
                     bind_task, task_id, attempt_row, out, cap, n);
}

static void bind_none(sqlite3_stmt *st, const void *arg)
{
    (void)st, (void)arg;
}

static void holder_row(sqlite3_stmt *st, void *out, size_t i)
{
    gp_task_holder_t *h = &((gp_task_holder_t *)out)[i];
    copy_col(st, 0, h->task_id, sizeof h->task_id);
    copy_col(st, 1, h->worker_id, sizeof h->worker_id);
}

int gp_sqlite_holders_list(gp_store_t *st, gp_task_holder_t *out, size_t cap, size_t *n)
{
    return read_rows((sqlite_store_t *)st,
                     "SELECT id, worker_id FROM tasks WHERE status = 'processing' ORDER BY seq"
                     " LIMIT ?9",
                     bind_none, NULL, holder_row, out, cap, n);
}

/*
 * sqlite_credits.c — the credit movements of the embedded store (store.h, "credits"): run by
 * the committer inside the batch transaction, next to the task change they belong to, and
 * grants (on the identity connection) and ledger reads (on a pooled reader).
 *
 * Exactly-once comes from the ledger's UNIQUE unique_key: every movement first inserts its
 * ledger row (INSERT OR IGNORE) and touches the balance only if that row was new.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_DEBIT,          /* credits -= price, reserved += price, if credits suffice */
    ST_LEDGER_RESERVE, /* the reserve row of (task, round) */
    ST_LEDGER_SETTLE,  /* the capture or release row of the task's current round */
    ST_CAPTURE,        /* reserved -= price */
    ST_RELEASE,        /* reserved -= price, credits += price */
    ST__COUNT
};

static const char *const credit_sql[ST__COUNT] = {
    [ST_DEBIT] = "UPDATE users SET credits = credits - ?2, reserved = reserved + ?2"
                 " WHERE id = ?1 AND credits >= ?2",
    [ST_LEDGER_RESERVE] =
        "INSERT OR IGNORE INTO credit_ledger (user_id, task_id, kind, amount, balance_after,"
        " unique_key, created_at) SELECT ?1, ?2, 'reserve', ?3, credits,"
        " ?2 || ':reserve:' || ?4, ?5 FROM users WHERE id = ?1",
    /* balance_after of a release counts the price it gives back */
    [ST_LEDGER_SETTLE] =
        "INSERT OR IGNORE INTO credit_ledger (user_id, task_id, kind, amount, balance_after,"
        " unique_key, created_at) SELECT t.owner, t.id, ?2, t.price,"
        " u.credits + CASE WHEN ?2 = 'release' THEN t.price ELSE 0 END,"
        " t.id || ':' || ?2 || ':' || t.charge_round, ?3"
        " FROM tasks t JOIN users u ON u.id = t.owner WHERE t.id = ?1 AND t.price > 0",
    [ST_CAPTURE] = "UPDATE users SET reserved = reserved - (SELECT price FROM tasks WHERE id = ?1)"
                   " WHERE id = (SELECT owner FROM tasks WHERE id = ?1)",
    [ST_RELEASE] = "UPDATE users SET reserved = reserved - (SELECT price FROM tasks WHERE id = ?1),"
                   " credits = credits + (SELECT price FROM tasks WHERE id = ?1)"
                   " WHERE id = (SELECT owner FROM tasks WHERE id = ?1)",
};

static sqlite3_stmt *stmt(sqlite_store_t *s, int which)
{
    if (!s->credit_stmts[which] &&
        sqlite3_prepare_v3(s->writer, credit_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                           &s->credit_stmts[which], NULL) != SQLITE_OK) {
        GP_ERROR("store: cannot prepare a credit statement: %s", sqlite3_errmsg(s->writer));
        return NULL;
    }
    return s->credit_stmts[which];
}

/* Steps st and resets it: the number of rows changed, or -1 on an error. */
static int run(sqlite_store_t *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        GP_ERROR("store: credit statement failed: %s", sqlite3_errmsg(s->writer));
        return -1;
    }
    return sqlite3_changes(s->writer);
}

void gp_sqlite_credits_finalize(sqlite_store_t *s)
{
    for (int i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(s->credit_stmts[i]);
        s->credit_stmts[i] = NULL;
    }
}

int gp_sqlite_reserve(sqlite_store_t *s, const char *owner, const char *task_id, int64_t price,
                      int round)
{
    sqlite3_stmt *debit = stmt(s, ST_DEBIT), *row = stmt(s, ST_LEDGER_RESERVE);
    if (!debit || !row)
        return -GP_E_IO;
    sqlite3_bind_text(debit, 1, owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(debit, 2, price);
    int n = run(s, debit);
    if (n < 0)
        return -GP_E_IO;
    if (n == 0)
        return -GP_E_INSUFFICIENT_CREDITS;
    sqlite3_bind_text(row, 1, owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(row, 2, task_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(row, 3, price);
    sqlite3_bind_int(row, 4, round);
    sqlite3_bind_int64(row, 5, gp_now_ms());
    return run(s, row) < 0 ? -GP_E_IO : 0;
}

int gp_sqlite_settle(sqlite_store_t *s, const char *task_id, bool capture)
{
    sqlite3_stmt *row = stmt(s, ST_LEDGER_SETTLE);
    sqlite3_stmt *move = stmt(s, capture ? ST_CAPTURE : ST_RELEASE);
    if (!row || !move)
        return -GP_E_IO;
    sqlite3_bind_text(row, 1, task_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(row, 2, capture ? "capture" : "release", -1, SQLITE_STATIC);
    sqlite3_bind_int64(row, 3, gp_now_ms());
    int n = run(s, row);
    if (n <= 0)
        return n < 0 ? -GP_E_IO : 0; /* free task, or settled before */
    sqlite3_bind_text(move, 1, task_id, -1, SQLITE_TRANSIENT);
    return run(s, move) < 0 ? -GP_E_IO : 0;
}

/* ---------------------------------------------------------------- identity connection */

int gp_sqlite_credits_grant(gp_store_t *base, const char *user_id, int64_t amount,
                            const char *unique_key, const char *note, int64_t *balance_out)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    if (amount <= 0 || !unique_key || !*unique_key)
        return -GP_E_BAD_REQUEST;
    pthread_mutex_lock(&s->identity_lock);
    sqlite3 *db = s->identity;
    int rc = -GP_E_IO;
    sqlite3_stmt *ins = NULL, *upd = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO credit_ledger (user_id, task_id, kind, amount,"
                           " balance_after, unique_key, note, created_at) SELECT id, NULL,"
                           " 'grant', ?2, credits + ?2, ?3, ?4, ?5 FROM users WHERE id = ?1",
                           -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE users SET credits = credits + ?2 WHERE id = ?1"
                           " RETURNING credits",
                           -1, &upd, NULL) != SQLITE_OK)
        goto rollback;
    sqlite3_bind_text(ins, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, amount);
    sqlite3_bind_text(ins, 3, unique_key, -1, SQLITE_STATIC);
    if (note)
        sqlite3_bind_text(ins, 4, note, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 5, gp_now_ms());
    if (sqlite3_step(ins) != SQLITE_DONE)
        goto rollback;
    if (sqlite3_changes(db) == 0) {
        /* no such user, or this key was granted before */
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(db, "SELECT 1 FROM users WHERE id = ?1", -1, &q, NULL);
        sqlite3_bind_text(q, 1, user_id, -1, SQLITE_STATIC);
        rc = q && sqlite3_step(q) == SQLITE_ROW ? -GP_E_CONFLICT : -GP_E_NOT_FOUND;
        sqlite3_finalize(q);
        goto rollback_rc;
    }
    sqlite3_bind_text(upd, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(upd, 2, amount);
    if (sqlite3_step(upd) != SQLITE_ROW)
        goto rollback;
    if (balance_out)
        *balance_out = sqlite3_column_int64(upd, 0);
    sqlite3_reset(upd);
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -GP_E_IO;
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    goto out;
rollback:
    GP_ERROR("store: credit grant failed: %s", sqlite3_errmsg(db));
    rc = -GP_E_IO;
rollback_rc:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    pthread_mutex_unlock(&s->identity_lock);
    return rc;
}

int gp_sqlite_ledger_list(gp_store_t *base, const char *user_id, int64_t before_seq,
                          gp_ledger_entry_t *out, size_t cap, size_t *n)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    *n = 0;
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot); /* a read: never behind a write */
    sqlite3_stmt *q = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, user_id, task_id, kind, amount, balance_after, note,"
                           " created_at FROM credit_ledger WHERE user_id = ?1"
                           " AND (?2 = 0 OR seq < ?2) ORDER BY seq DESC LIMIT ?3",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = -GP_E_IO;
    } else {
        sqlite3_bind_text(q, 1, user_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, before_seq);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)cap);
        while (*n < cap && sqlite3_step(q) == SQLITE_ROW) {
            gp_ledger_entry_t *e = &out[(*n)++];
            memset(e, 0, sizeof *e);
            e->seq = sqlite3_column_int64(q, 0);
            const char *v = (const char *)sqlite3_column_text(q, 1);
            snprintf(e->user_id, sizeof e->user_id, "%s", v ? v : "");
            v = (const char *)sqlite3_column_text(q, 2);
            snprintf(e->task_id, sizeof e->task_id, "%s", v ? v : "");
            v = (const char *)sqlite3_column_text(q, 3);
            snprintf(e->kind, sizeof e->kind, "%s", v ? v : "");
            e->amount = sqlite3_column_int64(q, 4);
            e->balance_after = sqlite3_column_int64(q, 5);
            e->note = gp_sqlite_col_text(q, 6);
            e->created_at = sqlite3_column_int64(q, 7);
        }
    }
    sqlite3_finalize(q);
    gp_sqlite_give_reader(s, slot);
    return rc;
}

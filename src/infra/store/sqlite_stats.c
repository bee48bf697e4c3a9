/* sqlite_stats.c — the SQLite store's stats entry: selects the rows, stats.c buckets them. */
#include "core/errors.h"
#include "core/log.h"
#include "infra/store/sqlite_internal.h"

int gp_sqlite_stats(gp_store_t *base, const gp_stats_query_t *q, gp_stats_bucket_t *out)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int64_t until = q->since_ms + (int64_t)q->n_buckets * q->bucket_ms;
    /* Every task alive at some point of the window: created before its end and not
     * finished before its start. */
    static const char sql[] =
        "SELECT created_at, COALESCE(started_at, 0), COALESCE(completed_at, 0), status"
        " FROM tasks WHERE created_at < ?1 AND (completed_at IS NULL OR completed_at >= ?2)"
        " AND (?3 IS NULL OR owner = ?3)";
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        GP_ERROR("store: stats: %s", sqlite3_errmsg(db));
        gp_sqlite_give_reader(s, slot);
        return -GP_E_IO;
    }
    sqlite3_bind_int64(st, 1, until);
    sqlite3_bind_int64(st, 2, q->since_ms);
    if (q->owner)
        sqlite3_bind_text(st, 3, q->owner, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    gp_stats_acc_t *acc = gp_stats_begin(q);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int status = gp_task_status_parse((const char *)sqlite3_column_text(st, 3));
        gp_stats_add(acc, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                     sqlite3_column_int64(st, 2),
                     status < 0 ? GP_TASK_PENDING : (gp_task_status_t)status);
    }
    if (step != SQLITE_DONE)
        rc = -GP_E_IO;
    gp_stats_finish(acc, out);
    sqlite3_finalize(st);
    gp_sqlite_give_reader(s, slot);
    return rc;
}

/* postgres_stats.c — the PostgreSQL store's stats entry: selects the rows, stats.c buckets
 * them. */
#include "core/errors.h"
#include "infra/store/postgres_internal.h"

#include <stdio.h>

int gp_pg_stats(gp_store_t *st, const gp_stats_query_t *q, gp_stats_bucket_t *out)
{
    if (q->owner && !gp_pg_utf8_ok(q->owner)) { /* no stored task has this owner */
        gp_stats_finish(gp_stats_begin(q), out);
        return 0;
    }
    char until[24], since[24];
    snprintf(until, sizeof until, "%lld",
             (long long)(q->since_ms + (int64_t)q->n_buckets * q->bucket_ms));
    snprintf(since, sizeof since, "%lld", (long long)q->since_ms);
    const char *v[3] = {until, since, q->owner};
    /* Every task alive at some point of the window: created before its end and not
     * finished before its start. */
    PGresult *r;
    int rc = gp_pg_pool_query(
        st,
        "SELECT created_at, COALESCE(started_at, 0), COALESCE(completed_at, 0), status"
        " FROM tasks WHERE created_at < $1::bigint"
        " AND (completed_at IS NULL OR completed_at >= $2::bigint)"
        " AND ($3::text IS NULL OR owner = $3::text)",
        3, v, &r);
    if (rc != 0)
        return rc;
    gp_stats_acc_t *acc = gp_stats_begin(q);
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        int status = gp_task_status_parse(PQgetvalue(r, i, 3));
        gp_stats_add(acc, col_i64(r, i, 0), col_i64(r, i, 1), col_i64(r, i, 2),
                     status < 0 ? GP_TASK_PENDING : (gp_task_status_t)status);
    }
    PQclear(r);
    gp_stats_finish(acc, out);
    return 0;
}

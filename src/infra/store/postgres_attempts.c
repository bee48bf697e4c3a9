/*
 * postgres_attempts.c — the attempts history reads of the PostgreSQL store (store.h). The
 * writes are part of the claim, transition and cancel statements in postgres.c, so they
 * share the op's transaction.
 */
#include "core/errors.h"
#include "infra/store/postgres_internal.h"

#include <stdio.h>
#include <string.h>

static void copy_val(const PGresult *r, int row, int col, char *out, size_t cap)
{
    const char *v = val(r, row, col);
    snprintf(out, cap, "%s", v ? v : "");
}

int gp_pg_attempts_list(gp_store_t *st, const char *task_id, gp_attempt_t *out, size_t cap,
                        size_t *n)
{
    *n = 0;
    if (!task_id || !gp_pg_utf8_ok(task_id))
        return 0;
    char limit[24];
    snprintf(limit, sizeof limit, "%zu", cap < 100000 ? cap : 100000);
    const char *v[2] = {task_id, limit};
    PGresult *r;
    int rc = gp_pg_pool_query(st,
                              "SELECT attempt, worker_id, started_at, ended_at, status, error_code,"
                              " error_message FROM task_attempts WHERE task_id = $1::text"
                              " ORDER BY attempt LIMIT $2::bigint",
                              2, v, &r);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && *n < cap; i++) {
        gp_attempt_t *a = &out[(*n)++];
        memset(a, 0, sizeof *a);
        a->attempt = (int)col_i64(r, i, 0);
        copy_val(r, i, 1, a->worker_id, sizeof a->worker_id);
        a->started_at = col_i64(r, i, 2);
        a->ended_at = col_i64(r, i, 3);
        copy_val(r, i, 4, a->status, sizeof a->status);
        copy_val(r, i, 5, a->error_code, sizeof a->error_code);
        copy_val(r, i, 6, a->error_message, sizeof a->error_message);
    }
    PQclear(r);
    return 0;
}

int gp_pg_holders_list(gp_store_t *st, gp_task_holder_t *out, size_t cap, size_t *n)
{
    *n = 0;
    char limit[24];
    snprintf(limit, sizeof limit, "%zu", cap < 1000000 ? cap : 1000000);
    const char *v[1] = {limit};
    PGresult *r;
    int rc = gp_pg_pool_query(st,
                              "SELECT id, worker_id FROM tasks WHERE status = 'processing'"
                              " ORDER BY seq LIMIT $1::bigint",
                              1, v, &r);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && *n < cap; i++) {
        gp_task_holder_t *h = &out[(*n)++];
        copy_val(r, i, 0, h->task_id, sizeof h->task_id);
        copy_val(r, i, 1, h->worker_id, sizeof h->worker_id);
    }
    PQclear(r);
    return 0;
}

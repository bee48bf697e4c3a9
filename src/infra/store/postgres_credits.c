/*
 * postgres_credits.c — grants and the ledger read of the PostgreSQL store (credit_ledger of
 * migration 2, postgres.c). Each call is one autocommit statement on a pooled connection,
 * like the identity calls. The movements tied to tasks (reserve, capture, release) are not
 * here: they ride in the committer's op statements (postgres.c, MOVE_CTES).
 *
 * - A grant is exactly-once by its unique_key: the ledger row goes in first (ON CONFLICT
 *   DO NOTHING) and the balance moves only if it did, so a repeated key is no SQL error and
 *   changes nothing. The user's row is locked first, so balance_after is the balance the
 *   grant produced even with movements of other transactions in between.
 * - A user's credits + reserved never pass CREDITS_MAX: grants beyond it are refused. Every
 *   other movement only shifts credits between the two or takes them away, so no balance
 *   arithmetic in a batch can overflow bigint — an overflow would be an SQL error there,
 *   failing the whole batch, again at every retry.
 * - Text the server would reject (invalid UTF-8): a user id reads as unknown, a key or
 *   note is -GP_E_BAD_REQUEST.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/store/postgres_internal.h"
#include "infra/store/store.h"

#include <stdio.h>
#include <string.h>

#define LEDGER_COLUMNS "seq, user_id, task_id, kind, amount, balance_after, note, created_at"
#define N_LEDGER_COLUMNS 8
#define LIST_MAX 1000000000
#define CREDITS_MAX "4611686018427387904" /* 2^62 */

int gp_pg_credits_grant(gp_store_t *st, const char *user_id, int64_t amount, const char *unique_key,
                        const char *note, int64_t *balance_out)
{
    if (amount <= 0 || amount > (INT64_C(1) << 62) || !unique_key || !*unique_key ||
        !gp_pg_utf8_ok(unique_key) || (note && !gp_pg_utf8_ok(note)))
        return -GP_E_BAD_REQUEST;
    if (!user_id || !gp_pg_utf8_ok(user_id))
        return -GP_E_NOT_FOUND;
    char amt[24], now[24];
    snprintf(amt, sizeof amt, "%lld", (long long)amount);
    snprintf(now, sizeof now, "%lld", (long long)gp_now_ms());
    const char *v[5] = {user_id, amt, unique_key, note, now};
    PGresult *r;
    int rc = gp_pg_pool_query(
        st,
        "WITH u AS (SELECT id, credits, reserved FROM users WHERE id = $1::text"
        " FOR NO KEY UPDATE),"
        " led AS (INSERT INTO credit_ledger (user_id, task_id, kind, amount, balance_after,"
        " unique_key, note, created_at) SELECT id, NULL, 'grant', $2::bigint,"
        " credits + $2::bigint, $3::text, $4::text, $5::bigint FROM u"
        " WHERE credits + reserved <= " CREDITS_MAX " - $2::bigint"
        " ON CONFLICT (unique_key) DO NOTHING RETURNING user_id, amount),"
        " mv AS (UPDATE users SET credits = credits + l.amount FROM led l"
        " WHERE users.id = l.user_id RETURNING users.credits)"
        " SELECT EXISTS (SELECT 1 FROM u), (SELECT credits FROM mv),"
        " (SELECT credits + reserved FROM u) > " CREDITS_MAX " - $2::bigint",
        5, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1)
        rc = -GP_E_IO;
    else if (!col_bool(r, 0, 0))
        rc = -GP_E_NOT_FOUND;
    else if (!val(r, 0, 1))
        rc = col_bool(r, 0, 2) ? -GP_E_BAD_REQUEST : -GP_E_CONFLICT; /* too much; key used */
    else if (balance_out)
        *balance_out = col_i64(r, 0, 1);
    PQclear(r);
    return rc;
}

static void read_entry(const PGresult *r, int row, gp_ledger_entry_t *e)
{
    memset(e, 0, sizeof *e);
    e->seq = col_i64(r, row, 0);
    const char *v = val(r, row, 1);
    snprintf(e->user_id, sizeof e->user_id, "%s", v ? v : "");
    v = val(r, row, 2);
    snprintf(e->task_id, sizeof e->task_id, "%s", v ? v : "");
    v = val(r, row, 3);
    snprintf(e->kind, sizeof e->kind, "%s", v ? v : "");
    e->amount = col_i64(r, row, 4);
    e->balance_after = col_i64(r, row, 5);
    e->note = col_text(r, row, 6);
    e->created_at = col_i64(r, row, 7);
}

int gp_pg_ledger_list(gp_store_t *st, const char *user_id, int64_t before_seq,
                      gp_ledger_entry_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (cap == 0 || !user_id || !gp_pg_utf8_ok(user_id))
        return 0; /* no ledger row can name this user */
    char before[24], limit[24];
    snprintf(before, sizeof before, "%lld", (long long)before_seq);
    snprintf(limit, sizeof limit, "%zu", cap < LIST_MAX ? cap : LIST_MAX);
    const char *v[3] = {user_id, before, limit};
    PGresult *r;
    /* Planned with the values (unnamed statement): "0 = newest" folds away and the rows
     * come from credit_ledger_user_seq. */
    int rc =
        gp_pg_pool_query(st,
                         "SELECT " LEDGER_COLUMNS " FROM credit_ledger WHERE user_id = $1::text"
                         " AND ($2::bigint = 0 OR seq < $2::bigint)"
                         " ORDER BY seq DESC LIMIT $3::bigint",
                         3, v, &r);
    if (rc != 0)
        return rc;
    int rows = PQnfields(r) == N_LEDGER_COLUMNS ? PQntuples(r) : 0;
    for (int i = 0; i < rows && *n < cap; i++)
        read_entry(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

/*
 * postgres_identity.c — users and API keys in the PostgreSQL store (tables of migration 2,
 * postgres.c). Each call is one autocommit statement on a pooled connection, so identity
 * traffic never waits for (nor joins) the committer's batches.
 *
 * - Unique fields (user id, email, OIDC pair; key id and hash) are enforced by the table:
 *   the statement's unique violation becomes -GP_E_CONFLICT, no read-then-insert race.
 * - Emails are stored and looked up ASCII-lower-cased here rather than with SQL lower(),
 *   whose result depends on the database's locale.
 * - Text the server would reject (invalid UTF-8) is refused before sending: writes answer
 *   -GP_E_BAD_REQUEST, lookups -GP_E_NOT_FOUND (no row can hold it).
 * - 0 in an int64 field of a record is NULL in the table and reads back as 0.
 */
#include "core/errors.h"
#include "core/util.h"
#include "infra/store/postgres_internal.h"
#include "infra/store/store.h"

#include <stdio.h>
#include <string.h>

/* user_create writes the first 8; credits and reserved start at 0 and move only with the
 * ledger (postgres_credits.c, the op statements in postgres.c). */
#define USER_COLUMNS                                                                               \
    "id, email, display_name, plan, created_at, disabled, oidc_issuer, oidc_subject, credits,"     \
    " reserved"
#define N_USER_COLUMNS 10
#define USER_CREATE_COLUMNS                                                                        \
    "id, email, display_name, plan, created_at, disabled, oidc_issuer, oidc_subject"
#define KEY_COLUMNS                                                                                \
    "id, user_id, name, prefix, hash, scopes, created_at, last_used_at, expires_at, revoked_at"
#define N_KEY_COLUMNS 10
#define LIST_MAX 1000000000

/* ---- parameters ---- */

/* A NUL-terminated, valid UTF-8 fixed-size field. */
static bool fixed_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) && gp_pg_utf8_ok(s);
}

static bool opt_ok(const char *s)
{
    return !s || gp_pg_utf8_ok(s);
}

static const char *i64_param(char buf[24], int64_t x)
{
    snprintf(buf, 24, "%lld", (long long)x);
    return buf;
}

/* 0 = NULL in the table. */
static const char *opt_i64_param(char buf[24], int64_t x)
{
    return x ? i64_param(buf, x) : NULL;
}

static const char *limit_param(char buf[24], size_t cap)
{
    return i64_param(buf, (int64_t)(cap < LIST_MAX ? cap : LIST_MAX));
}

/* ASCII-lower-cased copy (free()); NULL stays NULL. */
static char *email_lower(const char *email)
{
    if (!email)
        return NULL;
    char *copy = gp_xstrdup(email);
    for (char *p = copy; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return copy;
}

/* ---- rows ---- */

static void copy_fixed(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void read_user(const PGresult *r, int row, gp_user_t *u)
{
    memset(u, 0, sizeof *u);
    copy_fixed(u->id, sizeof u->id, val(r, row, 0));
    u->email = col_text(r, row, 1);
    u->display_name = col_text(r, row, 2);
    u->plan = col_text(r, row, 3);
    if (!u->plan)
        u->plan = gp_xstrdup("free");
    u->created_at = col_i64(r, row, 4);
    u->disabled = col_bool(r, row, 5);
    u->oidc_issuer = col_text(r, row, 6);
    u->oidc_subject = col_text(r, row, 7);
    u->credits = col_i64(r, row, 8);
    u->reserved = col_i64(r, row, 9);
}

static void read_key(const PGresult *r, int row, gp_api_key_t *k)
{
    memset(k, 0, sizeof *k);
    copy_fixed(k->id, sizeof k->id, val(r, row, 0));
    copy_fixed(k->user_id, sizeof k->user_id, val(r, row, 1));
    k->name = col_text(r, row, 2);
    copy_fixed(k->prefix, sizeof k->prefix, val(r, row, 3));
    copy_fixed(k->hash, sizeof k->hash, val(r, row, 4));
    k->scopes = col_text(r, row, 5);
    k->created_at = col_i64(r, row, 6);
    k->last_used_at = col_i64(r, row, 7);
    k->expires_at = col_i64(r, row, 8);
    k->revoked_at = col_i64(r, row, 9);
}

/* Runs a statement expected to return at most one row of USER_COLUMNS into *out. */
static int one_user(gp_store_t *st, const char *sql, int np, const char *const *v, gp_user_t *out)
{
    PGresult *r;
    int rc = gp_pg_pool_query(st, sql, np, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) >= 1 && PQnfields(r) == N_USER_COLUMNS)
        read_user(r, 0, out);
    else
        rc = -GP_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

/* Runs a write that says RETURNING: 0 when it touched a row, else -GP_E_NOT_FOUND. */
static int one_write(gp_store_t *st, const char *sql, int np, const char *const *v)
{
    PGresult *r;
    int rc = gp_pg_pool_query(st, sql, np, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) < 1)
        rc = -GP_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

/* ---- users ---- */

int gp_pg_user_create(gp_store_t *st, const gp_user_t *u)
{
    if (!u || !u->id[0] || !fixed_ok(u->id, sizeof u->id) || !opt_ok(u->email) ||
        !opt_ok(u->display_name) || !opt_ok(u->plan) || !opt_ok(u->oidc_issuer) ||
        !opt_ok(u->oidc_subject))
        return -GP_E_BAD_REQUEST;
    char *email = email_lower(u->email);
    char created[24];
    const char *v[8] = {u->id,
                        email,
                        u->display_name,
                        u->plan,
                        i64_param(created, u->created_at ? u->created_at : gp_now_ms()),
                        u->disabled ? "t" : "f",
                        u->oidc_issuer,
                        u->oidc_subject};
    int rc = one_write(st,
                       "INSERT INTO users (" USER_CREATE_COLUMNS ") VALUES ($1::text, $2::text,"
                       " $3::text, COALESCE($4::text, 'free'), $5::bigint, $6::boolean,"
                       " $7::text, $8::text) RETURNING id",
                       8, v);
    free(email);
    return rc;
}

int gp_pg_user_get(gp_store_t *st, const char *id_or_email, gp_user_t *out)
{
    if (!id_or_email || !gp_pg_utf8_ok(id_or_email))
        return -GP_E_NOT_FOUND;
    char *email = email_lower(id_or_email);
    const char *v[2] = {id_or_email, email};
    /* The id wins when one user's id is another one's email. */
    int rc = one_user(st,
                      "SELECT " USER_COLUMNS " FROM users WHERE id = $1::text OR email = $2::text"
                      " ORDER BY id = $1::text DESC LIMIT 1",
                      2, v, out);
    free(email);
    return rc;
}

int gp_pg_user_by_oidc(gp_store_t *st, const char *issuer, const char *subject, gp_user_t *out)
{
    if (!issuer || !subject || !gp_pg_utf8_ok(issuer) || !gp_pg_utf8_ok(subject))
        return -GP_E_NOT_FOUND;
    const char *v[2] = {issuer, subject};
    return one_user(st,
                    "SELECT " USER_COLUMNS " FROM users"
                    " WHERE oidc_issuer = $1::text AND oidc_subject = $2::text",
                    2, v, out);
}

int gp_pg_user_list(gp_store_t *st, const char *after_id, gp_user_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (cap == 0 || (after_id && !gp_pg_utf8_ok(after_id)))
        return 0; /* an unknown cursor ends the list */
    char limit[24];
    const char *v[2] = {after_id, limit_param(limit, cap)};
    PGresult *r;
    /* Keyset on (created_at, id): an unknown after_id gives no row, like a deleted cursor. */
    int rc = gp_pg_pool_query(st,
                              "SELECT " USER_COLUMNS " FROM users WHERE $1::text IS NULL"
                              " OR (created_at, id) > (SELECT created_at, id FROM users"
                              " WHERE id = $1::text) ORDER BY created_at, id LIMIT $2::bigint",
                              2, v, &r);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && *n < cap; i++)
        read_user(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int gp_pg_user_update(gp_store_t *st, const char *id, const char *plan, int disabled)
{
    if (!id || !gp_pg_utf8_ok(id))
        return -GP_E_NOT_FOUND;
    if (!opt_ok(plan))
        return -GP_E_BAD_REQUEST;
    const char *v[3] = {id, plan, disabled < 0 ? NULL : disabled ? "t" : "f"};
    return one_write(st,
                     "UPDATE users SET plan = COALESCE($2::text, plan),"
                     " disabled = COALESCE($3::boolean, disabled) WHERE id = $1::text RETURNING id",
                     3, v);
}

/* ---- API keys ---- */

int gp_pg_key_create(gp_store_t *st, const gp_api_key_t *k)
{
    if (!k || !k->id[0] || !k->user_id[0] || !k->hash[0] || !fixed_ok(k->id, sizeof k->id) ||
        !fixed_ok(k->user_id, sizeof k->user_id) || !fixed_ok(k->prefix, sizeof k->prefix) ||
        !fixed_ok(k->hash, sizeof k->hash) || !opt_ok(k->name) || !opt_ok(k->scopes))
        return -GP_E_BAD_REQUEST;
    char created[24], used[24], expires[24], revoked[24];
    const char *v[10] = {k->id,
                         k->user_id,
                         k->name,
                         k->prefix,
                         k->hash,
                         k->scopes ? k->scopes : "",
                         i64_param(created, k->created_at ? k->created_at : gp_now_ms()),
                         opt_i64_param(used, k->last_used_at),
                         opt_i64_param(expires, k->expires_at),
                         opt_i64_param(revoked, k->revoked_at)};
    /* An unknown user_id is a foreign key violation: -GP_E_NOT_FOUND. */
    return one_write(st,
                     "INSERT INTO api_keys (" KEY_COLUMNS ") VALUES ($1::text, $2::text,"
                     " $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::bigint,"
                     " $9::bigint, $10::bigint) RETURNING id",
                     10, v);
}

int gp_pg_key_by_hash(gp_store_t *st, const char *hash_hex, gp_api_key_t *out)
{
    if (!hash_hex || !gp_pg_utf8_ok(hash_hex))
        return -GP_E_NOT_FOUND;
    const char *v[1] = {hash_hex};
    PGresult *r;
    int rc = gp_pg_pool_query(st, "SELECT " KEY_COLUMNS " FROM api_keys WHERE hash = $1::text", 1,
                              v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1 && PQnfields(r) == N_KEY_COLUMNS)
        read_key(r, 0, out);
    else
        rc = -GP_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

int gp_pg_key_list(gp_store_t *st, const char *user_id, const char *after_id, gp_api_key_t *out,
                   size_t cap, size_t *n)
{
    *n = 0;
    if (cap == 0 || (user_id && !gp_pg_utf8_ok(user_id)) || (after_id && !gp_pg_utf8_ok(after_id)))
        return 0;
    char limit[24];
    const char *v[3] = {user_id, after_id, limit_param(limit, cap)};
    PGresult *r;
    /* Planned with the values (unnamed statement), so a NULL filter folds away and a user's
     * keys come from api_keys_user_created. */
    int rc = gp_pg_pool_query(st,
                              "SELECT " KEY_COLUMNS " FROM api_keys"
                              " WHERE ($1::text IS NULL OR user_id = $1::text)"
                              " AND ($2::text IS NULL OR (created_at, id) > (SELECT created_at,"
                              " id FROM api_keys WHERE id = $2::text))"
                              " ORDER BY created_at, id LIMIT $3::bigint",
                              3, v, &r);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && *n < cap; i++)
        read_key(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int gp_pg_key_revoke(gp_store_t *st, const char *id, int64_t now_ms)
{
    if (!id || !gp_pg_utf8_ok(id))
        return -GP_E_NOT_FOUND;
    char now[24];
    const char *v[2] = {id, i64_param(now, now_ms)};
    return one_write(st,
                     "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2::bigint)"
                     " WHERE id = $1::text RETURNING id",
                     2, v);
}

int gp_pg_key_touch(gp_store_t *st, const char *id, int64_t now_ms)
{
    if (!id || !gp_pg_utf8_ok(id))
        return -GP_E_NOT_FOUND;
    char now[24];
    const char *v[2] = {id, i64_param(now, now_ms)};
    /* Gateways with skewed clocks touch the same key: never move it backwards. */
    return one_write(st,
                     "UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $2::bigint)"
                     " WHERE id = $1::text RETURNING id",
                     2, v);
}

/* A query whose one row, one column answer is a count. */
static int count_query(gp_store_t *st, const char *sql, int n, const char *const *v, int64_t *out)
{
    PGresult *r;
    int rc = gp_pg_pool_query(st, sql, n, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        *out = col_i64(r, 0, 0);
    else
        rc = -GP_E_IO;
    PQclear(r);
    return rc;
}

int gp_pg_count_pending(gp_store_t *st, const char *owner, int64_t cap, int64_t *n)
{
    char lim[24];
    const char *v[2] = {owner, i64_param(lim, cap)};
    return count_query(st,
                       "SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE owner = $1::text"
                       " AND status = 'pending' LIMIT $2::bigint) AS q",
                       2, v, n);
}

int gp_pg_keys_active(gp_store_t *st, int64_t now_ms, int64_t *count)
{
    char now[24];
    const char *v[1] = {i64_param(now, now_ms)};
    return count_query(st,
                       "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL"
                       " AND (expires_at IS NULL OR expires_at > $1::bigint)",
                       1, v, count);
}

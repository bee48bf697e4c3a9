/*
 * postgres_internal.h — what postgres.c shares with postgres_identity.c and
 * postgres_credits.c; private to the PostgreSQL store (nothing outside
 * src/infra/store/postgres*.c includes it).
 *
 * Ownership: a PGresult handed out by gp_pg_pool_query belongs to the caller (PQclear); the
 * column helpers return pointers into the result (val) or new strings (col_text, free()).
 * Threading: gp_pg_pool_query may be called from any thread (it takes a pooled connection);
 * the rest are pure functions.
 */
#ifndef GP_POSTGRES_INTERNAL_H
#define GP_POSTGRES_INTERNAL_H

#include "core/util.h"
#include "infra/store/store.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* One autocommit statement on a pooled connection. 0 with *out (PGRES_TUPLES_OK: writes say
 * RETURNING), -GP_E_CONFLICT (unique violation), -GP_E_NOT_FOUND (foreign key violation),
 * -GP_E_UNAVAILABLE or -GP_E_IO. */
int gp_pg_pool_query(gp_store_t *st, const char *sql, int nparams, const char *const *values,
                     PGresult **out);
/* True if s is valid UTF-8 (the server rejects anything else; see postgres.c DESIGN). */
bool gp_pg_utf8_ok(const char *s);

static inline const char *val(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static inline char *col_text(const PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v ? gp_xstrdup(v) : NULL;
}

/* NULL reads as false. */
static inline bool col_bool(const PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v && v[0] == 't';
}

/* NULL reads as 0 (the records' "unset"). */
static inline int64_t col_i64(const PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v ? strtoll(v, NULL, 10) : 0;
}

/* postgres_stats.c: the stats entry (store.h). */
int gp_pg_stats(gp_store_t *st, const gp_stats_query_t *q, gp_stats_bucket_t *out);

/* The identity entries of gp_store_backend_postgres (postgres_identity.c); see store.h. */
int gp_pg_user_create(gp_store_t *st, const gp_user_t *u);
int gp_pg_user_get(gp_store_t *st, const char *id_or_email, gp_user_t *out);
int gp_pg_user_by_oidc(gp_store_t *st, const char *issuer, const char *subject, gp_user_t *out);
int gp_pg_user_list(gp_store_t *st, const char *after_id, gp_user_t *out, size_t cap, size_t *n);
int gp_pg_key_create(gp_store_t *st, const gp_api_key_t *k);
int gp_pg_key_by_hash(gp_store_t *st, const char *hash_hex, gp_api_key_t *out);
int gp_pg_key_list(gp_store_t *st, const char *user_id, const char *after_id, gp_api_key_t *out,
                   size_t cap, size_t *n);
int gp_pg_key_revoke(gp_store_t *st, const char *id, int64_t now_ms);
int gp_pg_key_touch(gp_store_t *st, const char *id, int64_t now_ms);
int gp_pg_count_pending(gp_store_t *st, const char *owner, int64_t cap, int64_t *n);
int gp_pg_keys_active(gp_store_t *st, int64_t now_ms, int64_t *count);
int gp_pg_user_update(gp_store_t *st, const char *id, const char *plan, int disabled);

/* The credit entries (postgres_credits.c); see store.h. */
int gp_pg_credits_grant(gp_store_t *st, const char *user_id, int64_t amount, const char *unique_key,
                        const char *note, int64_t *balance_out);
int gp_pg_ledger_list(gp_store_t *st, const char *user_id, int64_t before_seq,
                      gp_ledger_entry_t *out, size_t cap, size_t *n);

/* The attempts history reads (postgres_attempts.c); see store.h. */
int gp_pg_attempts_list(gp_store_t *st, const char *task_id, gp_attempt_t *out, size_t cap,
                        size_t *n);
int gp_pg_holders_list(gp_store_t *st, gp_task_holder_t *out, size_t cap, size_t *n);

#endif

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

/* The webhook outbox (postgres_webhooks.c; store.h, "webhooks"). Columns that hold flags
 * are integers, as in SQLite, so the outbox statement reads the same in both stores. */
#define GP_PG_WEBHOOKS_MIGRATION                                                                   \
    "ALTER TABLE tasks ADD COLUMN webhook TEXT,"                                                   \
    "  ADD COLUMN webhook_events INTEGER NOT NULL DEFAULT 0,"                                      \
    "  ADD COLUMN webhook_format INTEGER NOT NULL DEFAULT 0;"                                      \
    "CREATE TABLE webhook_endpoints ("                                                             \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  owner TEXT NOT NULL,"                                                                       \
    "  url TEXT NOT NULL,"                                                                         \
    "  secret TEXT NOT NULL,"                                                                      \
    "  event_types INTEGER NOT NULL,"                                                              \
    "  description TEXT,"                                                                          \
    "  disabled INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  disabled_reason TEXT,"                                                                      \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  updated_at BIGINT NOT NULL"                                                                 \
    ");"                                                                                           \
    "CREATE INDEX webhook_endpoints_owner ON webhook_endpoints(owner, created_at);"                \
    "CREATE TABLE webhook_secrets ("                                                               \
    "  owner TEXT PRIMARY KEY,"                                                                    \
    "  secret TEXT NOT NULL,"                                                                      \
    "  created_at BIGINT NOT NULL"                                                                 \
    ");"                                                                                           \
    "CREATE TABLE webhook_deliveries ("                                                            \
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"                                       \
    "  id TEXT NOT NULL UNIQUE,"                                                                   \
    "  owner TEXT NOT NULL,"                                                                       \
    "  endpoint_id TEXT,"                                                                          \
    "  task_id TEXT NOT NULL,"                                                                     \
    "  event_type TEXT NOT NULL,"                                                                  \
    "  url TEXT NOT NULL,"                                                                         \
    "  format INTEGER NOT NULL DEFAULT 0,"                                                         \
    "  payload TEXT,"                                                                              \
    "  status TEXT NOT NULL,"                                                                      \
    "  attempts INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  round_start INTEGER NOT NULL DEFAULT 0,"                                                    \
    "  next_attempt_at BIGINT NOT NULL,"                                                           \
    "  leased INTEGER NOT NULL DEFAULT 0,"                                                         \
    "  last_status_code INTEGER,"                                                                  \
    "  last_error TEXT,"                                                                           \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  completed_at BIGINT,"                                                                       \
    "  dedupe_key TEXT NOT NULL UNIQUE"                                                            \
    ");"                                                                                           \
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);"          \
    "CREATE INDEX webhook_deliveries_owner ON webhook_deliveries(owner, seq);"                     \
    "CREATE INDEX webhook_deliveries_task ON webhook_deliveries(task_id, seq);"                    \
    "CREATE TABLE webhook_attempts ("                                                              \
    "  delivery_id TEXT NOT NULL,"                                                                 \
    "  attempt INTEGER NOT NULL,"                                                                  \
    "  started_at BIGINT NOT NULL,"                                                                \
    "  duration_ms BIGINT NOT NULL,"                                                               \
    "  status_code INTEGER,"                                                                       \
    "  error TEXT,"                                                                                \
    "  response TEXT,"                                                                             \
    "  PRIMARY KEY (delivery_id, attempt)"                                                         \
    ");"

/* Committed outbox rows are announced on this channel (NOTIFY is sent at commit), so the
 * delivery loops of every process wake at once (gp_pg_wh_wait). */
#define GP_PG_WEBHOOK_CHANNEL "genpulse_webhooks"

/* $1 task id, $2 now (ms), $3 the event: 'end' (the task's terminal status names it),
 * 'task.started' (only while attempt 1 runs) or another type name. One row per delivery
 * added; never an SQL error for a missing task or a replay (ON CONFLICT DO NOTHING). */
#define GP_PG_OUTBOX_SQL                                                                           \
    "WITH ev AS (SELECT t.id, t.owner, t.attempts, t.webhook, t.webhook_events,"                   \
    " t.webhook_format, t.started_at, t.completed_at, CASE WHEN $3::text = 'end' THEN 'task.' || " \
    "t.status ELSE $3::text END"                                                                   \
    " AS type FROM tasks t WHERE t.id = $1::text AND CASE $3::text"                                \
    " WHEN 'end' THEN t.status IN ('succeeded', 'failed', 'canceled')"                             \
    " WHEN 'task.started' THEN t.status = 'processing' AND t.attempts = 1 ELSE true END),"         \
    " evb AS (SELECT ev.*, CASE type WHEN 'task.started' THEN 1 WHEN 'task.output' THEN 2"         \
    " WHEN 'task.logs' THEN 4 WHEN 'task.succeeded' THEN 8 WHEN 'task.failed' THEN 16"             \
    " WHEN 'task.canceled' THEN 32 ELSE 0 END AS tbit, CASE type WHEN 'task.started' THEN 1"       \
    " WHEN 'task.output' THEN 2 WHEN 'task.logs' THEN 4 ELSE 8 END AS fbit,"                       \
    " CASE WHEN type IN ('task.output', 'task.logs') THEN $2::bigint WHEN type = 'task.started' "  \
    "THEN started_at ELSE COALESCE(completed_at, 0) END AS uniq"                                   \
    " FROM ev)"                                                                                    \
    " INSERT INTO webhook_deliveries (id, owner, endpoint_id, task_id, event_type, url, format,"   \
    " status, next_attempt_at, created_at, dedupe_key)"                                            \
    " SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), owner, NULL, id, type, webhook," \
    " webhook_format, 'pending', $2::bigint, $2::bigint,"                                          \
    " id || ':' || type || ':' || uniq || ':task'"                                                 \
    " FROM evb WHERE webhook IS NOT NULL AND (webhook_events & fbit) <> 0"                         \
    " UNION ALL"                                                                                   \
    " SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), evb.owner, e.id, evb.id, type,"  \
    " e.url, 0, 'pending', $2::bigint, $2::bigint,"                                                \
    " evb.id || ':' || type || ':' || uniq || ':' || e.id"                                         \
    " FROM evb JOIN webhook_endpoints e ON e.owner = evb.owner AND e.disabled = 0"                 \
    " AND (e.event_types & tbit) <> 0"                                                             \
    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING pg_notify('" GP_PG_WEBHOOK_CHANNEL "', '')"

int gp_pg_wh_endpoint_create(gp_store_t *st, const gp_webhook_endpoint_t *e);
int gp_pg_wh_endpoint_get(gp_store_t *st, const char *id, gp_webhook_endpoint_t *out);
int gp_pg_wh_endpoint_list(gp_store_t *st, const char *owner, gp_webhook_endpoint_t *out,
                           size_t cap, size_t *n);
int gp_pg_wh_endpoint_update(gp_store_t *st, const gp_webhook_endpoint_t *e);
int gp_pg_wh_endpoint_delete(gp_store_t *st, const char *id);
int gp_pg_wh_default_secret(gp_store_t *st, const char *owner, const char *candidate,
                            char out[GP_WH_SECRET_LEN]);
int gp_pg_wh_enqueue(gp_store_t *st, const char *task_id, unsigned type, int64_t now_ms,
                     int *added);
int gp_pg_wh_claim(gp_store_t *st, int64_t now_ms, int64_t lease_ms, gp_webhook_delivery_t *out,
                   size_t cap, size_t *n);
int gp_pg_wh_set_payload(gp_store_t *st, const char *id, const char *payload);
int gp_pg_wh_record(gp_store_t *st, const char *id, const gp_webhook_attempt_t *a,
                    const gp_webhook_outcome_t *o);
int gp_pg_wh_delivery_get(gp_store_t *st, const char *id, gp_webhook_delivery_t *out);
int gp_pg_wh_delivery_list(gp_store_t *st, const gp_webhook_filter_t *f, gp_webhook_delivery_t *out,
                           size_t *n);
int gp_pg_wh_attempts_list(gp_store_t *st, const char *id, gp_webhook_attempt_t *out, size_t cap,
                           size_t *n);
int gp_pg_wh_resend(gp_store_t *st, const char *id, int64_t now_ms);
int gp_pg_wh_release_leases(gp_store_t *st);
int gp_pg_wh_wait(gp_store_t *st, int64_t timeout_ms);

/* postgres.c for postgres_webhooks.c: a new connection with the store's URL and defaults
 * (NULL with err), and the store's listener slot (freed by close). */
struct gp_pg_listener;
PGconn *gp_pg_connect(gp_store_t *st, char *err, size_t cap);
struct gp_pg_listener **gp_pg_listener_slot(gp_store_t *st);
void gp_pg_listener_free(struct gp_pg_listener *l);

#define GP_PG_WEBHOOK_FUNCTIONS                                                                    \
    .wh_endpoint_create = gp_pg_wh_endpoint_create, .wh_endpoint_get = gp_pg_wh_endpoint_get,      \
    .wh_endpoint_list = gp_pg_wh_endpoint_list, .wh_endpoint_update = gp_pg_wh_endpoint_update,    \
    .wh_endpoint_delete = gp_pg_wh_endpoint_delete, .wh_default_secret = gp_pg_wh_default_secret,  \
    .wh_enqueue = gp_pg_wh_enqueue, .wh_claim = gp_pg_wh_claim,                                    \
    .wh_set_payload = gp_pg_wh_set_payload, .wh_record = gp_pg_wh_record,                          \
    .wh_delivery_get = gp_pg_wh_delivery_get, .wh_delivery_list = gp_pg_wh_delivery_list,          \
    .wh_attempts_list = gp_pg_wh_attempts_list, .wh_resend = gp_pg_wh_resend,                      \
    .wh_release_leases = gp_pg_wh_release_leases, .wh_wait = gp_pg_wh_wait

#endif

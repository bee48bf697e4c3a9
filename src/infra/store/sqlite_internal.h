/*
 * sqlite_internal.h — what the SQLite store's files share (sqlite.c: tasks;
 * sqlite_identity.c: users and API keys). Private to src/infra/store/.
 *
 * Threading: `writer` belongs to the committer thread; `identity` is the identity writes' own
 * connection, used under identity_lock (SQLite serialises it against the writer with its
 * busy timeout); readers come from the pool (take/give).
 */
#ifndef GP_SQLITE_INTERNAL_H
#define GP_SQLITE_INTERNAL_H

#include "infra/store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>

#define READ_POOL_SIZE 8

typedef struct sqlite_store {
    gp_store_t base;
    char *path;
    sqlite3 *writer;
    sqlite3_stmt *st_insert, *st_find_key, *st_transition, *st_transition_canceled, *st_claim,
        *st_cancel_pending, *st_cancel_processing, *st_status_of;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    sqlite3 *readers[READ_POOL_SIZE];
    sqlite3_stmt *reader_get[READ_POOL_SIZE]; /* prepared once per connection */
    bool reader_busy[READ_POOL_SIZE];
    pthread_mutex_t identity_lock;
    sqlite3 *identity;
    sqlite3_stmt *credit_stmts[8];  /* sqlite_credits.c, on the writer */
    sqlite3_stmt *attempt_stmts[4]; /* sqlite_attempts.c, on the writer */
    sqlite3_stmt *webhook_stmts[2]; /* sqlite_webhooks.c, on the writer */
    /* Webhooks may be in use: an enabled endpoint exists, or a task with a webhook was
     * created (or was unfinished at start). Until then the outbox statement is skipped,
     * so a server that uses no webhooks pays nothing for them. Only ever goes false → true
     * (set before the write that needs it, so no event after that write is missed). */
    atomic_bool webhooks_used;
} sqlite_store_t;

int gp_sqlite_open_conn(const char *path, const char *sync_mode, sqlite3 **out, char *err,
                        size_t cap);
sqlite3 *gp_sqlite_take_reader(sqlite_store_t *s, int *slot);
void gp_sqlite_give_reader(sqlite_store_t *s, int slot);
/* A copy of column i's text, NULL for SQL NULL. */
char *gp_sqlite_col_text(sqlite3_stmt *st, int i);

/* sqlite_credits.c: on the writer, inside the committer's transaction. reserve: 0 or
 * -GP_E_INSUFFICIENT_CREDITS; settle: capture (true) or release the task's reservation. */
int gp_sqlite_reserve(sqlite_store_t *s, const char *owner, const char *task_id, int64_t price,
                      int round);
int gp_sqlite_settle(sqlite_store_t *s, const char *task_id, bool capture);
void gp_sqlite_credits_finalize(sqlite_store_t *s);
int gp_sqlite_credits_grant(gp_store_t *st, const char *user_id, int64_t amount,
                            const char *unique_key, const char *note, int64_t *balance_out);
int gp_sqlite_ledger_list(gp_store_t *st, const char *user_id, int64_t before_seq,
                          gp_ledger_entry_t *out, size_t cap, size_t *n);
int gp_sqlite_user_update(gp_store_t *st, const char *id, const char *plan, int disabled);

/* sqlite_stats.c */
int gp_sqlite_stats(gp_store_t *st, const gp_stats_query_t *q, gp_stats_bucket_t *out);
/* sqlite_attempts.c: the attempts history. begin/end run on the writer inside the
 * committer's transaction, right after the claim or the transition they belong to; end with
 * attempt 0 closes whichever attempt is open. History never fails its op: errors are logged. */
int gp_sqlite_attempts_prepare(sqlite_store_t *s, char *err, size_t cap);
void gp_sqlite_attempts_finalize(sqlite_store_t *s);
void gp_sqlite_attempt_begin(sqlite_store_t *s, const char *task_id, int attempt,
                             const char *worker_id, int64_t started_at);
void gp_sqlite_attempt_end(sqlite_store_t *s, const char *task_id, int attempt, gp_task_status_t to,
                           const char *error_code, const char *error_message);
int gp_sqlite_attempts_list(gp_store_t *st, const char *task_id, gp_attempt_t *out, size_t cap,
                            size_t *n);
int gp_sqlite_holders_list(gp_store_t *st, gp_task_holder_t *out, size_t cap, size_t *n);

/* sqlite_webhooks.c: the outbox (store.h, "webhooks"). after_op runs on the writer inside
 * the committer's transaction, right after an op that succeeded, and returns the number of
 * deliveries it added (errors are logged: the op's own change stands). */
#define GP_SQLITE_WEBHOOKS_MIGRATION                                                               \
    "ALTER TABLE tasks ADD COLUMN webhook TEXT;"                                                   \
    "ALTER TABLE tasks ADD COLUMN webhook_events INTEGER NOT NULL DEFAULT 0;"                      \
    "ALTER TABLE tasks ADD COLUMN webhook_format INTEGER NOT NULL DEFAULT 0;"                      \
    "CREATE TABLE webhook_endpoints ("                                                             \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  owner TEXT NOT NULL,"                                                                       \
    "  url TEXT NOT NULL,"                                                                         \
    "  secret TEXT NOT NULL,"                                                                      \
    "  event_types INTEGER NOT NULL,"                                                              \
    "  description TEXT,"                                                                          \
    "  disabled INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  disabled_reason TEXT,"                                                                      \
    "  created_at INTEGER NOT NULL,"                                                               \
    "  updated_at INTEGER NOT NULL"                                                                \
    ");"                                                                                           \
    "CREATE INDEX webhook_endpoints_owner ON webhook_endpoints(owner, created_at);"                \
    "CREATE TABLE webhook_secrets ("                                                               \
    "  owner TEXT PRIMARY KEY,"                                                                    \
    "  secret TEXT NOT NULL,"                                                                      \
    "  created_at INTEGER NOT NULL"                                                                \
    ");"                                                                                           \
    "CREATE TABLE webhook_deliveries ("                                                            \
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"                                                     \
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
    "  next_attempt_at INTEGER NOT NULL,"                                                          \
    "  leased INTEGER NOT NULL DEFAULT 0,"                                                         \
    "  last_status_code INTEGER,"                                                                  \
    "  last_error TEXT,"                                                                           \
    "  created_at INTEGER NOT NULL,"                                                               \
    "  completed_at INTEGER,"                                                                      \
    "  dedupe_key TEXT NOT NULL UNIQUE"                                                            \
    ");"                                                                                           \
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);"          \
    "CREATE INDEX webhook_deliveries_owner ON webhook_deliveries(owner, seq);"                     \
    "CREATE INDEX webhook_deliveries_task ON webhook_deliveries(task_id, seq);"                    \
    "CREATE TABLE webhook_attempts ("                                                              \
    "  delivery_id TEXT NOT NULL,"                                                                 \
    "  attempt INTEGER NOT NULL,"                                                                  \
    "  started_at INTEGER NOT NULL,"                                                               \
    "  duration_ms INTEGER NOT NULL,"                                                              \
    "  status_code INTEGER,"                                                                       \
    "  error TEXT,"                                                                                \
    "  response TEXT,"                                                                             \
    "  PRIMARY KEY (delivery_id, attempt)"                                                         \
    ") WITHOUT ROWID;"
int gp_sqlite_webhooks_prepare(sqlite_store_t *s, char *err, size_t cap);
void gp_sqlite_webhooks_finalize(sqlite_store_t *s);
void gp_sqlite_webhooks_before_op(sqlite_store_t *s, const gp_store_op_t *op);
int gp_sqlite_webhooks_after_op(sqlite_store_t *s, const gp_store_op_t *op);
int gp_sqlite_wh_endpoint_create(gp_store_t *st, const gp_webhook_endpoint_t *e);
int gp_sqlite_wh_endpoint_get(gp_store_t *st, const char *id, gp_webhook_endpoint_t *out);
int gp_sqlite_wh_endpoint_list(gp_store_t *st, const char *owner, gp_webhook_endpoint_t *out,
                               size_t cap, size_t *n);
int gp_sqlite_wh_endpoint_update(gp_store_t *st, const gp_webhook_endpoint_t *e);
int gp_sqlite_wh_endpoint_delete(gp_store_t *st, const char *id);
int gp_sqlite_wh_default_secret(gp_store_t *st, const char *owner, const char *candidate,
                                char out[GP_WH_SECRET_LEN]);
int gp_sqlite_wh_enqueue(gp_store_t *st, const char *task_id, unsigned type, int64_t now_ms,
                         int *added);
int gp_sqlite_wh_claim(gp_store_t *st, int64_t now_ms, int64_t lease_ms, gp_webhook_delivery_t *out,
                       size_t cap, size_t *n);
int gp_sqlite_wh_set_payload(gp_store_t *st, const char *id, const char *payload);
int gp_sqlite_wh_record(gp_store_t *st, const char *id, const gp_webhook_attempt_t *a,
                        const gp_webhook_outcome_t *o);
int gp_sqlite_wh_delivery_get(gp_store_t *st, const char *id, gp_webhook_delivery_t *out);
int gp_sqlite_wh_delivery_list(gp_store_t *st, const gp_webhook_filter_t *f,
                               gp_webhook_delivery_t *out, size_t *n);
int gp_sqlite_wh_attempts_list(gp_store_t *st, const char *id, gp_webhook_attempt_t *out,
                               size_t cap, size_t *n);
int gp_sqlite_wh_resend(gp_store_t *st, const char *id, int64_t now_ms);
int gp_sqlite_wh_release_leases(gp_store_t *st);

#define GP_SQLITE_WEBHOOK_FUNCTIONS                                                                \
    .wh_endpoint_create = gp_sqlite_wh_endpoint_create,                                            \
    .wh_endpoint_get = gp_sqlite_wh_endpoint_get, .wh_endpoint_list = gp_sqlite_wh_endpoint_list,  \
    .wh_endpoint_update = gp_sqlite_wh_endpoint_update,                                            \
    .wh_endpoint_delete = gp_sqlite_wh_endpoint_delete,                                            \
    .wh_default_secret = gp_sqlite_wh_default_secret, .wh_enqueue = gp_sqlite_wh_enqueue,          \
    .wh_claim = gp_sqlite_wh_claim, .wh_set_payload = gp_sqlite_wh_set_payload,                    \
    .wh_record = gp_sqlite_wh_record, .wh_delivery_get = gp_sqlite_wh_delivery_get,                \
    .wh_delivery_list = gp_sqlite_wh_delivery_list,                                                \
    .wh_attempts_list = gp_sqlite_wh_attempts_list, .wh_resend = gp_sqlite_wh_resend,              \
    .wh_release_leases = gp_sqlite_wh_release_leases

/* sqlite_identity.c */
int gp_sqlite_user_create(gp_store_t *st, const gp_user_t *u);
int gp_sqlite_user_get(gp_store_t *st, const char *id_or_email, gp_user_t *out);
int gp_sqlite_user_by_oidc(gp_store_t *st, const char *issuer, const char *subject, gp_user_t *out);
int gp_sqlite_user_list(gp_store_t *st, const char *after_id, gp_user_t *out, size_t cap,
                        size_t *n);
int gp_sqlite_key_create(gp_store_t *st, const gp_api_key_t *k);
int gp_sqlite_key_by_hash(gp_store_t *st, const char *hash_hex, gp_api_key_t *out);
int gp_sqlite_key_list(gp_store_t *st, const char *user_id, const char *after_id, gp_api_key_t *out,
                       size_t cap, size_t *n);
int gp_sqlite_key_revoke(gp_store_t *st, const char *id, int64_t now_ms);
int gp_sqlite_key_touch(gp_store_t *st, const char *id, int64_t now_ms);
int gp_sqlite_keys_active(gp_store_t *st, int64_t now_ms, int64_t *count);
int gp_sqlite_count_pending(gp_store_t *st, const char *owner, int64_t cap, int64_t *n);

#define GP_SQLITE_IDENTITY_FUNCTIONS                                                               \
    .user_create = gp_sqlite_user_create, .user_get = gp_sqlite_user_get,                          \
    .user_by_oidc = gp_sqlite_user_by_oidc, .user_list = gp_sqlite_user_list,                      \
    .key_create = gp_sqlite_key_create, .key_by_hash = gp_sqlite_key_by_hash,                      \
    .key_list = gp_sqlite_key_list, .key_revoke = gp_sqlite_key_revoke,                            \
    .key_touch = gp_sqlite_key_touch, .keys_active = gp_sqlite_keys_active,                        \
    .user_update = gp_sqlite_user_update, .credits_grant = gp_sqlite_credits_grant,                \
    .ledger_list = gp_sqlite_ledger_list, .count_pending = gp_sqlite_count_pending

#endif

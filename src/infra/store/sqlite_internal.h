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

/*
 * sqlite.c — the embedded state store: one SQLite file in WAL mode.
 *
 * DESIGN: one write connection, used only by the committer thread, applies each batch in a
 * single BEGIN IMMEDIATE … COMMIT (group commit). Readers take a connection from a small
 * pool, so GETs never wait for a write transaction (WAL readers see the last commit).
 * synchronous=NORMAL in WAL mode keeps every commit across a killed process (the WAL is in
 * the OS page cache); `--sqlite-synchronous full` adds an fsync per commit for power loss.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Versioned migrations: entry i brings the schema to version i + 1. Append only. */
static const char *const migrations[] = {
    "CREATE TABLE tasks ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  task_type TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  result TEXT,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_retries INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  idempotency_key TEXT UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  not_before INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX tasks_status_seq ON tasks(status, seq);"
    "CREATE INDEX tasks_type_seq ON tasks(task_type, seq);",
    /* 2: users and API keys; tasks gain an owner, and idempotency keys become per owner
     * (SQLite cannot drop a column's UNIQUE, so the table is rebuilt). */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  email TEXT UNIQUE,"
    "  display_name TEXT,"
    "  plan TEXT NOT NULL DEFAULT 'free',"
    "  created_at INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  oidc_issuer TEXT,"
    "  oidc_subject TEXT,"
    "  credits INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),"
    "  reserved INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (oidc_issuer, oidc_subject)"
    ");"
    "INSERT INTO users (id, display_name, plan, created_at) VALUES ('local', 'Local user',"
    "  'unlimited',"
    "  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));"
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id),"
    "  name TEXT,"
    "  prefix TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  scopes TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER,"
    "  expires_at INTEGER,"
    "  revoked_at INTEGER"
    ");"
    "CREATE INDEX api_keys_user ON api_keys(user_id, created_at);"
    "CREATE TABLE credit_ledger ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id TEXT NOT NULL,"
    "  task_id TEXT,"
    "  kind TEXT NOT NULL,"
    "  amount INTEGER NOT NULL,"
    "  balance_after INTEGER NOT NULL,"
    "  unique_key TEXT NOT NULL UNIQUE,"
    "  note TEXT,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX credit_ledger_user ON credit_ledger(user_id, seq);"
    "CREATE TABLE tasks_v2 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL DEFAULT 'local',"
    "  task_type TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  result TEXT,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_retries INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  idempotency_key TEXT,"
    "  request_hash TEXT,"
    "  price INTEGER NOT NULL DEFAULT 0,"
    "  charge_round INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  not_before INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (owner, idempotency_key)"
    ");"
    "INSERT INTO tasks_v2 (seq, id, task_type, provider, status, params, result, error_code,"
    "  error_message, attempts, max_retries, priority, cancel_requested, idempotency_key,"
    "  created_at, started_at, completed_at, not_before)"
    "  SELECT seq, id, task_type, provider, status, params, result, error_code, error_message,"
    "  attempts, max_retries, priority, cancel_requested, idempotency_key, created_at,"
    "  started_at, completed_at, not_before FROM tasks;"
    "DROP TABLE tasks;"
    "ALTER TABLE tasks_v2 RENAME TO tasks;"
    "CREATE INDEX tasks_status_seq ON tasks(status, seq);"
    "CREATE INDEX tasks_type_seq ON tasks(task_type, seq);"
    "CREATE INDEX tasks_owner_seq ON tasks(owner, seq);"
    "CREATE INDEX tasks_owner_pending ON tasks(owner) WHERE status = 'pending';",
    /* 3: which worker runs a task, and one row per attempt (store.h, "attempts history"). */
    "ALTER TABLE tasks ADD COLUMN worker_id TEXT;"
    "CREATE TABLE task_attempts ("
    "  task_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  worker_id TEXT,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER,"
    "  status TEXT NOT NULL,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  PRIMARY KEY (task_id, attempt)"
    ") WITHOUT ROWID;",
    /* 4: webhooks (store.h, "webhooks"). */
    GP_SQLITE_WEBHOOKS_MIGRATION,
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

#define TASK_COLUMNS                                                                               \
    "seq, id, task_type, provider, status, params, result, error_code, error_message, "            \
    "attempts, max_retries, priority, cancel_requested, idempotency_key, created_at, "             \
    "started_at, completed_at, not_before, owner, request_hash, price, charge_round, worker_id, "  \
    "webhook, webhook_events, webhook_format"

char *gp_sqlite_col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? gp_xstrdup((const char *)t) : NULL;
}

#define col_text gp_sqlite_col_text

static json_t *col_json(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
}

static void read_row(sqlite3_stmt *s, gp_task_t *t)
{
    memset(t, 0, sizeof *t);
    t->seq = sqlite3_column_int64(s, 0);
    const char *id = (const char *)sqlite3_column_text(s, 1);
    snprintf(t->id, sizeof t->id, "%s", id ? id : "");
    t->task_type = col_text(s, 2);
    t->provider = col_text(s, 3);
    const char *st = (const char *)sqlite3_column_text(s, 4);
    int status = st ? gp_task_status_parse(st) : -1;
    t->status = status < 0 ? GP_TASK_FAILED : (gp_task_status_t)status;
    t->params = col_json(s, 5);
    t->result = col_json(s, 6);
    t->error_code = col_text(s, 7);
    t->error_message = col_text(s, 8);
    t->attempts = sqlite3_column_int(s, 9);
    t->max_retries = sqlite3_column_int(s, 10);
    t->priority = sqlite3_column_int(s, 11);
    t->cancel_requested = sqlite3_column_int(s, 12) != 0;
    t->idempotency_key = col_text(s, 13);
    t->created_at = sqlite3_column_int64(s, 14);
    t->started_at = sqlite3_column_int64(s, 15);
    t->completed_at = sqlite3_column_int64(s, 16);
    t->not_before = sqlite3_column_int64(s, 17);
    const char *owner = (const char *)sqlite3_column_text(s, 18);
    snprintf(t->owner, sizeof t->owner, "%s", owner ? owner : GP_LOCAL_USER_ID);
    t->request_hash = col_text(s, 19);
    t->price = sqlite3_column_int64(s, 20);
    t->charge_round = sqlite3_column_int(s, 21);
    const char *worker = (const char *)sqlite3_column_text(s, 22);
    snprintf(t->worker_id, sizeof t->worker_id, "%s", worker ? worker : "");
    t->webhook = col_text(s, 23);
    t->webhook_events = (unsigned)sqlite3_column_int(s, 24);
    t->webhook_format = sqlite3_column_int(s, 25);
}

int gp_sqlite_open_conn(const char *path, const char *sync_mode, sqlite3 **out, char *err,
                        size_t cap)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, cap, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -GP_E_IO;
    }
    sqlite3_busy_timeout(db, 10000);
    char *pragmas = gp_xasprintf("PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
                                 "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
                                 !strcmp(sync_mode, "full") ? "FULL" : "NORMAL");
    char *msg = NULL;
    rc = sqlite3_exec(db, pragmas, NULL, NULL, &msg);
    free(pragmas);
    if (rc != SQLITE_OK) {
        snprintf(err, cap, "cannot configure %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return -GP_E_IO;
    }
    *out = db;
    return 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err, size_t cap)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK) {
        snprintf(err, cap, "prepare failed: %s (%.200s)", sqlite3_errmsg(db), sql);
        return -GP_E_INTERNAL;
    }
    return 0;
}

static void sq_close(gp_store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_finalize(s->st_insert);
    sqlite3_finalize(s->st_find_key);
    sqlite3_finalize(s->st_transition);
    sqlite3_finalize(s->st_transition_canceled);
    sqlite3_finalize(s->st_claim);
    sqlite3_finalize(s->st_cancel_pending);
    sqlite3_finalize(s->st_cancel_processing);
    sqlite3_finalize(s->st_status_of);
    gp_sqlite_credits_finalize(s);
    gp_sqlite_attempts_finalize(s);
    gp_sqlite_webhooks_finalize(s);
    sqlite3_close(s->writer);
    sqlite3_close(s->identity);
    pthread_mutex_destroy(&s->identity_lock);
    for (int i = 0; i < READ_POOL_SIZE; i++) {
        sqlite3_finalize(s->reader_get[i]);
        sqlite3_close(s->readers[i]);
    }
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cond);
    free(s->path);
    free(s);
}

/* On a reader, so a readiness probe never waits behind a write batch. */
static int sq_schema_status(gp_store_t *base, int *applied, int *expected)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    sqlite3_stmt *q = NULL;
    int rc = -GP_E_IO;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &q,
                           NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        *applied = sqlite3_column_int(q, 0);
        rc = 0;
    }
    sqlite3_finalize(q);
    gp_sqlite_give_reader(s, slot);
    *expected = (int)N_MIGRATIONS;
    return rc;
}

static int sq_migrate(gp_store_t *base, char *err, size_t cap)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    char *msg = NULL;
    if (sqlite3_exec(s->writer,
                     "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                     " applied_at INTEGER NOT NULL)",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->writer, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                           &q, NULL) != SQLITE_OK)
        goto fail_db;
    int version = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
    sqlite3_finalize(q);
    if (version > (int)N_MIGRATIONS) {
        snprintf(err, cap, "database schema version %d is newer than this binary (%zu)", version,
                 N_MIGRATIONS);
        return -GP_E_INTERNAL;
    }
    for (size_t v = (size_t)version; v < N_MIGRATIONS; v++) {
        char *sql = gp_xasprintf("BEGIN IMMEDIATE; %s INSERT INTO schema_migrations VALUES "
                                 "(%zu, %lld); COMMIT;",
                                 migrations[v], v + 1, (long long)gp_now_ms());
        int rc = sqlite3_exec(s->writer, sql, NULL, NULL, &msg);
        free(sql);
        if (rc != SQLITE_OK) {
            sqlite3_exec(s->writer, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        GP_INFO("store: applied migration %zu", v + 1);
    }
    char perr[512];
    sqlite3_stmt **stmts[] = {
        &s->st_insert, &s->st_find_key,       &s->st_transition,        &s->st_transition_canceled,
        &s->st_claim,  &s->st_cancel_pending, &s->st_cancel_processing, &s->st_status_of};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_finalize(*stmts[i]); /* migrate may run twice on one handle */
        *stmts[i] = NULL;
    }
    if (prepare(s->writer,
                "UPDATE tasks SET status = 'processing', attempts = attempts + 1,"
                " started_at = ?2, not_before = 0, error_code = NULL, error_message = NULL,"
                " worker_id = ?4"
                " WHERE id = ?1 AND (status = 'pending' OR (?3 AND status = 'processing'))"
                " RETURNING " TASK_COLUMNS,
                &s->st_claim, perr, sizeof perr) ||
        gp_sqlite_attempts_prepare(s, perr, sizeof perr) ||
        gp_sqlite_webhooks_prepare(s, perr, sizeof perr) ||
        prepare(s->writer,
                "UPDATE tasks SET status = 'canceled', completed_at = ?3,"
                " error_code = 'canceled', error_message = 'canceled by request'"
                " WHERE id = ?1 AND status = 'processing' AND attempts = ?2"
                " AND cancel_requested = 1",
                &s->st_transition_canceled, perr, sizeof perr) ||
        prepare(s->writer,
                "INSERT INTO tasks (id, task_type, provider, status, params, attempts, "
                "max_retries, priority, idempotency_key, created_at, not_before, owner, "
                "request_hash, price, webhook, webhook_events, webhook_format) VALUES (?1, ?2, ?3,"
                " 'pending', ?4, 0, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?12, ?13, ?14)",
                &s->st_insert, perr, sizeof perr) ||
        prepare(s->writer,
                "SELECT " TASK_COLUMNS " FROM tasks WHERE owner = ?1 AND idempotency_key = ?2",
                &s->st_find_key, perr, sizeof perr) ||
        prepare(
            s->writer,
            "UPDATE tasks SET status = ?4, attempts = ?5,"
            " started_at = CASE WHEN ?6 > 0 THEN ?6 ELSE started_at END,"
            " completed_at = CASE WHEN ?7 > 0 THEN ?7 WHEN ?7 < 0 THEN NULL ELSE completed_at END,"
            " not_before = ?8, result = COALESCE(?9, result), error_code = ?10,"
            " error_message = ?11"
            " WHERE id = ?1 AND status = ?2 AND attempts = ?3",
            &s->st_transition, perr, sizeof perr) ||
        prepare(s->writer,
                "UPDATE tasks SET status = 'canceled', completed_at = ?2, cancel_requested = 1,"
                " error_code = 'canceled', error_message = 'canceled by request'"
                " WHERE id = ?1 AND status = 'pending'",
                &s->st_cancel_pending, perr, sizeof perr) ||
        prepare(s->writer,
                "UPDATE tasks SET cancel_requested = 1 WHERE id = ?1 AND status = 'processing'",
                &s->st_cancel_processing, perr, sizeof perr) ||
        prepare(s->writer, "SELECT status FROM tasks WHERE id = ?1", &s->st_status_of, perr,
                sizeof perr)) {
        snprintf(err, cap, "%s", perr);
        return -GP_E_INTERNAL;
    }
    return 0;
fail_db:
    snprintf(err, cap, "migration failed: %s", sqlite3_errmsg(s->writer));
    return -GP_E_INTERNAL;
fail:
    snprintf(err, cap, "migration failed: %s", msg ? msg : sqlite3_errmsg(s->writer));
    sqlite3_free(msg);
    return -GP_E_INTERNAL;
}

static int sq_open(gp_store_t **out, const char *url, const gp_settings_t *settings, char *err,
                   size_t cap)
{
    sqlite_store_t *s = gp_xcalloc(1, sizeof *s);
    s->base.vt = NULL;
    if (url && !strncmp(url, "sqlite://", 9))
        s->path = gp_xstrdup(url + 9);
    else if (url && !strncmp(url, "sqlite:", 7))
        s->path = gp_xstrdup(url + 7);
    else
        s->path = gp_xasprintf("%s/genpulse.db", settings->data_dir);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_cond, NULL);
    pthread_mutex_init(&s->identity_lock, NULL);
    int rc = gp_sqlite_open_conn(s->path, settings->sqlite_synchronous, &s->writer, err, cap);
    if (rc == 0)
        rc = gp_sqlite_open_conn(s->path, settings->sqlite_synchronous, &s->identity, err, cap);
    for (int i = 0; rc == 0 && i < READ_POOL_SIZE; i++)
        rc = gp_sqlite_open_conn(s->path, settings->sqlite_synchronous, &s->readers[i], err, cap);
    if (rc != 0) {
        sq_close(&s->base);
        return rc;
    }
    extern const gp_store_vt_t gp_store_backend_sqlite;
    s->base.vt = &gp_store_backend_sqlite;
    *out = &s->base;
    return 0;
}

sqlite3 *gp_sqlite_take_reader(sqlite_store_t *s, int *slot)
{
    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        for (int i = 0; i < READ_POOL_SIZE; i++)
            if (!s->reader_busy[i]) {
                s->reader_busy[i] = true;
                pthread_mutex_unlock(&s->pool_lock);
                *slot = i;
                return s->readers[i];
            }
        pthread_cond_wait(&s->pool_cond, &s->pool_lock);
    }
}

void gp_sqlite_give_reader(sqlite_store_t *s, int slot)
{
    pthread_mutex_lock(&s->pool_lock);
    s->reader_busy[slot] = false;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_CONSTRAINT)
        return -GP_E_CONFLICT;
    GP_ERROR("store: sqlite step failed: %s", sqlite3_errmsg(db));
    return -GP_E_IO;
}

static int op_create(sqlite_store_t *s, gp_store_op_t *op)
{
    gp_task_t *t = op->task;
    const char *owner = t->owner[0] ? t->owner : GP_LOCAL_USER_ID;
    if (t->idempotency_key) {
        sqlite3_bind_text(s->st_find_key, 1, owner, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s->st_find_key, 2, t->idempotency_key, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s->st_find_key);
        if (rc == SQLITE_ROW) {
            gp_task_clear(t);
            read_row(s->st_find_key, t);
            op->replayed = true;
        }
        sqlite3_reset(s->st_find_key);
        sqlite3_clear_bindings(s->st_find_key);
        if (op->replayed)
            return 0;
    }
    char *params = json_dumps(t->params, JSON_COMPACT);
    sqlite3_stmt *st = s->st_insert;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, t->task_type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, t->provider, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, params ? params : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, t->max_retries);
    sqlite3_bind_int(st, 6, t->priority);
    bind_text_or_null(st, 7, t->idempotency_key);
    sqlite3_bind_int64(st, 8, t->created_at);
    sqlite3_bind_text(st, 9, owner, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 10, t->request_hash);
    sqlite3_bind_int64(st, 11, t->price > 0 ? t->price : 0);
    bind_text_or_null(st, 12, t->webhook);
    sqlite3_bind_int(st, 13, t->webhook ? (int)t->webhook_events : 0);
    sqlite3_bind_int(st, 14, t->webhook_format);
    free(params);
    if (t->price <= 0) {
        int rc = step_done(s->writer, st);
        if (rc == 0)
            t->seq = sqlite3_last_insert_rowid(s->writer);
        return rc;
    }
    /* A priced task: the reservation and the row stand or fall together. */
    sqlite3_exec(s->writer, "SAVEPOINT op_create", NULL, NULL, NULL);
    int rc = gp_sqlite_reserve(s, owner, t->id, t->price, 0);
    if (rc == 0)
        rc = step_done(s->writer, st);
    else {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (rc == 0)
        t->seq = sqlite3_last_insert_rowid(s->writer);
    sqlite3_exec(s->writer,
                 rc == 0 ? "RELEASE op_create" : "ROLLBACK TO op_create; RELEASE op_create", NULL,
                 NULL, NULL);
    return rc;
}

/* After a task reached status `to`: capture (succeeded) or release (failed, canceled) its
 * reservation; a no-op for free tasks and for movements already made. */
static int settle(sqlite_store_t *s, const char *id, gp_task_status_t to, bool keep)
{
    if (to == GP_TASK_SUCCEEDED)
        return gp_sqlite_settle(s, id, true);
    if ((to == GP_TASK_FAILED || to == GP_TASK_CANCELED) && !keep)
        return gp_sqlite_settle(s, id, false);
    return 0;
}

/* A manual retry of a priced task reserves its price again, in a new round. */
static int reserve_again(sqlite_store_t *s, const gp_transition_t *tr)
{
    sqlite3_stmt *q = NULL;
    int rc = -GP_E_IO;
    if (sqlite3_prepare_v2(
            s->writer,
            "UPDATE tasks SET charge_round = charge_round + 1 WHERE id = ?1"
            " AND status = ?2 AND attempts = ?3 RETURNING owner, price, charge_round",
            -1, &q, NULL) != SQLITE_OK)
        return rc;
    sqlite3_bind_text(q, 1, tr->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, gp_task_status_name(tr->from_status), -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, tr->from_attempts);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        char owner[37];
        snprintf(owner, sizeof owner, "%s", (const char *)sqlite3_column_text(q, 0));
        int64_t price = sqlite3_column_int64(q, 1);
        int round = sqlite3_column_int(q, 2);
        while (sqlite3_step(q) == SQLITE_ROW)
            ;
        rc = price > 0 ? gp_sqlite_reserve(s, owner, tr->id, price, round) : 0;
    } else if (step == SQLITE_DONE) {
        rc = -GP_E_CONFLICT;
    }
    sqlite3_finalize(q);
    return rc;
}

static int transition_row(sqlite_store_t *s, gp_store_op_t *op);

static int op_transition(sqlite_store_t *s, gp_store_op_t *op)
{
    gp_transition_t *tr = &op->tr;
    bool savepoint = tr->reserve_again;
    if (savepoint)
        sqlite3_exec(s->writer, "SAVEPOINT op_tr", NULL, NULL, NULL);
    int rc = tr->reserve_again ? reserve_again(s, tr) : 0;
    if (rc == 0)
        rc = transition_row(s, op);
    if (rc == 0 && tr->from_status == GP_TASK_PROCESSING &&
        tr->applied_status != GP_TASK_PROCESSING) {
        bool cut = tr->applied_status == GP_TASK_CANCELED && tr->to_status != GP_TASK_CANCELED;
        gp_sqlite_attempt_end(s, tr->id, tr->from_attempts, tr->applied_status,
                              cut ? "canceled" : tr->error_code,
                              cut ? "canceled by request" : tr->error_message);
    }
    if (rc == 0 && !(tr->known_free && !tr->reserve_again))
        rc = settle(s, tr->id, tr->applied_status, tr->keep_reservation);
    if (savepoint)
        sqlite3_exec(s->writer, rc == 0 ? "RELEASE op_tr" : "ROLLBACK TO op_tr; RELEASE op_tr",
                     NULL, NULL, NULL);
    return rc;
}

static int transition_row(sqlite_store_t *s, gp_store_op_t *op)
{
    gp_transition_t *tr = &op->tr;
    tr->applied_status = tr->to_status;
    if (tr->honor_cancel && tr->from_status == GP_TASK_PROCESSING &&
        tr->to_status != GP_TASK_CANCELED) {
        sqlite3_stmt *c = s->st_transition_canceled;
        sqlite3_bind_text(c, 1, tr->id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(c, 2, tr->from_attempts);
        sqlite3_bind_int64(c, 3, tr->completed_at ? tr->completed_at : gp_now_ms());
        int crc = step_done(s->writer, c);
        if (crc != 0)
            return crc;
        if (sqlite3_changes(s->writer) == 1) {
            tr->applied_status = GP_TASK_CANCELED;
            return 0;
        }
    }
    sqlite3_stmt *st = s->st_transition;
    char *result = tr->result ? json_dumps(tr->result, JSON_COMPACT) : NULL;
    sqlite3_bind_text(st, 1, tr->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, gp_task_status_name(tr->from_status), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, tr->from_attempts);
    sqlite3_bind_text(st, 4, gp_task_status_name(tr->to_status), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, tr->to_attempts);
    sqlite3_bind_int64(st, 6, tr->started_at);
    sqlite3_bind_int64(st, 7, tr->completed_at);
    sqlite3_bind_int64(st, 8, tr->not_before);
    bind_text_or_null(st, 9, result);
    bind_text_or_null(st, 10, tr->error_code);
    bind_text_or_null(st, 11, tr->error_code ? tr->error_message : NULL);
    free(result);
    int rc = step_done(s->writer, st);
    if (rc != 0)
        return rc;
    return sqlite3_changes(s->writer) == 1 ? 0 : -GP_E_CONFLICT;
}

static int op_claim(sqlite_store_t *s, gp_store_op_t *op)
{
    sqlite3_stmt *st = s->st_claim;
    sqlite3_bind_text(st, 1, op->cancel_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, op->claim_started_at);
    sqlite3_bind_int(st, 3, op->claim_takeover ? 1 : 0);
    bind_text_or_null(st, 4, op->claim_worker_id);
    int rc = sqlite3_step(st);
    int result;
    if (rc == SQLITE_ROW) {
        gp_task_clear(op->task);
        read_row(st, op->task);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        result = rc == SQLITE_DONE ? 0 : -GP_E_IO;
    } else {
        result = rc == SQLITE_DONE ? -GP_E_CONFLICT : -GP_E_IO;
    }
    if (result == -GP_E_IO)
        GP_ERROR("store: claim failed: %s", sqlite3_errmsg(s->writer));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (result == 0)
        gp_sqlite_attempt_begin(s, op->task->id, op->task->attempts, op->claim_worker_id,
                                op->claim_started_at);
    return result;
}

static int op_cancel(sqlite_store_t *s, gp_store_op_t *op)
{
    sqlite3_bind_text(s->st_cancel_pending, 1, op->cancel_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s->st_cancel_pending, 2, gp_now_ms());
    int rc = step_done(s->writer, s->st_cancel_pending);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(s->writer) == 1) {
        op->cancel_outcome = GP_CANCEL_DONE;
        gp_sqlite_attempt_end(s, op->cancel_id, 0, GP_TASK_CANCELED, "canceled",
                              "canceled by request");
        return gp_sqlite_settle(s, op->cancel_id, false);
    }
    sqlite3_bind_text(s->st_cancel_processing, 1, op->cancel_id, -1, SQLITE_TRANSIENT);
    rc = step_done(s->writer, s->st_cancel_processing);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(s->writer) == 1) {
        op->cancel_outcome = GP_CANCEL_REQUESTED;
        return 0;
    }
    sqlite3_bind_text(s->st_status_of, 1, op->cancel_id, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(s->st_status_of);
    sqlite3_reset(s->st_status_of);
    sqlite3_clear_bindings(s->st_status_of);
    if (step != SQLITE_ROW)
        return -GP_E_NOT_FOUND;
    op->cancel_outcome = GP_CANCEL_TOO_LATE;
    return 0;
}

static int sq_apply_batch(gp_store_t *base, gp_store_op_t **ops, size_t n)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    if (sqlite3_exec(s->writer, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        GP_ERROR("store: BEGIN failed: %s", sqlite3_errmsg(s->writer));
        return -GP_E_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++) {
        gp_store_op_t *op = ops[i];
        /* No savepoints needed: each op is one statement (or reads), and SQLite undoes a
         * failed statement without aborting the transaction, so ops stay independent. */
        gp_sqlite_webhooks_before_op(s, op);
        switch (op->kind) {
        case GP_OP_CREATE: op->result = op_create(s, op); break;
        case GP_OP_TRANSITION: op->result = op_transition(s, op); break;
        case GP_OP_CANCEL: op->result = op_cancel(s, op); break;
        case GP_OP_CLAIM: op->result = op_claim(s, op); break;
        default: op->result = -GP_E_INTERNAL;
        }
        op->webhooks_added = op->result == 0 ? gp_sqlite_webhooks_after_op(s, op) : 0;
    }
    if (sqlite3_exec(s->writer, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        GP_ERROR("store: COMMIT failed: %s", sqlite3_errmsg(s->writer));
        sqlite3_exec(s->writer, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            ops[i]->result = -GP_E_UNAVAILABLE;
        return -GP_E_UNAVAILABLE;
    }
    return 0;
}

static int sq_get(gp_store_t *base, const char *id, gp_task_t *out)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    int rc = -GP_E_IO;
    if (!s->reader_get[slot] &&
        sqlite3_prepare_v3(db, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?1", -1,
                           SQLITE_PREPARE_PERSISTENT, &s->reader_get[slot], NULL) != SQLITE_OK)
        s->reader_get[slot] = NULL;
    sqlite3_stmt *st = s->reader_get[slot];
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            read_row(st, out);
            rc = 0;
        } else if (step == SQLITE_DONE) {
            rc = -GP_E_NOT_FOUND;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    gp_sqlite_give_reader(s, slot);
    return rc;
}

static int sq_list(gp_store_t *base, const gp_task_filter_t *f, gp_task_t *out, size_t *n)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " TASK_COLUMNS " FROM tasks WHERE (?1 IS NULL OR status = ?1)"
             " AND (?2 IS NULL OR task_type = ?2) AND (?3 = 0 OR seq < ?3)"
             " AND (?5 IS NULL OR owner = ?5) AND (?6 IS NULL OR id = ?6)"
             " AND (?7 IS NULL OR provider = ?7) AND (?8 IS NULL OR error_code = ?8)"
             " AND (?9 IS NULL OR EXISTS (SELECT 1 FROM json_each(tasks.params) AS p"
             " WHERE instr(lower(p.value), lower(?9)) > 0))"
             " ORDER BY seq DESC LIMIT ?4");
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    *n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = -GP_E_IO;
    } else {
        bind_text_or_null(st, 1,
                          f->status >= 0 ? gp_task_status_name((gp_task_status_t)f->status) : NULL);
        bind_text_or_null(st, 2, f->task_type);
        sqlite3_bind_int64(st, 3, f->before_seq);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)f->limit);
        bind_text_or_null(st, 5, f->owner);
        bind_text_or_null(st, 6, f->id);
        bind_text_or_null(st, 7, f->provider);
        bind_text_or_null(st, 8, f->error_code);
        bind_text_or_null(st, 9, f->params_text);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < f->limit)
            read_row(st, &out[(*n)++]);
        if (step != SQLITE_DONE && step != SQLITE_ROW)
            rc = -GP_E_IO;
    }
    sqlite3_finalize(st);
    gp_sqlite_give_reader(s, slot);
    return rc;
}

static int sq_scan_unfinished(gp_store_t *base, void (*fn)(const gp_task_t *, void *), void *arg)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT " TASK_COLUMNS " FROM tasks WHERE status IN "
                           "('pending', 'processing') ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = -GP_E_IO;
    } else {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            gp_task_t t;
            read_row(st, &t);
            fn(&t, arg);
            gp_task_clear(&t);
        }
        if (step != SQLITE_DONE)
            rc = -GP_E_IO;
    }
    sqlite3_finalize(st);
    gp_sqlite_give_reader(s, slot);
    return rc;
}

const gp_store_vt_t gp_store_backend_sqlite = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_status = sq_schema_status,
    .apply_batch = sq_apply_batch,
    .get = sq_get,
    .list = sq_list,
    .scan_unfinished = sq_scan_unfinished,
    GP_SQLITE_IDENTITY_FUNCTIONS,
    .stats = gp_sqlite_stats,
    .attempts_list = gp_sqlite_attempts_list,
    .holders_list = gp_sqlite_holders_list,
    GP_SQLITE_WEBHOOK_FUNCTIONS,
};

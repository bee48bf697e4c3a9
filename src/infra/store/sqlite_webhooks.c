/*
 * sqlite_webhooks.c — the webhook outbox of the SQLite store (store.h, "webhooks").
 *
 * The outbox rows of task.started / task.succeeded / … are added on the writer inside the
 * committer's transaction, right after the op that caused them (gp_sqlite_webhooks_after_op),
 * by one INSERT … SELECT over the task's own webhook and its owner's endpoints: a commit
 * that makes the transition durable makes its deliveries durable too. The other calls are
 * short transactions of their own: writes on the identity connection under its lock (SQLite's
 * busy timeout waits for the committer), reads on a pooled reader.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ?1 task id, ?2 now (ms), ?3 the event: 'end' (the task's terminal status names it),
 * 'task.started' (only while attempt 1 runs) or another type name (no condition). */
#define OUTBOX_SQL                                                                                 \
    "WITH ev AS (SELECT t.id, t.owner, t.attempts, t.webhook, t.webhook_events,"                   \
    " t.webhook_format, t.started_at, t.completed_at, CASE WHEN ?3 = 'end' THEN 'task.' || "       \
    "t.status ELSE ?3 END AS type"                                                                 \
    " FROM tasks t WHERE t.id = ?1 AND CASE ?3"                                                    \
    " WHEN 'end' THEN t.status IN ('succeeded', 'failed', 'canceled')"                             \
    " WHEN 'task.started' THEN t.status = 'processing' AND t.attempts = 1 ELSE 1 END),"            \
    " evb AS (SELECT ev.*, CASE type WHEN 'task.started' THEN 1 WHEN 'task.output' THEN 2"         \
    " WHEN 'task.logs' THEN 4 WHEN 'task.succeeded' THEN 8 WHEN 'task.failed' THEN 16"             \
    " WHEN 'task.canceled' THEN 32 ELSE 0 END AS tbit, CASE type WHEN 'task.started' THEN 1"       \
    " WHEN 'task.output' THEN 2 WHEN 'task.logs' THEN 4 ELSE 8 END AS fbit,"                       \
    " CASE WHEN type IN ('task.output', 'task.logs') THEN ?2 WHEN type = 'task.started' THEN "     \
    "started_at ELSE COALESCE(completed_at, 0) END AS uniq FROM ev)"                               \
    " INSERT OR IGNORE INTO webhook_deliveries (id, owner, endpoint_id, task_id, event_type, url," \
    " format, status, next_attempt_at, created_at, dedupe_key)"                                    \
    " SELECT 'msg_' || lower(hex(randomblob(16))), owner, NULL, id, type, webhook,"                \
    " webhook_format, 'pending', ?2, ?2, id || ':' || type || ':' || uniq || ':task'"              \
    " FROM evb WHERE webhook IS NOT NULL AND (webhook_events & fbit) <> 0"                         \
    " UNION ALL"                                                                                   \
    " SELECT 'msg_' || lower(hex(randomblob(16))), evb.owner, e.id, evb.id, type, e.url, 0,"       \
    " 'pending', ?2, ?2, evb.id || ':' || type || ':' || uniq || ':' || e.id"                      \
    " FROM evb JOIN webhook_endpoints e ON e.owner = evb.owner AND e.disabled = 0"                 \
    " AND (e.event_types & tbit) <> 0"

#define EP_COLUMNS                                                                                 \
    "id, owner, url, secret, event_types, description, disabled, disabled_reason, created_at,"     \
    " updated_at"
#define DL_COLUMNS                                                                                 \
    "seq, id, owner, endpoint_id, task_id, event_type, url, format, payload, status, attempts,"    \
    " round_start, next_attempt_at, last_status_code, last_error, created_at, completed_at"

int gp_sqlite_webhooks_prepare(sqlite_store_t *s, char *err, size_t cap)
{
    gp_sqlite_webhooks_finalize(s);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->writer,
                           "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE disabled = 0)"
                           " OR EXISTS (SELECT 1 FROM tasks WHERE webhook IS NOT NULL AND status"
                           " IN ('pending', 'processing'))",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        snprintf(err, cap, "webhook state unreadable: %s", sqlite3_errmsg(s->writer));
        sqlite3_finalize(q);
        return -GP_E_INTERNAL;
    }
    if (sqlite3_column_int(q, 0))
        atomic_store(&s->webhooks_used, true);
    sqlite3_finalize(q);
    if (sqlite3_prepare_v3(s->writer, OUTBOX_SQL, -1, SQLITE_PREPARE_PERSISTENT,
                           &s->webhook_stmts[0], NULL) != SQLITE_OK) {
        snprintf(err, cap, "prepare failed: %s (webhook outbox)", sqlite3_errmsg(s->writer));
        return -GP_E_INTERNAL;
    }
    return 0;
}

void gp_sqlite_webhooks_finalize(sqlite_store_t *s)
{
    for (size_t i = 0; i < sizeof s->webhook_stmts / sizeof s->webhook_stmts[0]; i++) {
        sqlite3_finalize(s->webhook_stmts[i]);
        s->webhook_stmts[i] = NULL;
    }
}

static int outbox_add(sqlite3 *db, sqlite3_stmt *st, const char *task_id, const char *event,
                      int64_t now)
{
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, event, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int added = rc == SQLITE_DONE ? sqlite3_changes(db) : 0;
    if (rc != SQLITE_DONE)
        gp_log(GP_LOG_ERROR, task_id, "store: webhook deliveries not added: %s",
               sqlite3_errmsg(db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return added;
}

void gp_sqlite_webhooks_before_op(sqlite_store_t *s, const gp_store_op_t *op)
{
    if (op->kind == GP_OP_CREATE && op->task && op->task->webhook)
        atomic_store(&s->webhooks_used, true);
}

int gp_sqlite_webhooks_after_op(sqlite_store_t *s, const gp_store_op_t *op)
{
    sqlite3_stmt *st = s->webhook_stmts[0];
    if (!st || !atomic_load(&s->webhooks_used))
        return 0;
    switch (op->kind) {
    case GP_OP_CLAIM:
        if (op->task && op->task->attempts == 1)
            return outbox_add(s->writer, st, op->task->id, "task.started", gp_now_ms());
        return 0;
    case GP_OP_TRANSITION:
        if (gp_task_status_terminal(op->tr.applied_status))
            return outbox_add(s->writer, st, op->tr.id, "end", gp_now_ms());
        return 0;
    case GP_OP_CANCEL:
        if (op->cancel_outcome == GP_CANCEL_DONE)
            return outbox_add(s->writer, st, op->cancel_id, "end", gp_now_ms());
        return 0;
    case GP_OP_CREATE: return 0;
    }
    return 0;
}

/* ---- one statement on the identity connection (writes) or a reader (reads) ---- */

typedef struct {
    sqlite_store_t *s;
    sqlite3 *db;
    sqlite3_stmt *st;
    int reader; /* -1 = the identity connection */
} q_t;

static int q_begin(gp_store_t *base, const char *sql, bool write, q_t *q)
{
    q->s = (sqlite_store_t *)base;
    q->reader = -1;
    if (write) {
        pthread_mutex_lock(&q->s->identity_lock);
        q->db = q->s->identity;
    } else {
        q->db = gp_sqlite_take_reader(q->s, &q->reader);
    }
    if (sqlite3_prepare_v2(q->db, sql, -1, &q->st, NULL) == SQLITE_OK)
        return 0;
    GP_ERROR("store: webhook query failed: %s", sqlite3_errmsg(q->db));
    q->st = NULL;
    if (q->reader >= 0)
        gp_sqlite_give_reader(q->s, q->reader);
    else
        pthread_mutex_unlock(&q->s->identity_lock);
    return -GP_E_IO;
}

static void q_end(q_t *q)
{
    sqlite3_finalize(q->st);
    if (q->reader >= 0)
        gp_sqlite_give_reader(q->s, q->reader);
    else
        pthread_mutex_unlock(&q->s->identity_lock);
}

/* Steps a write: 0, -GP_E_CONFLICT (constraint), -GP_E_IO. */
static int q_exec(q_t *q)
{
    int rc = sqlite3_step(q->st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(q->st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT)
        return -GP_E_CONFLICT;
    GP_ERROR("store: webhook write failed: %s", sqlite3_errmsg(q->db));
    return -GP_E_IO;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", v ? v : "");
}

static void read_endpoint(sqlite3_stmt *st, gp_webhook_endpoint_t *e)
{
    memset(e, 0, sizeof *e);
    copy_col(st, 0, e->id, sizeof e->id);
    copy_col(st, 1, e->owner, sizeof e->owner);
    e->url = gp_sqlite_col_text(st, 2);
    copy_col(st, 3, e->secret, sizeof e->secret);
    e->event_types = (unsigned)sqlite3_column_int(st, 4);
    e->description = gp_sqlite_col_text(st, 5);
    e->disabled = sqlite3_column_int(st, 6) != 0;
    copy_col(st, 7, e->disabled_reason, sizeof e->disabled_reason);
    e->created_at = sqlite3_column_int64(st, 8);
    e->updated_at = sqlite3_column_int64(st, 9);
}

static void read_delivery(sqlite3_stmt *st, gp_webhook_delivery_t *d)
{
    memset(d, 0, sizeof *d);
    d->seq = sqlite3_column_int64(st, 0);
    copy_col(st, 1, d->id, sizeof d->id);
    copy_col(st, 2, d->owner, sizeof d->owner);
    copy_col(st, 3, d->endpoint_id, sizeof d->endpoint_id);
    copy_col(st, 4, d->task_id, sizeof d->task_id);
    copy_col(st, 5, d->event_type, sizeof d->event_type);
    d->url = gp_sqlite_col_text(st, 6);
    d->format = sqlite3_column_int(st, 7);
    d->payload = gp_sqlite_col_text(st, 8);
    copy_col(st, 9, d->status, sizeof d->status);
    d->attempts = sqlite3_column_int(st, 10);
    d->round_start = sqlite3_column_int(st, 11);
    d->next_attempt_at = sqlite3_column_int64(st, 12);
    d->last_status_code = sqlite3_column_int(st, 13);
    copy_col(st, 14, d->last_error, sizeof d->last_error);
    d->created_at = sqlite3_column_int64(st, 15);
    d->completed_at = sqlite3_column_int64(st, 16);
}

/* ---- endpoints ---- */

int gp_sqlite_wh_endpoint_create(gp_store_t *st, const gp_webhook_endpoint_t *e)
{
    if (!e->disabled)
        atomic_store(&((sqlite_store_t *)st)->webhooks_used, true);
    q_t q;
    if (q_begin(st,
                "INSERT INTO webhook_endpoints (" EP_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                " ?7, ?8, ?9, ?10)",
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 2, e->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 3, e->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 4, e->secret, -1, SQLITE_STATIC);
    sqlite3_bind_int(q.st, 5, (int)e->event_types);
    bind_opt(q.st, 6, e->description);
    sqlite3_bind_int(q.st, 7, e->disabled ? 1 : 0);
    bind_opt(q.st, 8, e->disabled_reason);
    sqlite3_bind_int64(q.st, 9, e->created_at);
    sqlite3_bind_int64(q.st, 10, e->updated_at);
    int rc = q_exec(&q);
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_endpoint_get(gp_store_t *st, const char *id, gp_webhook_endpoint_t *out)
{
    q_t q;
    if (q_begin(st, "SELECT " EP_COLUMNS " FROM webhook_endpoints WHERE id = ?1", false, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(q.st);
    int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -GP_E_NOT_FOUND : -GP_E_IO;
    if (rc == 0)
        read_endpoint(q.st, out);
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_endpoint_list(gp_store_t *st, const char *owner, gp_webhook_endpoint_t *out,
                               size_t cap, size_t *n)
{
    q_t q;
    *n = 0;
    if (q_begin(st,
                "SELECT " EP_COLUMNS " FROM webhook_endpoints WHERE (?1 IS NULL OR owner = ?1)"
                " ORDER BY created_at, id LIMIT ?2",
                false, &q))
        return -GP_E_IO;
    bind_opt(q.st, 1, owner);
    sqlite3_bind_int64(q.st, 2, (sqlite3_int64)cap);
    int step;
    while (*n < cap && (step = sqlite3_step(q.st)) == SQLITE_ROW)
        read_endpoint(q.st, &out[(*n)++]);
    q_end(&q);
    return 0;
}

int gp_sqlite_wh_endpoint_update(gp_store_t *st, const gp_webhook_endpoint_t *e)
{
    if (!e->disabled)
        atomic_store(&((sqlite_store_t *)st)->webhooks_used, true);
    q_t q;
    if (q_begin(st,
                "UPDATE webhook_endpoints SET url = ?2, secret = ?3, event_types = ?4,"
                " description = ?5, disabled = ?6, disabled_reason = ?7, updated_at = ?8"
                " WHERE id = ?1",
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 2, e->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 3, e->secret, -1, SQLITE_STATIC);
    sqlite3_bind_int(q.st, 4, (int)e->event_types);
    bind_opt(q.st, 5, e->description);
    sqlite3_bind_int(q.st, 6, e->disabled ? 1 : 0);
    bind_opt(q.st, 7, e->disabled_reason);
    sqlite3_bind_int64(q.st, 8, e->updated_at);
    int rc = q_exec(&q);
    if (rc == 0 && sqlite3_changes(q.db) == 0)
        rc = -GP_E_NOT_FOUND;
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_endpoint_delete(gp_store_t *st, const char *id)
{
    q_t q;
    if (q_begin(st, "DELETE FROM webhook_endpoints WHERE id = ?1", true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
    int rc = q_exec(&q);
    if (rc == 0 && sqlite3_changes(q.db) == 0)
        rc = -GP_E_NOT_FOUND;
    q_end(&q);
    if (rc == 0 && q_begin(st,
                           "UPDATE webhook_deliveries SET status = 'failed', completed_at = ?2,"
                           " last_error = 'endpoint deleted' WHERE endpoint_id = ?1"
                           " AND status = 'pending'",
                           true, &q) == 0) {
        sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q.st, 2, gp_now_ms());
        q_exec(&q);
        q_end(&q);
    }
    return rc;
}

int gp_sqlite_wh_default_secret(gp_store_t *st, const char *owner, const char *candidate,
                                char out[GP_WH_SECRET_LEN])
{
    q_t q;
    /* Read first, on a reader: the secret exists after the first call (no write then). */
    if (q_begin(st, "SELECT secret FROM webhook_secrets WHERE owner = ?1", false, &q) == 0) {
        sqlite3_bind_text(q.st, 1, owner, -1, SQLITE_STATIC);
        bool found = sqlite3_step(q.st) == SQLITE_ROW;
        if (found)
            copy_col(q.st, 0, out, GP_WH_SECRET_LEN);
        q_end(&q);
        if (found)
            return 0;
    }
    if (q_begin(st,
                "INSERT INTO webhook_secrets (owner, secret, created_at) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (owner) DO UPDATE SET owner = owner RETURNING secret",
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 2, candidate, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q.st, 3, gp_now_ms());
    int rc = -GP_E_IO;
    if (sqlite3_step(q.st) == SQLITE_ROW) {
        copy_col(q.st, 0, out, GP_WH_SECRET_LEN);
        rc = q_exec(&q);
    } else {
        GP_ERROR("store: webhook secret failed: %s", sqlite3_errmsg(q.db));
    }
    q_end(&q);
    return rc;
}

/* ---- deliveries ---- */

int gp_sqlite_wh_enqueue(gp_store_t *st, const char *task_id, unsigned type, int64_t now_ms,
                         int *added)
{
    const char *name = gp_webhook_type_name(type);
    if (added)
        *added = 0;
    if (!name)
        return -GP_E_INTERNAL;
    if (!atomic_load(&((sqlite_store_t *)st)->webhooks_used))
        return 0; /* nothing could take it */
    q_t q;
    if (q_begin(st, OUTBOX_SQL, true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, task_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q.st, 2, now_ms);
    sqlite3_bind_text(q.st, 3, name, -1, SQLITE_STATIC);
    int rc = q_exec(&q);
    if (rc == 0 && added)
        *added = sqlite3_changes(q.db);
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_claim(gp_store_t *st, int64_t now_ms, int64_t lease_ms, gp_webhook_delivery_t *out,
                       size_t cap, size_t *n)
{
    q_t q;
    *n = 0;
    if (q_begin(st,
                "UPDATE webhook_deliveries SET next_attempt_at = ?2, leased = 1 WHERE seq IN"
                " (SELECT seq FROM webhook_deliveries WHERE status = 'pending'"
                " AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?3)"
                " RETURNING " DL_COLUMNS,
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_int64(q.st, 1, now_ms);
    sqlite3_bind_int64(q.st, 2, now_ms + lease_ms);
    sqlite3_bind_int64(q.st, 3, (sqlite3_int64)cap);
    int step;
    while ((step = sqlite3_step(q.st)) == SQLITE_ROW)
        if (*n < cap)
            read_delivery(q.st, &out[(*n)++]);
    int rc = step == SQLITE_DONE ? 0 : -GP_E_IO;
    if (rc != 0) {
        GP_ERROR("store: webhook claim failed: %s", sqlite3_errmsg(q.db));
        for (size_t i = 0; i < *n; i++)
            gp_webhook_delivery_clear(&out[i]);
        *n = 0;
    }
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_set_payload(gp_store_t *st, const char *id, const char *payload)
{
    q_t q;
    if (q_begin(st, "UPDATE webhook_deliveries SET payload = ?2 WHERE id = ?1 AND payload IS NULL",
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q.st, 2, payload, -1, SQLITE_STATIC);
    int rc = q_exec(&q);
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_record(gp_store_t *st, const char *id, const gp_webhook_attempt_t *a,
                        const gp_webhook_outcome_t *o)
{
    sqlite_store_t *s = (sqlite_store_t *)st;
    pthread_mutex_lock(&s->identity_lock);
    sqlite3 *db = s->identity;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -GP_E_IO;
    sqlite3_stmt *q = NULL;
    if (rc == 0 &&
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt,"
                           " started_at, duration_ms, status_code, error, response)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, a->attempt);
        sqlite3_bind_int64(q, 3, a->started_at);
        sqlite3_bind_int64(q, 4, a->duration_ms);
        if (a->status_code)
            sqlite3_bind_int(q, 5, a->status_code);
        else
            sqlite3_bind_null(q, 5);
        bind_opt(q, 6, a->error);
        bind_opt(q, 7, a->response);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = -GP_E_IO;
    } else {
        rc = -GP_E_IO;
    }
    sqlite3_finalize(q);
    q = NULL;
    bool done = strcmp(o->status, "pending") != 0;
    if (rc == 0 && sqlite3_prepare_v2(db,
                                      "UPDATE webhook_deliveries SET status = ?2, attempts = ?3,"
                                      " next_attempt_at = ?4, leased = 0, last_status_code = ?5,"
                                      " last_error = ?6, completed_at = ?7 WHERE id = ?1"
                                      " RETURNING endpoint_id",
                                      -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, o->status, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 3, a->attempt);
        sqlite3_bind_int64(q, 4, done ? 0 : o->next_attempt_at);
        if (a->status_code)
            sqlite3_bind_int(q, 5, a->status_code);
        else
            sqlite3_bind_null(q, 5);
        bind_opt(q, 6, a->error);
        if (done)
            sqlite3_bind_int64(q, 7, gp_now_ms());
        else
            sqlite3_bind_null(q, 7);
        char endpoint[GP_WH_ID_LEN] = "";
        int step = sqlite3_step(q);
        if (step == SQLITE_ROW) {
            copy_col(q, 0, endpoint, sizeof endpoint);
            while ((step = sqlite3_step(q)) == SQLITE_ROW)
                ;
        }
        if (step != SQLITE_DONE)
            rc = -GP_E_IO;
        sqlite3_finalize(q);
        q = NULL;
        if (rc == 0 && o->disable_endpoint && endpoint[0] &&
            sqlite3_prepare_v2(db,
                               "UPDATE webhook_endpoints SET disabled = 1, disabled_reason = ?2,"
                               " updated_at = ?3 WHERE id = ?1",
                               -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_text(q, 1, endpoint, -1, SQLITE_STATIC);
            bind_opt(q, 2, o->reason);
            sqlite3_bind_int64(q, 3, gp_now_ms());
            if (sqlite3_step(q) != SQLITE_DONE)
                rc = -GP_E_IO;
        }
    } else if (rc == 0) {
        rc = -GP_E_IO;
    }
    sqlite3_finalize(q);
    if (rc != 0)
        GP_ERROR("store: webhook attempt not recorded: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->identity_lock);
    return rc;
}

int gp_sqlite_wh_delivery_get(gp_store_t *st, const char *id, gp_webhook_delivery_t *out)
{
    q_t q;
    if (q_begin(st, "SELECT " DL_COLUMNS " FROM webhook_deliveries WHERE id = ?1", false, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(q.st);
    int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -GP_E_NOT_FOUND : -GP_E_IO;
    if (rc == 0)
        read_delivery(q.st, out);
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_delivery_list(gp_store_t *st, const gp_webhook_filter_t *f,
                               gp_webhook_delivery_t *out, size_t *n)
{
    q_t q;
    *n = 0;
    if (q_begin(st,
                "SELECT " DL_COLUMNS " FROM webhook_deliveries WHERE (?1 IS NULL OR owner = ?1)"
                " AND (?2 IS NULL OR (?2 = '' AND endpoint_id IS NULL) OR endpoint_id = ?2)"
                " AND (?3 IS NULL OR task_id = ?3) AND (?4 IS NULL OR status = ?4)"
                " AND (?5 = 0 OR seq < ?5) ORDER BY seq DESC LIMIT ?6",
                false, &q))
        return -GP_E_IO;
    if (f->owner)
        sqlite3_bind_text(q.st, 1, f->owner, -1, SQLITE_STATIC);
    if (f->endpoint_id)
        sqlite3_bind_text(q.st, 2, f->endpoint_id, -1, SQLITE_STATIC);
    if (f->task_id)
        sqlite3_bind_text(q.st, 3, f->task_id, -1, SQLITE_STATIC);
    if (f->status)
        sqlite3_bind_text(q.st, 4, f->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q.st, 5, f->before_seq);
    sqlite3_bind_int64(q.st, 6, (sqlite3_int64)f->limit);
    while (*n < f->limit && sqlite3_step(q.st) == SQLITE_ROW)
        read_delivery(q.st, &out[(*n)++]);
    q_end(&q);
    return 0;
}

int gp_sqlite_wh_attempts_list(gp_store_t *st, const char *id, gp_webhook_attempt_t *out,
                               size_t cap, size_t *n)
{
    q_t q;
    *n = 0;
    if (q_begin(st,
                "SELECT attempt, started_at, duration_ms, status_code, error, response"
                " FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt LIMIT ?2",
                false, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q.st, 2, (sqlite3_int64)cap);
    while (*n < cap && sqlite3_step(q.st) == SQLITE_ROW) {
        gp_webhook_attempt_t *a = &out[(*n)++];
        memset(a, 0, sizeof *a);
        a->attempt = sqlite3_column_int(q.st, 0);
        a->started_at = sqlite3_column_int64(q.st, 1);
        a->duration_ms = sqlite3_column_int64(q.st, 2);
        a->status_code = sqlite3_column_int(q.st, 3);
        copy_col(q.st, 4, a->error, sizeof a->error);
        copy_col(q.st, 5, a->response, sizeof a->response);
    }
    q_end(&q);
    return 0;
}

int gp_sqlite_wh_resend(gp_store_t *st, const char *id, int64_t now_ms)
{
    q_t q;
    if (q_begin(st,
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2,"
                " leased = 0, round_start = attempts, completed_at = NULL WHERE id = ?1",
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_text(q.st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q.st, 2, now_ms);
    int rc = q_exec(&q);
    if (rc == 0 && sqlite3_changes(q.db) == 0)
        rc = -GP_E_NOT_FOUND;
    q_end(&q);
    return rc;
}

int gp_sqlite_wh_release_leases(gp_store_t *st)
{
    q_t q;
    if (q_begin(st,
                "UPDATE webhook_deliveries SET next_attempt_at = ?1, leased = 0"
                " WHERE status = 'pending' AND leased = 1",
                true, &q))
        return -GP_E_IO;
    sqlite3_bind_int64(q.st, 1, gp_now_ms());
    int rc = q_exec(&q);
    q_end(&q);
    return rc;
}

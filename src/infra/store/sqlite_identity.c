/*
 * sqlite_identity.c — users and API keys in the embedded store (store.h's identity calls).
 *
 * Reads take a connection from the reader pool, so a key lookup never waits behind a write.
 * Writes run on the store's own identity connection under a mutex: they are rare, and
 * SQLite's busy timeout makes them wait for the committer's transaction instead of failing.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_COLUMNS                                                                               \
    "id, email, display_name, plan, created_at, disabled, oidc_issuer, oidc_subject, credits, "    \
    "reserved"
#define KEY_COLUMNS                                                                                \
    "id, user_id, name, prefix, hash, scopes, created_at, last_used_at, expires_at, revoked_at"

typedef struct {
    sqlite_store_t *s;
    sqlite3_stmt *st;
    sqlite3 *db;
    int reader; /* the pool slot of a read; -1 = the identity connection (writes) */
} query_t;

static int prepare_on(query_t *q, const char *sql)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, &q->st, NULL) == SQLITE_OK)
        return 0;
    GP_ERROR("store: identity query failed: %s", sqlite3_errmsg(q->db));
    if (q->reader >= 0)
        gp_sqlite_give_reader(q->s, q->reader);
    else
        pthread_mutex_unlock(&q->s->identity_lock);
    return -GP_E_IO;
}

/* Prepares a write on the identity connection, holding its lock until query_end. */
static int query_begin(gp_store_t *base, const char *sql, query_t *q)
{
    q->s = (sqlite_store_t *)base;
    q->reader = -1;
    pthread_mutex_lock(&q->s->identity_lock);
    q->db = q->s->identity;
    return prepare_on(q, sql);
}

/* Prepares a read on a pooled reader connection, held until query_end. */
static int query_begin_read(gp_store_t *base, const char *sql, query_t *q)
{
    q->s = (sqlite_store_t *)base;
    q->db = gp_sqlite_take_reader(q->s, &q->reader);
    return prepare_on(q, sql);
}

static void query_end(query_t *q)
{
    sqlite3_finalize(q->st);
    if (q->reader >= 0)
        gp_sqlite_give_reader(q->s, q->reader);
    else
        pthread_mutex_unlock(&q->s->identity_lock);
}

/* Steps a statement that returns no rows: 0, -GP_E_CONFLICT on a unique field, -GP_E_IO. */
static int query_exec(query_t *q)
{
    int rc = sqlite3_step(q->st);
    int out = 0;
    if (rc == SQLITE_CONSTRAINT)
        out = -GP_E_CONFLICT;
    else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        GP_ERROR("store: identity write failed: %s", sqlite3_errmsg(q->db));
        out = -GP_E_IO;
    }
    return out;
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_ms(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void copy_id(char *dst, size_t cap, sqlite3_stmt *st, int i)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    snprintf(dst, cap, "%s", v ? v : "");
}

static void read_user(sqlite3_stmt *st, gp_user_t *u)
{
    memset(u, 0, sizeof *u);
    copy_id(u->id, sizeof u->id, st, 0);
    u->email = gp_sqlite_col_text(st, 1);
    u->display_name = gp_sqlite_col_text(st, 2);
    u->plan = gp_sqlite_col_text(st, 3);
    if (!u->plan)
        u->plan = gp_xstrdup("free");
    u->created_at = sqlite3_column_int64(st, 4);
    u->disabled = sqlite3_column_int(st, 5) != 0;
    u->oidc_issuer = gp_sqlite_col_text(st, 6);
    u->oidc_subject = gp_sqlite_col_text(st, 7);
    u->credits = sqlite3_column_int64(st, 8);
    u->reserved = sqlite3_column_int64(st, 9);
}

static void read_key(sqlite3_stmt *st, gp_api_key_t *k)
{
    memset(k, 0, sizeof *k);
    copy_id(k->id, sizeof k->id, st, 0);
    copy_id(k->user_id, sizeof k->user_id, st, 1);
    k->name = gp_sqlite_col_text(st, 2);
    copy_id(k->prefix, sizeof k->prefix, st, 3);
    copy_id(k->hash, sizeof k->hash, st, 4);
    k->scopes = gp_sqlite_col_text(st, 5);
    k->created_at = sqlite3_column_int64(st, 6);
    k->last_used_at = sqlite3_column_int64(st, 7);
    k->expires_at = sqlite3_column_int64(st, 8);
    k->revoked_at = sqlite3_column_int64(st, 9);
}

/* Steps a one-row lookup into out via read: 0, -GP_E_NOT_FOUND, -GP_E_IO. */
static int query_one(query_t *q, void (*read)(sqlite3_stmt *, void *), void *out)
{
    int rc = sqlite3_step(q->st);
    if (rc == SQLITE_ROW) {
        read(q->st, out);
        return 0;
    }
    return rc == SQLITE_DONE ? -GP_E_NOT_FOUND : -GP_E_IO;
}

static void read_user_cb(sqlite3_stmt *st, void *out)
{
    read_user(st, out);
}

static void read_key_cb(sqlite3_stmt *st, void *out)
{
    read_key(st, out);
}

int gp_sqlite_user_create(gp_store_t *st, const gp_user_t *u)
{
    query_t q;
    if (query_begin(st,
                    "INSERT INTO users (" USER_COLUMNS ") VALUES (?1, lower(?2), ?3, ?4, ?5, ?6,"
                    " ?7, ?8, 0, 0)",
                    &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, u->id);
    bind_str(q.st, 2, u->email);
    bind_str(q.st, 3, u->display_name);
    bind_str(q.st, 4, u->plan ? u->plan : "free");
    sqlite3_bind_int64(q.st, 5, u->created_at);
    sqlite3_bind_int(q.st, 6, u->disabled ? 1 : 0);
    bind_str(q.st, 7, u->oidc_issuer);
    bind_str(q.st, 8, u->oidc_subject);
    int rc = query_exec(&q);
    query_end(&q);
    return rc;
}

int gp_sqlite_user_get(gp_store_t *st, const char *id_or_email, gp_user_t *out)
{
    query_t q;
    if (query_begin_read(st,
                         "SELECT " USER_COLUMNS " FROM users WHERE id = ?1 UNION ALL"
                         " SELECT " USER_COLUMNS " FROM users WHERE email = lower(?1) AND id <> ?1"
                         " LIMIT 1",
                         &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, id_or_email);
    int rc = query_one(&q, read_user_cb, out);
    query_end(&q);
    return rc;
}

int gp_sqlite_user_by_oidc(gp_store_t *st, const char *issuer, const char *subject, gp_user_t *out)
{
    query_t q;
    if (query_begin_read(
            st, "SELECT " USER_COLUMNS " FROM users WHERE oidc_issuer = ?1 AND oidc_subject = ?2",
            &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, issuer);
    bind_str(q.st, 2, subject);
    int rc = query_one(&q, read_user_cb, out);
    query_end(&q);
    return rc;
}

/* Keyset paging on (created_at, id): rows after the row whose id is after (NULL = first). */
#define AFTER_ROW(table)                                                                           \
    " (?1 IS NULL OR (created_at, id) > (SELECT created_at, id FROM " table " WHERE id = ?1))"

int gp_sqlite_user_list(gp_store_t *st, const char *after_id, gp_user_t *out, size_t cap, size_t *n)
{
    query_t q;
    *n = 0;
    if (query_begin_read(st,
                         "SELECT " USER_COLUMNS
                         " FROM users WHERE" AFTER_ROW("users") " ORDER BY created_at, id LIMIT ?2",
                         &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, after_id);
    sqlite3_bind_int64(q.st, 2, (sqlite3_int64)cap);
    int rc;
    while (*n < cap && (rc = sqlite3_step(q.st)) == SQLITE_ROW)
        read_user(q.st, &out[(*n)++]);
    query_end(&q);
    return 0;
}

int gp_sqlite_key_create(gp_store_t *st, const gp_api_key_t *k)
{
    query_t q;
    if (query_begin(st,
                    "INSERT INTO api_keys (" KEY_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                    " ?8, ?9, ?10)",
                    &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, k->id);
    bind_str(q.st, 2, k->user_id);
    bind_str(q.st, 3, k->name);
    bind_str(q.st, 4, k->prefix);
    bind_str(q.st, 5, k->hash);
    bind_str(q.st, 6, k->scopes ? k->scopes : "");
    sqlite3_bind_int64(q.st, 7, k->created_at);
    bind_ms(q.st, 8, k->last_used_at);
    bind_ms(q.st, 9, k->expires_at);
    bind_ms(q.st, 10, k->revoked_at);
    int rc = query_exec(&q);
    query_end(&q);
    return rc;
}

int gp_sqlite_key_by_hash(gp_store_t *st, const char *hash_hex, gp_api_key_t *out)
{
    query_t q;
    if (query_begin_read(st, "SELECT " KEY_COLUMNS " FROM api_keys WHERE hash = ?1", &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, hash_hex);
    int rc = query_one(&q, read_key_cb, out);
    query_end(&q);
    return rc;
}

int gp_sqlite_key_list(gp_store_t *st, const char *user_id, const char *after_id, gp_api_key_t *out,
                       size_t cap, size_t *n)
{
    query_t q;
    *n = 0;
    if (query_begin_read(st,
                         "SELECT " KEY_COLUMNS " FROM api_keys WHERE" AFTER_ROW(
                             "api_keys") " AND (?3 IS NULL OR user_id = ?3)"
                                         " ORDER BY created_at, id LIMIT ?2",
                         &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, after_id);
    sqlite3_bind_int64(q.st, 2, (sqlite3_int64)cap);
    bind_str(q.st, 3, user_id);
    while (*n < cap && sqlite3_step(q.st) == SQLITE_ROW)
        read_key(q.st, &out[(*n)++]);
    query_end(&q);
    return 0;
}

/* Runs an UPDATE of one key by id: 0, or -GP_E_NOT_FOUND when no row has that id. */
static int update_key(gp_store_t *st, const char *sql, const char *id, int64_t now_ms)
{
    query_t q;
    if (query_begin(st, sql, &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, id);
    sqlite3_bind_int64(q.st, 2, now_ms);
    int rc = query_exec(&q);
    if (rc == 0 && sqlite3_changes(q.db) == 0)
        rc = -GP_E_NOT_FOUND;
    query_end(&q);
    return rc;
}

int gp_sqlite_key_revoke(gp_store_t *st, const char *id, int64_t now_ms)
{
    return update_key(st, "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                      id, now_ms);
}

int gp_sqlite_key_touch(gp_store_t *st, const char *id, int64_t now_ms)
{
    return update_key(st, "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1", id, now_ms);
}

int gp_sqlite_count_pending(gp_store_t *base, const char *owner, int64_t cap, int64_t *n)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int slot;
    sqlite3 *db = gp_sqlite_take_reader(s, &slot);
    sqlite3_stmt *q = NULL;
    int rc = -GP_E_IO;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE owner = ?1"
                           " AND status = 'pending' LIMIT ?2)",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, cap);
        if (sqlite3_step(q) == SQLITE_ROW) {
            *n = sqlite3_column_int64(q, 0);
            rc = 0;
        }
    }
    sqlite3_finalize(q);
    gp_sqlite_give_reader(s, slot);
    return rc;
}

int gp_sqlite_keys_active(gp_store_t *st, int64_t now_ms, int64_t *count)
{
    query_t q;
    if (query_begin_read(st,
                         "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
                         " AND (expires_at IS NULL OR expires_at > ?1)",
                         &q) != 0)
        return -GP_E_IO;
    sqlite3_bind_int64(q.st, 1, now_ms);
    int rc = sqlite3_step(q.st) == SQLITE_ROW ? 0 : -GP_E_IO;
    if (rc == 0)
        *count = sqlite3_column_int64(q.st, 0);
    query_end(&q);
    return rc;
}

int gp_sqlite_user_update(gp_store_t *st, const char *id, const char *plan, int disabled)
{
    query_t q;
    if (query_begin(st,
                    "UPDATE users SET plan = COALESCE(?2, plan),"
                    " disabled = CASE WHEN ?3 < 0 THEN disabled ELSE ?3 END WHERE id = ?1",
                    &q) != 0)
        return -GP_E_IO;
    bind_str(q.st, 1, id);
    bind_str(q.st, 2, plan);
    sqlite3_bind_int(q.st, 3, disabled);
    int rc = query_exec(&q);
    if (rc == 0 && sqlite3_changes(q.db) == 0)
        rc = -GP_E_NOT_FOUND;
    query_end(&q);
    return rc;
}

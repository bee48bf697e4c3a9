/*
 * postgres_webhooks.c — the webhook outbox of the PostgreSQL store (store.h, "webhooks").
 *
 * The rows of task.started / task.succeeded / … are added by GP_PG_OUTBOX_SQL, which
 * postgres.c sends in the batch's pipeline right after the op that caused them: the same
 * implicit transaction. Everything here is one autocommit statement on a pooled connection.
 * Claims lock with FOR UPDATE SKIP LOCKED, so the loops of several gateways never take the
 * same row, and none waits for another.
 */
#include "core/errors.h"
#include "core/log.h"
#include "infra/store/postgres_internal.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EP_COLUMNS                                                                                 \
    "id, owner, url, secret, event_types, description, disabled, disabled_reason, created_at,"     \
    " updated_at"
#define DL_COLUMNS                                                                                 \
    "seq, id, owner, endpoint_id, task_id, event_type, url, format, payload, status, attempts,"    \
    " round_start, next_attempt_at, last_status_code, last_error, created_at, completed_at"

static void copy_val(const PGresult *r, int row, int col, char *out, size_t cap)
{
    const char *v = val(r, row, col);
    snprintf(out, cap, "%s", v ? v : "");
}

static const char *i64(char *buf, size_t cap, long long x)
{
    snprintf(buf, cap, "%lld", x);
    return buf;
}

static bool texts_ok(const char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i] && !gp_pg_utf8_ok(v[i]))
            return false;
    return true;
}

/* One statement; rows (may be NULL) = how many it returned. */
static int run(gp_store_t *st, const char *sql, int n, const char *const *v, int *rows)
{
    if (!texts_ok(v, n))
        return -GP_E_VALIDATION;
    PGresult *r;
    int rc = gp_pg_pool_query(st, sql, n, v, &r);
    if (rc != 0)
        return rc;
    if (rows)
        *rows = PQntuples(r);
    PQclear(r);
    return 0;
}

static void read_endpoint(const PGresult *r, int i, gp_webhook_endpoint_t *e)
{
    memset(e, 0, sizeof *e);
    copy_val(r, i, 0, e->id, sizeof e->id);
    copy_val(r, i, 1, e->owner, sizeof e->owner);
    e->url = col_text(r, i, 2);
    copy_val(r, i, 3, e->secret, sizeof e->secret);
    e->event_types = (unsigned)col_i64(r, i, 4);
    e->description = col_text(r, i, 5);
    e->disabled = col_i64(r, i, 6) != 0;
    copy_val(r, i, 7, e->disabled_reason, sizeof e->disabled_reason);
    e->created_at = col_i64(r, i, 8);
    e->updated_at = col_i64(r, i, 9);
}

static void read_delivery(const PGresult *r, int i, gp_webhook_delivery_t *d)
{
    memset(d, 0, sizeof *d);
    d->seq = col_i64(r, i, 0);
    copy_val(r, i, 1, d->id, sizeof d->id);
    copy_val(r, i, 2, d->owner, sizeof d->owner);
    copy_val(r, i, 3, d->endpoint_id, sizeof d->endpoint_id);
    copy_val(r, i, 4, d->task_id, sizeof d->task_id);
    copy_val(r, i, 5, d->event_type, sizeof d->event_type);
    d->url = col_text(r, i, 6);
    d->format = (int)col_i64(r, i, 7);
    d->payload = col_text(r, i, 8);
    copy_val(r, i, 9, d->status, sizeof d->status);
    d->attempts = (int)col_i64(r, i, 10);
    d->round_start = (int)col_i64(r, i, 11);
    d->next_attempt_at = col_i64(r, i, 12);
    d->last_status_code = (int)col_i64(r, i, 13);
    copy_val(r, i, 14, d->last_error, sizeof d->last_error);
    d->created_at = col_i64(r, i, 15);
    d->completed_at = col_i64(r, i, 16);
}

int gp_pg_wh_endpoint_create(gp_store_t *st, const gp_webhook_endpoint_t *e)
{
    char types[24], dis[4], c[24], u[24];
    const char *v[10] = {e->id,
                         e->owner,
                         e->url,
                         e->secret,
                         i64(types, sizeof types, e->event_types),
                         e->description,
                         i64(dis, sizeof dis, e->disabled ? 1 : 0),
                         e->disabled_reason[0] ? e->disabled_reason : NULL,
                         i64(c, sizeof c, (long long)e->created_at),
                         i64(u, sizeof u, (long long)e->updated_at)};
    return run(st,
               "INSERT INTO webhook_endpoints (" EP_COLUMNS ") VALUES ($1::text, $2::text,"
               " $3::text, $4::text, $5::int, $6::text, $7::int, $8::text, $9::bigint,"
               " $10::bigint) RETURNING 1",
               10, v, NULL);
}

int gp_pg_wh_endpoint_get(gp_store_t *st, const char *id, gp_webhook_endpoint_t *out)
{
    if (!gp_pg_utf8_ok(id))
        return -GP_E_NOT_FOUND;
    const char *v[1] = {id};
    PGresult *r;
    int rc = gp_pg_pool_query(
        st, "SELECT " EP_COLUMNS " FROM webhook_endpoints WHERE id = $1::text", 1, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        read_endpoint(r, 0, out);
    else
        rc = -GP_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

int gp_pg_wh_endpoint_list(gp_store_t *st, const char *owner, gp_webhook_endpoint_t *out,
                           size_t cap, size_t *n)
{
    *n = 0;
    char limit[24];
    const char *v[2] = {owner, i64(limit, sizeof limit, (long long)(cap < 100000 ? cap : 100000))};
    if (!texts_ok(v, 1))
        return 0;
    PGresult *r;
    int rc = gp_pg_pool_query(st,
                              "SELECT " EP_COLUMNS " FROM webhook_endpoints WHERE ($1::text IS NULL"
                              " OR owner = $1::text) ORDER BY created_at, id LIMIT $2::bigint",
                              2, v, &r);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < cap; i++)
        read_endpoint(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int gp_pg_wh_endpoint_update(gp_store_t *st, const gp_webhook_endpoint_t *e)
{
    char types[24], dis[4], u[24];
    const char *v[8] = {e->id,
                        e->url,
                        e->secret,
                        i64(types, sizeof types, e->event_types),
                        e->description,
                        i64(dis, sizeof dis, e->disabled ? 1 : 0),
                        e->disabled_reason[0] ? e->disabled_reason : NULL,
                        i64(u, sizeof u, (long long)e->updated_at)};
    int rows = 0;
    int rc = run(st,
                 "UPDATE webhook_endpoints SET url = $2::text, secret = $3::text,"
                 " event_types = $4::int, description = $5::text, disabled = $6::int,"
                 " disabled_reason = $7::text, updated_at = $8::bigint WHERE id = $1::text"
                 " RETURNING 1",
                 8, v, &rows);
    return rc == 0 && rows == 0 ? -GP_E_NOT_FOUND : rc;
}

int gp_pg_wh_endpoint_delete(gp_store_t *st, const char *id)
{
    char now[24];
    const char *v[2] = {id, i64(now, sizeof now, (long long)gp_now_ms())};
    int rows = 0;
    int rc = run(st,
                 "WITH del AS (DELETE FROM webhook_endpoints WHERE id = $1::text RETURNING id),"
                 " f AS (UPDATE webhook_deliveries SET status = 'failed', completed_at ="
                 " $2::bigint, last_error = 'endpoint deleted' WHERE endpoint_id IN"
                 " (SELECT id FROM del) AND status = 'pending') SELECT 1 FROM del",
                 2, v, &rows);
    if (rc == -GP_E_VALIDATION)
        return -GP_E_NOT_FOUND;
    return rc == 0 && rows == 0 ? -GP_E_NOT_FOUND : rc;
}

int gp_pg_wh_default_secret(gp_store_t *st, const char *owner, const char *candidate,
                            char out[GP_WH_SECRET_LEN])
{
    char now[24];
    const char *v[3] = {owner, candidate, i64(now, sizeof now, (long long)gp_now_ms())};
    if (!texts_ok(v, 2))
        return -GP_E_VALIDATION;
    PGresult *r = NULL;
    int rc = 0;
    /* Twice: a concurrent first call may insert between our read and our insert (then the
     * insert does nothing, and the second round reads its row). */
    for (int round = 0; round < 2; round++) {
        PQclear(r);
        rc = gp_pg_pool_query(st,
                              "WITH old AS (SELECT secret FROM webhook_secrets WHERE owner ="
                              " $1::text), ins AS (INSERT INTO webhook_secrets (owner, secret,"
                              " created_at) SELECT $1::text, $2::text, $3::bigint WHERE NOT"
                              " EXISTS (SELECT 1 FROM old) ON CONFLICT (owner) DO NOTHING"
                              " RETURNING secret)"
                              " SELECT secret FROM old UNION ALL SELECT secret FROM ins LIMIT 1",
                              3, v, &r);
        if (rc != 0)
            return rc;
        if (PQntuples(r) == 1)
            break;
    }
    if (PQntuples(r) == 1)
        copy_val(r, 0, 0, out, GP_WH_SECRET_LEN);
    else
        rc = -GP_E_UNAVAILABLE;
    PQclear(r);
    return rc;
}

int gp_pg_wh_enqueue(gp_store_t *st, const char *task_id, unsigned type, int64_t now_ms, int *added)
{
    const char *name = gp_webhook_type_name(type);
    if (added)
        *added = 0;
    if (!name)
        return -GP_E_INTERNAL;
    char now[24];
    const char *v[3] = {task_id, i64(now, sizeof now, (long long)now_ms), name};
    return run(st, GP_PG_OUTBOX_SQL, 3, v, added);
}

int gp_pg_wh_claim(gp_store_t *st, int64_t now_ms, int64_t lease_ms, gp_webhook_delivery_t *out,
                   size_t cap, size_t *n)
{
    *n = 0;
    char now[24], until[24], limit[24];
    const char *v[3] = {i64(now, sizeof now, (long long)now_ms),
                        i64(until, sizeof until, (long long)(now_ms + lease_ms)),
                        i64(limit, sizeof limit, (long long)cap)};
    PGresult *r;
    int rc = gp_pg_pool_query(st,
                              "UPDATE webhook_deliveries SET next_attempt_at = $2::bigint,"
                              " leased = 1 WHERE seq IN (SELECT seq FROM webhook_deliveries"
                              " WHERE status = 'pending' AND next_attempt_at <= $1::bigint"
                              " ORDER BY next_attempt_at LIMIT $3::bigint FOR UPDATE SKIP LOCKED)"
                              " RETURNING " DL_COLUMNS,
                              3, v, &r);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < cap; i++)
        read_delivery(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int gp_pg_wh_set_payload(gp_store_t *st, const char *id, const char *payload)
{
    const char *v[2] = {id, payload};
    return run(st,
               "UPDATE webhook_deliveries SET payload = $2::text WHERE id = $1::text"
               " AND payload IS NULL RETURNING 1",
               2, v, NULL);
}

int gp_pg_wh_record(gp_store_t *st, const char *id, const gp_webhook_attempt_t *a,
                    const gp_webhook_outcome_t *o)
{
    bool done = strcmp(o->status, "pending") != 0;
    char att[16], started[24], dur[24], code[16], next[24], now[24];
    const char *v[11] = {id,
                         i64(att, sizeof att, a->attempt),
                         i64(started, sizeof started, (long long)a->started_at),
                         i64(dur, sizeof dur, (long long)a->duration_ms),
                         a->status_code ? i64(code, sizeof code, a->status_code) : NULL,
                         a->error[0] ? a->error : NULL,
                         a->response[0] ? a->response : NULL,
                         o->status,
                         i64(next, sizeof next, done ? 0LL : (long long)o->next_attempt_at),
                         i64(now, sizeof now, (long long)gp_now_ms()),
                         o->disable_endpoint ? (o->reason ? o->reason : "disabled") : NULL};
    return run(st,
               "WITH att AS (INSERT INTO webhook_attempts (delivery_id, attempt, started_at,"
               " duration_ms, status_code, error, response) VALUES ($1::text, $2::int,"
               " $3::bigint, $4::bigint, $5::int, $6::text, $7::text) ON CONFLICT"
               " (delivery_id, attempt) DO UPDATE SET started_at = EXCLUDED.started_at,"
               " duration_ms = EXCLUDED.duration_ms, status_code = EXCLUDED.status_code,"
               " error = EXCLUDED.error, response = EXCLUDED.response),"
               " upd AS (UPDATE webhook_deliveries SET status = $8::text, attempts = $2::int,"
               " next_attempt_at = $9::bigint, leased = 0, last_status_code = $5::int,"
               " last_error = $6::text, completed_at = CASE WHEN $8::text = 'pending' THEN NULL"
               " ELSE $10::bigint END WHERE id = $1::text RETURNING endpoint_id),"
               " dis AS (UPDATE webhook_endpoints SET disabled = 1, disabled_reason = $11::text,"
               " updated_at = $10::bigint WHERE $11::text IS NOT NULL"
               " AND id = (SELECT endpoint_id FROM upd))"
               " SELECT 1 FROM upd",
               11, v, NULL);
}

int gp_pg_wh_delivery_get(gp_store_t *st, const char *id, gp_webhook_delivery_t *out)
{
    if (!gp_pg_utf8_ok(id))
        return -GP_E_NOT_FOUND;
    const char *v[1] = {id};
    PGresult *r;
    int rc = gp_pg_pool_query(
        st, "SELECT " DL_COLUMNS " FROM webhook_deliveries WHERE id = $1::text", 1, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        read_delivery(r, 0, out);
    else
        rc = -GP_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

int gp_pg_wh_delivery_list(gp_store_t *st, const gp_webhook_filter_t *f, gp_webhook_delivery_t *out,
                           size_t *n)
{
    *n = 0;
    char before[24], limit[24];
    const char *v[6] = {f->owner,
                        f->endpoint_id,
                        f->task_id,
                        f->status,
                        i64(before, sizeof before, (long long)f->before_seq),
                        i64(limit, sizeof limit, (long long)f->limit)};
    if (!texts_ok(v, 4))
        return 0;
    PGresult *r;
    int rc = gp_pg_pool_query(
        st,
        "SELECT " DL_COLUMNS " FROM webhook_deliveries WHERE ($1::text IS NULL OR owner = $1)"
        " AND ($2::text IS NULL OR ($2 = '' AND endpoint_id IS NULL) OR endpoint_id = $2)"
        " AND ($3::text IS NULL OR task_id = $3) AND ($4::text IS NULL OR status = $4)"
        " AND ($5::bigint = 0 OR seq < $5) ORDER BY seq DESC LIMIT $6::bigint",
        6, v, &r);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < f->limit; i++)
        read_delivery(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int gp_pg_wh_attempts_list(gp_store_t *st, const char *id, gp_webhook_attempt_t *out, size_t cap,
                           size_t *n)
{
    *n = 0;
    if (!gp_pg_utf8_ok(id))
        return 0;
    char limit[24];
    const char *v[2] = {id, i64(limit, sizeof limit, (long long)cap)};
    PGresult *r;
    int rc = gp_pg_pool_query(st,
                              "SELECT attempt, started_at, duration_ms, status_code, error,"
                              " response FROM webhook_attempts WHERE delivery_id = $1::text"
                              " ORDER BY attempt LIMIT $2::bigint",
                              2, v, &r);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < cap; i++) {
        gp_webhook_attempt_t *a = &out[(*n)++];
        memset(a, 0, sizeof *a);
        a->attempt = (int)col_i64(r, i, 0);
        a->started_at = col_i64(r, i, 1);
        a->duration_ms = col_i64(r, i, 2);
        a->status_code = (int)col_i64(r, i, 3);
        copy_val(r, i, 4, a->error, sizeof a->error);
        copy_val(r, i, 5, a->response, sizeof a->response);
    }
    PQclear(r);
    return 0;
}

int gp_pg_wh_resend(gp_store_t *st, const char *id, int64_t now_ms)
{
    char now[24];
    const char *v[2] = {id, i64(now, sizeof now, (long long)now_ms)};
    int rows = 0;
    int rc = run(st,
                 "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2::bigint,"
                 " leased = 0, round_start = attempts, completed_at = NULL WHERE id = $1::text"
                 " RETURNING pg_notify('" GP_PG_WEBHOOK_CHANNEL "', '')",
                 2, v, &rows);
    if (rc == -GP_E_VALIDATION)
        return -GP_E_NOT_FOUND;
    return rc == 0 && rows == 0 ? -GP_E_NOT_FOUND : rc;
}

int gp_pg_wh_release_leases(gp_store_t *st)
{
    (void)st; /* other gateways may hold leases: they end on their own */
    return 0;
}

/* ---- waiting for other processes' deliveries (LISTEN) ---- */

struct gp_pg_listener {
    PGconn *conn;
    int64_t retry_at_ms; /* monotonic: no reconnect before */
    bool warned;         /* the outage was logged */
};

void gp_pg_listener_free(struct gp_pg_listener *l)
{
    if (!l)
        return;
    PQfinish(l->conn);
    free(l);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Drains the notifications received; true if there were any. */
static bool drain(PGconn *c)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(c))) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

int gp_pg_wh_wait(gp_store_t *st, int64_t timeout_ms)
{
    struct gp_pg_listener **slot = gp_pg_listener_slot(st);
    if (!*slot)
        *slot = gp_xcalloc(1, sizeof **slot);
    struct gp_pg_listener *l = *slot;
    if (!l->conn || PQstatus(l->conn) != CONNECTION_OK) {
        if (gp_mono_ms() < l->retry_at_ms) {
            sleep_ms(timeout_ms);
            return -1;
        }
        PQfinish(l->conn);
        char err[512] = "";
        l->conn = gp_pg_connect(st, err, sizeof err);
        PGresult *r = l->conn ? PQexec(l->conn, "LISTEN " GP_PG_WEBHOOK_CHANNEL) : NULL;
        bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            if (!l->warned)
                GP_WARN("store: webhook listener: PostgreSQL unavailable (deliveries wait): %s",
                        err[0] ? err : "LISTEN failed");
            l->warned = true;
            PQfinish(l->conn);
            l->conn = NULL;
            l->retry_at_ms = gp_mono_ms() + 1000;
            sleep_ms(timeout_ms);
            return -1;
        }
        if (l->warned)
            GP_INFO("store: webhook listener: PostgreSQL is back");
        l->warned = false;
        return 1; /* anything announced before we listened is found by a claim now */
    }
    if (PQconsumeInput(l->conn) && PQstatus(l->conn) == CONNECTION_OK && drain(l->conn))
        return 1;
    struct pollfd pfd = {.fd = PQsocket(l->conn), .events = POLLIN};
    int ready = pfd.fd >= 0 ? poll(&pfd, 1, (int)timeout_ms) : 0;
    if (ready <= 0)
        return 0;
    /* A listening session receives notifications and little else: readable with none to
     * drain is most likely a server ending the session (shutting down: an error message,
     * then EOF). Reported as down, so the loop does not query a database that is going
     * away; the next call reconnects (on its own connection) and says when it is back. */
    if (PQconsumeInput(l->conn) && PQstatus(l->conn) == CONNECTION_OK && drain(l->conn))
        return 1;
    PQfinish(l->conn);
    l->conn = NULL;
    return -1;
}

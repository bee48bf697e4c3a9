/*
 * postgres.c — the distributed state store: PostgreSQL through libpq (postgres:// and
 * postgresql:// URLs). Same semantics as sqlite.c, op for op.
 *
 * DESIGN
 * - Group commit over one writer connection, used only by apply_batch() (the committer
 *   thread). A batch is sent in libpq pipeline mode: one PQsendQueryPrepared per op, then a
 *   single PQpipelineSync, so the whole batch costs one round trip. There is no BEGIN/COMMIT:
 *   the statements between two syncs form one implicit transaction, which commits at the sync
 *   and rolls back atomically on any error, leaving the session idle (an explicit BEGIN would
 *   leave it in an aborted transaction, c_deps.md §5 P2).
 * - Ops stay independent because every op is ONE statement whose normal failures are not SQL
 *   errors: a lost compare-and-set updates zero rows, a duplicate id or idempotency key is
 *   ON CONFLICT DO NOTHING, and each statement returns what we need to tell the outcomes
 *   apart. So an SQL error (or a lost connection) means the batch failed as a whole: every op
 *   gets -GP_E_UNAVAILABLE. Input PostgreSQL would reject (invalid UTF-8, \u0000 in jsonb) is
 *   caught before sending, so one bad op cannot abort its neighbours.
 * - Credits (store.h) move inside the op's own statement, as data-modifying CTEs chained by
 *   their RETURNING rows: the task change, then the ledger row (unique key, ON CONFLICT DO
 *   NOTHING), then the balance, each only if the one before happened. A balance too short
 *   is a condition in that chain, never a CHECK violation, so it fails its op alone. The
 *   owner's row is read FOR NO KEY UPDATE, so a second gateway spending the same balance
 *   waits and then sees what the first one left.
 * - A batch that may move credits starts with one more statement that locks all the users
 *   it may touch, in id order (ST_LOCK_USERS): row locks taken op by op would let two
 *   gateways' batches deadlock over two users, and a deadlock aborts a batch whole.
 * - Results are applied to the ops only after the sync confirmed the commit.
 * - A broken writer is reset (PQreset) on the next call, with a small backoff between failed
 *   attempts so a down server costs one fast 503, not a connect per request.
 * - Readers (get/list/scan_unfinished, any thread) take a connection from a small pool behind
 *   a mutex, connect lazily, and reset-and-retry once when the connection broke. The identity
 *   calls (postgres_identity.c) run there too, each one autocommit statement: they are not
 *   batched state changes, and must not wait behind the committer.
 * - Idempotency keys are unique per owner: CREATE's conflict handling and its replay lookup
 *   key on (owner, idempotency_key). The replayed row carries the first request's
 *   request_hash; comparing it is the gateway's job.
 * - Nothing waits forever: connect_timeout, TCP keepalives and tcp_user_timeout bound a dead
 *   peer, statement_timeout bounds the server (both defaults, overridable in the URL).
 * - The URL (it may hold a password) is never logged.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/store/postgres_internal.h"
#include "infra/store/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_POOL_SIZE 4
#define SCAN_PAGE 500
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* Serializes concurrent migrate() calls of many processes (pg_advisory_xact_lock). */
#define MIGRATE_LOCK_KEY "7216339421"

typedef struct pg_store {
    gp_store_t base;
    char *url;
    /* writer: apply_batch() only (and migrate(), which is not run concurrently with it) */
    PGconn *writer;
    bool writer_prepared; /* the named statements exist on this session */
    bool writer_broken;   /* reset before next use */
    int backoff_ms;
    int64_t retry_at_ms; /* monotonic; no reset attempt before */
    /* readers */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    PGconn *readers[READ_POOL_SIZE];
    bool reader_busy[READ_POOL_SIZE];
    int64_t reader_retry_at_ms; /* under pool_lock: after a failed connect, fail fast until */
    struct gp_pg_listener *wh_listener; /* postgres_webhooks.c: LISTEN for new deliveries */
} pg_store_t;

/* Versioned migrations: entry i brings the schema to version i + 1. Append only. Times are
 * BIGINT ms and params/result are jsonb read back as text, so rows map 1:1 onto gp_task_t. */
static const char *const migrations[] = {
    "CREATE TABLE tasks ("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  task_type TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  params JSONB NOT NULL,"
    "  result JSONB,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_retries INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  cancel_requested BOOLEAN NOT NULL DEFAULT false,"
    "  idempotency_key TEXT UNIQUE,"
    "  created_at BIGINT NOT NULL,"
    "  started_at BIGINT,"
    "  completed_at BIGINT,"
    "  not_before BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX tasks_status_seq ON tasks(status, seq);"
    "CREATE INDEX tasks_type_seq ON tasks(task_type, seq);"
    "CREATE INDEX tasks_unfinished_seq ON tasks(seq) WHERE status IN ('pending', 'processing');",

    /* 2: identity and credits. Tasks get an owner (existing rows belong to the built-in
     * user) and the idempotency key becomes unique per owner. No foreign key from
     * tasks.owner: a CREATE must not turn into an SQL error (see DESIGN); the gateway only
     * names known users. Users hold credits; the ledger records every movement. */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  email TEXT UNIQUE,"
    "  display_name TEXT,"
    "  plan TEXT NOT NULL DEFAULT 'free',"
    "  created_at BIGINT NOT NULL,"
    "  disabled BOOLEAN NOT NULL DEFAULT false,"
    "  oidc_issuer TEXT,"
    "  oidc_subject TEXT,"
    "  credits BIGINT NOT NULL DEFAULT 0 CHECK (credits >= 0),"
    "  reserved BIGINT NOT NULL DEFAULT 0,"
    "  UNIQUE (oidc_issuer, oidc_subject)"
    ");"
    "CREATE INDEX users_created ON users(created_at, id);"
    "INSERT INTO users (id, email, display_name, plan, created_at)"
    " VALUES ('" GP_LOCAL_USER_ID "', NULL, 'Local user', 'unlimited',"
    " (extract(epoch FROM clock_timestamp()) * 1000)::bigint) ON CONFLICT DO NOTHING;"
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id),"
    "  name TEXT,"
    "  prefix TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  scopes TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  last_used_at BIGINT,"
    "  expires_at BIGINT,"
    "  revoked_at BIGINT"
    ");"
    "CREATE INDEX api_keys_user_created ON api_keys(user_id, created_at, id);"
    "ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '" GP_LOCAL_USER_ID "',"
    "  ADD COLUMN request_hash TEXT,"
    "  ADD COLUMN price BIGINT NOT NULL DEFAULT 0,"
    "  ADD COLUMN charge_round INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks DROP CONSTRAINT tasks_idempotency_key_key;"
    "CREATE UNIQUE INDEX tasks_owner_idempotency_key ON tasks(owner, idempotency_key);"
    "CREATE INDEX tasks_owner_seq ON tasks(owner, seq);"
    "CREATE INDEX tasks_owner_pending ON tasks(owner) WHERE status = 'pending';"
    /* No foreign keys here either: a movement must never become an SQL error. */
    "CREATE TABLE credit_ledger ("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  task_id TEXT,"
    "  kind TEXT NOT NULL,"
    "  amount BIGINT NOT NULL,"
    "  balance_after BIGINT NOT NULL,"
    "  unique_key TEXT NOT NULL UNIQUE,"
    "  note TEXT,"
    "  created_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX credit_ledger_user_seq ON credit_ledger(user_id, seq);",

    /* 3: which worker runs a task, and one row per attempt (store.h, "attempts history").
     * No foreign key to tasks, for the same reason as above. */
    "ALTER TABLE tasks ADD COLUMN worker_id TEXT;"
    "CREATE TABLE task_attempts ("
    "  task_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  worker_id TEXT,"
    "  started_at BIGINT NOT NULL,"
    "  ended_at BIGINT,"
    "  status TEXT NOT NULL,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  PRIMARY KEY (task_id, attempt)"
    ");",

    /* 4: webhooks (store.h, "webhooks"; postgres_webhooks.c). */
    GP_PG_WEBHOOKS_MIGRATION,
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

#define TASK_COLUMNS                                                                               \
    "seq, id, task_type, provider, status, params, result, error_code, error_message, "            \
    "attempts, max_retries, priority, cancel_requested, idempotency_key, created_at, "             \
    "started_at, completed_at, not_before, owner, request_hash, price, charge_round, worker_id, "  \
    "webhook, webhook_events, webhook_format"
#define N_TASK_COLUMNS 26

/* Credit movements inside the op statements (store.h, "credits"). Each one first inserts
 * its ledger row, keyed "<task>:<kind>:<round>" (the keys sqlite.c uses), and moves the
 * balance only if that row is new: a replayed or duplicated op moves nothing twice. The
 * statement before them provides `lk` (the owner's row, locked FOR NO KEY UPDATE, so
 * READ COMMITTED hands us the latest balance after any wait, and an API key insert's
 * FOR KEY SHARE is not blocked) and `mk` (id, owner, price, charge_round, kind, at = now:
 * at most one movement per op). A round is settled once: a capture is skipped if the round was released
 * and vice versa (the opposite key of a reserve is NULL, so its check is a no-op; no OR, so
 * the check stays an index probe). balance_after is `credits` after the movement. */
#define MOVE_CTES                                                                                  \
    " led AS (INSERT INTO credit_ledger (user_id, task_id, kind, amount, balance_after,"           \
    " unique_key, created_at) SELECT m.owner, m.id, m.kind, m.price, lk.credits"                   \
    " + CASE m.kind WHEN 'reserve' THEN -m.price WHEN 'release' THEN m.price ELSE 0 END,"          \
    " m.id || ':' || m.kind || ':' || m.charge_round, m.at"                                        \
    " FROM mk m JOIN lk ON lk.id = m.owner WHERE m.kind IS NOT NULL"                               \
    " AND NOT EXISTS (SELECT 1 FROM credit_ledger c WHERE c.unique_key = m.id || CASE m.kind"      \
    " WHEN 'capture' THEN ':release:' WHEN 'release' THEN ':capture:' END || m.charge_round)"      \
    " ON CONFLICT (unique_key) DO NOTHING RETURNING user_id, kind, amount),"                       \
    " mv AS (UPDATE users SET credits = credits"                                                   \
    " + CASE l.kind WHEN 'reserve' THEN -l.amount WHEN 'release' THEN l.amount ELSE 0 END,"        \
    " reserved = reserved + CASE l.kind WHEN 'reserve' THEN l.amount ELSE -l.amount END"           \
    " FROM led l WHERE users.id = l.user_id)"

/* The owner's row of task $1, locked, when the task has a price (else no row). */
#define LOCK_TASK_OWNER                                                                            \
    " lk AS (SELECT id, credits FROM users WHERE id = (SELECT owner FROM tasks"                    \
    " WHERE id = $1::text AND price > 0) FOR NO KEY UPDATE),"

#define CREATE_INSERT_COLUMNS                                                                      \
    "id, task_type, provider, status, params, attempts, max_retries, priority,"                    \
    " idempotency_key, created_at, not_before, owner, request_hash, webhook, webhook_events,"      \
    " webhook_format"
#define CREATE_VALUES                                                                              \
    "$1::text, $2::text, $3::text, 'pending', $4::jsonb, 0, $5::int, $6::int, $7::text,"           \
    " $8::bigint, 0, $9::text, $10::text"
/* The task's webhook columns: $11.. in gp_create, $13.. in gp_create_priced. */
#define CREATE_WEBHOOK_VALUES ", $11::text, $12::int, $13::int"
#define CREATE_WEBHOOK_VALUES_PRICED ", $13::text, $14::int, $15::int"
/* The owner's row holding the idempotency key, when nothing was inserted (replay). */
#define CREATE_OLD                                                                                 \
    " old AS (SELECT " TASK_COLUMNS " FROM tasks WHERE owner = $9::text"                           \
    " AND idempotency_key = $7::text AND NOT EXISTS (SELECT 1 FROM ins))"

/* The attempts history (store.h): a transition from processing ($2, $3 = the attempt) that
 * changed the row (`upd`: id, status, error_code, error_message) ends the attempt. */
#define ATTEMPT_END                                                                                \
    " att AS (UPDATE task_attempts a SET ended_at = (extract(epoch FROM clock_timestamp())"        \
    " * 1000)::bigint, status = CASE WHEN u.status IN ('succeeded', 'failed', 'canceled')"         \
    " THEN u.status WHEN u.error_code IS NULL THEN 'interrupted' ELSE 'retried' END,"              \
    " error_code = u.error_code, error_message = u.error_message FROM upd u"                       \
    " WHERE $2::text = 'processing' AND u.status <> 'processing' AND a.task_id = u.id"             \
    " AND a.attempt = $3::int AND a.ended_at IS NULL),"

/* The writer's prepared statements (one statement per op, plus the batch's lock). */
static const struct {
    const char *name;
    int nparams;
    const char *sql;
} writer_stmts[] = {
/* CREATE: insert, or find the owner's row holding the idempotency key (keys are unique
     * per owner). Exactly one row comes back: new_seq set = inserted; the task columns set =
     * replay (with the first request's request_hash, which the gateway compares); both NULL
     * = the id is taken, or a concurrent transaction holds the (owner, key) pair (its row is
     * not in our snapshot) — or, with `short` true, the balance could not pay the price. */
#define ST_CREATE 0
    {"gp_create", 13,
     "WITH ins AS (INSERT INTO tasks (" CREATE_INSERT_COLUMNS
     ") VALUES (" CREATE_VALUES CREATE_WEBHOOK_VALUES ")"
     " ON CONFLICT DO NOTHING RETURNING seq)," CREATE_OLD
     " SELECT (SELECT seq FROM ins) AS new_seq, false AS short, old.* FROM (SELECT 1) AS one"
     " LEFT JOIN old ON true"},
/* CREATE of a priced task ($11 > 0): the same, plus the reservation. The insert happens
     * only if the locked balance covers the price, the ledger row only if the insert did,
     * the debit only if the ledger row is new; so a short balance, a taken id or a replay
     * changes nothing and is no SQL error. */
#define ST_CREATE_PRICED 1
    {"gp_create_priced", 15,
     "WITH lk AS (SELECT id, credits FROM users WHERE id = $9::text FOR NO KEY UPDATE),"
     " ins AS (INSERT INTO tasks (" CREATE_INSERT_COLUMNS
     ", price) SELECT " CREATE_VALUES CREATE_WEBHOOK_VALUES_PRICED
     ", $11::bigint WHERE (SELECT credits FROM lk) >= $11::bigint"
     " ON CONFLICT DO NOTHING RETURNING seq, id, owner, price, charge_round),"
     " mk AS (SELECT id, owner, price, charge_round, 'reserve'::text AS kind, $12::bigint AS at"
     " FROM ins)," MOVE_CTES "," CREATE_OLD " SELECT (SELECT seq FROM ins) AS new_seq,"
     " COALESCE((SELECT credits FROM lk) < $11::bigint, true) AS short, old.*"
     " FROM (SELECT 1) AS one LEFT JOIN old ON true"},
/* TRANSITION: compare-and-set on (id, status, attempts). $12 = honor a requested
     * cancel: then the row ends 'canceled' (other fields kept) instead of $4. Then the
     * task's credits: $15 = reserve again (new round; the CAS also requires the balance),
     * else capture on succeeded, release on failed/canceled unless $14 (keep). One row:
     * the status written (NULL = nothing changed) and whether the balance was short. */
#define ST_TRANSITION 2
    {"gp_transition", 16,
     "WITH" LOCK_TASK_OWNER " upd AS (UPDATE tasks SET"
     " status = CASE WHEN $12::boolean AND cancel_requested THEN 'canceled' ELSE $4::text END,"
     " attempts = CASE WHEN $12 AND cancel_requested THEN attempts ELSE $5::int END,"
     " started_at = CASE WHEN $12 AND cancel_requested THEN started_at"
     "   WHEN $6::bigint > 0 THEN $6 ELSE started_at END,"
     " completed_at = CASE WHEN $12 AND cancel_requested THEN $13::bigint"
     "   WHEN $7::bigint > 0 THEN $7 WHEN $7::bigint < 0 THEN NULL ELSE completed_at END,"
     " not_before = CASE WHEN $12 AND cancel_requested THEN not_before ELSE $8::bigint END,"
     " result = CASE WHEN $12 AND cancel_requested THEN result"
     "   ELSE COALESCE($9::jsonb, result) END,"
     " error_code = CASE WHEN $12 AND cancel_requested THEN 'canceled' ELSE $10::text END,"
     " error_message = CASE WHEN $12 AND cancel_requested THEN 'canceled by request'"
     "   ELSE $11::text END,"
     " charge_round = charge_round + CASE WHEN $15::boolean THEN 1 ELSE 0 END"
     " WHERE id = $1::text AND status = $2::text AND attempts = $3::int"
     " AND (NOT $15 OR price = 0 OR (SELECT credits FROM lk) >= price)"
     " RETURNING id, owner, status, price, charge_round, error_code, error_message)," ATTEMPT_END
     " mk AS (SELECT id, owner, price, charge_round, CASE WHEN $15 THEN 'reserve'"
     " WHEN status = 'succeeded' THEN 'capture'"
     " WHEN status IN ('failed', 'canceled') AND NOT $14::boolean THEN 'release' END AS kind,"
     " $16::bigint AS at FROM upd WHERE price > 0)," MOVE_CTES
     " SELECT (SELECT status FROM upd), $15 AND NOT EXISTS (SELECT 1 FROM upd)"
     " AND EXISTS (SELECT 1 FROM tasks WHERE id = $1::text AND status = $2::text"
     " AND attempts = $3::int AND price > COALESCE((SELECT credits FROM lk), 0))"},
/* CLAIM: the task row (worker $4), the previous holder's open attempt ends "lost" (a
     * takeover), the new attempt begins. A claim replayed with the same attempt number
     * overwrites its row rather than fail. */
#define ST_CLAIM 3
    {"gp_claim", 4,
     "WITH upd AS (UPDATE tasks SET status = 'processing', attempts = attempts + 1,"
     " started_at = $2::bigint, not_before = 0, error_code = NULL, error_message = NULL,"
     " worker_id = $4::text"
     " WHERE id = $1::text AND (status = 'pending' OR ($3::bool AND status = 'processing'))"
     " RETURNING " TASK_COLUMNS "),"
     " lost AS (UPDATE task_attempts SET status = 'lost', ended_at = $2::bigint"
     " WHERE task_id = $1::text AND ended_at IS NULL"
     " AND attempt < (SELECT attempts FROM upd)),"
     " att AS (INSERT INTO task_attempts (task_id, attempt, worker_id, started_at, status)"
     " SELECT id, attempts, worker_id, $2::bigint, 'running' FROM upd"
     " ON CONFLICT (task_id, attempt) DO UPDATE SET worker_id = EXCLUDED.worker_id,"
     " started_at = EXCLUDED.started_at, ended_at = NULL, status = 'running',"
     " error_code = NULL, error_message = NULL)"
     " SELECT * FROM upd"},
/* CANCEL: pending → canceled (releasing a reservation), processing → cancel_requested.
     * Returns the new status (NULL when nothing changed) and the status before (NULL = no
     * such task). */
#define ST_CANCEL 4
    {"gp_cancel", 2,
     "WITH" LOCK_TASK_OWNER " upd AS (UPDATE tasks SET"
     " status = CASE WHEN status = 'pending' THEN 'canceled' ELSE status END,"
     " completed_at = CASE WHEN status = 'pending' THEN $2::bigint ELSE completed_at END,"
     " error_code = CASE WHEN status = 'pending' THEN 'canceled' ELSE error_code END,"
     " error_message = CASE WHEN status = 'pending' THEN 'canceled by request'"
     "   ELSE error_message END,"
     " cancel_requested = true"
     " WHERE id = $1::text AND status IN ('pending', 'processing')"
     " RETURNING id, owner, status, price, charge_round),"
     " att AS (UPDATE task_attempts SET ended_at = $2::bigint, status = 'canceled',"
     " error_code = 'canceled', error_message = 'canceled by request' WHERE task_id = $1::text"
     " AND ended_at IS NULL AND EXISTS (SELECT 1 FROM upd WHERE status = 'canceled')),"
     " mk AS (SELECT id, owner, price, charge_round, 'release'::text AS kind, $2::bigint AS at"
     " FROM upd WHERE status = 'canceled' AND price > 0)," MOVE_CTES
     " SELECT (SELECT status FROM upd), (SELECT status FROM tasks WHERE id = $1::text)"},
/* The batch's first statement when it may move credits: locks, in id order, the users
     * whose balance it may touch ($1 = owners of priced creates, $2 = tasks that may
     * settle or reserve). Without it two gateways' batches locking users A, B in opposite
     * orders would deadlock, and PostgreSQL would abort one batch whole. */
#define ST_LOCK_USERS 5
    {"gp_lock_users", 2,
     "SELECT 1 FROM users WHERE id IN (SELECT unnest($1::text[]) UNION"
     " SELECT owner FROM tasks WHERE id = ANY($2::text[]) AND price > 0)"
     " ORDER BY id FOR NO KEY UPDATE"},
/* TRANSITION that cannot move credits (to pending or processing, no reserve_again, no
     * cancel to honor): the compare-and-set alone. gp_transition's CTEs would cost it about
     * twice as much, for nothing. No row = CAS lost. */
#define ST_TRANSITION_PLAIN 6
    {"gp_transition_plain", 11,
     "WITH upd AS (UPDATE tasks SET status = $4::text, attempts = $5::int,"
     " started_at = CASE WHEN $6::bigint > 0 THEN $6 ELSE started_at END,"
     " completed_at = CASE WHEN $7::bigint > 0 THEN $7 WHEN $7::bigint < 0 THEN NULL"
     "   ELSE completed_at END,"
     " not_before = $8::bigint, result = COALESCE($9::jsonb, result), error_code = $10::text,"
     " error_message = $11::text"
     " WHERE id = $1::text AND status = $2::text AND attempts = $3::int"
     " RETURNING id, status, error_code, error_message)," ATTEMPT_END
     " none AS (SELECT 1) SELECT status, false FROM upd"},
/* The outbox (store.h, "webhooks"): sent after a CLAIM ($3 = 'task.started') or an op that
     * may end a task ($3 = 'end'), in the same pipeline, so in the same transaction. */
#define ST_OUTBOX 7
    {"gp_webhook_outbox", 3, GP_PG_OUTBOX_SQL},
};
#define N_WRITER_STMTS (sizeof writer_stmts / sizeof writer_stmts[0])

/* ---- input PostgreSQL would reject (checked before sending, see DESIGN) ---- */

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        size_t len;
        unsigned min;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, cp = c & 0x07u;
        } else {
            return false;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
}

bool gp_pg_utf8_ok(const char *s)
{
    return utf8_ok(s);
}

/* A copy of s with each invalid UTF-8 byte replaced by '?' (s is valid: NULL). */
static char *utf8_sanitized(const char *s)
{
    if (!s || utf8_ok(s))
        return NULL;
    char *copy = gp_xstrdup(s);
    char one[5];
    for (unsigned char *p = (unsigned char *)copy; *p;) {
        size_t len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : 4;
        size_t avail = strnlen((const char *)p, len);
        bool ok = avail == len;
        if (ok) {
            memcpy(one, p, len);
            one[len] = '\0';
            ok = utf8_ok(one);
        }
        if (!ok) {
            *p = '?';
            len = 1;
        }
        p += len;
    }
    return copy;
}

/* jsonb cannot hold U+0000: true if the JSON text has a \u0000 escape. */
static bool json_has_nul_escape(const char *j)
{
    for (const char *p = j; *p; p++)
        if (*p == '\\') {
            if (p[1] == 'u' && !strncmp(p + 2, "0000", 4))
                return true;
            if (p[1])
                p++; /* skip the escaped character (\\ is one backslash) */
        }
    return false;
}

/* Rewrites \u0000 escapes into \ufffd in place (same length). */
static void json_replace_nul_escape(char *j)
{
    for (char *p = j; *p; p++)
        if (*p == '\\') {
            if (p[1] == 'u' && !strncmp(p + 2, "0000", 4))
                memcpy(p + 2, "fffd", 4);
            if (p[1])
                p++;
        }
}

/* ---- rows ---- */

static json_t *col_json(const PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
}

static gp_task_status_t parse_status(const char *s)
{
    int status = s ? gp_task_status_parse(s) : -1;
    return status < 0 ? GP_TASK_FAILED : (gp_task_status_t)status;
}

/* Reads TASK_COLUMNS starting at column c0 of row. */
static void read_row(const PGresult *r, int row, int c0, gp_task_t *t)
{
    memset(t, 0, sizeof *t);
    t->seq = col_i64(r, row, c0 + 0);
    const char *id = val(r, row, c0 + 1);
    snprintf(t->id, sizeof t->id, "%s", id ? id : "");
    t->task_type = col_text(r, row, c0 + 2);
    t->provider = col_text(r, row, c0 + 3);
    t->status = parse_status(val(r, row, c0 + 4));
    t->params = col_json(r, row, c0 + 5);
    t->result = col_json(r, row, c0 + 6);
    t->error_code = col_text(r, row, c0 + 7);
    t->error_message = col_text(r, row, c0 + 8);
    t->attempts = (int)col_i64(r, row, c0 + 9);
    t->max_retries = (int)col_i64(r, row, c0 + 10);
    t->priority = (int)col_i64(r, row, c0 + 11);
    t->cancel_requested = col_bool(r, row, c0 + 12);
    t->idempotency_key = col_text(r, row, c0 + 13);
    t->created_at = col_i64(r, row, c0 + 14);
    t->started_at = col_i64(r, row, c0 + 15);
    t->completed_at = col_i64(r, row, c0 + 16);
    t->not_before = col_i64(r, row, c0 + 17);
    const char *owner = val(r, row, c0 + 18);
    snprintf(t->owner, sizeof t->owner, "%s", owner ? owner : GP_LOCAL_USER_ID);
    t->request_hash = col_text(r, row, c0 + 19);
    t->price = col_i64(r, row, c0 + 20);
    t->charge_round = (int)col_i64(r, row, c0 + 21);
    const char *worker = val(r, row, c0 + 22);
    snprintf(t->worker_id, sizeof t->worker_id, "%s", worker ? worker : "");
    t->webhook = col_text(r, row, c0 + 23);
    t->webhook_events = (unsigned)col_i64(r, row, c0 + 24);
    t->webhook_format = (int)col_i64(r, row, c0 + 25);
}

/* ---- connections ---- */

/* Flattens a libpq message into one trimmed line (log lines are single lines). */
static const char *one_line(char *buf)
{
    size_t w = 0;
    for (size_t r = 0; buf[r]; r++) {
        char ch = buf[r] == '\n' || buf[r] == '\t' ? ' ' : buf[r];
        if (ch == ' ' && (w == 0 || buf[w - 1] == ' '))
            continue;
        buf[w++] = ch;
    }
    while (w && buf[w - 1] == ' ')
        w--;
    buf[w] = '\0';
    return buf;
}

static const char *pq_msg(const PGconn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", c ? PQerrorMessage(c) : "no connection");
    return one_line(buf);
}

/* A statement's error: SQLSTATE and the primary message only. The DETAIL may quote a row,
 * i.e. client data, which does not belong in logs. */
static const char *res_msg(const PGresult *r, char *buf, size_t cap)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (primary)
        snprintf(buf, cap, "%s (%s)", primary, state ? state : "?");
    else
        snprintf(buf, cap, "%s",
                 *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
                                          : PQresStatus(PQresultStatus(r)));
    return one_line(buf);
}

/* Server notices (e.g. "relation already exists, skipping") go to our log, not stderr. */
static void on_notice(void *arg, const PGresult *r)
{
    (void)arg;
    char m[512];
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && !strcmp(sev, "WARNING"))
        GP_WARN("store: postgres: %s", res_msg(r, m, sizeof m));
    else if (gp_log_enabled(GP_LOG_DEBUG))
        GP_DEBUG("store: postgres: %s", res_msg(r, m, sizeof m));
}

/* Our defaults come before the URL so the URL can override them; client_encoding comes
 * after because the UTF-8 checks above assume it. */
static PGconn *connect_db(const char *url, char *err, size_t cap)
{
    const char *const keys[] = {"connect_timeout",
                                "keepalives",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "application_name",
                                "options",
                                "dbname",
                                "client_encoding",
                                NULL};
    /* READ COMMITTED whatever the server's default: the op statements rely on a locked or
     * updated row being re-read at its latest version after a wait (see DESIGN). */
    const char *const vals[] = {"5",
                                "1",
                                "10",
                                "5",
                                "3",
                                "30000",
                                "genpulse",
                                "-c statement_timeout=10000"
                                " -c default_transaction_isolation=read\\ committed",
                                url,
                                "UTF8",
                                NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(err, cap, "postgres: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char m[512];
        snprintf(err, cap, "postgres: cannot connect: %s", pq_msg(c, m, sizeof m));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeReceiver(c, on_notice, NULL); /* kept across PQreset */
    return c;
}

PGconn *gp_pg_connect(gp_store_t *st, char *err, size_t cap)
{
    return connect_db(((pg_store_t *)st)->url, err, cap);
}

struct gp_pg_listener **gp_pg_listener_slot(gp_store_t *st)
{
    return &((pg_store_t *)st)->wh_listener;
}

static void pg_close(gp_store_t *base)
{
    pg_store_t *s = (pg_store_t *)base;
    gp_pg_listener_free(s->wh_listener);
    PQfinish(s->writer);
    for (int i = 0; i < READ_POOL_SIZE; i++)
        PQfinish(s->readers[i]);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cond);
    free(s->url);
    free(s);
}

static int pg_open(gp_store_t **out, const char *url, const gp_settings_t *settings, char *err,
                   size_t cap)
{
    (void)settings;
    if (!url || !*url) {
        snprintf(err, cap, "postgres: empty database URL");
        return -GP_E_INTERNAL;
    }
    if (!PQisthreadsafe()) {
        snprintf(err, cap, "postgres: libpq was built without thread safety");
        return -GP_E_INTERNAL;
    }
    pg_store_t *s = gp_xcalloc(1, sizeof *s);
    s->url = gp_xstrdup(url);
    if (pthread_mutex_init(&s->pool_lock, NULL) != 0 || pthread_cond_init(&s->pool_cond, NULL)) {
        snprintf(err, cap, "postgres: cannot create the pool lock");
        free(s->url);
        free(s);
        return -GP_E_INTERNAL;
    }
    s->writer = connect_db(url, err, cap);
    if (!s->writer) {
        pg_close(&s->base);
        return -GP_E_UNAVAILABLE;
    }
    extern const gp_store_vt_t gp_store_backend_postgres;
    s->base.vt = &gp_store_backend_postgres;
    *out = &s->base;
    return 0;
}

static void writer_mark_broken(pg_store_t *s)
{
    s->writer_broken = true;
    s->writer_prepared = false;
}

/* The writer ready for use (connected, not in pipeline mode), or -GP_E_UNAVAILABLE. */
static int writer_ready(pg_store_t *s)
{
    if (!s->writer_broken && PQstatus(s->writer) == CONNECTION_OK &&
        PQpipelineStatus(s->writer) == PQ_PIPELINE_OFF)
        return 0;
    int64_t now = gp_mono_ms();
    if (now < s->retry_at_ms)
        return -GP_E_UNAVAILABLE; /* fail fast while backing off */
    s->writer_prepared = false;   /* a new session has no prepared statements */
    PQreset(s->writer);
    if (PQstatus(s->writer) == CONNECTION_OK) {
        GP_INFO("store: postgres writer reconnected");
        s->writer_broken = false;
        s->backoff_ms = 0;
        s->retry_at_ms = 0;
        return 0;
    }
    char m[256];
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    s->retry_at_ms = now + s->backoff_ms;
    s->writer_broken = true;
    GP_WARN("store: postgres writer reconnect failed (retry in %d ms): %s", s->backoff_ms,
            pq_msg(s->writer, m, sizeof m));
    return -GP_E_UNAVAILABLE;
}

static int writer_prepare(pg_store_t *s)
{
    if (s->writer_prepared)
        return 0;
    for (size_t i = 0; i < N_WRITER_STMTS; i++) {
        PGresult *r = PQprepare(s->writer, writer_stmts[i].name, writer_stmts[i].sql,
                                writer_stmts[i].nparams, NULL);
        bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            char m[512];
            GP_ERROR("store: postgres prepare %s failed: %s", writer_stmts[i].name,
                     pq_msg(s->writer, m, sizeof m));
            /* Drop what this session has, so the next attempt starts from none. */
            PGresult *d = PQexec(s->writer, "DEALLOCATE ALL");
            bool dealloc_ok = d && PQresultStatus(d) == PGRES_COMMAND_OK;
            PQclear(d);
            if (!dealloc_ok || PQstatus(s->writer) != CONNECTION_OK) {
                writer_mark_broken(s);
                return -GP_E_UNAVAILABLE;
            }
            return -GP_E_INTERNAL; /* e.g. migrate() was not run */
        }
    }
    s->writer_prepared = true;
    return 0;
}

/* Runs one statement on the writer outside pipeline mode; true when status matches. */
static bool writer_exec(pg_store_t *s, const char *sql, ExecStatusType want, PGresult **keep)
{
    PGresult *r = PQexec(s->writer, sql);
    bool ok = r && PQresultStatus(r) == want;
    if (ok && keep)
        *keep = r;
    else
        PQclear(r);
    return ok;
}

/* On a pooled connection: a probe never waits behind the writer's batch. */
static int pg_schema_status(gp_store_t *base, int *applied, int *expected)
{
    PGresult *r = NULL;
    int rc = gp_pg_pool_query(base, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0,
                              NULL, &r);
    *expected = (int)N_MIGRATIONS;
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        *applied = (int)col_i64(r, 0, 0);
    else
        rc = -GP_E_IO;
    PQclear(r);
    return rc;
}

static int pg_migrate(gp_store_t *base, char *err, size_t cap)
{
    pg_store_t *s = (pg_store_t *)base;
    char m[512];
    if (writer_ready(s) != 0) {
        snprintf(err, cap, "migration failed: postgres unavailable: %s",
                 pq_msg(s->writer, m, sizeof m));
        return -GP_E_UNAVAILABLE;
    }
    /* One transaction (DDL is transactional): a crash leaves the old version, and the
     * advisory lock makes processes starting together apply each migration once. */
    PGresult *vr = NULL;
    if (!writer_exec(s, "BEGIN", PGRES_COMMAND_OK, NULL) ||
        !writer_exec(s, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", PGRES_TUPLES_OK,
                     NULL) ||
        !writer_exec(s,
                     "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                     " applied_at BIGINT NOT NULL)",
                     PGRES_COMMAND_OK, NULL) ||
        !writer_exec(s, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", PGRES_TUPLES_OK,
                     &vr))
        goto fail;
    int version = PQntuples(vr) == 1 ? (int)strtol(PQgetvalue(vr, 0, 0), NULL, 10) : 0;
    PQclear(vr);
    if (version > (int)N_MIGRATIONS) {
        snprintf(err, cap, "database schema version %d is newer than this binary (%zu)", version,
                 N_MIGRATIONS);
        writer_exec(s, "ROLLBACK", PGRES_COMMAND_OK, NULL);
        return -GP_E_INTERNAL;
    }
    for (size_t v = (size_t)version; v < N_MIGRATIONS; v++) {
        char *ins = gp_xasprintf("INSERT INTO schema_migrations VALUES (%zu, %lld)", v + 1,
                                 (long long)gp_now_ms());
        bool ok = writer_exec(s, migrations[v], PGRES_COMMAND_OK, NULL) &&
                  writer_exec(s, ins, PGRES_COMMAND_OK, NULL);
        free(ins);
        if (!ok)
            goto fail;
    }
    if (!writer_exec(s, "COMMIT", PGRES_COMMAND_OK, NULL))
        goto fail;
    for (size_t v = (size_t)version; v < N_MIGRATIONS; v++)
        GP_INFO("store: applied migration %zu", v + 1);
    if (version < (int)N_MIGRATIONS && s->writer_prepared) {
        /* Statements prepared against the old schema: prepare again on next use. */
        if (!writer_exec(s, "DEALLOCATE ALL", PGRES_COMMAND_OK, NULL))
            writer_mark_broken(s);
        s->writer_prepared = false;
    }
    return 0;
fail:
    snprintf(err, cap, "migration failed: %s", pq_msg(s->writer, m, sizeof m));
    if (PQstatus(s->writer) != CONNECTION_OK) {
        writer_mark_broken(s);
        return -GP_E_UNAVAILABLE;
    }
    if (PQtransactionStatus(s->writer) != PQTRANS_IDLE &&
        !writer_exec(s, "ROLLBACK", PGRES_COMMAND_OK, NULL))
        writer_mark_broken(s);
    return -GP_E_INTERNAL;
}

/* ---- apply_batch ---- */

/* Parameters of one op's statement. Strings it points to live until the op is sent
 * (libpq copies them into its output buffer). */
typedef struct op_params {
    int stmt;
    int n;
    const char *v[16];
    char num[8][24];
    char *own[4]; /* freed after sending */
} op_params_t;

static const char *num(op_params_t *p, int slot, long long x)
{
    snprintf(p->num[slot], sizeof p->num[slot], "%lld", x);
    return p->num[slot];
}

static void op_params_free(op_params_t *p)
{
    for (size_t i = 0; i < sizeof p->own / sizeof p->own[0]; i++)
        free(p->own[i]);
}

/* The owner a new task is stored under ("" = the built-in user). */
static const char *task_owner(const gp_task_t *t)
{
    return t->owner[0] ? t->owner : GP_LOCAL_USER_ID;
}

/* True if tr may capture, release or reserve (if its task has a price). */
static bool tr_may_move(const gp_transition_t *tr)
{
    if (tr->known_free && !tr->reserve_again)
        return false;
    return tr->reserve_again || gp_task_status_terminal(tr->to_status) ||
           (tr->honor_cancel && tr->from_status == GP_TASK_PROCESSING);
}

/* Fills p for op; returns 0, or the op's result when the op need not (or must not) be sent. */
static int op_build(gp_store_op_t *op, op_params_t *p)
{
    memset(p, 0, sizeof *p);
    switch (op->kind) {
    case GP_OP_CREATE: {
        gp_task_t *t = op->task;
        if (!t || !t->task_type || !t->provider)
            return -GP_E_INTERNAL;
        char *params = json_dumps(t->params, JSON_COMPACT);
        p->own[0] = params;
        const char *owner = task_owner(t);
        if (!utf8_ok(t->id) || !utf8_ok(t->task_type) || !utf8_ok(t->provider) || !utf8_ok(owner) ||
            (t->idempotency_key && !utf8_ok(t->idempotency_key)) ||
            (t->request_hash && !utf8_ok(t->request_hash)) ||
            (params && json_has_nul_escape(params))) {
            GP_WARN("store: task rejected: text PostgreSQL cannot store (invalid UTF-8 or "
                    "\\u0000 in params)");
            return -GP_E_VALIDATION;
        }
        if (t->webhook && !utf8_ok(t->webhook))
            return -GP_E_VALIDATION;
        p->stmt = t->price > 0 ? ST_CREATE_PRICED : ST_CREATE;
        p->n = t->price > 0 ? 15 : 13;
        p->v[0] = t->id;
        p->v[1] = t->task_type;
        p->v[2] = t->provider;
        p->v[3] = params ? params : "{}";
        p->v[4] = num(p, 0, t->max_retries);
        p->v[5] = num(p, 1, t->priority);
        p->v[6] = t->idempotency_key;
        p->v[7] = num(p, 2, (long long)t->created_at);
        p->v[8] = owner;
        p->v[9] = t->request_hash;
        p->v[10] = num(p, 3, (long long)t->price);
        p->v[11] = num(p, 4, (long long)gp_now_ms());
        int w = t->price > 0 ? 12 : 10; /* the webhook columns follow the statement's own */
        p->v[w] = t->webhook;
        p->v[w + 1] = num(p, 5, t->webhook ? (long long)t->webhook_events : 0);
        p->v[w + 2] = num(p, 6, t->webhook_format);
        return 0;
    }
    case GP_OP_TRANSITION: {
        gp_transition_t *tr = &op->tr;
        tr->applied_status = tr->to_status;
        if (!utf8_ok(tr->id))
            return -GP_E_CONFLICT; /* no row can have this id */
        bool honor = tr->honor_cancel && tr->from_status == GP_TASK_PROCESSING &&
                     tr->to_status != GP_TASK_CANCELED;
        char *result = tr->result ? json_dumps(tr->result, JSON_COMPACT) : NULL;
        if (result && json_has_nul_escape(result))
            json_replace_nul_escape(result); /* keep the outcome; jsonb has no U+0000 */
        p->own[0] = result;
        const char *code = tr->error_code, *msg = tr->error_code ? tr->error_message : NULL;
        if ((p->own[1] = utf8_sanitized(code)))
            code = p->own[1];
        if ((p->own[2] = utf8_sanitized(msg)))
            msg = p->own[2];
        p->stmt = tr_may_move(tr) ? ST_TRANSITION : ST_TRANSITION_PLAIN;
        p->n = tr_may_move(tr) ? 16 : 11;
        p->v[0] = tr->id;
        p->v[1] = gp_task_status_name(tr->from_status);
        p->v[2] = num(p, 0, tr->from_attempts);
        p->v[3] = gp_task_status_name(tr->to_status);
        p->v[4] = num(p, 1, tr->to_attempts);
        p->v[5] = num(p, 2, (long long)tr->started_at);
        p->v[6] = num(p, 3, (long long)tr->completed_at);
        p->v[7] = num(p, 4, (long long)tr->not_before);
        p->v[8] = result;
        p->v[9] = code;
        p->v[10] = msg;
        p->v[11] = honor ? "t" : "f";
        int64_t now = gp_now_ms();
        p->v[12] = num(p, 5, (long long)(tr->completed_at ? tr->completed_at : now));
        p->v[13] = tr->keep_reservation ? "t" : "f";
        p->v[14] = tr->reserve_again ? "t" : "f";
        p->v[15] = num(p, 6, (long long)now);
        return 0;
    }
    case GP_OP_CLAIM:
        if (!op->task)
            return -GP_E_INTERNAL;
        if (!utf8_ok(op->cancel_id))
            return -GP_E_CONFLICT;
        if (op->claim_worker_id && !utf8_ok(op->claim_worker_id))
            return -GP_E_INTERNAL; /* our own id: a host name gp_worker_id_make cleaned */
        p->stmt = ST_CLAIM;
        p->n = 4;
        p->v[0] = op->cancel_id;
        p->v[1] = num(p, 0, (long long)op->claim_started_at);
        p->v[2] = op->claim_takeover ? "t" : "f";
        p->v[3] = op->claim_worker_id && *op->claim_worker_id ? op->claim_worker_id : NULL;
        return 0;
    case GP_OP_CANCEL:
        if (!utf8_ok(op->cancel_id))
            return -GP_E_NOT_FOUND;
        p->stmt = ST_CANCEL;
        p->n = 2;
        p->v[0] = op->cancel_id;
        p->v[1] = num(p, 0, (long long)gp_now_ms());
        return 0;
    }
    return -GP_E_INTERNAL;
}

/* ---- the batch's user lock (ST_LOCK_USERS) ---- */

typedef struct pg_array {
    char *s;
    size_t len, cap;
} pg_array_t;

/* Appends one element to an array literal ("{...}"), quoted so any text survives. */
static void array_add(pg_array_t *a, const char *el)
{
    size_t need = a->len + 2 * strlen(el) + 5;
    if (need > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < need)
            cap *= 2;
        char *grown = gp_xmalloc(cap);
        if (a->len)
            memcpy(grown, a->s, a->len);
        else
            grown[a->len++] = '{';
        free(a->s);
        a->s = grown;
        a->cap = cap;
    }
    if (a->len > 1)
        a->s[a->len++] = ',';
    a->s[a->len++] = '"';
    for (const char *p = el; *p; p++) {
        if (*p == '"' || *p == '\\')
            a->s[a->len++] = '\\';
        a->s[a->len++] = *p;
    }
    a->s[a->len++] = '"';
    a->s[a->len] = '}';
    a->s[a->len + 1] = '\0';
}

/* The empty array literal, or a's text (complete after any number of array_add). */
static const char *array_text(const pg_array_t *a)
{
    return a->len ? a->s : "{}";
}

/* True if op may move credits, so its batch must lock the users first. Fills the owners
 * of priced creates and the tasks of transitions that can settle or reserve, and of
 * cancels. */
static bool lock_targets(const gp_store_op_t *op, pg_array_t *owners, pg_array_t *tasks)
{
    switch (op->kind) {
    case GP_OP_CREATE:
        if (!op->task || op->task->price <= 0 || !utf8_ok(task_owner(op->task)))
            return false;
        array_add(owners, task_owner(op->task));
        return true;
    case GP_OP_TRANSITION:
        if (!tr_may_move(&op->tr) || !utf8_ok(op->tr.id))
            return false;
        array_add(tasks, op->tr.id);
        return true;
    case GP_OP_CANCEL:
        if (!utf8_ok(op->cancel_id))
            return false;
        array_add(tasks, op->cancel_id);
        return true;
    case GP_OP_CLAIM: return false;
    }
    return false;
}

/* Queues the user lock ahead of the batch's ops when any of them may move credits.
 * Returns 1 if it was sent, 0 if not needed, -1 if sending failed. */
static int send_user_lock(PGconn *c, gp_store_op_t **ops, size_t n)
{
    pg_array_t owners = {0}, tasks = {0};
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= lock_targets(ops[i], &owners, &tasks);
    int rc = 0;
    if (any) {
        const char *v[2] = {array_text(&owners), array_text(&tasks)};
        rc = PQsendQueryPrepared(c, writer_stmts[ST_LOCK_USERS].name, 2, v, NULL, NULL, 0) ? 1 : -1;
    }
    free(owners.s);
    free(tasks.s);
    return rc;
}

/* Sets op's outcome from its statement's result (only after the commit). */
static void op_apply(gp_store_op_t *op, const PGresult *r)
{
    int rows = PQntuples(r);
    switch (op->kind) {
    case GP_OP_CREATE:
        if (rows != 1 || PQnfields(r) != 2 + N_TASK_COLUMNS) {
            op->result = -GP_E_INTERNAL;
        } else if (val(r, 0, 0)) {
            op->task->seq = col_i64(r, 0, 0);
            if (!op->task->owner[0])
                snprintf(op->task->owner, sizeof op->task->owner, "%s", GP_LOCAL_USER_ID);
            op->task->charge_round = 0;
            op->result = 0;
        } else if (val(r, 0, 2)) {
            gp_task_clear(op->task);
            read_row(r, 0, 2, op->task);
            op->replayed = true;
            op->result = 0;
        } else {
            op->result = col_bool(r, 0, 1) ? -GP_E_INSUFFICIENT_CREDITS : -GP_E_CONFLICT;
        }
        break;
    case GP_OP_TRANSITION: /* gp_transition: always a row; gp_transition_plain: none if lost */
        if (rows == 1 && val(r, 0, 0)) {
            op->tr.applied_status = parse_status(val(r, 0, 0));
            op->result = 0;
        } else {
            op->result =
                rows == 1 && col_bool(r, 0, 1) ? -GP_E_INSUFFICIENT_CREDITS : -GP_E_CONFLICT;
        }
        break;
    case GP_OP_CLAIM:
        if (rows == 1) {
            gp_task_clear(op->task);
            read_row(r, 0, 0, op->task);
            op->result = 0;
        } else {
            op->result = -GP_E_CONFLICT;
        }
        break;
    case GP_OP_CANCEL: {
        const char *now = rows == 1 ? val(r, 0, 0) : NULL;
        const char *before = rows == 1 ? val(r, 0, 1) : NULL;
        op->result = 0;
        if (now)
            op->cancel_outcome = !strcmp(now, "canceled") ? GP_CANCEL_DONE : GP_CANCEL_REQUESTED;
        else if (before)
            op->cancel_outcome = GP_CANCEL_TOO_LATE;
        else
            op->result = -GP_E_NOT_FOUND;
        break;
    }
    default: op->result = -GP_E_INTERNAL;
    }
}

/* Reads the result of one queued statement (result, then NULL). Returns it (TUPLES_OK) or
 * NULL after logging why the pipeline failed. */
static PGresult *read_one(PGconn *c, bool *failed)
{
    char m[512];
    PGresult *r = PQgetResult(c);
    if (!r) {
        *failed = true;
        return NULL;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK) {
        if (!*failed && st != PGRES_PIPELINE_ABORTED)
            GP_ERROR("store: postgres batch failed: %s", res_msg(r, m, sizeof m));
        *failed = true;
        PQclear(r);
        r = NULL;
    }
    /* The NULL that ends this statement's results. */
    for (int guard = 0; guard < 8 && PQstatus(c) == CONNECTION_OK; guard++) {
        PGresult *extra = PQgetResult(c);
        if (!extra)
            return r;
        if (PQresultStatus(extra) == PGRES_PIPELINE_SYNC) {
            /* Out of step with our queue: give up on this session. */
            PQclear(extra);
            break;
        }
        PQclear(extra);
    }
    *failed = true;
    PQclear(r);
    return NULL;
}

static void fail_all(gp_store_op_t **ops, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++)
        ops[i]->result = rc;
}

/* The outbox event an op may cause ("task.started", "end"), or NULL (store.h, "webhooks"). */
static const char *outbox_event(const gp_store_op_t *op)
{
    switch (op->kind) {
    case GP_OP_CLAIM: return "task.started";
    case GP_OP_TRANSITION:
        return gp_task_status_terminal(op->tr.to_status) ||
                       (op->tr.honor_cancel && op->tr.from_status == GP_TASK_PROCESSING)
                   ? "end"
                   : NULL;
    case GP_OP_CANCEL: return "end";
    case GP_OP_CREATE: return NULL;
    }
    return NULL;
}

/* Queues the batch in pipeline mode: the user lock if needed (*locked), then one statement
 * per op that needs sending (sent[i]; the others got their result from op_build), each
 * followed by its outbox statement when it may start or end a task (sent_wh[i]). False if
 * libpq could not queue one. */
static bool send_ops(PGconn *c, gp_store_op_t **ops, size_t n, bool *sent, bool *sent_wh,
                     size_t *nsent, bool *locked)
{
    char m[512];
    int lock = send_user_lock(c, ops, n);
    *locked = lock > 0;
    *nsent = *locked ? 1 : 0;
    bool ok = lock >= 0;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)gp_now_ms());
    for (size_t i = 0; ok && i < n; i++) {
        op_params_t p;
        int pre = op_build(ops[i], &p);
        if (pre != 0) {
            ops[i]->result = pre;
        } else if (!PQsendQueryPrepared(c, writer_stmts[p.stmt].name, p.n, p.v, NULL, NULL, 0)) {
            ok = false;
        } else {
            sent[i] = true;
            (*nsent)++;
            const char *ev = outbox_event(ops[i]);
            if (ev) {
                const char *v[3] = {p.v[0], now, ev}; /* p.v[0]: the task id */
                if (!PQsendQueryPrepared(c, writer_stmts[ST_OUTBOX].name, 3, v, NULL, NULL, 0))
                    ok = false;
                else {
                    sent_wh[i] = true;
                    (*nsent)++;
                }
            }
        }
        op_params_free(&p);
    }
    if (!ok)
        GP_ERROR("store: postgres send failed: %s", pq_msg(c, m, sizeof m));
    return ok;
}

static int pg_apply_batch(gp_store_t *base, gp_store_op_t **ops, size_t n)
{
    pg_store_t *s = (pg_store_t *)base;
    if (n == 0)
        return 0;
    int rc = writer_ready(s);
    if (rc == 0)
        rc = writer_prepare(s);
    if (rc != 0) {
        fail_all(ops, n, rc);
        return rc;
    }
    PGconn *c = s->writer;
    PGresult **res = gp_xcalloc(n, sizeof *res);
    bool *sent = gp_xcalloc(n, sizeof *sent);
    bool *sent_wh = gp_xcalloc(n, sizeof *sent_wh);
    int *wh_added = gp_xcalloc(n, sizeof *wh_added);
    size_t nsent = 0;
    bool failed = false, in_pipeline = false, locked = false;
    char m[512];

    if (!PQenterPipelineMode(c)) {
        GP_ERROR("store: postgres pipeline mode: %s", pq_msg(c, m, sizeof m));
        failed = true;
    } else {
        in_pipeline = true;
        failed = !send_ops(c, ops, n, sent, sent_wh, &nsent, &locked);
    }
    if (!failed && !PQpipelineSync(c)) {
        GP_ERROR("store: postgres sync failed: %s", pq_msg(c, m, sizeof m));
        failed = true;
    }
    /* Read every result even after an SQL error (later ones come back PIPELINE_ABORTED and
     * the sync ends the rolled-back transaction), so the session ends idle and reusable.
     * Every wait is bounded: a dead connection makes PQgetResult return at once. */
    bool synced = false;
    if (!failed) {
        if (locked)
            PQclear(read_one(c, &failed));
        for (size_t i = 0; i < n && PQstatus(c) == CONNECTION_OK; i++) {
            if (sent[i])
                res[i] = read_one(c, &failed);
            if (sent_wh[i] && PQstatus(c) == CONNECTION_OK) {
                PGresult *w = read_one(c, &failed);
                wh_added[i] = w ? PQntuples(w) : 0;
                PQclear(w);
            }
        }
        for (size_t guard = 0; !synced && guard < nsent + 8 && PQstatus(c) == CONNECTION_OK;
             guard++) {
            PGresult *r = PQgetResult(c);
            if (!r)
                continue;
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_PIPELINE_SYNC) {
                synced = true;
            } else {
                if (!failed) /* e.g. the commit itself failed */
                    GP_ERROR("store: postgres commit failed: %s", res_msg(r, m, sizeof m));
                failed = true;
            }
            PQclear(r);
        }
    }
    if (!synced || !in_pipeline || !PQexitPipelineMode(c)) {
        failed = true;
        writer_mark_broken(s); /* state unknown: reset (which rolls back) before reuse */
    } else if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        /* Cannot happen without an explicit BEGIN; if it does, the reset rolls back. */
        GP_ERROR("store: postgres session not idle after the batch");
        failed = true;
        writer_mark_broken(s);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        GP_ERROR("store: postgres writer connection lost (reconnecting on next use)");
        writer_mark_broken(s);
        failed = true;
    }

    if (failed && !s->writer_broken) {
        /* The session survived an SQL error. Prepare afresh next time, in case the error was
         * a plan gone stale under another process's schema change. */
        s->writer_prepared = false;
        if (!writer_exec(s, "DEALLOCATE ALL", PGRES_COMMAND_OK, NULL))
            writer_mark_broken(s);
    }
    if (failed) {
        fail_all(ops, n, -GP_E_UNAVAILABLE);
        rc = -GP_E_UNAVAILABLE;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (sent[i])
                op_apply(ops[i], res[i]);
            ops[i]->webhooks_added = wh_added[i];
        }
    }
    for (size_t i = 0; i < n; i++)
        PQclear(res[i]);
    free(res);
    free(sent);
    free(sent_wh);
    free(wh_added);
    return rc;
}

/* ---- readers ---- */

static int take_reader(pg_store_t *s)
{
    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        for (int i = 0; i < READ_POOL_SIZE; i++)
            if (!s->reader_busy[i]) {
                s->reader_busy[i] = true;
                pthread_mutex_unlock(&s->pool_lock);
                return i;
            }
        pthread_cond_wait(&s->pool_cond, &s->pool_lock);
    }
}

static void give_reader(pg_store_t *s, int slot)
{
    pthread_mutex_lock(&s->pool_lock);
    s->reader_busy[slot] = false;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
}

/* A statement's expected failures: a unique value taken, a referenced row missing. 0 for
 * any other error. */
static int expected_error(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return 0;
    if (!strcmp(state, "23505")) /* unique_violation */
        return -GP_E_CONFLICT;
    if (!strcmp(state, "23503")) /* foreign_key_violation */
        return -GP_E_NOT_FOUND;
    return 0;
}

/* Runs one autocommit statement on a pooled connection (connecting it first if needed, and
 * resetting and retrying once if the connection broke). 0 with *out (PGRES_TUPLES_OK: a
 * write says RETURNING), -GP_E_CONFLICT / -GP_E_NOT_FOUND (see expected_error), or
 * -GP_E_UNAVAILABLE / -GP_E_IO. A write retried after a lost connection may have
 * committed the first time: its retry then reports the conflict with itself. */
static int reader_query(pg_store_t *s, const char *sql, int nparams, const char *const *values,
                        PGresult **out)
{
    int slot = take_reader(s);
    char m[512];
    int rc = -GP_E_UNAVAILABLE;
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c = s->readers[slot];
        if (!c || PQstatus(c) != CONNECTION_OK) {
            /* Reconnect, unless a reconnect just failed: then answer at once rather than
             * make every reader wait for its own connect timeout. */
            pthread_mutex_lock(&s->pool_lock);
            bool backing_off = gp_mono_ms() < s->reader_retry_at_ms;
            pthread_mutex_unlock(&s->pool_lock);
            if (backing_off)
                break;
            char err[512] = "";
            if (!c) {
                c = s->readers[slot] = connect_db(s->url, err, sizeof err);
            } else {
                PQreset(c);
                if (PQstatus(c) != CONNECTION_OK)
                    snprintf(err, sizeof err, "postgres reader reconnect failed: %s",
                             pq_msg(c, m, sizeof m));
            }
            if (!c || PQstatus(c) != CONNECTION_OK) {
                GP_WARN("store: %s", err);
                pthread_mutex_lock(&s->pool_lock);
                s->reader_retry_at_ms = gp_mono_ms() + BACKOFF_MIN_MS * 5;
                pthread_mutex_unlock(&s->pool_lock);
                break;
            }
        }
        PGresult *r = PQexecParams(c, sql, nparams, NULL, values, NULL, NULL, 0);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
            *out = r;
            rc = 0;
            break;
        }
        if (PQstatus(c) == CONNECTION_OK) {
            rc = expected_error(r);
            if (rc == 0) {
                GP_ERROR("store: postgres statement failed: %s",
                         r ? res_msg(r, m, sizeof m) : pq_msg(c, m, sizeof m));
                rc = -GP_E_IO;
            }
            PQclear(r);
            break;
        }
        PQclear(r); /* broken connection: once more after a reset */
    }
    give_reader(s, slot);
    return rc;
}

int gp_pg_pool_query(gp_store_t *st, const char *sql, int nparams, const char *const *values,
                     PGresult **out)
{
    return reader_query((pg_store_t *)st, sql, nparams, values, out);
}

static int pg_get(gp_store_t *base, const char *id, gp_task_t *out)
{
    pg_store_t *s = (pg_store_t *)base;
    if (!id || !utf8_ok(id))
        return -GP_E_NOT_FOUND;
    PGresult *r;
    const char *v[1] = {id};
    int rc = reader_query(s, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = $1::text", 1, v, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1 && PQnfields(r) == N_TASK_COLUMNS)
        read_row(r, 0, 0, out);
    else
        rc = -GP_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

static int pg_list(gp_store_t *base, const gp_task_filter_t *f, gp_task_t *out, size_t *n)
{
    pg_store_t *s = (pg_store_t *)base;
    *n = 0;
    if (f->limit == 0)
        return 0;
    const char *texts[] = {f->task_type, f->owner,      f->id,
                           f->provider,  f->error_code, f->params_text};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i] && !utf8_ok(texts[i]))
            return 0; /* no stored task can have this text */
    /* Only the filters in use, so the planner picks (owner, seq), (status, seq) or
     * (task_type, seq). */
    char sql[1024];
    const char *v[10];
    char before[24], limit[24];
    int np = 0;
    int len = snprintf(sql, sizeof sql, "SELECT " TASK_COLUMNS " FROM tasks WHERE true");
    if (f->owner) {
        v[np++] = f->owner;
        len += snprintf(sql + len, sizeof sql - (size_t)len, " AND owner = $%d::text", np);
    }
    if (f->status >= 0) {
        v[np++] = gp_task_status_name((gp_task_status_t)f->status);
        len += snprintf(sql + len, sizeof sql - (size_t)len, " AND status = $%d::text", np);
    }
    if (f->task_type) {
        v[np++] = f->task_type;
        len += snprintf(sql + len, sizeof sql - (size_t)len, " AND task_type = $%d::text", np);
    }
    static const struct {
        size_t off;
        const char *clause;
    } extra[] = {
        {offsetof(gp_task_filter_t, id), " AND id = $%d::text"},
        {offsetof(gp_task_filter_t, provider), " AND provider = $%d::text"},
        {offsetof(gp_task_filter_t, error_code), " AND error_code = $%d::text"},
        {offsetof(gp_task_filter_t, params_text),
         " AND EXISTS (SELECT 1 FROM jsonb_each_text(params) AS p"
         " WHERE strpos(lower(p.value), lower($%d::text)) > 0)"},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        const char *value = *(const char *const *)((const char *)f + extra[i].off);
        if (!value)
            continue;
        v[np++] = value;
        len += snprintf(sql + len, sizeof sql - (size_t)len, extra[i].clause, np);
    }
    if (f->before_seq != 0) {
        snprintf(before, sizeof before, "%lld", (long long)f->before_seq);
        v[np++] = before;
        len += snprintf(sql + len, sizeof sql - (size_t)len, " AND seq < $%d::bigint", np);
    }
    snprintf(limit, sizeof limit, "%zu", f->limit < 1000000000 ? f->limit : 1000000000);
    v[np++] = limit;
    snprintf(sql + len, sizeof sql - (size_t)len, " ORDER BY seq DESC LIMIT $%d::bigint", np);
    PGresult *r;
    int rc = reader_query(s, sql, np, v, &r);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && *n < f->limit; i++)
        read_row(r, i, 0, &out[(*n)++]);
    PQclear(r);
    return 0;
}

static int pg_scan_unfinished(gp_store_t *base, void (*fn)(const gp_task_t *, void *), void *arg)
{
    pg_store_t *s = (pg_store_t *)base;
    /* Keyset pages keep memory bounded and hold no connection while fn runs. */
    char after[24], limit[24];
    snprintf(limit, sizeof limit, "%d", SCAN_PAGE);
    int64_t last = 0;
    for (;;) {
        snprintf(after, sizeof after, "%lld", (long long)last);
        const char *v[2] = {after, limit};
        PGresult *r;
        int rc = reader_query(s,
                              "SELECT " TASK_COLUMNS " FROM tasks WHERE status IN "
                              "('pending', 'processing') AND seq > $1::bigint ORDER BY seq "
                              "LIMIT $2::bigint",
                              2, v, &r);
        if (rc != 0)
            return rc;
        int rows = PQntuples(r);
        for (int i = 0; i < rows; i++) {
            gp_task_t t;
            read_row(r, i, 0, &t);
            last = t.seq;
            fn(&t, arg);
            gp_task_clear(&t);
        }
        PQclear(r);
        if (rows < SCAN_PAGE)
            return 0;
    }
}

const gp_store_vt_t gp_store_backend_postgres = {
    .scheme = "postgres",
    .open = pg_open,
    .close = pg_close,
    .migrate = pg_migrate,
    .schema_status = pg_schema_status,
    .apply_batch = pg_apply_batch,
    .get = pg_get,
    .list = pg_list,
    .scan_unfinished = pg_scan_unfinished,
    .user_create = gp_pg_user_create,
    .user_get = gp_pg_user_get,
    .user_by_oidc = gp_pg_user_by_oidc,
    .user_list = gp_pg_user_list,
    .key_create = gp_pg_key_create,
    .key_by_hash = gp_pg_key_by_hash,
    .key_list = gp_pg_key_list,
    .key_revoke = gp_pg_key_revoke,
    .key_touch = gp_pg_key_touch,
    .keys_active = gp_pg_keys_active,
    .count_pending = gp_pg_count_pending,
    .user_update = gp_pg_user_update,
    .credits_grant = gp_pg_credits_grant,
    .ledger_list = gp_pg_ledger_list,
    .stats = gp_pg_stats,
    .attempts_list = gp_pg_attempts_list,
    .holders_list = gp_pg_holders_list,
    GP_PG_WEBHOOK_FUNCTIONS,
};

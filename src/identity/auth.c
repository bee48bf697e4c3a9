/*
 * auth.c — request authentication: the open-server rule, API key verification with a short
 * cache, the failed-attempt throttle, and the background writer of key last-use times.
 *
 * DESIGN
 * - The cache is direct-mapped on the key's SHA-256 (1024 slots, one mutex): a hit costs a
 *   hash and a constant-time compare, so the submit path pays no database read for a key
 *   seen in the last GP_AUTH_CACHE_MS. Refusals are cached too, so a client retrying a bad
 *   key does not hit the store either.
 * - last_used_at is advisory: touches queue here and a background thread writes them, so a
 *   request never waits on a store write (SQLite would make it wait for the committer).
 */
#include "identity/auth.h"
#include "core/api_key.h"
#include "core/crypto.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/session_token.h"
#include "core/util.h"
#include "identity/oidc_bridge.h"
#include "identity/plans.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CACHE_SLOTS 1024
#define CACHE_STRIPES 64 /* cache slots share this many locks: HTTP threads rarely meet */
#define FAIL_SLOTS 256
#define TOUCH_QUEUE 64
#define RATE_SLOTS 1024
#define RATE_WINDOW_S 60

typedef struct rate_slot {
    char user_id[37];
    int64_t window_start; /* monotonic s */
    int count;
} rate_slot_t;

typedef struct cache_entry {
    bool used;
    uint8_t hash[GP_SHA256_LEN];
    int64_t valid_until; /* monotonic ms */
    int64_t last_touch;  /* monotonic ms of the last queued touch */
    int result;          /* 0 or -GP_E_* */
    const char *code;
    char msg[128];
    gp_principal_t principal;
} cache_entry_t;

typedef struct fail_slot {
    char addr[64];
    int count;
    int64_t window_start; /* monotonic s */
} fail_slot_t;

struct gp_auth {
    gp_store_t *store;
    gp_auth_config_t cfg;
    pthread_mutex_t lock; /* everything but the cache slots */
    pthread_mutex_t stripes[CACHE_STRIPES];
    cache_entry_t cache[CACHE_SLOTS];
    fail_slot_t fails[FAIL_SLOTS];
    rate_slot_t rates[RATE_SLOTS];
    char touches[TOUCH_QUEUE][37];
    size_t n_touches;
    atomic_bool keys_exist;
    pthread_t thread;
    pthread_cond_t wake;
    bool stop;
};

/* ---------------------------------------------------------------- open rule */

static void refresh_keys_exist(gp_auth_t *a)
{
    int64_t n = 0;
    if (a->store->vt->keys_active(a->store, gp_now_ms(), &n) != 0)
        n = 1; /* the store is unreachable: fail closed */
    atomic_store(&a->keys_exist, n > 0);
}

bool gp_auth_open(gp_auth_t *a)
{
    switch (a->cfg.mode) {
    case GP_AUTH_OPEN:
    case GP_AUTH_OPEN_PUBLIC: return true;
    case GP_AUTH_KEYS: return false;
    default: return a->cfg.loopback_only && !a->cfg.oidc && !atomic_load(&a->keys_exist);
    }
}

/* ---------------------------------------------------------------- background thread */

static void *auth_thread(void *arg)
{
    gp_auth_t *a = arg;
    pthread_mutex_lock(&a->lock);
    int64_t next_refresh = gp_mono_ms() + GP_AUTH_CACHE_MS;
    while (!a->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&a->wake, &a->lock, &ts);
        char ids[TOUCH_QUEUE][37];
        size_t n = a->n_touches;
        memcpy(ids, a->touches, n * sizeof ids[0]);
        a->n_touches = 0;
        pthread_mutex_unlock(&a->lock);
        for (size_t i = 0; i < n; i++)
            a->store->vt->key_touch(a->store, ids[i], gp_now_ms());
        if (a->cfg.mode == GP_AUTH_AUTO && gp_mono_ms() >= next_refresh) {
            refresh_keys_exist(a);
            next_refresh = gp_mono_ms() + GP_AUTH_CACHE_MS;
        }
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

gp_auth_t *gp_auth_new(gp_store_t *store, const gp_auth_config_t *cfg)
{
    gp_auth_t *a = gp_xcalloc(1, sizeof *a);
    a->store = store;
    a->cfg = *cfg;
    pthread_mutex_init(&a->lock, NULL);
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&a->stripes[i], NULL);
    pthread_cond_init(&a->wake, NULL);
    refresh_keys_exist(a);
    if (pthread_create(&a->thread, NULL, auth_thread, a) != 0) {
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->wake);
        free(a);
        return NULL;
    }
    return a;
}

void gp_auth_free(gp_auth_t *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    /* The last touches are written on the way out. */
    for (size_t i = 0; i < a->n_touches; i++)
        a->store->vt->key_touch(a->store, a->touches[i], gp_now_ms());
    pthread_mutex_destroy(&a->lock);
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_destroy(&a->stripes[i]);
    pthread_cond_destroy(&a->wake);
    free(a);
}

void gp_auth_forget(gp_auth_t *a)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        pthread_mutex_lock(&a->stripes[i % CACHE_STRIPES]);
        a->cache[i].used = false;
        pthread_mutex_unlock(&a->stripes[i % CACHE_STRIPES]);
    }
    refresh_keys_exist(a);
}

/* ---------------------------------------------------------------- failure throttle */

static fail_slot_t *fail_slot(gp_auth_t *a, const char *client)
{
    uint8_t h[GP_SHA256_LEN];
    gp_sha256(client, strlen(client), h);
    return &a->fails[(h[0] | (unsigned)h[1] << 8) % FAIL_SLOTS];
}

/* 0, or the seconds to wait when client has failed too often lately. */
static int throttled(gp_auth_t *a, const char *client)
{
    if (!client)
        return 0;
    int64_t now = gp_mono_ms() / 1000;
    int wait = 0;
    pthread_mutex_lock(&a->lock);
    fail_slot_t *f = fail_slot(a, client);
    if (!strcmp(f->addr, client) && f->count >= GP_AUTH_FAIL_LIMIT &&
        now < f->window_start + GP_AUTH_FAIL_WINDOW_S)
        wait = (int)(f->window_start + GP_AUTH_FAIL_WINDOW_S - now);
    pthread_mutex_unlock(&a->lock);
    return wait;
}

static void count_failure(gp_auth_t *a, const char *client)
{
    if (!client)
        return;
    int64_t now = gp_mono_ms() / 1000;
    pthread_mutex_lock(&a->lock);
    fail_slot_t *f = fail_slot(a, client);
    if (strcmp(f->addr, client) != 0 || now >= f->window_start + GP_AUTH_FAIL_WINDOW_S) {
        snprintf(f->addr, sizeof f->addr, "%s", client);
        f->count = 0;
        f->window_start = now;
    }
    f->count++;
    pthread_mutex_unlock(&a->lock);
}

/* ---------------------------------------------------------------- keys */

static void local_principal(gp_principal_t *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->user_id, sizeof p->user_id, "%s", GP_LOCAL_USER_ID);
    snprintf(p->plan, sizeof p->plan, "unlimited");
    p->scopes = GP_SCOPE_TASKS_READ | GP_SCOPE_TASKS_WRITE | GP_SCOPE_ADMIN;
    p->via = GP_VIA_LOCAL;
}

/* Reads the key and its user from the store into e (result, code, message, principal). */
static void verify_key(gp_auth_t *a, const uint8_t hash[GP_SHA256_LEN], cache_entry_t *e)
{
    char hex[GP_SHA256_HEX_LEN];
    gp_hex(hash, GP_SHA256_LEN, hex);
    gp_api_key_t k;
    int rc = a->store->vt->key_by_hash(a->store, hex, &k);
    e->result = 0;
    if (rc != 0) {
        e->result = rc == -GP_E_NOT_FOUND ? -GP_E_INVALID_KEY : -GP_E_UNAVAILABLE;
        return;
    }
    int64_t now = gp_now_ms();
    gp_user_t u = {0};
    unsigned scopes = 0;
    char why[128];
    if (!gp_ct_equal(k.hash, hex, GP_SHA256_HEX_LEN - 1))
        e->result = -GP_E_INVALID_KEY;
    else if (k.revoked_at)
        e->result = -GP_E_KEY_REVOKED;
    else if (k.expires_at && k.expires_at <= now)
        e->result = -GP_E_KEY_EXPIRED;
    else if ((rc = a->store->vt->user_get(a->store, k.user_id, &u)) != 0)
        e->result = rc == -GP_E_NOT_FOUND ? -GP_E_INVALID_KEY : -GP_E_UNAVAILABLE;
    else if (u.disabled)
        e->result = -GP_E_USER_DISABLED;
    else if (gp_scopes_parse(k.scopes ? k.scopes : "", &scopes, why, sizeof why) != 0)
        e->result = -GP_E_INVALID_KEY;
    if (e->result == 0) {
        gp_plan_grant_month(a->store, u.id, u.plan);
        gp_principal_t *p = &e->principal;
        memset(p, 0, sizeof *p);
        snprintf(p->user_id, sizeof p->user_id, "%s", u.id);
        snprintf(p->plan, sizeof p->plan, "%s", u.plan ? u.plan : "free");
        snprintf(p->key_id, sizeof p->key_id, "%s", k.id);
        p->scopes = scopes;
        p->via = GP_VIA_KEY;
    }
    /* An expiring key is not trusted past its expiry, even from the cache. */
    int64_t until = gp_mono_ms() + GP_AUTH_CACHE_MS;
    if (e->result == 0 && k.expires_at && k.expires_at - now < GP_AUTH_CACHE_MS)
        until = gp_mono_ms() + (k.expires_at - now);
    e->valid_until = until;
    gp_api_key_clear(&k);
    gp_user_clear(&u);
}

static void queue_touch(gp_auth_t *a, cache_entry_t *e)
{
    int64_t now = gp_mono_ms();
    if (e->result != 0 || (e->last_touch && now - e->last_touch < GP_AUTH_TOUCH_INTERVAL_MS))
        return;
    e->last_touch = now;
    pthread_mutex_lock(&a->lock);
    if (a->n_touches < TOUCH_QUEUE)
        memcpy(a->touches[a->n_touches++], e->principal.key_id, 37);
    pthread_mutex_unlock(&a->lock);
}

static int throttled(gp_auth_t *a, const char *client);

/* The cache, keyed by the SHA-256 of a credential (key, ID token or session cookie): a
 * direct-mapped slot under one of CACHE_STRIPES locks. cache_get copies a live entry into e
 * (true) and, for API keys, queues a last-used touch; cache_put stores e (not a transient
 * store failure, which must be retried next time). */
static bool cache_get(gp_auth_t *a, const uint8_t hash[GP_SHA256_LEN], bool touch, cache_entry_t *e)
{
    size_t idx = (hash[0] | (unsigned)hash[1] << 8) % CACHE_SLOTS;
    cache_entry_t *slot = &a->cache[idx];
    pthread_mutex_t *lock = &a->stripes[idx % CACHE_STRIPES];
    pthread_mutex_lock(lock);
    bool hit = slot->used && gp_mono_ms() < slot->valid_until &&
               gp_ct_equal(slot->hash, hash, GP_SHA256_LEN);
    if (hit) {
        if (touch)
            queue_touch(a, slot);
        *e = *slot;
    }
    pthread_mutex_unlock(lock);
    return hit;
}

static void cache_put(gp_auth_t *a, const uint8_t hash[GP_SHA256_LEN], bool touch, cache_entry_t *e)
{
    e->used = true;
    memcpy(e->hash, hash, GP_SHA256_LEN);
    if (e->result == -GP_E_UNAVAILABLE)
        return;
    size_t idx = (hash[0] | (unsigned)hash[1] << 8) % CACHE_SLOTS;
    pthread_mutex_t *lock = &a->stripes[idx % CACHE_STRIPES];
    pthread_mutex_lock(lock);
    a->cache[idx] = *e;
    if (touch)
        queue_touch(a, &a->cache[idx]);
    pthread_mutex_unlock(lock);
}

/* Verifies a bearer (an API key, or an ID token when is_token): cached, else from the store
 * (and the issuer's keys). A valid cached credential skips the failure throttle: only
 * guesses pay for it. */
static int authenticate_cached(gp_auth_t *a, const char *bearer, bool is_token, const char *client,
                               gp_principal_t *out, const char **code, char *msg, size_t cap,
                               int *retry_after_s)
{
    uint8_t hash[GP_SHA256_LEN];
    gp_sha256(bearer, strlen(bearer), hash);
    cache_entry_t e;
    bool hit = cache_get(a, hash, !is_token, &e);
    if (!hit || e.result != 0) {
        int wait = throttled(a, client);
        if (wait > 0) {
            *retry_after_s = wait;
            *code = gp_err_code(GP_E_TOO_MANY_AUTH_FAILURES);
            return -GP_E_TOO_MANY_AUTH_FAILURES;
        }
    }
    if (!hit) { /* store (and issuer) round trips, outside any lock */
        memset(&e, 0, sizeof e);
        if (is_token) {
            const char *c = NULL;
            e.result =
                gp_oidc_bridge_authenticate(a->cfg.oidc, a->store, bearer, a->cfg.default_plan,
                                            &e.principal, &c, e.msg, sizeof e.msg);
            e.code = c;
            e.valid_until = gp_mono_ms() + GP_AUTH_CACHE_MS;
        } else {
            verify_key(a, hash, &e);
        }
        cache_put(a, hash, !is_token, &e);
    }
    if (e.result != 0) {
        *code = e.code ? e.code : gp_err_code(e.result);
        snprintf(msg, cap, "%s", e.msg);
        return e.result;
    }
    *out = e.principal;
    return 0;
}

/* A session cookie: signature and expiry, then its user (cached like keys). */
static int authenticate_session(gp_auth_t *a, const char *cookie, gp_principal_t *out,
                                const char **code, char *msg, size_t cap)
{
    char f[2][128];
    int rc = gp_token_check(a->cfg.session_secret, cookie, 2, (int64_t)time(NULL), f, 128);
    if (rc != 0) {
        *code = gp_err_code(GP_E_UNAUTHENTICATED);
        snprintf(msg, cap,
                 rc == -2 ? "the session has expired: sign in again"
                          : "the session cookie is not valid: sign in again");
        return -GP_E_UNAUTHENTICATED;
    }
    uint8_t hash[GP_SHA256_LEN];
    gp_sha256(cookie, strlen(cookie), hash);
    cache_entry_t e;
    if (!cache_get(a, hash, false, &e)) {
        memset(&e, 0, sizeof e);
        gp_user_t u = {0};
        int urc = a->store->vt->user_get(a->store, f[0], &u);
        if (urc != 0)
            e.result = urc == -GP_E_NOT_FOUND ? -GP_E_UNAUTHENTICATED : -GP_E_UNAVAILABLE;
        else if (u.disabled)
            e.result = -GP_E_USER_DISABLED;
        else {
            gp_principal_t *p = &e.principal;
            snprintf(p->user_id, sizeof p->user_id, "%s", u.id);
            snprintf(p->plan, sizeof p->plan, "%s", u.plan ? u.plan : "free");
            snprintf(p->csrf, sizeof p->csrf, "%.47s", f[1]);
            p->scopes = GP_SCOPE_TASKS_READ | GP_SCOPE_TASKS_WRITE;
            p->via = GP_VIA_SESSION;
        }
        gp_user_clear(&u);
        e.valid_until = gp_mono_ms() + GP_AUTH_CACHE_MS;
        cache_put(a, hash, false, &e);
    }
    if (e.result != 0) {
        *code = gp_err_code(e.result);
        return e.result;
    }
    *out = e.principal;
    return 0;
}

/* "Token <key>" (what older Replicate clients send) as "Bearer <key>" in buf; any other value
 * comes back unchanged. */
static const char *token_as_bearer(const char *authorization, char *buf, size_t cap)
{
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "token ", 6) != 0 || strlen(p) + 2 > cap)
        return authorization;
    snprintf(buf, cap, "Bearer %s", p + 6);
    return buf;
}

int gp_auth_authenticate(gp_auth_t *a, const char *authorization, const char *session_cookie,
                         const char *client, gp_principal_t *out, const char **code, char *msg,
                         size_t cap, int *retry_after_s)
{
    msg[0] = '\0';
    *code = NULL;
    if ((!authorization || !*authorization) && session_cookie && *session_cookie)
        return authenticate_session(a, session_cookie, out, code, msg, cap);
    if (!authorization || !*authorization) {
        if (gp_auth_open(a)) {
            local_principal(out);
            return 0;
        }
        *code = gp_err_code(GP_E_UNAUTHENTICATED);
        snprintf(msg, cap, "this server needs an API key: send Authorization: Bearer <key>");
        return -GP_E_UNAUTHENTICATED;
    }
    const char *token = NULL;
    size_t len = 0;
    char as_bearer[GP_BEARER_MAX + 2];
    authorization = token_as_bearer(authorization, as_bearer, sizeof as_bearer);
    int rc = gp_bearer_parse(authorization, &token, &len);
    char buf[GP_BEARER_MAX + 1];
    if (rc == 0 && len <= GP_BEARER_MAX) {
        memcpy(buf, token, len);
        buf[len] = '\0';
    } else {
        int wait = throttled(a, client);
        if (wait > 0) {
            *retry_after_s = wait;
            *code = gp_err_code(GP_E_TOO_MANY_AUTH_FAILURES);
            return -GP_E_TOO_MANY_AUTH_FAILURES;
        }
        count_failure(a, client);
        *code = gp_err_code(GP_E_UNAUTHENTICATED);
        snprintf(msg, cap, "the Authorization header must be \"Bearer <key>\"");
        return -GP_E_UNAUTHENTICATED;
    }
    if (a->cfg.oidc && gp_oidc_bridge_is_token(buf)) {
        rc = authenticate_cached(a, buf, true, client, out, code, msg, cap, retry_after_s);
    } else if (!gp_api_key_well_formed(buf)) {
        int wait = throttled(a, client);
        if (wait > 0) {
            *retry_after_s = wait;
            *code = gp_err_code(GP_E_TOO_MANY_AUTH_FAILURES);
            return -GP_E_TOO_MANY_AUTH_FAILURES;
        }
        rc = -GP_E_INVALID_KEY;
        *code = gp_err_code(rc);
        snprintf(msg, cap, "%s",
                 gp_oidc_bridge_is_token(buf)
                     ? "ID tokens are not accepted: no OIDC issuer is configured"
                     : "this is not a GenPulse API key (they look like gp_…)");
    } else {
        rc = authenticate_cached(a, buf, false, client, out, code, msg, cap, retry_after_s);
    }
    if (rc != 0 && rc != -GP_E_UNAVAILABLE && rc != -GP_E_TOO_MANY_AUTH_FAILURES)
        count_failure(a, client);
    return rc;
}

/* ---------------------------------------------------------------- per-user rate */

int gp_auth_rate(gp_auth_t *a, const char *user_id, int per_minute, int *remaining, int *reset_s)
{
    *remaining = per_minute;
    *reset_s = RATE_WINDOW_S;
    if (per_minute <= 0)
        return 0;
    uint8_t h[GP_SHA256_LEN];
    gp_sha256(user_id, strlen(user_id), h);
    int64_t now = gp_mono_ms() / 1000;
    pthread_mutex_lock(&a->lock);
    rate_slot_t *r = &a->rates[(h[0] | (unsigned)h[1] << 8) % RATE_SLOTS];
    if (strcmp(r->user_id, user_id) != 0 || now >= r->window_start + RATE_WINDOW_S) {
        snprintf(r->user_id, sizeof r->user_id, "%s", user_id);
        r->window_start = now;
        r->count = 0;
    }
    bool over = r->count >= per_minute;
    if (!over)
        r->count++;
    *remaining = per_minute - r->count;
    *reset_s = (int)(r->window_start + RATE_WINDOW_S - now);
    pthread_mutex_unlock(&a->lock);
    return over ? -1 : 0;
}

/* ---------------------------------------------------------------- decisions */

bool gp_principal_allows(const gp_principal_t *p, const char *scope)
{
    if (!scope)
        return true;
    if (!*scope)
        return p != NULL;
    return p && gp_scopes_allow(p->scopes, scope);
}

bool gp_principal_is_admin(const gp_principal_t *p)
{
    return p && (p->scopes & GP_SCOPE_ADMIN);
}

bool gp_principal_owns(const gp_principal_t *p, const char *owner)
{
    if (!p)
        return false;
    if (gp_principal_is_admin(p))
        return true;
    return !strcmp(owner && *owner ? owner : GP_LOCAL_USER_ID, p->user_id);
}

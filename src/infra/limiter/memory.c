/*
 * memory.c — the limiter for a single process (embedded mode; see limiter.h).
 *
 * Each key gets an entry on first use: a mutex, a condition variable that releases signal,
 * the held slots (token + wall-clock expiry) and the GCRA state of the rate limit. Entries
 * live until close. Keys are provider names and "user:<id>" (the plans' running limits), so
 * the table is capped (MAX_KEYS, about 2 MB when full) instead of reclaimed; a key beyond the
 * cap gets -GP_E_UNAVAILABLE, which callers treat as "no limit", plus one warning, rather
 * than memory growing with whatever names show up.
 */
#include "core/errors.h"
#include "core/log.h"
#include "core/util.h"
#include "infra/limiter/limiter.h"
#include "infra/limiter/wait.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KEYS 16384

typedef struct held {
    char token[40];
    int64_t expires_at; /* wall clock ms: a lifetime, not tied to this process's uptime */
} held_t;

typedef struct entry {
    pthread_mutex_t lock;
    pthread_cond_t freed; /* CLOCK_MONOTONIC; broadcast when a slot is given back */
    uint64_t releases;    /* lets a waiter notice a release that came while it was unlocked */
    held_t *held;
    size_t n_held, cap_held;
    int64_t tat_us; /* GCRA theoretical arrival time, monotonic µs (0 = never used) */
} entry_t;

typedef struct mem_limiter {
    gp_limiter_t base;
    pthread_mutex_t lock; /* guards keys and full_warned */
    gp_strmap_t *keys;    /* key → entry_t */
    bool full_warned;
    /* Tokens only need to be unique within this process: a counter, not a random UUID
     * (which costs a getrandom() call per acquire). */
    atomic_ullong next_token;
} mem_limiter_t;

extern const gp_limiter_vt_t gp_limiter_backend_memory;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The entry of key, created on first use when create is set; NULL when the table is full
 * (or, without create, when the key was never used). */
static entry_t *entry_for(mem_limiter_t *l, const char *key, bool create)
{
    pthread_mutex_lock(&l->lock);
    entry_t *e = gp_strmap_get(l->keys, key);
    bool warn = false;
    if (!e && create) {
        if (gp_strmap_count(l->keys) < MAX_KEYS) {
            e = gp_xcalloc(1, sizeof *e);
            pthread_mutex_init(&e->lock, NULL);
            pthread_condattr_t attr;
            pthread_condattr_init(&attr);
            pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
            pthread_cond_init(&e->freed, &attr);
            pthread_condattr_destroy(&attr);
            gp_strmap_put(l->keys, key, e);
        } else {
            warn = !l->full_warned;
            l->full_warned = true;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (warn)
        GP_WARN("limiter: more than %d keys; \"%s\" and later keys run unlimited", MAX_KEYS, key);
    return e;
}

/* Drops slots whose lifetime ended (their holder is presumed dead) and returns the earliest
 * expiry of those left (INT64_MAX when none). Called with e->lock held. */
static int64_t purge_expired(entry_t *e, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < e->n_held;) {
        if (e->held[i].expires_at <= now_ms) {
            e->held[i] = e->held[--e->n_held];
            continue;
        }
        if (e->held[i].expires_at < next)
            next = e->held[i].expires_at;
        i++;
    }
    return next;
}

static int mem_open(gp_limiter_t **out, const char *url, const gp_settings_t *s, char *err,
                    size_t cap)
{
    (void)url, (void)s, (void)err, (void)cap;
    mem_limiter_t *l = gp_xcalloc(1, sizeof *l);
    l->base.vt = &gp_limiter_backend_memory;
    pthread_mutex_init(&l->lock, NULL);
    l->keys = gp_strmap_new();
    *out = &l->base;
    return 0;
}

static void free_entry(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    entry_t *e = value;
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->freed);
    free(e->held);
    free(e);
}

static void mem_close(gp_limiter_t *base)
{
    mem_limiter_t *l = (mem_limiter_t *)base;
    gp_strmap_each(l->keys, free_entry, NULL);
    gp_strmap_free(l->keys);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static int mem_acquire_slot(gp_limiter_t *base, const char *key, int max, int64_t lifetime_ms,
                            int64_t deadline_ms, bool (*cancel)(void *), void *cancel_arg,
                            gp_limit_slot_t *slot)
{
    memset(slot, 0, sizeof *slot);
    if (max <= 0)
        return 0;
    snprintf(slot->key, sizeof slot->key, "%s", key);
    mem_limiter_t *l = (mem_limiter_t *)base;
    entry_t *e = entry_for(l, slot->key, true);
    if (!e)
        return -GP_E_UNAVAILABLE;
    if (lifetime_ms <= 0)
        lifetime_ms = GP_LIMIT_DEFAULT_LIFETIME_MS;
    char token[sizeof slot->token];
    snprintf(token, sizeof token, "mem-%llu", atomic_fetch_add(&l->next_token, 1) + 1);

    pthread_mutex_lock(&e->lock);
    for (;;) {
        int64_t now = gp_now_ms();
        int64_t next_expiry = purge_expired(e, now);
        if (e->n_held < (size_t)max) {
            if (e->n_held == e->cap_held) {
                size_t ncap = e->cap_held ? e->cap_held * 2 : 8;
                held_t *grown = realloc(e->held, ncap * sizeof *grown);
                if (!grown) {
                    pthread_mutex_unlock(&e->lock);
                    return -GP_E_UNAVAILABLE;
                }
                e->held = grown;
                e->cap_held = ncap;
            }
            held_t *h = &e->held[e->n_held++];
            snprintf(h->token, sizeof h->token, "%s", token);
            h->expires_at = now + lifetime_ms;
            pthread_mutex_unlock(&e->lock);
            snprintf(slot->token, sizeof slot->token, "%s", token);
            slot->held = true;
            return 0;
        }
        /* cancel() is the caller's code: never run it under our lock. */
        uint64_t seen = e->releases;
        pthread_mutex_unlock(&e->lock);
        int rc = gp_limit_check(deadline_ms, cancel, cancel_arg);
        if (rc != 0)
            return rc;
        int64_t ms = gp_limit_slice(next_expiry - now, deadline_ms);
        pthread_mutex_lock(&e->lock);
        if (e->releases == seen) {
            struct timespec ts = gp_deadline_in(CLOCK_MONOTONIC, ms);
            pthread_cond_timedwait(&e->freed, &e->lock, &ts);
        }
    }
}

static void mem_release_slot(gp_limiter_t *base, gp_limit_slot_t *slot)
{
    if (!slot || !slot->held)
        return;
    slot->held = false;
    entry_t *e = entry_for((mem_limiter_t *)base, slot->key, false);
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n_held; i++)
        if (!strcmp(e->held[i].token, slot->token)) {
            e->held[i] = e->held[--e->n_held];
            break;
        }
    /* Waiters may ask for different maxima on the same key; wake them all to re-check. */
    e->releases++;
    pthread_cond_broadcast(&e->freed);
    pthread_mutex_unlock(&e->lock);
}

/*
 * GCRA: each request pushes the theoretical arrival time (TAT) one emission interval T
 * further; a request may start once now >= TAT - tau, where tau = (burst - 1) * T lets a
 * burst through after a quiet spell. Microseconds keep high rates (T < 1 ms) exact.
 */
static int mem_take_token(gp_limiter_t *base, const char *key, int per_minute, int64_t deadline_ms,
                          bool (*cancel)(void *), void *cancel_arg)
{
    if (per_minute <= 0)
        return 0;
    char k[GP_LIMIT_KEY_MAX + 1];
    snprintf(k, sizeof k, "%s", key);
    entry_t *e = entry_for((mem_limiter_t *)base, k, true);
    if (!e)
        return -GP_E_UNAVAILABLE;
    int64_t t_us = 60000000LL / per_minute;
    if (t_us < 1)
        t_us = 1;
    int64_t burst = per_minute / 10 < 1 ? 1 : per_minute / 10;
    int64_t tau_us = (burst - 1) * t_us;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        int64_t now = mono_us();
        int64_t tat = e->tat_us > now ? e->tat_us : now;
        int64_t wait_us = tat - tau_us - now;
        if (wait_us <= 0)
            e->tat_us = tat + t_us;
        pthread_mutex_unlock(&e->lock);
        if (wait_us <= 0)
            return 0;
        int rc = gp_limit_check(deadline_ms, cancel, cancel_arg);
        if (rc != 0)
            return rc;
        int64_t wait_ms = (wait_us + 999) / 1000;
        /* The TAT only moves forward, so a wait ending past the deadline cannot shrink: fail
         * now instead of sleeping to the deadline first. */
        if (gp_mono_ms() + wait_ms > deadline_ms)
            return -GP_E_TIMEOUT;
        gp_limit_sleep(gp_limit_slice(wait_ms, deadline_ms));
    }
}

const gp_limiter_vt_t gp_limiter_backend_memory = {
    .scheme = "memory",
    .open = mem_open,
    .close = mem_close,
    .acquire_slot = mem_acquire_slot,
    .release_slot = mem_release_slot,
    .take_token = mem_take_token,
};

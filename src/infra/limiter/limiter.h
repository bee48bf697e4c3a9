/*
 * limiter.h — per-provider limits shared by every process that calls the provider.
 *
 * Two kinds of limit, both keyed by a name (the provider's):
 *   - concurrency: at most `max` tasks hold a slot at once. A slot is taken by the worker
 *     before a provider's run() and released after; it also expires by itself at `expires_ms`
 *     (monotonic-independent: a wall-clock lifetime) so a killed process cannot leak it;
 *   - rate: at most `per_minute` requests start in any minute (GCRA / token bucket with a
 *     burst of max(1, per_minute/10)).
 * Both waits are bounded by deadline_ms (gp_mono_ms clock) and wake early on cancel().
 *
 * Backends: "memory" (in-process; embedded mode) and "redis" (Lua scripts; distributed mode),
 * picked by the queue URL's scheme like the queue and the event bus. A backend is a
 * const gp_limiter_vt_t named gp_limiter_backend_<stem>. All functions are thread-safe.
 */
#ifndef GP_LIMITER_H
#define GP_LIMITER_H

#include "core/settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gp_limiter gp_limiter_t;

/* A held concurrency slot; filled by acquire_slot(), given back to release_slot(). */
typedef struct gp_limit_slot {
    char key[64];
    char token[40]; /* unique per holder */
    bool held;
} gp_limit_slot_t;

typedef struct gp_limiter_vt {
    const char *scheme;
    int (*open)(gp_limiter_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap);
    void (*close)(gp_limiter_t *l);
    /* 0 with slot->held, -GP_E_TIMEOUT when deadline_ms passed first, -GP_E_CANCELED when
     * cancel() turned true, -GP_E_UNAVAILABLE when the backend cannot be reached (callers
     * then proceed without the limit rather than stall: limits protect the provider, they do
     * not guard data). max <= 0 means no limit (returns 0 at once, slot->held false). */
    int (*acquire_slot)(gp_limiter_t *l, const char *key, int max, int64_t lifetime_ms,
                        int64_t deadline_ms, bool (*cancel)(void *), void *cancel_arg,
                        gp_limit_slot_t *slot);
    void (*release_slot)(gp_limiter_t *l, gp_limit_slot_t *slot);
    /* Waits until one more request may start under per_minute; same returns as above. */
    int (*take_token)(gp_limiter_t *l, const char *key, int per_minute, int64_t deadline_ms,
                      bool (*cancel)(void *), void *cancel_arg);
} gp_limiter_vt_t;

struct gp_limiter {
    const gp_limiter_vt_t *vt;
};

extern const gp_limiter_vt_t *const gp_generated_limiter_backends[];
/* Opens the backend for s->queue_url's scheme ("memory" when empty). */
int gp_limiter_open(gp_limiter_t **out, const gp_settings_t *s, char *err, size_t cap);
static inline void gp_limiter_close(gp_limiter_t *l)
{
    if (l)
        l->vt->close(l);
}

#endif

/*
 * wait.h — the waiting rules both limiter backends share, so "deadline" and "cancel" mean
 * the same thing whichever backend a deployment picks.
 */
#ifndef GP_LIMITER_WAIT_H
#define GP_LIMITER_WAIT_H

#include "core/errors.h"
#include "core/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Longest sleep between two looks at cancel(): a canceled task should let go of its worker
 * within a fraction of a second, and waking 20 times a second costs nothing. */
#define GP_LIMIT_SLICE_MS 50
/* A slot taken with lifetime_ms <= 0 still expires: a holder that dies without releasing
 * must not shrink the provider's capacity forever. Longer than any sane task timeout. */
#define GP_LIMIT_DEFAULT_LIFETIME_MS (6 * 3600 * 1000LL)
/* Keys are copied into gp_limit_slot_t.key; longer names are cut there, and every use of a
 * key goes through the cut copy so acquire and release always agree. */
#define GP_LIMIT_KEY_MAX 63

/* Before each wait: -GP_E_CANCELED, -GP_E_TIMEOUT or 0 (go on and wait). */
static inline int gp_limit_check(int64_t deadline_ms, bool (*cancel)(void *), void *cancel_arg)
{
    if (cancel && cancel(cancel_arg))
        return -GP_E_CANCELED;
    if (gp_mono_ms() >= deadline_ms)
        return -GP_E_TIMEOUT;
    return 0;
}

/* How long one wait may last: want_ms, but never past the deadline nor longer than a slice. */
static inline int64_t gp_limit_slice(int64_t want_ms, int64_t deadline_ms)
{
    int64_t left = deadline_ms - gp_mono_ms();
    int64_t ms = want_ms < GP_LIMIT_SLICE_MS ? want_ms : GP_LIMIT_SLICE_MS;
    if (ms > left)
        ms = left;
    return ms < 1 ? 1 : ms;
}

static inline void gp_limit_sleep(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#endif

/*
 * kombu_wake.h — wakes GenPulse's idle Redis pops when another client (a Python Celery
 * producer) LPUSHes onto kombu's lists.
 *
 * Why: GenPulse pops with one atomic Lua script (no loss window, queue/redis.c), and Lua
 * cannot block, so idle pops block on a wake list that GenPulse's own pushes feed. A kombu
 * producer LPUSHes the message only, so before this a send_task() waited for an idle pop's
 * BLPOP timeout (up to 500 ms: the 293 ms mean round trip of issue 10). Redis's client-side
 * caching gives a push notification without polling and without popping: a tracking
 * connection reads the lists (LLEN), and Redis sends an invalidation message on
 * `__redis__:invalidate` to a subscribed connection the moment any client writes one of them.
 * The watcher then re-arms (LLEN again) and pushes wake tokens (one per waiting message, at
 * most tokens_max), pipelined in one round trip. Redis >= 6.0. Where CLIENT TRACKING is
 * refused (an ACL, a proxy), the watcher logs it once and the pops keep their timeout.
 *
 * Ownership: start() copies everything it is given. Threading: one thread per watcher;
 * start/stop from any one thread (stop joins).
 */
#ifndef GP_KOMBU_WAKE_H
#define GP_KOMBU_WAKE_H

#include "infra/redis/conn.h"

typedef struct gp_kombu_wake gp_kombu_wake_t;

/* Watches `lists` (n <= 8 keys) and LPUSHes "1" tokens on wake_key (capped by LTRIM at
 * tokens_max entries). Returns NULL only if the thread cannot start. */
gp_kombu_wake_t *gp_kombu_wake_start(const gp_redis_url_t *url, const char *const *lists, int n,
                                     const char *wake_key, int tokens_max);
/* Stops and joins the thread, frees w. NULL is a no-op. */
void gp_kombu_wake_stop(gp_kombu_wake_t *w);

#endif

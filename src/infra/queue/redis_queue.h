/*
 * redis_queue.h — what the Redis dispatch backend (redis.c) offers beyond the queue vtable.
 */
#ifndef GP_REDIS_QUEUE_H
#define GP_REDIS_QUEUE_H

#include "infra/queue/queue.h"

#include <stdint.h>

/*
 * Puts back on their priority list the deliveries of the "genpulse" queue whose lease (their
 * `unacked_index` score, set at pop and refreshed by renew()) is older than lease_ms: their
 * worker died or lost Redis. kombu's restore_visible semantics: RPUSH (they run next) with
 * headers.redelivered and delivery_info.redelivered set, same delivery tag. Each move is
 * atomic and re-checks the score, so a renew() or ack() racing with it wins. Deliveries of
 * other kombu queues in the same `unacked` hash are left to their own consumers.
 *
 * Returns how many were restored (>= 0), 0 for a queue that is not the Redis backend, or
 * -GP_E_UNAVAILABLE. Thread-safe; safe to run from several processes at once.
 */
int gp_redis_queue_restore_expired(gp_queue_t *q, int64_t lease_ms);

#endif

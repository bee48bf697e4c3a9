/*
 * fanout.h — local delivery of events to this process's subscribers, for event backends
 * whose transport is remote (Redis): the transport thread hands each event to
 * gp_fanout_deliver(), which calls the task's subscribers outside any lock and counts calls
 * in flight so that unsubscribe() can promise the callback is no longer running.
 * All functions are thread-safe.
 */
#ifndef GP_EVENTS_FANOUT_H
#define GP_EVENTS_FANOUT_H

#include "infra/events/events.h"

typedef struct gp_fanout gp_fanout_t;

gp_fanout_t *gp_fanout_new(void);
/* Frees f and any subscriptions still registered. */
void gp_fanout_free(gp_fanout_t *f);
/* task_id NULL: every task's events. */
gp_subscription_t *gp_fanout_subscribe(gp_fanout_t *f, const char *task_id, gp_event_cb cb,
                                       void *arg);
/* After it returns, cb is not running and will not run again; frees sub. */
void gp_fanout_unsubscribe(gp_fanout_t *f, gp_subscription_t *sub);
void gp_fanout_deliver(gp_fanout_t *f, const gp_event_t *ev);
/* True if task_id has a local subscriber, or some subscriber takes every task's events (to
 * skip building events nobody reads). */
bool gp_fanout_has(gp_fanout_t *f, const char *task_id);
/* Number of tasks with at least one local subscriber. */
size_t gp_fanout_tasks(gp_fanout_t *f);

#endif

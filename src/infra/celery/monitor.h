/*
 * monitor.h — a GenPulse worker process as Celery's monitoring tools see a Celery worker
 * (research/queues.md §1.6, §1.8, §1.9): events on kombu's `celeryev` fanout and replies to
 * remote control on the `celery.pidbox` fanout, over the Redis transport's PUBLISH channels.
 * So `celery events`, `celery inspect ping|active|stats`, `celery status`, `celery control
 * revoke` and Flower work against GenPulse workers.
 *
 * How it is hooked in: the worker pool speaks only the neutral hooks of queue.h
 * (attach_worker / task_event / detach_worker, with a gp_worker_host_t for the questions
 * remote control asks); the Redis queue backend implements them by calling this monitor. The
 * core never names Celery or Redis, and a backend without such tools simply has no hooks.
 *
 * Node name: "genpulse-<pid>@<host>" (one node per process, like `celery -n`).
 * Events: worker-online at start, worker-heartbeat every 2 s (freq, active, processed,
 * loadavg, sw_ident "genpulse", sw_ver, sw_sys), worker-offline at a clean stop;
 * task-received, -started, -succeeded (result repr, runtime), -failed and -retried
 * (exception repr, traceback), -revoked (terminated, signum, expired), each with hostname,
 * utcoffset, pid, a Lamport clock and timestamp, routed as `<type with dots>`.
 * Remote control: ping, stats, active, revoke and terminate (→ host->cancel), heartbeat,
 * clock,
 * enable_events/disable_events (always on), registered, active_queues, and empty answers
 * for reserved, scheduled, revoked and conf; anything else gets kombu's "unknown command".
 * Messages are dropped when expired or addressed to other nodes (destination / pattern).
 *
 * Threading: two threads of its own — a publisher (drains a bounded queue of events and
 * sends heartbeats; when the queue is full, events are dropped and counted, never waited
 * for) and a pidbox listener (blocks on its subscription; replies on its own connection).
 * gp_celery_monitor_task_event() only builds the event and queues it: callable from any
 * thread, never blocks on Redis. Events are soft state (a Redis outage loses them, as
 * Celery's own fanout does).
 * Ownership: start() copies url and host; host->arg must outlive stop().
 */
#ifndef GP_CELERY_MONITOR_H
#define GP_CELERY_MONITOR_H

#include "infra/queue/queue.h"
#include "infra/redis/conn.h"

typedef struct gp_celery_monitor gp_celery_monitor_t;

/* Starts both threads and queues worker-online. NULL only if a thread cannot start. */
gp_celery_monitor_t *gp_celery_monitor_start(const gp_redis_url_t *url,
                                             const gp_worker_host_t *host);
/* Queues the Celery event for ev (copied). */
void gp_celery_monitor_task_event(gp_celery_monitor_t *m, const gp_task_event_t *ev);
/* Publishes what is queued and worker-offline (each bounded by the I/O timeout), stops and
 * joins both threads, frees m. No host callback runs after it returns. NULL is a no-op. */
void gp_celery_monitor_stop(gp_celery_monitor_t *m);

#endif

/*
 * metrics.h — the process's Prometheus metrics: counters, gauges and histograms, declared as
 * data (the table in metrics.c, one row per family, in the order of gp_metric_t), and their
 * text exposition (format 0.0.4).
 *
 * Cardinality: every label takes values from a small fixed set: task types and providers
 * from the registry (anything else counts as "other", see gp_metrics_task_labels), route
 * patterns from the route table (never the raw path), HTTP methods and status codes,
 * outcomes. No user, task or request id is ever a label. A family holds at most
 * GP_METRICS_SERIES_MAX label sets; past that, samples land in one series whose labels are
 * all "other".
 *
 * Threading: every function is thread-safe. The hot path (add, observe) is lock-free: a
 * series is found by hashing its label values into a fixed table (inserted once with a
 * compare-and-set) and updated with relaxed atomic adds. A scrape reads the atomics without
 * stopping writers, so a histogram's buckets, sum and count may be a few samples apart.
 *
 * Ownership: label values are copied (the caller's strings may be transient); the text of
 * gp_metrics_render / gp_metrics_text is malloc'd and the caller frees it.
 */
#ifndef GP_METRICS_H
#define GP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_METRICS_SERIES_MAX 256
#define GP_METRICS_LABELS_MAX 3
#define GP_METRICS_LABEL_LEN 48 /* longer values are cut (at a UTF-8 boundary, always alike) */

/* Families; labels in parentheses, in the order the add/observe calls pass them. */
typedef enum gp_metric {
    GP_M_TASKS_CREATED,      /* counter (task_type, provider) */
    GP_M_TASKS_FINISHED,     /* counter (task_type, provider, outcome) */
    GP_M_TASK_RETRIES,       /* counter (task_type, provider): an attempt failed, runs again */
    GP_M_TASK_RUN,           /* histogram seconds (task_type, provider): one attempt */
    GP_M_TASK_QUEUE_WAIT,    /* histogram seconds (task_type, provider): ready → claimed */
    GP_M_QUEUE_DEPTH,        /* gauge (priority), read at scrape time */
    GP_M_QUEUE_DELAYED,      /* gauge, read at scrape time */
    GP_M_WORKERS_ALIVE,      /* gauge, read at scrape time */
    GP_M_WORKER_SLOTS,       /* gauge, read at scrape time */
    GP_M_WORKER_SLOTS_BUSY,  /* gauge, read at scrape time */
    GP_M_HTTP_REQUESTS,      /* counter (method, route, status) */
    GP_M_HTTP_DURATION,      /* histogram seconds (method, route) */
    GP_M_SSE_STREAMS,        /* gauge: event streams open */
    GP_M_COMMIT_BATCH,       /* histogram: operations per store transaction */
    GP_M_COMMIT_DURATION,    /* histogram seconds: one store transaction */
    GP_M_COMMIT_FAILURES,    /* counter: transactions the store refused */
    GP_M_PROVIDER_CALLS,     /* counter (provider, code): HTTP attempts to a provider's API */
    GP_M_PROVIDER_RETRIES,   /* counter (provider) */
    GP_M_PROVIDER_THROTTLED, /* counter (provider): answers with status 429 */
    GP_M_WEBHOOK_DELIVERIES, /* counter (outcome): webhook attempts by what they left:
                                succeeded, retry, failed (the delivery gave up) */
    GP_M_WEBHOOK_ATTEMPT_DURATION, /* histogram seconds: one webhook HTTP attempt */
    GP_M_START_TIME,               /* gauge: process start, unix seconds */
    GP_M_BUILD_INFO,               /* gauge (version) = 1 */
    GP_M_COUNT
} gp_metric_t;

/* Once at start, before threads: whether add/observe record anything (--metrics), the
 * version for build_info and the process start (ms since epoch). Gauges set with
 * gp_metrics_set are kept either way. */
void gp_metrics_setup(bool enabled, const char *version, int64_t started_at_ms);
bool gp_metrics_enabled(void);

/* Adds n to a counter or a gauge (n may be negative for gauges). Labels beyond the family's
 * count are ignored; NULL reads as "". */
void gp_metrics_add(gp_metric_t m, int64_t n, const char *l1, const char *l2, const char *l3);
static inline void gp_metrics_inc(gp_metric_t m, const char *l1, const char *l2, const char *l3)
{
    gp_metrics_add(m, 1, l1, l2, l3);
}
/* Sets a gauge (scrape-time values). */
void gp_metrics_set(gp_metric_t m, int64_t v, const char *l1, const char *l2, const char *l3);
/* One histogram sample, in the family's unit (seconds for *_seconds). Negative → 0. */
void gp_metrics_observe(gp_metric_t m, double v, const char *l1, const char *l2);

/* Monotonic seconds (sub-microsecond resolution), for timing what observe() records. */
double gp_metrics_clock(void);

/* The label values for a task's type and provider: the registry's own names when both are
 * registered, else "other" (a row written by another binary, a foreign Celery task). */
void gp_metrics_task_labels(const char *task_type, const char *provider, const char **tt_out,
                            const char **prov_out);

/* The exposition of every family (HELP, TYPE, samples), NUL-terminated; *len (may be NULL)
 * = its length. Never NULL (allocation failure aborts, like gp_xmalloc). */
char *gp_metrics_render(size_t *len);

/* Prometheus label-value escaping (\\, \", \n) of s into out (cap bytes, NUL-terminated,
 * cut at a whole escape); returns the length written. Exposed for the unit test. */
size_t gp_metrics_escape_label(const char *s, char *out, size_t cap);

/* Zeroes every series (tests). Not safe against concurrent writers. */
void gp_metrics_reset(void);

/*
 * The scrape: reads the gauges that are collected on demand (queue depth by priority, live
 * workers, slots) from rt's backends, then renders. Implemented in runtime/metrics_scrape.c
 * (core stays below the backends); the HTTP layer and the worker's admin listener both
 * serve it. May block on the queue and presence backends (a Redis round trip each).
 */
struct gp_runtime;
char *gp_metrics_text(const struct gp_runtime *rt, size_t *len);

#endif

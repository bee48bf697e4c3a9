/*
 * stats.c — the dashboard's time buckets, aggregated from task rows (store.h, "stats").
 *
 * Every backend selects the same four columns of the tasks that touch the window and feeds
 * them here, so the bucket rules live once. Counts of events are direct; "pending at the
 * bucket's end" is an interval per task ([created, started or completed)), added with a
 * difference array so a row costs O(1) whatever the number of buckets. Waits are kept per
 * row and sorted once for the medians.
 */
#include "core/util.h"
#include "infra/store/store.h"

#include <stdlib.h>
#include <string.h>

typedef struct wait_sample {
    size_t bucket;
    int64_t wait_ms;
} wait_sample_t;

struct gp_stats_acc {
    gp_stats_query_t q;
    gp_stats_bucket_t *b;
    int64_t *pending_diff, *processing_diff; /* n + 1 entries */
    wait_sample_t *waits;
    size_t n_waits, cap_waits;
};

gp_stats_acc_t *gp_stats_begin(const gp_stats_query_t *q)
{
    gp_stats_acc_t *a = gp_xcalloc(1, sizeof *a);
    a->q = *q;
    a->b = gp_xcalloc(q->n_buckets, sizeof *a->b);
    a->pending_diff = gp_xcalloc(q->n_buckets + 1, sizeof *a->pending_diff);
    a->processing_diff = gp_xcalloc(q->n_buckets + 1, sizeof *a->processing_diff);
    return a;
}

/* The bucket an event at t falls in, or n when outside the window. */
static size_t bucket_of(const gp_stats_acc_t *a, int64_t t)
{
    int64_t end = a->q.since_ms + (int64_t)a->q.n_buckets * a->q.bucket_ms;
    if (t < a->q.since_ms || t >= end)
        return a->q.n_buckets;
    return (size_t)((t - a->q.since_ms) / a->q.bucket_ms);
}

/* The first bucket whose end is at or after t (n when none): a state entered at t is
 * counted from that bucket on. */
static size_t first_end_at_or_after(const gp_stats_acc_t *a, int64_t t)
{
    if (t <= a->q.since_ms)
        return 0;
    int64_t i = (t - a->q.since_ms - 1) / a->q.bucket_ms;
    return i >= (int64_t)a->q.n_buckets ? a->q.n_buckets : (size_t)i;
}

/* Counts [from, to) into diff: the state held from `from` until just before `to`
 * (to = 0: still held). */
static void add_interval(gp_stats_acc_t *a, int64_t *diff, int64_t from, int64_t to)
{
    size_t lo = first_end_at_or_after(a, from);
    size_t hi = to > 0 ? first_end_at_or_after(a, to) : a->q.n_buckets;
    if (lo < hi) {
        diff[lo]++;
        diff[hi]--;
    }
}

void gp_stats_add(gp_stats_acc_t *a, int64_t created_at, int64_t started_at, int64_t completed_at,
                  gp_task_status_t status)
{
    size_t n = a->q.n_buckets, i;
    if ((i = bucket_of(a, created_at)) < n)
        a->b[i].created++;
    if (completed_at > 0 && (i = bucket_of(a, completed_at)) < n) {
        if (status == GP_TASK_SUCCEEDED)
            a->b[i].succeeded++;
        else if (status == GP_TASK_FAILED)
            a->b[i].failed++;
        else if (status == GP_TASK_CANCELED)
            a->b[i].canceled++;
    }
    if (started_at > 0 && (i = bucket_of(a, started_at)) < n) {
        a->b[i].started++;
        if (a->n_waits == a->cap_waits) { /* sized by the data: plain realloc */
            size_t cap = a->cap_waits ? a->cap_waits * 2 : 256;
            wait_sample_t *grown = realloc(a->waits, cap * sizeof *grown);
            if (grown) {
                a->waits = grown;
                a->cap_waits = cap;
            }
        }
        if (a->n_waits < a->cap_waits) /* out of memory: the sample is left out */
            a->waits[a->n_waits++] =
                (wait_sample_t){i, started_at > created_at ? started_at - created_at : 0};
    }
    /* A task not yet finished has no completed_at; one re-queued by a retry is pending
     * again with started_at cleared or older than its re-queue (then it reads as running:
     * the rows keep no history of earlier attempts). */
    int64_t left_pending = started_at > 0 ? started_at : completed_at;
    add_interval(a, a->pending_diff, created_at, left_pending);
    if (started_at > 0)
        add_interval(a, a->processing_diff, started_at, completed_at);
}

static int by_bucket_then_wait(const void *x, const void *y)
{
    const wait_sample_t *a = x, *b = y;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return a->wait_ms < b->wait_ms ? -1 : a->wait_ms > b->wait_ms;
}

void gp_stats_finish(gp_stats_acc_t *a, gp_stats_bucket_t *out)
{
    size_t n = a->q.n_buckets;
    int64_t pending = 0, processing = 0;
    for (size_t i = 0; i < n; i++) {
        pending += a->pending_diff[i];
        processing += a->processing_diff[i];
        a->b[i].start_ms = a->q.since_ms + (int64_t)i * a->q.bucket_ms;
        a->b[i].pending = pending;
        a->b[i].processing = processing;
    }
    if (a->n_waits > 0) /* qsort wants a non-NULL base even for 0 items */
        qsort(a->waits, a->n_waits, sizeof *a->waits, by_bucket_then_wait);
    for (size_t j = 0; j < a->n_waits;) {
        size_t k = j;
        double sum = 0;
        while (k < a->n_waits && a->waits[k].bucket == a->waits[j].bucket)
            sum += (double)a->waits[k++].wait_ms;
        gp_stats_bucket_t *b = &a->b[a->waits[j].bucket];
        b->wait_avg_ms = sum / (double)(k - j);
        b->wait_p50_ms = a->waits[j + (k - j - 1) / 2].wait_ms; /* lower median */
        j = k;
    }
    memcpy(out, a->b, n * sizeof *out);
    free(a->b);
    free(a->pending_diff);
    free(a->processing_diff);
    free(a->waits);
    free(a);
}

/*
 * metrics.c — the metric families (one table), their series and the text exposition.
 *
 * DESIGN
 * - A family's series live in a fixed open-addressed table (GP_METRICS_SERIES_MAX slots,
 *   linear probing on a hash of the label values). A slot goes empty → writing → ready with a
 *   compare-and-set, so two threads meeting the same new label set agree on one slot without a
 *   lock; a reader that finds a slot being written waits the few instructions it takes.
 *   Slots are never freed (label sets are few and fixed), so a found slot stays valid.
 * - Values are 64-bit atomics updated with relaxed adds: counters and gauges directly,
 *   histograms as one counter per bucket (non-cumulative; the +Inf bucket last) plus the sum in
 *   millionths of the unit. The count is the sum of the buckets, so a scrape's _count always
 *   equals its le="+Inf" bucket even while writers run.
 * - The last free slot of a family is kept for the label set "other"/"other"/…, which takes
 *   every new label set once the table is full: a cardinality bug costs detail, not memory.
 */
#include "core/metrics.h"
#include "core/registry.h"
#include "core/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS_MAX 16

typedef enum {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM
} kind_t;

typedef struct family {
    const char *name; /* counters end in _total, as 0.0.4 exposes them */
    const char *help;
    kind_t kind;
    int nlabels;
    const char *labels[GP_METRICS_LABELS_MAX];
    const double *buckets; /* histograms: upper bounds, increasing; +Inf is implicit */
    int nbuckets;
    int64_t divisor; /* gauges: the stored integer is value * divisor (0 = 1) */
} family_t;

static const double run_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                     5,    10,   30,  60,   120, 300, 600};
static const double wait_buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300};
static const double http_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double commit_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   1};
#define BUCKETS(b) b, (int)(sizeof b / sizeof b[0])

static const family_t families[GP_M_COUNT] = {
    [GP_M_TASKS_CREATED] = {"genpulse_tasks_created_total",
                            "Tasks accepted by this gateway.",
                            KIND_COUNTER,
                            2,
                            {"task_type", "provider"},
                            NULL,
                            0,
                            0},
    [GP_M_TASKS_FINISHED] = {"genpulse_tasks_finished_total",
                             "Tasks that reached a final state in this process's workers.",
                             KIND_COUNTER,
                             3,
                             {"task_type", "provider", "outcome"},
                             NULL,
                             0,
                             0},
    [GP_M_TASK_RETRIES] = {"genpulse_task_retries_total",
                           "Attempts that failed and were scheduled to run again.",
                           KIND_COUNTER,
                           2,
                           {"task_type", "provider"},
                           NULL,
                           0,
                           0},
    [GP_M_TASK_RUN] = {"genpulse_task_run_seconds",
                       "Run time of one attempt.",
                       KIND_HISTOGRAM,
                       2,
                       {"task_type", "provider"},
                       BUCKETS(run_buckets),
                       0},
    [GP_M_TASK_QUEUE_WAIT] = {"genpulse_task_queue_wait_seconds",
                              "Time from a task being ready to run to a worker claiming it.",
                              KIND_HISTOGRAM,
                              2,
                              {"task_type", "provider"},
                              BUCKETS(wait_buckets),
                              0},
    [GP_M_QUEUE_DEPTH] = {"genpulse_queue_depth",
                          "Tasks waiting in the dispatch queue and ready to run, by priority "
                          "(the Redis queue keeps priorities in four bands).",
                          KIND_GAUGE,
                          1,
                          {"priority"},
                          NULL,
                          0,
                          0},
    [GP_M_QUEUE_DELAYED] = {"genpulse_queue_delayed",
                            "Tasks in the dispatch queue waiting for their retry backoff.",
                            KIND_GAUGE,
                            0,
                            {0},
                            NULL,
                            0,
                            0},
    [GP_M_WORKERS_ALIVE] = {"genpulse_workers_alive",
                            "Worker processes heartbeating (every process sees the same set).",
                            KIND_GAUGE,
                            0,
                            {0},
                            NULL,
                            0,
                            0},
    [GP_M_WORKER_SLOTS] = {"genpulse_worker_slots",
                           "Task slots of this process's worker pool.",
                           KIND_GAUGE,
                           0,
                           {0},
                           NULL,
                           0,
                           0},
    [GP_M_WORKER_SLOTS_BUSY] = {"genpulse_worker_slots_busy",
                                "Task slots of this process running an attempt.",
                                KIND_GAUGE,
                                0,
                                {0},
                                NULL,
                                0,
                                0},
    [GP_M_HTTP_REQUESTS] = {"genpulse_http_requests_total",
                            "HTTP requests answered, by route pattern and status.",
                            KIND_COUNTER,
                            3,
                            {"method", "route", "status"},
                            NULL,
                            0,
                            0},
    [GP_M_HTTP_DURATION] = {"genpulse_http_request_duration_seconds",
                            "Time from a request's headers to its response being sent.",
                            KIND_HISTOGRAM,
                            2,
                            {"method", "route"},
                            BUCKETS(http_buckets),
                            0},
    [GP_M_SSE_STREAMS] =
        {"genpulse_sse_streams", "Server-sent event streams open.", KIND_GAUGE, 0, {0}, NULL, 0, 0},
    [GP_M_COMMIT_BATCH] = {"genpulse_commit_batch_size",
                           "State changes applied in one store transaction (group commit).",
                           KIND_HISTOGRAM,
                           0,
                           {0},
                           BUCKETS(batch_buckets),
                           0},
    [GP_M_COMMIT_DURATION] = {"genpulse_commit_duration_seconds",
                              "Time of one store transaction.",
                              KIND_HISTOGRAM,
                              0,
                              {0},
                              BUCKETS(commit_buckets),
                              0},
    [GP_M_COMMIT_FAILURES] = {"genpulse_commit_failures_total",
                              "Store transactions that failed as a whole.",
                              KIND_COUNTER,
                              0,
                              {0},
                              NULL,
                              0,
                              0},
    [GP_M_PROVIDER_CALLS] = {"genpulse_provider_requests_total",
                             "Requests to a provider's API (with their retries), by the status "
                             "class of the last answer (1xx..5xx, or error: none came).",
                             KIND_COUNTER,
                             2,
                             {"provider", "code"},
                             NULL,
                             0,
                             0},
    [GP_M_PROVIDER_RETRIES] = {"genpulse_provider_retries_total",
                               "Provider API requests sent again after a failed attempt.",
                               KIND_COUNTER,
                               1,
                               {"provider"},
                               NULL,
                               0,
                               0},
    [GP_M_PROVIDER_THROTTLED] = {"genpulse_provider_rate_limited_total",
                                 "Provider API answers with status 429.",
                                 KIND_COUNTER,
                                 1,
                                 {"provider"},
                                 NULL,
                                 0,
                                 0},
    [GP_M_WEBHOOK_DELIVERIES] = {"genpulse_webhook_attempts_total",
                                 "Webhook delivery attempts, by what they left: succeeded, "
                                 "retry (another attempt is scheduled) or failed (given up).",
                                 KIND_COUNTER,
                                 1,
                                 {"outcome"},
                                 NULL,
                                 0,
                                 0},
    [GP_M_WEBHOOK_ATTEMPT_DURATION] = {"genpulse_webhook_attempt_duration_seconds",
                                       "Time of one webhook HTTP attempt.",
                                       KIND_HISTOGRAM,
                                       0,
                                       {0},
                                       BUCKETS(http_buckets),
                                       0},
    [GP_M_START_TIME] = {"process_start_time_seconds",
                         "Start time of the process since the unix epoch in seconds.",
                         KIND_GAUGE,
                         0,
                         {0},
                         NULL,
                         0,
                         1000},
    [GP_M_BUILD_INFO] = {"genpulse_build_info",
                         "The running version; the value is always 1.",
                         KIND_GAUGE,
                         1,
                         {"version"},
                         NULL,
                         0,
                         0},
};

enum {
    SLOT_EMPTY,
    SLOT_WRITING,
    SLOT_READY
};

typedef struct series {
    atomic_int state;
    char labels[GP_METRICS_LABELS_MAX][GP_METRICS_LABEL_LEN];
    _Atomic int64_t value;                    /* counters, gauges */
    _Atomic uint64_t bucket[BUCKETS_MAX + 1]; /* histograms; [nbuckets] = +Inf */
    _Atomic uint64_t sum_micro;
} series_t;

typedef struct table {
    atomic_int used;
    series_t slot[GP_METRICS_SERIES_MAX];
} table_t;

static table_t tables[GP_M_COUNT];
static bool g_enabled = true;

/* ---------------------------------------------------------------- series lookup */

/* A label value as stored: its first GP_METRICS_LABEL_LEN - 1 bytes. */
typedef struct label_in {
    const char *p;
    size_t n;
} label_in_t;

static uint64_t hash_labels(const label_in_t *v, int n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < v[i].n; k++)
            h = (h ^ (unsigned char)v[i].p[k]) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL; /* separator: ("ab","") ≠ ("a","b") */
    }
    return h;
}

static bool same_labels(const series_t *s, const label_in_t *v, int n)
{
    for (int i = 0; i < n; i++) /* stored values are NUL-padded */
        if (s->labels[i][v[i].n] != '\0' || memcmp(s->labels[i], v[i].p, v[i].n) != 0)
            return false;
    return true;
}

static bool is_other(const label_in_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i].n != 5 || memcmp(v[i].p, "other", 5) != 0)
            return false;
    return true;
}

static const label_in_t other_labels[GP_METRICS_LABELS_MAX] = {
    {"other", 5}, {"other", 5}, {"other", 5}};

/* The ready slot for the label values v, inserting it if new. */
static series_t *find_in(gp_metric_t m, const label_in_t *v, int n)
{
    table_t *t = &tables[m];
    size_t i = (size_t)(hash_labels(v, n) % GP_METRICS_SERIES_MAX);
    for (size_t probes = 0; probes < GP_METRICS_SERIES_MAX; probes++) {
        series_t *s = &t->slot[i];
        int st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == SLOT_EMPTY) {
            /* Keep the last slot for "other": a full table still has somewhere to count. */
            if (!is_other(v, n) && atomic_load(&t->used) >= GP_METRICS_SERIES_MAX - 1)
                return find_in(m, other_labels, n);
            int expect = SLOT_EMPTY;
            if (atomic_compare_exchange_strong(&s->state, &expect, SLOT_WRITING)) {
                atomic_fetch_add(&t->used, 1);
                for (int k = 0; k < n; k++) {
                    memset(s->labels[k], 0, GP_METRICS_LABEL_LEN);
                    memcpy(s->labels[k], v[k].p, v[k].n);
                }
                atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
                return s;
            }
            st = expect;
        }
        while (st == SLOT_WRITING)
            st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (same_labels(s, v, n))
            return s;
        i = (i + 1) % GP_METRICS_SERIES_MAX;
    }
    /* Full (two new label sets raced for the last free slots): count under "other". */
    return is_other(v, n) ? NULL : find_in(m, other_labels, n);
}

static series_t *find(gp_metric_t m, const char *l1, const char *l2, const char *l3)
{
    const char *in[GP_METRICS_LABELS_MAX] = {l1, l2, l3};
    label_in_t v[GP_METRICS_LABELS_MAX];
    int n = families[m].nlabels;
    for (int i = 0; i < n; i++) {
        v[i].p = in[i] ? in[i] : "";
        size_t len = strnlen(v[i].p, GP_METRICS_LABEL_LEN - 1);
        if (v[i].p[len] != '\0') /* cut: not inside a UTF-8 sequence (promtool wants UTF-8) */
            while (len > 0 && ((unsigned char)v[i].p[len] & 0xC0) == 0x80)
                len--;
        v[i].n = len;
    }
    return find_in(m, v, n);
}

/* ---------------------------------------------------------------- recording */

static void touch_unlabelled(void)
{
    for (int m = 0; m < GP_M_COUNT; m++)
        if (families[m].nlabels == 0)
            find((gp_metric_t)m, NULL, NULL, NULL);
}

void gp_metrics_setup(bool enabled, const char *version, int64_t started_at_ms)
{
    g_enabled = enabled;
    touch_unlabelled();
    gp_metrics_set(GP_M_START_TIME, started_at_ms, NULL, NULL, NULL);
    gp_metrics_set(GP_M_BUILD_INFO, 1, version, NULL, NULL);
}

bool gp_metrics_enabled(void)
{
    return g_enabled;
}

void gp_metrics_add(gp_metric_t m, int64_t n, const char *l1, const char *l2, const char *l3)
{
    if (!g_enabled || m < 0 || m >= GP_M_COUNT)
        return;
    series_t *s = find(m, l1, l2, l3);
    if (s)
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void gp_metrics_set(gp_metric_t m, int64_t v, const char *l1, const char *l2, const char *l3)
{
    if (m < 0 || m >= GP_M_COUNT)
        return;
    series_t *s = find(m, l1, l2, l3);
    if (s)
        atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

void gp_metrics_observe(gp_metric_t m, double v, const char *l1, const char *l2)
{
    if (!g_enabled || m < 0 || m >= GP_M_COUNT || families[m].kind != KIND_HISTOGRAM)
        return;
    const family_t *f = &families[m];
    if (!(v > 0)) /* also NaN */
        v = 0;
    int b = 0;
    while (b < f->nbuckets && v > f->buckets[b])
        b++;
    series_t *s = find(m, l1, l2, NULL);
    if (!s)
        return;
    double micro = v * 1e6;
    uint64_t add = micro >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)llround(micro);
    atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_micro, add, memory_order_relaxed);
}

double gp_metrics_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void gp_metrics_task_labels(const char *task_type, const char *provider, const char **tt_out,
                            const char **prov_out)
{
    const gp_task_type_t *t = task_type ? gp_registry_task_type(task_type) : NULL;
    const gp_provider_t *p = t && provider ? gp_registry_provider(t, provider) : NULL;
    *tt_out = t ? t->name : "other";
    *prov_out = p ? p->name : "other";
}

void gp_metrics_reset(void)
{
    memset(tables, 0, sizeof tables);
    touch_unlabelled();
}

/* ---------------------------------------------------------------- exposition */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void reserve(buf_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np)
        abort(); /* the OOM policy of gp_xmalloc */
    b->p = np;
    b->cap = cap;
}

static void put(buf_t *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf_t *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

size_t gp_metrics_escape_label(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, '\0'};
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '"')
            rep = "\\\"";
        else if (*s == '\n')
            rep = "\\n";
        else
            rep = one;
        size_t n = strlen(rep);
        if (o + n >= cap)
            break;
        memcpy(out + o, rep, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

/* HELP text escapes only backslash and newline (0.0.4). */
static void put_help(buf_t *b, const family_t *f)
{
    putf(b, "# HELP %s ", f->name);
    for (const char *s = f->help; *s; s++) {
        if (*s == '\\')
            puts_(b, "\\\\");
        else if (*s == '\n')
            puts_(b, "\\n");
        else
            put(b, s, 1);
    }
    static const char *const types[] = {"counter", "gauge", "histogram"};
    putf(b, "\n# TYPE %s %s\n", f->name, types[f->kind]);
}

/* a="x",b="y" for a series (escaped once, reused by every line of the series). */
static size_t label_text(const family_t *f, const series_t *s, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < f->nlabels && o < cap; i++) {
        char esc[GP_METRICS_LABEL_LEN * 2 + 1];
        gp_metrics_escape_label(s->labels[i], esc, sizeof esc);
        int n = snprintf(out + o, cap - o, "%s%s=\"%s\"", i ? "," : "", f->labels[i], esc);
        o = n < 0 ? o : o + (size_t)n;
    }
    return o < cap ? o : cap - 1;
}

/* name+suffix{labels[,le="…"]} — braces only when there is something inside. */
static void put_name(buf_t *b, const family_t *f, const char *suffix, const char *labels,
                     size_t labels_len, const char *le)
{
    puts_(b, f->name);
    puts_(b, suffix);
    if (!labels_len && !le)
        return;
    put(b, "{", 1);
    put(b, labels, labels_len);
    if (le) {
        if (labels_len)
            put(b, ",", 1);
        puts_(b, "le=\"");
        puts_(b, le);
        put(b, "\"", 1);
    }
    put(b, "}", 1);
}

static void put_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, " %llu\n", (unsigned long long)v);
    put(b, tmp, (size_t)n);
}

/* v / divisor in decimal, exactly (divisor a power of ten). */
static void put_scaled(buf_t *b, int64_t v, int64_t divisor)
{
    if (divisor <= 1) {
        putf(b, "%lld", (long long)v);
        return;
    }
    int digits = 0;
    for (int64_t d = divisor; d > 1; d /= 10)
        digits++;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    putf(b, "%s%llu.%0*llu", v < 0 ? "-" : "", (unsigned long long)(mag / (uint64_t)divisor),
         digits, (unsigned long long)(mag % (uint64_t)divisor));
}

static void put_histogram(buf_t *b, const family_t *f, const series_t *s, const char *labels,
                          size_t labels_len)
{
    uint64_t cum = 0;
    for (int i = 0; i <= f->nbuckets; i++) {
        cum += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
        char le[32];
        if (i < f->nbuckets)
            snprintf(le, sizeof le, "%g", f->buckets[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        put_name(b, f, "_bucket", labels, labels_len, le);
        put_u64(b, cum);
    }
    uint64_t sum = atomic_load_explicit(&s->sum_micro, memory_order_relaxed);
    put_name(b, f, "_sum", labels, labels_len, NULL);
    put(b, " ", 1);
    put_scaled(b, (int64_t)(sum & INT64_MAX), 1000000);
    put(b, "\n", 1);
    put_name(b, f, "_count", labels, labels_len, NULL);
    put_u64(b, cum);
}

char *gp_metrics_render(size_t *len)
{
    buf_t b = {0};
    reserve(&b, 16384);
    for (int m = 0; m < GP_M_COUNT; m++) {
        const family_t *f = &families[m];
        put_help(&b, f);
        for (size_t i = 0; i < GP_METRICS_SERIES_MAX; i++) {
            const series_t *s = &tables[m].slot[i];
            if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_READY)
                continue;
            char labels[GP_METRICS_LABELS_MAX * (GP_METRICS_LABEL_LEN * 2 + 40)];
            size_t labels_len = label_text(f, s, labels, sizeof labels);
            if (f->kind == KIND_HISTOGRAM) {
                put_histogram(&b, f, s, labels, labels_len);
                continue;
            }
            put_name(&b, f, "", labels, labels_len, NULL);
            put(&b, " ", 1);
            put_scaled(&b, atomic_load_explicit(&s->value, memory_order_relaxed), f->divisor);
            put(&b, "\n", 1);
        }
    }
    if (len)
        *len = b.len;
    return b.p;
}

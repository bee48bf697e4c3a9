/*
 * e2e.c — end-to-end echo throughput of a running GenPulse server.
 *
 *   e2e --port P [--host H] [--tasks 20000] [--connections 64] [--timeout 120]
 *
 * 1. Opens C keep-alive connections (one thread each) and waits until all are connected.
 * 2. t0 = just before the first submit. The threads then POST /v1/tasks echo tasks as fast as
 *    the server answers (one request in flight per connection) until TASKS were sent, and keep
 *    every returned task id.
 * 3. Polls GET /v1/tasks/{id} for the last-submitted ids until they are terminal (cheap way to
 *    wait for the tail), then scans GET /v1/tasks?status=succeeded&limit=100 page by page,
 *    following next_cursor, and counts the submitted ids it finds with status "succeeded".
 *    The scan repeats until every accepted task is found. t_end = end of that complete scan.
 * 4. Prints key=value lines; e2e_rate = accepted / (t_end - t0). Nothing is subtracted: the
 *    submit phase, the wait for the tail and the final full scan are all inside the window.
 *
 * Exit status 0 whenever figures could be printed (also on timeout: complete=0), 2 on usage
 * or setup errors.
 */
#include "httpc.h"
#include "jwalk.h"

#include <pthread.h>
#include <stdatomic.h>

#define ID_MAX 64 /* task ids are UUIDs (36 chars); leave room */

typedef struct worker {
    pthread_t thread;
    hc_conn_t conn;
    int connected;
} worker_t;

static const char *g_host = "127.0.0.1";
static int g_port = 0;
static long g_tasks = 20000;
static int g_conns = 64;
static double g_timeout = 120;

static char (*g_ids)[ID_MAX]; /* id of task i ("" when its submit failed) */
static double *g_lat;         /* submit latency of task i, seconds (<0 when it failed) */
static atomic_long g_next;
static atomic_long g_errors;
static atomic_int g_first_error_logged;
static pthread_barrier_t g_ready;

static const char SUBMIT_BODY[] = "{\"task_type\":\"echo\",\"params\":{\"message\":\"hi\"}}";

/* ---- JSON callbacks ---------------------------------------------------------------- */

typedef struct top_fields {
    char id[ID_MAX];
    char status[32];
} top_fields_t;

static void top_scalar(void *user, int depth, const char *key, size_t kn, const char *v, size_t vn,
                       char type)
{
    top_fields_t *t = user;
    if (depth != 1 || type != 's')
        return;
    if (jw_key_is(key, kn, "id") && vn < ID_MAX && t->id[0] == '\0') {
        memcpy(t->id, v, vn);
        t->id[vn] = '\0';
    } else if (jw_key_is(key, kn, "status") && vn < sizeof t->status) {
        memcpy(t->status, v, vn);
        t->status[vn] = '\0';
    }
}

/* ---- id set -------------------------------------------------------------------------- */

typedef struct idset {
    size_t cap;     /* power of two */
    long *slot;     /* task index, -1 = empty */
    unsigned *seen; /* scan number that last found the id */
} idset_t;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void idset_init(idset_t *set, long n)
{
    set->cap = 1;
    while (set->cap < (size_t)n * 2 + 16)
        set->cap <<= 1;
    set->slot = malloc(set->cap * sizeof *set->slot);
    set->seen = calloc(set->cap, sizeof *set->seen);
    if (!set->slot || !set->seen)
        exit(2);
    for (size_t i = 0; i < set->cap; i++)
        set->slot[i] = -1;
    for (long i = 0; i < n; i++) {
        if (g_ids[i][0] == '\0')
            continue;
        size_t len = strlen(g_ids[i]);
        size_t h = fnv(g_ids[i], len) & (set->cap - 1);
        while (set->slot[h] >= 0 && strcmp(g_ids[set->slot[h]], g_ids[i]) != 0)
            h = (h + 1) & (set->cap - 1);
        set->slot[h] = i;
    }
}

/* Slot of id, or -1. */
static long idset_find(const idset_t *set, const char *id, size_t n)
{
    size_t h = fnv(id, n) & (set->cap - 1);
    while (set->slot[h] >= 0) {
        const char *have = g_ids[set->slot[h]];
        if (strlen(have) == n && memcmp(have, id, n) == 0)
            return (long)h;
        h = (h + 1) & (set->cap - 1);
    }
    return -1;
}

/* ---- list scan ---------------------------------------------------------------------- */

typedef struct scan_state {
    const idset_t *set;
    unsigned scan_no;
    char cur_id[ID_MAX];
    char cur_status[32];
    char cursor[1024];
    int cursor_null;
    long items;     /* task objects on the pages */
    long matching;  /* of which status matches the filter */
    long found_new; /* submitted ids found for the first time in this scan */
    long foreign;   /* ids this run did not submit */
} scan_state_t;

static void scan_scalar(void *user, int depth, const char *key, size_t kn, const char *v, size_t vn,
                        char type)
{
    scan_state_t *s = user;
    if (depth == 1 && jw_key_is(key, kn, "next_cursor")) {
        if (type == 's' && vn > 0 && vn < sizeof s->cursor) {
            memcpy(s->cursor, v, vn);
            s->cursor[vn] = '\0';
            s->cursor_null = 0;
        }
        return;
    }
    if (depth != 3 || type != 's')
        return;
    if (jw_key_is(key, kn, "id") && vn < ID_MAX) {
        memcpy(s->cur_id, v, vn);
        s->cur_id[vn] = '\0';
    } else if (jw_key_is(key, kn, "status") && vn < sizeof s->cur_status) {
        memcpy(s->cur_status, v, vn);
        s->cur_status[vn] = '\0';
    }
}

static const char *g_scan_filter = "succeeded";

static void scan_object_end(void *user, int depth)
{
    scan_state_t *s = user;
    if (depth != 3)
        return;
    s->items++;
    if (strcmp(s->cur_status, g_scan_filter) == 0) {
        s->matching++;
        if (s->set != NULL) {
            long h = idset_find(s->set, s->cur_id, strlen(s->cur_id));
            if (h < 0)
                s->foreign++;
            else if (s->set->seen[h] != s->scan_no) {
                s->set->seen[h] = s->scan_no;
                s->found_new++;
            }
        }
    }
    s->cur_id[0] = s->cur_status[0] = '\0';
}

static void url_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

typedef struct scan_result {
    int ok;
    long pages, items, matching, found, foreign;
} scan_result_t;

/* One full scan of GET /v1/tasks?status=FILTER. */
static scan_result_t full_scan(hc_conn_t *c, const idset_t *set, unsigned scan_no,
                               const char *filter)
{
    scan_result_t r = {.ok = 1};
    scan_state_t s = {.set = set, .scan_no = scan_no};
    char path[4096], enc[3200];
    long max_pages = g_tasks / 100 * 4 + 100;
    g_scan_filter = filter;
    for (;;) {
        if (s.cursor[0]) {
            url_encode(s.cursor, enc, sizeof enc);
            snprintf(path, sizeof path, "/v1/tasks?status=%s&limit=100&cursor=%s", filter, enc);
        } else {
            snprintf(path, sizeof path, "/v1/tasks?status=%s&limit=100", filter);
        }
        int st = hc_request(c, "GET", path, NULL);
        if (st != 200) {
            fprintf(stderr, "e2e: GET %s -> %d: %.300s\n", path, st, st > 0 ? c->body : "");
            r.ok = 0;
            break;
        }
        r.pages++;
        s.cursor_null = 1;
        s.cursor[0] = '\0';
        if (jwalk(c->body, c->body_len, &s, scan_scalar, scan_object_end) != 0) {
            fprintf(stderr, "e2e: unparsable list page: %.300s\n", c->body);
            r.ok = 0;
            break;
        }
        if (s.cursor_null || s.cursor[0] == '\0')
            break;
        if (r.pages > max_pages) {
            fprintf(stderr, "e2e: more than %ld pages, next_cursor seems to loop\n", max_pages);
            r.ok = 0;
            break;
        }
    }
    r.items = s.items;
    r.matching = s.matching;
    r.found = s.found_new;
    r.foreign = s.foreign;
    return r;
}

/* ---- submit phase --------------------------------------------------------------------- */

static void *submit_thread(void *arg)
{
    worker_t *w = arg;
    w->connected = hc_connect(&w->conn) == 0;
    if (w->connected)
        w->conn.connects = 1;
    pthread_barrier_wait(&g_ready);
    pthread_barrier_wait(&g_ready); /* main sets t0 in between */
    for (;;) {
        long i = atomic_fetch_add(&g_next, 1);
        if (i >= g_tasks)
            break;
        double t = hc_now();
        int st = hc_request(&w->conn, "POST", "/v1/tasks", SUBMIT_BODY);
        double dt = hc_now() - t;
        top_fields_t f;
        memset(&f, 0, sizeof f);
        if (st >= 200 && st < 300)
            jwalk(w->conn.body, w->conn.body_len, &f, top_scalar, NULL);
        if (st < 200 || st >= 300 || f.id[0] == '\0') {
            atomic_fetch_add(&g_errors, 1);
            g_lat[i] = -1;
            if (atomic_exchange(&g_first_error_logged, 1) == 0)
                fprintf(stderr, "e2e: first failed submit: status %d body %.300s\n", st,
                        st > 0 ? w->conn.body : "(no response)");
            continue;
        }
        memcpy(g_ids[i], f.id, sizeof f.id);
        g_lat[i] = dt;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: e2e --port P [--host H] [--tasks N] [--connections C] "
                    "[--timeout SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--host"))
            g_host = argv[++i];
        else if (!strcmp(argv[i], "--port"))
            g_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tasks"))
            g_tasks = atol(argv[++i]);
        else if (!strcmp(argv[i], "--connections"))
            g_conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout"))
            g_timeout = atof(argv[++i]);
        else
            usage();
    }
    if (g_port <= 0 || g_tasks <= 0 || g_conns <= 0)
        usage();

    g_ids = calloc((size_t)g_tasks, sizeof *g_ids);
    g_lat = calloc((size_t)g_tasks, sizeof *g_lat);
    worker_t *workers = calloc((size_t)g_conns, sizeof *workers);
    if (!g_ids || !g_lat || !workers)
        return 2;
    pthread_barrier_init(&g_ready, NULL, (unsigned)g_conns + 1);
    for (int i = 0; i < g_conns; i++) {
        hc_init(&workers[i].conn, g_host, g_port);
        if (pthread_create(&workers[i].thread, NULL, submit_thread, &workers[i]) != 0) {
            fprintf(stderr, "e2e: pthread_create failed\n");
            return 2;
        }
    }
    pthread_barrier_wait(&g_ready);
    int connected = 0;
    for (int i = 0; i < g_conns; i++)
        connected += workers[i].connected;
    double t0 = hc_now();
    pthread_barrier_wait(&g_ready);
    unsigned long connects = 0, reconnects = 0;
    for (int i = 0; i < g_conns; i++) {
        pthread_join(workers[i].thread, NULL);
        connects += workers[i].conn.connects;
        reconnects += workers[i].conn.reconnects;
        hc_close(&workers[i].conn);
    }
    double t_submitted = hc_now();
    long errors = atomic_load(&g_errors);
    long accepted = g_tasks - errors;

    /* Submit latency percentiles (successful submits). */
    double *lat = malloc((size_t)accepted * sizeof *lat + 1);
    long nl = 0;
    for (long i = 0; i < g_tasks; i++)
        if (g_lat[i] >= 0 && g_ids[i][0])
            lat[nl++] = g_lat[i];
    qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
    double p50 = nl ? lat[(long)(0.50 * (double)(nl - 1))] : 0;
    double p99 = nl ? lat[(long)(0.99 * (double)(nl - 1))] : 0;
    free(lat);

    printf("connections=%d connected=%d\n", g_conns, connected);
    printf("tasks=%ld accepted=%ld submit_errors=%ld\n", g_tasks, accepted, errors);
    printf("submit_secs=%.3f submit_rate=%.1f submit_p50_ms=%.2f submit_p99_ms=%.2f "
           "tcp_connects=%lu failed_exchanges_retried=%lu\n",
           t_submitted - t0, (double)accepted / (t_submitted - t0), p50 * 1e3, p99 * 1e3, connects,
           reconnects);
    fflush(stdout);

    hc_conn_t c;
    hc_init(&c, g_host, g_port);
    double deadline = t0 + g_timeout;

    /* Wait for the tail: the last-submitted accepted ids (up to one per connection). */
    enum {
        TAIL = 64
    };
    long tail[TAIL];
    int ntail = 0;
    for (long i = g_tasks - 1; i >= 0 && ntail < TAIL; i--)
        if (g_ids[i][0])
            tail[ntail++] = i;
    int tail_left = ntail;
    long tail_failed = 0;
    char path[256];
    while (tail_left > 0 && hc_now() < deadline) {
        for (int k = 0; k < ntail; k++) {
            if (tail[k] < 0)
                continue;
            snprintf(path, sizeof path, "/v1/tasks/%s", g_ids[tail[k]]);
            int st = hc_request(&c, "GET", path, NULL);
            top_fields_t f;
            memset(&f, 0, sizeof f);
            if (st == 200)
                jwalk(c.body, c.body_len, &f, top_scalar, NULL);
            if (!strcmp(f.status, "succeeded") || !strcmp(f.status, "failed") ||
                !strcmp(f.status, "canceled")) {
                if (strcmp(f.status, "succeeded") != 0) {
                    tail_failed++;
                    fprintf(stderr, "e2e: task %s ended %s: %.300s\n", g_ids[tail[k]], f.status,
                            c.body);
                }
                tail[k] = -1;
                tail_left--;
            }
        }
        if (tail_left > 0)
            usleep(10000);
    }
    double t_tail = hc_now();
    printf("tail_ids=%d tail_terminal_secs=%.3f tail_not_succeeded=%ld\n", ntail, t_tail - t0,
           tail_failed);
    fflush(stdout);

    /* Full scans until every accepted id is listed as succeeded. */
    idset_t set;
    idset_init(&set, g_tasks);
    unsigned scan_no = 0;
    scan_result_t r = {0};
    double t_end = 0, scan_start = 0, last_scan_secs = 0;
    int complete = 0;
    while (hc_now() < deadline) {
        scan_start = hc_now();
        r = full_scan(&c, &set, ++scan_no, "succeeded");
        last_scan_secs = hc_now() - scan_start;
        if (!r.ok)
            break;
        if (r.found >= accepted) {
            t_end = hc_now();
            complete = 1;
            break;
        }
        usleep(50000);
    }
    printf("scans=%u last_scan_secs=%.3f last_scan_pages=%ld listed_succeeded=%ld "
           "submitted_ids_found=%ld foreign_ids=%ld\n",
           scan_no, last_scan_secs, r.pages, r.matching, r.found, r.foreign);
    if (complete) {
        printf("complete=1 e2e_secs=%.3f e2e_rate=%.1f\n", t_end - t0,
               (double)accepted / (t_end - t0));
    } else {
        printf("complete=0 e2e_secs=%.3f e2e_rate=0\n", hc_now() - t0);
        /* Where are the others? */
        const char *states[] = {"pending", "processing", "failed", "canceled"};
        for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
            scan_result_t o = full_scan(&c, NULL, 0, states[k]);
            printf("incomplete_%s=%ld%s\n", states[k], o.matching, o.ok ? "" : " (scan failed)");
        }
    }
    hc_close(&c);
    return 0;
}

/*
 * webhooks.c — the webhook delivery loop (see webhooks.h).
 *
 * DESIGN
 * - The outbox in the store is the queue: nothing is held only in memory, so a killed
 *   process loses no delivery. Each of --webhook-threads threads claims a few due rows
 *   (leased for LEASE_MS, longer than one attempt can take), delivers them one by one and
 *   records each attempt, then claims again; with nothing due it sleeps on a condvar until
 *   gp_webhooks_wake (a commit added rows in this process) or --webhook-poll-ms passes
 *   (retries falling due, rows other processes added). The claim reads the (status,
 *   next_attempt_at) index, never the whole table.
 * - A killed attempt leaves its row leased; it is due again when the lease ends (at start,
 *   an embedded store ends every lease at once: no other process can hold one).
 * - The body is rendered on the first attempt from the task as it is then and stored, so
 *   retries send the same bytes; webhook-id is the row's id; webhook-timestamp and the
 *   signature are made per attempt. The signing secret is read per attempt too (a rotated
 *   secret signs the next attempt).
 * - SSRF: CURLOPT_OPENSOCKETFUNCTION sees the address curl is about to connect to (after
 *   its own resolution), so a DNS answer that changes between a check and the connect
 *   cannot slip through. No proxy (an environment proxy would connect for us), no
 *   redirects, http and https only.
 */
#include "runtime/webhooks.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/net_guard.h"
#include "core/util.h"
#include "core/webhook.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define LEASE_MS 20000 /* > TOTAL_TIMEOUT_MS: an attempt never outlives its lease */
#define CLAIM_BATCH 4
#define LEASE_MARGIN_MS 3000 /* for the store calls around an attempt */
#define CONNECT_TIMEOUT_MS 5000
#define TOTAL_TIMEOUT_MS 15000
#define RESPONSE_CAP (64 * 1024)
#define EXCERPT_CAP 1024
#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)
#define N_FORMATS 2

static struct {
    gp_webhook_render_fn fn;
    void *ctx;
} renderers[N_FORMATS];

struct gp_webhooks {
    gp_runtime_t *rt;
    double scale;
    bool allow_private;
    int64_t poll_ms;
    size_t n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    atomic_bool abort_io; /* set at stop: attempts in flight end at once */
    atomic_uint started;  /* threads started: the first one is the poller */
    uint64_t wakes;       /* under lock: bumped by gp_webhooks_wake */
};

static _Atomic(gp_webhooks_t *) running;

void gp_webhooks_set_renderer(int format, gp_webhook_render_fn fn, void *ctx)
{
    if (format < 0 || format >= N_FORMATS)
        return;
    renderers[format].fn = fn;
    renderers[format].ctx = ctx;
}

void gp_webhooks_wake(void)
{
    gp_webhooks_t *w = atomic_load(&running);
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->wakes++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* ---- rendering ---- */

char *gp_webhooks_render(gp_runtime_t *rt, const gp_webhook_delivery_t *d, const gp_task_t *t)
{
    (void)rt;
    int format = d->format >= 0 && d->format < N_FORMATS && renderers[d->format].fn
                     ? d->format
                     : GP_WEBHOOK_FORMAT_TASK;
    if (!renderers[format].fn)
        return NULL;
    json_t *data = renderers[format].fn(renderers[format].ctx, t);
    if (!data)
        return NULL;
    json_t *body = data;
    if (format == GP_WEBHOOK_FORMAT_TASK) {
        char when[40];
        gp_format_time(d->created_at, when, sizeof when);
        body = json_pack("{s:s, s:s, s:o}", "type", d->event_type, "timestamp", when, "data", data);
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

/* ---- one HTTP attempt ---- */

typedef struct attempt_io {
    gp_webhooks_t *w;
    bool allow_private;
    bool refused;
    char *buf;
    size_t len;
    size_t seen;
    int64_t retry_after_ms; /* -1 = none */
} attempt_io_t;

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    attempt_io_t *io = arg;
    (void)purpose;
    if (!io->allow_private && gp_addr_is_private(&addr->addr)) {
        io->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    attempt_io_t *io = arg;
    return atomic_load(&io->w->abort_io) ? 1 : 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    attempt_io_t *io = arg;
    size_t n = size * nmemb;
    io->seen += n;
    if (io->seen > RESPONSE_CAP)
        return 0; /* stop reading: the answer's status is what counts */
    if (io->len < EXCERPT_CAP) {
        size_t take = n < EXCERPT_CAP - io->len ? n : EXCERPT_CAP - io->len;
        memcpy(io->buf + io->len, data, take);
        io->len += take;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    attempt_io_t *io = arg;
    size_t n = size * nmemb;
    if (n > 12 && !strncasecmp(data, "retry-after:", 12)) {
        char v[64];
        size_t m = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
        memcpy(v, data + 12, m);
        v[m] = '\0';
        char *end;
        long long s = strtoll(v, &end, 10);
        if (end != v && s >= 0) /* seconds; an HTTP-date is ignored */
            io->retry_after_ms = s * 1000 < RETRY_AFTER_MAX_MS ? s * 1000 : RETRY_AFTER_MAX_MS;
    }
    return n;
}

/* Keeps printable ASCII, newlines and tabs (the excerpt is stored as text). */
static void excerpt_clean(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f)
            s[i] = '?';
    }
    s[n] = '\0';
}

/* POSTs body to url signed with secret; fills a (status_code, error, response, duration). */
static void post(gp_webhooks_t *w, CURL *c, const gp_webhook_delivery_t *d, const char *url,
                 const char *secret, const char *body, gp_webhook_attempt_t *a,
                 int64_t *retry_after_ms)
{
    int64_t ts = gp_now_ms() / 1000;
    char sig[GP_WH_SIGNATURE_LEN];
    if (gp_webhook_sign(secret, d->id, ts, body, strlen(body), sig) != 0) {
        snprintf(a->error, sizeof a->error, "the signing secret is not valid base64");
        return;
    }
    char h_id[96], h_ts[64], h_sig[96];
    snprintf(h_id, sizeof h_id, "webhook-id: %s", d->id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "User-Agent: genpulse-webhooks/1");
    hdrs = curl_slist_append(hdrs, h_id);
    hdrs = curl_slist_append(hdrs, h_ts);
    hdrs = curl_slist_append(hdrs, h_sig);
    hdrs = curl_slist_append(hdrs, "Expect:");
    char excerpt[EXCERPT_CAP + 1];
    attempt_io_t io = {
        .w = w, .allow_private = w->allow_private, .buf = excerpt, .retry_after_ms = -1};
    curl_easy_reset(c); /* keeps the thread's open connections (keep-alive) */
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)TOTAL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &io);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &io);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &io);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &io);
    double t0 = gp_metrics_clock();
    CURLcode rc = curl_easy_perform(c);
    double took = gp_metrics_clock() - t0;
    a->duration_ms = (int64_t)(took * 1000.0);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    a->status_code = (int)status;
    if (io.refused)
        snprintf(a->error, sizeof a->error,
                 "refused: the URL resolves to a loopback, private or link-local address "
                 "(see --webhook-allow-private)");
    else if (rc == CURLE_WRITE_ERROR && status > 0)
        ; /* the body passed RESPONSE_CAP: the status stands */
    else if (rc != CURLE_OK)
        snprintf(a->error, sizeof a->error, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    else if (status >= 300 && status < 400)
        snprintf(a->error, sizeof a->error, "redirect (%ld) not followed", status);
    else if (status < 200 || status >= 300)
        snprintf(a->error, sizeof a->error, "HTTP %ld", status);
    excerpt_clean(excerpt, io.len);
    snprintf(a->response, sizeof a->response, "%s", excerpt);
    *retry_after_ms = io.retry_after_ms;
    curl_slist_free_all(hdrs);
    gp_metrics_observe(GP_M_WEBHOOK_ATTEMPT_DURATION, took, NULL, NULL);
}

/* ---- one delivery ---- */

static void record(gp_webhooks_t *w, const gp_webhook_delivery_t *d, gp_webhook_attempt_t *a,
                   const gp_webhook_outcome_t *o)
{
    gp_store_t *st = w->rt->store;
    int rc = st->vt->wh_record(st, d->id, a, o);
    if (rc != 0)
        gp_log(GP_LOG_ERROR, d->task_id, "webhook %s: attempt %d not recorded: %s", d->id,
               a->attempt, gp_err_code(rc));
    const char *outcome = !strcmp(o->status, "succeeded") ? "succeeded"
                          : !strcmp(o->status, "failed")  ? "failed"
                                                          : "retry";
    gp_metrics_inc(GP_M_WEBHOOK_DELIVERIES, outcome, NULL, NULL);
}

/* A failure before any HTTP: recorded as the attempt, and the delivery ends. */
static void give_up(gp_webhooks_t *w, const gp_webhook_delivery_t *d, const char *why)
{
    gp_webhook_attempt_t a = {.attempt = d->attempts + 1, .started_at = gp_now_ms()};
    snprintf(a.error, sizeof a.error, "%s", why);
    gp_webhook_outcome_t o = {.status = "failed"};
    gp_log(GP_LOG_WARN, d->task_id, "webhook %s: not delivered: %s", d->id, why);
    record(w, d, &a, &o);
}

/* The body to send into *out: stored, or rendered now and stored. 0; -GP_E_NOT_FOUND
 * (the task is gone) or -GP_E_INTERNAL (no body could be made), with why; other -GP_E_* (the
 * store is unavailable: try again later). */
static int payload_of(gp_webhooks_t *w, const gp_webhook_delivery_t *d, char **out,
                      const char **why)
{
    if (d->payload) {
        *out = gp_xstrdup(d->payload);
        return 0;
    }
    gp_store_t *st = w->rt->store;
    gp_task_t t;
    int rc = gp_store_get(st, d->task_id, &t);
    if (rc != 0) {
        *why = "the task no longer exists";
        return rc;
    }
    char *body = gp_webhooks_render(w->rt, d, &t);
    gp_task_clear(&t);
    if (!body) {
        *why = "the body could not be rendered";
        return -GP_E_INTERNAL;
    }
    if (st->vt->wh_set_payload(st, d->id, body) != 0)
        gp_log(GP_LOG_WARN, d->task_id, "webhook %s: payload not stored", d->id);
    *out = body;
    return 0;
}

static void deliver(gp_webhooks_t *w, CURL *c, const gp_webhook_delivery_t *d)
{
    gp_store_t *st = w->rt->store;
    char secret[GP_WH_SECRET_LEN] = "";
    char *url = NULL;
    bool endpoint = d->endpoint_id[0] != '\0';
    if (endpoint) {
        gp_webhook_endpoint_t e;
        int rc = st->vt->wh_endpoint_get(st, d->endpoint_id, &e);
        if (rc == -GP_E_NOT_FOUND || (rc == 0 && e.disabled)) {
            if (rc == 0)
                gp_webhook_endpoint_clear(&e);
            give_up(w, d, rc == 0 ? "the endpoint is disabled" : "the endpoint was deleted");
            return;
        }
        if (rc != 0)
            return; /* the store is down: the lease ends, and the row is due again */
        snprintf(secret, sizeof secret, "%s", e.secret);
        url = gp_xstrdup(e.url); /* the endpoint's URL now (it may have been changed) */
        gp_webhook_endpoint_clear(&e);
    } else {
        char candidate[GP_WH_SECRET_LEN];
        gp_webhook_secret_new(candidate);
        if (st->vt->wh_default_secret(st, d->owner, candidate, secret) != 0)
            return;
        url = gp_xstrdup(d->url);
    }
    const char *why = NULL;
    char *body = NULL;
    int prc = payload_of(w, d, &body, &why);
    if (prc != 0) {
        free(url);
        if (prc == -GP_E_NOT_FOUND || prc == -GP_E_INTERNAL)
            give_up(w, d, why);
        return; /* else the store is unavailable: due again when the lease ends */
    }
    gp_webhook_attempt_t a = {.attempt = d->attempts + 1, .started_at = gp_now_ms()};
    int64_t retry_after = -1;
    post(w, c, d, url, secret, body, &a, &retry_after);
    free(body);
    free(url);
    if (atomic_load(&w->abort_io))
        return; /* cut by the stop: left leased, so it is made again (at-least-once) */

    gp_webhook_outcome_t o = {.status = "failed"};
    bool ok = a.status_code >= 200 && a.status_code < 300 && !a.error[0];
    /* Intermediate events are not retried (Replicate's rule): a later one supersedes them. */
    bool intermediate =
        !strcmp(d->event_type, "task.output") || !strcmp(d->event_type, "task.logs");
    if (ok) {
        o.status = "succeeded";
    } else if (a.status_code == 410) {
        o.disable_endpoint = endpoint;
        o.reason = "410 Gone from the endpoint";
    } else if (!intermediate) {
        int64_t delay = gp_webhook_retry_delay_ms(a.attempt - d->round_start, w->scale,
                                                  ((uint64_t)gp_random_below(UINT32_MAX) << 32) |
                                                      gp_random_below(UINT32_MAX));
        if (delay >= 0) {
            if (retry_after > delay)
                delay = retry_after;
            o.status = "pending";
            o.next_attempt_at = gp_now_ms() + delay;
        }
    }
    if (!ok)
        gp_log(GP_LOG_INFO, d->task_id, "webhook %s (%s) attempt %d: %s%s", d->id, d->event_type,
               a.attempt, a.error[0] ? a.error : "failed",
               !strcmp(o.status, "pending") ? "; will retry" : "; giving up");
    record(w, d, &a, &o);
}

/* ---- threads ---- */

static void *delivery_main(void *arg)
{
    gp_webhooks_t *w = arg;
    pthread_setname_np(pthread_self(), "gp-webhooks");
    gp_store_t *st = w->rt->store;
    gp_webhook_delivery_t batch[CLAIM_BATCH];
    /* One thread polls (--webhook-poll-ms); the others sleep until woken: by a commit, or by
     * a thread that found more due than it can take. An idle loop costs one query a poll. */
    bool poller = atomic_fetch_add(&w->started, 1) == 0;
    /* The poller's view of the database (store's wh_wait): while it is unreachable, no claim
     * is tried, so the loop adds no failing queries (and no reconnect backoff) for others. */
    bool store_down = false;
    CURL *curl = curl_easy_init(); /* one per thread: its connections are reused */
    if (!curl)
        abort();
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool stop = w->stopping;
        uint64_t seen = w->wakes;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            break;
        size_t n = 0;
        if (store_down || st->vt->wh_claim(st, gp_now_ms(), LEASE_MS, batch, CLAIM_BATCH, &n) != 0)
            n = 0;
        if (n == CLAIM_BATCH)
            gp_webhooks_wake(); /* more may be due: the sleeping threads take their share */
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&w->lock);
            stop = w->stopping;
            pthread_mutex_unlock(&w->lock);
            /* An attempt starts only with time for it left on the lease (an earlier slow one
             * may have used it up): else another loop may take the row meanwhile, and the
             * receiver would get it twice at once. Left leased, it is due when that ends. */
            bool lease_ok =
                gp_now_ms() + TOTAL_TIMEOUT_MS + LEASE_MARGIN_MS <= batch[i].next_attempt_at;
            if (!stop && lease_ok) /* else left leased: due again when the lease ends */
                deliver(w, curl, &batch[i]);
            gp_webhook_delivery_clear(&batch[i]);
        }
        if (n == CLAIM_BATCH)
            continue; /* more may be due */
        pthread_mutex_lock(&w->lock);
        if (!w->stopping && w->wakes == seen) {
            if (poller && st->vt->wh_wait) {
                /* Other processes' commits announce their rows (PostgreSQL NOTIFY): wait
                 * for that, or the poll interval, off the lock. */
                pthread_mutex_unlock(&w->lock);
                store_down = st->vt->wh_wait(st, w->poll_ms) < 0;
                pthread_mutex_lock(&w->lock);
            } else if (poller) {
                struct timespec until = gp_deadline_in(CLOCK_REALTIME, w->poll_ms);
                pthread_cond_timedwait(&w->cond, &w->lock, &until);
            } else {
                pthread_cond_wait(&w->cond, &w->lock);
            }
        }
        pthread_mutex_unlock(&w->lock);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

gp_webhooks_t *gp_webhooks_start(gp_runtime_t *rt, char *err, size_t cap)
{
    const gp_settings_t *s = rt->settings;
    char *end = NULL;
    double scale = strtod(s->webhook_retry_scale ? s->webhook_retry_scale : "1", &end);
    if (!end || *end || !(scale >= 0.0001 && scale <= 100)) {
        snprintf(err, cap, "--webhook-retry-scale: must be a number from 0.0001 to 100");
        return NULL;
    }
    if (!rt->store->vt->wh_claim) {
        snprintf(err, cap, "webhooks: the store has no outbox");
        return NULL;
    }
    gp_webhooks_t *w = gp_xcalloc(1, sizeof *w);
    w->rt = rt;
    w->scale = scale;
    w->allow_private = s->webhook_allow_private != 0;
    w->poll_ms = s->webhook_poll_ms > 0 ? s->webhook_poll_ms : 1000;
    w->n_threads = (size_t)(s->webhook_threads > 0 ? s->webhook_threads : 1);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    bool embedded = !s->queue_url[0];
    if (embedded && rt->store->vt->wh_release_leases(rt->store) != 0)
        GP_WARN("webhooks: leases of the last run not released (they expire on their own)");
    w->threads = gp_xcalloc(w->n_threads, sizeof *w->threads);
    for (size_t i = 0; i < w->n_threads; i++)
        if (pthread_create(&w->threads[i], NULL, delivery_main, w) != 0)
            abort(); /* only fails on resource exhaustion at start */
    atomic_store(&running, w);
    GP_INFO("webhooks: delivery loop running (%zu thread(s)%s%s)", w->n_threads,
            w->allow_private ? ", private addresses allowed" : "",
            scale != 1.0 ? ", retry schedule scaled" : "");
    return w;
}

void gp_webhooks_stop(gp_webhooks_t *w)
{
    if (!w)
        return;
    atomic_store(&running, NULL);
    atomic_store(&w->abort_io, true);
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    free(w->threads);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

/* ---- progress events (worker side) ---- */

void gp_webhooks_progress(gp_runtime_t *rt, const gp_task_t *t, unsigned type, int64_t last_ms[2])
{
    gp_store_t *st = rt->store;
    if (!st->vt->wh_enqueue || (type != GP_WH_TYPE_OUTPUT && type != GP_WH_TYPE_LOGS))
        return;
    int slot = type == GP_WH_TYPE_OUTPUT ? 0 : 1;
    int64_t now = gp_mono_ms();
    if (last_ms[slot] && now - last_ms[slot] < GP_WH_PROGRESS_MIN_MS)
        return;
    last_ms[slot] = now;
    int added = 0;
    if (st->vt->wh_enqueue(st, t->id, type, gp_now_ms(), &added) == 0 && added > 0)
        gp_webhooks_wake();
}

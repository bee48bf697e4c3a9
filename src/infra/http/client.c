/* client.c — the shared HTTP client over libcurl (genpulse/http.h). */
#include "genpulse/http.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/net_guard.h"
#include "core/util.h"
#include "infra/http/http_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int64_t gp_http_now_ms(void)
{
    return gp_mono_ms();
}

const char *gp_http_strerror(int rc)
{
    switch (rc) {
    case GP_HTTP_OK: return "ok";
    case GP_HTTP_E_CONNECT: return "could not connect";
    case GP_HTTP_E_TIMEOUT: return "timed out";
    case GP_HTTP_E_CANCELED: return "canceled";
    case GP_HTTP_E_TOO_LARGE: return "response too large";
    case GP_HTTP_E_IO: return "local file error";
    case GP_HTTP_E_INVALID: return "invalid request";
    default: return "unknown error";
    }
}

bool gp_http_status_retryable(long status)
{
    return status == 408 || status == 425 || status == 429 || status >= 500;
}

void gp_http_response_free(gp_http_response_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    free(resp->content_type);
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

bool gp_http_header(const gp_http_response_t *resp, const char *name, char *out, size_t cap)
{
    if (!resp->headers || cap == 0)
        return false;
    size_t nl = strlen(name);
    for (const char *line = resp->headers; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
            const char *v = line + nl + 1;
            const char *ve = line + len;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t n = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        if (!end)
            break;
        line = end + 1;
    }
    return false;
}

/* ---- one transfer ------------------------------------------------------------------- */

typedef struct transfer {
    const gp_http_request_t *req;
    gp_http_response_t *resp;
    CURL *handle;
    size_t limit;
    FILE *file; /* download target, opened lazily once the status is known to be 2xx */
    bool too_large, file_error, refused_address;
    char *buf;
    size_t len, cap;
    char *hdr;
    size_t hdr_len, hdr_cap;
} transfer_t;

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 1024;
        while (nc < *len + n + 1)
            nc *= 2;
        char *grown = realloc(*buf, nc);
        if (!grown)
            abort();
        *buf = grown;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    transfer_t *t = arg;
    size_t n = size * nmemb;
    /* A new status line starts a new header block (redirects are off, but 100-continue and
     * proxies send several): keep only the last one. */
    if (n >= 5 && !strncmp(data, "HTTP/", 5))
        t->hdr_len = 0;
    if (t->hdr_len + n > 256 * 1024)
        return 0;
    append(&t->hdr, &t->hdr_len, &t->hdr_cap, data, n);
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    transfer_t *t = arg;
    size_t n = size * nmemb;
    if (t->len + n > t->limit) {
        t->too_large = true;
        return 0;
    }
    if (t->req->download_path) {
        /* Error bodies go to memory (to be read), success bodies to the file. */
        long status = 0;
        curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            if (!t->file) {
                t->file = fopen(t->req->download_path, "wb");
                if (!t->file) {
                    t->file_error = true;
                    return 0;
                }
            }
            if (fwrite(data, 1, n, t->file) != n) {
                t->file_error = true;
                return 0;
            }
            t->len += n;
            return n;
        }
    }
    if (t->len + n > GP_HTTP_DEFAULT_MAX_RESPONSE && t->req->download_path) {
        t->too_large = true;
        return 0;
    }
    append(&t->buf, &t->len, &t->cap, data, n);
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const gp_http_request_t *req = arg;
    if (req->cancel && req->cancel(req->cancel_arg))
        return 1;
    if (req->deadline_ms > 0 && gp_mono_ms() > req->deadline_ms)
        return 1;
    return 0;
}

static curl_socket_t open_public_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    transfer_t *t = arg;
    (void)purpose;
    if (gp_addr_is_private(&addr->addr)) {
        t->refused_address = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static bool url_ok(const char *url)
{
    return url && (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8));
}

/* Scheme, host and path only: queries and userinfo may carry secrets (presigned links). */
static void loggable_url(const char *url, char *out, size_t cap)
{
    const char *q = strpbrk(url, "?#");
    size_t n = q ? (size_t)(q - url) : strlen(url);
    const char *at = memchr(url, '@', n);
    const char *scheme_end = strstr(url, "://");
    if (at && scheme_end && at > scheme_end) {
        size_t pre = (size_t)(scheme_end + 3 - url);
        snprintf(out, cap, "%.*s%.*s", (int)pre, url, (int)(n - (size_t)(at + 1 - url)), at + 1);
        return;
    }
    snprintf(out, cap, "%.*s", (int)n, url);
}

static int64_t parse_retry_after(const gp_http_response_t *resp)
{
    char v[128];
    if (!gp_http_header(resp, "retry-after", v, sizeof v))
        return -1;
    char *end = NULL;
    errno = 0;
    double secs = strtod(v, &end);
    if (end != v && errno == 0 && secs >= 0) {
        while (*end == ' ')
            end++;
        if (!*end)
            return (int64_t)(secs * 1000.0);
    }
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    int64_t delta = ((int64_t)when - (int64_t)time(NULL)) * 1000;
    return delta > 0 ? delta : 0;
}

/* *maybe_processed: the request may have reached the server (the connection failed after it
 * was sent), so repeating a POST could run it twice. */
/* Timeouts, callbacks and safety options every transfer gets. */
static void set_transfer_options(CURL *h, const gp_http_request_t *req, transfer_t *t,
                                 struct curl_slist *hl, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(
        h, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : GP_HTTP_DEFAULT_CONNECT_MS));
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : GP_HTTP_DEFAULT_TIMEOUT_MS;
    if (req->deadline_ms > 0) {
        int64_t left = req->deadline_ms - gp_mono_ms();
        if (left < timeout)
            timeout = left > 1 ? (long)left : 1;
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "genpulse/0.1");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)req);
    /* Keep slow-but-alive transfers; kill ones stalled below 1 byte/s for 30 s. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    if (req->public_only) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, t);
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* a proxy would hide the real address */
    }
}

/* The method and the body (a file, bytes, or none). *upload gets the opened file. */
static int set_method_and_body(CURL *h, const gp_http_request_t *req, FILE **upload,
                               gp_http_response_t *resp)
{
    const char *method = req->method ? req->method : "GET";
    if (req->body_path) {
        *upload = fopen(req->body_path, "rb");
        if (!*upload) {
            snprintf(resp->error, sizeof resp->error, "cannot read %s", req->body_path);
            return GP_HTTP_E_IO;
        }
        fseeko(*upload, 0, SEEK_END);
        off_t size = ftello(*upload);
        fseeko(*upload, 0, SEEK_SET);
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, *upload);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        if (strcmp(method, "PUT") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (req->body || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
               !strcmp(method, "PATCH")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    return GP_HTTP_OK;
}

/* Turns libcurl's result into ours, with the reason in resp->error. */
static int transfer_result(const gp_http_request_t *req, const transfer_t *t, CURLcode cc,
                           long status, const char *errbuf, gp_http_response_t *resp,
                           bool *maybe_processed)
{
    int rc = GP_HTTP_OK;
    if (cc == CURLE_OK ||
        (cc == CURLE_WRITE_ERROR && status > 0 && !t->too_large && !t->file_error)) {
        resp->status = status;
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        bool canceled = req->cancel && req->cancel(req->cancel_arg);
        rc = canceled ? GP_HTTP_E_CANCELED : GP_HTTP_E_TIMEOUT;
        snprintf(resp->error, sizeof resp->error, "%s", canceled ? "canceled" : "deadline passed");
    } else if (t->refused_address) {
        rc = GP_HTTP_E_INVALID;
        snprintf(resp->error, sizeof resp->error,
                 "the URL resolves to a private or loopback address (not allowed for inputs)");
    } else if (t->too_large) {
        rc = GP_HTTP_E_TOO_LARGE;
        snprintf(resp->error, sizeof resp->error, "response larger than %zu bytes", t->limit);
    } else if (t->file_error) {
        rc = GP_HTTP_E_IO;
        snprintf(resp->error, sizeof resp->error, "cannot write %s", req->download_path);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = GP_HTTP_E_TIMEOUT;
        snprintf(resp->error, sizeof resp->error, "%s", errbuf[0] ? errbuf : "timed out");
    } else if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
        rc = GP_HTTP_E_INVALID;
        snprintf(resp->error, sizeof resp->error, "%s", errbuf[0] ? errbuf : "bad URL");
    } else {
        rc = GP_HTTP_E_CONNECT;
        *maybe_processed = cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST &&
                           cc != CURLE_COULDNT_RESOLVE_PROXY;
        snprintf(resp->error, sizeof resp->error, "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    return rc;
}

/* Moves the body and headers of a completed transfer into resp. */
static void fill_response(CURL *h, const gp_http_request_t *req, transfer_t *t, long status,
                          gp_http_response_t *resp)
{
    resp->body = t->buf;
    t->buf = NULL;
    resp->body_len = t->len;
    if (!resp->body && !(req->download_path && status >= 200 && status < 300)) {
        resp->body = gp_xstrdup("");
        resp->body_len = 0;
    }
    if (req->download_path && status >= 200 && status < 300 && t->len == 0) {
        /* empty success body: still leave an (empty) file behind */
        FILE *f = fopen(req->download_path, "wb");
        if (f)
            fclose(f);
    }
    resp->headers = t->hdr;
    t->hdr = NULL;
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) {
        resp->content_type = gp_xstrdup(ct);
        for (char *p = resp->content_type; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    resp->retry_after_ms = parse_retry_after(resp);
}

static int perform_once(const gp_http_request_t *req, gp_http_response_t *resp,
                        bool *maybe_processed)
{
    *maybe_processed = false;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(resp->error, sizeof resp->error, "curl_easy_init failed");
        return GP_HTTP_E_CONNECT;
    }
    transfer_t t = {.req = req, .resp = resp, .handle = h};
    t.limit = req->max_response_bytes ? req->max_response_bytes
              : req->download_path    ? (size_t)GP_HTTP_DEFAULT_MAX_DOWNLOAD
                                      : GP_HTTP_DEFAULT_MAX_RESPONSE;
    struct curl_slist *hl = NULL;
    for (const char *const *p = req->headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    FILE *upload = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    set_transfer_options(h, req, &t, hl, errbuf);
    int rc = set_method_and_body(h, req, &upload, resp);
    if (rc == GP_HTTP_OK) {
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (t.file && fclose(t.file) != 0)
            t.file_error = true;
        t.file = NULL;
        rc = transfer_result(req, &t, cc, status, errbuf, resp, maybe_processed);
        if (rc == GP_HTTP_OK)
            fill_response(h, req, &t, status, resp);
    }
    if (upload)
        fclose(upload);
    if (t.file)
        fclose(t.file);
    free(t.buf);
    free(t.hdr);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- retries and limits --------------------------------------------------------------- */

static gp_limiter_t *g_limiter; /* set once at start, before any worker thread */

void gp_http_set_limiter(gp_limiter_t *l)
{
    g_limiter = l;
}

/* Sleeps ms in short slices; false when canceled or the deadline passed. */
static bool sleep_ms(const gp_http_request_t *req, int64_t ms)
{
    int64_t end = gp_mono_ms() + ms;
    for (;;) {
        if (req->cancel && req->cancel(req->cancel_arg))
            return false;
        int64_t now = gp_mono_ms();
        if (req->deadline_ms > 0 && now >= req->deadline_ms)
            return false;
        if (now >= end)
            return true;
        int64_t slice = end - now < 50 ? end - now : 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool method_safe(const char *m)
{
    return !m || !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
           !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS");
}

int gp_http_do(const gp_http_request_t *req, gp_http_response_t *resp)
{
    pthread_once(&curl_once, curl_init_once);
    memset(resp, 0, sizeof *resp);
    resp->retry_after_ms = -1;
    if (!url_ok(req->url)) {
        snprintf(resp->error, sizeof resp->error, "only http:// and https:// URLs are allowed");
        return GP_HTTP_E_INVALID;
    }
    int max_attempts = req->max_attempts > 0 ? req->max_attempts : GP_HTTP_DEFAULT_MAX_ATTEMPTS;
    int base = req->retry_base_ms > 0 ? req->retry_base_ms : 500;
    int cap = req->retry_max_ms > 0 ? req->retry_max_ms : 30000;
    bool safe = method_safe(req->method) || req->retry_unsafe;
    char where[256];
    loggable_url(req->url, where, sizeof where);
    int rc = GP_HTTP_OK;
    int throttled = 0; /* survives the response resets below */
    for (int attempt = 1;; attempt++) {
        if (req->limit_key && req->limit_per_minute > 0 && g_limiter) {
            int lr = g_limiter->vt->take_token(g_limiter, req->limit_key, req->limit_per_minute,
                                               req->deadline_ms > 0 ? req->deadline_ms
                                                                    : gp_mono_ms() + 600000,
                                               req->cancel, req->cancel_arg);
            if (lr == -GP_E_CANCELED || lr == -GP_E_TIMEOUT) {
                snprintf(resp->error, sizeof resp->error, "waiting for the %s rate limit: %s",
                         req->limit_key, lr == -GP_E_CANCELED ? "canceled" : "deadline passed");
                resp->attempts = attempt - 1;
                return lr == -GP_E_CANCELED ? GP_HTTP_E_CANCELED : GP_HTTP_E_TIMEOUT;
            }
        }
        gp_http_response_free(resp);
        resp->retry_after_ms = -1;
        bool maybe_processed = false;
        rc = perform_once(req, resp, &maybe_processed);
        resp->attempts = attempt;
        throttled += rc == GP_HTTP_OK && resp->status == 429;
        resp->throttled = throttled;
        bool retry = false;
        if (rc == GP_HTTP_E_CONNECT)
            retry = safe || !maybe_processed;
        else if (rc == GP_HTTP_E_TIMEOUT)
            retry = safe && (req->deadline_ms <= 0 || gp_mono_ms() < req->deadline_ms);
        else if (rc == GP_HTTP_OK)
            retry = resp->status == 429 || resp->status == 503 ||
                    (safe && gp_http_status_retryable(resp->status));
        gp_log(GP_LOG_DEBUG, req->log_id, "http %s %s -> %ld%s%s (attempt %d)",
               req->method ? req->method : "GET", where, resp->status, rc ? " " : "",
               rc ? resp->error : "", attempt);
        if (!retry || attempt >= max_attempts)
            break;
        int64_t ceiling = (int64_t)base << (attempt - 1 < 20 ? attempt - 1 : 20);
        if (ceiling > cap)
            ceiling = cap;
        int64_t wait = (int64_t)gp_random_below((uint64_t)ceiling + 1);
        if (rc == GP_HTTP_OK && resp->retry_after_ms >= 0)
            wait = resp->retry_after_ms < cap ? resp->retry_after_ms : cap;
        if (req->deadline_ms > 0 && gp_mono_ms() + wait >= req->deadline_ms)
            break; /* the answer we have is the best we will get in time */
        gp_log(GP_LOG_INFO, req->log_id, "http %s %s: %s; retrying in %lld ms",
               req->method ? req->method : "GET", where,
               rc ? resp->error : (resp->status == 429 ? "throttled (429)" : "server error"),
               (long long)wait);
        if (!sleep_ms(req, wait)) {
            bool canceled = req->cancel && req->cancel(req->cancel_arg);
            if (canceled || rc != GP_HTTP_OK) {
                gp_http_response_free(resp);
                resp->retry_after_ms = -1;
                snprintf(resp->error, sizeof resp->error, "%s",
                         canceled ? "canceled" : "deadline passed");
                resp->attempts = attempt;
                resp->throttled = throttled;
                return canceled ? GP_HTTP_E_CANCELED : GP_HTTP_E_TIMEOUT;
            }
            break;
        }
    }
    return rc;
}

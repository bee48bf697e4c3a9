/*
 * s3.c — outputs in an S3 bucket (AWS S3 or any S3-compatible server), handed out as
 * presigned GET URLs. Every request goes through the shared HTTP client (timeouts, retries)
 * and is signed with SigV4 (src/infra/sign/sigv4.h).
 *
 * Storage URL:
 *   s3://[ACCESS_KEY:SECRET_KEY@][host[:port]]/bucket[/prefix][?option=value&...]
 *
 *   ACCESS_KEY, SECRET_KEY  percent-decoded (a '/' or '@' in a secret may stay raw, the last
 *                  '@' before the query ends the credentials). When absent: AWS_ACCESS_KEY_ID,
 *                  AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment.
 *   host[:port]    the endpoint; empty: AWS (s3.amazonaws.com for us-east-1, else
 *                  s3.<region>.amazonaws.com).
 *   bucket         required. Path after it, if any, is the default key prefix.
 * Options:
 *   region=us-east-1          signing region.
 *   tls=true|false            https or http (default true).
 *   path_style=true|false     host/bucket/key instead of bucket.host/key; default false for
 *                             the AWS endpoint, true when a host is given (MinIO, s3rver,
 *                             Ceph and IP endpoints do not resolve bucket subdomains).
 *   presign_expires=3600      lifetime in seconds of the URLs put_*() return (1..604800).
 *   prefix=outputs/           key prefix ('/' appended when missing).
 *   multipart_threshold=16M   files above this many bytes (K/M/G suffixes) are sent as a
 *                             multipart upload in parts of this size; minimum 5M (S3's
 *                             smallest part).
 *   session_token=...         temporary credentials' token.
 * Unknown options are refused, so a typo does not silently change behaviour.
 *
 * Object key: prefix + owner + "/" + name. open() lists at most one key of the bucket, so
 * wrong credentials, a missing bucket or an unreachable endpoint fail at start.
 */
#include "core/crypto.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/media_type.h"
#include "core/util.h"
#include "infra/sign/sigv4.h"
#include "infra/storage/s3_url.h"
#include "infra/storage/storage.h"

#include <genpulse/http.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)
#define S3_MAX_PARTS 10000
#define S3_CONNECT_MS 5000
#define S3_BASE_TIMEOUT_MS 60000
#define S3_DOWNLOAD_TIMEOUT_MS (10 * 60 * 1000)
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct s3_storage {
    gp_storage_t base;
    gp_s3_url_t cfg; /* endpoint, credentials, limits: immutable after open */
} s3_storage_t;

static void s3_free(s3_storage_t *s)
{
    if (!s)
        return;
    gp_s3_url_clear(&s->cfg);
    free(s);
}

/* ---- requests ---- */

typedef struct s3_req {
    const char *method;
    const char *key;   /* full object key (unencoded); NULL: the bucket */
    const char *query; /* encoded query, or NULL */
    const char *content_type;
    const void *body;
    size_t body_len;
    const char *body_path;
    const char *payload_sha256; /* NULL: empty body */
    const char *download_path;
    int timeout_ms;
    int max_attempts;
    bool retry_unsafe;
} s3_req_t;

/* "/bucket/enc(key)" or "/enc(key)". */
static char *object_path(const s3_storage_t *s, const char *key)
{
    char *ek = gp_sigv4_uri_encode(key ? key : "", key ? strlen(key) : 0, true);
    char *p = gp_xasprintf("%s/%s", s->cfg.base_path, ek);
    free(ek);
    return p;
}

static gp_sigv4_creds_t creds_of(const s3_storage_t *s)
{
    return (gp_sigv4_creds_t){.access_key = s->cfg.access_key,
                              .secret_key = s->cfg.secret_key,
                              .session_token = s->cfg.session_token,
                              .region = s->cfg.region,
                              .service = "s3"};
}

static int s3_do(const s3_storage_t *s, const s3_req_t *r, gp_http_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    char *path = object_path(s, r->key);
    const char *hash = r->payload_sha256 ? r->payload_sha256 : EMPTY_SHA256;
    char stamp[17];
    time_t now = time(NULL);
    gp_sigv4_stamp(now, stamp);

    char *h_host = gp_xasprintf("Host: %s", s->cfg.host);
    char *h_date = gp_xasprintf("X-Amz-Date: %s", stamp);
    char *h_hash = gp_xasprintf("x-amz-content-sha256: %s", hash);
    char *h_tok = s->cfg.session_token
                      ? gp_xasprintf("X-Amz-Security-Token: %s", s->cfg.session_token)
                      : NULL;
    char *h_ct = r->content_type ? gp_xasprintf("Content-Type: %s", r->content_type) : NULL;
    const char *hdrs[8]; /* the five above at most, Authorization, NULL */
    size_t n = 0;
    hdrs[n++] = h_host;
    hdrs[n++] = h_date;
    hdrs[n++] = h_hash;
    if (h_tok)
        hdrs[n++] = h_tok;
    if (h_ct)
        hdrs[n++] = h_ct;
    hdrs[n] = NULL;

    gp_sigv4_creds_t c = creds_of(s);
    gp_sigv4_request_t sr = {.method = r->method,
                             .path = path,
                             .query = r->query,
                             .headers = hdrs,
                             .payload_sha256 = hash,
                             .when = now};
    gp_sigv4_result_t sig;
    int rc;
    if (gp_sigv4_sign_headers(&gp_sigv4_s3, &c, &sr, &sig) != 0) {
        snprintf(resp->error, sizeof resp->error, "cannot sign the request");
        rc = GP_HTTP_E_INVALID;
    } else {
        char *h_auth = gp_xasprintf("Authorization: %s", sig.authorization);
        hdrs[n++] = h_auth;
        hdrs[n] = NULL;
        char *url = r->query && *r->query ? gp_xasprintf("%s%s?%s", s->cfg.origin, path, r->query)
                                          : gp_xasprintf("%s%s", s->cfg.origin, path);
        gp_http_request_t hr = {
            .method = r->method,
            .url = url,
            .headers = hdrs,
            .body = r->body,
            .body_len = r->body_len,
            .body_path = r->body_path,
            .download_path = r->download_path,
            .connect_timeout_ms = S3_CONNECT_MS,
            .timeout_ms = r->timeout_ms ? r->timeout_ms : S3_BASE_TIMEOUT_MS,
            .max_attempts = r->max_attempts,
            .retry_unsafe = r->retry_unsafe,
        };
        rc = gp_http_do(&hr, resp);
        memset(h_auth, 0, strlen(h_auth));
        free(h_auth);
        free(url);
    }
    gp_sigv4_result_free(&sig);
    free(h_host);
    free(h_date);
    free(h_hash);
    free(h_tok);
    free(h_ct);
    free(path);
    return rc;
}

/* Text of <tag>...</tag> in an S3 XML body, made printable and cut to cap. */
static bool xml_tag(const char *body, const char *tag, char *out, size_t cap)
{
    out[0] = '\0';
    if (!body || cap == 0)
        return false;
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(body, open);
    if (!a)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return false;
    size_t n = (size_t)(b - a);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = isprint((unsigned char)a[i]) ? a[i] : '?';
    out[n] = '\0';
    return true;
}

/* Proportional per-attempt timeout: 60 s plus 1 s per MiB (a floor of ~1 MiB/s). */
static int timeout_for(size_t bytes)
{
    uint64_t ms = S3_BASE_TIMEOUT_MS + bytes / 1024;
    return ms > 3600000 ? 3600000 : (int)ms;
}

/* Maps a transport result or a final status to 0 or -GP_E_*, logging S3's Code/Message
 * (never the URL's query or any header). what: "PUT <key>" etc. */
static int s3_result(int rc, const gp_http_response_t *resp, const char *what)
{
    if (rc != GP_HTTP_OK) {
        GP_WARN("s3: %s: %s (%s)", what, gp_http_strerror(rc), resp->error);
        switch (rc) {
        case GP_HTTP_E_TIMEOUT: return -GP_E_TIMEOUT;
        case GP_HTTP_E_CANCELED: return -GP_E_CANCELED;
        case GP_HTTP_E_CONNECT: return -GP_E_UNAVAILABLE;
        case GP_HTTP_E_IO: return -GP_E_IO;
        default: return -GP_E_INTERNAL;
        }
    }
    if (resp->status >= 200 && resp->status < 300)
        return 0;
    char code[64], msg[256];
    xml_tag(resp->body, "Code", code, sizeof code);
    xml_tag(resp->body, "Message", msg, sizeof msg);
    long st = resp->status;
    bool missing_key = st == 404 && strcmp(code, "NoSuchBucket") != 0;
    if (!missing_key)
        GP_WARN("s3: %s: HTTP %ld %s%s%s", what, st, *code ? code : "(no error code)",
                *msg ? ": " : "", msg);
    if (missing_key)
        return -GP_E_NOT_FOUND;
    if (st == 409)
        return -GP_E_CONFLICT;
    if (st == 413)
        return -GP_E_PAYLOAD_TOO_LARGE;
    if (gp_http_status_retryable(st))
        return -GP_E_UNAVAILABLE;
    /* 400/401/403/NoSuchBucket/3xx: the configuration, not the request, is wrong */
    return -GP_E_INTERNAL;
}

/* ---- storage API ---- */

/* The caller's content type, unless it could break the header it goes into. */
static const char *content_type_for(const char *ct, const char *name)
{
    if (!ct || !*ct || strlen(ct) > 255)
        return gp_media_type_of_name(name);
    for (const char *c = ct; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return gp_media_type_of_name(name);
    return ct;
}

static int make_key(const s3_storage_t *s, const char *owner, const char *name, char **key)
{
    if (!gp_is_uuid(owner) || !gp_storage_name_ok(name))
        return -GP_E_BAD_REQUEST;
    *key = gp_xasprintf("%s%s/%s", s->cfg.prefix, owner, name);
    return 0;
}

static char *presign_key(const s3_storage_t *s, const char *key, int64_t expires_s)
{
    char *path = object_path(s, key);
    char *h_host = gp_xasprintf("Host: %s", s->cfg.host);
    const char *hdrs[] = {h_host, NULL};
    gp_sigv4_creds_t c = creds_of(s);
    gp_sigv4_request_t sr = {.method = "GET", .path = path, .headers = hdrs, .when = time(NULL)};
    char *q = gp_sigv4_presign_query(&gp_sigv4_s3, &c, &sr, expires_s, NULL);
    char *url = q ? gp_xasprintf("%s%s?%s", s->cfg.origin, path, q) : NULL;
    free(q);
    free(h_host);
    free(path);
    return url;
}

static int s3_presign(gp_storage_t *base, const char *owner, const char *name, int64_t expires_s,
                      char **url_out)
{
    s3_storage_t *s = (s3_storage_t *)base;
    char *key = NULL;
    if (make_key(s, owner, name, &key) != 0)
        return -GP_E_NOT_FOUND;
    if (expires_s <= 0) /* the URL's presign_expires */
        expires_s = s->cfg.presign_expires;
    if (expires_s > 604800) /* SigV4's limit */
        expires_s = 604800;
    *url_out = presign_key(s, key, expires_s);
    free(key);
    return *url_out ? 0 : -GP_E_INTERNAL;
}

static int finish_put(s3_storage_t *s, const char *key, char **url_out)
{
    *url_out = presign_key(s, key, s->cfg.presign_expires);
    return *url_out ? 0 : -GP_E_INTERNAL;
}

static int s3_put_bytes(gp_storage_t *base, const char *task_id, const char *name, const void *data,
                        size_t len, const char *content_type, char **url_out)
{
    s3_storage_t *s = (s3_storage_t *)base;
    char *key = NULL;
    int rc = make_key(s, task_id, name, &key);
    if (rc != 0)
        return rc;
    char hash[GP_SHA256_HEX_LEN];
    gp_sha256_hex(data ? data : "", data ? len : 0, hash);
    s3_req_t r = {.method = "PUT",
                  .key = key,
                  .content_type = content_type_for(content_type, name),
                  .body = data ? data : "",
                  .body_len = data ? len : 0,
                  .payload_sha256 = hash,
                  .timeout_ms = timeout_for(len)};
    gp_http_response_t resp;
    char *what = gp_xasprintf("PUT %s", key);
    rc = s3_result(s3_do(s, &r, &resp), &resp, what);
    gp_http_response_free(&resp);
    free(what);
    if (rc == 0)
        rc = finish_put(s, key, url_out);
    free(key);
    return rc;
}

/* Reads exactly n bytes at off; -1 on error or a short file. */
static int pread_full(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void abort_upload(s3_storage_t *s, const char *key, const char *query)
{
    s3_req_t r = {.method = "DELETE", .key = key, .query = query, .max_attempts = 2};
    gp_http_response_t resp;
    char *what = gp_xasprintf("abort multipart upload of %s", key);
    (void)s3_result(s3_do(s, &r, &resp), &resp, what);
    gp_http_response_free(&resp);
    free(what);
}

/* Starts a multipart upload; upload_id gets its id. */
static int initiate_upload(s3_storage_t *s, const char *key, const char *content_type,
                           char *upload_id, size_t id_cap)
{
    char *what = gp_xasprintf("initiate multipart upload of %s", key);
    gp_http_response_t resp;
    /* a repeated initiation only leaves an unused upload id behind */
    s3_req_t init = {.method = "POST",
                     .key = key,
                     .query = "uploads",
                     .content_type = content_type,
                     .body = "", /* an empty body, so that Content-Length: 0 is sent */
                     .retry_unsafe = true};
    int rc = s3_result(s3_do(s, &init, &resp), &resp, what);
    free(what);
    if (rc == 0 && !xml_tag(resp.body, "UploadId", upload_id, id_cap)) {
        GP_WARN("s3: initiate multipart upload of %s: no UploadId in the answer", key);
        rc = -GP_E_INTERNAL;
    }
    gp_http_response_free(&resp);
    return rc;
}

/* Sends part i (0-based) of nparts from buf; *etag gets the server's ETag. */
static int put_part(s3_storage_t *s, const char *key, const char *idq, size_t i, size_t nparts,
                    const char *buf, size_t n, char **etag_out)
{
    char hash[GP_SHA256_HEX_LEN];
    gp_sha256_hex(buf, n, hash);
    char *pq = gp_xasprintf("partNumber=%zu&%s", i + 1, idq);
    s3_req_t pr = {.method = "PUT",
                   .key = key,
                   .query = pq,
                   .body = buf,
                   .body_len = n,
                   .payload_sha256 = hash,
                   .timeout_ms = timeout_for(n)};
    char *what = gp_xasprintf("PUT part %zu/%zu of %s", i + 1, nparts, key);
    gp_http_response_t resp;
    int rc = s3_result(s3_do(s, &pr, &resp), &resp, what);
    char etag[256];
    if (rc == 0 && !gp_http_header(&resp, "ETag", etag, sizeof etag)) {
        GP_WARN("s3: %s: no ETag in the answer", what);
        rc = -GP_E_INTERNAL;
    }
    if (rc == 0)
        *etag_out = gp_xstrdup(etag);
    gp_http_response_free(&resp);
    free(what);
    free(pq);
    return rc;
}

/* Reads the file part by part and sends each; etags[i] gets part i's ETag. */
static int upload_parts(s3_storage_t *s, const char *key, int fd, size_t size, size_t part,
                        size_t nparts, const char *idq, char **etags)
{
    char *buf = malloc(part);
    int rc = buf ? 0 : -GP_E_NOMEM;
    for (size_t i = 0; rc == 0 && i < nparts; i++) {
        size_t off = i * part, n = size - off < part ? size - off : part;
        if (pread_full(fd, buf, n, (off_t)off) != 0) {
            GP_WARN("s3: multipart upload of %s: cannot read part %zu of the file", key, i + 1);
            rc = -GP_E_IO;
            break;
        }
        rc = put_part(s, key, idq, i, nparts, buf, n, &etags[i]);
    }
    free(buf);
    return rc;
}

/* The CompleteMultipartUpload body listing every part; NULL when out of memory. */
static char *complete_xml(char *const *etags, size_t nparts, size_t *len_out)
{
    size_t cap = 64 + nparts * 320;
    char *xml = malloc(cap);
    if (!xml)
        return NULL;
    size_t len = (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                etags[i]);
    len += (size_t)snprintf(xml + len, cap - len, "</CompleteMultipartUpload>");
    *len_out = len;
    return xml;
}

/* Asks S3 to assemble the parts into the object. */
static int complete_upload(s3_storage_t *s, const char *key, size_t size, char *const *etags,
                           size_t nparts, const char *idq)
{
    size_t len = 0;
    char *xml = complete_xml(etags, nparts, &len);
    if (!xml)
        return -GP_E_NOMEM;
    char hash[GP_SHA256_HEX_LEN];
    gp_sha256_hex(xml, len, hash);
    s3_req_t cr = {.method = "POST",
                   .key = key,
                   .query = idq,
                   .content_type = "application/xml",
                   .body = xml,
                   .body_len = len,
                   .payload_sha256 = hash,
                   /* S3 may take minutes to assemble a large object */
                   .timeout_ms = timeout_for(size / 8),
                   .retry_unsafe = true};
    char *what = gp_xasprintf("complete multipart upload of %s", key);
    gp_http_response_t resp;
    int rc = s3_result(s3_do(s, &cr, &resp), &resp, what);
    /* S3 answers 200 before assembling and reports a failure in the body */
    if (rc == 0 && resp.body && strstr(resp.body, "<Error>")) {
        char code[64], msg[256];
        xml_tag(resp.body, "Code", code, sizeof code);
        xml_tag(resp.body, "Message", msg, sizeof msg);
        GP_WARN("s3: %s: %s: %s", what, code, msg);
        rc = -GP_E_UNAVAILABLE;
    }
    gp_http_response_free(&resp);
    free(what);
    free(xml);
    return rc;
}

static int multipart_upload(s3_storage_t *s, const char *key, int fd, size_t size,
                            const char *content_type)
{
    size_t part = s->cfg.part_size;
    if ((size + part - 1) / part > S3_MAX_PARTS)
        part = ((size + S3_MAX_PARTS - 1) / S3_MAX_PARTS + MIB - 1) / MIB * MIB;
    size_t nparts = (size + part - 1) / part;
    char upload_id[1024];
    int rc = initiate_upload(s, key, content_type, upload_id, sizeof upload_id);
    if (rc != 0)
        return rc;
    char *eid = gp_sigv4_uri_encode(upload_id, strlen(upload_id), false);
    char *idq = gp_xasprintf("uploadId=%s", eid);
    char **etags = calloc(nparts, sizeof *etags);
    rc = etags ? upload_parts(s, key, fd, size, part, nparts, idq, etags) : -GP_E_NOMEM;
    if (rc == 0)
        rc = complete_upload(s, key, size, etags, nparts, idq);
    if (rc != 0)
        abort_upload(s, key, idq);
    for (size_t i = 0; etags && i < nparts; i++)
        free(etags[i]);
    free(etags);
    free(idq);
    free(eid);
    return rc;
}

static int s3_put_file(gp_storage_t *base, const char *task_id, const char *name, const char *path,
                       const char *content_type, char **url_out)
{
    s3_storage_t *s = (s3_storage_t *)base;
    char *key = NULL;
    int rc = make_key(s, task_id, name, &key);
    if (rc != 0)
        return rc;
    const char *ct = content_type_for(content_type, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        GP_WARN("s3: cannot read %s: %s", path, strerror(errno));
        rc = -GP_E_IO;
    } else if ((size_t)st.st_size > s->cfg.part_size) {
        rc = multipart_upload(s, key, fd, (size_t)st.st_size, ct);
    } else {
        char hash[GP_SHA256_HEX_LEN];
        if (gp_sha256_file_hex(path, hash) != 0) {
            rc = -GP_E_IO;
        } else {
            s3_req_t r = {.method = "PUT",
                          .key = key,
                          .content_type = ct,
                          .body_path = path,
                          .payload_sha256 = hash,
                          .timeout_ms = timeout_for((size_t)st.st_size)};
            gp_http_response_t resp;
            char *what = gp_xasprintf("PUT %s", key);
            rc = s3_result(s3_do(s, &r, &resp), &resp, what);
            gp_http_response_free(&resp);
            free(what);
        }
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        rc = finish_put(s, key, url_out);
    free(key);
    return rc;
}

static int s3_get_file(gp_storage_t *base, const char *owner, const char *name,
                       const char *dest_path)
{
    s3_storage_t *s = (s3_storage_t *)base;
    char *key = NULL;
    if (make_key(s, owner, name, &key) != 0)
        return -GP_E_NOT_FOUND;
    /* into dest.part and renamed, so a reader never sees half a file */
    char *tmp = gp_xasprintf("%s.part", dest_path);
    s3_req_t r = {
        .method = "GET", .key = key, .download_path = tmp, .timeout_ms = S3_DOWNLOAD_TIMEOUT_MS};
    gp_http_response_t resp;
    char *what = gp_xasprintf("GET %s", key);
    int rc = s3_result(s3_do(s, &r, &resp), &resp, what);
    gp_http_response_free(&resp);
    if (rc == 0 && rename(tmp, dest_path) != 0) {
        GP_WARN("s3: %s: cannot rename into %s: %s", what, dest_path, strerror(errno));
        rc = -GP_E_IO;
    }
    if (rc != 0)
        unlink(tmp);
    free(what);
    free(tmp);
    free(key);
    return rc;
}

static void s3_close(gp_storage_t *base)
{
    s3_free((s3_storage_t *)base);
}

static int s3_open(gp_storage_t **out, const char *url, const gp_settings_t *settings, char *err,
                   size_t cap)
{
    (void)settings;
    s3_storage_t *s = gp_xcalloc(1, sizeof *s);
    extern const gp_storage_vt_t gp_storage_backend_s3;
    s->base.vt = &gp_storage_backend_s3;
    if (gp_s3_url_parse(url ? url : "", &s->cfg, err, cap) != 0) {
        s3_free(s);
        return -GP_E_INTERNAL;
    }
    /* Fail fast: list at most one key, which needs the bucket, the endpoint and valid
     * credentials (and, for a signature mismatch, tells which). */
    s3_req_t r = {.method = "GET",
                  .key = NULL,
                  .query = "max-keys=1",
                  .timeout_ms = 15000,
                  .max_attempts = 2};
    gp_http_response_t resp;
    int hrc = s3_do(s, &r, &resp);
    int rc = 0;
    if (hrc != GP_HTTP_OK) {
        snprintf(err, cap, "s3: cannot reach %s: %s (%s)", s->cfg.origin, gp_http_strerror(hrc),
                 resp.error);
        rc = -GP_E_UNAVAILABLE;
    } else if (resp.status < 200 || resp.status >= 300) {
        char code[64], msg[256];
        xml_tag(resp.body, "Code", code, sizeof code);
        xml_tag(resp.body, "Message", msg, sizeof msg);
        const char *hint = "";
        if (!strcmp(code, "SignatureDoesNotMatch"))
            hint = " (the secret key is wrong)";
        else if (!strcmp(code, "InvalidAccessKeyId"))
            hint = " (unknown access key)";
        else if (!strcmp(code, "NoSuchBucket"))
            hint = " (create the bucket first)";
        else if (resp.status == 301 || !strcmp(code, "AuthorizationHeaderMalformed"))
            hint = " (check the region= option)";
        else if (resp.status == 403)
            hint = " (check the credentials and the bucket policy)";
        snprintf(err, cap, "s3: bucket %s at %s: HTTP %ld %s%s%s%s", s->cfg.bucket, s->cfg.origin,
                 resp.status, *code ? code : "", *msg ? ": " : "", msg, hint);
        rc = gp_http_status_retryable(resp.status) ? -GP_E_UNAVAILABLE : -GP_E_INTERNAL;
    }
    gp_http_response_free(&resp);
    if (rc != 0) {
        s3_free(s);
        return rc;
    }
    GP_INFO("s3: storage in bucket %s at %s, key prefix \"%s\"", s->cfg.bucket, s->cfg.origin,
            s->cfg.prefix);
    *out = &s->base;
    return 0;
}

const gp_storage_vt_t gp_storage_backend_s3 = {
    .scheme = "s3",
    .open = s3_open,
    .close = s3_close,
    .put_bytes = s3_put_bytes,
    .put_file = s3_put_file,
    .local_path = NULL,
    .presign = s3_presign,
    .get_file = s3_get_file,
};

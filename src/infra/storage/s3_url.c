/*
 * s3_url.c — parses the S3 storage URL (see s3_url.h; the syntax is documented in s3.c).
 * Each step does one part of the URL, in order: credentials, bucket and prefix, options,
 * prefix normalization, credentials from the environment, endpoint.
 */
#include "infra/storage/s3_url.h"
#include "core/errors.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB (1024ull * 1024ull)
#define S3_MIN_PART (5 * MIB)

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes n bytes; NULL when a decoded byte is NUL (it would truncate the value). */
static char *pct_decode(const char *s, size_t n)
{
    char *o = gp_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexv(s[i + 1])) >= 0 && (lo = hexv(s[i + 2])) >= 0) {
            o[k] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            o[k] = s[i];
        }
        if (o[k++] == '\0') {
            free(o);
            return NULL;
        }
    }
    o[k] = '\0';
    return o;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
        *out = true;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off"))
        *out = false;
    else
        return -1;
    return 0;
}

/* "16777216", "16M", "16MiB", "512k": bytes; -1 when malformed or above 5 GiB (S3's
 * largest part). */
static long long parse_size(const char *v)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || n < 0)
        return -1;
    unsigned long long mul = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K':
        mul = 1024;
        end++;
        break;
    case 'M':
        mul = MIB;
        end++;
        break;
    case 'G':
        mul = 1024 * MIB;
        end++;
        break;
    default: return -1;
    }
    if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
        return -1;
    if ((unsigned long long)n > (5ull * 1024 * MIB) / mul)
        return -1;
    return (long long)((unsigned long long)n * mul);
}

static bool bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 1 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)b[i]) && b[i] != '.' && b[i] != '-' && b[i] != '_')
            return false;
    return true;
}

/* A prefix becomes part of every URL path: dot segments and empty segments would be
 * rewritten by HTTP stacks and break signatures, control bytes are never wanted. */
static bool prefix_ok(const char *p)
{
    if (strlen(p) > 512)
        return false;
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\')
            return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 0 && e) || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n;
        if (*s == '/')
            s++;
    }
    return true;
}

/* Values that end up in headers or in the credential scope: visible ASCII only (no header
 * injection), and none of the scope's separators. */
static bool token_ok(const char *t, const char *forbidden)
{
    if (!t || !*t || strlen(t) > 4096)
        return false;
    for (const char *c = t; *c; c++)
        if (*c < 0x21 || *c > 0x7e || strchr(forbidden, *c))
            return false;
    return true;
}

/* What the options decide beyond the fields of gp_s3_url_t. */
typedef struct url_opts {
    bool tls, path_style, path_style_set;
    long long threshold;
} url_opts_t;

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    int n = snprintf(err, cap, "storage url: ");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < cap)
        (void)vsnprintf(err + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* "KEY:SECRET@" before lim, up to the last '@'. Sets *rest past it. */
static int parse_credentials(const char *p, const char *lim, gp_s3_url_t *u, const char **rest,
                             char *err, size_t cap)
{
    const char *at = NULL;
    for (const char *c = p; c < lim; c++)
        if (*c == '@')
            at = c;
    *rest = p;
    if (!at)
        return 0;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon)
        return fail(err, cap, "credentials must be ACCESS_KEY:SECRET_KEY@");
    u->access_key = pct_decode(p, (size_t)(colon - p));
    u->secret_key = pct_decode(colon + 1, (size_t)(at - colon - 1));
    if (!u->access_key || !u->secret_key || !*u->access_key || !*u->secret_key)
        return fail(err, cap, "empty or malformed access key or secret key");
    *rest = at + 1;
    return 0;
}

/* "host[:port]/bucket[/prefix]" before lim: *hostport gets the authority (maybe ""). */
static int parse_location(const char *p, const char *lim, gp_s3_url_t *u, char **hostport,
                          char *err, size_t cap)
{
    const char *slash = memchr(p, '/', (size_t)(lim - p));
    if (!slash)
        return fail(err, cap, "missing /bucket (s3://[key:secret@][host[:port]]/bucket[?options])");
    *hostport = gp_xasprintf("%.*s", (int)(slash - p), p);
    char *path = pct_decode(slash + 1, (size_t)(lim - slash - 1));
    if (!path)
        return fail(err, cap, "malformed bucket or prefix");
    char *bslash = strchr(path, '/');
    u->bucket = bslash ? gp_xasprintf("%.*s", (int)(bslash - path), path) : gp_xstrdup(path);
    u->prefix = gp_xstrdup(bslash ? bslash + 1 : "");
    free(path);
    if (!bucket_ok(u->bucket))
        return fail(err, cap, "bad or missing bucket name \"%.64s\"", u->bucket);
    return 0;
}

/* Applies option k=v. Returns 0, 1 for a bad value, or -1 for an unknown option (err set). */
static int apply_option(gp_s3_url_t *u, url_opts_t *o, const char *k, const char *v, char *err,
                        size_t cap)
{
    if (!strcmp(k, "region")) {
        if (strlen(v) > 64 || !token_ok(v, "/,;="))
            return 1;
        free(u->region);
        u->region = gp_xstrdup(v);
        return 0;
    }
    if (!strcmp(k, "tls"))
        return parse_bool(v, &o->tls) != 0;
    if (!strcmp(k, "path_style")) {
        o->path_style_set = true;
        return parse_bool(v, &o->path_style) != 0;
    }
    if (!strcmp(k, "presign_expires")) {
        char *e = NULL;
        long long x = strtoll(v, &e, 10);
        u->presign_expires = x;
        return !*v || *e || x < 1 || x > 604800;
    }
    if (!strcmp(k, "prefix")) {
        free(u->prefix);
        u->prefix = gp_xstrdup(v);
        return 0;
    }
    if (!strcmp(k, "multipart_threshold")) {
        o->threshold = parse_size(v);
        return o->threshold < (long long)S3_MIN_PART;
    }
    if (!strcmp(k, "session_token")) {
        free(u->session_token);
        u->session_token = gp_xstrdup(v);
        return !token_ok(v, "");
    }
    snprintf(err, cap,
             "storage url: unknown option \"%.40s\" (known: region, tls, path_style, "
             "presign_expires, prefix, multipart_threshold, session_token)",
             k);
    return -1;
}

/* One "k=v" of n bytes (n > 0). */
static int parse_option(gp_s3_url_t *u, url_opts_t *o, const char *kv, size_t n, char *err,
                        size_t cap)
{
    const char *eq = memchr(kv, '=', n);
    if (!eq)
        return fail(err, cap, "option \"%.*s\" needs a value", (int)(n > 40 ? 40 : n), kv);
    char *k = gp_xasprintf("%.*s", (int)(eq - kv), kv);
    char *v = pct_decode(eq + 1, n - (size_t)(eq - kv) - 1);
    int bad = v ? apply_option(u, o, k, v, err, cap) : 1;
    if (bad > 0)
        snprintf(err, cap, "storage url: bad value for %.40s%s", k,
                 !strcmp(k, "multipart_threshold") ? " (at least 5M, at most 5G)"
                 : !strcmp(k, "presign_expires")   ? " (1..604800 seconds)"
                                                   : "");
    free(k);
    free(v);
    return bad ? -1 : 0;
}

/* The '&'-separated options after '?' (q may be NULL); empty ones are skipped. */
static int parse_options(const char *q, gp_s3_url_t *u, url_opts_t *o, char *err, size_t cap)
{
    for (const char *s = q; s && *s;) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        if (n > 0 && parse_option(u, o, s, n, err, cap) != 0)
            return -1;
        if (!amp)
            break;
        s = amp + 1;
    }
    return 0;
}

/* The prefix gets no leading '/' and one trailing '/'. */
static int normalize_prefix(gp_s3_url_t *u, char *err, size_t cap)
{
    char *pf = u->prefix;
    while (*pf == '/')
        pf++;
    if (!prefix_ok(pf))
        return fail(err, cap,
                    "bad prefix (no empty, \".\" or \"..\" segments, no control characters)");
    char *np = *pf && pf[strlen(pf) - 1] != '/' ? gp_xasprintf("%s/", pf) : gp_xstrdup(pf);
    free(u->prefix);
    u->prefix = np;
    return 0;
}

/* Credentials from the environment when the URL had none, then their syntax. */
static int check_credentials(gp_s3_url_t *u, char *err, size_t cap)
{
    if (!u->access_key) {
        const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
        if (!ak || !*ak || !sk || !*sk)
            return fail(err, cap,
                        "no credentials: give s3://ACCESS_KEY:SECRET_KEY@... or set "
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        u->access_key = gp_xstrdup(ak);
        u->secret_key = gp_xstrdup(sk);
        const char *tok = getenv("AWS_SESSION_TOKEN");
        if (!u->session_token && tok && *tok)
            u->session_token = gp_xstrdup(tok);
    }
    if (!token_ok(u->access_key, "/,;=") || !token_ok(u->secret_key, ""))
        return fail(err, cap,
                    "the access key and secret key must be visible ASCII (and the access key "
                    "without '/', ',', ';' or '=')");
    if (u->session_token && !token_ok(u->session_token, ""))
        return fail(err, cap, "the session token must be visible ASCII");
    return 0;
}

/* Splits "host[:port]" in place; *port is NULL when absent or the scheme's default, which
 * Host drops as HTTP clients do (presigned URLs are signed for the Host others send). */
static int split_port(char *hostonly, bool tls, const char **port, char *err, size_t cap)
{
    *port = NULL;
    char *rb = strrchr(hostonly, ']');
    char *pc = strrchr(hostonly, ':');
    if (pc && (!rb || pc > rb)) {
        *pc = '\0';
        const char *p = pc + 1;
        char *e = NULL;
        long pn = strtol(p, &e, 10);
        if (!*p || *e || pn < 1 || pn > 65535)
            return fail(err, cap, "bad port");
        if (!((tls && pn == 443) || (!tls && pn == 80)))
            *port = p;
    }
    if (!*hostonly)
        return fail(err, cap, "empty endpoint host");
    return 0;
}

/* origin, Host and base path from the authority ("" = AWS for the region). */
static int build_endpoint(gp_s3_url_t *u, const char *hostport, const url_opts_t *o, char *err,
                          size_t cap)
{
    bool aws = !*hostport;
    char *hostonly = !aws ? gp_xstrdup(hostport)
                     : !strcmp(u->region, "us-east-1")
                         ? gp_xstrdup("s3.amazonaws.com")
                         : gp_xasprintf("s3.%s.amazonaws.com", u->region);
    int rc = 0;
    for (const char *c = hostonly; *c && rc == 0; c++)
        if (!isalnum((unsigned char)*c) && !strchr(".-_:[]", *c))
            rc = fail(err, cap, "bad endpoint host");
    const char *port = NULL;
    if (rc == 0)
        rc = split_port(hostonly, o->tls, &port, err, cap);
    if (rc != 0) {
        free(hostonly);
        return rc;
    }
    if (o->path_style_set ? o->path_style : !aws) {
        u->host = port ? gp_xasprintf("%s:%s", hostonly, port) : gp_xstrdup(hostonly);
        u->base_path = gp_xasprintf("/%s", u->bucket);
    } else {
        u->host = port ? gp_xasprintf("%s.%s:%s", u->bucket, hostonly, port)
                       : gp_xasprintf("%s.%s", u->bucket, hostonly);
        u->base_path = gp_xstrdup("");
    }
    free(hostonly);
    u->origin = gp_xasprintf("%s://%s", o->tls ? "https" : "http", u->host);
    return 0;
}

int gp_s3_url_parse(const char *url, gp_s3_url_t *out, char *err, size_t cap)
{
    gp_s3_url_t u = {.region = gp_xstrdup("us-east-1"), .presign_expires = 3600};
    url_opts_t o = {.tls = true, .threshold = 16 * (long long)MIB};
    char *hostport = NULL;
    int rc = -1;
    if (strncmp(url, "s3://", 5)) {
        fail(err, cap, "must start with s3://");
    } else {
        const char *p = url + 5;
        const char *q = strchr(p, '?');
        const char *lim = q ? q : p + strlen(p);
        if (parse_credentials(p, lim, &u, &p, err, cap) == 0 &&
            parse_location(p, lim, &u, &hostport, err, cap) == 0 &&
            parse_options(q ? q + 1 : NULL, &u, &o, err, cap) == 0 &&
            normalize_prefix(&u, err, cap) == 0 && check_credentials(&u, err, cap) == 0 &&
            build_endpoint(&u, hostport, &o, err, cap) == 0)
            rc = 0;
    }
    free(hostport);
    if (rc != 0) {
        gp_s3_url_clear(&u);
        memset(out, 0, sizeof *out);
        return -GP_E_INTERNAL;
    }
    u.part_size = (size_t)o.threshold;
    *out = u;
    return 0;
}

void gp_s3_url_clear(gp_s3_url_t *u)
{
    free(u->origin);
    free(u->host);
    free(u->base_path);
    free(u->bucket);
    free(u->prefix);
    free(u->access_key);
    if (u->secret_key) {
        memset(u->secret_key, 0, strlen(u->secret_key));
        free(u->secret_key);
    }
    free(u->session_token);
    free(u->region);
    memset(u, 0, sizeof *u);
}

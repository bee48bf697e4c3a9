/* conn.c — Redis URL parsing and connecting (see conn.h). */
#include "infra/redis/conn.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Copies n bytes of in into out (cap bytes), percent-decoding; false if it does not fit. */
static bool copy_decoded(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 1 >= cap)
            return false;
        if (in[i] == '%' && i + 2 < n && isxdigit((unsigned char)in[i + 1]) &&
            isxdigit((unsigned char)in[i + 2])) {
            char hex[3] = {in[i + 1], in[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return true;
}

/* [[user]:password@] of the authority a..rest; *a moves past it. false with err. */
static bool parse_userinfo(const char **a, const char *rest, gp_redis_url_t *out, char *err,
                           size_t cap)
{
    const char *at = NULL;
    for (const char *p = *a; p < rest; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return true;
    const char *colon = memchr(*a, ':', (size_t)(at - *a));
    if (colon &&
        (!copy_decoded(*a, (size_t)(colon - *a), out->user, sizeof out->user) ||
         !copy_decoded(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password))) {
        snprintf(err, cap, "Redis user or password too long");
        return false;
    } /* a user without a password: nothing to AUTH with */
    *a = at + 1;
    return true;
}

/* host[:port] or [v6]:port in a..rest. false with err. */
static bool parse_host_port(const char *a, const char *rest, gp_redis_url_t *out, char *err,
                            size_t cap)
{
    const char *host = a, *port = NULL;
    size_t hlen;
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(rest - a));
        if (!rb) {
            snprintf(err, cap, "bad IPv6 host in the Redis URL");
            return false;
        }
        host = a + 1;
        hlen = (size_t)(rb - host);
        if (rb + 1 < rest && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(a, ':', (size_t)(rest - a));
        hlen = (size_t)((colon ? colon : rest) - a);
        if (colon)
            port = colon + 1;
    }
    if (hlen >= sizeof out->host) {
        snprintf(err, cap, "Redis host name too long");
        return false;
    }
    if (hlen)
        memcpy(out->host, host, hlen);
    else
        snprintf(out->host, sizeof out->host, "127.0.0.1");
    out->port = 6379;
    if (port && port < rest) {
        long v = 0;
        for (const char *p = port; p < rest && v >= 0; p++)
            v = *p < '0' || *p > '9' || v > 65535 ? -1 : v * 10 + (*p - '0');
        if (v < 1 || v > 65535) {
            snprintf(err, cap, "bad port in the Redis URL");
            return false;
        }
        out->port = (int)v;
    }
    return true;
}

/* The /db part (rest points at what follows the authority). false with err. */
static bool parse_db(const char *rest, gp_redis_url_t *out, char *err, size_t cap)
{
    if (*rest != '/' || !rest[1] || rest[1] == '?' || rest[1] == '#')
        return true;
    char *end;
    long v = strtol(rest + 1, &end, 10);
    if (end == rest + 1 || (*end && *end != '?' && *end != '#') || v < 0 || v > 100000) {
        snprintf(err, cap, "bad database number in the Redis URL");
        return false;
    }
    out->db = (int)v;
    return true;
}

int gp_redis_url_parse(const char *url, gp_redis_url_t *out, char *err, size_t cap)
{
    if (!strncasecmp(url, "rediss://", 9)) {
        snprintf(err, cap, "rediss:// (TLS) needs hiredis >= 1.0; this build has 0.14");
        return -1;
    }
    if (strncasecmp(url, "redis://", 8)) {
        snprintf(err, cap, "expected a redis://[:password@]host:port/db URL");
        return -1;
    }
    gp_redis_url_t u = {0};
    const char *a = url + 8, *rest = a + strcspn(a, "/?#");
    if (!parse_userinfo(&a, rest, &u, err, cap) || !parse_host_port(a, rest, &u, err, cap) ||
        !parse_db(rest, &u, err, cap))
        return -1;
    *out = u;
    return 0;
}

static struct timeval tv_ms(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* Runs one setup command; false with err filled when it fails. */
static bool setup(redisContext *c, int argc, const char **argv, char *err, size_t cap)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r) {
        snprintf(err, cap, "%s: %s", argv[0], c->errstr[0] ? c->errstr : "connection lost");
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, cap, "%s: %.*s", argv[0], (int)r->len, r->str);
    freeReplyObject(r);
    return ok;
}

redisContext *gp_redis_connect(const gp_redis_url_t *u, int connect_ms, int io_ms, const char *name,
                               char *err, size_t cap)
{
    redisContext *c = redisConnectWithTimeout(u->host, u->port, tv_ms(connect_ms));
    if (!c || c->err) {
        snprintf(err, cap, "cannot connect to redis at %s:%d: %s", u->host, u->port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv_ms(io_ms)) != REDIS_OK) {
        snprintf(err, cap, "cannot set the redis socket timeout");
        goto fail;
    }
    char db[16];
    snprintf(db, sizeof db, "%d", u->db);
    const char *auth[3] = {"AUTH", u->user[0] ? u->user : u->password, u->password};
    const char *select[2] = {"SELECT", db};
    const char *setname[3] = {"CLIENT", "SETNAME", name};
    if ((u->password[0] && !setup(c, u->user[0] ? 3 : 2, auth, err, cap)) ||
        (u->db && !setup(c, 2, select, err, cap)) || (name && !setup(c, 3, setname, err, cap)))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}

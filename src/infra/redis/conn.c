/* conn.c — Redis URL parsing and connecting (see conn.h). */
#include "infra/redis/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gp_redis_url_parse(const char *url, gp_redis_url_t *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    const char *p = NULL;
    if (!strncmp(url, "redis://", 8))
        p = url + 8;
    if (!p) {
        snprintf(err, cap, "redis URL must start with redis://");
        return -1;
    }
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof out->password) {
            snprintf(err, cap, "redis password too long");
            return -1;
        }
        memcpy(out->password, pw, n);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof out->host) {
        snprintf(err, cap, "redis URL has no host");
        return -1;
    }
    memcpy(out->host, p, hl);
    p += hl;
    if (*p == ':') {
        char *end = NULL;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) {
            snprintf(err, cap, "redis URL has a bad port");
            return -1;
        }
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end = NULL;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 1000000) {
            snprintf(err, cap, "redis URL has a bad database number");
            return -1;
        }
        out->db = (int)db;
    }
    return 0;
}

redisContext *gp_redis_connect(const gp_redis_url_t *u, int timeout_ms, char *err, size_t cap)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
    if (!c || c->err) {
        snprintf(err, cap, "cannot connect to redis at %s:%d: %s", u->host, u->port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u->password[0]) {
        r = redisCommand(c, "AUTH %s", u->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, cap, "redis AUTH failed");
            goto fail;
        }
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, cap, "redis SELECT %d failed", u->db);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

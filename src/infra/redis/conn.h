/*
 * conn.h — Redis connections for everything that talks to Redis (queue, event bus, RPC
 * client): URL parsing, connect with timeouts, AUTH, SELECT and a client name. A
 * redisContext is not thread-safe: each is used by one thread at a time (callers keep a
 * pool or one per thread). Both functions are thread-safe.
 */
#ifndef GP_REDIS_CONN_H
#define GP_REDIS_CONN_H

#include <hiredis/hiredis.h>

typedef struct gp_redis_url {
    char host[256]; /* IPv4/IPv6 literal or name (resolved by a blocking lookup) */
    int port;
    int db;
    char user[128];     /* "" = none (AUTH with the password only) */
    char password[256]; /* "" = no AUTH */
} gp_redis_url_t;

/* Parses redis://[[user]:password@]host[:port][/db][?…]; user and password may be
 * percent-encoded, an IPv6 host is written [::1]. rediss:// (TLS) is refused: hiredis 0.14
 * has no TLS. Returns 0, or -1 with a message in err (out untouched then). */
int gp_redis_url_parse(const char *url, gp_redis_url_t *out, char *err, size_t cap);

/* Connects (connect timeout connect_ms), sets the I/O timeout io_ms (0 = block), then AUTH,
 * SELECT and CLIENT SETNAME name (NULL = none). Returns a context (redisFree it) or NULL
 * with a message in err. */
redisContext *gp_redis_connect(const gp_redis_url_t *u, int connect_ms, int io_ms, const char *name,
                               char *err, size_t cap);

#endif

/*
 * conn.h — Redis connections for the Redis-backed families: URL parsing, connect with
 * timeouts, AUTH and SELECT. A redisContext is not thread-safe: each is used by one thread
 * at a time (callers keep a pool or a per-thread context).
 */
#ifndef GP_REDIS_CONN_H
#define GP_REDIS_CONN_H

#include <hiredis/hiredis.h>

typedef struct gp_redis_url {
    char host[256];
    int port;
    int db;
    char password[256]; /* "" = none */
} gp_redis_url_t;

/* Parses redis://[[user]:password@]host[:port][/db]. Returns 0 or -1 (err filled). */
int gp_redis_url_parse(const char *url, gp_redis_url_t *out, char *err, size_t cap);
/* Connects with connect and I/O timeouts (ms), authenticates and selects the db.
 * Returns a context or NULL (err filled). Free with redisFree. */
redisContext *gp_redis_connect(const gp_redis_url_t *u, int timeout_ms, char *err, size_t cap);

#endif

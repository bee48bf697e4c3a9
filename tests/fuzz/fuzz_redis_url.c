/*
 * fuzz_redis_url.c — libFuzzer target for the Redis URL parser (gp_redis_url_parse in
 * src/infra/redis/conn.c), which reads operator settings and the RPC library's argument.
 * Contract checked: a success gives a non-empty host, a port in 1..65535, a db >= 0 and
 * NUL-terminated fields; a failure writes a message.
 *
 * conn.c is compiled into this translation unit so that it is coverage-instrumented.
 * Build and run: make fuzz
 */
#include "infra/redis/conn.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_redis_url: contract violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    gp_redis_url_t u;
    char err[256] = "";
    if (gp_redis_url_parse(url, &u, err, sizeof err) == 0) {
        check(u.host[0] != '\0', "empty host");
        check(memchr(u.host, 0, sizeof u.host) != NULL, "host not terminated");
        check(memchr(u.user, 0, sizeof u.user) != NULL, "user not terminated");
        check(memchr(u.password, 0, sizeof u.password) != NULL, "password not terminated");
        check(u.port >= 1 && u.port <= 65535, "port out of range");
        check(u.db >= 0, "negative db");
    } else {
        check(err[0] != '\0', "failure without a message");
    }
    free(url);
    return 0;
}

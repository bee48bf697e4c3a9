/* rpc.c — RPC round trip through libgenpulse: N sequential echo tasks, p50/p99/max.
 * Usage: rpc REDIS_URL [N]. Needs a running `genpulse worker` on the same Redis. */
#include <genpulse/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rpc REDIS_URL [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    char err[256];
    gp_client_t *c = gp_client_connect(argv[1], 5000, err, sizeof err);
    if (!c) {
        fprintf(stderr, "rpc: %s\n", err);
        return 1;
    }
    double *lat = malloc(sizeof *lat * (size_t)n);
    int failed = 0;
    for (int i = 0; i < n + 50; i++) { /* 50 warm-up round trips */
        gp_client_result_t r;
        double t0 = now_ms();
        int rc = gp_client_run(c, "echo", "{\"message\":\"ping\"}", 9, 10000, NULL, NULL, &r);
        double dt = now_ms() - t0;
        if (rc != 0 || r.status != GP_CLIENT_SUCCEEDED)
            failed++;
        gp_client_result_clear(&r);
        if (i >= 50)
            lat[i - 50] = dt;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("rpc_round_trips=%d failed=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", n, failed,
           lat[n / 2], lat[n * 99 / 100], lat[n - 1]);
    free(lat);
    gp_client_free(c);
    return failed ? 1 : 0;
}

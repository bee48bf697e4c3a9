/*
 * metrics_hot.c — the hot path of core/metrics.c in isolation: ns per gp_metrics_inc and per
 * gp_metrics_observe (labelled, as the HTTP layer calls them), on 1 thread and on N threads
 * hitting the same series (the worst case for the shared atomics), and the time of one
 * gp_metrics_render with every family populated. Built by bench/metrics.sh against
 * build-release/libgenpulse-core.a.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CALLS 2000000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *incs(void *arg)
{
    (void)arg;
    for (int i = 0; i < CALLS; i++)
        gp_metrics_inc(GP_M_HTTP_REQUESTS, "POST", "/v1/tasks", "202");
    return NULL;
}

static void *observes(void *arg)
{
    (void)arg;
    for (int i = 0; i < CALLS; i++)
        gp_metrics_observe(GP_M_HTTP_DURATION, 0.002, "POST", "/v1/tasks");
    return NULL;
}

static double run(void *(*fn)(void *), int threads)
{
    pthread_t th[16];
    double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, fn, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    return (now() - t0) * 1e9 / ((double)CALLS * threads); /* ns per call, all threads */
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 16)
        threads = 2;
    gp_metrics_setup(true, "bench", 0);
    printf("hot inc     1 thread : %.1f ns/call\n", run(incs, 1));
    printf("hot observe 1 thread : %.1f ns/call\n", run(observes, 1));
    printf("hot inc     %d threads: %.1f ns/call (wall time / all calls, same series)\n", threads,
           run(incs, threads));
    printf("hot observe %d threads: %.1f ns/call (wall time / all calls, same series)\n", threads,
           run(observes, threads));
    /* A scrape's render with a realistic population: 30 routes x 5 statuses, 12 task series. */
    char route[32], status[8];
    for (int r = 0; r < 30; r++)
        for (int s = 0; s < 5; s++) {
            snprintf(route, sizeof route, "/v1/r%d/{}", r);
            snprintf(status, sizeof status, "%d", 200 + s);
            gp_metrics_inc(GP_M_HTTP_REQUESTS, "GET", route, status);
            gp_metrics_observe(GP_M_HTTP_DURATION, 0.01, "GET", route);
        }
    for (int t = 0; t < 12; t++) {
        snprintf(route, sizeof route, "type%d", t);
        gp_metrics_observe(GP_M_TASK_RUN, 1, route, "p");
        gp_metrics_observe(GP_M_TASK_QUEUE_WAIT, 1, route, "p");
    }
    size_t len = 0;
    int n = 200;
    double t0 = now();
    for (int i = 0; i < n; i++)
        free(gp_metrics_render(&len));
    printf("render (%zu bytes)   : %.1f us/scrape\n", len, (now() - t0) * 1e6 / n);
    return 0;
}

/*
 * metrics_scrape.c — gp_metrics_text (core/metrics.h): the gauges read at scrape time from
 * the runtime's backends, then the exposition. Here rather than in core/ because it reads
 * the queue, presence and the worker pool, which sit above core.
 */
#include "core/metrics.h"
#include "runtime/runtime.h"
#include "worker/worker.h"

#include <stdlib.h>

static void collect_queue(gp_queue_t *q)
{
    gp_queue_depths_t d;
    if (!q || gp_queue_depth_by_priority(q, &d) != 0)
        return; /* unreachable backend: the last values stay (and /ready says why) */
    for (size_t i = 0; i < d.n && i < GP_QUEUE_BANDS_MAX; i++)
        gp_metrics_set(GP_M_QUEUE_DEPTH, (int64_t)d.band[i].ready, d.band[i].priority, NULL, NULL);
    gp_metrics_set(GP_M_QUEUE_DELAYED, (int64_t)d.delayed, NULL, NULL, NULL);
}

static void collect_workers(const gp_runtime_t *rt)
{
    gp_worker_info_t *list = NULL;
    size_t n = 0;
    if (rt->presence && gp_presence_list(rt->presence, &list, &n) == 0) {
        int64_t alive = 0;
        for (size_t i = 0; i < n; i++)
            alive += list[i].alive;
        free(list);
        gp_metrics_set(GP_M_WORKERS_ALIVE, alive, NULL, NULL, NULL);
    }
    int size = rt->workers ? gp_worker_pool_size(rt->workers) : 0;
    int busy = rt->workers ? gp_worker_pool_busy(rt->workers) : 0;
    gp_metrics_set(GP_M_WORKER_SLOTS, size, NULL, NULL, NULL);
    gp_metrics_set(GP_M_WORKER_SLOTS_BUSY, busy, NULL, NULL, NULL);
}

char *gp_metrics_text(const gp_runtime_t *rt, size_t *len)
{
    collect_queue(rt->queue);
    collect_workers(rt);
    return gp_metrics_render(len);
}

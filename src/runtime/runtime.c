/* runtime.c — helpers shared by the gateway and the workers. */
#include "runtime/runtime.h"

#include <stdint.h>
#include <string.h>

int gp_runtime_dispatch(gp_runtime_t *rt, const gp_task_t *t)
{
    gp_queue_item_t item = {
        .priority = t->priority, .enqueued_at = t->created_at, .ready_at = t->not_before};
    memcpy(item.id, t->id, sizeof item.id);
    memcpy(item.owner, t->owner, sizeof item.owner);
    return gp_queue_push(rt->queue, &item);
}

int64_t gp_backoff_ms(int retry, int64_t base_ms, int64_t cap_ms, uint64_t rnd)
{
    if (retry < 1)
        retry = 1;
    int64_t ceiling = base_ms;
    for (int i = 1; i < retry && ceiling < cap_ms; i++)
        ceiling = ceiling > INT64_MAX / 2 ? INT64_MAX : ceiling * 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    if (ceiling <= 0)
        return 0;
    return (int64_t)(((unsigned __int128)rnd * ((uint64_t)ceiling + 1)) >> 64);
}

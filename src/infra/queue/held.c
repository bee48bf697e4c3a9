/* held.c — the id lookup shared by the queue backends' holds() (queue.h). */
#include "core/util.h"
#include "infra/queue/queue.h"

#include <string.h>

static int by_id(const void *a, const void *b)
{
    return strcmp(((const gp_queue_id_slot_t *)a)->id, ((const gp_queue_id_slot_t *)b)->id);
}

gp_queue_id_slot_t *gp_queue_id_slots(const char *const *ids, size_t n, unsigned char *where)
{
    gp_queue_id_slot_t *slots = gp_xmalloc((n ? n : 1) * sizeof *slots);
    for (size_t i = 0; i < n; i++)
        slots[i] = (gp_queue_id_slot_t){.id = ids[i], .pos = i};
    qsort(slots, n, sizeof *slots, by_id);
    memset(where, GP_HELD_NONE, n);
    return slots;
}

void gp_queue_id_slots_mark(const gp_queue_id_slot_t *slots, size_t n, const char *id,
                            unsigned char held, unsigned char *where)
{
    gp_queue_id_slot_t key = {.id = id};
    const gp_queue_id_slot_t *hit = n ? bsearch(&key, slots, n, sizeof *slots, by_id) : NULL;
    if (!hit)
        return;
    while (hit > slots && !strcmp(hit[-1].id, id))
        hit--;
    for (; hit < slots + n && !strcmp(hit->id, id); hit++)
        if (where[hit->pos] == GP_HELD_NONE || held < where[hit->pos])
            where[hit->pos] = held;
}

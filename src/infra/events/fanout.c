/* fanout.c — local subscribers of remote events (see fanout.h). */
#include "infra/events/fanout.h"
#include "core/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STACK_SUBS 16

struct gp_subscription {
    char task_id[37];
    gp_event_cb cb;
    void *arg;
    int in_flight;
    bool dead;
    gp_subscription_t *next;
};

struct gp_fanout {
    pthread_mutex_t lock;
    pthread_cond_t calls_done;
    gp_strmap_t *by_task; /* task id → gp_subscription_t list; "" = every task's events */
};

#define EVERY_TASK "" /* no task id is empty */

gp_fanout_t *gp_fanout_new(void)
{
    gp_fanout_t *f = gp_xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->calls_done, NULL);
    f->by_task = gp_strmap_new();
    return f;
}

static void free_list(const char *key, void *value, void *arg)
{
    (void)key, (void)arg;
    for (gp_subscription_t *s = value, *next; s; s = next) {
        next = s->next;
        free(s);
    }
}

void gp_fanout_free(gp_fanout_t *f)
{
    if (!f)
        return;
    gp_strmap_each(f->by_task, free_list, NULL);
    gp_strmap_free(f->by_task);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->calls_done);
    free(f);
}

gp_subscription_t *gp_fanout_subscribe(gp_fanout_t *f, const char *task_id, gp_event_cb cb,
                                       void *arg)
{
    gp_subscription_t *s = gp_xcalloc(1, sizeof *s);
    snprintf(s->task_id, sizeof s->task_id, "%s", task_id ? task_id : EVERY_TASK);
    s->cb = cb;
    s->arg = arg;
    pthread_mutex_lock(&f->lock);
    s->next = gp_strmap_get(f->by_task, s->task_id);
    gp_strmap_put(f->by_task, s->task_id, s);
    pthread_mutex_unlock(&f->lock);
    return s;
}

void gp_fanout_unsubscribe(gp_fanout_t *f, gp_subscription_t *sub)
{
    pthread_mutex_lock(&f->lock);
    sub->dead = true;
    while (sub->in_flight > 0)
        pthread_cond_wait(&f->calls_done, &f->lock);
    gp_subscription_t *head = gp_strmap_get(f->by_task, sub->task_id), **pp = &head;
    while (*pp && *pp != sub)
        pp = &(*pp)->next;
    if (*pp)
        *pp = sub->next;
    if (head)
        gp_strmap_put(f->by_task, sub->task_id, head);
    else
        gp_strmap_del(f->by_task, sub->task_id);
    pthread_mutex_unlock(&f->lock);
    free(sub);
}

void gp_fanout_deliver(gp_fanout_t *f, const gp_event_t *ev)
{
    gp_subscription_t *stack_subs[STACK_SUBS], **subs = stack_subs;
    size_t n = 0, cap = STACK_SUBS;
    pthread_mutex_lock(&f->lock);
    const char *keys[2] = {ev->task_id, EVERY_TASK};
    for (int k = 0; k < 2; k++) {
        for (gp_subscription_t *s = gp_strmap_get(f->by_task, keys[k]); s; s = s->next) {
            if (s->dead)
                continue;
            if (n == cap) {
                gp_subscription_t **bigger = gp_xmalloc(cap * 2 * sizeof *bigger);
                memcpy(bigger, subs, n * sizeof *bigger);
                if (subs != stack_subs)
                    free(subs);
                subs = bigger;
                cap *= 2;
            }
            s->in_flight++;
            subs[n++] = s;
        }
    }
    pthread_mutex_unlock(&f->lock);
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        subs[i]->cb(ev, subs[i]->arg);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < n; i++)
        subs[i]->in_flight--;
    pthread_cond_broadcast(&f->calls_done);
    pthread_mutex_unlock(&f->lock);
    if (subs != stack_subs)
        free(subs);
}

bool gp_fanout_has(gp_fanout_t *f, const char *task_id)
{
    pthread_mutex_lock(&f->lock);
    bool has = gp_strmap_get(f->by_task, task_id) || gp_strmap_get(f->by_task, EVERY_TASK);
    pthread_mutex_unlock(&f->lock);
    return has;
}

size_t gp_fanout_tasks(gp_fanout_t *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = gp_strmap_count(f->by_task);
    pthread_mutex_unlock(&f->lock);
    return n;
}

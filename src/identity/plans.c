/* plans.c — the built-in plan table (plans.h). */
#include "identity/plans.h"

#include <string.h>

const gp_plan_t gp_plans[] = {
    /* name, charged, monthly grant, boost, requests/min, max running, max queued */
    {"free", true, 100, 0, 120, 2, 100},
    {"pro", true, 10000, 5, 1200, 16, 10000},
    /* pay as you go: credits only from grants */
    {"payg", true, 0, 0, 600, 8, 1000},
    /* the built-in local user of a zero-configuration server, and service accounts */
    {"unlimited", false, 0, 0, 0, 0, 0},
    {NULL, false, 0, 0, 0, 0, 0},
};

const gp_plan_t *gp_plan_find(const char *name)
{
    for (const gp_plan_t *p = gp_plans; name && p->name; p++)
        if (!strcmp(p->name, name))
            return p;
    return &gp_plans[0];
}

#include "core/errors.h"
#include "core/log.h"

#include <stdio.h>
#include <time.h>

void gp_plan_grant_month(gp_store_t *store, const char *user_id, const char *plan_name)
{
    const gp_plan_t *plan = gp_plan_find(plan_name);
    if (plan->monthly_grant <= 0 || !store->vt->credits_grant)
        return;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char key[96];
    snprintf(key, sizeof key, "monthly:%s:%04d-%02d", user_id, tm.tm_year + 1900, tm.tm_mon + 1);
    int64_t balance = 0;
    int rc = store->vt->credits_grant(store, user_id, plan->monthly_grant, key,
                                      "monthly grant of the plan", &balance);
    if (rc == 0)
        gp_log(GP_LOG_INFO, NULL, "user %s: monthly grant of %lld credits (%s plan), balance %lld",
               user_id, (long long)plan->monthly_grant, plan->name, (long long)balance);
}

/* plans.c — the built-in plan table (plans.h). */
#include "identity/plans.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const gp_plan_t builtin_plans[] = {
    /* name, charged, monthly grant, boost, requests/min, max running, max queued */
    {"free", true, 100, 0, 120, 2, 100},
    {"pro", true, 10000, 5, 1200, 16, 10000},
    /* pay as you go: credits only from grants */
    {"payg", true, 0, 0, 600, 8, 1000},
    /* the built-in local user of a zero-configuration server, and service accounts */
    {"unlimited", false, 0, 0, 0, 0, 0},
    {NULL, false, 0, 0, 0, 0, 0},
};

/* The table in use: the built-in one, or --plans' (loaded once, kept for the process). */
static const gp_plan_t *plans = builtin_plans;

const gp_plan_t *gp_plan_find(const char *name)
{
    for (const gp_plan_t *p = plans; name && p->name; p++)
        if (!strcmp(p->name, name))
            return p;
    return &plans[0];
}

static bool plan_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 31)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

/* One plan object into p; false with the reason in err. */
static bool read_plan(const char *name, json_t *o, gp_plan_t *p, char *err, size_t cap)
{
    static const char *const ints[] = {"monthly_grant", "priority_boost", "requests_per_minute",
                                       "max_running", "max_queued"};
    if (!plan_name_ok(name) || !json_is_object(o)) {
        snprintf(err, cap, "plan \"%s\": a name of a-z, 0-9, - and _ with an object", name);
        return false;
    }
    if (json_object_size(o) != 6 || !json_is_boolean(json_object_get(o, "charged"))) {
        snprintf(err, cap, "plan %s: needs exactly charged (true/false) and %s, %s, %s, %s, %s",
                 name, ints[0], ints[1], ints[2], ints[3], ints[4]);
        return false;
    }
    int64_t v[5];
    for (size_t i = 0; i < 5; i++) {
        json_t *x = json_object_get(o, ints[i]);
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            json_integer_value(x) > (i == 1 ? 9 : (i == 0 ? 1000000000000LL : 100000000))) {
            snprintf(err, cap, "plan %s: %s must be a non-negative integer%s", name, ints[i],
                     i == 1 ? " up to 9" : "");
            return false;
        }
        v[i] = json_integer_value(x);
    }
    *p = (gp_plan_t){.name = strdup(name),
                     .charged = json_is_true(json_object_get(o, "charged")),
                     .monthly_grant = v[0],
                     .priority_boost = (int)v[1],
                     .requests_per_minute = (int)v[2],
                     .max_running = (int)v[3],
                     .max_queued = (int)v[4]};
    return p->name != NULL;
}

int gp_plans_load(const char *path, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root) || json_object_size(root) == 0 ||
        json_object_size(root) > 64) {
        snprintf(err, cap, "--plans %s: %s", path,
                 root ? "must be an object of 1 to 64 plans" : jerr.text);
        json_decref(root);
        return -1;
    }
    gp_plan_t *table = calloc(json_object_size(root) + 1, sizeof *table);
    size_t n = 0;
    const char *name;
    json_t *o;
    bool ok = table != NULL;
    json_object_foreach (root, name, o) {
        if (!ok || !read_plan(name, o, &table[n], err, cap)) {
            ok = false;
            break;
        }
        n++;
    }
    json_decref(root);
    if (!ok) {
        for (size_t i = 0; table && i < n; i++)
            free((char *)table[i].name);
        free(table);
        return -1;
    }
    plans = table; /* kept for the life of the process */
    return 0;
}

#include "core/errors.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define GRANTED_SLOTS 4096 /* a collision only costs one more idempotent store call */
static pthread_mutex_t granted_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t granted[GRANTED_SLOTS];

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
    /* Once this process has seen the month's grant through, it does not ask the store again:
     * the store call is a write, and this runs on every key-cache miss (an event thread). */
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the ledger key */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    size_t slot = (size_t)(h % GRANTED_SLOTS);
    pthread_mutex_lock(&granted_lock);
    bool done = granted[slot] == h;
    pthread_mutex_unlock(&granted_lock);
    if (done)
        return;
    int64_t balance = 0;
    int rc = store->vt->credits_grant(store, user_id, plan->monthly_grant, key,
                                      "monthly grant of the plan", &balance);
    if (rc == 0 || rc == -GP_E_CONFLICT) { /* granted now, or before */
        pthread_mutex_lock(&granted_lock);
        granted[slot] = h;
        pthread_mutex_unlock(&granted_lock);
    }
    if (rc == 0)
        gp_log(GP_LOG_INFO, NULL, "user %s: monthly grant of %lld credits (%s plan), balance %lld",
               user_id, (long long)plan->monthly_grant, plan->name, (long long)balance);
}

/*
 * plans.h — what a user's plan gives: whether tasks are charged, the credits granted each
 * calendar month, a priority boost (seed 003: Pro users ahead of Free users), a request
 * rate, and how many of the user's tasks may run at once and wait in the queue. Plans are data: the built-in table below (docs/api.md "Plans"); an unknown plan name
 * behaves like "free".
 *
 * Thread-safety: gp_plans_load() runs once at start, before any other thread reads plans;
 * afterwards the table is immutable.
 */
#ifndef GP_IDENTITY_PLANS_H
#define GP_IDENTITY_PLANS_H

#include "infra/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gp_plan {
    const char *name;
    bool charged;            /* tasks reserve and capture credits */
    int64_t monthly_grant;   /* credits added on the first request of each month (UTC) */
    int priority_boost;      /* added to the requested priority (capped at 9) */
    int requests_per_minute; /* per user, every authenticated route; 0 = unlimited */
    int max_running;         /* the user's tasks running at once, across workers; 0 = any */
    int max_queued;          /* the user's pending tasks; a submit past it gets 429; 0 = any */
} gp_plan_t;

/* Replaces the built-in table with the plans of a JSON file:
 *   {"free": {"charged": true, "monthly_grant": 100, "priority_boost": 0,
 *             "requests_per_minute": 120, "max_running": 2, "max_queued": 100}, …}
 * Every field is required; unknown fields, names that are not [a-z0-9_-]{1,31} and negative
 * numbers are refused. The first plan is the fallback for unknown names. 0, or -1 with the
 * reason in err. */
int gp_plans_load(const char *path, char *err, size_t cap);

/* The plan called name; the first plan ("free" built in) when there is none. Never NULL. */
const gp_plan_t *gp_plan_find(const char *name);

/* Grants the plan's monthly credits to the user once per calendar month (UTC): idempotent by
 * a ledger key, so every gateway may call it. Errors are ignored (the next call retries). */
void gp_plan_grant_month(gp_store_t *store, const char *user_id, const char *plan_name);

#endif

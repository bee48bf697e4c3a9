/* records.c — freeing the identity records the store hands out (store.h). */
#include "infra/store/store.h"

#include <stdlib.h>
#include <string.h>

void gp_user_clear(gp_user_t *u)
{
    free(u->email);
    free(u->display_name);
    free(u->plan);
    free(u->oidc_issuer);
    free(u->oidc_subject);
    memset(u, 0, sizeof *u);
}

void gp_api_key_clear(gp_api_key_t *k)
{
    free(k->name);
    free(k->scopes);
    memset(k, 0, sizeof *k);
}

void gp_ledger_entry_clear(gp_ledger_entry_t *e)
{
    free(e->note);
    memset(e, 0, sizeof *e);
}

const char *gp_attempt_status_for(gp_task_status_t to, const char *error_code)
{
    switch (to) {
    case GP_TASK_SUCCEEDED: return "succeeded";
    case GP_TASK_FAILED: return "failed";
    case GP_TASK_CANCELED: return "canceled";
    case GP_TASK_PENDING: return error_code ? "retried" : "interrupted";
    case GP_TASK_PROCESSING: break;
    }
    return "running";
}

void gp_webhook_endpoint_clear(gp_webhook_endpoint_t *e)
{
    free(e->url);
    free(e->description);
    e->url = e->description = NULL;
}

void gp_webhook_delivery_clear(gp_webhook_delivery_t *d)
{
    free(d->url);
    free(d->payload);
    d->url = d->payload = NULL;
}

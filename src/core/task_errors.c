/* task_errors.c — lookups generated from the task error list in genpulse/task_errors.h. */
#include <genpulse/task_errors.h>

#include <stddef.h>

static const struct {
    const char *code;
    gp_retry_class_t retry;
    const char *meaning;
} task_error_table[] = {
#define GP__TASK_ERR_ROW(name, code, retry, meaning) {code, GP_RETRY_##retry, meaning},
    GP_TASK_ERROR_LIST(GP__TASK_ERR_ROW)
#undef GP__TASK_ERR_ROW
};

static size_t index_of(gp_task_error_t e)
{
    return (unsigned)e < GP_TE__COUNT ? (size_t)e : (size_t)GP_TE_PROVIDER_ERROR;
}

const char *gp_task_error_code(gp_task_error_t e)
{
    return task_error_table[index_of(e)].code;
}

gp_retry_class_t gp_task_error_retry(gp_task_error_t e)
{
    return task_error_table[index_of(e)].retry;
}

const char *gp_task_error_meaning(gp_task_error_t e)
{
    return task_error_table[index_of(e)].meaning;
}

int gp_task_error_retryable(gp_task_error_t e, int caller)
{
    switch (gp_task_error_retry(e)) {
    case GP_RETRY_ALWAYS: return 1;
    case GP_RETRY_NEVER: return 0;
    default: return caller != 0;
    }
}

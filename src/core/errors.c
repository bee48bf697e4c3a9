/* errors.c — lookups generated from the one error list in errors.h. */
#include "core/errors.h"

static const struct {
    const char *code;
    int status;
    const char *message;
} error_table[] = {
#define GP__ERR_ROW(name, code, status, msg) {code, status, msg},
    GP_ERROR_LIST(GP__ERR_ROW)
#undef GP__ERR_ROW
};

static int index_of(int err)
{
    if (err < 0)
        err = -err;
    return err < GP_E__COUNT ? err : GP_E_INTERNAL;
}

const char *gp_err_code(int err)
{
    return error_table[index_of(err)].code;
}
int gp_err_http_status(int err)
{
    return error_table[index_of(err)].status;
}
const char *gp_err_message(int err)
{
    return error_table[index_of(err)].message;
}

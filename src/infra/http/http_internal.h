/* http_internal.h — process-wide wiring of the HTTP client (main only). */
#ifndef GP_HTTP_INTERNAL_H
#define GP_HTTP_INTERNAL_H

#include "infra/limiter/limiter.h"

/* The limiter rate limits use (NULL: none). Set before worker threads start, cleared after
 * they stop. */
void gp_http_set_limiter(gp_limiter_t *l);

#endif

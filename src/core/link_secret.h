/*
 * link_secret.h — the key that signs /files/ links, from --link-secret or, when that is empty,
 * DATA_DIR/link-secret (created on first start, 0600). Every process that writes or serves
 * the same files must hold the same key. Safe across processes (core/signed_link.h).
 */
#ifndef GP_LINK_SECRET_H
#define GP_LINK_SECRET_H

#include "core/settings.h"

#include <stddef.h>
#include <stdint.h>

#define GP_LINK_SECRET_LEN 32

/* 0, or -1 with the reason in err. */
int gp_link_secret_load(const gp_settings_t *s, uint8_t out[GP_LINK_SECRET_LEN], char *err,
                        size_t cap);

/* A signed link to a stored file: public_url + /files/<owner>/<name>?expires=…&signature=…,
 * valid for ttl_s from now. Caller frees. */
char *gp_files_link(const uint8_t secret[GP_LINK_SECRET_LEN], const char *public_url,
                    const char *owner, const char *name, int64_t ttl_s);

#endif

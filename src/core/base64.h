/*
 * base64.h — RFC 4648 base64 (Celery's `body_encoding: base64`, data URLs, JWT). Written here
 * because the client library (libgenpulse.a) should not need libcrypto for 40 lines.
 * Thread-safe; results are malloc'd and freed by the caller.
 */
#ifndef GP_BASE64_H
#define GP_BASE64_H

#include <stddef.h>

/* Padded encoding of n bytes; NUL-terminated. Aborts on OOM (sizes are message-bounded). */
char *gp_base64_encode(const void *in, size_t n);
/* The same, NULL on OOM: for the client library, which must never abort its host. */
char *gp_base64_encode_or_null(const void *in, size_t n);
/* Decodes standard or URL-safe base64 (padding, CR/LF and spaces ignored) into *out_len
 * bytes plus a NUL; NULL on a character outside the alphabet. */
unsigned char *gp_base64_decode(const char *in, size_t n, size_t *out_len);

#endif

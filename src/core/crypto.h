/*
 * crypto.h — the few primitives the signers need (SigV4, Volc V4, Kling JWT, webhooks),
 * over OpenSSL's libcrypto. All functions are pure and thread-safe.
 */
#ifndef GP_CRYPTO_H
#define GP_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_SHA256_LEN 32
#define GP_SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

void gp_sha256(const void *data, size_t len, uint8_t out[GP_SHA256_LEN]);
void gp_sha256_hex(const void *data, size_t len, char out[GP_SHA256_HEX_LEN]);
/* SHA-256 of a file's contents as hex; -1 if it cannot be read. */
int gp_sha256_file_hex(const char *path, char out[GP_SHA256_HEX_LEN]);
void gp_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[GP_SHA256_LEN]);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void gp_hex(const uint8_t *in, size_t n, char *out);
/* Base64url without padding (RFC 7515 §2) of n bytes into out; returns the length written.
 * out needs 4*ceil(n/3)+1 bytes. */
size_t gp_base64url(const void *in, size_t n, char *out);
/* Constant-time equality of two byte strings of equal length n. */
bool gp_ct_equal(const void *a, const void *b, size_t n);
/* MD5 of data as base64 (Content-MD5). out needs 25 bytes. */
void gp_md5_base64(const void *data, size_t len, char out[25]);

#endif

/*
 * s3_url.h — the S3 storage URL (syntax and options: see the top of s3.c), parsed into what
 * requests need: endpoint origin and Host, path style, credentials, region and limits.
 *
 * Pure apart from reading AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
 * when the URL has no credentials. Thread-safe (no shared state); fuzzed by
 * tests/fuzz/fuzz_s3_url.c.
 */
#ifndef GP_S3_URL_H
#define GP_S3_URL_H

#include <stddef.h>
#include <stdint.h>

typedef struct gp_s3_url {
    char *origin;    /* "https://bucket.s3.amazonaws.com" or "http://127.0.0.1:9000" */
    char *host;      /* Host header value: the origin's authority without a default port */
    char *base_path; /* "/bucket" (path style) or "" (virtual-host style) */
    char *bucket;
    char *prefix; /* "" or ending in '/' */
    char *access_key, *secret_key, *session_token;
    char *region;
    int64_t presign_expires;
    size_t part_size; /* also the multipart threshold */
} gp_s3_url_t;

/*
 * Parses url into *out (owned by the caller: gp_s3_url_clear). Returns 0, or -GP_E_INTERNAL
 * with a reason starting "storage url: " in err (never holding the secret) and *out cleared.
 */
int gp_s3_url_parse(const char *url, gp_s3_url_t *out, char *err, size_t cap);
/* Frees every field (wiping the secret key) and zeroes *u. */
void gp_s3_url_clear(gp_s3_url_t *u);

#endif

/*
 * fuzz_s3_url.c — libFuzzer target for the S3 storage URL parser (gp_s3_url_parse in
 * src/infra/storage/s3_url.c). The input is the URL. Besides "no crash, no leak, no UB", it
 * checks the parser's contract and aborts when one is broken:
 *   - a failure returns -GP_E_INTERNAL, leaves the output zeroed and explains itself with a
 *     message starting "storage url: ";
 *   - a success yields an http(s) origin ending in the Host value, a Host and base path with
 *     no byte that could split a request line or header, a valid prefix ("" or "x/", never
 *     starting with '/'), visible-ASCII credentials, and limits in their documented ranges.
 * The AWS_* variables are cleared first, so only URL credentials count.
 *
 * s3_url.c is compiled into this translation unit so that it is coverage-instrumented (the
 * core archive is not; see fuzz_submit.c).
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "infra/storage/s3_url.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_s3_url: contract violated: %s\n", what);
        abort();
    }
}

static bool visible_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

static void check_parsed(const gp_s3_url_t *u)
{
    check(u->origin && u->host && u->base_path && u->bucket && u->prefix && u->region,
          "every field set");
    const char *scheme_end = strstr(u->origin, "://");
    check(scheme_end && (!strncmp(u->origin, "https://", 8) || !strncmp(u->origin, "http://", 7)),
          "origin is http(s)");
    check(!strcmp(scheme_end + 3, u->host), "origin's authority is the Host value");
    check(*u->host && visible_ascii(u->host), "Host is visible ASCII");
    check(!*u->base_path || (u->base_path[0] == '/' && !strcmp(u->base_path + 1, u->bucket)),
          "base path is \"\" or /bucket");
    check(bucket_ok(u->bucket), "bucket name valid");
    size_t pl = strlen(u->prefix);
    check(pl == 0 || (u->prefix[0] != '/' && u->prefix[pl - 1] == '/'), "prefix shape");
    check(token_ok(u->access_key, "/,;=") && token_ok(u->secret_key, ""), "credentials");
    check(!u->session_token || token_ok(u->session_token, ""), "session token");
    check(strlen(u->region) <= 64 && token_ok(u->region, "/,;="), "region");
    check(u->presign_expires >= 1 && u->presign_expires <= 604800, "presign_expires range");
    check(u->part_size >= S3_MIN_PART && u->part_size <= 5ull * 1024 * MIB, "part size range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool env_cleared;
    if (!env_cleared) {
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        unsetenv("AWS_SESSION_TOKEN");
        env_cleared = true;
    }
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    gp_s3_url_t u;
    char err[512] = "";
    int rc = gp_s3_url_parse(url, &u, err, sizeof err);
    if (rc == 0) {
        check_parsed(&u);
        gp_s3_url_clear(&u);
    } else {
        static const gp_s3_url_t zero;
        check(rc == -GP_E_INTERNAL, "failure code");
        check(!memcmp(&u, &zero, sizeof u), "output zeroed on failure");
        check(!strncmp(err, "storage url: ", 13), "failure explained");
    }
    free(url);
    return 0;
}

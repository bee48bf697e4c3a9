/*
 * fuzz_session_token.c — libFuzzer target for the signed cookie values of the browser
 * sign-in (core/session_token.h): arbitrary cookie text through gp_token_check with 1, 2 and
 * 5 fields. Contracts: a value passes (or is "expired") only if it is exactly what
 * gp_token_sign makes for the fields it yields, and every field fits its buffer.
 *
 * session_token.c is compiled into this unit so it is coverage-instrumented.
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "core/session_token.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t SECRET[32] = "fuzz-session-secret-fuzz-session";
#define NOW 1767225600LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GP_TOKEN_MAX + 16)
        return 0;
    char *value = malloc(size + 1);
    memcpy(value, data, size);
    value[size] = '\0';
    static const size_t counts[] = {1, 2, 5};
    for (size_t c = 0; c < 3; c++) {
        char fields[GP_TOKEN_FIELDS_MAX][128];
        int rc = gp_token_check(SECRET, value, counts[c], NOW, fields, 128);
        if (rc == 0 || rc == -2) {
            /* re-sign what was accepted: it must give back the same text */
            const char *ptrs[GP_TOKEN_FIELDS_MAX];
            for (size_t i = 0; i < counts[c]; i++)
                ptrs[i] = fields[i];
            char again[GP_TOKEN_MAX + 64];
            const char *p = value;
            for (size_t i = 0; i < counts[c]; i++)
                p = strchr(p, '.') + 1;
            long long exp = strtoll(p, NULL, 10);
            if (gp_token_sign(SECRET, ptrs, counts[c], exp, again, sizeof again) != 0 ||
                strcmp(again, value) != 0) {
                fprintf(stderr, "fuzz_session_token: accepted a value the signer does not make\n");
                abort();
            }
        } else if (rc != -1) {
            abort();
        }
    }
    free(value);
    return 0;
}

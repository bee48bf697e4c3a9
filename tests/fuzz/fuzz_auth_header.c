/*
 * fuzz_auth_header.c — libFuzzer target for the identity parsers: the Authorization header
 * (gp_bearer_parse, then gp_api_key_well_formed on the token), scope lists, --expires
 * durations, and the query values of a signed link.
 *
 * The whole input, up to its first NUL, is the header value, the scope list and the duration.
 * Split at newlines it is also "expires \n signature [\n path]" for gp_signed_link_check (a
 * fixed path when there is no third part). Besides "no crash, no leak, no UB", it checks the
 * contracts and aborts when one is broken:
 *   - bearer: a known code; outputs untouched on failure; on success a token inside the
 *     value, of b64token characters with '=' only at its end, after a "Bearer" scheme;
 *   - keys: a well-formed key is 41 characters, "gp_", and rebuilds to itself;
 *   - scopes: a success is a non-empty known set that survives format → parse; a failure
 *     says why; durations land in (0, GP_DURATION_MAX_MS];
 *   - links: a check passes (or says "expired") only for the signature the signer makes, and
 *     that signature always passes, expired exactly when now >= expires.
 *
 * api_key.c and signed_link.c are compiled into this translation unit so that they are
 * coverage-instrumented (the core archive is not; see fuzz_submit.c).
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "core/api_key.c"
#include "core/signed_link.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t FUZZ_SECRET[32] = "fuzz-secret-fuzz-secret-fuzz-sec";
#define FUZZ_NOW 1767225600LL

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_auth_header: contract violated: %s\n", what);
        abort();
    }
}

static void fuzz_key(const char *s)
{
    if (!gp_api_key_well_formed(s))
        return;
    check(strlen(s) == GP_API_KEY_LEN && !memcmp(s, "gp_", 3), "key shape");
    char again[GP_API_KEY_LEN + 1];
    check(gp_api_key_assemble(s + 3, again) == 0 && !strcmp(again, s), "key rebuilds");
    char hash[65], prefix[GP_API_KEY_DISPLAY_CAP];
    gp_api_key_hash(s, hash);
    gp_api_key_prefix(s, prefix);
    check(strlen(hash) == 64 && strlen(prefix) == GP_API_KEY_DISPLAY_LEN, "hash and prefix");
}

static void fuzz_bearer(const char *v)
{
    const char *tok = NULL;
    size_t len = 7;
    int rc = gp_bearer_parse(v, &tok, &len);
    check(rc == GP_BEARER_OK || rc == GP_BEARER_NOT_BEARER || rc == GP_BEARER_MALFORMED,
          "bearer code");
    if (rc != GP_BEARER_OK) {
        check(tok == NULL && len == 7, "bearer outputs untouched");
        return;
    }
    size_t vl = strlen(v);
    check(vl <= GP_BEARER_MAX && tok >= v + 7 && len >= 1 && tok + len <= v + vl, "token span");
    check(tok[-1] == ' ' && scheme_is_bearer(v + strspn(v, " \t"), tok), "scheme");
    size_t body = 0;
    while (body < len && is_b64token_char(tok[body]))
        body++;
    check(body >= 1, "token has a body");
    for (size_t i = body; i < len; i++)
        check(tok[i] == '=', "'=' only at the end");
    char *t = strndup(tok, len);
    if (t) {
        fuzz_key(t);
        free(t);
    }
}

static void fuzz_scopes_duration(const char *s)
{
    unsigned set = 1234;
    char why[96] = "";
    if (gp_scopes_parse(s, &set, why, sizeof why) == 0) {
        check(set && !(set & ~GP_SCOPE_ALL), "scope set");
        char text[GP_SCOPES_TEXT_CAP];
        unsigned again = 0;
        gp_scopes_format(set, text, sizeof text);
        check(gp_scopes_parse(text, &again, NULL, 0) == 0 && again == set, "scopes round trip");
    } else {
        check(set == 1234 && why[0], "scope failure explained");
    }
    int64_t ms = -1;
    if (gp_duration_parse(s, &ms) == 0)
        check(ms > 0 && ms <= GP_DURATION_MAX_MS, "duration range");
    else
        check(ms == -1, "duration untouched");
}

static void fuzz_link(const char *expires, const char *sig, const char *path)
{
    int rc = gp_signed_link_check(FUZZ_SECRET, sizeof FUZZ_SECRET, path, expires, sig, FUZZ_NOW);
    check(rc == GP_LINK_OK || rc == GP_LINK_BAD || rc == GP_LINK_EXPIRED, "link code");
    int64_t exp = 0;
    bool parsed = link_parse_expires(expires, &exp) == 0;
    char *link = parsed ? gp_signed_link(FUZZ_SECRET, sizeof FUZZ_SECRET, "", path, exp) : NULL;
    check(!parsed || !link == !link_path_ok(path), "signer refuses exactly the bad paths");
    if (!link) {
        check(rc == GP_LINK_BAD, "unsignable input refused");
        return;
    }
    /* the last parameter: path itself may contain "&signature=" */
    size_t ll = strlen(link);
    check(ll > GP_SIGNATURE_LEN + 11, "link length");
    const char *want = link + ll - GP_SIGNATURE_LEN;
    check(!memcmp(want - 11, "&signature=", 11), "signature is the last parameter");
    check((rc != GP_LINK_BAD) == !strcmp(sig, want), "only the real signature passes");
    int good = gp_signed_link_check(FUZZ_SECRET, sizeof FUZZ_SECRET, path, expires, want, FUZZ_NOW);
    check(good == (FUZZ_NOW >= exp ? GP_LINK_EXPIRED : GP_LINK_OK), "the real signature passes");
    free(link);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_bearer(s);
    fuzz_key(s);
    fuzz_scopes_duration(s);
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        char *sig = nl + 1, *path = strchr(sig, '\n');
        if (path)
            *path++ = '\0';
        fuzz_link(s, sig, path ? path : "/files/0190b0a8-1c4e-7c3a-9d2f-3b1e5a7c9d01/a.png");
    }
    free(s);
    return 0;
}

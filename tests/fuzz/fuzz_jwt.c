/*
 * fuzz_jwt.c — libFuzzer target for the ID-token verifier (src/identity/oidc.c), with keys
 * pinned from a fixed JWKS (no network). The first byte picks what the rest is:
 *   0x01  a JWKS document, pinned on a scratch issuer (gp_oidc_add_jwks);
 *   0x02  a claims object, checked directly (check_claims) against both issuers;
 *   else  the whole input is a token, verified (gp_oidc_verify) and, with a nonce, as a
 *         sign-in (gp_oidc_verify_login).
 * Besides "no crash, no leak, no UB" it checks the contract and aborts when one is broken: a
 * refusal returns -1 with a code from GP_OIDC_CODES, a message, and the identity untouched; an
 * acceptance has an issuer, a subject and an exp still in the future (minus the skew).
 *
 * The seeds (tests/fuzz/corpus/fuzz_jwt/) were signed with the private halves of the keys
 * below (python3-jwt, keys since discarded): valid RS256 and ES256 tokens, Google's alias
 * issuer, an expired one, several audiences, nbf in the future, no kid, alg none and HS256.
 *
 * oidc.c is compiled into this translation unit so that it is coverage-instrumented.
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "identity/oidc.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW 1800000000LL

static const char JWKS[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"r1\",\"n\":"
    "\"xMxx6u8O52wLEGt7vzJmehQwGSOZWs3a2f2qrttHwwX7DK-"
    "7mhS7bywa5lkM9hLx0mRijMVs1jMhmWYZcy9NALE7fHQ82jiAFN60WWK_HOPbf1IXMNLtPy8o9rktwC_"
    "nSu1xbQBLKfoK8TEgFVHanYw_Jk7F9ZqJFd5oGJWeA1h8Ox6_7hh6Cx0i92znABXLNXgO__"
    "5VjKZiWdA4hDn7iEKRk0krWPq00BznrqtC2U9fX8BIDbB7ovOUrtRIPZVjPeOXL1av-aX7zXlz8Q8TpFQMDGQgz-"
    "K27Bvn4hP3UOSugOGbg7tNI2WXEHzuJ13cFBcvsctfigFqXkXn9QRy4w\",\"e\":\"AQAB\"},{\"kty\":\"EC\","
    "\"use\":\"sig\",\"crv\":\"P-256\",\"kid\":\"e1\",\"x\":\"EqBjMacbL4uQ3vfW9oJIdVMtbeD2W8Pf-"
    "ZdbRT_H6uU\",\"y\":\"5t_00NywhSVA2tZbs5UZbbRORA6Ncx2YICluYRR_zH4\"}]}";

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_jwt: contract violated: %s\n", what);
        abort();
    }
}

static bool known_code(const char *code)
{
    for (size_t i = 0; code && i < sizeof code_table / sizeof code_table[0]; i++)
        if (code_table[i].code == code)
            return true;
    return false;
}

static gp_oidc_t *fuzz_oidc(void)
{
    static gp_oidc_t *o;
    if (o)
        return o;
    gp_log_setup(GP_LOG_ERROR, false);
    const gp_oidc_issuer_cfg_t cfg[] = {
        {.issuer = "https://issuer.example", .client_id = "fuzz-client"},
        {.issuer = GP_OIDC_GOOGLE_ISSUER, .client_id = "fuzz-client", .hosted_domain = "b.example"},
    };
    char err[256];
    o = gp_oidc_new(cfg, 2, -1, err, sizeof err);
    check(o != NULL, "setup");
    check(gp_oidc_add_jwks(o, cfg[0].issuer, JWKS, err, sizeof err) == 0, "pin keys 0");
    check(gp_oidc_add_jwks(o, cfg[1].issuer, JWKS, err, sizeof err) == 0, "pin keys 1");
    return o;
}

static void check_outcome(int rc, const char *code, const char *msg, gp_oidc_identity_t *id)
{
    static const gp_oidc_identity_t zero;
    if (rc == 0) {
        check(id->issuer && id->subject && *id->subject, "identity filled");
        check(id->exp > FUZZ_NOW - GP_OIDC_DEFAULT_SKEW_S, "accepted token not expired");
        gp_oidc_identity_clear(id);
    } else {
        check(rc == -1, "refusal returns -1");
        check(known_code(code), "refusal has a listed code");
        check(msg[0] != '\0', "refusal explained");
        check(!memcmp(id, &zero, sizeof *id), "identity untouched on refusal");
    }
}

static void fuzz_token(gp_oidc_t *o, const char *token)
{
    gp_oidc_identity_t id = {0};
    const char *code = NULL;
    char msg[256] = "";
    int rc = gp_oidc_verify(o, token, FUZZ_NOW, &id, &code, msg, sizeof msg);
    check_outcome(rc, code, msg, &id);
    (void)gp_oidc_looks_like_jwt(token);
    code = NULL;
    msg[0] = '\0';
    rc = gp_oidc_verify_login(o, token, "https://issuer.example", "n", FUZZ_NOW, &id, &code, msg,
                              sizeof msg);
    check_outcome(rc, code, msg, &id);
}

static void fuzz_jwks(const char *json)
{
    gp_oidc_issuer_cfg_t cfg = {.issuer = "https://scratch.example", .client_id = "c"};
    char err[256] = "";
    gp_oidc_t *o = gp_oidc_new(&cfg, 1, 0, err, sizeof err);
    check(o != NULL, "scratch setup");
    if (gp_oidc_add_jwks(o, cfg.issuer, json, err, sizeof err) != 0) {
        check(err[0] != '\0', "JWKS refusal explained");
    } else {
        issuer_t *is = &o->iss[0];
        check(is->keys.n > 0 && is->keys.n <= MAX_KEYS, "pinned keys counted");
        for (size_t i = 0; i < is->keys.n; i++)
            check(is->keys.v[i].pkey &&
                      (is->keys.v[i].alg == ALG_RS256 || is->keys.v[i].alg == ALG_ES256),
                  "pinned key usable");
    }
    gp_oidc_free(o);
}

static void fuzz_claims(gp_oidc_t *o, const char *text, size_t len)
{
    json_t *c = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        return;
    }
    for (size_t i = 0; i < o->n; i++) {
        const char *code = NULL;
        char msg[256] = "";
        err_t e = {&code, msg, sizeof msg};
        int rc = check_claims(o, &o->iss[i], c, FUZZ_NOW, i ? NULL : "n", &e);
        check(rc == 0 || (rc == -1 && known_code(code) && msg[0]), "claims refusal coded");
        if (rc == 0) {
            gp_oidc_identity_t id;
            identity_fill(&o->iss[i], c, &id);
            check(id.subject && *id.subject, "claims subject");
            gp_oidc_identity_clear(&id);
        }
    }
    json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp_oidc_t *o = fuzz_oidc();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (size > 0 && data[0] == 0x01)
        fuzz_jwks(text + 1);
    else if (size > 0 && data[0] == 0x02)
        fuzz_claims(o, text + 1, size - 1);
    else
        fuzz_token(o, text);
    free(text);
    return 0;
}

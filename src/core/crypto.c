/* crypto.c — thin wrappers over OpenSSL (see crypto.h). */
#include "core/crypto.h"
#include "core/base64.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gp_sha256(const void *data, size_t len, uint8_t out[GP_SHA256_LEN])
{
    unsigned int n = 0;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void gp_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void gp_sha256_hex(const void *data, size_t len, char out[GP_SHA256_HEX_LEN])
{
    uint8_t d[GP_SHA256_LEN];
    gp_sha256(data, len, d);
    gp_hex(d, sizeof d, out);
}

int gp_sha256_file_hex(const char *path, char out[GP_SHA256_HEX_LEN])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    int err = ferror(f);
    fclose(f);
    uint8_t d[GP_SHA256_LEN];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    if (err)
        return -1;
    gp_hex(d, sizeof d, out);
    return 0;
}

void gp_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[GP_SHA256_LEN])
{
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

size_t gp_base64url(const void *in, size_t n, char *out)
{
    char *b = gp_base64_encode(in, n);
    size_t o = 0;
    for (const char *p = b; p && *p && *p != '='; p++)
        out[o++] = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    out[o] = '\0';
    free(b);
    return o;
}

bool gp_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void gp_md5_base64(const void *data, size_t len, char out[25])
{
    unsigned char d[16];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    char *b = gp_base64_encode(d, sizeof d);
    snprintf(out, 25, "%s", b ? b : "");
    free(b);
}

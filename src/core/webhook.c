/* webhook.c — Standard Webhooks signing, names and schedule (see webhook.h). */
#include "core/webhook.h"
#include "core/base64.h"
#include "core/crypto.h"
#include "core/task.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    unsigned bit;
    const char *name;
    unsigned task_event;
} types[] = {
    {GP_WH_TYPE_STARTED, "task.started", GP_WEBHOOK_EV_START},
    {GP_WH_TYPE_OUTPUT, "task.output", GP_WEBHOOK_EV_OUTPUT},
    {GP_WH_TYPE_LOGS, "task.logs", GP_WEBHOOK_EV_LOGS},
    {GP_WH_TYPE_SUCCEEDED, "task.succeeded", GP_WEBHOOK_EV_COMPLETED},
    {GP_WH_TYPE_FAILED, "task.failed", GP_WEBHOOK_EV_COMPLETED},
    {GP_WH_TYPE_CANCELED, "task.canceled", GP_WEBHOOK_EV_COMPLETED},
};
#define N_TYPES (sizeof types / sizeof types[0])

unsigned gp_webhook_type_parse(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (!strcmp(types[i].name, name))
            return types[i].bit;
    return 0;
}

const char *gp_webhook_type_name(unsigned bit)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].bit == bit)
            return types[i].name;
    return NULL;
}

unsigned gp_webhook_type_task_event(unsigned bit)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].bit == bit)
            return types[i].task_event;
    return 0;
}

void gp_webhook_secret_new(char out[GP_WH_SECRET_LEN])
{
    uint8_t key[32];
    gp_random_bytes(key, sizeof key);
    char *b64 = gp_base64_encode(key, sizeof key);
    snprintf(out, GP_WH_SECRET_LEN, "whsec_%s", b64);
    free(b64);
}

void gp_webhook_id_new(const char *prefix, size_t nhex, char out[GP_WH_ID_LEN])
{
    uint8_t raw[16];
    char hex[33];
    if (nhex > 32)
        nhex = 32;
    gp_random_bytes(raw, sizeof raw);
    gp_hex(raw, sizeof raw, hex);
    hex[nhex] = '\0';
    snprintf(out, GP_WH_ID_LEN, "%s%s", prefix, hex);
}

int gp_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
                    size_t len, char out[GP_WH_SIGNATURE_LEN])
{
    const char *b64 = !strncmp(secret, "whsec_", 6) ? secret + 6 : secret;
    size_t klen = 0;
    unsigned char *key = gp_base64_decode(b64, strlen(b64), &klen);
    if (!key || klen == 0 || klen > 64) {
        free(key);
        return -1;
    }
    char head[128];
    int hn = snprintf(head, sizeof head, "%s.%lld.", msg_id, (long long)timestamp);
    if (hn < 0 || (size_t)hn >= sizeof head) {
        free(key);
        return -1;
    }
    size_t total = (size_t)hn + len;
    char *content = gp_xmalloc(total + 1);
    memcpy(content, head, (size_t)hn);
    if (len)
        memcpy(content + hn, body, len);
    uint8_t mac[GP_SHA256_LEN];
    gp_hmac_sha256(key, klen, content, total, mac);
    free(content);
    free(key);
    char *sig = gp_base64_encode(mac, sizeof mac);
    snprintf(out, GP_WH_SIGNATURE_LEN, "v1,%s", sig);
    free(sig);
    return 0;
}

int64_t gp_webhook_retry_delay_ms(int n, double scale, uint64_t rnd)
{
    static const int64_t wait_s[GP_WH_MAX_ATTEMPTS - 1] = {
        5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600};
    if (n < 1 || n >= GP_WH_MAX_ATTEMPTS)
        return -1;
    double ms = (double)wait_s[n - 1] * 1000.0 * scale;
    /* ±10 %: spreads the retries of many deliveries that failed together. */
    double jitter = ((double)(rnd >> 11) / (double)(1ull << 53)) * 0.2 - 0.1;
    ms *= 1.0 + jitter;
    return ms < 0 ? 0 : (int64_t)ms;
}

const char *gp_webhook_url_problem(const char *url)
{
    if (!url)
        return "must be a string (an http:// or https:// URL)";
    bool http = !strncasecmp(url, "http://", 7), https = !strncasecmp(url, "https://", 8);
    if (!http && !https)
        return "must be an http:// or https:// URL";
    if (strlen(url) > GP_WH_URL_MAX)
        return "must be at most 2048 bytes long";
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}", *p))
            return "must not contain spaces, control, non-ASCII or unsafe characters";
    const char *host = url + (https ? 8 : 7);
    if (!*host || *host == '/' || *host == '?' || *host == '#' || *host == ':')
        return "must name a host";
    if (memchr(host, '@', strcspn(host, "/?#")))
        return "must not carry credentials (user@host)";
    return NULL;
}

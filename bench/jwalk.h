/*
 * jwalk.h — a tiny callback JSON walker for the benchmark tools. It does not build a tree:
 * it reports every scalar member (with its key and container depth) and every object end.
 * Depth 1 is the top-level object. String values are reported raw (escapes not decoded),
 * which is enough for UUIDs, status words and opaque cursors.
 */
#ifndef GENPULSE_BENCH_JWALK_H
#define GENPULSE_BENCH_JWALK_H

#include <stddef.h>
#include <string.h>

typedef struct jwalk {
    const char *p, *end;
    int depth;
    /* type: 's' string, 'n' number, 'l' literal (true/false/null) */
    void (*on_scalar)(void *user, int depth, const char *key, size_t key_len, const char *val,
                      size_t val_len, char type);
    void (*on_object_end)(void *user, int depth);
    void *user;
} jwalk_t;

static void jw_ws(jwalk_t *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

/* On entry *w->p == '"'. Sets s and n to the raw content, leaves p after the closing quote. */
static int jw_string(jwalk_t *w, const char **s, size_t *n)
{
    const char *q = ++w->p;
    while (q < w->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= w->end)
        return -1;
    *s = w->p;
    *n = (size_t)(q - w->p);
    w->p = q + 1;
    return 0;
}

static int jw_value(jwalk_t *w, const char *key, size_t key_len)
{
    jw_ws(w);
    if (w->p >= w->end)
        return -1;
    char ch = *w->p;
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        w->p++;
        w->depth++;
        jw_ws(w);
        if (w->p < w->end && *w->p == close) {
            w->p++;
        } else {
            for (;;) {
                const char *k = NULL;
                size_t kn = 0;
                if (ch == '{') {
                    jw_ws(w);
                    if (w->p >= w->end || *w->p != '"' || jw_string(w, &k, &kn) != 0)
                        return -1;
                    jw_ws(w);
                    if (w->p >= w->end || *w->p != ':')
                        return -1;
                    w->p++;
                }
                if (jw_value(w, k, kn) != 0)
                    return -1;
                jw_ws(w);
                if (w->p >= w->end)
                    return -1;
                if (*w->p == ',') {
                    w->p++;
                    continue;
                }
                if (*w->p == close) {
                    w->p++;
                    break;
                }
                return -1;
            }
        }
        if (ch == '{' && w->on_object_end)
            w->on_object_end(w->user, w->depth);
        w->depth--;
        return 0;
    }
    const char *v;
    size_t vn;
    char type;
    if (ch == '"') {
        if (jw_string(w, &v, &vn) != 0)
            return -1;
        type = 's';
    } else {
        v = w->p;
        while (w->p < w->end && !strchr(",}] \t\r\n", *w->p))
            w->p++;
        vn = (size_t)(w->p - v);
        if (vn == 0)
            return -1;
        type = (ch == '-' || (ch >= '0' && ch <= '9')) ? 'n' : 'l';
    }
    if (w->on_scalar)
        w->on_scalar(w->user, w->depth, key, key_len, v, vn, type);
    return 0;
}

/* Walk a whole document. Returns 0 when it parsed, -1 otherwise. */
static int jwalk(const char *text, size_t len, void *user,
                 void (*on_scalar)(void *, int, const char *, size_t, const char *, size_t, char),
                 void (*on_object_end)(void *, int))
{
    jwalk_t w = {.p = text,
                 .end = text + len,
                 .depth = 0,
                 .on_scalar = on_scalar,
                 .on_object_end = on_object_end,
                 .user = user};
    return jw_value(&w, NULL, 0);
}

static int jw_key_is(const char *key, size_t key_len, const char *want)
{
    return key != NULL && key_len == strlen(want) && memcmp(key, want, key_len) == 0;
}

#endif

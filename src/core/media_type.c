/* media_type.c — the media-type table (see media_type.h). */
#include "core/media_type.h"

#include <string.h>
#include <strings.h>

typedef bool (*magic_fn)(const unsigned char *b, size_t n);

static bool is_png(const unsigned char *b, size_t n)
{
    return n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
}
static bool is_jpeg(const unsigned char *b, size_t n)
{
    return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}
static bool is_gif(const unsigned char *b, size_t n)
{
    return n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6));
}
static bool is_webp(const unsigned char *b, size_t n)
{
    return n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4);
}
static bool is_mp4(const unsigned char *b, size_t n)
{
    return n >= 12 && !memcmp(b + 4, "ftyp", 4);
}
static bool is_webm(const unsigned char *b, size_t n)
{
    return n >= 4 && !memcmp(b, "\x1a\x45\xdf\xa3", 4);
}
static bool is_wav(const unsigned char *b, size_t n)
{
    return n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WAVE", 4);
}
static bool is_mp3(const unsigned char *b, size_t n)
{
    return n >= 3 && (!memcmp(b, "ID3", 3) || (b[0] == 0xFF && (b[1] & 0xE0) == 0xE0));
}

/* The first row of a type gives its canonical extension; later rows are aliases. Sniffed
 * formats are tried in table order (JPEG before MP3: both may start with 0xFF). */
static const struct {
    const char *type, *ext;
    magic_fn magic;
} media_types[] = {
    {"image/png", "png", is_png},       {"image/jpeg", "jpg", is_jpeg},
    {"image/jpeg", "jpeg", NULL},       {"image/gif", "gif", is_gif},
    {"image/webp", "webp", is_webp},    {"video/mp4", "mp4", is_mp4},
    {"video/webm", "webm", is_webm},    {"video/quicktime", "mov", NULL},
    {"audio/wav", "wav", is_wav},       {"audio/x-wav", "wav", NULL},
    {"audio/wave", "wav", NULL},        {"audio/mpeg", "mp3", is_mp3},
    {"audio/ogg", "ogg", NULL},         {"audio/flac", "flac", NULL},
    {"application/json", "json", NULL}, {"text/plain; charset=utf-8", "txt", NULL},
};
#define N_MEDIA_TYPES (sizeof media_types / sizeof media_types[0])

const char *gp_media_type_of_name(const char *name)
{
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot)
        for (size_t i = 0; i < N_MEDIA_TYPES; i++)
            if (!strcasecmp(dot + 1, media_types[i].ext))
                return media_types[i].type; /* the first row of an extension is canonical */
    return GP_MEDIA_TYPE_UNKNOWN;
}

void gp_media_bare_type(const char *ct, char *out, size_t cap)
{
    size_t n = 0;
    while (ct && (*ct == ' ' || *ct == '\t'))
        ct++;
    for (; ct && ct[n] && ct[n] != ';' && ct[n] != ' ' && n + 1 < cap; n++)
        out[n] = (char)(ct[n] >= 'A' && ct[n] <= 'Z' ? ct[n] + 32 : ct[n]);
    if (cap)
        out[n] = '\0';
}

const char *gp_media_ext_of_type(const char *content_type)
{
    char bare[96];
    gp_media_bare_type(content_type, bare, sizeof bare);
    for (size_t i = 0; i < N_MEDIA_TYPES; i++) {
        size_t n = strcspn(media_types[i].type, ";");
        if (strlen(bare) == n && !strncmp(bare, media_types[i].type, n))
            return media_types[i].ext;
    }
    return NULL;
}

const char *gp_media_sniff(const void *bytes, size_t n)
{
    for (size_t i = 0; bytes && i < N_MEDIA_TYPES; i++)
        if (media_types[i].magic && media_types[i].magic(bytes, n))
            return media_types[i].type;
    return NULL;
}

bool gp_media_is(const char *content_type, const char *family)
{
    size_t n = strlen(family);
    while (content_type && *content_type == ' ')
        content_type++;
    return content_type && !strncasecmp(content_type, family, n) && content_type[n] == '/';
}

/*
 * media_internal.h — helpers shared by image.c and video.c; not part of the media API.
 */
#ifndef GP_MEDIA_INTERNAL_H
#define GP_MEDIA_INTERNAL_H

#include <stddef.h>
#include <vips/vips.h>

/* Decompression-bomb guard: a header claiming more pixels than this is refused unread. */
#define GP_MEDIA_MAX_PIXELS 100000000
/* BlurHash components: 4x3 is woltapp's default and gives 28 characters. */
#define GP_BLURHASH_X 4
#define GP_BLURHASH_Y 3
/* The hash is computed from a copy no larger than this; more pixels change nothing visible. */
#define GP_BLURHASH_SOURCE_MAX 64
#define GP_MEDIA_JPEG_QUALITY 85

void gp_media_set_error(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "what: <libvips' last message>" into err (libvips' buffer is cleared); returns -1. */
int gp_media_vips_fail(char *err, size_t cap, const char *what);
/* Header-only open with the pixel limit applied. 0, or -1 with err set and *out NULL. */
int gp_media_open_image(const char *path, VipsImage **out, char *err, size_t cap);
/* 3-band 8-bit sRGB (alpha flattened onto white). 0, or -1 with err set. */
int gp_media_to_srgb8(VipsImage *in, VipsImage **out, char *err, size_t cap);
/* Metadata-free JPEG at GP_MEDIA_JPEG_QUALITY. 0, or -1 with err set. */
int gp_media_write_jpeg(VipsImage *image, const char *path, char *err, size_t cap);

#endif

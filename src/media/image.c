/*
 * image.c — process-wide media setup and image analysis with libvips.
 *
 * libvips is thread-safe for per-call images, but its error buffer is one process-wide
 * string (guarded by its own lock). Every failure path here takes it with
 * vips_error_buffer_copy(), which reads and clears under that lock, and keeps only the last
 * line: under heavy concurrency a message from another thread's failure can still show up
 * in ours, which is cosmetic, never unsafe.
 */
#include "media/media.h"
#include "media/media_internal.h"

#include <libavutil/log.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

/* Written only inside media_init_once (under pthread_once); read-only afterwards. */
static pthread_once_t media_once = PTHREAD_ONCE_INIT;
static char media_init_error[256];

/* libvips reports recoverable decode trouble ("premature end of JPEG") as GLib warnings
 * on stderr; we surface failures through return values instead. */
static void drop_vips_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                              gpointer data)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
}

static void media_init_once(void)
{
    if (VIPS_INIT("genpulse") != 0) {
        char *detail = vips_error_buffer_copy();
        (void)snprintf(media_init_error, sizeof media_init_error, "libvips did not start: %s",
                       detail != NULL ? detail : "unknown error");
        g_free(detail);
        return;
    }
    /*
     * Outputs are analysed once each, usually under a path that is reused by a later task
     * (scratch dirs are recycled): the operation cache would only hold memory and could
     * return a stale decode of an overwritten file.
     */
    vips_cache_set_max(0);
    /* Loaders libvips marks untrusted (e.g. FITS, Matlab, ImageMagick) never see our input. */
    vips_block_untrusted_set(TRUE);
    (void)g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, drop_vips_warning, NULL);
    av_log_set_level(AV_LOG_QUIET);
}

int gp_media_init(char *err, size_t cap)
{
    (void)pthread_once(&media_once, media_init_once);
    if (media_init_error[0] != '\0') {
        if (err != NULL && cap > 0)
            (void)snprintf(err, cap, "%s", media_init_error);
        return -1;
    }
    return 0;
}

void gp_media_set_error(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list args;
    va_start(args, fmt);
    (void)vsnprintf(err, cap, fmt, args);
    va_end(args);
}

/* The last non-empty line of libvips' error buffer, which is cleared; "" when empty. */
static void take_vips_error(char *detail, size_t cap)
{
    detail[0] = '\0';
    char *all = vips_error_buffer_copy();
    if (all == NULL)
        return;
    size_t length = strlen(all);
    while (length > 0 && (all[length - 1] == '\n' || all[length - 1] == ' '))
        all[--length] = '\0';
    const char *last = strrchr(all, '\n');
    (void)snprintf(detail, cap, "%s", last != NULL ? last + 1 : all);
    g_free(all);
}

int gp_media_vips_fail(char *err, size_t cap, const char *what)
{
    char detail[200];
    take_vips_error(detail, sizeof detail);
    if (detail[0] != '\0')
        gp_media_set_error(err, cap, "%s: %s", what, detail);
    else
        gp_media_set_error(err, cap, "%s", what);
    return -1;
}

int gp_media_open_image(const char *path, VipsImage **out, char *err, size_t cap)
{
    *out = NULL;
    /* Sequential access: only the header is read here, pixels later in one pass. */
    VipsImage *image = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (image == NULL)
        return gp_media_vips_fail(err, cap, "not an image libvips can decode");
    int width = vips_image_get_width(image), height = vips_image_get_height(image);
    if ((int64_t)width * height > GP_MEDIA_MAX_PIXELS) {
        gp_media_set_error(err, cap, "image is %dx%d: more than the %d megapixel limit", width,
                           height, GP_MEDIA_MAX_PIXELS / 1000000);
        g_object_unref(image);
        return -1;
    }
    *out = image;
    return 0;
}

int gp_media_to_srgb8(VipsImage *in, VipsImage **out, char *err, size_t cap)
{
    *out = NULL;
    VipsImage *flat = NULL, *srgb = NULL, *rgb = NULL;
    int rc = -1;
    /*
     * Transparent pixels become white: most transparent images (logos, stickers) are made
     * to sit on a light page, and a black matte would make their placeholder look wrong.
     */
    if (vips_image_hasalpha(in)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int flatten_rc = vips_flatten(in, &flat, "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (flatten_rc != 0)
            goto done;
    } else {
        flat = in;
        g_object_ref(flat);
    }
    if (vips_colourspace(flat, &srgb, VIPS_INTERPRETATION_sRGB, NULL) != 0)
        goto done;
    /* Colourspace leaves 16-bit or float formats as they were; hashes need 8-bit bands. */
    if (vips_image_get_bands(srgb) > 3) {
        VipsImage *three = NULL;
        if (vips_extract_band(srgb, &three, 0, "n", 3, NULL) != 0)
            goto done;
        g_object_unref(srgb);
        srgb = three;
    }
    if (vips_image_get_format(srgb) != VIPS_FORMAT_UCHAR) {
        if (vips_cast(srgb, &rgb, VIPS_FORMAT_UCHAR, NULL) != 0)
            goto done;
    } else {
        rgb = srgb;
        g_object_ref(rgb);
    }
    *out = rgb;
    rgb = NULL;
    rc = 0;
done:
    if (rc != 0)
        gp_media_vips_fail(err, cap, "cannot convert the image to sRGB");
    if (flat != NULL)
        g_object_unref(flat);
    if (srgb != NULL)
        g_object_unref(srgb);
    if (rgb != NULL)
        g_object_unref(rgb);
    return rc;
}

int gp_media_write_jpeg(VipsImage *image, const char *path, char *err, size_t cap)
{
    /* Progressive-free, metadata-free: thumbnails are small and must not leak EXIF/GPS. */
    if (vips_jpegsave(image, path, "Q", GP_MEDIA_JPEG_QUALITY, "strip", TRUE, NULL) != 0)
        return gp_media_vips_fail(err, cap, "cannot write the JPEG");
    return 0;
}

/* BlurHash of an already small image. */
static int hash_small_image(VipsImage *small, char out[GP_BLURHASH_MAX], char *err, size_t cap)
{
    VipsImage *rgb = NULL;
    if (gp_media_to_srgb8(small, &rgb, err, cap) != 0)
        return -1;
    size_t size = 0;
    uint8_t *pixels = vips_image_write_to_memory(rgb, &size);
    int width = vips_image_get_width(rgb), height = vips_image_get_height(rgb);
    g_object_unref(rgb);
    if (pixels == NULL)
        return gp_media_vips_fail(err, cap, "cannot decode the image");
    int rc = 0;
    if (size != (size_t)width * (size_t)height * 3 ||
        gp_blurhash_encode(GP_BLURHASH_X, GP_BLURHASH_Y, width, height, pixels, (size_t)width * 3,
                           out) != 0) {
        gp_media_set_error(err, cap, "cannot compute the BlurHash");
        rc = -1;
    }
    g_free(pixels);
    return rc;
}

int gp_media_probe_image(const char *path, gp_image_info_t *info, const char *thumb_path,
                         int thumb_max, char *err, size_t cap)
{
    if (path == NULL || info == NULL || (thumb_path != NULL && thumb_max < 1)) {
        gp_media_set_error(err, cap, "bad arguments");
        return -1;
    }
    memset(info, 0, sizeof *info);
    if (gp_media_init(err, cap) != 0)
        return -1;

    VipsImage *header = NULL;
    if (gp_media_open_image(path, &header, err, cap) != 0)
        return -1;
    int width = vips_image_get_width(header), height = vips_image_get_height(header);
    /* Report the size a viewer shows, i.e. after the EXIF rotation thumbnails apply. */
    bool swap = vips_image_get_orientation_swap(header) != 0;
    g_object_unref(header);

    /*
     * Decode through vips_thumbnail: it shrinks while loading (JPEG DCT scaling, PNG in
     * one streaming pass), so even a 100 MP input never becomes a full-size raster.
     * fail_on=truncated: a cut-off file is an error, not a half-grey picture.
     */
    int first_side = thumb_path != NULL && thumb_max > GP_BLURHASH_SOURCE_MAX
                         ? thumb_max
                         : GP_BLURHASH_SOURCE_MAX;
    VipsImage *first = NULL;
    if (vips_thumbnail(path, &first, first_side, "height", first_side, "size", VIPS_SIZE_DOWN,
                       "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL) != 0)
        return gp_media_vips_fail(err, cap, "cannot decode the image");

    /* Materialise once: both the thumbnail and the hash read these pixels. */
    VipsImage *decoded = vips_image_copy_memory(first);
    g_object_unref(first);
    if (decoded == NULL)
        return gp_media_vips_fail(err, cap, "cannot decode the image");

    int rc = 0;
    if (thumb_path != NULL) {
        VipsImage *thumb = NULL, *thumb_rgb = NULL;
        rc = vips_thumbnail_image(decoded, &thumb, thumb_max, "height", thumb_max, "size",
                                  VIPS_SIZE_DOWN, NULL) != 0
                 ? gp_media_vips_fail(err, cap, "cannot make the thumbnail")
                 : 0;
        if (rc == 0)
            rc = gp_media_to_srgb8(thumb, &thumb_rgb, err, cap);
        if (rc == 0)
            rc = gp_media_write_jpeg(thumb_rgb, thumb_path, err, cap);
        if (thumb != NULL)
            g_object_unref(thumb);
        if (thumb_rgb != NULL)
            g_object_unref(thumb_rgb);
    }
    if (rc == 0) {
        VipsImage *small = NULL;
        rc = vips_thumbnail_image(decoded, &small, GP_BLURHASH_SOURCE_MAX, "height",
                                  GP_BLURHASH_SOURCE_MAX, "size", VIPS_SIZE_DOWN, NULL) != 0
                 ? gp_media_vips_fail(err, cap, "cannot shrink the image")
                 : hash_small_image(small, info->blurhash, err, cap);
        if (small != NULL)
            g_object_unref(small);
    }
    g_object_unref(decoded);
    if (rc != 0) {
        info->blurhash[0] = '\0';
        return -1;
    }
    info->width = swap ? height : width;
    info->height = swap ? width : height;
    return 0;
}

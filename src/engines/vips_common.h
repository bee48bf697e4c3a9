/*
 * vips_common.h — libvips plumbing shared by the local image/video engines (vips.c,
 * kenburns.c). Header-only on purpose: engines are also linked into test_engines without
 * the rest of the core, so they cannot call into src/media.
 */
#ifndef GP_ENGINES_VIPS_COMMON_H
#define GP_ENGINES_VIPS_COMMON_H

#include "genpulse/handler.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

/*
 * The server starts libvips in gp_media_init() before any worker exists; this once-guard
 * only matters where that did not happen (unit tests), and keeps two engines from racing
 * into vips_init(), which is not thread-safe itself.
 */
static pthread_once_t engine_vips_once = PTHREAD_ONCE_INIT;
static int engine_vips_status; /* written only inside the once routine */

static void engine_vips_start(void)
{
    engine_vips_status = VIPS_INIT("genpulse");
}

static inline int engine_vips_init(gp_ctx_t *ctx)
{
    (void)pthread_once(&engine_vips_once, engine_vips_start);
    if (engine_vips_status != 0)
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_UNAVAILABLE, "libvips did not start");
    return 0;
}

/* libvips' last error line (its process-wide buffer is read and cleared under its lock). */
static inline void engine_vips_error(char *detail, size_t cap)
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

/* Fail the task with libvips' reason appended to `what`. */
static inline int engine_vips_fail(gp_ctx_t *ctx, bool retryable, gp_task_error_t code,
                                   const char *what)
{
    char detail[200];
    engine_vips_error(detail, sizeof detail);
    return gp_ctx_fail(ctx, retryable, code, "%s%s%s", what, detail[0] != '\0' ? ": " : "", detail);
}

/* The pixel ceiling from the "max-megapixels" setting (0.001..1000, checked at start). */
static inline double engine_max_pixels(const gp_ctx_t *ctx)
{
    return gp_ctx_setting_num(ctx, "max-megapixels") * 1e6;
}

/*
 * Read only the header of the input at path and check it against the pixel limit, so a
 * small file announcing a huge image is refused before anything is decoded.
 * Returns 0 with the (display) size set, or a gp_ctx_fail() value.
 */
static inline int engine_check_input(gp_ctx_t *ctx, const char *path, int *width, int *height)
{
    VipsImage *header = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (header == NULL)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT,
                                "the input is not a readable image");
    *width = vips_image_get_width(header);
    *height = vips_image_get_height(header);
    if (vips_image_get_orientation_swap(header)) {
        int swap = *width;
        *width = *height;
        *height = swap;
    }
    g_object_unref(header);
    double limit = engine_max_pixels(ctx);
    if ((double)*width * (double)*height > limit)
        return gp_ctx_fail(ctx, false, GP_TE_INPUT_TOO_LARGE,
                           "the input image is %dx%d, more than the %.1f megapixel limit", *width,
                           *height, limit / 1e6);
    return 0;
}

/* 3-band 8-bit sRGB, transparency flattened onto `white` (255) or black (0). */
static inline int engine_to_srgb8(VipsImage *in, VipsImage **out, double matte)
{
    *out = NULL;
    VipsImage *flat = NULL, *srgb = NULL, *three = NULL;
    int rc = -1;
    if (vips_image_hasalpha(in)) {
        VipsArrayDouble *background = vips_array_double_newv(1, matte);
        int flatten = vips_flatten(in, &flat, "background", background, NULL);
        vips_area_unref(VIPS_AREA(background));
        if (flatten != 0)
            goto done;
    } else {
        flat = in;
        g_object_ref(flat);
    }
    if (vips_colourspace(flat, &srgb, VIPS_INTERPRETATION_sRGB, NULL) != 0)
        goto done;
    if (vips_image_get_bands(srgb) > 3) {
        if (vips_extract_band(srgb, &three, 0, "n", 3, NULL) != 0)
            goto done;
    } else {
        three = srgb;
        g_object_ref(three);
    }
    if (vips_image_get_format(three) == VIPS_FORMAT_UCHAR) {
        *out = three;
        g_object_ref(three);
    } else if (vips_cast(three, out, VIPS_FORMAT_UCHAR, NULL) != 0) {
        goto done;
    }
    rc = 0;
done:
    if (flat != NULL)
        g_object_unref(flat);
    if (srgb != NULL)
        g_object_unref(srgb);
    if (three != NULL)
        g_object_unref(three);
    return rc;
}

#endif

/*
 * vips.c — the "vips" provider for image-to-image: deterministic local edits with libvips
 * (resize, crop, rotate, blur, sharpen, grayscale, flip) and re-encoding as PNG, JPEG or
 * WebP. NOT AI: the prompt is ignored. It gives image-to-image a real, fast provider for
 * pipelines and tests, and does the everyday edits no model is needed for.
 *
 * Safety: the input's header is checked against a pixel limit (setting max-megapixels)
 * before decoding, truncated inputs are errors (fail_on=truncated), metadata is stripped
 * from outputs (a user's EXIF/GPS never leaks into a derived file), and a cancel stops
 * libvips mid-computation through the image's kill flag.
 */
#include "genpulse/handler.h"
#include "engines/vips_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define VIPS_MAX_OUTPUT_SIDE 8192

static const char *const vips_operations[] = {"resize",  "crop",      "rotate", "blur",
                                              "sharpen", "grayscale", "flip",   NULL};
static const char *const vips_formats[] = {"png", "jpeg", "webp", NULL};
static const char *const vips_directions[] = {"horizontal", "vertical", NULL};

static const gp_param_spec_t vips_params[] = {
    GP_P_ENUM("operation", vips_operations, "\"resize\"", "The edit to apply."),
    GP_P_INT("width", false, 1, VIPS_MAX_OUTPUT_SIDE, NULL,
             "resize: fit within this width (alone: keep the aspect ratio); crop: width of "
             "the region."),
    GP_P_INT("height", false, 1, VIPS_MAX_OUTPUT_SIDE, NULL,
             "resize: fit within this height (alone: keep the aspect ratio); crop: height of "
             "the region."),
    GP_P_INT("left", false, 0, 1000000, NULL,
             "crop: left edge of the region (omitted: centred horizontally)."),
    GP_P_INT("top", false, 0, 1000000, NULL,
             "crop: top edge of the region (omitted: centred vertically)."),
    GP_P_NUMBER("angle", false, -360, 360, "90",
                "rotate: degrees clockwise; multiples of 90 are lossless, others enlarge the "
                "canvas (transparent corners for PNG/WebP, white for JPEG)."),
    GP_P_NUMBER("sigma", false, 0.1, 100, "2",
                "blur: Gaussian radius in pixels; sharpen: size of the detail to enhance."),
    GP_P_ENUM("direction", vips_directions, "\"horizontal\"", "flip: mirror axis."),
    GP_P_ENUM("format", vips_formats, "\"png\"", "Output file format."),
    GP_P_INT("quality", false, 1, 100, "85", "JPEG/WebP quality."),
    GP_P_END,
};

static const gp_provider_setting_t vips_settings[] = {
    GP_S_NUMBER("max-megapixels", "50", 0.001, 1000,
                "Largest input image (width x height, in millions of pixels) the vips provider "
                "decodes; larger inputs fail with input_too_large."),
    GP_S_END,
};

static const char *const vips_task_types[] = {"image-to-image", NULL};

typedef struct vips_job {
    gp_ctx_t *ctx;
    const char *operation;
    const char *format;
    bool want_alpha; /* the output format keeps transparency */
} vips_job_t;

/* Runs on libvips' threads while pixels are computed: only thread-safe calls here. */
static void on_eval(VipsImage *image, VipsProgress *progress, void *data)
{
    (void)progress;
    const vips_job_t *job = data;
    if (gp_ctx_is_canceled(job->ctx))
        vips_image_set_kill(image, TRUE);
}

/* Keep a param-range error a client error: 422-like, permanent. */
static int bad_params(gp_ctx_t *ctx, const char *message, int width, int height)
{
    return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "%s (the input is %dx%d)", message, width,
                       height);
}

/*
 * The edits. Each takes the upright input and sets *out; it returns 0, EDIT_VIPS_FAILED when
 * libvips refused (the caller reports libvips' reason), or a gp_ctx_fail() value.
 */
#define EDIT_VIPS_FAILED 1

typedef int (*vips_edit_fn)(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out);

static int vips_result(int vips_rc)
{
    return vips_rc != 0 ? EDIT_VIPS_FAILED : 0;
}

static int edit_crop(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out)
{
    gp_ctx_t *ctx = job->ctx;
    int64_t want_w = gp_ctx_param_int(ctx, "width", 0);
    int64_t want_h = gp_ctx_param_int(ctx, "height", 0);
    if (want_w <= 0 || want_h <= 0)
        return bad_params(ctx, "crop needs width and height", width, height);
    if (want_w > width || want_h > height)
        return bad_params(ctx, "the crop region is larger than the image", width, height);
    int64_t left = gp_ctx_param_int(ctx, "left", (width - want_w) / 2);
    int64_t top = gp_ctx_param_int(ctx, "top", (height - want_h) / 2);
    if (left + want_w > width || top + want_h > height)
        return bad_params(ctx, "the crop region reaches outside the image", width, height);
    return vips_result(
        vips_extract_area(in, out, (int)left, (int)top, (int)want_w, (int)want_h, NULL));
}

/* A rotation by other than a right angle enlarges the canvas and fills the corners. */
static int rotate_free(vips_job_t *job, VipsImage *in, double angle, VipsImage **out)
{
    int vips_rc = 0;
    VipsImage *source = in, *with_alpha = NULL;
    if (job->want_alpha && !vips_image_hasalpha(in)) {
        vips_rc = vips_addalpha(in, &with_alpha, NULL);
        source = with_alpha;
    }
    if (vips_rc == 0) {
        /* Transparent corners where the format has alpha, white otherwise. */
        bool alpha = vips_image_hasalpha(source) != 0;
        int bands = vips_image_get_bands(source);
        double fill[4] = {255, 255, 255, 255};
        if (alpha)
            fill[bands - 1] = 0;
        VipsArrayDouble *background = vips_array_double_new(fill, bands);
        vips_rc = vips_rotate(source, out, angle, "background", background, NULL);
        vips_area_unref(VIPS_AREA(background));
    }
    if (with_alpha != NULL)
        g_object_unref(with_alpha);
    return vips_result(vips_rc);
}

static int edit_rotate(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out)
{
    (void)width, (void)height;
    double angle = fmod(gp_ctx_param_num(job->ctx, "angle", 90.0), 360.0);
    if (angle < 0)
        angle += 360.0;
    if (fabs(angle - round(angle / 90.0) * 90.0) >= 1e-9)
        return rotate_free(job, in, angle, out);
    static const VipsAngle right_angles[] = {VIPS_ANGLE_D0, VIPS_ANGLE_D90, VIPS_ANGLE_D180,
                                             VIPS_ANGLE_D270};
    return vips_result(vips_rot(in, out, right_angles[(int)round(angle / 90.0) % 4], NULL));
}

static int edit_blur(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out)
{
    (void)width, (void)height;
    return vips_result(vips_gaussblur(in, out, gp_ctx_param_num(job->ctx, "sigma", 2.0), NULL));
}

static int edit_sharpen(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out)
{
    (void)width, (void)height;
    return vips_result(
        vips_sharpen(in, out, "sigma", gp_ctx_param_num(job->ctx, "sigma", 2.0), NULL));
}

static int edit_grayscale(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out)
{
    (void)job, (void)width, (void)height;
    return vips_result(vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, NULL));
}

static int edit_flip(vips_job_t *job, VipsImage *in, int width, int height, VipsImage **out)
{
    (void)width, (void)height;
    const char *direction = gp_ctx_param_str(job->ctx, "direction", "horizontal");
    return vips_result(vips_flip(in, out,
                                 strcmp(direction, "vertical") == 0 ? VIPS_DIRECTION_VERTICAL
                                                                    : VIPS_DIRECTION_HORIZONTAL,
                                 NULL));
}

static const struct {
    const char *name;
    vips_edit_fn edit;
} vips_edits[] = {
    {"crop", edit_crop},       {"rotate", edit_rotate},       {"blur", edit_blur},
    {"sharpen", edit_sharpen}, {"grayscale", edit_grayscale}, {"flip", edit_flip},
};

/* Resize decodes straight to the smaller size (thumbnail), so it reads the file itself. */
static int resize_from_file(vips_job_t *job, const char *path, int width, int height,
                            VipsImage **out)
{
    gp_ctx_t *ctx = job->ctx;
    int64_t want_w = gp_ctx_param_int(ctx, "width", 0);
    int64_t want_h = gp_ctx_param_int(ctx, "height", 0);
    if (want_w <= 0 && want_h <= 0)
        return bad_params(ctx, "resize needs width, height or both", width, height);
    /* Thumbnail shrinks while decoding; VIPS_MAX_COORD leaves a side unconstrained. */
    int box_w = want_w > 0 ? (int)want_w : VIPS_MAX_COORD;
    int box_h = want_h > 0 ? (int)want_h : VIPS_MAX_COORD;
    double scale = fmin((double)box_w / width, (double)box_h / height);
    if ((double)width * scale > VIPS_MAX_OUTPUT_SIDE + 0.5 ||
        (double)height * scale > VIPS_MAX_OUTPUT_SIDE + 0.5)
        return bad_params(ctx, "the resized image would exceed 8192 pixels on a side", width,
                          height);
    /* The output obeys the same pixel ceiling as the input. */
    if ((double)width * scale * (double)height * scale > engine_max_pixels(ctx))
        return bad_params(ctx, "the resized image would exceed max-megapixels", width, height);
    if (vips_thumbnail(path, out, box_w, "height", box_h, "size", VIPS_SIZE_BOTH, "fail_on",
                       VIPS_FAIL_ON_TRUNCATED, NULL) != 0)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot decode the image");
    return 0;
}

/* The input decoded and turned upright: edits apply to the picture as viewers show it. */
static int load_upright(gp_ctx_t *ctx, const char *path, VipsImage **in)
{
    VipsImage *loaded = vips_image_new_from_file(path, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    if (loaded == NULL)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot decode the image");
    int rc = vips_autorot(loaded, in, NULL);
    g_object_unref(loaded);
    if (rc != 0)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot decode the image");
    return 0;
}

/* Turn the input into the edited image; 0 or a gp_ctx_fail() value. */
static int apply_operation(vips_job_t *job, const char *path, int width, int height,
                           VipsImage **out)
{
    gp_ctx_t *ctx = job->ctx;
    *out = NULL;
    if (strcmp(job->operation, "resize") == 0)
        return resize_from_file(job, path, width, height, out);

    VipsImage *in = NULL;
    int rc = load_upright(ctx, path, &in);
    if (rc != 0)
        return rc;
    vips_edit_fn edit = NULL;
    for (size_t i = 0; i < sizeof vips_edits / sizeof vips_edits[0] && edit == NULL; i++)
        if (strcmp(job->operation, vips_edits[i].name) == 0)
            edit = vips_edits[i].edit;
    if (edit != NULL)
        rc = edit(job, in, width, height, out);
    else
        rc = gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "unknown operation \"%s\"",
                         job->operation);
    g_object_unref(in);
    if (rc == EDIT_VIPS_FAILED)
        rc = engine_vips_fail(ctx, false, GP_TE_ENGINE_ERROR, "the edit failed");
    if (rc != 0 && *out != NULL) {
        g_object_unref(*out);
        *out = NULL;
    }
    return rc;
}

/* Encode to path in the requested format; 0 or -1 (libvips' error buffer says why). */
static int save_image(vips_job_t *job, VipsImage *image, const char *path)
{
    int quality = (int)gp_ctx_param_int(job->ctx, "quality", 85);
    if (strcmp(job->format, "jpeg") == 0) {
        VipsImage *rgb = NULL;
        if (engine_to_srgb8(image, &rgb, 255.0) != 0)
            return -1;
        vips_image_set_progress(rgb, TRUE);
        g_signal_connect(rgb, "eval", G_CALLBACK(on_eval), job);
        int rc = vips_jpegsave(rgb, path, "Q", quality, "strip", TRUE, NULL);
        g_object_unref(rgb);
        return rc;
    }
    vips_image_set_progress(image, TRUE);
    g_signal_connect(image, "eval", G_CALLBACK(on_eval), job);
    if (strcmp(job->format, "webp") == 0)
        return vips_webpsave(image, path, "Q", quality, "strip", TRUE, NULL);
    return vips_pngsave(image, path, "compression", 6, "strip", TRUE, NULL);
}

static int vips_run(gp_ctx_t *ctx)
{
    int rc = engine_vips_init(ctx);
    if (rc != 0)
        return rc;
    vips_job_t job = {
        .ctx = ctx,
        .operation = gp_ctx_param_str(ctx, "operation", "resize"),
        .format = gp_ctx_param_str(ctx, "format", "png"),
    };
    job.want_alpha = strcmp(job.format, "jpeg") != 0;

    char input[4096];
    rc = gp_ctx_input_file(ctx, "image", input, sizeof input, NULL, 0);
    if (rc != 0)
        return rc;
    if ((rc = gp_ctx_progress(ctx, 10, "decoding")) != 0)
        return gp_ctx_canceled_error(ctx);
    int width = 0, height = 0;
    if ((rc = engine_check_input(ctx, input, &width, &height)) != 0)
        return rc;

    VipsImage *edited = NULL;
    if ((rc = apply_operation(&job, input, width, height, &edited)) != 0)
        return rc;
    if ((rc = gp_ctx_progress(ctx, 30, job.operation)) != 0) {
        g_object_unref(edited);
        return gp_ctx_canceled_error(ctx);
    }

    const char *dir = gp_ctx_scratch_dir(ctx);
    const char *ext = strcmp(job.format, "jpeg") == 0 ? "jpg" : job.format;
    char output[4200], name[32];
    (void)snprintf(name, sizeof name, "image.%s", ext);
    if (dir == NULL || snprintf(output, sizeof output, "%s/%s", dir, name) >= (int)sizeof output) {
        g_object_unref(edited);
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "no scratch directory");
    }
    /* Pixels are computed here, in one pass from decode to encode. */
    int saved = save_image(&job, edited, output);
    int out_w = vips_image_get_width(edited), out_h = vips_image_get_height(edited);
    g_object_unref(edited);
    if (gp_ctx_is_canceled(ctx)) {
        vips_error_clear();
        return gp_ctx_canceled_error(ctx);
    }
    if (saved != 0)
        return engine_vips_fail(ctx, false, GP_TE_ENGINE_ERROR, "cannot process the image");
    if ((rc = gp_ctx_progress(ctx, 90, "storing")) != 0)
        return gp_ctx_canceled_error(ctx);

    const char *content_type = strcmp(job.format, "png") == 0    ? "image/png"
                               : strcmp(job.format, "jpeg") == 0 ? "image/jpeg"
                                                                 : "image/webp";
    rc = gp_ctx_store_file(ctx, name, output, content_type,
                           json_pack("{s:s}", "operation", job.operation));
    if (rc != 0)
        return rc;
    gp_ctx_set_result(ctx, json_pack("{s:i, s:i}", "width", out_w, "height", out_h));
    (void)gp_ctx_progress(ctx, 100, "done");
    return 0;
}

const gp_provider_t gp_provider_vips = {
    .name = "vips",
    .description = "Local image edits with libvips (resize, crop, rotate, blur, sharpen, "
                   "grayscale, flip) re-encoded as PNG, JPEG or WebP. Not generative: the "
                   "prompt is ignored.",
    .task_types = vips_task_types,
    .params = vips_params,
    .run = vips_run,
    .settings = vips_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_MEGAPIXEL, 1, NULL, NULL},
};

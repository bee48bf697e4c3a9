/*
 * simulator.c — the "simulator" provider for text-to-image. NOT AI: it draws a deterministic
 * abstract picture (a two-colour gradient under a few soft circles) from the seed and a hash
 * of the prompt, and writes it as a real PNG. It exists so the whole pipeline — queue,
 * progress, cancel, retries, storage — can be developed and tested without a model.
 *
 * Knobs for testing the pipeline: delay_ms and steps pace the progress reports, fail makes
 * the task fail permanently, fail_times makes the first N attempts fail retryably.
 *
 * Memory stays bounded: pixels are rendered one row at a time straight into libpng, and the
 * encoded PNG buffer has a hard ceiling derived from the image size.
 */
#include "genpulse/handler.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MAX_SIDE 4096
#define SIM_MAX_CIRCLES 7
#define SIM_CANCEL_CHECK_ROWS 64 /* rows rendered between two cancel checks */
#define SIM_PI 3.14159265358979323846

/* ---------------------------------------------------------------------------------------
 * Deterministic randomness
 * ------------------------------------------------------------------------------------- */

typedef struct splitmix64 {
    uint64_t state;
} splitmix64_t;

static uint64_t splitmix64_next(splitmix64_t *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) from the top 53 bits, so every double in range is reachable. */
static double splitmix64_unit(splitmix64_t *rng)
{
    return (double)(splitmix64_next(rng) >> 11) * 0x1.0p-53;
}

static double splitmix64_range(splitmix64_t *rng, double lo, double hi)
{
    return lo + (hi - lo) * splitmix64_unit(rng);
}

/* FNV-1a: tiny, stable across platforms, good enough to make the prompt change the picture. */
static uint64_t fnv1a64(const char *text)
{
    uint64_t hash = UINT64_C(0xCBF29CE484222325);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        hash ^= *p;
        hash *= UINT64_C(0x100000001B3);
    }
    return hash;
}

/* ---------------------------------------------------------------------------------------
 * The scene: everything random is decided up front, rendering is a pure function of it.
 * ------------------------------------------------------------------------------------- */

typedef struct rgb {
    double r, g, b; /* 0..1 */
} rgb_t;

typedef struct soft_circle {
    double center_x, center_y, radius; /* pixels */
    double opacity;                    /* peak alpha at the centre */
    rgb_t color;
} soft_circle_t;

typedef struct scene {
    uint32_t width, height;
    rgb_t gradient_from, gradient_to;
    double gradient_cos, gradient_sin, gradient_span;
    soft_circle_t circles[SIM_MAX_CIRCLES];
    size_t circle_count;
} scene_t;

static double wrap_unit(double value)
{
    return value - floor(value);
}

static rgb_t hsv_to_rgb(double hue, double saturation, double value)
{
    double h6 = wrap_unit(hue) * 6.0;
    double sector = floor(h6);
    double f = h6 - sector;
    double p = value * (1.0 - saturation);
    double q = value * (1.0 - saturation * f);
    double t = value * (1.0 - saturation * (1.0 - f));
    switch ((int)sector) {
    case 0: return (rgb_t){value, t, p};
    case 1: return (rgb_t){q, value, p};
    case 2: return (rgb_t){p, value, t};
    case 3: return (rgb_t){p, q, value};
    case 4: return (rgb_t){t, p, value};
    default: return (rgb_t){value, p, q};
    }
}

static void scene_init(scene_t *scene, uint32_t width, uint32_t height, uint64_t seed,
                       const char *prompt)
{
    splitmix64_t rng = {.state = seed ^ fnv1a64(prompt)};
    /* A few throwaway draws so nearby seeds do not start from correlated states. */
    for (int i = 0; i < 4; i++)
        (void)splitmix64_next(&rng);

    scene->width = width;
    scene->height = height;

    /* Analogous hues, dark to light: reads as a calm sky rather than noise. */
    double base_hue = splitmix64_unit(&rng);
    scene->gradient_from = hsv_to_rgb(base_hue, splitmix64_range(&rng, 0.45, 0.75),
                                      splitmix64_range(&rng, 0.15, 0.35));
    scene->gradient_to =
        hsv_to_rgb(base_hue + splitmix64_range(&rng, 0.06, 0.18),
                   splitmix64_range(&rng, 0.40, 0.70), splitmix64_range(&rng, 0.65, 0.92));
    double angle = splitmix64_range(&rng, 0.0, 2.0 * SIM_PI);
    scene->gradient_cos = cos(angle);
    scene->gradient_sin = sin(angle);
    scene->gradient_span = fabs(scene->gradient_cos) + fabs(scene->gradient_sin);

    static const double hue_offsets[] = {0.0, 0.07, -0.07, 0.5, 0.43};
    double short_side = (double)(width < height ? width : height);
    scene->circle_count = 3 + (size_t)(splitmix64_next(&rng) % (SIM_MAX_CIRCLES - 2));
    for (size_t i = 0; i < scene->circle_count; i++) {
        soft_circle_t *circle = &scene->circles[i];
        size_t offset_index =
            (size_t)(splitmix64_next(&rng) % (sizeof hue_offsets / sizeof hue_offsets[0]));
        double hue = base_hue + hue_offsets[offset_index] + splitmix64_range(&rng, -0.03, 0.03);
        circle->color =
            hsv_to_rgb(hue, splitmix64_range(&rng, 0.35, 0.75), splitmix64_range(&rng, 0.80, 1.0));
        circle->center_x = splitmix64_range(&rng, -0.1, 1.1) * (double)width;
        circle->center_y = splitmix64_range(&rng, -0.1, 1.1) * (double)height;
        circle->radius = splitmix64_range(&rng, 0.10, 0.45) * short_side;
        circle->opacity = splitmix64_range(&rng, 0.35, 0.80);
    }
}

static double smoothstep01(double t)
{
    if (t <= 0.0)
        return 0.0;
    if (t >= 1.0)
        return 1.0;
    return t * t * (3.0 - 2.0 * t);
}

/* 4x4 Bayer matrix: sub-LSB ordered dither so wide gradients do not band. */
static const double bayer4[4][4] = {
    {0.0 / 16, 8.0 / 16, 2.0 / 16, 10.0 / 16},
    {12.0 / 16, 4.0 / 16, 14.0 / 16, 6.0 / 16},
    {3.0 / 16, 11.0 / 16, 1.0 / 16, 9.0 / 16},
    {15.0 / 16, 7.0 / 16, 13.0 / 16, 5.0 / 16},
};

static png_byte to_channel(double value, double dither)
{
    double scaled = floor(value * 255.0 + dither);
    if (scaled < 0.0)
        return 0;
    if (scaled > 255.0)
        return 255;
    return (png_byte)scaled;
}

/* Fill one RGB8 row (3 * width bytes). */
static void scene_render_row(const scene_t *scene, uint32_t y, png_byte *row)
{
    double py = (double)y + 0.5;
    double v = py / (double)scene->height - 0.5;
    double row_dy2[SIM_MAX_CIRCLES];
    for (size_t i = 0; i < scene->circle_count; i++) {
        double dy = py - scene->circles[i].center_y;
        row_dy2[i] = dy * dy;
    }

    for (uint32_t x = 0; x < scene->width; x++) {
        double px = (double)x + 0.5;
        double u = px / (double)scene->width - 0.5;
        double along = (u * scene->gradient_cos + v * scene->gradient_sin) / scene->gradient_span;
        double t = smoothstep01(along + 0.5);
        rgb_t color = {
            scene->gradient_from.r + (scene->gradient_to.r - scene->gradient_from.r) * t,
            scene->gradient_from.g + (scene->gradient_to.g - scene->gradient_from.g) * t,
            scene->gradient_from.b + (scene->gradient_to.b - scene->gradient_from.b) * t,
        };

        for (size_t i = 0; i < scene->circle_count; i++) {
            const soft_circle_t *circle = &scene->circles[i];
            double dx = px - circle->center_x;
            double r2 = circle->radius * circle->radius;
            double d2 = dx * dx + row_dy2[i];
            if (d2 >= r2)
                continue;
            double falloff = 1.0 - d2 / r2; /* 1 at the centre, 0 at the rim */
            double alpha = circle->opacity * falloff * falloff;
            color.r += (circle->color.r - color.r) * alpha;
            color.g += (circle->color.g - color.g) * alpha;
            color.b += (circle->color.b - color.b) * alpha;
        }

        double dither = bayer4[y & 3u][x & 3u];
        row[3 * (size_t)x + 0] = to_channel(color.r, dither);
        row[3 * (size_t)x + 1] = to_channel(color.g, dither);
        row[3 * (size_t)x + 2] = to_channel(color.b, dither);
    }
}

/* ---------------------------------------------------------------------------------------
 * PNG encoding into a bounded, growable memory buffer
 * ------------------------------------------------------------------------------------- */

typedef struct png_memory {
    unsigned char *data;
    size_t length, capacity, limit;
    bool over_limit, out_of_memory;
    char error[160]; /* libpng's message when it aborts */
} png_memory_t;

typedef enum encode_status {
    ENCODE_OK,
    ENCODE_CANCELED,
    ENCODE_OUT_OF_MEMORY,
    ENCODE_TOO_LARGE,
    ENCODE_LIBPNG_ERROR,
} encode_status_t;

static void png_memory_write(png_structp png, png_bytep bytes, size_t count)
{
    png_memory_t *out = png_get_io_ptr(png);
    if (count > out->limit - out->length) {
        out->over_limit = true;
        png_error(png, "encoded image exceeds its size bound");
    }
    size_t needed = out->length + count;
    if (needed > out->capacity) {
        size_t capacity = out->capacity > 0 ? out->capacity : 64 * 1024;
        while (capacity < needed)
            capacity = capacity > out->limit / 2 ? out->limit : capacity * 2;
        unsigned char *grown = realloc(out->data, capacity);
        if (grown == NULL) {
            out->out_of_memory = true;
            png_error(png, "out of memory growing the PNG buffer");
        }
        out->data = grown;
        out->capacity = capacity;
    }
    memcpy(out->data + out->length, bytes, count);
    out->length = needed;
}

static void png_memory_flush(png_structp png)
{
    (void)png; /* nothing is buffered outside png_memory_t */
}

static void png_on_error(png_structp png, png_const_charp message)
{
    png_memory_t *out = png_get_error_ptr(png);
    (void)snprintf(out->error, sizeof out->error, "%s", message != NULL ? message : "unknown");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png; /* warnings (e.g. about ancillary chunks) do not affect the output */
    (void)message;
}

/*
 * Render the scene row by row into libpng. Nothing this function changes after setjmp is
 * read after a longjmp (png and info are only passed by address), so no volatile is needed.
 */
static encode_status_t encode_scene_png(gp_ctx_t *ctx, const scene_t *scene, png_byte *row,
                                        png_memory_t *out)
{
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, out, png_on_error, png_on_warning);
    if (png == NULL)
        return ENCODE_OUT_OF_MEMORY;
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        return ENCODE_OUT_OF_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        if (out->over_limit)
            return ENCODE_TOO_LARGE;
        return out->out_of_memory ? ENCODE_OUT_OF_MEMORY : ENCODE_LIBPNG_ERROR;
    }

    png_set_write_fn(png, out, png_memory_write, png_memory_flush);
    png_set_IHDR(png, info, scene->width, scene->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Say what made it, so nobody mistakes the picture for model output. */
    png_text software = {
        .compression = PNG_TEXT_COMPRESSION_NONE,
        .key = (png_charp) "Software",
        .text = (png_charp) "GenPulse simulator (not AI)",
    };
    png_set_text(png, info, &software, 1);
    png_write_info(png, info);

    for (uint32_t y = 0; y < scene->height; y++) {
        if (y % SIM_CANCEL_CHECK_ROWS == 0 && gp_ctx_is_canceled(ctx)) {
            png_destroy_write_struct(&png, &info);
            return ENCODE_CANCELED;
        }
        scene_render_row(scene, y, row);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return ENCODE_OK;
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

static int64_t clamp_i64(int64_t value, int64_t lo, int64_t hi)
{
    return value < lo ? lo : value > hi ? hi : value;
}

/* Spread delay_ms over `steps` progress reports; this phase owns 0..90 percent. */
static int simulate_steps(gp_ctx_t *ctx, int64_t delay_ms, int64_t steps)
{
    char step_text[48];
    int64_t slept_ms = 0;
    for (int64_t step = 1; step <= steps; step++) {
        int64_t target_ms = delay_ms * step / steps;
        if (target_ms > slept_ms) {
            int rc = gp_ctx_sleep_ms(ctx, target_ms - slept_ms);
            if (rc != 0)
                return rc;
            slept_ms = target_ms;
        }
        (void)snprintf(step_text, sizeof step_text, "step %lld/%lld", (long long)step,
                       (long long)steps);
        int rc = gp_ctx_progress(ctx, (int)(step * 90 / steps), step_text);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int simulator_run(gp_ctx_t *ctx)
{
    if (gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);

    const char *fail_message = gp_ctx_param_str(ctx, "fail", NULL);
    if (fail_message != NULL)
        return gp_ctx_fail(ctx, false, GP_TE_SIMULATED_FAILURE, "%s",
                           fail_message[0] != '\0' ? fail_message : "simulated failure");

    int64_t fail_times = clamp_i64(gp_ctx_param_int(ctx, "fail_times", 0), 0, 100);
    int attempt = gp_ctx_attempt(ctx);
    if (attempt <= fail_times)
        return gp_ctx_fail(ctx, true, GP_TE_SIMULATED_TRANSIENT,
                           "simulated transient failure (attempt %d of %lld)", attempt,
                           (long long)fail_times);

    int64_t delay_ms = clamp_i64(gp_ctx_param_int(ctx, "delay_ms", 0), 0, 600000);
    int64_t steps = clamp_i64(gp_ctx_param_int(ctx, "steps", 10), 1, 1000);
    int rc = simulate_steps(ctx, delay_ms, steps);
    if (rc != 0)
        return rc;

    /* The task type enforces these ranges; clamping again keeps memory bounded regardless. */
    uint32_t width = (uint32_t)clamp_i64(gp_ctx_param_int(ctx, "width", 512), 1, SIM_MAX_SIDE);
    uint32_t height = (uint32_t)clamp_i64(gp_ctx_param_int(ctx, "height", 512), 1, SIM_MAX_SIDE);
    int64_t seed = clamp_i64(gp_ctx_param_int(ctx, "seed", 0), 0, INT64_C(4294967295));
    const char *prompt = gp_ctx_param_str(ctx, "prompt", "");

    rc = gp_ctx_progress(ctx, 92, "rendering");
    if (rc != 0)
        return rc;

    scene_t scene;
    scene_init(&scene, width, height, (uint64_t)seed, prompt);

    /* Bound: raw RGB rows plus filter bytes, plus zlib's worst-case expansion and headers. */
    size_t raw_bytes = (size_t)height * (3 * (size_t)width + 1);
    png_memory_t out = {.limit = raw_bytes + raw_bytes / 8 + 1024 * 1024};
    png_byte *row = malloc(3 * (size_t)width);
    if (row == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not allocate a %u-pixel row",
                           (unsigned)width);

    encode_status_t status = encode_scene_png(ctx, &scene, row, &out);
    free(row);
    switch (status) {
    case ENCODE_OK: break;
    case ENCODE_CANCELED: free(out.data); return gp_ctx_canceled_error(ctx);
    case ENCODE_OUT_OF_MEMORY:
        free(out.data);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "out of memory encoding the PNG");
    case ENCODE_TOO_LARGE:
        free(out.data);
        return gp_ctx_fail(ctx, false, GP_TE_OUTPUT_TOO_LARGE, "encoded PNG would exceed %zu bytes",
                           out.limit);
    case ENCODE_LIBPNG_ERROR:
    default:
        free(out.data);
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR, "libpng: %s", out.error);
    }

    rc = gp_ctx_progress(ctx, 96, "storing");
    if (rc != 0) {
        free(out.data);
        return rc;
    }

    json_t *extra = json_pack("{s:I, s:I, s:I}", "width", (json_int_t)width, "height",
                              (json_int_t)height, "seed", (json_int_t)seed);
    if (extra == NULL) {
        free(out.data);
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the asset metadata");
    }
    rc = gp_ctx_store_bytes(ctx, "image.png", out.data, out.length, "image/png", extra);
    free(out.data);
    if (rc != 0)
        return rc;

    json_t *result = json_pack("{s:I}", "seed", (json_int_t)seed);
    if (result == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "could not build the result");
    gp_ctx_set_result(ctx, result);

    return gp_ctx_progress(ctx, 100, "done");
}

/* ---------------------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------------------- */

static const gp_param_spec_t simulator_params[] = {
    GP_P_INT("delay_ms", false, 0, 600000, "0",
             "Total simulated run time in milliseconds, spread over the progress steps."),
    GP_P_INT("steps", false, 1, 1000, "10", "Number of progress updates before rendering."),
    GP_P_STRING("fail", false, 0, 1000, NULL,
                "If present, fail at once with a permanent error (code simulated_failure) "
                "whose message is this text."),
    GP_P_INT("fail_times", false, 0, 100, "0",
             "Fail with a retryable error (code simulated_transient) while the attempt "
             "number is at most this value."),
    GP_P_END,
};

static const char *const simulator_task_types[] = {"text-to-image", NULL};

const gp_provider_t gp_provider_simulator = {
    .name = "simulator",
    .description =
        "Development provider, NOT AI: draws a deterministic abstract PNG (gradient and soft "
        "circles) from the seed and a hash of the prompt. Can simulate delay, progress steps, "
        "and permanent or transient failures for testing the pipeline.",
    .task_types = simulator_task_types,
    .params = simulator_params,
    .run = simulator_run,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 1, NULL, NULL},
};

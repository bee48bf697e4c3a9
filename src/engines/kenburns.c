/*
 * kenburns.c — the "kenburns" provider for text-to-video and image-to-video: a real H.264
 * MP4 made of a slow zoom and pan (the "Ken Burns effect") over the input image, or over a
 * scene drawn from the prompt's hash and the seed. NOT AI; it exists so video pipelines
 * (long-running tasks, per-frame progress, cancel, first-frame preview, MP4 outputs) run
 * end to end on a laptop.
 *
 * Encoder: libx264 (ultrafast, one thread: fast, deterministic, light on a shared machine)
 * through libavcodec, or libavcodec's own MPEG-4 Part 2 where libx264 is missing. Frames
 * are sampled from a source raster `zoom` times the output size, so the tightest framing
 * is still 1:1 and nothing is ever upscaled during the move.
 *
 * Memory is bounded by the size limits: one source raster, one RGB and one YUV frame.
 */
#include "genpulse/handler.h"
#include "engines/vips_common.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB_MAX_SIDE 1920
#define KB_MAX_PIXELS (1280 * 720) /* per frame: bounds the work to ~1.6 G samples */
#define KB_DEFAULT_LONG_SIDE 640
#define KB_PROGRESS_REPORTS 20
#define KB_PI 3.14159265358979323846
/* Progress bands: preparing 0..5, frames 5..95, storing 95..100. */
#define KB_PROGRESS_FRAMES_START 5
#define KB_PROGRESS_FRAMES_END 95

static const gp_param_spec_t kenburns_params[] = {
    GP_P_INT("fps", false, 1, 60, "24", "Frames per second."),
    GP_P_INT("width", false, 16, KB_MAX_SIDE, NULL,
             "Output width (rounded down to even). Omitted: from height and the aspect "
             "ratio (or the input image), else 640 on the longer side."),
    GP_P_INT("height", false, 16, KB_MAX_SIDE, NULL,
             "Output height (rounded down to even); see width."),
    GP_P_NUMBER("zoom", false, 1, 3, "1.3",
                "How far the camera moves in: the last frame shows 1/zoom of the first."),
    GP_P_END,
};

static const char *const kenburns_task_types[] = {"text-to-video", "image-to-video", NULL};

static const gp_provider_setting_t kenburns_settings[] = {
    GP_S_NUMBER("max-megapixels", "50", 0.001, 1000,
                "Largest input image (in millions of pixels) the kenburns provider decodes."),
    GP_S_END,
};

/* ---------------------------------------------------------------------------------------
 * Deterministic randomness and the generated scene (text-to-video)
 * ------------------------------------------------------------------------------------- */

static uint64_t kb_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double kb_unit(uint64_t *state)
{
    return (double)(kb_next(state) >> 11) * 0x1.0p-53;
}

static uint64_t kb_hash(const char *text)
{
    uint64_t hash = UINT64_C(0xCBF29CE484222325);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        hash = (hash ^ *p) * UINT64_C(0x100000001B3);
    return hash;
}

static void kb_hsv(double h, double s, double v, double rgb[3])
{
    double h6 = (h - floor(h)) * 6.0, f = h6 - floor(h6);
    double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    int sector = (int)h6 % 6;
    memcpy(rgb, table[sector], sizeof table[sector]);
}

/* A sky-like gradient under soft discs and thin rings: enough structure to see motion. */
static void draw_scene(uint8_t *rgb, int width, int height, uint64_t seed, const char *prompt)
{
    uint64_t rng = seed ^ kb_hash(prompt);
    for (int i = 0; i < 4; i++)
        (void)kb_next(&rng);
    double hue = kb_unit(&rng);
    double top[3], bottom[3];
    kb_hsv(hue, 0.55, 0.25, top);
    kb_hsv(hue + 0.1, 0.5, 0.9, bottom);

    enum {
        DISCS = 9
    };
    struct {
        double x, y, r, alpha, ring, color[3];
    } discs[DISCS];
    double side = width < height ? width : height;
    for (int i = 0; i < DISCS; i++) {
        discs[i].x = kb_unit(&rng) * width;
        discs[i].y = kb_unit(&rng) * height;
        discs[i].r = (0.04 + 0.2 * kb_unit(&rng)) * side;
        discs[i].alpha = 0.35 + 0.5 * kb_unit(&rng);
        discs[i].ring = kb_unit(&rng) < 0.3 ? 1.0 : 0.0;
        kb_hsv(hue + (kb_unit(&rng) < 0.5 ? 0.5 : 0.05), 0.5, 0.95, discs[i].color);
    }
    for (int y = 0; y < height; y++) {
        double t = height > 1 ? (double)y / (height - 1) : 0.0;
        for (int x = 0; x < width; x++) {
            double c[3];
            for (int k = 0; k < 3; k++)
                c[k] = top[k] + (bottom[k] - top[k]) * t;
            for (int i = 0; i < DISCS; i++) {
                double d = hypot(x - discs[i].x, y - discs[i].y) / discs[i].r;
                double a = discs[i].ring > 0 ? exp(-pow((d - 1.0) * 12.0, 2))
                                             : (d < 1 ? (1 - d * d) * (1 - d * d) : 0);
                a *= discs[i].alpha;
                for (int k = 0; k < 3; k++)
                    c[k] = c[k] * (1 - a) + discs[i].color[k] * a;
            }
            uint8_t *px = rgb + ((size_t)y * (size_t)width + (size_t)x) * 3;
            for (int k = 0; k < 3; k++)
                px[k] = (uint8_t)lround(fmin(1.0, fmax(0.0, c[k])) * 255.0);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Camera path and frame sampling
 * ------------------------------------------------------------------------------------- */

typedef struct camera {
    double w0, h0, cx0, cy0; /* first framing (in source pixels) */
    double w1, h1, cx1, cy1; /* last framing */
} camera_t;

static void plan_camera(camera_t *cam, int src_w, int src_h, double zoom, uint64_t seed)
{
    uint64_t rng = seed ^ UINT64_C(0x4B454E4255524E53);
    (void)kb_next(&rng);
    double wide_w = src_w, wide_h = src_h;
    double tight_w = src_w / zoom, tight_h = src_h / zoom;
    /* The tight framing sits somewhere the frame stays inside the source. */
    double cx = tight_w / 2 + kb_unit(&rng) * (src_w - tight_w);
    double cy = tight_h / 2 + kb_unit(&rng) * (src_h - tight_h);
    bool zoom_in = (kb_next(&rng) & 1) == 0;
    double wide[4] = {wide_w, wide_h, src_w / 2.0, src_h / 2.0};
    double tight[4] = {tight_w, tight_h, cx, cy};
    const double *from = zoom_in ? wide : tight, *to = zoom_in ? tight : wide;
    cam->w0 = from[0], cam->h0 = from[1], cam->cx0 = from[2], cam->cy0 = from[3];
    cam->w1 = to[0], cam->h1 = to[1], cam->cx1 = to[2], cam->cy1 = to[3];
}

/* Bilinear resample of the framing at time t (0..1, eased) into an out_w x out_h frame. */
static void render_frame(const uint8_t *src, int src_w, int src_h, const camera_t *cam, double t,
                         uint8_t *out, int out_w, int out_h)
{
    double e = t * t * (3 - 2 * t);
    double fw = cam->w0 + (cam->w1 - cam->w0) * e, fh = cam->h0 + (cam->h1 - cam->h0) * e;
    double cx = cam->cx0 + (cam->cx1 - cam->cx0) * e, cy = cam->cy0 + (cam->cy1 - cam->cy0) * e;
    double left = fmin(fmax(cx - fw / 2, 0.0), src_w - fw);
    double top = fmin(fmax(cy - fh / 2, 0.0), src_h - fh);
    double sx = fw / out_w, sy = fh / out_h;
    size_t stride = (size_t)src_w * 3;
    for (int y = 0; y < out_h; y++) {
        double fy = fmin(fmax(top + (y + 0.5) * sy - 0.5, 0.0), src_h - 1.0);
        int y0 = (int)fy, y1 = y0 + 1 < src_h ? y0 + 1 : y0;
        double wy = fy - y0;
        const uint8_t *r0 = src + (size_t)y0 * stride, *r1 = src + (size_t)y1 * stride;
        uint8_t *dst = out + (size_t)y * (size_t)out_w * 3;
        for (int x = 0; x < out_w; x++) {
            double fx = fmin(fmax(left + (x + 0.5) * sx - 0.5, 0.0), src_w - 1.0);
            int x0 = (int)fx, x1 = x0 + 1 < src_w ? x0 + 1 : x0;
            double wx = fx - x0;
            for (int k = 0; k < 3; k++) {
                double a = r0[x0 * 3 + k] + (r0[x1 * 3 + k] - r0[x0 * 3 + k]) * wx;
                double b = r1[x0 * 3 + k] + (r1[x1 * 3 + k] - r1[x0 * 3 + k]) * wx;
                dst[x * 3 + k] = (uint8_t)(a + (b - a) * wy + 0.5);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Encoder
 * ------------------------------------------------------------------------------------- */

typedef struct encoder {
    AVFormatContext *format;
    AVCodecContext *codec;
    AVStream *stream;
    AVFrame *frame;
    AVPacket *packet;
    struct SwsContext *sws;
    const char *codec_name;
    bool header_written;
} encoder_t;

static int av_failure(gp_ctx_t *ctx, const char *what, int code)
{
    char detail[AV_ERROR_MAX_STRING_SIZE] = "";
    (void)av_strerror(code, detail, sizeof detail);
    return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR, "%s: %s", what, detail);
}

static void encoder_close(encoder_t *enc)
{
    if (enc->format != NULL && enc->format->pb != NULL)
        (void)avio_closep(&enc->format->pb);
    avformat_free_context(enc->format);
    avcodec_free_context(&enc->codec);
    av_frame_free(&enc->frame);
    av_packet_free(&enc->packet);
    sws_freeContext(enc->sws);
    memset(enc, 0, sizeof *enc);
}

static int encoder_open(gp_ctx_t *ctx, encoder_t *enc, const char *path, int width, int height,
                        int fps)
{
    memset(enc, 0, sizeof *enc);
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (codec == NULL)
        codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (codec == NULL)
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_UNAVAILABLE,
                           "libavcodec has neither libx264 nor an MPEG-4 encoder");
    enc->codec_name = codec->name;
    int code = avformat_alloc_output_context2(&enc->format, NULL, "mp4", path);
    if (code < 0 || enc->format == NULL)
        return av_failure(ctx, "cannot set up the MP4 muxer", code);
    enc->stream = avformat_new_stream(enc->format, NULL);
    enc->codec = avcodec_alloc_context3(codec);
    enc->frame = av_frame_alloc();
    enc->packet = av_packet_alloc();
    if (enc->stream == NULL || enc->codec == NULL || enc->frame == NULL || enc->packet == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "cannot allocate the encoder");

    AVCodecContext *c = enc->codec;
    c->width = width;
    c->height = height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, fps};
    c->framerate = (AVRational){fps, 1};
    c->gop_size = fps * 2;
    c->thread_count = 1;
    if (enc->format->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *options = NULL;
    if (strcmp(codec->name, "libx264") == 0) {
        (void)av_dict_set(&options, "preset", "ultrafast", 0);
        (void)av_dict_set(&options, "crf", "23", 0);
    } else {
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * 4;
        c->max_b_frames = 0;
    }
    code = avcodec_open2(c, codec, &options);
    av_dict_free(&options);
    if (code < 0)
        return av_failure(ctx, "cannot open the video encoder", code);
    code = avcodec_parameters_from_context(enc->stream->codecpar, c);
    if (code < 0)
        return av_failure(ctx, "cannot configure the video stream", code);
    enc->stream->time_base = c->time_base;

    enc->frame->format = c->pix_fmt;
    enc->frame->width = width;
    enc->frame->height = height;
    code = av_frame_get_buffer(enc->frame, 0);
    if (code < 0)
        return av_failure(ctx, "cannot allocate a video frame", code);
    enc->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                              SWS_BILINEAR, NULL, NULL, NULL);
    if (enc->sws == NULL)
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR, "cannot set up RGB to YUV conversion");

    code = avio_open(&enc->format->pb, path, AVIO_FLAG_WRITE);
    if (code < 0)
        return av_failure(ctx, "cannot create the video file", code);
    /* faststart: the index goes first, so a browser can play while downloading. */
    AVDictionary *mux = NULL;
    (void)av_dict_set(&mux, "movflags", "+faststart", 0);
    code = avformat_write_header(enc->format, &mux);
    av_dict_free(&mux);
    if (code < 0)
        return av_failure(ctx, "cannot write the MP4 header", code);
    enc->header_written = true;
    return 0;
}

/* Move every finished packet from the encoder to the file. */
static int encoder_drain(gp_ctx_t *ctx, encoder_t *enc)
{
    for (;;) {
        int code = avcodec_receive_packet(enc->codec, enc->packet);
        if (code == AVERROR(EAGAIN) || code == AVERROR_EOF)
            return 0;
        if (code < 0)
            return av_failure(ctx, "the video encoder failed", code);
        /* Every frame lasts one tick; without it the muxer counts the last frame as 0 s. */
        if (enc->packet->duration == 0)
            enc->packet->duration = 1;
        av_packet_rescale_ts(enc->packet, enc->codec->time_base, enc->stream->time_base);
        enc->packet->stream_index = enc->stream->index;
        code = av_interleaved_write_frame(enc->format, enc->packet);
        av_packet_unref(enc->packet);
        if (code < 0)
            return av_failure(ctx, "cannot write the video", code);
    }
}

static int encoder_add(gp_ctx_t *ctx, encoder_t *enc, const uint8_t *rgb, int64_t pts)
{
    int code = av_frame_make_writable(enc->frame);
    if (code < 0)
        return av_failure(ctx, "cannot reuse the video frame", code);
    const uint8_t *planes[1] = {rgb};
    int strides[1] = {enc->codec->width * 3};
    sws_scale(enc->sws, planes, strides, 0, enc->codec->height, enc->frame->data,
              enc->frame->linesize);
    enc->frame->pts = pts;
    code = avcodec_send_frame(enc->codec, enc->frame);
    if (code < 0)
        return av_failure(ctx, "the video encoder refused a frame", code);
    return encoder_drain(ctx, enc);
}

static int encoder_finish(gp_ctx_t *ctx, encoder_t *enc)
{
    int code = avcodec_send_frame(enc->codec, NULL);
    if (code < 0)
        return av_failure(ctx, "cannot flush the video encoder", code);
    int rc = encoder_drain(ctx, enc);
    if (rc != 0)
        return rc;
    code = av_write_trailer(enc->format);
    if (code < 0)
        return av_failure(ctx, "cannot finish the MP4", code);
    code = avio_closep(&enc->format->pb);
    if (code < 0)
        return av_failure(ctx, "cannot close the video file", code);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Sizes and sources
 * ------------------------------------------------------------------------------------- */

static int even_down(double value)
{
    int v = (int)floor(value);
    return v - (v & 1);
}

/*
 * Output size: explicit width/height win; a missing side follows the aspect ratio
 * (aspect_w:aspect_h); with neither, the longer side is KB_DEFAULT_LONG_SIDE.
 */
static int choose_size(gp_ctx_t *ctx, double aspect_w, double aspect_h, int *width, int *height)
{
    int64_t w = gp_ctx_param_int(ctx, "width", 0), h = gp_ctx_param_int(ctx, "height", 0);
    double ratio = aspect_w / aspect_h;
    double fw, fh;
    if (w > 0 && h > 0)
        fw = (double)w, fh = (double)h;
    else if (w > 0)
        fw = (double)w, fh = (double)w / ratio;
    else if (h > 0)
        fw = (double)h * ratio, fh = (double)h;
    else if (ratio >= 1)
        fw = KB_DEFAULT_LONG_SIDE, fh = KB_DEFAULT_LONG_SIDE / ratio;
    else
        fw = KB_DEFAULT_LONG_SIDE * ratio, fh = KB_DEFAULT_LONG_SIDE;
    *width = even_down(fw);
    *height = even_down(fh);
    if (*width < 16 || *height < 16 || *width > KB_MAX_SIDE || *height > KB_MAX_SIDE ||
        (int64_t)*width * *height > KB_MAX_PIXELS)
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS,
                           "video size %dx%d is outside 16..%d per side and %d pixels per "
                           "frame",
                           *width, *height, KB_MAX_SIDE, KB_MAX_PIXELS);
    return 0;
}

/* The input image, cover-cropped to exactly src_w x src_h, as packed RGB8. */
static int load_source_image(gp_ctx_t *ctx, const char *path, int src_w, int src_h, uint8_t **rgb)
{
    *rgb = NULL;
    VipsImage *fitted = NULL, *flat = NULL;
    if (vips_thumbnail(path, &fitted, src_w, "height", src_h, "size", VIPS_SIZE_BOTH, "crop",
                       VIPS_INTERESTING_CENTRE, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL) != 0)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot decode the input image");
    int rc = engine_to_srgb8(fitted, &flat, 255.0);
    g_object_unref(fitted);
    if (rc != 0)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot convert the input image");
    size_t size = 0;
    void *pixels = vips_image_write_to_memory(flat, &size);
    int got_w = vips_image_get_width(flat), got_h = vips_image_get_height(flat);
    g_object_unref(flat);
    if (pixels == NULL)
        return engine_vips_fail(ctx, false, GP_TE_INVALID_INPUT, "cannot decode the input image");
    if (got_w != src_w || got_h != src_h || size != (size_t)src_w * (size_t)src_h * 3) {
        g_free(pixels);
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR,
                           "the input image came out %dx%d, not %dx%d", got_w, got_h, src_w, src_h);
    }
    /* Copy into malloc'd memory so one free() releases every source. */
    *rgb = malloc(size);
    if (*rgb != NULL)
        memcpy(*rgb, pixels, size);
    g_free(pixels);
    return *rgb != NULL ? 0
                        : gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "no memory for the source");
}

static int write_preview(gp_ctx_t *ctx, const uint8_t *rgb, int width, int height, const char *path)
{
    VipsImage *image = vips_image_new_from_memory(rgb, (size_t)width * (size_t)height * 3, width,
                                                  height, 3, VIPS_FORMAT_UCHAR);
    if (image == NULL)
        return engine_vips_fail(ctx, true, GP_TE_ENGINE_ERROR, "cannot wrap the preview frame");
    int rc = vips_jpegsave(image, path, "Q", 85, "strip", TRUE, NULL);
    g_object_unref(image);
    if (rc != 0)
        return engine_vips_fail(ctx, true, GP_TE_ENGINE_ERROR, "cannot write the preview");
    return gp_ctx_publish_preview(ctx, "preview.jpg", path, "image/jpeg");
}

/* ---------------------------------------------------------------------------------------
 * run()
 * ------------------------------------------------------------------------------------- */

/* What one run makes: its params, the output size and the (zoomed) source size. */
typedef struct kb_job {
    int fps;
    int64_t duration, frames;
    double zoom;
    uint64_t seed;
    bool from_image;
    char input[4096]; /* the fetched image when from_image */
    int width, height, src_w, src_h;
} kb_job_t;

/* Params, and the input image's header when there is one, into the job's sizes. */
static int plan_job(gp_ctx_t *ctx, kb_job_t *job)
{
    job->fps = (int)gp_ctx_param_int(ctx, "fps", 24);
    job->duration = gp_ctx_param_int(ctx, "duration", 5);
    job->zoom = gp_ctx_param_num(ctx, "zoom", 1.3);
    job->seed = (uint64_t)gp_ctx_param_int(ctx, "seed", 0);
    if (job->fps < 1 || job->fps > 60 || job->duration < 1 || job->duration > 30 ||
        !(job->zoom >= 1.0 && job->zoom <= 3.0))
        return gp_ctx_fail(ctx, false, GP_TE_INVALID_PARAMS, "fps, duration or zoom out of range");
    job->frames = job->duration * job->fps;
    job->from_image = json_object_get(gp_ctx_params(ctx), "image") != NULL;

    int rc;
    if (job->from_image) {
        if ((rc = gp_ctx_input_file(ctx, "image", job->input, sizeof job->input, NULL, 0)) != 0)
            return rc;
        int in_w = 0, in_h = 0;
        if ((rc = engine_check_input(ctx, job->input, &in_w, &in_h)) != 0)
            return rc;
        rc = choose_size(ctx, in_w, in_h, &job->width, &job->height);
    } else {
        const char *aspect = gp_ctx_param_str(ctx, "aspect_ratio", "16:9");
        double aw = 16, ah = 9;
        if (strcmp(aspect, "9:16") == 0)
            aw = 9, ah = 16;
        else if (strcmp(aspect, "1:1") == 0)
            aw = 1, ah = 1;
        rc = choose_size(ctx, aw, ah, &job->width, &job->height);
    }
    if (rc != 0)
        return rc;
    job->src_w = (int)ceil(job->width * job->zoom);
    job->src_h = (int)ceil(job->height * job->zoom);
    return 0;
}

/* The picture the camera moves over: the input image, or a scene drawn from the prompt. */
static int make_source(gp_ctx_t *ctx, const kb_job_t *job, uint8_t **source)
{
    if (job->from_image)
        return load_source_image(ctx, job->input, job->src_w, job->src_h, source);
    *source = malloc((size_t)job->src_w * (size_t)job->src_h * 3);
    if (*source == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "no memory for the scene");
    draw_scene(*source, job->src_w, job->src_h, job->seed, gp_ctx_param_str(ctx, "prompt", ""));
    return 0;
}

/* Renders and encodes every frame (the first also becomes the preview), reporting progress. */
static int encode_frames(gp_ctx_t *ctx, const kb_job_t *job, const uint8_t *source, encoder_t *enc,
                         uint8_t *frame, const char *preview_path)
{
    camera_t camera;
    plan_camera(&camera, job->src_w, job->src_h, job->zoom, job->seed);
    int64_t frames = job->frames;
    int64_t report_every = frames / KB_PROGRESS_REPORTS > 0 ? frames / KB_PROGRESS_REPORTS : 1;
    int rc = 0;
    for (int64_t i = 0; i < frames && rc == 0; i++) {
        if (gp_ctx_is_canceled(ctx)) {
            rc = gp_ctx_canceled_error(ctx);
            break;
        }
        double t = frames > 1 ? (double)i / (double)(frames - 1) : 0.0;
        render_frame(source, job->src_w, job->src_h, &camera, t, frame, job->width, job->height);
        if ((rc = encoder_add(ctx, enc, frame, i)) != 0)
            break;
        if (i == 0 && (rc = write_preview(ctx, frame, job->width, job->height, preview_path)) != 0)
            break;
        if ((i + 1) % report_every == 0 || i + 1 == frames) {
            int percent =
                KB_PROGRESS_FRAMES_START +
                (int)((KB_PROGRESS_FRAMES_END - KB_PROGRESS_FRAMES_START) * (i + 1) / frames);
            if (gp_ctx_progress(ctx, percent, "encoding") != 0)
                rc = gp_ctx_canceled_error(ctx);
        }
    }
    return rc;
}

/* Opens the encoder, encodes the frames and stores the finished video. */
static int make_video(gp_ctx_t *ctx, const kb_job_t *job, const uint8_t *source, const char *dir)
{
    char video_path[4200], preview_path[4200];
    (void)snprintf(video_path, sizeof video_path, "%s/video.mp4", dir);
    (void)snprintf(preview_path, sizeof preview_path, "%s/preview.jpg", dir);
    uint8_t *frame = malloc((size_t)job->width * (size_t)job->height * 3);
    if (frame == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_OUT_OF_MEMORY, "no memory for a frame");
    encoder_t enc;
    memset(&enc, 0, sizeof enc);
    int rc = encoder_open(ctx, &enc, video_path, job->width, job->height, job->fps);
    if (rc == 0 && gp_ctx_progress(ctx, KB_PROGRESS_FRAMES_START, "encoding") != 0)
        rc = gp_ctx_canceled_error(ctx);
    if (rc == 0)
        rc = encode_frames(ctx, job, source, &enc, frame, preview_path);
    free(frame);
    if (rc == 0)
        rc = encoder_finish(ctx, &enc);
    if (rc != 0) {
        encoder_close(&enc);
        return rc;
    }
    const char *codec_name = enc.codec_name;
    encoder_close(&enc);
    rc = gp_ctx_store_file(ctx, "video.mp4", video_path, "video/mp4",
                           json_pack("{s:i, s:I, s:s}", "fps", job->fps, "frames",
                                     (json_int_t)job->frames, "codec", codec_name));
    if (rc == 0)
        (void)gp_ctx_progress(ctx, 100, "done");
    return rc;
}

static int kenburns_run(gp_ctx_t *ctx)
{
    int rc = engine_vips_init(ctx);
    if (rc != 0)
        return rc;
    const char *dir = gp_ctx_scratch_dir(ctx);
    if (dir == NULL)
        return gp_ctx_fail(ctx, true, GP_TE_STORAGE_ERROR, "no scratch directory");
    kb_job_t job;
    memset(&job, 0, sizeof job);
    if ((rc = plan_job(ctx, &job)) != 0)
        return rc;
    if (gp_ctx_progress(ctx, 1, "preparing") != 0)
        return gp_ctx_canceled_error(ctx);
    uint8_t *source = NULL;
    if ((rc = make_source(ctx, &job, &source)) != 0)
        return rc;
    rc = make_video(ctx, &job, source, dir);
    free(source);
    return rc;
}

const gp_provider_t gp_provider_kenburns = {
    .name = "kenburns",
    .description = "Local MP4 (H.264) with a slow zoom and pan over the input image, or over "
                   "a scene drawn from the prompt and seed. Not generative: a stand-in for "
                   "video models in pipelines and tests.",
    .task_types = kenburns_task_types,
    .params = kenburns_params,
    .run = kenburns_run,
    .settings = kenburns_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_SECOND, 1, "duration", NULL},
};

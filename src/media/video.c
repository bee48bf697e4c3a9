/*
 * video.c — video analysis with libavformat / libavcodec / libswscale: size, duration and
 * the first decodable frame as a JPEG (written through libvips).
 *
 * The input may come from an untrusted provider, so the demuxer is fenced in: only the
 * "file" protocol (a playlist cannot make us open URLs or other local files), only the
 * usual video containers, a wall-clock deadline checked by libavformat's interrupt
 * callback, and a cap on the packets read before the first frame must appear.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "media/media.h"
#include "media/media_internal.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VIDEO_PROBE_SECONDS 20
#define VIDEO_MAX_PACKETS 2000 /* read before giving up on a first frame */
#define VIDEO_MAX_SIDE 16384
/* Demuxer names as libavformat spells them; a demuxer matches if any of its names is here. */
#define VIDEO_FORMATS "mov,mp4,matroska,webm,avi,flv,mpegts,mpeg,ogg,gif,h264,hevc,m4v"

typedef struct probe_deadline {
    struct timespec at;
} probe_deadline_t;

static int past_deadline(void *opaque)
{
    const probe_deadline_t *deadline = opaque;
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
        return 0;
    return now.tv_sec > deadline->at.tv_sec ||
           (now.tv_sec == deadline->at.tv_sec && now.tv_nsec >= deadline->at.tv_nsec);
}

static void av_fail(char *err, size_t cap, const char *what, int code)
{
    char detail[AV_ERROR_MAX_STRING_SIZE] = "";
    (void)av_strerror(code, detail, sizeof detail);
    gp_media_set_error(err, cap, "%s: %s", what, detail);
}

/* Write an RGB24 frame as JPEG via libvips (the pixels are borrowed, not copied). */
static int write_rgb_jpeg(const uint8_t *rgb, int width, int height, const char *path, char *err,
                          size_t cap)
{
    VipsImage *image = vips_image_new_from_memory(rgb, (size_t)width * (size_t)height * 3, width,
                                                  height, 3, VIPS_FORMAT_UCHAR);
    if (image == NULL)
        return gp_media_vips_fail(err, cap, "cannot wrap the frame");
    int rc = gp_media_write_jpeg(image, path, err, cap);
    g_object_unref(image);
    return rc;
}

static int save_frame(const AVFrame *frame, const char *path, char *err, size_t cap)
{
    int width = frame->width, height = frame->height;
    struct SwsContext *sws =
        sws_getContext(width, height, (enum AVPixelFormat)frame->format, width, height,
                       AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    if (sws == NULL) {
        gp_media_set_error(err, cap, "cannot convert pixel format %s",
                           av_get_pix_fmt_name((enum AVPixelFormat)frame->format) != NULL
                               ? av_get_pix_fmt_name((enum AVPixelFormat)frame->format)
                               : "(unknown)");
        return -1;
    }
    size_t stride = (size_t)width * 3;
    uint8_t *rgb = malloc(stride * (size_t)height);
    int rc = -1;
    if (rgb == NULL) {
        gp_media_set_error(err, cap, "out of memory for a %dx%d frame", width, height);
    } else {
        uint8_t *planes[4] = {rgb, NULL, NULL, NULL};
        int strides[4] = {(int)stride, 0, 0, 0};
        if (sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize, 0, height, planes,
                      strides) != height)
            gp_media_set_error(err, cap, "cannot convert the first frame to RGB");
        else
            rc = write_rgb_jpeg(rgb, width, height, path, err, cap);
    }
    free(rgb);
    sws_freeContext(sws);
    return rc;
}

/* Decode until the first frame of stream `index`; 0 with *frame filled, or -1. */
static int decode_first_frame(AVFormatContext *format, AVCodecContext *decoder, int index,
                              AVFrame *frame, char *err, size_t cap)
{
    AVPacket *packet = av_packet_alloc();
    if (packet == NULL) {
        gp_media_set_error(err, cap, "out of memory");
        return -1;
    }
    int rc = -1;
    bool draining = false;
    for (int reads = 0; reads < VIDEO_MAX_PACKETS;) {
        int got = avcodec_receive_frame(decoder, frame);
        if (got == 0) {
            rc = 0;
            break;
        }
        if (got == AVERROR_EOF) {
            gp_media_set_error(err, cap, "the video stream holds no decodable frame");
            break;
        }
        if (got != AVERROR(EAGAIN)) {
            av_fail(err, cap, "cannot decode the first frame", got);
            break;
        }
        if (draining) { /* EAGAIN after a flush would loop forever */
            gp_media_set_error(err, cap, "the decoder gave no frame");
            break;
        }
        int read = av_read_frame(format, packet);
        if (read == AVERROR_EOF) {
            draining = true;
            (void)avcodec_send_packet(decoder, NULL);
            continue;
        }
        if (read < 0) {
            av_fail(err, cap, "cannot read the video", read);
            break;
        }
        reads++;
        if (packet->stream_index == index) {
            int sent = avcodec_send_packet(decoder, packet);
            /* A damaged packet is skipped like a player would; the read cap bounds it. */
            if (sent < 0 && sent != AVERROR(EAGAIN) && sent != AVERROR_INVALIDDATA) {
                av_packet_unref(packet);
                av_fail(err, cap, "cannot decode the video", sent);
                break;
            }
        }
        av_packet_unref(packet);
    }
    if (rc != 0 && (err == NULL || err[0] == '\0'))
        gp_media_set_error(err, cap, "no frame within the first %d packets", VIDEO_MAX_PACKETS);
    av_packet_free(&packet);
    return rc;
}

/*
 * Opens path with the fences of the DESIGN note: only the file protocol, only VIDEO_FORMATS,
 * and the deadline (which must outlive *out) checked by the interrupt callback.
 * 0 with *out open, or -1 with *out NULL and a message in err.
 */
static int open_container(const char *path, probe_deadline_t *deadline, AVFormatContext **out,
                          char *err, size_t cap)
{
    AVFormatContext *format = avformat_alloc_context();
    AVDictionary *options = NULL;
    *out = NULL;
    if (format == NULL) {
        gp_media_set_error(err, cap, "out of memory");
        return -1;
    }
    format->interrupt_callback.callback = past_deadline;
    format->interrupt_callback.opaque = deadline;
    if (av_dict_set(&options, "protocol_whitelist", "file", 0) < 0 ||
        av_dict_set(&options, "format_whitelist", VIDEO_FORMATS, 0) < 0) {
        gp_media_set_error(err, cap, "out of memory");
        av_dict_free(&options);
        avformat_free_context(format);
        return -1;
    }
    /* On failure avformat_open_input frees the context and sets it to NULL. */
    int code = avformat_open_input(&format, path, NULL, &options);
    av_dict_free(&options);
    if (code < 0) {
        av_fail(err, cap, "not a video container", code);
        return -1;
    }
    *out = format;
    return 0;
}

/* The best video stream and its decoder, refused when its declared size is out of bounds. */
static int find_video_stream(AVFormatContext *format, const AVCodec **codec, int *index, char *err,
                             size_t cap)
{
    int code = avformat_find_stream_info(format, NULL);
    if (code < 0) {
        av_fail(err, cap, "cannot read the video's streams", code);
        return -1;
    }
    *codec = NULL;
    *index = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, codec, 0);
    if (*index < 0 || *codec == NULL) {
        gp_media_set_error(err, cap,
                           *index == AVERROR_DECODER_NOT_FOUND ? "no decoder for the video stream"
                                                               : "the file has no video stream");
        return -1;
    }
    const AVStream *stream = format->streams[*index];
    int width = stream->codecpar->width, height = stream->codecpar->height;
    if (width < 1 || height < 1 || width > VIDEO_MAX_SIDE || height > VIDEO_MAX_SIDE ||
        (int64_t)width * height > GP_MEDIA_MAX_PIXELS) {
        gp_media_set_error(err, cap, "unsupported video size %dx%d", width, height);
        return -1;
    }
    return 0;
}

/* Seconds, from the container if it knows, else from the stream; 0 when neither does. */
static double video_duration(const AVFormatContext *format, const AVStream *stream)
{
    if (format->duration != AV_NOPTS_VALUE && format->duration > 0)
        return (double)format->duration / AV_TIME_BASE;
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
        return (double)stream->duration * av_q2d(stream->time_base);
    return 0.0;
}

/* A decoder for the stream; 0 with *out set (caller frees), or -1 (*out may need freeing). */
static int open_decoder(const AVCodec *codec, const AVStream *stream, AVCodecContext **out,
                        char *err, size_t cap)
{
    AVCodecContext *decoder = avcodec_alloc_context3(codec);
    *out = decoder;
    if (decoder == NULL) {
        gp_media_set_error(err, cap, "out of memory");
        return -1;
    }
    int code = avcodec_parameters_to_context(decoder, stream->codecpar);
    /* One thread: probing runs on a worker thread already, and frame threading delays
     * the first frame by a frame per thread. */
    decoder->thread_count = 1;
    if (code >= 0)
        code = avcodec_open2(decoder, codec, NULL);
    if (code < 0) {
        av_fail(err, cap, "cannot open the video decoder", code);
        return -1;
    }
    return 0;
}

/* Decodes the first frame, checks its size and saves it to frame_path (when not NULL). */
static int first_frame(AVFormatContext *format, AVCodecContext *decoder, int index, AVFrame *frame,
                       const char *frame_path, char *err, size_t cap)
{
    if (decode_first_frame(format, decoder, index, frame, err, cap) != 0)
        return -1;
    if (frame->width < 1 || frame->height < 1 || frame->width > VIDEO_MAX_SIDE ||
        frame->height > VIDEO_MAX_SIDE) {
        gp_media_set_error(err, cap, "decoded frame has an unsupported size %dx%d", frame->width,
                           frame->height);
        return -1;
    }
    if (frame_path != NULL && save_frame(frame, frame_path, err, cap) != 0)
        return -1;
    return 0;
}

int gp_media_probe_video(const char *path, gp_video_info_t *info, const char *frame_path, char *err,
                         size_t cap)
{
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if (path == NULL || info == NULL) {
        gp_media_set_error(err, cap, "bad arguments");
        return -1;
    }
    memset(info, 0, sizeof *info);
    if (gp_media_init(err, cap) != 0)
        return -1;

    probe_deadline_t deadline;
    if (clock_gettime(CLOCK_MONOTONIC, &deadline.at) != 0) {
        gp_media_set_error(err, cap, "no monotonic clock");
        return -1;
    }
    deadline.at.tv_sec += VIDEO_PROBE_SECONDS;

    AVFormatContext *format = NULL;
    if (open_container(path, &deadline, &format, err, cap) != 0)
        return -1;
    AVCodecContext *decoder = NULL;
    AVFrame *frame = NULL;
    const AVCodec *codec = NULL;
    int index = -1, rc = -1;
    if (find_video_stream(format, &codec, &index, err, cap) != 0)
        goto done;
    const AVStream *stream = format->streams[index];
    double duration = video_duration(format, stream);
    frame = av_frame_alloc();
    if (frame == NULL) {
        gp_media_set_error(err, cap, "out of memory");
        goto done;
    }
    if (open_decoder(codec, stream, &decoder, err, cap) != 0 ||
        first_frame(format, decoder, index, frame, frame_path, err, cap) != 0)
        goto done;
    info->width = frame->width;
    info->height = frame->height;
    info->duration_s = duration;
    rc = 0;
done:
    av_frame_free(&frame);
    avcodec_free_context(&decoder);
    avformat_close_input(&format);
    return rc;
}

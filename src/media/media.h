/*
 * media.h — what GenPulse learns from an output file before it is published:
 * images: width, height, BlurHash (woltapp's algorithm, 4x3 components) and a thumbnail
 * (libvips); videos: width, height, duration and the first frame as an image (libavformat /
 * libavcodec / libswscale).
 *
 * Thread-safe: call from any worker thread (gp_media_init() once at start, before threads).
 * Files named by the caller stay the caller's; outputs are written to the paths given.
 */
#ifndef GP_MEDIA_H
#define GP_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_BLURHASH_MAX 64 /* 4 + 2*9*9 = 166 for 9x9; we use 4x3: 28 chars */

typedef struct gp_image_info {
    int width, height;
    char blurhash[GP_BLURHASH_MAX]; /* "" when not computed */
} gp_image_info_t;

typedef struct gp_video_info {
    int width, height;
    double duration_s; /* 0 when unknown */
} gp_video_info_t;

/* Once per process (VIPS_INIT, libav log level). 0 or -1 with a message in err. */
int gp_media_init(char *err, size_t cap);

/* BlurHash of packed RGB8 pixels (bytes_per_row >= 3*width) with x_comp x y_comp components
 * (1..9 each); writes a NUL-terminated hash into out. Returns 0, or -1 on bad arguments. */
int gp_blurhash_encode(int x_comp, int y_comp, int width, int height, const uint8_t *rgb,
                       size_t bytes_per_row, char out[GP_BLURHASH_MAX]);

/*
 * Reads the image at path: fills info (BlurHash from a small decoded copy) and, when
 * thumb_path is not NULL, writes a JPEG thumbnail no larger than thumb_max pixels on its
 * longer side. Returns 0, or -1 when the file is not an image libvips can decode (err says why).
 */
int gp_media_probe_image(const char *path, gp_image_info_t *info, const char *thumb_path,
                         int thumb_max, char *err, size_t cap);

/*
 * Reads the video at path: fills info and, when frame_path is not NULL, writes its first
 * frame there as a JPEG. Returns 0, or -1 when the file is not a decodable video.
 */
int gp_media_probe_video(const char *path, gp_video_info_t *info, const char *frame_path, char *err,
                         size_t cap);

#endif

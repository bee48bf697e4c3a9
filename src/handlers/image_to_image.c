/*
 * image_to_image.c — the "image-to-image" task type: a new image made from an input image
 * (edit, restyle, resize, upscale). The input is an uploaded asset id or a URL.
 */
#include "genpulse/handler.h"

static const gp_param_spec_t image_to_image_params[] = {
    GP_P_MEDIA("image", true,
               "The input image: an asset id from POST /v1/assets, or an "
               "http(s) or data: URL."),
    GP_P_STRING("prompt", false, 0, 4000, NULL,
                "What to change; local transforms that take no prompt ignore it."),
    GP_P_STRING("negative_prompt", false, 0, 4000, NULL, "What to avoid, where supported."),
    GP_P_NUMBER("strength", false, 0, 1, "0.6",
                "How far the output may move from the input (0 keeps it, 1 ignores it)."),
    GP_P_INT("seed", false, 0, 4294967295.0, "0", "Random seed, where the provider uses one."),
    GP_P_END,
};

const gp_task_type_t gp_task_type_image_to_image = {
    .name = "image-to-image",
    .description = "Make one image from an input image (and optionally a prompt).",
    .default_provider = "vips",
    .params = image_to_image_params,
};

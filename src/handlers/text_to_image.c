/*
 * text_to_image.c — the "text-to-image" task type: the parameters every image provider
 * accepts. Providers add their own extras (see src/engines/simulator.c).
 */
#include "genpulse/handler.h"

static const gp_param_spec_t text_to_image_params[] = {
    GP_P_STRING("prompt", true, 1, 4000, NULL, "What the image should show."),
    GP_P_STRING("negative_prompt", false, 0, 4000, NULL,
                "What the image should avoid; providers that cannot use it ignore it."),
    GP_P_INT("width", false, 64, 4096, "512", "Image width in pixels."),
    GP_P_INT("height", false, 64, 4096, "512", "Image height in pixels."),
    GP_P_INT("seed", false, 0, 4294967295.0, "0",
             "Random seed; the same seed and params give the same image on a deterministic "
             "provider."),
    GP_P_END,
};

const gp_task_type_t gp_task_type_text_to_image = {
    .name = "text-to-image",
    .description = "Generate one image from a text prompt. The output asset is a PNG.",
    .default_provider = "simulator",
    .params = text_to_image_params,
};

/*
 * media_type.h — the one home of media-type knowledge: content type ↔ file extension ↔ magic
 * bytes. Uploads, storage, providers and engines all ask here, so a new format is one row in
 * media_type.c.
 *
 * Extensions are returned without the dot ("png"). All functions are pure, thread-safe and
 * return static strings (never freed).
 */
#ifndef GP_MEDIA_TYPE_H
#define GP_MEDIA_TYPE_H

#include <stdbool.h>
#include <stddef.h>

#define GP_MEDIA_TYPE_UNKNOWN "application/octet-stream"

/* Content type for a file name by its extension (case-insensitive), GP_MEDIA_TYPE_UNKNOWN if
 * the extension is not known. */
const char *gp_media_type_of_name(const char *name);

/* The usual extension for a content type ("image/jpeg" → "jpg"); parameters and case are
 * ignored. NULL when the type is not known. */
const char *gp_media_ext_of_type(const char *content_type);

/* What the bytes are, by their magic numbers (the declared type is not trusted): a content
 * type, or NULL when the format is not one we know. n may be short; 16 bytes always suffice. */
const char *gp_media_sniff(const void *bytes, size_t n);

/* True if content_type (parameters ignored) starts with "image/", "video/" or "audio/". */
bool gp_media_is(const char *content_type, const char *family);

/* The content type without parameters, lower-cased, into out (always NUL-terminated). */
void gp_media_bare_type(const char *content_type, char *out, size_t cap);

#endif

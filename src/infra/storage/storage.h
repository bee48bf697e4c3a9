/*
 * storage.h — where task outputs go.
 *
 * Keys are "<owner>/<name>": owner is a task id (outputs) or an asset id (uploads). put_*()
 * stores and returns the URL clients use (caller frees *url_out). A backend that serves files
 * through this server implements local_path(); every backend implements presign(), and the
 * gateway mints a fresh link whenever it shows an asset (stored links expire).
 * A backend is a const gp_storage_vt_t named gp_storage_backend_<stem>; gp_storage_open()
 * picks it by URL scheme ("local" when empty). All functions are thread-safe.
 */
#ifndef GP_STORAGE_H
#define GP_STORAGE_H

#include "core/settings.h"

#include <stddef.h>

typedef struct gp_storage gp_storage_t;

typedef struct gp_storage_vt {
    const char *scheme;
    int (*open)(gp_storage_t **out, const char *url, const gp_settings_t *s, char *err, size_t cap);
    void (*close)(gp_storage_t *st);
    int (*put_bytes)(gp_storage_t *st, const char *task_id, const char *name, const void *data,
                     size_t len, const char *content_type, char **url_out);
    int (*put_file)(gp_storage_t *st, const char *task_id, const char *name, const char *path,
                    const char *content_type, char **url_out);
    /* Path of a stored object on this machine, for serving; -GP_E_NOT_FOUND if none.
     * NULL for object stores. */
    int (*local_path)(gp_storage_t *st, const char *task_id, const char *name, char *out,
                      size_t cap);
    /* A GET URL for the object that expires after expires_s seconds (<= 0: the backend's
     * configured default) (caller frees *url_out). Object stores presign their own URLs;
     * local storage signs a /files/ link this server checks (core/link_secret.h). */
    int (*presign)(gp_storage_t *st, const char *owner, const char *name, int64_t expires_s,
                   char **url_out);
    /* Copies a stored object into the local file dest_path: 0, -GP_E_NOT_FOUND, or another
     * negative GP_E_* code. */
    int (*get_file)(gp_storage_t *st, const char *owner, const char *name, const char *dest_path);
} gp_storage_vt_t;

struct gp_storage {
    const gp_storage_vt_t *vt;
};

extern const gp_storage_vt_t *const gp_generated_storage_backends[];
int gp_storage_open(gp_storage_t **out, const gp_settings_t *s, char *err, size_t cap);

/* True if name is a safe output file name: [A-Za-z0-9._-]{1,128}, not starting with '.'. */
bool gp_storage_name_ok(const char *name);
/* Name of the JPEG derived from output `name`: "<name>.thumb.jpg" for images, "<name>.preview.jpg"
 * (first frame) for videos. The worker stores it, the gateway links it. Caller frees. */
char *gp_storage_derived_name(const char *name, const char *content_type);

static inline void gp_storage_close(gp_storage_t *st)
{
    if (st)
        st->vt->close(st);
}
static inline int gp_storage_put_bytes(gp_storage_t *st, const char *task_id, const char *name,
                                       const void *data, size_t len, const char *ct, char **url)
{
    return st->vt->put_bytes(st, task_id, name, data, len, ct, url);
}
static inline int gp_storage_get_file(gp_storage_t *st, const char *owner, const char *name,
                                      const char *dest)
{
    return st->vt->get_file(st, owner, name, dest);
}
static inline int gp_storage_put_file(gp_storage_t *st, const char *task_id, const char *name,
                                      const char *path, const char *ct, char **url)
{
    return st->vt->put_file(st, task_id, name, path, ct, url);
}

#endif

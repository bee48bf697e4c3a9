/*
 * local.c — outputs in a local directory (DATA_DIR/outputs/<task_id>/<name>), served by
 * this server under /files/<task_id>/<name>. Files are written to a temporary name and
 * renamed, so a reader never sees half an output. Links are signed and expire
 * (core/link_secret.h): the gateway serves a file only to a link it could have minted.
 */
#include "core/errors.h"
#include "core/link_secret.h"
#include "core/util.h"
#include "infra/storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct local_storage {
    gp_storage_t base;
    char *root;
    char *public_url;
    int64_t link_ttl_s;
    uint8_t secret[GP_LINK_SECRET_LEN];
} local_storage_t;

static int ls_open(gp_storage_t **out, const char *url, const gp_settings_t *s, char *err,
                   size_t cap)
{
    local_storage_t *ls = gp_xcalloc(1, sizeof *ls);
    extern const gp_storage_vt_t gp_storage_backend_local;
    ls->base.vt = &gp_storage_backend_local;
    if (url && !strncmp(url, "local://", 8) && url[8])
        ls->root = gp_xstrdup(url + 8);
    else
        ls->root = gp_xasprintf("%s/outputs", s->data_dir);
    ls->public_url = gp_xstrdup(s->public_url);
    ls->link_ttl_s = s->link_ttl_s;
    int rc = gp_mkdirs(ls->root, 0755);
    if (rc == 0 && gp_link_secret_load(s, ls->secret, err, cap) != 0)
        rc = -1;
    else if (rc != 0)
        snprintf(err, cap, "cannot create %s: %s", ls->root, strerror(-rc));
    if (rc != 0) {
        free(ls->root);
        free(ls->public_url);
        free(ls);
        return -GP_E_IO;
    }
    *out = &ls->base;
    return 0;
}

static void ls_close(gp_storage_t *base)
{
    local_storage_t *ls = (local_storage_t *)base;
    free(ls->root);
    free(ls->public_url);
    free(ls);
}

static int prepare_dir(local_storage_t *ls, const char *task_id, const char *name, char **path)
{
    if (!gp_is_uuid(task_id) || !gp_storage_name_ok(name))
        return -GP_E_BAD_REQUEST;
    char *dir = gp_xasprintf("%s/%s", ls->root, task_id);
    int rc = gp_mkdirs(dir, 0755);
    free(dir);
    if (rc != 0)
        return -GP_E_IO;
    *path = gp_xasprintf("%s/%s/%s", ls->root, task_id, name);
    return 0;
}

static int ls_put_bytes(gp_storage_t *base, const char *task_id, const char *name, const void *data,
                        size_t len, const char *content_type, char **url_out)
{
    (void)content_type; /* served by extension; see gp_storage_content_type() */
    local_storage_t *ls = (local_storage_t *)base;
    char *path = NULL;
    int rc = prepare_dir(ls, task_id, name, &path);
    if (rc != 0)
        return rc;
    rc = gp_write_file_atomic(path, data, len) == 0 ? 0 : -GP_E_IO;
    free(path);
    if (rc == 0)
        *url_out = gp_files_link(ls->secret, ls->public_url, task_id, name, ls->link_ttl_s);
    return rc;
}

/* Copies src to dst through dst.part + rename, so readers never see half a file. */
static int copy_atomic(const char *src, const char *dst)
{
    char *tmp = gp_xasprintf("%s.part", dst);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = in >= 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int rc = in >= 0 && out >= 0 ? 0 : -GP_E_IO;
    char buf[65536];
    while (rc == 0) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -GP_E_IO : 0;
            break;
        }
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -GP_E_IO;
                break;
            }
            off += w;
        }
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = -GP_E_IO;
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -GP_E_IO;
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

static int ls_put_file(gp_storage_t *base, const char *task_id, const char *name, const char *src,
                       const char *content_type, char **url_out)
{
    (void)content_type;
    local_storage_t *ls = (local_storage_t *)base;
    char *path = NULL;
    int rc = prepare_dir(ls, task_id, name, &path);
    if (rc != 0)
        return rc;
    rc = copy_atomic(src, path);
    free(path);
    if (rc == 0)
        *url_out = gp_files_link(ls->secret, ls->public_url, task_id, name, ls->link_ttl_s);
    return rc;
}

static int ls_local_path(gp_storage_t *base, const char *task_id, const char *name, char *out,
                         size_t cap)
{
    local_storage_t *ls = (local_storage_t *)base;
    if (!gp_is_uuid(task_id) || !gp_storage_name_ok(name))
        return -GP_E_NOT_FOUND;
    int n = snprintf(out, cap, "%s/%s/%s", ls->root, task_id, name);
    if (n < 0 || (size_t)n >= cap)
        return -GP_E_NOT_FOUND;
    struct stat st;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -GP_E_NOT_FOUND;
}

static int ls_presign(gp_storage_t *base, const char *owner, const char *name, int64_t expires_s,
                      char **url_out)
{
    local_storage_t *ls = (local_storage_t *)base;
    if (!gp_is_uuid(owner) || !gp_storage_name_ok(name))
        return -GP_E_NOT_FOUND;
    *url_out = gp_files_link(ls->secret, ls->public_url, owner, name,
                             expires_s > 0 ? expires_s : ls->link_ttl_s);
    return 0;
}

static int ls_get_file(gp_storage_t *base, const char *owner, const char *name, const char *dest)
{
    char path[4096];
    int rc = ls_local_path(base, owner, name, path, sizeof path);
    return rc != 0 ? rc : copy_atomic(path, dest);
}

const gp_storage_vt_t gp_storage_backend_local = {
    .scheme = "local",
    .open = ls_open,
    .close = ls_close,
    .put_bytes = ls_put_bytes,
    .put_file = ls_put_file,
    .local_path = ls_local_path,
    .presign = ls_presign,
    .get_file = ls_get_file,
};

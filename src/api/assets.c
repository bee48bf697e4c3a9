/*
 * assets.c — the asset surface: POST /v1/assets (multipart upload), GET /v1/assets/{id}
 * (its metadata) and GET /files/{owner}/{name} (stored files, or a redirect to a presigned
 * object-store link).
 *
 * DESIGN
 * - The "file" part streams to DATA_DIR/uploads while it arrives; the size limit is applied
 *   as it grows, and the answer (413 included) comes once the body is read.
 * - The declared type is not trusted: the first bytes decide (gp_media_sniff).
 * - Storage I/O (network I/O for S3) and image probing run on the offload pool with the
 *   connection suspended (`start` → job → `finish`), never on an event thread.
 */
#include "api/reply.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/media_type.h"
#include "core/signed_link.h"
#include "core/util.h"
#include "media/media.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- upload plumbing */

static enum MHD_Result on_upload_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *filename, const char *content_type,
                                      const char *transfer_encoding, const char *data, uint64_t off,
                                      size_t size)
{
    (void)kind, (void)filename, (void)transfer_encoding, (void)off;
    request_t *r = cls;
    if (!key || strcmp(key, "file") != 0)
        return MHD_YES; /* other form fields are ignored */
    if (!r->upload_file) {
        if (r->upload_has_file)
            return MHD_YES; /* a second "file" part: keep the first */
        r->upload_has_file = true;
        snprintf(r->upload_declared_type, sizeof r->upload_declared_type, "%s",
                 content_type ? content_type : "");
        r->upload_file = fopen(r->upload_path, "wb");
        if (!r->upload_file) {
            r->upload_failed = true;
            return MHD_NO;
        }
    }
    r->upload_bytes += size;
    if (r->upload_bytes > (uint64_t)r->http->rt->settings->max_upload_bytes) {
        r->too_large = true;
        return MHD_YES; /* keep reading, answer 413 at the end */
    }
    if (size && fwrite(data, 1, size, r->upload_file) != size) {
        r->upload_failed = true;
        return MHD_NO;
    }
    return MHD_YES;
}

enum MHD_Result gp_upload_begin(request_t *r)
{
    const char *ct = gp_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return gp_send_error(r->conn, GP_E_UNSUPPORTED_MEDIA_TYPE,
                             "send the file as multipart/form-data with a field \"file\"",
                             gp_one_detail("headers.Content-Type", "must be multipart/form-data"));
    r->post = MHD_create_post_processor(r->conn, 65536, on_upload_part, r);
    if (!r->post)
        return gp_send_error(r->conn, GP_E_BAD_REQUEST,
                             "malformed multipart/form-data "
                             "(boundary missing?)",
                             gp_one_detail("headers.Content-Type", "needs a boundary"));
    r->upload_path = gp_xasprintf("%s/upload-%p-%lld.part", r->http->upload_dir, (void *)r,
                                  (long long)gp_mono_ms());
    return MHD_YES;
}

enum MHD_Result gp_upload_feed(request_t *r, const char *data, size_t n)
{
    if (r->upload_failed)
        return MHD_NO;
    if (MHD_post_process(r->post, data, n) != MHD_YES && !r->upload_failed)
        r->upload_failed = true;
    return MHD_YES;
}

void gp_upload_cleanup(request_t *r)
{
    if (r->post)
        MHD_destroy_post_processor(r->post);
    r->post = NULL;
    if (r->upload_file)
        fclose(r->upload_file);
    r->upload_file = NULL;
    if (r->upload_path) {
        remove(r->upload_path);
        free(r->upload_path);
        r->upload_path = NULL;
    }
    json_decref(r->asset.meta);
    r->asset.meta = NULL;
}

/* ---------------------------------------------------------------- POST /v1/assets */

static void asset_fail(asset_job_t *a, int err, const char *message, const char *detail)
{
    a->err = err;
    a->message = message;
    snprintf(a->detail, sizeof a->detail, "%s", detail ? detail : "");
    json_decref(a->meta);
    a->meta = NULL;
}

/* Adds width, height and blurhash to meta; false (and a->err set) when it cannot decode. */
static bool probe_image(request_t *r, json_t *meta)
{
    gp_image_info_t info;
    char err[256];
    if (gp_media_probe_image(r->upload_path, &info, NULL, 0, err, sizeof err) != 0) {
        asset_fail(&r->asset, GP_E_VALIDATION, "the image cannot be decoded", err);
        return false;
    }
    json_object_set_new(meta, "width", json_integer(info.width));
    json_object_set_new(meta, "height", json_integer(info.height));
    if (info.blurhash[0])
        json_object_set_new(meta, "blurhash", json_string(info.blurhash));
    return true;
}

/* Offload job: sniff, probe, then copy the file and its meta.json into storage. */
static void store_upload(request_t *r)
{
    gp_http_t *h = r->http;
    asset_job_t *a = &r->asset;
    unsigned char head[16] = {0};
    FILE *f = fopen(r->upload_path, "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    a->type = gp_media_sniff(head, n); /* the declared type is not trusted */
    if (!a->type) {
        asset_fail(a, GP_E_UNSUPPORTED_MEDIA_TYPE,
                   "the file is not a supported type (PNG, JPEG, GIF, WebP, MP4, WebM, WAV, MP3)",
                   "unsupported file type");
        return;
    }
    a->meta = json_pack("{s:s, s:s, s:I}", "content_type", a->type, "name", "", "bytes",
                        (json_int_t)r->upload_bytes);
    if (!strncmp(a->type, "image/", 6) && !probe_image(r, a->meta))
        return;
    gp_uuid7(a->id);
    char name[16];
    snprintf(name, sizeof name, "file.%s", gp_media_ext_of_type(a->type));
    json_object_set_new(a->meta, "name", json_string(name));
    json_object_set_new(a->meta, "id", json_string(a->id));
    json_object_set_new(a->meta, "created_at", json_integer((json_int_t)gp_now_ms()));
    json_object_set_new(a->meta, "owner", json_string(r->principal.user_id));
    char *url = NULL;
    int rc = gp_storage_put_file(h->rt->storage, a->id, name, r->upload_path, a->type, &url);
    free(url);
    char *text = rc == 0 ? json_dumps(a->meta, JSON_COMPACT) : NULL;
    if (rc == 0)
        rc = gp_storage_put_bytes(h->rt->storage, a->id, "meta.json", text, strlen(text),
                                  "application/json", &url);
    free(text);
    if (rc == 0)
        free(url);
    if (rc != 0)
        asset_fail(a, GP_E_UNAVAILABLE, "the upload could not be stored", NULL);
}

static enum MHD_Result create_asset(request_t *r)
{
    gp_http_t *h = r->http;
    if (r->upload_file) {
        fclose(r->upload_file);
        r->upload_file = NULL;
    }
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the file is larger than %lld bytes",
                 (long long)h->rt->settings->max_upload_bytes);
        return gp_send_error(r->conn, GP_E_PAYLOAD_TOO_LARGE, msg, gp_one_detail("body.file", msg));
    }
    if (r->upload_failed)
        return gp_send_error(r->conn, GP_E_IO, "the upload could not be stored", NULL);
    if (!r->upload_has_file || r->upload_bytes == 0)
        return gp_send_error(r->conn, GP_E_VALIDATION,
                             "send the file as a non-empty form field "
                             "named \"file\"",
                             gp_one_detail("body.file", "required"));
    gp_http_offload(r, store_upload);
    return MHD_YES;
}

/* The asset job's answer: its error, or meta (stolen) with a fresh link and status. */
static enum MHD_Result asset_reply(request_t *r, unsigned status)
{
    asset_job_t *a = &r->asset;
    if (a->err)
        return gp_send_error(r->conn, a->err, a->message,
                             a->detail[0] ? gp_one_detail("body.file", a->detail) : NULL);
    json_t *meta = a->meta;
    a->meta = NULL;
    /* Another user's asset does not exist, as far as this caller can tell. */
    if (!gp_principal_owns(&r->principal, json_string_value(json_object_get(meta, "owner")))) {
        json_decref(meta);
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no such asset", NULL);
    }
    json_object_del(meta, "owner");
    const char *name = json_string_value(json_object_get(meta, "name"));
    char *link = gp_object_link(r->http, a->id, name);
    json_object_set_new(meta, "url", json_string(link));
    free(link);
    return gp_send_json(r->conn, status, meta, NULL, NULL);
}

static enum MHD_Result create_asset_finish(request_t *r)
{
    if (!r->asset.err)
        gp_log(GP_LOG_INFO, NULL, "asset %s stored (%s, %llu bytes)", r->asset.id, r->asset.type,
               (unsigned long long)r->upload_bytes);
    return asset_reply(r, 201);
}

/* ---------------------------------------------------------------- GET /v1/assets/{id} */

/* Offload job: reads the asset's meta.json from storage. */
static void load_asset(request_t *r)
{
    asset_job_t *a = &r->asset;
    char tmpl[] = "/tmp/genpulse-meta-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        asset_fail(a, GP_E_IO, NULL, NULL);
        return;
    }
    close(fd);
    if (gp_storage_get_file(r->http->rt->storage, a->id, "meta.json", tmpl) == 0)
        a->meta = json_load_file(tmpl, 0, NULL);
    remove(tmpl);
    const char *name = json_string_value(json_object_get(a->meta, "name"));
    if (!name || !gp_storage_name_ok(name))
        asset_fail(a, GP_E_NOT_FOUND, "no such asset", NULL);
}

static enum MHD_Result get_asset(request_t *r)
{
    const char *id = r->path_params[0];
    if (!gp_is_uuid(id))
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no such asset", NULL);
    memcpy(r->asset.id, id, sizeof r->asset.id);
    gp_http_offload(r, load_asset);
    return MHD_YES;
}

static enum MHD_Result get_asset_finish(request_t *r)
{
    return asset_reply(r, 200);
}

/* ---------------------------------------------------------------- GET /files/{owner}/{name} */

/* Object stores: a stable link that redirects to a freshly presigned one. */
static enum MHD_Result redirect_presigned(request_t *r)
{
    gp_storage_t *st = r->http->rt->storage;
    char *url = NULL;
    if (st->vt->presign(st, r->path_params[0], r->path_params[1], 0, &url) != 0)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no such file", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, url);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    free(url);
    enum MHD_Result ret = gp_queue_response(r->conn, 302, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Files are served to signed links only (core/signed_link.h), checked before the file is
 * looked up so that a refusal says nothing about whether it exists. */
static bool link_signed(request_t *r, enum MHD_Result *ret)
{
    char path[2 * GP_PATH_PARAM_LEN + 16];
    snprintf(path, sizeof path, "/files/%s/%s", r->path_params[0], r->path_params[1]);
    int rc = gp_signed_link_check(r->http->link_secret, sizeof r->http->link_secret, path,
                                  gp_req_query(r, "expires"), gp_req_query(r, "signature"),
                                  (int64_t)time(NULL));
    if (rc == 0)
        return true;
    *ret = gp_send_error(
        r->conn, rc == GP_LINK_EXPIRED ? GP_E_LINK_EXPIRED : GP_E_INVALID_SIGNATURE,
        rc == GP_LINK_EXPIRED ? "this link has expired: read the task again for a fresh one"
                              : "this file link is not signed or its signature is wrong",
        NULL);
    return false;
}

static enum MHD_Result serve_file(request_t *r)
{
    gp_storage_t *st = r->http->rt->storage;
    char path[4096];
    enum MHD_Result denied = MHD_NO;
    if (!link_signed(r, &denied))
        return denied;
    if (!st->vt->local_path && st->vt->presign && gp_storage_name_ok(r->path_params[1]) &&
        gp_is_uuid(r->path_params[0]))
        return redirect_presigned(r);
    if (!st->vt->local_path ||
        st->vt->local_path(st, r->path_params[0], r->path_params[1], path, sizeof path) != 0)
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no such file", NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return gp_send_error(r->conn, GP_E_NOT_FOUND, "no such file", NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            gp_media_type_of_name(r->path_params[1]));
    /* private: the link is a bearer credential, shared caches must not keep it */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
    enum MHD_Result ret = gp_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Files need no key: their signed links are handed out in task results and fetched by
 * browsers. */
const gp_route_t gp_routes_assets[] = {
    {"POST", "/v1/assets", GP_BODY_UPLOAD, "tasks:write", create_asset, create_asset_finish},
    {"GET", "/v1/assets/{}", GP_BODY_NONE, "tasks:read", get_asset, get_asset_finish},
    {"GET", "/files/{}/{}", GP_BODY_NONE, NULL, serve_file, NULL},
    {NULL, NULL, GP_BODY_NONE, NULL, NULL, NULL},
};

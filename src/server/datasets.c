/*
 * datasets.c - the dataset resource: create, read, list, update, delete,
 * the streamed upload of its zip, and its download.
 *
 * A dataset is a name (meta) and, once uploaded, one zip file kept as a
 * blob like weights, checked by its structure (zipcheck.h) before it is
 * accepted. Models created with {"dataset": {"id": ...}} train on it:
 * their `data` is the dataset's signed download URL, which Ultralytics
 * fetches and unpacks.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blobs.h"
#include "upload.h"
#include "zipcheck.h"

#define DATASETS_MODELS_SHOWN 100
#define DATASETS_SLUG_MAX 64
#define DATASETS_SCAN_MAX 1000 /* datasets an export lookup reads */

/* The dataset's name as a file name: lower-case [a-z0-9-], runs of
 * anything else one '-'. */
static void datasets_slug(const char *name, char out[DATASETS_SLUG_MAX + 1]) {
  size_t j = 0;
  int dash = 0;
  for (const char *p = name ? name : ""; *p && j < DATASETS_SLUG_MAX; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      if (dash && j > 0)
        out[j++] = '-';
      dash = 0;
      if (j < DATASETS_SLUG_MAX)
        out[j++] = (char)c;
    } else if (c >= 'A' && c <= 'Z') {
      if (dash && j > 0)
        out[j++] = '-';
      dash = 0;
      if (j < DATASETS_SLUG_MAX)
        out[j++] = (char)(c - 'A' + 'a');
    } else {
      dash = 1;
    }
  }
  out[j] = '\0';
  if (j == 0)
    snprintf(out, DATASETS_SLUG_MAX + 1, "dataset");
}

static int datasets_model_row(void *ud, const store_model *m) {
  json_t *arr = ud;
  json_t *meta = json_loads(m->meta, 0, NULL);
  json_t *name = json_object_get(meta, "name");
  json_array_append_new(
      arr, json_pack("{s:s, s:s, s:s}", "id", m->id, "name",
                     json_is_string(name) ? json_string_value(name) : "",
                     "status", m->status));
  json_decref(meta);
  return 0;
}

/* DATASET as the contract in the README describes it. */
static json_t *datasets_json(const chubd_request *req, const store_dataset *d,
                             int with_models) {
  json_t *o = json_object();
  json_t *meta = models_parse(d->meta);
  const char *name = json_string_value(json_object_get(meta, "name"));
  char slug[DATASETS_SLUG_MAX + 1];
  datasets_slug(name, slug);
  json_object_set_new(o, "id", json_string(d->id));
  json_object_set_new(o, "name", json_string(name ? name : ""));
  json_object_set_new(o, "slug", json_string(slug));
  json_object_set_new(o, "status", json_string(d->status));
  models_time(o, "created_at", d->created_ms);
  models_time(o, "updated_at", d->updated_ms);
  if (d->sha256[0]) {
    char url[1024];
    links_dataset(req, d, slug, url, sizeof url);
    json_object_set_new(o, "size", json_integer(d->size));
    json_object_set_new(o, "sha256", json_string(d->sha256));
    json_object_set_new(o, "filename", json_string(d->filename));
    json_object_set_new(o, "files", json_integer(d->files));
    json_object_set_new(o, "url", json_string(url));
  }
  if (with_models) {
    json_t *models = json_array();
    store *st = req->srv->st;
    st->ops->dataset_models(st, d->id, DATASETS_MODELS_SHOWN,
                            datasets_model_row, models);
    json_object_set_new(o, "models", models);
  }
  json_object_set_new(o, "meta", meta);
  return o;
}

static int datasets_lookup(chubd_request *req, chubd_reply *rep,
                           store_dataset *d) {
  store *st = req->srv->st;
  store_rc rc = st->ops->dataset_get(st, req->r.id, req->owner, d);
  if (rc == STORE_OK)
    return 0;
  if (rc == STORE_NOTFOUND)
    reply_error(rep, 404, "dataset %s not found", req->r.id);
  else
    reply_store(rep, rc, "dataset");
  return -1;
}

static json_t *datasets_body(chubd_request *req, chubd_reply *rep, int create) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0 ||
      validate_dataset_body(body, create, err) < 0) {
    if (body)
      json_decref(body);
    reply_error(rep, 400, "%s", err);
    return NULL;
  }
  return body;
}

void datasets_create(chubd_request *req, chubd_reply *rep) {
  json_t *body = datasets_body(req, rep, 1);
  if (!body)
    return;
  store_dataset d;
  memset(&d, 0, sizeof d);
  snprintf(d.owner, sizeof d.owner, "%s", req->key.owner);
  d.meta = json_dumps(json_object_get(body, "meta"), JSON_COMPACT);
  d.created_ms = d.updated_ms = util_now_ms();
  json_decref(body);
  store_rc rc = STORE_ERROR;
  for (int attempt = 0; d.meta && attempt < 4; attempt++) {
    if (util_random_alnum(d.id, UTIL_ID_LEN) < 0)
      break;
    rc = req->srv->st->ops->dataset_add(req->srv->st, &d);
    if (rc != STORE_CONFLICT)
      break;
  }
  store_dataset_free(&d);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "dataset");
    return;
  }
  reply_data(rep, 200, json_pack("{s:s}", "id", d.id), "dataset created");
}

void datasets_get(chubd_request *req, chubd_reply *rep) {
  store_dataset d;
  if (datasets_lookup(req, rep, &d) < 0)
    return;
  reply_data(rep, 200, datasets_json(req, &d, 1), "");
  store_dataset_free(&d);
}

typedef struct datasets_list_ctx {
  chubd_request *req;
  json_t *results;
  char last_id[UTIL_ID_LEN + 1];
} datasets_list_ctx;

static int datasets_list_row(void *ud, const store_dataset *d) {
  datasets_list_ctx *ctx = ud;
  json_array_append_new(ctx->results, datasets_json(ctx->req, d, 0));
  memcpy(ctx->last_id, d->id, sizeof ctx->last_id);
  return 0;
}

void datasets_list(chubd_request *req, chubd_reply *rep) {
  int limit;
  const char *after;
  if (models_paging(req, rep, "dataset", &limit, &after) < 0)
    return;
  datasets_list_ctx ctx = {req, json_array(), ""};
  int64_t total = 0;
  int more = 0;
  store *st = req->srv->st;
  store_rc rc = st->ops->dataset_list(st, req->owner, after, limit,
                                      datasets_list_row, &ctx, &total, &more);
  if (rc != STORE_OK) {
    json_decref(ctx.results);
    if (rc == STORE_NOTFOUND)
      reply_error(rep, 400, "query field \"last_doc_id\": no dataset %s",
                  after);
    else
      reply_store(rep, rc, "datasets");
    return;
  }
  reply_data(rep, 200,
             json_pack("{s:o, s:I, s:o}", "results", ctx.results, "total",
                       (json_int_t)total, "lastRecordId",
                       more ? json_string(ctx.last_id) : json_null()),
             "");
}

void datasets_patch(chubd_request *req, chubd_reply *rep) {
  json_t *body = datasets_body(req, rep, 0);
  if (!body)
    return;
  store_dataset d;
  if (datasets_lookup(req, rep, &d) < 0) {
    json_decref(body);
    return;
  }
  json_t *meta = models_parse(d.meta);
  json_object_update(meta, json_object_get(body, "meta"));
  json_decref(body);
  char *text = json_dumps(meta, JSON_COMPACT);
  json_decref(meta);
  store_dataset_free(&d);
  store *st = req->srv->st;
  store_rc rc =
      text ? st->ops->dataset_update(st, req->r.id, text, util_now_ms())
           : STORE_ERROR;
  free(text);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "dataset");
    return;
  }
  if (datasets_lookup(req, rep, &d) < 0)
    return;
  reply_data(rep, 200, datasets_json(req, &d, 1), "dataset updated");
  store_dataset_free(&d);
}

void datasets_delete(chubd_request *req, chubd_reply *rep) {
  int hard = 0;
  const char *q = httpd_query(req, "hard");
  if (q && validate_bool(q, &hard) < 0) {
    reply_error(rep, 400,
                "query field \"hard\" must be True, False, true, false, 1 or "
                "0");
    return;
  }
  store_dataset d;
  if (datasets_lookup(req, rep, &d) < 0)
    return;
  store_dataset_free(&d);
  chubd_server *srv = req->srv;
  store_rc rc = srv->st->ops->dataset_delete(srv->st, req->r.id, hard);
  if (rc == STORE_OK && hard && d.sha256[0]) {
    pthread_mutex_lock(&srv->blobs_mu);
    blobs_drop_unused(srv->cfg.blobs_dir, srv->st, d.sha256);
    pthread_mutex_unlock(&srv->blobs_mu);
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "dataset");
    return;
  }
  reply_data(rep, 200, json_pack("{s:s, s:b}", "id", req->r.id, "hard", hard),
             hard ? "dataset deleted with its file" : "dataset deleted");
}

/* ------------------------------------------------------------- upload */

static int datasets_is_file(const char *name, const char *filename) {
  (void)name;
  return filename != NULL;
}

/* hub-sdk sends the file alone; other fields are tolerated and unused. */
static int datasets_field(void *state, const char *name, const char *value,
                          char err[VALIDATE_ERR]) {
  (void)state;
  (void)name;
  (void)value;
  (void)err;
  return 0;
}

unsigned datasets_upload_begin(chubd_request *req, chubd_reply *rep) {
  store_dataset d;
  if (datasets_lookup(req, rep, &d) < 0)
    return rep->status;
  store_dataset_free(&d);
  return upload_begin(req, rep, req->srv->cfg.max_upload, datasets_is_file,
                      datasets_field);
}

static int datasets_pread(void *ud, uint64_t off, void *buf, size_t n) {
  int fd = *(int *)ud;
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    got += (size_t)r;
  }
  return 0;
}

/* Makes the checked zip a blob and the dataset's file, dropping the file
 * it replaces when nothing else uses it. */
static void datasets_store(chubd_request *req, chubd_reply *rep, int fd,
                           const char *tmp, const char *sha,
                           const zipcheck_info *info) {
  chubd_server *srv = req->srv;
  store *st = srv->st;
  store_dataset d;
  memset(&d, 0, sizeof d);
  memcpy(d.id, req->r.id, sizeof d.id);
  snprintf(d.owner, sizeof d.owner, "%s", req->owner ? req->owner : "");
  d.size = (int64_t)upload_size(req->upload);
  memcpy(d.sha256, sha, 65);
  snprintf(d.filename, sizeof d.filename, "%s", upload_filename(req->upload));
  d.files = (int64_t)info->entries;
  d.updated_ms = util_now_ms();
  char old[65] = "";
  /* As weights_store: the fsync before the lock, the temporary's removal
   * after it. */
  int sealed = blobs_seal(fd) == 0;
  pthread_mutex_lock(&srv->blobs_mu);
  if (!sealed || blobs_commit(srv->cfg.blobs_dir, tmp, sha) != 0) {
    fprintf(stderr, "chubd: cannot store upload %s as blob %s: %s\n", tmp, sha,
            strerror(errno));
    pthread_mutex_unlock(&srv->blobs_mu);
    unlink(tmp);
    reply_error(rep, 507, "the server cannot store the upload (disk)");
    return;
  }
  store_rc rc = st->ops->dataset_set_file(st, &d, old);
  if (rc == STORE_OK) {
    if (old[0] && strcmp(old, sha) != 0)
      blobs_drop_unused(srv->cfg.blobs_dir, st, old);
  } else {
    unlink(tmp);
    blobs_drop_unused(srv->cfg.blobs_dir, st, sha);
  }
  pthread_mutex_unlock(&srv->blobs_mu);
  if (rc == STORE_OK)
    blobs_settle(srv->cfg.blobs_dir, tmp, sha);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "dataset %s not found", req->r.id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "dataset");
    return;
  }
  reply_data(rep, 200,
             json_pack("{s:I, s:s, s:I}", "size", (json_int_t)d.size, "sha256",
                       sha, "files", (json_int_t)d.files),
             "dataset stored");
}

void datasets_upload_finish(chubd_request *req, chubd_reply *rep) {
  char sha[65], tmp[4200], err[256];
  if (upload_finish(req, rep, "dataset zip", sha) != 0)
    return;
  int fd = upload_take_file(req->upload, tmp, sizeof tmp);
  zipcheck_info info;
  if (zipcheck(datasets_pread, &fd, upload_size(req->upload), &info, err,
               sizeof err) < 0) {
    close(fd);
    unlink(tmp);
    reply_error(rep, 400, "dataset upload refused, %s; nothing stored", err);
    return;
  }
  datasets_store(req, rep, fd, tmp, sha, &info);
}

void datasets_download(chubd_request *req, chubd_reply *rep) {
  store_dataset d;
  if (datasets_lookup(req, rep, &d) < 0)
    return;
  int same = strcmp(d.sha256, req->r.weights) == 0;
  store_dataset_free(&d);
  if (!same) {
    reply_error(rep, 404,
                "dataset %s holds another file now; read the dataset again "
                "for its URL",
                req->r.id);
    return;
  }
  reply_blob(req, rep, req->r.weights, req->r.name);
}

/* ------------------------------------------------------ models' data */

int datasets_check_for_model(chubd_request *req, chubd_reply *rep,
                             const char *owner, const char *id) {
  store_dataset d;
  store *st = req->srv->st;
  store_rc rc = util_is_alnum_n(id, UTIL_ID_LEN)
                    ? st->ops->dataset_get(st, id, owner, &d)
                    : STORE_NOTFOUND;
  if (rc == STORE_OK) {
    store_dataset_free(&d);
    return 0;
  }
  if (rc == STORE_NOTFOUND)
    reply_error(rep, 400, "field \"dataset.id\": you have no dataset %.40s",
                id);
  else
    reply_store(rep, rc, "dataset");
  return -1;
}

json_t *datasets_data_for_model(const chubd_request *req, const char *id) {
  store_dataset d;
  store *st = req->srv->st;
  if (st->ops->dataset_get(st, id, NULL, &d) != STORE_OK)
    return NULL;
  json_t *meta = models_parse(d.meta);
  const char *name = json_string_value(json_object_get(meta, "name"));
  json_t *v;
  if (d.sha256[0]) {
    char slug[DATASETS_SLUG_MAX + 1], url[1024];
    datasets_slug(name, slug);
    links_dataset(req, &d, slug, url, sizeof url);
    v = json_string(url);
  } else {
    v = json_string(name ? name : "");
  }
  json_decref(meta);
  store_dataset_free(&d);
  return v;
}

typedef struct datasets_slug_ctx {
  const char *slug;
  store_dataset found;
  int hit;
} datasets_slug_ctx;

static int datasets_slug_row(void *ud, const store_dataset *d) {
  datasets_slug_ctx *ctx = ud;
  json_t *meta = models_parse(d->meta);
  char slug[DATASETS_SLUG_MAX + 1];
  datasets_slug(json_string_value(json_object_get(meta, "name")), slug);
  json_decref(meta);
  if (strcmp(slug, ctx->slug) != 0 || !d->sha256[0])
    return 0;
  ctx->found = *d;
  ctx->found.meta = NULL; /* not kept: d's is freed after this call */
  ctx->hit = 1;
  return 1;
}

int datasets_export_url(chubd_request *req, chubd_reply *rep, const char *slug,
                        char *url, size_t n) {
  datasets_slug_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.slug = slug;
  int64_t total = 0;
  int more = 0;
  store *st = req->srv->st;
  /* Newest first, so the newest dataset of that slug wins; the scan is
   * bounded. */
  store_rc rc = st->ops->dataset_list(st, req->owner, NULL, DATASETS_SCAN_MAX,
                                      datasets_slug_row, &ctx, &total, &more);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "datasets");
    return -1;
  }
  if (!ctx.hit) {
    reply_error(rep, 404, "dataset %s not found (or has no file yet)", slug);
    return -1;
  }
  links_dataset(req, &ctx.found, slug, url, n);
  return 0;
}

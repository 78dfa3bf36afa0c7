/*
 * weights.c - checkpoints and final weights: streamed uploads
 * (POST /v1/models/{id}/upload, multipart/form-data) and streamed
 * downloads (GET .../weights/{last|best|sha256}).
 *
 * Uploads are read part by part (upload.c, multipart.c): the file part
 * is written to a temporary file while it is hashed, so memory stays
 * flat whatever the size; small fields are gathered into a fixed buffer.
 * Only when the body is complete, the fields are valid and the digest
 * matches x-chub-sha256 (when sent) does the file become a blob and a
 * checkpoint row, in that order, under the blobs lock (see blobs.c).
 * Downloads hand the open file to libmicrohttpd, which sends it with
 * sendfile; Range requests get the slice they ask for.
 */
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobs.h"
#include "upload.h"

static int weights_is_file(const char *key, const char *filename) {
  return filename != NULL || strcmp(key, "last.pt") == 0 ||
         strcmp(key, "best.pt") == 0;
}

static int weights_field(void *state, const char *name, const char *value,
                         char err[VALIDATE_ERR]) {
  return validate_upload_field(state, name, value, err);
}

unsigned weights_upload_begin(chubd_request *req, chubd_reply *rep) {
  _Static_assert(sizeof(validate_upload) <= UPLOAD_STATE_MAX,
                 "upload state too small for the weights fields");
  if (models_check(req, rep) < 0)
    return rep->status;
  return upload_begin(req, rep, req->srv->cfg.max_upload, weights_is_file,
                      weights_field);
}

void weights_store(chubd_request *req, const validate_upload *f,
                   const char *sha, chubd_reply *rep) {
  upload *up = req->upload;
  store_checkpoint k;
  memset(&k, 0, sizeof k);
  k.epoch = f->epoch;
  k.final = f->final;
  k.is_best = f->is_best;
  k.has_map = f->has_map;
  k.map = f->map;
  k.size = (int64_t)upload_size(up);
  memcpy(k.sha256, sha, 65);
  snprintf(k.suffix, sizeof k.suffix, "%s", upload_suffix(up));
  k.created_ms = util_now_ms();

  chubd_server *srv = req->srv;
  store *st = srv->st;
  char tmp[4200];
  /* The fsync, slow for a large file, before the lock that other uploads
   * wait on; the temporary's removal after it. */
  int fd = upload_take_file(up, tmp, sizeof tmp);
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
  store_rc rc = st->ops->checkpoint_add(st, req->r.id, &k);
  if (rc != STORE_OK) {
    unlink(tmp);
    blobs_drop_unused(srv->cfg.blobs_dir, st, sha);
  }
  pthread_mutex_unlock(&srv->blobs_mu);
  if (rc == STORE_OK)
    blobs_settle(srv->cfg.blobs_dir, tmp, sha);
  if (rc == STORE_CONFLICT) {
    reply_error(rep, 409,
                "model %s is already trained; its final weights "
                "cannot be replaced",
                req->r.id);
    return;
  }
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "model %s not found", req->r.id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  reply_data(rep, 200,
             json_pack("{s:I, s:s, s:I, s:s}", "size", (json_int_t)k.size,
                       "sha256", sha, "epoch", (json_int_t)k.epoch, "type",
                       k.final ? "final" : "epoch"),
             k.final ? "final weights stored" : "checkpoint stored");
}

void weights_upload_finish(chubd_request *req, chubd_reply *rep) {
  char sha[65], err[VALIDATE_ERR];
  if (upload_finish(req, rep, "weights (last.pt or best.pt)", sha) != 0)
    return;
  const validate_upload *f = upload_state(req->upload);
  if (validate_upload_done(f, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return;
  }
  weights_store(req, f, sha, rep);
}

/* ------------------------------------------------------------ download */

static long weights_find(const char *which, const store_checkpoint *k,
                         size_t n) {
  long last, best;
  if (strcmp(which, "last") == 0 || strcmp(which, "best") == 0) {
    models_pick(k, n, &last, &best);
    return which[0] == 'l' ? last : best;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(k[i].sha256, which) == 0)
      return (long)i;
  return -1;
}

void weights_get(chubd_request *req, chubd_reply *rep) {
  if (models_check(req, rep) < 0)
    return;
  store *st = req->srv->st;
  store_checkpoint *k = NULL;
  size_t n = 0;
  store_rc rc = st->ops->checkpoints(st, req->r.id, &k, &n);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "checkpoints");
    return;
  }
  long i = weights_find(req->r.weights, k, n);
  if (i < 0) {
    free(k);
    reply_error(rep, 404, "model %s has no %s weights", req->r.id,
                strlen(req->r.weights) == 64 ? "such" : req->r.weights);
    return;
  }
  store_checkpoint c = k[i];
  free(k);
  char name[ROUTE_NAME_MAX + 1];
  if (req->r.kind == ROUTE_MODEL_BLOB)
    snprintf(name, sizeof name, "%s", req->r.name);
  else if (strlen(req->r.weights) == 64)
    snprintf(name, sizeof name, "%s-epoch%lld%s", req->r.id, (long long)c.epoch,
             c.suffix);
  else
    snprintf(name, sizeof name, "%s-%s%s", req->r.id, req->r.weights, c.suffix);
  reply_blob(req, rep, c.sha256, name);
}

/*
 * weights.c - checkpoints and final weights: streamed uploads
 * (POST /v1/models/{id}/upload, multipart/form-data) and streamed
 * downloads (GET .../weights/{last|best|sha256}).
 *
 * Uploads go through libmicrohttpd's post processor part by part: the file
 * part is written to a temporary file while it is hashed, so memory stays
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

#include <openssl/evp.h>

#include "blobs.h"

#define WEIGHTS_PP_BUFFER (64 * 1024)

struct weights_upload {
  chubd_server *srv;
  struct MHD_PostProcessor *pp;
  int fd;
  char tmp[4200];
  EVP_MD_CTX *md;
  uint64_t size; /* bytes of the file part */
  int file_parts;
  int have_part; /* a part is open */
  int part_is_file;
  char part_key[64];
  char value[128];
  size_t value_len;
  validate_upload fields;
  char suffix[STORE_SUFFIX_MAX + 1]; /* of the file part's name */
  unsigned status;                   /* first error, 0 while fine */
  char err[VALIDATE_ERR];
};

static void weights_fail(weights_upload *up, unsigned status, const char *fmt,
                         ...) {
  if (up->status)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(up->err, sizeof up->err, fmt, ap);
  va_end(ap);
  up->status = status;
  /* Nothing of a refused upload stays on disk, not even until the
   * connection ends: the client may look as soon as it has the answer. */
  if (up->fd >= 0) {
    close(up->fd);
    unlink(up->tmp);
    up->fd = -1;
  }
}

void weights_upload_free(weights_upload *up) {
  if (!up)
    return;
  if (up->pp)
    MHD_destroy_post_processor(up->pp);
  if (up->fd >= 0) {
    close(up->fd);
    unlink(up->tmp);
  }
  EVP_MD_CTX_free(up->md);
  free(up);
}

/* Ends the open part: a form field is checked now that it is whole. */
static void weights_end_part(weights_upload *up) {
  if (!up->have_part)
    return;
  up->have_part = 0;
  if (up->part_is_file || up->status)
    return;
  up->value[up->value_len] = '\0';
  char err[VALIDATE_ERR];
  if (validate_upload_field(&up->fields, up->part_key, up->value, err) < 0)
    weights_fail(up, 400, "%s", err);
}

static int weights_is_file(const char *key, const char *filename) {
  return filename != NULL || strcmp(key, "last.pt") == 0 ||
         strcmp(key, "best.pt") == 0;
}

/* ".pt" unless the file part's name ends in another plain suffix (a C
 * trainer's ".bin", ".gguf"), which download names then keep. */
static void weights_take_suffix(weights_upload *up, const char *filename) {
  snprintf(up->suffix, sizeof up->suffix, ".pt");
  const char *dot = filename ? strrchr(filename, '.') : NULL;
  if (!dot || dot == filename)
    return;
  size_t n = strlen(dot + 1);
  if (n == 0 || n >= STORE_SUFFIX_MAX)
    return;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)dot[1 + i]))
      return;
  up->suffix[0] = '.';
  for (size_t i = 0; i <= n; i++)
    up->suffix[1 + i] = (char)tolower((unsigned char)dot[1 + i]);
}

static void weights_begin_part(weights_upload *up, const char *key,
                               int is_file) {
  weights_end_part(up);
  up->have_part = 1;
  up->part_is_file = is_file;
  up->value_len = 0;
  if (strlen(key) >= sizeof up->part_key) {
    weights_fail(up, 400, "form field name too long: \"%.40s...\"", key);
    up->part_key[0] = '\0';
    return;
  }
  strcpy(up->part_key, key);
  if (is_file && ++up->file_parts > 1)
    weights_fail(up, 400, "only one file part is allowed per upload");
}

static void weights_file_data(weights_upload *up, const char *data,
                              size_t size) {
  if (up->status || size == 0)
    return;
  up->size += size;
  if (up->size > up->srv->cfg.max_upload) {
    weights_fail(up, 413, "upload is over the limit of %llu bytes",
                 (unsigned long long)up->srv->cfg.max_upload);
    return;
  }
  EVP_DigestUpdate(up->md, data, size);
  while (size > 0) {
    ssize_t w = write(up->fd, data, size);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      fprintf(stderr, "chubd: cannot write upload %s: %s\n", up->tmp,
              strerror(errno));
      weights_fail(up, 507, "the server cannot store the upload (disk)");
      return;
    }
    data += w;
    size -= (size_t)w;
  }
}

static enum MHD_Result weights_iter(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *filename,
                                    const char *content_type,
                                    const char *transfer_encoding,
                                    const char *data, uint64_t off,
                                    size_t size) {
  weights_upload *up = cls;
  (void)kind;
  (void)content_type;
  (void)transfer_encoding;
  if (!key)
    key = "";
  int is_file = weights_is_file(key, filename);
  /* off == 0 starts a part, unless it repeats the part just opened with
   * nothing in it yet (an empty first chunk). */
  int same = up->have_part && strcmp(up->part_key, key) == 0 &&
             up->part_is_file == is_file && up->value_len == 0 &&
             (!is_file || up->size == 0);
  if (off == 0 && !same) {
    weights_begin_part(up, key, is_file);
    if (is_file)
      weights_take_suffix(up, filename ? filename : key);
  }
  if (is_file) {
    weights_file_data(up, data, size);
  } else if (!up->status) {
    if (up->value_len + size >= sizeof up->value) {
      weights_fail(up, 400, "form field \"%s\" is too long", up->part_key);
    } else if (size && memchr(data, '\0', size)) {
      weights_fail(up, 400, "form field \"%s\" holds a NUL byte", up->part_key);
    } else {
      memcpy(up->value + up->value_len, data, size);
      up->value_len += size;
    }
  }
  return up->status ? MHD_NO : MHD_YES;
}

unsigned weights_upload_begin(chubd_request *req, chubd_reply *rep) {
  const char *ctype = http_header(req, "content-type");
  if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
    reply_error(rep, 415, "uploads must be multipart/form-data");
    return 415;
  }
  const char *clen = http_header(req, "content-length");
  long long declared;
  if (clen && validate_uint(clen, INT64_MAX / 2, &declared) == 0 &&
      (uint64_t)declared > req->srv->cfg.max_upload + 64 * 1024) {
    reply_error(rep, 413, "upload is over the limit of %llu bytes",
                (unsigned long long)req->srv->cfg.max_upload);
    return 413;
  }
  if (models_check(req, rep) < 0)
    return rep->status;
  weights_upload *up = calloc(1, sizeof *up);
  if (!up) {
    reply_error(rep, 503, "server out of memory");
    return 503;
  }
  up->srv = req->srv;
  up->fd = -1;
  up->md = EVP_MD_CTX_new();
  if (!up->md || EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1) {
    weights_upload_free(up);
    reply_error(rep, 503, "cannot start hashing the upload");
    return 503;
  }
  up->pp =
      MHD_create_post_processor(req->conn, WEIGHTS_PP_BUFFER, weights_iter, up);
  if (!up->pp) {
    weights_upload_free(up);
    reply_error(rep, 400,
                "multipart/form-data body without a usable "
                "boundary");
    return 400;
  }
  up->fd = blobs_tmp_open(req->srv->cfg.data_dir, up->tmp, sizeof up->tmp);
  if (up->fd < 0) {
    fprintf(stderr,
            "chubd: cannot create a temporary file under %s/tmp: "
            "%s\n",
            req->srv->cfg.data_dir, strerror(errno));
    weights_upload_free(up);
    reply_error(rep, 507, "the server cannot store the upload (disk)");
    return 507;
  }
  req->upload = up;
  return 0;
}

unsigned weights_upload_data(chubd_request *req, const char *data, size_t size,
                             chubd_reply *rep) {
  weights_upload *up = req->upload;
  if (!up->status && MHD_post_process(up->pp, data, size) != MHD_YES)
    weights_fail(up, 400, "malformed multipart/form-data body");
  if (up->status) {
    reply_error(rep, up->status, "%s", up->err);
    return up->status;
  }
  return 0;
}

/* Checks what arrived and makes it a checkpoint. */
static void weights_store(chubd_request *req, weights_upload *up,
                          const char *sha, chubd_reply *rep) {
  store_checkpoint k;
  memset(&k, 0, sizeof k);
  k.epoch = up->fields.epoch;
  k.final = up->fields.final;
  k.is_best = up->fields.is_best;
  k.has_map = up->fields.has_map;
  k.map = up->fields.map;
  k.size = (int64_t)up->size;
  memcpy(k.sha256, sha, 65);
  snprintf(k.suffix, sizeof k.suffix, "%s", up->suffix[0] ? up->suffix : ".pt");
  k.created_ms = util_now_ms();

  chubd_server *srv = req->srv;
  store *st = srv->st;
  pthread_mutex_lock(&srv->blobs_mu);
  int fd = up->fd;
  up->fd = -1;
  if (blobs_commit(srv->cfg.data_dir, fd, up->tmp, sha) != 0) {
    fprintf(stderr, "chubd: cannot store upload %s as blob %s: %s\n", up->tmp,
            sha, strerror(errno));
    unlink(up->tmp);
    pthread_mutex_unlock(&srv->blobs_mu);
    reply_error(rep, 507, "the server cannot store the upload (disk)");
    return;
  }
  store_rc rc = st->ops->checkpoint_add(st, req->r.id, &k);
  if (rc != STORE_OK) {
    int in_use = 1;
    if (st->ops->blob_in_use(st, sha, &in_use) == STORE_OK && !in_use) {
      char path[4200];
      blobs_path(srv->cfg.data_dir, sha, path, sizeof path);
      unlink(path);
    }
  }
  pthread_mutex_unlock(&srv->blobs_mu);
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
             json_pack("{s:I, s:s, s:I, s:s}", "size", (json_int_t)up->size,
                       "sha256", sha, "epoch", (json_int_t)k.epoch, "type",
                       k.final ? "final" : "epoch"),
             k.final ? "final weights stored" : "checkpoint stored");
}

void weights_upload_finish(chubd_request *req, chubd_reply *rep) {
  weights_upload *up = req->upload;
  MHD_destroy_post_processor(up->pp); /* delivers what it still holds */
  up->pp = NULL;
  weights_end_part(up);
  char err[VALIDATE_ERR];
  if (!up->status && validate_upload_done(&up->fields, err) < 0)
    weights_fail(up, 400, "%s", err);
  if (!up->status && up->file_parts == 0)
    weights_fail(up, 400,
                 "missing the weights file part (last.pt or "
                 "best.pt)");
  if (up->status) {
    reply_error(rep, up->status, "%s", up->err);
    return;
  }
  if (up->fd < 0) {
    reply_error(rep, 507, "the server cannot store the upload (disk)");
    return;
  }
  unsigned char digest[32];
  unsigned int dlen = 32;
  char sha[65];
  EVP_DigestFinal_ex(up->md, digest, &dlen);
  util_hex(digest, 32, sha);
  const char *expect = http_header(req, "x-chub-sha256");
  if (expect && !util_is_sha256_hex(expect))
    weights_fail(up, 400,
                 "header x-chub-sha256 must be 64 hex digits; "
                 "nothing stored");
  else if (expect && strcasecmp(expect, sha) != 0)
    weights_fail(up, 400,
                 "x-chub-sha256 mismatch: the received %llu bytes hash to "
                 "%s; nothing stored",
                 (unsigned long long)up->size, sha);
  if (up->status) {
    reply_error(rep, up->status, "%s", up->err);
    return;
  }
  weights_store(req, up, sha, rep);
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

static int weights_etag_matches(const char *inm, const char *sha) {
  if (!inm)
    return 0;
  if (strcmp(inm, "*") == 0)
    return 1;
  return strstr(inm, sha) != NULL;
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
  char path[4200];
  blobs_path(req->srv->cfg.data_dir, c.sha256, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    if (fd >= 0)
      close(fd);
    fprintf(stderr, "chubd: weights file %s is missing: %s\n", path,
            strerror(errno));
    reply_error(rep, 404,
                "weights file of model %s is missing on the "
                "server",
                req->r.id);
    return;
  }
  uint64_t size = (uint64_t)sb.st_size;
  reply_header(rep, "ETag", "\"%s\"", c.sha256);
  reply_header(rep, "Accept-Ranges", "bytes");
  if (req->r.kind == ROUTE_MODEL_BLOB) {
    reply_header(rep, "Content-Disposition", "attachment; filename=\"%s\"",
                 req->r.name);
  } else {
    char label[32];
    if (strlen(req->r.weights) == 64)
      snprintf(label, sizeof label, "epoch%lld", (long long)c.epoch);
    else
      snprintf(label, sizeof label, "%.8s", req->r.weights);
    reply_header(rep, "Content-Disposition", "attachment; filename=\"%s-%s%s\"",
                 req->r.id, label, c.suffix);
  }
  if (weights_etag_matches(http_header(req, "if-none-match"), c.sha256)) {
    close(fd);
    rep->status = 304;
    return;
  }
  uint64_t first = 0, last = size ? size - 1 : 0;
  int range = validate_range(http_header(req, "range"), size, &first, &last);
  if (range < 0) {
    close(fd);
    reply_header(rep, "Content-Range", "bytes */%llu",
                 (unsigned long long)size);
    reply_error(rep, 416, "range not satisfiable for %llu bytes",
                (unsigned long long)size);
    return;
  }
  rep->status = range ? 206 : 200;
  if (range)
    reply_header(rep, "Content-Range", "bytes %llu-%llu/%llu",
                 (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)size);
  rep->ctype = "application/octet-stream";
  rep->fd = fd;
  rep->off = first;
  rep->flen = range ? last - first + 1 : size;
}

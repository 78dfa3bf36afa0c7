/*
 * upload.c - a streamed multipart/form-data upload, read part by part by
 * multipart.c (see upload.h).
 *
 * A raw upload (upload_begin_raw: Ultralytics Platform's PUT of
 * application/octet-stream) is the same file part without the multipart
 * around it: the body goes straight to the temporary file and the hash.
 *
 * Nothing of a refused upload stays on disk, not even until the
 * connection ends: the first error closes and removes the temporary file,
 * since the client may look as soon as it has the answer.
 */
#include "upload.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "blobs.h"
#include "multipart.h"
#include "server.h"
#include "upload_sink.h"

#define UPLOAD_FILENAME_MAX 128

struct upload {
  chubd_server *srv;
  multipart *mp;
  upload_is_file_fn is_file;
  upload_field_fn field;
  union {
    max_align_t align;
    unsigned char bytes[UPLOAD_STATE_MAX];
  } state;
  uint64_t max;
  int fd;
  char tmp[4200];
  upload_sink *sink; /* hashes and writes the file part to fd */
  uint64_t size;     /* bytes of the file part */
  int file_parts;
  int have_part; /* a part is open */
  int part_is_file;
  char part_key[64];
  char value[128];
  size_t value_len;
  char suffix[STORE_SUFFIX_MAX + 1];
  char filename[UPLOAD_FILENAME_MAX + 1];
  int raw;           /* the body is the file (upload_begin_raw) */
  char sha_part[72]; /* form field x-chub-sha256 (after the file), or "" */
  unsigned status;   /* first error, 0 while fine */
  char err[VALIDATE_ERR];
};

static void upload_fail(upload *up, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void upload_fail(upload *up, unsigned status, const char *fmt, ...) {
  if (up->status)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(up->err, sizeof up->err, fmt, ap);
  va_end(ap);
  up->status = status;
  upload_sink_free(up->sink); /* before fd: its threads may be writing */
  up->sink = NULL;
  if (up->fd >= 0) {
    close(up->fd);
    unlink(up->tmp);
    up->fd = -1;
  }
}

void upload_free(upload *up) {
  if (!up)
    return;
  multipart_free(up->mp);
  upload_sink_free(up->sink);
  if (up->fd >= 0) {
    close(up->fd);
    unlink(up->tmp);
  }
  free(up);
}

/* Ends the open part: a form field is handed over now that it is whole. */
static void upload_end_part(upload *up) {
  if (!up->have_part)
    return;
  up->have_part = 0;
  if (up->part_is_file || up->status)
    return;
  up->value[up->value_len] = '\0';
  /* The file's SHA-256 as a form field: a client that hashes while it
   * sends gives it after the file part (any upload kind, so the handlers
   * never see it). */
  if (strcmp(up->part_key, "x-chub-sha256") == 0) {
    if (!util_is_sha256_hex(up->value))
      upload_fail(up, 400,
                  "form field x-chub-sha256 must be 64 hex digits; "
                  "nothing stored");
    else
      memcpy(up->sha_part, up->value, 65);
    return;
  }
  char err[VALIDATE_ERR];
  if (up->field && up->field(up->state.bytes, up->part_key, up->value, err) < 0)
    upload_fail(up, 400, "%s", err);
}

/* ".pt" unless the file part's name ends in another plain suffix (a C
 * trainer's ".bin", a dataset's ".zip"), which download names keep. */
static void upload_take_name(upload *up, const char *filename) {
  snprintf(up->suffix, sizeof up->suffix, ".pt");
  size_t j = 0;
  for (const char *p = filename; p && *p && j < UPLOAD_FILENAME_MAX; p++) {
    unsigned char c = (unsigned char)*p;
    up->filename[j++] =
        isalnum(c) || c == '.' || c == '-' || c == '_' || c == ' ' ? (char)c
                                                                   : '_';
  }
  up->filename[j] = '\0';
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

static void upload_begin_part(upload *up, const char *key, int is_file) {
  upload_end_part(up);
  up->have_part = 1;
  up->part_is_file = is_file;
  up->value_len = 0;
  if (strlen(key) >= sizeof up->part_key) {
    upload_fail(up, 400, "form field name too long: \"%.40s...\"", key);
    up->part_key[0] = '\0';
    return;
  }
  strcpy(up->part_key, key);
  if (is_file && ++up->file_parts > 1)
    upload_fail(up, 400, "only one file part is allowed per upload");
}

static void upload_write_failed(upload *up) {
  fprintf(stderr, "chubd: cannot write upload %s: %s\n", up->tmp,
          strerror(errno));
  upload_fail(up, 507, "the server cannot store the upload (disk)");
}

static void upload_file_data(upload *up, const char *data, size_t size) {
  if (up->status || size == 0)
    return;
  up->size += size;
  if (up->size > up->max) {
    upload_fail(up, 413, "upload is over the limit of %llu bytes",
                (unsigned long long)up->max);
    return;
  }
  if (upload_sink_put(up->sink, data, size) < 0)
    upload_write_failed(up);
}

/* multipart.c's callbacks: a part begins, and bytes of its body. */
static int upload_part(void *ctx, const char *name, const char *filename) {
  upload *up = ctx;
  int is_file = up->is_file(name, filename);
  upload_begin_part(up, name, is_file);
  if (is_file)
    upload_take_name(up, filename ? filename : name);
  return up->status ? -1 : 0;
}

static int upload_part_data(void *ctx, const char *data, size_t size) {
  upload *up = ctx;
  if (up->part_is_file) {
    upload_file_data(up, data, size);
  } else if (!up->status) {
    if (up->value_len + size >= sizeof up->value) {
      upload_fail(up, 400, "form field \"%s\" is too long", up->part_key);
    } else if (memchr(data, '\0', size)) {
      upload_fail(up, 400, "form field \"%s\" holds a NUL byte", up->part_key);
    } else {
      memcpy(up->value + up->value_len, data, size);
      up->value_len += size;
    }
  }
  return up->status ? -1 : 0;
}

static const multipart_cb upload_multipart_cb = {upload_part, upload_part_data};

/* What both kinds of upload check and open; `raw` says which. */
static unsigned upload_open(chubd_request *req, chubd_reply *rep, uint64_t max,
                            upload_is_file_fn is_file, upload_field_fn field,
                            int raw);

unsigned upload_begin(chubd_request *req, chubd_reply *rep, uint64_t max,
                      upload_is_file_fn is_file, upload_field_fn field) {
  const char *ctype = httpd_header(req, "content-type");
  if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
    reply_error(rep, 415, "uploads must be multipart/form-data");
    return 415;
  }
  return upload_open(req, rep, max, is_file, field, 0);
}

unsigned upload_begin_raw(chubd_request *req, chubd_reply *rep, uint64_t max,
                          const char *filename) {
  const char *ctype = httpd_header(req, "content-type");
  if (!ctype || strncasecmp(ctype, "application/octet-stream", 24) != 0) {
    reply_error(rep, 415, "Content-Type must be application/octet-stream");
    return 415;
  }
  unsigned status = upload_open(req, rep, max, NULL, NULL, 1);
  if (status == 0) {
    req->upload->file_parts = 1;
    upload_take_name(req->upload, filename);
  }
  return status;
}

static unsigned upload_open(chubd_request *req, chubd_reply *rep, uint64_t max,
                            upload_is_file_fn is_file, upload_field_fn field,
                            int raw) {
  const char *clen = httpd_header(req, "content-length");
  long long declared;
  if (clen && validate_uint(clen, INT64_MAX / 2, &declared) == 0 &&
      (uint64_t)declared > max + 64 * 1024) {
    reply_error(rep, 413, "upload is over the limit of %llu bytes",
                (unsigned long long)max);
    return 413;
  }
  upload *up = calloc(1, sizeof *up);
  if (!up) {
    reply_error(rep, 503, "server out of memory");
    return 503;
  }
  up->srv = req->srv;
  up->fd = -1;
  up->max = max;
  up->is_file = is_file;
  up->field = field;
  up->raw = raw;
  char err[VALIDATE_ERR];
  if (!raw)
    up->mp = multipart_new(httpd_header(req, "content-type"),
                           &upload_multipart_cb, up, err, sizeof err);
  if (!raw && !up->mp) {
    upload_free(up);
    reply_error(rep, 400, "%s", err);
    return 400;
  }
  up->fd = blobs_tmp_open(req->srv->cfg.blobs_dir, up->tmp, sizeof up->tmp);
  if (up->fd < 0) {
    fprintf(stderr,
            "chubd: cannot create a temporary file under %s/.incoming: "
            "%s\n",
            req->srv->cfg.blobs_dir, strerror(errno));
    upload_free(up);
    reply_error(rep, 507, "the server cannot store the upload (disk)");
    return 507;
  }
  up->sink = upload_sink_new(up->fd);
  if (!up->sink) {
    upload_free(up);
    reply_error(rep, 503, "cannot start hashing the upload");
    return 503;
  }
  req->upload = up;
  return 0;
}

unsigned upload_data(chubd_request *req, const char *data, size_t size,
                     chubd_reply *rep) {
  upload *up = req->upload;
  if (up->raw)
    upload_file_data(up, data, size);
  else if (!up->status && multipart_feed(up->mp, data, size) < 0 && !up->status)
    upload_fail(up, 400, "malformed multipart/form-data body: %s",
                multipart_error(up->mp));
  if (up->status) {
    reply_error(rep, up->status, "%s", up->err);
    return up->status;
  }
  return 0;
}

unsigned upload_finish(chubd_request *req, chubd_reply *rep, const char *what,
                       char sha[65]) {
  upload *up = req->upload;
  /* Whether the body ended where a multipart body ends: after its closing
   * boundary. */
  int whole = up->raw || multipart_done(up->mp);
  upload_end_part(up);
  if (!whole)
    upload_fail(up, 400,
                "the multipart body ends without its closing boundary (cut "
                "short?); nothing stored");
  if (!up->status && up->file_parts == 0)
    upload_fail(up, 400, "missing the %s file part", what);
  if (!up->status && up->size == 0)
    upload_fail(up, 400, "the %s file is empty (0 bytes); nothing stored",
                what);
  if (!up->status && up->fd < 0)
    upload_fail(up, 507, "the server cannot store the upload (disk)");
  if (up->status) {
    reply_error(rep, up->status, "%s", up->err);
    return up->status;
  }
  unsigned char digest[32];
  if (upload_sink_finish(up->sink, digest) < 0) {
    upload_write_failed(up);
    reply_error(rep, up->status, "%s", up->err);
    return up->status;
  }
  util_hex(digest, 32, sha);
  const char *expect = httpd_header(req, "x-chub-sha256");
  if (up->sha_part[0] && expect && strcasecmp(expect, up->sha_part) != 0)
    upload_fail(up, 400,
                "header x-chub-sha256 and form field x-chub-sha256 differ; "
                "nothing stored");
  else if (up->sha_part[0])
    expect = up->sha_part;
  if (up->status)
    ; /* said above */
  else if (expect && !util_is_sha256_hex(expect))
    upload_fail(up, 400,
                "header x-chub-sha256 must be 64 hex digits; nothing stored");
  else if (expect && strcasecmp(expect, sha) != 0)
    upload_fail(up, 400,
                "x-chub-sha256 mismatch: the received %llu bytes hash to "
                "%s; nothing stored",
                (unsigned long long)up->size, sha);
  if (up->status) {
    reply_error(rep, up->status, "%s", up->err);
    return up->status;
  }
  prom_upload_digest(!expect           ? PROM_DIGEST_NONE
                     : up->sha_part[0] ? PROM_DIGEST_PART
                                       : PROM_DIGEST_HEADER);
  return 0;
}

void *upload_state(upload *up) {
  return up->state.bytes;
}

uint64_t upload_size(const upload *up) {
  return up->size;
}

const char *upload_suffix(const upload *up) {
  return up->suffix[0] ? up->suffix : ".pt";
}

const char *upload_filename(const upload *up) {
  return up->filename;
}

int upload_take_file(upload *up, char *path, size_t n) {
  int fd = up->fd;
  snprintf(path, n, "%s", up->tmp);
  up->fd = -1;
  return fd;
}

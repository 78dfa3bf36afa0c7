/*
 * idx.c - the IDX file format (big-endian header, then raw bytes), read
 * through zlib so the .gz files from dataset-fashion-mnist load as they are.
 *
 * Everything is checked before it is trusted: a truncated or foreign file
 * yields a message that names it instead of a crash or a silent short read.
 */
#include "idx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAGIC_LABELS 0x00000801u /* unsigned bytes, 1 dimension */
#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned bytes, 3 dimensions */
#define IDX_MAX_ITEMS 10000000u      /* far above any MNIST-like set */

static uint32_t idx_be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         (uint32_t)b[3];
}

/* Reads exactly `len` bytes or explains why not. */
static int idx_read(gzFile gz, const char *path, void *buf, size_t len,
                    char *err, size_t errlen) {
  unsigned char *p = buf;
  while (len > 0) {
    unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
    int n = gzread(gz, p, chunk);
    if (n < 0) {
      int zerr = 0;
      const char *msg = gzerror(gz, &zerr);
      snprintf(err, errlen, "cannot read %s: %s", path, msg);
      return -1;
    }
    if (n == 0) {
      snprintf(err, errlen, "cannot read %s: file is truncated", path);
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Opens one IDX file, checks its magic and returns its dimensions. */
static gzFile idx_open(const char *path, uint32_t magic, uint32_t *dims,
                       int ndims, char *err, size_t errlen) {
  gzFile gz = gzopen(path, "rb");
  if (!gz) {
    snprintf(err, errlen,
             "cannot open %s: %s (install dataset-fashion-mnist or pass "
             "--data-dir DIR)",
             path, errno ? strerror(errno) : "out of memory");
    return NULL;
  }
  unsigned char head[16];
  size_t head_len = 4 + 4 * (size_t)ndims;
  if (idx_read(gz, path, head, head_len, err, errlen) != 0) {
    gzclose(gz);
    return NULL;
  }
  uint32_t got = idx_be32(head);
  if (got != magic) {
    snprintf(err, errlen,
             "cannot read %s: magic number 0x%08x, expected 0x%08x (not an "
             "IDX %s file)",
             path, (unsigned)got, (unsigned)magic,
             ndims == 1 ? "label" : "image");
    gzclose(gz);
    return NULL;
  }
  for (int i = 0; i < ndims; i++)
    dims[i] = idx_be32(head + 4 + 4 * i);
  if (dims[0] == 0 || dims[0] > IDX_MAX_ITEMS) {
    snprintf(err, errlen, "cannot read %s: implausible item count %u", path,
             (unsigned)dims[0]);
    gzclose(gz);
    return NULL;
  }
  return gz;
}

static int idx_load_labels(const char *path, size_t limit, idx_set *out,
                           char *err, size_t errlen) {
  uint32_t dims[1];
  gzFile gz = idx_open(path, IDX_MAGIC_LABELS, dims, 1, err, errlen);
  if (!gz)
    return -1;
  size_t n = dims[0];
  if (limit > 0 && limit < n)
    n = limit;
  out->labels = malloc(n);
  if (!out->labels) {
    snprintf(err, errlen, "cannot read %s: out of memory", path);
    gzclose(gz);
    return -1;
  }
  int rc = idx_read(gz, path, out->labels, n, err, errlen);
  gzclose(gz);
  if (rc != 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (out->labels[i] > 9) {
      snprintf(err, errlen, "cannot read %s: label %u at item %zu is not 0..9",
               path, out->labels[i], i);
      return -1;
    }
  }
  out->count = n;
  return 0;
}

static int idx_load_images(const char *path, size_t limit, idx_set *out,
                           char *err, size_t errlen) {
  uint32_t dims[3];
  gzFile gz = idx_open(path, IDX_MAGIC_IMAGES, dims, 3, err, errlen);
  if (!gz)
    return -1;
  if (dims[1] != 28 || dims[2] != 28) {
    snprintf(err, errlen, "cannot read %s: images are %ux%u, expected 28x28",
             path, (unsigned)dims[1], (unsigned)dims[2]);
    gzclose(gz);
    return -1;
  }
  size_t n = dims[0];
  if (limit > 0 && limit < n)
    n = limit;
  if (n != out->count) {
    snprintf(err, errlen, "cannot read %s: %zu images but %zu labels", path, n,
             out->count);
    gzclose(gz);
    return -1;
  }
  size_t bytes = n * dims[1] * dims[2];
  out->pixels = malloc(bytes);
  if (!out->pixels) {
    snprintf(err, errlen, "cannot read %s: out of memory", path);
    gzclose(gz);
    return -1;
  }
  int rc = idx_read(gz, path, out->pixels, bytes, err, errlen);
  gzclose(gz);
  if (rc != 0)
    return -1;
  out->rows = dims[1];
  out->cols = dims[2];
  return 0;
}

int idx_load(const char *dir, const char *prefix, size_t limit, idx_set *out,
             char *err, size_t errlen) {
  char path[4096];
  memset(out, 0, sizeof *out);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
  errno = 0;
  if (idx_load_labels(path, limit, out, err, errlen) != 0) {
    idx_free(out);
    return -1;
  }
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
  errno = 0;
  if (idx_load_images(path, limit, out, err, errlen) != 0) {
    idx_free(out);
    return -1;
  }
  return 0;
}

void idx_free(idx_set *set) {
  free(set->pixels);
  free(set->labels);
  memset(set, 0, sizeof *set);
}

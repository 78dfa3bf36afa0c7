/*
 * weights.c - writes and reads the weights file described in weights.h.
 *
 * Values are encoded byte by byte in little-endian order so that the file
 * means the same on any machine, and a CRC-32 over the whole file catches a
 * truncated or damaged download before it is trained on.
 */
#include "weights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define WEIGHTS_MAGIC "CHUBMLP1"

/* An output file with a running CRC and a small encode buffer. */
typedef struct weights_out {
  FILE *fp;
  uLong crc;
  int failed;
} weights_out;

static void weights_put(weights_out *o, const void *buf, size_t len) {
  if (o->failed)
    return;
  o->crc = crc32(o->crc, buf, (uInt)len);
  if (fwrite(buf, 1, len, o->fp) != len)
    o->failed = 1;
}

static void weights_put_u32(weights_out *o, uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                        (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
  weights_put(o, b, 4);
}

static void weights_put_u64(weights_out *o, uint64_t v) {
  weights_put_u32(o, (uint32_t)v);
  weights_put_u32(o, (uint32_t)(v >> 32));
}

static void weights_put_f64(weights_out *o, double d) {
  uint64_t v;
  memcpy(&v, &d, sizeof v);
  weights_put_u64(o, v);
}

static void weights_put_floats(weights_out *o, const float *f, size_t n) {
  unsigned char buf[4096];
  while (n > 0) {
    size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
    for (size_t i = 0; i < k; i++) {
      uint32_t v;
      memcpy(&v, &f[i], sizeof v);
      buf[4 * i] = (unsigned char)v;
      buf[4 * i + 1] = (unsigned char)(v >> 8);
      buf[4 * i + 2] = (unsigned char)(v >> 16);
      buf[4 * i + 3] = (unsigned char)(v >> 24);
    }
    weights_put(o, buf, 4 * k);
    f += k;
    n -= k;
  }
}

int weights_save(const char *path, const mlp *net, const weights_meta *meta,
                 char *err, size_t errlen) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  weights_out o = {fopen(tmp, "wb"), crc32(0, NULL, 0), 0};
  if (!o.fp) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    return -1;
  }
  weights_put(&o, WEIGHTS_MAGIC, 8);
  weights_put_u32(&o, (uint32_t)net->n_layers);
  for (int l = 0; l <= net->n_layers; l++)
    weights_put_u32(&o, (uint32_t)net->sizes[l]);
  weights_put_u32(&o, (uint32_t)meta->epoch);
  weights_put_f64(&o, meta->fitness);
  weights_put_f64(&o, meta->best_fitness);
  weights_put_u64(&o, net->adam_step);
  weights_put_u64(&o, (uint64_t)net->n_params);
  weights_put_floats(&o, net->params, net->n_params);
  weights_put_floats(&o, net->adam_m, net->n_params);
  weights_put_floats(&o, net->adam_v, net->n_params);
  weights_put_u32(&o, (uint32_t)o.crc);
  /* The rename below is only atomic for readers if the bytes reached the
   * disk first. */
  if (!o.failed && (fflush(o.fp) != 0 || fsync(fileno(o.fp)) != 0))
    o.failed = 1;
  int saved = errno;
  if (fclose(o.fp) != 0)
    o.failed = 1;
  if (o.failed) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(saved));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
             strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* A bounds-checked reader over the file's bytes. */
typedef struct weights_in {
  const unsigned char *p;
  size_t left;
} weights_in;

static int weights_get(weights_in *in, void *out, size_t len) {
  if (in->left < len)
    return -1;
  memcpy(out, in->p, len);
  in->p += len;
  in->left -= len;
  return 0;
}

static int weights_get_u32(weights_in *in, uint32_t *v) {
  unsigned char b[4];
  if (weights_get(in, b, 4) != 0)
    return -1;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
       (uint32_t)b[3] << 24;
  return 0;
}

static int weights_get_u64(weights_in *in, uint64_t *v) {
  uint32_t lo, hi;
  if (weights_get_u32(in, &lo) != 0 || weights_get_u32(in, &hi) != 0)
    return -1;
  *v = (uint64_t)hi << 32 | lo;
  return 0;
}

static int weights_get_f64(weights_in *in, double *d) {
  uint64_t v;
  if (weights_get_u64(in, &v) != 0)
    return -1;
  memcpy(d, &v, sizeof v);
  return 0;
}

static int weights_get_floats(weights_in *in, float *f, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t v;
    if (weights_get_u32(in, &v) != 0)
      return -1;
    memcpy(&f[i], &v, sizeof v);
  }
  return 0;
}

static unsigned char *weights_slurp(const char *path, size_t *len, char *err,
                                    size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    snprintf(err, errlen, "cannot open weights %s: %s", path, strerror(errno));
    return NULL;
  }
  unsigned char *buf = NULL;
  long size = -1;
  if (fseek(fp, 0, SEEK_END) == 0)
    size = ftell(fp);
  if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) {
    snprintf(err, errlen, "cannot read weights %s: %s", path, strerror(errno));
  } else if (!(buf = malloc(size > 0 ? (size_t)size : 1))) {
    snprintf(err, errlen, "cannot read weights %s: out of memory", path);
  } else if (fread(buf, 1, (size_t)size, fp) != (size_t)size) {
    snprintf(err, errlen, "cannot read weights %s: short read", path);
    free(buf);
    buf = NULL;
  }
  fclose(fp);
  *len = (size_t)size;
  return buf;
}

static int weights_parse(const char *path, const unsigned char *buf, size_t len,
                         mlp *net, weights_meta *meta, char *err,
                         size_t errlen) {
  if (len < 12 || memcmp(buf, WEIGHTS_MAGIC, 8) != 0) {
    snprintf(err, errlen, "cannot load %s: not a weights file (no %s magic)",
             path, WEIGHTS_MAGIC);
    return -1;
  }
  weights_in crc_in = {buf + len - 4, 4};
  uint32_t stored;
  weights_get_u32(&crc_in, &stored);
  if ((uint32_t)crc32(crc32(0, NULL, 0), buf, (uInt)(len - 4)) != stored) {
    snprintf(err, errlen,
             "cannot load %s: checksum mismatch (damaged or "
             "truncated)",
             path);
    return -1;
  }
  weights_in in = {buf + 8, len - 12};
  uint32_t n_layers, u;
  int sizes[MLP_MAX_LAYERS + 1];
  uint64_t step, n_params;
  double fitness, best;
  if (weights_get_u32(&in, &n_layers) != 0 || n_layers < 1 ||
      n_layers > MLP_MAX_LAYERS)
    goto bad;
  for (uint32_t l = 0; l <= n_layers; l++) {
    if (weights_get_u32(&in, &u) != 0 || u < 1 || u > 65536)
      goto bad;
    sizes[l] = (int)u;
  }
  if (weights_get_u32(&in, &u) != 0 || weights_get_f64(&in, &fitness) != 0 ||
      weights_get_f64(&in, &best) != 0 || weights_get_u64(&in, &step) != 0 ||
      weights_get_u64(&in, &n_params) != 0)
    goto bad;
  if (mlp_init(net, (int)n_layers, sizes, 0) != 0) {
    snprintf(err, errlen, "cannot load %s: out of memory", path);
    return -1;
  }
  if (n_params != net->n_params || in.left != 12 * n_params ||
      weights_get_floats(&in, net->params, n_params) != 0 ||
      weights_get_floats(&in, net->adam_m, n_params) != 0 ||
      weights_get_floats(&in, net->adam_v, n_params) != 0) {
    mlp_free(net);
    goto bad;
  }
  net->adam_step = step;
  meta->epoch = (int)(int32_t)u;
  meta->fitness = fitness;
  meta->best_fitness = best;
  return 0;
bad:
  snprintf(err, errlen, "cannot load %s: header and size do not agree", path);
  return -1;
}

int weights_load(const char *path, mlp *net, weights_meta *meta, char *err,
                 size_t errlen) {
  size_t len = 0;
  unsigned char *buf = weights_slurp(path, &len, err, errlen);
  if (!buf)
    return -1;
  int rc = weights_parse(path, buf, len, net, meta, err, errlen);
  free(buf);
  return rc;
}

/*
 * fuzz_multipart.c - libFuzzer target: any bytes as a multipart body.
 *
 * Input: one byte choosing a piece size, one byte the boundary's length,
 * the boundary, then the body. The body is read whole and again in pieces
 * of that size: both readings must see the same parts and bytes, end the
 * same way (fail, done or neither) and give the same error; a failure
 * always says why; no part's bytes come after the closing boundary.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

typedef struct fuzz_log {
  uint8_t *p;
  size_t len, cap;
  int done_seen; /* the reader said done before this callback */
} fuzz_log;

static void fuzz_add(fuzz_log *l, const void *p, size_t n) {
  if (l->len + n > l->cap) {
    l->cap = (l->len + n) * 2 + 64;
    l->p = realloc(l->p, l->cap);
    if (!l->p)
      abort();
  }
  memcpy(l->p + l->len, p, n);
  l->len += n;
}

static int fuzz_part(void *ctx, const char *name, const char *filename) {
  fuzz_log *l = ctx;
  fuzz_add(l, "\x01", 1);
  fuzz_add(l, name, strlen(name) + 1);
  if (filename)
    fuzz_add(l, filename, strlen(filename) + 1);
  else
    fuzz_add(l, "\x02", 1);
  return 0;
}

static int fuzz_data(void *ctx, const char *p, size_t n) {
  if (n == 0)
    abort(); /* never an empty piece */
  fuzz_add(ctx, p, n);
  return 0;
}

static const multipart_cb fuzz_cb = {fuzz_part, fuzz_data};

typedef struct fuzz_run {
  fuzz_log log;
  int rc, done;
  char err[256];
} fuzz_run;

static int fuzz_read(const char *ctype, const uint8_t *body, size_t n,
                     size_t piece, fuzz_run *r) {
  char err[256];
  memset(r, 0, sizeof *r);
  multipart *m = multipart_new(ctype, &fuzz_cb, &r->log, err, sizeof err);
  if (!m)
    return -1;
  for (size_t off = 0; off < n && r->rc == 0; off += piece) {
    size_t k = n - off < piece ? n - off : piece;
    r->rc = multipart_feed(m, (const char *)body + off, k);
    if (multipart_done(m) && r->rc != 0)
      abort(); /* done is final and never fails */
  }
  r->done = multipart_done(m);
  snprintf(r->err, sizeof r->err, "%s", multipart_error(m));
  if (r->rc < 0 && r->err[0] == '\0')
    abort(); /* a refusal says why (no callback stops here) */
  multipart_free(m);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t piece = (size_t)data[0] % 17 + 1, blen = data[1];
  if (blen > size - 2)
    return 0;
  char ctype[128 + 256];
  snprintf(ctype, sizeof ctype, "multipart/form-data; boundary=\"%.*s\"",
           (int)blen, (const char *)data + 2);
  const uint8_t *body = data + 2 + blen;
  size_t n = size - 2 - blen;
  fuzz_run whole, cut;
  if (fuzz_read(ctype, body, n, n ? n : 1, &whole) < 0)
    return 0; /* a boundary the reader refused */
  if (fuzz_read(ctype, body, n, piece, &cut) < 0)
    abort(); /* refused once, accepted once */
  if (whole.rc != cut.rc || whole.done != cut.done ||
      strcmp(whole.err, cut.err) != 0 || whole.log.len != cut.log.len ||
      (whole.log.len && memcmp(whole.log.p, cut.log.p, whole.log.len) != 0))
    abort();
  free(whole.log.p);
  free(cut.log.p);
  return 0;
}

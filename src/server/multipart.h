/*
 * multipart.h - a streaming reader of multipart/form-data bodies (RFC 7578
 * over RFC 2046), for uploads of any size.
 *
 * The body is fed in pieces as they arrive; each part's start (its form
 * name and file name) and its bytes go to the caller's callbacks. A part's
 * bytes are handed over straight from the piece fed, not copied, except
 * the few at the end of a piece that could be the start of a boundary
 * (held until the next piece says). Memory is fixed: one small structure
 * per body, whatever its size.
 *
 *   multipart *m = multipart_new(content_type, &cb, ctx, err, sizeof err);
 *   while (more body)  if (multipart_feed(m, p, n) < 0) refuse(...);
 *   if (!multipart_done(m)) refuse("cut short");
 *   multipart_free(m);
 *
 * The preamble before the first boundary and the epilogue after the
 * closing one are skipped, as RFC 2046 says. Refused, with a message that
 * names the problem: a boundary line followed by anything but "--" or a
 * line end, part headers over MULTIPART_HEADERS_MAX bytes, and a
 * Content-Disposition other than form-data.
 */
#ifndef CHUBD_MULTIPART_H
#define CHUBD_MULTIPART_H

#include <stddef.h>

/* The most bytes a part's header block may take. */
#define MULTIPART_HEADERS_MAX 8192
/* The longest boundary RFC 2046 allows. */
#define MULTIPART_BOUNDARY_MAX 70

typedef struct multipart multipart;

typedef struct multipart_cb {
  /* A part begins: its form field name ("" when it has none) and its file
   * name (NULL when it has none). 0 to go on, -1 to stop reading. */
  int (*part)(void *ctx, const char *name, const char *filename);
  /* n > 0 bytes of the current part's body, in order. 0 or -1 as above. */
  int (*data)(void *ctx, const char *p, size_t n);
} multipart_cb;

/* A reader for a body of the given Content-Type header value (its
 * boundary parameter, quoted or not). NULL with the reason in err when the
 * type is not multipart/form-data, has no usable boundary, or memory is
 * short. cb and ctx must outlive the reader. */
multipart *multipart_new(const char *content_type, const multipart_cb *cb,
                         void *ctx, char *err, size_t errn);

/* Reads the next n bytes of the body. 0, or -1 once the body is malformed
 * or a callback stopped (then every later call fails too); the reason is in
 * multipart_error(). Bytes after the closing boundary are ignored. */
int multipart_feed(multipart *m, const char *p, size_t n);

/* 1 once the closing boundary has been read, else 0. */
int multipart_done(const multipart *m);

/* Why the last feed failed ("" when it did not, or a callback stopped). */
const char *multipart_error(const multipart *m);

void multipart_free(multipart *m);

#endif

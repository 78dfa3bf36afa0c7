/*
 * multipart.c - a streaming multipart/form-data reader (see multipart.h).
 *
 * A part's body ends at the delimiter CRLF "--" boundary. The reader looks
 * for it with memmem() in the piece it was fed and hands everything before
 * it to the data callback from that piece. The bytes at a piece's end that
 * could begin a delimiter (fewer than its length, found by comparing from
 * each CR among them) go to `carry` and are looked at again with the start
 * of the next piece. The body is read as if it began with CRLF, which
 * makes a first boundary at the very start a delimiter like the others;
 * everything before it is the preamble and is dropped.
 */
#include "multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MP_DELIM_MAX (4 + MULTIPART_BOUNDARY_MAX) /* CRLF "--" boundary */

enum mp_state {
  MP_BODY,    /* a part's body, or the preamble before the first part */
  MP_TAIL,    /* just after a delimiter: "--", or padding and CRLF */
  MP_HEADERS, /* a part's header block, up to its empty line */
  MP_DONE,    /* after the closing delimiter: the epilogue, ignored */
  MP_FAILED
};

/* What follows a delimiter, one byte at a time. */
enum mp_tail { TAIL_START, TAIL_DASH, TAIL_PAD, TAIL_CR };

struct multipart {
  const multipart_cb *cb;
  void *ctx;
  enum mp_state state;
  enum mp_tail tail;
  int in_part; /* body bytes go to the callback (not the preamble) */
  char delim[MP_DELIM_MAX];
  size_t dlen;
  char carry[2 * MP_DELIM_MAX]; /* held bytes that may begin a delimiter */
  size_t clen;
  char hdr[MULTIPART_HEADERS_MAX + 1];
  size_t hlen;
  char err[160];
};

static void mp_fail(multipart *m, const char *msg) {
  snprintf(m->err, sizeof m->err, "%s", msg);
  m->state = MP_FAILED;
}

/* ------------------------------------------------ header parameters */

/* The next "key=value" of a header value's parameter list at *p (the part
 * after its type: Content-Type's boundary, Content-Disposition's name and
 * filename), parsed in place: *key and *val are NUL-ended, the value
 * unquoted (backslash escapes undone) or, unquoted, trimmed of blanks.
 * A parameter without "=" is skipped, and a ';' inside quotes is part of
 * the value. 1 with *p past the parameter, 0 at the end of the list, -1
 * when a quote is not closed. */
static int mp_next_param(char **p, char **key, char **val) {
  char *s = *p;
  for (;;) {
    while (*s == ';' || *s == ' ' || *s == '\t')
      s++;
    if (!*s)
      return 0;
    *key = s;
    while (*s && *s != '=' && *s != ';')
      s++;
    if (*s == '=')
      break;
  }
  char *key_end = s++;
  while (key_end > *key && (key_end[-1] == ' ' || key_end[-1] == '\t'))
    key_end--;
  *key_end = '\0'; /* at the '=' or a blank before it */
  char *out;
  if (*s == '"') {
    *val = out = ++s;
    while (*s && *s != '"') {
      if (*s == '\\' && s[1])
        s++;
      *out++ = *s++;
    }
    if (*s != '"')
      return -1;
    *out = '\0'; /* at most on the closing quote */
    *p = s + 1;
    return 1;
  }
  *val = s;
  while (*s && *s != ';')
    s++;
  out = s;
  while (out > *val && (out[-1] == ' ' || out[-1] == '\t'))
    out--;
  *p = *s ? s + 1 : s; /* past the ';' the NUL may take */
  *out = '\0';
  return 1;
}

/* RFC 2046: 1 to 70 printable characters, the last not a space. */
static int mp_boundary_ok(const char *b) {
  size_t n = strlen(b);
  if (n == 0 || n > MULTIPART_BOUNDARY_MAX || b[n - 1] == ' ')
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] > 0x7e)
      return 0;
  return 1;
}

multipart *multipart_new(const char *content_type, const multipart_cb *cb,
                         void *ctx, char *err, size_t errn) {
  char b[MULTIPART_BOUNDARY_MAX + 2];
  if (!content_type ||
      strncasecmp(content_type, "multipart/form-data", 19) != 0) {
    snprintf(err, errn, "uploads must be multipart/form-data");
    return NULL;
  }
  char *params = strdup(content_type + 19), *p = params, *key, *val;
  if (!params) {
    snprintf(err, errn, "server out of memory");
    return NULL;
  }
  b[0] = '\0';
  while (mp_next_param(&p, &key, &val) > 0)
    if (strcasecmp(key, "boundary") == 0) {
      if (strlen(val) < sizeof b)
        memcpy(b, val, strlen(val) + 1);
      break;
    }
  free(params);
  if (!mp_boundary_ok(b)) {
    snprintf(err, errn,
             "multipart/form-data body without a usable boundary (1 to %d "
             "printable characters)",
             MULTIPART_BOUNDARY_MAX);
    return NULL;
  }
  multipart *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errn, "server out of memory");
    return NULL;
  }
  m->cb = cb;
  m->ctx = ctx;
  m->state = MP_BODY;
  m->dlen = 4 + strlen(b);
  memcpy(m->delim, "\r\n--", 4);
  memcpy(m->delim + 4, b, m->dlen - 4);
  memcpy(m->carry, "\r\n", 2); /* the CRLF the body is read as if after */
  m->clen = 2;
  return m;
}

/* ------------------------------------------------------------- the body */

/* Where the delimiter d is in h: full is 1 and at its offset when it is
 * there whole; else full is 0 and at is where a part of it begins at the
 * very end of h (hn when none does), so h[0, at) is body for certain. */
typedef struct mp_hit {
  size_t at;
  int full;
} mp_hit;

static mp_hit mp_scan(const char *h, size_t hn, const char *d, size_t dn) {
  const char *f = memmem(h, hn, d, dn);
  if (f)
    return (mp_hit){(size_t)(f - h), 1};
  size_t j = hn >= dn ? hn - dn + 1 : 0;
  while (j < hn) {
    const char *cr = memchr(h + j, '\r', hn - j);
    if (!cr)
      break;
    j = (size_t)(cr - h);
    if (memcmp(cr, d, hn - j) == 0)
      return (mp_hit){j, 0};
    j++;
  }
  return (mp_hit){hn, 0};
}

/* Hands n body bytes on (the preamble's are dropped). 0, or -1 when the
 * callback stopped. */
static int mp_emit(multipart *m, const char *p, size_t n) {
  if (n == 0 || !m->in_part)
    return 0;
  if (m->cb->data(m->ctx, p, n) < 0) {
    m->err[0] = '\0';
    m->state = MP_FAILED;
    return -1;
  }
  return 0;
}

static void mp_delimiter(multipart *m) {
  m->state = MP_TAIL;
  m->tail = TAIL_START;
  m->in_part = 0;
}

/* Reads body bytes up to the next delimiter (consumed too); how many of
 * the n were used. */
static size_t mp_body(multipart *m, const char *p, size_t n) {
  size_t used = 0;
  while (used < n && m->state == MP_BODY) {
    if (m->clen == 0) {
      mp_hit h = mp_scan(p + used, n - used, m->delim, m->dlen);
      if (mp_emit(m, p + used, h.at) < 0)
        break;
      if (h.full) {
        used += h.at + m->dlen;
        mp_delimiter(m);
      } else {
        m->clen = n - used - h.at; /* fewer than dlen */
        memcpy(m->carry, p + used + h.at, m->clen);
        used = n;
      }
      continue;
    }
    /* Held bytes first, with enough of this piece to see past them. */
    size_t k = n - used < m->dlen ? n - used : m->dlen;
    size_t held = m->clen, len = held + k;
    memcpy(m->carry + held, p + used, k);
    mp_hit h = mp_scan(m->carry, len, m->delim, m->dlen);
    if (mp_emit(m, m->carry, h.at) < 0)
      break;
    if (h.full) {
      /* Held bytes are shorter than a delimiter: it ends in this piece. */
      used += h.at + m->dlen - held;
      m->clen = 0;
      mp_delimiter(m);
    } else {
      memmove(m->carry, m->carry + h.at, len - h.at);
      m->clen = len - h.at;
      used += k;
    }
  }
  return used;
}

/* ------------------------------------------------ after each delimiter */

static void mp_tail_byte(multipart *m, char c) {
  switch (m->tail) {
  case TAIL_START:
    if (c == '-')
      m->tail = TAIL_DASH;
    else if (c == '\r')
      m->tail = TAIL_CR;
    else if (c == ' ' || c == '\t')
      m->tail = TAIL_PAD;
    else
      mp_fail(m, "a boundary is followed by neither a line break nor \"--\"");
    return;
  case TAIL_DASH:
    if (c == '-')
      m->state = MP_DONE;
    else
      mp_fail(m, "a boundary is followed by a single \"-\"");
    return;
  case TAIL_PAD:
    if (c == '\r')
      m->tail = TAIL_CR;
    else if (c != ' ' && c != '\t')
      mp_fail(m, "a boundary line holds more than the boundary");
    return;
  case TAIL_CR:
    if (c == '\n') {
      m->state = MP_HEADERS;
      m->hlen = 0;
    } else {
      mp_fail(m, "a boundary line ends in CR without LF");
    }
    return;
  }
}

/* ------------------------------------------------------ a part's headers */

/* Reads a Content-Disposition value in place: form-data, and *name and
 * *filename pointing into it (the first of each). 0, or -1 with the
 * reason set. */
static int mp_disposition(multipart *m, char *v, const char **name,
                          const char **filename) {
  while (*v == ' ' || *v == '\t')
    v++;
  if (strncasecmp(v, "form-data", 9) != 0 ||
      (v[9] && v[9] != ';' && v[9] != ' ' && v[9] != '\t')) {
    mp_fail(m, "a part's Content-Disposition is not form-data");
    return -1;
  }
  char *p = v + 9, *key, *val;
  int r;
  while ((r = mp_next_param(&p, &key, &val)) > 0) {
    if (strcasecmp(key, "name") == 0 && !*name)
      *name = val;
    else if (strcasecmp(key, "filename") == 0 && !*filename)
      *filename = val;
  }
  if (r < 0) {
    mp_fail(m, "a part's Content-Disposition has an unclosed quote");
    return -1;
  }
  return 0;
}

/* The header block is whole (m->hdr, ending in an empty line): finds the
 * Content-Disposition and starts the part. */
static void mp_part(multipart *m) {
  const char *name = NULL, *filename = NULL;
  int disposition = 0;
  m->hdr[m->hlen] = '\0';
  for (char *line = m->hdr; *line;) {
    char *end = strstr(line, "\r\n");
    *end = '\0'; /* the block ends in CRLF: every line has one */
    char *colon = strchr(line, ':');
    if (colon && (size_t)(colon - line) == 19 &&
        strncasecmp(line, "content-disposition", 19) == 0 && !disposition) {
      disposition = 1;
      if (mp_disposition(m, colon + 1, &name, &filename) < 0)
        return;
    }
    line = end + 2;
  }
  if (!disposition) {
    mp_fail(m, "a part has no Content-Disposition header");
    return;
  }
  if (m->cb->part(m->ctx, name ? name : "", filename) < 0) {
    m->err[0] = '\0';
    m->state = MP_FAILED;
    return;
  }
  m->state = MP_BODY;
  m->in_part = 1;
}

/* Collects header bytes up to the empty line; how many of n were used. */
static size_t mp_headers(multipart *m, const char *p, size_t n) {
  size_t used = 0;
  while (used < n && m->state == MP_HEADERS) {
    if (m->hlen == MULTIPART_HEADERS_MAX) {
      char msg[96];
      snprintf(msg, sizeof msg, "a part's headers are over %d bytes",
               MULTIPART_HEADERS_MAX);
      mp_fail(m, msg);
      break;
    }
    if (p[used] == '\0') { /* a header line is text */
      mp_fail(m, "a part's headers hold a NUL byte");
      break;
    }
    m->hdr[m->hlen++] = p[used++];
    const char *h = m->hdr + m->hlen;
    if ((m->hlen == 2 && memcmp(m->hdr, "\r\n", 2) == 0) ||
        (m->hlen >= 4 && memcmp(h - 4, "\r\n\r\n", 4) == 0)) {
      m->hlen -= 2; /* the block without its empty line */
      mp_part(m);
    }
  }
  return used;
}

/* ---------------------------------------------------------------- feed */

int multipart_feed(multipart *m, const char *p, size_t n) {
  size_t used = 0;
  while (used < n) {
    switch (m->state) {
    case MP_BODY:
      used += mp_body(m, p + used, n - used);
      break;
    case MP_TAIL:
      mp_tail_byte(m, p[used++]);
      break;
    case MP_HEADERS:
      used += mp_headers(m, p + used, n - used);
      break;
    case MP_DONE:
      return 0;
    case MP_FAILED:
      return -1;
    }
  }
  return m->state == MP_FAILED ? -1 : 0;
}

int multipart_done(const multipart *m) {
  return m->state == MP_DONE;
}

const char *multipart_error(const multipart *m) {
  return m->state == MP_FAILED ? m->err : "";
}

void multipart_free(multipart *m) {
  free(m);
}

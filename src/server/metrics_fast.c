/*
 * metrics_fast.c - a metrics upload's body read in one pass (see
 * metrics_fast.h).
 *
 * The grammar is JSON's (RFC 8259), narrowed so that whatever is accepted
 * here jansson reads the same way: strings of printable ASCII, numbers
 * whose value a long long or a double holds without overflow or
 * underflow, no repeated names. Every function returns 1 when it read
 * what it expects and 0 otherwise; 0 anywhere means "undecided" and the
 * whole body goes to the full path, so nothing here words an error.
 */
#include "metrics_fast.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

typedef struct mf_in {
  const char *p, *end;
} mf_in;

static int mf_is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int mf_is_digit(char c) {
  return c >= '0' && c <= '9';
}

static void mf_ws(mf_in *in) {
  while (in->p < in->end && mf_is_ws(*in->p))
    in->p++;
}

/* The next token is the character c: consumed. */
static int mf_char(mf_in *in, char c) {
  mf_ws(in);
  if (in->p < in->end && *in->p == c) {
    in->p++;
    return 1;
  }
  return 0;
}

/* A printable ASCII character that a JSON string holds as it is. */
static int mf_plain_byte(unsigned char c) {
  return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* A string without escapes: its bytes, quotes excluded, in *s and *sn. */
static int mf_plain(mf_in *in, const char **s, size_t *sn) {
  mf_ws(in);
  if (in->p >= in->end || *in->p != '"')
    return 0;
  const char *start = ++in->p;
  while (in->p < in->end && mf_plain_byte((unsigned char)*in->p))
    in->p++;
  if (in->p >= in->end || *in->p != '"')
    return 0;
  *s = start;
  *sn = (size_t)(in->p - start);
  in->p++;
  return 1;
}

/* The character a simple escape stands for, or 0 for any other. */
static char mf_unescape(char e) {
  switch (e) {
  case '"':
  case '\\':
  case '/':
    return e;
  case 'b':
    return '\b';
  case 'f':
    return '\f';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 't':
    return '\t';
  default:
    return 0;
  }
}

/* A string with at most simple escapes, decoded into a new NUL-terminated
 * buffer (*out, *outn). */
static int mf_string(mf_in *in, char **out, size_t *outn) {
  mf_ws(in);
  if (in->p >= in->end || *in->p != '"')
    return 0;
  const char *start = ++in->p;
  size_t n = 0;
  while (in->p < in->end && *in->p != '"') {
    if (*in->p == '\\') {
      if (in->end - in->p < 2 || !mf_unescape(in->p[1]))
        return 0;
      in->p += 2;
    } else if (mf_plain_byte((unsigned char)*in->p)) {
      in->p++;
    } else {
      return 0;
    }
    n++;
  }
  if (in->p >= in->end)
    return 0;
  char *d = malloc(n + 1);
  if (!d)
    return 0;
  size_t k = 0;
  for (const char *q = start; q < in->p; q++)
    d[k++] = *q == '\\' ? mf_unescape(*++q) : *q;
  d[k] = '\0';
  in->p++;
  *out = d;
  *outn = k;
  return 1;
}

/* A JSON number that jansson reads without overflow or underflow: an
 * integer of at most 18 digits (a long long), or a real that is 0 or
 * between 1e-300 and 1e300 in magnitude (a double). It must end where a
 * value in an object may end. */
static int mf_number(mf_in *in) {
  mf_ws(in);
  const char *p = in->p, *end = in->end;
  if (p < end && *p == '-')
    p++;
  const char *digits = p;
  if (p < end && *p == '0')
    p++;
  else if (p < end && mf_is_digit(*p))
    while (p < end && mf_is_digit(*p))
      p++;
  else
    return 0;
  long whole = (long)(p - digits), frac = 0, exp = 0;
  int real = 0;
  if (p < end && *p == '.') {
    const char *f = ++p;
    while (p < end && mf_is_digit(*p))
      p++;
    frac = (long)(p - f);
    if (frac == 0)
      return 0;
    real = 1;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    int neg = p < end && *p == '-';
    if (p < end && (*p == '-' || *p == '+'))
      p++;
    const char *e = p;
    while (p < end && mf_is_digit(*p) && p - e < 4)
      exp = exp * 10 + (*p++ - '0');
    if (p == e || (p < end && mf_is_digit(*p)))
      return 0; /* no exponent, or one of more than 4 digits */
    exp = neg ? -exp : exp;
    real = 1;
  }
  if (p < end && !mf_is_ws(*p) && *p != ',' && *p != '}')
    return 0; /* "01", "1x": jansson's error, not ours to word */
  if (!real && whole > 18)
    return 0;
  if (real &&
      (whole + exp > 300 || exp - frac < -300 || whole > 300 || frac > 300))
    return 0;
  in->p = p;
  return 1;
}

/* Text holding one JSON object whose values are all numbers, with no name
 * twice: the form of one epoch's metrics. */
static int mf_numbers_object(const char *text, size_t len) {
  mf_in in = {text, text + len};
  const char *name[METRICS_FAST_NAMES];
  size_t name_len[METRICS_FAST_NAMES];
  size_t k = 0;
  if (!mf_char(&in, '{'))
    return 0;
  if (!mf_char(&in, '}')) {
    do {
      const char *s;
      size_t sn;
      if (k == METRICS_FAST_NAMES || !mf_plain(&in, &s, &sn) ||
          !mf_char(&in, ':') || !mf_number(&in))
        return 0;
      for (size_t i = 0; i < k; i++)
        if (name_len[i] == sn && memcmp(name[i], s, sn) == 0)
          return 0;
      name[k] = s;
      name_len[k++] = sn;
    } while (mf_char(&in, ','));
    if (!mf_char(&in, '}'))
      return 0;
  }
  mf_ws(&in);
  return in.p == in.end;
}

/* An epoch number as validate_metrics() takes it (validate_epoch_key). */
static int mf_epoch(const char *s, size_t n, int64_t *epoch) {
  char key[16];
  long long v;
  if (n >= sizeof key)
    return 0;
  memcpy(key, s, n);
  key[n] = '\0';
  if (validate_epoch_key(key, &v) < 0)
    return 0;
  *epoch = v;
  return 1;
}

static int mf_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Whether an epoch number comes twice (jansson refuses the repeated
 * name). -1 out of memory. */
static int mf_repeated(const store_epoch *e, size_t n) {
  if (n < 2)
    return 0;
  int64_t stack[64], *v = n <= 64 ? stack : malloc(n * sizeof *v);
  if (!v)
    return -1;
  for (size_t i = 0; i < n; i++)
    v[i] = e[i].epoch;
  qsort(v, n, sizeof *v, mf_cmp_i64);
  int twice = 0;
  for (size_t i = 1; i < n && !twice; i++)
    twice = v[i] == v[i - 1];
  if (v != stack)
    free(v);
  return twice;
}

/* The "metrics" object: epoch -> string holding an object of numbers. The
 * epochs go to *e (its *n in use, *cap allocated), which the caller frees
 * whatever the outcome. */
static int mf_epochs(mf_in *in, store_epoch **e, size_t *n, size_t *cap) {
  if (!mf_char(in, '{'))
    return 0;
  if (mf_char(in, '}'))
    return 1;
  do {
    const char *s;
    size_t sn;
    int64_t epoch;
    if (!mf_plain(in, &s, &sn) || !mf_epoch(s, sn, &epoch) || !mf_char(in, ':'))
      return 0;
    if (*n == *cap) {
      size_t grown = *cap ? *cap * 2 : 4;
      store_epoch *g = realloc(*e, grown * sizeof *g);
      if (!g)
        return 0;
      *e = g;
      *cap = grown;
    }
    char *text;
    size_t tn;
    if (!mf_string(in, &text, &tn))
      return 0;
    if (!mf_numbers_object(text, tn)) {
      free(text);
      return 0;
    }
    (*e)[(*n)++] = (store_epoch){.epoch = epoch, .json = text};
  } while (mf_char(in, ','));
  return mf_char(in, '}');
}

int metrics_fast(const char *buf, size_t len, store_epoch **out, size_t *n) {
  mf_in in = {buf, buf + len};
  store_epoch *e = NULL;
  size_t ne = 0, cap = 0;
  int have_type = 0, have_metrics = 0;
  *out = NULL;
  *n = 0;
  if (!mf_char(&in, '{'))
    return 0;
  do {
    const char *s, *v;
    size_t sn, vn;
    if (!mf_plain(&in, &s, &sn) || !mf_char(&in, ':'))
      goto undecided;
    if (!have_type && sn == 4 && memcmp(s, "type", 4) == 0) {
      if (!mf_plain(&in, &v, &vn) || vn != 7 || memcmp(v, "metrics", 7) != 0)
        goto undecided;
      have_type = 1;
    } else if (!have_metrics && sn == 7 && memcmp(s, "metrics", 7) == 0) {
      if (!mf_epochs(&in, &e, &ne, &cap))
        goto undecided;
      have_metrics = 1;
    } else {
      goto undecided; /* unknown or repeated: the full path words it */
    }
  } while (mf_char(&in, ','));
  if (!mf_char(&in, '}') || !have_type || !have_metrics)
    goto undecided;
  mf_ws(&in);
  if (in.p != in.end || mf_repeated(e, ne) != 0)
    goto undecided;
  if (!e && !(e = calloc(1, sizeof *e))) /* as validate_metrics: never NULL */
    goto undecided;
  *out = e;
  *n = ne;
  return 1;
undecided:
  validate_epochs_free(e, ne);
  return 0;
}

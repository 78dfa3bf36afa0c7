/*
 * points.c - downsampling a metrics read-back for a chart (see points.h).
 *
 * Rows are the JSON objects of numbers a client uploaded (checked then),
 * read here without building a tree: a scan finds each name and value,
 * the value is compared as a double and given out again as the very text
 * that was stored. Per bucket each series remembers its smallest and its
 * largest value; when a row of the next bucket comes, the picks of the
 * bucket are given out in epoch order, one row per epoch holding the
 * values picked there.
 */
#include "points.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POINTS_TEXT 32 /* a value's text, kept as stored when shorter */

typedef struct points_pick {
  double v;
  int64_t epoch;
  char text[POINTS_TEXT];
} points_pick;

typedef struct points_series {
  char *key; /* the name as JSON text, quotes included */
  size_t klen;
  int has; /* picks in the current bucket */
  points_pick lo, hi;
} points_series;

/* A value to give out: series s's pick at epoch. */
typedef struct points_sel {
  int64_t epoch;
  int series;
  const char *text;
} points_sel;

typedef struct points_span {
  const char *s;
  size_t n;
} points_span;

struct points {
  int n;
  int64_t last, rows, first;
  int started, whole;
  int64_t buckets, bucket; /* bucket: the current one, -1 before any */
  points_series *series;
  int nseries, cap;
  int *index; /* open addressing over names: series + 1, 0 free */
  size_t index_cap;
  int *prev; /* the series of the last row's names, in order */
  int nprev, prev_cap;
  points_sel *sel;
  char *buf;
  size_t len, buf_cap;
  points_emit_fn emit;
  void *ud;
};

points *points_new(int n, int64_t last, int64_t rows, points_emit_fn emit,
                   void *ud) {
  points *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->n = n;
  p->last = last;
  p->rows = rows;
  p->bucket = -1;
  p->emit = emit;
  p->ud = ud;
  return p;
}

void points_free(points *p) {
  if (!p)
    return;
  for (int i = 0; i < p->nseries; i++)
    free(p->series[i].key);
  free(p->series);
  free(p->index);
  free(p->prev);
  free(p->sel);
  free(p->buf);
  free(p);
}

/* ------------------------------------------------------------ scanning */

static const char *points_ws(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  return s;
}

/* Just past the closing quote of the JSON string at s; NULL if none. */
static const char *points_string_end(const char *s) {
  for (const char *from = s + 1;;) {
    const char *q = strchr(from, '"');
    if (!q)
      return NULL;
    size_t slashes = 0;
    while (q - slashes > s + 1 && q[-1 - (ptrdiff_t)slashes] == '\\')
      slashes++;
    if (slashes % 2 == 0)
      return q + 1;
    from = q + 1;
  }
}

static int points_digit(char c) {
  return c >= '0' && c <= '9';
}

static int points_numchar(char c) {
  return points_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' ||
         c == 'E';
}

/* The JSON number at *s, read in one pass (*s moves past it): close
 * enough to order values (within an ulp for up to 19 digits and
 * exponents up to 22, strtod beyond); NAN when malformed. */
static double points_number(const char **s) {
  static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  /* Multiplying by 1e-k rather than dividing by 1e+k may be off by an
   * ulp: no matter for choosing the smallest and largest. */
  static const double n10[] = {1e-0,  1e-1,  1e-2,  1e-3,  1e-4,  1e-5,
                               1e-6,  1e-7,  1e-8,  1e-9,  1e-10, 1e-11,
                               1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17,
                               1e-18, 1e-19, 1e-20, 1e-21, 1e-22};
  const char *start = *s, *c = start;
  int neg = *c == '-', digits = 0, exp10 = 0;
  uint64_t m = 0;
  c += neg;
  for (; points_digit(*c); c++, digits++)
    m = m * 10 + (uint64_t)(*c - '0');
  if (*c == '.')
    for (c++; points_digit(*c); c++, digits++, exp10--)
      m = m * 10 + (uint64_t)(*c - '0');
  if (*c == 'e' || *c == 'E') {
    int eneg = *++c == '-', e = 0;
    c += *c == '-' || *c == '+';
    for (; points_digit(*c); c++)
      e = e < 10000 ? e * 10 + (*c - '0') : e;
    exp10 += eneg ? -e : e;
  }
  int bad = digits == 0 || points_numchar(*c);
  while (points_numchar(*c))
    c++;
  *s = c;
  if (bad)
    return NAN;
  if (digits > 19 || exp10 > 22 || exp10 < -22) {
    char text[64];
    size_t n = (size_t)(c - start);
    if (n >= sizeof text)
      return NAN;
    memcpy(text, start, n);
    text[n] = '\0';
    return strtod(text, NULL);
  }
  double v = exp10 >= 0 ? (double)m * p10[exp10] : (double)m * n10[-exp10];
  return neg ? -v : v;
}

/* The next name and value of the object being read at *cur: 1, 0 at its
 * end, -1 when it is not a flat object of numbers. `guess` is the name
 * (JSON text) likely next: when it is, *hit is set and the name's end is
 * known without looking for it. */
static int points_next(const char **cur, const points_span *guess, int *hit,
                       points_span *key, points_span *val, double *v) {
  const char *s = points_ws(*cur);
  if (*s == ',')
    s = points_ws(s + 1);
  if (*s == '}')
    return 0;
  if (*s != '"')
    return -1;
  *hit = guess->n && strncmp(s, guess->s, guess->n) == 0;
  const char *e = *hit ? s + guess->n : points_string_end(s);
  if (!e)
    return -1;
  key->s = s;
  key->n = (size_t)(e - s);
  s = points_ws(e);
  if (*s != ':')
    return -1;
  s = points_ws(s + 1);
  val->s = s;
  *v = points_number(&s);
  val->n = (size_t)(s - val->s);
  *cur = s;
  return val->n ? 1 : -1;
}

/* ------------------------------------------------------------- series */

static uint64_t points_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

static int points_reindex(points *p, size_t cap) {
  int *index = calloc(cap, sizeof *index);
  if (!index)
    return -1;
  for (int i = 0; i < p->nseries; i++) {
    size_t at = points_hash(p->series[i].key, p->series[i].klen) & (cap - 1);
    while (index[at])
      at = (at + 1) & (cap - 1);
    index[at] = i + 1;
  }
  free(p->index);
  p->index = index;
  p->index_cap = cap;
  return 0;
}

/* A new series called key; its number, -2 past POINTS_SERIES_MAX, -1
 * when out of memory. */
static int points_add(points *p, const char *key, size_t n) {
  if (p->nseries == POINTS_SERIES_MAX)
    return -2;
  if (p->nseries == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    points_series *grown = realloc(p->series, (size_t)cap * sizeof *grown);
    points_sel *sel = realloc(p->sel, 2 * (size_t)cap * sizeof *sel);
    if (grown)
      p->series = grown;
    if (sel)
      p->sel = sel;
    if (!grown || !sel)
      return -1;
    p->cap = cap;
  }
  points_series *s = &p->series[p->nseries];
  memset(s, 0, sizeof *s);
  s->key = malloc(n);
  if (!s->key)
    return -1;
  memcpy(s->key, key, n);
  s->klen = n;
  p->nseries++;
  if ((size_t)p->nseries * 2 > p->index_cap &&
      points_reindex(p, p->index_cap ? p->index_cap * 2 : 64) < 0)
    return -1;
  size_t at = points_hash(key, n) & (p->index_cap - 1);
  while (p->index[at])
    at = (at + 1) & (p->index_cap - 1);
  p->index[at] = p->nseries;
  return p->nseries - 1;
}

/* The series called key (JSON text without escapes), added if new. */
static int points_find(points *p, const char *key, size_t n) {
  if (p->index_cap) {
    size_t at = points_hash(key, n) & (p->index_cap - 1);
    for (; p->index[at]; at = (at + 1) & (p->index_cap - 1)) {
      points_series *s = &p->series[p->index[at] - 1];
      if (s->klen == n && memcmp(s->key, key, n) == 0)
        return p->index[at] - 1;
    }
  }
  return points_add(p, key, n);
}

/* The series of a name as stored: one spelling per name, so "a\/b" and
 * "a/b" are one series. */
static int points_series_of(points *p, points_span key) {
  if (!memchr(key.s, '\\', key.n))
    return points_find(p, key.s, key.n);
  json_t *v = json_loadb(key.s, key.n, JSON_DECODE_ANY, NULL);
  char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  json_decref(v);
  if (!text)
    return -2; /* not a name jansson reads back: left out */
  int i = points_find(p, text, strlen(text));
  free(text);
  return i;
}

/* Rows of one run name their values in the same order: the k-th name of
 * this row is most likely the k-th of the last one, which is compared
 * rather than looked up. */
static points_span points_guess(const points *p, int k) {
  if (k >= p->nprev || p->prev[k] < 0)
    return (points_span){"", 0};
  const points_series *s = &p->series[p->prev[k]];
  return (points_span){s->key, s->klen};
}

static int points_remember(points *p, int k, int series) {
  if (k >= p->prev_cap) {
    int cap = p->prev_cap ? p->prev_cap * 2 : 32;
    int *grown = realloc(p->prev, (size_t)cap * sizeof *grown);
    if (!grown)
      return -1;
    p->prev = grown;
    p->prev_cap = cap;
  }
  p->prev[k] = series < 0 ? -1 : series;
  if (k >= p->nprev)
    p->nprev = k + 1;
  return 0;
}

static void points_keep(points_pick *k, int64_t epoch, double v,
                        points_span val) {
  k->v = v;
  k->epoch = epoch;
  if (val.n < sizeof k->text) {
    for (size_t i = 0; i < val.n; i++) /* a few bytes: no call */
      k->text[i] = val.s[i];
    k->text[val.n] = '\0';
  } else {
    snprintf(k->text, sizeof k->text, "%.17g", v);
  }
}

/* Takes row's values into the current bucket's picks. */
static int points_take(points *p, int64_t epoch, const char *json) {
  const char *cur = points_ws(json);
  if (*cur != '{')
    return 0; /* not an object: nothing to chart */
  cur++;
  points_span key, val, guess = points_guess(p, 0);
  double v;
  int hit;
  for (int k = 0; points_next(&cur, &guess, &hit, &key, &val, &v) == 1;
       guess = points_guess(p, ++k)) {
    int i = hit ? p->prev[k] : points_series_of(p, key);
    if (i == -1 || points_remember(p, k, i) < 0)
      return -1;
    if (i < 0 || isnan(v))
      continue;
    points_series *s = &p->series[i];
    if (!s->has || v < s->lo.v)
      points_keep(&s->lo, epoch, v, val);
    if (!s->has || v > s->hi.v)
      points_keep(&s->hi, epoch, v, val);
    s->has = 1;
  }
  return 0;
}

/* ------------------------------------------------------------ output */

static int points_put(points *p, const char *s, size_t n) {
  if (p->len + n > p->buf_cap) {
    size_t cap = p->buf_cap ? p->buf_cap : 1024;
    while (cap < p->len + n)
      cap *= 2;
    char *grown = realloc(p->buf, cap);
    if (!grown)
      return -1;
    p->buf = grown;
    p->buf_cap = cap;
  }
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  return 0;
}

static int points_sel_cmp(const void *x, const void *y) {
  const points_sel *a = x, *b = y;
  if (a->epoch != b->epoch)
    return a->epoch < b->epoch ? -1 : 1;
  return a->series - b->series;
}

/* Gives out the current bucket's picks: one row per epoch picked. */
static int points_flush(points *p) {
  size_t n = 0;
  for (int i = 0; i < p->nseries; i++) {
    points_series *s = &p->series[i];
    if (!s->has)
      continue;
    s->has = 0;
    p->sel[n++] = (points_sel){s->lo.epoch, i, s->lo.text};
    if (s->hi.epoch != s->lo.epoch)
      p->sel[n++] = (points_sel){s->hi.epoch, i, s->hi.text};
  }
  if (n == 0)
    return 0;
  qsort(p->sel, n, sizeof *p->sel, points_sel_cmp);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    p->len = 0;
    int bad = points_put(p, "{", 1);
    for (; j < n && p->sel[j].epoch == p->sel[i].epoch; j++) {
      points_series *s = &p->series[p->sel[j].series];
      bad |= (j > i && points_put(p, ",", 1) < 0) ||
             points_put(p, s->key, s->klen) < 0 || points_put(p, ":", 1) < 0 ||
             points_put(p, p->sel[j].text, strlen(p->sel[j].text)) < 0;
    }
    if (bad || points_put(p, "}", 1) < 0 ||
        p->emit(p->ud, p->sel[i].epoch, p->buf, p->len) != 0)
      return -1;
    i = j;
  }
  return 0;
}

static int points_whole(points *p, int64_t epoch, const char *json) {
  return p->emit(p->ud, epoch, json, strlen(json)) != 0 ? -1 : 0;
}

/* The first row: it fixes the range, and whether rows pass whole. */
static int points_start(points *p, int64_t epoch, const char *json) {
  p->started = 1;
  p->first = epoch;
  if (epoch > p->last)
    return 1; /* only rows newer than the read: none to give */
  p->whole = p->rows <= p->n || p->last - epoch + 1 <= p->n;
  p->buckets = (p->n - 2) / 2;
  if (points_whole(p, epoch, json) < 0)
    return -1;
  return epoch == p->last;
}

int points_row(points *p, int64_t epoch, const char *json) {
  if (!p->started)
    return points_start(p, epoch, json);
  if (epoch > p->last)
    return points_finish(p) < 0 ? -1 : 1;
  if (p->whole || epoch == p->last) {
    if ((!p->whole && points_flush(p) < 0) || points_whole(p, epoch, json) < 0)
      return -1;
    return epoch == p->last;
  }
  if (p->buckets == 0)
    return 0;
  int64_t b = (epoch - p->first - 1) * p->buckets / (p->last - p->first - 1);
  if (b != p->bucket) {
    if (points_flush(p) < 0)
      return -1;
    p->bucket = b;
  }
  return points_take(p, epoch, json) < 0 ? -1 : 0;
}

int points_finish(points *p) {
  return p->whole ? 0 : points_flush(p);
}

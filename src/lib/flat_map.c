/*
 * flat_map.c - the epoch's flat map as JSON (see flat_map.h).
 *
 * Runs on the trainer's thread for every epoch and on the sender's for
 * every spooled epoch, so the common case (printable ASCII keys, finite
 * values) is written straight into the buffer: keys are checked eight
 * bytes at a time, a later duplicate is looked for only among keys of the
 * same length, and numbers go through double_text rather than printf.
 */
#include "flat_map.h"

#include "double_text.h"
#include "hot_path.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Builds into a caller buffer; `len` counts what would have been written so
 * a too-small buffer can be retried with the exact size. */
typedef struct flat_out {
  char *buf;
  size_t cap;
  size_t len;
} flat_out;

static void flat_put(flat_out *o, const char *s, size_t n) {
  if (o->len + n < o->cap) {
    memcpy(o->buf + o->len, s, n);
  } else if (o->len + 1 < o->cap) {
    /* Keep a correct prefix so a short buffer is never half garbage. */
    memcpy(o->buf + o->len, s, o->cap - 1 - o->len);
  }
  o->len += n;
}

/* The length of the valid UTF-8 sequence at s (2-4, within the n bytes
 * left), or 0. */
static size_t flat_utf8_len(const unsigned char *s, size_t left) {
  size_t n = s[0] >= 0xf5   ? 0
             : s[0] >= 0xf0 ? 4
             : s[0] >= 0xe0 ? 3
             : s[0] >= 0xc2 ? 2
                            : 0;
  if (n > left)
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  /* No overlong forms, surrogates or code points past U+10FFFF. */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;
  return n;
}

/* Whether s[0..n) is UTF-8 the hub's JSON parser accepts (no NUL). */
static bool flat_utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str, *end = s + n;
  while (s < end) {
    if (*s == 0)
      return false;
    if (*s < 0x80) {
      s++;
      continue;
    }
    size_t k = flat_utf8_len(s, (size_t)(end - s));
    if (!k)
      return false;
    s += k;
  }
  return true;
}

/* Whether s[0..n) needs nothing done to it: printable ASCII with no quote
 * or backslash (valid UTF-8, nothing to escape). Metric names are. Eight
 * bytes at a time: a byte with its top bit set, one below 0x20, or one
 * equal to '"' or '\\' sets the top bit of its lane (the classic "has
 * less than" / "has zero" word tests, exact once no byte is >= 0x80). */
CHUB_HOT static bool flat_plain_word(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t hit =
      w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b);
  return (hit & tops) == 0;
}

CHUB_HOT static bool flat_plain(const char *s, size_t n) {
  uint64_t w;
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      memcpy(&w, s + i, 8);
      if (!flat_plain_word(w))
        return false;
    }
    /* The rest in one word that overlaps bytes already seen. */
    memcpy(&w, s + n - 8, 8);
    return i == n || flat_plain_word(w);
  }
  if (n >= 4) {
    uint32_t a, b; /* two halves that overlap when n < 8 */
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    return flat_plain_word((uint64_t)a << 32 | b);
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
      return false;
  }
  return true;
}

/* A key part (valid UTF-8) as JSON string content: only quotes,
 * backslashes and control characters are escaped, so two different keys
 * never become the same text. */
static void flat_put_string(flat_out *o, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const char *run = str;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)str[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    flat_put(o, run, (size_t)(str + i - run));
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (c == '"' || c == '\\') {
      esc[1] = (char)c;
      flat_put(o, esc, 2);
    } else {
      flat_put(o, esc, 6);
    }
    run = str + i + 1;
  }
  flat_put(o, run, (size_t)(str + n - run));
}

/* %.17g reads back as exactly the same double. It is longer than Python's
 * shortest repr for some values (0.1 prints as 0.10000000000000001) but the
 * hub decodes the same number; double_text_17g writes it without printf's
 * arbitrary precision. The number's text into num (40 bytes); returns its
 * length. */
static size_t flat_number(char *num, double v, bool integer) {
  /* Whole numbers print as integers (counts) or as "3.0" (measurements,
   * as Python prints a float), without going through %g. */
  if (fabs(v) < 9e15 && v == (double)(long long)v)
    return (size_t)snprintf(num, 40, integer ? "%lld" : "%lld.0", (long long)v);
  return double_text_17g(v, num);
}

CHUB_HOT flat_item flat_item_of(const char *prefix, const char *name,
                                double value, bool integer) {
  return (flat_item){.prefix = prefix,
                     .name = name,
                     .value = value,
                     .integer = integer,
                     .plen = strlen(prefix),
                     .nlen = name ? strlen(name) : 0};
}

CHUB_HOT bool flat_item_sendable(const flat_item *it) {
  if (!isfinite(it->value))
    return false;
  if (flat_plain(it->prefix, it->plen) && flat_plain(it->name, it->nlen))
    return true;
  return flat_utf8_valid(it->prefix, it->plen) &&
         flat_utf8_valid(it->name, it->nlen);
}

static bool flat_same_key(const flat_item *a, const flat_item *b) {
  if (a->plen + a->nlen != b->plen + b->nlen)
    return false;
  if (a->plen == b->plen) /* the usual case: same prefix length */
    return memcmp(a->prefix, b->prefix, a->plen) == 0 &&
           memcmp(a->name, b->name, a->nlen) == 0;
  /* Compare prefix+name as one string without building it. */
  for (size_t i = 0; i < a->plen + a->nlen; i++) {
    char ca = i < a->plen ? a->prefix[i] : a->name[i - a->plen];
    char cb = i < b->plen ? b->prefix[i] : b->name[i - b->plen];
    if (ca != cb)
      return false;
  }
  return true;
}

size_t flat_map_json(flat_item *items, size_t n, char *buf, size_t cap,
                     bool *dropped) {
  flat_out o = {buf, cap, 0};
  /* Only a key with a later key of the same length can be shadowed: one
   * backward pass over the lengths spares comparing all the other pairs. */
  uint64_t later = 0;
  bool later_long = false;
  for (size_t i = n; i-- > 0;) {
    size_t len = items[i].plen + items[i].nlen;
    items[i].twin = len < 64 ? (later >> len) & 1 : later_long;
    if (items[i].name && len < 64)
      later |= UINT64_C(1) << len;
    else if (items[i].name)
      later_long = true;
  }
  flat_put(&o, "{", 1);
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    const flat_item *it = &items[i];
    if (!it->name)
      continue;
    bool plain =
        flat_plain(it->prefix, it->plen) && flat_plain(it->name, it->nlen);
    if (!isfinite(it->value) ||
        (!plain && !(flat_utf8_valid(it->prefix, it->plen) &&
                     flat_utf8_valid(it->name, it->nlen)))) {
      *dropped = true;
      continue;
    }
    bool shadowed = false;
    for (size_t j = i + 1; it->twin && j < n && !shadowed; j++)
      shadowed = items[j].name && flat_same_key(it, &items[j]);
    if (shadowed)
      continue;
    size_t room = 3 + it->plen + it->nlen + 3 + 40;
    if (plain && o.len + room < o.cap) {
      /* The common case, written straight into the buffer. */
      char *w = o.buf + o.len;
      if (!first) {
        *w++ = ',';
        *w++ = ' ';
      }
      *w++ = '"';
      memcpy(w, it->prefix, it->plen);
      w += it->plen;
      memcpy(w, it->name, it->nlen);
      w += it->nlen;
      memcpy(w, "\": ", 3);
      w += 3;
      w += flat_number(w, it->value, it->integer);
      o.len = (size_t)(w - o.buf);
    } else {
      char num[40];
      flat_put(&o, first ? "\"" : ", \"", first ? 1 : 3);
      flat_put_string(&o, it->prefix, it->plen);
      flat_put_string(&o, it->name, it->nlen);
      flat_put(&o, "\": ", 3);
      flat_put(&o, num, flat_number(num, it->value, it->integer));
    }
    first = false;
  }
  flat_put(&o, "}", 1);
  if (cap)
    buf[o.len < cap ? o.len : cap - 1] = '\0';
  return o.len;
}

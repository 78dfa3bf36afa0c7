/*
 * hub_callbacks.c - the nine HUB training callbacks, as the reference's
 * callbacks/hub.py behaves, on chub's session.
 *
 * These run on the trainer's thread, so each one does only local work: the
 * epoch's flat map is formatted straight into a stack buffer (no JSON
 * library, no allocation in the common case), appended to the spool with
 * one write, and the sender is poked when a rate limit passed. Only
 * on_train_end waits on the network, for the final sync, with a deadline.
 */
#include "double_text.h"
#include "internal.h"
#include "session.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One entry of the epoch's flat map: prefix + name = value. The lengths
 * are measured once, so that looking for a later entry with the same key
 * compares only keys of the same length. */
typedef struct hub_callbacks_item {
  const char *prefix;
  const char *name;
  double value;
  bool integer;
  bool twin; /* a later item's key has the same length (may shadow it) */
  size_t plen, nlen;
} hub_callbacks_item;

/* Builds into a caller buffer; `len` counts what would have been written so
 * a too-small buffer can be retried with the exact size. */
typedef struct hub_callbacks_out {
  char *buf;
  size_t cap;
  size_t len;
} hub_callbacks_out;

static void hub_callbacks_put(hub_callbacks_out *o, const char *s, size_t n) {
  if (o->len + n < o->cap) {
    memcpy(o->buf + o->len, s, n);
  } else if (o->len + 1 < o->cap) {
    /* Keep a correct prefix so a short buffer is never half garbage. */
    memcpy(o->buf + o->len, s, o->cap - 1 - o->len);
  }
  o->len += n;
}

/* The length of the valid UTF-8 sequence at s (2-4), or 0. */
static size_t hub_callbacks_utf8_len(const unsigned char *s) {
  size_t n = s[0] >= 0xf5   ? 0
             : s[0] >= 0xf0 ? 4
             : s[0] >= 0xe0 ? 3
             : s[0] >= 0xc2 ? 2
                            : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  /* No overlong forms, surrogates or code points past U+10FFFF. */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;
  return n;
}

/* Whether `str` is UTF-8 the hub's JSON parser accepts. */
static bool hub_callbacks_utf8_valid(const char *str) {
  for (const unsigned char *s = (const unsigned char *)str; *s;) {
    if (*s < 0x80) {
      s++;
      continue;
    }
    size_t n = hub_callbacks_utf8_len(s);
    if (!n)
      return false;
    s += n;
  }
  return true;
}

/* A metric name (valid UTF-8) as JSON string content: only quotes,
 * backslashes and control characters are escaped, so two different names
 * never become the same key. */
static void hub_callbacks_put_string(hub_callbacks_out *o, const char *str) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  const unsigned char *run = s;
  for (; *s; s++) {
    unsigned char c = *s;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    hub_callbacks_put(o, (const char *)run, (size_t)(s - run));
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (c == '"' || c == '\\') {
      esc[1] = (char)c;
      hub_callbacks_put(o, esc, 2);
    } else {
      hub_callbacks_put(o, esc, 6);
    }
    run = s + 1;
  }
  hub_callbacks_put(o, (const char *)run, (size_t)(s - run));
}

/* %.17g reads back as exactly the same double. It is longer than Python's
 * shortest repr for some values (0.1 prints as 0.10000000000000001) but the
 * hub decodes the same number; double_text_17g writes it without printf's
 * arbitrary precision, a sixth of the cost on this hot path (see
 * bench/callbacks). */
/* The number's text into num (40 bytes); returns its length. */
static size_t hub_callbacks_number(char *num, double v, bool integer) {
  /* Whole numbers print as integers (counts) or as "3.0" (measurements,
   * as Python prints a float), without going through %g. */
  if (fabs(v) < 9e15 && v == (double)(long long)v)
    return (size_t)snprintf(num, 40, integer ? "%lld" : "%lld.0", (long long)v);
  return double_text_17g(v, num);
}

/* Whether a name needs nothing done to it: printable ASCII with no quote
 * or backslash (valid UTF-8, nothing to escape). Metric names are. */
static bool hub_callbacks_plain(const char *s, size_t n) {
  /* Eight bytes at a time: a byte with its top bit set, one below 0x20, or
   * one equal to '"' or '\\' sets the top bit of its lane (the classic
   * "has less than" / "has zero" word tests, exact once no byte is >= 0x80). */
  const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t hit =
        w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b);
    if (hit & tops)
      return false;
  }
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
      return false;
  }
  return true;
}

static hub_callbacks_item hub_callbacks_item_of(const char *prefix,
                                                const char *name, double value,
                                                bool integer) {
  return (hub_callbacks_item){.prefix = prefix,
                              .name = name,
                              .value = value,
                              .integer = integer,
                              .plen = strlen(prefix),
                              .nlen = name ? strlen(name) : 0};
}

static bool hub_callbacks_same_key(const hub_callbacks_item *a,
                                   const hub_callbacks_item *b) {
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

/* The epoch's flat map as JSON into `buf`; returns the length it needs
 * (excluding the NUL), so a result >= cap means "call again with more".
 * Non-finite values and names that are not UTF-8 are left out and *dropped
 * set. */
size_t hub_callbacks_metrics_json(const chub_trainer *t, char *buf, size_t cap,
                                  bool *dropped) {
  hub_callbacks_item stack[64];
  size_t total = t->n_tloss + t->n_metrics + 3;
  hub_callbacks_item *items =
      total <= 64 ? stack : malloc(total * sizeof *items);
  hub_callbacks_out o = {buf, cap, 0};
  if (!items) {
    hub_callbacks_put(&o, "{}", 2);
    goto done;
  }
  size_t n = 0;
  for (size_t i = 0; i < t->n_tloss; i++)
    items[n++] = hub_callbacks_item_of("train/", t->tloss[i].name,
                                       t->tloss[i].value, false);
  for (size_t i = 0; i < t->n_metrics; i++)
    items[n++] = hub_callbacks_item_of("", t->metrics[i].name,
                                       t->metrics[i].value, false);
  if (t->epoch == 0) {
    items[n++] = hub_callbacks_item_of("", "model/parameters",
                                       (double)t->model_parameters, true);
    items[n++] =
        hub_callbacks_item_of("", "model/GFLOPs", t->model_gflops, false);
    items[n++] = hub_callbacks_item_of("", "model/speed_PyTorch(ms)",
                                       t->model_speed_ms, false);
  }
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
  hub_callbacks_put(&o, "{", 1);
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    if (!items[i].name)
      continue;
    /* JSON has no NaN, and a name that is not UTF-8 would make the hub
     * refuse the whole batch: such entries are left out. */
    bool plain = hub_callbacks_plain(items[i].name, items[i].nlen);
    if (!isfinite(items[i].value) ||
        (!plain && !hub_callbacks_utf8_valid(items[i].name))) {
      *dropped = true;
      continue;
    }
    /* A later entry with the same key wins, as a dict update would. */
    bool shadowed = false;
    for (size_t j = i + 1; items[i].twin && j < n && !shadowed; j++)
      shadowed = items[j].name && hub_callbacks_same_key(&items[i], &items[j]);
    if (shadowed)
      continue;
    size_t room = 3 + items[i].plen + items[i].nlen + 3 + 40;
    if (plain && o.len + room < o.cap) {
      /* The common case, written straight into the buffer (the prefixes
       * are plain too). */
      char *w = o.buf + o.len;
      if (!first) {
        *w++ = ',';
        *w++ = ' ';
      }
      *w++ = '"';
      memcpy(w, items[i].prefix, items[i].plen);
      w += items[i].plen;
      memcpy(w, items[i].name, items[i].nlen);
      w += items[i].nlen;
      memcpy(w, "\": ", 3);
      w += 3;
      w += hub_callbacks_number(w, items[i].value, items[i].integer);
      o.len = (size_t)(w - o.buf);
    } else {
      char num[40];
      hub_callbacks_put(&o, first ? "\"" : ", \"", first ? 1 : 3);
      hub_callbacks_put_string(&o, items[i].prefix);
      hub_callbacks_put_string(&o, items[i].name);
      hub_callbacks_put(&o, "\": ", 3);
      hub_callbacks_put(
          &o, num, hub_callbacks_number(num, items[i].value, items[i].integer));
    }
    first = false;
  }
  hub_callbacks_put(&o, "}", 1);
  if (items != stack)
    free(items);
done:
  if (cap)
    buf[o.len < cap ? o.len : cap - 1] = '\0';
  return o.len;
}

static void hub_callbacks_on_pretrain_routine_start(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  int rank = chub_rank();
  if ((rank != -1 && rank != 0) || t->hub_session)
    return;
  chub_settings set;
  if (chub_settings_load(&set) != CHUB_OK || !set.hub)
    return;
  if (!set.api_key[0] && strcmp(set.mode, "offline") != 0)
    return;
  chub_session *s = NULL;
  chub_session_open(t->args.model, &t->args, &s);
  t->hub_session = s;
}

static void hub_callbacks_on_pretrain_routine_end(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (t->hub_session)
    session_on_train_start(t->hub_session);
}

static void hub_callbacks_on_fit_epoch_end(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (!t->hub_session)
    return;
  char stack[4096];
  char *buf = stack;
  bool dropped = false;
  size_t need = hub_callbacks_metrics_json(t, stack, sizeof stack, &dropped);
  if (need >= sizeof stack) {
    buf = malloc(need + 1);
    if (!buf)
      return;
    hub_callbacks_metrics_json(t, buf, need + 1, &dropped);
  }
  session_on_epoch_end(t->hub_session, t->epoch, buf, dropped);
  if (buf != stack)
    free(buf);
}

static void hub_callbacks_on_model_save(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (!t->hub_session || !t->last)
    return;
  session_on_model_save(t->hub_session, t->epoch, t->last,
                        t->best_fitness == t->fitness);
}

static double hub_callbacks_final_map(const chub_trainer *t) {
  for (size_t i = 0; i < t->n_metrics; i++)
    if (t->metrics[i].name &&
        strcmp(t->metrics[i].name, "metrics/mAP50-95(B)") == 0)
      return t->metrics[i].value;
  return 0.0;
}

static void hub_callbacks_on_train_end(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (!t->hub_session)
    return;
  session_on_train_end(t->hub_session, t->epoch, t->best,
                       hub_callbacks_final_map(t));
  t->hub_session = NULL;
}

static void hub_callbacks_on_train_start(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  chub_event_record("train", &t->args, t);
}

static void hub_callbacks_on_val_start(void *subject, void *user) {
  (void)user;
  chub_validator *v = subject;
  if (!v->training)
    chub_event_record("val", &v->args, NULL);
}

static void hub_callbacks_on_predict_start(void *subject, void *user) {
  (void)user;
  chub_predictor *p = subject;
  chub_event_record("predict", &p->args, NULL);
}

static void hub_callbacks_on_export_start(void *subject, void *user) {
  (void)user;
  chub_exporter *e = subject;
  chub_event_record("export", &e->args, NULL);
}

void hub_callbacks_add(chub_callbacks *cb) {
  static const struct {
    chub_event event;
    chub_callback_fn fn;
  } table[] = {
      {CHUB_ON_PRETRAIN_ROUTINE_START, hub_callbacks_on_pretrain_routine_start},
      {CHUB_ON_PRETRAIN_ROUTINE_END, hub_callbacks_on_pretrain_routine_end},
      {CHUB_ON_FIT_EPOCH_END, hub_callbacks_on_fit_epoch_end},
      {CHUB_ON_MODEL_SAVE, hub_callbacks_on_model_save},
      {CHUB_ON_TRAIN_END, hub_callbacks_on_train_end},
      {CHUB_ON_TRAIN_START, hub_callbacks_on_train_start},
      {CHUB_ON_VAL_START, hub_callbacks_on_val_start},
      {CHUB_ON_PREDICT_START, hub_callbacks_on_predict_start},
      {CHUB_ON_EXPORT_START, hub_callbacks_on_export_start},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    chub_callbacks_add(cb, table[i].event, table[i].fn, NULL);
}

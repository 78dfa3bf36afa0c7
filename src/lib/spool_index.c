/*
 * spool_index.c - the pending epochs and checkpoints of a spool, in memory
 * (see spool_index.h). Epochs are kept sorted and arrive mostly in order,
 * so an append is O(1) and a lookup a binary search; checkpoints are few.
 */
#include "spool_index.h"

#include "hot_path.h"
#include "spool_record.h"

#include <stdlib.h>
#include <string.h>

void spool_index_init(spool_index *x) {
  memset(x, 0, sizeof *x);
  x->next_seq = 1;
}

void spool_index_free(spool_index *x) {
  for (size_t i = 0; i < x->n_ckpts; i++)
    free(x->ckpts[i].path);
  free(x->ckpts);
  free(x->ckpt_len);
  free(x->epochs);
  memset(x, 0, sizeof *x);
}

CHUB_HOT chub_code spool_index_reserve_epoch(spool_index *x) {
  if (x->n_epochs < x->cap_epochs)
    return CHUB_OK;
  size_t cap = x->cap_epochs ? x->cap_epochs * 2 : 64;
  spool_epoch *n = realloc(x->epochs, cap * sizeof *n);
  if (!n)
    return CHUB_ENOMEM;
  x->epochs = n;
  x->cap_epochs = cap;
  return CHUB_OK;
}

CHUB_HOT size_t spool_index_find_epoch(const spool_index *x, int e,
                                       bool *found) {
  size_t lo = 0, hi = x->n_epochs;
  /* Epochs arrive in order; check the end first so appends stay O(1). */
  if (hi > 0 && x->epochs[hi - 1].epoch < e) {
    *found = false;
    return hi;
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (x->epochs[mid].epoch < e)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < x->n_epochs && x->epochs[lo].epoch == e;
  return lo;
}

CHUB_HOT chub_code spool_index_put_epoch(spool_index *x, int e, off_t off,
                                         uint32_t rec_len) {
  bool found = false;
  size_t i = spool_index_find_epoch(x, e, &found);
  if (found) {
    spool_epoch *ep = &x->epochs[i];
    x->live -= ep->rec_len;
    ep->off = off;
    ep->rec_len = rec_len;
    ep->version = ++x->next_version;
    x->live += rec_len;
    return CHUB_OK;
  }
  if (spool_index_reserve_epoch(x) != CHUB_OK)
    return CHUB_ENOMEM;
  memmove(&x->epochs[i + 1], &x->epochs[i],
          (x->n_epochs - i) * sizeof *x->epochs);
  x->epochs[i] = (spool_epoch){.epoch = e,
                               .rec_len = rec_len,
                               .off = off,
                               .version = ++x->next_version,
                               .read_version = 0};
  x->n_epochs++;
  x->live += rec_len;
  return CHUB_OK;
}

void spool_index_drop_epoch(spool_index *x, size_t i) {
  x->live -= x->epochs[i].rec_len;
  memmove(&x->epochs[i], &x->epochs[i + 1],
          (x->n_epochs - i - 1) * sizeof *x->epochs);
  x->n_epochs--;
}

size_t spool_index_find_ckpt(const spool_index *x, uint64_t seq) {
  /* Kept in seq order: a binary search, and a new seq (past the last, as
   * every append's is) is known absent at once. */
  size_t lo = 0, hi = x->n_ckpts;
  if (hi == 0 || x->ckpts[hi - 1].seq < seq)
    return SIZE_MAX;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (x->ckpts[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < x->n_ckpts && x->ckpts[lo].seq == seq ? lo : SIZE_MAX;
}

chub_code spool_index_put_ckpt(spool_index *x, const spool_ckpt *c,
                               uint32_t rec_len) {
  size_t i = spool_index_find_ckpt(x, c->seq);
  if (i != SIZE_MAX) {
    free(x->ckpts[i].path);
    x->live -= x->ckpt_len[i];
    x->ckpts[i] = *c;
    x->ckpt_len[i] = rec_len;
    x->live += rec_len;
    return CHUB_OK;
  }
  if (x->n_ckpts == x->cap_ckpts) {
    size_t cap = x->cap_ckpts ? x->cap_ckpts * 2 : 8;
    spool_ckpt *n = realloc(x->ckpts, cap * sizeof *n);
    if (!n)
      return CHUB_ENOMEM;
    x->ckpts = n;
    uint32_t *l = realloc(x->ckpt_len, cap * sizeof *l);
    if (!l)
      return CHUB_ENOMEM;
    x->ckpt_len = l;
    x->cap_ckpts = cap;
  }
  /* Keep seq order even if a log was written out of order. */
  size_t at = x->n_ckpts;
  while (at > 0 && x->ckpts[at - 1].seq > c->seq)
    at--;
  memmove(&x->ckpts[at + 1], &x->ckpts[at],
          (x->n_ckpts - at) * sizeof *x->ckpts);
  memmove(&x->ckpt_len[at + 1], &x->ckpt_len[at],
          (x->n_ckpts - at) * sizeof *x->ckpt_len);
  x->ckpts[at] = *c;
  x->ckpt_len[at] = rec_len;
  x->n_ckpts++;
  x->live += rec_len;
  return CHUB_OK;
}

void spool_index_drop_ckpt(spool_index *x, size_t i) {
  free(x->ckpts[i].path);
  x->live -= x->ckpt_len[i];
  memmove(&x->ckpts[i], &x->ckpts[i + 1],
          (x->n_ckpts - i - 1) * sizeof *x->ckpts);
  memmove(&x->ckpt_len[i], &x->ckpt_len[i + 1],
          (x->n_ckpts - i - 1) * sizeof *x->ckpt_len);
  x->n_ckpts--;
}

chub_code spool_index_apply(spool_index *x, int type, const unsigned char *p,
                            size_t len, off_t off) {
  uint32_t rec_len = (uint32_t)(SPOOL_HEADER + len);
  switch (type) {
  case SPOOL_METRICS:
  case SPOOL_METRICS_ITEMS:
    return spool_index_put_epoch(x, (int)(int32_t)spool_get32(p), off, rec_len);
  case SPOOL_METRICS_ACK:
    for (size_t i = 0; i < len; i += 4) {
      bool found = false;
      size_t at =
          spool_index_find_epoch(x, (int)(int32_t)spool_get32(p + i), &found);
      if (found)
        spool_index_drop_epoch(x, at);
    }
    return CHUB_OK;
  case SPOOL_CKPT: {
    spool_record_ckpt r;
    spool_record_read_ckpt(p, len, &r);
    spool_ckpt c = {.seq = r.seq,
                    .epoch = r.epoch,
                    .final = r.final,
                    .is_best = r.is_best,
                    .map = r.map,
                    .path = strndup(r.path, r.path_len),
                    .size = r.size,
                    .mtime_ns = r.mtime_ns};
    if (!c.path)
      return CHUB_ENOMEM;
    if (c.seq >= x->next_seq)
      x->next_seq = c.seq + 1;
    chub_code rc = spool_index_put_ckpt(x, &c, rec_len);
    if (rc != CHUB_OK)
      free(c.path);
    return rc;
  }
  case SPOOL_CKPT_ACK: {
    uint64_t seq = spool_get64(p);
    size_t at = spool_index_find_ckpt(x, seq);
    if (at != SIZE_MAX)
      spool_index_drop_ckpt(x, at);
    if (seq >= x->next_seq)
      x->next_seq = seq + 1;
    return CHUB_OK;
  }
  default:
    return CHUB_ECORRUPT;
  }
}

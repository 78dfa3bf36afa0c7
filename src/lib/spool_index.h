/*
 * spool_index.h - the in-memory index of a spool's pending records: which
 * epochs' metrics and which checkpoints the hub has not acknowledged, and
 * where in the log each metrics record lives.
 *
 * The index never holds metrics JSON (that is read back from the log when
 * sent), so its memory is a few words per pending epoch plus the paths of
 * a handful of checkpoints. Replay rebuilds it by applying each valid
 * record in order (spool_index_apply); appends and acknowledgements update
 * it as they write. Not thread-safe: the spool's mutex guards it.
 */
#ifndef CHUB_SPOOL_INDEX_H
#define CHUB_SPOOL_INDEX_H

#include "spool.h"

#include <stdint.h>
#include <sys/types.h>

/* A pending epoch: where its newest metrics record lives in the log. The
 * version counts replacements so that an acknowledgement for JSON the sender
 * read before a re-queue does not drop the newer JSON. */
typedef struct spool_epoch {
  int epoch;
  uint32_t rec_len; /* header + payload */
  off_t off;
  uint64_t version;      /* bumped on every replacement */
  uint64_t read_version; /* version last returned by spool_read_metrics */
} spool_epoch;

typedef struct spool_index {
  spool_epoch *epochs; /* pending, sorted by epoch */
  size_t n_epochs, cap_epochs;
  uint64_t next_version;

  spool_ckpt *ckpts; /* pending, in seq order; paths owned */
  uint32_t *ckpt_len;
  size_t n_ckpts, cap_ckpts;
  uint64_t next_seq; /* the next checkpoint's seq (starts at 1) */

  off_t live; /* bytes of pending records (what compaction keeps) */
} spool_index;

void spool_index_init(spool_index *x);
void spool_index_free(spool_index *x);

/* Room for one more epoch without allocating in spool_index_put_epoch. */
chub_code spool_index_reserve_epoch(spool_index *x);

/* Index of epoch `e` in the sorted pending array, or where it would go. */
size_t spool_index_find_epoch(const spool_index *x, int e, bool *found);

/* Records that epoch `e` now lives at (off, rec_len), replacing an older
 * record of the same epoch. */
chub_code spool_index_put_epoch(spool_index *x, int e, off_t off,
                                uint32_t rec_len);
void spool_index_drop_epoch(spool_index *x, size_t i);

/* Position of checkpoint `seq`, or SIZE_MAX. */
size_t spool_index_find_ckpt(const spool_index *x, uint64_t seq);

/* Adds (or, on replay of a duplicate seq, replaces) a pending checkpoint;
 * takes ownership of c->path. */
chub_code spool_index_put_ckpt(spool_index *x, const spool_ckpt *c,
                               uint32_t rec_len);
void spool_index_drop_ckpt(spool_index *x, size_t i);

/* Applies one valid record found at `off` (spool_record_check passed). */
chub_code spool_index_apply(spool_index *x, int type, const unsigned char *p,
                            size_t len, off_t off);

#endif

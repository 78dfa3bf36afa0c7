/*
 * spool_compact.c - rewriting a spool's log with only its pending records,
 * one algorithm for both reasons to do it.
 *
 * A compaction takes a snapshot of the index (which epochs and checkpoints
 * are pending, and where), writes those records to a temporary file
 * (metrics records copied and verified, checkpoints re-framed, the
 * checkpoint sequence's high mark kept), fsyncs it, then carries over byte
 * for byte what was appended since the snapshot (its replay over the kept
 * records gives the same state as over the old log) and renames the file
 * over spool.log.
 *
 *  - spool_compact(), the sender's: the copy and its fsyncs run without
 *    the spool's mutex, so the training thread's appends never wait on the
 *    disk; the tail is carried over with an fsync outside the mutex again
 *    until no new append arrived, so the swap itself is only a rename.
 *  - spool_compact_held(), forced by max_bytes: the same steps with the
 *    mutex held throughout (the tail is then empty). If it runs while a
 *    background compaction copies, it wins and the other is dropped.
 */
#include "spool_private.h"

#include "fs.h"
#include "internal.h"
#include "spool_record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffered writer (the temporary file is written once, in order). */
typedef struct compact_out {
  int fd;
  off_t off;
  size_t len;
  unsigned char buf[65536];
} compact_out;

static int compact_flush(compact_out *o) {
  if (o->len && fs_pwrite_all(o->fd, o->buf, o->len, o->off) != 0)
    return -1;
  o->off += (off_t)o->len;
  o->len = 0;
  return 0;
}

static int compact_put(compact_out *o, const void *p, size_t n) {
  if (o->len + n > sizeof o->buf && compact_flush(o) != 0)
    return -1;
  if (n > sizeof o->buf) {
    if (fs_pwrite_all(o->fd, p, n, o->off) != 0)
      return -1;
    o->off += (off_t)n;
    return 0;
  }
  memcpy(o->buf + o->len, p, n);
  o->len += n;
  return 0;
}

static off_t compact_tell(const compact_out *o) {
  return o->off + (off_t)o->len;
}

/* What a compaction keeps: the pending records as of one moment, and the
 * log (a descriptor of its own) to copy the metrics records from. */
typedef struct compact_snap {
  int fd;
  off_t end;    /* the log's end at the snapshot */
  unsigned gen; /* sp->compactions at the snapshot */
  spool_epoch *epochs;
  size_t n_epochs;
  spool_ckpt *ckpts; /* paths owned */
  size_t n_ckpts;
  uint64_t next_seq;
  off_t *new_off; /* where each epoch lands in the new log */
} compact_snap;

static void compact_snap_free(compact_snap *s) {
  for (size_t i = 0; s->ckpts && i < s->n_ckpts; i++)
    free(s->ckpts[i].path);
  free(s->ckpts);
  free(s->epochs);
  free(s->new_off);
  if (s->fd >= 0)
    close(s->fd);
}

/* Called with the mutex held. */
static chub_code compact_snap_take(const spool *sp, compact_snap *s) {
  const spool_index *x = &sp->index;
  size_t ne = x->n_epochs, nc = x->n_ckpts;
  *s = (compact_snap){.fd = dup(sp->fd),
                      .end = sp->end,
                      .gen = sp->compactions,
                      .n_epochs = ne,
                      .n_ckpts = nc,
                      .next_seq = x->next_seq};
  s->epochs = malloc((ne ? ne : 1) * sizeof *s->epochs);
  s->new_off = malloc((ne ? ne : 1) * sizeof *s->new_off);
  s->ckpts = calloc(nc ? nc : 1, sizeof *s->ckpts);
  if (s->fd < 0 || !s->epochs || !s->new_off || !s->ckpts)
    return CHUB_ENOMEM;
  if (ne)
    memcpy(s->epochs, x->epochs, ne * sizeof *s->epochs);
  for (size_t i = 0; i < nc; i++) {
    s->ckpts[i] = x->ckpts[i];
    s->ckpts[i].path = strdup(x->ckpts[i].path);
    if (!s->ckpts[i].path)
      return CHUB_ENOMEM;
  }
  return CHUB_OK;
}

/* Writes the snapshot's records to o: the pending epochs' records copied
 * (each verified), the pending checkpoints re-framed, and the sequence's
 * high mark; fills s->new_off. */
static chub_code compact_write(compact_snap *s, const char *log_path,
                               compact_out *o) {
  unsigned char *rec = NULL;
  size_t rec_cap = 0;
  chub_code rc = CHUB_OK;
  for (size_t i = 0; i < s->n_epochs && rc == CHUB_OK; i++) {
    const spool_epoch *ep = &s->epochs[i];
    if (ep->rec_len > rec_cap) {
      unsigned char *n = realloc(rec, ep->rec_len);
      if (!n) {
        rc = CHUB_ENOMEM;
        break;
      }
      rec = n;
      rec_cap = ep->rec_len;
    }
    int type;
    const unsigned char *payload;
    uint32_t plen;
    size_t total;
    if (fs_pread_all(s->fd, rec, ep->rec_len, ep->off) != 0) {
      rc = CHUB_EIO;
    } else if (spool_record_check(rec, ep->rec_len, &type, &payload, &plen,
                                  &total) != SPOOL_VALID) {
      chub_log(CHUB_LOG_ERROR,
               "spool %s: the metrics of epoch %d (byte %lld) no longer pass "
               "their checksum; the disk changed them. Not compacting",
               log_path, ep->epoch, (long long)ep->off);
      rc = CHUB_ECORRUPT;
    } else {
      s->new_off[i] = compact_tell(o);
      if (compact_put(o, rec, ep->rec_len) != 0)
        rc = CHUB_EIO;
    }
  }
  free(rec);
  bool seq_kept = false;
  for (size_t i = 0; i < s->n_ckpts && rc == CHUB_OK; i++) {
    const spool_ckpt *c = &s->ckpts[i];
    spool_record_ckpt r = {c->seq,      c->epoch, c->final,
                           c->is_best,  c->map,   c->size,
                           c->mtime_ns, c->path,  strlen(c->path)};
    unsigned char frame[SPOOL_CKPT_RECORD];
    size_t n = spool_record_frame_ckpt(frame, &r);
    if (compact_put(o, frame, n) != 0)
      rc = CHUB_EIO;
    seq_kept |= c->seq + 1 == s->next_seq;
  }
  /* Sequence numbers must not be reused after a restart: when the newest
   * checkpoint is gone, an acknowledgement of it keeps the high mark. */
  if (rc == CHUB_OK && !seq_kept && s->next_seq > 1) {
    unsigned char seq[8], frame[SPOOL_HEADER + 8];
    spool_put64(seq, s->next_seq - 1);
    size_t n = spool_record_frame(frame, SPOOL_CKPT_ACK, seq, 8, NULL, 0);
    if (compact_put(o, frame, n) != 0)
      rc = CHUB_EIO;
  }
  if (rc == CHUB_OK && compact_flush(o) != 0)
    rc = CHUB_EIO;
  return rc;
}

/* Copies bytes [from, to) of one file to `at` in another. */
static chub_code compact_copy_range(int src, off_t from, off_t to, int dst,
                                    off_t at) {
  unsigned char buf[65536];
  while (from < to) {
    size_t n =
        (size_t)(to - from < (off_t)sizeof buf ? to - from : (off_t)sizeof buf);
    if (fs_pread_all(src, buf, n, from) != 0 ||
        fs_pwrite_all(dst, buf, n, at) != 0)
      return CHUB_EIO;
    from += (off_t)n;
    at += (off_t)n;
  }
  return CHUB_OK;
}

/* Where epoch entry `ep` lands in the compacted log: records appended
 * after the snapshot moved with the tail (which starts at `base`); older
 * ones were copied from the snapshot. -1 when it is in neither (a bug). */
static off_t compact_moved(const spool_epoch *ep, const compact_snap *s,
                           off_t base) {
  if (ep->off >= s->end)
    return base + (ep->off - s->end);
  size_t lo = 0, hi = s->n_epochs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->epochs[mid].epoch < ep->epoch)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->n_epochs && s->epochs[lo].epoch == ep->epoch &&
                 s->epochs[lo].off == ep->off
             ? s->new_off[lo]
             : -1;
}

/* Swaps the compacted file in (mutex held, everything up to sp->end
 * copied and fsynced): new offsets, rename, new descriptor. */
static chub_code compact_swap(spool *sp, const compact_snap *s, const char *tmp,
                              int fd, off_t base, off_t out_end) {
  spool_index *x = &sp->index;
  off_t *moved = malloc((x->n_epochs ? x->n_epochs : 1) * sizeof *moved);
  if (!moved)
    return CHUB_ENOMEM;
  for (size_t i = 0; i < x->n_epochs; i++) {
    moved[i] = compact_moved(&x->epochs[i], s, base);
    if (moved[i] < 0) {
      chub_log(CHUB_LOG_ERROR,
               "spool %s: epoch %d has no place in the compacted log; not "
               "compacting",
               sp->log_path, x->epochs[i].epoch);
      free(moved);
      return CHUB_ECORRUPT;
    }
  }
  if (rename(tmp, sp->log_path) != 0) {
    free(moved);
    return CHUB_EIO;
  }
  for (size_t i = 0; i < x->n_epochs; i++)
    x->epochs[i].off = moved[i];
  free(moved);
  close(sp->fd);
  sp->fd = fd;
  sp->end = out_end;
  sp->synced = out_end;
  sp->compactions++;
  return CHUB_OK;
}

/* The one compaction. `held`: the caller holds the mutex throughout
 * (forced by the bound); else it is taken only to snapshot, to carry the
 * tail over and to swap. The two kinds write different temporary files,
 * since a forced one may run while a background one copies. */
static chub_code compact_run(spool *sp, bool held) {
  if (!held) {
    pthread_mutex_lock(&sp->mu);
    if (sp->compacting) {
      pthread_mutex_unlock(&sp->mu);
      return CHUB_OK;
    }
    sp->compacting = true;
  }
  compact_snap snap;
  chub_code rc = compact_snap_take(sp, &snap);
  if (!held)
    pthread_mutex_unlock(&sp->mu);

  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.%s", sp->log_path, held ? "tmp" : "ctmp");
  compact_out *o = malloc(sizeof *o);
  if (o)
    *o = (compact_out){.fd = -1};
  else if (rc == CHUB_OK)
    rc = CHUB_ENOMEM;
  if (rc == CHUB_OK) {
    o->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    rc = o->fd < 0 ? CHUB_EIO : compact_write(&snap, sp->log_path, o);
  }
  if (rc == CHUB_OK && fsync(o->fd) != 0)
    rc = CHUB_EIO;
  off_t base = rc == CHUB_OK ? compact_tell(o) : 0;
  off_t copied = snap.end, out_end = base;
  bool swapped = false;
  for (int round = 0; rc == CHUB_OK; round++) {
    if (!held)
      pthread_mutex_lock(&sp->mu);
    if (sp->compactions != snap.gen) {
      if (!held)
        pthread_mutex_unlock(&sp->mu);
      break; /* the bound forced a compaction meanwhile */
    }
    if (sp->end > copied) {
      off_t to = sp->end;
      rc = compact_copy_range(sp->fd, copied, to, o->fd, out_end);
      out_end += to - copied;
      copied = to;
      if (rc == CHUB_OK && !held && round < 3) {
        pthread_mutex_unlock(&sp->mu);
        if (fsync(o->fd) != 0)
          rc = CHUB_EIO;
        continue;
      }
      /* appends keep coming: the last stretch is flushed under the mutex */
      if (rc == CHUB_OK && fsync(o->fd) != 0)
        rc = CHUB_EIO;
    }
    if (rc == CHUB_OK)
      rc = compact_swap(sp, &snap, tmp, o->fd, base, out_end);
    swapped = rc == CHUB_OK;
    if (!held)
      pthread_mutex_unlock(&sp->mu);
    break;
  }
  if (swapped) {
    fsync(sp->dir_fd);
  } else {
    if (rc == CHUB_EIO)
      chub_log(CHUB_LOG_ERROR, "cannot compact spool %s via %s: %s",
               sp->log_path, tmp, strerror(errno));
    if (o && o->fd >= 0) {
      close(o->fd);
      unlink(tmp);
    }
  }
  if (!held) {
    pthread_mutex_lock(&sp->mu);
    sp->compacting = false;
    pthread_mutex_unlock(&sp->mu);
  }
  compact_snap_free(&snap);
  free(o);
  return rc;
}

chub_code spool_compact(spool *sp) {
  if (!sp)
    return CHUB_EINVAL;
  return compact_run(sp, false);
}

chub_code spool_compact_held(spool *sp) {
  return compact_run(sp, true);
}

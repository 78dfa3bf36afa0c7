/*
 * spool.c - the per-run durable spool: an append-only log of checksummed
 * records plus a small run.json, so that nothing a run produced is lost
 * before the hub acknowledged it.
 *
 * Why it is built this way:
 *  - The training thread appends, so an append is one pwrite(2) of a framed
 *    record built in a stack buffer under one mutex; no fsync there. The
 *    sender calls spool_sync() about once a second and at train end.
 *  - Every record is framed (magic, type, version, length) and carries a
 *    CRC-32 over its header and payload. Replay stops at the first record
 *    that is torn or corrupt and truncates the log there, so a later append
 *    never lands after garbage and no record is ever misread. A crash can
 *    only tear the last record, so bad bytes that hide a later valid record
 *    are damage: they are kept in spool.log.damaged and named in a warning.
 *    A record of a later format (a newer chub wrote it) is not damage: the
 *    log is left untouched and the open fails, saying so.
 *  - Memory stays small: the index holds pending epochs (number, offset,
 *    length), never their JSON, which is read back with pread when needed;
 *    pending checkpoints are a handful of paths.
 *  - The log is bounded by max_bytes; an append that would pass the bound
 *    first compacts (rewrites only pending records to a tmp file, fsync,
 *    rename, fsync the directory) and otherwise is refused with CHUB_EFULL
 *    and a warning naming the run. Acknowledgements are never refused: when
 *    one would pass the bound the log is compacted instead, which makes the
 *    acknowledgement record unnecessary.
 *  - One process owns a run at a time: the run directory is flock()ed, so
 *    two writers can never interleave records in one log.
 *
 * Record layout (little-endian):
 *   0  u32 magic "CSPL"      8  u32 payload length
 *   4  u8 type, u8 version,  12 u32 CRC-32 (IEEE) of bytes 0..11 + payload
 *      u16 zero              16 payload
 * Payloads:
 *   metrics      i32 epoch, JSON text (no NUL)
 *   metrics-ack  i32 epoch, repeated
 *   checkpoint   u64 seq, i32 epoch, u8 flags (1 final, 2 best), f64 map,
 *                i64 size, i64 mtime_ns (the file as queued), path (no NUL)
 *   ckpt-ack     u64 seq
 */
#include "spool.h"

#include "fs.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SPOOL_MAGIC 0x4c505343u /* "CSPL" read as little-endian u32 */
#define SPOOL_VERSION 2 /* 2: checkpoints carry the file's size and mtime */
#define SPOOL_HEADER 16
#define SPOOL_MAX_PAYLOAD (1u << 20) /* metrics JSON of one epoch, a path */
#define SPOOL_MAX_PATH 4096
#define SPOOL_STACK_RECORD 4096 /* appends up to this size never malloc */

enum spool_type {
  SPOOL_METRICS = 1,
  SPOOL_METRICS_ACK = 2,
  SPOOL_CKPT = 3,
  SPOOL_CKPT_ACK = 4
};

/* seq 8 + epoch 4 + flags 1 + map 8 + size 8 + mtime_ns 8 */
#define SPOOL_CKPT_FIXED 37
#define SPOOL_FLAG_FINAL 1u
#define SPOOL_FLAG_BEST 2u

/* CRC-32 of the record (zlib's crc32(), IEEE 802.3): the value the spool
 * has always written, so spools written before read the same. */
static uint32_t spool_crc(uint32_t crc, const unsigned char *p, size_t n) {
  return (uint32_t)crc32(crc, p, (uInt)n);
}

static void spool_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t spool_get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void spool_put64(unsigned char *p, uint64_t v) {
  spool_put32(p, (uint32_t)v);
  spool_put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t spool_get64(const unsigned char *p) {
  return (uint64_t)spool_get32(p) | (uint64_t)spool_get32(p + 4) << 32;
}

/* ------------------------------------------------------------ records */

/* What spool_check() made of the bytes at the start of a buffer. */
enum spool_verdict {
  SPOOL_VALID,   /* a whole, checksummed, well-formed record */
  SPOOL_TORN,    /* the header or the payload runs past the end */
  SPOOL_CORRUPT, /* the bytes are complete but not a record */
  SPOOL_NEWER    /* a whole, checksummed record of a later format */
};

/* Sequence numbers start at 1 and stay far from overflowing next_seq. */
static bool spool_seq_ok(const unsigned char *p) {
  uint64_t seq = spool_get64(p);
  return seq > 0 && seq < (UINT64_C(1) << 62);
}

/* Checks the payload's structure for its type, so that a record that passes
 * is always safe to decode. */
static bool spool_payload_ok(int type, const unsigned char *p, size_t len) {
  switch (type) {
  case SPOOL_METRICS:
    return len > 4 && (int32_t)spool_get32(p) >= 0 &&
           memchr(p + 4, 0, len - 4) == NULL;
  case SPOOL_METRICS_ACK:
    if (len == 0 || len % 4 != 0)
      return false;
    for (size_t i = 0; i < len; i += 4)
      if ((int32_t)spool_get32(p + i) < 0)
        return false;
    return true;
  case SPOOL_CKPT:
    return len > SPOOL_CKPT_FIXED && len - SPOOL_CKPT_FIXED <= SPOOL_MAX_PATH &&
           spool_seq_ok(p) && (int32_t)spool_get32(p + 8) >= 0 &&
           (p[12] & ~(SPOOL_FLAG_FINAL | SPOOL_FLAG_BEST)) == 0 &&
           memchr(p + SPOOL_CKPT_FIXED, 0, len - SPOOL_CKPT_FIXED) == NULL;
  case SPOOL_CKPT_ACK:
    return len == 8 && spool_seq_ok(p);
  default:
    return false;
  }
}

/* Reads the record header at buf: its payload length, or a verdict when the
 * header alone already says torn or corrupt. */
static enum spool_verdict spool_check_header(const unsigned char *buf,
                                             size_t avail, uint32_t *len) {
  if (avail < SPOOL_HEADER)
    return SPOOL_TORN;
  if (spool_get32(buf) != SPOOL_MAGIC)
    return SPOOL_CORRUPT;
  *len = spool_get32(buf + 8);
  if (*len > SPOOL_MAX_PAYLOAD)
    return SPOOL_CORRUPT;
  if (buf[5] > SPOOL_VERSION)
    return SPOOL_NEWER; /* confirmed by the checksum in spool_check */
  if (buf[4] < SPOOL_METRICS || buf[4] > SPOOL_CKPT_ACK ||
      buf[5] != SPOOL_VERSION || buf[6] != 0 || buf[7] != 0)
    return SPOOL_CORRUPT;
  return SPOOL_VALID;
}

/* Verifies one whole record at buf (header + payload, `avail` bytes
 * readable). On SPOOL_VALID sets the type, payload and total size. */
static enum spool_verdict spool_check(const unsigned char *buf, size_t avail,
                                      int *type, const unsigned char **payload,
                                      uint32_t *plen, size_t *total) {
  uint32_t len = 0;
  enum spool_verdict v = spool_check_header(buf, avail, &len);
  if (v != SPOOL_VALID && v != SPOOL_NEWER)
    return v;
  if (avail - SPOOL_HEADER < len)
    return SPOOL_TORN;
  uint32_t crc = spool_crc(0, buf, 12);
  crc = spool_crc(crc, buf + SPOOL_HEADER, len);
  if (crc != spool_get32(buf + 12))
    return SPOOL_CORRUPT;
  if (v == SPOOL_NEWER)
    return SPOOL_NEWER;
  if (!spool_payload_ok(buf[4], buf + SPOOL_HEADER, len))
    return SPOOL_CORRUPT;
  *type = buf[4];
  *payload = buf + SPOOL_HEADER;
  *plen = len;
  *total = SPOOL_HEADER + (size_t)len;
  return SPOOL_VALID;
}

/* Frames a record: header into out[0..16), then the payload pieces a and b
 * (b may be empty) after it. out must hold SPOOL_HEADER + alen + blen. */
static size_t spool_frame(unsigned char *out, int type, const void *a,
                          size_t alen, const void *b, size_t blen) {
  uint32_t len = (uint32_t)(alen + blen);
  spool_put32(out, SPOOL_MAGIC);
  out[4] = (unsigned char)type;
  out[5] = SPOOL_VERSION;
  out[6] = 0;
  out[7] = 0;
  spool_put32(out + 8, len);
  if (alen)
    memcpy(out + SPOOL_HEADER, a, alen);
  if (blen)
    memcpy(out + SPOOL_HEADER + alen, b, blen);
  uint32_t crc = spool_crc(0, out, 12);
  crc = spool_crc(crc, out + SPOOL_HEADER, len);
  spool_put32(out + 12, crc);
  return SPOOL_HEADER + (size_t)len;
}

size_t spool_scan(const unsigned char *buf, size_t len, spool_record_fn fn,
                  void *user) {
  size_t off = 0;
  while (off < len) {
    int type = 0;
    const unsigned char *payload = NULL;
    uint32_t plen = 0;
    size_t total = 0;
    if (spool_check(buf + off, len - off, &type, &payload, &plen, &total) !=
        SPOOL_VALID)
      break;
    if (fn)
      fn(type, payload, plen, user);
    off += total;
  }
  return off;
}

/* ------------------------------------------------------------ the spool */

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

struct spool {
  pthread_mutex_t mu;
  char *dir;
  char *run_id;
  char *log_path;
  int fd;            /* spool.log, read-write */
  int dir_fd;        /* the run directory, flock()ed while open */
  off_t end;         /* bytes of valid log; the next record goes here */
  off_t synced;      /* end at the last fsync */
  bool dir_unsynced; /* spool.log was created; its directory entry needs it */
  long long max_bytes;
  off_t live; /* bytes of pending records (what compaction keeps) */

  spool_epoch *epochs; /* pending, sorted by epoch */
  size_t n_epochs, cap_epochs;
  uint64_t next_version;

  spool_ckpt *ckpts; /* pending, in seq order */
  uint32_t *ckpt_len;
  size_t n_ckpts, cap_ckpts;
  uint64_t next_seq;

  bool full;            /* the last append was refused for the bound */
  size_t refused;       /* appends refused since the bound was first hit */
  unsigned compactions; /* bumped by each compaction, for spool_sync */
  bool compacting;      /* spool_compact is copying without the mutex */
};

static chub_code spool_errno_code(int err) {
  return err == ENOMEM ? CHUB_ENOMEM : CHUB_EIO;
}

/* Index of epoch `e` in the sorted pending array, or where it would go. */
static size_t spool_epoch_find(const spool *sp, int e, bool *found) {
  size_t lo = 0, hi = sp->n_epochs;
  /* Epochs arrive in order; check the end first so appends stay O(1). */
  if (hi > 0 && sp->epochs[hi - 1].epoch < e) {
    *found = false;
    return hi;
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sp->epochs[mid].epoch < e)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < sp->n_epochs && sp->epochs[lo].epoch == e;
  return lo;
}

/* Records that epoch `e` now lives at (off, rec_len). */
static chub_code spool_epoch_put(spool *sp, int e, off_t off,
                                 uint32_t rec_len) {
  bool found = false;
  size_t i = spool_epoch_find(sp, e, &found);
  if (found) {
    spool_epoch *ep = &sp->epochs[i];
    sp->live -= ep->rec_len;
    ep->off = off;
    ep->rec_len = rec_len;
    ep->version = ++sp->next_version;
    sp->live += rec_len;
    return CHUB_OK;
  }
  if (sp->n_epochs == sp->cap_epochs) {
    size_t cap = sp->cap_epochs ? sp->cap_epochs * 2 : 64;
    spool_epoch *n = realloc(sp->epochs, cap * sizeof *n);
    if (!n)
      return CHUB_ENOMEM;
    sp->epochs = n;
    sp->cap_epochs = cap;
  }
  memmove(&sp->epochs[i + 1], &sp->epochs[i],
          (sp->n_epochs - i) * sizeof *sp->epochs);
  sp->epochs[i] = (spool_epoch){.epoch = e,
                                .rec_len = rec_len,
                                .off = off,
                                .version = ++sp->next_version,
                                .read_version = 0};
  sp->n_epochs++;
  sp->live += rec_len;
  return CHUB_OK;
}

static void spool_epoch_drop(spool *sp, size_t i) {
  sp->live -= sp->epochs[i].rec_len;
  memmove(&sp->epochs[i], &sp->epochs[i + 1],
          (sp->n_epochs - i - 1) * sizeof *sp->epochs);
  sp->n_epochs--;
}

static size_t spool_ckpt_find(const spool *sp, uint64_t seq) {
  for (size_t i = 0; i < sp->n_ckpts; i++)
    if (sp->ckpts[i].seq == seq)
      return i;
  return SIZE_MAX;
}

/* Adds (or, on replay of a duplicate seq, replaces) a pending checkpoint;
 * takes ownership of c->path. */
static chub_code spool_ckpt_put(spool *sp, const spool_ckpt *c,
                                uint32_t rec_len) {
  size_t i = spool_ckpt_find(sp, c->seq);
  if (i != SIZE_MAX) {
    free(sp->ckpts[i].path);
    sp->live -= sp->ckpt_len[i];
    sp->ckpts[i] = *c;
    sp->ckpt_len[i] = rec_len;
    sp->live += rec_len;
    return CHUB_OK;
  }
  if (sp->n_ckpts == sp->cap_ckpts) {
    size_t cap = sp->cap_ckpts ? sp->cap_ckpts * 2 : 8;
    spool_ckpt *n = realloc(sp->ckpts, cap * sizeof *n);
    if (!n)
      return CHUB_ENOMEM;
    sp->ckpts = n;
    uint32_t *l = realloc(sp->ckpt_len, cap * sizeof *l);
    if (!l)
      return CHUB_ENOMEM;
    sp->ckpt_len = l;
    sp->cap_ckpts = cap;
  }
  /* Keep seq order even if a log was written out of order. */
  size_t at = sp->n_ckpts;
  while (at > 0 && sp->ckpts[at - 1].seq > c->seq)
    at--;
  memmove(&sp->ckpts[at + 1], &sp->ckpts[at],
          (sp->n_ckpts - at) * sizeof *sp->ckpts);
  memmove(&sp->ckpt_len[at + 1], &sp->ckpt_len[at],
          (sp->n_ckpts - at) * sizeof *sp->ckpt_len);
  sp->ckpts[at] = *c;
  sp->ckpt_len[at] = rec_len;
  sp->n_ckpts++;
  sp->live += rec_len;
  return CHUB_OK;
}

static void spool_ckpt_drop(spool *sp, size_t i) {
  free(sp->ckpts[i].path);
  sp->live -= sp->ckpt_len[i];
  memmove(&sp->ckpts[i], &sp->ckpts[i + 1],
          (sp->n_ckpts - i - 1) * sizeof *sp->ckpts);
  memmove(&sp->ckpt_len[i], &sp->ckpt_len[i + 1],
          (sp->n_ckpts - i - 1) * sizeof *sp->ckpt_len);
  sp->n_ckpts--;
}

/* Encodes a checkpoint payload's fixed part. */
static void spool_ckpt_fixed(unsigned char fixed[SPOOL_CKPT_FIXED],
                             const spool_ckpt *c) {
  uint64_t bits;
  memcpy(&bits, &c->map, sizeof bits);
  spool_put64(fixed, c->seq);
  spool_put32(fixed + 8, (uint32_t)c->epoch);
  fixed[12] = (unsigned char)((c->final ? SPOOL_FLAG_FINAL : 0) |
                              (c->is_best ? SPOOL_FLAG_BEST : 0));
  spool_put64(fixed + 13, bits);
  spool_put64(fixed + 21, (uint64_t)c->size);
  spool_put64(fixed + 29, (uint64_t)c->mtime_ns);
}

/* Applies one valid record found at `off` to the in-memory state; the
 * replay and the fuzzer go through here. */
static chub_code spool_apply(spool *sp, int type, const unsigned char *p,
                             size_t len, off_t off) {
  uint32_t rec_len = (uint32_t)(SPOOL_HEADER + len);
  switch (type) {
  case SPOOL_METRICS:
    return spool_epoch_put(sp, (int)(int32_t)spool_get32(p), off, rec_len);
  case SPOOL_METRICS_ACK:
    for (size_t i = 0; i < len; i += 4) {
      bool found = false;
      size_t at =
          spool_epoch_find(sp, (int)(int32_t)spool_get32(p + i), &found);
      if (found)
        spool_epoch_drop(sp, at);
    }
    return CHUB_OK;
  case SPOOL_CKPT: {
    spool_ckpt c = {0};
    uint64_t bits = spool_get64(p + 13);
    c.seq = spool_get64(p);
    c.epoch = (int)(int32_t)spool_get32(p + 8);
    c.final = (p[12] & SPOOL_FLAG_FINAL) != 0;
    c.is_best = (p[12] & SPOOL_FLAG_BEST) != 0;
    memcpy(&c.map, &bits, sizeof c.map);
    c.size = (long long)spool_get64(p + 21);
    c.mtime_ns = (long long)spool_get64(p + 29);
    c.path =
        strndup((const char *)p + SPOOL_CKPT_FIXED, len - SPOOL_CKPT_FIXED);
    if (!c.path)
      return CHUB_ENOMEM;
    if (c.seq >= sp->next_seq)
      sp->next_seq = c.seq + 1;
    chub_code rc = spool_ckpt_put(sp, &c, rec_len);
    if (rc != CHUB_OK)
      free(c.path);
    return rc;
  }
  case SPOOL_CKPT_ACK: {
    uint64_t seq = spool_get64(p);
    size_t at = spool_ckpt_find(sp, seq);
    if (at != SIZE_MAX)
      spool_ckpt_drop(sp, at);
    if (seq >= sp->next_seq)
      sp->next_seq = seq + 1;
    return CHUB_OK;
  }
  default:
    return CHUB_ECORRUPT;
  }
}

/* ------------------------------------------------------------ files */

/* Replaces dir/name whole and durably (fs.h). */
static chub_code spool_replace_file(const spool *sp, const char *name,
                                    const char *data, size_t len) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", sp->dir, name);
  if (fs_replace(path, data, len, 0600) != CHUB_OK) {
    chub_log(CHUB_LOG_ERROR, "cannot write %s: %s", path, strerror(errno));
    return CHUB_EIO;
  }
  return CHUB_OK;
}

/* ------------------------------------------------------------ replay */

/* A window of the log file read in large chunks, so that replay costs a
 * few reads however many records there are. */
typedef struct spool_window {
  unsigned char *data;
  size_t cap, len;
  off_t start;
} spool_window;

/* Makes [off, off+need) readable in the window (as far as the file goes);
 * returns the bytes available from off, or SIZE_MAX on a read error. */
static size_t spool_window_at(spool_window *w, int fd, off_t size, off_t off,
                              size_t need) {
  if (off >= w->start && (size_t)(off - w->start) + need <= w->len)
    return w->len - (size_t)(off - w->start);
  size_t want = need > 65536 ? need : 65536;
  if ((off_t)want > size - off)
    want = (size_t)(size - off);
  if (want > w->cap) {
    unsigned char *n = realloc(w->data, want);
    if (!n)
      return SIZE_MAX;
    w->data = n;
    w->cap = want;
  }
  if (fs_pread_all(fd, w->data, want, off) != 0)
    return SIZE_MAX;
  w->start = off;
  w->len = want;
  return want;
}

/* Whether a whole valid record starts anywhere after `off`. A crash can
 * only tear the last record, so bytes that hide a later record mean damage
 * in the middle of the log, not an interrupted write. */
static bool spool_record_after(spool_window *w, int fd, off_t size, off_t off) {
  for (off_t pos = off + 1; pos + SPOOL_HEADER <= size; pos++) {
    size_t avail = spool_window_at(w, fd, size, pos, SPOOL_HEADER);
    if (avail == SIZE_MAX)
      return false;
    uint32_t len = 0;
    enum spool_verdict v =
        spool_check_header(w->data + (pos - w->start), avail, &len);
    if (v != SPOOL_VALID && v != SPOOL_NEWER)
      continue;
    avail = spool_window_at(w, fd, size, pos, SPOOL_HEADER + len);
    if (avail == SIZE_MAX)
      return false;
    int type;
    const unsigned char *payload;
    size_t total;
    v = spool_check(w->data + (pos - w->start), avail, &type, &payload, &len,
                    &total);
    if (v == SPOOL_VALID || v == SPOOL_NEWER)
      return true;
  }
  return false;
}

/* Keeps the bytes past a corrupt record next to the log for a person to
 * look at, then cuts the log back to its valid prefix. */
static void spool_cut(spool *sp, spool_window *w, off_t off, off_t size,
                      bool torn) {
  if (torn) {
    chub_log(CHUB_LOG_INFO,
             "spool %s: dropping an incomplete last record (%lld bytes at "
             "byte %lld), left by an interrupted write",
             sp->log_path, (long long)(size - off), (long long)off);
  } else {
    char damaged[PATH_MAX];
    snprintf(damaged, sizeof damaged, "%s.damaged", sp->log_path);
    int fd = open(damaged, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    off_t at = off;
    while (fd >= 0 && at < size) {
      size_t avail = spool_window_at(w, sp->fd, size, at, 1);
      if (avail == SIZE_MAX ||
          fs_pwrite_all(fd, w->data + (at - w->start), avail, at - off))
        break;
      at += (off_t)avail;
    }
    if (fd >= 0)
      close(fd);
    chub_log(CHUB_LOG_WARN,
             "spool %s: the record at byte %lld is corrupt; keeping the %lld "
             "valid bytes before it and moving the %lld bytes from there to "
             "%s (records after it are not replayed)",
             sp->log_path, (long long)off, (long long)off,
             (long long)(size - off), damaged);
  }
  if (ftruncate(sp->fd, off) != 0)
    chub_log(CHUB_LOG_ERROR, "spool %s: cannot truncate to %lld bytes: %s",
             sp->log_path, (long long)off, strerror(errno));
  else
    fsync(sp->fd);
}

/* Reads the log from the start, rebuilding the pending index, and cuts a
 * torn or corrupt tail. */
static chub_code spool_replay(spool *sp) {
  struct stat st;
  if (fstat(sp->fd, &st) != 0)
    return CHUB_EIO;
  off_t size = st.st_size, off = 0;
  spool_window w = {0};
  chub_code rc = CHUB_OK;
  while (off < size) {
    size_t avail = spool_window_at(&w, sp->fd, size, off, SPOOL_HEADER);
    if (avail == SIZE_MAX) {
      rc = CHUB_EIO;
      break;
    }
    uint32_t len = 0;
    enum spool_verdict v =
        spool_check_header(w.data + (off - w.start), avail, &len);
    int type = 0;
    const unsigned char *payload = NULL;
    size_t total = 0;
    if (v == SPOOL_VALID || v == SPOOL_NEWER) {
      avail = spool_window_at(&w, sp->fd, size, off, SPOOL_HEADER + len);
      if (avail == SIZE_MAX) {
        rc = CHUB_EIO;
        break;
      }
      v = spool_check(w.data + (off - w.start), avail, &type, &payload, &len,
                      &total);
    }
    if (v == SPOOL_NEWER) {
      /* Cutting here would destroy records a newer chub still needs. */
      chub_log(CHUB_LOG_ERROR,
               "spool %s was written by a newer chub (record format %d at "
               "byte %lld); leaving it untouched: use that version to sync "
               "run %s",
               sp->log_path, w.data[off - w.start + 5], (long long)off,
               sp->run_id);
      rc = CHUB_ECORRUPT;
      break;
    }
    if (v != SPOOL_VALID) {
      bool torn = !spool_record_after(&w, sp->fd, size, off);
      spool_cut(sp, &w, off, size, torn);
      break;
    }
    rc = spool_apply(sp, type, payload, len, off);
    if (rc != CHUB_OK)
      break;
    off += (off_t)total;
  }
  free(w.data);
  if (rc == CHUB_EIO)
    chub_log(CHUB_LOG_ERROR, "cannot read spool %s: %s", sp->log_path,
             strerror(errno));
  sp->end = off;
  sp->synced = off;
  return rc;
}

/* ------------------------------------------------------------ open/close */

static void spool_free(spool *sp) {
  if (!sp)
    return;
  if (sp->fd >= 0)
    close(sp->fd);
  if (sp->dir_fd >= 0)
    close(sp->dir_fd);
  for (size_t i = 0; i < sp->n_ckpts; i++)
    free(sp->ckpts[i].path);
  free(sp->ckpts);
  free(sp->ckpt_len);
  free(sp->epochs);
  free(sp->dir);
  free(sp->run_id);
  free(sp->log_path);
  pthread_mutex_destroy(&sp->mu);
  free(sp);
}

chub_code spool_open(const char *dir, long long max_bytes, spool **out) {
  if (!dir || !*dir || !out)
    return CHUB_EINVAL;
  *out = NULL;
  spool *sp = calloc(1, sizeof *sp);
  if (!sp)
    return CHUB_ENOMEM;
  pthread_mutex_init(&sp->mu, NULL);
  sp->fd = sp->dir_fd = -1;
  sp->max_bytes = max_bytes;
  sp->next_seq = 1;
  sp->dir = strdup(dir);
  if (!sp->dir) {
    spool_free(sp);
    return CHUB_ENOMEM;
  }
  size_t n = strlen(sp->dir);
  while (n > 1 && sp->dir[n - 1] == '/')
    sp->dir[--n] = '\0';
  const char *slash = strrchr(sp->dir, '/');
  sp->run_id = strdup(slash ? slash + 1 : sp->dir);
  sp->log_path = malloc(n + sizeof "/spool.log");
  if (!sp->run_id || !sp->log_path) {
    spool_free(sp);
    return CHUB_ENOMEM;
  }
  snprintf(sp->log_path, n + sizeof "/spool.log", "%s/spool.log", sp->dir);

  chub_code rc = fs_mkdirs(sp->dir);
  if (rc != CHUB_OK) {
    chub_log(CHUB_LOG_ERROR, "cannot create run directory %s: %s", sp->dir,
             strerror(errno));
    spool_free(sp);
    return rc;
  }
  sp->dir_fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sp->dir_fd < 0) {
    chub_log(CHUB_LOG_ERROR, "cannot open run directory %s: %s", sp->dir,
             strerror(errno));
    spool_free(sp);
    return CHUB_EIO;
  }
  /* Two writers would interleave records; the lock makes that impossible
   * and goes away by itself when a process dies. */
  if (flock(sp->dir_fd, LOCK_EX | LOCK_NB) != 0) {
    chub_log(CHUB_LOG_ERROR,
             "run %s is in use by another process or session (%s is "
             "locked); try again when it has finished",
             sp->run_id, sp->dir);
    spool_free(sp);
    return CHUB_EIO;
  }
  sp->fd = open(sp->log_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (sp->fd >= 0)
    sp->dir_unsynced = true;
  else if (errno == EEXIST)
    sp->fd = open(sp->log_path, O_RDWR | O_CLOEXEC);
  if (sp->fd < 0) {
    chub_log(CHUB_LOG_ERROR, "cannot open spool %s: %s", sp->log_path,
             strerror(errno));
    spool_free(sp);
    return CHUB_EIO;
  }
  rc = spool_replay(sp);
  if (rc != CHUB_OK) {
    spool_free(sp);
    return rc;
  }
  *out = sp;
  return CHUB_OK;
}

void spool_close(spool *sp) {
  if (!sp)
    return;
  spool_sync(sp);
  spool_free(sp);
}

const char *spool_dir(const spool *sp) {
  return sp->dir;
}

const char *spool_run_id(const spool *sp) {
  return sp->run_id;
}

/* ------------------------------------------------------------ compaction */

/* Buffered writer for compaction (the tmp file is written once, in order). */
typedef struct spool_out {
  int fd;
  off_t off;
  size_t len;
  unsigned char buf[65536];
} spool_out;

static int spool_out_flush(spool_out *o) {
  if (o->len && fs_pwrite_all(o->fd, o->buf, o->len, o->off) != 0)
    return -1;
  o->off += (off_t)o->len;
  o->len = 0;
  return 0;
}

static int spool_out_put(spool_out *o, const void *p, size_t n) {
  if (o->len + n > sizeof o->buf && spool_out_flush(o) != 0)
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

static off_t spool_out_tell(const spool_out *o) {
  return o->off + (off_t)o->len;
}

/* What a compaction keeps: the pending records as of one moment, and the
 * log to copy the metrics records from. */
typedef struct spool_snap {
  int fd;
  const char *log_path;
  const spool_epoch *epochs; /* sorted by epoch */
  size_t n_epochs;
  const spool_ckpt *ckpts;
  size_t n_ckpts;
  uint64_t next_seq;
} spool_snap;

static spool_snap spool_snap_of(const spool *sp) {
  return (spool_snap){sp->fd,    sp->log_path, sp->epochs,  sp->n_epochs,
                      sp->ckpts, sp->n_ckpts,  sp->next_seq};
}

/* Copies the pending epochs' records (verifying each) and re-frames the
 * pending checkpoints into o; fills new_off with the epochs' new offsets. */
static chub_code spool_compact_write(const spool_snap *sp, spool_out *o,
                                     off_t *new_off) {
  unsigned char *rec = NULL;
  size_t rec_cap = 0;
  chub_code rc = CHUB_OK;
  for (size_t i = 0; i < sp->n_epochs && rc == CHUB_OK; i++) {
    const spool_epoch *ep = &sp->epochs[i];
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
    if (fs_pread_all(sp->fd, rec, ep->rec_len, ep->off) != 0) {
      rc = CHUB_EIO;
    } else if (spool_check(rec, ep->rec_len, &type, &payload, &plen, &total) !=
               SPOOL_VALID) {
      chub_log(CHUB_LOG_ERROR,
               "spool %s: the metrics of epoch %d (byte %lld) no longer pass "
               "their checksum; the disk changed them. Not compacting",
               sp->log_path, ep->epoch, (long long)ep->off);
      rc = CHUB_ECORRUPT;
    } else {
      new_off[i] = spool_out_tell(o);
      if (spool_out_put(o, rec, ep->rec_len) != 0)
        rc = CHUB_EIO;
    }
  }
  free(rec);
  bool seq_kept = false;
  for (size_t i = 0; i < sp->n_ckpts && rc == CHUB_OK; i++) {
    const spool_ckpt *c = &sp->ckpts[i];
    unsigned char fixed[SPOOL_CKPT_FIXED];
    unsigned char frame[SPOOL_HEADER + SPOOL_CKPT_FIXED + SPOOL_MAX_PATH];
    spool_ckpt_fixed(fixed, c);
    size_t n = spool_frame(frame, SPOOL_CKPT, fixed, sizeof fixed, c->path,
                           strlen(c->path));
    if (spool_out_put(o, frame, n) != 0)
      rc = CHUB_EIO;
    seq_kept |= c->seq + 1 == sp->next_seq;
  }
  /* Sequence numbers must not be reused after a restart: when the newest
   * checkpoint is gone, an acknowledgement of it keeps the high mark. */
  if (rc == CHUB_OK && !seq_kept && sp->next_seq > 1) {
    unsigned char seq[8], frame[SPOOL_HEADER + 8];
    spool_put64(seq, sp->next_seq - 1);
    size_t n = spool_frame(frame, SPOOL_CKPT_ACK, seq, 8, NULL, 0);
    if (spool_out_put(o, frame, n) != 0)
      rc = CHUB_EIO;
  }
  if (rc == CHUB_OK && spool_out_flush(o) != 0)
    rc = CHUB_EIO;
  return rc;
}

static chub_code spool_compact_locked(spool *sp) {
  spool_snap snap = spool_snap_of(sp);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", sp->log_path);
  off_t *new_off = malloc((sp->n_epochs ? sp->n_epochs : 1) * sizeof *new_off);
  spool_out *o = malloc(sizeof *o);
  if (!new_off || !o) {
    free(new_off);
    free(o);
    return CHUB_ENOMEM;
  }
  o->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  o->off = 0;
  o->len = 0;
  chub_code rc = o->fd < 0 ? CHUB_EIO : spool_compact_write(&snap, o, new_off);
  if (rc == CHUB_OK && fsync(o->fd) != 0)
    rc = CHUB_EIO;
  if (rc == CHUB_OK && rename(tmp, sp->log_path) != 0)
    rc = CHUB_EIO;
  if (rc != CHUB_OK) {
    if (rc == CHUB_EIO)
      chub_log(CHUB_LOG_ERROR, "cannot compact spool %s via %s: %s",
               sp->log_path, tmp, strerror(errno));
    if (o->fd >= 0)
      close(o->fd);
    unlink(tmp);
    free(new_off);
    free(o);
    return rc;
  }
  fsync(sp->dir_fd);
  close(sp->fd);
  sp->fd = o->fd;
  sp->end = spool_out_tell(o);
  sp->synced = sp->end;
  sp->live = sp->end;
  sp->dir_unsynced = false;
  for (size_t i = 0; i < sp->n_epochs; i++)
    sp->epochs[i].off = new_off[i];
  sp->compactions++;
  free(new_off);
  free(o);
  return CHUB_OK;
}

/* Copies bytes [from, to) of one file to `at` in another. */
static chub_code spool_copy_range(int src, off_t from, off_t to, int dst,
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
 * after the snapshot (at or past end0) moved with the tail; older ones
 * were copied from the snapshot. -1 when it is in neither (a bug). */
static off_t spool_moved(const spool_epoch *ep, off_t end0, off_t base,
                         const spool_epoch *snap, size_t n,
                         const off_t *snap_off) {
  if (ep->off >= end0)
    return base + (ep->off - end0);
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (snap[mid].epoch < ep->epoch)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && snap[lo].epoch == ep->epoch && snap[lo].off == ep->off
             ? snap_off[lo]
             : -1;
}

/* Swaps the compacted file in (called with the mutex held, everything up
 * to sp->end copied and fsynced): new offsets, rename, new descriptor. */
static chub_code spool_compact_swap(spool *sp, const char *tmp, int fd,
                                    off_t end0, off_t base, off_t out_end,
                                    const spool_epoch *snap, size_t n,
                                    const off_t *snap_off) {
  off_t *moved = malloc((sp->n_epochs ? sp->n_epochs : 1) * sizeof *moved);
  if (!moved)
    return CHUB_ENOMEM;
  for (size_t i = 0; i < sp->n_epochs; i++) {
    moved[i] = spool_moved(&sp->epochs[i], end0, base, snap, n, snap_off);
    if (moved[i] < 0) {
      chub_log(CHUB_LOG_ERROR,
               "spool %s: epoch %d has no place in the compacted log; not "
               "compacting",
               sp->log_path, sp->epochs[i].epoch);
      free(moved);
      return CHUB_ECORRUPT;
    }
  }
  if (rename(tmp, sp->log_path) != 0) {
    chub_log(CHUB_LOG_ERROR, "cannot compact spool %s via %s: %s", sp->log_path,
             tmp, strerror(errno));
    free(moved);
    return CHUB_EIO;
  }
  for (size_t i = 0; i < sp->n_epochs; i++)
    sp->epochs[i].off = moved[i];
  free(moved);
  close(sp->fd);
  sp->fd = fd;
  sp->end = out_end;
  sp->synced = out_end;
  sp->compactions++;
  return CHUB_OK;
}

/* The compaction the sender asks for. The copy and its fsync run without
 * the mutex, so the training thread's appends never wait on the disk;
 * what was appended meanwhile is carried over byte for byte (its replay
 * over the kept records gives the same state as over the old log), with an
 * fsync outside the mutex again until no new append arrived, so the swap
 * itself is only a rename. A compaction forced meanwhile by the bound
 * (spool_compact_locked) wins; this one is then dropped. */
chub_code spool_compact(spool *sp) {
  pthread_mutex_lock(&sp->mu);
  if (sp->compacting) {
    pthread_mutex_unlock(&sp->mu);
    return CHUB_OK;
  }
  sp->compacting = true;
  unsigned gen = sp->compactions;
  off_t end0 = sp->end;
  size_t ne = sp->n_epochs, nc = sp->n_ckpts;
  spool_epoch *eps = malloc((ne ? ne : 1) * sizeof *eps);
  spool_ckpt *cks = calloc(nc ? nc : 1, sizeof *cks);
  off_t *snap_off = malloc((ne ? ne : 1) * sizeof *snap_off);
  spool_out *o = malloc(sizeof *o);
  int src = dup(sp->fd);
  chub_code rc =
      eps && cks && snap_off && o && src >= 0 ? CHUB_OK : CHUB_ENOMEM;
  if (rc == CHUB_OK) {
    if (ne)
      memcpy(eps, sp->epochs, ne * sizeof *eps);
    for (size_t i = 0; i < nc && rc == CHUB_OK; i++) {
      cks[i] = sp->ckpts[i];
      cks[i].path = strdup(sp->ckpts[i].path);
      if (!cks[i].path)
        rc = CHUB_ENOMEM;
    }
  }
  spool_snap snap = {src, sp->log_path, eps, ne, cks, nc, sp->next_seq};
  pthread_mutex_unlock(&sp->mu);

  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.ctmp", sp->log_path);
  if (o)
    *o = (spool_out){.fd = -1};
  if (rc == CHUB_OK) {
    o->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    rc = o->fd < 0 ? CHUB_EIO : spool_compact_write(&snap, o, snap_off);
  }
  if (rc == CHUB_OK && fsync(o->fd) != 0)
    rc = CHUB_EIO;
  off_t base = rc == CHUB_OK ? spool_out_tell(o) : 0;
  off_t copied = end0, out_end = base;
  bool swapped = false;
  for (int round = 0; rc == CHUB_OK; round++) {
    pthread_mutex_lock(&sp->mu);
    if (sp->compactions != gen) {
      pthread_mutex_unlock(&sp->mu);
      break; /* the bound forced a compaction meanwhile */
    }
    if (sp->end > copied) {
      off_t to = sp->end;
      rc = spool_copy_range(sp->fd, copied, to, o->fd, out_end);
      out_end += to - copied;
      copied = to;
      if (rc == CHUB_OK && round < 3) {
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
      rc = spool_compact_swap(sp, tmp, o->fd, end0, base, out_end, eps, ne,
                              snap_off);
    swapped = rc == CHUB_OK;
    pthread_mutex_unlock(&sp->mu);
    break;
  }
  if (swapped)
    fsync(sp->dir_fd);
  else if (o && o->fd >= 0) {
    close(o->fd);
    unlink(tmp);
  }
  if (rc == CHUB_EIO)
    chub_log(CHUB_LOG_ERROR, "cannot compact spool %s: %s", sp->log_path,
             strerror(errno));
  pthread_mutex_lock(&sp->mu);
  sp->compacting = false;
  pthread_mutex_unlock(&sp->mu);
  for (size_t i = 0; cks && i < nc; i++)
    free(cks[i].path);
  free(cks);
  free(eps);
  free(snap_off);
  free(o);
  if (src >= 0)
    close(src);
  return rc;
}

/* ------------------------------------------------------------ appends */

/* Whether `n` more bytes fit under the bound, compacting first if not. */
static bool spool_room(spool *sp, size_t n) {
  if (sp->max_bytes <= 0 || sp->end + (off_t)n <= sp->max_bytes)
    return true;
  if (sp->live + (off_t)n + SPOOL_HEADER + 8 > sp->max_bytes)
    return false; /* compaction could not make room; spare the rewrite */
  return spool_compact_locked(sp) == CHUB_OK &&
         sp->end + (off_t)n <= sp->max_bytes;
}

/* Says once, clearly, that the bound was hit; counts what follows. */
static chub_code spool_refuse(spool *sp, const char *what) {
  if (!sp->full)
    chub_log(CHUB_LOG_WARN,
             "spool for run %s is full (%lld bytes of unsent records in %s, "
             "limit %lld): %s was not stored, nor will later records be until "
             "the hub acknowledges some. Run `chub sync %s` once the hub is "
             "reachable, or raise spool_max_mb",
             sp->run_id, (long long)sp->live, sp->log_path,
             (long long)sp->max_bytes, what, sp->run_id);
  sp->full = true;
  sp->refused++;
  return CHUB_EFULL;
}

/* Writes one framed record at the end of the log (the append path's single
 * write(2)); on failure cuts the log back so no torn bytes stay behind. */
static chub_code spool_write_locked(spool *sp, const unsigned char *rec,
                                    size_t n, off_t *at) {
  if (fs_pwrite_all(sp->fd, rec, n, sp->end) != 0) {
    int err = errno;
    if (ftruncate(sp->fd, sp->end) != 0) {
      /* The torn bytes stay; replay will drop them. */
    }
    chub_log(CHUB_LOG_ERROR, "cannot append to spool %s: %s", sp->log_path,
             strerror(err));
    return spool_errno_code(err);
  }
  *at = sp->end;
  sp->end += (off_t)n;
  if (sp->full) {
    chub_log(CHUB_LOG_INFO,
             "spool for run %s has room again; %zu records were refused "
             "while it was full",
             sp->run_id, sp->refused);
    sp->full = false;
    sp->refused = 0;
  }
  return CHUB_OK;
}

chub_code spool_append_metrics(spool *sp, int epoch, const char *json) {
  if (!sp || epoch < 0 || !json)
    return CHUB_EINVAL;
  size_t jlen = strlen(json);
  if (jlen == 0 || jlen > SPOOL_MAX_PAYLOAD - 4)
    return CHUB_EINVAL;
  unsigned char stack[SPOOL_STACK_RECORD];
  size_t n = SPOOL_HEADER + 4 + jlen;
  unsigned char *rec = n <= sizeof stack ? stack : malloc(n);
  if (!rec)
    return CHUB_ENOMEM;
  unsigned char ep[4];
  spool_put32(ep, (uint32_t)epoch);
  spool_frame(rec, SPOOL_METRICS, ep, 4, json, jlen);

  pthread_mutex_lock(&sp->mu);
  chub_code rc = CHUB_OK;
  off_t at = 0;
  if (sp->n_epochs == sp->cap_epochs) {
    size_t cap = sp->cap_epochs ? sp->cap_epochs * 2 : 64;
    spool_epoch *grown = realloc(sp->epochs, cap * sizeof *grown);
    if (!grown)
      rc = CHUB_ENOMEM;
    else {
      sp->epochs = grown;
      sp->cap_epochs = cap;
    }
  }
  if (rc == CHUB_OK && !spool_room(sp, n)) {
    char what[64];
    snprintf(what, sizeof what, "the metrics of epoch %d", epoch);
    rc = spool_refuse(sp, what);
  }
  if (rc == CHUB_OK)
    rc = spool_write_locked(sp, rec, n, &at);
  if (rc == CHUB_OK)
    rc = spool_epoch_put(sp, epoch, at, (uint32_t)n);
  pthread_mutex_unlock(&sp->mu);
  if (rec != stack)
    free(rec);
  return rc;
}

chub_code spool_append_checkpoint(spool *sp, spool_ckpt *c) {
  if (!sp || !c || !c->path || c->epoch < 0)
    return CHUB_EINVAL;
  size_t plen = strlen(c->path);
  if (plen == 0 || plen > SPOOL_MAX_PATH)
    return CHUB_EINVAL;
  spool_ckpt copy = *c;
  if (copy.size == 0 && copy.mtime_ns == 0) {
    /* Which version of the file was queued: a trainer rewrites last.pt in
     * place, so the uploader must be able to tell the bytes changed. */
    struct stat st;
    if (stat(c->path, &st) == 0) {
      copy.size = (long long)st.st_size;
      copy.mtime_ns =
          (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    } else {
      copy.size = -1;
    }
  }
  copy.path = strdup(c->path);
  if (!copy.path)
    return CHUB_ENOMEM;
  unsigned char rec[SPOOL_HEADER + SPOOL_CKPT_FIXED + SPOOL_MAX_PATH];
  unsigned char fixed[SPOOL_CKPT_FIXED];

  pthread_mutex_lock(&sp->mu);
  copy.seq = sp->next_seq;
  spool_ckpt_fixed(fixed, &copy);
  size_t n = spool_frame(rec, SPOOL_CKPT, fixed, sizeof fixed, copy.path, plen);
  chub_code rc = CHUB_OK;
  off_t at = 0;
  if (!spool_room(sp, n)) {
    char what[80];
    snprintf(what, sizeof what, "the checkpoint of epoch %d", c->epoch);
    rc = spool_refuse(sp, what);
  }
  if (rc == CHUB_OK)
    rc = spool_write_locked(sp, rec, n, &at);
  if (rc == CHUB_OK)
    rc = spool_ckpt_put(sp, &copy, (uint32_t)n);
  if (rc == CHUB_OK) {
    sp->next_seq++;
    c->seq = copy.seq;
    c->size = copy.size;
    c->mtime_ns = copy.mtime_ns;
  }
  pthread_mutex_unlock(&sp->mu);
  if (rc != CHUB_OK)
    free(copy.path);
  return rc;
}

/* ------------------------------------------------------------ acks */

/* Logs an acknowledgement record after the in-memory state already dropped
 * what it names. Past the bound the log is compacted instead, which needs
 * no acknowledgement record at all; when most of the log is dead the caller
 * compacts afterwards, without the mutex. */
static chub_code spool_ack_locked(spool *sp, int type, const unsigned char *p,
                                  size_t len, bool *compact_after) {
  size_t n = SPOOL_HEADER + len;
  bool over = sp->max_bytes > 0 && sp->end + (off_t)n > sp->max_bytes;
  if (over && spool_compact_locked(sp) == CHUB_OK)
    return CHUB_OK;
  /* Mostly dead: compact once the mutex is released (spool_compact). */
  *compact_after = sp->end >= (1 << 20) && sp->live * 4 < sp->end;
  unsigned char stack[SPOOL_STACK_RECORD];
  unsigned char *rec = n <= sizeof stack ? stack : malloc(n);
  if (!rec)
    return CHUB_ENOMEM;
  spool_frame(rec, type, p, len, NULL, 0);
  off_t at = 0;
  chub_code rc = spool_write_locked(sp, rec, n, &at);
  if (rec != stack)
    free(rec);
  return rc;
}

chub_code spool_ack_metrics(spool *sp, const int *epochs, size_t n) {
  if (!sp || (n && !epochs))
    return CHUB_EINVAL;
  unsigned char *p = malloc(n ? n * 4 : 1);
  if (!p)
    return CHUB_ENOMEM;
  pthread_mutex_lock(&sp->mu);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool found = false;
    size_t at = spool_epoch_find(sp, epochs[i], &found);
    if (!found)
      continue;
    const spool_epoch *ep = &sp->epochs[at];
    /* Re-queued after the sender read it: the newer JSON is not on the hub
     * yet, so it stays pending. */
    if (ep->read_version != 0 && ep->read_version != ep->version)
      continue;
    spool_put32(p + 4 * k++, (uint32_t)epochs[i]);
    spool_epoch_drop(sp, at);
  }
  bool compact = false;
  chub_code rc =
      k ? spool_ack_locked(sp, SPOOL_METRICS_ACK, p, 4 * k, &compact) : CHUB_OK;
  pthread_mutex_unlock(&sp->mu);
  free(p);
  if (compact)
    spool_compact(sp);
  return rc;
}

chub_code spool_ack_checkpoint(spool *sp, uint64_t seq) {
  if (!sp)
    return CHUB_EINVAL;
  pthread_mutex_lock(&sp->mu);
  chub_code rc = CHUB_OK;
  bool compact = false;
  size_t at = spool_ckpt_find(sp, seq);
  if (at != SIZE_MAX) {
    unsigned char p[8];
    spool_put64(p, seq);
    spool_ckpt_drop(sp, at);
    rc = spool_ack_locked(sp, SPOOL_CKPT_ACK, p, 8, &compact);
  }
  pthread_mutex_unlock(&sp->mu);
  if (compact)
    spool_compact(sp);
  return rc;
}

/* ------------------------------------------------------------ sync */

chub_code spool_sync(spool *sp) {
  if (!sp)
    return CHUB_EINVAL;
  pthread_mutex_lock(&sp->mu);
  bool dir = sp->dir_unsynced;
  off_t target = sp->end;
  unsigned gen = sp->compactions;
  int fd = target != sp->synced ? dup(sp->fd) : -1;
  bool failed_dup = target != sp->synced && fd < 0;
  sp->dir_unsynced = false;
  pthread_mutex_unlock(&sp->mu);
  /* fsync without the mutex: the training thread keeps appending while the
   * disk flushes; the dup'd descriptor survives a concurrent compaction. */
  chub_code rc = failed_dup ? CHUB_EIO : CHUB_OK;
  if (fd >= 0) {
    if (fdatasync(fd) != 0) {
      chub_log(CHUB_LOG_ERROR, "cannot fsync spool %s: %s", sp->log_path,
               strerror(errno));
      rc = CHUB_EIO;
    }
    close(fd);
  }
  if (dir && fsync(sp->dir_fd) != 0)
    rc = CHUB_EIO;
  pthread_mutex_lock(&sp->mu);
  if (rc == CHUB_OK && gen == sp->compactions && target > sp->synced)
    sp->synced = target;
  if (rc != CHUB_OK && dir)
    sp->dir_unsynced = true;
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

/* ------------------------------------------------------------ reads */

size_t spool_pending_metrics(spool *sp, int *epochs, size_t max) {
  pthread_mutex_lock(&sp->mu);
  size_t n = sp->n_epochs < max ? sp->n_epochs : max;
  for (size_t i = 0; i < n; i++)
    epochs[i] = sp->epochs[i].epoch;
  pthread_mutex_unlock(&sp->mu);
  return n;
}

chub_code spool_read_metrics(spool *sp, int epoch, char **json) {
  if (!sp || !json)
    return CHUB_EINVAL;
  *json = NULL;
  pthread_mutex_lock(&sp->mu);
  bool found = false;
  size_t at = spool_epoch_find(sp, epoch, &found);
  if (!found) {
    pthread_mutex_unlock(&sp->mu);
    return CHUB_EINVAL;
  }
  spool_epoch *ep = &sp->epochs[at];
  unsigned char *rec = malloc(ep->rec_len + 1);
  chub_code rc = rec ? CHUB_OK : CHUB_ENOMEM;
  int type;
  const unsigned char *payload;
  uint32_t plen = 0;
  size_t total;
  if (rc == CHUB_OK && fs_pread_all(sp->fd, rec, ep->rec_len, ep->off)) {
    chub_log(CHUB_LOG_ERROR, "cannot read spool %s: %s", sp->log_path,
             strerror(errno));
    rc = CHUB_EIO;
  }
  if (rc == CHUB_OK &&
      (spool_check(rec, ep->rec_len, &type, &payload, &plen, &total) !=
           SPOOL_VALID ||
       type != SPOOL_METRICS || (int32_t)spool_get32(payload) != epoch)) {
    chub_log(CHUB_LOG_ERROR,
             "spool %s: the metrics of epoch %d (byte %lld) fail their "
             "checksum; the disk changed them",
             sp->log_path, epoch, (long long)ep->off);
    rc = CHUB_ECORRUPT;
  }
  if (rc == CHUB_OK) {
    ep->read_version = ep->version;
    memmove(rec, payload + 4, plen - 4);
    rec[plen - 4] = '\0';
    *json = (char *)rec;
  } else {
    free(rec);
  }
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

bool spool_next_checkpoint(spool *sp, spool_ckpt *out) {
  pthread_mutex_lock(&sp->mu);
  bool any = sp->n_ckpts > 0;
  if (any) {
    *out = sp->ckpts[0];
    out->path = strdup(sp->ckpts[0].path);
    any = out->path != NULL;
  }
  pthread_mutex_unlock(&sp->mu);
  return any;
}

void spool_ckpt_clear(spool_ckpt *c) {
  if (!c)
    return;
  free(c->path);
  memset(c, 0, sizeof *c);
}

void spool_pending_counts(spool *sp, size_t *metrics, size_t *ckpts,
                          bool *final_pending) {
  pthread_mutex_lock(&sp->mu);
  bool fin = false;
  for (size_t i = 0; i < sp->n_ckpts; i++)
    fin |= sp->ckpts[i].final;
  if (metrics)
    *metrics = sp->n_epochs;
  if (ckpts)
    *ckpts = sp->n_ckpts;
  if (final_pending)
    *final_pending = fin;
  pthread_mutex_unlock(&sp->mu);
}

/* ------------------------------------------------------------ run.json */

/* Loads run.json as an object: empty when absent; a damaged file is named
 * in a warning and treated as empty rather than failing the run. */
static json_t *spool_meta_load(const spool *sp) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/run.json", sp->dir);
  if (access(path, F_OK) != 0)
    return json_object();
  json_error_t err;
  json_t *obj = json_load_file(path, 0, &err);
  if (!obj || !json_is_object(obj)) {
    chub_log(CHUB_LOG_WARN,
             "run metadata %s is not a JSON object (line %d: %s); starting "
             "it afresh",
             path, err.line, obj ? "not an object" : err.text);
    json_decref(obj);
    return json_object();
  }
  return obj;
}

chub_code spool_meta_set(spool *sp, const char *key, const char *value) {
  if (!sp || !key || !*key)
    return CHUB_EINVAL;
  pthread_mutex_lock(&sp->mu);
  json_t *obj = spool_meta_load(sp);
  chub_code rc = obj ? CHUB_OK : CHUB_ENOMEM;
  if (rc == CHUB_OK) {
    if (value)
      rc = json_object_set_new(obj, key, json_string(value)) == 0
               ? CHUB_OK
               : CHUB_EINVAL; /* not UTF-8 */
    else
      json_object_del(obj, key);
  }
  char *text =
      rc == CHUB_OK ? json_dumps(obj, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
  if (rc == CHUB_OK && !text)
    rc = CHUB_ENOMEM;
  if (rc == CHUB_OK) {
    size_t len = strlen(text);
    rc = spool_replace_file(sp, "run.json", text, len);
  }
  free(text);
  json_decref(obj);
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

char *spool_meta_get(spool *sp, const char *key) {
  if (!sp || !key)
    return NULL;
  pthread_mutex_lock(&sp->mu);
  json_t *obj = spool_meta_load(sp);
  const char *v = json_string_value(json_object_get(obj, key));
  char *copy = v ? strdup(v) : NULL;
  json_decref(obj);
  pthread_mutex_unlock(&sp->mu);
  return copy;
}

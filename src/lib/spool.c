/*
 * spool.c - the spool's API: open and replay a run's log, append, mark
 * acknowledged, fsync, and read back what is pending (spool.h).
 *
 * The pieces it is made of live beside it, each behind a narrow interface:
 * the record format (spool_record.c, pure and fuzzed), the index of what is
 * pending (spool_index.c), the compaction (spool_compact.c) and run.json
 * (run_meta.c). What this file owns is the order of operations that makes
 * the log safe:
 *  - The training thread appends, so an append is one pwrite(2) of a framed
 *    record built in a stack buffer under one mutex; no fsync there. The
 *    sender calls spool_sync() about once a second and at train end.
 *  - Replay stops at the first record that is torn or corrupt and truncates
 *    the log there, so a later append never lands after garbage and no
 *    record is ever misread. A crash can only tear the last record, so bad
 *    bytes that hide a later valid record are damage: they are kept in
 *    spool.log.damaged and named in a warning. A record of a later format
 *    (a newer chub wrote it) is not damage: the log is left untouched and
 *    the open fails, saying so.
 *  - The log is bounded by max_bytes; an append that would pass the bound
 *    first compacts and otherwise is refused with CHUB_EFULL and a warning
 *    naming the run. Acknowledgements are never refused: when one would
 *    pass the bound the log is compacted instead, which makes the
 *    acknowledgement record unnecessary; when one leaves most of a large
 *    log dead, the log is compacted after it, in the background way.
 *  - One process owns a run at a time: the run directory is flock()ed, so
 *    two writers can never interleave records in one log.
 */
#include "spool_private.h"

#include "fs.h"
#include "hot_path.h"
#include "internal.h"
#include "run_meta.h"
#include "spool_record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Appends up to this size never malloc. */
#define SPOOL_STACK_RECORD 4096

static chub_code spool_errno_code(int err) {
  return err == ENOMEM ? CHUB_ENOMEM : CHUB_EIO;
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
        spool_record_check_header(w->data + (pos - w->start), avail, &len);
    if (v != SPOOL_VALID && v != SPOOL_NEWER)
      continue;
    avail = spool_window_at(w, fd, size, pos, SPOOL_HEADER + len);
    if (avail == SIZE_MAX)
      return false;
    int type;
    const unsigned char *payload;
    size_t total;
    v = spool_record_check(w->data + (pos - w->start), avail, &type, &payload,
                           &len, &total);
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
        spool_record_check_header(w.data + (off - w.start), avail, &len);
    int type = 0;
    const unsigned char *payload = NULL;
    size_t total = 0;
    if (v == SPOOL_VALID || v == SPOOL_NEWER) {
      avail = spool_window_at(&w, sp->fd, size, off, SPOOL_HEADER + len);
      if (avail == SIZE_MAX) {
        rc = CHUB_EIO;
        break;
      }
      v = spool_record_check(w.data + (off - w.start), avail, &type, &payload,
                             &len, &total);
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
    rc = spool_index_apply(&sp->index, type, payload, len, off);
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
  spool_index_free(&sp->index);
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
  spool_index_init(&sp->index);
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

/* ------------------------------------------------------------ appends */

/* Whether `n` more bytes fit under the bound, compacting first if not. */
CHUB_HOT static bool spool_room(spool *sp, size_t n) {
  if (sp->max_bytes <= 0 || sp->end + (off_t)n <= sp->max_bytes)
    return true;
  if (sp->index.live + (off_t)n + SPOOL_HEADER + 8 > sp->max_bytes)
    return false; /* compaction could not make room; spare the rewrite */
  return spool_compact_held(sp) == CHUB_OK &&
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
             sp->run_id, (long long)sp->index.live, sp->log_path,
             (long long)sp->max_bytes, what, sp->run_id);
  sp->full = true;
  sp->refused++;
  return CHUB_EFULL;
}

/* Writes one framed record at the end of the log (the append path's single
 * write(2)); on failure cuts the log back so no torn bytes stay behind. */
CHUB_HOT static chub_code
spool_write_locked(spool *sp, const unsigned char *rec, size_t n, off_t *at) {
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

/* Puts the framed metrics record `rec` of `epoch` (n bytes) at the end of
 * the log and indexes it. */
CHUB_HOT static chub_code
spool_put_metrics(spool *sp, int epoch, const unsigned char *rec, size_t n) {
  pthread_mutex_lock(&sp->mu);
  chub_code rc = CHUB_OK;
  off_t at = 0;
  /* Room first, so that nothing can fail after the record is written. */
  rc = spool_index_reserve_epoch(&sp->index);
  if (rc == CHUB_OK && !spool_room(sp, n)) {
    char what[64];
    snprintf(what, sizeof what, "the metrics of epoch %d", epoch);
    rc = spool_refuse(sp, what);
  }
  if (rc == CHUB_OK)
    rc = spool_write_locked(sp, rec, n, &at);
  if (rc == CHUB_OK)
    rc = spool_index_put_epoch(&sp->index, epoch, at, (uint32_t)n);
  pthread_mutex_unlock(&sp->mu);
  return rc;
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
  spool_record_frame(rec, SPOOL_METRICS, ep, 4, json, jlen);
  chub_code rc = spool_put_metrics(sp, epoch, rec, n);
  if (rec != stack)
    free(rec);
  return rc;
}

/* Whether the JSON the entries become stays within what a JSON record may
 * hold (escapes make it longer than the entries), so that an epoch is
 * never accepted here and then too big to send. Measured only for large
 * epochs: a small one cannot grow past the bound. */
CHUB_HOT static bool spool_items_json_fits(const flat_item *items, size_t n,
                                           size_t plen) {
  if (plen <= SPOOL_MAX_PAYLOAD / 8)
    return true;
  flat_item *copy = malloc(n * sizeof *copy);
  if (!copy)
    return false;
  memcpy(copy, items, n * sizeof *copy);
  bool dropped = false;
  char none[1];
  size_t need = flat_map_json(copy, n, none, 0, &dropped);
  free(copy);
  return need <= SPOOL_MAX_PAYLOAD - 4;
}

CHUB_HOT chub_code spool_append_metrics_items(spool *sp, int epoch,
                                              const flat_item *items, size_t n,
                                              bool *dropped) {
  if (!sp || epoch < 0 || (n && !items) || !dropped)
    return CHUB_EINVAL;
  /* Framed first, into room for every entry; the bounds apply to what is
   * kept. */
  size_t room = SPOOL_HEADER + spool_record_items_size(items, n);
  unsigned char stack[SPOOL_STACK_RECORD];
  unsigned char *rec = room <= sizeof stack ? stack : malloc(room);
  if (!rec)
    return CHUB_ENOMEM;
  size_t len = spool_record_frame_items(rec, epoch, items, n, dropped);
  chub_code rc = CHUB_EINVAL;
  if (len - SPOOL_HEADER <= SPOOL_MAX_PAYLOAD &&
      spool_items_json_fits(items, n, len - SPOOL_HEADER))
    rc = spool_put_metrics(sp, epoch, rec, len);
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
  unsigned char rec[SPOOL_CKPT_RECORD];

  pthread_mutex_lock(&sp->mu);
  copy.seq = sp->index.next_seq;
  spool_record_ckpt r = {copy.seq,      copy.epoch, copy.final,
                         copy.is_best,  copy.map,   copy.size,
                         copy.mtime_ns, copy.path,  plen};
  size_t n = spool_record_frame_ckpt(rec, &r);
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
    rc = spool_index_put_ckpt(&sp->index, &copy, (uint32_t)n);
  if (rc == CHUB_OK) {
    sp->index.next_seq++;
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
  if (over && spool_compact_held(sp) == CHUB_OK)
    return CHUB_OK;
  /* Mostly dead: compact once the mutex is released (spool_compact). */
  *compact_after = sp->end >= (1 << 20) && sp->index.live * 4 < sp->end;
  unsigned char stack[SPOOL_STACK_RECORD];
  unsigned char *rec = n <= sizeof stack ? stack : malloc(n);
  if (!rec)
    return CHUB_ENOMEM;
  spool_record_frame(rec, type, p, len, NULL, 0);
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
    size_t at = spool_index_find_epoch(&sp->index, epochs[i], &found);
    if (!found)
      continue;
    const spool_epoch *ep = &sp->index.epochs[at];
    /* Re-queued after the sender read it: the newer JSON is not on the hub
     * yet, so it stays pending. */
    if (ep->read_version != 0 && ep->read_version != ep->version)
      continue;
    spool_put32(p + 4 * k++, (uint32_t)epochs[i]);
    spool_index_drop_epoch(&sp->index, at);
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
  size_t at = spool_index_find_ckpt(&sp->index, seq);
  if (at != SIZE_MAX) {
    unsigned char p[8];
    spool_put64(p, seq);
    spool_index_drop_ckpt(&sp->index, at);
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
  size_t n = sp->index.n_epochs < max ? sp->index.n_epochs : max;
  for (size_t i = 0; i < n; i++)
    epochs[i] = sp->index.epochs[i].epoch;
  pthread_mutex_unlock(&sp->mu);
  return n;
}

/* The JSON of a metrics-items payload that passed its check (malloc'd). */
static char *spool_items_json(const unsigned char *p, size_t len) {
  size_t n = spool_record_read_items(p, len, NULL, 0);
  flat_item *items = malloc((n ? n : 1) * sizeof *items);
  if (!items)
    return NULL;
  spool_record_read_items(p, len, items, n);
  bool dropped = false;
  char small[1];
  size_t need = flat_map_json(items, n, small, 0, &dropped);
  char *json = malloc(need + 1);
  if (json)
    flat_map_json(items, n, json, need + 1, &dropped);
  free(items);
  return json;
}

chub_code spool_read_metrics(spool *sp, int epoch, char **json) {
  if (!sp || !json)
    return CHUB_EINVAL;
  *json = NULL;
  pthread_mutex_lock(&sp->mu);
  bool found = false;
  size_t at = spool_index_find_epoch(&sp->index, epoch, &found);
  if (!found) {
    pthread_mutex_unlock(&sp->mu);
    return CHUB_EINVAL;
  }
  spool_epoch *ep = &sp->index.epochs[at];
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
      (spool_record_check(rec, ep->rec_len, &type, &payload, &plen, &total) !=
           SPOOL_VALID ||
       (type != SPOOL_METRICS && type != SPOOL_METRICS_ITEMS) ||
       (int32_t)spool_get32(payload) != epoch)) {
    chub_log(CHUB_LOG_ERROR,
             "spool %s: the metrics of epoch %d (byte %lld) fail their "
             "checksum; the disk changed them",
             sp->log_path, epoch, (long long)ep->off);
    rc = CHUB_ECORRUPT;
  }
  if (rc == CHUB_OK && type == SPOOL_METRICS_ITEMS) {
    /* The JSON is written outside the lock (the trainer's appends wait on
     * it) from this call's own copy of the record; the epoch counts as read
     * only once it is, and only if no newer record replaced it meanwhile. */
    uint64_t version = ep->version;
    pthread_mutex_unlock(&sp->mu);
    *json = spool_items_json(payload, plen);
    free(rec);
    if (!*json)
      return CHUB_ENOMEM;
    pthread_mutex_lock(&sp->mu);
    at = spool_index_find_epoch(&sp->index, epoch, &found);
    if (found && sp->index.epochs[at].version == version)
      sp->index.epochs[at].read_version = version;
    pthread_mutex_unlock(&sp->mu);
    return CHUB_OK;
  }
  if (rc == CHUB_OK)
    ep->read_version = ep->version;
  pthread_mutex_unlock(&sp->mu);
  if (rc == CHUB_OK) {
    memmove(rec, payload + 4, plen - 4);
    rec[plen - 4] = '\0';
    *json = (char *)rec;
  } else {
    free(rec);
  }
  return rc;
}

bool spool_next_checkpoint(spool *sp, spool_ckpt *out) {
  pthread_mutex_lock(&sp->mu);
  bool any = sp->index.n_ckpts > 0;
  if (any) {
    *out = sp->index.ckpts[0];
    out->path = strdup(sp->index.ckpts[0].path);
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

uint64_t spool_pending_final(spool *sp) {
  pthread_mutex_lock(&sp->mu);
  uint64_t seq = 0;
  for (size_t i = 0; i < sp->index.n_ckpts; i++)
    if (sp->index.ckpts[i].final && sp->index.ckpts[i].seq > seq)
      seq = sp->index.ckpts[i].seq;
  pthread_mutex_unlock(&sp->mu);
  return seq;
}

void spool_pending_counts(spool *sp, size_t *metrics, size_t *ckpts,
                          bool *final_pending) {
  pthread_mutex_lock(&sp->mu);
  bool fin = false;
  for (size_t i = 0; i < sp->index.n_ckpts; i++)
    fin |= sp->index.ckpts[i].final;
  if (metrics)
    *metrics = sp->index.n_epochs;
  if (ckpts)
    *ckpts = sp->index.n_ckpts;
  if (final_pending)
    *final_pending = fin;
  pthread_mutex_unlock(&sp->mu);
}

/* ------------------------------------------------------------ run.json */

chub_code spool_meta_set(spool *sp, const char *key, const char *value) {
  if (!sp)
    return CHUB_EINVAL;
  pthread_mutex_lock(&sp->mu);
  chub_code rc = run_meta_set(sp->dir, key, value);
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

char *spool_meta_get(spool *sp, const char *key) {
  if (!sp)
    return NULL;
  pthread_mutex_lock(&sp->mu);
  char *v = run_meta_get(sp->dir, key);
  pthread_mutex_unlock(&sp->mu);
  return v;
}

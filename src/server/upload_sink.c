/*
 * upload_sink.c - an upload's bytes hashed and written off the
 * connection's thread (see upload_sink.h).
 *
 * The caller fills staging buffer `cur`; a full one is handed over
 * (`handed` counts them) to two workers, one hashing and one writing,
 * each through the buffers in order (`done` counts each one's), so that
 * a buffer costs the longer of the hash and the write rather than both,
 * and buffer i % SINK_NBUF is free again once both are past it. The
 * caller waits only when every buffer is handed over and not yet through
 * both: the disk or the hash being slower than the network holds the
 * sender back, never memory.
 */
#include "upload_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <openssl/evp.h>

#define SINK_BUF (1u << 20) /* one staging buffer, one write */
#define SINK_NBUF 4
#define SINK_STAGING ((size_t)SINK_BUF * SINK_NBUF)
/* Write-behind: every SINK_FLUSH bytes written, the disk is asked to start
 * writing them, and the stretch before is waited for. The disk then works
 * while the body is still arriving, instead of all at once at the fsync
 * that commits the file, and the page cache holds at most two stretches
 * of the upload however large it is. */
#define SINK_FLUSH (8u << 20)
#define SINK_STACK (512u << 10)

static atomic_size_t sink_staged; /* staging bytes all sinks hold */

size_t upload_sink_staged(void) {
  return atomic_load(&sink_staged);
}

/* The two workers over the same buffers, each in order: one hashes, one
 * writes, so a buffer costs the longer of the two, not their sum. */
enum { SINK_HASH, SINK_DISK, SINK_WORKERS };

typedef struct sink_worker {
  struct upload_sink *sink;
  int role; /* SINK_HASH or SINK_DISK */
  pthread_t thread;
} sink_worker;

struct upload_sink {
  int fd;
  EVP_MD_CTX *md;            /* the hash worker's, or inline */
  uint64_t written, flushed; /* the disk worker's, or inline */
  int odirect; /* fd has O_DIRECT on (full buffers go past the cache) */
  /* The caller's alone. */
  unsigned char *mem; /* SINK_NBUF buffers, or NULL before the first put */
  int direct;         /* no staging (budget spent): hash and write inline */
  unsigned cur;       /* the buffer being filled */
  size_t fill;        /* bytes in it */
  int failed;         /* errno of a failed write, once the caller saw it */
  int started;        /* the workers run */
  sink_worker worker[SINK_WORKERS];
  /* Shared with the workers, under mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned handed;             /* buffers handed over so far */
  unsigned done[SINK_WORKERS]; /* buffers each worker is through with */
  size_t len[SINK_NBUF];
  int err;  /* errno of the first failed write, 0 while fine */
  int stop; /* end the workers; what is still handed over is dropped */
};

upload_sink *upload_sink_new(int fd) {
  upload_sink *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->fd = fd;
  s->md = EVP_MD_CTX_new();
  if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(s->md);
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  return s;
}

static void sink_write_behind(upload_sink *s) {
  if (s->odirect || s->written - s->flushed < SINK_FLUSH)
    return;
  off_t start = (off_t)s->flushed, len = (off_t)(s->written - s->flushed);
  sync_file_range(s->fd, start, len, SYNC_FILE_RANGE_WRITE);
  if (start >= (off_t)SINK_FLUSH)
    sync_file_range(s->fd, start - (off_t)SINK_FLUSH, (off_t)SINK_FLUSH,
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                        SYNC_FILE_RANGE_WAIT_AFTER);
  s->flushed = s->written;
}

/* O_DIRECT: full buffers go from the staging memory to the disk, without
 * the copy into the page cache that otherwise costs as much as the hash.
 * Only for aligned writes of whole blocks, and only on the local
 * filesystems known to do it well (a network filesystem would make each
 * write a synchronous round trip); anything else (the last part, another
 * filesystem, one that refuses) goes through the cache, and the flag is
 * off again before the caller gets the file back. */
#define SINK_ALIGN 4096
#define SINK_EXT4_MAGIC 0xEF53 /* ext2, ext3 and ext4 */
#define SINK_XFS_MAGIC 0x58465342

static int sink_local_disk(int fd) {
  struct statfs sf;
  return fstatfs(fd, &sf) == 0 &&
         (sf.f_type == SINK_EXT4_MAGIC || sf.f_type == SINK_XFS_MAGIC);
}

static void sink_odirect(upload_sink *s, int on) {
  if (on && !sink_local_disk(s->fd)) {
    s->odirect = 0;
    return;
  }
  int fl = fcntl(s->fd, F_GETFL);
  if (fl >= 0 &&
      fcntl(s->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) == 0)
    s->odirect = on;
  else
    s->odirect = 0;
}

/* Writes the cnt pieces of iov (changing it), in one system call while
 * the disk keeps up. 0, or the errno of the failed write. */
static int sink_diskv(upload_sink *s, struct iovec *iov, int cnt) {
  for (int i = 0; s->odirect && i < cnt; i++)
    if (iov[i].iov_len % SINK_ALIGN || (uintptr_t)iov[i].iov_base % SINK_ALIGN)
      sink_odirect(s, 0);
  if (s->odirect && s->written % SINK_ALIGN)
    sink_odirect(s, 0);
  while (cnt > 0) {
    ssize_t w = writev(s->fd, iov, cnt);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == EINVAL && s->odirect) {
      sink_odirect(s, 0);
      continue;
    }
    if (w <= 0)
      return w < 0 ? errno : ENOSPC;
    s->written += (uint64_t)w;
    size_t left = (size_t)w;
    while (cnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0) { /* part of a piece was written */
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  sink_write_behind(s);
  return 0;
}

static int sink_disk(upload_sink *s, const unsigned char *p, size_t n) {
  struct iovec iov = {(void *)p, n};
  return n ? sink_diskv(s, &iov, 1) : 0;
}

/* Hashes and writes n bytes on the caller's thread (no workers). */
static int sink_inline(upload_sink *s, const unsigned char *p, size_t n) {
  EVP_DigestUpdate(s->md, p, n);
  return sink_disk(s, p, n);
}

/* One worker's next run of buffers from buffer done: the hash worker
 * takes one, the disk worker every full one that is waiting (a larger
 * write while the disk is behind). How many, with their pieces in iov. */
static int sink_next(const upload_sink *s, int role, struct iovec *iov) {
  unsigned avail = s->handed - s->done[role];
  int k = 0;
  do {
    unsigned i = (s->done[role] + (unsigned)k) % SINK_NBUF;
    iov[k++] = (struct iovec){s->mem + (size_t)i * SINK_BUF, s->len[i]};
  } while (role == SINK_DISK && (unsigned)k < avail &&
           iov[k - 1].iov_len == SINK_BUF &&
           s->len[(s->done[role] + (unsigned)k) % SINK_NBUF] == SINK_BUF);
  return k;
}

static void *sink_main(void *arg) {
  sink_worker *w = arg;
  upload_sink *s = w->sink;
  /* For top -H and perf. */
  pthread_setname_np(pthread_self(),
                     w->role == SINK_HASH ? "chubd-hash" : "chubd-write");
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (s->done[w->role] == s->handed && !s->stop)
      pthread_cond_wait(&s->cv, &s->mu);
    if (s->stop)
      break;
    struct iovec iov[SINK_NBUF];
    int k = sink_next(s, w->role, iov);
    int skip = s->err != 0; /* after a failure buffers are only freed */
    pthread_mutex_unlock(&s->mu);
    int e = 0;
    if (skip)
      ;
    else if (w->role == SINK_HASH)
      EVP_DigestUpdate(s->md, iov[0].iov_base, iov[0].iov_len);
    else
      e = sink_diskv(s, iov, k);
    pthread_mutex_lock(&s->mu);
    if (e && !s->err)
      s->err = e;
    s->done[w->role] += (unsigned)k;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Buffers handed over that some worker is not through with yet. */
static unsigned sink_busy(const upload_sink *s) {
  unsigned a = s->handed - s->done[SINK_HASH],
           b = s->handed - s->done[SINK_DISK];
  return a > b ? a : b;
}

static int sink_fail(upload_sink *s, int e) {
  s->failed = e;
  errno = e;
  return -1;
}

/* The staging buffers, within the budget of all sinks; without them the
 * sink hashes and writes on the caller's thread. */
static void sink_stage(upload_sink *s) {
  size_t had = atomic_fetch_add(&sink_staged, SINK_STAGING);
  void *mem = NULL;
  if (had + SINK_STAGING <= UPLOAD_SINK_BUDGET &&
      posix_memalign(&mem, 4096, SINK_STAGING) == 0) {
    s->mem = mem;
    return;
  }
  atomic_fetch_sub(&sink_staged, SINK_STAGING);
  s->direct = 1;
}

static void sink_unstage(upload_sink *s) {
  if (!s->mem)
    return;
  free(s->mem);
  s->mem = NULL;
  atomic_fetch_sub(&sink_staged, SINK_STAGING);
}

/* Ends the workers: at once with stop, else once everything handed over
 * is hashed and written. */
static void sink_join(upload_sink *s, int stop) {
  if (!s->started)
    return;
  pthread_mutex_lock(&s->mu);
  while (!stop && sink_busy(s) > 0)
    pthread_cond_wait(&s->cv, &s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  for (int r = 0; r < s->started; r++)
    pthread_join(s->worker[r].thread, NULL);
  s->started = 0;
}

/* Starts both workers, or none. */
static int sink_start(upload_sink *s) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0)
    return 0;
  pthread_attr_setstacksize(&attr, SINK_STACK);
  if (s->written % SINK_ALIGN == 0)
    sink_odirect(s, 1);
  for (int r = 0; r < SINK_WORKERS; r++) {
    s->worker[r] = (sink_worker){.sink = s, .role = r};
    if (pthread_create(&s->worker[r].thread, &attr, sink_main, &s->worker[r]) !=
        0)
      break;
    s->started++;
  }
  pthread_attr_destroy(&attr);
  if (s->started == SINK_WORKERS)
    return 1;
  sink_join(s, 1); /* nothing handed over yet: nothing is dropped */
  pthread_mutex_lock(&s->mu);
  s->stop = 0;
  pthread_mutex_unlock(&s->mu);
  if (s->odirect)
    sink_odirect(s, 0);
  return 0;
}

/* Hands the full buffer to the workers (started the first time) and
 * waits for the next one to be free. 0, or -1 with errno. */
static int sink_hand(upload_sink *s) {
  if (!s->started && !sink_start(s)) {
    /* No workers: this buffer and everything after it inline. */
    int e = sink_inline(s, s->mem, s->fill);
    s->fill = 0;
    sink_unstage(s);
    s->direct = 1;
    return e ? sink_fail(s, e) : 0;
  }
  pthread_mutex_lock(&s->mu);
  s->len[s->cur] = s->fill;
  s->handed++;
  pthread_cond_broadcast(&s->cv);
  while (sink_busy(s) >= SINK_NBUF && !s->err)
    pthread_cond_wait(&s->cv, &s->mu);
  int e = s->err;
  pthread_mutex_unlock(&s->mu);
  s->cur = (s->cur + 1) % SINK_NBUF;
  s->fill = 0;
  return e ? sink_fail(s, e) : 0;
}

int upload_sink_put(upload_sink *s, const void *data, size_t n) {
  const unsigned char *p = data;
  if (s->failed)
    return sink_fail(s, s->failed);
  if (!s->mem && !s->direct)
    sink_stage(s);
  if (s->direct) {
    int e = sink_inline(s, p, n);
    return e ? sink_fail(s, e) : 0;
  }
  while (n > 0) {
    size_t k = SINK_BUF - s->fill < n ? SINK_BUF - s->fill : n;
    memcpy(s->mem + (size_t)s->cur * SINK_BUF + s->fill, p, k);
    s->fill += k;
    p += k;
    n -= k;
    if (s->fill == SINK_BUF && sink_hand(s) < 0)
      return -1;
    if (s->direct) /* the workers could not start */
      return upload_sink_put(s, p, n);
  }
  return 0;
}

int upload_sink_finish(upload_sink *s, unsigned char digest[32]) {
  if (!s->failed && s->mem && s->fill > 0) {
    if (s->started) {
      pthread_mutex_lock(&s->mu);
      s->len[s->cur] = s->fill;
      s->handed++;
      pthread_cond_broadcast(&s->cv);
      pthread_mutex_unlock(&s->mu);
    } else {
      int e = sink_inline(s, s->mem, s->fill); /* a small file */
      if (e)
        s->failed = e;
    }
    s->fill = 0;
  }
  sink_join(s, 0);
  if (s->odirect)
    sink_odirect(s, 0);
  if (!s->failed && s->err)
    s->failed = s->err;
  sink_unstage(s);
  if (s->failed)
    return sink_fail(s, s->failed);
  unsigned int len = 32;
  return EVP_DigestFinal_ex(s->md, digest, &len) == 1 ? 0 : sink_fail(s, EIO);
}

void upload_sink_free(upload_sink *s) {
  if (!s)
    return;
  sink_join(s, 1);
  if (s->odirect)
    sink_odirect(s, 0);
  sink_unstage(s);
  EVP_MD_CTX_free(s->md);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

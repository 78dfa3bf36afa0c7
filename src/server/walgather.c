/*
 * walgather.c - gathers the frames SQLite appends to its write-ahead log
 * into one write per commit (see walgather.h).
 */
#include "walgather.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

/* Writes larger than this go out as they come; a buffer never grows past
 * it (a metrics batch writes well under 100 KiB). */
#define WALGATHER_MAX (1024 * 1024)
/* The most passed to the default VFS in one write: it masks a write's
 * length to 17 bits (os_unix.c, seekAndWriteFd), so anything longer goes
 * in pieces of this size. */
#define WALGATHER_PIECE (64 * 1024)

typedef struct walgather_file {
  sqlite3_file base;
  sqlite3_file *real; /* the default VFS's file, in the same allocation */
  char *buf;          /* writes not yet passed on, starting at off */
  size_t len, cap;
  sqlite3_int64 off;
} walgather_file;

/* The real file sits after ours, aligned for any type. */
#define WALGATHER_HEAD                                                         \
  ((sizeof(walgather_file) + sizeof(max_align_t) - 1) / sizeof(max_align_t) *  \
   sizeof(max_align_t))

static sqlite3_vfs walgather_vfs;
static void (*walgather_synced)(double seconds);
static sqlite3_io_methods walgather_io;

static sqlite3_file *walgather_real(sqlite3_file *f) {
  return ((walgather_file *)f)->real;
}

/* Writes n bytes at off through the default VFS, in pieces it takes
 * whole; SQLITE_OK or the first write's error. */
static int walgather_pass(walgather_file *g, const char *p, size_t n,
                          sqlite3_int64 off) {
  int rc = SQLITE_OK;
  for (size_t done = 0; done < n && rc == SQLITE_OK;) {
    size_t k = n - done < WALGATHER_PIECE ? n - done : WALGATHER_PIECE;
    rc = g->real->pMethods->xWrite(g->real, p + done, (int)k,
                                   off + (sqlite3_int64)done);
    done += k;
  }
  return rc;
}

/* Passes the gathered writes on; SQLITE_OK or the write's error. */
static int walgather_flush(walgather_file *g) {
  int rc = walgather_pass(g, g->buf, g->len, g->off);
  g->len = 0;
  return rc;
}

static int walgather_close(sqlite3_file *f) {
  walgather_file *g = (walgather_file *)f;
  int rc = walgather_flush(g);
  int rc2 = g->real->pMethods->xClose(g->real);
  free(g->buf);
  g->buf = NULL;
  return rc != SQLITE_OK ? rc : rc2;
}

static int walgather_read(sqlite3_file *f, void *out, int amt,
                          sqlite3_int64 off) {
  int rc = walgather_flush((walgather_file *)f);
  return rc != SQLITE_OK ? rc
                         : walgather_real(f)->pMethods->xRead(walgather_real(f),
                                                              out, amt, off);
}

static int walgather_write(sqlite3_file *f, const void *data, int amt,
                           sqlite3_int64 off) {
  walgather_file *g = (walgather_file *)f;
  size_t n = (size_t)amt;
  if (g->len &&
      (off != g->off + (sqlite3_int64)g->len || g->len + n > WALGATHER_MAX)) {
    int rc = walgather_flush(g);
    if (rc != SQLITE_OK)
      return rc;
  }
  if (!g->len)
    g->off = off;
  if (g->len + n > g->cap) {
    size_t cap = g->cap ? g->cap : 64 * 1024;
    while (cap < g->len + n && cap < WALGATHER_MAX)
      cap *= 2;
    char *grown = cap >= g->len + n ? realloc(g->buf, cap) : NULL;
    if (!grown) { /* too large, or no memory: as it comes */
      int rc = walgather_flush(g);
      return rc != SQLITE_OK ? rc : walgather_pass(g, data, n, off);
    }
    g->buf = grown;
    g->cap = cap;
  }
  memcpy(g->buf + g->len, data, n);
  g->len += n;
  return SQLITE_OK;
}

static int walgather_truncate(sqlite3_file *f, sqlite3_int64 size) {
  int rc = walgather_flush((walgather_file *)f);
  return rc != SQLITE_OK
             ? rc
             : walgather_real(f)->pMethods->xTruncate(walgather_real(f), size);
}

static double walgather_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int walgather_sync(sqlite3_file *f, int flags) {
  int rc = walgather_flush((walgather_file *)f);
  if (rc != SQLITE_OK)
    return rc;
  double t0 = walgather_synced ? walgather_now() : 0;
  rc = walgather_real(f)->pMethods->xSync(walgather_real(f), flags);
  if (walgather_synced && rc == SQLITE_OK)
    walgather_synced(walgather_now() - t0);
  return rc;
}

static int walgather_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  int rc = walgather_flush((walgather_file *)f);
  return rc != SQLITE_OK
             ? rc
             : walgather_real(f)->pMethods->xFileSize(walgather_real(f), size);
}

static int walgather_lock(sqlite3_file *f, int level) {
  return walgather_real(f)->pMethods->xLock(walgather_real(f), level);
}

static int walgather_unlock(sqlite3_file *f, int level) {
  return walgather_real(f)->pMethods->xUnlock(walgather_real(f), level);
}

static int walgather_check_lock(sqlite3_file *f, int *out) {
  return walgather_real(f)->pMethods->xCheckReservedLock(walgather_real(f),
                                                         out);
}

static int walgather_file_control(sqlite3_file *f, int op, void *arg) {
  int rc = walgather_flush((walgather_file *)f);
  return rc != SQLITE_OK ? rc
                         : walgather_real(f)->pMethods->xFileControl(
                               walgather_real(f), op, arg);
}

static int walgather_sector_size(sqlite3_file *f) {
  return walgather_real(f)->pMethods->xSectorSize(walgather_real(f));
}

static int walgather_device(sqlite3_file *f) {
  return walgather_real(f)->pMethods->xDeviceCharacteristics(walgather_real(f));
}

/* A log file has no shared memory and is never mapped (the database file
 * is); these pass on what the default VFS would say, should SQLite ask,
 * and what a file of an older kind (iVersion) says. */
static const sqlite3_io_methods *walgather_io_of(sqlite3_file *f, int v) {
  const sqlite3_io_methods *m = walgather_real(f)->pMethods;
  return m->iVersion >= v ? m : NULL;
}

static int walgather_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                             void volatile **pp) {
  const sqlite3_io_methods *m = walgather_io_of(f, 2);
  return m ? m->xShmMap(walgather_real(f), pg, pgsz, extend, pp)
           : SQLITE_IOERR_SHMMAP;
}

static int walgather_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  const sqlite3_io_methods *m = walgather_io_of(f, 2);
  return m ? m->xShmLock(walgather_real(f), offset, n, flags)
           : SQLITE_IOERR_SHMLOCK;
}

static void walgather_shm_barrier(sqlite3_file *f) {
  const sqlite3_io_methods *m = walgather_io_of(f, 2);
  if (m)
    m->xShmBarrier(walgather_real(f));
}

static int walgather_shm_unmap(sqlite3_file *f, int del) {
  const sqlite3_io_methods *m = walgather_io_of(f, 2);
  return m ? m->xShmUnmap(walgather_real(f), del) : SQLITE_OK;
}

static int walgather_fetch(sqlite3_file *f, sqlite3_int64 off, int amt,
                           void **pp) {
  const sqlite3_io_methods *m = walgather_io_of(f, 3);
  int rc = walgather_flush((walgather_file *)f);
  *pp = NULL; /* no mapping: SQLite reads instead */
  if (rc != SQLITE_OK || !m)
    return rc;
  return m->xFetch(walgather_real(f), off, amt, pp);
}

static int walgather_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
  const sqlite3_io_methods *m = walgather_io_of(f, 3);
  return m ? m->xUnfetch(walgather_real(f), off, p) : SQLITE_OK;
}

static int walgather_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                          int flags, int *out_flags) {
  sqlite3_vfs *real = vfs->pAppData;
  if (!(flags & SQLITE_OPEN_WAL))
    return real->xOpen(real, name, f, flags, out_flags);
  walgather_file *g = (walgather_file *)f;
  memset(g, 0, sizeof *g);
  g->real = (sqlite3_file *)((char *)f + WALGATHER_HEAD);
  int rc = real->xOpen(real, name, g->real, flags, out_flags);
  if (rc != SQLITE_OK)
    return rc; /* base.pMethods stays NULL: SQLite will not close it */
  g->base.pMethods = &walgather_io;
  return SQLITE_OK;
}

static int walgather_rc = SQLITE_OK;

static void walgather_register(void) {
  sqlite3_vfs *real = sqlite3_vfs_find(NULL);
  if (!real) {
    walgather_rc = SQLITE_ERROR;
    return;
  }
  walgather_io = (sqlite3_io_methods){
      .iVersion = 3,
      .xClose = walgather_close,
      .xRead = walgather_read,
      .xWrite = walgather_write,
      .xTruncate = walgather_truncate,
      .xSync = walgather_sync,
      .xFileSize = walgather_file_size,
      .xLock = walgather_lock,
      .xUnlock = walgather_unlock,
      .xCheckReservedLock = walgather_check_lock,
      .xFileControl = walgather_file_control,
      .xSectorSize = walgather_sector_size,
      .xDeviceCharacteristics = walgather_device,
      .xShmMap = walgather_shm_map,
      .xShmLock = walgather_shm_lock,
      .xShmBarrier = walgather_shm_barrier,
      .xShmUnmap = walgather_shm_unmap,
      .xFetch = walgather_fetch,
      .xUnfetch = walgather_unfetch,
  };
  walgather_vfs = *real;
  walgather_vfs.zName = WALGATHER_VFS;
  walgather_vfs.pNext = NULL;
  walgather_vfs.pAppData = real;
  walgather_vfs.szOsFile = (int)WALGATHER_HEAD + real->szOsFile;
  walgather_vfs.xOpen = walgather_open;
  walgather_rc = sqlite3_vfs_register(&walgather_vfs, 0);
}

int walgather_init(void (*synced)(double seconds)) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&mu);
  if (!walgather_synced)
    walgather_synced = synced;
  pthread_mutex_unlock(&mu);
  pthread_once(&once, walgather_register);
  return walgather_rc;
}

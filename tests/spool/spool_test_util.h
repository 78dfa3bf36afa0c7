/*
 * spool_test_util.h - what the spool tests share: a fresh temporary run
 * directory, a log sink that keeps the lines for assertions, and helpers to
 * copy and cut files. Header-only so each test program stays one file.
 */
#ifndef SPOOL_TEST_UTIL_H
#define SPOOL_TEST_UTIL_H

#include "chub.h"
#include "spool.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Lines chub logged at WARN or above since the last spool_test_log_reset,
 * joined by newlines (bounded; later lines are dropped). */
typedef struct spool_test_log {
  pthread_mutex_t mu;
  char text[16384];
  size_t len;
  int warnings;
} spool_test_log;

static inline void spool_test_log_sink(chub_log_level level, const char *line,
                                       void *user) {
  spool_test_log *l = user;
  if (level < CHUB_LOG_WARN)
    return;
  pthread_mutex_lock(&l->mu);
  l->warnings++;
  int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s\n", line);
  if (n > 0 && l->len + (size_t)n < sizeof l->text)
    l->len += (size_t)n;
  pthread_mutex_unlock(&l->mu);
}

static inline void spool_test_log_reset(spool_test_log *l) {
  pthread_mutex_lock(&l->mu);
  l->text[0] = '\0';
  l->len = 0;
  l->warnings = 0;
  pthread_mutex_unlock(&l->mu);
}

/* A new empty directory under $TMPDIR; the path is malloc'd. */
static inline char *spool_test_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[512];
  snprintf(tmpl, sizeof tmpl, "%s/chub-spool-XXXXXX",
           base && *base ? base : "/tmp");
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

static inline void spool_test_rmrf(const char *dir) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

static inline long long spool_test_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Reads a whole (small) file; malloc'd, *len set. */
static inline unsigned char *spool_test_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static inline int spool_test_write(const char *path, const unsigned char *buf,
                                   size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(buf, 1, len, f);
  return fclose(f) == 0 && w == len ? 0 : -1;
}

/* The epoch's JSON as the tests write it: distinct per epoch and version. */
static inline void spool_test_json(char *buf, size_t len, int epoch,
                                   int version) {
  snprintf(buf, len,
           "{\"train/loss\": %d.%03d, \"metrics/accuracy_top1\": 0.%04d, "
           "\"version\": %d}",
           epoch, version, epoch * 7 % 10000, version);
}

#endif

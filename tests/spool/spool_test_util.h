/*
 * spool_test_util.h - what the spool tests share: helpers to copy and cut
 * files and the epochs' JSON. (Temporary directories and the captured log
 * come from tests/support: th_tmpdir.h and th_log.h, included here.)
 * Header-only so each test program stays one file.
 */
#ifndef SPOOL_TEST_UTIL_H
#define SPOOL_TEST_UTIL_H

#include "chub.h"
#include "spool.h"
#include "th_log.h"
#include "th_tmpdir.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

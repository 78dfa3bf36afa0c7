/*
 * th_tmpdir.c - the temporary directories of th_tmpdir.h.
 *
 * nftw with FTW_DEPTH | FTW_PHYS removes children before their directory
 * and a symlink as a link, not as what it points to. nftw passes no user
 * data to its callback, so whether an entry failed travels in a
 * thread-local flag.
 */
#include "th_tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local int th_rmtree_failed;

int th_tmpdir_make(char *out, size_t len, const char *prefix) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base)
    base = "/tmp";
  int n = snprintf(out, len, "%s/%s-XXXXXX", base, prefix);
  if (n < 0 || (size_t)n >= len) {
    fprintf(stderr, "th_tmpdir: %s/%s-XXXXXX does not fit in %zu bytes\n", base,
            prefix, len);
    if (len)
      out[0] = '\0';
    return -1;
  }
  if (!mkdtemp(out)) {
    fprintf(stderr, "th_tmpdir: mkdtemp %s: %s\n", out, strerror(errno));
    return -1;
  }
  return 0;
}

char *th_tmpdir_new(const char *prefix) {
  char path[4096];
  if (th_tmpdir_make(path, sizeof path, prefix) != 0)
    return NULL;
  return strdup(path);
}

static int th_rmtree_entry(const char *path, const struct stat *sb, int type,
                           struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT) {
    fprintf(stderr, "th_tmpdir: cannot remove %s: %s\n", path, strerror(errno));
    th_rmtree_failed = 1;
  }
  return 0;
}

int th_rmtree(const char *path) {
  if (!path)
    return 0;
  th_rmtree_failed = 0;
  if (nftw(path, th_rmtree_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    if (errno == ENOENT)
      return 0;
    fprintf(stderr, "th_tmpdir: cannot walk %s: %s\n", path, strerror(errno));
    return -1;
  }
  return th_rmtree_failed ? -1 : 0;
}

int th_tmpdir_remove(const char *path) {
  if (!path)
    return 0;
  if (getenv("CHUB_KEEP_TMP")) {
    fprintf(stderr, "kept %s\n", path);
    return 0;
  }
  return th_rmtree(path);
}

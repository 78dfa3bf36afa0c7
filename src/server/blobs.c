/*
 * blobs.c - where weights live on disk, and how they get there atomically.
 *
 * An upload streams into DATA/tmp/upload-XXXXXX; only when every byte has
 * arrived and its SHA-256 is known (and matches what the client announced)
 * is the file fsync'ed and renamed to DATA/blobs/{sha256}, then the
 * directory fsync'ed. rename() within one file system is atomic, so a
 * reader sees the whole file or nothing, and a crash leaves at worst a
 * temporary file, which the next start removes. Files are named by their
 * content hash, so two models uploading the same weights share one file.
 */
#include "blobs.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int blobs_mkdir(const char *path, char *err, size_t errn) {
  if (mkdir(path, 0700) == 0 || errno == EEXIST)
    return 0;
  snprintf(err, errn, "cannot create directory %s: %s", path, strerror(errno));
  return -1;
}

static int blobs_mkdir_p(const char *dir, char *err, size_t errn) {
  char buf[4096];
  int w = snprintf(buf, sizeof buf, "%s", dir);
  if (w < 0 || (size_t)w >= sizeof buf) {
    snprintf(err, errn, "path too long: %s", dir);
    return -1;
  }
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (blobs_mkdir(buf, err, errn) < 0)
      return -1;
    *p = '/';
  }
  return blobs_mkdir(buf, err, errn);
}

int blobs_prepare(const char *data_dir, int clean_tmp, char *err, size_t errn) {
  char path[4200];
  if (blobs_mkdir_p(data_dir, err, errn) < 0)
    return -1;
  snprintf(path, sizeof path, "%s/blobs", data_dir);
  if (blobs_mkdir(path, err, errn) < 0)
    return -1;
  snprintf(path, sizeof path, "%s/tmp", data_dir);
  if (blobs_mkdir(path, err, errn) < 0)
    return -1;
  if (!clean_tmp)
    return 0;
  DIR *d = opendir(path);
  if (!d) {
    snprintf(err, errn, "cannot read directory %s: %s", path, strerror(errno));
    return -1;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "upload-", 7) != 0)
      continue;
    /* relative to the directory: no path to build or truncate */
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
  return 0;
}

int blobs_tmp_open(const char *data_dir, char *path, size_t pathn) {
  int w = snprintf(path, pathn, "%s/tmp/upload-XXXXXX", data_dir);
  if (w < 0 || (size_t)w >= pathn)
    return -1;
  return mkostemp(path, O_CLOEXEC);
}

void blobs_path(const char *data_dir, const char *sha256, char *out, size_t n) {
  snprintf(out, n, "%s/blobs/%s", data_dir, sha256);
}

int blobs_commit(const char *data_dir, int fd, const char *tmp_path,
                 const char *sha256) {
  char dst[4200], dir[4200];
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (close(fd) != 0)
    return -1;
  blobs_path(data_dir, sha256, dst, sizeof dst);
  if (rename(tmp_path, dst) != 0)
    return -1;
  snprintf(dir, sizeof dir, "%s/blobs", data_dir);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd); /* the rename itself survives a power cut */
    close(dfd);
  }
  return 0;
}

void blobs_drop_unused(const char *data_dir, store *st, const char *sha256) {
  int in_use = 1;
  if (st->ops->blob_in_use(st, sha256, &in_use) != STORE_OK || in_use)
    return;
  char path[4200];
  blobs_path(data_dir, sha256, path, sizeof path);
  unlink(path);
}

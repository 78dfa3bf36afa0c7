/*
 * blobs.c - where weights and datasets live on disk, and how they get
 * there and leave atomically, with one chubd or several on one database
 * sharing BLOBS (possibly over a network filesystem).
 *
 * Arriving: an upload streams into BLOBS/.incoming/PID@HOST.XXXXXX; only
 * when every byte has arrived and its SHA-256 is known (and matches what
 * the client announced) is the file fsync'ed and hard-linked as
 * BLOBS/{sha256}, then the directory fsync'ed. A link is atomic and never
 * replaces: a reader sees the whole file or nothing, two instances storing
 * the same bytes at once both succeed with one file, and a crash leaves at
 * worst a temporary, which the next start on that host (or chubd gc)
 * removes. Files are named by their content hash, so two models uploading
 * the same weights share one file.
 *
 * Leaving: a blob no row names any more is removed, but instance A may be
 * removing blob X just as instance B stores X again (B linked it, then
 * records its row). So:
 *   A: if no row names X: rename X to a grave in .incoming (X is gone for
 *      everyone at once), look again, and if a row names X now, link it
 *      back; else unlink the grave.
 *   B: link X, record the row, then (blobs_settle) if X is missing, link
 *      it again from B's temporary, which B kept until now.
 * Whatever the interleaving, a row that names X ends with X on disk: A's
 * second look comes after its rename, so B's row is either seen (A puts X
 * back) or recorded later, and then B's check, after its row, sees X gone
 * and puts it back itself.
 */
#include "blobs.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOBS_INCOMING ".incoming"

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

/* This machine's name, for the temporaries' names ("localhost" if it has
 * none). */
static void blobs_host(char *out, size_t n) {
  if (gethostname(out, n) != 0 || !out[0])
    snprintf(out, n, "localhost");
  out[n - 1] = '\0';
  for (char *p = out; *p; p++)
    if (*p == '/' || *p == '@')
      *p = '_';
}

/* Whether temporary `name` (PID@HOST.XXXXXX) was left by a process of
 * this host that no longer runs. */
static int blobs_orphan(const char *name, const char *host) {
  char *end;
  long pid = strtol(name, &end, 10);
  if (end == name || *end != '@' || pid <= 0)
    return 0;
  const char *h = end + 1, *dot = strrchr(h, '.');
  if (!dot || (size_t)(dot - h) != strlen(host) ||
      strncmp(h, host, strlen(host)) != 0)
    return 0;
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int blobs_prepare(const char *data_dir, const char *blobs_dir, int clean,
                  char *err, size_t errn) {
  char path[4200];
  if (blobs_mkdir_p(data_dir, err, errn) < 0 ||
      blobs_mkdir_p(blobs_dir, err, errn) < 0)
    return -1;
  snprintf(path, sizeof path, "%s/" BLOBS_INCOMING, blobs_dir);
  if (blobs_mkdir(path, err, errn) < 0)
    return -1;
  if (!clean)
    return 0;
  char host[256];
  blobs_host(host, sizeof host);
  DIR *d = opendir(path);
  if (!d) {
    snprintf(err, errn, "cannot read directory %s: %s", path, strerror(errno));
    return -1;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (blobs_orphan(e->d_name, host))
      unlinkat(dirfd(d), e->d_name, 0); /* relative: no path to build */
  closedir(d);
  /* Uploads of versions that kept them under DATA/tmp. */
  snprintf(path, sizeof path, "%s/tmp", data_dir);
  if ((d = opendir(path)) != NULL) {
    while ((e = readdir(d)) != NULL)
      if (strncmp(e->d_name, "upload-", 7) == 0)
        unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
  }
  return 0;
}

int blobs_tmp_open(const char *blobs_dir, char *path, size_t pathn) {
  char host[200];
  blobs_host(host, sizeof host);
  int w = snprintf(path, pathn, "%s/" BLOBS_INCOMING "/%ld@%s.XXXXXX",
                   blobs_dir, (long)getpid(), host);
  if (w < 0 || (size_t)w >= pathn)
    return -1;
  return mkostemp(path, O_CLOEXEC);
}

void blobs_path(const char *blobs_dir, const char *sha256, char *out,
                size_t n) {
  snprintf(out, n, "%s/%s", blobs_dir, sha256);
}

static void blobs_sync_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd); /* the link or rename itself survives a power cut */
    close(dfd);
  }
}

int blobs_seal(int fd) {
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return close(fd);
}

int blobs_commit(const char *blobs_dir, const char *tmp_path,
                 const char *sha256) {
  char dst[4200];
  blobs_path(blobs_dir, sha256, dst, sizeof dst);
  if (link(tmp_path, dst) != 0 && errno != EEXIST)
    return -1;
  blobs_sync_dir(blobs_dir);
  return 0;
}

void blobs_settle(const char *blobs_dir, const char *tmp_path,
                  const char *sha256) {
  char dst[4200];
  blobs_path(blobs_dir, sha256, dst, sizeof dst);
  if (access(dst, F_OK) != 0 && errno == ENOENT) {
    if (link(tmp_path, dst) != 0 && errno != EEXIST)
      fprintf(stderr, "chubd: cannot restore blob %s from %s: %s\n", dst,
              tmp_path, strerror(errno));
    else
      blobs_sync_dir(blobs_dir);
  }
  unlink(tmp_path);
}

/* 1 when a row names the blob, 0 when none does, -1 on a store error
 * (then the blob is kept). */
static int blobs_in_use(struct store *st, const char *sha256) {
  int in_use = 1;
  if (st->ops->blob_in_use(st, sha256, &in_use) != STORE_OK)
    return -1;
  return in_use != 0;
}

int blobs_drop_unused(const char *blobs_dir, struct store *st,
                      const char *sha256) {
  if (blobs_in_use(st, sha256) != 0)
    return 0;
  char path[4200], grave[4300], host[200];
  blobs_path(blobs_dir, sha256, path, sizeof path);
  blobs_host(host, sizeof host);
  snprintf(grave, sizeof grave, "%s/" BLOBS_INCOMING "/%ld@%s.gone-%.16s",
           blobs_dir, (long)getpid(), host, sha256);
  if (rename(path, grave) != 0)
    return errno == ENOENT ? 0 : -1;
  if (blobs_in_use(st, sha256) != 0) {
    /* Stored again meanwhile (or the store cannot say): put it back. */
    if (link(grave, path) != 0 && errno != EEXIST) {
      fprintf(stderr, "chubd: cannot put blob %s back from %s: %s\n", path,
              grave, strerror(errno));
      return -1;
    }
    unlink(grave);
    return 0;
  }
  unlink(grave);
  blobs_sync_dir(blobs_dir);
  return 1;
}

static int blobs_is_sha(const char *name) {
  size_t i = 0;
  for (; name[i]; i++)
    if (!((name[i] >= '0' && name[i] <= '9') ||
          (name[i] >= 'a' && name[i] <= 'f')))
      return 0;
  return i == 64;
}

int blobs_gc(const char *blobs_dir, struct store *st, double stale_s,
             int dry_run, void *out) {
  FILE *fp = out;
  DIR *d = opendir(blobs_dir);
  if (!d) {
    fprintf(stderr, "chubd: cannot read %s: %s\n", blobs_dir, strerror(errno));
    return 1;
  }
  long kept = 0, removed = 0, errors = 0;
  long long freed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!blobs_is_sha(e->d_name))
      continue;
    struct stat sb;
    if (fstatat(dirfd(d), e->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
      continue;
    int use = blobs_in_use(st, e->d_name);
    if (use != 0) {
      kept++;
      errors += use < 0;
      continue;
    }
    int r = dry_run ? 1 : blobs_drop_unused(blobs_dir, st, e->d_name);
    if (r == 1) {
      removed++;
      freed += (long long)sb.st_size;
      fprintf(fp, "%s %s (%lld bytes)\n", dry_run ? "would remove" : "removed",
              e->d_name, (long long)sb.st_size);
    } else {
      kept += r == 0;
      errors += r < 0;
    }
  }
  closedir(d);
  /* Temporaries nobody wrote to for stale_s: an upload that stalls is cut
   * by --idle-timeout long before; a kill or a crash leaves these. */
  char inc[4200];
  snprintf(inc, sizeof inc, "%s/" BLOBS_INCOMING, blobs_dir);
  long stale = 0;
  time_t now = time(NULL);
  if ((d = opendir(inc)) != NULL) {
    while ((e = readdir(d)) != NULL) {
      struct stat sb;
      if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &sb, 0) != 0 ||
          !S_ISREG(sb.st_mode) || difftime(now, sb.st_mtime) < stale_s)
        continue;
      if (dry_run || unlinkat(dirfd(d), e->d_name, 0) == 0) {
        stale++;
        fprintf(fp, "%s temporary %s\n", dry_run ? "would remove" : "removed",
                e->d_name);
      }
    }
    closedir(d);
  }
  fprintf(fp,
          "gc: %ld blob(s) in use kept, %ld unused %s (%lld bytes), %ld stale "
          "temporar%s %s%s\n",
          kept, removed, dry_run ? "would be removed" : "removed", freed, stale,
          stale == 1 ? "y" : "ies", dry_run ? "would be removed" : "removed",
          errors ? "; some could not be checked (see above)" : "");
  return errors ? 1 : 0;
}

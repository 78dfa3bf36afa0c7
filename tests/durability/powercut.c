/*
 * powercut.c - an LD_PRELOAD library that keeps, beside a directory, what
 * a power cut would leave of it: each file as it was at its last fsync,
 * under the names its directory held at its last fsync.
 *
 *   LD_PRELOAD=libpowercut.so POWERCUT_DIR=/abs/data POWERCUT_IMAGE=/abs/img
 *
 * The model is the one POSIX promises and nothing kinder: a write that was
 * not fsynced (fsync or fdatasync of the file) is lost; a name created,
 * renamed or removed is lost unless the directory holding it was fsynced
 * afterwards (a file's own fsync also keeps its current name, as ext4's
 * journal does in practice, so a program is not blamed for that). The
 * files that exist when the program starts are the starting image.
 *
 * The image is IMAGE/manifest (lines "inode<TAB>relative path", the names
 * a power cut would leave) and IMAGE/ino-N (the content inode N had at its
 * last fsync), rewritten at every fsync so that it is complete whenever
 * the process is killed. powercut_restore() (powercut_restore.c) lays it
 * out as a directory again. The -shm file of SQLite is memory, not disk,
 * and is never part of an image.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PC_MAX 4096

typedef struct pc_name {
  char rel[PATH_MAX];
  unsigned long ino;
} pc_name;

static struct {
  pthread_mutex_t mu;
  int on;
  char dir[PATH_MAX], image[PATH_MAX];
  size_t dirlen;
  pc_name names[PC_MAX]; /* the durable names */
  size_t n;
  int (*real_fsync)(int);
  int (*real_fdatasync)(int);
} pc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int pc_is_shm(const char *rel) {
  size_t n = strlen(rel);
  return n > 4 && strcmp(rel + n - 4, "-shm") == 0;
}

/* Copies the file at `path` as the content of inode `ino` in the image. */
static void pc_keep_content(const char *path, unsigned long ino) {
  char dst[PATH_MAX + 32], tmp[PATH_MAX + 40];
  snprintf(dst, sizeof dst, "%s/ino-%lu", pc.image, ino);
  snprintf(tmp, sizeof tmp, "%s.tmp", dst);
  int in = open(path, O_RDONLY | O_CLOEXEC);
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char buf[65536];
  ssize_t r;
  while (in >= 0 && out >= 0 && (r = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)r) != r)
      break;
  if (in >= 0)
    close(in);
  if (out >= 0) {
    close(out);
    rename(tmp, dst);
  }
}

static void pc_write_manifest(void) {
  char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
  snprintf(path, sizeof path, "%s/manifest", pc.image);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return;
  for (size_t i = 0; i < pc.n; i++)
    fprintf(f, "%lu\t%s\n", pc.names[i].ino, pc.names[i].rel);
  fclose(f);
  rename(tmp, path);
}

static pc_name *pc_find(const char *rel) {
  for (size_t i = 0; i < pc.n; i++)
    if (strcmp(pc.names[i].rel, rel) == 0)
      return &pc.names[i];
  return NULL;
}

static void pc_set(const char *rel, unsigned long ino) {
  pc_name *e = pc_find(rel);
  if (!e && pc.n < PC_MAX)
    e = &pc.names[pc.n++];
  if (!e)
    return;
  snprintf(e->rel, sizeof e->rel, "%s", rel);
  e->ino = ino;
}

/* The directory `rel` (relative, "" for the top) was fsynced: its durable
 * entries become exactly its entries now (files only; subdirectories are
 * kept as they are). */
static void pc_sync_dir(const char *rel) {
  char abs[PATH_MAX * 2];
  snprintf(abs, sizeof abs, "%s%s%s", pc.dir, *rel ? "/" : "", rel);
  size_t rl = strlen(rel);
  /* Drop the names of files directly in this directory... */
  for (size_t i = 0; i < pc.n;) {
    const char *r = pc.names[i].rel;
    int inside = rl ? strncmp(r, rel, rl) == 0 && r[rl] == '/' &&
                          !strchr(r + rl + 1, '/')
                    : !strchr(r, '/');
    if (inside)
      pc.names[i] = pc.names[--pc.n];
    else
      i++;
  }
  /* ...and take the ones it holds now, each with its current inode. */
  DIR *d = opendir(abs);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char child[PATH_MAX * 3], crel[PATH_MAX * 3];
    snprintf(child, sizeof child, "%s/%s", abs, e->d_name);
    snprintf(crel, sizeof crel, "%s%s%s", rel, rl ? "/" : "", e->d_name);
    struct stat sb;
    if (lstat(child, &sb) != 0 || !S_ISREG(sb.st_mode) || pc_is_shm(crel))
      continue;
    pc_set(crel, (unsigned long)sb.st_ino);
  }
  if (d)
    closedir(d);
}

/* After a successful fsync of fd: the file's content (or a directory's
 * entries) are durable now. */
static void pc_synced(int fd) {
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0)
    return;
  path[n] = '\0';
  if (strncmp(path, pc.dir, pc.dirlen) != 0 ||
      (path[pc.dirlen] != '/' && path[pc.dirlen] != '\0'))
    return;
  const char *rel = path[pc.dirlen] == '/' ? path + pc.dirlen + 1 : "";
  struct stat sb;
  if (fstat(fd, &sb) != 0)
    return;
  pthread_mutex_lock(&pc.mu);
  if (S_ISDIR(sb.st_mode)) {
    pc_sync_dir(rel);
  } else if (S_ISREG(sb.st_mode) && !pc_is_shm(rel)) {
    pc_keep_content(path, (unsigned long)sb.st_ino);
    if (!pc_find(rel))
      pc_set(rel, (unsigned long)sb.st_ino);
  }
  pc_write_manifest();
  pthread_mutex_unlock(&pc.mu);
}

/* The starting image: every file under the directory as it is. */
static void pc_walk(const char *rel) {
  char abs[PATH_MAX * 2];
  snprintf(abs, sizeof abs, "%s%s%s", pc.dir, *rel ? "/" : "", rel);
  DIR *d = opendir(abs);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char child[PATH_MAX * 3], crel[PATH_MAX * 3];
    snprintf(child, sizeof child, "%s/%s", abs, e->d_name);
    snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
    struct stat sb;
    if (lstat(child, &sb) != 0)
      continue;
    if (S_ISDIR(sb.st_mode)) {
      pc_walk(crel);
    } else if (S_ISREG(sb.st_mode) && !pc_is_shm(crel)) {
      pc_keep_content(child, (unsigned long)sb.st_ino);
      pc_set(crel, (unsigned long)sb.st_ino);
    }
  }
  if (d)
    closedir(d);
}

__attribute__((constructor)) static void pc_init(void) {
  /* POSIX dlsym hands functions back as void *: copied, not cast. */
  void *f = dlsym(RTLD_NEXT, "fsync"), *fd = dlsym(RTLD_NEXT, "fdatasync");
  memcpy(&pc.real_fsync, &f, sizeof f);
  memcpy(&pc.real_fdatasync, &fd, sizeof fd);
  const char *dir = getenv("POWERCUT_DIR"), *image = getenv("POWERCUT_IMAGE");
  if (!dir || !image || dir[0] != '/' || image[0] != '/')
    return;
  snprintf(pc.dir, sizeof pc.dir, "%s", dir);
  pc.dirlen = strlen(pc.dir);
  while (pc.dirlen > 1 && pc.dir[pc.dirlen - 1] == '/')
    pc.dir[--pc.dirlen] = '\0';
  snprintf(pc.image, sizeof pc.image, "%s", image);
  mkdir(pc.image, 0700);
  pc_walk("");
  pc_write_manifest();
  pc.on = 1;
}

int fsync(int fd) {
  int r = pc.real_fsync ? pc.real_fsync(fd) : -1;
  if (r == 0 && pc.on)
    pc_synced(fd);
  return r;
}

int fdatasync(int fd) {
  int r = pc.real_fdatasync ? pc.real_fdatasync(fd) : -1;
  if (r == 0 && pc.on)
    pc_synced(fd);
  return r;
}

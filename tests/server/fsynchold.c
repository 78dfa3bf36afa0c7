/*
 * fsynchold.c - an LD_PRELOAD library that holds the fsync of large files
 * until a test lets it go, so that the test sees what a server does while
 * one file's fsync is slow (a large upload on a slow disk or a network
 * filesystem).
 *
 *   LD_PRELOAD=libfsynchold.so FSYNCHOLD_MATCH=/.incoming/
 *   FSYNCHOLD_MIN=BYTES FSYNCHOLD_GATE=/abs/dir
 *
 * An fsync() or fdatasync() of a regular file of at least FSYNCHOLD_MIN
 * bytes whose path contains FSYNCHOLD_MATCH first creates GATE/held, then
 * waits until GATE/release exists (60 s at most), then syncs. Every other
 * call, and every call while a variable is unset, is passed on at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FSYNCHOLD_WAIT_MS 60000

/* Whether fd is a file the test wants held. */
static int fsynchold_wanted(int fd) {
  const char *match = getenv("FSYNCHOLD_MATCH");
  const char *min = getenv("FSYNCHOLD_MIN");
  const char *gate = getenv("FSYNCHOLD_GATE");
  struct stat st;
  if (!match || !*match || !min || !gate || !*gate || fstat(fd, &st) != 0 ||
      !S_ISREG(st.st_mode) || st.st_size < atoll(min))
    return 0;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0)
    return 0;
  path[n] = '\0';
  return strstr(path, match) != NULL;
}

/* Says the sync is held, then waits for the test's release. */
static void fsynchold_wait(void) {
  const char *gate = getenv("FSYNCHOLD_GATE");
  char held[PATH_MAX], release[PATH_MAX];
  snprintf(held, sizeof held, "%s/held", gate);
  snprintf(release, sizeof release, "%s/release", gate);
  int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    close(fd);
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (int waited = 0; waited < FSYNCHOLD_WAIT_MS && access(release, F_OK) != 0;
       waited += 10)
    nanosleep(&tick, NULL);
}

static int (*fsynchold_fsync)(int), (*fsynchold_fdatasync)(int);

__attribute__((constructor)) static void fsynchold_init(void) {
  /* POSIX dlsym hands functions back as void *: copied, not cast. */
  void *f = dlsym(RTLD_NEXT, "fsync"), *fd = dlsym(RTLD_NEXT, "fdatasync");
  memcpy(&fsynchold_fsync, &f, sizeof f);
  memcpy(&fsynchold_fdatasync, &fd, sizeof fd);
}

int fsync(int fd) {
  if (fsynchold_wanted(fd))
    fsynchold_wait();
  return fsynchold_fsync(fd);
}

int fdatasync(int fd) {
  if (fsynchold_wanted(fd))
    fsynchold_wait();
  return fsynchold_fdatasync(fd);
}

/*
 * bench_fsync.c - how long the disk takes to make one small write
 * durable: the wait every power-loss-safe acknowledgement pays.
 *
 *   bench_fsync DIR [COUNT]
 *
 * Writes COUNT (default 400, at most 100000) 4 KiB blocks in turn over a
 * 256 KiB file made and synced beforehand in DIR, each followed by
 * fdatasync(), as a SQLite commit in WAL mode with synchronous=FULL
 * appends its frames to a WAL that is reused after each checkpoint and
 * syncs them. Prints the median and p99 of one write + fdatasync, and
 * removes the file. Asserts nothing.
 */
#include "../bench_clock.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096
#define BLOCKS 64

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: bench_fsync DIR [COUNT]\n");
    return 2;
  }
  long count = argc == 3 ? strtol(argv[2], NULL, 10) : 400;
  if (count < 1 || count > 100000) {
    fprintf(stderr, "bench_fsync: COUNT must be 1 to 100000, not %s\n",
            argv[2]);
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/bench-fsync.%ld", argv[1], (long)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    perror(path);
    return 1;
  }
  static char block[BLOCK];
  memset(block, 'w', sizeof block);
  double *t = malloc((size_t)count * sizeof *t);
  int ok = t != NULL;
  for (int i = 0; ok && i < BLOCKS; i++)
    ok = pwrite(fd, block, BLOCK, (off_t)i * BLOCK) == BLOCK;
  ok = ok && fsync(fd) == 0;
  for (long i = 0; ok && i < count; i++) {
    block[0] = (char)i;
    double t0 = bench_now_us();
    ok = pwrite(fd, block, BLOCK, (off_t)(i % BLOCKS) * BLOCK) == BLOCK &&
         fdatasync(fd) == 0;
    t[i] = bench_now_us() - t0;
  }
  if (!ok)
    perror("bench_fsync: write or fdatasync");
  close(fd);
  unlink(path);
  if (!ok) {
    free(t);
    return 1;
  }
  qsort(t, (size_t)count, sizeof *t, bench_cmp);
  printf("disk: 4 KiB write + fdatasync in the data directory, %ld times: "
         "p50 %.0f us, p99 %.0f us\n",
         count, t[count / 2], t[count * 99 / 100]);
  free(t);
  return 0;
}

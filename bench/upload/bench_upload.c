/*
 * bench_upload.c - a 1 GiB checkpoint through libchub to chubd, beside
 * what the disk can do.
 *
 *   bench_upload HUB_URL KEY CHUBD_PID DIR [MIB]
 *
 * Ceiling: the checkpoint is written to DIR and fsynced, as a trainer's
 * torch.save followed by an fsync would, and that rate is the disk's
 * durable write rate here, measured in the same run on the same
 * filesystem. Then the file goes to the hub the way a run's final weights
 * go: chub_session_upload_final() (SHA-256 on the client, the streamed
 * upload, the hub's own SHA-256, its write, fsync and commit, and its
 * answer). Prints both rates, their ratio, and how much the peak resident
 * memory of this process and of chubd grew. Asserts nothing.
 */
#include "chub.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long bench_hwm_kb(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

static void bench_quiet(chub_log_level level, const char *line, void *user) {
  (void)user;
  if (level >= CHUB_LOG_WARN)
    fprintf(stderr, "chub: %s\n", line);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_upload HUB_URL KEY CHUBD_PID DIR [MIB]\n");
    return 2;
  }
  long chubd = atol(argv[3]);
  long mib = argc > 5 ? atol(argv[5]) : 1024;
  char path[4096], cfg[4096], runs[4096];
  snprintf(path, sizeof path, "%s/best.pt", argv[4]);
  snprintf(cfg, sizeof cfg, "%s/config", argv[4]);
  snprintf(runs, sizeof runs, "%s/runs", argv[4]);
  setenv("CHUB_API_ROOT", argv[1], 1);
  setenv("CHUB_API_KEY", argv[2], 1);
  setenv("CHUB_CONFIG_DIR", cfg, 1);
  setenv("CHUB_RUNS_DIR", runs, 1);
  setenv("CHUB_TESTING", "1", 1);
  chub_set_log(bench_quiet, NULL, CHUB_LOG_INFO);

  /* The ceiling: the checkpoint written and fsynced (bytes that do not
   * compress or repeat, in 4 MiB writes). */
  size_t chunk = 4u << 20;
  uint64_t *buf = malloc(chunk);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (!buf || fd < 0) {
    perror("bench_upload");
    return 1;
  }
  double t0 = bench_now();
  for (long m = 0; m < mib; m += 4) {
    for (size_t i = 0; i < chunk / 8; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = x;
    }
    if (write(fd, buf, chunk) != (ssize_t)chunk) {
      perror("bench_upload: write");
      return 1;
    }
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    perror("bench_upload: fsync");
    return 1;
  }
  double disk = bench_now() - t0;
  free(buf);

  chub_args args = {.model = "bench.pt", .epochs = 1};
  chub_session *s = NULL;
  if (chub_session_open("bench.pt", &args, &s) != CHUB_OK || !s) {
    fprintf(stderr, "bench_upload: no session with the hub at %s\n", argv[1]);
    return 1;
  }
  long hwm_self = bench_hwm_kb((long)getpid()), hwm_hub = bench_hwm_kb(chubd);
  t0 = bench_now();
  chub_code rc = chub_session_upload_final(s, 0, path, 0.5, 600);
  double up = bench_now() - t0;
  long self_growth = bench_hwm_kb((long)getpid()) - hwm_self;
  long hub_growth = bench_hwm_kb(chubd) - hwm_hub;
  chub_session_close(s);
  unlink(path);
  if (rc != CHUB_OK) {
    fprintf(stderr, "bench_upload: the upload failed: %s\n", chub_strerror(rc));
    return 1;
  }
  double mb = (double)mib;
  printf("disk: %ld MiB written and fsynced in %.2f s: %.0f MiB/s (the "
         "ceiling)\n",
         mib, disk, mb / disk);
  printf("libchub -> chubd: %ld MiB final upload (both ends SHA-256, hub "
         "fsync and commit) in %.2f s: %.0f MiB/s\n",
         mib, up, mb / up);
  printf("upload/disk ratio: %.3f\n", disk / up);
  printf("peak RSS growth during the upload: client %+ld KiB, chubd %+ld "
         "KiB\n",
         self_growth, hub_growth);
  return 0;
}

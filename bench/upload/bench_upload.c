/*
 * bench_upload.c - a 1 GiB checkpoint through libchub to chubd, beside
 * what the disk can do, in alternating rounds.
 *
 *   bench_upload HUB_URL KEY CHUBD_PID DIR [MIB [ROUNDS]]
 *
 * Ceiling: the checkpoint is written to DIR and fsynced, as a trainer's
 * torch.save followed by an fsync would, and that rate is the disk's
 * durable write rate here, measured on the same filesystem. Then the file
 * goes to the hub the way a run's final weights go:
 * chub_session_upload_final() (SHA-256 on the client, the streamed upload,
 * the hub's own SHA-256, its write, fsync and commit, and its answer).
 *
 * A shared disk's rate moves by a factor of three from one minute to the
 * next, and a write right after another gigabyte goes slower than one
 * after a pause (the host drains its cache meanwhile). So one ceiling
 * beside one upload says little, and neither may come first: after one
 * unmeasured write of the same size, ceilings and uploads alternate
 * (ceiling, upload, ceiling, ..., ceiling; new bytes every time), so each
 * follows the same amount of writing, and each upload is compared with the
 * mean of the ceilings just before and just after it. The ratio printed is
 * the median of those, beside the median rates. Also prints, for scale,
 * the rate of the same amount written the way chubd writes an upload
 * (O_DIRECT), the CPU time both ends spent per MiB (and so the rate the
 * machine's cores would allow were they all busy with the upload: on a
 * machine with few cores the two SHA-256 and the copies through loopback
 * TCP, not the disk, may bound it), and how much the peak resident memory
 * of this process and of chubd grew over all the uploads. Asserts
 * nothing.
 */
#include "chub.h"

#include "../bench_clock.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_ROUNDS_MAX 15
#define BENCH_CHUNK (4u << 20)

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

/* CPU seconds (user + system, all threads) process pid has used so far,
 * read from /proc the same way for chubd and for this process. */
static double bench_cpu_s(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  /* After "pid (comm) ": state, five ints, five counters, utime, stime. */
  const char *p = strrchr(buf, ')');
  unsigned long long ut, st;
  if (!p ||
      sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void bench_quiet(chub_log_level level, const char *line, void *user) {
  (void)user;
  if (level >= CHUB_LOG_WARN)
    fprintf(stderr, "chub: %s\n", line);
}

/* The ceiling: MIB of bytes that do not compress or repeat (xorshift,
 * carried on from round to round) written to path in 4 MiB writes and
 * fsynced. Seconds, or -1 with the reason printed. */
static double bench_disk(const char *path, long mib, uint64_t *buf,
                         uint64_t *x) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    perror("bench_upload: open");
    return -1;
  }
  double t0 = bench_now_us();
  for (long m = 0; m < mib; m += 4) {
    for (size_t i = 0; i < BENCH_CHUNK / 8; i++) {
      *x ^= *x << 13;
      *x ^= *x >> 7;
      *x ^= *x << 17;
      buf[i] = *x;
    }
    if (write(fd, buf, BENCH_CHUNK) != (ssize_t)BENCH_CHUNK) {
      perror("bench_upload: write");
      close(fd);
      return -1;
    }
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    perror("bench_upload: fsync");
    return -1;
  }
  return (bench_now_us() - t0) / 1e6;
}

/* For scale: the same amount written past the page cache (O_DIRECT, in
 * 4 MiB writes, one at a time, then fsynced), as chubd writes an upload's
 * full buffers. On a virtual disk whose host caches writes, this rate can
 * be well below the ceiling's, which the guest's page cache writes back
 * many requests at a time. Seconds, or -1 where the filesystem refuses
 * O_DIRECT. */
static double bench_direct(const char *path, long mib, uint64_t *buf) {
  int fd =
      open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
  if (fd < 0)
    return -1;
  double t0 = bench_now_us();
  for (long m = 0; m < mib; m += 4) {
    buf[0] ^= (uint64_t)m; /* no two writes alike */
    if (write(fd, buf, BENCH_CHUNK) != (ssize_t)BENCH_CHUNK) {
      close(fd);
      return -1;
    }
  }
  if (fsync(fd) != 0 || close(fd) != 0)
    return -1;
  return (bench_now_us() - t0) / 1e6;
}

/* The same file as a run's final weights, through a session of its own.
 * Seconds, or -1 with the reason printed. */
static double bench_up(const char *hub, const char *path) {
  chub_args args = {.model = "bench.pt", .epochs = 1};
  chub_session *s = NULL;
  if (chub_session_open("bench.pt", &args, &s) != CHUB_OK || !s) {
    fprintf(stderr, "bench_upload: no session with the hub at %s\n", hub);
    return -1;
  }
  double t0 = bench_now_us();
  chub_code rc = chub_session_upload_final(s, 0, path, 0.5, 600);
  double secs = (bench_now_us() - t0) / 1e6;
  chub_session_close(s);
  if (rc != CHUB_OK) {
    fprintf(stderr, "bench_upload: the upload failed: %s\n", chub_strerror(rc));
    return -1;
  }
  return secs;
}

static double bench_median(const double *v, int n) {
  double s[BENCH_ROUNDS_MAX + 1];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, bench_cmp);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void bench_range(const char *what, const double *v, int n) {
  double s[BENCH_ROUNDS_MAX + 1];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, bench_cmp);
  printf("%s: median %.0f MiB/s (min %.0f, max %.0f)\n", what,
         bench_median(v, n), s[0], s[n - 1]);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr,
            "usage: bench_upload HUB_URL KEY CHUBD_PID DIR [MIB [ROUNDS]]\n");
    return 2;
  }
  long chubd = atol(argv[3]);
  long mib = argc > 5 ? atol(argv[5]) : 1024;
  int rounds = argc > 6 ? atoi(argv[6]) : 3;
  if (mib < 4 || rounds < 1 || rounds > BENCH_ROUNDS_MAX) {
    fprintf(stderr, "bench_upload: MIB must be at least 4 and ROUNDS 1-%d\n",
            BENCH_ROUNDS_MAX);
    return 2;
  }
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

  /* The ceiling's buffer lives for the whole run, so that only the
   * uploads can move this process's peak memory once it is measured. */
  uint64_t *buf = aligned_alloc(4096, BENCH_CHUNK); /* O_DIRECT's too */
  if (!buf) {
    perror("bench_upload");
    return 1;
  }
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  double disk[BENCH_ROUNDS_MAX + 1], up[BENCH_ROUNDS_MAX],
      ratio[BENCH_ROUNDS_MAX], cpu_client[BENCH_ROUNDS_MAX],
      cpu_hub[BENCH_ROUNDS_MAX];
  /* The unmeasured write, then the first ceiling: both leave the file
   * the first upload sends. */
  double d = bench_disk(path, mib, buf, &x);
  if (d > 0)
    d = bench_disk(path, mib, buf, &x);
  long hwm_self = bench_hwm_kb((long)getpid()), hwm_hub = bench_hwm_kb(chubd);
  disk[0] = (double)mib / d;
  for (int r = 0; r < rounds && d > 0; r++) {
    double c0 = bench_cpu_s((long)getpid()), h0 = bench_cpu_s(chubd);
    double u = bench_up(argv[1], path);
    cpu_client[r] = (bench_cpu_s((long)getpid()) - c0) * 1000 / (double)mib;
    cpu_hub[r] = (bench_cpu_s(chubd) - h0) * 1000 / (double)mib;
    d = u > 0 ? bench_disk(path, mib, buf, &x) : -1;
    if (d <= 0)
      break;
    disk[r + 1] = (double)mib / d;
    up[r] = (double)mib / u;
    ratio[r] = up[r] / ((disk[r] + disk[r + 1]) / 2);
    printf("round %d: upload %.0f MiB/s between ceilings of %.0f and %.0f "
           "MiB/s: ratio %.3f\n",
           r + 1, up[r], disk[r], disk[r + 1], ratio[r]);
    fflush(stdout);
  }
  double direct = d > 0 ? bench_direct(path, mib, buf) : -1;
  unlink(path);
  free(buf);
  if (d <= 0)
    return 1;
  long self_growth = bench_hwm_kb((long)getpid()) - hwm_self;
  long hub_growth = bench_hwm_kb(chubd) - hwm_hub;
  char what[160];
  snprintf(what, sizeof what,
           "disk: %ld MiB written and fsynced, %d times (the ceiling)", mib,
           rounds + 1);
  bench_range(what, disk, rounds + 1);
  snprintf(what, sizeof what,
           "libchub -> chubd: %ld MiB final upload (both ends SHA-256, hub "
           "fsync and commit)",
           mib);
  bench_range(what, up, rounds);
  double med = bench_median(ratio, rounds);
  printf("upload/disk ratio: median %.3f of %d rounds (each upload against "
         "the mean of the ceilings around it); target >= 0.85: %s\n",
         med, rounds, med >= 0.85 ? "met" : "NOT met");
  /* What the machine's processors allow: both ends hash every byte and
   * copy it through loopback TCP, and on a machine with few cores that
   * work, not the disk, can be what bounds the upload. */
  double cc = bench_median(cpu_client, rounds),
         ch = bench_median(cpu_hub, rounds);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  double cap = cores > 0 && cc + ch > 0 ? (double)cores * 1000 / (cc + ch) : 0;
  printf("CPU per MiB uploaded (user + system, all threads, median of the "
         "rounds): client %.2f ms, chubd %.2f ms; with all %ld cores busy "
         "that allows at most %.0f MiB/s, %.2f of the disk's median\n",
         cc, ch, cores, cap, cap / bench_median(disk, rounds + 1));
  if (direct > 0)
    printf("for scale: %ld MiB written with O_DIRECT in 4 MiB writes and "
           "fsynced (how chubd writes an upload): %.0f MiB/s; median upload "
           "/ that: %.3f\n",
           mib, (double)mib / direct,
           bench_median(up, rounds) / ((double)mib / direct));
  else
    printf("for scale: O_DIRECT writes are not available on this "
           "filesystem\n");
  printf("peak RSS growth during the uploads: client %+ld KiB, chubd %+ld "
         "KiB; target < 32 MiB each: %s\n",
         self_growth, hub_growth,
         self_growth < 32 * 1024 && hub_growth < 32 * 1024 ? "met" : "NOT met");
  return 0;
}

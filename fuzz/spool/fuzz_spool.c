/*
 * fuzz_spool.c - libFuzzer target for the spool's record scanner and its
 * replay. Any bytes may sit in a spool.log after a crash or a bad disk, so
 * for every input: spool_scan() must stay in bounds and agree with itself,
 * spool_open() must replay exactly the prefix spool_scan() calls valid and
 * cut the rest, every pending record must read back, and a record appended
 * afterwards must survive a reopen (never hidden behind garbage).
 */
#include "chub.h"
#include "spool.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The one run directory this fuzzing process works in (and its parent),
 * made on first use and removed at exit. */
static char fuzz_spool_dir[256], fuzz_spool_root[256];

static void fuzz_spool_count(int type, const unsigned char *payload, size_t len,
                             void *user) {
  (void)payload;
  (void)len;
  size_t *n = user;
  if (type < 1 || type > 4)
    abort();
  (*n)++;
}

static void fuzz_spool_quiet(chub_log_level level, const char *line,
                             void *user) {
  (void)level;
  (void)line;
  (void)user;
}

static void fuzz_spool_clean(void);

static void fuzz_spool_remove(void) {
  char path[400];
  fuzz_spool_clean();
  snprintf(path, sizeof path, "%s/run.json", fuzz_spool_dir);
  unlink(path);
  rmdir(fuzz_spool_dir);
  rmdir(fuzz_spool_root);
}

static void fuzz_spool_setup(void) {
  if (fuzz_spool_dir[0])
    return;
  chub_set_log(fuzz_spool_quiet, NULL, CHUB_LOG_ERROR);
  /* tmpfs when there is one: replay fsyncs, and a disk would make every
   * input cost milliseconds */
  char tmpl[] = "/dev/shm/chub-fuzz-spool-XXXXXX";
  char tmpl2[] = "/tmp/chub-fuzz-spool-XXXXXX";
  char *dir = mkdtemp(tmpl);
  if (!dir)
    dir = mkdtemp(tmpl2);
  if (!dir)
    abort();
  snprintf(fuzz_spool_root, sizeof fuzz_spool_root, "%s", dir);
  snprintf(fuzz_spool_dir, sizeof fuzz_spool_dir, "%s/run", dir);
  atexit(fuzz_spool_remove);
}

static void fuzz_spool_clean(void) {
  const char *names[] = {"spool.log", "spool.log.damaged", "spool.log.tmp"};
  char path[400];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", fuzz_spool_dir, names[i]);
    unlink(path);
  }
}

static long long fuzz_spool_size(void) {
  char path[400];
  struct stat st;
  snprintf(path, sizeof path, "%s/spool.log", fuzz_spool_dir);
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void fuzz_spool_replay(const uint8_t *data, size_t size, size_t valid) {
  char path[400];
  snprintf(path, sizeof path, "%s/spool.log", fuzz_spool_dir);
  mkdir(fuzz_spool_dir, 0700);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size)
    abort();
  close(fd);

  spool *sp = NULL;
  chub_code rc = spool_open(fuzz_spool_dir, 0, &sp);
  if (rc == CHUB_ECORRUPT) {
    /* a record of a newer format: the log must be left as it was */
    if (sp || fuzz_spool_size() != (long long)size)
      abort();
    return;
  }
  if (rc != CHUB_OK)
    abort();
  if (fuzz_spool_size() != (long long)valid)
    abort(); /* replay and the scanner disagree on the valid prefix */
  int epochs[64];
  size_t n = spool_pending_metrics(sp, epochs, 64);
  for (size_t i = 0; i < n; i++) {
    char *json = NULL;
    if (spool_read_metrics(sp, epochs[i], &json) != CHUB_OK || !json)
      abort();
    free(json);
  }
  spool_ckpt c;
  if (spool_next_checkpoint(sp, &c)) {
    if (!c.path || !*c.path || c.seq == 0)
      abort();
    spool_ckpt_clear(&c);
  }
  static const char probe[] = "{\"fuzz/probe\": 1}";
  if (spool_append_metrics(sp, 123456789, probe) != CHUB_OK)
    abort();
  spool_close(sp);

  if (spool_open(fuzz_spool_dir, 0, &sp) != CHUB_OK)
    abort();
  char *json = NULL;
  if (spool_read_metrics(sp, 123456789, &json) != CHUB_OK ||
      strcmp(json, probe) != 0)
    abort();
  free(json);
  spool_close(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_spool_setup();
  size_t count = 0;
  size_t valid = spool_scan(data, size, fuzz_spool_count, &count);
  if (valid > size)
    abort();
  size_t again = 0;
  if (spool_scan(data, valid, fuzz_spool_count, &again) != valid ||
      again != count)
    abort();
  fuzz_spool_replay(data, size, valid);
  fuzz_spool_clean();
  return 0;
}

/*
 * fuzz_spool.c - libFuzzer target for the spool's record scanner and its
 * replay. Any bytes may sit in a spool.log after a crash or a bad disk, so
 * for every input: spool_scan() must stay in bounds and agree with itself,
 * spool_open() must replay exactly the prefix spool_scan() calls valid and
 * cut the rest, every pending record must read back, and a record appended
 * afterwards must survive a reopen (never hidden behind garbage), and
 * compaction and a reopen must leave the pending state exactly as it was.
 *
 * Every pending epoch is read back, so a metrics-items record that passed
 * its check is also decoded and written as JSON.
 *
 * Inputs starting with 'S' are structured: the rest is read as records
 * (type byte, u16 length, payload) that the harness frames with a correct
 * checksum, so the fuzzer reaches the replay logic (acks of unknown epochs,
 * repeated sequence numbers, re-queued epochs) instead of stopping at the
 * CRC of its first mutated byte. Any other input is taken as raw log bytes.
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
#include <zlib.h>

/* The one run directory this fuzzing process works in (and its parent),
 * made on first use and removed at exit. */
static char fuzz_spool_dir[256], fuzz_spool_root[256];

static void fuzz_spool_count(int type, const unsigned char *payload, size_t len,
                             void *user) {
  (void)payload;
  (void)len;
  size_t *n = user;
  if (type < SPOOL_METRICS || type > SPOOL_METRICS_ITEMS)
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

/* What is pending, to compare before and after compaction and reopen. */
typedef struct fuzz_spool_state {
  size_t n_epochs, n_ckpts;
  bool final_pending;
  int epochs[64];
  uint32_t json_crc[64];
  spool_ckpt oldest; /* path owned */
  bool has_oldest;
} fuzz_spool_state;

static void fuzz_spool_snapshot(spool *sp, fuzz_spool_state *st) {
  memset(st, 0, sizeof *st);
  spool_pending_counts(sp, &st->n_epochs, &st->n_ckpts, &st->final_pending);
  size_t n = spool_pending_metrics(sp, st->epochs, 64);
  for (size_t i = 0; i < n; i++) {
    char *json = NULL;
    if (spool_read_metrics(sp, st->epochs[i], &json) != CHUB_OK || !json)
      abort();
    st->json_crc[i] =
        (uint32_t)crc32(0L, (const Bytef *)json, (uInt)strlen(json));
    free(json);
  }
  st->has_oldest = spool_next_checkpoint(sp, &st->oldest);
  if (st->has_oldest &&
      (!st->oldest.path || !*st->oldest.path || st->oldest.seq == 0))
    abort();
  if ((st->n_ckpts > 0) != st->has_oldest)
    abort();
}

static void fuzz_spool_same(fuzz_spool_state *a, fuzz_spool_state *b) {
  if (a->n_epochs != b->n_epochs || a->n_ckpts != b->n_ckpts ||
      a->final_pending != b->final_pending || a->has_oldest != b->has_oldest)
    abort();
  size_t n = a->n_epochs < 64 ? a->n_epochs : 64;
  if (memcmp(a->epochs, b->epochs, n * sizeof a->epochs[0]) != 0 ||
      memcmp(a->json_crc, b->json_crc, n * sizeof a->json_crc[0]) != 0)
    abort();
  if (a->has_oldest &&
      (a->oldest.seq != b->oldest.seq || a->oldest.epoch != b->oldest.epoch ||
       a->oldest.final != b->oldest.final ||
       a->oldest.is_best != b->oldest.is_best ||
       a->oldest.size != b->oldest.size ||
       a->oldest.mtime_ns != b->oldest.mtime_ns ||
       memcmp(&a->oldest.map, &b->oldest.map, sizeof a->oldest.map) != 0 ||
       strcmp(a->oldest.path, b->oldest.path) != 0))
    abort();
  spool_ckpt_clear(&b->oldest);
}

/* Frames structured input ('S' + records of type, u16 length, payload)
 * into a log with valid checksums; returns its malloc'd bytes. */
static unsigned char *fuzz_spool_frame(const uint8_t *data, size_t size,
                                       size_t *out_len) {
  unsigned char *out = malloc(size * 6 + 16);
  size_t n = 0, i = 1;
  while (out && i + 3 <= size) {
    unsigned type = data[i];
    size_t len = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
    i += 3;
    if (len > size - i)
      len = size - i;
    unsigned char *h = out + n;
    memcpy(h, "CSPL", 4);
    h[4] = (unsigned char)(1 + type % 5);
    h[5] = h[4] == SPOOL_METRICS_ITEMS ? 3 : 2; /* each type's format */
    h[6] = h[7] = 0;
    for (int k = 0; k < 4; k++)
      h[8 + k] = (unsigned char)(len >> (8 * k));
    memcpy(h + 16, data + i, len);
    uLong crc = crc32(0L, h, 12);
    crc = crc32(crc, h + 16, (uInt)len);
    for (int k = 0; k < 4; k++)
      h[12 + k] = (unsigned char)(crc >> (8 * k));
    n += 16 + len;
    i += len;
  }
  *out_len = n;
  return out;
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
  fuzz_spool_state before, after;
  fuzz_spool_snapshot(sp, &before);
  if (spool_compact(sp) != CHUB_OK)
    abort();
  fuzz_spool_snapshot(sp, &after);
  fuzz_spool_same(&before, &after);
  spool_close(sp);
  if (spool_open(fuzz_spool_dir, 0, &sp) != CHUB_OK)
    abort();
  fuzz_spool_snapshot(sp, &after);
  fuzz_spool_same(&before, &after);
  /* a new checkpoint never reuses a pending sequence number */
  spool_ckpt probe_ckpt = {.epoch = 1, .path = "/nonexistent/fuzz.pt"};
  if (spool_append_checkpoint(sp, &probe_ckpt) != CHUB_OK ||
      (before.has_oldest && probe_ckpt.seq <= before.oldest.seq))
    abort();
  spool_ckpt_clear(&before.oldest);
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
  unsigned char *framed = NULL;
  if (size > 0 && data[0] == 'S') {
    framed = fuzz_spool_frame(data, size, &size);
    if (!framed)
      return 0;
    data = framed;
  }
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
  free(framed);
  return 0;
}

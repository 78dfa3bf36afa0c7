/*
 * test_spool.c - the spool's promises, checked against real files: records
 * survive a reopen, acknowledged ones leave and compaction keeps the rest,
 * a log cut at any byte of its last record or with any bit flipped replays
 * only whole, correct records, the bound refuses with one warning and loses
 * nothing already stored, and run.json round-trips.
 */
#include "spool_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zlib.h>
#include <jansson.h>
#include <math.h>

#include <cmocka.h>

typedef struct fixture {
  char *dir; /* the run directory: {tmp}/run-1 */
  char *root;
  char log_path[600];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->root = th_tmpdir_new("chub-spool");
  assert_non_null(f->root);
  size_t n = strlen(f->root) + 16;
  f->dir = malloc(n);
  snprintf(f->dir, n, "%s/run-1", f->root);
  snprintf(f->log_path, sizeof f->log_path, "%s/spool.log", f->dir);
  th_log_reset();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  th_tmpdir_remove(f->root);
  free(f->root);
  free(f->dir);
  free(f);
  return 0;
}

/* Odd epochs are spooled as entries (as on_fit_epoch_end spools them) and
 * even ones as JSON text (as chub_session_queue_metrics does), so every
 * test here covers both kinds of metrics record. */
static size_t items_of(flat_item *it, int epoch, int version) {
  it[0] = flat_item_of("train/", "loss", epoch + version / 1000.0, false);
  it[1] = flat_item_of("", "metrics/accuracy_top1",
                       (epoch * 7 % 10000) / 10000.0, false);
  it[2] = flat_item_of("", "version", version, true);
  return 3;
}

static void expected_json(char *buf, size_t len, int epoch, int version) {
  if (epoch % 2 == 0) {
    spool_test_json(buf, len, epoch, version);
    return;
  }
  flat_item it[3];
  bool dropped = false;
  size_t n =
      flat_map_json(it, items_of(it, epoch, version), buf, len, &dropped);
  assert_true(n < len);
  assert_false(dropped);
}

static chub_code try_append_epoch(spool *sp, int epoch, int version) {
  if (epoch % 2 == 1) {
    flat_item it[3];
    bool dropped = false;
    chub_code rc = spool_append_metrics_items(
        sp, epoch, it, items_of(it, epoch, version), &dropped);
    assert_false(dropped);
    return rc;
  }
  char json[256];
  spool_test_json(json, sizeof json, epoch, version);
  return spool_append_metrics(sp, epoch, json);
}

static void append_epoch(spool *sp, int epoch, int version) {
  assert_int_equal(try_append_epoch(sp, epoch, version), CHUB_OK);
}

static void assert_epoch(spool *sp, int epoch, int version) {
  char want[256];
  char *got = NULL;
  expected_json(want, sizeof want, epoch, version);
  assert_int_equal(spool_read_metrics(sp, epoch, &got), CHUB_OK);
  assert_string_equal(got, want);
  free(got);
}

static size_t pending(spool *sp, int *epochs, size_t max) {
  return spool_pending_metrics(sp, epochs, max);
}

static void test_round_trip(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_string_equal(spool_run_id(sp), "run-1");
  assert_string_equal(spool_dir(sp), f->dir);
  for (int e = 0; e < 50; e++)
    append_epoch(sp, e, 1);
  spool_ckpt c = {.epoch = 7, .is_best = true, .path = "/data/last.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &c), CHUB_OK);
  spool_ckpt fin = {
      .epoch = 49, .final = true, .map = 0.625, .path = "/data/best.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &fin), CHUB_OK);
  assert_true(fin.seq > c.seq);
  assert_int_equal(spool_sync(sp), CHUB_OK);
  spool_close(sp);

  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  int epochs[64];
  assert_int_equal(pending(sp, epochs, 64), 50);
  for (int e = 0; e < 50; e++) {
    assert_int_equal(epochs[e], e);
    assert_epoch(sp, e, 1);
  }
  size_t nm = 0, nc = 0;
  bool final_pending = false;
  spool_pending_counts(sp, &nm, &nc, &final_pending);
  assert_int_equal(nm, 50);
  assert_int_equal(nc, 2);
  assert_true(final_pending);
  spool_ckpt got = {0};
  assert_true(spool_next_checkpoint(sp, &got));
  assert_int_equal(got.seq, c.seq);
  assert_int_equal(got.epoch, 7);
  assert_true(got.is_best);
  assert_false(got.final);
  assert_string_equal(got.path, "/data/last.pt");
  spool_ckpt_clear(&got);
  assert_int_equal(spool_ack_checkpoint(sp, c.seq), CHUB_OK);
  assert_true(spool_next_checkpoint(sp, &got));
  assert_int_equal(got.seq, fin.seq);
  assert_true(got.final);
  assert_true(got.map == 0.625);
  assert_string_equal(got.path, "/data/best.pt");
  spool_ckpt_clear(&got);
  /* a missing epoch is an error, not an empty string */
  char *none = NULL;
  assert_int_equal(spool_read_metrics(sp, 99, &none), CHUB_EINVAL);
  assert_null(none);
  spool_close(sp);
  assert_int_equal(th_log_count(CHUB_LOG_WARN), 0);
}

static void test_requeue_replaces(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  append_epoch(sp, 3, 1);
  append_epoch(sp, 4, 1);
  append_epoch(sp, 3, 2);
  int epochs[8];
  assert_int_equal(pending(sp, epochs, 8), 2);
  assert_epoch(sp, 3, 2);
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_int_equal(pending(sp, epochs, 8), 2);
  assert_epoch(sp, 3, 2);
  assert_epoch(sp, 4, 1);
  spool_close(sp);
}

/* The sender read epoch 5, the trainer re-queued it, then the sender's
 * acknowledgement arrived: the newer JSON never reached the hub and must
 * stay pending, now and after a reopen. */
static void test_ack_after_requeue_keeps_newer(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  append_epoch(sp, 5, 1);
  append_epoch(sp, 6, 1);
  assert_epoch(sp, 5, 1);
  assert_epoch(sp, 6, 1);
  append_epoch(sp, 5, 2);
  int acks[] = {5, 6};
  assert_int_equal(spool_ack_metrics(sp, acks, 2), CHUB_OK);
  int epochs[8];
  assert_int_equal(pending(sp, epochs, 8), 1);
  assert_int_equal(epochs[0], 5);
  assert_epoch(sp, 5, 2);
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_int_equal(pending(sp, epochs, 8), 1);
  assert_epoch(sp, 5, 2);
  /* now acknowledged after reading the newer version: gone */
  assert_int_equal(spool_ack_metrics(sp, acks, 1), CHUB_OK);
  assert_int_equal(pending(sp, epochs, 8), 0);
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_int_equal(pending(sp, epochs, 8), 0);
  spool_close(sp);
}

static void test_ack_and_compaction(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  for (int e = 0; e < 200; e++)
    append_epoch(sp, e, 1);
  spool_ckpt c1 = {.epoch = 10, .path = "/w/last.pt"};
  spool_ckpt c2 = {.epoch = 20, .path = "/w/last.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &c1), CHUB_OK);
  assert_int_equal(spool_append_checkpoint(sp, &c2), CHUB_OK);
  int acks[190];
  for (int i = 0; i < 190; i++)
    acks[i] = i;
  assert_int_equal(spool_ack_metrics(sp, acks, 190), CHUB_OK);
  assert_int_equal(spool_ack_checkpoint(sp, c1.seq), CHUB_OK);
  assert_int_equal(spool_ack_checkpoint(sp, c2.seq), CHUB_OK);
  long long before = spool_test_size(f->log_path);
  assert_int_equal(spool_compact(sp), CHUB_OK);
  long long after = spool_test_size(f->log_path);
  printf("compaction: %lld -> %lld bytes (10 of 200 epochs pending)\n", before,
         after);
  assert_true(after < before / 10);
  int epochs[256];
  assert_int_equal(pending(sp, epochs, 256), 10);
  for (int e = 190; e < 200; e++)
    assert_epoch(sp, e, 1);
  /* appends after compaction land in the new file */
  append_epoch(sp, 200, 1);
  spool_close(sp);

  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_int_equal(pending(sp, epochs, 256), 11);
  assert_int_equal(epochs[0], 190);
  assert_int_equal(epochs[10], 200);
  for (int e = 190; e <= 200; e++)
    assert_epoch(sp, e, 1);
  size_t nc = 9;
  spool_pending_counts(sp, NULL, &nc, NULL);
  assert_int_equal(nc, 0);
  /* sequence numbers are not reused after compaction and a restart */
  spool_ckpt c3 = {.epoch = 30, .path = "/w/last.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &c3), CHUB_OK);
  assert_true(c3.seq > c2.seq);
  spool_close(sp);
  assert_int_equal(th_log_count(CHUB_LOG_WARN), 0);
}

/* Builds a log of `n` epochs; returns the byte offset where the last
 * record starts. */
static long long build_log(fixture *f, int n) {
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  for (int e = 0; e < n - 1; e++)
    append_epoch(sp, e, 1);
  spool_ckpt c = {.epoch = 1, .path = "/w/ckpt.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &c), CHUB_OK);
  int ack = 0;
  assert_int_equal(spool_ack_metrics(sp, &ack, 1), CHUB_OK);
  long long start = spool_test_size(f->log_path);
  append_epoch(sp, n - 1, 1);
  spool_close(sp);
  return start;
}

static void test_torn_tail_every_offset(void **state) {
  fixture *f = *state;
  const int n = 6;
  long long start = build_log(f, n);
  size_t len = 0;
  unsigned char *orig = spool_test_slurp(f->log_path, &len);
  assert_non_null(orig);
  assert_true((long long)len > start);
  int cuts = 0;
  for (long long cut = start; cut < (long long)len; cut++) {
    assert_int_equal(spool_test_write(f->log_path, orig, (size_t)cut), 0);
    spool *sp = NULL;
    assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
    int epochs[16];
    size_t np = pending(sp, epochs, 16);
    assert_int_equal(np, n - 2); /* epochs 1..n-2; 0 acked, n-1 torn */
    for (int e = 1; e <= n - 2; e++)
      assert_epoch(sp, e, 1);
    char *json = NULL;
    assert_int_equal(spool_read_metrics(sp, n - 1, &json), CHUB_EINVAL);
    size_t nc = 0;
    spool_pending_counts(sp, NULL, &nc, NULL);
    assert_int_equal(nc, 1);
    /* the torn bytes are gone, so a new record is not hidden behind them */
    assert_int_equal(spool_test_size(f->log_path), start);
    append_epoch(sp, 100, 1);
    spool_close(sp);
    assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
    assert_epoch(sp, 100, 1);
    assert_int_equal(pending(sp, epochs, 16), n - 1);
    spool_close(sp);
    cuts++;
  }
  printf("torn tail: %d cut points of the last record, each replayed the %d "
         "earlier records\n",
         cuts, n - 1);
  /* a torn tail is an interrupted write, not damage: no warning */
  assert_int_equal(th_log_count(CHUB_LOG_WARN), 0);
  free(orig);
}

/* Every single-bit flip anywhere in the log: replay keeps a prefix of whole
 * records, never returns JSON that differs from what was written, and warns
 * (naming the file) when the damage is before the last record. */
static void test_flipped_bits(void **state) {
  fixture *f = *state;
  const int n = 5;
  long long last = build_log(f, n);
  size_t len = 0;
  unsigned char *orig = spool_test_slurp(f->log_path, &len);
  unsigned char *buf = malloc(len);
  int flips = 0, warned = 0;
  for (size_t byte = 0; byte < len; byte++) {
    for (int bit = 0; bit < 8; bit++) {
      memcpy(buf, orig, len);
      buf[byte] ^= (unsigned char)(1u << bit);
      assert_int_equal(spool_test_write(f->log_path, buf, len), 0);
      th_log_reset();
      spool *sp = NULL;
      assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
      int epochs[16];
      size_t np = pending(sp, epochs, 16);
      for (size_t i = 0; i < np; i++) {
        /* whatever survives is exactly what was written */
        assert_true(epochs[i] >= 0 && epochs[i] < n);
        assert_epoch(sp, epochs[i], 1);
      }
      /* the bytes kept are a prefix that ends before the flipped byte */
      assert_true(spool_test_size(f->log_path) <= (long long)byte);
      spool_close(sp);
      if ((long long)byte < last) {
        assert_int_equal(th_log_count(CHUB_LOG_WARN), 1);
        assert_true(th_log_contains(f->log_path));
        warned++;
      }
      flips++;
    }
  }
  printf("flipped bits: %d single-bit flips, all detected; %d warned as "
         "damage before the last record\n",
         flips, warned);
  free(buf);
  free(orig);
}

static void test_bound_refuses_with_one_warning(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  const long long max = 8192;
  assert_int_equal(spool_open(f->dir, max, &sp), CHUB_OK);
  int stored = 0, refused = 0;
  chub_code rc = CHUB_OK;
  for (int e = 0; e < 1000 && rc == CHUB_OK; e++) {
    rc = try_append_epoch(sp, e, 1);
    if (rc == CHUB_OK)
      stored++;
  }
  assert_int_equal(rc, CHUB_EFULL);
  refused++;
  for (int e = stored + 1; e < stored + 20; e++) {
    assert_int_equal(try_append_epoch(sp, e, 1), CHUB_EFULL);
    refused++;
  }
  spool_ckpt c = {.epoch = 3, .path = "/w/last.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &c), CHUB_EFULL);
  assert_true(spool_test_size(f->log_path) <= max);
  assert_int_equal(th_log_count(CHUB_LOG_WARN), 1);
  assert_true(th_log_contains("run-1"));
  assert_true(th_log_contains("full"));
  printf(
      "bound %lld bytes: %d epochs stored, %d appends refused, %zu warning\n",
      max, stored, refused, th_log_count(CHUB_LOG_WARN));
  /* nothing that was stored is lost */
  int epochs[1024];
  assert_int_equal(pending(sp, epochs, 1024), stored);
  for (int e = 0; e < stored; e++)
    assert_epoch(sp, e, 1);
  /* acknowledging some makes room (by compaction) again */
  int acks[10];
  for (int i = 0; i < 10; i++)
    acks[i] = i;
  assert_int_equal(spool_ack_metrics(sp, acks, 10), CHUB_OK);
  append_epoch(sp, stored, 1);
  assert_true(spool_test_size(f->log_path) <= max);
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, max, &sp), CHUB_OK);
  assert_int_equal(pending(sp, epochs, 1024), stored - 10 + 1);
  for (int e = 10; e <= stored; e++)
    assert_epoch(sp, e, 1);
  spool_close(sp);
}

static void test_meta(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_null(spool_meta_get(sp, "model_id"));
  assert_int_equal(spool_meta_set(sp, "model_id", "abcdefghij0123456789"),
                   CHUB_OK);
  assert_int_equal(spool_meta_set(sp, "api_root", "http://127.0.0.1:1"),
                   CHUB_OK);
  assert_int_equal(spool_meta_set(sp, "api_root", NULL), CHUB_OK);
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  char *v = spool_meta_get(sp, "model_id");
  assert_string_equal(v, "abcdefghij0123456789");
  free(v);
  assert_null(spool_meta_get(sp, "api_root"));
  spool_close(sp);
  char path[700];
  snprintf(path, sizeof path, "%s/run.json", f->dir);
  assert_int_equal(
      spool_test_write(path, (const unsigned char *)"{\"model_id\": ", 13), 0);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  assert_null(spool_meta_get(sp, "model_id"));
  assert_int_equal(th_log_count(CHUB_LOG_WARN), 1);
  assert_true(th_log_contains(path));
  assert_int_equal(spool_meta_set(sp, "model_id", "x"), CHUB_OK);
  v = spool_meta_get(sp, "model_id");
  assert_string_equal(v, "x");
  free(v);
  spool_close(sp);
}

/* A queued checkpoint remembers which version of the file it was (size and
 * mtime), so an uploader can notice the trainer rewrote it in place. */
static void test_ckpt_version(void **state) {
  fixture *f = *state;
  char path[700];
  snprintf(path, sizeof path, "%s/last.pt", f->root);
  const unsigned char bytes[1234] = {1, 2, 3};
  assert_int_equal(spool_test_write(path, bytes, sizeof bytes), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  long long mtime =
      (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  spool_ckpt c = {.epoch = 2, .path = path};
  assert_int_equal(spool_append_checkpoint(sp, &c), CHUB_OK);
  assert_int_equal(c.size, 1234);
  assert_true(c.mtime_ns == mtime);
  spool_ckpt gone = {.epoch = 3, .path = "/nonexistent/last.pt"};
  assert_int_equal(spool_append_checkpoint(sp, &gone), CHUB_OK);
  assert_int_equal(gone.size, -1);
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  spool_ckpt got = {0};
  assert_true(spool_next_checkpoint(sp, &got));
  assert_int_equal(got.size, 1234);
  assert_true(got.mtime_ns == mtime);
  spool_ckpt_clear(&got);
  assert_int_equal(spool_ack_checkpoint(sp, c.seq), CHUB_OK);
  assert_true(spool_next_checkpoint(sp, &got));
  assert_int_equal(got.size, -1);
  spool_ckpt_clear(&got);
  spool_close(sp);
}

/* A record of a later format (a newer chub wrote it) is not damage: the
 * log is left exactly as it is and the open says why it refuses. The
 * record's checksum is zlib's crc32, computed here independently. */
static void test_newer_format_left_untouched(void **state) {
  fixture *f = *state;
  long long last = build_log(f, 4);
  size_t len = 0;
  unsigned char *buf = spool_test_slurp(f->log_path, &len);
  buf[last + 5] = 99; /* the format byte of the last record */
  uLong crc = crc32(0L, buf + last, 12);
  crc = crc32(crc, buf + last + 16, (uInt)(len - (size_t)last - 16));
  for (int i = 0; i < 4; i++)
    buf[last + 12 + i] = (unsigned char)(crc >> (8 * i));
  assert_int_equal(spool_test_write(f->log_path, buf, len), 0);
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_ECORRUPT);
  assert_null(sp);
  assert_true(th_log_contains("newer chub"));
  assert_int_equal(spool_test_size(f->log_path), (long long)len);
  size_t len2 = 0;
  unsigned char *after = spool_test_slurp(f->log_path, &len2);
  assert_memory_equal(after, buf, len);
  free(after);
  free(buf);
}

/* Sets the format byte of the record at `at` (the last one) and fixes its
 * checksum, so that only the format is wrong. */
static void set_format(fixture *f, long long at, unsigned char format) {
  size_t len = 0;
  unsigned char *buf = spool_test_slurp(f->log_path, &len);
  buf[at + 5] = format;
  uLong crc = crc32(0L, buf + at, 12);
  crc = crc32(crc, buf + at + 16, (uInt)(len - (size_t)at - 16));
  for (int i = 0; i < 4; i++)
    buf[at + 12 + i] = (unsigned char)(crc >> (8 * i));
  assert_int_equal(spool_test_write(f->log_path, buf, len), 0);
  free(buf);
}

/* Each kind of record is written in exactly one format: entries in 3, JSON
 * in 2. A record claiming the other is damage, cut off; a format past 3
 * is a newer chub's (test_newer_format_left_untouched). */
static void test_record_formats(void **state) {
  fixture *f = *state;
  for (int kind = 0; kind < 2; kind++) {
    /* build_log(f, 1) ends with epoch 0 (JSON), (f, 2) with 1 (entries) */
    long long last = build_log(f, kind + 1);
    set_format(f, last, kind == 0 ? 3 : 2);
    spool *sp = NULL;
    assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
    char *json = NULL;
    assert_int_equal(spool_read_metrics(sp, kind, &json), CHUB_EINVAL);
    assert_int_equal(spool_test_size(f->log_path), last);
    spool_close(sp);
    th_tmpdir_remove(f->dir);
  }
}

/* Entries come back as the JSON flat_map_json writes: a later entry with
 * the same key wins, counts print without a fraction, keys are escaped,
 * what JSON cannot hold is left out, entries without a name are not
 * stored. */
static void test_items_as_json(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  flat_item it[] = {
      flat_item_of("train/", "loss", 1.5, false),
      flat_item_of("", "q\"uo\\te", 2.25, false),
      flat_item_of("", "val/\xc2\xb5s", 0.1, false),
      flat_item_of("", "model/parameters", 2590620, true),
      flat_item_of("", "gone", 9.0, false),
      flat_item_of("", "nan", NAN, false),
      flat_item_of("", "train/loss", 0.75, false),
  };
  it[4].name = NULL;
  bool dropped = false;
  assert_int_equal(spool_append_metrics_items(sp, 7, it, 7, &dropped), CHUB_OK);
  assert_true(dropped); /* the NaN */
  spool_close(sp);
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  char *got = NULL;
  assert_int_equal(spool_read_metrics(sp, 7, &got), CHUB_OK);
  json_error_t err;
  json_t *j = json_loads(got, JSON_REJECT_DUPLICATES, &err);
  assert_non_null(j);
  assert_int_equal(json_object_size(j), 4);
  assert_true(json_real_value(json_object_get(j, "train/loss")) == 0.75);
  assert_true(json_real_value(json_object_get(j, "q\"uo\\te")) == 2.25);
  assert_true(json_real_value(json_object_get(j, "val/\xc2\xb5s")) == 0.1);
  assert_true(json_is_integer(json_object_get(j, "model/parameters")));
  assert_int_equal(json_integer_value(json_object_get(j, "model/parameters")),
                   2590620);
  json_decref(j);
  free(got);
  /* An epoch whose JSON would outgrow a record is refused when spooled,
   * not accepted and then found too big to send: 200 KiB of a control
   * character is 1.2 MiB escaped; 200 KiB of letters is fine. */
  size_t big = 200 * 1024;
  char *key = malloc(big + 1);
  memset(key, 1, big);
  key[big] = '\0';
  flat_item huge = flat_item_of("", key, 1.0, false);
  assert_int_equal(spool_append_metrics_items(sp, 8, &huge, 1, &dropped),
                   CHUB_EINVAL);
  memset(key, 'k', big);
  huge = flat_item_of("", key, 1.0, false);
  assert_int_equal(spool_append_metrics_items(sp, 8, &huge, 1, &dropped),
                   CHUB_OK);
  assert_int_equal(spool_read_metrics(sp, 8, &got), CHUB_OK);
  assert_true(strlen(got) > big);
  free(got);
  free(key);
  spool_close(sp);
}

/* The spool checks the entries it frames: a byte to escape anywhere in a
 * key (prefix or name, at every length and position) is kept and comes
 * back escaped; a broken UTF-8 sequence anywhere leaves just that entry
 * out and says so. */
static void test_items_keys_every_position(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  int epoch = 0;
  for (size_t len = 1; len <= 50; len++)
    for (size_t pos = 0; pos < len + 6; pos++) {
      char name[64], key[72], bad[64];
      memset(name, 'n', len);
      name[len] = '\0';
      memcpy(bad, name, sizeof name);
      const char *prefix = "train/";
      char pre[8];
      if (pos < 6) { /* the special byte in the prefix */
        memcpy(pre, "train/", 7);
        pre[pos] = '"';
        prefix = pre;
      } else {
        name[pos - 6] = (char)(pos % 2 ? '\\' : '\n');
        bad[pos - 6] = (char)0xb5;
      }
      snprintf(key, sizeof key, "%s%s", prefix, name);
      flat_item it[] = {flat_item_of(prefix, name, 0.5, false),
                        flat_item_of("train/", bad, 1.5, false),
                        flat_item_of("", "after", 2.5, false)};
      bool dropped = false;
      assert_int_equal(spool_append_metrics_items(sp, epoch, it, 3, &dropped),
                       CHUB_OK);
      assert_int_equal(dropped, pos >= 6);
      char *got = NULL;
      assert_int_equal(spool_read_metrics(sp, epoch, &got), CHUB_OK);
      json_t *j = json_loads(got, JSON_REJECT_DUPLICATES, NULL);
      assert_non_null(j);
      assert_int_equal(json_object_size(j), pos >= 6 ? 2 : 3);
      assert_true(json_real_value(json_object_get(j, key)) == 0.5);
      assert_true(json_real_value(json_object_get(j, "after")) == 2.5);
      json_decref(j);
      free(got);
      epoch++;
    }
  spool_close(sp);
}

static void test_one_owner_at_a_time(void **state) {
  fixture *f = *state;
  spool *a = NULL, *b = NULL;
  assert_int_equal(spool_open(f->dir, 0, &a), CHUB_OK);
  assert_int_equal(spool_open(f->dir, 0, &b), CHUB_EIO);
  assert_null(b);
  assert_true(th_log_contains("in use"));
  spool_close(a);
  assert_int_equal(spool_open(f->dir, 0, &b), CHUB_OK);
  spool_close(b);
}

static void count_record(int type, const unsigned char *p, size_t len,
                         void *user) {
  (void)p;
  (void)len;
  int *counts = user;
  if (type >= 1 && type <= 5)
    counts[type]++;
}

static void test_scan(void **state) {
  fixture *f = *state;
  /* epochs 0-2 (0 and 2 as JSON, 1 as entries), 1 ckpt, 1 metrics-ack,
   * epoch 3 (entries) */
  build_log(f, 4);
  size_t len = 0;
  unsigned char *buf = spool_test_slurp(f->log_path, &len);
  int counts[6] = {0};
  assert_int_equal(spool_scan(buf, len, count_record, counts), len);
  assert_int_equal(counts[SPOOL_METRICS], 2);
  assert_int_equal(counts[SPOOL_METRICS_ITEMS], 2);
  assert_int_equal(counts[SPOOL_METRICS_ACK], 1);
  assert_int_equal(counts[SPOOL_CKPT], 1);
  int none[6] = {0};
  assert_int_equal(spool_scan(buf, len - 1, count_record, none) < len - 1, 1);
  assert_int_equal(none[SPOOL_METRICS] + none[SPOOL_METRICS_ITEMS], 3);
  free(buf);
}

/* Not a pass/fail: prints what an append costs, the number the training
 * thread pays per epoch. */
static void test_append_cost(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(f->dir, 0, &sp), CHUB_OK);
  char json[512];
  spool_test_json(json, sizeof json, 1, 1);
  const int n = 20000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int e = 0; e < n; e++)
    assert_int_equal(spool_append_metrics(sp, e, json), CHUB_OK);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
               (double)(t1.tv_nsec - t0.tv_nsec)) /
              n;
  printf("append: %d metrics records of %zu bytes, %.0f ns per append\n", n,
         strlen(json), ns);
  int epochs[4];
  assert_int_equal(pending(sp, epochs, 4), 4);
  spool_close(sp);
}

int main(void) {
  th_log_install(CHUB_LOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_requeue_replaces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ack_after_requeue_keeps_newer, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ack_and_compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_flipped_bits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bound_refuses_with_one_warning,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ckpt_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newer_format_left_untouched, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_record_formats, setup, teardown),
      cmocka_unit_test_setup_teardown(test_items_as_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_items_keys_every_position, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_one_owner_at_a_time, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
      cmocka_unit_test_setup_teardown(test_append_cost, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

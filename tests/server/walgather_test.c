/*
 * walgather_test.c - unit test of walgather.c, the SQLite file layer that
 * gathers a commit's log writes into one: rows of every size from one
 * byte to several MiB (a commit larger than the gathering buffer, and
 * one larger than what the default VFS writes in one call) read back
 * byte for byte, at once, by another connection of the default VFS; and
 * the files as they are after each COMMIT returned, copied elsewhere and
 * opened there, hold every committed row, so nothing committed is still
 * in memory when SQLite's sync returns; and each commit's sync is timed
 * for the observer given to walgather_init. Real files in a temporary
 * directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "th_bytes.h"
#include "th_tmpdir.h"
#include "walgather.h"

static const size_t sizes[] = {1,     100,    4000,    4097,           65536,
                               70000, 300000, 1500000, 3 * 1024 * 1024};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static sqlite3 *open_db(const char *path, const char *vfs) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
  if (rc != SQLITE_OK)
    fail_msg("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
  return db;
}

static void exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
}

/* Row id's blob in db equals the pattern of size n and seed. */
static void expect_row(sqlite3 *db, int id, size_t n, uint32_t seed) {
  sqlite3_stmt *st;
  assert_int_equal(
      sqlite3_prepare_v2(db, "SELECT b FROM t WHERE id = ?1", -1, &st, NULL),
      SQLITE_OK);
  sqlite3_bind_int(st, 1, id);
  if (sqlite3_step(st) != SQLITE_ROW)
    fail_msg("row %d (%zu bytes) is missing: %s", id, n, sqlite3_errmsg(db));
  unsigned char *want = th_pattern(n, seed);
  const void *got = sqlite3_column_blob(st, 0);
  assert_int_equal((size_t)sqlite3_column_bytes(st, 0), n);
  if (memcmp(got, want, n) != 0)
    fail_msg("row %d (%zu bytes) differs from what was written", id, n);
  free(want);
  sqlite3_finalize(st);
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (!in)
    return -1;
  FILE *out = fopen(to, "wb");
  if (!out) {
    fclose(in);
    return -1;
  }
  char buf[65536];
  size_t n;
  int ok = 1;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    ok &= fwrite(buf, 1, n, out) == n;
  ok &= !ferror(in);
  fclose(in);
  ok &= fclose(out) == 0;
  return ok ? 0 : -1;
}

static int syncs; /* of a log, as walgather_init's observer saw them */

static void synced(double seconds) {
  assert_true(seconds >= 0);
  syncs++;
}

static void walgather_rows_every_size(void **state) {
  (void)state;
  char *dir = th_tmpdir_new("chub-walgather");
  assert_non_null(dir);
  assert_int_equal(walgather_init(synced), SQLITE_OK);
  char path[4200], copy[4200], from[4300], to[4300];
  snprintf(path, sizeof path, "%s/w.db", dir);
  snprintf(copy, sizeof copy, "%s/copy.db", dir);

  sqlite3 *w = open_db(path, WALGATHER_VFS);
  exec(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
          "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL);");
  sqlite3 *r = open_db(path, NULL); /* the default VFS */
  sqlite3_stmt *ins;
  assert_int_equal(sqlite3_prepare_v2(w,
                                      "INSERT INTO t (id, b) VALUES (?1, ?2)",
                                      -1, &ins, NULL),
                   SQLITE_OK);
  for (size_t i = 0; i < NSIZES; i++) {
    unsigned char *b = th_pattern(sizes[i], (uint32_t)i + 7);
    sqlite3_bind_int(ins, 1, (int)i);
    sqlite3_bind_blob(ins, 2, b, (int)sizes[i], SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
      fail_msg("storing %zu bytes: %s", sizes[i], sqlite3_errmsg(w));
    sqlite3_reset(ins);
    free(b);
    /* synchronous=FULL: each commit synced the log, and was timed. */
    assert_true(syncs >= (int)i + 1);
    /* Another connection sees it at once, and so does the writer. */
    for (size_t k = 0; k <= i; k++) {
      expect_row(r, (int)k, sizes[k], (uint32_t)k + 7);
      expect_row(w, (int)k, sizes[k], (uint32_t)k + 7);
    }
    /* What the files hold now (the writer still open) is every commit. */
    static const char *const suffix[] = {"", "-wal"};
    for (int s = 0; s < 2; s++) {
      snprintf(from, sizeof from, "%s%s", path, suffix[s]);
      snprintf(to, sizeof to, "%s%s", copy, suffix[s]);
      assert_int_equal(copy_file(from, to), 0);
    }
    sqlite3 *c = open_db(copy, NULL);
    for (size_t k = 0; k <= i; k++)
      expect_row(c, (int)k, sizes[k], (uint32_t)k + 7);
    assert_int_equal(sqlite3_close(c), SQLITE_OK);
    remove(copy);
    snprintf(to, sizeof to, "%s-wal", copy);
    remove(to);
    snprintf(to, sizeof to, "%s-shm", copy);
    remove(to);
  }
  sqlite3_finalize(ins);
  /* Rewritten in place, and checkpointed: still the same bytes. */
  exec(w, "UPDATE t SET b = b WHERE id % 2 = 0;"
          "PRAGMA wal_checkpoint(TRUNCATE);");
  for (size_t k = 0; k < NSIZES; k++)
    expect_row(r, (int)k, sizes[k], (uint32_t)k + 7);
  assert_int_equal(sqlite3_close(r), SQLITE_OK);
  assert_int_equal(sqlite3_close(w), SQLITE_OK);
  th_tmpdir_remove(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(walgather_rows_every_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

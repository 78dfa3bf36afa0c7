/*
 * server_keycache.c - conformance: a key revoked where this chubd cannot
 * see it (another instance on the same database revoked it, so this one's
 * DATA/keys.stamp never moved) is refused within the key cache's lifetime,
 * not served forever from memory.
 *
 * The other instance is played by writing the revocation straight into
 * the database (SQLite's file, or the PostgreSQL database the test chubd
 * runs on), exactly the row change `chubd keys revoke` makes, without
 * touching the stamp. The wait is a bounded poll, not a timing
 * assertion.
 */
#include "sv.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void server_keycache_revoked_elsewhere(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "elsewhere");
  assert_non_null(key);
  /* Used, so cached. */
  for (int i = 0; i < 3; i++)
    json_decref(sv_expect(p, "GET", "/v1/models", key, NULL, 200));

  struct timeval tv;
  gettimeofday(&tv, NULL);
  char *sql = th_fmt("UPDATE keys SET revoked_ms = %lld WHERE prefix = '%.6s'",
                     (long long)tv.tv_sec * 1000, key);
  if (chubd_proc_db(p)) {
    /* PostgreSQL: the row change another chubd on the database makes. */
    char *q = th_fmt("WITH u AS (%s RETURNING 1) SELECT count(*) FROM u", sql);
    char *n = chubd_proc_db_query(p, q);
    assert_non_null(n);
    assert_string_equal(n, "1");
    free(n);
    free(q);
  } else {
    char *db_path = sv_find_sqlite(chubd_proc_data_dir(p));
    assert_non_null(db_path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    free(db_path);
  }
  free(sql);

  long status = 200;
  for (int i = 0; i < 100 && status == 200; i++) {
    json_decref(sv_json(p, "GET", "/v1/models", key, NULL, &status));
    if (status == 200)
      sv_sleep_ms(100);
  }
  if (status != 401)
    fail_msg("a key revoked in the database still answers %ld after 10 s",
             status);
  free(key);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_keycache_revoked_elsewhere),
  };
  return cmocka_run_group_tests_name("server_keycache", tests, sv_group_setup,
                                     sv_group_teardown);
}

/*
 * server_keycache.c - conformance (PostgreSQL): a key revoked where this
 * chubd cannot see it (another instance on the same database revoked it,
 * so this one's DATA/keys.stamp never moved) is refused within the key
 * cache's lifetime, not served forever from memory.
 *
 * The other instance is played by writing the revocation straight into
 * the database the test chubd runs on, exactly the row change `chubd keys
 * revoke` makes, without touching the stamp. The wait is a bounded poll,
 * not a timing assertion.
 */
#include "sv.h"

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
  /* The row change another chubd on the database makes. */
  assert_non_null(chubd_proc_db(p)); /* registered on PostgreSQL only */
  char *q = th_fmt("WITH u AS (%s RETURNING 1) SELECT count(*) FROM u", sql);
  char *n = chubd_proc_db_query(p, q);
  assert_non_null(n);
  assert_string_equal(n, "1");
  free(n);
  free(q);
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
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_keycache", tests, sv_group_setup, sv_group_teardown));
}

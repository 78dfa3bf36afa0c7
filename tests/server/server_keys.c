/*
 * server_keys.c - conformance: API key management (the chubd interface spec
 * `chubd --data DIR keys create NAME | keys list | keys revoke PREFIX`).
 *
 * A key is shown once, at creation; afterwards only its prefix is ever
 * printed, and the data directory holds no plaintext copy of it (the test
 * scans every file's bytes, the SQLite database and its WAL included).
 */
#include "sv.h"

#include <stdlib.h>
#include <string.h>

static void server_keys_create_prints_key(void **state) {
  chubd_proc *p = *state;
  const char *args[] = {"keys", "create", "printer", NULL};
  char *out = NULL;
  assert_int_equal(chubd_proc_cli(p, args, &out), 0);
  assert_non_null(out);
  /* Exactly the 42-character key and a newline, nothing else. */
  assert_int_equal(strlen(out), 43);
  assert_int_equal(out[42], '\n');
  out[42] = '\0';
  assert_true(sv_is_alnum(out, 42));
  json_t *env = sv_expect(p, "POST", "/v1/auth", out, NULL, 200);
  json_decref(env);
  free(out);
}

static void server_keys_unique(void **state) {
  chubd_proc *p = *state;
  char *k[4];
  for (int i = 0; i < 4; i++) {
    k[i] = chubd_proc_create_key(p, "same-name");
    assert_non_null(k[i]);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(k[i], k[j]);
  }
  for (int i = 0; i < 4; i++)
    free(k[i]);
}

static void server_keys_list_and_revoke(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "listed-owner");
  assert_non_null(key);
  const char *list_args[] = {"keys", "list", NULL};
  char *list = NULL;
  assert_int_equal(chubd_proc_cli(p, list_args, &list), 0);
  assert_non_null(list);
  /* The list names the owner and a prefix, never the whole key. */
  assert_non_null(strstr(list, "listed-owner"));
  assert_null(strstr(list, key));
  assert_null(strstr(list, chubd_proc_key(p)));
  char *prefix = sv_listed_prefix(list, key);
  if (!prefix)
    fail_msg("`keys list` shows no prefix of the new key:\n%s", list);
  free(list);

  const char *revoke[] = {"keys", "revoke", prefix, NULL};
  assert_int_equal(chubd_proc_cli(p, revoke, NULL), 0);
  json_t *env = sv_expect(p, "POST", "/v1/auth", key, NULL, 401);
  json_decref(env);
  env = sv_expect(p, "GET", "/v1/models", key, NULL, 401);
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/auth", chubd_proc_key(p), NULL, 200);
  json_decref(env);

  /* Revoking what does not exist fails with a non-zero status. */
  const char *none[] = {"keys", "revoke", "zzzzzzzzzzzz", NULL};
  assert_true(chubd_proc_cli(p, none, NULL) != 0);
  free(prefix);
  free(key);
}

static void server_keys_no_plaintext(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "secretive");
  assert_non_null(key);
  /* Use it so any cache or log of keys has had its chance to be written. */
  json_t *env = sv_expect(p, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  char *id = sv_create(p, key, "k.pt");
  free(id);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), key, 42, 1), 0);
  assert_int_equal(
      sv_files_gone(chubd_proc_data_dir(p), chubd_proc_key(p), 42, 1), 0);
  /* Not in chubd's log either. */
  const char *log = chubd_proc_log_path(p);
  FILE *f = fopen(log, "rb");
  if (f) {
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_null(memmem(buf, n, key, 42));
  }
  /* And the store does exist: the scan looked at a real database. */
  if (chubd_proc_db(p)) {
    /* On PostgreSQL the keys are in the database, not the data dir: it
     * holds their hashes and never the key. */
    char *sql = th_fmt("SELECT count(*) FROM keys WHERE position('%.42s' IN "
                       "owner || prefix || encode(hash, 'escape')) > 0",
                       key);
    char *n = chubd_proc_db_query(p, sql);
    assert_non_null(n);
    assert_string_equal(n, "0");
    free(n);
    free(sql);
    n = chubd_proc_db_query(p, "SELECT count(*) FROM keys");
    assert_non_null(n);
    assert_true(atoi(n) >= 2);
    free(n);
  } else {
    char *db = sv_find_sqlite(chubd_proc_data_dir(p));
    assert_non_null(db);
    free(db);
  }
  free(key);
}

/* Even a --verbose log, which a person may paste into a bug report, never
 * holds a key, whichever header carried it. */
static void server_keys_not_in_verbose_log(void **state) {
  (void)state;
  const char *args[] = {"--verbose", NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  json_t *env = sv_expect(p, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  char *id = sv_create(p, key, "v.pt");
  char *url = th_fmt("%s/v1/models/%s", chubd_proc_base_url(p), id);
  char *authz = th_fmt("authorization: Bearer %s", key);
  const char *hdrs[] = {authz, NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  th_response_free(&r);
  char *login = th_fmt("%s/ui/login", chubd_proc_base_url(p));
  char *body = th_fmt("{\"key\": \"%s\"}", key);
  const char *json_h[] = {"Content-Type: application/json", NULL};
  assert_int_equal(
      th_request_hdrs("POST", login, json_h, body, strlen(body), &r), 0);
  th_response_free(&r);
  assert_int_equal(chubd_proc_stop(p), 0);
  FILE *f = fopen(chubd_proc_log_path(p), "rb");
  assert_non_null(f);
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  int leaked = memmem(buf, n, key, 42) != NULL;
  free(buf);
  if (leaked)
    fail_msg("chubd's --verbose log holds the key");
  free(body);
  free(login);
  free(authz);
  free(url);
  free(id);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_keys_create_prints_key),
      cmocka_unit_test(server_keys_unique),
      cmocka_unit_test(server_keys_list_and_revoke),
      cmocka_unit_test(server_keys_no_plaintext),
      cmocka_unit_test(server_keys_not_in_verbose_log),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_keys", tests, sv_group_setup, sv_group_teardown));
}

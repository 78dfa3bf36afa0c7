/*
 * server_auth.c - conformance: authentication (hub-api.md "Requests and
 * answers", POST /v1/auth) and the health endpoint.
 *
 * Every /v1 endpoint but /v1/events and /v1/health needs a key, by
 * `x-api-key` or `authorization: Bearer`; missing, unknown and revoked keys
 * answer 401 with an envelope, never 403 or 500.
 */
#include "sv.h"
#include <errno.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

static void server_auth_ok(void **state) {
  chubd_proc *p = *state;
  json_t *env = sv_expect(p, "POST", "/v1/auth", chubd_proc_key(p), NULL, 200);
  const char *uid = th_json_str(env, "data.uid");
  assert_non_null(uid);
  assert_true(strlen(uid) > 0);
  json_decref(env);
}

static void server_auth_missing_key(void **state) {
  chubd_proc *p = *state;
  json_t *env = sv_expect(p, "POST", "/v1/auth", NULL, NULL, 401);
  json_decref(env);
  env = sv_expect(p, "GET", "/v1/models", NULL, NULL, 401);
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/models", NULL,
                  "{\"meta\": {\"name\": \"x\"}}", 401);
  json_decref(env);
}

static void server_auth_unknown_key(void **state) {
  chubd_proc *p = *state;
  /* The right shape, never issued. */
  const char *bogus = "abcdefghijABCDEFGHIJ0123456789abcdefghijKL";
  json_t *env = sv_expect(p, "POST", "/v1/auth", bogus, NULL, 401);
  json_decref(env);
  env = sv_expect(p, "GET", "/v1/models", bogus, NULL, 401);
  json_decref(env);
  /* A wrong shape is just as unknown. */
  env = sv_expect(p, "POST", "/v1/auth", "short", NULL, 401);
  json_decref(env);
}

static void server_auth_bearer_alias(void **state) {
  chubd_proc *p = *state;
  char *url = th_fmt("%s/v1/auth", chubd_proc_base_url(p));
  char *authz = th_fmt("authorization: Bearer %s", chubd_proc_key(p));
  const char *hdrs[] = {authz, "Content-Type: application/json", NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("POST", url, hdrs, "{}", 2, &r), 0);
  assert_int_equal(r.status, 200);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  assert_non_null(th_json_str(env, "data.uid"));
  json_decref(env);
  th_response_free(&r);

  const char *bad[] = {"authorization: Bearer "
                       "abcdefghijABCDEFGHIJ0123456789abcdefghijKL",
                       NULL};
  assert_int_equal(th_request_hdrs("POST", url, bad, NULL, 0, &r), 0);
  assert_int_equal(r.status, 401);
  th_response_free(&r);
  free(authz);
  free(url);
}

static void server_auth_revoked_key(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "revokee");
  assert_non_null(key);
  json_t *env = sv_expect(p, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);

  /* Revoke by the prefix `keys list` shows, while chubd runs. */
  sv_revoke_key(p, key);

  env = sv_expect(p, "POST", "/v1/auth", key, NULL, 401);
  json_decref(env);
  env = sv_expect(p, "GET", "/v1/models", key, NULL, 401);
  json_decref(env);
  /* Other keys are untouched. */
  env = sv_expect(p, "POST", "/v1/auth", chubd_proc_key(p), NULL, 200);
  json_decref(env);
  free(key);
}

/* chubd watches DATA/keys.stamp through the file it opened: once that
 * file is removed, a revocation (which writes a new stamp) still counts
 * from the next request, though the key was cached. */
static void server_auth_revoked_after_stamp_removed(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "stamp-gone");
  assert_non_null(key);
  json_t *env = sv_expect(p, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  char *stamp = th_fmt("%s/keys.stamp", chubd_proc_data_dir(p));
  if (unlink(stamp) != 0)
    fail_msg("cannot remove %s: %s", stamp, strerror(errno));
  free(stamp);
  env = sv_expect(p, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  sv_revoke_key(p, key);
  env = sv_expect(p, "POST", "/v1/auth", key, NULL, 401);
  json_decref(env);
  free(key);
}

static void server_auth_uid_per_owner(void **state) {
  chubd_proc *p = *state;
  char *other = chubd_proc_create_key(p, "someone-else");
  assert_non_null(other);
  json_t *a = sv_expect(p, "POST", "/v1/auth", chubd_proc_key(p), NULL, 200);
  json_t *b = sv_expect(p, "POST", "/v1/auth", other, NULL, 200);
  assert_string_not_equal(th_json_str(a, "data.uid"),
                          th_json_str(b, "data.uid"));
  json_decref(a);
  json_decref(b);
  free(other);
}

static void server_health(void **state) {
  chubd_proc *p = *state;
  json_t *env = sv_expect(p, "GET", "/v1/health", NULL, NULL, 200);
  const char *version = th_json_str(env, "data.version");
  assert_non_null(version);
  assert_true(strlen(version) > 0);
  if (chubd_proc_db(p))
    sv_assert_str(th_json_str(env, "data.store"), "postgresql");
  else
    sv_assert_str(th_json_str(env, "data.store"), "sqlite");
  json_decref(env);
}

static void server_listening_line(void **state) {
  chubd_proc *p = *state;
  /* chubd logs its address on stderr when ready. */
  FILE *f = fopen(chubd_proc_log_path(p), "r");
  assert_non_null(f);
  char line[512];
  char *want = th_fmt("chubd: listening on %s", chubd_proc_base_url(p));
  int found = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, want))
      found = 1;
  fclose(f);
  if (!found)
    chubd_proc_dump_log(p, 2048);
  assert_true(found);
  free(want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_auth_ok),
      cmocka_unit_test(server_auth_missing_key),
      cmocka_unit_test(server_auth_unknown_key),
      cmocka_unit_test(server_auth_bearer_alias),
      cmocka_unit_test(server_auth_revoked_key),
      cmocka_unit_test(server_auth_revoked_after_stamp_removed),
      cmocka_unit_test(server_auth_uid_per_owner),
      cmocka_unit_test(server_health),
      cmocka_unit_test(server_listening_line),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_auth", tests, sv_group_setup, sv_group_teardown));
}

/*
 * server_isolation.c - conformance: one owner cannot see or touch another
 * owner's models (hub-api.md: 404, never 403, so existence is not
 * revealed).
 *
 * Owner B tries every endpoint on owner A's model; each answers exactly as
 * for a model that does not exist, and A's model is unchanged afterwards.
 */
#include "sv.h"

#include <stdlib.h>
#include <string.h>

static void server_isolation_all_endpoints(void **state) {
  chubd_proc *p = *state;
  const char *a = chubd_proc_key(p);
  char *b = chubd_proc_create_key(p, "intruder");
  assert_non_null(b);
  char *id = sv_create(p, a, "private.pt");
  assert_int_equal(sv_metrics(p, a, id, "{\"0\": \"{\\\"loss\\\": 3}\"}"), 200);
  size_t len = 5000;
  unsigned char *bytes = sv_bytes(len, 9);
  char hex[65];
  th_sha256_hex(bytes, len, hex);
  th_response r;
  assert_int_equal(
      sv_upload(p, a, id, 0, "epoch", "True", bytes, len, NULL, &r), 200);
  th_response_free(&r);

  struct {
    const char *method, *fmt, *body;
  } calls[] = {
      {"GET", "/v1/models/%s", NULL},
      {"PATCH", "/v1/models/%s", "{\"meta\": {\"name\": \"stolen\"}}"},
      {"DELETE", "/v1/models/%s?hard=true", NULL},
      {"POST", "/v1/models/%s",
       "{\"type\": \"metrics\", \"metrics\": {\"0\": \"{\\\"loss\\\": 9}\"}}"},
      {"GET", "/v1/models/%s/metrics", NULL},
      {"GET", "/v1/models/%s/weights/last", NULL},
      {"GET", "/v1/models/%s/weights/best", NULL},
      {"POST", "/v1/agent/heartbeat/models/%s",
       "{\"agent\": \"x\", \"agentId\": null}"},
  };
  for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
    char *path = th_fmt(calls[i].fmt, id);
    json_t *env = sv_expect(p, calls[i].method, path, b, calls[i].body, 404);
    json_decref(env);
    free(path);
  }
  /* By sha256 too. */
  char *path = th_fmt("/v1/models/%s/weights/%s", id, hex);
  json_t *env = sv_expect(p, "GET", path, b, NULL, 404);
  json_decref(env);
  free(path);
  /* Upload. */
  unsigned char *evil = sv_bytes(len, 99);
  assert_int_equal(sv_upload(p, b, id, 1, "final", NULL, evil, len, NULL, &r),
                   404);
  th_response_free(&r);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), evil, len, 0), 0);

  /* B's list does not include it. */
  env = sv_expect(p, "GET", "/v1/models?limit=100", b, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 0);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 0);
  json_decref(env);

  /* A's model is as A left it. */
  json_t *m = sv_model(p, a, id);
  sv_assert_str(th_json_str(m, "meta.name"), "private.pt");
  sv_assert_str(th_json_str(m, "status"), "training");
  assert_null(th_json_at(m, "agent"));
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 1);
  assert_int_equal(th_json_int(m, "metrics_count", -1), 1);
  json_decref(m);
  path = th_fmt("/v1/models/%s/metrics", id);
  env = sv_expect(p, "GET", path, a, NULL, 200);
  assert_int_equal(th_json_int(env, "data.0.metrics.loss", -1), 3);
  json_decref(env);
  free(path);

  /* And A's list does include it. */
  env = sv_expect(p, "GET", "/v1/models?limit=100", a, NULL, 200);
  json_t *res = th_json_at(env, "data.results");
  int found = 0;
  size_t k;
  json_t *v;
  json_array_foreach(res, k, v) {
    if (strcmp(th_json_str(v, "id"), id) == 0)
      found = 1;
  }
  assert_true(found);
  json_decref(env);
  free(evil);
  free(bytes);
  free(id);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_isolation_all_endpoints),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_isolation", tests, sv_group_setup, sv_group_teardown));
}

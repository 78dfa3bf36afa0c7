/*
 * server_events.c - conformance: anonymous usage events (hub-api.md
 * POST /v1/events).
 *
 * No key is needed; the limits (25 events, 25 flat params each, a known
 * event name) are what keeps an open endpoint from being a dumping ground,
 * so each one is probed just past its edge.
 */
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *server_events_body(int n_events, int n_params, const char *name,
                                int nested) {
  json_t *events = json_array();
  for (int e = 0; e < n_events; e++) {
    json_t *params = json_object();
    for (int i = 0; i < n_params; i++) {
      char k[16];
      snprintf(k, sizeof k, "p%d", i);
      json_object_set_new(params, k,
                          i % 3 == 0   ? json_string("cpu")
                          : i % 3 == 1 ? json_real(0.5)
                                       : json_true());
    }
    if (nested)
      json_object_set_new(params, "nested", json_pack("{s:i}", "x", 1));
    json_array_append_new(
        events, json_pack("{s:s,s:o}", "name", name, "params", params));
  }
  json_t *body =
      json_pack("{s:s,s:o}", "client_id", "0123456789abcdef", "events", events);
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  return s;
}

static void server_events_valid(void **state) {
  chubd_proc *p = *state;
  const char *names[] = {"train", "val", "predict", "export"};
  for (int i = 0; i < 4; i++) {
    char *b = server_events_body(1, 5, names[i], 0);
    json_t *env = sv_expect(p, "POST", "/v1/events", NULL, b, 200);
    json_decref(env);
    free(b);
  }
  /* The limits themselves are allowed. */
  char *b = server_events_body(25, 25, "train", 0);
  json_t *env = sv_expect(p, "POST", "/v1/events", NULL, b, 200);
  json_decref(env);
  free(b);
  /* A key is not needed, and one sent is no harm. */
  b = server_events_body(2, 2, "predict", 0);
  env = sv_expect(p, "POST", "/v1/events", chubd_proc_key(p), b, 200);
  json_decref(env);
  free(b);
}

static void server_events_limits(void **state) {
  chubd_proc *p = *state;
  char *b = server_events_body(26, 1, "train", 0);
  json_t *env = sv_expect(p, "POST", "/v1/events", NULL, b, 400);
  assert_true(sv_message_has(env, "25"));
  json_decref(env);
  free(b);

  b = server_events_body(1, 26, "train", 0);
  env = sv_expect(p, "POST", "/v1/events", NULL, b, 400);
  assert_true(sv_message_has(env, "25"));
  json_decref(env);
  free(b);

  b = server_events_body(1, 2, "train", 1);
  env = sv_expect(p, "POST", "/v1/events", NULL, b, 400);
  assert_true(sv_message_has(env, "nested"));
  json_decref(env);
  free(b);

  b = server_events_body(1, 2, "mine_bitcoin", 0);
  env = sv_expect(p, "POST", "/v1/events", NULL, b, 400);
  assert_true(sv_message_has(env, "name"));
  json_decref(env);
  free(b);
}

static void server_events_bad_shapes(void **state) {
  chubd_proc *p = *state;
  const char *bodies[] = {
      "",
      "[]",
      "{\"client_id\": \"x\"}",
      "{\"client_id\": \"x\", \"events\": {}}",
      "{\"client_id\": \"x\", \"events\": [1]}",
      "{\"client_id\": \"x\", \"events\": [{\"params\": {}}]}",
      "{\"client_id\": \"x\", \"events\": [{\"name\": \"train\", \"params\": "
      "[1]}]}",
      "{\"client_id\": 5, \"events\": []}",
      "{\"client_id\": \"x\", \"events\": [{\"name\": \"train\", \"params\": "
      "{\"a\": [1]}}]}",
      "{\"client_id\": \"x\", \"events\": [{\"name\": \"train\"",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
    json_t *env = sv_expect(p, "POST", "/v1/events", NULL, bodies[i], 400);
    json_decref(env);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_events_valid),
      cmocka_unit_test(server_events_limits),
      cmocka_unit_test(server_events_bad_shapes),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_events", tests, sv_group_setup, sv_group_teardown));
}

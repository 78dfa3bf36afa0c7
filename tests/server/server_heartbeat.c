/*
 * server_heartbeat.c - conformance: agent heartbeats (hub-api.md
 * POST /v1/agent/heartbeat/models/{id}) and the `disconnected` status.
 *
 * The server issues an agent id on the first heartbeat and the client sends
 * it back; the model then shows its agent and is `training`. A model whose
 * agent went quiet for --agent-timeout shows `disconnected`; that is
 * checked with a one-second timeout and a bounded poll, not a timing
 * assertion.
 */
#include "sv.h"

#include <stdlib.h>
#include <string.h>

static json_t *server_heartbeat_send(chubd_proc *p, const char *id,
                                     const char *agent_id, long want) {
  char *path = th_fmt("/v1/agent/heartbeat/models/%s", id);
  json_t *body = json_pack("{s:s,s:o}", "agent", "chub-0.1.0-local", "agentId",
                           agent_id ? json_string(agent_id) : json_null());
  char *js = json_dumps(body, JSON_COMPACT);
  json_t *env = sv_expect(p, "POST", path, chubd_proc_key(p), js, want);
  free(js);
  json_decref(body);
  free(path);
  return env;
}

static void server_heartbeat_agent_id(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "hb.pt");
  json_t *env = server_heartbeat_send(p, id, NULL, 200);
  const char *agent = th_json_str(env, "data.agentId");
  assert_non_null(agent);
  assert_true(strlen(agent) > 0);
  char *agent_id = strdup(agent);
  json_decref(env);

  /* Sent back: the same id is answered (the client adopts the answer). */
  env = server_heartbeat_send(p, id, agent_id, 200);
  sv_assert_str(th_json_str(env, "data.agentId"), agent_id);
  json_decref(env);

  json_t *m = sv_model(p, chubd_proc_key(p), id);
  sv_assert_str(th_json_str(m, "status"), "training");
  sv_assert_str(th_json_str(m, "agent.id"), agent_id);
  sv_assert_str(th_json_str(m, "agent.name"), "chub-0.1.0-local");
  assert_true(sv_is_rfc3339_utc(th_json_str(m, "agent.last_heartbeat")));
  json_decref(m);
  free(agent_id);
  free(id);
}

static void server_heartbeat_bad(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "hbbad.pt");
  char *path = th_fmt("/v1/agent/heartbeat/models/%s", id);
  /* agent must be a string. */
  json_t *env = sv_expect(p, "POST", path, chubd_proc_key(p),
                          "{\"agent\": 5, \"agentId\": null}", 400);
  assert_true(sv_message_has(env, "agent"));
  json_decref(env);
  env = sv_expect(p, "POST", path, chubd_proc_key(p), "{\"agent\": ", 400);
  json_decref(env);
  /* No key, unknown model. */
  env = sv_expect(p, "POST", path, NULL,
                  "{\"agent\": \"a\", \"agentId\": null}", 401);
  json_decref(env);
  env = server_heartbeat_send(p, "AAAAAAAAAAAAAAAAAAAA", NULL, 404);
  json_decref(env);
  /* Nothing above made the model train. */
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  sv_assert_str(th_json_str(m, "status"), "new");
  assert_null(th_json_at(m, "agent"));
  json_decref(m);
  free(path);
  free(id);
}

static void server_heartbeat_trained_stays(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "done.pt");
  unsigned char *b = sv_bytes(2048, 5);
  th_response r;
  assert_int_equal(
      sv_upload(p, chubd_proc_key(p), id, 1, "final", NULL, b, 2048, NULL, &r),
      200);
  th_response_free(&r);
  /* A late heartbeat does not un-finish a trained model. */
  json_t *env = server_heartbeat_send(p, id, NULL, 200);
  json_decref(env);
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  sv_assert_str(th_json_str(m, "status"), "trained");
  json_decref(m);
  free(b);
  free(id);
}

static void server_heartbeat_disconnected(void **state) {
  (void)state;
  const char *args[] = {"--agent-timeout", "1", NULL};
  chubd_proc *p = sv_start(args);
  char *id = sv_create(p, chubd_proc_key(p), "quiet.pt");
  json_t *env = server_heartbeat_send(p, id, NULL, 200);
  char *agent_id = strdup(th_json_str(env, "data.agentId"));
  json_decref(env);

  /* Quiet for more than a second: disconnected. Poll, bounded to 6 s. */
  int seen = 0;
  for (int i = 0; i < 60 && !seen; i++) {
    sv_sleep_ms(100);
    json_t *m = sv_model(p, chubd_proc_key(p), id);
    seen = strcmp(th_json_str(m, "status"), "disconnected") == 0;
    json_decref(m);
  }
  if (!seen)
    chubd_proc_free(p);
  assert_true(seen);
  /* The agent comes back: training again. */
  env = server_heartbeat_send(p, id, agent_id, 200);
  json_decref(env);
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  sv_assert_str(th_json_str(m, "status"), "training");
  json_decref(m);
  /* A model with no agent at all is not disconnected: it is new. */
  char *fresh = sv_create(p, chubd_proc_key(p), "fresh.pt");
  sv_sleep_ms(1500);
  m = sv_model(p, chubd_proc_key(p), fresh);
  sv_assert_str(th_json_str(m, "status"), "new");
  json_decref(m);
  free(fresh);
  free(agent_id);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_heartbeat_agent_id),
      cmocka_unit_test(server_heartbeat_bad),
      cmocka_unit_test(server_heartbeat_trained_stays),
      cmocka_unit_test(server_heartbeat_disconnected),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_heartbeat", tests, sv_group_setup, sv_group_teardown));
}

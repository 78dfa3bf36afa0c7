/*
 * heartbeat.c - POST /v1/agent/heartbeat/models/{id}.
 *
 * The first heartbeat (agentId null) is given a fresh agent id; afterwards
 * the client sends its id back and keeps it. The model becomes `training`
 * and its agent's last heartbeat is what tells `disconnected` apart.
 * libchub adds `system`, the machine's load, kept by system.c.
 */
#include "server.h"

#include <string.h>

void heartbeat_post(chubd_request *req, chubd_reply *rep) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return;
  }
  const char *agent = NULL, *agent_id = NULL;
  json_t *system = NULL;
  if (validate_heartbeat(body, &agent, &agent_id, &system, err) < 0 ||
      system_check(system, err) < 0) {
    json_decref(body);
    reply_error(rep, 400, "%s", err);
    return;
  }
  char id[65];
  if (agent_id)
    snprintf(id, sizeof id, "%s", agent_id);
  else if (util_random_alnum(id, UTIL_ID_LEN) < 0) {
    json_decref(body);
    reply_error(rep, 503,
                "cannot issue an agent id: random generator "
                "failed");
    return;
  }
  store *st = req->srv->st;
  if (models_check(req, rep) < 0) {
    json_decref(body);
    return;
  }
  store_rc rc = st->ops->heartbeat(st, req->r.id, id, agent, util_now_ms());
  /* A model past its samples' cap keeps beating without new samples. */
  if (rc == STORE_OK && system) {
    store_rc keep = system_keep(req, req->r.id, -1, system);
    if (keep != STORE_LIMIT)
      rc = keep;
  }
  json_decref(body);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  reply_data(rep, 200, json_pack("{s:s}", "agentId", id), "heartbeat");
}

/*
 * events.c - POST /v1/events: anonymous usage events, no key needed.
 *
 * Checked against hub-api.md's limits (25 events, 25 flat params each,
 * known names) and stored one row per event for whoever runs the hub.
 */
#include "server.h"

#include <stdlib.h>

void events_post(chubd_request *req, chubd_reply *rep) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0 ||
      validate_events(body, err) < 0) {
    if (body)
      json_decref(body);
    reply_error(rep, 400, "%s", err);
    return;
  }
  json_t *events = json_object_get(body, "events");
  char *text = json_dumps(events, JSON_COMPACT | JSON_REAL_PRECISION(17));
  size_t n = json_array_size(events);
  store *st = req->srv->st;
  store_rc rc =
      text ? st->ops->events_add(
                 st, json_string_value(json_object_get(body, "client_id")),
                 text, util_now_ms())
           : STORE_ERROR;
  free(text);
  json_decref(body);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "events");
    return;
  }
  reply_data(rep, 200, json_pack("{s:I}", "events", (json_int_t)n),
             "events stored");
}

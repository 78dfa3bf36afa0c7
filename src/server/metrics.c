/*
 * metrics.c - per-epoch metrics: upload (POST /v1/models/{id} with type
 * metrics) and read-back (GET .../metrics).
 *
 * An upload is checked whole before anything is stored, then stored in one
 * transaction, so a request is all-or-nothing and re-sending it replaces
 * the same epochs: the idempotence a client relies on to retry after a
 * crash without duplicates. Metrics are kept re-encoded compactly and
 * decoded into objects on the way out.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>

void metrics_post(chubd_request *req, chubd_reply *rep) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return;
  }
  validate_epoch *e = NULL;
  size_t n = 0;
  int bad = validate_metrics(body, &e, &n, err) < 0;
  json_decref(body);
  if (bad) {
    reply_error(rep, 400, "%s", err);
    return;
  }
  /* The model and owner check happens inside the write transaction. */
  store *st = req->srv->st;
  store_rc rc =
      st->ops->metrics_put(st, req->r.id, req->owner, e, n, util_now_ms());
  validate_epochs_free(e, n);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "model %s not found", req->r.id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  char data[48];
  snprintf(data, sizeof data, "{\"epochs\":%zu}", n);
  reply_data_text(rep, 200, data, "metrics stored");
}

static int metrics_row(void *ud, int64_t epoch, const char *json) {
  json_t *arr = ud;
  json_t *m = json_loads(json, 0, NULL);
  if (!m)
    return 1;
  json_t *row =
      json_pack("{s:I, s:o}", "epoch", (json_int_t)epoch, "metrics", m);
  if (!row)
    return 1;
  return json_array_append_new(arr, row) == 0 ? 0 : 1;
}

void metrics_get(chubd_request *req, chubd_reply *rep) {
  if (models_check(req, rep) < 0)
    return;
  json_t *arr = json_array();
  store *st = req->srv->st;
  store_rc rc = st->ops->metrics_get(st, req->r.id, metrics_row, arr);
  if (rc != STORE_OK) {
    json_decref(arr);
    reply_store(rep, rc, "metrics");
    return;
  }
  reply_data(rep, 200, arr, "");
}

/*
 * metrics.c - per-epoch metrics: upload (POST /v1/models/{id} with type
 * metrics) and read-back (GET .../metrics).
 *
 * An upload is checked whole before anything is stored, then stored in one
 * transaction, so a request is all-or-nothing and re-sending it replaces
 * the same epochs: the idempotence a client relies on to retry after a
 * crash without duplicates. The store answers an upload later, from its
 * committer thread (see store_sqlite.c), so the request thread can serve
 * other connections while the upload waits for its transaction; http.c
 * suspends the connection meanwhile and answers after the commit. Metrics are
 * kept re-encoded compactly and decoded into objects on the way out.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>

int metrics_post_check(chubd_request *req, chubd_reply *rep, validate_epoch **e,
                       size_t *n) {
  char err[VALIDATE_ERR];
  json_t *body;
  *e = NULL;
  *n = 0;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return -1;
  }
  int bad = validate_metrics(body, e, n, err) < 0;
  json_decref(body);
  if (bad) {
    reply_error(rep, 400, "%s", err);
    return -1;
  }
  return 0;
}

store_rc metrics_post_queue(chubd_request *req, const validate_epoch *e,
                            size_t n, store_done_cb done, void *ud) {
  /* The model and owner check happens inside the write transaction. */
  store *st = req->srv->st;
  return st->ops->metrics_put_async(st, req->r.id, req->owner, e, n,
                                    util_now_ms(), done, ud);
}

void metrics_post_answer(chubd_request *req, chubd_reply *rep, store_rc rc,
                         size_t n) {
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

/*
 * system.c - the machine's load while a model trains.
 *
 *   GET /v1/models/{id}/system?after=SEQ&limit=N   (also under /ui)
 *
 * Samples come from two places: libchub adds `system` to each heartbeat
 * (an extension of the HUB protocol: sampled by time, epoch -1), and
 * Ultralytics Platform's epoch_end carries `system` (one per epoch, a
 * retried epoch replacing its sample). Both have Platform's shape, {cpu,
 * ram, disk{read_mbs, write_mbs, used_gb}, network{recv_mbs, sent_mbs},
 * gpus{"0": {usage, memory, temp, power}}}, and are kept as sent (an
 * object of at most SYSTEM_SAMPLE_MAX bytes) so the page draws both the
 * same. The page reads them in order after the last seq it has.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#define SYSTEM_LIST_DEFAULT 1000
#define SYSTEM_LIST_MAX 5000

int system_check(json_t *sample, char err[VALIDATE_ERR]) {
  if (!sample || json_is_null(sample))
    return 0;
  if (!json_is_object(sample)) {
    snprintf(err, VALIDATE_ERR, "field \"system\" must be an object");
    return -1;
  }
  size_t n =
      json_dumpb(sample, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(17));
  if (n == 0 || n > SYSTEM_SAMPLE_MAX) {
    snprintf(err, VALIDATE_ERR,
             "field \"system\" is %zu bytes of JSON, over the limit of %d", n,
             SYSTEM_SAMPLE_MAX);
    return -1;
  }
  return 0;
}

store_rc system_keep(chubd_request *req, const char *id, int64_t epoch,
                     json_t *sample) {
  char *text = json_dumps(sample, JSON_COMPACT | JSON_REAL_PRECISION(17));
  if (!text)
    return STORE_ERROR;
  store *st = req->srv->st;
  store_rc rc = st->ops->system_add(st, id, util_now_ms(), epoch, text,
                                    SYSTEM_SAMPLES_MAX);
  free(text);
  return rc;
}

typedef struct system_rows {
  json_t *samples;
  int64_t last;
} system_rows;

static int system_row(void *ud, int64_t seq, int64_t t_ms, int64_t epoch,
                      const char *body) {
  system_rows *rows = ud;
  json_t *sample = json_loads(body, JSON_DECODE_ANY, NULL);
  if (!sample)
    sample = json_null(); /* never stored so; kept readable anyway */
  json_t *o = json_pack("{s:I, s:I, s:o, s:o}", "seq", (json_int_t)seq, "t",
                        (json_int_t)t_ms, "epoch",
                        epoch >= 0 ? json_integer(epoch) : json_null(),
                        "system", sample);
  if (!o || json_array_append_new(rows->samples, o) < 0)
    return -1;
  rows->last = seq;
  return 0;
}

void system_list(chubd_request *req, chubd_reply *rep) {
  long long after, limit;
  if (httpd_query_int(req, rep, "after", 0, INT64_MAX / 2, 0, &after) < 0 ||
      httpd_query_int(req, rep, "limit", 1, SYSTEM_LIST_MAX,
                      SYSTEM_LIST_DEFAULT, &limit) < 0)
    return;
  if (models_check(req, rep) < 0)
    return;
  system_rows rows = {json_array(), after};
  store *st = req->srv->st;
  store_rc rc =
      st->ops->system_get(st, req->r.id, after, (int)limit, system_row, &rows);
  if (rc != STORE_OK) {
    json_decref(rows.samples);
    reply_store(rep, rc, "system samples");
    return;
  }
  int more = json_array_size(rows.samples) == (size_t)limit;
  reply_data(rep, 200,
             json_pack("{s:o, s:I, s:b}", "samples", rows.samples, "next",
                       (json_int_t)rows.last, "more", more),
             "");
}

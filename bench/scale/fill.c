/*
 * fill.c - fills a chubd data directory for bench/scale: MODELS models of
 * one owner, then one more (the newest) with EPOCHS epochs of metrics, the
 * way a long training run leaves it.
 *
 *   bench_scale_fill DATA_DIR OWNER MODELS EPOCHS
 *
 * Everything goes through the SQLite store chubd itself opens (its own
 * tables, statements and migrations): the models in transactions of
 * FILL_BATCH (store_sqlite_add_models), the epochs as one metrics upload.
 * Prints "big ID" and "small ID" (the big model and the oldest one) and
 * how long the fill took, on stdout.
 */
#include "store.h"
#include "util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILL_BATCH 5000

static double fill_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A model as `yolo train` creates it through hub-sdk: its JSON parts. */
static int fill_model(store_model *m, const char *owner, long i,
                      int64_t created_ms) {
  char buf[512];
  memset(m, 0, sizeof *m);
  if (util_random_alnum(m->id, UTIL_ID_LEN) < 0)
    return -1;
  snprintf(m->owner, sizeof m->owner, "%s", owner);
  snprintf(buf, sizeof buf, "{\"name\":\"run-%ld\"}", i);
  m->meta = strdup(buf);
  m->config = strdup("{\"batchSize\":16,\"epochs\":100,\"imageSize\":640,"
                     "\"patience\":100,\"device\":\"cpu\",\"cache\":\"ram\"}");
  m->dataset = strdup("{\"name\":\"coco8.yaml\"}");
  m->lineage = strdup("{\"architecture\":{\"name\":\"yolo11n\"},"
                      "\"parent\":{\"name\":\"yolo11n.pt\"}}");
  m->created_ms = created_ms;
  return m->meta && m->config && m->dataset && m->lineage ? 0 : -1;
}

/* n models, oldest first; the oldest one's id goes to first. */
static int fill_models(store *st, const char *owner, long n, int64_t now,
                       char first[UTIL_ID_LEN + 1]) {
  store_model *batch = calloc(FILL_BATCH, sizeof *batch);
  if (!batch)
    return -1;
  int rc = 0;
  for (long done = 0; rc == 0 && done < n;) {
    size_t k = 0;
    for (; k < FILL_BATCH && done + (long)k < n; k++)
      if (fill_model(&batch[k], owner, done + (long)k,
                     now - (n - done - (long)k) * 1000) < 0)
        rc = -1;
    if (rc == 0 && done == 0 && k > 0)
      memcpy(first, batch[0].id, UTIL_ID_LEN + 1);
    if (rc == 0 && store_sqlite_add_models(st, batch, k) != STORE_OK)
      rc = -1;
    for (size_t j = 0; j < k; j++)
      store_model_free(&batch[j]);
    done += (long)k;
  }
  free(batch);
  return rc;
}

/* Epoch i of a detection run: losses falling, mAP rising, with noise and
 * one spike (a bad batch) a quarter of the way in. */
static char *fill_epoch(long i, long epochs) {
  double t = (double)i / (double)(epochs > 1 ? epochs - 1 : 1);
  double noise = 0.02 * sin((double)i * 12.9898) * cos((double)i * 78.233);
  double spike = i == epochs / 4 ? 3.0 : 0.0;
  double loss = 1.6 * exp(-3.0 * t) + 0.4 + noise + spike;
  double map = 0.62 * (1.0 - exp(-4.0 * t)) + noise;
  char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"train/box_loss\":%.6g,\"train/cls_loss\":%.6g,"
           "\"train/dfl_loss\":%.6g,\"metrics/precision(B)\":%.6g,"
           "\"metrics/recall(B)\":%.6g,\"metrics/mAP50(B)\":%.6g,"
           "\"metrics/mAP50-95(B)\":%.6g,\"val/box_loss\":%.6g,"
           "\"val/cls_loss\":%.6g,\"val/dfl_loss\":%.6g,\"lr/pg0\":%.6g,"
           "\"lr/pg1\":%.6g,\"lr/pg2\":%.6g}",
           loss, loss * 1.3, loss * 0.9 + 0.5, map + 0.1, map + 0.05,
           map + 0.08, map, loss * 1.1, loss * 1.2, loss * 0.95 + 0.5,
           0.01 * (1.0 - t) + 1e-4, 0.01 * (1.0 - t) + 1e-4,
           0.01 * (1.0 - t) + 1e-4);
  return strdup(buf);
}

static int fill_big(store *st, const char *owner, long epochs, int64_t now,
                    char id[UTIL_ID_LEN + 1]) {
  store_model m;
  if (fill_model(&m, owner, -1, now) < 0)
    return -1;
  store_rc rc = store_sqlite_add_models(st, &m, 1);
  memcpy(id, m.id, UTIL_ID_LEN + 1);
  store_model_free(&m);
  if (rc != STORE_OK)
    return -1;
  store_epoch *e = calloc((size_t)epochs, sizeof *e);
  if (!e)
    return -1;
  int ok = 1;
  for (long i = 0; i < epochs; i++) {
    e[i].epoch = i;
    e[i].json = fill_epoch(i, epochs);
    ok = ok && e[i].json;
  }
  if (ok)
    ok = st->ops->metrics_put(st, id, owner, e, (size_t)epochs, now) ==
             STORE_OK &&
         st->ops->model_set_trained(st, id, now) == STORE_OK;
  for (long i = 0; i < epochs; i++)
    free(e[i].json);
  free(e);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: bench_scale_fill DATA_DIR OWNER MODELS EPOCHS\n");
    return 2;
  }
  long models = atol(argv[3]), epochs = atol(argv[4]);
  char err[512], big[UTIL_ID_LEN + 1], small[UTIL_ID_LEN + 1] = "";
  double t0 = fill_now();
  store *st = store_sqlite_open(argv[1], err, sizeof err);
  if (!st) {
    fprintf(stderr, "bench_scale_fill: %s\n", err);
    return 1;
  }
  int64_t now = util_now_ms();
  int rc = fill_models(st, argv[2], models, now - 1000, small);
  double t1 = fill_now();
  if (rc == 0)
    rc = fill_big(st, argv[2], epochs, now, big);
  double t2 = fill_now();
  st->ops->close(st);
  if (rc != 0) {
    fprintf(stderr, "bench_scale_fill: filling %s failed\n", argv[1]);
    return 1;
  }
  printf("big %s\n", big);
  printf("small %s\n", small);
  printf("fill %.2f s (%ld models), %.2f s (%ld epochs)\n", t1 - t0, models,
         t2 - t1, epochs);
  return 0;
}

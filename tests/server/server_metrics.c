/*
 * server_metrics.c - conformance: metrics upload and read-back
 * (hub-api.md POST /v1/models/{id} type "metrics", GET .../metrics).
 *
 * The wire format is odd on purpose (epoch keys are strings, each value is
 * a JSON-encoded string of a flat map) because the Python clients send it
 * so. The server must decode it, keep one record per epoch (a re-send
 * replaces: clients re-send after a crash), and refuse bad bodies with a
 * 400 that says what is wrong.
 */
#include "sv.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *server_metrics_read(chubd_proc *p, const char *id) {
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 200);
  free(path);
  json_t *data = json_incref(th_json_at(env, "data"));
  json_decref(env);
  assert_true(json_is_array(data));
  return data;
}

static double server_metrics_num(json_t *root, const char *path) {
  json_t *v = th_json_at(root, path);
  if (!json_is_number(v))
    fail_msg("%s is not a number", path);
  return json_number_value(v);
}

static void server_metrics_batch_in_order(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "m.pt");
  /* Out of order, and "10" sorts before "2" as a string. */
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), id,
                              "{\"2\": \"{\\\"train/box_loss\\\": 1.1}\", "
                              "\"0\": \"{\\\"train/box_loss\\\": 1.53, "
                              "\\\"metrics/mAP50-95(B)\\\": 0.21, "
                              "\\\"model/parameters\\\": 2590620}\", "
                              "\"10\": \"{\\\"train/box_loss\\\": 0.5}\", "
                              "\"1\": \"{\\\"train/box_loss\\\": 1.21, "
                              "\\\"metrics/mAP50-95(B)\\\": 0.27}\"}"),
                   200);
  json_t *d = server_metrics_read(p, id);
  assert_int_equal(json_array_size(d), 4);
  const long want[] = {0, 1, 2, 10};
  for (int i = 0; i < 4; i++) {
    char path[32];
    snprintf(path, sizeof path, "%d.epoch", i);
    assert_int_equal(th_json_int(d, path, -1), want[i]);
    snprintf(path, sizeof path, "%d.metrics", i);
    assert_true(json_is_object(th_json_at(d, path)));
  }
  /* Decoded to objects, values as numbers; the dots and slashes in names
   * are part of the name. */
  json_t *m0 = th_json_at(d, "0.metrics");
  assert_true(fabs(json_number_value(json_object_get(m0, "train/box_loss")) -
                   1.53) < 1e-9);
  assert_true(
      fabs(json_number_value(json_object_get(m0, "metrics/mAP50-95(B)")) -
           0.21) < 1e-9);
  assert_true(fabs(json_number_value(json_object_get(m0, "model/parameters")) -
                   2590620) < 1e-6);
  assert_int_equal(json_object_size(th_json_at(d, "1.metrics")), 2);
  json_decref(d);

  json_t *m = sv_model(p, chubd_proc_key(p), id);
  sv_assert_str(th_json_str(m, "status"), "training");
  assert_int_equal(th_json_int(m, "metrics_count", -1), 4);
  assert_int_equal(th_json_int(m, "last_epoch", -1), 10);
  json_decref(m);
  free(id);
}

static void server_metrics_idempotent(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "idem.pt");
  const char *one = "{\"0\": \"{\\\"loss\\\": 2.0}\", "
                    "\"1\": \"{\\\"loss\\\": 1.0}\"}";
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), id, one), 200);
  /* The same batch again (a lost answer re-sent): no duplicates. */
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), id, one), 200);
  /* Epoch 1 again with new values: replaced, still one record. */
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), id,
                              "{\"1\": \"{\\\"loss\\\": 0.75, \\\"acc\\\": "
                              "0.9}\", \"2\": \"{\\\"loss\\\": 0.5}\"}"),
                   200);
  json_t *d = server_metrics_read(p, id);
  assert_int_equal(json_array_size(d), 3);
  assert_int_equal(th_json_int(d, "1.epoch", -1), 1);
  assert_true(fabs(server_metrics_num(d, "1.metrics.loss") - 0.75) < 1e-9);
  assert_true(fabs(server_metrics_num(d, "1.metrics.acc") - 0.9) < 1e-9);
  assert_true(fabs(server_metrics_num(d, "0.metrics.loss") - 2.0) < 1e-9);
  json_decref(d);
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  assert_int_equal(th_json_int(m, "metrics_count", -1), 3);
  json_decref(m);
  free(id);
}

/* A bad body: 400, the message mentions `names`, and nothing is stored. */
static void server_metrics_bad(chubd_proc *p, const char *id, const char *body,
                               const char *names) {
  char *path = th_fmt("/v1/models/%s", id);
  json_t *env = sv_expect(p, "POST", path, chubd_proc_key(p), body, 400);
  if (names && !sv_message_has(env, names))
    fail_msg("400 for %s does not name \"%s\"", body, names);
  json_decref(env);
  free(path);
}

static void server_metrics_bad_bodies(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "bad.pt");
  /* Missing pieces. */
  server_metrics_bad(p, id, "{\"metrics\": {\"0\": \"{}\"}}", "type");
  server_metrics_bad(p, id, "{\"type\": \"metrics\"}", "metrics");
  server_metrics_bad(p, id, "{\"type\": \"metrics\", \"metrics\": [1, 2]}",
                     "metrics");
  server_metrics_bad(p, id, "{\"type\": \"nonsense\", \"metrics\": {}}",
                     "type");
  /* The value of an epoch must be a string holding a JSON object. */
  server_metrics_bad(
      p, id, "{\"type\": \"metrics\", \"metrics\": {\"7\": {\"a\": 1}}}", "7");
  server_metrics_bad(
      p, id, "{\"type\": \"metrics\", \"metrics\": {\"7\": \"{oops\"}}", "7");
  server_metrics_bad(
      p, id, "{\"type\": \"metrics\", \"metrics\": {\"7\": \"[1]\"}}", "7");
  /* Flat name -> number maps only. */
  server_metrics_bad(p, id,
                     "{\"type\": \"metrics\", \"metrics\": {\"7\": "
                     "\"{\\\"loss\\\": \\\"high\\\"}\"}}",
                     "loss");
  server_metrics_bad(p, id,
                     "{\"type\": \"metrics\", \"metrics\": {\"7\": "
                     "\"{\\\"loss\\\": {\\\"x\\\": 1}}\"}}",
                     "loss");
  /* Epochs are non-negative integers. */
  server_metrics_bad(
      p, id, "{\"type\": \"metrics\", \"metrics\": {\"abc\": \"{}\"}}", "abc");
  server_metrics_bad(
      p, id, "{\"type\": \"metrics\", \"metrics\": {\"-1\": \"{}\"}}", "-1");
  server_metrics_bad(
      p, id, "{\"type\": \"metrics\", \"metrics\": {\"1.5\": \"{}\"}}", "1.5");
  /* Not an epoch either: overflow, exponent, sign, space. */
  const char *keys[] = {"99999999999999999999", "1e3", "+1", " 1"};
  for (int i = 0; i < 4; i++) {
    char *body = th_fmt(
        "{\"type\": \"metrics\", \"metrics\": {\"%s\": \"{}\"}}", keys[i]);
    server_metrics_bad(p, id, body, keys[i]);
    free(body);
  }
  json_t *d = server_metrics_read(p, id);
  assert_int_equal(json_array_size(d), 0);
  json_decref(d);
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  sv_assert_str(th_json_str(m, "status"), "new");
  json_decref(m);
  free(id);
}

static void server_metrics_malformed_json(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "mal.pt");
  /* The error is on line 2; the message says where. */
  const char *body = "{\"type\": \"metrics\",\n \"metrics\": {\"0\": ,}}";
  char *path = th_fmt("/v1/models/%s", id);
  json_t *env = sv_expect(p, "POST", path, chubd_proc_key(p), body, 400);
  assert_true(sv_message_has(env, "line"));
  assert_true(sv_message_has(env, "2"));
  assert_true(sv_message_has(env, "column"));
  json_decref(env);
  /* Not JSON at all, and empty. */
  env = sv_expect(p, "POST", path, chubd_proc_key(p), "metrics please", 400);
  json_decref(env);
  env = sv_expect(p, "POST", path, chubd_proc_key(p), "", 400);
  json_decref(env);
  free(path);
  free(id);
}

static void server_metrics_unknown_model(void **state) {
  chubd_proc *p = *state;
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), "AAAAAAAAAAAAAAAAAAAA",
                              "{\"0\": \"{}\"}"),
                   404);
  json_t *env = sv_expect(p, "GET", "/v1/models/AAAAAAAAAAAAAAAAAAAA/metrics",
                          chubd_proc_key(p), NULL, 404);
  json_decref(env);
}

static void server_metrics_many_epochs(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "many.pt");
  /* 300 epochs in one request, as a client sends after a long outage. */
  enum { N = 300 };
  json_t *metrics = json_object();
  for (int e = 0; e < N; e++) {
    char k[16], v[96];
    snprintf(k, sizeof k, "%d", e);
    snprintf(v, sizeof v, "{\"loss\": %d.5, \"epoch_copy\": %d}", e, e);
    json_object_set_new(metrics, k, json_string(v));
  }
  char *mj = json_dumps(metrics, JSON_COMPACT);
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), id, mj), 200);
  json_t *d = server_metrics_read(p, id);
  assert_int_equal(json_array_size(d), N);
  for (int e = 0; e < N; e++) {
    char path[48];
    snprintf(path, sizeof path, "%d.epoch", e);
    assert_int_equal(th_json_int(d, path, -1), e);
    snprintf(path, sizeof path, "%d.metrics.epoch_copy", e);
    assert_true(fabs(server_metrics_num(d, path) - e) < 1e-9);
  }
  json_decref(d);
  free(mj);
  json_decref(metrics);
  free(id);
}

/* Several trainers (or one client's retries) at once: every epoch lands
 * exactly once and no request fails with a server error (no SQLITE_BUSY
 * leaking out as a 500). A writer posts epochs first..first+count-1 to
 * model id with key (the owner's when NULL) and counts the answers that
 * are not `want`. */
typedef struct server_metrics_writer {
  chubd_proc *p;
  const char *id;
  int first, count;
  int failures;
  const char *key;
  long want;
} server_metrics_writer;

static void *server_metrics_write(void *arg) {
  server_metrics_writer *w = arg;
  char *url = th_fmt("%s/v1/models/%s", chubd_proc_base_url(w->p), w->id);
  const char *key = w->key ? w->key : chubd_proc_key(w->p);
  for (int e = w->first; e < w->first + w->count; e++) {
    char *body = th_fmt("{\"type\": \"metrics\", \"metrics\": "
                        "{\"%d\": \"{\\\"loss\\\": %d}\"}}",
                        e, e);
    th_response r;
    if (th_json_request("POST", url, key, body, &r) != 0 ||
        r.status != w->want) {
      fprintf(stderr, "concurrent epoch %d of %s: %ld (not %ld) %s\n", e, w->id,
              r.status, w->want, r.body ? r.body : "(no answer)");
      w->failures++;
    }
    th_response_free(&r);
    free(body);
  }
  free(url);
  return NULL;
}

/* Runs the n writers at once; the answers that were not as wanted. */
static int server_metrics_run(server_metrics_writer *w, int n) {
  pthread_t t[16];
  assert_true(n <= 16);
  for (int i = 0; i < n; i++)
    assert_int_equal(pthread_create(&t[i], NULL, server_metrics_write, &w[i]),
                     0);
  int failures = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    failures += w[i].failures;
  }
  return failures;
}

static void server_metrics_concurrent(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "many-writers.pt");
  enum { W = 6, PER = 40 };
  server_metrics_writer w[W];
  for (int i = 0; i < W; i++)
    w[i] = (server_metrics_writer){p, id, i * PER, PER, 0, NULL, 200};
  assert_int_equal(server_metrics_run(w, W), 0);
  json_t *d = server_metrics_read(p, id);
  assert_int_equal(json_array_size(d), W * PER);
  for (int e = 0; e < W * PER; e++) {
    char path[48];
    snprintf(path, sizeof path, "%d.metrics.loss", e);
    assert_true(fabs(server_metrics_num(d, path) - e) < 1e-9);
  }
  json_decref(d);

  /* The same epoch from every writer at once: still one record, holding
   * one of the values sent. */
  for (int i = 0; i < W; i++)
    w[i] = (server_metrics_writer){p, id, 1000, 1, 0, NULL, 200};
  assert_int_equal(server_metrics_run(w, W), 0);
  d = server_metrics_read(p, id);
  assert_int_equal(json_array_size(d), W * PER + 1);
  char last[48];
  snprintf(last, sizeof last, "%d.epoch", W * PER);
  assert_int_equal(th_json_int(d, last, -1), 1000);
  json_decref(d);
  /* The model counts each epoch once, however they raced. */
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  assert_int_equal(th_json_int(m, "metrics_count", -1), W * PER + 1);
  assert_int_equal(th_json_int(m, "last_epoch", -1), 1000);
  json_decref(m);
  free(id);
}

/* Uploads that the hub commits together (one transaction for whatever
 * arrived meanwhile) still get their own answers: writers for two models
 * of one owner, another owner writing to one of them and to a model of
 * its own, and a writer to a model that does not exist, all at once. Each
 * model ends up with exactly its own epochs and counts them once; the
 * foreign and the unknown uploads get 404 and store nothing. */
static void server_metrics_mixed_batches(void **state) {
  chubd_proc *p = *state;
  char *other = chubd_proc_create_key(p, "other-owner");
  assert_non_null(other);
  char *a = sv_create(p, chubd_proc_key(p), "mixed-a.pt");
  char *b = sv_create(p, chubd_proc_key(p), "mixed-b.pt");
  char *c = sv_create(p, other, "mixed-c.pt");
  enum { PER = 40, W = 7 };
  server_metrics_writer w[W] = {
      {p, a, 0, PER, 0, NULL, 200},
      {p, a, PER, PER, 0, NULL, 200},
      {p, b, 0, PER, 0, NULL, 200},
      {p, b, PER, PER, 0, NULL, 200},
      {p, a, 5000, PER, 0, other, 404},
      {p, c, 0, PER, 0, other, 200},
      {p, "AAAAAAAAAAAAAAAAAAAA", 0, PER, 0, NULL, 404},
  };
  assert_int_equal(server_metrics_run(w, W), 0);
  const char *ids[] = {a, b};
  for (int m = 0; m < 2; m++) {
    json_t *d = server_metrics_read(p, ids[m]);
    assert_int_equal(json_array_size(d), 2 * PER); /* nothing from 5000 */
    for (int e = 0; e < 2 * PER; e++) {
      char path[48];
      snprintf(path, sizeof path, "%d.epoch", e);
      assert_int_equal(th_json_int(d, path, -1), e);
    }
    json_decref(d);
    json_t *model = sv_model(p, chubd_proc_key(p), ids[m]);
    assert_int_equal(th_json_int(model, "metrics_count", -1), 2 * PER);
    assert_int_equal(th_json_int(model, "last_epoch", -1), 2 * PER - 1);
    json_decref(model);
  }
  json_t *model = sv_model(p, other, c);
  assert_int_equal(th_json_int(model, "metrics_count", -1), PER);
  json_decref(model);
  free(a);
  free(b);
  free(c);
  free(other);
}

/* GET .../metrics with a query; asserts 200 and returns data. */
static json_t *server_metrics_query(chubd_proc *p, const char *id,
                                    const char *query) {
  char *path = th_fmt("/v1/models/%s/metrics?%s", id, query);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 200);
  free(path);
  json_t *data = json_incref(th_json_at(env, "data"));
  json_decref(env);
  assert_true(json_is_array(data));
  return data;
}

/* 1000 epochs of a falling loss with a spike (537), a rising accuracy
 * with a dip (700), and a validation loss every 10 epochs. */
static char *server_metrics_spiky(chubd_proc *p) {
  char *id = sv_create(p, chubd_proc_key(p), "spiky.pt");
  json_t *metrics = json_object();
  for (int e = 0; e < 1000; e++) {
    char k[16], v[160];
    double loss = e == 537 ? 50.0 : 2.0 - e / 1000.0;
    double acc = e == 700 ? -5.0 : e / 1000.0;
    int n = snprintf(v, sizeof v, "{\"loss\": %.4f, \"acc\": %.4f", loss, acc);
    if (e % 10 == 0)
      n += snprintf(v + n, sizeof v - (size_t)n, ", \"val\": %d", e);
    snprintf(v + n, sizeof v - (size_t)n, "}");
    snprintf(k, sizeof k, "%d", e);
    json_object_set_new(metrics, k, json_string(v));
  }
  char *mj = json_dumps(metrics, JSON_COMPACT);
  assert_int_equal(sv_metrics(p, chubd_proc_key(p), id, mj), 200);
  free(mj);
  json_decref(metrics);
  return id;
}

/* How many rows of d carry `name`, with the smallest and largest value. */
static int server_metrics_series(json_t *d, const char *name, double *lo,
                                 double *hi) {
  int n = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (size_t i = 0; i < json_array_size(d); i++) {
    json_t *v =
        json_object_get(json_object_get(json_array_get(d, i), "metrics"), name);
    if (!json_is_number(v))
      continue;
    n++;
    *lo = fmin(*lo, json_number_value(v));
    *hi = fmax(*hi, json_number_value(v));
  }
  return n;
}

/* ?points=N: at most N values per metric, epochs in order, the first and
 * the last epoch whole, and each metric's extremes (the spike, the dip)
 * kept at their epochs. */
static void server_metrics_points(void **state) {
  chubd_proc *p = *state;
  char *id = server_metrics_spiky(p);
  const int ns[] = {2, 3, 10, 50, 333};
  for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
    char *q = th_fmt("points=%d", ns[k]);
    json_t *d = server_metrics_query(p, id, q);
    free(q);
    size_t rows = json_array_size(d);
    assert_true(rows >= 2);
    assert_int_equal(th_json_int(d, "0.epoch", -1), 0);
    assert_int_equal(json_object_size(th_json_at(d, "0.metrics")), 3);
    char *last = th_fmt("%zu.epoch", rows - 1);
    assert_int_equal(th_json_int(d, last, -1), 999);
    free(last);
    last = th_fmt("%zu.metrics", rows - 1);
    assert_int_equal(json_object_size(th_json_at(d, last)), 2);
    free(last);
    for (size_t i = 1; i < rows; i++) {
      char *a = th_fmt("%zu.epoch", i - 1), *b = th_fmt("%zu.epoch", i);
      assert_true(th_json_int(d, a, -1) < th_json_int(d, b, -1));
      free(a);
      free(b);
    }
    double lo, hi;
    assert_true(server_metrics_series(d, "loss", &lo, &hi) <= ns[k]);
    assert_true(server_metrics_series(d, "val", &lo, &hi) <= ns[k]);
    assert_true(server_metrics_series(d, "acc", &lo, &hi) <= ns[k]);
    if (ns[k] >= 4) {
      /* Some bucket holds each extreme, which it keeps. */
      assert_true(fabs(lo - -5.0) < 1e-9);
      server_metrics_series(d, "loss", &lo, &hi);
      assert_true(fabs(hi - 50.0) < 1e-9);
      server_metrics_series(d, "val", &lo, &hi);
      assert_true(fabs(hi - 990.0) < 1e-9 && fabs(lo - 0.0) < 1e-9);
      int spike = 0;
      for (size_t i = 0; i < rows; i++) {
        char *e = th_fmt("%zu.epoch", i), *l = th_fmt("%zu.metrics.loss", i);
        if (th_json_int(d, e, -1) == 537) {
          assert_true(fabs(server_metrics_num(d, l) - 50.0) < 1e-9);
          spike = 1;
        }
        free(e);
        free(l);
      }
      assert_true(spike);
    }
    if (ns[k] == 2)
      assert_int_equal(rows, 2);
    json_decref(d);
  }
  free(id);
}

/* ?points at least the epochs there are: the read-back as it is; with
 * after, only later epochs; no metrics: an empty list. */
static void server_metrics_points_whole(void **state) {
  chubd_proc *p = *state;
  char *id = server_metrics_spiky(p);
  json_t *all = server_metrics_read(p, id);
  json_t *d = server_metrics_query(p, id, "points=1000");
  assert_true(json_equal(all, d));
  json_decref(d);
  d = server_metrics_query(p, id, "points=10000");
  assert_true(json_equal(all, d));
  json_decref(d);
  json_decref(all);
  d = server_metrics_query(p, id, "points=20&after=989");
  assert_int_equal(json_array_size(d), 10);
  assert_int_equal(th_json_int(d, "0.epoch", -1), 990);
  json_decref(d);
  d = server_metrics_query(p, id, "points=20&after=996");
  assert_int_equal(json_array_size(d), 3);
  json_decref(d);
  d = server_metrics_query(p, id, "points=20&after=999");
  assert_int_equal(json_array_size(d), 0);
  json_decref(d);
  free(id);
  id = sv_create(p, chubd_proc_key(p), "empty.pt");
  d = server_metrics_query(p, id, "points=20");
  assert_int_equal(json_array_size(d), 0);
  json_decref(d);
  free(id);
}

/* A bad points: 400 naming it; an unknown model: 404. */
static void server_metrics_points_bad(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "bad-points.pt");
  const char *bad[] = {"abc", "1", "0", "-5", "2.5", "", "10001", "1e3"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *path = th_fmt("/v1/models/%s/metrics?points=%s", id, bad[i]);
    json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 400);
    if (!sv_message_has(env, "points"))
      fail_msg("points=%s: the message does not name points", bad[i]);
    json_decref(env);
    free(path);
  }
  char *path = th_fmt("/v1/models/%s/metrics?points=10&limit=5", id);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 400);
  assert_true(sv_message_has(env, "points"));
  json_decref(env);
  free(path);
  env = sv_expect(p, "GET", "/v1/models/AAAAAAAAAAAAAAAAAAAA/metrics?points=10",
                  chubd_proc_key(p), NULL, 404);
  json_decref(env);
  free(id);
}

int main(void) {
  /* Threads below share libcurl: initialise it once, up front. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_metrics_batch_in_order),
      cmocka_unit_test(server_metrics_idempotent),
      cmocka_unit_test(server_metrics_bad_bodies),
      cmocka_unit_test(server_metrics_malformed_json),
      cmocka_unit_test(server_metrics_unknown_model),
      cmocka_unit_test(server_metrics_many_epochs),
      cmocka_unit_test(server_metrics_concurrent),
      cmocka_unit_test(server_metrics_mixed_batches),
      cmocka_unit_test(server_metrics_points),
      cmocka_unit_test(server_metrics_points_whole),
      cmocka_unit_test(server_metrics_points_bad),
  };
  int rc = sv_suite_result(cmocka_run_group_tests_name(
      "server_metrics", tests, sv_group_setup, sv_group_teardown));
  curl_global_cleanup();
  return rc;
}

/*
 * security_metrics_paging.c - contract item 7, metrics read back in pages.
 *
 * GET /v1/models/{id}/metrics takes ?after=EPOCH&limit=N (epochs greater
 * than EPOCH, at most N, N up to 10000) and answers in epoch order, so a
 * client can walk a long history page by page; without the parameters the
 * answer is the whole history, as hub-sdk expects (streamed by chubd, which
 * a client does not see: the shape is the same).
 */
#include "sec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The epochs posted: numeric order differs from text order (9 < 10 < 100). */
static const long mp_epochs[] = {0,  1,  2,  3,  5,  7,   8,   9,   10,
                                 11, 12, 20, 21, 99, 100, 101, 1000};
#define MP_N (sizeof mp_epochs / sizeof *mp_epochs)

static chubd_proc *mp_start(void) {
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  return sv_start(args);
}

/* Posts mp_epochs (loss = epoch + 0.5) to a new model; returns its id. */
static char *mp_model(chubd_proc *p) {
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "paging.pt");
  json_t *m = json_object();
  for (size_t i = 0; i < MP_N; i++) {
    char k[24], v[64];
    snprintf(k, sizeof k, "%ld", mp_epochs[i]);
    snprintf(v, sizeof v, "{\"loss\": %ld.5}", mp_epochs[i]);
    json_object_set_new(m, k, json_string(v));
  }
  char *s = json_dumps(m, JSON_COMPACT);
  assert_int_equal(sv_metrics(p, key, id, s), 200);
  free(s);
  json_decref(m);
  return id;
}

/* GET metrics with `query`; asserts 200 and returns data (an array). */
static json_t *mp_get(chubd_proc *p, const char *id, const char *query) {
  char *path = th_fmt("/v1/models/%s/metrics%s", id, query);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 200);
  json_t *data = json_incref(json_object_get(env, "data"));
  json_decref(env);
  if (!json_is_array(data))
    fail_msg("GET %s: data is not an array", path);
  free(path);
  return data;
}

/* Asserts data holds exactly the epochs want[0..n), in order, each with
 * its loss. */
static void mp_expect(const char *what, json_t *data, const long *want,
                      size_t n) {
  char got[512] = "";
  size_t i;
  json_t *row;
  json_array_foreach(data, i, row) {
    char one[32];
    snprintf(one, sizeof one, "%s%lld", i ? "," : "",
             (long long)th_json_int(row, "epoch", -1));
    if (strlen(got) + strlen(one) < sizeof got - 4)
      strcat(got, one);
  }
  if (json_array_size(data) != n)
    fail_msg("%s: %zu records [%s], expected %zu", what, json_array_size(data),
             got, n);
  for (i = 0; i < n; i++) {
    json_t *r = json_array_get(data, i);
    if (th_json_int(r, "epoch", -1) != want[i])
      fail_msg("%s: records [%s], expected epoch %ld at %zu", what, got,
               want[i], i);
    double loss = json_number_value(th_json_at(r, "metrics.loss"));
    if (loss != (double)want[i] + 0.5)
      fail_msg("%s: epoch %ld has loss %g", what, want[i], loss);
  }
}

/* Epochs only (for pages of the long history, whose losses are e.5). */
static void mp_check_page(const char *what, json_t *data, const long *want,
                          size_t n) {
  if (json_array_size(data) != n)
    fail_msg("%s: %zu records, expected %zu", what, json_array_size(data), n);
  for (size_t i = 0; i < n; i++)
    if (th_json_int(json_array_get(data, i), "epoch", -1) != want[i])
      fail_msg("%s: record %zu is epoch %lld, expected %ld", what, i,
               th_json_int(json_array_get(data, i), "epoch", -1), want[i]);
}

static void mp_one_page(void **state) {
  (void)state;
  chubd_proc *p = mp_start();
  char *id = mp_model(p);
  json_t *d = mp_get(p, id, "?after=5&limit=3");
  const long want1[] = {7, 8, 9};
  mp_expect("?after=5&limit=3", d, want1, 3);
  json_decref(d);
  d = mp_get(p, id, "?after=9&limit=4");
  const long want2[] = {10, 11, 12, 20};
  mp_expect("?after=9&limit=4", d, want2, 4);
  json_decref(d);
  /* limit alone starts at the first epoch; after alone runs to the end. */
  d = mp_get(p, id, "?limit=2");
  const long want3[] = {0, 1};
  mp_expect("?limit=2", d, want3, 2);
  json_decref(d);
  d = mp_get(p, id, "?after=100");
  const long want4[] = {101, 1000};
  mp_expect("?after=100", d, want4, 2);
  json_decref(d);
  /* Past the end: an empty page. */
  d = mp_get(p, id, "?after=1000&limit=10");
  mp_expect("?after=1000&limit=10", d, NULL, 0);
  json_decref(d);
  d = mp_get(p, id, "?limit=10000");
  mp_expect("?limit=10000", d, mp_epochs, MP_N);
  json_decref(d);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Walking pages of 4 with after = the last epoch seen gives every epoch
 * once, in order; the walk is bounded. */
static void mp_walk(void **state) {
  (void)state;
  chubd_proc *p = mp_start();
  char *id = mp_model(p);
  long seen[MP_N + 8];
  size_t n = 0;
  long after = -1;
  for (int page = 0; page < 20; page++) {
    char *q =
        after < 0 ? th_fmt("?limit=4") : th_fmt("?after=%ld&limit=4", after);
    json_t *d = mp_get(p, id, q);
    size_t k = json_array_size(d);
    if (k > 4)
      fail_msg("page %s holds %zu records, more than limit=4", q, k);
    for (size_t i = 0; i < k && n < MP_N + 8; i++)
      seen[n++] = (long)th_json_int(json_array_get(d, i), "epoch", -1);
    json_decref(d);
    free(q);
    if (k == 0)
      break;
    after = seen[n - 1];
  }
  if (n != MP_N)
    fail_msg("walking pages of 4 gave %zu records, expected %zu", n, MP_N);
  for (size_t i = 0; i < MP_N; i++)
    if (seen[i] != mp_epochs[i])
      fail_msg("walking pages: record %zu is epoch %ld, expected %ld", i,
               seen[i], mp_epochs[i]);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Without parameters: the whole history, more than one page's maximum,
 * in epoch order. 12,000 epochs in batches of 300. */
static void mp_default_whole(void **state) {
  (void)state;
  chubd_proc *p = mp_start();
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "long.pt");
  const long total = 12000;
  for (long start = 0; start < total; start += 300) {
    json_t *m = json_object();
    for (long e = start; e < start + 300 && e < total; e++) {
      char k[24], v[64];
      snprintf(k, sizeof k, "%ld", e);
      snprintf(v, sizeof v, "{\"loss\": %ld.5}", e);
      json_object_set_new(m, k, json_string(v));
    }
    char *s = json_dumps(m, JSON_COMPACT);
    assert_int_equal(sv_metrics(p, key, id, s), 200);
    free(s);
    json_decref(m);
  }
  json_t *d = mp_get(p, id, "");
  if ((long)json_array_size(d) != total)
    fail_msg("GET metrics without parameters: %zu records, expected the "
             "whole history of %ld",
             json_array_size(d), total);
  for (long e = 0; e < total; e++) {
    json_t *r = json_array_get(d, (size_t)e);
    if (th_json_int(r, "epoch", -1) != e ||
        json_number_value(th_json_at(r, "metrics.loss")) != (double)e + 0.5)
      fail_msg("whole history: record %ld is not epoch %ld", e, e);
  }
  json_decref(d);
  /* And a page of it. */
  d = mp_get(p, id, "?after=10997&limit=3");
  const long want[] = {10998, 10999, 11000};
  mp_check_page("whole history ?after=10997&limit=3", d, want, 3);
  json_decref(d);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(mp_one_page),
      cmocka_unit_test(mp_walk),
      cmocka_unit_test(mp_default_whole),
  };
  return cmocka_run_group_tests_name("security_metrics_paging", tests, NULL,
                                     NULL);
}

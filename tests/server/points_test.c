/*
 * points_test.c - unit test of chubd's chart downsampling (points.c): rows
 * written the ways a client may write them (spaces, escaped names,
 * exponents, long numbers) are read right, each series keeps at most N
 * values with its extremes, and few rows pass through whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "points.h"

/* What the downsampler gave out, as the array of rows the answer holds. */
static int points_test_emit(void *ud, int64_t epoch, const char *json,
                            size_t len) {
  json_t *metrics = json_loadb(json, len, 0, NULL);
  if (!metrics)
    fail_msg("not JSON: %.*s", (int)len, json);
  json_array_append_new(ud, json_pack("{s:I, s:o}", "epoch", (json_int_t)epoch,
                                      "metrics", metrics));
  return 0;
}

/* Feeds rows[0..n-1] (epochs 0..n-1) to a downsampler to npoints. */
static json_t *points_test_run(int npoints, const char *const *rows, int n) {
  json_t *out = json_array();
  points *p = points_new(npoints, n - 1, n, points_test_emit, out);
  assert_non_null(p);
  int r = 0;
  for (int i = 0; i < n && r == 0; i++)
    r = points_row(p, i, rows[i]);
  assert_int_equal(r, 1); /* the last epoch ends it */
  points_free(p);
  return out;
}

static int points_test_count(json_t *out, const char *name, double *lo,
                             double *hi) {
  int n = 0;
  *lo = 1e300;
  *hi = -1e300;
  size_t i;
  json_t *row;
  json_array_foreach(out, i, row) {
    json_t *v = json_object_get(json_object_get(row, "metrics"), name);
    if (!v)
      continue;
    n++;
    double x = json_number_value(v);
    *lo = x < *lo ? x : *lo;
    *hi = x > *hi ? x : *hi;
  }
  return n;
}

/* Names spelled with escapes are one series; spaces, exponents and long
 * numbers are read as numbers; the values go out as stored. */
static void points_test_spellings(void **state) {
  (void)state;
  enum { N = 400 };
  static char buf[N][160];
  const char *rows[N];
  for (int i = 0; i < N; i++) {
    const char *name = i % 2 ? "\"a\\/b\"" : "\"a/b\"";
    double v = i == 123 ? 7e5 : i == 321 ? -2.5E-3 : 0.001 * i;
    snprintf(buf[i], sizeof buf[i],
             " {\n %s : %.6e ,\"long\":%s, \"x\\u0041\":%d }", name, v,
             i == 200 ? "1234567890.12345678901234567890123456" : "1", i);
    rows[i] = buf[i];
  }
  json_t *out = points_test_run(N, rows, N);
  assert_int_equal(json_array_size(out), N); /* few enough: whole */
  json_decref(out);
  out = points_test_run(20, rows, N);
  double lo, hi;
  /* The first and last rows are given whole, with "a\/b" spelled as
   * stored; between them one series "a/b". */
  assert_true(points_test_count(out, "a/b", &lo, &hi) <= 20);
  assert_true(hi == 7e5 && lo == -2.5e-3);
  assert_true(points_test_count(out, "long", &lo, &hi) <= 20);
  assert_true(hi > 1.2e9);
  assert_true(points_test_count(out, "xA", &lo, &hi) <= 20);
  assert_true(lo == 0 && hi == N - 1);
  json_decref(out);
}

/* Many series and rows: at most N values each, extremes kept. */
static void points_test_bound(void **state) {
  (void)state;
  enum { N = 5000, S = 40 };
  char **text = calloc(N, sizeof *text);
  for (int i = 0; i < N; i++) {
    json_t *o = json_object();
    for (int s = 0; s < S; s++) {
      char name[16];
      snprintf(name, sizeof name, "s%d", s);
      double v = (double)((i * 7919 + s * 104729) % 1000);
      if (i == 1000 + s)
        v = 5000 + s; /* each series' spike at its own epoch */
      json_object_set_new(o, name, json_real(v));
    }
    text[i] = json_dumps(o, JSON_COMPACT);
    json_decref(o);
  }
  const int ns[] = {2, 7, 64, 999};
  for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
    json_t *out = points_test_run(ns[k], (const char *const *)text, N);
    for (int s = 0; s < S; s++) {
      char name[16];
      double lo, hi;
      snprintf(name, sizeof name, "s%d", s);
      assert_true(points_test_count(out, name, &lo, &hi) <= ns[k]);
      if (ns[k] >= 4)
        assert_true(hi == 5000 + s);
    }
    json_decref(out);
  }
  for (int i = 0; i < N; i++)
    free(text[i]);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(points_test_spellings),
      cmocka_unit_test(points_test_bound),
  };
  return cmocka_run_group_tests_name("server_points_unit", tests, NULL, NULL);
}

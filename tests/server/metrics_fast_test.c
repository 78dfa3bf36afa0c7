/*
 * metrics_fast_test.c - unit test of the one-pass reading of a metrics
 * upload (metrics_fast.c) against the full path it shortcuts
 * (validate_json_object + validate_metrics, on jansson).
 *
 * The bodies clients send (libchub's compact JSON, the Ultralytics
 * client's spaced one, the benchmark's) are read in one pass with the
 * same epochs and texts as the full path gives; a body the full path
 * refuses is never accepted in one pass; and the bodies this reading
 * leaves undecided on purpose (escapes it does not decode, non-ASCII,
 * numbers at the edge of a double) still get the full path's answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_fast.h"
#include "validate.h"

/* The full path's verdict: 0 with its epochs, or -1. */
static int full_path(const char *body, store_epoch **e, size_t *n) {
  char err[VALIDATE_ERR];
  json_t *v;
  *e = NULL;
  *n = 0;
  if (validate_json_object(body, strlen(body), &v, err) < 0)
    return -1;
  int rc = validate_metrics(v, e, n, err);
  json_decref(v);
  return rc;
}

/* Reads body both ways; asserts they agree whenever the one pass
 * decides. Returns what the one pass said (1 decided, 0 undecided). */
static int both_ways(const char *body) {
  store_epoch *fe, *se;
  size_t fn, sn;
  int fast = metrics_fast(body, strlen(body), &fe, &fn);
  int full = full_path(body, &se, &sn);
  if (fast) {
    if (full != 0)
      fail_msg("accepted in one pass, refused by the full path: %s", body);
    assert_int_equal(fn, sn);
    for (size_t i = 0; i < fn; i++) {
      assert_int_equal(fe[i].epoch, se[i].epoch);
      assert_string_equal(fe[i].json, se[i].json);
    }
    validate_epochs_free(fe, fn);
  } else {
    assert_null(fe);
    assert_int_equal(fn, 0);
  }
  if (full == 0)
    validate_epochs_free(se, sn);
  return fast;
}

static void test_client_bodies_in_one_pass(void **state) {
  (void)state;
  static const char *const bodies[] = {
      /* libchub (json_dumps, JSON_COMPACT), several epochs */
      "{\"type\":\"metrics\",\"metrics\":{\"0\":\"{\\\"train/box_loss\\\": "
      "1.25, \\\"metrics/mAP50-95(B)\\\": 0.31}\",\"1\":\"{\\\"lr/pg0\\\": "
      "0.001}\",\"1000000000\":\"{}\"}}",
      /* the Ultralytics client: spaces after separators, names in any
       * order, exponents and negative numbers */
      "{\"metrics\": {\"12\": \"{\\\"train/box_loss\\\": 1.2345e-05, "
      "\\\"val/cls_loss\\\": -0.5, \\\"epoch\\\": 12, \\\"x\\\": 1E+2}\"}, "
      "\"type\": \"metrics\"}",
      /* the benchmark's */
      "{\"type\": \"metrics\", \"metrics\": {\"100000007\": "
      "\"{\\\"train/box_loss\\\": 1.25, \\\"train/cls_loss\\\": 0.75, "
      "\\\"metrics/mAP50-95(B)\\\": 0.31, \\\"metrics/precision(B)\\\": "
      "0.6, \\\"lr/pg0\\\": 0.001}\"}}",
      /* whitespace everywhere JSON allows it, inside the text too */
      " \t\r\n{ \"type\" : \"metrics\" ,\n\"metrics\" : { \"3\" : \" { "
      "\\\"a\\\" :\\t1 ,\\n\\\"b\\\": 0 } \" } }\n",
      /* the simple escapes, decoded as jansson decodes them */
      "{\"type\":\"metrics\",\"metrics\":{\"4\":\"{\\\"a\\/b\\\":1,"
      "\\t\\r\\\"c\\\":2}\"}}",
      /* no epochs at all */
      "{\"type\":\"metrics\",\"metrics\":{}}",
      /* the limits of what is read here: 18-digit integers, reals near
       * 1e300 and 1e-300 */
      "{\"type\":\"metrics\",\"metrics\":{\"5\":\"{\\\"i\\\": "
      "-999999999999999999, \\\"r\\\": 9.99e299, \\\"s\\\": 1e-300, "
      "\\\"z\\\": 0.0, \\\"m\\\": -0}\"}}",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
    if (both_ways(bodies[i]) != 1)
      fail_msg("not read in one pass: %s", bodies[i]);
}

static void test_refused_bodies_left_to_the_full_path(void **state) {
  (void)state;
  static const char *const bodies[] = {
      "",
      "{}",
      "[]",
      "{\"type\":\"metrics\"}",
      "{\"metrics\":{}}",
      "{\"type\":\"metric\",\"metrics\":{}}",
      "{\"type\":\"metrics\",\"metrics\":{},\"x\":1}",
      "{\"type\":\"metrics\",\"type\":\"metrics\",\"metrics\":{}}",
      "{\"type\":\"metrics\",\"metrics\":[]}",
      "{\"type\":\"metrics\",\"metrics\":{}} x",
      "{\"type\":\"metrics\",\"metrics\":{},}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{}\",}}",
      /* epochs: leading zero, sign, too large, not a number, twice */
      "{\"type\":\"metrics\",\"metrics\":{\"01\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"-1\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1000000001\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"99999999999\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"x\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"7\":\"{}\",\"7\":\"{}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"7\":\"{}\",\"8\":\"{}\","
      "\"7\":\"{\\\"a\\\":1}\"}}",
      /* an epoch's value: not a string, not an object, not numbers */
      "{\"type\":\"metrics\",\"metrics\":{\"1\":{}}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"[1]\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":\\\"1\\\"}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":true}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":null}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":{}}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":NaN}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1,\\\"a\\\":2}\"}"
      "}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1} x\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1\"}}",
      /* numbers JSON does not have, or jansson cannot hold */
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":01}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":+1}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":.5}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":5.}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1e}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":-}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1x}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1e400}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":"
      "99999999999999999999999}\"}}",
      /* bytes JSON refuses in a string */
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\tb\\\":1}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1}\\x\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"\xff\\\":1}\"}}",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    store_epoch *e;
    size_t n;
    if (both_ways(bodies[i]) != 0)
      fail_msg("decided in one pass: %s", bodies[i]);
    if (full_path(bodies[i], &e, &n) == 0)
      fail_msg("the full path accepts: %s", bodies[i]);
  }
}

static void test_valid_but_unusual_bodies_get_the_full_answer(void **state) {
  (void)state;
  /* Left undecided on purpose, and valid: the full path takes them. */
  static const char *const bodies[] = {
      /* a \u escape, in a name and in the text */
      "{\"typ\\u0065\":\"metrics\",\"metrics\":{}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"\\u00e9\\\":1}\"}}",
      /* UTF-8 names */
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"\xc3\xa9\\\":1}\"}}",
      /* reals past the limits read here but inside a double's */
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1e305}\"}}",
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":1e-305}\"}}",
      /* a 19-digit integer */
      "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"a\\\":"
      "1000000000000000000}\"}}",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    store_epoch *e;
    size_t n;
    if (both_ways(bodies[i]) != 0)
      fail_msg("decided in one pass: %s", bodies[i]);
    if (full_path(bodies[i], &e, &n) != 0)
      fail_msg("the full path refuses: %s", bodies[i]);
    validate_epochs_free(e, n);
  }
}

/* An epoch with many values: up to METRICS_FAST_NAMES in one pass, more
 * through the full path, the same answer either way. */
static void test_many_names(void **state) {
  (void)state;
  for (int names = METRICS_FAST_NAMES; names <= METRICS_FAST_NAMES + 1;
       names++) {
    char body[8192];
    size_t k = (size_t)snprintf(body, sizeof body,
                                "{\"type\":\"metrics\",\"metrics\":{\"9\":\"{");
    for (int i = 0; i < names; i++)
      k += (size_t)snprintf(body + k, sizeof body - k, "%s\\\"m%d\\\":%d",
                            i ? "," : "", i, i);
    snprintf(body + k, sizeof body - k, "}\"}}");
    assert_int_equal(both_ways(body), names <= METRICS_FAST_NAMES);
  }
}

/* A body cut short at every length is never accepted, and never read
 * past its end (the sanitizer build runs this). */
static void test_every_prefix(void **state) {
  (void)state;
  const char *body = "{\"type\":\"metrics\",\"metrics\":{\"12\":\"{\\\"a\\\": "
                     "-1.5e-3, \\\"b\\\": 20}\",\"13\":\"{}\"}}";
  size_t len = strlen(body);
  for (size_t cut = 0; cut < len; cut++) {
    char *copy = malloc(cut ? cut : 1); /* exactly cut bytes, no NUL */
    assert_non_null(copy);
    memcpy(copy, body, cut);
    store_epoch *e;
    size_t n;
    assert_int_equal(metrics_fast(copy, cut, &e, &n), 0);
    free(copy);
  }
  assert_int_equal(both_ways(body), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_bodies_in_one_pass),
      cmocka_unit_test(test_refused_bodies_left_to_the_full_path),
      cmocka_unit_test(test_valid_but_unusual_bodies_get_the_full_answer),
      cmocka_unit_test(test_many_names),
      cmocka_unit_test(test_every_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

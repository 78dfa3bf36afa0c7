/*
 * security_epoch_keys.c - contract item 8, canonical epoch keys.
 *
 * A metrics post's keys are epochs written as canonical decimal integers:
 * no sign, no leading zero, no spaces, no fraction. "7" and "07" in one
 * post would otherwise collapse into one row while the answer counts two.
 * Anything else is 400 naming the key, and the post stores nothing.
 */
#include "sec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static chubd_proc *ek_start(void) {
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  return sv_start(args);
}

static size_t ek_count(chubd_proc *p, const char *id) {
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 200);
  size_t n = json_array_size(th_json_at(env, "data"));
  json_decref(env);
  free(path);
  return n;
}

/* Posts {"5": ok, key: ok} (the good epoch first) and expects 400 naming
 * the key, with nothing stored. */
static void ek_refused(chubd_proc *p, const char *key_text) {
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "epochs.pt");
  json_t *m = json_object();
  json_object_set_new(m, "5", json_string("{\"loss\": 1}"));
  json_object_set_new(m, key_text, json_string("{\"loss\": 2}"));
  char *metrics = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
  char *path = th_fmt("/v1/models/%s", id);
  char *body = th_fmt("{\"type\": \"metrics\", \"metrics\": %s}", metrics);
  long st = 0;
  json_t *env = sv_json(p, "POST", path, key, body, &st);
  if (st != 400)
    fail_msg("metrics key \"%s\" answered %ld; expected 400", key_text, st);
  if (*key_text && !sv_message_has(env, key_text))
    fail_msg("metrics key \"%s\": the 400 does not name it", key_text);
  json_decref(env);
  size_t n = ek_count(p, id);
  if (n != 0)
    fail_msg("metrics key \"%s\": the refused post stored %zu record(s)",
             key_text, n);
  free(body);
  free(path);
  free(metrics);
  json_decref(m);
  free(id);
}

static void ek_non_canonical(void **state) {
  (void)state;
  chubd_proc *p = ek_start();
  const char *bad[] = {"07", "+7", "7.0", " 7",  "7 ", "-1",
                       "",   "00", "0x7", "1e3", "7a"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ek_refused(p, bad[i]);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* "7" and "07" in one post: refused, not collapsed. */
static void ek_collapse(void **state) {
  (void)state;
  chubd_proc *p = ek_start();
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "collapse.pt");
  long st = sv_metrics(p, key, id,
                       "{\"7\": \"{\\\"loss\\\": 1}\", "
                       "\"07\": \"{\\\"loss\\\": 2}\"}");
  if (st != 400)
    fail_msg("a post with keys \"7\" and \"07\" answered %ld; expected 400",
             st);
  assert_int_equal(ek_count(p, id), 0);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Canonical keys are stored and read back as those epochs. */
static void ek_canonical(void **state) {
  (void)state;
  chubd_proc *p = ek_start();
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "fine.pt");
  assert_int_equal(sv_metrics(p, key, id,
                              "{\"0\": \"{\\\"loss\\\": 0.5}\", "
                              "\"7\": \"{\\\"loss\\\": 7.5}\", "
                              "\"10\": \"{\\\"loss\\\": 10.5}\"}"),
                   200);
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  json_t *data = th_json_at(env, "data");
  assert_int_equal(json_array_size(data), 3);
  const long want[] = {0, 7, 10};
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(th_json_int(json_array_get(data, i), "epoch", -1),
                     want[i]);
  json_decref(env);
  free(path);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ek_canonical),
      cmocka_unit_test(ek_collapse),
      cmocka_unit_test(ek_non_canonical),
  };
  return cmocka_run_group_tests_name("security_epoch_keys", tests, NULL, NULL);
}

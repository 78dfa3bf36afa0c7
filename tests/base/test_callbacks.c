/*
 * test_callbacks.c - the callback registry as a trainer uses it: events run
 * their callbacks in the order added, a pair added twice runs once, removed
 * callbacks stop running, every event name round-trips, and the HUB
 * callbacks are added only when the setting `hub` is true.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "th_tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each call appends its tag (the user pointer's char) to the subject. */
static void tag_cb(void *subject, void *user) {
  char *trace = subject;
  size_t n = strlen(trace);
  trace[n] = *(const char *)user;
  trace[n + 1] = '\0';
}

static void other_cb(void *subject, void *user) {
  tag_cb(subject, user);
}

static void test_runs_in_order_added(void **state) {
  (void)state;
  chub_callbacks *cb = chub_callbacks_new();
  assert_non_null(cb);
  static const char a = 'a', b = 'b', c = 'c';
  assert_int_equal(
      chub_callbacks_add(cb, CHUB_ON_FIT_EPOCH_END, tag_cb, (void *)&b),
      CHUB_OK);
  assert_int_equal(
      chub_callbacks_add(cb, CHUB_ON_FIT_EPOCH_END, tag_cb, (void *)&a),
      CHUB_OK);
  assert_int_equal(
      chub_callbacks_add(cb, CHUB_ON_FIT_EPOCH_END, other_cb, (void *)&c),
      CHUB_OK);
  char trace[64] = "";
  chub_callbacks_run(cb, CHUB_ON_FIT_EPOCH_END, trace);
  assert_string_equal(trace, "bac");
  /* Other events are untouched. */
  trace[0] = '\0';
  chub_callbacks_run(cb, CHUB_ON_TRAIN_END, trace);
  assert_string_equal(trace, "");
  assert_int_equal(chub_callbacks_count(cb, CHUB_ON_TRAIN_END), 0);
  chub_callbacks_free(cb);
}

static void test_duplicates_ignored(void **state) {
  (void)state;
  chub_callbacks *cb = chub_callbacks_new();
  static const char a = 'a', b = 'b';
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        chub_callbacks_add(cb, CHUB_ON_MODEL_SAVE, tag_cb, (void *)&a),
        CHUB_OK);
  /* Same function, other user data: a different pair. */
  assert_int_equal(
      chub_callbacks_add(cb, CHUB_ON_MODEL_SAVE, tag_cb, (void *)&b), CHUB_OK);
  assert_int_equal(chub_callbacks_count(cb, CHUB_ON_MODEL_SAVE), 2);
  char trace[64] = "";
  chub_callbacks_run(cb, CHUB_ON_MODEL_SAVE, trace);
  assert_string_equal(trace, "ab");
  chub_callbacks_free(cb);
}

static void test_remove(void **state) {
  (void)state;
  chub_callbacks *cb = chub_callbacks_new();
  static const char a = 'a', b = 'b', c = 'c';
  chub_callbacks_add(cb, CHUB_TEARDOWN, tag_cb, (void *)&a);
  chub_callbacks_add(cb, CHUB_TEARDOWN, tag_cb, (void *)&b);
  chub_callbacks_add(cb, CHUB_TEARDOWN, tag_cb, (void *)&c);
  assert_int_equal(chub_callbacks_remove(cb, CHUB_TEARDOWN, tag_cb, (void *)&b),
                   CHUB_OK);
  assert_int_equal(chub_callbacks_remove(cb, CHUB_TEARDOWN, tag_cb, (void *)&b),
                   CHUB_EINVAL);
  assert_int_equal(
      chub_callbacks_remove(cb, CHUB_TEARDOWN, other_cb, (void *)&a),
      CHUB_EINVAL);
  char trace[64] = "";
  chub_callbacks_run(cb, CHUB_TEARDOWN, trace);
  assert_string_equal(trace, "ac");
  assert_int_equal(chub_callbacks_count(cb, CHUB_TEARDOWN), 2);
  /* Removed then added again: goes to the end. */
  chub_callbacks_remove(cb, CHUB_TEARDOWN, tag_cb, (void *)&a);
  chub_callbacks_add(cb, CHUB_TEARDOWN, tag_cb, (void *)&a);
  trace[0] = '\0';
  chub_callbacks_run(cb, CHUB_TEARDOWN, trace);
  assert_string_equal(trace, "ca");
  chub_callbacks_free(cb);
}

static void test_grows(void **state) {
  (void)state;
  chub_callbacks *cb = chub_callbacks_new();
  static char tags[200];
  for (int i = 0; i < 200; i++) {
    tags[i] = (char)('0' + i % 10);
    assert_int_equal(
        chub_callbacks_add(cb, CHUB_ON_TRAIN_BATCH_END, tag_cb, &tags[i]),
        CHUB_OK);
  }
  assert_int_equal(chub_callbacks_count(cb, CHUB_ON_TRAIN_BATCH_END), 200);
  char trace[256] = "";
  chub_callbacks_run(cb, CHUB_ON_TRAIN_BATCH_END, trace);
  assert_int_equal(strlen(trace), 200);
  assert_int_equal(trace[0], '0');
  assert_int_equal(trace[199], '9');
  chub_callbacks_free(cb);
}

static void test_bad_arguments(void **state) {
  (void)state;
  chub_callbacks *cb = chub_callbacks_new();
  assert_int_equal(chub_callbacks_add(cb, CHUB_EVENT_COUNT, tag_cb, NULL),
                   CHUB_EINVAL);
  assert_int_equal(chub_callbacks_add(cb, CHUB_ON_VAL_END, NULL, NULL),
                   CHUB_EINVAL);
  assert_int_equal(chub_callbacks_add(NULL, CHUB_ON_VAL_END, tag_cb, NULL),
                   CHUB_EINVAL);
  assert_int_equal(chub_callbacks_count(cb, CHUB_EVENT_COUNT), 0);
  chub_callbacks_run(cb, CHUB_EVENT_COUNT, NULL); /* no crash */
  chub_callbacks_run(NULL, CHUB_ON_VAL_END, NULL);
  chub_callbacks_free(cb);
  chub_callbacks_free(NULL);
}

static void test_all_names_round_trip(void **state) {
  (void)state;
  static const char *const expected[] = {"on_pretrain_routine_start",
                                         "on_pretrain_routine_end",
                                         "on_train_start",
                                         "on_train_epoch_start",
                                         "on_train_batch_start",
                                         "optimizer_step",
                                         "on_before_zero_grad",
                                         "on_train_batch_end",
                                         "on_train_epoch_end",
                                         "on_fit_epoch_end",
                                         "on_model_save",
                                         "on_train_end",
                                         "on_params_update",
                                         "teardown",
                                         "on_val_start",
                                         "on_val_batch_start",
                                         "on_val_batch_end",
                                         "on_val_end",
                                         "on_predict_start",
                                         "on_predict_batch_start",
                                         "on_predict_postprocess_end",
                                         "on_predict_batch_end",
                                         "on_predict_end",
                                         "on_export_start",
                                         "on_export_end"};
  assert_int_equal(sizeof expected / sizeof expected[0], CHUB_EVENT_COUNT);
  assert_int_equal(CHUB_EVENT_COUNT, 25);
  for (int i = 0; i < CHUB_EVENT_COUNT; i++) {
    const char *name = chub_event_name((chub_event)i);
    assert_non_null(name);
    assert_string_equal(name, expected[i]);
    assert_int_equal(chub_event_from_name(name), i);
  }
  assert_null(chub_event_name(CHUB_EVENT_COUNT));
  assert_int_equal(chub_event_from_name("on_nothing"), CHUB_EVENT_COUNT);
  assert_int_equal(chub_event_from_name(NULL), CHUB_EVENT_COUNT);
}

/* A fresh settings directory for one test. */
static char config_dir[256];

static void use_fresh_settings(void) {
  assert_int_equal(
      th_tmpdir_make(config_dir, sizeof config_dir, "chub-test-cb"), 0);
  setenv("CHUB_CONFIG_DIR", config_dir, 1);
  unsetenv("CHUB_HUB");
}

static void remove_settings(void) {
  th_tmpdir_remove(config_dir);
}

static size_t total_callbacks(const chub_callbacks *cb) {
  size_t n = 0;
  for (int i = 0; i < CHUB_EVENT_COUNT; i++)
    n += chub_callbacks_count(cb, (chub_event)i);
  return n;
}

static void test_integration_off_when_hub_false(void **state) {
  (void)state;
  use_fresh_settings();
  char err[256];
  assert_int_equal(chub_settings_set("hub", "false", err, sizeof err), CHUB_OK);
  chub_callbacks *cb = chub_callbacks_new();
  assert_int_equal(chub_add_integration_callbacks(cb), CHUB_EDISABLED);
  assert_int_equal(total_callbacks(cb), 0);
  /* The environment wins over the file. */
  setenv("CHUB_HUB", "True", 1);
  assert_int_equal(chub_add_integration_callbacks(cb), CHUB_OK);
  assert_true(total_callbacks(cb) > 0);
  unsetenv("CHUB_HUB");
  chub_callbacks_free(cb);
  remove_settings();
}

static void test_integration_adds_nine_once(void **state) {
  (void)state;
  use_fresh_settings();
  chub_callbacks *cb = chub_callbacks_new();
  assert_int_equal(chub_add_integration_callbacks(cb), CHUB_OK);
  static const chub_event hub_events[] = {CHUB_ON_PRETRAIN_ROUTINE_START,
                                          CHUB_ON_PRETRAIN_ROUTINE_END,
                                          CHUB_ON_FIT_EPOCH_END,
                                          CHUB_ON_MODEL_SAVE,
                                          CHUB_ON_TRAIN_END,
                                          CHUB_ON_TRAIN_START,
                                          CHUB_ON_VAL_START,
                                          CHUB_ON_PREDICT_START,
                                          CHUB_ON_EXPORT_START};
  for (size_t i = 0; i < 9; i++)
    assert_int_equal(chub_callbacks_count(cb, hub_events[i]), 1);
  assert_int_equal(total_callbacks(cb), 9);
  /* Adding them again must not double every upload. */
  assert_int_equal(chub_add_integration_callbacks(cb), CHUB_OK);
  assert_int_equal(total_callbacks(cb), 9);
  chub_callbacks_free(cb);
  remove_settings();
}

int main(void) {
  setenv("CHUB_TESTING", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runs_in_order_added),
      cmocka_unit_test(test_duplicates_ignored),
      cmocka_unit_test(test_remove),
      cmocka_unit_test(test_grows),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_all_names_round_trip),
      cmocka_unit_test(test_integration_off_when_hub_false),
      cmocka_unit_test(test_integration_adds_nine_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

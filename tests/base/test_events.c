/*
 * test_events.c - anonymous usage events, seen from the hub's side: a small
 * loopback listener stands in for {api_root}/v1/events and the test reads
 * what arrived. Checks the gates (sync, rank, under tests), the JSON sent,
 * the 25-event queue cap, the 25-param cap with nulls dropped, the interval
 * between sends, and that a failed send stays silent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "fakehub.h"
#include "th_log.h"
#include "th_tmpdir.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char cfg_dir[256];
static fakehub *hub;

static int setup(void **state) {
  (void)state;
  hub = fakehub_start_fixed(200, "{\"success\": true, \"message\": \"ok\"}");
  if (!hub)
    return -1;
  setenv("CHUB_API_ROOT", fakehub_url(hub), 1);
  unsetenv("RANK");
  unsetenv("CHUB_SYNC");
  th_log_install(CHUB_LOG_WARN); /* the warnings logged during a test */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  chub_events_flush(3);
  fakehub_stop(hub);
  hub = NULL;
  th_log_uninstall();
  return 0;
}

static json_t *request_json(size_t i) {
  const fakehub_request *r = fakehub_find(hub, NULL, i);
  assert_non_null(r);
  json_error_t e;
  json_t *doc = json_loads(r->body, 0, &e);
  if (!doc)
    fail_msg("events body is not JSON: %s: %s", e.text, r->body);
  return doc;
}

static const chub_args train_args = {.model = "weights/yolo11n.pt",
                                     .data = "/data/sets/coco8.yaml",
                                     .epochs = 10,
                                     .batch = 16,
                                     .imgsz = 640,
                                     .device = "cpu",
                                     .task = "detect",
                                     .mode = "train"};

/* ------------------------------------------------------------ gates */

static void test_gate(void **state) {
  (void)state;
  chub_settings s;
  memset(&s, 0, sizeof s);
  s.sync = true;
  unsetenv("CHUB_TESTING");
  assert_true(chub_events_allowed(&s));
  setenv("RANK", "0", 1);
  assert_true(chub_events_allowed(&s));
  setenv("RANK", "1", 1);
  assert_false(chub_events_allowed(&s));
  unsetenv("RANK");
  setenv("SLURM_PROCID", "2", 1);
  assert_false(chub_events_allowed(&s));
  unsetenv("SLURM_PROCID");
  s.sync = false;
  assert_false(chub_events_allowed(&s));
  s.sync = true;
  setenv("CHUB_TESTING", "1", 1);
  assert_false(chub_events_allowed(&s));
}

/* Runs first: before any test hook, the process is "under tests". */
static void test_never_sent_under_tests(void **state) {
  (void)state;
  chub_event_record("train", &train_args, NULL);
  chub_event_record("predict", &train_args, NULL);
  assert_int_equal(chub_events_pending(), 0);
  assert_true(chub_events_flush(1));
  assert_false(fakehub_wait(hub, NULL, 1, 1.0));
}

static void test_not_sent_without_sync_or_on_rank_1(void **state) {
  (void)state;
  setenv("CHUB_SYNC", "false", 1);
  chub_events_test_reset(0);
  chub_event_record("train", &train_args, NULL);
  assert_int_equal(chub_events_pending(), 0);

  unsetenv("CHUB_SYNC");
  setenv("RANK", "1", 1);
  chub_events_test_reset(0);
  chub_event_record("train", &train_args, NULL);
  assert_int_equal(chub_events_pending(), 0);
  unsetenv("RANK");
  assert_false(fakehub_wait(hub, NULL, 1, 1.0));
}

/* ------------------------------------------------------------ sending */

static void test_sends_train_event_json(void **state) {
  (void)state;
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  chub_events_test_reset(0);
  chub_trainer t = {
      .args = train_args, .epoch = 3, .best_fitness = 0.75, .train_hours = 0.5};
  chub_event_record("train", &t.args, &t);
  /* Sent by the background thread with no flush asked for. */
  assert_true(fakehub_wait(hub, NULL, 1, 10));
  const fakehub_request *r = fakehub_find(hub, NULL, 0);
  assert_string_equal(r->method, "POST");
  assert_string_equal(r->path, "/v1/events");
  char ctype[128];
  assert_true(fakehub_header(r, "Content-Type", ctype, sizeof ctype));
  assert_string_equal(ctype, "application/json");
  char key[128];
  assert_false(fakehub_header(r, "x-api-key", key, sizeof key));

  json_t *doc = request_json(0);
  assert_string_equal(json_string_value(json_object_get(doc, "client_id")),
                      s.uuid);
  json_t *events = json_object_get(doc, "events");
  assert_int_equal(json_array_size(events), 1);
  json_t *ev = json_array_get(events, 0);
  assert_string_equal(json_string_value(json_object_get(ev, "name")), "train");
  json_t *p = json_object_get(ev, "params");
  assert_string_equal(json_string_value(json_object_get(p, "task")), "detect");
  assert_string_equal(json_string_value(json_object_get(p, "model")),
                      "yolo11n.pt");
  assert_string_equal(json_string_value(json_object_get(p, "mode")), "train");
  assert_string_equal(json_string_value(json_object_get(p, "device")), "cpu");
  assert_string_equal(json_string_value(json_object_get(p, "version")),
                      CHUB_VERSION);
  assert_string_equal(json_string_value(json_object_get(p, "data")), "coco8");
  assert_int_equal(json_integer_value(json_object_get(p, "imgsz")), 640);
  assert_int_equal(json_integer_value(json_object_get(p, "epochs")), 3);
  assert_int_equal(json_integer_value(json_object_get(p, "batch")), 16);
  assert_true(json_real_value(json_object_get(p, "hours")) == 0.5);
  assert_true(json_real_value(json_object_get(p, "best_fitness")) == 0.75);
  assert_null(json_object_get(p, "format"));
  json_decref(doc);
}

static void test_export_and_predict_params(void **state) {
  (void)state;
  chub_events_test_reset(3600);
  chub_args ex = {.model = "/models/best.pt",
                  .format = "onnx",
                  .task = "classify",
                  .mode = "export"};
  chub_event_record("export", &ex, NULL);
  chub_args pr = {.model = "best.pt", .task = "classify"}; /* no device */
  chub_event_record("predict", &pr, NULL);
  assert_int_equal(chub_events_pending(), 2);
  assert_true(chub_events_flush(10));
  assert_true(fakehub_wait(hub, NULL, 1, 10));
  json_t *doc = request_json(0);
  json_t *events = json_object_get(doc, "events");
  assert_int_equal(json_array_size(events), 2);
  json_t *p0 = json_object_get(json_array_get(events, 0), "params");
  assert_string_equal(json_string_value(json_object_get(p0, "format")), "onnx");
  assert_string_equal(json_string_value(json_object_get(p0, "model")),
                      "best.pt");
  assert_null(json_object_get(p0, "data")); /* train only */
  json_t *p1 = json_object_get(json_array_get(events, 1), "params");
  assert_string_equal(json_string_value(json_object_get(p1, "mode")),
                      "predict");
  assert_null(json_object_get(p1, "device")); /* null dropped, not sent */
  assert_null(json_object_get(p1, "format"));
  const char *k;
  json_t *v;
  json_object_foreach(p1, k, v) assert_false(json_is_null(v));
  json_decref(doc);
}

static void test_queue_capped_at_25(void **state) {
  (void)state;
  chub_events_test_reset(3600);
  for (int i = 0; i < 30; i++)
    chub_event_record("predict", &train_args, NULL);
  assert_int_equal(chub_events_pending(), 25);
  assert_true(chub_events_flush(10));
  assert_true(fakehub_wait(hub, NULL, 1, 10));
  json_t *doc = request_json(0);
  assert_int_equal(json_array_size(json_object_get(doc, "events")), 25);
  json_decref(doc);
  assert_false(fakehub_wait(hub, NULL, 2, 0.5)); /* the 5 extra were dropped */
}

static void test_params_capped_nulls_dropped(void **state) {
  (void)state;
  chub_events_test_reset(3600);
  json_t *params = json_object();
  json_object_set_new(params, "a_null", json_null());
  for (int i = 0; i < 30; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%02d", i);
    json_object_set_new(params, name, json_integer(i));
    if (i == 10)
      json_object_set_new(params, "b_null", json_null());
  }
  chub_events_push("val", params);
  assert_true(chub_events_flush(10));
  assert_true(fakehub_wait(hub, NULL, 1, 10));
  json_t *doc = request_json(0);
  json_t *p = json_object_get(json_array_get(json_object_get(doc, "events"), 0),
                              "params");
  assert_int_equal(json_object_size(p), 25);
  assert_null(json_object_get(p, "a_null"));
  assert_null(json_object_get(p, "b_null"));
  assert_int_equal(json_integer_value(json_object_get(p, "p00")), 0);
  assert_int_equal(json_integer_value(json_object_get(p, "p24")), 24);
  assert_null(json_object_get(p, "p25"));
  json_decref(doc);
}

static void test_one_send_per_interval(void **state) {
  (void)state;
  chub_events_test_reset(3600);
  chub_event_record("train", &train_args, NULL);
  assert_true(chub_events_flush(10));
  assert_true(fakehub_wait(hub, NULL, 1, 10));
  /* Within the interval, new events wait in the queue. */
  chub_event_record("val", &train_args, NULL);
  chub_event_record("predict", &train_args, NULL);
  assert_false(fakehub_wait(hub, NULL, 2, 1.5));
  assert_int_equal(chub_events_pending(), 2);
  /* ...and leave together in one request. */
  assert_true(chub_events_flush(10));
  assert_true(fakehub_wait(hub, NULL, 2, 10));
  json_t *doc = request_json(1);
  json_t *events = json_object_get(doc, "events");
  assert_int_equal(json_array_size(events), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(events, 0), "name")),
      "val");
  json_decref(doc);
}

static void test_failed_send_is_silent(void **state) {
  (void)state;
  fakehub_answer_all(hub, 500, "{\"success\": false, \"message\": \"down\"}");
  chub_events_test_reset(0);
  chub_event_record("train", &train_args, NULL);
  assert_true(fakehub_wait(hub, NULL, 1, 10));
  assert_true(chub_events_flush(10));

  /* No listener at all: the port is closed. */
  fakehub *gone = fakehub_start_fixed(200, "{}");
  assert_non_null(gone);
  setenv("CHUB_API_ROOT", fakehub_url(gone), 1);
  fakehub_stop(gone);
  chub_events_test_reset(0);
  chub_event_record("train", &train_args, NULL);
  assert_true(chub_events_flush(10));
  assert_int_equal(chub_events_pending(), 0);
  char *warnings = th_log_text();
  assert_string_equal(warnings, "");
  free(warnings);
}

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

static bool built_with_tsan(void) {
#ifdef TEST_TSAN
  return true;
#else
  return false;
#endif
}

/* Waits at most 10 s for pid; returns its exit status or -1. */
static int wait_child(pid_t pid) {
  int st = -1;
  for (int i = 0; i < 1000; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

/* An event recorded just before the program exits is still sent: the exit
 * flush. The program is this test binary in its --record-and-exit mode. */
static void test_sent_at_exit(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl("/proc/self/exe", "test_base_events", "--record-and-exit",
          fakehub_url(hub), (char *)NULL);
    _exit(127);
  }
  assert_int_equal(wait_child(pid), 0);
  assert_true(fakehub_wait(hub, NULL, 1, 5));
  json_t *doc = request_json(0);
  json_t *ev = json_array_get(json_object_get(doc, "events"), 0);
  assert_string_equal(json_string_value(json_object_get(ev, "name")), "export");
  json_decref(doc);
}

/* A forked child has no sender thread of its own: it starts one for its own
 * events and never re-sends what the parent had queued. */
static void test_fork_child_starts_afresh(void **state) {
  (void)state;
  if (built_with_tsan()) {
    skip(); /* TSan cannot start threads after a multi-threaded fork */
  }
  chub_events_test_reset(3600);
  chub_event_record("train", &train_args, NULL);
  assert_int_equal(chub_events_pending(), 1);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int pending = (int)chub_events_pending();
    chub_event_record("predict", &train_args, NULL);
    _exit(pending == 0 && chub_events_flush(5) ? 0 : 1);
  }
  assert_int_equal(wait_child(pid), 0);
  assert_true(fakehub_wait(hub, NULL, 1, 5));
  json_t *doc = request_json(0);
  json_t *events = json_object_get(doc, "events");
  assert_int_equal(json_array_size(events), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(events, 0), "name")),
      "predict");
  json_decref(doc);
  assert_int_equal(chub_events_pending(), 1); /* the parent's, still here */
  assert_true(chub_events_flush(10));
  assert_true(fakehub_wait(hub, NULL, 2, 10));
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--record-and-exit") == 0) {
    /* test_sent_at_exit's program: record, then leave at once. */
    setenv("CHUB_API_ROOT", argv[2], 1);
    chub_events_test_reset(3600);
    chub_args ex = {.model = "best.pt", .format = "onnx", .mode = "export"};
    chub_event_record("export", &ex, NULL);
    return chub_events_pending() == 1 ? 0 : 3;
  }
  if (th_tmpdir_make(cfg_dir, sizeof cfg_dir, "chub-test-events") != 0)
    return 1;
  setenv("CHUB_CONFIG_DIR", cfg_dir, 1);
  setenv("CHUB_TESTING", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_never_sent_under_tests, setup,
                                      teardown),
      cmocka_unit_test(test_gate),
      cmocka_unit_test_setup_teardown(test_not_sent_without_sync_or_on_rank_1,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_sent_at_exit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sends_train_event_json, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_export_and_predict_params, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_queue_capped_at_25, setup, teardown),
      cmocka_unit_test_setup_teardown(test_params_capped_nulls_dropped, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_one_send_per_interval, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_send_is_silent, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fork_child_starts_afresh, setup,
                                      teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  th_tmpdir_remove(cfg_dir);
  return failed;
}

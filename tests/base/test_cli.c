/*
 * test_cli.c - the `chub` program as a person runs it: the real binary
 * (path in argv[1]) in a child process with its own settings directory,
 * talking to a small loopback listener that answers like a hub would (and,
 * when the build has it, to the real chubd). Checks exit statuses, what is
 * printed, and what ends up in the settings file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fakehub.h"
#include "th_tmpdir.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef CHUB_TEST_HAVE_CHUBD
#include "chub.h"
#include "chubd_proc.h"
#include "th.h"
#endif

static const char *chub_bin;
static char tmp_root[256];
static char settings_file[400];
static char out_path[400], err_path[400];
static char *out, *err; /* the last run's stdout and stderr */
static fakehub *hub;

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return strdup("");
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, fp);
  buf[got] = '\0';
  fclose(fp);
  return buf;
}

/* Runs chub with args (NULL-terminated, without argv[0]), at most 30 s;
 * returns its exit status and leaves its output in out/err. */
static int run_chub(const char *const args[]) {
  free(out);
  free(err);
  out = err = NULL;
  const char *argv[16] = {chub_bin};
  size_t n = 1;
  for (; args[n - 1] && n < 15; n++)
    argv[n] = args[n - 1];
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(o, 1);
    dup2(e, 2);
    execv(chub_bin, (char *const *)argv);
    _exit(127);
  }
  int status = -1;
  for (int i = 0; i < 3000; i++) { /* 30 s in 10 ms steps */
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (i == 2999) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("chub %s did not finish in 30 s", args[0] ? args[0] : "");
    }
  }
  out = slurp(out_path);
  err = slurp(err_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static json_t *settings_json(void) {
  json_error_t e;
  json_t *doc = json_load_file(settings_file, 0, &e);
  if (!doc)
    fail_msg("settings file %s not JSON: %s", settings_file, e.text);
  return doc;
}

static const char *setting_str(json_t *doc, const char *key) {
  return json_string_value(json_object_get(doc, key));
}

#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    if (!strstr((hay), (needle)))                                              \
      fail_msg("expected '%s' in:\n%s", (needle), (hay));                      \
  } while (0)

#define ASSERT_LACKS(hay, needle)                                              \
  do {                                                                         \
    if (strstr((hay), (needle)))                                               \
      fail_msg("did not expect '%s' in:\n%s", (needle), (hay));                \
  } while (0)

static int setup(void **state) {
  (void)state;
  if (th_tmpdir_make(tmp_root, sizeof tmp_root, "chub-test-cli") != 0)
    return -1;
  char cfg[300];
  snprintf(cfg, sizeof cfg, "%s/cfg", tmp_root);
  snprintf(settings_file, sizeof settings_file, "%s/settings.json", cfg);
  snprintf(out_path, sizeof out_path, "%s/stdout", tmp_root);
  snprintf(err_path, sizeof err_path, "%s/stderr", tmp_root);
  setenv("CHUB_CONFIG_DIR", cfg, 1);
  char runs[300];
  snprintf(runs, sizeof runs, "%s/runs", tmp_root);
  setenv("CHUB_RUNS_DIR", runs, 1);
  unsetenv("CHUB_API_KEY");
  hub = fakehub_start_fixed(
      200, "{\"success\": true, \"message\": \"ok\", \"data\": {\"uid\": "
           "\"owner\"}}");
  if (!hub)
    return -1;
  setenv("CHUB_API_ROOT", fakehub_url(hub), 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fakehub_stop(hub);
  hub = NULL;
  free(out);
  free(err);
  out = err = NULL;
  th_tmpdir_remove(tmp_root);
  return 0;
}

static const char *const good_key =
    "AbCdEfGhIj0123456789AbCdEfGhIj0123456789Zz";

/* ------------------------------------------------------------ login */

static void test_login_saves_accepted_key(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"login", good_key, NULL}), 0);
  ASSERT_CONTAINS(out, "Logged in");
  ASSERT_CONTAINS(out, "owner");
  assert_int_equal(fakehub_count(hub, NULL), 1);
  const fakehub_request *r = fakehub_find(hub, NULL, 0);
  assert_string_equal(r->method, "POST");
  assert_string_equal(r->path, "/v1/auth");
  char key[128];
  assert_true(fakehub_header(r, "x-api-key", key, sizeof key));
  assert_string_equal(key, good_key);

  json_t *doc = settings_json();
  assert_string_equal(setting_str(doc, "api_key"), good_key);
  json_decref(doc);
  struct stat st;
  assert_int_equal(stat(settings_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_login_rejected_keeps_old_key(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"login", good_key, NULL}), 0);
  fakehub_answer_all(hub, 401,
                     "{\"success\": false, \"message\": \"Invalid API key: "
                     "it was revoked\"}");
  assert_int_equal(run_chub((const char *[]){"login", "WrongKey123", NULL}), 1);
  ASSERT_CONTAINS(err, "Invalid API key: it was revoked");
  ASSERT_CONTAINS(err, "not saved");
  json_t *doc = settings_json();
  assert_string_equal(setting_str(doc, "api_key"), good_key);
  json_decref(doc);
}

static void test_login_without_answer(void **state) {
  (void)state;
  fakehub *gone = fakehub_start_fixed(200, "{}");
  assert_non_null(gone);
  setenv("CHUB_API_ROOT", fakehub_url(gone), 1);
  fakehub_stop(gone); /* nobody listens on that port now */
  assert_int_equal(run_chub((const char *[]){"login", good_key, NULL}), 1);
  ASSERT_CONTAINS(err, "cannot reach the hub");
  json_t *doc = settings_json();
  assert_string_equal(setting_str(doc, "api_key"), "");
  json_decref(doc);
}

static void test_login_usage(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"login", NULL}), 2);
  ASSERT_CONTAINS(err, "usage:");
  assert_int_equal(run_chub((const char *[]){"login", "a b", NULL}), 2);
  assert_int_equal(fakehub_count(hub, NULL), 0);
}

static void test_logout(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"login", good_key, NULL}), 0);
  assert_int_equal(run_chub((const char *[]){"logout", NULL}), 0);
  ASSERT_CONTAINS(out, "Logged out");
  json_t *doc = settings_json();
  assert_string_equal(setting_str(doc, "api_key"), "");
  json_decref(doc);
}

/* ------------------------------------------------------------ settings */

static void test_settings_show_masks_key(void **state) {
  (void)state;
  assert_int_equal(
      run_chub((const char *[]){"settings", "api_key=secretkey1234", NULL}), 0);
  assert_int_equal(run_chub((const char *[]){"settings", NULL}), 0);
  ASSERT_CONTAINS(out, "*********1234");
  assert_null(strstr(out, "secretkey"));
  ASSERT_CONTAINS(out, settings_file);
  static const char *const keys[] = {"uuid",
                                     "sync",
                                     "hub",
                                     "api_key",
                                     "api_root",
                                     "web_root",
                                     "mode",
                                     "system_metrics",
                                     "rate_limit_metrics",
                                     "rate_limit_ckpt",
                                     "rate_limit_heartbeat",
                                     "final_sync_deadline",
                                     "spool_max_mb",
                                     "runs_dir"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    ASSERT_CONTAINS(out, keys[i]);
  ASSERT_CONTAINS(out, "(from CHUB_API_ROOT)");
}

static void test_settings_set(void **state) {
  (void)state;
  assert_int_equal(
      run_chub((const char *[]){"settings", "sync=False",
                                "rate_limit_metrics=7", "mode=offline", NULL}),
      0);
  json_t *doc = settings_json();
  assert_true(json_is_false(json_object_get(doc, "sync")));
  assert_true(json_number_value(json_object_get(doc, "rate_limit_metrics")) ==
              7);
  assert_string_equal(setting_str(doc, "mode"), "offline");
  json_decref(doc);
}

static void test_settings_bad_value_changes_nothing(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"settings", NULL}), 0);
  char *before = slurp(settings_file);
  /* The first value is fine, the second is not: neither is saved. */
  assert_int_equal(run_chub((const char *[]){"settings", "mode=offline",
                                             "rate_limit_ckpt=-3", NULL}),
                   2);
  ASSERT_CONTAINS(err, "rate_limit_ckpt");
  /* The command's own usage follows the error, not every command's, which
   * would bury it. */
  ASSERT_CONTAINS(err, "usage: chub settings [KEY=VALUE ... | reset]\n");
  ASSERT_LACKS(err, "push-dataset");
  assert_int_equal(run_chub((const char *[]){"settings", "sync=maybe", NULL}),
                   2);
  ASSERT_CONTAINS(err, "sync");
  assert_int_equal(run_chub((const char *[]){"settings", "colour=blue", NULL}),
                   2);
  ASSERT_CONTAINS(err, "unknown setting 'colour'");
  assert_int_equal(run_chub((const char *[]){"settings", "mode", NULL}), 2);
  ASSERT_CONTAINS(err, "KEY=VALUE");
  char *after = slurp(settings_file);
  assert_string_equal(before, after);
  free(before);
  free(after);
}

static void test_settings_reset(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"settings", "hub=0",
                                             "api_key=k0123456789", NULL}),
                   0);
  json_t *doc = settings_json();
  char *uuid = strdup(setting_str(doc, "uuid"));
  json_decref(doc);
  assert_int_equal(run_chub((const char *[]){"settings", "reset", NULL}), 0);
  doc = settings_json();
  assert_true(json_is_true(json_object_get(doc, "hub")));
  assert_string_equal(setting_str(doc, "api_key"), "");
  assert_string_equal(setting_str(doc, "uuid"), uuid);
  json_decref(doc);
  free(uuid);
}

/* ------------------------------------------------------------ the rest */

static void test_unknown_command_and_help(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"frobnicate", NULL}), 2);
  ASSERT_CONTAINS(err, "unknown command 'frobnicate'");
  ASSERT_CONTAINS(err, "usage:");
  assert_string_equal(out, "");
  assert_int_equal(run_chub((const char *[]){NULL}), 2);
  ASSERT_CONTAINS(err, "usage:");
  assert_int_equal(run_chub((const char *[]){"--help", NULL}), 0);
  ASSERT_CONTAINS(out, "login KEY");
  ASSERT_CONTAINS(out, "sync");
  assert_int_equal(run_chub((const char *[]){"help", NULL}), 0);
  /* A command's --help is never taken for its argument. */
  assert_int_equal(run_chub((const char *[]){"login", "--help", NULL}), 0);
  ASSERT_CONTAINS(out, "usage: chub login KEY");
  assert_int_equal(fakehub_count(hub, NULL), 0);
  assert_int_equal(run_chub((const char *[]){"--version", NULL}), 0);
  assert_string_equal(out, "chub 0.1.0\n");
  assert_int_equal(run_chub((const char *[]){"sync", "--bogus", NULL}), 2);
  ASSERT_CONTAINS(err, "unknown option '--bogus' for sync");
  ASSERT_CONTAINS(err, "usage: chub sync [RUN ... | --all]\n");
  ASSERT_CONTAINS(err, "chub help");
  ASSERT_LACKS(err, "push-dataset");
  assert_int_equal(run_chub((const char *[]){"logout", "extra", NULL}), 2);
  ASSERT_CONTAINS(err, "usage: chub logout\n");
}

static void test_models_lists_hub_answer(void **state) {
  (void)state;
  assert_int_equal(run_chub((const char *[]){"models", NULL}), 1);
  ASSERT_CONTAINS(err, "chub login");
  assert_int_equal(run_chub((const char *[]){"login", good_key, NULL}), 0);
  fakehub_answer_all(
      hub, 200,
      "{\"success\": true, \"message\": \"ok\", \"data\": {\"results\": ["
      "{\"id\": \"AAAAAAAAAAAAAAAAAAAA\", \"meta\": {\"name\": \"mnist.cfg\"},"
      " \"status\": \"training\", \"epochs\": 10, \"last_epoch\": 3,"
      " \"updated_at\": \"2026-01-01T00:00:00Z\"}], \"total\": 1, "
      "\"lastRecordId\": \"AAAAAAAAAAAAAAAAAAAA\"}}");
  assert_int_equal(run_chub((const char *[]){"models", NULL}), 0);
  ASSERT_CONTAINS(out, "AAAAAAAAAAAAAAAAAAAA");
  ASSERT_CONTAINS(out, "mnist.cfg");
  ASSERT_CONTAINS(out, "training");
  ASSERT_CONTAINS(out, "4/10");
  const fakehub_request *r = fakehub_find(hub, NULL, 1);
  assert_string_equal(r->method, "GET");
  ASSERT_CONTAINS(r->path, "/v1/models?limit=");
  fakehub_answer_all(hub, 401,
                     "{\"success\": false, \"message\": \"bad key\"}");
  assert_int_equal(run_chub((const char *[]){"models", NULL}), 1);
  ASSERT_CONTAINS(err, "bad key");
}

static void test_sync_with_no_runs(void **state) {
  (void)state;
  /* Not logged in: said once, before any run is tried. */
  assert_int_equal(run_chub((const char *[]){"sync", NULL}), 1);
  ASSERT_CONTAINS(err, "chub login KEY");
  assert_int_equal(run_chub((const char *[]){"login", good_key, NULL}), 0);
  assert_int_equal(run_chub((const char *[]){"sync", "--all", NULL}), 0);
  ASSERT_CONTAINS(out, "nothing to sync");
  /* No runs is said, not shown as empty output. */
  assert_int_equal(run_chub((const char *[]){"runs", NULL}), 0);
  ASSERT_CONTAINS(out, "no runs in ");
  assert_int_equal(run_chub((const char *[]){"settings", "mode=offline", NULL}),
                   0);
  assert_int_equal(run_chub((const char *[]){"sync", NULL}), 1);
  ASSERT_CONTAINS(err, "mode=online");
  assert_int_equal(run_chub((const char *[]){"settings", "mode=online", NULL}),
                   0);
  assert_int_equal(run_chub((const char *[]){"sync", "no-such-run", NULL}), 1);
  ASSERT_CONTAINS(err, "no-such-run");
}

#ifdef CHUB_TEST_HAVE_CHUBD
/* The same login and model list against the real hub server. */
static void test_against_real_chubd(void **state) {
  (void)state;
  chubd_proc *p = chubd_proc_start(CHUBD_BIN, NULL, NULL);
  assert_non_null(p);
  setenv("CHUB_API_ROOT", chubd_proc_base_url(p), 1);
  int rc = run_chub((const char *[]){"login", chubd_proc_key(p), NULL});
  if (rc != 0)
    chubd_proc_dump_log(p, 4096);
  assert_int_equal(rc, 0);
  char *id =
      th_create_model(chubd_proc_base_url(p), chubd_proc_key(p), "cli-test.pt");
  assert_non_null(id);
  assert_int_equal(run_chub((const char *[]){"models", NULL}), 0);
  ASSERT_CONTAINS(out, id);
  ASSERT_CONTAINS(out, "cli-test.pt");
  free(id);
  assert_int_equal(run_chub((const char *[]){"login",
                                             "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
                                             "ZZZZZZZZZZZZ",
                                             NULL}),
                   1);
  ASSERT_CONTAINS(err, "login failed");
  json_t *doc = settings_json();
  assert_string_equal(setting_str(doc, "api_key"), chubd_proc_key(p));
  json_decref(doc);
  chubd_proc_free(p);
}

/* A run trained offline is listed by `chub runs` and uploaded by
 * `chub sync` (no argument = every run with pending work), once. */
static void test_sync_uploads_offline_run(void **state) {
  (void)state;
  chubd_proc *p = chubd_proc_start(CHUBD_BIN, NULL, NULL);
  assert_non_null(p);
  setenv("CHUB_API_ROOT", chubd_proc_base_url(p), 1);

  setenv("CHUB_MODE", "offline", 1);
  chub_args args = {.model = "mlp.cfg",
                    .data = "fashion-mnist",
                    .epochs = 2,
                    .batch = 32,
                    .imgsz = 28,
                    .device = "cpu",
                    .task = "classify",
                    .mode = "train"};
  chub_session *s = NULL;
  assert_int_equal(chub_session_open("mlp.cfg", &args, &s), CHUB_EOFFLINE);
  assert_non_null(s);
  assert_int_equal(chub_session_queue_metrics(s, 0, "{\"train/loss\": 1.5}"),
                   CHUB_OK);
  assert_int_equal(chub_session_queue_metrics(s, 1, "{\"train/loss\": 0.9}"),
                   CHUB_OK);
  char *run = strdup(chub_session_run_id(s));
  chub_session_close(s);
  unsetenv("CHUB_MODE");

  assert_int_equal(run_chub((const char *[]){"runs", NULL}), 0);
  ASSERT_CONTAINS(out, run);
  assert_int_equal(run_chub((const char *[]){"login", chubd_proc_key(p), NULL}),
                   0);
  int rc = run_chub((const char *[]){"sync", NULL});
  if (rc != 0)
    fprintf(stderr, "chub sync said:\n%s%s", out, err);
  assert_int_equal(rc, 0);
  ASSERT_CONTAINS(out, run);

  th_response r;
  char *url = th_fmt("%s/v1/models", chubd_proc_base_url(p));
  assert_int_equal(th_json_request("GET", url, chubd_proc_key(p), NULL, &r), 0);
  json_t *doc = th_json_parse(r.body);
  assert_int_equal(th_json_int(doc, "data.total", -1), 1);
  char *metrics_url = th_fmt("%s/v1/models/%s/metrics", chubd_proc_base_url(p),
                             th_json_str(doc, "data.results.0.id"));
  json_decref(doc);
  th_response_free(&r);
  assert_int_equal(
      th_json_request("GET", metrics_url, chubd_proc_key(p), NULL, &r), 0);
  doc = th_json_parse(r.body);
  assert_int_equal(json_array_size(th_json_at(doc, "data")), 2);
  json_decref(doc);
  th_response_free(&r);

  /* Nothing is left: a second sync uploads nothing and succeeds. */
  assert_int_equal(run_chub((const char *[]){"sync", "--all", NULL}), 0);
  ASSERT_CONTAINS(out, "nothing to sync");
  free(url);
  free(metrics_url);
  free(run);
  chubd_proc_free(p);
}
#endif

#ifdef CHUB_TEST_HAVE_SERVE
/* `chub serve` runs the same server as chubd: it writes its port, answers
 * /v1/health and drains on SIGTERM with status 0. */
static void test_serve_runs_chubd(void **state) {
  (void)state;
  char data[400], port_file[400];
  snprintf(data, sizeof data, "%s/chubd", tmp_root);
  snprintf(port_file, sizeof port_file, "%s/port", tmp_root);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(e, 2);
    execl(chub_bin, chub_bin, "serve", "--listen", "127.0.0.1:0", "--data",
          data, "--port-file", port_file, (char *)NULL);
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 1000 && port == 0; i++) { /* 10 s */
    FILE *fp = fopen(port_file, "r");
    if (fp) {
      if (fscanf(fp, "%d", &port) != 1)
        port = 0;
      fclose(fp);
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    if (port == 0)
      nanosleep(&ts, NULL);
  }
  if (port == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("chub serve wrote no port file");
  }
  char *url = th_fmt("http://127.0.0.1:%d/v1/health", port);
  th_response r;
  int rc = th_json_request("GET", url, NULL, NULL, &r);
  long status = rc == 0 ? r.status : 0;
  if (rc == 0)
    th_response_free(&r);
  free(url);
  kill(pid, SIGTERM);
  int st = -1;
  for (int i = 0; i < 1000; i++) { /* 10 s */
    if (waitpid(pid, &st, WNOHANG) == pid)
      break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (i == 999) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
    }
  }
  assert_int_equal(rc, 0);
  assert_int_equal(status, 200);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}
#endif

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PATH_TO_CHUB\n", argv[0]);
    return 2;
  }
  chub_bin = argv[1];
  setenv("CHUB_TESTING", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_login_saves_accepted_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_login_rejected_keeps_old_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_login_without_answer, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_login_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_logout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_settings_show_masks_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_settings_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_settings_bad_value_changes_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_settings_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_command_and_help, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_models_lists_hub_answer, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sync_with_no_runs, setup, teardown),
#ifdef CHUB_TEST_HAVE_CHUBD
      cmocka_unit_test_setup_teardown(test_against_real_chubd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_uploads_offline_run, setup,
                                      teardown),
#endif
#ifdef CHUB_TEST_HAVE_SERVE
      cmocka_unit_test_setup_teardown(test_serve_runs_chubd, setup, teardown),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

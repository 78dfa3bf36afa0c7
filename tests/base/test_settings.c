/*
 * test_settings.c - the settings file as a user meets it: created with
 * defaults and mode 0600 on first use, a corrupt or wrongly typed file reset
 * with a warning that names it while the old file is kept as .bad, the
 * environment overriding the file without being written to it, `set`
 * refusing bad values with a message naming the key, `reset` keeping the
 * anonymous id; and the rank precedence of distributed launchers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "th_log.h"
#include "th_tmpdir.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixtures */

static char tmp_root[256];
static char cfg_dir[300];
static char settings_file[400];

/* Asserts that nothing was logged at WARN or above (th_log) during the
 * test. */
static void assert_no_warning(void) {
  char *captured = th_log_text();
  assert_string_equal(captured, "");
  free(captured);
}

static const char *const env_vars[] = {
    "CHUB_CONFIG_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME",      "CHUB_API_KEY",
    "CHUB_API_ROOT",   "CHUB_WEB_ROOT",   "CHUB_HUB",           "CHUB_SYNC",
    "CHUB_MODE",       "CHUB_RUNS_DIR",   "CHUB_SYSTEM_METRICS"};

static int setup(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
    unsetenv(env_vars[i]);
  if (th_tmpdir_make(tmp_root, sizeof tmp_root, "chub-test-settings") != 0)
    return -1;
  /* Two levels that do not exist yet: load must create them. */
  snprintf(cfg_dir, sizeof cfg_dir, "%s/cfg/chub", tmp_root);
  snprintf(settings_file, sizeof settings_file, "%s/settings.json", cfg_dir);
  setenv("CHUB_CONFIG_DIR", cfg_dir, 1);
  th_log_install(CHUB_LOG_WARN); /* the warnings logged during a test */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  th_log_uninstall();
  th_tmpdir_remove(tmp_root);
  return 0;
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return NULL;
  static char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  return strdup(buf);
}

static void spit(const char *path, const char *text) {
  char dir[400];
  snprintf(dir, sizeof dir, "%s/cfg", tmp_root);
  mkdir(dir, 0700);
  mkdir(cfg_dir, 0700);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static json_t *file_json(void) {
  json_error_t e;
  json_t *doc = json_load_file(settings_file, 0, &e);
  if (!doc)
    fail_msg("settings file not JSON: %s (line %d)", e.text, e.line);
  return doc;
}

/* ------------------------------------------------------------ tests */

static void test_defaults_created_0600(void **state) {
  (void)state;
  setenv("XDG_DATA_HOME", "/srv/data", 1);
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_true(s.sync);
  assert_true(s.hub);
  assert_true(s.system_metrics);
  assert_string_equal(s.api_key, "");
  assert_string_equal(s.api_root, "http://127.0.0.1:8080");
  assert_string_equal(s.web_root, "");
  assert_string_equal(chub_settings_web_root(&s), "http://127.0.0.1:8080");
  assert_string_equal(s.mode, "online");
  assert_true(s.rate_metrics == 3);
  assert_true(s.rate_ckpt == 900);
  assert_true(s.rate_heartbeat == 300);
  assert_true(s.final_deadline == 3600);
  assert_true(s.spool_max_bytes == 256LL * 1024 * 1024);
  assert_string_equal(s.runs_dir, "/srv/data/chub/runs");
  assert_int_equal(strlen(s.uuid), 64);
  assert_int_equal(strspn(s.uuid, "0123456789abcdef"), 64);
  assert_no_warning(); /* first use is not a problem */

  /* The id is the SHA-256 of the machine id, never the raw id. */
  char *mid = slurp("/etc/machine-id");
  if (mid && *mid) {
    size_t n = strcspn(mid, "\n ");
    unsigned char md[32];
    unsigned len = 0;
    EVP_Digest(mid, n, md, &len, EVP_sha256(), NULL);
    char hex[65];
    for (int i = 0; i < 32; i++)
      snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(s.uuid, hex);
  }
  free(mid);

  struct stat st;
  assert_int_equal(stat(settings_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(cfg_dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);

  char path[512];
  assert_int_equal(chub_settings_path(path, sizeof path), CHUB_OK);
  assert_string_equal(path, settings_file);

  json_t *doc = file_json();
  assert_string_equal(json_string_value(json_object_get(doc, "uuid")), s.uuid);
  assert_true(json_is_true(json_object_get(doc, "sync")));
  assert_int_equal(json_integer_value(json_object_get(doc, "spool_max_mb")),
                   256);
  json_decref(doc);

  /* A second load reads the same file: same id. */
  chub_settings again;
  assert_int_equal(chub_settings_load(&again), CHUB_OK);
  assert_string_equal(again.uuid, s.uuid);
}

static void test_file_location(void **state) {
  (void)state;
  char path[512], want[512];
  unsetenv("CHUB_CONFIG_DIR");
  setenv("XDG_CONFIG_HOME", tmp_root, 1);
  assert_int_equal(chub_settings_path(path, sizeof path), CHUB_OK);
  snprintf(want, sizeof want, "%s/chub/settings.json", tmp_root);
  assert_string_equal(path, want);

  unsetenv("XDG_CONFIG_HOME");
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("HOME", tmp_root, 1);
  assert_int_equal(chub_settings_path(path, sizeof path), CHUB_OK);
  snprintf(want, sizeof want, "%s/.config/chub/settings.json", tmp_root);
  assert_string_equal(path, want);
  /* And the default runs directory follows HOME too. */
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  snprintf(want, sizeof want, "%s/.local/share/chub/runs", tmp_root);
  assert_string_equal(s.runs_dir, want);
  if (home)
    setenv("HOME", home, 1);
  free(home);
}

static void test_corrupt_file_reset_and_kept(void **state) {
  (void)state;
  const char *broken = "{\n  \"sync\": false,\n  \"hub\": tru\n}\n";
  spit(settings_file, broken);
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_true(s.sync); /* defaults */
  assert_true(th_log_contains(settings_file));
  assert_true(th_log_contains("not valid JSON at line 3"));
  assert_true(th_log_contains(".bad"));

  char bad[512];
  snprintf(bad, sizeof bad, "%s.bad", settings_file);
  char *kept = slurp(bad);
  assert_non_null(kept);
  assert_string_equal(kept, broken); /* nothing lost */
  free(kept);

  json_t *doc = file_json(); /* the new file is valid again */
  assert_true(json_is_true(json_object_get(doc, "hub")));
  json_decref(doc);
  struct stat st;
  assert_int_equal(stat(settings_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* Loading again is quiet: the file is fixed. */
  th_log_reset();
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_no_warning();
}

static void test_not_an_object_reset(void **state) {
  (void)state;
  spit(settings_file, "[1, 2, 3]\n");
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_true(th_log_contains(settings_file));
  assert_true(th_log_contains("not a JSON object"));
  assert_true(s.hub);
}

static void test_wrong_type_reset(void **state) {
  (void)state;
  const char *typed = "{\"sync\": \"yes\", \"api_key\": "
                      "\"abcdefghij0123456789abcdefghij0123456789ab\","
                      " \"rate_limit_metrics\": -5, \"mode\": \"online\"}";
  spit(settings_file, typed);
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_true(th_log_contains(settings_file));
  assert_true(th_log_contains("sync must be true or false"));
  assert_true(th_log_contains("rate_limit_metrics"));
  assert_true(s.sync);
  assert_true(s.rate_metrics == 3);
  /* The good values stay: a typo does not log the user out. */
  assert_string_equal(s.api_key, "abcdefghij0123456789abcdefghij0123456789ab");

  char bad[512];
  snprintf(bad, sizeof bad, "%s.bad", settings_file);
  char *kept = slurp(bad);
  assert_non_null(kept);
  assert_string_equal(kept, typed);
  free(kept);
  json_t *doc = file_json();
  assert_true(json_is_true(json_object_get(doc, "sync")));
  json_decref(doc);
}

static void test_env_overrides(void **state) {
  (void)state;
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  char *before = slurp(settings_file);

  setenv("CHUB_API_KEY", "envkey0123", 1);
  setenv("CHUB_API_ROOT", "http://10.0.0.7:9000/", 1);
  setenv("CHUB_WEB_ROOT", "https://hub.example.org", 1);
  setenv("CHUB_HUB", "0", 1);
  setenv("CHUB_SYNC", "False", 1);
  setenv("CHUB_MODE", "offline", 1);
  setenv("CHUB_RUNS_DIR", "/var/tmp/chub-runs", 1);
  setenv("CHUB_SYSTEM_METRICS", "0", 1);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_string_equal(s.api_key, "envkey0123");
  assert_string_equal(s.api_root, "http://10.0.0.7:9000");
  assert_string_equal(s.web_root, "https://hub.example.org");
  assert_string_equal(chub_settings_web_root(&s), "https://hub.example.org");
  assert_false(s.hub);
  assert_false(s.sync);
  assert_string_equal(s.mode, "offline");
  assert_string_equal(s.runs_dir, "/var/tmp/chub-runs");
  assert_false(s.system_metrics);

  /* Never written back. */
  char *after = slurp(settings_file);
  assert_string_equal(before, after);
  free(before);
  free(after);

  /* A bad override is ignored, with a warning naming the variable. */
  setenv("CHUB_MODE", "sideways", 1);
  setenv("CHUB_HUB", "maybe", 1);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_string_equal(s.mode, "online");
  assert_true(s.hub);
  assert_true(th_log_contains("CHUB_MODE"));
  assert_true(th_log_contains("CHUB_HUB"));
  for (size_t i = 3; i < sizeof env_vars / sizeof env_vars[0]; i++)
    unsetenv(env_vars[i]);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_string_equal(s.api_root, "http://127.0.0.1:8080");
}

static void expect_set_fails(const char *key, const char *value,
                             const char *mention) {
  char err[256] = "";
  assert_int_equal(chub_settings_set(key, value, err, sizeof err), CHUB_EINVAL);
  if (!strstr(err, mention))
    fail_msg("set %s=%s: message '%s' does not mention '%s'", key, value, err,
             mention);
}

static void test_set_validates(void **state) {
  (void)state;
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  char *before = slurp(settings_file);
  expect_set_fails("sync", "maybe", "sync");
  expect_set_fails("hub", "", "hub");
  expect_set_fails("rate_limit_metrics", "-1", "rate_limit_metrics");
  expect_set_fails("rate_limit_ckpt", "soon", "rate_limit_ckpt");
  expect_set_fails("rate_limit_heartbeat", "0", "rate_limit_heartbeat");
  expect_set_fails("final_sync_deadline", "1e9", "final_sync_deadline");
  expect_set_fails("spool_max_mb", "1.5", "spool_max_mb");
  expect_set_fails("spool_max_mb", "0", "spool_max_mb");
  expect_set_fails("mode", "sideways", "online or offline");
  expect_set_fails("api_root", "ftp://x", "api_root");
  expect_set_fails("web_root", "hub.example.org", "web_root");
  expect_set_fails("runs_dir", "relative/dir", "absolute");
  expect_set_fails("api_key", "two words", "api_key");
  expect_set_fails("colour", "blue", "unknown setting 'colour'");
  expect_set_fails("settings_version", "9", "settings_version");
  char *after = slurp(settings_file);
  assert_string_equal(before, after); /* refused sets change nothing */
  free(before);
  free(after);

  char err[256];
  assert_int_equal(chub_settings_set("sync", "False", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(chub_settings_set("hub", "0", err, sizeof err), CHUB_OK);
  assert_int_equal(
      chub_settings_set("system_metrics", "false", err, sizeof err), CHUB_OK);
  assert_int_equal(
      chub_settings_set("rate_limit_metrics", "0.5", err, sizeof err), CHUB_OK);
  assert_int_equal(chub_settings_set("spool_max_mb", "10", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(
      chub_settings_set("api_root", "http://127.0.0.1:9999/", err, sizeof err),
      CHUB_OK);
  assert_int_equal(chub_settings_set("mode", "offline", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(chub_settings_set("runs_dir", "/data/runs", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_false(s.sync);
  assert_false(s.hub);
  assert_false(s.system_metrics);
  assert_true(s.rate_metrics == 0.5);
  assert_true(s.spool_max_bytes == 10LL * 1024 * 1024);
  assert_string_equal(s.api_root, "http://127.0.0.1:9999");
  assert_string_equal(s.mode, "offline");
  assert_string_equal(s.runs_dir, "/data/runs");
  struct stat st;
  assert_int_equal(stat(settings_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_no_warning();

  /* "~/" means the home directory, as a shell would have it. */
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("HOME", "/home/someone", 1);
  assert_int_equal(chub_settings_set("runs_dir", "~/runs", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_string_equal(s.runs_dir, "/home/someone/runs");
  if (home)
    setenv("HOME", home, 1);
  free(home);
}

static void test_reset_keeps_uuid(void **state) {
  (void)state;
  chub_settings s;
  char err[256];
  assert_int_equal(
      chub_settings_set("uuid", "my-own-anonymous-id", err, sizeof err),
      CHUB_OK);
  assert_int_equal(chub_settings_set("api_key", "k123", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(chub_settings_set("sync", "false", err, sizeof err),
                   CHUB_OK);
  assert_int_equal(chub_settings_reset(), CHUB_OK);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_string_equal(s.uuid, "my-own-anonymous-id");
  assert_string_equal(s.api_key, "");
  assert_true(s.sync);
  struct stat st;
  assert_int_equal(stat(settings_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_opens_up_loose_permissions(void **state) {
  (void)state;
  chub_settings s;
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  assert_int_equal(chmod(settings_file, 0644), 0);
  assert_int_equal(chub_settings_load(&s), CHUB_OK);
  struct stat st;
  assert_int_equal(stat(settings_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600); /* it holds a key */
}

static void test_under_tests(void **state) {
  (void)state;
  setenv("CHUB_TESTING", "1", 1);
  assert_true(chub_under_tests());
  setenv("CHUB_TESTING", "0", 1);
  assert_false(chub_under_tests());
  unsetenv("CHUB_TESTING");
  assert_false(chub_under_tests());
  setenv("CHUB_TESTING", "1", 1);
}

static void test_rank_precedence(void **state) {
  (void)state;
  const char *vars[] = {"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                        "SLURM_PROCID"};
  for (int i = 0; i < 4; i++)
    unsetenv(vars[i]);
  assert_int_equal(chub_rank(), -1);
  setenv("SLURM_PROCID", "3", 1);
  assert_int_equal(chub_rank(), 3);
  setenv("PMI_RANK", "2", 1);
  assert_int_equal(chub_rank(), 2);
  setenv("OMPI_COMM_WORLD_RANK", "1", 1);
  assert_int_equal(chub_rank(), 1);
  setenv("RANK", "0", 1);
  assert_int_equal(chub_rank(), 0);
  /* A malformed variable does not hide the next launcher's. */
  setenv("RANK", "zero", 1);
  assert_int_equal(chub_rank(), 1);
  setenv("RANK", "7", 1);
  assert_int_equal(chub_rank(), 7);
  for (int i = 0; i < 4; i++)
    unsetenv(vars[i]);
}

int main(void) {
  setenv("CHUB_TESTING", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults_created_0600, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_file_location, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_file_reset_and_kept, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_not_an_object_reset, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_wrong_type_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_validates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset_keeps_uuid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_opens_up_loose_permissions, setup,
                                      teardown),
      cmocka_unit_test(test_under_tests),
      cmocka_unit_test(test_rank_precedence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

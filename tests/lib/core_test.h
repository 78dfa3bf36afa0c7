/*
 * core_test.h - what libchub's core tests share: a fresh settings and runs
 * directory per test with chub's log captured (th_tmpdir and th_log of
 * tests/support), settings changes that must succeed, and test files.
 *
 * Header-only so each test executable stays one file plus this; every
 * helper is static.
 */
#ifndef CORE_TEST_H
#define CORE_TEST_H

#include "chub.h"
#include "th_log.h"
#include "th_tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh temporary config and runs directory, the hub at `api_root`
 * (NULL: leave unset) with `key` (NULL: none), retries scaled down. */
typedef struct core_test_env {
  char root[200];
  char config[224];
  char runs[224];
} core_test_env;

static inline void core_test_env_init(core_test_env *e, const char *api_root,
                                      const char *key) {
  if (th_tmpdir_make(e->root, sizeof e->root, "chub-core") != 0)
    abort();
  snprintf(e->config, sizeof e->config, "%s/config", e->root);
  snprintf(e->runs, sizeof e->runs, "%s/runs", e->root);
  setenv("CHUB_TESTING", "1", 1);
  setenv("CHUB_CONFIG_DIR", e->config, 1);
  setenv("CHUB_RUNS_DIR", e->runs, 1);
  setenv("CHUB_RETRY_SCALE", "0.05", 1);
  unsetenv("CHUB_MODE");
  unsetenv("CHUB_HUB");
  unsetenv("CHUB_WEB_ROOT");
  unsetenv("CHUB_SYSTEM_METRICS");
  if (api_root)
    setenv("CHUB_API_ROOT", api_root, 1);
  else
    unsetenv("CHUB_API_ROOT");
  if (key)
    setenv("CHUB_API_KEY", key, 1);
  else
    unsetenv("CHUB_API_KEY");
  th_log_install(CHUB_LOG_DEBUG);
}

static inline void core_test_set(const char *key, const char *value) {
  char err[256] = "";
  if (chub_settings_set(key, value, err, sizeof err) != CHUB_OK) {
    fprintf(stderr, "settings %s=%s: %s\n", key, value, err);
    abort();
  }
}

static inline void core_test_env_free(core_test_env *e) {
  th_tmpdir_remove(e->root);
}

/* Writes `size` bytes of a recognisable pattern to `path`. */
static inline void core_test_write_file(const char *path, size_t size,
                                        int seed) {
  FILE *fp = fopen(path, "wb");
  if (!fp) {
    perror(path);
    abort();
  }
  for (size_t i = 0; i < size; i++)
    fputc((int)((i * 131 + (size_t)seed) & 0xff), fp);
  fclose(fp);
}

#endif

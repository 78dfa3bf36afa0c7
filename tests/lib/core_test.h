/*
 * core_test.h - what libchub's core tests share: a fresh settings and runs
 * directory per test, a captured log, and a small trainer.
 *
 * Header-only so each test executable stays one file plus this; every
 * helper is static.
 */
#ifndef CORE_TEST_H
#define CORE_TEST_H

#include "chub.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The log lines chub wrote during the test (the logger may run on the
 * sender thread, so the buffer has its own lock). */
typedef struct core_test_log {
  pthread_mutex_t mu;
  char text[1 << 16];
  size_t len;
} core_test_log;

static core_test_log core_test_logbuf = {PTHREAD_MUTEX_INITIALIZER, "", 0};

static inline void core_test_log_fn(chub_log_level level, const char *line,
                                    void *user) {
  (void)level;
  (void)user;
  pthread_mutex_lock(&core_test_logbuf.mu);
  size_t n = strlen(line);
  if (core_test_logbuf.len + n + 2 < sizeof core_test_logbuf.text) {
    memcpy(core_test_logbuf.text + core_test_logbuf.len, line, n);
    core_test_logbuf.len += n;
    core_test_logbuf.text[core_test_logbuf.len++] = '\n';
    core_test_logbuf.text[core_test_logbuf.len] = '\0';
  }
  pthread_mutex_unlock(&core_test_logbuf.mu);
  if (getenv("CORE_TEST_VERBOSE"))
    fprintf(stderr, "chub: %s\n", line);
}

static inline bool core_test_logged(const char *needle) {
  pthread_mutex_lock(&core_test_logbuf.mu);
  bool found = strstr(core_test_logbuf.text, needle) != NULL;
  pthread_mutex_unlock(&core_test_logbuf.mu);
  return found;
}

/* Waits (bounded: `ms`) for a line the sender thread writes after the
 * request the test server already counted. */
static inline bool core_test_wait_logged(const char *needle, int ms) {
  for (int waited = 0; waited < ms; waited += 10) {
    if (core_test_logged(needle))
      return true;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return core_test_logged(needle);
}

static inline void core_test_log_reset(void) {
  pthread_mutex_lock(&core_test_logbuf.mu);
  core_test_logbuf.len = 0;
  core_test_logbuf.text[0] = '\0';
  pthread_mutex_unlock(&core_test_logbuf.mu);
}

/* A fresh temporary config and runs directory, the hub at `api_root`
 * (NULL: leave unset) with `key` (NULL: none), retries scaled down. */
typedef struct core_test_env {
  char root[64];
  char config[128];
  char runs[128];
} core_test_env;

static inline void core_test_env_init(core_test_env *e, const char *api_root,
                                      const char *key) {
  snprintf(e->root, sizeof e->root, "/tmp/chub-core-XXXXXX");
  if (!mkdtemp(e->root)) {
    perror("mkdtemp");
    abort();
  }
  snprintf(e->config, sizeof e->config, "%s/config", e->root);
  snprintf(e->runs, sizeof e->runs, "%s/runs", e->root);
  setenv("CHUB_TESTING", "1", 1);
  setenv("CHUB_CONFIG_DIR", e->config, 1);
  setenv("CHUB_RUNS_DIR", e->runs, 1);
  setenv("CHUB_RETRY_SCALE", "0.05", 1);
  unsetenv("CHUB_MODE");
  unsetenv("CHUB_HUB");
  unsetenv("CHUB_WEB_ROOT");
  if (api_root)
    setenv("CHUB_API_ROOT", api_root, 1);
  else
    unsetenv("CHUB_API_ROOT");
  if (key)
    setenv("CHUB_API_KEY", key, 1);
  else
    unsetenv("CHUB_API_KEY");
  chub_set_log(core_test_log_fn, NULL, CHUB_LOG_DEBUG);
  core_test_log_reset();
}

static inline void core_test_set(const char *key, const char *value) {
  char err[256] = "";
  if (chub_settings_set(key, value, err, sizeof err) != CHUB_OK) {
    fprintf(stderr, "settings %s=%s: %s\n", key, value, err);
    abort();
  }
}

static inline void core_test_env_free(core_test_env *e) {
  char cmd[128];
  if (getenv("CHUB_KEEP_TMP")) {
    fprintf(stderr, "kept %s\n", e->root);
    return;
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->root);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", e->root);
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

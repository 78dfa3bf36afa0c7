/*
 * th_log.c - the log capture of th_log.h.
 *
 * One buffer, grown on demand up to TH_LOG_MAX bytes, and a count per
 * level, all behind one mutex with a condition variable (on the monotonic
 * clock) that wakes th_log_wait_contains when a line arrives. The hook and
 * the echo run outside the lock so that a hook that logs again cannot
 * deadlock.
 */
#include "th_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TH_LOG_MAX = 1 << 20, TH_LOG_LEVELS = CHUB_LOG_ERROR + 1 };

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_once_t once;
  char *text; /* NUL-terminated when not NULL */
  size_t len, cap;
  size_t count[TH_LOG_LEVELS];
  chub_log_level min_level;
  bool echo;
  th_log_hook hook;
  void *hook_user;
} th_log_state = {.mu = PTHREAD_MUTEX_INITIALIZER,
                  .once = PTHREAD_ONCE_INIT,
                  .min_level = CHUB_LOG_DEBUG};

static void th_log_init_cv(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&th_log_state.cv, &a);
  pthread_condattr_destroy(&a);
}

static void th_log_lock(void) {
  pthread_once(&th_log_state.once, th_log_init_cv);
  pthread_mutex_lock(&th_log_state.mu);
}

static void th_log_unlock(void) {
  pthread_mutex_unlock(&th_log_state.mu);
}

/* Appends line and '\n' when it fits under TH_LOG_MAX; locked. */
static void th_log_append(const char *line) {
  size_t n = strlen(line);
  size_t need = th_log_state.len + n + 2;
  if (need > TH_LOG_MAX)
    return;
  if (need > th_log_state.cap) {
    size_t cap = th_log_state.cap ? th_log_state.cap : 4096;
    while (cap < need)
      cap *= 2;
    if (cap > TH_LOG_MAX)
      cap = TH_LOG_MAX;
    char *t = realloc(th_log_state.text, cap);
    if (!t)
      return;
    th_log_state.text = t;
    th_log_state.cap = cap;
  }
  memcpy(th_log_state.text + th_log_state.len, line, n);
  th_log_state.len += n;
  th_log_state.text[th_log_state.len++] = '\n';
  th_log_state.text[th_log_state.len] = '\0';
}

void th_log_sink(chub_log_level level, const char *line, void *user) {
  (void)user;
  if (!line)
    return;
  th_log_lock();
  if (level < th_log_state.min_level) {
    th_log_unlock();
    return;
  }
  th_log_append(line);
  if ((int)level >= 0 && (int)level < TH_LOG_LEVELS)
    th_log_state.count[level]++;
  bool echo = th_log_state.echo;
  th_log_hook hook = th_log_state.hook;
  void *hook_user = th_log_state.hook_user;
  pthread_cond_broadcast(&th_log_state.cv);
  th_log_unlock();
  if (echo || getenv("CHUB_TEST_VERBOSE"))
    fprintf(stderr, "chub: %s\n", line);
  if (hook)
    hook(level, line, hook_user);
}

/* Empties the buffer and the counts; locked. */
static void th_log_clear(void) {
  th_log_state.len = 0;
  if (th_log_state.text)
    th_log_state.text[0] = '\0';
  memset(th_log_state.count, 0, sizeof th_log_state.count);
}

void th_log_begin(chub_log_level min_level) {
  th_log_lock();
  th_log_clear();
  th_log_state.min_level = min_level;
  th_log_unlock();
}

void th_log_reset(void) {
  th_log_lock();
  th_log_clear();
  th_log_unlock();
}

/* Locked. */
static bool th_log_has(const char *needle) {
  return th_log_state.text && strstr(th_log_state.text, needle) != NULL;
}

bool th_log_contains(const char *needle) {
  th_log_lock();
  bool found = th_log_has(needle);
  th_log_unlock();
  return found;
}

bool th_log_wait_contains(const char *needle, int ms) {
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (ms > 0) {
    end.tv_sec += ms / 1000;
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
      end.tv_sec++;
      end.tv_nsec -= 1000000000L;
    }
  }
  th_log_lock();
  bool found = th_log_has(needle);
  while (!found) {
    if (pthread_cond_timedwait(&th_log_state.cv, &th_log_state.mu, &end) != 0) {
      found = th_log_has(needle);
      break;
    }
    found = th_log_has(needle);
  }
  th_log_unlock();
  return found;
}

size_t th_log_count(chub_log_level level) {
  size_t n = 0;
  th_log_lock();
  for (int l = (int)level; l >= 0 && l < TH_LOG_LEVELS; l++)
    n += th_log_state.count[l];
  th_log_unlock();
  return n;
}

char *th_log_text(void) {
  th_log_lock();
  const char *t = th_log_state.text ? th_log_state.text : "";
  char *copy = strdup(t);
  th_log_unlock();
  return copy;
}

void th_log_set_echo(bool on) {
  th_log_lock();
  th_log_state.echo = on;
  th_log_unlock();
}

void th_log_set_hook(th_log_hook fn, void *user) {
  th_log_lock();
  th_log_state.hook = fn;
  th_log_state.hook_user = fn ? user : NULL;
  th_log_unlock();
}

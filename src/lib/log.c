/*
 * log.c - where chub's log lines go.
 *
 * The sink (a function, its user data and a minimum level) is one of the
 * library's two pieces of global state, kept in `chub_log_sink` behind a
 * mutex because the sender thread logs too. A line is formatted completely
 * before the sink sees it, so a custom sink gets whole lines and the default
 * stderr sink writes each one with a single stdio call (stdio locks the
 * stream per call, so lines from two threads never interleave). The sink is
 * called outside the mutex so that a sink that logs again cannot deadlock.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The library's logging state: who receives lines and from which level. */
static struct {
  pthread_mutex_t mu;
  chub_log_fn fn; /* NULL: stderr with the "chub: " prefix */
  void *user;
  chub_log_level min_level;
} chub_log_sink = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, CHUB_LOG_INFO};

void chub_set_log(chub_log_fn fn, void *user, chub_log_level min_level) {
  pthread_mutex_lock(&chub_log_sink.mu);
  chub_log_sink.fn = fn;
  chub_log_sink.user = fn ? user : NULL;
  chub_log_sink.min_level = min_level;
  pthread_mutex_unlock(&chub_log_sink.mu);
}

bool chub_log_enabled(chub_log_level level) {
  pthread_mutex_lock(&chub_log_sink.mu);
  bool on = level >= chub_log_sink.min_level;
  pthread_mutex_unlock(&chub_log_sink.mu);
  return on;
}

/* Formats into `stack` when the line fits, else into a heap buffer the
 * caller frees; returns NULL only when formatting itself failed. */
static char *chub_log_format(char *stack, size_t size, const char *fmt,
                             va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(stack, size, fmt, ap);
  char *line = stack;
  if (n < 0) {
    line = NULL;
  } else if ((size_t)n >= size) {
    char *heap = malloc((size_t)n + 1);
    if (heap) {
      vsnprintf(heap, (size_t)n + 1, fmt, again);
      line = heap;
    } /* out of memory: keep the truncated stack copy */
  }
  va_end(again);
  return line;
}

void chub_vlog(chub_log_level level, const char *fmt, va_list ap) {
  pthread_mutex_lock(&chub_log_sink.mu);
  chub_log_fn fn = chub_log_sink.fn;
  void *user = chub_log_sink.user;
  bool on = level >= chub_log_sink.min_level;
  pthread_mutex_unlock(&chub_log_sink.mu);
  if (!on || !fmt)
    return;

  char stack[1024];
  char *line = chub_log_format(stack, sizeof stack, fmt, ap);
  if (!line)
    return;
  size_t len = strlen(line);
  while (len > 0 && line[len - 1] == '\n') /* the sink adds its own */
    line[--len] = '\0';

  if (fn)
    fn(level, line, user);
  else
    fprintf(stderr, "chub: %s\n", line);
  if (line != stack)
    free(line);
}

void chub_log(chub_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  chub_vlog(level, fmt, ap);
  va_end(ap);
}

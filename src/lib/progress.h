/*
 * progress.h - the progress display of long transfers (checkpoint and
 * dataset uploads, `chub pull`): a bar redrawn in place when stderr is a
 * terminal, else a plain log line each time the transfer passes another
 * quarter, saying how far it is (which may be well past that quarter:
 * transfers report progress in steps).
 */
#ifndef CHUB_PROGRESS_H
#define CHUB_PROGRESS_H

#include <stdbool.h>

typedef struct progress {
  bool tty;
  int last_step;
  const char *label;
} progress;

void progress_init(progress *p, const char *label);

/* An http_progress_fn: `user` is the progress. */
void progress_cb(long long sent, long long total, void *user);

/* Ends the bar's line (on a terminal). */
void progress_done(progress *p);

#endif

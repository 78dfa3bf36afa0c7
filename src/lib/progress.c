/*
 * progress.c - the progress display of long transfers (progress.h).
 */
#include "progress.h"

#include "internal.h"

#include <stdio.h>
#include <unistd.h>

void progress_init(progress *p, const char *label) {
  p->tty = isatty(STDERR_FILENO) == 1;
  p->last_step = -1;
  p->label = label;
}

void progress_cb(long long sent, long long total, void *user) {
  progress *p = user;
  if (total <= 0)
    return;
  int pct = (int)(sent * 100 / total);
  if (p->tty) {
    if (pct == p->last_step)
      return;
    p->last_step = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
      bar[i] = i < fill ? '#' : ' ';
    bar[30] = '\0';
    fprintf(stderr, "\rchub: %s %3d%% |%s| %.1f/%.1f MB", p->label, pct, bar,
            (double)sent / 1e6, (double)total / 1e6);
    fflush(stderr);
    return;
  }
  int quarter = pct / 25;
  if (quarter == p->last_step)
    return;
  p->last_step = quarter;
  chub_log(CHUB_LOG_INFO, "%s: %d%% (%.1f of %.1f MB)", p->label, pct,
           (double)sent / 1e6, (double)total / 1e6);
}

void progress_done(progress *p) {
  if (p->tty && p->last_step >= 0)
    fputc('\n', stderr);
}

/*
 * clock.c - the library's one notion of "now" for rate limits and deadlines.
 *
 * Monotonic, so that a clock step (NTP, a person setting the date) never
 * fires a rate limit early or stretches a deadline.
 */
#include "internal.h"

#include "hot_path.h"

#include <time.h>

CHUB_HOT double chub_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double chub_wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

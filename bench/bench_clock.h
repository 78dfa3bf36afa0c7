/*
 * bench_clock.h - what every benchmark under bench/ times with: the
 * monotonic clock in microseconds, and the comparator that sorts samples
 * for their median and p99. Header only; each benchmark is one program.
 */
#ifndef CHUB_BENCH_CLOCK_H
#define CHUB_BENCH_CLOCK_H

#include <time.h>

static inline double bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* qsort comparator for double samples, ascending. */
static inline int bench_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#endif

/*
 * points.h - downsampling a metrics read-back for a chart of N pixels
 * (GET /v1/models/{id}/metrics?points=N), one row at a time.
 *
 * The epochs between the first and the last are cut into (N - 2) / 2
 * buckets of equal width; in each bucket every series (metric name) keeps
 * its smallest and its largest value, at the epochs they were reported,
 * so the chart draws the same envelope, spikes included. The first and
 * the last epoch are given whole. A row given out holds only the values
 * chosen at its epoch, so each series has at most N of them. When the
 * range holds no more epochs than N, every row is given whole, unchanged.
 *
 * Memory is a few hundred bytes per series (at most POINTS_SERIES_MAX
 * series; names past that are left out), whatever the number of rows.
 */
#ifndef CHUBD_POINTS_H
#define CHUBD_POINTS_H

#include <stddef.h>
#include <stdint.h>

#define POINTS_MIN 2
#define POINTS_MAX 10000
#define POINTS_SERIES_MAX 1024

/* Receives one row to give out: its epoch and its JSON object of values
 * (json[0..len-1], not terminated). Non-zero stops with an error. */
typedef int (*points_emit_fn)(void *ud, int64_t epoch, const char *json,
                              size_t len);

typedef struct points points;

/* A downsampler to n points (POINTS_MIN..POINTS_MAX) of the rows up to
 * epoch `last` (the newest when the read began); `rows` is how many rows
 * the read can give at most (INT64_MAX: unknown), so that few rows pass
 * through whole. NULL when out of memory. */
points *points_new(int n, int64_t last, int64_t rows, points_emit_fn emit,
                   void *ud);

/* The next row, in epoch order (the first one given is the first epoch).
 * 1: `last` was reached and the answer is complete (points_finish not
 * needed); 0: more rows are wanted; -1: out of memory or emit failed. */
int points_row(points *p, int64_t epoch, const char *json);

/* The rows ran out before `last` (it was deleted meanwhile): gives out
 * what is pending. 0, or -1. */
int points_finish(points *p);

void points_free(points *p);

#endif

/*
 * th_log.h - chub's log lines, captured for a test to assert on.
 *
 * chub logs through one process-wide sink (chub_set_log), possibly from its
 * sender thread, so the capture is one process-wide buffer behind a lock:
 * th_log_install routes chub's lines at or above a minimum level into it,
 * and a test asks whether a line contained a string (now, or within a
 * bounded wait), how many lines at or above a level arrived, or for a copy
 * of the whole text. Lines are kept in order, newline-joined, up to a
 * bound (later lines are still counted). With CHUB_TEST_VERBOSE set in the
 * environment each line is also echoed to stderr as "chub: LINE".
 *
 * A program that must see each line as it arrives (e.g. to notice one
 * exact line) adds a hook, called after the line was recorded, outside
 * the lock, from the thread that logged.
 */
#ifndef TH_LOG_H
#define TH_LOG_H

#include "chub.h"

#include <stdbool.h>
#include <stddef.h>

/* Called for every captured line (see th_log_set_hook). */
typedef void (*th_log_hook)(chub_log_level level, const char *line, void *user);

/* The chub_log_fn behind th_log_install (user is unused). */
void th_log_sink(chub_log_level level, const char *line, void *user);

/* Empties the capture and sets the level below which th_log_sink drops
 * lines; th_log_install does this, then points chub at th_log_sink. */
void th_log_begin(chub_log_level min_level);

/* Starts capturing: empties the capture and routes chub's lines at or
 * above min_level here (chub is told the same minimum). */
static inline void th_log_install(chub_log_level min_level) {
  th_log_begin(min_level);
  chub_set_log(th_log_sink, NULL, min_level);
}

/* Gives chub back its default sink (stderr, from INFO). The captured text
 * stays until the next th_log_install or th_log_reset. */
static inline void th_log_uninstall(void) {
  chub_set_log(NULL, NULL, CHUB_LOG_INFO);
}

/* Forgets every captured line and count. */
void th_log_reset(void);

/* Whether a captured line contains needle. */
bool th_log_contains(const char *needle);

/* Waits until a captured line contains needle or ms milliseconds passed;
 * returns whether one does. */
bool th_log_wait_contains(const char *needle, int ms);

/* How many lines at or above `level` arrived since the last reset. */
size_t th_log_count(chub_log_level level);

/* A copy of the captured text ("LINE\n" per line, "" when none), malloc'd:
 * the caller frees. */
char *th_log_text(void);

/* Echoes every captured line to stderr ("chub: LINE") even without
 * CHUB_TEST_VERBOSE. */
void th_log_set_echo(bool on);

/* Calls fn(level, line, user) for every captured line; NULL removes it. */
void th_log_set_hook(th_log_hook fn, void *user);

#endif

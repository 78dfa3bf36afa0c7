/*
 * internal.h - what libchub's files share and a trainer never sees.
 *
 * Logging (log.c), the settings file lock (settings.c) and the usage-event
 * queue (events.c) are the library's only process-wide state, each kept in
 * one named struct in its file, so that every other file stays a pure
 * mechanism.
 */
#ifndef CHUB_INTERNAL_H
#define CHUB_INTERNAL_H

#include "chub.h"

#include <stdarg.h>

#if defined(__GNUC__)
#define CHUB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CHUB_PRINTF(a, b)
#endif

/* log.c: formats one line and hands it to the sink set by chub_set_log(). */
void chub_log(chub_log_level level, const char *fmt, ...) CHUB_PRINTF(2, 3);
void chub_vlog(chub_log_level level, const char *fmt, va_list ap);
bool chub_log_enabled(chub_log_level level);

/* settings.c: true when the process runs under chub's tests (CHUB_TESTING
 * set and not "0"); usage events are never sent then. */
bool chub_under_tests(void);

/* The web root to show for the settings: web_root, or api_root when empty. */
const char *chub_settings_web_root(const chub_settings *s);

/* Checks KEY=VALUE as chub_settings_set() would, without writing, so that a
 * command setting several keys can refuse them all before saving any. */
chub_code chub_settings_check_value(const char *key, const char *value,
                                    char *err, size_t errlen);

/* hub_callbacks.c: adds the nine HUB callbacks to `cb` (duplicates are
 * ignored by the registry). Called by chub_add_integration_callbacks(). */
void hub_callbacks_add(chub_callbacks *cb);

/* events.c: whether usage events may be sent with these settings in this
 * process: sync on, rank -1 or 0, and not under tests. */
bool chub_events_allowed(const chub_settings *s);

/* Queues a usage event with ready-made params (a JSON object; the reference
 * is taken): nulls are dropped and the first 25 params kept; a full queue
 * (25) drops the event. chub_event_record() builds params and calls this. */
struct json_t;
void chub_events_push(const char *name, struct json_t *params);

/* For tests: ignore the under-tests gate (sync and rank still apply), read
 * the settings again on the next event, empty the queue, and wait
 * `interval_s` between sends, counted from now. */
void chub_events_test_reset(double interval_s);

/* Events waiting to be sent. */
size_t chub_events_pending(void);

/* Sends what is queued now, whatever the interval, and waits at most
 * `timeout_s` for it; true when nothing is left queued or in flight. */
bool chub_events_flush(double timeout_s);

/* sha256.c: hex digest (65 bytes with NUL) of everything readable from fd,
 * read from offset 0 with pread in fixed-size chunks (memory stays flat). */
chub_code chub_sha256_fd(int fd, char hex[65]);

/* clock.c: monotonic seconds, for rate limits and deadlines. */
double chub_now(void);

/* Wall-clock seconds, comparable with file modification times. */
double chub_wall_now(void);

/* sync.c: the run ids under runs_dir (sorted, malloc'd; the by-model index
 * left out) into *names; returns how many. Free with chub_runs_names_free. */
size_t chub_runs_names(const char *runs_dir, char ***names);
void chub_runs_names_free(char **names, size_t n);

#endif

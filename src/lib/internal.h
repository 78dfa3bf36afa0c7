/*
 * internal.h - what libchub's files share and a trainer never sees.
 *
 * Logging and the settings snapshot are the library's only global state and
 * live here, so that every other file stays a pure mechanism.
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

/* hub_callbacks.c: adds the nine HUB callbacks to `cb` (duplicates are
 * ignored by the registry). Called by chub_add_integration_callbacks(). */
void chub__hub_callbacks_add(chub_callbacks *cb);

/* sha256.c: hex digest (65 bytes with NUL) of everything readable from fd,
 * read from offset 0 with pread in fixed-size chunks (memory stays flat). */
chub_code chub_sha256_fd(int fd, char hex[65]);

/* Monotonic seconds, for rate limits and deadlines. */
double chub_now(void);

#endif

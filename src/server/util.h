/*
 * util.h - small helpers chubd's files share: clocks, RFC 3339 times,
 * random ids and hex. Kept apart so the handlers and the store agree on
 * one spelling of each.
 */
#ifndef CHUBD_UTIL_H
#define CHUBD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_ID_LEN 20  /* model and agent ids: [A-Za-z0-9]{20} */
#define UTIL_KEY_LEN 42 /* API keys: [A-Za-z0-9]{42} */

/* Wall-clock time in milliseconds since the epoch. */
int64_t util_now_ms(void);

/* Monotonic time in seconds, for rate limits and durations. */
double util_mono_s(void);

/* Writes `ms` as "2026-11-28T16:46:42Z" into out (at least 32 bytes). */
void util_rfc3339(int64_t ms, char out[32]);

/* Fills out[0..n-1] with random [A-Za-z0-9] from the OpenSSL CSPRNG and
 * terminates it. Returns 0, or -1 when the generator failed. */
int util_random_alnum(char *out, size_t n);

/* v in decimal into out (at least 20 bytes; no NUL): its length. For
 * answers built on every request, where snprintf costs more than the
 * rest of the formatting. */
size_t util_u64_text(uint64_t v, char *out);

/* Lower-case hex of `len` bytes into out (2*len+1 bytes). */
void util_hex(const unsigned char *bytes, size_t len, char *out);

/* True when s is exactly n characters of [A-Za-z0-9]. */
int util_is_alnum_n(const char *s, size_t n);

/* True when s is 64 lower- or upper-case hex digits. */
int util_is_sha256_hex(const char *s);

#endif

/*
 * util.c - clocks, RFC 3339 times, random ids and hex for chubd.
 *
 * Random ids come from OpenSSL's RAND_bytes (a CSPRNG seeded from the
 * kernel) with rejection sampling, so that every one of the 62 characters
 * is equally likely: API keys are secrets and must not be biased.
 */
#include "util.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

int64_t util_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double util_mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void util_rfc3339(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

size_t util_u64_text(uint64_t v, char *out) {
  char rev[20];
  size_t n = 0;
  do {
    rev[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    out[i] = rev[n - 1 - i];
  return n;
}

int util_random_alnum(char *out, size_t n) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  size_t filled = 0;
  while (filled < n) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1)
      return -1;
    for (size_t i = 0; i < sizeof buf && filled < n; i++) {
      /* 248 = 4 * 62: values at or above it would favour the first
       * characters, so they are dropped. */
      if (buf[i] < 248)
        out[filled++] = alphabet[buf[i] % 62];
    }
  }
  out[n] = '\0';
  return 0;
}

void util_hex(const unsigned char *bytes, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * len] = '\0';
}

int util_is_alnum_n(const char *s, size_t n) {
  if (!s)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return s[n] == '\0';
}

int util_is_sha256_hex(const char *s) {
  if (!s)
    return 0;
  for (size_t i = 0; i < 64; i++)
    if (!isxdigit((unsigned char)s[i]))
      return 0;
  return s[64] == '\0';
}

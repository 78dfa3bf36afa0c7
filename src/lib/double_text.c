/*
 * double_text.c - "%.17g" without printf's arbitrary precision (see
 * double_text.h).
 *
 * v = m * 2^e exactly (m < 2^53). Its 17 significant digits are
 * D = round(v * 10^q) with q = 16 - k and k = floor(log10 v), so that
 * 10^16 <= D < 10^17, rounded half to even on the exact value, as glibc
 * does. For q >= 0, v * 10^q = m * 5^q * 2^(e+q): one 128-bit product and
 * a shift whose dropped bits decide the rounding. For q < 0, it is
 * (m * 2^(e+q)) / 5^-q: a 128-bit division whose remainder decides it.
 * Both are exact as long as the operands fit in 128 bits, which holds for
 * k in [-15, 30]; anything else (and zero, subnormals, infinities, NaN)
 * goes to snprintf.
 */
#include "double_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

#define DT_E16 10000000000000000ULL  /* 10^16 */
#define DT_E17 100000000000000000ULL /* 10^17 */

static u128 double_text_pow5(int q) {
  u128 r = 1;
  for (; q >= 27; q -= 27)
    r *= 7450580596923828125ULL; /* 5^27 */
  static const uint64_t small[27] = {1ULL,
                                     5ULL,
                                     25ULL,
                                     125ULL,
                                     625ULL,
                                     3125ULL,
                                     15625ULL,
                                     78125ULL,
                                     390625ULL,
                                     1953125ULL,
                                     9765625ULL,
                                     48828125ULL,
                                     244140625ULL,
                                     1220703125ULL,
                                     6103515625ULL,
                                     30517578125ULL,
                                     152587890625ULL,
                                     762939453125ULL,
                                     3814697265625ULL,
                                     19073486328125ULL,
                                     95367431640625ULL,
                                     476837158203125ULL,
                                     2384185791015625ULL,
                                     11920928955078125ULL,
                                     59604644775390625ULL,
                                     298023223876953125ULL,
                                     1490116119384765625ULL};
  return r * small[q];
}

/* round(m * 2^e * 10^q), half to even, exactly. */
static uint64_t double_text_scaled(uint64_t m, int e, int q) {
  if (q >= 0) {
    u128 n = (u128)m * double_text_pow5(q);
    int s = e + q;
    if (s >= 0)
      return (uint64_t)(n << s); /* small: the caller's k keeps it < 2^64 */
    int r = -s;
    if (r >= 128)
      return UINT64_MAX;
    u128 d = n >> r, rem = n - (d << r), half = (u128)1 << (r - 1);
    if (rem > half || (rem == half && (d & 1)))
      d++;
    return (uint64_t)d;
  }
  int p = -q, s = e - p;
  if (s < 0 || s > 74)
    return UINT64_MAX; /* not in the range this path is exact for */
  u128 n = (u128)m << s, f = double_text_pow5(p);
  u128 d = n / f, rem = n - d * f;
  /* f is odd: the remainder is never exactly half. */
  if (2 * rem > f)
    d++;
  return (uint64_t)d;
}

/* Eight decimal digits of v (< 10^8) into out, two at a time. */
static void double_text_eight(uint32_t v, char *out) {
  static const char pairs[201] = "00010203040506070809"
                                 "10111213141516171819"
                                 "20212223242526272829"
                                 "30313233343536373839"
                                 "40414243444546474849"
                                 "50515253545556575859"
                                 "60616263646566676869"
                                 "70717273747576777879"
                                 "80818283848586878889"
                                 "90919293949596979899";
  for (int i = 6; i >= 0; i -= 2) {
    memcpy(out + i, pairs + 2 * (v % 100), 2);
    v /= 100;
  }
}

/* The 17 digits of d (10^16 <= d < 10^17) into dig, in 32-bit pieces. */
static void double_text_digits(uint64_t d, char dig[17]) {
  uint32_t hi = (uint32_t)(d / 100000000), lo = (uint32_t)(d % 100000000);
  dig[0] = (char)('0' + hi / 100000000);
  double_text_eight(hi % 100000000, dig + 1);
  double_text_eight(lo, dig + 9);
}

/* The 17 digits of D with decimal exponent k, laid out as %g does. */
static size_t double_text_layout(int neg, uint64_t d, int k, char *out) {
  char dig[17];
  double_text_digits(d, dig);
  int last = 16; /* the last significant digit kept */
  while (last > 0 && dig[last] == '0')
    last--;
  char *o = out;
  if (neg)
    *o++ = '-';
  if (k < -4 || k >= 17) {
    *o++ = dig[0];
    if (last > 0) {
      *o++ = '.';
      memcpy(o, dig + 1, (size_t)last);
      o += last;
    }
    *o++ = 'e';
    *o++ = k < 0 ? '-' : '+';
    int x = k < 0 ? -k : k;
    if (x >= 100)
      *o++ = (char)('0' + x / 100);
    *o++ = (char)('0' + x / 10 % 10);
    *o++ = (char)('0' + x % 10);
  } else if (k >= 0) {
    memcpy(o, dig, (size_t)k + 1);
    o += k + 1;
    if (last > k) {
      *o++ = '.';
      memcpy(o, dig + k + 1, (size_t)(last - k));
      o += last - k;
    }
  } else {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -k - 1; i++)
      *o++ = '0';
    memcpy(o, dig, (size_t)last + 1);
    o += last + 1;
  }
  *o = '\0';
  return (size_t)(o - out);
}

size_t double_text_17g(double v, char *out) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  int neg = (int)(bits >> 63);
  int be = (int)((bits >> 52) & 0x7ff);
  /* Normal numbers only; zero, subnormals, inf and NaN go the slow way. */
  if (be == 0 || be == 0x7ff)
    return (size_t)snprintf(out, 32, "%.17g", v);
  uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
  int e = be - 1075;
  /* floor(log10(2^(52+e))) as a first guess: at most one too low. */
  int k = (int)((52 + e) * 78913LL >> 18); /* 78913 / 2^18 ~ log10(2) */
  if (k < -14 || k > 29)
    return (size_t)snprintf(out, 32, "%.17g", v);
  uint64_t d = double_text_scaled(m, e, 16 - k);
  for (int guard = 0;
       guard < 3 && d != UINT64_MAX && (d >= DT_E17 || d < DT_E16); guard++) {
    k += d >= DT_E17 ? 1 : -1;
    d = double_text_scaled(m, e, 16 - k);
  }
  if (d >= DT_E17 || d < DT_E16)
    return (size_t)snprintf(out, 32, "%.17g", v);
  return double_text_layout(neg, d, k, out);
}

/*
 * test_double_text.c - double_text_17g() writes exactly the bytes of
 * snprintf("%.17g") for every value tried: random bit patterns over every
 * exponent, values of the kind metrics take, powers of ten and their
 * neighbours (where the digit count and the rounding turn), and values
 * halfway between two 17-digit decimals.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "double_text.h"

static uint64_t state = 0x9e3779b97f4a7c15ULL;

static uint64_t next_u64(void) { /* xorshift64* */
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545f4914f6cdd1dULL;
}

static unsigned long mismatches;

static void check(double v) {
  char want[64], got[64];
  snprintf(want, sizeof want, "%.17g", v);
  size_t n = double_text_17g(v, got);
  if (strcmp(want, got) != 0 || n != strlen(want)) {
    if (mismatches++ < 10)
      print_error("%a: %%.17g gives \"%s\", double_text_17g \"%s\" (%zu)\n", v,
                  want, got, n);
  }
}

static void test_random_bits(void **state_) {
  (void)state_;
  for (int i = 0; i < 300000; i++) {
    uint64_t b = next_u64();
    double v;
    memcpy(&v, &b, sizeof v);
    check(v);
  }
  assert_int_equal(mismatches, 0);
}

static void test_metric_values(void **state_) {
  (void)state_;
  for (int i = 0; i < 300000; i++) {
    double u = (double)(next_u64() >> 11) / 9007199254740992.0; /* [0,1) */
    check(u);
    check(u * 100.0);
    check(-u * 3.0);
    check(u * pow(10.0, (double)(int)(next_u64() % 46) - 15));
  }
  for (int i = 1; i < 100000; i++) {
    check(1.0 / i);
    check(i / 3.0);
    check(0.1 * i);
  }
  assert_int_equal(mismatches, 0);
}

static void test_powers_and_neighbours(void **state_) {
  (void)state_;
  for (int k = -20; k <= 35; k++) {
    double p = pow(10.0, k);
    double v = p;
    for (int j = 0; j < 50; j++) {
      check(v);
      check(-v);
      v = nextafter(v, INFINITY);
    }
    v = p;
    for (int j = 0; j < 50; j++) {
      v = nextafter(v, 0.0);
      check(v);
    }
    /* Just below the next power: rounds up to it in 17 digits. */
    check(p * 0.99999999999999999);
    check(p * 9.9999999999999999);
  }
  check(DBL_MIN);
  check(DBL_MAX);
  check(DBL_EPSILON);
  check(5e-324);
  check(0.0);
  check(-0.0);
  check(INFINITY);
  check(-INFINITY);
  check(NAN);
  assert_int_equal(mismatches, 0);
}

/* Decimals with 18 digits ending in 5: the nearest doubles sit around
 * the 17-digit halfway points, where the rounding rule shows. */
static void test_halfway(void **state_) {
  (void)state_;
  char text[64];
  for (int i = 0; i < 300000; i++) {
    uint64_t digits =
        next_u64() % 900000000000000000ULL + 100000000000000000ULL;
    digits = digits / 10 * 10 + 5;
    int exp = (int)(next_u64() % 40) - 15;
    snprintf(text, sizeof text, "%llue%d", (unsigned long long)digits,
             exp - 17);
    double v = strtod(text, NULL);
    check(v);
    check(nextafter(v, INFINITY));
    check(nextafter(v, 0.0));
  }
  assert_int_equal(mismatches, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_bits),
      cmocka_unit_test(test_metric_values),
      cmocka_unit_test(test_powers_and_neighbours),
      cmocka_unit_test(test_halfway),
  };
  return cmocka_run_group_tests_name("double_text", tests, NULL, NULL);
}

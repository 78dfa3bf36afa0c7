/*
 * test_crc32.c - crc32_ieee() returns exactly zlib's crc32() for every
 * length from 0 to 4 KiB at every alignment, continued from any starting
 * value and split at any point, so spools written by either read the same.
 * Prints whether this machine took the carry-less multiply path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "crc32.h"

enum { MAX_LEN = 4096, ALIGN = 16 };

static unsigned char data[MAX_LEN + ALIGN];

static void fill(void) {
  uint32_t x = 0x9e3779b9u;
  for (size_t i = 0; i < sizeof data; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    data[i] = (unsigned char)x;
  }
}

static void test_every_length_and_alignment(void **state) {
  (void)state;
  print_message("crc32_ieee: carry-less multiply path %s\n",
                crc32_ieee_accelerated() ? "in use" : "not available here");
  unsigned long bad = 0;
  for (size_t off = 0; off < ALIGN; off++)
    for (size_t n = 0; n <= MAX_LEN; n++) {
      uint32_t want = (uint32_t)crc32_z(0, data + off, n);
      uint32_t got = crc32_ieee(0, data + off, n);
      if (want != got && bad++ < 10)
        print_error("offset %zu length %zu: zlib %08x, crc32_ieee %08x\n", off,
                    n, want, got);
    }
  assert_int_equal(bad, 0);
}

/* Short inputs and the last bytes of long ones are folded in a padded
 * block, with the register added into their first bytes: every length
 * below 80, from many starting values (those with high bytes the shortest
 * inputs never reach among them), gives zlib's value. */
static void test_short_from_any_start(void **state) {
  (void)state;
  uint32_t start = 0x2545f491u;
  unsigned long bad = 0;
  for (int s = 0; s < 512; s++) {
    start ^= start << 13;
    start ^= start >> 17;
    start ^= start << 5;
    for (size_t n = 0; n < 80; n++) {
      uint32_t want = (uint32_t)crc32_z(start, data + s % ALIGN, n);
      uint32_t got = crc32_ieee(start, data + s % ALIGN, n);
      if (want != got && bad++ < 10)
        print_error("start %08x length %zu: zlib %08x, crc32_ieee %08x\n",
                    start, n, want, got);
    }
  }
  assert_int_equal(bad, 0);
}

static void test_continued_and_split(void **state) {
  (void)state;
  static const uint32_t starts[] = {0, 1, 0xffffffffu, 0x12345678u};
  for (size_t s = 0; s < sizeof starts / sizeof *starts; s++)
    for (size_t n = 0; n <= 1100; n += 7) {
      uint32_t want = (uint32_t)crc32_z(starts[s], data + 3, n);
      assert_int_equal(crc32_ieee(starts[s], data + 3, n), want);
      for (size_t cut = 0; cut <= n; cut += 13) {
        uint32_t c = crc32_ieee(starts[s], data + 3, cut);
        assert_int_equal(crc32_ieee(c, data + 3 + cut, n - cut), want);
      }
    }
  /* The check value every CRC-32 implementation agrees on. */
  assert_int_equal(crc32_ieee(0, "123456789", 9), 0xcbf43926u);
}

int main(void) {
  fill();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_length_and_alignment),
      cmocka_unit_test(test_short_from_any_start),
      cmocka_unit_test(test_continued_and_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * th_bytes.c - test data that can be made again (see th_bytes.h).
 */
#include "th_bytes.h"

#include <stdio.h>
#include <stdlib.h>

unsigned char *th_pattern(size_t n, uint32_t seed) {
  unsigned char *b = malloc(n ? n : 1);
  if (!b) {
    fprintf(stderr, "th_pattern: out of memory for %zu bytes\n", n);
    abort();
  }
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    b[i] = (unsigned char)(seed >> 24);
  }
  return b;
}

/*
 * th_bytes.h - test data that can be made again: the same seed gives the
 * same bytes, so a test writes a pattern and later checks what it reads
 * back against the pattern made anew.
 */
#ifndef TH_BYTES_H
#define TH_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* n pseudo-random bytes from seed (a linear congruential generator's high
 * bytes), malloc'd (at least 1 byte, so n may be 0); the caller frees.
 * Aborts, saying so, when out of memory. */
unsigned char *th_pattern(size_t n, uint32_t seed);

#endif

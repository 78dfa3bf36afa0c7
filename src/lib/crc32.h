/*
 * crc32.h - CRC-32 (IEEE 802.3, reflected, the one zlib's crc32() and gzip
 * compute), at the speed of the machine.
 *
 *   uint32_t crc = crc32_ieee(0, header, 16);
 *   crc = crc32_ieee(crc, payload, len);   // same value as zlib's crc32()
 *
 * On x86-64 processors with PCLMULQDQ and SSE4.1 (checked once, at run
 * time), every input is folded with carry-less multiplication (whole
 * 16-byte blocks as they are, a shorter input or the last few bytes in one
 * zero-padded 64-byte block); elsewhere zlib computes it. The result is
 * always exactly zlib's, so data written with either reads the same.
 */
#ifndef CHUB_CRC32_H
#define CHUB_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32 of p[0..n) continuing from `crc` (0 to start), as zlib's
 * crc32(crc, p, n) returns it. */
uint32_t crc32_ieee(uint32_t crc, const void *p, size_t n);

/* Whether crc32_ieee uses the carry-less multiply path on this machine. */
int crc32_ieee_accelerated(void);

#endif

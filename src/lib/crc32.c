/*
 * crc32.c - CRC-32 by folding with carry-less multiplication (see crc32.h).
 *
 * The method is the one from "Fast CRC Computation for Generic Polynomials
 * Using PCLMULQDQ Instruction" (Gopal et al., Intel, 2009), in its
 * bit-reflected form: four 128-bit accumulators each absorb the next 64
 * bytes (every step multiplies an accumulator's halves by x^(512±32) mod P
 * and adds the new data), then fold into one, absorb the remaining whole
 * 16-byte blocks, reduce 128 bits to 64, and Barrett-reduce to 32. The
 * constants are powers of x modulo P(x) = 0x104C11DB7, bit-reflected; the
 * tests compare every length from 0 to a few KiB, at every alignment,
 * against zlib.
 */
#include "crc32.h"

#include "hot_path.h"

#include <string.h>
#include <zlib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define CRC32_TARGET __attribute__((target("pclmul,sse4.1")))

/* x^(4*128+32) and x^(4*128-32) mod P: one step of the four-way fold. */
static const uint64_t crc32_k1k2[2] = {0x0154442bd4, 0x01c6e41596};
/* x^(128+32) and x^(128-32) mod P: one step of the single fold. */
static const uint64_t crc32_k3k4[2] = {0x01751997d0, 0x00ccaa009e};
/* x^64 mod P: 96 bits to 64. */
static const uint64_t crc32_k5[2] = {0x0163cd6124, 0};
/* P and floor(x^64 / P) for the Barrett reduction. */
static const uint64_t crc32_poly[2] = {0x01db710641, 0x01f7011641};

/* Folds `acc` forward over 128 bits and adds `data`. */
CRC32_TARGET static inline __m128i crc32_fold(__m128i acc, __m128i k,
                                              __m128i data) {
  __m128i lo = _mm_clmulepi64_si128(acc, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(acc, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, lo), data);
}

/* The register-level CRC (pre- and post-inversion left to the caller) of
 * n bytes, n >= 64 and a multiple of 16. */
CRC32_TARGET CHUB_HOT static uint32_t
crc32_clmul(uint32_t crc, const unsigned char *p, size_t n) {
  __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)p);
  __m128i x2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
  __m128i x4 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  p += 64;
  n -= 64;
  __m128i k = _mm_loadu_si128((const __m128i *)(const void *)crc32_k1k2);
  for (; n >= 64; p += 64, n -= 64) {
    x1 = crc32_fold(x1, k, _mm_loadu_si128((const __m128i *)(const void *)p));
    x2 = crc32_fold(x2, k,
                    _mm_loadu_si128((const __m128i *)(const void *)(p + 16)));
    x3 = crc32_fold(x3, k,
                    _mm_loadu_si128((const __m128i *)(const void *)(p + 32)));
    x4 = crc32_fold(x4, k,
                    _mm_loadu_si128((const __m128i *)(const void *)(p + 48)));
  }
  k = _mm_loadu_si128((const __m128i *)(const void *)crc32_k3k4);
  x1 = crc32_fold(x1, k, x2);
  x1 = crc32_fold(x1, k, x3);
  x1 = crc32_fold(x1, k, x4);
  for (; n >= 16; p += 16, n -= 16)
    x1 = crc32_fold(x1, k, _mm_loadu_si128((const __m128i *)(const void *)p));

  /* 128 bits to 64. */
  __m128i mask32 = _mm_setr_epi32(-1, 0, -1, 0);
  __m128i t = _mm_clmulepi64_si128(x1, k, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
  k = _mm_loadu_si128((const __m128i *)(const void *)crc32_k5);
  t = _mm_srli_si128(x1, 4);
  x1 = _mm_and_si128(x1, mask32);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, k, 0x00), t);

  /* Barrett: 64 bits to 32. */
  k = _mm_loadu_si128((const __m128i *)(const void *)crc32_poly);
  t = _mm_and_si128(x1, mask32);
  t = _mm_clmulepi64_si128(t, k, 0x10);
  t = _mm_and_si128(t, mask32);
  t = _mm_clmulepi64_si128(t, k, 0x00);
  x1 = _mm_xor_si128(x1, t);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* The register-level CRC of p[0..n), n < 64, continued from `reg`, with
 * the same folding. The bytes go at the end of a zeroed 64-byte block: a
 * zero register stays zero over leading zeros. The register is added into
 * the first bytes, as crc32_clmul does; when n < 4 its bytes that the
 * input does not reach are only shifted down. This spares the short header
 * and tail of a spool record zlib's tables, which the system call before
 * has usually pushed out of the caches. */
CRC32_TARGET CHUB_HOT static uint32_t
crc32_clmul_short(uint32_t reg, const unsigned char *p, size_t n) {
  if (n == 0)
    return reg;
  unsigned char block[64] = {0};
  unsigned char *d = block + sizeof block - n;
  memcpy(d, p, n);
  size_t k = n < 4 ? n : 4;
  for (size_t i = 0; i < k; i++)
    d[i] ^= (unsigned char)(reg >> (8 * i));
  uint32_t rest = n < 4 ? reg >> (8 * n) : 0;
  return crc32_clmul(0, block, sizeof block) ^ rest;
}

CHUB_HOT static int crc32_have_clmul(void) {
  static int have = -1; /* a benign race: every thread computes the same */
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  }
  return have;
}

CHUB_HOT uint32_t crc32_ieee(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  if (!crc32_have_clmul())
    return (uint32_t)crc32_z(crc, b, n);
  uint32_t reg = ~crc;
  if (n >= 64) {
    size_t whole = n & ~(size_t)15;
    reg = crc32_clmul(reg, b, whole);
    b += whole;
    n -= whole;
  }
  return ~crc32_clmul_short(reg, b, n);
}

int crc32_ieee_accelerated(void) {
  return crc32_have_clmul();
}

#else

uint32_t crc32_ieee(uint32_t crc, const void *p, size_t n) {
  return (uint32_t)crc32_z(crc, p, n);
}

int crc32_ieee_accelerated(void) {
  return 0;
}

#endif

/*
 * fault_data.h - the bytes and numbers the fault trainer produces, computed
 * the same way by the trainer and by the scenario driver, so the driver can
 * tell exactly what the hub should hold: each epoch's metrics (values with
 * exact binary forms, so they compare equal after a JSON round trip) and
 * each checkpoint's contents (a pseudo-random stream per seed, so a torn or
 * mixed file never matches any version).
 */
#ifndef FAULT_DATA_H
#define FAULT_DATA_H

#include <stddef.h>
#include <stdint.h>

/* The metrics the trainer reports for `epoch`. */
static inline double fault_data_loss(int epoch) {
  return 4.0 - epoch / 64.0;
}
static inline double fault_data_top1(int epoch) {
  return epoch / 1024.0;
}
static inline double fault_data_map(int epoch) {
  return epoch / 2048.0;
}

/* The seed of epoch e's last.pt, and of the final best.pt. */
static inline uint64_t fault_data_seed_last(int epoch) {
  return 0x1000u + (uint64_t)epoch;
}
static inline uint64_t fault_data_seed_best(int epochs) {
  return 0x9000u + (uint64_t)epochs;
}

/* Fills buf with bytes [off, off+len) of the stream for `seed` (off a
 * multiple of 8). splitmix64 over (seed, position): cheap and position
 * addressable, so any chunk can be produced alone. */
static inline void fault_data_fill(unsigned char *buf, size_t len,
                                   uint64_t seed, uint64_t off) {
  for (size_t i = 0; i < len; i += 8) {
    uint64_t z = seed * 0x9e3779b97f4a7c15u + (off + i) / 8 + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    for (size_t k = 0; k < 8 && i + k < len; k++)
      buf[i + k] = (unsigned char)(z >> (8 * k));
  }
}

#endif

/*
 * weights.h - the trainer's weights file (last.bin, best.bin).
 *
 * Self-describing so that a file downloaded from a hub can be loaded with
 * no other knowledge: it names its layer sizes, the epoch it was saved at
 * and the optimizer state needed to resume. Layout (little-endian):
 *
 *   "CHUBMLP1"                 8 bytes, magic and format version
 *   n_layers                   u32, weight layers (1..4)
 *   sizes[n_layers + 1]        u32 each, input .. classes
 *   epoch                      i32, last finished epoch (0-based)
 *   fitness, best_fitness      f64 each
 *   adam_step                  u64
 *   n_params                   u64, must equal what the sizes imply
 *   params, adam_m, adam_v     n_params f32 each
 *   crc32                      u32 (zlib) of every byte before it
 */
#ifndef FASHION_MNIST_WEIGHTS_H
#define FASHION_MNIST_WEIGHTS_H

#include "mlp.h"

#include <stddef.h>

typedef struct weights_meta {
  int epoch;
  double fitness;
  double best_fitness;
} weights_meta;

/* Writes `net` and `meta` to `path` through `path`.tmp and a rename, so a
 * reader (or a crash) never sees half a file. Returns 0, or -1 with a
 * message in `err`. */
int weights_save(const char *path, const mlp *net, const weights_meta *meta,
                 char *err, size_t errlen);

/* Reads a file written by weights_save() into a new network (free it with
 * mlp_free()). Returns 0, or -1 with a message naming the file. */
int weights_load(const char *path, mlp *net, weights_meta *meta, char *err,
                 size_t errlen);

#endif

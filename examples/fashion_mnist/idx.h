/*
 * idx.h - reads the IDX files Fashion-MNIST ships as (gzip-compressed).
 *
 * Images stay as bytes (60000 x 784 is 47 MB; as floats it would be four
 * times that); the trainer scales them to [0, 1] one minibatch at a time.
 */
#ifndef FASHION_MNIST_IDX_H
#define FASHION_MNIST_IDX_H

#include <stddef.h>

typedef struct idx_set {
  unsigned char *pixels; /* count * rows * cols bytes, row-major */
  unsigned char *labels; /* count bytes, each 0..9 */
  size_t count;
  size_t rows, cols;
} idx_set;

/* Loads `{dir}/{prefix}-images-idx3-ubyte.gz` and the matching labels file,
 * checking magic numbers, dimensions, that both hold the same number of
 * items, and that every label is a class 0..9. At most `limit` items are kept
 * (0 keeps all). On failure returns -1 and writes a message naming the file
 * into `err`. */
int idx_load(const char *dir, const char *prefix, size_t limit, idx_set *out,
             char *err, size_t errlen);

/* Frees what idx_load() allocated; the set is zeroed. */
void idx_free(idx_set *set);

#endif

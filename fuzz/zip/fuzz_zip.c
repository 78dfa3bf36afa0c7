/*
 * fuzz_zip.c - libFuzzer target: any bytes as an uploaded dataset zip.
 *
 * zipcheck() must answer (accept or refuse with a message) without
 * reading outside the file, whatever sizes and offsets the bytes claim;
 * an accepted archive's entries must fit in the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zipcheck.h"

typedef struct fuzz_zip_buf {
  const uint8_t *data;
  size_t size;
} fuzz_zip_buf;

static int fuzz_zip_read(void *ud, uint64_t off, void *buf, size_t n) {
  const fuzz_zip_buf *b = ud;
  if (off > b->size || n > b->size - off)
    return -1;
  memcpy(buf, b->data + off, n);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_zip_buf b = {data, size};
  zipcheck_info info;
  char err[256];
  err[0] = '\0';
  int rc = zipcheck(fuzz_zip_read, &b, size, &info, err, sizeof err);
  if (rc < 0 && err[0] == '\0')
    abort(); /* a refusal always says why */
  /* Each accepted entry has at least a 46-byte central header and a
   * 30-byte local one. */
  if (rc == 0 && (info.entries == 0 || info.entries > size / 76))
    abort();
  return 0;
}

/*
 * sha256.c - SHA-256 of a file descriptor, for checkpoint uploads.
 *
 * Reads with pread in fixed chunks from offset 0, so the descriptor's file
 * offset is left alone (the upload reads the same fd) and memory stays flat
 * whatever the file's size.
 */
#include "internal.h"
#include "http.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <unistd.h>

enum { SHA256_CHUNK = 1 << 16 };

chub_code chub_sha256_fd_n(int fd, long long limit, char hex[65]) {
  return chub_sha256_fd_stop(fd, limit, hex, NULL, NULL);
}

chub_code chub_sha256_fd_stop(int fd, long long limit, char hex[65],
                              bool (*stop)(const void *), const void *arg) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return CHUB_ENOMEM;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return CHUB_ENOMEM;
  }
  static const char digits[] = "0123456789abcdef";
  unsigned char buf[SHA256_CHUNK];
  long long off = 0;
  chub_code rc = CHUB_OK;
  while (limit < 0 || off < limit) {
    /* A multi-gigabyte file takes seconds; a closing session cannot wait. */
    if (stop && stop(arg)) {
      rc = CHUB_ETIMEDOUT;
      break;
    }
    size_t want = sizeof buf;
    if (limit >= 0 && (long long)want > limit - off)
      want = (size_t)(limit - off);
    ssize_t n = pread(fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = CHUB_EIO;
      break;
    }
    if (n == 0)
      break;
    EVP_DigestUpdate(ctx, buf, (size_t)n);
    off += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  if (rc != CHUB_OK)
    return rc;
  for (unsigned int i = 0; i < mdlen && i < 32; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[64] = '\0';
  return CHUB_OK;
}

chub_code chub_sha256_fd(int fd, char hex[65]) {
  return chub_sha256_fd_n(fd, -1, hex);
}

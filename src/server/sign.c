/*
 * sign.c - the secret behind chubd's download URLs, and their signatures.
 *
 * The secret lives in the store (store_ops.secret_get), made once, so
 * every chubd on one database signs and checks with the same one: a new
 * one would void every URL already handed out. Hubs made before that kept
 * it in DATA/url-secret (0600); sign_secret_file reads that file so its
 * value is what the store keeps, and links handed out stay valid. A
 * damaged file is an error rather than a silent new secret.
 */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "util.h"

static int sign_secret_read(int fd, const char *path,
                            unsigned char secret[SIGN_SECRET_LEN], char *err,
                            size_t errn) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    snprintf(err, errn, "cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  if (sb.st_size != SIGN_SECRET_LEN) {
    snprintf(err, errn,
             "%s is damaged (%lld bytes, expected %d); remove it to make a "
             "new one (download URLs issued so far then stop working)",
             path, (long long)sb.st_size, SIGN_SECRET_LEN);
    return -1;
  }
  if ((sb.st_mode & 077) != 0 && fchmod(fd, 0600) != 0) {
    snprintf(err, errn, "%s is readable by others and cannot be made 0600: %s",
             path, strerror(errno));
    return -1;
  }
  size_t got = 0;
  while (got < SIGN_SECRET_LEN) {
    ssize_t r = read(fd, secret + got, SIGN_SECRET_LEN - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      snprintf(err, errn, "cannot read %s: %s", path,
               r < 0 ? strerror(errno) : "file shrank");
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

int sign_secret_file(const char *data_dir,
                     unsigned char secret[SIGN_SECRET_LEN], char *err,
                     size_t errn) {
  char path[4200];
  snprintf(path, sizeof path, "%s/url-secret", data_dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    snprintf(err, errn, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = sign_secret_read(fd, path, secret, err, errn);
  close(fd);
  return rc < 0 ? -1 : 1;
}

int sign_secret_make(unsigned char secret[SIGN_SECRET_LEN], char *err,
                     size_t errn) {
  if (RAND_bytes(secret, SIGN_SECRET_LEN) != 1) {
    snprintf(err, errn, "cannot make a URL secret: no randomness");
    return -1;
  }
  return 0;
}

void sign_compute(const unsigned char secret[SIGN_SECRET_LEN],
                  const char *method, const char *path, int64_t expires,
                  int64_t kid, char out[SIGN_HEX_LEN + 1]) {
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s\n%s\n%lld\n%lld", method, path,
                   (long long)expires, (long long)kid);
  if (n < 0 || (size_t)n >= sizeof msg) {
    out[0] = '\0'; /* never matches; the router bounds paths well below */
    return;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret, SIGN_SECRET_LEN, (const unsigned char *)msg,
       (size_t)n, mac, &len);
  util_hex(mac, 32, out);
}

int sign_check(const unsigned char secret[SIGN_SECRET_LEN], const char *method,
               const char *path, int64_t expires, int64_t kid,
               const char *sig) {
  if (!sig || strlen(sig) != SIGN_HEX_LEN)
    return 0;
  char want[SIGN_HEX_LEN + 1];
  sign_compute(secret, method, path, expires, kid, want);
  if (want[0] == '\0')
    return 0;
  return CRYPTO_memcmp(want, sig, SIGN_HEX_LEN) == 0;
}

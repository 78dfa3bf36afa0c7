/*
 * sign.h - capability URLs: download links that work without a header.
 *
 * Ultralytics (and curl, and a browser) fetch weights with a plain GET, so
 * every download URL chubd hands out carries its own proof: an expiry and
 * an HMAC-SHA256 over the method, the path and that expiry, keyed by a
 * secret only this hub holds and bound to the key that asked for the URL
 * (its id is signed too, and checked against the store on each use, so
 * revoking the key kills its URLs). Nothing here touches the network or
 * the store; sign.c only computes and compares.
 */
#ifndef CHUBD_SIGN_H
#define CHUBD_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_SECRET_LEN 32
#define SIGN_HEX_LEN 64

/* Reads the secret an older chubd kept in DATA/url-secret: 1 when read, 0
 * when there is no such file, -1 (damaged, unreadable) with a message in
 * err. */
int sign_secret_file(const char *data_dir,
                     unsigned char secret[SIGN_SECRET_LEN], char *err,
                     size_t errn);

/* A new random secret: 0, or -1 with a message in err. */
int sign_secret_make(unsigned char secret[SIGN_SECRET_LEN], char *err,
                     size_t errn);

/* Hex HMAC-SHA256 of "METHOD\nPATH\nEXPIRES\nKID" into out (65 bytes). */
void sign_compute(const unsigned char secret[SIGN_SECRET_LEN],
                  const char *method, const char *path, int64_t expires,
                  int64_t kid, char out[SIGN_HEX_LEN + 1]);

/* Whether sig (as found in a URL) is the signature of the rest, compared
 * in constant time. */
int sign_check(const unsigned char secret[SIGN_SECRET_LEN], const char *method,
               const char *path, int64_t expires, int64_t kid, const char *sig);

#endif

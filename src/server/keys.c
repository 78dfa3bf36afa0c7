/*
 * keys.c - API keys for chubd.
 *
 * A key is 42 random characters [A-Za-z0-9] (about 250 bits), printed once
 * by `keys create` and never stored: the database keeps its SHA-256 and its
 * first characters (the prefix), which find the row quickly and let an
 * operator name a key in `keys list` and `keys revoke` without the secret.
 * A plain SHA-256 is enough because keys are random, not passwords; the
 * comparison of hashes is constant-time (CRYPTO_memcmp in the store).
 */
#include "keys.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "keycache.h"
#include "util.h"

/* SHA-256 looked up once: with EVP_sha256() every digest looks up its
 * implementation again (a lock and a search), which cost more than the
 * hash itself on every authenticated request. Kept for the process; each
 * thread keeps a digest context too (EVP_Digest allocates and frees one
 * per call), freed when the thread ends. */
static EVP_MD *keys_sha256;
static pthread_key_t keys_ctx;
static int keys_ctx_ok;
static pthread_once_t keys_sha256_once = PTHREAD_ONCE_INIT;

static void keys_ctx_free(void *ctx) {
  EVP_MD_CTX_free(ctx);
}

static void keys_sha256_fetch(void) {
  keys_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  keys_ctx_ok = pthread_key_create(&keys_ctx, keys_ctx_free) == 0;
}

void keys_hash(const char *key, unsigned char out[32]) {
  unsigned int n = 32;
  pthread_once(&keys_sha256_once, keys_sha256_fetch);
  const EVP_MD *md = keys_sha256 ? keys_sha256 : EVP_sha256();
  EVP_MD_CTX *ctx = keys_ctx_ok ? pthread_getspecific(keys_ctx) : NULL;
  if (!ctx && keys_ctx_ok && (ctx = EVP_MD_CTX_new()) &&
      pthread_setspecific(keys_ctx, ctx) != 0) {
    EVP_MD_CTX_free(ctx);
    ctx = NULL;
  }
  if (ctx && EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
      EVP_DigestUpdate(ctx, key, strlen(key)) == 1 &&
      EVP_DigestFinal_ex(ctx, out, &n) == 1)
    return;
  EVP_Digest(key, strlen(key), out, &n, md, NULL);
}

void keys_prefix(const char *key, char out[KEYS_PREFIX_LEN + 1]) {
  snprintf(out, KEYS_PREFIX_LEN + 1, "%s", key);
}

int keys_owner_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > STORE_OWNER_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!isalnum(c) && c != '.' && c != '_' && c != '@' && c != '-')
      return 0;
  }
  return 1;
}

static int keys_create(store *st, const char *owner) {
  if (!keys_owner_ok(owner)) {
    fprintf(stderr,
            "chubd: key name \"%s\" is not valid: use 1-%d characters of "
            "letters, digits and . _ @ -\n",
            owner, STORE_OWNER_MAX);
    return 2;
  }
  char key[UTIL_KEY_LEN + 1];
  if (util_random_alnum(key, UTIL_KEY_LEN) < 0) {
    fprintf(stderr, "chubd: cannot create a key: the random generator "
                    "failed\n");
    return 1;
  }
  unsigned char hash[32];
  char prefix[KEYS_PREFIX_LEN + 1];
  keys_hash(key, hash);
  keys_prefix(key, prefix);
  if (st->ops->key_add(st, owner, prefix, hash, util_now_ms()) != STORE_OK) {
    fprintf(stderr, "chubd: cannot store the new key\n");
    return 1;
  }
  printf("%s\n", key);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int keys_list_row(void *ud, const store_key *k) {
  char created[32], revoked[32];
  (void)ud;
  util_rfc3339(k->created_ms, created);
  if (k->revoked_ms)
    util_rfc3339(k->revoked_ms, revoked);
  printf("%-24s %-8s %-22s %s\n", k->owner, k->prefix, created,
         k->revoked_ms ? revoked : "-");
  return 0;
}

static int keys_list(store *st) {
  printf("%-24s %-8s %-22s %s\n", "NAME", "PREFIX", "CREATED", "REVOKED");
  return st->ops->key_list(st, keys_list_row, NULL) == STORE_OK ? 0 : 1;
}

static int keys_revoke(store *st, const char *match) {
  int count = 0;
  if (st->ops->key_revoke(st, match, util_now_ms(), &count) != STORE_OK) {
    fprintf(stderr, "chubd: cannot revoke keys\n");
    return 1;
  }
  if (count == 0) {
    fprintf(stderr, "chubd: no key in use has prefix or name \"%s\"\n", match);
    return 1;
  }
  fprintf(stderr, "chubd: revoked %d key%s\n", count, count == 1 ? "" : "s");
  return 0;
}

/* Tells a running chubd that the keys changed (see keycache.c). */
static int keys_changed(const char *data_dir, int rc) {
  if (rc == 0 && keycache_stamp(data_dir) < 0) {
    fprintf(stderr,
            "chubd: cannot write %s/keys.stamp; a running chubd may "
            "accept a revoked key until it restarts\n",
            data_dir);
    return 1;
  }
  return rc;
}

int keys_command(store *st, const char *data_dir, int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "create") == 0)
    return keys_changed(data_dir, keys_create(st, argv[2]));
  if (argc == 2 && strcmp(argv[1], "list") == 0)
    return keys_list(st);
  if (argc == 3 && strcmp(argv[1], "revoke") == 0)
    return keys_changed(data_dir, keys_revoke(st, argv[2]));
  fprintf(stderr, "usage: chubd [--data DIR] keys create NAME | keys list | "
                  "keys revoke PREFIX|NAME\n");
  return 2;
}

/*
 * keycache.c - API keys confirmed by the store, kept in memory.
 *
 * Checking a key costs a database read, which on the metrics hot path is
 * as much as the write itself. Keys change only through `chubd keys`, which
 * may run in another process while chubd serves; after every change it
 * appends one byte to DATA/keys.stamp, so the file's size only ever grows.
 * Each lookup fstat()s the file, held open, and, when its size (or inode)
 * differs from what the cache was filled under, forgets every key first; a
 * key confirmed by the store is cached only if the stamp did not move
 * during the lookup. So a revoked key is refused from the very next
 * request, at the price of one fstat() (a stat() of the path walks the
 * directories too, and cost more than twice as much on the metrics hot
 * path).
 * A stamp removed or replaced has no links left: its name is opened again.
 * Only confirmed keys are cached; an unknown key always asks the store.
 *
 * Several chubd sharing one database (--db) do not share a data directory,
 * so a key revoked through one never moves the others' stamp: there each
 * entry also has a lifetime (keycache_set_max_age), after which the store
 * is asked again.
 */
#include "keycache.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util.h"

#define KEYCACHE_SLOTS 256 /* a power of two; more keys just evict */

typedef struct keycache_slot {
  int used;
  unsigned char hash[32];
  store_key key;
  int64_t cached_ms;
} keycache_slot;

struct keycache {
  char path[4200];
  pthread_mutex_t mu;    /* guards all below */
  int fd;                /* keys.stamp, or -1 when it could not be opened */
  keycache_token filled; /* the stamp the entries were cached under */
  int64_t max_age_ms;    /* 0: until the stamp moves */
  keycache_slot slots[KEYCACHE_SLOTS];
};

keycache *keycache_new(const char *data_dir) {
  keycache *kc = calloc(1, sizeof *kc);
  if (!kc)
    return NULL;
  snprintf(kc->path, sizeof kc->path, "%s/keys.stamp", data_dir);
  /* Created empty when missing, so that a lookup never walks the path to
   * find that there is none; what `chubd keys` appends changes its size. */
  kc->fd = open(kc->path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  pthread_mutex_init(&kc->mu, NULL);
  return kc;
}

void keycache_set_max_age(keycache *kc, int64_t ms) {
  kc->max_age_ms = ms;
}

void keycache_free(keycache *kc) {
  if (!kc)
    return;
  if (kc->fd >= 0)
    close(kc->fd);
  pthread_mutex_destroy(&kc->mu);
  free(kc);
}

/* The stamp's state now; with kc->mu held. */
static void keycache_read(keycache *kc, keycache_token *t) {
  struct stat sb;
  memset(t, 0, sizeof *t);
  if (kc->fd >= 0 && (fstat(kc->fd, &sb) != 0 || sb.st_nlink == 0)) {
    close(kc->fd); /* removed, or replaced by another file of that name */
    kc->fd = -1;
  }
  if (kc->fd < 0 && ((kc->fd = open(kc->path, O_RDONLY | O_CLOEXEC)) < 0 ||
                     fstat(kc->fd, &sb) != 0))
    return; /* no stamp: the keys never changed while chubd knew them */
  t->ino = (unsigned long long)sb.st_ino;
  t->size = (unsigned long long)sb.st_size;
}

static int keycache_same(const keycache_token *a, const keycache_token *b) {
  return a->ino == b->ino && a->size == b->size;
}

static keycache_slot *keycache_slot_of(keycache *kc,
                                       const unsigned char hash[32]) {
  /* The hash is uniformly random already: its first bytes index. */
  unsigned idx =
      ((unsigned)hash[0] | (unsigned)hash[1] << 8) & (KEYCACHE_SLOTS - 1);
  return &kc->slots[idx];
}

int keycache_get(keycache *kc, const unsigned char hash[32], store_key *out,
                 keycache_token *token) {
  int found = -1;
  pthread_mutex_lock(&kc->mu);
  keycache_read(kc, token);
  if (!keycache_same(token, &kc->filled)) {
    memset(kc->slots, 0, sizeof kc->slots);
    kc->filled = *token;
  }
  keycache_slot *s = keycache_slot_of(kc, hash);
  if (s->used && CRYPTO_memcmp(s->hash, hash, 32) == 0 &&
      (!kc->max_age_ms || util_now_ms() - s->cached_ms < kc->max_age_ms)) {
    *out = s->key;
    found = 0;
  }
  pthread_mutex_unlock(&kc->mu);
  return found;
}

void keycache_put(keycache *kc, const unsigned char hash[32],
                  const store_key *k, const keycache_token *token) {
  keycache_token now;
  pthread_mutex_lock(&kc->mu);
  keycache_read(kc, &now);
  if (keycache_same(&now, token) && keycache_same(&now, &kc->filled)) {
    keycache_slot *s = keycache_slot_of(kc, hash);
    s->used = 1;
    memcpy(s->hash, hash, 32);
    s->key = *k;
    s->cached_ms = kc->max_age_ms ? util_now_ms() : 0;
  }
  pthread_mutex_unlock(&kc->mu);
}

int keycache_stamp(const char *data_dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/keys.stamp", data_dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  int ok = write(fd, "+", 1) == 1;
  ok = close(fd) == 0 && ok;
  return ok ? 0 : -1;
}

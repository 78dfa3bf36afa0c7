/*
 * keycache.c - API keys confirmed by the store, kept in memory.
 *
 * Checking a key costs a database read, which on the metrics hot path is
 * as much as the write itself. Keys change only through `chubd keys`, which
 * may run in another process while chubd serves; after every change it
 * replaces DATA/keys.stamp with a file holding a new random word. Each
 * lookup reads that word and, when it differs from the one the cache was
 * filled under, forgets every key first; a key confirmed by the store is
 * cached only if the word did not change during the lookup. So a revoked
 * key is refused from the very next request, at the price of reading a
 * 33-byte file. Only confirmed keys are cached; an unknown key always asks
 * the store.
 */
#include "keycache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define KEYCACHE_SLOTS 256 /* a power of two; more keys just evict */

typedef struct keycache_slot {
  int used;
  unsigned char hash[32];
  store_key key;
} keycache_slot;

struct keycache {
  char path[4200];
  pthread_mutex_t mu;
  keycache_token filled; /* the stamp the entries were cached under */
  keycache_slot slots[KEYCACHE_SLOTS];
};

keycache *keycache_new(const char *data_dir) {
  keycache *kc = calloc(1, sizeof *kc);
  if (!kc)
    return NULL;
  snprintf(kc->path, sizeof kc->path, "%s/keys.stamp", data_dir);
  pthread_mutex_init(&kc->mu, NULL);
  return kc;
}

void keycache_free(keycache *kc) {
  if (!kc)
    return;
  pthread_mutex_destroy(&kc->mu);
  free(kc);
}

static void keycache_read(const keycache *kc, keycache_token *t) {
  memset(t, 0, sizeof *t);
  int fd = open(kc->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return; /* no stamp yet: keys never changed while chubd knew them */
  ssize_t n;
  do
    n = read(fd, t->stamp, sizeof t->stamp - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n < 0)
    snprintf(t->stamp, sizeof t->stamp, "unreadable");
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
  keycache_read(kc, token);
  pthread_mutex_lock(&kc->mu);
  if (strcmp(token->stamp, kc->filled.stamp) != 0) {
    memset(kc->slots, 0, sizeof kc->slots);
    kc->filled = *token;
  }
  keycache_slot *s = keycache_slot_of(kc, hash);
  if (s->used && memcmp(s->hash, hash, 32) == 0) {
    *out = s->key;
    found = 0;
  }
  pthread_mutex_unlock(&kc->mu);
  return found;
}

void keycache_put(keycache *kc, const unsigned char hash[32],
                  const store_key *k, const keycache_token *token) {
  keycache_token now;
  keycache_read(kc, &now);
  pthread_mutex_lock(&kc->mu);
  if (strcmp(now.stamp, token->stamp) == 0 &&
      strcmp(now.stamp, kc->filled.stamp) == 0) {
    keycache_slot *s = keycache_slot_of(kc, hash);
    s->used = 1;
    memcpy(s->hash, hash, 32);
    s->key = *k;
  }
  pthread_mutex_unlock(&kc->mu);
}

int keycache_stamp(const char *data_dir) {
  char tmp[4200], dst[4200], word[33];
  if (util_random_alnum(word, 32) < 0)
    return -1;
  word[32] = '\n';
  snprintf(dst, sizeof dst, "%s/keys.stamp", data_dir);
  snprintf(tmp, sizeof tmp, "%s/keys.stamp.%ld", data_dir, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  int ok = write(fd, word, sizeof word) == (ssize_t)sizeof word;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, dst) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

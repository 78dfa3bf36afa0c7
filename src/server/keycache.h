/*
 * keycache.h - recently seen API keys, so that a request does not read the
 * database to check its key.
 */
#ifndef CHUBD_KEYCACHE_H
#define CHUBD_KEYCACHE_H

#include <stdint.h>

#include "store.h"

typedef struct keycache keycache;

/* The state of DATA/keys.stamp when a lookup began. */
typedef struct keycache_token {
  unsigned long long ino, size;
} keycache_token;

/* A cache for the keys of data_dir, to whose keys.stamp file `chubd keys`
 * appends whenever it creates or revokes a key (the file is created empty
 * when missing). NULL when out of memory. */
keycache *keycache_new(const char *data_dir);
void keycache_free(keycache *kc);

/* Forgets each entry ms milliseconds after it was cached (0, the default:
 * only when the stamp moves): for keys kept in a database that other
 * chubd, with other data directories, change too. */
void keycache_set_max_age(keycache *kc, int64_t ms);

/* The cached key with this hash: 0 and *out filled, or -1 when not cached
 * (or the keys changed since). Either way *token records the keys' state
 * for a keycache_put() after asking the store. */
int keycache_get(keycache *kc, const unsigned char hash[32], store_key *out,
                 keycache_token *token);

/* Remembers a key the store confirmed, unless the keys changed since
 * *token was taken (the answer might already be stale). */
void keycache_put(keycache *kc, const unsigned char hash[32],
                  const store_key *k, const keycache_token *token);

/* Marks the keys as changed, for `chubd keys` after it wrote the store. */
int keycache_stamp(const char *data_dir);

#endif

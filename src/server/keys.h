/*
 * keys.h - API keys: made here, kept only as SHA-256 hashes, and the
 * `chubd keys ...` commands an operator runs.
 */
#ifndef CHUBD_KEYS_H
#define CHUBD_KEYS_H

#include "store.h"

#define KEYS_PREFIX_LEN 6

/* SHA-256 of the key's characters. */
void keys_hash(const char *key, unsigned char out[32]);

/* The first KEYS_PREFIX_LEN characters of key, terminated. */
void keys_prefix(const char *key, char out[KEYS_PREFIX_LEN + 1]);

/* True when name is a usable owner name: 1-64 of [A-Za-z0-9._@-]. */
int keys_owner_ok(const char *name);

/* Runs `keys create NAME`, `keys list`, `keys revoke PREFIX|NAME` with
 * argv[0] == "keys" on the store of data_dir. Returns the exit status. */
int keys_command(store *st, const char *data_dir, int argc, char **argv);

#endif

/*
 * run_meta.h - run.json, the small metadata file beside a run's spool.log:
 * what `chub sync` needs to finish a run later (the model id once the hub
 * issued one, the API root it belongs to, the model identifier and the
 * create payload of a run that trained offline).
 *
 * String values under string keys, replaced whole and durably (fs.h) on
 * every change. A damaged file is named in a warning and read as empty, so
 * a bad disk never stops a run. Not thread-safe: the spool that owns the
 * run directory serialises calls (spool_meta_set, spool_meta_get).
 */
#ifndef CHUB_RUN_META_H
#define CHUB_RUN_META_H

#include "chub.h"

/* Sets `key` to `value` in dir/run.json (NULL value: deletes the key).
 * CHUB_EINVAL for a value that is not UTF-8; CHUB_EIO (logged) when the
 * file cannot be written. */
chub_code run_meta_set(const char *dir, const char *key, const char *value);

/* The value of `key` in dir/run.json (malloc'd), or NULL. */
char *run_meta_get(const char *dir, const char *key);

#endif

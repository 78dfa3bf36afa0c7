/*
 * spool.h - the per-run durable spool: what a run produced and the hub has
 * not yet acknowledged.
 *
 * A run lives in a directory {runs_dir}/{run_id}/ holding:
 *   run.json   small key/value metadata (model id once known, api root,
 *              model identifier, args), replaced atomically (tmp+rename);
 *   spool.log  an append-only log of checksummed records.
 *
 * The training thread appends (one write(2), no fsync); the sender thread
 * reads, acknowledges and calls spool_sync() about once a second and at
 * train end. Replaying the log after a crash skips a torn or corrupt last
 * record and never misreads one. Acknowledged records are dropped by
 * spool_compact(). All functions are thread-safe (one mutex per spool).
 *
 * The API is spool.c; the record format is spool_record.h, the pending
 * index spool_index.h, the compaction spool_compact.c and run.json
 * run_meta.h.
 */
#ifndef CHUB_SPOOL_H
#define CHUB_SPOOL_H

#include "chub.h"
#include "spool_record.h" /* spool_scan, for tests and fuzzing */

#include <stddef.h>
#include <stdint.h>

typedef struct spool spool;

/* A checkpoint upload that was queued. Strings owned by the spool entry
 * when returned from spool_next_checkpoint (free with spool_ckpt_clear). */
typedef struct spool_ckpt {
  uint64_t seq; /* assigned by spool_append_checkpoint */
  int epoch;
  bool final; /* type "final" (else "epoch") */
  bool is_best;
  double map; /* for final */
  char *path; /* the trainer's file */
  /* The file as it was when queued: spool_append_checkpoint stat()s the
   * path when both are 0 (size -1: it could not). Trainers rewrite last.pt
   * in place, so an uploader compares these with fstat() of the file it
   * opened, before hashing and after streaming: a different size or mtime
   * means the queued bytes are gone (torn or newer), not this version. */
  long long size;
  long long mtime_ns;
} spool_ckpt;

/* Opens (creating if needed) the run directory `dir` and replays its log.
 * `max_bytes` bounds spool.log (<= 0: no bound); an append that would pass
 * it first compacts, and if still over returns CHUB_EFULL (one warning that
 * names the run, then a count when room comes back). A torn last record is
 * dropped quietly; damage before the last record is cut off with a warning
 * naming the file, the cut bytes kept in spool.log.damaged. A log written
 * by a newer chub (a later record format) is left untouched and the open
 * fails with CHUB_ECORRUPT and a line saying so. One spool per
 * run at a time: the directory is flock()ed, and a second open (in this or
 * another process) fails with CHUB_EIO and a log line saying it is in use. */
chub_code spool_open(const char *dir, long long max_bytes, spool **out);
void spool_close(spool *sp);

/* The run directory's path and its last component (the run id). */
const char *spool_dir(const spool *sp);
const char *spool_run_id(const spool *sp);

/* Appends epoch metrics (a JSON object text). Replaces a pending record of
 * the same epoch. One write(2); no fsync. */
chub_code spool_append_metrics(spool *sp, int epoch, const char *json);

/* Appends epoch metrics as entries (the record keeps the values as they
 * are; spool_read_metrics writes the JSON, with flat_map_json's rules).
 * Entries with a NULL name are skipped; those the hub could not take (not
 * finite, a key that is not UTF-8) are left out and set *dropped.
 * Otherwise as spool_append_metrics. */
chub_code spool_append_metrics_items(spool *sp, int epoch,
                                     const flat_item *items, size_t n,
                                     bool *dropped);

/* Appends a queued checkpoint upload; sets c->seq (and c->size and
 * c->mtime_ns, see spool_ckpt). */
chub_code spool_append_checkpoint(spool *sp, spool_ckpt *c);

/* Marks epochs / a checkpoint as acknowledged by the hub. Unknown epochs
 * and seqs are ignored. An epoch re-queued after its JSON was last read by
 * spool_read_metrics stays pending (the newer JSON has not been sent). */
chub_code spool_ack_metrics(spool *sp, const int *epochs, size_t n);
chub_code spool_ack_checkpoint(spool *sp, uint64_t seq);

/* fsync the log (and the directory when the file was created). */
chub_code spool_sync(spool *sp);

/* Up to `max` pending (unacknowledged) epochs, lowest first; returns count. */
size_t spool_pending_metrics(spool *sp, int *epochs, size_t max);

/* The pending metrics JSON of `epoch` (malloc'd, caller frees).
 * CHUB_EINVAL when the epoch is not pending; CHUB_ECORRUPT when its record
 * no longer passes its checksum. */
chub_code spool_read_metrics(spool *sp, int epoch, char **json);

/* The oldest pending checkpoint into *out (caller frees with
 * spool_ckpt_clear); false when none is pending. */
bool spool_next_checkpoint(spool *sp, spool_ckpt *out);
void spool_ckpt_clear(spool_ckpt *c);

/* The seq of the newest pending final checkpoint, 0 when none is
 * pending. */
uint64_t spool_pending_final(spool *sp);

/* Counts of pending work, for `chub runs`. */
void spool_pending_counts(spool *sp, size_t *metrics, size_t *ckpts,
                          bool *final_pending);

/* Rewrites the log with only pending records (tmp, fsync, rename, fsync
 * of the directory). The copy and its fsync run without the spool's mutex,
 * so appends from the training thread go on meanwhile and are carried
 * over; a second call while one runs returns CHUB_OK at once. The spool
 * also compacts by itself when an append would pass max_bytes and when an
 * acknowledgement leaves most of a log of 1 MiB or more dead. */
chub_code spool_compact(spool *sp);

/* run.json metadata: string values; NULL value deletes. get returns a
 * malloc'd copy or NULL. */
chub_code spool_meta_set(spool *sp, const char *key, const char *value);
char *spool_meta_get(spool *sp, const char *key);

#endif

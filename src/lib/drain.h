/*
 * drain.h - the one upload engine: sends what a run's spool holds pending
 * (metrics, then checkpoints) and acknowledges in the spool what the hub
 * took.
 *
 * Three callers send what is pending, each with its own small policy: the
 * sender thread while the trainer runs (short, bounded attempts; a file
 * still being written is retried on a later wake-up), the final sync at
 * train end (everything, within the trainer's deadline, with a progress
 * bar) and `chub sync` (everything, later, from another process). What
 * replaces what, how a file still being written is treated, when the log is
 * compacted and how progress shows are decided here, once.
 *
 * What replaces what: an epoch checkpoint is superseded, and acknowledged
 * without being sent, when a newer checkpoint is known: the newest one the
 * live trainer queued (drain_newest), or a final checkpoint pending in the
 * spool. The final weights are never superseded.
 */
#ifndef CHUB_DRAIN_H
#define CHUB_DRAIN_H

#include "chub.h"
#include "http.h"
#include "spool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* The newest checkpoint a live trainer queued, and when it was whole
 * (wall-clock ms, chub_wall_now() * 1000): written by the training thread,
 * read by the uploader. */
typedef struct drain_newest {
  _Atomic unsigned long long seq;
  _Atomic long long queued_ms;
} drain_newest;

void drain_newest_init(drain_newest *n);
void drain_newest_set(drain_newest *n, unsigned long long seq,
                      double queued_at);

typedef struct drain_policy {
  const http_policy *http;    /* retries and budget of each request */
  const drain_newest *newest; /* the live trainer's, or NULL for none */
  /* Checkpoints looked at per call (superseded ones count); 0: all. */
  int max_checkpoints;
  /* A checkpoint whose file is being written: how many times to try it
   * (each try waits for the file to settle), and then whether to drop it
   * (no trainer will finish writing it) rather than leave it pending and
   * return CHUB_EIO. */
  int busy_tries;
  bool drop_busy;
  bool progress; /* a progress display per checkpoint */
} drain_policy;

/* What the calls did; kept by the caller across calls. */
typedef struct drain_report {
  size_t acked; /* records acknowledged since the last compaction */
  bool busy;    /* the last call left a checkpoint only because its file
                   was being written: worth a retry soon */
} drain_report;

/* Uploads every pending epoch, at most DRAIN_BATCH per request, and
 * acknowledges each batch the hub accepted. CHUB_OK when nothing is left
 * pending; else the failing call's code (logged), the data kept. */
chub_code drain_metrics(http_client *h, spool *sp, const char *model_id,
                        const drain_policy *p, drain_report *r);

/* Uploads pending checkpoints, oldest first, streamed from disk with their
 * SHA-256 (see drain.c for how a file being rewritten is told apart).
 * CHUB_OK when the call's share is done; CHUB_EIO when a file was still
 * being written after busy_tries (r->busy); else the failing call's code
 * (logged), the checkpoint kept. */
chub_code drain_checkpoints(http_client *h, spool *sp, const char *model_id,
                            const drain_policy *p, drain_report *r);

/* Metrics, then checkpoints. When both succeeded and nothing is left
 * pending, compacts the spool (the run is done) and returns CHUB_OK; when
 * something is left, CHUB_EIO. */
chub_code drain_all(http_client *h, spool *sp, const char *model_id,
                    const drain_policy *p, drain_report *r);

/* For a caller that drains again and again (the sender): compacts the
 * spool after DRAIN_COMPACT_AFTER acknowledgements. With drain_all, the
 * only place outside the spool itself that starts a compaction. */
void drain_housekeeping(spool *sp, drain_report *r);

#define DRAIN_BATCH 100
#define DRAIN_COMPACT_AFTER 1000

#endif

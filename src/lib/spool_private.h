/*
 * spool_private.h - the spool's state, shared by the two files that
 * implement it: spool.c (open, replay, append, acknowledge, sync, read)
 * and spool_compact.c (rewriting the log with only pending records).
 * Nothing else includes this; everyone else sees spool.h.
 */
#ifndef CHUB_SPOOL_PRIVATE_H
#define CHUB_SPOOL_PRIVATE_H

#include "spool.h"
#include "spool_index.h"

#include <pthread.h>
#include <sys/types.h>

struct spool {
  pthread_mutex_t mu; /* guards everything below but the constant paths */
  char *dir;
  char *run_id;
  char *log_path;
  int fd;            /* spool.log, read-write */
  int dir_fd;        /* the run directory, flock()ed while open */
  off_t end;         /* bytes of valid log; the next record goes here */
  off_t synced;      /* end at the last fsync */
  bool dir_unsynced; /* spool.log was created; its directory entry needs it */
  long long max_bytes;

  spool_index index; /* what is pending, and where */

  bool full;            /* the last append was refused for the bound */
  size_t refused;       /* appends refused since the bound was first hit */
  unsigned compactions; /* bumped by each compaction, for spool_sync */
  bool compacting;      /* a background compaction is copying */
};

/* spool_compact.c: the compaction an append or acknowledgement needs to
 * stay under max_bytes, run with sp->mu held by the caller (nothing may be
 * appended until there is room). The same copier as spool_compact(). */
chub_code spool_compact_held(spool *sp);

#endif

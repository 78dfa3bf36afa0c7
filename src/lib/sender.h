/*
 * sender.h - the one background thread per session that talks to the hub
 * while the trainer runs. Its uploads go through the upload engine
 * (drain.h) that the final sync and `chub sync` use as well.
 *
 * Callbacks never touch the network: they append to the spool and post a
 * command here. Commands are a small fixed set (flush metrics, upload
 * checkpoints, heartbeat) kept as pending flags, so posting the same command
 * twice before the thread wakes coalesces: the queue is bounded by
 * construction and posting never allocates or blocks beyond a short mutex
 * that the thread never holds during network I/O.
 */
#ifndef CHUB_SENDER_H
#define CHUB_SENDER_H

#include "chub.h"
#include "http.h"
#include "spool.h"

#include <stdbool.h>

typedef struct sender sender;

enum {
  SENDER_METRICS = 1u << 0,
  SENDER_CHECKPOINT = 1u << 1,
  SENDER_HEARTBEAT = 1u << 2
};

typedef struct sender_config {
  const char *api_root;
  const char *api_key;
  const char *model_id;
  spool *sp;          /* borrowed; outlives the sender */
  double heartbeat_s; /* interval between heartbeats */
  bool backlog;       /* the spool held unsent records at open */
  bool system_load;   /* heartbeats carry the machine's load (sysload.h) */
} sender_config;

/* Starts the thread; it sends a first heartbeat and, with cfg->backlog,
 * what an earlier session left pending in the spool. With cfg->system_load
 * each heartbeat carries the machine's load in "system", an extension of
 * the HUB protocol; a hub that refuses it (400 to a heartbeat that goes
 * through without it) gets plain heartbeats for the rest of the session.
 * NULL (logged) when the thread cannot start. */
sender *sender_start(const sender_config *cfg);

/* Posts commands (SENDER_* bits). Returns at once; thread-safe. */
void sender_post(sender *s, unsigned commands);

/* Stops the thread, letting an in-flight request run at most `grace_s`
 * seconds more, and frees the sender. What was not acknowledged stays in
 * the spool. NULL is a no-op. */
void sender_stop(sender *s, double grace_s);

/* Notes the newest checkpoint queued, `seq`, and when (chub_wall_now()):
 * the thread drops older pending epoch checkpoints instead of uploading
 * them, and knows that this one's file was whole at `queued_at`. */
void sender_note_checkpoint(sender *s, unsigned long long seq,
                            double queued_at);

#endif

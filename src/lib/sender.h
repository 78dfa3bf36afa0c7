/*
 * sender.h - the one background thread per session that talks to the hub,
 * and the upload steps it shares with the final sync and `chub sync`.
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
} sender_config;

/* Starts the thread; it sends a first heartbeat and, with cfg->backlog,
 * what an earlier session left pending in the spool. NULL (logged) when the
 * thread cannot start. */
sender *sender_start(const sender_config *cfg);

/* Posts commands (SENDER_* bits). Returns at once; thread-safe. */
void sender_post(sender *s, unsigned commands);

/* Stops the thread, letting an in-flight request run at most `grace_s`
 * seconds more, and frees the sender. What was not acknowledged stays in
 * the spool. NULL is a no-op. */
void sender_stop(sender *s, double grace_s);

/* Notes the newest checkpoint queued, `seq`, and when (sender_wall_now()):
 * the thread drops older pending epoch checkpoints instead of uploading
 * them, and knows that this one's file was whole at `queued_at`. */
void sender_note_checkpoint(sender *s, unsigned long long seq,
                            double queued_at);

/* Wall-clock seconds, comparable with file modification times. */
double sender_wall_now(void);

/* The request policies of hub-api.md. */
extern const http_policy sender_policy_upload; /* 3 retries within 30 s */
extern const http_policy sender_policy_heartbeat;

/* Uploads every pending epoch of `sp`, at most SENDER_BATCH per request,
 * acknowledging each batch the hub accepted. CHUB_OK when nothing is left
 * pending; otherwise the failing call's code (logged) with the data kept. */
chub_code sender_upload_metrics(http_client *h, spool *sp, const char *model_id,
                                const http_policy *policy);

/* Uploads checkpoint `c` streamed from disk with its SHA-256 and
 * acknowledges it in the spool when the hub stored it. `queued_at` is when
 * the trainer said the file was whole (sender_wall_now(); 0 if unknown). A
 * file being written, or modified while it was read, is left pending and
 * CHUB_EIO returned: try again shortly. A file that no longer exists is
 * logged and acknowledged (it can never be sent): CHUB_OK, nothing is left
 * to do for it. */
chub_code sender_upload_checkpoint(http_client *h, spool *sp,
                                   const char *model_id, const spool_ckpt *c,
                                   double queued_at, const http_policy *policy,
                                   http_progress_fn progress, void *user);

/* A progress display for long uploads: a bar redrawn in place when stderr
 * is a terminal, else a plain log line every quarter. `user` must point to
 * a sender_progress initialised with sender_progress_init. */
typedef struct sender_progress {
  bool tty;
  int last_step;
  const char *label;
} sender_progress;
void sender_progress_init(sender_progress *p, const char *label);
void sender_progress_cb(long long sent, long long total, void *user);
void sender_progress_done(sender_progress *p);

#define SENDER_BATCH 100

#endif

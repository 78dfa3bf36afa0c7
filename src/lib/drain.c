/*
 * drain.c - the one upload engine (drain.h): metrics in batches, then
 * checkpoints streamed from disk, each acknowledged in the spool once the
 * hub took it.
 *
 * Why everything comes from the spool: a failed upload then needs no queue
 * of its own. The data simply stays pending and goes with the next call,
 * whichever caller makes it (the sender thread, the final sync or `chub
 * sync`), and the hub is idempotent per epoch and per checkpoint, so
 * sending twice after a lost answer is harmless.
 */
#include "drain.h"

#include "internal.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A checkpoint untouched this long is taken as written; checked up to
 * DRAIN_SETTLE_TRIES times per attempt. */
#define DRAIN_SETTLE_S 0.5
enum { DRAIN_SETTLE_TRIES = 10 };

void drain_newest_init(drain_newest *n) {
  atomic_init(&n->seq, 0);
  atomic_init(&n->queued_ms, 0);
}

void drain_newest_set(drain_newest *n, unsigned long long seq,
                      double queued_at) {
  atomic_store(&n->queued_ms, (long long)(queued_at * 1000.0));
  atomic_store(&n->seq, seq);
}

/* ------------------------------------------------------------ metrics */

static chub_code drain_post_metrics(http_client *h, spool *sp,
                                    const char *model_id,
                                    const http_policy *policy,
                                    const int *epochs, size_t n,
                                    http_result *res) {
  json_t *metrics = json_object();
  for (size_t i = 0; i < n; i++) {
    char *text = NULL;
    if (spool_read_metrics(sp, epochs[i], &text) != CHUB_OK || !text)
      continue;
    char key[16];
    snprintf(key, sizeof key, "%d", epochs[i]);
    json_object_set_new(metrics, key, json_string(text));
    free(text);
  }
  json_t *body = json_pack("{s:s, s:o}", "type", "metrics", "metrics", metrics);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text)
    return CHUB_ENOMEM;
  char path[96];
  snprintf(path, sizeof path, "/v1/models/%s", model_id);
  chub_code rc = http_call(h, "POST", path, text, NULL, policy, res);
  free(text);
  return rc;
}

chub_code drain_metrics(http_client *h, spool *sp, const char *model_id,
                        const drain_policy *p, drain_report *r) {
  int epochs[DRAIN_BATCH];
  size_t batch = DRAIN_BATCH;
  /* Every batch acknowledged shrinks the pending set, so this ends; the
   * bound guards against a spool that keeps refilling under us. */
  for (int round = 0; round < 100000; round++) {
    size_t n = spool_pending_metrics(sp, epochs, batch);
    if (n == 0)
      return CHUB_OK;
    http_result res;
    chub_code rc =
        drain_post_metrics(h, sp, model_id, p->http, epochs, n, &res);
    if (rc == CHUB_EHTTP && res.status == 413 && n > 1) {
      /* Over the hub's body limit: send fewer epochs per request. */
      batch = n / 2;
      http_result_clear(&res);
      continue;
    }
    if (rc == CHUB_EHTTP && res.status == 413) {
      /* One epoch the hub will never take would block every later one. */
      chub_log(CHUB_LOG_WARN,
               "epoch %d of model %s is larger than the hub accepts (%s); "
               "it is dropped so that later epochs can go",
               epochs[0], model_id, res.message);
      http_result_clear(&res);
      spool_ack_metrics(sp, epochs, 1);
      r->acked++;
      continue;
    }
    if (rc != CHUB_OK) {
      if (rc == CHUB_EAUTH)
        chub_log(CHUB_LOG_WARN,
                 "metrics upload for model %s failed: the hub rejected the "
                 "API key; check your API key (chub login KEY); %zu epoch(s) "
                 "stay spooled",
                 model_id, n);
      else
        chub_log(CHUB_LOG_WARN,
                 "metrics upload for model %s (epochs %d-%d) failed after %d "
                 "attempt(s): %s; they stay spooled for the next upload",
                 model_id, epochs[0], epochs[n - 1], res.attempts, res.message);
      http_result_clear(&res);
      return rc;
    }
    http_result_clear(&res);
    spool_ack_metrics(sp, epochs, n);
    r->acked += n;
  }
  return CHUB_OK;
}

/* ------------------------------------------------------------ checkpoints */

/* What the file behind a queued checkpoint holds now. */
typedef enum drain_file {
  DRAIN_FILE_WHOLE, /* a whole version: upload it */
  DRAIN_FILE_BUSY,  /* being written: try again shortly */
  DRAIN_FILE_GONE   /* the queued bytes are gone and nobody will redo them */
} drain_file;

/* Whether the file behind fd holds a whole checkpoint, filling *st.
 * The spool recorded the file's size and mtime when on_model_save queued
 * it, after the trainer finished writing: the same size and mtime now is
 * exactly that version. Anything else means the file was rewritten in
 * place since. With a live trainer (`queued_at` > 0, wall-clock seconds)
 * that is a newer save, possibly still being written (truncate, then
 * slices: every byte we read could be unchanged while we upload, yet not a
 * whole file), so wait until it has not been modified for DRAIN_SETTLE_S,
 * bounded. Without one (a run left by an earlier process) the bytes may be
 * a save cut short by a kill: never upload those. An empty file is never a
 * checkpoint. Records without size and mtime fall back to the settle
 * rule. */
static drain_file drain_settled(const http_client *h, int fd, struct stat *st,
                                const spool_ckpt *c, double queued_at) {
  bool recorded = c->size > 0 || c->mtime_ns > 0;
  for (int i = 0; i < DRAIN_SETTLE_TRIES; i++) {
    if (fstat(fd, st) != 0)
      return DRAIN_FILE_BUSY;
    long long mtime_ns =
        (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    if (recorded && st->st_size > 0 && (long long)st->st_size == c->size &&
        mtime_ns == c->mtime_ns)
      return DRAIN_FILE_WHOLE;
    if (recorded && queued_at <= 0)
      return DRAIN_FILE_GONE;
    double mtime = (double)mtime_ns / 1e9;
    if (!recorded && st->st_size > 0 && queued_at > 0 && mtime <= queued_at)
      return DRAIN_FILE_WHOLE;
    double age = chub_wall_now() - mtime;
    if (age >= DRAIN_SETTLE_S)
      return st->st_size > 0 ? DRAIN_FILE_WHOLE : DRAIN_FILE_BUSY;
    double wait = DRAIN_SETTLE_S - age;
    if (wait > DRAIN_SETTLE_S)
      wait = DRAIN_SETTLE_S; /* mtime in the future: poll */
    if (!http_sleep(h, wait))
      return DRAIN_FILE_BUSY;
  }
  return DRAIN_FILE_BUSY;
}

/* Whether the model's checkpoint list (a chubd extension of MODEL) holds a
 * final upload with SHA-256 `sha`. A hub without the list answers false. */
static bool drain_hub_has_final(http_client *h, const char *model_id,
                                const char *sha, const http_policy *policy) {
  char path[96];
  snprintf(path, sizeof path, "/v1/models/%s", model_id);
  http_result res;
  bool found = false;
  if (http_call(h, "GET", path, NULL, NULL, policy, &res) == CHUB_OK) {
    json_t *list = json_object_get(res.data, "checkpoints");
    size_t i;
    json_t *ck;
    json_array_foreach(list, i, ck) {
      const char *type = json_string_value(json_object_get(ck, "type"));
      const char *got = json_string_value(json_object_get(ck, "sha256"));
      if (type && got && !strcmp(type, "final") && !strcmp(got, sha))
        found = true;
    }
  }
  http_result_clear(&res);
  return found;
}

/* Uploads checkpoint `c` and acknowledges it when the hub stored it (or
 * when it can never be sent: the file is gone, or the hub refused it).
 * CHUB_EIO: the file is being written or changed while read; try again. */
static chub_code drain_one(http_client *h, spool *sp, const char *model_id,
                           const spool_ckpt *c, double queued_at,
                           const http_policy *policy,
                           http_progress_fn progress_fn, void *user) {
  int fd = open(c->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    chub_log(CHUB_LOG_WARN,
             "checkpoint %s (epoch %d) cannot be read: %s; it is dropped "
             "from the upload queue",
             c->path, c->epoch, strerror(errno));
    spool_ack_checkpoint(sp, c->seq);
    return CHUB_OK;
  }
  struct stat before, after;
  drain_file state = drain_settled(h, fd, &before, c, queued_at);
  if (state == DRAIN_FILE_GONE) {
    if (before.st_size == 0)
      chub_log(CHUB_LOG_WARN,
               "checkpoint %s (epoch %d) is empty; it is dropped", c->path,
               c->epoch);
    else
      chub_log(CHUB_LOG_WARN,
               "checkpoint %s (epoch %d) was rewritten since it was queued "
               "and no running trainer will queue it again; it is dropped "
               "rather than sent possibly cut short",
               c->path, c->epoch);
    close(fd);
    spool_ack_checkpoint(sp, c->seq);
    return CHUB_OK;
  }
  if (state == DRAIN_FILE_BUSY) {
    chub_log(CHUB_LOG_DEBUG,
             "checkpoint %s is still being written; trying again shortly",
             c->path);
    close(fd);
    return CHUB_EIO;
  }
  /* The SHA-256 of what is sent, hashed by the HTTP layer (first, or while
   * sending when the hub takes it as a trailer). */
  char sha[65] = "";
  http_upload up = {.fd = fd,
                    .path = c->path,
                    .size = (long long)before.st_size,
                    .sha256 = sha,
                    .epoch = c->epoch,
                    .final = c->final,
                    .is_best = c->is_best,
                    .map = c->map,
                    .progress = progress_fn,
                    .progress_user = user};
  char path[112];
  snprintf(path, sizeof path, "/v1/models/%s/upload", model_id);
  http_result res;
  chub_code rc = http_call(h, "POST", path, NULL, &up, policy, &res);
  if (rc == CHUB_EIO && res.status == 0) {
    chub_log(CHUB_LOG_WARN, "checkpoint %s cannot be read: %s; kept queued",
             c->path, strerror(errno));
    close(fd);
    http_result_clear(&res);
    return CHUB_EIO;
  }
  /* A final refused as already there before the digest was complete. */
  if (rc == CHUB_ECONFLICT && c->final && strlen(sha) != 64 &&
      chub_sha256_fd_stop(fd, (long long)before.st_size, sha,
                          http_client_aborted, h) != CHUB_OK)
    sha[0] = '\0';
  int fst = fstat(fd, &after);
  close(fd);
  /* The same inode written to while we read it: the bytes sent may be torn
   * (the hub checks x-chub-sha256 and keeps nothing then). A file replaced
   * by rename leaves our inode untouched, so that upload is whole. */
  bool torn = fst != 0 || after.st_size != before.st_size ||
              after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
              after.st_mtim.tv_nsec != before.st_mtim.tv_nsec;
  if (torn) {
    chub_log(CHUB_LOG_INFO,
             "checkpoint %s changed while it was uploaded; it will be sent "
             "again",
             c->path);
    http_result_clear(&res);
    return CHUB_EIO;
  }
  if (rc == CHUB_OK) {
    const char *got = json_string_value(json_object_get(res.data, "sha256"));
    if (got && strcmp(got, sha) != 0) {
      chub_log(CHUB_LOG_WARN,
               "the hub stored checkpoint %s with SHA-256 %s, expected %s; it "
               "will be sent again",
               c->path, got, sha);
      http_result_clear(&res);
      return CHUB_EPROTO;
    }
    spool_ack_checkpoint(sp, c->seq);
  } else if (rc == CHUB_ECONFLICT && c->final &&
             drain_hub_has_final(h, model_id, sha, policy)) {
    /* The hub stored this very final before its answer was lost (a kill
     * or a dropped connection): that is an acknowledgement, not a failure. */
    chub_log(CHUB_LOG_INFO,
             "the hub already holds the final model %s (same SHA-256)",
             c->path);
    spool_ack_checkpoint(sp, c->seq);
    rc = CHUB_OK;
  } else if (rc == CHUB_ECONFLICT) {
    chub_log(CHUB_LOG_WARN,
             "the hub refused checkpoint %s (epoch %d): %s; it is dropped",
             c->path, c->epoch, res.message);
    spool_ack_checkpoint(sp, c->seq);
  } else if (rc == CHUB_EAUTH) {
    chub_log(CHUB_LOG_WARN,
             "checkpoint upload failed: the hub rejected the API key; check "
             "your API key (chub login KEY); it stays spooled");
  } else if (rc != CHUB_ETIMEDOUT) {
    chub_log(CHUB_LOG_WARN,
             "checkpoint %s (epoch %d) upload failed after %d attempt(s): %s; "
             "it stays spooled",
             c->path, c->epoch, res.attempts, res.message);
  }
  http_result_clear(&res);
  return rc;
}

/* The replacement rule of drain.h. */
static bool drain_superseded(const spool_ckpt *c, const drain_policy *p,
                             unsigned long long final_seq) {
  if (c->final)
    return false;
  unsigned long long newest = p->newest ? atomic_load(&p->newest->seq) : 0;
  return c->seq < newest || c->seq < final_seq;
}

chub_code drain_checkpoints(http_client *h, spool *sp, const char *model_id,
                            const drain_policy *p, drain_report *r) {
  r->busy = false;
  size_t pending = 0;
  spool_pending_counts(sp, NULL, &pending, NULL);
  int tries = p->busy_tries > 0 ? p->busy_tries : 1;
  /* Bounded by what is pending now: each look acknowledges one, retries
   * a file caught mid-write a few times, or stops. */
  size_t looks = p->max_checkpoints > 0 ? (size_t)p->max_checkpoints
                                        : (pending + 1) * (size_t)tries;
  int busy = 0;
  for (size_t i = 0; i < looks; i++) {
    spool_ckpt c;
    if (!spool_next_checkpoint(sp, &c))
      return CHUB_OK;
    chub_code rc = CHUB_OK;
    if (drain_superseded(&c, p, spool_pending_final(sp))) {
      spool_ack_checkpoint(sp, c.seq);
    } else {
      unsigned long long newest = p->newest ? atomic_load(&p->newest->seq) : 0;
      double queued_at =
          newest && c.seq == newest
              ? (double)atomic_load(&p->newest->queued_ms) / 1000.0
              : 0;
      progress bar;
      progress_init(&bar, c.final ? "Uploading best.pt" : "Uploading last.pt");
      rc = drain_one(h, sp, model_id, &c, queued_at, p->http,
                     p->progress ? progress_cb : NULL,
                     p->progress ? &bar : NULL);
      if (p->progress)
        progress_done(&bar);
    }
    if (rc == CHUB_EIO) {
      if (++busy < tries) {
        spool_ckpt_clear(&c);
        continue;
      }
      if (!p->drop_busy) {
        spool_ckpt_clear(&c);
        r->busy = true;
        return CHUB_EIO;
      }
      /* No trainer writes this run any more: a file still empty or
       * changing is not the checkpoint that was queued, and waiting will
       * not bring it back. Drop it rather than block what follows. */
      chub_log(CHUB_LOG_WARN,
               "checkpoint %s (epoch %d) is empty or keeps changing; it is "
               "dropped from run %s",
               c.path, c.epoch, spool_run_id(sp));
      spool_ack_checkpoint(sp, c.seq);
      busy = 0;
      rc = CHUB_OK;
    }
    spool_ckpt_clear(&c);
    if (rc != CHUB_OK)
      return rc;
    r->acked++;
  }
  return CHUB_OK;
}

/* ------------------------------------------------------------ both */

chub_code drain_all(http_client *h, spool *sp, const char *model_id,
                    const drain_policy *p, drain_report *r) {
  chub_code rc = drain_metrics(h, sp, model_id, p, r);
  if (rc == CHUB_OK)
    rc = drain_checkpoints(h, sp, model_id, p, r);
  if (rc != CHUB_OK)
    return rc;
  size_t m = 0, c = 0;
  spool_pending_counts(sp, &m, &c, NULL);
  if (m || c)
    return CHUB_EIO;
  spool_compact(sp);
  r->acked = 0;
  return CHUB_OK;
}

void drain_housekeeping(spool *sp, drain_report *r) {
  if (r->acked >= DRAIN_COMPACT_AFTER) {
    spool_compact(sp);
    r->acked = 0;
  }
}

/*
 * sender.c - the one thread per session that sends: metrics, checkpoints
 * and heartbeats, plus the upload steps the final sync and `chub sync` reuse.
 *
 * Why one long-lived thread and pending flags: the training thread must
 * never wait on the network, and a thread per request (the reference's way)
 * lets requests pile up without bound when the hub is slow. Here a callback
 * sets a bit under a mutex and signals; the thread takes the bits, drops
 * the mutex and does all network I/O unlocked. What to send always comes
 * from the spool, so a failed upload needs no queue of its own: the data
 * simply stays pending and goes with the next upload.
 */
#include "sender.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Acknowledged records worth rewriting the log for. */
enum { SENDER_COMPACT_AFTER = 1000 };
/* Checkpoint uploads attempted per wake-up, so a stream of failures cannot
 * spin the thread. */
enum { SENDER_CKPTS_PER_WAKE = 8 };
/* A checkpoint untouched this long is taken as written; checked up to
 * SENDER_SETTLE_TRIES times per attempt. */
#define SENDER_SETTLE_S 0.5
enum { SENDER_SETTLE_TRIES = 10 };
/* When a checkpoint could not be sent whole, try again this much later. */
#define SENDER_CKPT_RETRY_S 1.0

const http_policy sender_policy_upload = {3, 30.0, 30.0};
/* A heartbeat is one short attempt: the next one comes anyway, and a slow
 * hub must not hold the metrics behind it for long. */
const http_policy sender_policy_heartbeat = {0, 10.0, 10.0};

struct sender {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Set by posters without the mutex when the bit is already there;
   * taken by the thread under the mutex. */
  _Atomic unsigned pending;
  bool stop; /* guarded by mu */
  _Atomic long long abort_ms;
  /* The newest checkpoint queued in this process and when (wall-clock
   * ms): older epoch checkpoints are superseded by it. */
  _Atomic unsigned long long newest_seq;
  _Atomic long long newest_queued_ms;
  http_client *http;
  spool *sp;
  char *model_id;
  double heartbeat_s;
  /* Owned by the thread alone from here on. */
  char agent_id[128];
  double last_sync;
  size_t acked_since_compact;
  bool metrics_failing;
  bool heartbeat_failing;
};

static chub_code sender_post_metrics_batch(http_client *h, spool *sp,
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

chub_code sender_upload_metrics(http_client *h, spool *sp, const char *model_id,
                                const http_policy *policy) {
  int epochs[SENDER_BATCH];
  size_t batch = SENDER_BATCH;
  /* Every batch acknowledged shrinks the pending set, so this ends; the
   * bound guards against a spool that keeps refilling under us. */
  for (int round = 0; round < 100000; round++) {
    size_t n = spool_pending_metrics(sp, epochs, batch);
    if (n == 0)
      return CHUB_OK;
    http_result res;
    chub_code rc =
        sender_post_metrics_batch(h, sp, model_id, policy, epochs, n, &res);
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
  }
  return CHUB_OK;
}

double sender_wall_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* What the file behind a queued checkpoint holds now. */
typedef enum sender_file {
  SENDER_FILE_WHOLE, /* a whole version: upload it */
  SENDER_FILE_BUSY,  /* being written: try again shortly */
  SENDER_FILE_GONE   /* the queued bytes are gone and nobody will redo them */
} sender_file;

/* Whether the file behind fd holds a whole checkpoint, filling *st.
 * The spool recorded the file's size and mtime when on_model_save queued
 * it, after the trainer finished writing: the same size and mtime now is
 * exactly that version. Anything else means the file was rewritten in
 * place since. With a live trainer (`queued_at` > 0, wall-clock seconds)
 * that is a newer save, possibly still being written (truncate, then
 * slices: every byte we read could be unchanged while we upload, yet not a
 * whole file), so wait until it has not been modified for SENDER_SETTLE_S,
 * bounded. Without one (a run left by an earlier process) the bytes may be
 * a save cut short by a kill: never upload those. An empty file is never a
 * checkpoint. Records without size and mtime fall back to the settle
 * rule. */
static sender_file sender_settled(const http_client *h, int fd, struct stat *st,
                                  const spool_ckpt *c, double queued_at) {
  bool recorded = c->size > 0 || c->mtime_ns > 0;
  for (int i = 0; i < SENDER_SETTLE_TRIES; i++) {
    if (fstat(fd, st) != 0)
      return SENDER_FILE_BUSY;
    long long mtime_ns =
        (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    if (recorded && st->st_size > 0 && (long long)st->st_size == c->size &&
        mtime_ns == c->mtime_ns)
      return SENDER_FILE_WHOLE;
    if (recorded && queued_at <= 0)
      return SENDER_FILE_GONE;
    double mtime = (double)mtime_ns / 1e9;
    if (!recorded && st->st_size > 0 && queued_at > 0 && mtime <= queued_at)
      return SENDER_FILE_WHOLE;
    double age = sender_wall_now() - mtime;
    if (age >= SENDER_SETTLE_S)
      return st->st_size > 0 ? SENDER_FILE_WHOLE : SENDER_FILE_BUSY;
    double wait = SENDER_SETTLE_S - age;
    if (wait > SENDER_SETTLE_S)
      wait = SENDER_SETTLE_S; /* mtime in the future: poll */
    if (!http_sleep(h, wait))
      return SENDER_FILE_BUSY;
  }
  return SENDER_FILE_BUSY;
}

/* Whether the model's checkpoint list (a chubd extension of MODEL) holds a
 * final upload with SHA-256 `sha`. A hub without the list answers false. */
static bool sender_hub_has_final(http_client *h, const char *model_id,
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

chub_code sender_upload_checkpoint(http_client *h, spool *sp,
                                   const char *model_id, const spool_ckpt *c,
                                   double queued_at, const http_policy *policy,
                                   http_progress_fn progress, void *user) {
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
  sender_file state = sender_settled(h, fd, &before, c, queued_at);
  if (state == SENDER_FILE_GONE) {
    if (before.st_size == 0)
      chub_log(CHUB_LOG_WARN,
               "checkpoint %s (epoch %d) is empty; it is "
               "dropped",
               c->path, c->epoch);
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
  if (state == SENDER_FILE_BUSY) {
    chub_log(CHUB_LOG_DEBUG,
             "checkpoint %s is still being written; trying again shortly",
             c->path);
    close(fd);
    return CHUB_EIO;
  }
  char sha[65];
  chub_code hrc = chub_sha256_fd_stop(fd, (long long)before.st_size, sha,
                                      http_client_aborted, h);
  if (hrc == CHUB_ETIMEDOUT) {
    close(fd);
    return CHUB_ETIMEDOUT;
  }
  if (hrc != CHUB_OK) {
    chub_log(CHUB_LOG_WARN, "checkpoint %s cannot be read: %s; kept queued",
             c->path, strerror(errno));
    close(fd);
    return CHUB_EIO;
  }
  http_upload up = {.fd = fd,
                    .path = c->path,
                    .size = (long long)before.st_size,
                    .sha256 = sha,
                    .epoch = c->epoch,
                    .final = c->final,
                    .is_best = c->is_best,
                    .map = c->map,
                    .progress = progress,
                    .progress_user = user};
  char path[112];
  snprintf(path, sizeof path, "/v1/models/%s/upload", model_id);
  http_result res;
  chub_code rc = http_call(h, "POST", path, NULL, &up, policy, &res);
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
             sender_hub_has_final(h, model_id, sha, policy)) {
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

void sender_progress_init(sender_progress *p, const char *label) {
  p->tty = isatty(STDERR_FILENO) == 1;
  p->last_step = -1;
  p->label = label;
}

void sender_progress_cb(long long sent, long long total, void *user) {
  sender_progress *p = user;
  if (total <= 0)
    return;
  int pct = (int)(sent * 100 / total);
  if (p->tty) {
    if (pct == p->last_step)
      return;
    p->last_step = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
      bar[i] = i < fill ? '#' : ' ';
    bar[30] = '\0';
    fprintf(stderr, "\rchub: %s %3d%% |%s| %.1f/%.1f MB", p->label, pct, bar,
            (double)sent / 1e6, (double)total / 1e6);
    fflush(stderr);
    return;
  }
  int quarter = pct / 25;
  if (quarter == p->last_step)
    return;
  p->last_step = quarter;
  chub_log(CHUB_LOG_INFO, "%s: %d%% (%.1f of %.1f MB)", p->label, quarter * 25,
           (double)sent / 1e6, (double)total / 1e6);
}

void sender_progress_done(sender_progress *p) {
  if (p->tty && p->last_step >= 0)
    fputc('\n', stderr);
}

static void sender_heartbeat(sender *s) {
  json_t *body =
      json_pack("{s:s, s:o}", "agent", "chub-" CHUB_VERSION "-local", "agentId",
                s->agent_id[0] ? json_string(s->agent_id) : json_null());
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text)
    return;
  char path[128];
  snprintf(path, sizeof path, "/v1/agent/heartbeat/models/%s", s->model_id);
  http_result res;
  chub_code rc = http_call(s->http, "POST", path, text, NULL,
                           &sender_policy_heartbeat, &res);
  free(text);
  if (rc == CHUB_OK) {
    const char *id = json_string_value(json_object_get(res.data, "agentId"));
    if (id && strlen(id) < sizeof s->agent_id)
      snprintf(s->agent_id, sizeof s->agent_id, "%s", id);
    if (s->heartbeat_failing)
      chub_log(CHUB_LOG_INFO, "heartbeats to the hub work again");
    s->heartbeat_failing = false;
  } else if (rc != CHUB_ETIMEDOUT && !s->heartbeat_failing) {
    chub_log(CHUB_LOG_WARN, "heartbeat for model %s failed: %s; will retry",
             s->model_id, res.message);
    s->heartbeat_failing = true;
  }
  http_result_clear(&res);
}

static void sender_metrics(sender *s) {
  size_t before = 0, after = 0, ck;
  bool fin;
  spool_pending_counts(s->sp, &before, &ck, &fin);
  chub_code rc =
      sender_upload_metrics(s->http, s->sp, s->model_id, &sender_policy_upload);
  spool_pending_counts(s->sp, &after, &ck, &fin);
  if (before > after)
    s->acked_since_compact += before - after;
  if (rc == CHUB_OK && s->metrics_failing)
    chub_log(CHUB_LOG_INFO, "metrics uploads to the hub work again");
  s->metrics_failing = rc != CHUB_OK;
}

/* Returns true when a checkpoint is left that was not sent only because
 * its file was being written (worth a retry soon, not at the next save). */
static bool sender_checkpoints(sender *s) {
  for (int i = 0; i < SENDER_CKPTS_PER_WAKE; i++) {
    spool_ckpt c;
    if (!spool_next_checkpoint(s->sp, &c))
      return false;
    unsigned long long newest = atomic_load(&s->newest_seq);
    if (!c.final && c.seq < newest) {
      spool_ack_checkpoint(s->sp, c.seq);
      spool_ckpt_clear(&c);
      s->acked_since_compact++;
      continue;
    }
    double queued_at = c.seq == newest
                           ? (double)atomic_load(&s->newest_queued_ms) / 1000.0
                           : 0;
    chub_code rc =
        sender_upload_checkpoint(s->http, s->sp, s->model_id, &c, queued_at,
                                 &sender_policy_upload, NULL, NULL);
    spool_ckpt_clear(&c);
    if (rc == CHUB_EIO)
      return true;
    if (rc != CHUB_OK)
      return false;
    s->acked_since_compact++;
  }
  return false;
}

static void sender_housekeeping(sender *s) {
  double now = chub_now();
  if (now - s->last_sync >= 1.0) {
    spool_sync(s->sp);
    s->last_sync = now;
  }
  if (s->acked_since_compact >= SENDER_COMPACT_AFTER) {
    spool_compact(s->sp);
    s->acked_since_compact = 0;
  }
}

static void sender_wait(sender *s, double until) {
  double secs = floor(until);
  struct timespec ts = {(time_t)secs, (long)((until - secs) * 1e9)};
  pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static void *sender_main(void *arg) {
  sender *s = arg;
  double next_heartbeat = chub_now();
  double ckpt_retry = 0; /* 0: no checkpoint waits for a retry */
  pthread_mutex_lock(&s->mu);
  for (;;) {
    double until = next_heartbeat;
    if (ckpt_retry > 0 && ckpt_retry < until)
      until = ckpt_retry;
    while (!s->stop && !atomic_load(&s->pending) && chub_now() < until)
      sender_wait(s, until);
    if (s->stop)
      break;
    unsigned cmds = atomic_exchange(&s->pending, 0u);
    pthread_mutex_unlock(&s->mu);
    double now = chub_now();
    if (ckpt_retry > 0 && now >= ckpt_retry)
      cmds |= SENDER_CHECKPOINT;
    if ((cmds & SENDER_HEARTBEAT) || now >= next_heartbeat) {
      sender_heartbeat(s);
      next_heartbeat = chub_now() + s->heartbeat_s;
    }
    if (cmds & SENDER_METRICS)
      sender_metrics(s);
    if (cmds & SENDER_CHECKPOINT)
      ckpt_retry = sender_checkpoints(s) ? chub_now() + SENDER_CKPT_RETRY_S : 0;
    sender_housekeeping(s);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  spool_sync(s->sp);
  return NULL;
}

sender *sender_start(const sender_config *cfg) {
  sender *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->http = http_client_new(cfg->api_root, cfg->api_key);
  s->model_id = strdup(cfg->model_id);
  s->sp = cfg->sp;
  s->heartbeat_s = cfg->heartbeat_s > 0.05 ? cfg->heartbeat_s : 0.05;
  s->last_sync = chub_now();
  /* Whatever a previous session left unacknowledged goes first; a fresh
   * run waits for the callbacks, so rate limits hold from the start. */
  if (cfg->backlog)
    atomic_store(&s->pending, SENDER_METRICS | SENDER_CHECKPOINT);
  atomic_init(&s->abort_ms, 0);
  atomic_init(&s->newest_seq, 0);
  atomic_init(&s->newest_queued_ms, 0);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&s->mu, NULL);
  if (!s->http || !s->model_id) {
    chub_log(CHUB_LOG_ERROR, "cannot start the sender: out of memory");
    goto fail;
  }
  http_client_set_abort(s->http, &s->abort_ms);
  int err = pthread_create(&s->thread, NULL, sender_main, s);
  if (err != 0) {
    chub_log(CHUB_LOG_ERROR, "cannot start the sender thread: %s",
             strerror(err));
    goto fail;
  }
  return s;
fail:
  http_client_free(s->http);
  free(s->model_id);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return NULL;
}

void sender_post(sender *s, unsigned commands) {
  /* Already pending and not yet taken: the thread will see it, and whoever
   * set it signals; the training thread skips the mutex entirely. */
  if ((atomic_fetch_or(&s->pending, commands) & commands) == commands)
    return;
  pthread_mutex_lock(&s->mu);
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

void sender_note_checkpoint(sender *s, unsigned long long seq,
                            double queued_at) {
  atomic_store(&s->newest_queued_ms, (long long)(queued_at * 1000.0));
  atomic_store(&s->newest_seq, seq);
}

void sender_stop(sender *s, double grace_s) {
  if (!s)
    return;
  atomic_store(&s->abort_ms, (long long)((chub_now() + grace_s) * 1000.0));
  pthread_mutex_lock(&s->mu);
  s->stop = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  http_client_free(s->http);
  free(s->model_id);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/*
 * sender.c - the one thread per session that sends: metrics, checkpoints
 * (through the upload engine, drain.c) and heartbeats.
 *
 * Why one long-lived thread and pending flags: the training thread must
 * never wait on the network, and a thread per request (the reference's way)
 * lets requests pile up without bound when the hub is slow. Here a callback
 * sets a bit under a mutex and signals; the thread takes the bits, drops
 * the mutex and does all network I/O unlocked. What to send always comes
 * from the spool, so a failed upload needs no queue of its own: the data
 * simply stays pending and goes with the next upload.
 *
 * The machine's load sampler (sysload.c) lives here too: made when the
 * sender starts, used by its thread alone, freed when it stops.
 */
#include "sender.h"

#include "drain.h"
#include "hot_path.h"
#include "internal.h"
#include "sysload.h"

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

/* Checkpoints looked at per wake-up, so a stream of failures cannot spin
 * the thread. */
enum { SENDER_CKPTS_PER_WAKE = 8 };
/* When a checkpoint could not be sent whole, try again this much later. */
#define SENDER_CKPT_RETRY_S 1.0

/* The request policies of hub-api.md: uploads get 3 retries within 30 s. */
static const http_policy sender_policy_upload = {3, 30.0, 30.0};
/* A heartbeat is one short attempt: the next one comes anyway, and a slow
 * hub must not hold the metrics behind it for long. */
static const http_policy sender_policy_heartbeat = {0, 10.0, 10.0};

struct sender {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Set by posters without the mutex when the bit is already there;
   * taken by the thread under the mutex. */
  _Atomic unsigned pending;
  bool stop; /* guarded by mu */
  _Atomic long long abort_ms;
  /* The newest checkpoint queued in this process: older epoch
   * checkpoints are superseded by it. */
  drain_newest newest;
  http_client *http;
  spool *sp;
  char *model_id;
  double heartbeat_s;
  /* Owned by the thread alone from here on. */
  char agent_id[128];
  double last_sync;
  drain_policy policy;
  drain_report report;
  bool metrics_failing;
  bool heartbeat_failing;
  sysload *load; /* NULL: heartbeats without the machine's load */
};

/* The heartbeat's body, with the machine's load when `with_load`. */
static char *sender_heartbeat_body(sender *s, bool with_load) {
  json_t *body =
      json_pack("{s:s, s:o}", "agent", "chub-" CHUB_VERSION "-local", "agentId",
                s->agent_id[0] ? json_string(s->agent_id) : json_null());
  if (body && with_load)
    json_object_set_new(body, "system", sysload_sample(s->load, chub_now()));
  char *text =
      body ? json_dumps(body, JSON_COMPACT | SYSLOAD_JSON_FLAGS) : NULL;
  json_decref(body);
  return text;
}

static chub_code sender_heartbeat_post(sender *s, bool with_load,
                                       http_result *res) {
  char *text = sender_heartbeat_body(s, with_load);
  if (!text) {
    memset(res, 0, sizeof *res);
    snprintf(res->message, sizeof res->message, "out of memory");
    return CHUB_ENOMEM;
  }
  char path[128];
  snprintf(path, sizeof path, "/v1/agent/heartbeat/models/%s", s->model_id);
  chub_code rc = http_call(s->http, "POST", path, text, NULL,
                           &sender_policy_heartbeat, res);
  free(text);
  return rc;
}

/* A hub that does not know the "system" extension and refuses unknown
 * fields answers 400: the heartbeat goes again without it, and when that
 * one passes the load is not sent again this session. */
static chub_code sender_heartbeat_plain(sender *s, http_result *res) {
  http_result plain;
  chub_code rc = sender_heartbeat_post(s, false, &plain);
  if (rc != CHUB_OK) {
    http_result_clear(&plain);
    return CHUB_EHTTP; /* the first answer stands */
  }
  chub_log(CHUB_LOG_INFO,
           "the hub refuses the machine's load in heartbeats (%s); "
           "heartbeats go without it",
           res->message);
  sysload_free(s->load);
  s->load = NULL;
  http_result_clear(res);
  *res = plain;
  return CHUB_OK;
}

static void sender_heartbeat(sender *s) {
  http_result res;
  chub_code rc = sender_heartbeat_post(s, s->load != NULL, &res);
  if (rc == CHUB_ENOMEM)
    return;
  if (rc == CHUB_EHTTP && res.status == 400 && s->load)
    rc = sender_heartbeat_plain(s, &res);
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
  chub_code rc =
      drain_metrics(s->http, s->sp, s->model_id, &s->policy, &s->report);
  if (rc == CHUB_OK && s->metrics_failing)
    chub_log(CHUB_LOG_INFO, "metrics uploads to the hub work again");
  s->metrics_failing = rc != CHUB_OK;
}

/* Returns true when a checkpoint is left that was not sent only because
 * its file was being written (worth a retry soon, not at the next save). */
static bool sender_checkpoints(sender *s) {
  drain_checkpoints(s->http, s->sp, s->model_id, &s->policy, &s->report);
  return s->report.busy;
}

static void sender_housekeeping(sender *s) {
  double now = chub_now();
  if (now - s->last_sync >= 1.0) {
    spool_sync(s->sp);
    s->last_sync = now;
  }
  drain_housekeeping(s->sp, &s->report);
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
  if (cfg->system_load)
    s->load = sysload_new(&(sysload_config){.disk_path = spool_dir(cfg->sp)},
                          chub_now());
  s->last_sync = chub_now();
  /* Whatever a previous session left unacknowledged goes first; a fresh
   * run waits for the callbacks, so rate limits hold from the start. */
  if (cfg->backlog)
    atomic_store(&s->pending, SENDER_METRICS | SENDER_CHECKPOINT);
  atomic_init(&s->abort_ms, 0);
  drain_newest_init(&s->newest);
  s->policy = (drain_policy){.http = &sender_policy_upload,
                             .newest = &s->newest,
                             .max_checkpoints = SENDER_CKPTS_PER_WAKE,
                             .busy_tries = 1};
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
  sysload_free(s->load);
  free(s->model_id);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return NULL;
}

CHUB_HOT void sender_post(sender *s, unsigned commands) {
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
  drain_newest_set(&s->newest, seq, queued_at);
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
  sysload_free(s->load);
  free(s->model_id);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

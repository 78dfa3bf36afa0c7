/*
 * events.c - anonymous usage events ("train", "val", "predict", "export").
 *
 * Like the reference client's Events: a queue of at most 25 events, each
 * with at most 25 flat params (nulls dropped), sent as one
 * `POST {api_root}/v1/events` at most every 30 s, only with setting sync on,
 * on rank -1 or 0, and never under tests. Unlike the reference, the caller
 * never sends: chub_event_record() only appends under a mutex and wakes one
 * background thread, started on the first event, which does every send. A
 * failed send is dropped silently, because usage events must never disturb a
 * training run. At exit, what is queued gets one last try capped at about a
 * second; the transfer is aborted when the cap passes.
 *
 * The queue and the thread are process-wide by nature (the public call has
 * no handle), so they live in one clearly named place, `chub_events_state`.
 */
#include "http.h"
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUB_EVENTS_MAX 25        /* events per queue, and per request */
#define CHUB_EVENTS_MAX_PARAMS 25 /* params per event */
#define CHUB_EVENTS_INTERVAL 30.0 /* s between sends */
#define CHUB_EVENTS_EXIT_CAP 1.0  /* s the exit flush may take */

/* The process's usage-event queue and its sender thread. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake;   /* new event, flush, or exit */
  pthread_cond_t done;   /* a send finished or the thread ended */
  json_t *queue;         /* array of {"name", "params"} */
  bool loaded;           /* settings read into the fields below */
  bool allowed;          /* sync on, rank -1/0, not under tests */
  char url[600];         /* {api_root}/v1/events */
  char client_id[65];    /* settings uuid */
  bool ignore_test_gate; /* set by chub_events_test_reset() */
  double interval;
  double last_send; /* chub_now() of the last send; -INFINITY before */
  bool flush_now;   /* send what is queued without waiting the interval */
  bool sending;
  bool started, stopping, finished;
  double exit_deadline;
  pthread_t thread;
} chub_events_state = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .interval = CHUB_EVENTS_INTERVAL,
    .last_send = -INFINITY,
};

static pthread_once_t chub_events_once = PTHREAD_ONCE_INIT;

/* The condition variables wait on the monotonic clock, as chub_now() does,
 * so a clock step cannot stall or rush the sender. */
static void chub_events_make_conds(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&chub_events_state.wake, &attr);
  pthread_cond_init(&chub_events_state.done, &attr);
  pthread_condattr_destroy(&attr);
}

/* fork(): the mutex is held across it so the child never inherits it
 * locked mid-change. The child has no sender thread, so it starts afresh
 * (its own thread on its own first event) and never re-sends what the
 * parent queued. */
static void chub_events_before_fork(void) {
  pthread_mutex_lock(&chub_events_state.mu);
}

static void chub_events_after_fork_parent(void) {
  pthread_mutex_unlock(&chub_events_state.mu);
}

static void chub_events_after_fork_child(void) {
  json_array_clear(chub_events_state.queue);
  chub_events_state.started = false;
  chub_events_state.finished = false;
  chub_events_state.sending = false;
  chub_events_state.flush_now = false;
  chub_events_make_conds();
  pthread_mutex_unlock(&chub_events_state.mu);
}

static void chub_events_init_conds(void) {
  chub_events_make_conds();
  pthread_atfork(chub_events_before_fork, chub_events_after_fork_parent,
                 chub_events_after_fork_child);
}

static void chub_events_wait_until(pthread_cond_t *cv, double deadline) {
  double frac = deadline - floor(deadline);
  struct timespec ts = {.tv_sec = (time_t)floor(deadline),
                        .tv_nsec = (long)(frac * 1e9)};
  pthread_cond_timedwait(cv, &chub_events_state.mu, &ts);
}

/* The gates; `ignore_tests` is set only by chub_events_test_reset(). */
static bool chub_events_gate(const chub_settings *s, bool ignore_tests) {
  int rank = chub_rank();
  return s && s->sync && (rank == -1 || rank == 0) &&
         (ignore_tests || !chub_under_tests());
}

bool chub_events_allowed(const chub_settings *s) {
  return chub_events_gate(s, false);
}

/* ------------------------------------------------------------ sending */

/* Stops a send still running when the exit cap has passed. */
static bool chub_events_past_cap(void) {
  pthread_mutex_lock(&chub_events_state.mu);
  bool abort_now = chub_events_state.stopping &&
                   chub_now() > chub_events_state.exit_deadline;
  pthread_mutex_unlock(&chub_events_state.mu);
  return abort_now;
}

/* The events budget: one short try, never past the exit cap. */
static const http_once_policy chub_events_policy = {3000L, 5000L,
                                                    chub_events_past_cap};

static void chub_events_send(const char *url, const char *client_id,
                             json_t *events) {
  json_t *body =
      json_pack("{s:s, s:O}", "client_id", client_id, "events", events);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text)
    return;
  http_answer a;
  chub_code rc = http_once("POST", url, NULL, text, &chub_events_policy, &a);
  if (rc != CHUB_OK || a.status / 100 != 2) /* silent by design */
    chub_log(CHUB_LOG_DEBUG, "usage events not sent to %s: %s", url,
             rc != CHUB_OK ? a.error : "non-2xx answer");
  http_answer_free(&a);
  free(text);
}

/* The sender thread: waits for events, for the interval, then sends the
 * whole queue in one request; at exit, sends once more and ends. */
static void *chub_events_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&chub_events_state.mu);
  for (;;) {
    size_t n = json_array_size(chub_events_state.queue);
    if (n == 0) {
      chub_events_state.flush_now = false;
      pthread_cond_broadcast(&chub_events_state.done);
      if (chub_events_state.stopping)
        break;
      pthread_cond_wait(&chub_events_state.wake, &chub_events_state.mu);
      continue;
    }
    double due = chub_events_state.last_send + chub_events_state.interval;
    if (!chub_events_state.stopping && !chub_events_state.flush_now &&
        chub_now() < due) {
      chub_events_wait_until(&chub_events_state.wake, due);
      continue;
    }
    json_t *batch = chub_events_state.queue;
    chub_events_state.queue = json_array();
    chub_events_state.last_send = chub_now();
    chub_events_state.sending = true;
    char url[sizeof chub_events_state.url];
    char client_id[sizeof chub_events_state.client_id];
    memcpy(url, chub_events_state.url, sizeof url);
    memcpy(client_id, chub_events_state.client_id, sizeof client_id);
    pthread_mutex_unlock(&chub_events_state.mu);

    chub_events_send(url, client_id, batch);
    json_decref(batch);

    pthread_mutex_lock(&chub_events_state.mu);
    chub_events_state.sending = false;
    if (chub_events_state.stopping &&
        chub_now() > chub_events_state.exit_deadline)
      json_array_clear(chub_events_state.queue); /* the exit cap is spent */
  }
  chub_events_state.finished = true;
  pthread_cond_broadcast(&chub_events_state.done);
  pthread_mutex_unlock(&chub_events_state.mu);
  return NULL;
}

/* At exit: one last send of what is queued, capped at about a second. */
static void chub_events_at_exit(void) {
  pthread_mutex_lock(&chub_events_state.mu);
  if (!chub_events_state.started) {
    pthread_mutex_unlock(&chub_events_state.mu);
    return;
  }
  chub_events_state.stopping = true;
  chub_events_state.exit_deadline = chub_now() + CHUB_EVENTS_EXIT_CAP;
  pthread_cond_broadcast(&chub_events_state.wake);
  double give_up = chub_events_state.exit_deadline + 0.5;
  while (!chub_events_state.finished && chub_now() < give_up)
    chub_events_wait_until(&chub_events_state.done, give_up);
  bool finished = chub_events_state.finished;
  chub_events_state.started = false;
  json_decref(chub_events_state.queue);
  chub_events_state.queue = NULL;
  pthread_mutex_unlock(&chub_events_state.mu);
  if (finished)
    pthread_join(chub_events_state.thread, NULL);
  else
    pthread_detach(chub_events_state.thread); /* stuck in DNS; let it be */
}

/* Starts the thread on first use; called with the mutex held. */
static void chub_events_start(void) {
  if (chub_events_state.started || chub_events_state.stopping)
    return;
  static bool at_exit_registered;
  if (pthread_create(&chub_events_state.thread, NULL, chub_events_main, NULL) !=
      0)
    return;
  chub_events_state.started = true;
  chub_events_state.finished = false;
  if (!at_exit_registered)
    at_exit_registered = atexit(chub_events_at_exit) == 0;
}

/* ------------------------------------------------------------ queue */

/* Reads the settings once per process (or after a test reset), outside the
 * mutex, since loading may log through a user's sink. */
static void chub_events_load_settings(void) {
  pthread_mutex_lock(&chub_events_state.mu);
  bool loaded = chub_events_state.loaded;
  pthread_mutex_unlock(&chub_events_state.mu);
  if (loaded)
    return;
  chub_settings s;
  bool ok = chub_settings_load(&s) == CHUB_OK;
  bool allowed = false;
  if (ok) {
    pthread_mutex_lock(&chub_events_state.mu);
    bool ignore = chub_events_state.ignore_test_gate;
    pthread_mutex_unlock(&chub_events_state.mu);
    allowed = chub_events_gate(&s, ignore);
  }
  pthread_mutex_lock(&chub_events_state.mu);
  chub_events_state.loaded = true;
  chub_events_state.allowed = allowed;
  if (ok) {
    snprintf(chub_events_state.url, sizeof chub_events_state.url,
             "%s/v1/events", s.api_root);
    snprintf(chub_events_state.client_id, sizeof chub_events_state.client_id,
             "%s", s.uuid);
  }
  pthread_mutex_unlock(&chub_events_state.mu);
}

void chub_events_push(const char *name, struct json_t *params) {
  pthread_once(&chub_events_once, chub_events_init_conds);
  if (!name || !params || !json_is_object(params)) {
    json_decref(params);
    return;
  }
  /* Drop nulls, then keep the first 25 params (insertion order). */
  json_t *kept = json_object();
  const char *key;
  json_t *v;
  json_object_foreach(params, key, v) {
    if (json_is_null(v) || json_object_size(kept) >= CHUB_EVENTS_MAX_PARAMS)
      continue;
    json_object_set(kept, key, v);
  }
  json_decref(params);
  json_t *event = json_pack("{s:s, s:o}", "name", name, "params", kept);
  if (!event)
    return;

  chub_events_load_settings();
  pthread_mutex_lock(&chub_events_state.mu);
  if (!chub_events_state.allowed || chub_events_state.stopping) {
    pthread_mutex_unlock(&chub_events_state.mu);
    json_decref(event);
    return;
  }
  if (!chub_events_state.queue)
    chub_events_state.queue = json_array();
  /* The queue takes the only reference, so the event is freed by the
   * thread that sends it and never by two threads in turn. */
  if (json_array_size(chub_events_state.queue) < CHUB_EVENTS_MAX)
    json_array_append_new(chub_events_state.queue, event);
  else
    json_decref(event);
  chub_events_start();
  pthread_cond_broadcast(&chub_events_state.wake);
  pthread_mutex_unlock(&chub_events_state.mu);
}

/* The last path component without its extension ("data/coco8.yaml" ->
 * "coco8"), into buf; NULL for NULL or empty. */
static const char *chub_events_stem(const char *path, bool strip_ext, char *buf,
                                    size_t len) {
  if (!path || !*path)
    return NULL;
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  size_t start = n;
  while (start > 0 && path[start - 1] != '/')
    start--;
  snprintf(buf, len, "%.*s", (int)(n - start), path + start);
  char *dot = strip_ext ? strrchr(buf, '.') : NULL;
  if (dot && dot != buf)
    *dot = '\0';
  return buf;
}

/* A JSON string for s, or null (dropped later) when s is NULL or empty. */
static json_t *chub_events_str(const char *s) {
  return s && *s ? json_string(s) : json_null();
}

/* A JSON integer for a positive n, else null: 0 means "not given". */
static json_t *chub_events_int(long long n) {
  return n > 0 ? json_integer(n) : json_null();
}

void chub_event_record(const char *name, const chub_args *args,
                       const chub_trainer *trainer) {
  if (!name || !*name)
    return;
  static const chub_args no_args;
  if (!args)
    args = trainer ? &trainer->args : &no_args;
  char model[256], data[256];
  json_t *p = json_object();
  json_object_set_new(p, "task", chub_events_str(args->task));
  json_object_set_new(p, "model",
                      chub_events_str(chub_events_stem(args->model, false,
                                                       model, sizeof model)));
  json_object_set_new(p, "mode",
                      chub_events_str(args->mode ? args->mode : name));
  json_object_set_new(p, "device", chub_events_str(args->device));
  json_object_set_new(p, "version", json_string(CHUB_VERSION));
  if (strcmp(name, "export") == 0)
    json_object_set_new(p, "format", chub_events_str(args->format));
  if (strcmp(name, "train") == 0) {
    json_object_set_new(
        p, "data",
        chub_events_str(chub_events_stem(args->data, true, data, sizeof data)));
    json_object_set_new(p, "imgsz", chub_events_int(args->imgsz));
    json_object_set_new(p, "epochs",
                        trainer ? json_integer(trainer->epoch)
                                : chub_events_int(args->epochs));
    json_object_set_new(p, "batch", chub_events_int(args->batch));
    json_object_set_new(
        p, "hours", trainer ? json_real(trainer->train_hours) : json_null());
    json_object_set_new(p, "best_fitness",
                        trainer ? json_real(trainer->best_fitness)
                                : json_null());
  }
  chub_events_push(name, p);
}

/* ------------------------------------------------------------ tests */

void chub_events_test_reset(double interval_s) {
  pthread_once(&chub_events_once, chub_events_init_conds);
  pthread_mutex_lock(&chub_events_state.mu);
  chub_events_state.ignore_test_gate = true;
  chub_events_state.loaded = false;
  chub_events_state.interval = interval_s;
  chub_events_state.last_send = chub_now();
  json_array_clear(chub_events_state.queue);
  pthread_cond_broadcast(&chub_events_state.wake);
  pthread_mutex_unlock(&chub_events_state.mu);
}

size_t chub_events_pending(void) {
  pthread_mutex_lock(&chub_events_state.mu);
  size_t n = json_array_size(chub_events_state.queue);
  pthread_mutex_unlock(&chub_events_state.mu);
  return n;
}

bool chub_events_flush(double timeout_s) {
  pthread_once(&chub_events_once, chub_events_init_conds);
  double deadline = chub_now() + timeout_s;
  pthread_mutex_lock(&chub_events_state.mu);
  chub_events_state.flush_now = true;
  pthread_cond_broadcast(&chub_events_state.wake);
  while ((json_array_size(chub_events_state.queue) > 0 ||
          chub_events_state.sending) &&
         chub_events_state.started && chub_now() < deadline)
    chub_events_wait_until(&chub_events_state.done, deadline);
  bool empty = json_array_size(chub_events_state.queue) == 0 &&
               !chub_events_state.sending;
  chub_events_state.flush_now = false;
  pthread_mutex_unlock(&chub_events_state.mu);
  return empty;
}

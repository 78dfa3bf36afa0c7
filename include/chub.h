/*
 * chub.h - live run tracking for training loops written in C.
 *
 * A trainer fills in a chub_trainer, registers the HUB callbacks with
 * chub_add_integration_callbacks(), and runs the lifecycle events at the
 * points its loop reaches them. chub then creates a model on a hub (chubd or
 * Ultralytics HUB), streams each epoch's metrics, uploads checkpoints and the
 * final weights, keeps a heartbeat and sends anonymous usage events.
 *
 * Promises:
 *  - no callback but on_train_end waits on the network; work goes to one
 *    sender thread per session and the callback returns in microseconds;
 *  - every epoch's metrics are written to a local spool before the callback
 *    returns and leave it only once the hub acknowledged them;
 *  - checkpoints stream from disk with their SHA-256; memory stays flat;
 *  - with no key, no network or mode=offline, everything spools and
 *    `chub sync` uploads it later.
 *
 * Errors: every fallible function returns a chub_code; chub_strerror() turns
 * it into words. Log lines go through chub_set_log() (stderr by default).
 *
 * Thread-safety: unless a function says otherwise, a handle must be used by
 * one thread at a time. The library's own sender thread is internal.
 */
#ifndef CHUB_H
#define CHUB_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHUB_VERSION "0.1.0"

/* Marks the library's API. libchub is built with hidden visibility, so
 * only what this header declares is exported from libchub.so: a trainer's
 * own functions never collide with chub's internals. */
#if defined(CHUB_BUILDING_LIBRARY) && defined(__GNUC__)
#define CHUB_EXTERN __attribute__((visibility("default")))
#else
#define CHUB_EXTERN
#endif

/* ---------------------------------------------------------------- errors */

typedef enum chub_code {
  CHUB_OK = 0,
  CHUB_EINVAL,    /* an argument or an input is not valid */
  CHUB_ENOMEM,    /* out of memory */
  CHUB_EIO,       /* a local file could not be read or written */
  CHUB_ENET,      /* the hub gave no answer (refused, reset, timeout, DNS) */
  CHUB_EAUTH,     /* the hub rejected the API key (401) */
  CHUB_ENOTFOUND, /* the hub does not know the model (404) */
  CHUB_ECONFLICT, /* the hub refused a conflicting change (409) */
  CHUB_EHTTP,     /* the hub answered another non-2xx status */
  CHUB_EPROTO,    /* the hub's answer was not what the protocol says */
  CHUB_EDISABLED, /* the hub is off: setting hub=false, no key, rank > 0 */
  CHUB_ETIMEDOUT, /* a deadline passed; the work stays spooled */
  CHUB_EFULL,     /* a queue or the spool reached its configured limit */
  CHUB_ECORRUPT,  /* stored local data failed its checksum or parse */
  CHUB_EOFFLINE   /* the session runs offline; data is spooled for sync */
} chub_code;

/* Returns a static, human-readable description of `code`. Never NULL. */
CHUB_EXTERN const char *chub_strerror(chub_code code);

/* ---------------------------------------------------------------- logging */

typedef enum chub_log_level {
  CHUB_LOG_DEBUG = 0,
  CHUB_LOG_INFO,
  CHUB_LOG_WARN,
  CHUB_LOG_ERROR
} chub_log_level;

/* Receives one finished log line (no trailing newline). Called from the
 * thread that logs, which may be chub's sender thread. */
typedef void (*chub_log_fn)(chub_log_level level, const char *line, void *user);

/* Routes chub's log lines to `fn` (NULL restores the default: stderr, each
 * line prefixed "chub: "). Lines below `min_level` are dropped. Thread-safe;
 * call it before opening sessions. */
CHUB_EXTERN void chub_set_log(chub_log_fn fn, void *user,
                              chub_log_level min_level);

/* ---------------------------------------------------------------- settings */

/* A snapshot of the settings file merged with the environment. The file is
 * $CHUB_CONFIG_DIR/settings.json, else $XDG_CONFIG_HOME/chub/settings.json,
 * else ~/.config/chub/settings.json; created with defaults (mode 0600) on
 * first use; a corrupt or wrongly typed file is reset with a warning that
 * names it. Environment overrides: CHUB_API_KEY, CHUB_API_ROOT,
 * CHUB_WEB_ROOT, CHUB_HUB, CHUB_SYNC, CHUB_MODE, CHUB_RUNS_DIR,
 * CHUB_SYSTEM_METRICS. */
typedef struct chub_settings {
  char uuid[65];         /* anonymous client id (hex SHA-256 of a machine id) */
  bool sync;             /* send anonymous usage events */
  bool hub;              /* add the HUB callbacks */
  char api_key[128];     /* empty when logged out */
  char api_root[512];    /* e.g. http://127.0.0.1:8080 */
  char web_root[512];    /* where {web_root}/models/{id} is shown */
  char mode[16];         /* "online" or "offline" */
  bool system_metrics;   /* heartbeats carry the machine's load (true); in
                            what was padding, so the layout is unchanged */
  double rate_metrics;   /* s between metrics uploads (3) */
  double rate_ckpt;      /* s between checkpoint uploads (900) */
  double rate_heartbeat; /* s between heartbeats (300) */
  double final_deadline; /* s on_train_end may wait for the final sync (3600) */
  long long spool_max_bytes; /* per-run spool limit (256 MiB) */
  char runs_dir[512];        /* where run spools live */
} chub_settings;

/* Fills `out` from the settings file and the environment, creating the file
 * if needed. Returns CHUB_OK even when a corrupt file was reset (a warning is
 * logged); CHUB_EIO only when no settings can be produced at all. */
CHUB_EXTERN chub_code chub_settings_load(chub_settings *out);

/* Sets one key in the settings file after checking its type and range.
 * On CHUB_EINVAL, `err` (if not NULL) holds a message naming the problem. */
CHUB_EXTERN chub_code chub_settings_set(const char *key, const char *value,
                                        char *err, size_t errlen);

/* Rewrites the settings file with defaults (a new uuid is kept stable). */
CHUB_EXTERN chub_code chub_settings_reset(void);

/* Writes the settings file's path into `buf`. */
CHUB_EXTERN chub_code chub_settings_path(char *buf, size_t len);

/* The process's distributed rank: RANK, else OMPI_COMM_WORLD_RANK, else
 * PMI_RANK, else SLURM_PROCID; -1 when none is set. */
CHUB_EXTERN int chub_rank(void);

/* ---------------------------------------------------------------- structs */

typedef struct chub_session chub_session;

/* The run's arguments, as the trainer was invoked. Strings are borrowed. */
typedef struct chub_args {
  const char *model; /* local model file (creates a model) or hub URL */
  const char *data;  /* dataset name or path */
  int epochs;
  int batch;
  int imgsz;
  int patience;
  const char *device; /* "cpu", "cuda:0", ... */
  const char *cache;  /* "ram", "disk" or NULL */
  const char *task;   /* "classify", "detect", ... */
  const char *mode;   /* "train", "val", "predict", "export" */
  const char *format; /* export format, for the exporter */
} chub_args;

/* One named number. Names and values are borrowed. */
typedef struct chub_metric {
  const char *name;
  double value;
} chub_metric;

/* What a trainer reports. Fill the fields; chub reads them in callbacks.
 * Arrays are borrowed and must stay valid during each callback. */
typedef struct chub_trainer {
  chub_args args;
  int epoch;                /* current epoch, 0-based */
  int start_epoch;          /* first epoch of this run (resume) */
  const chub_metric *tloss; /* train loss items, names without "train/" */
  size_t n_tloss;
  const chub_metric *metrics; /* e.g. "metrics/accuracy_top1", "val/loss" */
  size_t n_metrics;
  double fitness;
  double best_fitness;
  const char *last;           /* path of the last weights */
  const char *best;           /* path of the best weights */
  long long model_parameters; /* model info, sent with epoch 0 */
  double model_gflops;
  double model_speed_ms;     /* inference time per image, ms */
  double train_hours;        /* wall time trained so far, for events */
  chub_session *hub_session; /* set by on_pretrain_routine_start */
} chub_trainer;

typedef struct chub_validator {
  chub_args args;
  bool training; /* true when run by the trainer (no usage event) */
} chub_validator;

typedef struct chub_predictor {
  chub_args args;
} chub_predictor;

typedef struct chub_exporter {
  chub_args args; /* args.format is the export format */
} chub_exporter;

/* ---------------------------------------------------------------- callbacks */

typedef enum chub_event {
  /* trainer: the subject is a chub_trainer * */
  CHUB_ON_PRETRAIN_ROUTINE_START = 0,
  CHUB_ON_PRETRAIN_ROUTINE_END,
  CHUB_ON_TRAIN_START,
  CHUB_ON_TRAIN_EPOCH_START,
  CHUB_ON_TRAIN_BATCH_START,
  CHUB_OPTIMIZER_STEP,
  CHUB_ON_BEFORE_ZERO_GRAD,
  CHUB_ON_TRAIN_BATCH_END,
  CHUB_ON_TRAIN_EPOCH_END,
  CHUB_ON_FIT_EPOCH_END,
  CHUB_ON_MODEL_SAVE,
  CHUB_ON_TRAIN_END,
  CHUB_ON_PARAMS_UPDATE,
  CHUB_TEARDOWN,
  /* validator: a chub_validator * */
  CHUB_ON_VAL_START,
  CHUB_ON_VAL_BATCH_START,
  CHUB_ON_VAL_BATCH_END,
  CHUB_ON_VAL_END,
  /* predictor: a chub_predictor * */
  CHUB_ON_PREDICT_START,
  CHUB_ON_PREDICT_BATCH_START,
  CHUB_ON_PREDICT_POSTPROCESS_END,
  CHUB_ON_PREDICT_BATCH_END,
  CHUB_ON_PREDICT_END,
  /* exporter: a chub_exporter * */
  CHUB_ON_EXPORT_START,
  CHUB_ON_EXPORT_END,
  CHUB_EVENT_COUNT
} chub_event;

/* A callback receives the event's subject (see chub_event) and the user
 * data it was added with. */
typedef void (*chub_callback_fn)(void *subject, void *user);

typedef struct chub_callbacks chub_callbacks;

/* The event's name as in Ultralytics ("on_fit_epoch_end"), or NULL. */
CHUB_EXTERN const char *chub_event_name(chub_event event);

/* The event named `name`, or CHUB_EVENT_COUNT when there is none. */
CHUB_EXTERN chub_event chub_event_from_name(const char *name);

/* A new, empty registry; NULL when out of memory. Free it with
 * chub_callbacks_free(). */
CHUB_EXTERN chub_callbacks *chub_callbacks_new(void);

/* Frees the registry. It does not close sessions created by callbacks. */
CHUB_EXTERN void chub_callbacks_free(chub_callbacks *cb);

/* Appends (fn, user) to the event's list. Adding a pair that is already
 * there is a no-op returning CHUB_OK. */
CHUB_EXTERN chub_code chub_callbacks_add(chub_callbacks *cb, chub_event event,
                                         chub_callback_fn fn, void *user);

/* Removes (fn, user) from the event's list; CHUB_EINVAL if absent. */
CHUB_EXTERN chub_code chub_callbacks_remove(chub_callbacks *cb,
                                            chub_event event,
                                            chub_callback_fn fn, void *user);

/* How many callbacks the event holds. */
CHUB_EXTERN size_t chub_callbacks_count(const chub_callbacks *cb,
                                        chub_event event);

/* Calls the event's callbacks in the order they were added. */
CHUB_EXTERN void chub_callbacks_run(const chub_callbacks *cb, chub_event event,
                                    void *subject);

/* Adds the nine HUB callbacks (pretrain routine start/end, fit epoch end,
 * model save, train end, train start, val start, predict start, export
 * start) when the setting `hub` is true; otherwise adds nothing and returns
 * CHUB_EDISABLED. Reads the settings; does not touch the network. */
CHUB_EXTERN chub_code chub_add_integration_callbacks(chub_callbacks *cb);

/* ---------------------------------------------------------------- session */

/* Opens a session for `model`: a model URL ({web root}/models/{id}, with an
 * optional ?api_key=KEY) loads that model; a local model file name creates a
 * new model from `args`. Starts the sender thread and heartbeats and logs
 * "View model at {web root}/models/{id}". With mode=offline, no API key or
 * no answer from the hub, the session still opens with a local run id
 * (*out set, CHUB_EOFFLINE returned) and everything spools for `chub sync`.
 * Any other failure leaves *out NULL and logs one line saying why.
 * Blocks for the create/load request (bounded by a few seconds). */
CHUB_EXTERN chub_code chub_session_open(const char *model,
                                        const chub_args *args,
                                        chub_session **out);

/* Stops heartbeats and the sender, leaving whatever was not acknowledged in
 * the spool for the next session or `chub sync`. Waits at most 2 s for an
 * in-flight request. NULL is a no-op. */
CHUB_EXTERN void chub_session_close(chub_session *s);

/* The hub's model id, or NULL while offline. Owned by the session. */
CHUB_EXTERN const char *chub_session_model_id(const chub_session *s);

/* {web root}/models/{id}, or NULL while offline. Owned by the session. */
CHUB_EXTERN const char *chub_session_model_url(const chub_session *s);

/* The local run id (the spool's directory name). Owned by the session. */
CHUB_EXTERN const char *chub_session_run_id(const chub_session *s);

/* The download URL of the model's last weights when it can be resumed, else
 * NULL. Owned by the session. */
CHUB_EXTERN const char *chub_session_resume_url(const chub_session *s);

/* The train args the hub holds for a loaded model (strings owned by the
 * session), or NULL for a model this session created. */
CHUB_EXTERN const chub_args *chub_session_train_args(const chub_session *s);

/* Spools epoch `epoch`'s metrics, `json` being a JSON object of
 * {name: number}. Does not send; returns in microseconds. */
CHUB_EXTERN chub_code chub_session_queue_metrics(chub_session *s, int epoch,
                                                 const char *json);

/* Asks the sender to upload every spooled, unacknowledged epoch. Returns
 * at once. */
CHUB_EXTERN chub_code chub_session_flush_metrics(chub_session *s);

/* Queues an upload of the checkpoint at `path` as type "epoch". The sender
 * streams it from disk with its SHA-256. Returns at once. */
CHUB_EXTERN chub_code chub_session_queue_checkpoint(chub_session *s, int epoch,
                                                    const char *path,
                                                    bool is_best);

/* Uploads every pending metric, then `path` as the final model (type
 * "final", with `map`), on the caller's thread, with a progress bar on a
 * terminal. Waits at most `deadline_s` seconds; on CHUB_ETIMEDOUT or
 * CHUB_EOFFLINE everything stays spooled for `chub sync`. */
CHUB_EXTERN chub_code chub_session_upload_final(chub_session *s, int epoch,
                                                const char *path, double map,
                                                double deadline_s);

/* ---------------------------------------------------------------- sync */

/* Uploads a spooled run (by id, or a directory path) to the hub in the
 * settings: creates the model if it was never created, then metrics,
 * checkpoints and the final weights. Safe to run twice or to interrupt.
 * Blocks. */
CHUB_EXTERN chub_code chub_sync_run(const char *run);

/* Writes a one-line-per-run summary of local runs (id, model, what is still
 * pending) to `fp` (a FILE *). */
CHUB_EXTERN chub_code chub_list_runs(void *fp);

/* ---------------------------------------------------------------- events */

/* Records a usage event (name "train", "val", "predict" or "export") with
 * params drawn from `args`. Queued (at most 25) and sent at most every 30 s
 * to {api root}/v1/events on a background thread, only with setting sync on
 * rank -1/0 and not under tests (CHUB_TESTING set). Never blocks; failures
 * are silent. Thread-safe. */
CHUB_EXTERN void chub_event_record(const char *name, const chub_args *args,
                                   const chub_trainer *trainer);

#ifdef __cplusplus
}
#endif

#endif /* CHUB_H */

/*
 * session.h - what the HUB callbacks, sync and the tests see of a session.
 *
 * struct chub_session is private to session.c. The HUB callbacks make one
 * call per event (session_on_*), on the trainer's thread; the sender
 * thread sees only the spool (thread-safe) and its own copy of the model
 * id.
 */
#ifndef CHUB_SESSION_H
#define CHUB_SESSION_H

#include "chub.h"
#include "sender.h"
#include "spool.h"

#include <jansson.h>

/* on_pretrain_routine_end: the rate limits count from here. */
void session_on_train_start(chub_session *s);

/* on_fit_epoch_end: spools the epoch's entries (the flat map; those the
 * hub could not take are left out and warned about once) and asks for an
 * upload when the metrics rate limit allows. */
void session_on_epoch_end(chub_session *s, int epoch, const flat_item *items,
                          size_t n);

/* on_model_save: queues checkpoint `path` when the checkpoint rate limit
 * allows. */
void session_on_model_save(chub_session *s, int epoch, const char *path,
                           bool is_best);

/* on_train_end: the final sync of `best` (mAP `map`) within the settings'
 * deadline, says how it went, and closes the session. */
void session_on_train_end(chub_session *s, int epoch, const char *best,
                          double map);

/* For tests: the session's spool, and its sender (NULL while offline). */
spool *session_spool(const chub_session *s);
sender *session_sender(const chub_session *s);

typedef enum session_ident_kind {
  SESSION_IDENT_INVALID = 0,
  SESSION_IDENT_URL,
  SESSION_IDENT_FILE
} session_ident_kind;

/* A parsed model identifier: a hub model URL or a local model file. */
typedef struct session_ident {
  session_ident_kind kind;
  char model_id[21]; /* URL: the model id */
  char api_key[128]; /* URL: ?api_key=, else empty */
  char base[256];    /* FILE: base name, e.g. "yolo11n.pt" */
  char stem[256];    /* FILE: base name without extension, e.g. "yolo11n" */
  bool weights;      /* FILE: holds weights (parent.name is sent) */
} session_ident;

/* Parses `text`; CHUB_EINVAL (kind INVALID) for anything else. */
chub_code session_parse_identifier(const char *text, session_ident *out);

/* The create payload of hub-api.md for a FILE identifier, as compact JSON
 * (malloc'd), or NULL when out of memory. */
char *session_create_payload(const chub_args *args, const session_ident *id);

/* A new run id "YYYYmmdd-HHMMSS-xxxx" (UTC, random suffix). */
void session_new_run_id(char out[32]);

/* Records {runs_dir}/by-model/{model_id} -> run_id, so a later session or
 * `chub sync` finds the run of a model. */
void session_index_run(const char *runs_dir, const char *model_id,
                       const char *run_id);

/* hub_callbacks.c: the epoch's flat map of `t` as JSON into `buf` (train
 * loss items as "train/NAME", then the metrics, at epoch 0 the model info).
 * Returns the length needed without the NUL; call again with a bigger
 * buffer when it is >= cap. Non-finite values and names that are not
 * UTF-8 are left out (*dropped). */
size_t hub_callbacks_metrics_json(const chub_trainer *t, char *buf, size_t cap,
                                  bool *dropped);

#endif

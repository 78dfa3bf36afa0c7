/*
 * validate.h - checks every piece of client input chubd accepts: JSON
 * bodies per endpoint, booleans in Python's and JSON's spellings, the
 * fields of a weights upload, query numbers and Range headers.
 *
 * All pure functions over strings and jansson values, so that the fuzz
 * target reaches each of them directly. On a failure they write a message
 * for a person into err that names the field ("metrics.3: field \"loss\"
 * is not a number") and return -1.
 */
#ifndef CHUBD_VALIDATE_H
#define CHUBD_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

#define VALIDATE_ERR 256

/* Parses len bytes as a JSON object. Malformed JSON names the line and
 * column; anything but an object names what it is. */
int validate_json_object(const char *buf, size_t len, json_t **out,
                         char err[VALIDATE_ERR]);

/* True/False/true/false/1/0 into *out. */
int validate_bool(const char *s, int *out);

/* A non-negative decimal integer (no sign, no spaces) up to max. */
int validate_uint(const char *s, long long max, long long *out);

/* POST /v1/models and PATCH /v1/models/{id}: known fields, right types. */
int validate_model_create(json_t *body, char err[VALIDATE_ERR]);
int validate_model_patch(json_t *body, char err[VALIDATE_ERR]);
/* POST (create set: meta.name required) and PATCH /v1/datasets bodies. */
int validate_dataset_body(json_t *body, int create, char err[VALIDATE_ERR]);

/* An epoch number as a metrics upload names it: 0 to 1e9, in decimal
 * without leading zeros. 0 with *epoch, or -1. */
int validate_epoch_key(const char *key, long long *epoch);

/* POST /v1/models/{id} {"type": "metrics", "metrics": {...}}. On success
 * *out holds *n epochs as the store takes them (each json the object of
 * numbers as sent, malloc'd); free with validate_epochs_free(). */
int validate_metrics(json_t *body, store_epoch **out, size_t *n,
                     char err[VALIDATE_ERR]);
void validate_epochs_free(store_epoch *e, size_t n);

/* POST /v1/events. */
int validate_events(json_t *body, char err[VALIDATE_ERR]);

/* POST /v1/agent/heartbeat/models/{id}: *agent is the agent name (may be
 * ""), *agent_id the id the client holds or NULL, *system the machine's
 * load libchub adds (an object) or NULL. All point into body. */
int validate_heartbeat(json_t *body, const char **agent, const char **agent_id,
                       json_t **system, char err[VALIDATE_ERR]);

/* The form fields of a weights upload, filled field by field. */
typedef struct validate_upload {
  int has_epoch, has_type, has_best, has_map;
  long long epoch;
  int final; /* type: 0 epoch, 1 final */
  int is_best;
  double map;
} validate_upload;

/* One form field (name=value) of an upload. Unknown names are refused. */
int validate_upload_field(validate_upload *u, const char *name,
                          const char *value, char err[VALIDATE_ERR]);

/* After the last field: required fields present. */
int validate_upload_done(const validate_upload *u, char err[VALIDATE_ERR]);

/* A Range header against a file of `size` bytes. Returns 0 to serve the
 * whole file (no header), 1 for bytes [*first, *last], -1 when the range
 * is malformed or cannot be satisfied (416). */
int validate_range(const char *header, uint64_t size, uint64_t *first,
                   uint64_t *last);

/* The value of `name` in an application/x-www-form-urlencoded body,
 * percent-decoded into out. Returns 0 when found, -1 otherwise (absent,
 * too long, or a bad escape). */
int validate_form_value(const char *body, size_t len, const char *name,
                        char *out, size_t outn);

/* The value of cookie `name` in a Cookie header into out. */
int validate_cookie(const char *header, const char *name, char *out,
                    size_t outn);

/* Ultralytics Platform's webhooks (platform.c). */
typedef enum validate_pf_event {
  VALIDATE_PF_STARTED,
  VALIDATE_PF_CONSOLE,
  VALIDATE_PF_EPOCH,
  VALIDATE_PF_COMPLETE,
} validate_pf_event;

#define VALIDATE_PF_SLUG_MAX 128
#define VALIDATE_PF_METRICS_MAX 1000 /* numbers in one epoch */
#define VALIDATE_PF_NAME_MAX 128     /* bytes of a metric's name */

/* The fields every webhook body has: project ("slug" or "owner/slug"),
 * name (a slug), modelId (absent, null or a model id) and, with `event`,
 * the event and an object `data`. Pointers point into body; owner is
 * "" without "owner/". */
typedef struct validate_pf {
  validate_pf_event event;
  char owner[STORE_OWNER_MAX + 1]; /* "" without "owner/" */
  char project[VALIDATE_PF_SLUG_MAX + 1];
  const char *name;
  const char *model_id; /* NULL when absent or null */
  json_t *data;         /* borrowed from body */
} validate_pf;

/* POST /api/webhooks/training/metrics (with_event) or
 * /api/webhooks/models/upload (without; filename checked by the caller). */
int validate_pf_body(json_t *body, int with_event, validate_pf *out,
                     char err[VALIDATE_ERR]);

/* epoch_end's data.metrics (numbers; null, which is how NaN and inf
 * arrive, dropped; objects one level deep flattened as "key/sub") plus
 * data.modelInfo as HUB names it (model/parameters, model/GFLOPs,
 * model/speed_PyTorch(ms)), as one flat JSON object into *json
 * (malloc'd), and data.epoch into *epoch. */
int validate_pf_epoch(json_t *data, int64_t *epoch, char **json,
                      char err[VALIDATE_ERR]);

#endif

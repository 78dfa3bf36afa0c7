/*
 * platform.c - Ultralytics Platform's webhooks, so that an unmodified
 * `ultralytics` run with ULTRALYTICS_PLATFORM_URL pointing here reports to
 * chubd (the protocol: docs ultralytics-clients.md part A), plus what a
 * person does with such a run: ask it to stop, read its console.
 *
 *   POST /api/webhooks/training/metrics   {event, project, name, data,
 *                                          modelId?}
 *   POST /api/webhooks/models/upload      {project, name, filename,
 *                                          modelId?} -> {uploadUrl}
 *   PUT  /api/webhooks/models/{id}/upload/{best.pt|last.pt}  (signed URL)
 *   HEAD /api/webhooks/models/{user}/{project}/{model}/download  -> 302
 *   HEAD /api/webhooks/datasets/{user}/{slug}/export              -> 302
 *   POST .../models/{id}/stop, GET .../models/{id}/console
 *
 * A run is an ordinary model of the same store (so /v1/models, its
 * metrics, weights and pages show it as they show a HUB model), found
 * again by owner, project and run name. Its epochs go to the same metrics
 * table under the same numbers as HUB's; what HUB has no place for (train
 * args and environment, system metrics per epoch, results and plots, the
 * stop flag) is kept as JSON documents with the model. Console chunks are
 * kept once per chunkId, up to PLATFORM_CONSOLE_MAX bytes per model; later
 * chunks are refused (answered 200 with stored:false and the reason, since
 * an error would only add a log line to the very console being refused).
 *
 * Answers: Platform reads its fields at the top level of the JSON and, on
 * a 4xx, logs `error`; so the fields stand at the top level beside
 * chubd's envelope (success, message, data with the same fields), and
 * errors carry `error` as well as `message`.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upload.h"

#define PLATFORM_CONSOLE_MAX (4 * 1024 * 1024) /* bytes kept per model */
#define PLATFORM_CHUNK_MAX (256 * 1024)        /* bytes of one chunk */
#define PLATFORM_CHUNK_ID_MAX 64
#define PLATFORM_LINES_MAX 1000000
#define PLATFORM_CONSOLE_PAGE 1000 /* chunks per console read */
#define PLATFORM_CONSOLE_PAGE_MAX 10000

/* -------------------------------------------------------------- answers */

static void platform_reply(chubd_reply *rep, unsigned status, json_t *fields,
                           const char *message) {
  json_t *o = json_deep_copy(fields);
  json_object_set_new(o, "success", json_true());
  json_object_set_new(o, "message", json_string(message));
  json_object_set_new(o, "data", fields);
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!text) {
    reply_error(rep, 503, "server out of memory");
    return;
  }
  free(rep->body);
  rep->body = text;
  rep->len = strlen(text);
  rep->status = status;
  rep->ctype = "application/json";
}

static void platform_error(chubd_reply *rep, unsigned status, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

static void platform_error(chubd_reply *rep, unsigned status, const char *fmt,
                           ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *o =
      json_pack("{s:b, s:s, s:s}", "success", 0, "message", msg, "error", msg);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!text) {
    reply_error(rep, status, "%s", msg);
    return;
  }
  free(rep->body);
  rep->body = text;
  rep->len = strlen(text);
  rep->status = status;
  rep->ctype = "application/json";
}

/* A store failure as platform_error words it (404 names `what`). */
static void platform_store_error(chubd_reply *rep, store_rc rc,
                                 const char *what) {
  if (rc == STORE_NOTFOUND) {
    platform_error(rep, 404, "%s not found", what);
    return;
  }
  chubd_reply tmp;
  reply_init(&tmp);
  reply_store(&tmp, rc, what);
  json_t *o = json_loadb(tmp.body ? tmp.body : "", tmp.len, 0, NULL);
  platform_error(rep, tmp.status ? tmp.status : 500, "%s",
                 json_string_value(json_object_get(o, "message"))
                     ? json_string_value(json_object_get(o, "message"))
                     : "database error");
  json_decref(o);
  reply_free(&tmp);
}

/* ---------------------------------------------------------------- runs */

/* The body, checked: 0 with *body and f, or -1 with a 400 in rep. */
static int platform_body(chubd_request *req, chubd_reply *rep, int with_event,
                         json_t **body, validate_pf *f) {
  char err[VALIDATE_ERR];
  if (validate_json_object(req->body, req->body_len, body, err) < 0 ||
      validate_pf_body(*body, with_event, f, err) < 0) {
    json_decref(*body);
    *body = NULL;
    platform_error(rep, 400, "%s", err);
    return -1;
  }
  /* "owner/slug" names the owner: only the key's own is found. */
  if (f->owner[0] && strcmp(f->owner, req->key.owner) != 0) {
    platform_error(rep, 404, "project %s/%s not found", f->owner, f->project);
    json_decref(*body);
    *body = NULL;
    return -1;
  }
  return 0;
}

/* The model a request's modelId names, checked to be the caller's; or,
 * without one, the model of its project and run name. 0 with id, or -1
 * with the error in rep. */
static int platform_model(chubd_request *req, chubd_reply *rep,
                          const validate_pf *f, char id[UTIL_ID_LEN + 1]) {
  store *st = req->srv->st;
  store_rc rc;
  if (f->model_id) {
    rc = st->ops->model_check(st, f->model_id, req->owner);
    if (rc != STORE_OK) {
      if (rc == STORE_NOTFOUND)
        platform_error(rep, 404, "model %s not found", f->model_id);
      else
        platform_store_error(rep, rc, "model");
      return -1;
    }
    memcpy(id, f->model_id, UTIL_ID_LEN + 1);
    return 0;
  }
  char pid[UTIL_ID_LEN + 1];
  rc = st->ops->project_find(st, req->key.owner, f->project, pid);
  if (rc == STORE_OK)
    rc = st->ops->run_find(st, req->key.owner, pid, f->name, id);
  if (rc == STORE_NOTFOUND) {
    platform_error(rep, 404,
                   "no run %s in project %s: training_started comes first",
                   f->name, f->project);
    return -1;
  }
  if (rc != STORE_OK) {
    platform_store_error(rep, rc, "run");
    return -1;
  }
  return 0;
}

/* Whether the run was asked to stop; the first time the run is told so
 * (at epoch), that is kept as "cancelled" for the pages. */
static int platform_cancelled(chubd_request *req, const char *id,
                              int64_t epoch) {
  char *doc = NULL;
  store *st = req->srv->st;
  int yes = st->ops->doc_get(st, id, "stop", &doc) == STORE_OK &&
            strcmp(doc, "true") == 0;
  free(doc);
  doc = NULL;
  if (yes && st->ops->doc_get(st, id, "cancelled", &doc) == STORE_OK &&
      strcmp(doc, "null") == 0) {
    char told[96];
    snprintf(told, sizeof told, "{\"t\":%lld,\"epoch\":%lld}",
             (long long)util_now_ms(), (long long)epoch);
    st->ops->doc_put(st, id, "cancelled", told);
  }
  free(doc);
  return yes;
}

/* A trainArgs value (stringified by ultralytics) as an integer, or NULL. */
static json_t *platform_int(json_t *v) {
  if (json_is_integer(v))
    return json_integer(json_integer_value(v));
  long long n;
  const char *s = json_string_value(v);
  if (s && validate_uint(s, 1000000000LL, &n) == 0)
    return json_integer(n);
  return NULL;
}

/* The HUB create body a Platform run stands for: its name and project,
 * its config from trainArgs, its dataset and architecture. */
static json_t *platform_create_body(const validate_pf *f) {
  json_t *args = json_object_get(f->data, "trainArgs");
  json_t *config = json_object();
  struct {
    const char *arg, *field;
  } ints[] = {
      {"batch", "batchSize"}, {"imgsz", "imageSize"}, {"patience", "patience"}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    json_t *n = platform_int(json_object_get(args, ints[i].arg));
    if (n)
      json_object_set_new(config, ints[i].field, n);
  }
  json_t *epochs = platform_int(json_object_get(f->data, "epochs"));
  if (!epochs)
    epochs = platform_int(json_object_get(args, "epochs"));
  if (epochs)
    json_object_set_new(config, "epochs", epochs);
  const char *device = json_string_value(json_object_get(f->data, "device"));
  if (!device)
    device = json_string_value(json_object_get(args, "device"));
  if (device)
    json_object_set_new(config, "device",
                        json_stringn(device, strnlen(device, 64)));
  json_t *body = json_object();
  json_object_set_new(body, "meta",
                      json_pack("{s:s, s:s, s:s}", "name", f->name, "project",
                                f->project, "source", "ultralytics-platform"));
  json_object_set_new(body, "config", config);
  const char *data = json_string_value(json_object_get(args, "data"));
  if (data)
    json_object_set_new(body, "dataset",
                        json_pack("{s:s%}", "name", data, strnlen(data, 512)));
  const char *model = json_string_value(json_object_get(args, "model"));
  if (model) {
    json_t *lineage = json_object();
    size_t n = strnlen(model, 256);
    const char *dot = strrchr(model, '.');
    size_t stem = dot && (size_t)(dot - model) < n ? (size_t)(dot - model) : n;
    json_object_set_new(lineage, "architecture",
                        json_pack("{s:s%}", "name", model, stem));
    if (n > 3 && strcmp(model + n - 3, ".pt") == 0)
      json_object_set_new(lineage, "parent",
                          json_pack("{s:s%}", "name", model, n));
    json_object_set_new(body, "lineage", lineage);
  }
  return body;
}

/* A JSON document of the model from the fields of data named in keys. */
static store_rc platform_doc(chubd_request *req, const char *id,
                             const char *name, json_t *data,
                             const char *const *keys, size_t n) {
  json_t *doc = json_object();
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(data, keys[i]);
    if (v)
      json_object_set(doc, keys[i], v);
  }
  char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(doc);
  if (!text)
    return STORE_ERROR;
  store *st = req->srv->st;
  store_rc rc = st->ops->doc_put(st, id, name, text);
  free(text);
  return rc;
}

static void platform_started(chubd_request *req, chubd_reply *rep,
                             const validate_pf *f) {
  static const char *const keys[] = {"trainArgs", "epochs", "device",
                                     "environment"};
  store *st = req->srv->st;
  const char *owner = req->key.owner;
  char new_pid[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1], id[UTIL_ID_LEN + 1];
  if (util_random_alnum(new_pid, UTIL_ID_LEN) < 0) {
    platform_error(rep, 503, "cannot make an id");
    return;
  }
  store_rc rc = st->ops->project_ensure(st, owner, f->project, new_pid,
                                        util_now_ms(), pid);
  if (rc == STORE_OK)
    rc = st->ops->run_find(st, owner, pid, f->name, id);
  int created = 0;
  if (rc == STORE_NOTFOUND) {
    json_t *body = platform_create_body(f);
    int bad = models_insert(req, rep, owner, body, id);
    json_decref(body);
    if (bad)
      return;
    created = 1;
    rc = st->ops->run_add(st, id, owner, pid, f->name);
    char won[UTIL_ID_LEN + 1];
    if (rc == STORE_OK)
      rc = st->ops->run_find(st, owner, pid, f->name, won);
    if (rc == STORE_OK && strcmp(won, id) != 0) {
      /* Another start of the same run got there first: use its model and
       * drop the one made here, which nothing names. */
      st->ops->model_delete(st, id, 1);
      memcpy(id, won, sizeof won);
      created = 0;
    }
  }
  /* A new start of the run clears a stop asked of the one before. */
  if (rc == STORE_OK)
    rc = st->ops->doc_put(st, id, "stop", "false");
  if (rc == STORE_OK)
    rc = st->ops->doc_put(st, id, "cancelled", "null");
  if (rc == STORE_OK)
    rc = platform_doc(req, id, "start", f->data, keys, 4);
  if (rc != STORE_OK) {
    platform_store_error(rep, rc, "run");
    return;
  }
  platform_reply(rep, created ? 201 : 200,
                 json_pack("{s:s, s:s, s:s, s:b}", "modelId", id, "modelSlug",
                           f->name, "projectId", pid, "cancelled", 0),
                 created ? "run started: model created" : "run started again");
}

static void platform_console_output(chubd_request *req, chubd_reply *rep,
                                    const validate_pf *f) {
  json_t *d = f->data;
  const char *chunk = json_string_value(json_object_get(d, "chunkId"));
  json_t *content = json_object_get(d, "content");
  json_t *lines = json_object_get(d, "lineCount");
  size_t cn = chunk ? strlen(chunk) : 0;
  int chunk_ok = cn > 0 && cn <= PLATFORM_CHUNK_ID_MAX;
  for (size_t i = 0; chunk_ok && i < cn; i++)
    chunk_ok = chunk[i] > ' ' && chunk[i] < 127;
  if (!chunk_ok) {
    platform_error(rep, 400,
                   "field \"data.chunkId\" must be a string of 1 to %d "
                   "printable characters",
                   PLATFORM_CHUNK_ID_MAX);
    return;
  }
  if (!json_is_string(content)) {
    platform_error(rep, 400, "field \"data.content\" must be a string");
    return;
  }
  if (json_string_length(content) > PLATFORM_CHUNK_MAX) {
    platform_error(rep, 413,
                   "field \"data.content\" is %zu bytes, over the limit of "
                   "%d bytes per chunk",
                   json_string_length(content), PLATFORM_CHUNK_MAX);
    return;
  }
  if (memchr(json_string_value(content), '\0', json_string_length(content))) {
    platform_error(rep, 400, "field \"data.content\" holds a NUL character");
    return;
  }
  if (!json_is_integer(lines) || json_integer_value(lines) < 0 ||
      json_integer_value(lines) > PLATFORM_LINES_MAX) {
    platform_error(rep, 400,
                   "field \"data.lineCount\" must be an integer from 0 to %d",
                   PLATFORM_LINES_MAX);
    return;
  }
  if (!f->model_id) {
    /* ultralytics keeps capturing after a failed training_started, with
     * no modelId: nothing to keep it with. */
    platform_reply(rep, 202, json_pack("{s:b}", "stored", 0),
                   "chunk not stored: no modelId (training_started did not "
                   "succeed)");
    return;
  }
  char id[UTIL_ID_LEN + 1];
  if (platform_model(req, rep, f, id) < 0)
    return;
  store *st = req->srv->st;
  store_rc rc =
      st->ops->console_add(st, id, chunk, json_string_value(content),
                           json_integer_value(lines), PLATFORM_CONSOLE_MAX);
  if (rc == STORE_CONFLICT) {
    platform_reply(rep, 200,
                   json_pack("{s:b, s:b}", "stored", 0, "duplicate", 1),
                   "chunk already stored");
  } else if (rc == STORE_LIMIT) {
    char msg[128];
    snprintf(msg, sizeof msg,
             "chunk not stored: the run's console is full (%d bytes kept "
             "per model)",
             PLATFORM_CONSOLE_MAX);
    platform_reply(rep, 200, json_pack("{s:b, s:b}", "stored", 0, "full", 1),
                   msg);
  } else if (rc != STORE_OK) {
    platform_store_error(rep, rc, "model");
  } else {
    platform_reply(rep, 200, json_pack("{s:b}", "stored", 1), "chunk stored");
  }
}

static void platform_epoch_end(chubd_request *req, chubd_reply *rep,
                               const validate_pf *f) {
  static const char *const keys[] = {"fitness", "best_fitness", "modelInfo"};
  char err[VALIDATE_ERR], id[UTIL_ID_LEN + 1];
  store_epoch e = {0, NULL};
  json_t *system = json_object_get(f->data, "system");
  if (system_check(system, err) < 0) {
    platform_error(rep, 400, "field \"data.system\": %s", err);
    return;
  }
  if (validate_pf_epoch(f->data, &e.epoch, &e.json, err) < 0) {
    platform_error(rep, 400, "%s", err);
    return;
  }
  if (!f->model_id) {
    free(e.json);
    platform_error(rep, 400, "field \"modelId\" is required for epoch_end");
    return;
  }
  if (platform_model(req, rep, f, id) < 0) {
    free(e.json);
    return;
  }
  store *st = req->srv->st;
  /* The same table, numbers and replace-on-retry as HUB's metrics. */
  store_rc rc = st->ops->metrics_put(st, id, req->owner, &e, 1, util_now_ms());
  free(e.json);
  if (rc == STORE_OK) {
    char name[32];
    snprintf(name, sizeof name, "epoch/%lld", (long long)e.epoch);
    rc = platform_doc(req, id, name, f->data, keys, 3);
  }
  if (rc == STORE_OK && json_is_object(system)) {
    rc = system_keep(req, id, e.epoch, system);
    if (rc == STORE_LIMIT)
      rc = STORE_OK; /* the metrics are kept; the load is past its cap */
  }
  if (rc != STORE_OK) {
    platform_store_error(rep, rc, "model");
    return;
  }
  platform_reply(rep, 200,
                 json_pack("{s:b, s:I}", "cancelled",
                           platform_cancelled(req, id, e.epoch), "epoch",
                           (json_int_t)e.epoch),
                 "epoch stored");
}

/* The run's final weights: the newest best.pt upload (ultralytics uploads
 * best.pt, blocking, just before training_complete) becomes the final
 * checkpoint; without any upload the model is only marked trained. */
static store_rc platform_finish_weights(chubd_request *req, const char *id,
                                        json_t *results) {
  store *st = req->srv->st;
  store_checkpoint *k = NULL;
  size_t n = 0;
  store_rc rc = st->ops->checkpoints(st, id, &k, &n);
  if (rc != STORE_OK)
    return rc;
  long pick = -1;
  for (size_t i = 0; i < n && pick < 0; i++)
    if (k[i].final)
      pick = -2; /* already final: a retried training_complete */
    else if (k[i].is_best)
      pick = (long)i;
  if (pick == -1 && n > 0)
    pick = 0;
  if (pick >= 0) {
    store_checkpoint c = k[pick];
    json_t *map = json_object_get(json_object_get(results, "metrics"),
                                  "metrics/mAP50-95(B)");
    c.final = 1;
    c.has_map = json_is_number(map);
    c.map = c.has_map ? json_number_value(map) : 0;
    c.created_ms = util_now_ms();
    rc = st->ops->checkpoint_add(st, id, &c);
    if (rc == STORE_CONFLICT)
      rc = STORE_OK; /* trained meanwhile */
  } else if (pick == -1) {
    rc = st->ops->model_set_trained(st, id, util_now_ms());
  }
  free(k);
  return rc;
}

static void platform_complete(chubd_request *req, chubd_reply *rep,
                              const validate_pf *f) {
  static const char *const keys[] = {"results", "classNames", "plots"};
  char id[UTIL_ID_LEN + 1];
  json_t *results = json_object_get(f->data, "results");
  if (results && !json_is_object(results)) {
    platform_error(rep, 400, "field \"data.results\" must be an object");
    return;
  }
  json_t *plots = json_object_get(f->data, "plots");
  if (plots && !json_is_object(plots) && !json_is_array(plots)) {
    platform_error(rep, 400,
                   "field \"data.plots\" must be JSON (an object "
                   "or an array), never an image");
    return;
  }
  if (!f->model_id) {
    platform_error(rep, 400,
                   "field \"modelId\" is required for training_complete");
    return;
  }
  if (platform_model(req, rep, f, id) < 0)
    return;
  store_rc rc = platform_doc(req, id, "results", f->data, keys, 3);
  if (rc == STORE_OK)
    rc = platform_finish_weights(req, id, results);
  if (rc != STORE_OK) {
    platform_store_error(rep, rc, "model");
    return;
  }
  platform_reply(rep, 200, json_pack("{s:s}", "modelId", id),
                 "run complete: model trained");
}

void platform_metrics(chubd_request *req, chubd_reply *rep) {
  json_t *body;
  validate_pf f;
  if (platform_body(req, rep, 1, &body, &f) < 0)
    return;
  switch (f.event) {
  case VALIDATE_PF_STARTED:
    platform_started(req, rep, &f);
    break;
  case VALIDATE_PF_CONSOLE:
    platform_console_output(req, rep, &f);
    break;
  case VALIDATE_PF_EPOCH:
    platform_epoch_end(req, rep, &f);
    break;
  case VALIDATE_PF_COMPLETE:
    platform_complete(req, rep, &f);
    break;
  }
  json_decref(body);
}

/* ------------------------------------------------------------- weights */

void platform_upload(chubd_request *req, chubd_reply *rep) {
  json_t *body;
  validate_pf f;
  if (platform_body(req, rep, 0, &body, &f) < 0)
    return;
  const char *file = json_string_value(json_object_get(body, "filename"));
  char id[UTIL_ID_LEN + 1];
  if (!file || (strcmp(file, "best.pt") != 0 && strcmp(file, "last.pt") != 0))
    platform_error(rep, 400, "field \"filename\" must be best.pt or last.pt");
  else if (platform_model(req, rep, &f, id) == 0) {
    char url[1024];
    links_upload(req, id, file, url, sizeof url);
    platform_reply(rep, 200,
                   json_pack("{s:s, s:s, s:I}", "uploadUrl", url, "modelId", id,
                             "expiresIn", (json_int_t)req->srv->cfg.url_ttl_s),
                   "PUT the file to uploadUrl");
  }
  json_decref(body);
}

unsigned platform_put_begin(chubd_request *req, chubd_reply *rep) {
  if (models_check(req, rep) < 0)
    return rep->status;
  return upload_begin_raw(req, rep, req->srv->cfg.max_upload, req->r.name);
}

/* A periodic upload (best.pt, else last.pt) is a checkpoint of the
 * newest epoch stored; best.pt marks it best. training_complete later
 * makes the newest best.pt the final weights. */
void platform_put_finish(chubd_request *req, chubd_reply *rep) {
  char sha[65];
  if (upload_finish(req, rep, req->r.name, sha) != 0)
    return;
  store_model m;
  if (models_lookup(req, rep, &m) < 0)
    return;
  validate_upload f;
  memset(&f, 0, sizeof f);
  f.has_epoch = f.has_type = f.has_best = 1;
  f.epoch = m.last_epoch >= 0 ? m.last_epoch : 0;
  f.is_best = strcmp(req->r.name, "best.pt") == 0;
  store_model_free(&m);
  weights_store(req, &f, sha, rep);
}

/* ------------------------------------------------------------ ul:// */

void platform_model_download(chubd_request *req, chubd_reply *rep) {
  const route *r = &req->r;
  store *st = req->srv->st;
  char pid[UTIL_ID_LEN + 1], id[UTIL_ID_LEN + 1];
  store_rc rc = STORE_NOTFOUND;
  if (req->owner && strcmp(r->slug[0], req->owner) == 0) {
    rc = st->ops->project_find(st, req->owner, r->slug[1], pid);
    if (rc == STORE_OK)
      rc = st->ops->run_find(st, req->owner, pid, r->slug[2], id);
  }
  if (rc != STORE_OK) {
    if (rc == STORE_NOTFOUND)
      platform_error(rep, 404, "model %s/%s/%s not found", r->slug[0],
                     r->slug[1], r->slug[2]);
    else
      platform_store_error(rep, rc, "model");
    return;
  }
  store_checkpoint *k = NULL;
  size_t n = 0;
  long last, best;
  if ((rc = st->ops->checkpoints(st, id, &k, &n)) != STORE_OK) {
    platform_store_error(rep, rc, "checkpoints");
    return;
  }
  models_pick(k, n, &last, &best);
  if (best < 0) {
    free(k);
    platform_error(rep, 404, "model %s/%s/%s has no weights yet", r->slug[0],
                   r->slug[1], r->slug[2]);
    return;
  }
  char url[1024];
  links_weights(req, id, &k[best], "best", url, sizeof url);
  free(k);
  reply_header(rep, "Location", "%s", url);
  platform_reply(rep, 302, json_pack("{s:s}", "url", url), "see Location");
}

void platform_dataset_export(chubd_request *req, chubd_reply *rep) {
  char url[1024];
  if (!req->owner || strcmp(req->r.slug[0], req->owner) != 0) {
    platform_error(rep, 404, "dataset %s/%s not found", req->r.slug[0],
                   req->r.slug[1]);
    return;
  }
  if (datasets_export_url(req, rep, req->r.slug[1], url, sizeof url) < 0)
    return;
  reply_header(rep, "Location", "%s", url);
  platform_reply(rep, 302, json_pack("{s:s}", "url", url), "see Location");
}

/* ----------------------------------------------------- stop, console */

void platform_stop(chubd_request *req, chubd_reply *rep) {
  if (models_check(req, rep) < 0)
    return;
  store *st = req->srv->st;
  char *start = NULL;
  store_rc rc = st->ops->doc_get(st, req->r.id, "start", &start);
  free(start);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 409,
                "model %s is not reported through the Ultralytics Platform "
                "webhooks: the HUB protocol has no way to tell its client "
                "to stop; stop the trainer where it runs",
                req->r.id);
    return;
  }
  if (rc == STORE_OK)
    rc = st->ops->doc_put(st, req->r.id, "stop", "true");
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  reply_data(rep, 200, json_pack("{s:s, s:b}", "id", req->r.id, "stop", 1),
             "stop asked: the run stops at its next epoch_end");
}

typedef struct platform_console_rows {
  json_t *chunks; /* as JSON, or NULL for text */
  char *text;     /* the whole log, at most PLATFORM_CONSOLE_MAX bytes */
  size_t len, cap;
  int64_t last;
} platform_console_rows;

static int platform_console_row(void *ud, int64_t seq, const char *chunk_id,
                                const char *content, int64_t lines) {
  platform_console_rows *rows = ud;
  rows->last = seq;
  if (rows->chunks)
    return json_array_append_new(
        rows->chunks, json_pack("{s:I, s:s, s:s, s:I}", "seq", (json_int_t)seq,
                                "chunkId", chunk_id, "content", content,
                                "lineCount", (json_int_t)lines));
  size_t n = strlen(content);
  if (rows->len + n > PLATFORM_CONSOLE_MAX)
    n = PLATFORM_CONSOLE_MAX - rows->len; /* stored under the cap anyway */
  /* Grown as the log is, so that a short log costs little however many
   * are read at once. */
  if (rows->len + n + 1 > rows->cap) {
    size_t cap = rows->cap ? rows->cap : 4096;
    while (cap < rows->len + n + 1)
      cap *= 2;
    char *grown = realloc(rows->text, cap);
    if (!grown)
      return -1;
    rows->text = grown;
    rows->cap = cap;
  }
  memcpy(rows->text + rows->len, content, n);
  rows->len += n;
  return 0;
}

/* ?format=text: the whole log as a file (it is bounded by the cap). */
static void platform_console_text(chubd_request *req, chubd_reply *rep) {
  platform_console_rows rows = {NULL, malloc(1), 0, 1, 0};
  if (!rows.text) {
    reply_error(rep, 503, "server out of memory");
    return;
  }
  store *st = req->srv->st;
  store_rc rc = st->ops->console_get(st, req->r.id, 0, INT32_MAX,
                                     platform_console_row, &rows);
  if (rc != STORE_OK) {
    free(rows.text);
    reply_store(rep, rc, "console");
    return;
  }
  free(rep->body);
  rep->body = rows.text;
  rep->len = rows.len;
  rep->status = 200;
  rep->ctype = "text/plain; charset=utf-8";
  reply_header(rep, "Content-Disposition",
               "attachment; filename=\"%s-console.txt\"", req->r.id);
}

void platform_console(chubd_request *req, chubd_reply *rep) {
  long long after, limit;
  const char *format = httpd_query(req, "format");
  if (format && strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
    reply_error(rep, 400, "query field \"format\" must be json or text");
    return;
  }
  if (httpd_query_int(req, rep, "after", 0, INT64_MAX / 2, 0, &after) < 0 ||
      httpd_query_int(req, rep, "limit", 1, PLATFORM_CONSOLE_PAGE_MAX,
                      PLATFORM_CONSOLE_PAGE, &limit) < 0)
    return;
  if (models_check(req, rep) < 0)
    return;
  if (format && strcmp(format, "text") == 0) {
    platform_console_text(req, rep);
    return;
  }
  platform_console_rows rows = {json_array(), NULL, 0, 0, after};
  store *st = req->srv->st;
  store_rc rc = st->ops->console_get(st, req->r.id, after, (int)limit,
                                     platform_console_row, &rows);
  if (rc != STORE_OK) {
    json_decref(rows.chunks);
    reply_store(rep, rc, "console");
    return;
  }
  int more = json_array_size(rows.chunks) == (size_t)limit;
  reply_data(rep, 200,
             json_pack("{s:o, s:I, s:b, s:i}", "chunks", rows.chunks, "next",
                       (json_int_t)rows.last, "more", more, "maxBytes",
                       PLATFORM_CONSOLE_MAX),
             "");
}

/* A stored document as JSON, or JSON null when there is none. */
static json_t *platform_doc_json(chubd_request *req, const char *name,
                                 store_rc *rc) {
  char *text = NULL;
  store *st = req->srv->st;
  store_rc got = st->ops->doc_get(st, req->r.id, name, &text);
  if (got == STORE_NOTFOUND)
    return json_null();
  if (got != STORE_OK) {
    *rc = got;
    return json_null();
  }
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  free(text);
  return v ? v : json_null();
}

/* GET .../models/{id}/run: what the pages show of a run beyond metrics:
 * which protocol reports it (only Platform runs can be stopped), its train
 * args and environment, its results and plots, and the stop. */
void platform_run(chubd_request *req, chubd_reply *rep) {
  if (models_check(req, rep) < 0)
    return;
  store_rc rc = STORE_OK;
  json_t *start = platform_doc_json(req, "start", &rc);
  json_t *results = platform_doc_json(req, "results", &rc);
  json_t *stop = platform_doc_json(req, "stop", &rc);
  json_t *cancelled = platform_doc_json(req, "cancelled", &rc);
  if (rc != STORE_OK) {
    json_decref(start);
    json_decref(results);
    json_decref(stop);
    json_decref(cancelled);
    reply_store(rep, rc, "run");
    return;
  }
  int platform = !json_is_null(start);
  reply_data(rep, 200,
             json_pack("{s:s, s:b, s:b, s:o, s:o, s:o, s:i}", "protocol",
                       platform ? "platform" : "hub", "stoppable", platform,
                       "stopAsked", json_is_true(stop), "cancelled", cancelled,
                       "start", start, "results", results, "consoleMaxBytes",
                       PLATFORM_CONSOLE_MAX),
             "");
  json_decref(stop);
}

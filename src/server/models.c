/*
 * models.c - the model resource: create, read, list, update, delete, and
 * the MODEL object every read returns.
 *
 * A model is stored as the JSON parts the client sent (meta, config,
 * dataset, lineage); MODEL is derived from them on each read, flat fields
 * and train_args included, so that what hub-sdk and the ultralytics session
 * read back is always consistent with what was created or patched.
 */
#include "server.h"

#include "blobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODELS_LIMIT_DEFAULT 10
#define MODELS_LIMIT_MAX 100

json_t *models_parse(const char *text) {
  json_t *v = json_loads(text, 0, NULL);
  if (!json_is_object(v)) {
    json_decref(v);
    v = json_object();
  }
  return v;
}

void models_time(json_t *o, const char *key, int64_t ms) {
  char t[32];
  util_rfc3339(ms, t);
  json_object_set_new(o, key, json_string(t));
}

/* Copies obj[from] into dst[to] when present and not null. */
static void models_copy(json_t *dst, const char *to, json_t *obj,
                        const char *from) {
  json_t *v = json_object_get(obj, from);
  if (v && !json_is_null(v))
    json_object_set(dst, to, v);
}

static const char *models_status(const chubd_server *srv,
                                 const store_model *m) {
  if (strcmp(m->status, "training") == 0) {
    int64_t seen =
        m->heartbeat_ms > m->last_seen_ms ? m->heartbeat_ms : m->last_seen_ms;
    if ((double)(util_now_ms() - seen) > srv->cfg.agent_timeout_s * 1000.0)
      return "disconnected";
  }
  return m->status;
}

static json_t *models_checkpoints(const chubd_request *req, const char *id,
                                  const store_checkpoint *k, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    char url[1024], role[32];
    if (k[i].final)
      snprintf(role, sizeof role, "final");
    else
      snprintf(role, sizeof role, "epoch%lld", (long long)k[i].epoch);
    links_weights(req, id, &k[i], role, url, sizeof url);
    json_t *c = json_pack(
        "{s:I, s:s, s:b, s:I, s:s, s:s}", "epoch", (json_int_t)k[i].epoch,
        "type", k[i].final ? "final" : "epoch", "is_best", k[i].is_best, "size",
        (json_int_t)k[i].size, "sha256", k[i].sha256, "url", url);
    if (!c)
      continue;
    models_time(c, "created_at", k[i].created_ms);
    if (k[i].has_map)
      json_object_set_new(c, "map", json_real(k[i].map));
    json_array_append_new(arr, c);
  }
  return arr;
}

void models_pick(const store_checkpoint *k, size_t n, long *last, long *best) {
  *last = *best = -1;
  for (size_t i = 0; i < n; i++) {
    if (*last < 0 && !k[i].final)
      *last = (long)i;
    if (*best < 0 && k[i].final)
      *best = (long)i;
  }
  if (*best < 0)
    for (size_t i = 0; i < n; i++)
      if (k[i].is_best) {
        *best = (long)i;
        break;
      }
  if (*last < 0 && n > 0)
    *last = 0; /* only a final upload: it is also the latest weights */
}

/* resume and weights: signed URLs of the last and best weights; before
 * any, a model started from parent weights names those as its weights. */
static void models_weights_fields(const chubd_request *req, json_t *o,
                                  const store_model *m,
                                  const store_checkpoint *k, size_t n) {
  long last, best;
  models_pick(k, n, &last, &best);
  json_object_set_new(o, "has_last_weights", json_boolean(last >= 0));
  json_object_set_new(o, "has_best_weights", json_boolean(best >= 0));
  char url[1024];
  if (last >= 0) {
    links_weights(req, m->id, &k[last], "last", url, sizeof url);
    json_object_set_new(o, "resume", json_string(url));
  }
  if (best >= 0) {
    links_weights(req, m->id, &k[best], "best", url, sizeof url);
    json_object_set_new(o, "weights", json_string(url));
  } else if (json_is_true(json_object_get(o, "is_pretrained"))) {
    models_copy(o, "weights", json_object_get(o, "parent"), "name");
  }
}

/* cfg must be a file Ultralytics can build: a bare architecture name
 * ("yolov8n-cls", as the client sends it with the suffix stripped) or a
 * weights name becomes NAME.yaml; other names (a C trainer's "mlp.cfg")
 * are kept as given. */
static json_t *models_cfg(json_t *arch) {
  const char *name = json_string_value(arch);
  if (!name || !*name)
    return NULL;
  const char *dot = strrchr(name, '.');
  size_t stem = strlen(name);
  if (dot && strcmp(dot, ".pt") == 0)
    stem = (size_t)(dot - name);
  else if (dot)
    return json_string(name);
  char *cfg = malloc(stem + 6);
  if (!cfg)
    return NULL;
  memcpy(cfg, name, stem);
  memcpy(cfg + stem, ".yaml", 6);
  json_t *v = json_string(cfg);
  free(cfg);
  return v;
}

static void models_config_fields(json_t *o, json_t *config, json_t *dataset,
                                 json_t *lineage) {
  static const char *const map[][3] = {
      /* config key, flat MODEL key, train_args key */
      {"batchSize", "batch_size", "batch"},
      {"epochs", "epochs", "epochs"},
      {"imageSize", "imgsz", "imgsz"},
      {"patience", "patience", "patience"},
      {"device", "device", "device"},
      {"cache", "cache", "cache"}};
  json_t *args = json_object();
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    models_copy(o, map[i][1], config, map[i][0]);
    models_copy(args, map[i][2], config, map[i][0]);
  }
  json_t *data = json_object_get(dataset, "name");
  if (!json_is_string(data) || json_string_length(data) == 0)
    data = json_object_get(dataset, "url");
  if (json_is_string(data)) {
    json_object_set(o, "data", data);
    json_object_set(args, "data", data);
  }
  json_object_set_new(o, "train_args", args);
  json_t *arch =
      json_object_get(json_object_get(lineage, "architecture"), "name");
  json_t *cfg = models_cfg(arch);
  if (cfg)
    json_object_set_new(o, "cfg", cfg);
  json_t *parent = json_object_get(lineage, "parent");
  json_t *pname = json_object_get(parent, "name");
  int pretrained = json_is_string(pname) && json_string_length(pname) > 0;
  json_object_set_new(o, "is_pretrained", json_boolean(pretrained));
  json_object_set_new(o, "is_custom", json_boolean(!pretrained));
  if (json_is_object(parent) && json_object_size(parent) > 0)
    json_object_set(o, "parent", parent);
}

/* MODEL as hub-api.md (and the README's chubd extensions) describe it; NULL
 * when out of memory or the store failed (then rep holds the error). */
static json_t *models_json(chubd_request *req, const store_model *m,
                           chubd_reply *rep) {
  store *st = req->srv->st;
  store_checkpoint *k = NULL;
  size_t n = 0;
  store_rc rc = st->ops->checkpoints(st, m->id, &k, &n);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "checkpoints");
    return NULL;
  }
  json_t *o = json_object();
  json_t *meta = models_parse(m->meta), *config = models_parse(m->config);
  json_t *dataset = models_parse(m->dataset);
  json_t *lineage = models_parse(m->lineage);
  json_object_set_new(o, "id", json_string(m->id));
  models_time(o, "created_at", m->created_ms);
  models_time(o, "updated_at", m->updated_ms);
  json_object_set_new(o, "status", json_string(models_status(req->srv, m)));
  models_config_fields(o, config, dataset, lineage);
  if (m->dataset_id[0]) {
    /* Created from a dataset of this hub: train on its signed URL. */
    json_t *data = datasets_data_for_model(req, m->dataset_id);
    if (data) {
      json_object_set(json_object_get(o, "train_args"), "data", data);
      json_object_set_new(o, "data", data);
    }
  }
  models_weights_fields(req, o, m, k, n);
  if (m->heartbeat_ms) {
    char t[32];
    util_rfc3339(m->heartbeat_ms, t);
    json_object_set_new(o, "agent",
                        json_pack("{s:s, s:s, s:s}", "id", m->agent_id, "name",
                                  m->agent_name, "last_heartbeat", t));
  }
  json_object_set_new(o, "checkpoints", models_checkpoints(req, m->id, k, n));
  json_object_set_new(o, "metrics_count", json_integer(m->metrics_count));
  json_object_set_new(o, "last_epoch",
                      m->last_epoch >= 0 ? json_integer(m->last_epoch)
                                         : json_null());
  /* A Platform run's project, so that pages can group runs by it. */
  json_object_set_new(o, "project",
                      m->project_id[0]
                          ? json_pack("{s:s, s:s}", "id", m->project_id, "name",
                                      m->project_name)
                          : json_null());
  json_object_set_new(o, "meta", meta);
  json_object_set_new(o, "config", config);
  json_object_set_new(o, "dataset", dataset);
  json_object_set_new(o, "lineage", lineage);
  free(k);
  return o;
}

int models_lookup(chubd_request *req, chubd_reply *rep, store_model *m) {
  store *st = req->srv->st;
  store_rc rc = st->ops->model_get(st, req->r.id, req->owner, m);
  if (rc != STORE_OK) {
    if (rc == STORE_NOTFOUND)
      reply_error(rep, 404, "model %s not found", req->r.id);
    else
      reply_store(rep, rc, "model");
    return -1;
  }
  return 0;
}

int models_check(chubd_request *req, chubd_reply *rep) {
  store *st = req->srv->st;
  store_rc rc = st->ops->model_check(st, req->r.id, req->owner);
  if (rc == STORE_OK)
    return 0;
  if (rc == STORE_NOTFOUND)
    reply_error(rep, 404, "model %s not found", req->r.id);
  else
    reply_store(rep, rc, "model");
  return -1;
}

/* Parses and checks the request body; NULL with rep filled on error. */
static json_t *models_body(chubd_request *req, chubd_reply *rep,
                           int (*check)(json_t *, char *)) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0 ||
      check(body, err) < 0) {
    if (body)
      json_decref(body);
    reply_error(rep, 400, "%s", err);
    return NULL;
  }
  return body;
}

static char *models_part(json_t *body, const char *key) {
  json_t *v = json_object_get(body, key);
  if (!json_is_object(v))
    return strdup("{}"); /* a part the client left out */
  return json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
}

int models_insert(chubd_request *req, chubd_reply *rep, const char *owner,
                  json_t *body, char id[UTIL_ID_LEN + 1]) {
  store_model m;
  memset(&m, 0, sizeof m);
  const char *dsid = json_string_value(
      json_object_get(json_object_get(body, "dataset"), "id"));
  if (dsid && datasets_check_for_model(req, rep, owner, dsid) < 0)
    return -1;
  if (dsid)
    snprintf(m.dataset_id, sizeof m.dataset_id, "%s", dsid);
  snprintf(m.owner, sizeof m.owner, "%s", owner);
  m.meta = models_part(body, "meta");
  m.config = models_part(body, "config");
  m.dataset = models_part(body, "dataset");
  m.lineage = models_part(body, "lineage");
  m.created_ms = util_now_ms();
  store_rc rc = STORE_ERROR;
  if (m.meta && m.config && m.dataset && m.lineage) {
    /* A clash of 20 random characters is practically impossible; retry a
     * few times anyway rather than answer an error. */
    for (int attempt = 0; attempt < 4; attempt++) {
      if (util_random_alnum(m.id, UTIL_ID_LEN) < 0)
        break;
      rc = req->srv->st->ops->model_add(req->srv->st, &m);
      if (rc != STORE_CONFLICT)
        break;
    }
  }
  store_model_free(&m);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return -1;
  }
  memcpy(id, m.id, UTIL_ID_LEN + 1);
  return 0;
}

void models_create(chubd_request *req, chubd_reply *rep) {
  json_t *body = models_body(req, rep, validate_model_create);
  if (!body)
    return;
  char id[UTIL_ID_LEN + 1];
  int rc = models_insert(req, rep, req->key.owner, body, id);
  json_decref(body);
  if (rc == 0)
    reply_data(rep, 200, json_pack("{s:s}", "id", id), "model created");
}

/* The owner a page creates a model for: the logged-in key's, or on a
 * loopback listener (no key) the one named, which must hold a key. */
static int models_ui_owner(chubd_request *req, chubd_reply *rep, json_t *form,
                           char out[STORE_OWNER_MAX + 1]) {
  const char *named = json_string_value(json_object_get(form, "owner"));
  if (req->has_key) {
    if (named && *named && strcmp(named, req->key.owner) != 0) {
      reply_error(rep, 400,
                  "field \"owner\": you can create models only "
                  "for yourself");
      return -1;
    }
    snprintf(out, STORE_OWNER_MAX + 1, "%s", req->key.owner);
    return 0;
  }
  char only[STORE_OWNER_MAX + 1];
  int count = auth_owners(req->srv, named, only);
  if (count < 0) {
    reply_error(rep, 500, "database error (see the chubd log)");
    return -1;
  }
  if (named && *named && count > 0) {
    snprintf(out, STORE_OWNER_MAX + 1, "%s", named);
    return 0;
  }
  if (!(named && *named) && count == 1) {
    snprintf(out, STORE_OWNER_MAX + 1, "%s", only);
    return 0;
  }
  reply_error(rep, 400,
              named && *named ? "field \"owner\": no API key belongs to %.64s"
                              : "field \"owner\" is required: this hub has "
                                "several owners",
              named ? named : "");
  return -1;
}

/* A positive integer field of the form, copied into config[key]. */
static int models_ui_int(json_t *form, const char *field, json_t *config,
                         const char *key, chubd_reply *rep) {
  json_t *v = json_object_get(form, field);
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 1 ||
      json_integer_value(v) > 1000000) {
    reply_error(rep, 400, "field \"%s\" must be an integer from 1 to 1000000",
                field);
    return -1;
  }
  json_object_set(config, key, v);
  return 0;
}

/* The create body of hub-api.md built from the form's fields. */
static json_t *models_ui_body(json_t *form, chubd_reply *rep) {
  const char *name = json_string_value(json_object_get(form, "name"));
  const char *arch = json_string_value(json_object_get(form, "architecture"));
  json_t *ds = json_object_get(form, "dataset");
  if (!name || !*name || strlen(name) > 128) {
    reply_error(rep, 400,
                "field \"name\" must be a string of 1 to 128 "
                "characters");
    return NULL;
  }
  if (!arch || !*arch || strlen(arch) > 128 || strchr(arch, '/')) {
    reply_error(rep, 400,
                "field \"architecture\" must be a model name such "
                "as yolo11n (or yolo11n.pt to start from its "
                "weights)");
    return NULL;
  }
  if (ds && !json_is_null(ds) && !json_is_string(ds)) {
    reply_error(rep, 400, "field \"dataset\" must be a dataset id");
    return NULL;
  }
  json_t *config = json_object();
  if (models_ui_int(form, "epochs", config, "epochs", rep) < 0 ||
      models_ui_int(form, "imgsz", config, "imageSize", rep) < 0 ||
      models_ui_int(form, "batch", config, "batchSize", rep) < 0 ||
      models_ui_int(form, "patience", config, "patience", rep) < 0) {
    json_decref(config);
    return NULL;
  }
  size_t alen = strlen(arch);
  int weights = alen > 3 && strcmp(arch + alen - 3, ".pt") == 0;
  json_t *lineage = json_pack("{s:{s:s#}}", "architecture", "name", arch,
                              weights ? alen - 3 : alen);
  if (weights)
    json_object_set_new(lineage, "parent", json_pack("{s:s}", "name", arch));
  json_t *dataset = json_object();
  if (json_is_string(ds) && json_string_length(ds) > 0)
    json_object_set(dataset, "id", ds);
  return json_pack("{s:{s:s}, s:o, s:o, s:o}", "meta", "name", name, "config",
                   config, "lineage", lineage, "dataset", dataset);
}

void models_create_ui(chubd_request *req, chubd_reply *rep) {
  char err[VALIDATE_ERR], owner[STORE_OWNER_MAX + 1], id[UTIL_ID_LEN + 1];
  json_t *form;
  if (validate_json_object(req->body, req->body_len, &form, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return;
  }
  json_t *body = NULL;
  if (models_ui_owner(req, rep, form, owner) == 0)
    body = models_ui_body(form, rep);
  json_decref(form);
  if (!body)
    return;
  int rc = models_insert(req, rep, owner, body, id);
  json_decref(body);
  if (rc < 0)
    return;
  char root[600];
  links_root(req, root, sizeof root);
  char line1[1400], line2[800], url[700];
  snprintf(url, sizeof url, "%s/models/%s", root, id);
  snprintf(line1, sizeof line1,
           "export ULTRALYTICS_HUB_API=%s ULTRALYTICS_HUB_WEB=%s && yolo hub "
           "login YOUR_API_KEY",
           root, root);
  snprintf(line2, sizeof line2, "yolo train model=%s", url);
  reply_data(rep, 200,
             json_pack("{s:s, s:s, s:[s, s]}", "id", id, "url", url, "commands",
                       line1, line2),
             "model created");
}

void models_get(chubd_request *req, chubd_reply *rep) {
  store_model m;
  if (models_lookup(req, rep, &m) < 0)
    return;
  json_t *o = models_json(req, &m, rep);
  store_model_free(&m);
  if (o)
    reply_data(rep, 200, o, "");
}

typedef struct models_list_ctx {
  chubd_request *req;
  chubd_reply *rep;
  json_t *results;
  char last_id[UTIL_ID_LEN + 1];
  int failed;
} models_list_ctx;

static int models_list_row(void *ud, const store_model *m) {
  models_list_ctx *ctx = ud;
  json_t *o = models_json(ctx->req, m, ctx->rep);
  if (!o) {
    ctx->failed = 1;
    return 1;
  }
  json_array_append_new(ctx->results, o);
  memcpy(ctx->last_id, m->id, sizeof ctx->last_id);
  return 0;
}

int models_paging(chubd_request *req, chubd_reply *rep, const char *what,
                  int *limit, const char **after) {
  long long n = MODELS_LIMIT_DEFAULT;
  const char *q = httpd_query(req, "limit");
  if ((q && validate_uint(q, 1000000000LL, &n) < 0) || n < 1) {
    reply_error(rep, 400,
                "query field \"limit\" must be an integer from 1 to %d",
                MODELS_LIMIT_MAX);
    return -1;
  }
  *limit = n > MODELS_LIMIT_MAX ? MODELS_LIMIT_MAX : (int)n;
  *after = httpd_query(req, "last_doc_id");
  if (*after && **after == '\0')
    *after = NULL;
  if (*after && !util_is_alnum_n(*after, UTIL_ID_LEN)) {
    reply_error(rep, 400,
                "query field \"last_doc_id\" must be a %s id (20 characters "
                "[A-Za-z0-9])",
                what);
    return -1;
  }
  return 0;
}

void models_list(chubd_request *req, chubd_reply *rep) {
  int limit;
  const char *after;
  if (models_paging(req, rep, "model", &limit, &after) < 0)
    return;
  models_list_ctx ctx = {req, rep, json_array(), "", 0};
  int64_t total = 0;
  int more = 0;
  store *st = req->srv->st;
  const char *project = httpd_query(req, "project");
  store_rc rc;
  if (project) {
    /* One project's runs: its newest `limit`, not paged further. */
    if (!util_is_alnum_n(project, UTIL_ID_LEN) || after) {
      json_decref(ctx.results);
      reply_error(rep, 400,
                  "query field \"project\" must be a project id (20 "
                  "characters [A-Za-z0-9]), without last_doc_id");
      return;
    }
    rc = st->ops->run_models(st, project, req->owner, limit, models_list_row,
                             &ctx);
    total = (int64_t)json_array_size(ctx.results);
  } else {
    rc = st->ops->model_list(st, req->owner, after, limit, models_list_row,
                             &ctx, &total, &more);
  }
  if (ctx.failed || rc != STORE_OK) {
    json_decref(ctx.results);
    if (rc == STORE_NOTFOUND)
      reply_error(rep, 400, "query field \"last_doc_id\": no model %s", after);
    else if (!ctx.failed)
      reply_store(rep, rc, "models");
    return;
  }
  json_t *data = json_object();
  json_object_set_new(data, "results", ctx.results);
  json_object_set_new(data, "total", json_integer(total));
  json_object_set_new(data, "lastRecordId",
                      more ? json_string(ctx.last_id) : json_null());
  reply_data(rep, 200, data, "");
}

/* Merges patch[key] (an object) into the stored JSON text of that part. */
static char *models_merge(const char *stored, json_t *patch, const char *key) {
  json_t *p = json_object_get(patch, key);
  if (!json_is_object(p))
    return NULL;
  json_t *cur = models_parse(stored);
  json_object_update(cur, p);
  char *text = json_dumps(cur, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(cur);
  return text;
}

void models_patch(chubd_request *req, chubd_reply *rep) {
  json_t *body = models_body(req, rep, validate_model_patch);
  if (!body)
    return;
  store_model m;
  if (models_lookup(req, rep, &m) < 0) {
    json_decref(body);
    return;
  }
  char *meta = models_merge(m.meta, body, "meta");
  char *config = models_merge(m.config, body, "config");
  store_model_free(&m);
  json_decref(body);
  store *st = req->srv->st;
  store_rc rc =
      st->ops->model_update(st, req->r.id, meta, config, util_now_ms());
  free(meta);
  free(config);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  if (models_lookup(req, rep, &m) < 0)
    return;
  json_t *o = models_json(req, &m, rep);
  store_model_free(&m);
  if (o)
    reply_data(rep, 200, o, "model updated");
}

/* After a hard delete or a reset: removes the blobs nothing else uses. */
static void models_drop_blobs(chubd_request *req, store_checkpoint *k,
                              size_t n) {
  pthread_mutex_lock(&req->srv->blobs_mu);
  for (size_t i = 0; i < n; i++)
    blobs_drop_unused(req->srv->cfg.blobs_dir, req->srv->st, k[i].sha256);
  pthread_mutex_unlock(&req->srv->blobs_mu);
}

void models_delete(chubd_request *req, chubd_reply *rep) {
  int hard = 0;
  const char *q = httpd_query(req, "hard");
  if (q && validate_bool(q, &hard) < 0) {
    reply_error(rep, 400,
                "query field \"hard\" must be True, False, true, "
                "false, 1 or 0");
    return;
  }
  store_model m;
  if (models_lookup(req, rep, &m) < 0)
    return;
  store_model_free(&m);
  store *st = req->srv->st;
  store_checkpoint *k = NULL;
  size_t n = 0;
  if (hard && st->ops->checkpoints(st, req->r.id, &k, &n) != STORE_OK) {
    reply_error(rep, 500, "database error (see the chubd log)");
    return;
  }
  store_rc rc = st->ops->model_delete(st, req->r.id, hard);
  if (rc == STORE_OK && hard)
    models_drop_blobs(req, k, n);
  free(k);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  reply_data(rep, 200, json_pack("{s:s, s:b}", "id", req->r.id, "hard", hard),
             hard ? "model deleted with its metrics and weights"
                  : "model deleted");
}

/* The model a /model-reset or /get-export body names in "modelId", into
 * req->r.id; -1 with a 400 in rep when it names none. */
static int models_body_id(chubd_request *req, chubd_reply *rep) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (validate_json_object(req->body, req->body_len, &body, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return -1;
  }
  const char *id = json_string_value(json_object_get(body, "modelId"));
  int ok = id && util_is_alnum_n(id, UTIL_ID_LEN);
  if (ok)
    memcpy(req->r.id, id, UTIL_ID_LEN + 1);
  json_decref(body);
  if (!ok) {
    reply_error(rep, 400,
                "field \"modelId\" must be a model id (20 characters "
                "[A-Za-z0-9])");
    return -1;
  }
  return 0;
}

void models_reset(chubd_request *req, chubd_reply *rep) {
  if (models_body_id(req, rep) < 0 || models_check(req, rep) < 0)
    return;
  store *st = req->srv->st;
  store_checkpoint *k = NULL;
  size_t n = 0;
  store_rc rc = st->ops->checkpoints(st, req->r.id, &k, &n);
  if (rc == STORE_OK)
    rc = st->ops->model_reset(st, req->r.id, req->owner, util_now_ms());
  if (rc == STORE_OK)
    models_drop_blobs(req, k, n);
  free(k);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "model %s not found", req->r.id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  reply_data(rep, 200,
             json_pack("{s:s, s:s}", "id", req->r.id, "status", "new"),
             "model reset: metrics and weights removed, status new");
}

void models_not_run(chubd_request *req, chubd_reply *rep) {
  if (req->r.id[0] == '\0' && models_body_id(req, rep) < 0)
    return;
  if (models_check(req, rep) < 0)
    return;
  int predict = req->r.kind == ROUTE_PREDICT;
  reply_error(rep, 501,
              "chubd stores and serves models but does not run them, so it "
              "cannot %s; download the weights (GET /v1/models/%s, field "
              "\"weights\") and %s locally, e.g. `yolo %s model=WEIGHTS_URL%s`",
              predict ? "predict" : "export", req->r.id,
              predict ? "predict" : "export", predict ? "predict" : "export",
              predict ? " source=IMAGE" : " format=onnx");
}

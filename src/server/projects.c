/*
 * projects.c - projects: named groups of an owner's models
 * (GET/POST /v1/projects, GET/PATCH/DELETE /v1/projects/{id}, and the
 * reads under /ui for the pages).
 *
 * Ultralytics Platform names a project in every webhook (`project=`), so
 * platform.c makes one the first time a run names it; a person may also
 * make, rename or delete one here. A project is found by its owner and
 * name, which are unique together; deleting one hides it (its models stay,
 * as models) and frees its name. Lists page as /v1/models does.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROJECTS_META_MAX 4096 /* bytes of a project's meta, as JSON */

int projects_name_ok(const char *name, const char *field,
                     char err[VALIDATE_ERR]) {
  size_t n = name ? strlen(name) : 0;
  int ok = n > 0 && n <= STORE_PROJECT_NAME_MAX;
  for (size_t i = 0; ok && i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  }
  if (!ok)
    snprintf(err, VALIDATE_ERR,
             "field \"%s\" must be a string of 1 to %d characters [a-z0-9-]",
             field, STORE_PROJECT_NAME_MAX);
  return ok ? 0 : -1;
}

static json_t *projects_json(const store_project *p) {
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(p->id));
  json_object_set_new(o, "name", json_string(p->name));
  json_object_set_new(o, "owner", json_string(p->owner));
  json_object_set_new(o, "meta", models_parse(p->meta));
  json_object_set_new(o, "models", json_integer(p->models));
  models_time(o, "created_at", p->created_ms);
  models_time(o, "updated_at", p->updated_ms);
  return o;
}

/* The body of a create or patch: name (required on create) and meta (an
 * object), nothing else. 0 with *name (into body) and *meta (malloc'd
 * JSON or NULL), or -1 with a 400 in rep. */
static int projects_body(chubd_request *req, chubd_reply *rep, int create,
                         json_t **body, const char **name, char **meta) {
  char err[VALIDATE_ERR];
  *name = NULL;
  *meta = NULL;
  if (validate_json_object(req->body, req->body_len, body, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return -1;
  }
  const char *key;
  json_t *v;
  json_object_foreach(*body, key, v) {
    if (strcmp(key, "name") != 0 && strcmp(key, "meta") != 0) {
      reply_error(rep, 400,
                  "unknown field \"%.64s\" (a project takes name "
                  "and meta)",
                  key);
      goto fail;
    }
  }
  v = json_object_get(*body, "name");
  if (v || create) {
    if (projects_name_ok(json_string_value(v), "name", err) < 0) {
      reply_error(rep, 400, "%s", err);
      goto fail;
    }
    *name = json_string_value(v);
  }
  v = json_object_get(*body, "meta");
  if (v) {
    if (!json_is_object(v)) {
      reply_error(rep, 400, "field \"meta\" must be an object");
      goto fail;
    }
    *meta = json_dumps(v, JSON_COMPACT);
    if (!*meta || strlen(*meta) > PROJECTS_META_MAX) {
      reply_error(rep, 413, "field \"meta\" is over %d bytes as JSON",
                  PROJECTS_META_MAX);
      goto fail;
    }
  }
  return 0;
fail:
  free(*meta);
  *meta = NULL;
  json_decref(*body);
  *body = NULL;
  return -1;
}

static void projects_answer(chubd_request *req, chubd_reply *rep,
                            const char *id, unsigned status,
                            const char *message) {
  store *st = req->srv->st;
  store_project p;
  store_rc rc = st->ops->project_get(st, id, req->owner, &p);
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "project %s not found", id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "project");
    return;
  }
  reply_data(rep, status, projects_json(&p), message);
  store_project_free(&p);
}

typedef struct projects_list_ctx {
  json_t *results;
  char last_id[UTIL_ID_LEN + 1];
} projects_list_ctx;

static int projects_list_row(void *ud, const store_project *p) {
  projects_list_ctx *ctx = ud;
  json_array_append_new(ctx->results, projects_json(p));
  memcpy(ctx->last_id, p->id, sizeof ctx->last_id);
  return 0;
}

void projects_list(chubd_request *req, chubd_reply *rep) {
  int limit;
  const char *after;
  if (models_paging(req, rep, "project", &limit, &after) < 0)
    return;
  projects_list_ctx ctx = {json_array(), ""};
  int64_t total = 0;
  int more = 0;
  store *st = req->srv->st;
  store_rc rc = st->ops->project_list(st, req->owner, after, limit,
                                      projects_list_row, &ctx, &total, &more);
  if (rc != STORE_OK) {
    json_decref(ctx.results);
    if (rc == STORE_NOTFOUND)
      reply_error(rep, 400, "query field \"last_doc_id\": no project %s",
                  after);
    else
      reply_store(rep, rc, "projects");
    return;
  }
  json_t *data = json_object();
  json_object_set_new(data, "results", ctx.results);
  json_object_set_new(data, "total", json_integer(total));
  json_object_set_new(data, "lastRecordId",
                      more ? json_string(ctx.last_id) : json_null());
  reply_data(rep, 200, data, "");
}

void projects_create(chubd_request *req, chubd_reply *rep) {
  json_t *body;
  const char *name;
  char *meta;
  if (projects_body(req, rep, 1, &body, &name, &meta) < 0)
    return;
  store *st = req->srv->st;
  char new_id[UTIL_ID_LEN + 1], id[UTIL_ID_LEN + 1] = "";
  store_rc rc = STORE_ERROR;
  if (util_random_alnum(new_id, UTIL_ID_LEN) == 0)
    rc = st->ops->project_ensure(st, req->key.owner, name, new_id,
                                 util_now_ms(), id);
  if (rc == STORE_OK && meta)
    rc = st->ops->project_update(st, id, req->key.owner, NULL, meta,
                                 util_now_ms());
  int created = rc == STORE_OK && strcmp(id, new_id) == 0;
  json_decref(body);
  free(meta);
  if (rc != STORE_OK) {
    reply_store(rep, rc, "project");
    return;
  }
  /* Creating a name that is there answers that project: Platform runs and
   * people name projects alike, and either may come first. */
  projects_answer(req, rep, id, created ? 201 : 200,
                  created ? "project created" : "project exists");
}

void projects_get(chubd_request *req, chubd_reply *rep) {
  projects_answer(req, rep, req->r.id, 200, "");
}

void projects_patch(chubd_request *req, chubd_reply *rep) {
  json_t *body;
  const char *name;
  char *meta;
  if (projects_body(req, rep, 0, &body, &name, &meta) < 0)
    return;
  store *st = req->srv->st;
  store_rc rc = st->ops->project_update(st, req->r.id, req->owner, name, meta,
                                        util_now_ms());
  free(meta);
  if (rc == STORE_CONFLICT)
    reply_error(rep, 409, "another project is already called %s", name);
  else if (rc == STORE_NOTFOUND)
    reply_error(rep, 404, "project %s not found", req->r.id);
  else if (rc != STORE_OK)
    reply_store(rep, rc, "project");
  else
    projects_answer(req, rep, req->r.id, 200, "project updated");
  json_decref(body);
}

void projects_delete(chubd_request *req, chubd_reply *rep) {
  store *st = req->srv->st;
  store_rc rc =
      st->ops->project_delete(st, req->r.id, req->owner, util_now_ms());
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "project %s not found", req->r.id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "project");
    return;
  }
  reply_data(rep, 200, json_pack("{s:s}", "id", req->r.id),
             "project deleted (its models stay)");
}

/*
 * route.c - the table of chubd's paths, as code: split the path into
 * segments, match the fixed ones, check the variable ones (ids, weights
 * selectors, asset names) and say which methods each path takes.
 *
 * Wrong ids answer 400 (the client sent something that can never name a
 * model), unknown paths 404 and known paths with the wrong method 405, in
 * that order of checking per hub-api.md.
 */
#include "route.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ROUTE_MAX_SEGS 8

int route_method_of(const char *method) {
  static const struct {
    const char *name;
    int bit;
  } methods[] = {{"GET", ROUTE_GET},        {"HEAD", ROUTE_HEAD},
                 {"POST", ROUTE_POST},      {"PATCH", ROUTE_PATCH},
                 {"DELETE", ROUTE_DELETE},  {"PUT", ROUTE_PUT},
                 {"OPTIONS", ROUTE_OPTIONS}};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (method && strcmp(method, methods[i].name) == 0)
      return methods[i].bit;
  return ROUTE_OTHER;
}

void route_allow_header(int allowed, char *out, size_t n) {
  static const char *names[] = {"GET",    "HEAD", "POST",   "PATCH",
                                "DELETE", "PUT",  "OPTIONS"};
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < 7; i++) {
    if (!(allowed & (1 << i)))
      continue;
    int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", names[i]);
    if (w < 0 || (size_t)w >= n - used)
      return;
    used += (size_t)w;
  }
}

/* Splits path at '/' into at most ROUTE_MAX_SEGS segments copied into buf.
 * Returns the count, or -1 when there are too many or one is empty (a
 * double slash), which no route takes. */
static int route_split(const char *path, char *buf, size_t bufsize,
                       char **segs) {
  size_t len = strlen(path);
  if (len == 0 || path[0] != '/' || len >= bufsize)
    return -1;
  memcpy(buf, path + 1, len); /* includes the terminator */
  len -= 1;
  if (len > 0 && buf[len - 1] == '/') /* one trailing slash is forgiven */
    buf[--len] = '\0';
  if (len == 0)
    return 0;
  int n = 0;
  char *p = buf;
  for (;;) {
    if (n == ROUTE_MAX_SEGS)
      return -1;
    segs[n++] = p;
    char *slash = strchr(p, '/');
    if (!slash)
      break;
    *slash = '\0';
    p = slash + 1;
    if (*p == '\0' || *p == '/')
      return -1;
  }
  if (segs[n - 1][0] == '\0')
    return -1;
  return n;
}

static void route_fail(route *r, unsigned status, const char *error) {
  r->status = status;
  r->error = error;
}

/* Accepts the route when the method fits, else marks it 405. HEAD rides
 * along with GET everywhere. */
static void route_set(route *r, route_kind kind, int allowed) {
  if (allowed & ROUTE_GET)
    allowed |= ROUTE_HEAD;
  r->kind = kind;
  r->allowed = allowed;
  if (!(r->method & allowed))
    route_fail(r, 405, "method not allowed on this path");
}

static int route_file_name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max || s[0] == '.')
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '.' && c != '-' && c != '_')
      return 0;
  }
  return 1;
}

static int route_take_id(route *r, const char *seg) {
  if (!util_is_alnum_n(seg, UTIL_ID_LEN)) {
    route_fail(r, 400,
               r->kind == ROUTE_DATASETS
                   ? "dataset id must be 20 characters [A-Za-z0-9]"
                   : "model id must be 20 characters [A-Za-z0-9]");
    return 0;
  }
  memcpy(r->id, seg, UTIL_ID_LEN + 1);
  return 1;
}

static int route_take_weights(route *r, const char *seg) {
  if (strcmp(seg, "last") == 0 || strcmp(seg, "best") == 0) {
    strcpy(r->weights, seg);
    return 1;
  }
  if (!util_is_sha256_hex(seg)) {
    route_fail(r, 400, "weights must be last, best or a 64-digit sha256");
    return 0;
  }
  for (int i = 0; i < 64; i++)
    r->weights[i] = (char)tolower((unsigned char)seg[i]);
  r->weights[64] = '\0';
  return 1;
}

/* .../{sha256}/{name}: a download by a name the hub gave out. */
static void route_blob(route *r, const char *sha, const char *name,
                       route_kind kind) {
  if (!util_is_sha256_hex(sha)) {
    route_fail(r, 400,
               "a download path needs a 64-digit sha256 before the "
               "file name");
    return;
  }
  for (int i = 0; i < 64; i++)
    r->weights[i] = (char)tolower((unsigned char)sha[i]);
  r->weights[64] = '\0';
  if (!route_file_name_ok(name, ROUTE_NAME_MAX)) {
    route_fail(r, 400,
               "download file name must be 1 to 128 characters "
               "[A-Za-z0-9._-], not starting with a dot");
    return;
  }
  strcpy(r->name, name);
  route_set(r, kind, ROUTE_GET);
}

/* /datasets/{id}..., shared by /v1 and /ui (where only reads are). */
static void route_datasets(route *r, char **segs, int n) {
  r->kind = ROUTE_DATASETS; /* for route_take_id's message */
  if (n == 0) {
    route_set(r, ROUTE_DATASETS, r->ui ? ROUTE_GET : ROUTE_GET | ROUTE_POST);
    return;
  }
  if (!route_take_id(r, segs[0]))
    return;
  if (n == 1)
    route_set(r, ROUTE_DATASET,
              r->ui ? ROUTE_GET : ROUTE_GET | ROUTE_PATCH | ROUTE_DELETE);
  else if (n == 2 && !r->ui && strcmp(segs[1], "upload") == 0)
    route_set(r, ROUTE_DATASET_UPLOAD, ROUTE_POST);
  else if (n == 4 && !r->ui && strcmp(segs[1], "download") == 0)
    route_blob(r, segs[2], segs[3], ROUTE_DATASET_BLOB);
  else
    route_fail(r, 404, "no such endpoint");
}

/* /models/{id}..., shared by /v1 and /ui: segs start after the prefix. */
static void route_models(route *r, char **segs, int n) {
  if (n == 0) {
    route_set(r, ROUTE_MODELS, ROUTE_GET | ROUTE_POST);
    return;
  }
  if (!route_take_id(r, segs[0]))
    return;
  if (n == 1) {
    route_set(r, ROUTE_MODEL,
              r->ui ? ROUTE_GET
                    : ROUTE_GET | ROUTE_POST | ROUTE_PATCH | ROUTE_DELETE);
  } else if (n == 2 && strcmp(segs[1], "metrics") == 0) {
    route_set(r, ROUTE_MODEL_METRICS, ROUTE_GET);
  } else if (n == 2 && strcmp(segs[1], "console") == 0) {
    route_set(r, ROUTE_MODEL_CONSOLE, ROUTE_GET);
  } else if (n == 2 && strcmp(segs[1], "system") == 0) {
    route_set(r, ROUTE_MODEL_SYSTEM, ROUTE_GET);
  } else if (n == 2 && strcmp(segs[1], "run") == 0) {
    route_set(r, ROUTE_MODEL_RUN, ROUTE_GET);
  } else if (n == 2 && strcmp(segs[1], "stop") == 0) {
    route_set(r, ROUTE_MODEL_STOP, ROUTE_POST);
  } else if (n == 2 && !r->ui && strcmp(segs[1], "upload") == 0) {
    route_set(r, ROUTE_MODEL_UPLOAD, ROUTE_POST);
  } else if (n == 2 && !r->ui && strcmp(segs[1], "export") == 0) {
    route_set(r, ROUTE_MODEL_EXPORT, ROUTE_POST);
  } else if (n == 3 && strcmp(segs[1], "weights") == 0) {
    if (route_take_weights(r, segs[2]))
      route_set(r, ROUTE_MODEL_WEIGHTS, ROUTE_GET);
  } else if (n == 4 && !r->ui && strcmp(segs[1], "weights") == 0) {
    route_blob(r, segs[2], segs[3], ROUTE_MODEL_BLOB);
  } else {
    route_fail(r, 404, "no such endpoint");
  }
}

/* /projects/{id}, shared by /v1 and /ui (where only reads are). */
static void route_projects(route *r, char **segs, int n) {
  if (n == 0) {
    route_set(r, ROUTE_PROJECTS, r->ui ? ROUTE_GET : ROUTE_GET | ROUTE_POST);
    return;
  }
  if (!util_is_alnum_n(segs[0], UTIL_ID_LEN)) {
    route_fail(r, 400, "project id must be 20 characters [A-Za-z0-9]");
    return;
  }
  memcpy(r->id, segs[0], UTIL_ID_LEN + 1);
  if (n == 1)
    route_set(r, ROUTE_PROJECT,
              r->ui ? ROUTE_GET : ROUTE_GET | ROUTE_PATCH | ROUTE_DELETE);
  else
    route_fail(r, 404, "no such endpoint");
}

/* A Platform slug: 1 to 128 characters [a-z0-9-] (ultralytics' slug()
 * keeps nothing else); the first (i == 0) is an owner name, which may
 * also hold what chubd's owner names do. */
static int route_take_slug(route *r, int i, const char *seg) {
  size_t n = strlen(seg);
  if (n == 0 || n > ROUTE_NAME_MAX) {
    route_fail(r, 400, "a slug must be 1 to 128 characters [a-z0-9-]");
    return 0;
  }
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)seg[k];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          (i == 0 &&
           (c == '_' || c == '.' || c == '@' || (c >= 'A' && c <= 'Z'))))) {
      route_fail(r, 400, "a slug must be 1 to 128 characters [a-z0-9-]");
      return 0;
    }
  }
  memcpy(r->slug[i], seg, n + 1);
  return 1;
}

/* /api/webhooks/...: Ultralytics Platform's endpoints (platform.c). */
static void route_webhooks(route *r, char **segs, int n) {
  if (n == 2 && strcmp(segs[0], "training") == 0 &&
      strcmp(segs[1], "metrics") == 0) {
    route_set(r, ROUTE_PF_METRICS, ROUTE_POST);
  } else if (n == 2 && strcmp(segs[0], "models") == 0 &&
             strcmp(segs[1], "upload") == 0) {
    route_set(r, ROUTE_PF_UPLOAD, ROUTE_POST);
  } else if (n == 4 && strcmp(segs[0], "models") == 0 &&
             strcmp(segs[2], "upload") == 0) {
    if (!route_take_id(r, segs[1]))
      return;
    if (strcmp(segs[3], "best.pt") != 0 && strcmp(segs[3], "last.pt") != 0) {
      route_fail(r, 400, "upload file must be best.pt or last.pt");
      return;
    }
    strcpy(r->name, segs[3]);
    route_set(r, ROUTE_PF_PUT, ROUTE_PUT);
  } else if (n == 5 && strcmp(segs[0], "models") == 0 &&
             strcmp(segs[4], "download") == 0) {
    if (route_take_slug(r, 0, segs[1]) && route_take_slug(r, 1, segs[2]) &&
        route_take_slug(r, 2, segs[3]))
      route_set(r, ROUTE_PF_MODEL, ROUTE_GET);
  } else if (n == 4 && strcmp(segs[0], "datasets") == 0 &&
             strcmp(segs[3], "export") == 0) {
    if (route_take_slug(r, 0, segs[1]) && route_take_slug(r, 1, segs[2]))
      route_set(r, ROUTE_PF_DATASET, ROUTE_GET);
  } else {
    route_fail(r, 404, "no such endpoint");
  }
}

static void route_v1(route *r, char **segs, int n) {
  if (n == 1 && strcmp(segs[0], "auth") == 0)
    route_set(r, ROUTE_AUTH, ROUTE_POST);
  else if (n == 1 && strcmp(segs[0], "health") == 0)
    route_set(r, ROUTE_HEALTH, ROUTE_GET);
  else if (n == 1 && strcmp(segs[0], "events") == 0)
    route_set(r, ROUTE_EVENTS, ROUTE_POST);
  else if (n >= 1 && strcmp(segs[0], "models") == 0)
    route_models(r, segs + 1, n - 1);
  else if (n >= 1 && strcmp(segs[0], "datasets") == 0)
    route_datasets(r, segs + 1, n - 1);
  else if (n >= 1 && strcmp(segs[0], "projects") == 0)
    route_projects(r, segs + 1, n - 1);
  else if (n == 2 && strcmp(segs[0], "predict") == 0) {
    if (route_take_id(r, segs[1]))
      route_set(r, ROUTE_PREDICT, ROUTE_POST);
  } else if (n == 4 && strcmp(segs[0], "agent") == 0 &&
             strcmp(segs[1], "heartbeat") == 0 &&
             strcmp(segs[2], "models") == 0) {
    if (route_take_id(r, segs[3]))
      route_set(r, ROUTE_HEARTBEAT, ROUTE_POST);
  } else
    route_fail(r, 404, "no such endpoint");
}

static void route_ui(route *r, char **segs, int n) {
  r->ui = 1;
  if (n == 1 && strcmp(segs[0], "login") == 0)
    route_set(r, ROUTE_UI_LOGIN, ROUTE_POST);
  else if (n == 1 && strcmp(segs[0], "logout") == 0)
    route_set(r, ROUTE_UI_LOGOUT, ROUTE_POST);
  else if (n >= 1 && strcmp(segs[0], "models") == 0)
    route_models(r, segs + 1, n - 1);
  else if (n >= 1 && strcmp(segs[0], "datasets") == 0)
    route_datasets(r, segs + 1, n - 1);
  else if (n >= 1 && strcmp(segs[0], "projects") == 0)
    route_projects(r, segs + 1, n - 1);
  else if (n == 1 && strcmp(segs[0], "owners") == 0)
    route_set(r, ROUTE_UI_OWNERS, ROUTE_GET);
  else
    route_fail(r, 404, "no such endpoint");
}

static void route_page(route *r, char **segs, int n) {
  if (n == 0) {
    strcpy(r->asset, "/index.html");
  } else if (n == 1 && strcmp(segs[0], "login") == 0) {
    strcpy(r->asset, "/login.html");
  } else if (n == 2 && strcmp(segs[0], "models") == 0) {
    if (!route_take_id(r, segs[1]))
      return;
    strcpy(r->asset, "/model.html");
  } else if (n == 1 && strcmp(segs[0], "compare") == 0) {
    strcpy(r->asset, "/compare.html");
  } else if (n == 1 && strcmp(segs[0], "datasets") == 0) {
    strcpy(r->asset, "/datasets.html");
  } else if (n == 2 && strcmp(segs[0], "datasets") == 0) {
    r->kind = ROUTE_DATASETS;
    if (!route_take_id(r, segs[1]))
      return;
    strcpy(r->asset, "/dataset.html");
  } else if (n == 2 && strcmp(segs[0], "static") == 0 &&
             route_file_name_ok(segs[1], 64)) {
    snprintf(r->asset, sizeof r->asset, "/static/%s", segs[1]);
  } else {
    route_fail(r, 404, "no such page");
    return;
  }
  route_set(r, ROUTE_PAGE, ROUTE_GET);
}

void route_parse(const char *method, const char *path, route *r) {
  char buf[512];
  char *segs[ROUTE_MAX_SEGS];
  memset(r, 0, sizeof *r);
  r->method = route_method_of(method);
  int n = path ? route_split(path, buf, sizeof buf, segs) : -1;
  if (n < 0) {
    route_fail(r, 404, "no such endpoint");
    return;
  }
  if (n >= 1 && strcmp(segs[0], "v1") == 0)
    route_v1(r, segs + 1, n - 1);
  else if (n >= 1 && strcmp(segs[0], "ui") == 0)
    route_ui(r, segs + 1, n - 1);
  else if (n >= 2 && strcmp(segs[0], "api") == 0 &&
           strcmp(segs[1], "webhooks") == 0)
    route_webhooks(r, segs + 2, n - 2);
  else if (n == 1 && strcmp(segs[0], "model-reset") == 0)
    route_set(r, ROUTE_MODEL_RESET, ROUTE_POST);
  else if (n == 1 && strcmp(segs[0], "get-export") == 0)
    route_set(r, ROUTE_GET_EXPORT, ROUTE_POST);
  else if (n == 1 && strcmp(segs[0], "metrics") == 0)
    route_set(r, ROUTE_PROMETHEUS, ROUTE_GET);
  else
    route_page(r, segs, n);
}

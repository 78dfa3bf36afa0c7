/*
 * route.h - maps a request's method and path to one of chubd's endpoints.
 *
 * Pure string work with no I/O, so that the fuzz target can drive it with
 * anything: an id in a path is checked here against [A-Za-z0-9]{20} before a
 * handler ever sees it, and nothing in a path is ever used to build a file
 * name.
 */
#ifndef CHUBD_ROUTE_H
#define CHUBD_ROUTE_H

#include "util.h"

typedef enum route_kind {
  ROUTE_NONE = 0,
  ROUTE_AUTH,           /* /v1/auth */
  ROUTE_HEALTH,         /* /v1/health */
  ROUTE_EVENTS,         /* /v1/events */
  ROUTE_MODELS,         /* /v1/models, /ui/models */
  ROUTE_MODEL,          /* /v1/models/{id}, /ui/models/{id} */
  ROUTE_MODEL_METRICS,  /* .../models/{id}/metrics */
  ROUTE_MODEL_UPLOAD,   /* /v1/models/{id}/upload */
  ROUTE_MODEL_WEIGHTS,  /* .../models/{id}/weights/{last|best|sha256} */
  ROUTE_MODEL_BLOB,     /* /v1/models/{id}/weights/{sha256}/{name}: signed */
  ROUTE_MODEL_RESET,    /* /model-reset */
  ROUTE_MODEL_EXPORT,   /* /v1/models/{id}/export */
  ROUTE_GET_EXPORT,     /* /get-export (the model in the body) */
  ROUTE_PREDICT,        /* /v1/predict/{id} */
  ROUTE_DATASETS,       /* /v1/datasets, /ui/datasets */
  ROUTE_DATASET,        /* /v1/datasets/{id}, /ui/datasets/{id} */
  ROUTE_DATASET_UPLOAD, /* /v1/datasets/{id}/upload */
  ROUTE_DATASET_BLOB,   /* /v1/datasets/{id}/download/{sha256}/{name} */
  ROUTE_UI_OWNERS,      /* /ui/owners */
  ROUTE_HEARTBEAT,      /* /v1/agent/heartbeat/models/{id} */
  ROUTE_UI_LOGIN,       /* /ui/login */
  ROUTE_UI_LOGOUT,      /* /ui/logout */
  ROUTE_PAGE,           /* /, /models/{id}, /login, /static/NAME */
  ROUTE_PROMETHEUS,     /* /metrics (chubd --metrics) */
  ROUTE_MODEL_STOP,     /* .../models/{id}/stop */
  ROUTE_MODEL_CONSOLE,  /* .../models/{id}/console */
  ROUTE_PROJECTS,       /* /v1/projects, /ui/projects */
  ROUTE_PROJECT,        /* /v1/projects/{id}, /ui/projects/{id} */
  ROUTE_PF_METRICS,     /* /api/webhooks/training/metrics */
  ROUTE_PF_UPLOAD,      /* /api/webhooks/models/upload */
  ROUTE_PF_PUT,         /* /api/webhooks/models/{id}/upload/{best.pt|last.pt} */
  ROUTE_PF_MODEL,   /* /api/webhooks/models/{user}/{project}/{model}/download */
  ROUTE_PF_DATASET, /* /api/webhooks/datasets/{user}/{slug}/export */
  ROUTE_MODEL_SYSTEM, /* .../models/{id}/system */
  ROUTE_MODEL_RUN,    /* .../models/{id}/run */
  ROUTE_KINDS         /* how many there are; not a route */
} route_kind;

enum route_method {
  ROUTE_GET = 1,
  ROUTE_HEAD = 2,
  ROUTE_POST = 4,
  ROUTE_PATCH = 8,
  ROUTE_DELETE = 16,
  ROUTE_PUT = 32,
  ROUTE_OPTIONS = 64,
  ROUTE_OTHER = 128,
};

/* A download's file name: [A-Za-z0-9._-], not starting with a dot. */
#define ROUTE_NAME_MAX 128

typedef struct route {
  route_kind kind;
  int ui;                        /* under /ui: cookie auth, /ui urls */
  int method;                    /* one of route_method */
  int allowed;                   /* methods the path takes (for 405/Allow) */
  unsigned status;               /* 0 when routed, else 400, 404 or 405 */
  const char *error;             /* for a person, when status != 0 */
  char id[UTIL_ID_LEN + 1];      /* model id when the path has one */
  char weights[65];              /* "last", "best" or lower-case sha256 */
  char name[ROUTE_NAME_MAX + 1]; /* ROUTE_*_BLOB: the file name */
  char asset[96];                /* page routes: the asset path to serve */
  /* ROUTE_PF_MODEL, ROUTE_PF_DATASET: user, project (or dataset) and
   * model slugs, each [a-z0-9-] */
  char slug[3][ROUTE_NAME_MAX + 1];
} route;

/* The route_method bit for an HTTP method name. */
int route_method_of(const char *method);

/* Routes `method` `path` (path without the query string). Always fills
 * r->status and, when it is not 0, r->error. */
void route_parse(const char *method, const char *path, route *r);

/* "GET, HEAD, POST" for a route_method mask, into out. */
void route_allow_header(int allowed, char *out, size_t n);

#endif

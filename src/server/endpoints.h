/*
 * endpoints.h - what chubd does for each route and method, in one table.
 *
 * route.c says which endpoint a path names (pure string work, fuzzed);
 * this table says, per endpoint and method, what body it reads and which
 * handler answers it; httpd.c only executes the table. Adding an endpoint
 * is a route kind, a row here and a handler.
 */
#ifndef CHUBD_ENDPOINTS_H
#define CHUBD_ENDPOINTS_H

#include "route.h"

struct chubd_request;
struct chubd_reply;

typedef enum endpoint_body {
  ENDPOINT_BODY_NONE,   /* a body, if sent, is read and ignored */
  ENDPOINT_BODY_JSON,   /* read whole (up to --max-body), application/json */
  ENDPOINT_BODY_UPLOAD, /* multipart/form-data, streamed by `begin` */
} endpoint_body;

typedef enum endpoint_answer {
  ENDPOINT_SYNC,     /* `handle` answers on the request's thread */
  ENDPOINT_DEFERRED, /* checked, then answered by the store's committer
                      * thread once committed (metrics uploads) */
} endpoint_answer;

typedef struct endpoint {
  route_kind kind;
  int methods; /* route_method bits; HEAD goes with GET */
  int ui;      /* -1: /v1 and /ui alike; 0: /v1 only; 1: /ui only */
  endpoint_body body;
  endpoint_answer answer;
  /* ENDPOINT_BODY_UPLOAD: opens the upload at the request's first call;
   * 0, or the status of the error written to the reply. */
  unsigned (*begin)(struct chubd_request *req, struct chubd_reply *rep);
  /* ENDPOINT_SYNC: answers the whole request. */
  void (*handle)(struct chubd_request *req, struct chubd_reply *rep);
} endpoint;

/* The endpoint serving the routed request r (r->status == 0), or NULL
 * when the table has no row for it (a bug: route.c and the table
 * disagree). */
const endpoint *endpoint_find(const route *r);

#endif

/*
 * server.h - what chubd's files share: the running server, a request as a
 * handler sees it, and the reply a handler fills in.
 *
 * Handlers never touch libmicrohttpd's responses: they fill a chubd_reply
 * (status, JSON body or file, headers) and httpd.c turns it into a
 * response. That keeps each handler file about its resource only.
 */
#ifndef CHUBD_SERVER_H
#define CHUBD_SERVER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "config.h"
#include "conns.h"
#include "keycache.h"
#include "prom.h"
#include "ratelimit.h"
#include "validate.h"
#include "route.h"
#include "sign.h"
#include "store.h"

#define CHUBD_VERSION "0.1.0"

/* The running server: built once by chubd.c, shared read-only by every
 * request thread except for the parts that carry their own locks. */
typedef struct chubd_server {
  chubd_config cfg;
  store *st;
  ratelimit *rl;        /* per API key */
  ratelimit *events_rl; /* per client address, for /v1/events */
  keycache *kc;
  conns *conns;   /* header deadlines */
  char *tls_cert; /* PEM text, when serving HTTPS */
  char *tls_key;
  int open_pages; /* loopback listener without --pages-login: pages
                   * and /ui need no key */
  int tls;        /* serving HTTPS */
  unsigned char url_secret[SIGN_SECRET_LEN]; /* signs download URLs */
  /* cfg.public_url is final once set: the default needs the bound port,
   * known only after the request threads started. */
  atomic_int public_url_ready;
  char public_host[256];    /* --public-url's host name, "" without one */
  char public_origin[512];  /* its scheme://host[:port], "" without one */
  int secure_cookies;       /* pages are reached over HTTPS */
  char own_host[256];       /* this machine's name, for a wildcard listener */
  pthread_mutex_t blobs_mu; /* orders blob commits against blob removal */
  atomic_int in_flight;     /* requests between first call and completion */
  atomic_int suspended;     /* requests waiting for the store's committer or an
                             * offload thread to answer */
  struct MHD_Daemon *metrics_daemon; /* --metrics-listen, or NULL */
  struct MHD_Daemon *upload_daemon;  /* uploads handed over by lane.c */
  struct lane *lane;       /* chubd's own loop (lane.h), or NULL over TLS */
  struct offload *offload; /* where uploads end (offload.h), or NULL */
} chubd_server;

#define CHUBD_REPLY_HEADERS 10

typedef struct chubd_reply {
  unsigned status;
  char *body; /* malloc'd, or NULL */
  size_t len;
  const void *static_body; /* not owned (embedded assets) */
  const char *ctype;
  int fd; /* >= 0: stream flen bytes of this file from off (owned) */
  uint64_t off, flen;
  /* Or a body made as it is sent (chunked): libmicrohttpd's content
   * reader callback, its state, and what frees the state (owned). */
  ssize_t (*stream)(void *cls, uint64_t pos, char *buf, size_t max);
  void *stream_cls;
  void (*stream_free)(void *cls);
  int nheaders;
  struct {
    char name[40];
    char value[320];
  } headers[CHUBD_REPLY_HEADERS];
} chubd_reply;

typedef struct upload upload; /* upload.h */

/* A header line of a request read by chubd's own loop (lane.c). */
typedef struct chubd_header {
  const char *name, *value;
} chubd_header;

typedef struct chubd_request {
  chubd_server *srv;
  struct MHD_Connection *conn; /* NULL when read by lane.c: */
  const chubd_header *headers; /* then its headers are these */
  int nheaders;
  route r;
  const char *body; /* the JSON body, when the route takes one */
  size_t body_len;
  int has_key;       /* a valid key came with the request */
  store_key key;     /* when has_key */
  const char *owner; /* whose models the request sees; NULL = everyone's */
  upload *upload;    /* a multipart upload in progress */
  int rate_limited;  /* rl holds this request's bucket state */
  ratelimit_state rl;
} chubd_request;

/* reply.c */
void reply_init(chubd_reply *rep);
void reply_free(chubd_reply *rep);
void reply_header(chubd_reply *rep, const char *name, const char *fmt, ...);
/* {"success": true, "message": message, "data": data}; data is stolen. */
void reply_data(chubd_reply *rep, unsigned status, json_t *data,
                const char *message);
/* {"success": false, "message": ...}. */
void reply_error(chubd_reply *rep, unsigned status, const char *fmt, ...);
/* The success envelope around data given as JSON text already encoded
 * (compact), for hot paths whose data is a fixed shape. */
void reply_data_text(chubd_reply *rep, unsigned status, const char *data_json,
                     const char *message);
/* Adds "error" (a copy of "message") to an error answer: Ultralytics
 * Platform's clients log that field. */
void reply_error_field(chubd_reply *rep);
/* 404 / 409 / 503 / 500 for a store result that is not STORE_OK. */
void reply_store(chubd_reply *rep, store_rc rc, const char *what);
/* The stored blob sha256 as a download named `filename`: ETag, Range
 * (206/416), If-None-Match (304), streamed from the file. */
void reply_blob(const chubd_request *req, chubd_reply *rep, const char *sha256,
                const char *filename);

/* auth.c: keys on requests, /v1/auth, /v1/health, /ui login/logout */
unsigned auth_identify(chubd_request *req, chubd_reply *rep);
/* The unrevoked key `key` (well-formed, UTIL_KEY_LEN characters): from the
 * key cache, else from the store and then cached. STORE_NOTFOUND for an
 * unknown or revoked one. */
store_rc auth_key(store *st, keycache *kc, const char *key, store_key *out);
void auth_post(chubd_request *req, chubd_reply *rep);
void auth_health(chubd_request *req, chubd_reply *rep);
void auth_ui_login(chubd_request *req, chubd_reply *rep);
void auth_ui_logout(chubd_request *req, chubd_reply *rep);
/* GET /ui/owners: whom the pages may create models for. */
void auth_ui_owners(chubd_request *req, chubd_reply *rep);
/* Owners holding an unrevoked key: how many (or -1 on a store error);
 * with `named`, 1 when that one does and 0 when not; the first one goes
 * to first. */
int auth_owners(chubd_server *srv, const char *named,
                char first[STORE_OWNER_MAX + 1]);

/* models.c */
void models_create(chubd_request *req, chubd_reply *rep);
/* POST /ui/models: the pages' "New model" form. */
void models_create_ui(chubd_request *req, chubd_reply *rep);
void models_get(chubd_request *req, chubd_reply *rep);
void models_list(chubd_request *req, chubd_reply *rep);
void models_patch(chubd_request *req, chubd_reply *rep);
void models_delete(chubd_request *req, chubd_reply *rep);
/* A stored JSON part (text) as an object; {} when it is not one. */
json_t *models_parse(const char *text);
/* o[key] = ms as an RFC 3339 UTC time. */
void models_time(json_t *o, const char *key, int64_t ms);
/* The limit and last_doc_id query fields of a list of `what`s; -1 with
 * a 400 in rep when they are malformed. */
int models_paging(chubd_request *req, chubd_reply *rep, const char *what,
                  int *limit, const char **after);
/* Stores a new model of `owner` from a checked create body (meta,
 * config, dataset, lineage); 0 with its id, or -1 with the error in rep. */
int models_insert(chubd_request *req, chubd_reply *rep, const char *owner,
                  json_t *body, char id[UTIL_ID_LEN + 1]);
/* POST /model-reset {"modelId"}. */
void models_reset(chubd_request *req, chubd_reply *rep);
/* Export and predict: 501, chubd does not run models. */
void models_not_run(chubd_request *req, chubd_reply *rep);
/* The model as the caller may see it, or a 404 reply. */
int models_lookup(chubd_request *req, chubd_reply *rep, store_model *m);
/* Whether the caller may see the model, or a 404 reply; no model read. */
int models_check(chubd_request *req, chubd_reply *rep);
/* Which of the checkpoints k (newest first) `last` and `best` name, as
 * indexes, -1 when none: last is the newest epoch checkpoint (else the
 * final), best the newest final (else the newest isBest checkpoint). */
void models_pick(const store_checkpoint *k, size_t n, long *last, long *best);

/* metrics.c */
/* Reads a metrics upload's body: 0 with its epochs in *e, *n (free them
 * with validate_epochs_free), or -1 with the reason in err. */
int metrics_read(const char *body, size_t len, store_epoch **e, size_t *n,
                 char err[VALIDATE_ERR]);
/* Checks an upload: 0 with its epochs in *e, *n (the caller frees them
 * with validate_epochs_free), or -1 with the 400 answer in rep. */
int metrics_post_check(chubd_request *req, chubd_reply *rep, store_epoch **e,
                       size_t *n);
/* Hands checked epochs to the store. STORE_OK: done(ud, rc) follows from
 * another thread after the commit, and e must live until then; anything
 * else was refused at once (answer with metrics_post_answer). */
store_rc metrics_post_queue(chubd_request *req, const store_epoch *e, size_t n,
                            store_done_cb done, void *ud);
/* The answer to an upload of n epochs the store answered with rc. */
void metrics_post_answer(chubd_request *req, chubd_reply *rep, store_rc rc,
                         size_t n);
void metrics_get(chubd_request *req, chubd_reply *rep);

/* weights.c */
/* Checks and opens an upload at the request's first call. Returns 0, or
 * the status of the error written to rep. */
unsigned weights_upload_begin(chubd_request *req, chubd_reply *rep);
void weights_upload_finish(chubd_request *req, chubd_reply *rep);
/* Makes the finished upload req->upload of model req->r.id a blob and a
 * checkpoint described by f, in that order (see blobs.c for why the
 * temporary is kept until the row is stored), and answers. */
void weights_store(chubd_request *req, const validate_upload *f,
                   const char *sha, chubd_reply *rep);
void weights_get(chubd_request *req, chubd_reply *rep);

/* datasets.c */
void datasets_create(chubd_request *req, chubd_reply *rep);
void datasets_get(chubd_request *req, chubd_reply *rep);
void datasets_list(chubd_request *req, chubd_reply *rep);
void datasets_patch(chubd_request *req, chubd_reply *rep);
void datasets_delete(chubd_request *req, chubd_reply *rep);
unsigned datasets_upload_begin(chubd_request *req, chubd_reply *rep);
void datasets_upload_finish(chubd_request *req, chubd_reply *rep);
void datasets_download(chubd_request *req, chubd_reply *rep);
/* The signed download URL of req->owner's newest dataset whose slug is
 * `slug` and that has a file: 0, or -1 with a 404 (or store error) in
 * rep. */
int datasets_export_url(chubd_request *req, chubd_reply *rep, const char *slug,
                        char *url, size_t n);
/* The dataset a new model names in dataset.id, checked to be owner's:
 * 0, or -1 with a 400 in rep. */
int datasets_check_for_model(chubd_request *req, chubd_reply *rep,
                             const char *owner, const char *id);
/* The `data` a model created from dataset id trains on: its signed URL
 * once uploaded, else its name; NULL when it is gone. */
json_t *datasets_data_for_model(const chubd_request *req, const char *id);

/* links.c: the absolute, signed download URLs chubd hands out */
/* The public root ("http://host:port[/prefix]") into out. */
void links_root(const chubd_request *req, char *out, size_t n);
/* The signed URL of checkpoint c of model id, whose file name says `role`
 * (best, last, epochN, final), into out. */
void links_weights(const chubd_request *req, const char *id,
                   const store_checkpoint *c, const char *role, char *out,
                   size_t n);
/* The signed URL of dataset d's file, named SLUG-SHA8.zip. */
void links_dataset(const chubd_request *req, const store_dataset *d,
                   const char *slug, char *out, size_t n);
/* The signed URL a Platform client PUTs model id's file (best.pt or
 * last.pt) to, into out. */
void links_upload(const chubd_request *req, const char *id, const char *file,
                  char *out, size_t n);
/* Checks the signature of a download URL presented without a key and
 * sets whose models it may fetch. 0, or the status of the error in rep. */
unsigned links_verify(chubd_request *req, chubd_reply *rep);

/* platform.c: Ultralytics Platform's webhooks (/api/webhooks/...), and
 * the stop button and console of a model */
void platform_metrics(chubd_request *req, chubd_reply *rep);
void platform_upload(chubd_request *req, chubd_reply *rep);
unsigned platform_put_begin(chubd_request *req, chubd_reply *rep);
void platform_put_finish(chubd_request *req, chubd_reply *rep);
void platform_model_download(chubd_request *req, chubd_reply *rep);
void platform_dataset_export(chubd_request *req, chubd_reply *rep);
void platform_stop(chubd_request *req, chubd_reply *rep);
void platform_console(chubd_request *req, chubd_reply *rep);
void platform_run(chubd_request *req, chubd_reply *rep);

/* system.c: the machine's load while a model trains, from libchub's
 * heartbeats and Platform's epoch_end; read back for the page's charts. */
#define SYSTEM_SAMPLE_MAX 16384   /* bytes of one sample's JSON */
#define SYSTEM_SAMPLES_MAX 100000 /* samples kept per model */
/* Keeps sample (a JSON object) of model id, of epoch (-1: taken by time).
 * A model past SYSTEM_SAMPLES_MAX keeps what it has (STORE_LIMIT). */
store_rc system_keep(chubd_request *req, const char *id, int64_t epoch,
                     json_t *sample);
/* 0 when sample (NULL: none) may be kept, else -1 with err set. */
int system_check(json_t *sample, char err[VALIDATE_ERR]);
void system_list(chubd_request *req, chubd_reply *rep);

/* projects.c */
void projects_list(chubd_request *req, chubd_reply *rep);
void projects_create(chubd_request *req, chubd_reply *rep);
void projects_get(chubd_request *req, chubd_reply *rep);
void projects_patch(chubd_request *req, chubd_reply *rep);
void projects_delete(chubd_request *req, chubd_reply *rep);
/* A project name: 1 to 128 characters [a-z0-9-] (what ultralytics'
 * slug() leaves). 0, or -1 with a message naming `field` in err. */
int projects_name_ok(const char *name, const char *field,
                     char err[VALIDATE_ERR]);

/* heartbeat.c, usage.c, pages.c */
void heartbeat_post(chubd_request *req, chubd_reply *rep);
void usage_post(chubd_request *req, chubd_reply *rep);
void pages_get(chubd_request *req, chubd_reply *rep);

/* httpd.c: the libmicrohttpd daemon, and a request's header or query
 * field (NULL when absent). */
const char *httpd_header(const chubd_request *req, const char *name);
const char *httpd_query(const chubd_request *req, const char *name);
/* Query field name as an integer from min to max, def when absent: 0, or
 * -1 with a 400 naming the field in rep. */
int httpd_query_int(const chubd_request *req, chubd_reply *rep,
                    const char *name, long long min, long long max,
                    long long def, long long *out);
/* Whether a Host header names this hub (NULL: none sent, accepted). */
int httpd_host_ok(const chubd_server *srv, const char *host);
/* The headers of the answer rep to req after its status line, in the
 * order sent, each through add (without Date, Connection and
 * Content-Length, which the sender adds). */
void httpd_reply_headers(const chubd_request *req, const chubd_reply *rep,
                         void (*add)(void *cls, const char *name,
                                     const char *value),
                         void *cls);
/* The checks of a JSON endpoint's request head: Content-Type, then the
 * declared size against --max-body. 0, or the status of the error in
 * rep. */
unsigned httpd_json_head(const chubd_request *req, chubd_reply *rep);
/* A request is over: counted (whole, or its connection ended first) and,
 * with --verbose, logged. */
void httpd_finished(chubd_server *srv, route_kind kind, const char *method,
                    const char *path, unsigned status, uint64_t bytes,
                    double t0, int whole);
/* Starts serving: libmicrohttpd, and in front of it (unless over TLS)
 * chubd's own loop, lane.c. */
struct MHD_Daemon *httpd_start(chubd_server *srv, char *err, size_t errn);
int httpd_bound_port(const chubd_server *srv, struct MHD_Daemon *d);
void httpd_stop(chubd_server *srv, struct MHD_Daemon *d);

#endif

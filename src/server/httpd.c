/*
 * httpd.c - chubd's HTTP side: the libmicrohttpd daemon, the life of one
 * request, and turning a handler's chubd_reply into a response.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then once per chunk of body, then once with no data.
 * Everything that can be decided from the headers (route, key, rate limit,
 * Content-Type, declared size, the model of an upload) is decided at the
 * first call. An error found then is answered at once when the client has
 * not started sending a body (no body, or Expect: 100-continue) or the body
 * is too large to be worth reading; otherwise the body is read and dropped
 * and the error answered at the end, so that the client, still writing,
 * reads an answer rather than a reset connection.
 *
 * Over plain HTTP, chubd's own loop (lane.c) accepts every connection,
 * serves metrics uploads itself with the functions below
 * (httpd_json_head, httpd_reply_headers, httpd_finished) and hands the
 * rest to this daemon, which then has no listening socket of its own.
 *
 * Threads: a pool of poll() threads (MHD_USE_POLL_INTERNAL_THREAD with
 * MHD_OPTION_THREAD_POOL_SIZE); each handles its connections start to end,
 * and the store gives each thread its own database connection. A metrics
 * upload is the exception: once checked, its connection is suspended and
 * the upload handed to the store's committer thread, which commits the
 * uploads of many connections in one transaction and resumes each after
 * COMMIT; meanwhile the poll thread serves its other connections (with
 * the thread blocked instead, as measured before, batches stayed near one
 * upload and throughput half as high). The end of a weights or dataset
 * upload is another: its handler, which fsyncs the file and may block
 * for long on a slow disk, runs on an offload thread (offload.h) while
 * the connection is suspended. Not epoll:
 * with libmicrohttpd 0.9.75's epoll mode, a client that closes its
 * connection in the middle of a request body is often not noticed (no
 * completion, no error) until the connection timeout (a minimal server
 * missed it in 4 of 6 tries, poll() in none), which kept a half-received
 * upload's temporary file and blocked a clean shutdown for two minutes.
 * poll() sees the hang-up at once.
 */
#include "server.h"

#include "endpoints.h"
#include "lane.h"
#include "offload.h"
#include "upload.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libmicrohttpd's memory per connection (its read buffer, headers and
 * answer), and the same for the daemon that takes uploads of weights and
 * datasets, which reads them in pieces of up to about half of it. */
#define HTTPD_POOL (32 * 1024)
#define HTTPD_UPLOAD_POOL (256 * 1024)

/* A refused body larger than this is not read to the end: the connection
 * is answered early (or closed) instead. */
#define HTTP_DRAIN_MAX (64ull * 1024 * 1024)

typedef struct httpd_req {
  chubd_request req;
  chubd_reply pending; /* an error decided before the body ended */
  int has_pending;
  const endpoint *ep; /* what serves the request, once routed */
  int takes_json;     /* the endpoint reads a JSON body */
  char *body;
  size_t len, cap;
  uint64_t dropped;
  double t0;
  char method[12];
  char path[200];
  unsigned status;
  uint64_t bytes;
  /* A metrics upload handed to the store, its connection suspended until
   * the store's committer answers (httpd_metrics_done). */
  store_epoch *epochs;
  size_t nepochs;
  atomic_int async_state; /* HTTP_ASYNC_* */
  atomic_int async_rc;    /* store_rc, once answered */
  /* The answer to a weights or dataset upload, made on an offload thread
   * (httpd_upload_end) while the connection was suspended. */
  chubd_reply async_reply;
} httpd_req;

enum { HTTP_ASYNC_NONE, HTTP_ASYNC_WAITING, HTTP_ASYNC_ANSWERED };

const char *httpd_header(const chubd_request *req, const char *name) {
  if (req->conn)
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
  for (int i = 0; i < req->nheaders; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}

const char *httpd_query(const chubd_request *req, const char *name) {
  if (!req->conn)
    return NULL; /* lane.c takes no request with a query */
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int httpd_query_int(const chubd_request *req, chubd_reply *rep,
                    const char *name, long long min, long long max,
                    long long def, long long *out) {
  const char *q = httpd_query(req, name);
  long long v = def;
  if (q && (validate_uint(q, max, &v) < 0 || v < min)) {
    reply_error(rep, 400,
                "query field \"%s\" must be an integer from %lld to %lld", name,
                min, max);
    return -1;
  }
  *out = v;
  return 0;
}

static int httpd_json_ctype_ok(const chubd_request *req) {
  const char *ct = httpd_header(req, "content-type");
  if (!ct)
    return 0;
  return strncasecmp(ct, "application/json", 16) == 0 &&
         (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static uint64_t httpd_declared_length(const chubd_request *req, int *known) {
  const char *cl = httpd_header(req, "content-length");
  long long v;
  *known = 0;
  if (cl && validate_uint(cl, INT64_MAX / 2, &v) == 0) {
    *known = 1;
    return (uint64_t)v;
  }
  return 0;
}

/* Whether a request with an error decided at the first call is answered
 * right away rather than after its body was read. */
static int httpd_answer_now(const chubd_request *req) {
  int known;
  uint64_t len = httpd_declared_length(req, &known);
  const char *te = httpd_header(req, "transfer-encoding");
  const char *expect = httpd_header(req, "expect");
  if (!te && (!known || len == 0))
    return 1; /* no body at all */
  if (expect && strncasecmp(expect, "100-continue", 12) == 0)
    return 1; /* the client waits for our word before sending */
  return known && len > HTTP_DRAIN_MAX;
}

/* What a browser may do with the pages and the JSON behind them: run only
 * chubd's own scripts and styles, never be framed, never sniff a type,
 * and tell other sites nothing of where it came from. */
#define HTTP_PAGE_CSP                                                          \
  "default-src 'self'; img-src 'self' data:; object-src 'none'; "              \
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

void httpd_reply_headers(const chubd_request *req, const chubd_reply *rep,
                         void (*add)(void *cls, const char *name,
                                     const char *value),
                         void *cls) {
  if (rep->ctype)
    add(cls, MHD_HTTP_HEADER_CONTENT_TYPE, rep->ctype);
  add(cls, "X-Content-Type-Options", "nosniff");
  /* What libchub may rely on: an upload's SHA-256 as a header, or as a
   * form field after the file (hashed while it is sent). */
  add(cls, "X-Chub-Sha256-Modes", "header, part");
  if (req->r.ui || req->r.kind == ROUTE_PAGE || req->r.status == 404) {
    add(cls, "Content-Security-Policy", HTTP_PAGE_CSP);
    add(cls, "X-Frame-Options", "DENY");
    add(cls, "Referrer-Policy", "same-origin");
  }
  for (int i = 0; i < rep->nheaders; i++)
    add(cls, rep->headers[i].name, rep->headers[i].value);
  if (rep->status == 405) {
    char allow[96];
    route_allow_header(req->r.allowed, allow, sizeof allow);
    add(cls, "Allow", allow);
  }
  if (req->rate_limited) {
    char v[3][21]; /* each number of the limit (none is negative) */
    v[0][util_u64_text((uint64_t)req->rl.limit, v[0])] = '\0';
    v[1][util_u64_text((uint64_t)req->rl.remaining, v[1])] = '\0';
    v[2][util_u64_text((uint64_t)req->rl.reset, v[2])] = '\0';
    add(cls, "X-RateLimit-Limit", v[0]);
    add(cls, "X-RateLimit-Remaining", v[1]);
    add(cls, "X-RateLimit-Reset", v[2]);
  }
}

static void httpd_add_header(void *cls, const char *name, const char *value) {
  MHD_add_response_header(cls, name, value);
}

static enum MHD_Result httpd_send(httpd_req *h, chubd_reply *rep) {
  struct MHD_Response *resp;
  uint64_t bytes;
  if (rep->fd >= 0) {
    resp =
        MHD_create_response_from_fd_at_offset64(rep->flen, rep->fd, rep->off);
    if (resp)
      rep->fd = -1; /* the response owns and closes it */
    bytes = rep->flen;
  } else if (rep->stream) {
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                             rep->stream, rep->stream_cls,
                                             rep->stream_free);
    if (resp)
      rep->stream_free = NULL; /* the response owns the state now */
    bytes = 0;
  } else if (rep->static_body) {
    resp = MHD_create_response_from_buffer(rep->len, (void *)rep->static_body,
                                           MHD_RESPMEM_PERSISTENT);
    bytes = rep->len;
  } else if (rep->body) {
    resp = MHD_create_response_from_buffer(rep->len, rep->body,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp)
      rep->body = NULL;
    bytes = rep->len;
  } else {
    resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    bytes = 0;
  }
  if (!resp) {
    reply_free(rep);
    return MHD_NO;
  }
  httpd_reply_headers(&h->req, rep, httpd_add_header, resp);
  h->status = rep->status;
  h->bytes = bytes;
  enum MHD_Result ret = MHD_queue_response(h->req.conn, rep->status, resp);
  MHD_destroy_response(resp);
  reply_free(rep);
  return ret;
}

static void httpd_dispatch(const httpd_req *h, chubd_request *req,
                           chubd_reply *rep) {
  if (h->ep && h->ep->handle)
    h->ep->handle(req, rep);
  else
    reply_error(rep, 500, "no handler for this endpoint (a chubd bug)");
  if (rep->status == 0)
    reply_error(rep, 500, "no answer was made");
}

unsigned httpd_json_head(const chubd_request *req, chubd_reply *rep) {
  int known;
  uint64_t len = httpd_declared_length(req, &known);
  uint64_t max = req->srv->cfg.max_body;
  if (!httpd_json_ctype_ok(req))
    reply_error(rep, 415, "Content-Type must be application/json");
  else if (known && len > max)
    reply_error(rep, 413,
                "request body of %llu bytes is over the limit "
                "of %llu bytes",
                (unsigned long long)len, (unsigned long long)max);
  return rep->status;
}

/* Everything decidable from the headers; leaves h->pending on an error. */
static void httpd_first_call(httpd_req *h) {
  chubd_request *req = &h->req;
  chubd_reply *rep = &h->pending;
  if (req->r.status) {
    reply_error(rep, req->r.status, "%s", req->r.error);
  } else if (auth_identify(req, rep) != 0) {
    /* rep holds 401, 429 or a store error */
  } else if (h->takes_json) {
    int known;
    uint64_t len = httpd_declared_length(req, &known);
    if (httpd_json_head(req, rep) == 0 && known && len > 0) {
      h->body = malloc(len + 1);
      h->cap = h->body ? len + 1 : 0;
    }
  } else if (h->ep && h->ep->body == ENDPOINT_BODY_UPLOAD) {
    h->ep->begin(req, rep);
  }
  if (req->r.kind >= ROUTE_PF_METRICS && req->r.kind <= ROUTE_PF_DATASET)
    reply_error_field(rep);
  h->has_pending = rep->status != 0;
}

static void httpd_take_body(httpd_req *h, const char *data, size_t n) {
  chubd_server *srv = h->req.srv;
  if (h->req.upload) {
    upload_data(&h->req, data, n, &h->pending);
    h->has_pending = h->pending.status != 0;
    return;
  }
  if (!h->takes_json)
    return; /* bodies on routes that take none are ignored */
  if (h->len + n > srv->cfg.max_body) {
    reply_error(&h->pending, 413,
                "request body is over the limit of %llu "
                "bytes",
                (unsigned long long)srv->cfg.max_body);
    h->has_pending = 1;
    return;
  }
  if (h->len + n + 1 > h->cap) {
    size_t ncap = h->cap ? h->cap : 4096;
    while (ncap < h->len + n + 1)
      ncap *= 2;
    char *grown = realloc(h->body, ncap);
    if (!grown) {
      reply_error(&h->pending, 503, "server out of memory");
      h->has_pending = 1;
      return;
    }
    h->body = grown;
    h->cap = ncap;
  }
  memcpy(h->body + h->len, data, n);
  h->len += n;
}

/* A request answered on another thread (the store's committer, an offload
 * thread): its connection is suspended before the work is queued, so the
 * resume can never come first; httpd_stop waits while any is. */
static void httpd_suspend(httpd_req *h) {
  atomic_store(&h->async_state, HTTP_ASYNC_WAITING);
  atomic_fetch_add(&h->req.srv->suspended, 1);
  MHD_suspend_connection(h->req.conn);
}

/* The work could not be queued: this thread answers after all. */
static void httpd_unsuspend(httpd_req *h) {
  MHD_resume_connection(h->req.conn);
  atomic_fetch_sub(&h->req.srv->suspended, 1);
  atomic_store(&h->async_state, HTTP_ASYNC_NONE);
}

/* On the thread that did the work, once the answer is in h: the resume.
 * h may be gone as soon as the resume returns. */
static void httpd_answered(httpd_req *h) {
  chubd_server *srv = h->req.srv;
  struct MHD_Connection *conn = h->req.conn;
  atomic_store(&h->async_state, HTTP_ASYNC_ANSWERED);
  MHD_resume_connection(conn);
  atomic_fetch_sub(&srv->suspended, 1);
}

/* Called by the store's committer thread once the upload is committed (or
 * failed). The connection's thread answers when MHD calls httpd_access
 * again after the resume; h may be gone as soon as the resume returns. */
static void httpd_metrics_done(void *ud, store_rc rc) {
  httpd_req *h = ud;
  atomic_store(&h->async_rc, (int)rc);
  httpd_answered(h);
}

/* A metrics upload (POST /v1/models/{id}): checked here, then committed
 * by the store's committer together with the uploads of other connections
 * while this thread serves those; the answer comes only after COMMIT. */
static enum MHD_Result httpd_metrics(httpd_req *h) {
  chubd_reply rep;
  reply_init(&rep);
  if (atomic_load(&h->async_state) == HTTP_ASYNC_ANSWERED) {
    metrics_post_answer(&h->req, &rep, (store_rc)atomic_load(&h->async_rc),
                        h->nepochs);
  } else if (metrics_post_check(&h->req, &rep, &h->epochs, &h->nepochs) == 0) {
    httpd_suspend(h);
    store_rc rc = metrics_post_queue(&h->req, h->epochs, h->nepochs,
                                     httpd_metrics_done, h);
    if (rc == STORE_OK)
      return MHD_YES;
    httpd_unsuspend(h);
    metrics_post_answer(&h->req, &rep, rc, h->nepochs);
  }
  validate_epochs_free(h->epochs, h->nepochs);
  h->epochs = NULL;
  h->nepochs = 0;
  return httpd_send(h, &rep);
}

/* Runs on an offload thread: the upload's handler (its last checks, the
 * file's fsync, its blob and its row), then the resume. h may be gone as
 * soon as the resume returns. */
static void httpd_upload_job(void *arg) {
  httpd_req *h = arg;
  httpd_dispatch(h, &h->req, &h->async_reply);
  httpd_answered(h);
}

/* The end of a weights or dataset upload, whose body has all arrived: its
 * handler may block on the disk for long (offload.h), so it runs on an
 * offload thread while this thread serves its other connections; answered
 * when libmicrohttpd calls httpd_access again after the resume. */
static enum MHD_Result httpd_upload_end(httpd_req *h) {
  if (atomic_load(&h->async_state) == HTTP_ASYNC_ANSWERED)
    return httpd_send(h, &h->async_reply);
  httpd_suspend(h);
  if (offload_run(h->req.srv->offload, httpd_upload_job, h) == 0)
    return MHD_YES;
  httpd_unsuspend(h);
  httpd_dispatch(h, &h->req, &h->async_reply);
  return httpd_send(h, &h->async_reply);
}

/* Whether `host` (a Host header: name or [v6], maybe :port) names this
 * hub: localhost, an IP literal, the --listen host, this machine's name
 * when listening on all addresses, or --public-url's host.
 * A page on another name that resolves here (DNS rebinding) would read
 * the hub with the browser's credentials; nothing answers it. */
int httpd_host_ok(const chubd_server *srv, const char *host) {
  char name[256];
  size_t n;
  if (!host)
    return 1; /* HTTP/1.0 without Host: not a browser on a foreign page */
  if (host[0] == '[') { /* an IPv6 literal, and only that */
    const char *end = strchr(host, ']');
    struct in6_addr a6;
    size_t len = end ? (size_t)(end - host - 1) : 0;
    if (!end || len == 0 || len >= sizeof name ||
        (end[1] != '\0' && end[1] != ':'))
      return 0;
    memcpy(name, host + 1, len);
    name[len] = '\0';
    return inet_pton(AF_INET6, name, &a6) == 1;
  }
  n = strcspn(host, ":");
  if (n == 0 || n >= sizeof name || (host[n] && strchr(host + n + 1, ':')))
    return 0;
  memcpy(name, host, n);
  name[n] = '\0';
  struct in_addr a4;
  if (inet_pton(AF_INET, name, &a4) == 1 || strcasecmp(name, "localhost") == 0)
    return 1;
  if (strcasecmp(name, srv->cfg.host) == 0)
    return 1;
  if (srv->own_host[0] && strcasecmp(name, srv->own_host) == 0)
    return 1;
  return srv->public_host[0] && strcasecmp(name, srv->public_host) == 0;
}

static enum MHD_Result httpd_access(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version,
                                    const char *upload_data,
                                    size_t *upload_data_size, void **con_cls) {
  chubd_server *srv = cls;
  httpd_req *h = *con_cls;
  (void)version;
  if (!h) {
    h = calloc(1, sizeof *h);
    if (!h)
      return MHD_NO;
    *con_cls = h;
    atomic_fetch_add(&srv->in_flight, 1);
    h->t0 = util_mono_s();
    snprintf(h->method, sizeof h->method, "%s", method);
    snprintf(h->path, sizeof h->path, "%s", url);
    reply_init(&h->pending);
    reply_init(&h->async_reply);
    h->req.srv = srv;
    h->req.conn = conn;
    conns_headers_done(srv->conns, conn);
    route_parse(method, url, &h->req.r);
    const char *host = httpd_header(&h->req, "host");
    if (!httpd_host_ok(srv, host)) {
      char shown[101];
      size_t i;
      for (i = 0; host[i] && i < sizeof shown - 1; i++)
        shown[i] = host[i] > ' ' && host[i] < 127 ? host[i] : '?';
      shown[i] = '\0';
      reply_error(&h->pending, 421,
                  "misdirected request: this hub does not serve host "
                  "\"%s\" (chubd --public-url names the one it does)",
                  shown);
      h->has_pending = 1;
    } else {
      h->ep = h->req.r.status == 0 ? endpoint_find(&h->req.r) : NULL;
      h->takes_json = h->ep && h->ep->body == ENDPOINT_BODY_JSON;
      httpd_first_call(h);
    }
    if (h->has_pending && httpd_answer_now(&h->req))
      return httpd_send(h, &h->pending);
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (h->ep && h->ep->body == ENDPOINT_BODY_UPLOAD)
      prom_upload_bytes(h->req.r.kind == ROUTE_DATASET_UPLOAD, n);
    if (h->has_pending) {
      h->dropped += n;
      return h->dropped > HTTP_DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    httpd_take_body(h, upload_data, n);
    return MHD_YES;
  }
  if (h->has_pending)
    return httpd_send(h, &h->pending);
  h->req.body = h->body ? h->body : "";
  h->req.body_len = h->len;
  if (h->ep && h->ep->answer == ENDPOINT_DEFERRED)
    return httpd_metrics(h);
  if (h->ep && h->ep->body == ENDPOINT_BODY_UPLOAD && srv->offload)
    return httpd_upload_end(h);
  chubd_reply rep;
  reply_init(&rep);
  httpd_dispatch(h, &h->req, &rep);
  return httpd_send(h, &rep);
}

void httpd_finished(chubd_server *srv, route_kind kind, const char *method,
                    const char *path, unsigned status, uint64_t bytes,
                    double t0, int whole) {
  if (whole)
    prom_request(kind, status, util_mono_s() - t0);
  else
    prom_request_aborted(kind);
  if (srv->cfg.verbose)
    fprintf(stderr, "chubd: %s %s %u %llu %.1fms%s\n", method, path, status,
            (unsigned long long)bytes, (util_mono_s() - t0) * 1000.0,
            whole ? "" : " (connection ended early)");
}

static void httpd_completed(void *cls, struct MHD_Connection *conn,
                            void **con_cls,
                            enum MHD_RequestTerminationCode toe) {
  chubd_server *srv = cls;
  httpd_req *h = *con_cls;
  if (!h)
    return;
  int whole = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
  if (whole)
    conns_request_done(srv->conns, conn);
  httpd_finished(srv, h->req.r.kind, h->method, h->path, h->status, h->bytes,
                 h->t0, whole);
  upload_free(h->req.upload);
  validate_epochs_free(h->epochs, h->nepochs);
  reply_free(&h->pending);
  reply_free(&h->async_reply);
  free(h->body);
  free(h);
  *con_cls = NULL;
  atomic_fetch_sub(&srv->in_flight, 1);
}

static int httpd_is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
      return 1;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
           in6->sin6_addr.s6_addr[12] == 127;
  }
  return 0;
}

/* The listening socket of the address ss, as libmicrohttpd makes one
 * (SO_REUSEADDR; an IPv6 one takes IPv6 only), non-blocking: its
 * descriptor, or -1. */
static int httpd_listen(const struct sockaddr_storage *ss) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  if (fd < 0)
    return -1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (ss->ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
      bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 1024) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct MHD_Daemon *httpd_start(chubd_server *srv, char *err, size_t errn) {
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char port[16];
  snprintf(port, sizeof port, "%d", srv->cfg.port);
  int gai = getaddrinfo(srv->cfg.host, port, &hints, &ai);
  if (gai != 0 || !ai) {
    snprintf(err, errn, "cannot resolve listen address %s: %s", srv->cfg.host,
             gai_strerror(gai));
    return NULL;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  srv->open_pages =
      httpd_is_loopback((struct sockaddr *)&ss) && !srv->cfg.pages_login;
  srv->tls = srv->tls_cert != NULL;
  /* Over TLS libmicrohttpd accepts and serves every connection; otherwise
   * chubd's own loop accepts them, serves the metrics uploads and hands
   * libmicrohttpd the rest (lane.h). */
  int listen_fd = -1;
  if (!srv->tls && (listen_fd = httpd_listen(&ss)) < 0) {
    snprintf(err, errn,
             "cannot listen on %s:%d (address in use, or not allowed)",
             srv->cfg.host, srv->cfg.port);
    return NULL;
  }
  unsigned int flags =
      MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
  if (srv->tls)
    flags |= MHD_USE_TLS;
  else
    flags |= MHD_USE_NO_LISTEN_SOCKET;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (srv->cfg.verbose)
    flags |= MHD_USE_ERROR_LOG;
  /* Two threads per core: a request spends part of its time in file I/O
   * and waiting for the single SQLite writer, and on this kind of load two
   * per core measured faster than one. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned int pool = ncpu < 1 ? 2 : ncpu > 8 ? 16 : (unsigned int)(2 * ncpu);
  /* Limits, so that no one client can hold the server: connections in
   * all (conns.c: libmicrohttpd divides its own limit among its threads,
   * so it is set where it never binds) and per address (libmicrohttpd
   * closes the ones beyond at once; conns.c counts those lane.c accepts,
   * from accept() to close, so libmicrohttpd's count, which lags behind
   * its closes, must not refuse one handed over),
   * the idle timeout for bodies and kept-alive connections, and (conns.c)
   * the deadline for a request's headers. */
  struct MHD_OptionItem opts[] = {
      {MHD_OPTION_THREAD_POOL_SIZE, pool, NULL},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_POOL, NULL},
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)httpd_completed, srv},
      {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)conns_notify, srv->conns},
      {MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections * pool, NULL},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->tls ? srv->cfg.max_per_ip : 0,
       NULL},
      {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)srv->cfg.idle_timeout_s, NULL},
      {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
      {srv->tls ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, 0, &ss},
      {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert},
      {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key},
      {MHD_OPTION_END, 0, NULL},
  };
  struct MHD_Daemon *d =
      MHD_start_daemon(flags, (uint16_t)srv->cfg.port, NULL, NULL, httpd_access,
                       srv, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (!d) {
    if (listen_fd >= 0)
      close(listen_fd);
    snprintf(err, errn,
             "cannot listen on %s:%d (address in use, or not allowed)",
             srv->cfg.host, srv->cfg.port);
    return NULL;
  }
  if (listen_fd >= 0) {
    unsigned ncores = ncpu < 1                  ? 1
                      : ncpu > LANE_THREADS_MAX ? LANE_THREADS_MAX
                                                : (unsigned)ncpu;
    /* Uploads of weights and datasets on a daemon of their own, whose
     * connections read up to HTTPD_UPLOAD_POOL at once: the pool is
     * libmicrohttpd's read buffer, and zeroed for every request. */
    opts[0].value = ncores;
    opts[1].value = HTTPD_UPLOAD_POOL;
    srv->upload_daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, httpd_access, srv,
                         MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    srv->lane = srv->upload_daemon ? lane_start(srv, d, srv->upload_daemon,
                                                listen_fd, ncores, err, errn)
                                   : NULL;
    if (!srv->lane) {
      if (!srv->upload_daemon) {
        close(listen_fd);
        snprintf(err, errn, "cannot start the upload threads");
      } else {
        MHD_stop_daemon(srv->upload_daemon);
        srv->upload_daemon = NULL;
      }
      MHD_stop_daemon(d);
      return NULL;
    }
  }
  return d;
}

int httpd_bound_port(const chubd_server *srv, struct MHD_Daemon *d) {
  if (srv->lane)
    return lane_port(srv->lane);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : -1;
}

void httpd_stop(chubd_server *srv, struct MHD_Daemon *d) {
  /* Closed at once: a client connecting now is refused and can go
   * elsewhere, rather than wait in the backlog for an answer that never
   * comes. */
  if (srv->lane) {
    lane_quiesce(srv->lane);
  } else {
    MHD_socket listen_fd = MHD_quiesce_daemon(d);
    if (listen_fd != MHD_INVALID_SOCKET)
      close(listen_fd);
  }
  double deadline = util_mono_s() + srv->cfg.drain_timeout_s;
  while (atomic_load(&srv->in_flight) > 0 && util_mono_s() < deadline) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  /* A suspended upload's connection must not be closed under the store's
   * committer, which is about to answer it: wait for every answer (the
   * committer ends each transaction within SQLite's busy timeout). */
  while (atomic_load(&srv->suspended) > 0) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  lane_stop(srv->lane); /* closes the connections it still holds */
  srv->lane = NULL;
  /* Close what is left: stalled uploads dropped. */
  if (srv->upload_daemon)
    MHD_stop_daemon(srv->upload_daemon);
  srv->upload_daemon = NULL;
  MHD_stop_daemon(d);
}

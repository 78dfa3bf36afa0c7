/*
 * prom.c - chubd's figures and their Prometheus text (see prom.h).
 *
 * Every series is a fixed slot in one static struct, so that counting is a
 * relaxed atomic add with no allocation and no lock on any request path,
 * and the text lists only what happened (status codes a route never
 * answered are left out).
 */
#include "prom.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define PROM_ROUTES ROUTE_KINDS
#define PROM_STATUSES 600

/* Latency buckets (seconds), and batch-size buckets (uploads per commit). */
static const double prom_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,  0.1,    0.25,  0.5,  1,
                                 2.5,   5,      10,    30,   60};
#define PROM_NLE (sizeof prom_le / sizeof prom_le[0])
static const double prom_batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
#define PROM_NBATCH (sizeof prom_batch_le / sizeof prom_batch_le[0])
/* Sync buckets (seconds): a disk answers in tens of microseconds to tens
 * of milliseconds. */
static const double prom_sync_le[] = {0.0001, 0.00025, 0.0005, 0.001,
                                      0.0025, 0.005,   0.01,   0.025,
                                      0.05,   0.1,     0.25,   1};
#define PROM_NSYNC (sizeof prom_sync_le / sizeof prom_sync_le[0])

typedef _Atomic uint64_t prom_counter;

static struct {
  prom_counter requests[PROM_ROUTES][PROM_STATUSES];
  prom_counter aborted[PROM_ROUTES];
  prom_counter latency[PROM_ROUTES][PROM_NLE + 1]; /* per bucket, +Inf last */
  prom_counter latency_us[PROM_ROUTES];            /* the sum, microseconds */
  prom_counter upload_bytes[2];
  prom_counter upload_digest[3];
  prom_counter commit_uploads[PROM_NBATCH + 1];
  prom_counter commit_requests, commit_epochs;
  prom_counter store_errors;
  prom_counter log_sync[PROM_NSYNC + 1]; /* per bucket, +Inf last */
  prom_counter log_sync_us;              /* the sum, microseconds */
  prom_counter lane[3];                  /* PROM_LANE_* */
  _Atomic int pool_size, pool_in_use;
} prom;

/* The bucket of x among the n upper bounds le (n itself: +Inf). */
static size_t prom_bucket(const double *le, size_t n, double x) {
  size_t b = 0;
  while (b < n && x > le[b])
    b++;
  return b;
}

static const char *prom_route_name(int kind) {
  static const char *const names[PROM_ROUTES] = {
      [ROUTE_NONE] = "none",
      [ROUTE_AUTH] = "auth",
      [ROUTE_HEALTH] = "health",
      [ROUTE_EVENTS] = "events",
      [ROUTE_MODELS] = "models",
      [ROUTE_MODEL] = "model",
      [ROUTE_MODEL_METRICS] = "model_metrics",
      [ROUTE_MODEL_UPLOAD] = "model_upload",
      [ROUTE_MODEL_WEIGHTS] = "model_weights",
      [ROUTE_MODEL_BLOB] = "model_download",
      [ROUTE_MODEL_RESET] = "model_reset",
      [ROUTE_MODEL_EXPORT] = "model_export",
      [ROUTE_GET_EXPORT] = "get_export",
      [ROUTE_PREDICT] = "predict",
      [ROUTE_DATASETS] = "datasets",
      [ROUTE_DATASET] = "dataset",
      [ROUTE_DATASET_UPLOAD] = "dataset_upload",
      [ROUTE_DATASET_BLOB] = "dataset_download",
      [ROUTE_UI_OWNERS] = "ui_owners",
      [ROUTE_HEARTBEAT] = "heartbeat",
      [ROUTE_UI_LOGIN] = "ui_login",
      [ROUTE_UI_LOGOUT] = "ui_logout",
      [ROUTE_PAGE] = "page",
      [ROUTE_PROMETHEUS] = "metrics",
      [ROUTE_MODEL_STOP] = "model_stop",
      [ROUTE_MODEL_CONSOLE] = "model_console",
      [ROUTE_PROJECTS] = "projects",
      [ROUTE_PROJECT] = "project",
      [ROUTE_PF_METRICS] = "platform_metrics",
      [ROUTE_PF_UPLOAD] = "platform_upload",
      [ROUTE_PF_PUT] = "platform_put",
      [ROUTE_PF_MODEL] = "platform_model_download",
      [ROUTE_PF_DATASET] = "platform_dataset_export",
      [ROUTE_MODEL_SYSTEM] = "model_system",
      [ROUTE_MODEL_RUN] = "model_run",
  };
  return kind >= 0 && kind < PROM_ROUTES && names[kind] ? names[kind] : "none";
}

static int prom_route_index(route_kind kind) {
  return (int)kind >= 0 && (int)kind < PROM_ROUTES ? (int)kind : ROUTE_NONE;
}

void prom_request(route_kind kind, unsigned status, double seconds) {
  int r = prom_route_index(kind);
  if (status < PROM_STATUSES)
    atomic_fetch_add_explicit(&prom.requests[r][status], 1,
                              memory_order_relaxed);
  size_t b = prom_bucket(prom_le, PROM_NLE, seconds);
  atomic_fetch_add_explicit(&prom.latency[r][b], 1, memory_order_relaxed);
  if (seconds > 0)
    atomic_fetch_add_explicit(&prom.latency_us[r], (uint64_t)(seconds * 1e6),
                              memory_order_relaxed);
}

void prom_request_aborted(route_kind kind) {
  atomic_fetch_add_explicit(&prom.aborted[prom_route_index(kind)], 1,
                            memory_order_relaxed);
}

void prom_upload_digest(int how) {
  if (how >= 0 && how < 3)
    atomic_fetch_add_explicit(&prom.upload_digest[how], 1,
                              memory_order_relaxed);
}

void prom_upload_bytes(int dataset, uint64_t n) {
  atomic_fetch_add_explicit(&prom.upload_bytes[dataset ? 1 : 0], n,
                            memory_order_relaxed);
}

void prom_metrics_commit(size_t uploads, size_t epochs) {
  size_t b = prom_bucket(prom_batch_le, PROM_NBATCH, (double)uploads);
  atomic_fetch_add_explicit(&prom.commit_uploads[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&prom.commit_requests, uploads,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&prom.commit_epochs, epochs, memory_order_relaxed);
}

void prom_log_sync(double seconds) {
  size_t b = prom_bucket(prom_sync_le, PROM_NSYNC, seconds);
  atomic_fetch_add_explicit(&prom.log_sync[b], 1, memory_order_relaxed);
  if (seconds > 0)
    atomic_fetch_add_explicit(&prom.log_sync_us, (uint64_t)(seconds * 1e6),
                              memory_order_relaxed);
}

void prom_lane(int what) {
  if (what >= 0 && what < 3)
    atomic_fetch_add_explicit(&prom.lane[what], 1, memory_order_relaxed);
}

void prom_store_error(void) {
  atomic_fetch_add_explicit(&prom.store_errors, 1, memory_order_relaxed);
}

void prom_store_pool_size(int n) {
  atomic_store(&prom.pool_size, n);
}

void prom_store_pool_use(int delta) {
  atomic_fetch_add(&prom.pool_in_use, delta);
}

/* ------------------------------------------------------------ the text */

typedef struct prom_buf {
  char *p;
  size_t len, cap;
  int failed;
} prom_buf;

static void prom_put(prom_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void prom_put(prom_buf *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

static uint64_t prom_load(prom_counter *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

static void prom_head(prom_buf *b, const char *name, const char *type,
                      const char *help) {
  prom_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_requests(prom_buf *b) {
  prom_head(b, "chubd_requests_total", "counter",
            "Requests answered, by route and HTTP status.");
  for (int r = 0; r < PROM_ROUTES; r++)
    for (int s = 0; s < PROM_STATUSES; s++) {
      uint64_t n = prom_load(&prom.requests[r][s]);
      if (n)
        prom_put(b, "chubd_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                 prom_route_name(r), s, (unsigned long long)n);
    }
  prom_head(b, "chubd_requests_aborted_total", "counter",
            "Requests whose connection ended before the answer was sent.");
  for (int r = 0; r < PROM_ROUTES; r++) {
    uint64_t n = prom_load(&prom.aborted[r]);
    if (n)
      prom_put(b, "chubd_requests_aborted_total{route=\"%s\"} %llu\n",
               prom_route_name(r), (unsigned long long)n);
  }
  prom_head(b, "chubd_request_duration_seconds", "histogram",
            "Time from a request's first byte to its answer, by route.");
  for (int r = 0; r < PROM_ROUTES; r++) {
    uint64_t counts[PROM_NLE + 1], total = 0;
    for (size_t i = 0; i <= PROM_NLE; i++)
      total += counts[i] = prom_load(&prom.latency[r][i]);
    if (!total)
      continue;
    const char *name = prom_route_name(r);
    uint64_t cum = 0;
    for (size_t i = 0; i < PROM_NLE; i++) {
      cum += counts[i];
      prom_put(b,
               "chubd_request_duration_seconds_bucket{route=\"%s\","
               "le=\"%g\"} %llu\n",
               name, prom_le[i], (unsigned long long)cum);
    }
    prom_put(b,
             "chubd_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
             "%llu\n"
             "chubd_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
             "chubd_request_duration_seconds_count{route=\"%s\"} %llu\n",
             name, (unsigned long long)total, name,
             (double)prom_load(&prom.latency_us[r]) / 1e6, name,
             (unsigned long long)total);
  }
}

/* A histogram without labels: counts has n + 1 buckets (+Inf last), whose
 * total is the count; sum is its _sum value, as text. */
static void prom_histogram(prom_buf *b, const char *name, const char *help,
                           const double *le, size_t n, prom_counter *counts,
                           const char *sum) {
  prom_head(b, name, "histogram", help);
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    total += prom_load(&counts[i]);
    prom_put(b, "%s_bucket{le=\"%g\"} %llu\n", name, le[i],
             (unsigned long long)total);
  }
  total += prom_load(&counts[n]);
  prom_put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %s\n%s_count %llu\n", name,
           (unsigned long long)total, name, sum, name,
           (unsigned long long)total);
}

static void prom_store(prom_buf *b) {
  char sum[32];
  snprintf(sum, sizeof sum, "%llu",
           (unsigned long long)prom_load(&prom.commit_requests));
  prom_histogram(b, "chubd_metrics_commit_requests",
                 "Metrics uploads committed together in one transaction.",
                 prom_batch_le, PROM_NBATCH, prom.commit_uploads, sum);
  snprintf(sum, sizeof sum, "%.6f", (double)prom_load(&prom.log_sync_us) / 1e6);
  prom_histogram(b, "chubd_store_log_sync_seconds",
                 "Syncs of SQLite's write-ahead log (one per commit and one "
                 "per checkpoint): how long the disk took to make it "
                 "durable.",
                 prom_sync_le, PROM_NSYNC, prom.log_sync, sum);
  prom_head(b, "chubd_metrics_epochs_total", "counter",
            "Epochs of metrics committed.");
  prom_put(b, "chubd_metrics_epochs_total %llu\n",
           (unsigned long long)prom_load(&prom.commit_epochs));
  prom_head(b, "chubd_upload_bytes_total", "counter",
            "Body bytes of weights and dataset uploads received.");
  prom_put(b,
           "chubd_upload_bytes_total{kind=\"weights\"} %llu\n"
           "chubd_upload_bytes_total{kind=\"dataset\"} %llu\n",
           (unsigned long long)prom_load(&prom.upload_bytes[0]),
           (unsigned long long)prom_load(&prom.upload_bytes[1]));
  prom_head(b, "chubd_uploads_received_total", "counter",
            "Uploads received whole, by how the client gave their SHA-256 "
            "(none, a header first, a form field after the file).");
  prom_put(b,
           "chubd_uploads_received_total{digest=\"none\"} %llu\n"
           "chubd_uploads_received_total{digest=\"header\"} %llu\n"
           "chubd_uploads_received_total{digest=\"part\"} %llu\n",
           (unsigned long long)prom_load(&prom.upload_digest[0]),
           (unsigned long long)prom_load(&prom.upload_digest[1]),
           (unsigned long long)prom_load(&prom.upload_digest[2]));
  prom_head(b, "chubd_lane_requests_total", "counter",
            "Metrics uploads served by chubd's own loop.");
  prom_put(b, "chubd_lane_requests_total %llu\n",
           (unsigned long long)prom_load(&prom.lane[PROM_LANE_SERVED]));
  prom_head(b, "chubd_lane_handoffs_total", "counter",
            "Connections chubd's own loop handed to libmicrohttpd: for a "
            "request other than a plain metrics upload (to=http), or for an "
            "upload of weights or a dataset (to=uploads).");
  prom_put(b,
           "chubd_lane_handoffs_total{to=\"http\"} %llu\n"
           "chubd_lane_handoffs_total{to=\"uploads\"} %llu\n",
           (unsigned long long)prom_load(&prom.lane[PROM_LANE_TO_HTTP]),
           (unsigned long long)prom_load(&prom.lane[PROM_LANE_TO_UPLOADS]));
  prom_head(b, "chubd_store_errors_total", "counter",
            "Store operations that failed.");
  prom_put(b, "chubd_store_errors_total %llu\n",
           (unsigned long long)prom_load(&prom.store_errors));
  prom_head(b, "chubd_store_pool_connections", "gauge",
            "The store's database connections: PostgreSQL's pool size, or "
            "SQLite's connections (one per request thread) made so far.");
  prom_put(b, "chubd_store_pool_connections %d\n",
           atomic_load(&prom.pool_size));
  prom_head(b, "chubd_store_pool_in_use", "gauge",
            "Database connections in use by an operation now.");
  prom_put(b, "chubd_store_pool_in_use %d\n", atomic_load(&prom.pool_in_use));
}

int prom_render(const chubd_server *srv, char **out, size_t *len) {
  prom_buf b = {malloc(16384), 0, 16384, 0};
  if (!b.p)
    return -1;
  b.p[0] = '\0';
  prom_requests(&b);
  prom_store(&b);
  prom_head(&b, "chubd_open_connections", "gauge",
            "Client connections open now.");
  prom_put(&b, "chubd_open_connections %u\n",
           srv->conns ? conns_open(srv->conns) : 0);
  prom_head(&b, "chubd_requests_in_flight", "gauge",
            "Requests between their first byte and their end.");
  prom_put(&b, "chubd_requests_in_flight %d\n",
           atomic_load((atomic_int *)&srv->in_flight));
  prom_head(&b, "chubd_store_info", "gauge", "The store this chubd runs on.");
  prom_put(&b, "chubd_store_info{store=\"%s\",version=\"%s\"} 1\n",
           srv->st ? srv->st->ops->name : "none", CHUBD_VERSION);
  if (b.failed) {
    free(b.p);
    return -1;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

/* ------------------------------------------------------------ serving */

#define PROM_CTYPE "text/plain; version=0.0.4; charset=utf-8"

void prom_get(chubd_request *req, chubd_reply *rep) {
  if (!req->srv->cfg.metrics) {
    reply_error(rep, 404, "no such page");
    return;
  }
  char *text;
  size_t len;
  if (prom_render(req->srv, &text, &len) < 0) {
    reply_error(rep, 500, "out of memory");
    return;
  }
  rep->status = 200;
  rep->body = text;
  rep->len = len;
  rep->ctype = PROM_CTYPE;
}

static enum MHD_Result prom_answer(struct MHD_Connection *conn, unsigned status,
                                   char *body, size_t len, const char *ctype) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", ctype);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  enum MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

/* The metrics address answers GET /metrics and nothing else; a body is
 * never read. */
static enum MHD_Result prom_access(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *data,
                                   size_t *data_size, void **con_cls) {
  const chubd_server *srv = cls;
  (void)version;
  (void)data;
  if (!*con_cls) {
    *con_cls = (void *)1; /* answer once the headers are all in */
    return MHD_YES;
  }
  if (*data_size) {
    *data_size = 0;
    return MHD_YES;
  }
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (strcmp(url, "/metrics") != 0 || !get) {
    const char *msg = !get ? "only GET /metrics is served here\n"
                           : "only /metrics is served here\n";
    char *body = strdup(msg);
    return body ? prom_answer(conn, get ? 404 : 405, body, strlen(body),
                              "text/plain; charset=utf-8")
                : MHD_NO;
  }
  char *text;
  size_t len;
  if (prom_render(srv, &text, &len) < 0)
    return MHD_NO;
  return prom_answer(conn, 200, text, len, PROM_CTYPE);
}

int prom_listen_start(chubd_server *srv, char *err, size_t errn) {
  if (!srv->cfg.metrics_host[0])
    return 0;
  char port[16];
  snprintf(port, sizeof port, "%d", srv->cfg.metrics_port);
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  int g = getaddrinfo(srv->cfg.metrics_host, port, &hints, &ai);
  if (g != 0) {
    snprintf(err, errn, "--metrics-listen %s:%d: %s", srv->cfg.metrics_host,
             srv->cfg.metrics_port, gai_strerror(g));
    return -1;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
  if (ai->ai_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  srv->metrics_daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, prom_access, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)10, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!srv->metrics_daemon) {
    snprintf(err, errn,
             "cannot serve metrics on %s:%d (address in use or not this "
             "machine's)",
             srv->cfg.metrics_host, srv->cfg.metrics_port);
    return -1;
  }
  return 0;
}

void prom_listen_stop(chubd_server *srv) {
  if (srv->metrics_daemon)
    MHD_stop_daemon(srv->metrics_daemon);
  srv->metrics_daemon = NULL;
}

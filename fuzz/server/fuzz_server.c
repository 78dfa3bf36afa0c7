/*
 * fuzz_server.c - libFuzzer target over everything chubd reads from a
 * client.
 *
 * The first byte of an input picks what the rest feeds:
 *   0  route_parse (method from the next byte, then the path)
 *   1  a JSON body for model create and patch
 *   2  a JSON body for a metrics upload, read both ways (metrics_fast.c
 *      must agree with the full path whenever it decides)
 *   3  a JSON body for events, heartbeats and Platform webhooks
 *   4  upload form fields, "name=value" lines
 *   5  a Range header against a size (first 4 bytes)
 *   6  a form body and a Cookie header
 *   7  a whole raw HTTP request, sent to a real chubd in this process
 *   8  a multipart/form-data body, sent as a weights upload to that chubd
 *   9  the start of a connection as chubd's own loop reads it (lane_parse):
 *      what it takes is a whole, plain upload inside the bytes it saw
 * In 7 and 8, "@KEY@" and "@ID@" are replaced by a valid API key and model
 * id, so that the fuzzer gets past authentication. The in-process chubd
 * runs on 127.0.0.1:0 with a temporary data directory (on tmpfs when
 * /dev/shm exists, removed at exit); any crash, sanitizer
 * report or hang in it is a finding like any other.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blobs.h"
#include "keys.h"
#include "lane.h"
#include "metrics_fast.h"
#include "route.h"
#include "server.h"
#include "validate.h"

#define FUZZ_MAX_REQUEST (256 * 1024)

typedef struct fuzz_server_ctx {
  chubd_server srv;
  struct MHD_Daemon *daemon;
  int port;
  char key[UTIL_KEY_LEN + 1];
  char id[UTIL_ID_LEN + 1];
} fuzz_server_ctx;

/* The one in-process chubd, started on first use and kept for the run. */
static fuzz_server_ctx *fuzz_server_live;

static char *fuzz_server_str(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

static void fuzz_server_route(const uint8_t *data, size_t size) {
  static const char *methods[] = {"GET",  "POST",    "PATCH", "DELETE",
                                  "HEAD", "OPTIONS", "PUT",   "BREW"};
  if (size < 1)
    return;
  char *path = fuzz_server_str(data + 1, size - 1);
  route r;
  route_parse(methods[data[0] & 7], path, &r);
  char allow[96];
  route_allow_header(r.allowed, allow, sizeof allow);
  if (r.status == 0 && r.id[0] && !util_is_alnum_n(r.id, UTIL_ID_LEN))
    abort(); /* a routed id is always a clean one */
  if (r.status == 0 && r.weights[0] && strcmp(r.weights, "last") &&
      strcmp(r.weights, "best") && !util_is_sha256_hex(r.weights))
    abort();
  free(path);
}

/* The one-pass reading of a metrics upload (metrics_fast.c) decides only
 * what the full path decides the same way: a body it accepts is accepted
 * by validate_metrics() with the same epochs and texts. */
static void fuzz_server_metrics_fast(const uint8_t *data, size_t size) {
  char err[VALIDATE_ERR];
  store_epoch *fe, *se;
  size_t fn, sn;
  json_t *body;
  if (!metrics_fast((const char *)data, size, &fe, &fn))
    return;
  if (validate_json_object((const char *)data, size, &body, err) < 0 ||
      validate_metrics(body, &se, &sn, err) < 0 || sn != fn)
    abort();
  for (size_t i = 0; i < fn; i++)
    if (fe[i].epoch != se[i].epoch || strcmp(fe[i].json, se[i].json) != 0)
      abort();
  json_decref(body);
  validate_epochs_free(fe, fn);
  validate_epochs_free(se, sn);
}

static void fuzz_server_json(int which, const uint8_t *data, size_t size) {
  char err[VALIDATE_ERR];
  json_t *body;
  if (which == 2)
    fuzz_server_metrics_fast(data, size);
  if (validate_json_object((const char *)data, size, &body, err) < 0)
    return;
  if (which == 1) {
    validate_model_create(body, err);
    validate_model_patch(body, err);
  } else if (which == 2) {
    store_epoch *e;
    size_t n;
    if (validate_metrics(body, &e, &n, err) == 0)
      validate_epochs_free(e, n);
  } else {
    const char *agent, *agent_id;
    validate_pf pf;
    int64_t epoch;
    char *flat;
    validate_events(body, err);
    json_t *system = NULL;
    if (validate_heartbeat(body, &agent, &agent_id, &system, err) == 0)
      system_check(system, err);
    validate_pf_body(body, 0, &pf, err);
    if (validate_pf_body(body, 1, &pf, err) == 0 &&
        validate_pf_epoch(pf.data, &epoch, &flat, err) == 0)
      free(flat);
  }
  json_decref(body);
}

static void fuzz_server_fields(const uint8_t *data, size_t size) {
  char *s = fuzz_server_str(data, size);
  validate_upload u;
  memset(&u, 0, sizeof u);
  char err[VALIDATE_ERR];
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (!eq)
      continue;
    *eq = '\0';
    validate_upload_field(&u, line, eq + 1, err);
  }
  validate_upload_done(&u, err);
  free(s);
}

static void fuzz_server_range(const uint8_t *data, size_t size) {
  if (size < 4)
    return;
  uint64_t fsize = (uint64_t)data[0] | (uint64_t)data[1] << 8 |
                   (uint64_t)data[2] << 16 | (uint64_t)data[3] << 24;
  char *h = fuzz_server_str(data + 4, size - 4);
  uint64_t first, last;
  if (validate_range(h, fsize, &first, &last) == 1 &&
      (first > last || last >= fsize))
    abort(); /* a granted range always lies inside the file */
  free(h);
}

static void fuzz_server_forms(const uint8_t *data, size_t size) {
  char out[64];
  validate_form_value((const char *)data, size, "key", out, sizeof out);
  char *h = fuzz_server_str(data, size);
  validate_cookie(h, "chub_key", out, sizeof out);
  free(h);
}

static int fuzz_server_rm(const char *path, const struct stat *sb, int type,
                          struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  remove(path);
  return 0;
}

/* At exit: stop the in-process chubd and remove its data directory, so a
 * fuzzing run leaves nothing behind in /tmp. */
static void fuzz_server_stop(void) {
  fuzz_server_ctx *c = fuzz_server_live;
  if (!c)
    return;
  fuzz_server_live = NULL;
  httpd_stop(&c->srv, c->daemon);
  c->srv.st->ops->close(c->srv.st);
  ratelimit_free(c->srv.rl);
  ratelimit_free(c->srv.events_rl);
  conns_free(c->srv.conns);
  keycache_free(c->srv.kc);
  nftw(c->srv.cfg.data_dir, fuzz_server_rm, 16, FTW_DEPTH | FTW_PHYS);
  free(c);
}

static fuzz_server_ctx *fuzz_server_start(void) {
  if (fuzz_server_live)
    return fuzz_server_live;
  fuzz_server_ctx *c = calloc(1, sizeof *c);
  /* tmpfs when there is one: chubd fsyncs every stored upload. */
  char tmpl[] = "/dev/shm/fuzz-chubd-XXXXXX";
  char fallback[] = "/tmp/fuzz-chubd-XXXXXX";
  char *dir = mkdtemp(tmpl);
  char err[512];
  if (!dir)
    dir = mkdtemp(fallback);
  if (!c || !dir)
    abort();
  chubd_config *cfg = &c->srv.cfg;
  config_defaults(cfg);
  snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
  cfg->port = 0;
  cfg->max_body = 64 * 1024;
  cfg->max_upload = 1024 * 1024;
  cfg->rate = 1e9;
  cfg->burst = 1e9;
  cfg->events_rate = 1e6;
  /* Every fuzzed request comes from 127.0.0.1, one after another. */
  cfg->max_per_ip = cfg->max_connections;
  snprintf(cfg->blobs_dir, sizeof cfg->blobs_dir, "%s/blobs", dir);
  if (blobs_prepare(cfg->data_dir, cfg->blobs_dir, 1, err, sizeof err) < 0 ||
      !(c->srv.st = store_sqlite_open(cfg->data_dir, err, sizeof err)) ||
      !(c->srv.rl = ratelimit_new(cfg->rate, cfg->burst)) ||
      !(c->srv.events_rl = ratelimit_new(cfg->events_rate, cfg->events_rate)) ||
      !(c->srv.conns = conns_new(cfg->header_timeout_s, cfg->max_connections,
                                 cfg->max_per_ip)) ||
      !(c->srv.kc = keycache_new(cfg->data_dir))) {
    fprintf(stderr, "fuzz_server: %s\n", err);
    abort();
  }
  pthread_mutex_init(&c->srv.blobs_mu, NULL);
  atomic_init(&c->srv.in_flight, 0);
  unsigned char hash[32];
  char prefix[KEYS_PREFIX_LEN + 1];
  util_random_alnum(c->key, UTIL_KEY_LEN);
  keys_hash(c->key, hash);
  keys_prefix(c->key, prefix);
  store *st = c->srv.st;
  store_model m;
  memset(&m, 0, sizeof m);
  util_random_alnum(c->id, UTIL_ID_LEN);
  memcpy(m.id, c->id, sizeof m.id);
  snprintf(m.owner, sizeof m.owner, "fuzz");
  m.meta = m.config = m.dataset = m.lineage = "{}";
  m.created_ms = util_now_ms();
  if (st->ops->key_add(st, "fuzz", prefix, hash, m.created_ms) != STORE_OK ||
      st->ops->model_add(st, &m) != STORE_OK)
    abort();
  c->daemon = httpd_start(&c->srv, err, sizeof err);
  if (!c->daemon) {
    fprintf(stderr, "fuzz_server: %s\n", err);
    abort();
  }
  c->port = httpd_bound_port(&c->srv, c->daemon);
  fuzz_server_live = c;
  atexit(fuzz_server_stop);
  return c;
}

/* Whether s is a NUL-ended string inside [lo, hi). */
static int fuzz_server_inside(const char *s, const char *lo, const char *hi) {
  return s && s >= lo && s < hi && memchr(s, '\0', (size_t)(hi - s));
}

/* What chubd's own loop takes from a connection lies inside the bytes it
 * saw, whole, with a clean path and clean header lines. */
static void fuzz_server_lane(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1);
  if (!buf)
    abort();
  memcpy(buf, data, size);
  lane_head h;
  int r = lane_parse(buf, size, 4096, &h);
  if (r == LANE_MORE_BODY && h.head_len + h.body_len <= size)
    abort();
  if (r == LANE_TAKE) {
    const char *end = buf + h.head_len;
    if (h.head_len > size || h.body_len > size - h.head_len ||
        h.body_len > 4096 || !fuzz_server_inside(h.path, buf, end) ||
        strpbrk(h.path, "?% \r\n") || h.nheaders > LANE_HEADERS_MAX)
      abort();
    for (int i = 0; i < h.nheaders; i++) {
      const chubd_header *x = &h.headers[i];
      if (!fuzz_server_inside(x->name, buf, end) ||
          !fuzz_server_inside(x->value, buf, end) || !x->name[0] ||
          strpbrk(x->name, ": \t\r\n") || strpbrk(x->value, "\r\n"))
        abort();
    }
  }
  free(buf);
}

/* Copies src into out, replacing @KEY@ and @ID@. Returns the length. */
static size_t fuzz_server_expand(const fuzz_server_ctx *c, const uint8_t *src,
                                 size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + UTIL_KEY_LEN < cap; i++) {
    if (n - i >= 5 && memcmp(src + i, "@KEY@", 5) == 0) {
      memcpy(out + o, c->key, UTIL_KEY_LEN);
      o += UTIL_KEY_LEN;
      i += 4;
    } else if (n - i >= 4 && memcmp(src + i, "@ID@", 4) == 0) {
      memcpy(out + o, c->id, UTIL_ID_LEN);
      o += UTIL_ID_LEN;
      i += 3;
    } else {
      out[o++] = (char)src[i];
    }
  }
  return o;
}

/* Sends one request and reads until chubd answers and closes, or a bounded
 * wait passes (a keep-alive connection stays open after its answer). */
static void fuzz_server_exchange(const fuzz_server_ctx *c, const char *req,
                                 size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)c->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  char buf[16384];
  for (int i = 0; i < 20; i++) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      break;
    if (recv(fd, buf, sizeof buf, 0) <= 0)
      break;
  }
  close(fd);
}

static void fuzz_server_http(const uint8_t *data, size_t size) {
  fuzz_server_ctx *c = fuzz_server_start();
  char *req = malloc(FUZZ_MAX_REQUEST);
  if (!req)
    abort();
  size_t len = fuzz_server_expand(c, data, size, req, FUZZ_MAX_REQUEST);
  fuzz_server_exchange(c, req, len);
  free(req);
}

static void fuzz_server_multipart(const uint8_t *data, size_t size) {
  fuzz_server_ctx *c = fuzz_server_start();
  char *body = malloc(FUZZ_MAX_REQUEST);
  char *req = malloc(FUZZ_MAX_REQUEST + 512);
  if (!body || !req)
    abort();
  size_t blen = fuzz_server_expand(c, data, size, body, FUZZ_MAX_REQUEST);
  int head = snprintf(req, 512,
                      "POST /v1/models/%s/upload HTTP/1.1\r\n"
                      "Host: 127.0.0.1\r\nx-api-key: %s\r\n"
                      "Content-Type: multipart/form-data; boundary=B\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      c->id, c->key, blen);
  memcpy(req + head, body, blen);
  fuzz_server_exchange(c, req, (size_t)head + blen);
  free(body);
  free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *rest = data + 1;
  size_t n = size - 1;
  switch (data[0] % 10) {
  case 0:
    fuzz_server_route(rest, n);
    break;
  case 1:
  case 2:
  case 3:
    fuzz_server_json(data[0] % 10, rest, n);
    break;
  case 4:
    fuzz_server_fields(rest, n);
    break;
  case 5:
    fuzz_server_range(rest, n);
    break;
  case 6:
    fuzz_server_forms(rest, n);
    break;
  case 7:
    fuzz_server_http(rest, n);
    break;
  case 8:
    fuzz_server_multipart(rest, n);
    break;
  case 9:
    fuzz_server_lane(rest, n);
    break;
  }
  return 0;
}

/*
 * server_lane.c - conformance: one HTTP behaviour, whichever path inside
 * chubd serves a request.
 *
 * chubd is getting a "fast lane": its own loop accepts every connection
 * (when not serving TLS), answers plain metrics uploads (POST
 * /v1/models/{id}, HTTP/1.1, Content-Length, complete) itself and hands
 * any other connection, with the bytes it has read, to the general HTTP
 * server. A client must not be able to tell the two paths apart, and the
 * limits must hold across both. So this suite talks to chubd on raw
 * sockets and checks, through the wire only: pipelined requests of both
 * kinds on one connection answered in order; keep-alive; many requests in
 * one write; a request trickled in pieces; Connection: close; the same
 * error envelopes on the lane's route as anywhere (401, 415, 400, 404,
 * 413, 421), chunked bodies, Expect: 100-continue and HTTP/1.0; a client
 * that leaves without reading; --max-per-ip counting connections of both
 * kinds; --header-timeout for heads only (bodies fall under
 * --idle-timeout); and IPv6.
 *
 * Every test but the last describes behaviour that must not change and
 * passes on chubd before the lane. The last one checks the lane's own
 * Prometheus counters and fails until the lane lands.
 *
 * Answers are read one at a time by status line and Content-Length
 * (lane_read), with generous timeouts: the suite runs beside others on a
 * small, busy machine, so no test asserts on elapsed time except the
 * header deadline, with wide margins.
 */
#include "sv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long any one answer may take to arrive. */
#define LANE_READ_MS 5000

/* For a chubd of a test's own: a rate limit that never interferes. */
#define LANE_NO_RATE_LIMIT "--rate-limit", "100000", "--rate-burst", "100000"

/* ------------------------------------------------------------ helpers */

/* A client connection and the bytes read from it but not yet taken as an
 * answer (pipelined answers arrive together). */
typedef struct lane_conn {
  int fd;
  char *buf;
  size_t len, cap;
} lane_conn;

/* One answer: the status, the header lines after the status line (each
 * ending in CRLF, for th_header) and the body (NUL-terminated). */
typedef struct lane_resp {
  int status;
  char *head;
  char *body;
  size_t body_len;
} lane_resp;

enum { LANE_OK = 0, LANE_CLOSED = -1, LANE_TIMEOUT = -2 };

static long lane_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lane_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static lane_conn lane_wrap(int fd) {
  lane_nodelay(fd); /* pieces sent apart leave apart */
  lane_conn c = {fd, malloc(65536 + 1), 0, 65536};
  c.buf[0] = '\0';
  return c;
}

/* A connection to 127.0.0.1:port; fails the test otherwise. */
static lane_conn lane_open(int port) {
  return lane_wrap(sv_connect(port));
}

static void lane_close(lane_conn *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
}

static void lane_send(lane_conn *c, const char *s) {
  sv_send(c->fd, s, strlen(s));
}

/* Reads what arrives before `deadline` into c's buffer: 1 when bytes came,
 * LANE_CLOSED at end of stream or an error (a reset), LANE_TIMEOUT. */
static int lane_fill(lane_conn *c, long deadline) {
  for (;;) {
    long left = deadline - lane_now_ms();
    if (left <= 0)
      return LANE_TIMEOUT;
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      return LANE_TIMEOUT;
    if (r < 0)
      return LANE_CLOSED;
    if (c->cap - c->len < 16384) {
      c->cap *= 2;
      c->buf = realloc(c->buf, c->cap + 1);
      if (!c->buf)
        fail_msg("out of memory");
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return LANE_CLOSED;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return 1;
  }
}

/* Makes sure at least `need` bytes are buffered; LANE_OK or why not. */
static int lane_need(lane_conn *c, size_t need, long deadline) {
  while (c->len < need) {
    int f = lane_fill(c, deadline);
    if (f < 0)
      return f;
  }
  return LANE_OK;
}

/* The offset just past the next CRLF at or after `from`, waiting for it;
 * 0 when the stream ended or the deadline passed first. */
static size_t lane_line(lane_conn *c, size_t from, long deadline) {
  for (;;) {
    if (c->len > from) {
      char *nl = memmem(c->buf + from, c->len - from, "\r\n", 2);
      if (nl)
        return (size_t)(nl - c->buf) + 2;
    }
    if (lane_fill(c, deadline) < 0)
      return 0;
  }
}

static void lane_resp_free(lane_resp *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* Reads exactly one answer (a 1xx one included) from c within ms: the head,
 * then Content-Length bytes of body (or the chunks of a chunked one, or
 * everything up to the end of the stream when the answer gives neither).
 * LANE_OK with *r filled, LANE_CLOSED when the server closed before a whole
 * answer came, LANE_TIMEOUT. Bytes after the answer stay buffered for the
 * next call. */
static int lane_read(lane_conn *c, int ms, lane_resp *r) {
  long deadline = lane_now_ms() + ms;
  memset(r, 0, sizeof *r);
  char *end;
  while (!(end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL)) {
    int f = lane_fill(c, deadline);
    if (f < 0)
      return f;
  }
  size_t hlen = (size_t)(end - c->buf) + 4;
  int status = 0;
  if (sscanf(c->buf, "HTTP/%*d.%*d %d", &status) != 1 || status < 100)
    fail_msg("not an HTTP answer: %.200s", c->buf);
  const char *eol = strstr(c->buf, "\r\n");
  char *head = strndup(eol + 2, (size_t)(end + 2 - (eol + 2)));
  char *cl = th_header(head, "Content-Length");
  char *te = th_header(head, "Transfer-Encoding");
  size_t blen = 0, pos = hlen;
  char *body = NULL;
  int rc = LANE_OK;
  if ((status >= 100 && status < 200) || status == 204 || status == 304) {
    body = strdup("");
  } else if (cl) {
    blen = (size_t)strtoull(cl, NULL, 10);
    rc = lane_need(c, hlen + blen, deadline);
    if (rc == LANE_OK) {
      body = malloc(blen + 1);
      memcpy(body, c->buf + hlen, blen);
      body[blen] = '\0';
      pos = hlen + blen;
    }
  } else if (te && strcasestr(te, "chunked")) {
    body = malloc(1);
    for (;;) {
      size_t next = lane_line(c, pos, deadline);
      if (!next) {
        rc = LANE_CLOSED;
        break;
      }
      size_t size = (size_t)strtoull(c->buf + pos, NULL, 16);
      pos = next;
      if (size == 0) { /* trailers, up to an empty line */
        size_t t;
        while ((t = lane_line(c, pos, deadline)) != 0 && t != pos + 2)
          pos = t;
        if (!t)
          rc = LANE_CLOSED;
        else
          pos = t;
        break;
      }
      rc = lane_need(c, pos + size + 2, deadline);
      if (rc != LANE_OK)
        break;
      body = realloc(body, blen + size + 1);
      memcpy(body + blen, c->buf + pos, size);
      blen += size;
      pos += size + 2;
    }
    if (body)
      body[blen] = '\0';
  } else { /* delimited by the end of the stream */
    int f;
    while ((f = lane_fill(c, deadline)) > 0)
      ;
    if (f == LANE_TIMEOUT)
      rc = LANE_TIMEOUT;
    blen = c->len - hlen;
    body = strndup(c->buf + hlen, blen);
    pos = c->len;
  }
  free(cl);
  free(te);
  if (rc != LANE_OK) {
    free(head);
    free(body);
    return rc;
  }
  memmove(c->buf, c->buf + pos, c->len - pos);
  c->len -= pos;
  c->buf[c->len] = '\0';
  r->status = status;
  r->head = head;
  r->body = body;
  r->body_len = blen;
  return LANE_OK;
}

/* Reads one answer and asserts its status; `what` names the request in
 * the failure. */
static lane_resp lane_expect(lane_conn *c, int want, const char *what) {
  lane_resp r;
  int rc = lane_read(c, LANE_READ_MS, &r);
  if (rc != LANE_OK)
    fail_msg("%s: no whole answer (%s) within %d ms; got so far: %.300s", what,
             rc == LANE_CLOSED ? "connection closed" : "timed out",
             LANE_READ_MS, c->buf ? c->buf : "");
  if (r.status != want)
    fail_msg("%s: expected %d, got %d\n%s\n%.500s", what, want, r.status,
             r.head, r.body);
  return r;
}

/* Waits at most ms for the server to close c (end of stream or reset),
 * reading and dropping what comes; 1 when it did. *bytes (may be NULL)
 * gets how many bytes arrived meanwhile. */
static int lane_closed(lane_conn *c, int ms, size_t *bytes) {
  long deadline = lane_now_ms() + ms;
  size_t before = c->len;
  int f;
  while ((f = lane_fill(c, deadline)) > 0)
    ;
  if (bytes)
    *bytes = c->len - before;
  return f == LANE_CLOSED;
}

/* True when the server has closed c or sent something, right now. */
static int lane_stirred(const lane_conn *c) {
  struct pollfd pfd = {c->fd, POLLIN | POLLRDHUP, 0};
  return poll(&pfd, 1, 0) > 0;
}

/* The body of a metrics upload of one epoch, as the clients send it. */
static char *lane_body(long epoch) {
  return th_fmt("{\"type\":\"metrics\",\"metrics\":{\"%ld\":"
                "\"{\\\"loss\\\": 0.5, \\\"epoch\\\": %ld}\"}}",
                epoch, epoch);
}

/* A whole HTTP/1.1 request: Host, x-api-key (key NULL: none), Content-Type
 * (ctype NULL: none), `extra` header lines (each ending in CRLF; NULL:
 * none), and Content-Length with `body` when body is not NULL. */
static char *lane_req(const char *method, const char *path, const char *key,
                      const char *ctype, const char *extra, const char *body) {
  char *key_h = key ? th_fmt("x-api-key: %s\r\n", key) : strdup("");
  char *ct_h = ctype ? th_fmt("Content-Type: %s\r\n", ctype) : strdup("");
  char *cl_h =
      body ? th_fmt("Content-Length: %zu\r\n", strlen(body)) : strdup("");
  char *req =
      th_fmt("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s%s\r\n%s", method,
             path, key_h, ct_h, cl_h, extra ? extra : "", body ? body : "");
  free(key_h);
  free(ct_h);
  free(cl_h);
  return req;
}

/* A plain metrics upload of one epoch: what the lane serves itself. */
static char *lane_post(const char *id, const char *key, long epoch,
                       const char *extra) {
  char *path = th_fmt("/v1/models/%s", id);
  char *body = lane_body(epoch);
  char *req = lane_req("POST", path, key, "application/json", extra, body);
  free(body);
  free(path);
  return req;
}

static char *lane_get(const char *path, const char *key) {
  return lane_req("GET", path, key, NULL, NULL, NULL);
}

/* Asserts r is a JSON success envelope; returns it parsed. */
static json_t *lane_ok_envelope(const lane_resp *r, const char *what) {
  th_response tr = {r->status, r->body, r->body_len, r->head};
  json_t *env = th_envelope(&tr);
  if (!env || !json_is_true(json_object_get(env, "success")))
    fail_msg("%s: %d is not a success envelope: %.300s", what, r->status,
             r->body);
  return env;
}

/* Asserts r is the error envelope every route gives: status `want`,
 * Content-Type application/json, success false, and a message that
 * contains `needle` (case-insensitive). */
static void lane_error_envelope(const lane_resp *r, int want,
                                const char *needle, const char *what) {
  if (r->status != want)
    fail_msg("%s: expected %d, got %d: %.300s", what, want, r->status, r->body);
  char *ct = th_header(r->head, "Content-Type");
  if (!ct || strncmp(ct, "application/json", 16) != 0)
    fail_msg("%s: %d with Content-Type %s, not application/json", what,
             r->status, ct ? ct : "(none)");
  free(ct);
  json_t *env = th_json_parse(r->body);
  if (!env || !json_is_false(json_object_get(env, "success")))
    fail_msg("%s: %d without an envelope whose success is false: %.300s", what,
             r->status, r->body);
  if (!sv_message_has(env, needle))
    fail_msg("%s: the message of %d does not name \"%s\": %.300s", what,
             r->status, needle, r->body);
  json_decref(env);
}

/* The header lines of r as "name: value" with the name in lower case,
 * sorted, without the ones that change from one answer to the next (Date,
 * and the rate limit's remaining tokens and reset time); one string. */
static int lane_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *lane_header_set(const lane_resp *r) {
  char *lines[64];
  int n = 0;
  size_t total = 1;
  for (const char *l = r->head; *l && n < 64;) {
    const char *eol = strstr(l, "\r\n");
    size_t len = eol ? (size_t)(eol - l) : strlen(l);
    const char *colon = memchr(l, ':', len);
    if (len > 0 && colon) {
      char *line = strndup(l, len);
      for (char *c = line; *c != ':'; c++)
        *c = (char)tolower((unsigned char)*c);
      if (strncmp(line, "date:", 5) != 0 &&
          strncmp(line, "x-ratelimit-remaining:", 22) != 0 &&
          strncmp(line, "x-ratelimit-reset:", 18) != 0) {
        lines[n++] = line;
        total += len + 1;
      } else {
        free(line);
      }
    }
    l = eol ? eol + 2 : l + len;
  }
  qsort(lines, (size_t)n, sizeof *lines, lane_cmp_str);
  char *out = malloc(total);
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    strcat(out, lines[i]);
    strcat(out, "\n");
    free(lines[i]);
  }
  return out;
}

/* Asserts two answers to the same kind of request are the same to a
 * client: the same status, the same headers (but for the ones that change
 * each time) and the same body. */
static void lane_assert_same(const lane_resp *a, const lane_resp *b,
                             const char *what) {
  char *ha = lane_header_set(a), *hb = lane_header_set(b);
  if (a->status != b->status || strcmp(ha, hb) != 0 ||
      a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0)
    fail_msg("%s: two answers differ:\n%d\n%s%.300s\n--- and ---\n%d\n%s%.300s",
             what, a->status, ha, a->body, b->status, hb, b->body);
  free(ha);
  free(hb);
}

/* One request on a connection of its own; its answer. */
static lane_resp lane_once(int port, const char *req, const char *what) {
  lane_conn c = lane_open(port);
  lane_send(&c, req);
  lane_resp r;
  int rc = lane_read(&c, LANE_READ_MS, &r);
  if (rc != LANE_OK)
    fail_msg("%s: no whole answer (%s)", what,
             rc == LANE_CLOSED ? "connection closed" : "timed out");
  lane_close(&c);
  return r;
}

/* Asserts the model's stored epochs are exactly 1..n (read back with the
 * usual client, whose answer is streamed). */
static void lane_assert_epochs(chubd_proc *p, const char *key, const char *id,
                               long n) {
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  json_t *rows = json_object_get(env, "data");
  assert_true(json_is_array(rows));
  char *seen = calloc((size_t)n + 2, 1);
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    long long e = th_json_int(row, "epoch", -1);
    if (e < 1 || e > n || seen[e])
      fail_msg("model %s: epoch %lld read back, want exactly epochs 1..%ld", id,
               e, n);
    seen[e] = 1;
  }
  if ((long)json_array_size(rows) != n)
    fail_msg("model %s: %zu epochs read back, want %ld", id,
             json_array_size(rows), n);
  free(seen);
  json_decref(env);
  free(path);
}

static chubd_proc *lane_start(const char *const extra[]) {
  return sv_start(extra);
}

static void lane_stop(chubd_proc *p) {
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* ---------------------------------------------------- both paths, one wire */

/* A metrics upload, a read of the model and another upload in one write:
 * three answers, in order, on the one connection. */
static void lane_pipeline_mixed(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "pipe.pt");
  char *path = th_fmt("/v1/models/%s", id);
  char *a = lane_post(id, key, 1, NULL);
  char *b = lane_get(path, key);
  char *c2 = lane_post(id, key, 2, NULL);
  char *all = th_fmt("%s%s%s", a, b, c2);
  lane_conn c = lane_open(chubd_proc_port(p));
  lane_send(&c, all); /* one send() */

  lane_resp first = lane_expect(&c, 200, "pipelined metrics POST (epoch 1)");
  json_t *env = lane_ok_envelope(&first, "metrics POST");
  assert_int_equal(th_json_int(env, "data.epochs", -1), 1);
  json_decref(env);
  lane_resp r = lane_expect(&c, 200, "pipelined GET of the model");
  env = lane_ok_envelope(&r, "GET model");
  sv_assert_str(th_json_str(env, "data.id"), id);
  sv_assert_str(th_json_str(env, "data.meta.name"), "pipe.pt");
  json_decref(env);
  lane_resp_free(&r);
  /* Before and after the read, whichever path served it, the same. */
  r = lane_expect(&c, 200, "pipelined metrics POST (epoch 2)");
  lane_assert_same(&first, &r, "metrics POSTs before and after a GET");
  lane_resp_free(&r);
  lane_resp_free(&first);
  lane_close(&c);

  lane_assert_epochs(p, key, id, 2);
  free(all);
  free(c2);
  free(b);
  free(a);
  free(path);
  free(id);
}

/* 100 uploads one after another on one kept-alive connection, then a read
 * on the same connection. */
static void lane_keepalive(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "keep.pt");
  lane_conn c = lane_open(chubd_proc_port(p));
  lane_resp last = {0};
  char *req = NULL;
  for (long e = 1; e <= 100; e++) {
    free(req);
    req = lane_post(id, key, e, NULL);
    lane_send(&c, req);
    char what[64];
    snprintf(what, sizeof what, "kept-alive metrics POST %ld", e);
    lane_resp_free(&last);
    last = lane_expect(&c, 200, what);
  }
  char *path = th_fmt("/v1/models/%s", id);
  char *get = lane_get(path, key);
  lane_send(&c, get);
  lane_resp r = lane_expect(&c, 200, "GET after 100 uploads");
  json_t *env = lane_ok_envelope(&r, "GET model");
  sv_assert_str(th_json_str(env, "data.id"), id);
  json_decref(env);
  lane_resp_free(&r);
  /* Epoch 100 again after the read: answered as it was before. */
  lane_send(&c, req);
  r = lane_expect(&c, 200, "metrics POST after the GET");
  lane_assert_same(&last, &r, "epoch 100 sent before and after a GET");
  lane_resp_free(&r);
  lane_resp_free(&last);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 100);
  free(req);
  free(get);
  free(path);
  free(id);
}

/* 200 uploads in one write, nothing read in between: 200 answers in
 * order. */
static void lane_pipeline_many(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "many.pt");
  size_t cap = 200 * 400, len = 0;
  char *all = malloc(cap);
  for (long e = 1; e <= 200; e++) {
    char *req = lane_post(id, key, e, NULL);
    size_t n = strlen(req);
    assert_true(len + n < cap);
    memcpy(all + len, req, n);
    len += n;
    free(req);
  }
  lane_conn c = lane_open(chubd_proc_port(p));
  sv_send(c.fd, all, len);
  for (int i = 1; i <= 200; i++) {
    char what[64];
    snprintf(what, sizeof what, "pipelined metrics POST %d of 200", i);
    lane_resp r = lane_expect(&c, 200, what);
    lane_resp_free(&r);
  }
  lane_close(&c);
  lane_assert_epochs(p, key, id, 200);
  free(all);
  free(id);
}

/* A head sent a few bytes at a time (40 pieces, more than chubd's loop
 * looks at before it leaves the connection to libmicrohttpd), then a
 * second upload on the same connection: both answered, both stored. */
static void lane_head_in_pieces(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "pieces.pt");
  char *req = lane_post(id, key, 1, NULL);
  size_t head_len = (size_t)(strstr(req, "\r\n\r\n") + 4 - req);
  size_t n = strlen(req), at = 0;
  lane_conn c = lane_open(chubd_proc_port(p));
  for (int i = 1; i <= 40; i++) {
    size_t to = i < 40 ? head_len * (size_t)i / 40 : n;
    sv_send(c.fd, req + at, to - at);
    at = to;
    sv_sleep_ms(5);
  }
  lane_resp r = lane_expect(&c, 200, "upload whose head came in 40 pieces");
  lane_resp_free(&r);
  char *next = lane_post(id, key, 2, NULL);
  lane_send(&c, next);
  r = lane_expect(&c, 200, "the next upload on that connection");
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 2);
  free(next);
  free(req);
  free(id);
}

/* Refusals pipelined by the hundred (a wrong key), then a good upload, in
 * one write: each answered in order, the good one stored, whichever
 * server ends up answering them. */
static void lane_pipeline_refusals(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "refused.pt");
  char *bad =
      lane_post(id, "0123456789abcdefghij0123456789abcdefghijAB", 1, NULL);
  char *good = lane_post(id, key, 1, NULL);
  size_t bn = strlen(bad), gn = strlen(good), len = 0;
  char *all = malloc(100 * bn + gn);
  for (int i = 0; i < 100; i++, len += bn)
    memcpy(all + len, bad, bn);
  memcpy(all + len, good, gn);
  len += gn;
  lane_conn c = lane_open(chubd_proc_port(p));
  sv_send(c.fd, all, len);
  for (int i = 1; i <= 100; i++) {
    char what[64];
    snprintf(what, sizeof what, "pipelined refusal %d of 100", i);
    lane_resp r = lane_expect(&c, 401, what);
    lane_resp_free(&r);
  }
  lane_resp r = lane_expect(&c, 200, "the good upload after 100 refusals");
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 1);
  free(all);
  free(good);
  free(bad);
  free(id);
}

static void lane_sleep_us(long us) {
  struct timespec ts = {us / 1000000, us % 1000000 * 1000};
  nanosleep(&ts, NULL);
}

/* Bytes or a hang-up that come just as the store answers an upload: the
 * answer and the connection's event reach chubd's loop together, and the
 * answer may close the connection or hand it over (Connection: close, a
 * request for libmicrohttpd behind it). Timing decides which comes first,
 * so the three ways are tried many times with pauses of up to 3 ms, about
 * a commit's time; under AddressSanitizer a connection used after it was
 * freed ends chubd, and chubd must still answer at the end. */
static void lane_answers_meet_events(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "meet.pt");
  static const char rest[] =
      "ET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  srand(12345);
  for (long i = 0; i < 450; i++) {
    int fd = sv_connect(chubd_proc_port(p));
    char *req =
        lane_post(id, key, i + 1, i % 3 == 0 ? "Connection: close\r\n" : NULL);
    char *next = lane_post(id, key, i + 100001, NULL);
    (void)!send(fd, req, strlen(req), MSG_NOSIGNAL);
    lane_sleep_us(rand() % 3000);
    if (i % 3 == 1) {
      (void)!send(fd, "G", 1, MSG_NOSIGNAL);
      lane_sleep_us(rand() % 3000);
      (void)!send(fd, rest, sizeof rest - 1, MSG_NOSIGNAL);
    } else if (i % 3 == 2) {
      (void)!send(fd, next, strlen(next), MSG_NOSIGNAL);
    }
    close(fd);
    free(next);
    free(req);
  }
  if (!sv_alive(p, 5000))
    fail_msg("chubd stopped answering after uploads met hang-ups and "
             "pipelined bytes (see its stderr above)");
  free(id);
}

/* The head in three pieces, the body in two, with pauses: one request. */
static void lane_trickle(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "trickle.pt");
  char *req = lane_post(id, key, 1, NULL);
  char *body = strstr(req, "\r\n\r\n") + 4;
  size_t head_len = (size_t)(body - req), body_len = strlen(body);
  /* Cuts inside the request line, inside a header, and in the body. */
  size_t cuts[] = {0,
                   9,
                   head_len / 2,
                   head_len,
                   head_len + body_len / 2,
                   head_len + body_len};
  lane_conn c = lane_open(chubd_proc_port(p));
  for (int i = 0; i < 5; i++) {
    sv_send(c.fd, req + cuts[i], cuts[i + 1] - cuts[i]);
    if (i < 4) {
      sv_sleep_ms(30);
      if (lane_stirred(&c))
        fail_msg("chubd answered or closed after piece %d of 5: %.200s", i + 1,
                 c.buf);
    }
  }
  lane_resp r = lane_expect(&c, 200, "trickled metrics POST");
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 1);
  free(req);
  free(id);
}

/* Connection: close is answered with Connection: close, then the close. */
static void lane_connection_close(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "close.pt");
  char *req = lane_post(id, key, 1, "Connection: close\r\n");
  lane_conn c = lane_open(chubd_proc_port(p));
  lane_send(&c, req);
  lane_resp r = lane_expect(&c, 200, "metrics POST with Connection: close");
  char *conn = th_header(r.head, "Connection");
  if (!conn || strcasecmp(conn, "close") != 0)
    fail_msg("answer to Connection: close says Connection: %s\n%s",
             conn ? conn : "(none)", r.head);
  free(conn);
  size_t extra = 0;
  if (!lane_closed(&c, LANE_READ_MS, &extra))
    fail_msg("chubd did not close the connection after Connection: close");
  assert_int_equal(extra, 0);
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 1);
  free(req);
  free(id);
}

/* ------------------------------------------ the same answers as anywhere */

/* 401 for an unknown key, a revoked one, and none. */
static void lane_errors_keys(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *id = sv_create(p, key, "keys.pt");

  /* 42 characters of the right kind that no one was given. */
  char *req =
      lane_post(id, "Zz0000000000000000000000000000000000000000", 1, NULL);
  lane_resp r = lane_once(port, req, "metrics POST with an unknown key");
  lane_error_envelope(&r, 401, "unknown or revoked API key", "unknown key");
  lane_resp_free(&r);
  free(req);

  /* A key that worked, then was revoked by the operator. */
  char *other = chubd_proc_create_key(p, "other");
  assert_non_null(other);
  char *oid = sv_create(p, other, "other.pt");
  req = lane_post(oid, other, 1, NULL);
  r = lane_once(port, req, "metrics POST with a key before its revocation");
  assert_int_equal(r.status, 200);
  lane_resp_free(&r);
  sv_revoke_key(p, other);
  r = lane_once(port, req, "metrics POST with a revoked key");
  lane_error_envelope(&r, 401, "unknown or revoked API key", "revoked key");
  lane_resp_free(&r);
  free(req);

  /* No key at all. */
  req = lane_post(id, NULL, 1, NULL);
  r = lane_once(port, req, "metrics POST without a key");
  lane_error_envelope(&r, 401, "API key required", "no key");
  lane_resp_free(&r);
  free(req);

  /* Nothing of it was stored. */
  lane_assert_epochs(p, key, id, 0);
  free(oid);
  free(other);
  free(id);
}

/* 415 for a body that is not declared JSON, 400 for one that is not JSON
 * or names a bad epoch, 404 for a model that does not exist. */
static void lane_errors_bodies(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *id = sv_create(p, key, "bodies.pt");
  char *path = th_fmt("/v1/models/%s", id);
  char *good = lane_body(1);

  char *req = lane_req("POST", path, key, "text/plain", NULL, good);
  lane_resp r = lane_once(port, req, "metrics POST as text/plain");
  lane_error_envelope(&r, 415, "Content-Type must be application/json",
                      "wrong Content-Type");
  lane_resp_free(&r);
  free(req);

  req = lane_req("POST", path, key, "application/json", NULL,
                 "type=metrics&epoch=1");
  r = lane_once(port, req, "metrics POST whose body is not JSON");
  lane_error_envelope(&r, 400, "malformed JSON", "body not JSON");
  lane_resp_free(&r);
  free(req);

  req = lane_req("POST", path, key, "application/json", NULL,
                 "{\"type\":\"metrics\",\"metrics\":{\"x1\":"
                 "\"{\\\"loss\\\": 0.5}\"}}");
  r = lane_once(port, req, "metrics POST with epoch \"x1\"");
  lane_error_envelope(&r, 400, "\"x1\" is not an epoch number", "bad epoch");
  lane_resp_free(&r);
  free(req);

  req = lane_req("POST", path, key, "application/json", NULL,
                 "{\"type\":\"metrics\",\"metrics\":{\"07\":"
                 "\"{\\\"loss\\\": 0.5}\"}}");
  r = lane_once(port, req, "metrics POST with epoch \"07\"");
  lane_error_envelope(&r, 400, "\"07\" is not an epoch number",
                      "epoch with a leading zero");
  lane_resp_free(&r);
  free(req);

  /* The right shape, but no such model. */
  const char *none = "AAAAAAAAAAAAAAAAAAAA";
  req = lane_post(none, key, 1, NULL);
  r = lane_once(port, req, "metrics POST to an unknown model");
  lane_error_envelope(&r, 404, "not found", "unknown model");
  assert_non_null(strstr(r.body, none));
  lane_resp_free(&r);
  free(req);

  lane_assert_epochs(p, key, id, 0);
  free(good);
  free(path);
  free(id);
}

/* A body over --max-body: 413 naming the limit, nothing stored. */
static void lane_errors_max_body(void **state) {
  (void)state;
  const char *args[] = {"--max-body", "2048", LANE_NO_RATE_LIMIT, NULL};
  chubd_proc *p = lane_start(args);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "big.pt");
  /* 100 epochs: well over 2048 bytes. */
  size_t cap = 8192, len = 0;
  char *metrics = malloc(cap);
  len += (size_t)snprintf(metrics, cap, "{");
  for (int e = 0; e < 100; e++)
    len += (size_t)snprintf(metrics + len, cap - len,
                            "%s\"%d\":\"{\\\"loss\\\": 1.2345}\"", e ? "," : "",
                            e);
  snprintf(metrics + len, cap - len, "}");
  char *body = th_fmt("{\"type\":\"metrics\",\"metrics\":%s}", metrics);
  assert_true(strlen(body) > 2048);
  char *path = th_fmt("/v1/models/%s", id);
  char *req = lane_req("POST", path, key, "application/json", NULL, body);
  lane_resp r = lane_once(chubd_proc_port(p), req, "metrics POST of 5 KiB");
  lane_error_envelope(&r, 413, "2048", "body over --max-body");
  lane_resp_free(&r);
  lane_assert_epochs(p, key, id, 0);
  /* Under the limit, the same route works. */
  char *small = lane_post(id, key, 1, NULL);
  r = lane_once(chubd_proc_port(p), small, "small metrics POST");
  assert_int_equal(r.status, 200);
  lane_resp_free(&r);
  lane_assert_epochs(p, key, id, 1);
  free(small);
  free(req);
  free(path);
  free(body);
  free(metrics);
  free(id);
  lane_stop(p);
}

/* A Host this hub does not serve: 421, nothing stored. */
static void lane_misdirected(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "host.pt");
  char *body = lane_body(1);
  char *req = th_fmt("POST /v1/models/%s HTTP/1.1\r\nHost: hub.example.com\r\n"
                     "x-api-key: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     id, key, strlen(body), body);
  lane_resp r =
      lane_once(chubd_proc_port(p), req, "metrics POST for hub.example.com");
  lane_error_envelope(&r, 421, "misdirected request", "foreign Host");
  assert_non_null(strstr(r.body, "hub.example.com"));
  lane_resp_free(&r);
  lane_assert_epochs(p, key, id, 0);
  free(req);
  free(body);
  free(id);
}

/* A chunked metrics upload is served and stored. */
static void lane_chunked(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "chunked.pt");
  char *body = lane_body(1);
  size_t n = strlen(body), half = n / 2;
  char *req = th_fmt("POST /v1/models/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "x-api-key: %s\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"
                     "%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     id, key, half, (int)half, body, n - half, body + half);
  lane_conn c = lane_open(chubd_proc_port(p));
  lane_send(&c, req);
  lane_resp r = lane_expect(&c, 200, "chunked metrics POST");
  json_decref(lane_ok_envelope(&r, "chunked metrics POST"));
  lane_resp_free(&r);
  /* And the connection goes on. */
  char *again = lane_post(id, key, 2, NULL);
  lane_send(&c, again);
  r = lane_expect(&c, 200, "metrics POST after a chunked one");
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 2);
  free(again);
  free(req);
  free(body);
  free(id);
}

/* Expect: 100-continue: the interim answer, then the body, then 200. */
static void lane_expect_continue(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "continue.pt");
  char *req = lane_post(id, key, 1, "Expect: 100-continue\r\n");
  char *body = strstr(req, "\r\n\r\n") + 4;
  lane_conn c = lane_open(chubd_proc_port(p));
  sv_send(c.fd, req, (size_t)(body - req));
  lane_resp r = lane_expect(&c, 100, "head with Expect: 100-continue");
  lane_resp_free(&r);
  lane_send(&c, body);
  r = lane_expect(&c, 200, "body after 100 Continue");
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 1);
  free(req);
  free(id);
}

/* HTTP/1.0: answered, then closed, unless the client asks to keep it. */
static void lane_http10(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "http10.pt");
  lane_conn c = lane_open(chubd_proc_port(p));
  for (long e = 1; e <= 3; e++) {
    char *body = lane_body(e);
    /* Epochs 1 and 2 ask for keep-alive; epoch 3 does not. */
    char *req = th_fmt("POST /v1/models/%s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                       "x-api-key: %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n%s\r\n%s",
                       id, key, strlen(body),
                       e < 3 ? "Connection: keep-alive\r\n" : "", body);
    lane_send(&c, req);
    char what[64];
    snprintf(what, sizeof what, "HTTP/1.0 metrics POST %ld", e);
    lane_resp r = lane_expect(&c, 200, what);
    lane_resp_free(&r);
    if (e < 3 && lane_stirred(&c))
      fail_msg("chubd closed an HTTP/1.0 connection that asked for "
               "keep-alive");
    free(req);
    free(body);
  }
  if (!lane_closed(&c, LANE_READ_MS, NULL))
    fail_msg("chubd kept an HTTP/1.0 connection open without keep-alive");
  lane_close(&c);
  lane_assert_epochs(p, key, id, 3);
  free(id);
}

/* ------------------------------------------------ clients that misbehave */

/* Clients that send an upload and leave without reading: chubd stays up,
 * serves the next one and still stops cleanly on SIGTERM. */
static void lane_client_gone(void **state) {
  (void)state;
  const char *args[] = {LANE_NO_RATE_LIMIT, NULL};
  chubd_proc *p = lane_start(args);
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *id = sv_create(p, key, "gone.pt");
  for (long e = 1; e <= 20; e++) {
    char *req = lane_post(id, key, e, NULL);
    if (e % 2 == 0) { /* two pipelined, then gone */
      char *next = lane_post(id, key, e + 100, NULL);
      char *both = th_fmt("%s%s", req, next);
      sv_raw(port, both, strlen(both), 0);
      free(both);
      free(next);
    } else {
      sv_raw(port, req, strlen(req), 0);
    }
    free(req);
  }
  assert_true(sv_alive(p, 5000));
  assert_int_equal(sv_metrics(p, key, id, "{\"500\": \"{\\\"loss\\\": 1}\"}"),
                   200);
  char *req = lane_post(id, key, 501, NULL);
  lane_resp r = lane_once(port, req, "metrics POST after clients left");
  assert_int_equal(r.status, 200);
  lane_resp_free(&r);
  free(req);
  /* Those two are stored; the ones whose clients left may or may not be. */
  char *path = th_fmt("/v1/models/%s/metrics?after=499", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(json_object_get(env, "data")), 2);
  json_decref(env);
  free(path);
  free(id);
  long t0 = lane_now_ms();
  int st = chubd_proc_stop(p); /* SIGTERM; SIGKILL after 10 s */
  fprintf(stderr, "lane: chubd exited %d %ld ms after SIGTERM\n", st,
          lane_now_ms() - t0);
  assert_int_equal(st, 0);
  chubd_proc_free(p);
}

/* A connection that is answered or refused: 1 when a GET /v1/health on a
 * new connection is answered 200, 0 when the server closes it first. */
static int lane_health_answered(int port) {
  lane_conn c = lane_open(port);
  char *req = lane_get("/v1/health", NULL);
  lane_send(&c, req);
  lane_resp r;
  int rc = lane_read(&c, LANE_READ_MS, &r);
  if (rc == LANE_TIMEOUT)
    fail_msg("GET /v1/health: neither answered nor closed in %d ms",
             LANE_READ_MS);
  int ok = rc == LANE_OK && r.status == 200;
  if (rc == LANE_OK)
    lane_resp_free(&r);
  lane_close(&c);
  free(req);
  return ok;
}

/* --max-per-ip 4 counts every connection, whatever it did: two idle
 * ones, one that uploaded metrics (the lane's own), one that read health
 * (handed on). The fifth is closed unanswered; once one of the four goes,
 * a new one is served, and the others still are. */
static void lane_max_per_ip(void **state) {
  (void)state;
  const char *args[] = {"--max-per-ip",     "4", "--header-timeout", "60",
                        LANE_NO_RATE_LIMIT, NULL};
  chubd_proc *p = lane_start(args);
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *get = lane_get("/v1/health", NULL);

  /* No other client has touched this chubd, and none will close a
   * connection before the count is checked: the model is made on the
   * connection that then reads health, so no connection of ours that is
   * closing can still be counted. */
  lane_conn health = lane_open(port);
  char *create = lane_req("POST", "/v1/models", key, "application/json", NULL,
                          "{\"meta\": {\"name\": \"ip.pt\"}}");
  lane_send(&health, create);
  lane_resp r = lane_expect(&health, 200, "POST /v1/models");
  json_t *env = lane_ok_envelope(&r, "POST /v1/models");
  char *id = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  lane_resp_free(&r);
  lane_send(&health, get);
  r = lane_expect(&health, 200, "GET /v1/health (connection 1 of 4)");
  lane_resp_free(&r);

  lane_conn up = lane_open(port);
  char *post = lane_post(id, key, 1, NULL);
  lane_send(&up, post);
  r = lane_expect(&up, 200, "metrics POST (connection 2 of 4)");
  lane_resp_free(&r);

  lane_conn idle1 = lane_open(port);
  lane_conn idle2 = lane_open(port);
  sv_sleep_ms(200); /* taken from the backlog before the fifth comes */

  lane_conn fifth = lane_open(port);
  lane_send(&fifth, get);
  size_t got = 0;
  int closed = lane_closed(&fifth, LANE_READ_MS, &got);
  if (got)
    fail_msg("a 5th connection with --max-per-ip 4 was answered: %.300s",
             fifth.buf);
  if (!closed)
    fail_msg("a 5th connection from one address with --max-per-ip 4 was "
             "not closed");
  lane_close(&fifth);

  /* An idle one goes; a new one is served once chubd has seen it go. */
  lane_close(&idle1);
  int served = 0;
  for (long deadline = lane_now_ms() + 5000;
       !served && lane_now_ms() < deadline;) {
    served = lane_health_answered(port);
    if (!served)
      sv_sleep_ms(50);
  }
  if (!served)
    fail_msg("after one of 4 connections closed, a new one was not served");

  /* The three left were held open all along, and are still served. */
  lane_send(&idle2, post);
  r = lane_expect(&idle2, 200, "metrics POST on the idle connection");
  lane_resp_free(&r);
  lane_send(&up, post);
  r = lane_expect(&up, 200, "second metrics POST on the uploading connection");
  lane_resp_free(&r);
  lane_send(&health, get);
  r = lane_expect(&health, 200, "second GET /v1/health");
  lane_resp_free(&r);

  lane_close(&idle2);
  lane_close(&health);
  lane_close(&up);
  free(get);
  free(post);
  free(create);
  free(id);
  lane_stop(p);
}

/* --header-timeout bounds the head only: a stalled request line is cut,
 * a body in progress is not (--idle-timeout governs it). */
static void lane_header_timeout(void **state) {
  (void)state;
  const char *args[] = {"--header-timeout", "1", "--idle-timeout", "30",
                        LANE_NO_RATE_LIMIT, NULL};
  chubd_proc *p = lane_start(args);
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *id = sv_create(p, key, "slow.pt");

  lane_conn stalled = lane_open(port);
  lane_send(&stalled, "POST /v1/models/");
  long t0 = lane_now_ms();

  char *req = lane_post(id, key, 1, NULL);
  char *body = strstr(req, "\r\n\r\n") + 4;
  size_t head_len = (size_t)(body - req), body_len = strlen(body);
  lane_conn half = lane_open(port);
  sv_send(half.fd, req, head_len + body_len / 2);
  long t_half = lane_now_ms();

  /* The stalled head is closed after about a second; 8 s is the margin
   * for a busy machine, well under the 30 s idle timeout. */
  if (!lane_closed(&stalled, 8000, NULL))
    fail_msg("a head stalled after \"POST /v1/models/\" was not closed "
             "within 8 s with --header-timeout 1");
  long waited = lane_now_ms() - t0;
  fprintf(stderr, "lane: stalled head closed after %ld ms\n", waited);
  lane_close(&stalled);

  /* The half body has waited 2.5 s, over twice the header deadline: the
   * watchdog would have cut it by now if that deadline held bodies too. */
  long left = t_half + 2500 - lane_now_ms();
  if (left > 0)
    sv_sleep_ms(left);
  if (lane_stirred(&half))
    fail_msg("a request with a whole head and half its body was closed or "
             "answered after 2.5 s with --header-timeout 1 --idle-timeout 30");
  sv_send(half.fd, body + body_len / 2, body_len - body_len / 2);
  lane_resp r = lane_expect(&half, 200, "metrics POST whose body was late");
  lane_resp_free(&r);
  lane_close(&half);
  lane_assert_epochs(p, key, id, 1);
  free(req);
  free(id);
  lane_stop(p);
}

/* ------------------------------------------------------------------ IPv6 */

/* Whether this machine can bind [::1]. */
static int lane_have_ipv6(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                           .sin6_addr = in6addr_loopback};
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static lane_conn lane_open6(int port) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0)
    fail_msg("socket(AF_INET6): %s", strerror(errno));
  struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                           .sin6_port = htons((uint16_t)port),
                           .sin6_addr = in6addr_loopback};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    fail_msg("connect [::1]:%d: %s", port, strerror(e));
  }
  return lane_wrap(fd);
}

/* chubd on [::1] takes a metrics upload over IPv6, and a read after it on
 * the same connection. */
static void lane_ipv6(void **state) {
  (void)state;
  if (!lane_have_ipv6())
    skip(); /* no [::1] here */
  const char *args[] = {LANE_NO_RATE_LIMIT, NULL};
  chubd_proc *p = chubd_proc_start_on(sv_chubd_bin(), "[::1]", NULL, args);
  if (!p)
    fail_msg("chubd did not start with --listen [::1]:0; its stderr is above");
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "v6.pt"); /* base URL http://[::1]:PORT */
  char *body = lane_body(1);
  char *req = th_fmt("POST /v1/models/%s HTTP/1.1\r\nHost: [::1]:%d\r\n"
                     "x-api-key: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     id, chubd_proc_port(p), key, strlen(body), body);
  lane_conn c = lane_open6(chubd_proc_port(p));
  lane_send(&c, req);
  lane_resp r = lane_expect(&c, 200, "metrics POST over IPv6");
  json_decref(lane_ok_envelope(&r, "metrics POST over IPv6"));
  lane_resp_free(&r);
  char *path = th_fmt("/v1/models/%s", id);
  char *get = lane_get(path, key);
  lane_send(&c, get);
  r = lane_expect(&c, 200, "GET of the model over IPv6");
  lane_resp_free(&r);
  lane_close(&c);
  lane_assert_epochs(p, key, id, 1);
  free(get);
  free(path);
  free(req);
  free(body);
  free(id);
  lane_stop(p);
}

/* -------------------------------------------------- the lane's counters */

/* The value of the unlabelled sample `name` in Prometheus text, or -1. */
static double lane_prom_value(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *line = text; line && *line;) {
    if (strncmp(line, name, n) == 0 && line[n] == ' ')
      return strtod(line + n + 1, NULL);
    line = strchr(line, '\n');
    if (line)
      line++;
  }
  return -1;
}

/* chubd_lane_requests_total counts the requests the lane answered itself,
 * chubd_lane_handoffs_total the connections it handed to libmicrohttpd:
 * to="http" here the one that read the model and the one that reads
 * /metrics, to="uploads" the one that uploaded weights. */
static void lane_prometheus_counters(void **state) {
  (void)state;
  const char *args[] = {"--metrics", LANE_NO_RATE_LIMIT, NULL};
  chubd_proc *p = lane_start(args);
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *id = sv_create(p, key, "prom.pt");
  lane_conn c = lane_open(port);
  for (long e = 1; e <= 5; e++) {
    char *req = lane_post(id, key, e, NULL);
    lane_send(&c, req);
    lane_resp r = lane_expect(&c, 200, "metrics POST");
    lane_resp_free(&r);
    free(req);
  }
  lane_close(&c);
  char *path = th_fmt("/v1/models/%s", id);
  char *get = lane_get(path, key);
  lane_resp r = lane_once(port, get, "GET of the model");
  assert_int_equal(r.status, 200);
  lane_resp_free(&r);
  unsigned char *w = sv_bytes(300000, 7);
  th_response up;
  memset(&up, 0, sizeof up);
  assert_int_equal(
      sv_upload(p, key, id, 1, "epoch", NULL, w, 300000, NULL, &up), 200);
  th_response_free(&up);
  free(w);

  r = lane_once(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "GET /metrics");
  assert_int_equal(r.status, 200);
  double lane = lane_prom_value(r.body, "chubd_lane_requests_total");
  double handoffs =
      lane_prom_value(r.body, "chubd_lane_handoffs_total{to=\"http\"}");
  double uploads =
      lane_prom_value(r.body, "chubd_lane_handoffs_total{to=\"uploads\"}");
  fprintf(stderr,
          "lane: chubd_lane_requests_total %g, "
          "handed over %g, uploads handed over %g\n",
          lane, handoffs, uploads);
  if (lane < 5)
    fail_msg("GET /metrics has no line \"chubd_lane_requests_total N\" with "
             "N >= 5 after 5 plain uploads");
  if (handoffs < 1)
    fail_msg("GET /metrics has no line \"chubd_lane_handoffs_total"
             "{to=\\\"http\\\"} M\" with M >= 1 after a GET of a model");
  if (uploads < 1)
    fail_msg("GET /metrics has no line \"chubd_lane_handoffs_total"
             "{to=\\\"uploads\\\"} M\" with M >= 1 after a weights upload");
  lane_resp_free(&r);
  free(get);
  free(path);
  free(id);
  lane_stop(p);
}

/* cmocka 1.1 exits 0 when a group setup or teardown fails (no test
 * failed): remembered here, so that a chubd that does not start, or does
 * not exit 0 on SIGTERM, fails the suite. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lane_pipeline_mixed),
      cmocka_unit_test(lane_keepalive),
      cmocka_unit_test(lane_pipeline_many),
      cmocka_unit_test(lane_pipeline_refusals),
      cmocka_unit_test(lane_head_in_pieces),
      cmocka_unit_test(lane_answers_meet_events),
      cmocka_unit_test(lane_trickle),
      cmocka_unit_test(lane_connection_close),
      cmocka_unit_test(lane_errors_keys),
      cmocka_unit_test(lane_errors_bodies),
      cmocka_unit_test(lane_errors_max_body),
      cmocka_unit_test(lane_misdirected),
      cmocka_unit_test(lane_chunked),
      cmocka_unit_test(lane_expect_continue),
      cmocka_unit_test(lane_http10),
      cmocka_unit_test(lane_client_gone),
      cmocka_unit_test(lane_max_per_ip),
      cmocka_unit_test(lane_header_timeout),
      cmocka_unit_test(lane_ipv6),
      cmocka_unit_test(lane_prometheus_counters),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_lane", tests, sv_group_setup, sv_group_teardown));
}

/*
 * fakehub.c - the fake hub of fakehub.h.
 *
 * One thread, one connection at a time, `Connection: close` on every
 * answer: the simplest server that still lets a client see each status,
 * delay and dropped connection exactly as scripted. A stop pipe wakes
 * every wait (accept, read, scripted delay) so stopping never waits out a
 * delay. Bodies are hashed as they stream in and only their first 4 MiB
 * are held while the answer is worked out (1 MiB is kept in the record),
 * so a gigabyte upload costs this server no memory either. Records are
 * allocated one by one and never move, so a test may hold a pointer to one
 * while the hub goes on recording.
 */
#include "fakehub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  FAKEHUB_HOLD = 4 << 20,   /* body bytes held while answering */
  FAKEHUB_RECORD = 1 << 20, /* body bytes kept in the record */
  FAKEHUB_HEAD = 64 << 10,  /* the longest request line + headers */
  FAKEHUB_SCRIPT = 256,     /* scripted replies queued at once */
  FAKEHUB_HEAD_IDLE_MS = 5000,
  FAKEHUB_BODY_IDLE_MS = 10000
};

typedef struct fakehub_scripted {
  char route[160];
  fakehub_reply reply;
  char *body;
} fakehub_scripted;

struct fakehub {
  int fd;
  int stop_pipe[2];
  int port;
  char url[64];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* signalled on every new record */
  fakehub_scripted script[FAKEHUB_SCRIPT];
  size_t nscript;
  fakehub_request **reqs;
  size_t nreqs, capreqs;
  char *model_json;
  int fixed_status; /* 0: the protocol's answers */
  char *fixed_body;
};

static void fakehub_hex(const unsigned char *md, char out[65]) {
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = d[md[i] >> 4];
    out[2 * i + 1] = d[md[i] & 15];
  }
  out[64] = '\0';
}

/* Waits up to ms for fd to be readable; false when stopping or timed out. */
static bool fakehub_wait_fd(fakehub *h, int fd, int ms) {
  struct pollfd p[2] = {{fd, POLLIN, 0}, {h->stop_pipe[0], POLLIN, 0}};
  int n = poll(p, 2, ms);
  return n > 0 && !(p[1].revents & POLLIN) &&
         (p[0].revents & (POLLIN | POLLHUP));
}

/* Sleeps ms; false when the hub is stopping. */
static bool fakehub_sleep(fakehub *h, int ms) {
  struct pollfd p = {h->stop_pipe[0], POLLIN, 0};
  return poll(&p, 1, ms) == 0;
}

/* Finds header `name` in a block of "Name: value\r\n" lines and copies its
 * value (leading spaces skipped, cut to fit) into out; NULL when absent. */
static const char *fakehub_find_header(const char *block, const char *name,
                                       char *out, size_t len) {
  size_t nl = strlen(name);
  for (const char *l = block; l && *l;) {
    const char *eol = strstr(l, "\r\n");
    size_t ll = eol ? (size_t)(eol - l) : strlen(l);
    if (ll > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ')
        v++;
      size_t vl = ll - (size_t)(v - l);
      if (len) {
        if (vl >= len)
          vl = len - 1;
        memcpy(out, v, vl);
        out[vl] = '\0';
      }
      return out;
    }
    l = eol ? eol + 2 : NULL;
  }
  if (len)
    out[0] = '\0';
  return NULL;
}

static void fakehub_send_all(int c, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(c, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* Reads one request into r (body held up to FAKEHUB_HOLD bytes). False
 * when the client went away, stalled or the hub is stopping. */
static bool fakehub_read(fakehub *h, int c, fakehub_request *r) {
  char *head = malloc(FAKEHUB_HEAD + 1);
  if (!head)
    return false;
  size_t hl = 0;
  char *end = NULL;
  while (!end) {
    if (hl == FAKEHUB_HEAD || !fakehub_wait_fd(h, c, FAKEHUB_HEAD_IDLE_MS)) {
      free(head);
      return false;
    }
    ssize_t n = recv(c, head + hl, FAKEHUB_HEAD - hl, 0);
    if (n <= 0) {
      free(head);
      return false;
    }
    hl += (size_t)n;
    head[hl] = '\0';
    end = strstr(head, "\r\n\r\n");
  }
  size_t hlen = (size_t)(end - head) + 4;
  char *first = strstr(head, "\r\n");
  /* The header block runs from after the request line through the last
   * header's CRLF. */
  size_t block = (size_t)(end - first);
  r->headers = malloc(block + 1);
  if (!r->headers) {
    free(head);
    return false;
  }
  memcpy(r->headers, first + 2, block);
  r->headers[block] = '\0';
  head[hlen - 2] = '\0';
  sscanf(head, "%15s %511s", r->method, r->path);
  char v[160];
  fakehub_find_header(r->headers, "x-api-key", r->api_key, sizeof r->api_key);
  fakehub_find_header(r->headers, "x-chub-sha256", r->sha256_header,
                      sizeof r->sha256_header);
  size_t clen = 0;
  if (fakehub_find_header(r->headers, "content-length", v, sizeof v))
    clen = (size_t)strtoull(v, NULL, 10);
  r->body_len = clen;
  r->body = malloc((clen < FAKEHUB_HOLD ? clen : FAKEHUB_HOLD) + 1);
  unsigned char *buf = malloc(1 << 16);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!r->body || !buf || !ctx) {
    EVP_MD_CTX_free(ctx);
    free(buf);
    free(head);
    return false;
  }
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  /* Body bytes that came with the head. */
  size_t got = 0;
  size_t extra = hl - hlen;
  const char *src = head + hlen;
  if (extra < clen && fakehub_find_header(r->headers, "expect", v, sizeof v) &&
      strcasecmp(v, "100-continue") == 0) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    fakehub_send_all(c, cont, sizeof cont - 1);
  }
  bool ok = true;
  for (;;) {
    if (extra > clen - got)
      extra = clen - got;
    if (extra) {
      if (r->body_stored < FAKEHUB_HOLD) {
        size_t keep = FAKEHUB_HOLD - r->body_stored;
        if (keep > extra)
          keep = extra;
        memcpy(r->body + r->body_stored, src, keep);
        r->body_stored += keep;
      }
      EVP_DigestUpdate(ctx, src, extra);
      got += extra;
    }
    if (got >= clen)
      break;
    if (!fakehub_wait_fd(h, c, FAKEHUB_BODY_IDLE_MS)) {
      ok = false;
      break;
    }
    ssize_t n = recv(c, buf, 1 << 16, 0);
    if (n <= 0) {
      ok = false;
      break;
    }
    src = (const char *)buf;
    extra = (size_t)n;
  }
  r->body[r->body_stored] = '\0';
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdl = 0;
  EVP_DigestFinal_ex(ctx, md, &mdl);
  EVP_MD_CTX_free(ctx);
  fakehub_hex(md, r->body_sha256);
  free(buf);
  free(head);
  return ok;
}

static const char *fakehub_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 429:
    return "Too Many Requests";
  default:
    return "Answer";
  }
}

static void fakehub_answer(int c, int status, const char *body,
                           int retry_after) {
  char head[512];
  char ra[64] = "";
  if (retry_after >= 0)
    snprintf(ra, sizeof ra, "Retry-After: %d\r\n", retry_after);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                   status, fakehub_reason(status), strlen(body), ra);
  fakehub_send_all(c, head, (size_t)n);
  fakehub_send_all(c, body, strlen(body));
}

/* The SHA-256 of multipart part `name`'s value, when the body was kept. */
static bool fakehub_part_sha(const fakehub_request *r, const char *name,
                             char out[65]) {
  size_t len = 0;
  const char *v = fakehub_part(r, name, &len);
  if (!v)
    return false;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdl = 0;
  EVP_Digest(v, len, md, &mdl, EVP_sha256(), NULL);
  fakehub_hex(md, out);
  return true;
}

/* A malloc'd printf; NULL when out of memory. */
static char *fakehub_fmt(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *fakehub_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}

/* The protocol's normal answer to r: its status, the body in *body. */
static int fakehub_default(fakehub *h, const fakehub_request *r, char **body) {
  const char *m = r->method, *p = r->path;
  const char *id = FAKEHUB_MODEL_ID;
  char want[128];
  if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/models") == 0) {
    *body = fakehub_fmt("{\"success\": true, \"message\": \"Model created\", "
                        "\"data\": {\"id\": \"%s\"}}",
                        id);
    return 200;
  }
  snprintf(want, sizeof want, "/v1/models/%s", id);
  if (strcmp(m, "GET") == 0 && strcmp(p, want) == 0) {
    pthread_mutex_lock(&h->mu);
    *body = fakehub_fmt("{\"success\": true, \"data\": %s}",
                        h->model_json ? h->model_json : "{}");
    pthread_mutex_unlock(&h->mu);
    return 200;
  }
  if (strcmp(m, "POST") == 0 && strcmp(p, want) == 0) {
    *body = fakehub_fmt("{\"success\": true, \"message\": \"Metrics "
                        "uploaded\", \"data\": {}}");
    return 200;
  }
  snprintf(want, sizeof want, "/v1/models/%s/upload", id);
  if (strcmp(m, "POST") == 0 && strcmp(p, want) == 0) {
    char sha[65];
    const char *part =
        fakehub_part(r, "last.pt", &(size_t){0}) ? "last.pt" : "best.pt";
    bool whole = r->body_stored == r->body_len;
    if (whole && fakehub_part_sha(r, part, sha) && r->sha256_header[0] &&
        strcmp(sha, r->sha256_header) != 0) {
      *body = fakehub_fmt("{\"success\": false, \"message\": \"x-chub-sha256 "
                          "does not match the received bytes\"}");
      return 400;
    }
    *body = fakehub_fmt("{\"success\": true, \"data\": {\"size\": %zu, "
                        "\"sha256\": \"%s\"}}",
                        r->body_len, r->sha256_header);
    return 200;
  }
  snprintf(want, sizeof want, "/v1/agent/heartbeat/models/%s", id);
  if (strcmp(m, "POST") == 0 && strcmp(p, want) == 0) {
    *body = fakehub_fmt("{\"success\": true, \"data\": {\"agentId\": "
                        "\"agent-default\"}}");
    return 200;
  }
  if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/events") == 0) {
    *body = fakehub_fmt("{\"success\": true, \"data\": {}}");
    return 200;
  }
  *body = fakehub_fmt("{\"success\": false, \"message\": \"no such route\"}");
  return 404;
}

/* The usual answer: the fixed one when set, else the protocol's. */
static int fakehub_usual(fakehub *h, const fakehub_request *r, char **body) {
  pthread_mutex_lock(&h->mu);
  int status = h->fixed_status;
  if (status)
    *body = strdup(h->fixed_body ? h->fixed_body : "");
  pthread_mutex_unlock(&h->mu);
  return status ? status : fakehub_default(h, r, body);
}

static bool fakehub_take_script(fakehub *h, const fakehub_request *r,
                                fakehub_scripted *out) {
  char key[600];
  snprintf(key, sizeof key, "%s %s", r->method, r->path);
  bool found = false;
  pthread_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->nscript; i++) {
    if (strncmp(key, h->script[i].route, strlen(h->script[i].route)) != 0)
      continue;
    *out = h->script[i];
    memmove(&h->script[i], &h->script[i + 1],
            (h->nscript - i - 1) * sizeof *h->script);
    h->nscript--;
    found = true;
    break;
  }
  pthread_mutex_unlock(&h->mu);
  return found;
}

static void fakehub_request_free(fakehub_request *r) {
  if (!r)
    return;
  free(r->headers);
  free(r->body);
  free(r);
}

/* Adds r to the records (taking it) and wakes the waiters. */
static void fakehub_record(fakehub *h, fakehub_request *r) {
  /* Keep only the first FAKEHUB_RECORD bytes of a large body. */
  if (r->body_stored > FAKEHUB_RECORD) {
    char *small = realloc(r->body, FAKEHUB_RECORD + 1);
    if (small) {
      r->body = small;
      r->body_stored = FAKEHUB_RECORD;
      r->body[FAKEHUB_RECORD] = '\0';
    }
  }
  pthread_mutex_lock(&h->mu);
  if (h->nreqs == h->capreqs) {
    size_t cap = h->capreqs ? h->capreqs * 2 : 64;
    fakehub_request **n = realloc(h->reqs, cap * sizeof *n);
    if (!n) {
      pthread_mutex_unlock(&h->mu);
      fakehub_request_free(r);
      return;
    }
    h->reqs = n;
    h->capreqs = cap;
  }
  h->reqs[h->nreqs++] = r;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void fakehub_serve(fakehub *h, int c) {
  fakehub_request *r = calloc(1, sizeof *r);
  if (!r)
    return;
  if (!fakehub_read(h, c, r)) {
    fakehub_request_free(r);
    return;
  }
  fakehub_scripted sc;
  bool scripted = fakehub_take_script(h, r, &sc);
  char *body = NULL;
  int status = fakehub_usual(h, r, &body);
  fakehub_record(h, r); /* r belongs to the records now */
  if (scripted && sc.reply.delay_ms > 0 &&
      !fakehub_sleep(h, sc.reply.delay_ms)) {
    free(sc.body);
    free(body);
    return;
  }
  if (scripted && sc.reply.drop) {
    free(sc.body);
    free(body);
    return;
  }
  if (scripted && sc.reply.status) {
    status = sc.reply.status;
    free(body);
    if (sc.body)
      body = strdup(sc.body);
    else
      body = fakehub_fmt("{\"success\": %s, \"message\": \"scripted %d\"}",
                         status < 300 ? "true" : "false", status);
  }
  fakehub_answer(c, status, body ? body : "",
                 scripted ? sc.reply.retry_after : -1);
  free(body);
  if (scripted)
    free(sc.body);
}

static void *fakehub_main(void *arg) {
  fakehub *h = arg;
  for (;;) {
    struct pollfd p[2] = {{h->fd, POLLIN, 0}, {h->stop_pipe[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      continue;
    fakehub_serve(h, c);
    shutdown(c, SHUT_WR);
    close(c);
  }
  return NULL;
}

fakehub *fakehub_start(void) {
  fakehub *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->stop_pipe[0] = h->stop_pipe[1] = -1;
  pthread_mutex_init(&h->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->cv, &ca);
  pthread_condattr_destroy(&ca);
  h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (h->fd >= 0)
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(h->fd, 64) != 0 ||
      getsockname(h->fd, (struct sockaddr *)&a, &al) != 0 ||
      pipe2(h->stop_pipe, O_CLOEXEC) != 0) {
    perror("fakehub: cannot listen on 127.0.0.1");
    goto fail;
  }
  h->port = ntohs(a.sin_port);
  snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d", h->port);
  if (pthread_create(&h->thread, NULL, fakehub_main, h) != 0) {
    fprintf(stderr, "fakehub: cannot start its thread\n");
    goto fail;
  }
  return h;
fail:
  if (h->fd >= 0)
    close(h->fd);
  if (h->stop_pipe[0] >= 0) {
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
  }
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h);
  return NULL;
}

fakehub *fakehub_start_fixed(int status, const char *body) {
  fakehub *h = fakehub_start();
  if (h)
    fakehub_answer_all(h, status, body);
  return h;
}

void fakehub_stop(fakehub *h) {
  if (!h)
    return;
  if (write(h->stop_pipe[1], "x", 1) != 1)
    perror("fakehub: stop");
  pthread_join(h->thread, NULL);
  close(h->fd);
  close(h->stop_pipe[0]);
  close(h->stop_pipe[1]);
  for (size_t i = 0; i < h->nreqs; i++)
    fakehub_request_free(h->reqs[i]);
  for (size_t i = 0; i < h->nscript; i++)
    free(h->script[i].body);
  free(h->reqs);
  free(h->model_json);
  free(h->fixed_body);
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

int fakehub_port(const fakehub *h) {
  return h->port;
}

const char *fakehub_url(const fakehub *h) {
  return h->url;
}

void fakehub_answer_all(fakehub *h, int status, const char *body) {
  pthread_mutex_lock(&h->mu);
  h->fixed_status = status;
  free(h->fixed_body);
  h->fixed_body = status && body ? strdup(body) : NULL;
  pthread_mutex_unlock(&h->mu);
}

void fakehub_script(fakehub *h, const char *route, fakehub_reply r) {
  pthread_mutex_lock(&h->mu);
  if (h->nscript < FAKEHUB_SCRIPT) {
    fakehub_scripted *sc = &h->script[h->nscript++];
    snprintf(sc->route, sizeof sc->route, "%s", route);
    sc->reply = r;
    sc->body = r.body ? strdup(r.body) : NULL;
    sc->reply.body = NULL;
  } else {
    fprintf(stderr, "fakehub: more than %d scripted replies; %s dropped\n",
            FAKEHUB_SCRIPT, route);
  }
  pthread_mutex_unlock(&h->mu);
}

void fakehub_clear_script(fakehub *h) {
  pthread_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->nscript; i++)
    free(h->script[i].body);
  h->nscript = 0;
  pthread_mutex_unlock(&h->mu);
}

void fakehub_set_model(fakehub *h, const char *model_json) {
  pthread_mutex_lock(&h->mu);
  free(h->model_json);
  h->model_json = model_json ? strdup(model_json) : NULL;
  pthread_mutex_unlock(&h->mu);
}

/* Whether r is "METHOD PATH" == route; NULL matches every request. */
static bool fakehub_match(const fakehub_request *r, const char *route) {
  if (!route)
    return true;
  size_t ml = strlen(r->method);
  return strncmp(route, r->method, ml) == 0 && route[ml] == ' ' &&
         strcmp(route + ml + 1, r->path) == 0;
}

/* Locked. */
static size_t fakehub_count_locked(fakehub *h, const char *route) {
  size_t n = 0;
  for (size_t i = 0; i < h->nreqs; i++)
    n += fakehub_match(h->reqs[i], route);
  return n;
}

size_t fakehub_count(fakehub *h, const char *route) {
  pthread_mutex_lock(&h->mu);
  size_t n = fakehub_count_locked(h, route);
  pthread_mutex_unlock(&h->mu);
  return n;
}

bool fakehub_wait(fakehub *h, const char *route, size_t n, double timeout_s) {
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (timeout_s > 0) {
    double whole = (double)(long)timeout_s;
    end.tv_sec += (time_t)whole;
    end.tv_nsec += (long)((timeout_s - whole) * 1e9);
    if (end.tv_nsec >= 1000000000L) {
      end.tv_sec++;
      end.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&h->mu);
  bool ok = fakehub_count_locked(h, route) >= n;
  while (!ok) {
    int rc = pthread_cond_timedwait(&h->cv, &h->mu, &end);
    ok = fakehub_count_locked(h, route) >= n;
    if (rc != 0)
      break;
  }
  pthread_mutex_unlock(&h->mu);
  return ok;
}

const fakehub_request *fakehub_find(fakehub *h, const char *route, size_t i) {
  const fakehub_request *found = NULL;
  pthread_mutex_lock(&h->mu);
  for (size_t k = 0; k < h->nreqs && !found; k++) {
    if (!fakehub_match(h->reqs[k], route))
      continue;
    if (i-- > 0)
      continue;
    found = h->reqs[k];
  }
  pthread_mutex_unlock(&h->mu);
  return found;
}

bool fakehub_header(const fakehub_request *r, const char *name, char *buf,
                    size_t len) {
  return r && fakehub_find_header(r->headers, name, buf, len) != NULL;
}

const char *fakehub_part(const fakehub_request *r, const char *name,
                         size_t *len) {
  if (!r->body)
    return NULL;
  char needle[200];
  snprintf(needle, sizeof needle, "name=\"%s\"", name);
  const char *end = r->body + r->body_stored;
  const char *hd = memmem(r->body, r->body_stored, needle, strlen(needle));
  if (!hd)
    return NULL;
  const char *v = memmem(hd, (size_t)(end - hd), "\r\n\r\n", 4);
  if (!v)
    return NULL;
  v += 4;
  /* The part ends at CRLF + the boundary line, which starts with "--". */
  const char *first_line_end = memmem(r->body, r->body_stored, "\r\n", 2);
  if (!first_line_end)
    return NULL;
  size_t blen = (size_t)(first_line_end - r->body);
  char boundary[128];
  if (blen + 2 >= sizeof boundary)
    return NULL;
  boundary[0] = '\r';
  boundary[1] = '\n';
  memcpy(boundary + 2, r->body, blen);
  const char *e = memmem(v, (size_t)(end - v), boundary, blen + 2);
  if (!e)
    return NULL;
  *len = (size_t)(e - v);
  return v;
}

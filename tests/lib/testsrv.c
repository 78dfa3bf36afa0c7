/*
 * testsrv.c - the scripted fault-injecting HTTP server of testsrv.h.
 *
 * One thread, one connection at a time, `Connection: close` on every
 * answer: the simplest server that still lets a client see each status,
 * delay and dropped connection exactly as scripted. Bodies are hashed as
 * they stream in and only their first 4 MiB are kept, so a gigabyte upload
 * costs this server no memory either.
 */
#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { TESTSRV_KEEP = 4 << 20, TESTSRV_HEAD = 64 << 10, TESTSRV_SCRIPT = 256 };

typedef struct testsrv_scripted {
  char route[160];
  testsrv_reply reply;
  char *body;
} testsrv_scripted;

struct testsrv {
  int fd;
  int stop_pipe[2];
  int port;
  char url[64];
  pthread_t thread;
  pthread_mutex_t mu;
  testsrv_scripted script[TESTSRV_SCRIPT];
  size_t nscript;
  testsrv_request *reqs;
  size_t nreqs, capreqs;
  char *model_json;
};

static double testsrv_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void testsrv_hex(const unsigned char *md, char out[65]) {
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = d[md[i] >> 4];
    out[2 * i + 1] = d[md[i] & 15];
  }
  out[64] = '\0';
}

/* Waits up to ms for fd to be readable; false when stopping or timed out. */
static bool testsrv_wait_fd(testsrv *s, int fd, int ms) {
  struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
  int n = poll(p, 2, ms);
  return n > 0 && !(p[1].revents & POLLIN) &&
         (p[0].revents & (POLLIN | POLLHUP));
}

static bool testsrv_sleep(testsrv *s, int ms) {
  struct pollfd p = {s->stop_pipe[0], POLLIN, 0};
  return poll(&p, 1, ms) == 0;
}

static const char *testsrv_header(const char *head, const char *name, char *out,
                                  size_t len) {
  size_t nl = strlen(name);
  for (const char *line = strstr(head, "\r\n"); line && line[2];
       line = strstr(line + 2, "\r\n")) {
    const char *l = line + 2;
    if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ')
        v++;
      size_t vl = strcspn(v, "\r\n");
      if (vl >= len)
        vl = len - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return out;
    }
  }
  out[0] = '\0';
  return NULL;
}

/* Reads one request into `r`. False when the client went away. */
static bool testsrv_read(testsrv *s, int c, testsrv_request *r) {
  char *head = malloc(TESTSRV_HEAD + 1);
  size_t hl = 0;
  char *end = NULL;
  while (!end) {
    if (hl == TESTSRV_HEAD || !testsrv_wait_fd(s, c, 5000)) {
      free(head);
      return false;
    }
    ssize_t n = recv(c, head + hl, TESTSRV_HEAD - hl, 0);
    if (n <= 0) {
      free(head);
      return false;
    }
    hl += (size_t)n;
    head[hl] = '\0';
    end = strstr(head, "\r\n\r\n");
  }
  size_t hlen = (size_t)(end - head) + 4;
  head[hlen - 2] = '\0';
  sscanf(head, "%7s %511s", r->method, r->path);
  char v[160];
  testsrv_header(head, "x-api-key", r->api_key, sizeof r->api_key);
  testsrv_header(head, "x-chub-sha256", r->sha256_header,
                 sizeof r->sha256_header);
  size_t clen = 0;
  if (testsrv_header(head, "content-length", v, sizeof v))
    clen = (size_t)strtoull(v, NULL, 10);
  r->body_len = clen;
  r->body = malloc((clen < TESTSRV_KEEP ? clen : TESTSRV_KEEP) + 1);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  size_t got = 0;
  /* Body bytes that came with the head. */
  size_t extra = hl - hlen;
  const char *src = head + hlen;
  unsigned char *buf = malloc(1 << 16);
  bool ok = true;
  for (;;) {
    if (extra > clen - got)
      extra = clen - got;
    if (extra) {
      if (r->body_stored < TESTSRV_KEEP) {
        size_t keep = TESTSRV_KEEP - r->body_stored;
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
    if (!testsrv_wait_fd(s, c, 10000)) {
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
  testsrv_hex(md, r->body_sha256);
  free(buf);
  free(head);
  return ok;
}

static void testsrv_send_all(int c, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(c, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

static void testsrv_answer(int c, int status, const char *body,
                           int retry_after) {
  char head[512];
  char ra[64] = "";
  if (retry_after >= 0)
    snprintf(ra, sizeof ra, "Retry-After: %d\r\n", retry_after);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                   status, strlen(body), ra);
  testsrv_send_all(c, head, (size_t)n);
  testsrv_send_all(c, body, strlen(body));
}

/* The SHA-256 of multipart part `name`'s value, when the body was kept. */
static bool testsrv_part_sha(const testsrv_request *r, const char *name,
                             char out[65]) {
  size_t len = 0;
  const char *v = testsrv_part(r, name, &len);
  if (!v)
    return false;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdl = 0;
  EVP_Digest(v, len, md, &mdl, EVP_sha256(), NULL);
  testsrv_hex(md, out);
  return true;
}

/* The protocol's normal answer to `r`. */
static int testsrv_default(testsrv *s, const testsrv_request *r, char *body,
                           size_t len) {
  const char *m = r->method, *p = r->path;
  const char *id = TESTSRV_MODEL_ID;
  char want[128];
  if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/models") == 0) {
    snprintf(body, len,
             "{\"success\": true, \"message\": \"Model created\", "
             "\"data\": {\"id\": \"%s\"}}",
             id);
    return 200;
  }
  snprintf(want, sizeof want, "/v1/models/%s", id);
  if (strcmp(m, "GET") == 0 && strcmp(p, want) == 0) {
    pthread_mutex_lock(&s->mu);
    snprintf(body, len, "{\"success\": true, \"data\": %s}",
             s->model_json ? s->model_json : "{}");
    pthread_mutex_unlock(&s->mu);
    return 200;
  }
  if (strcmp(m, "POST") == 0 && strcmp(p, want) == 0) {
    snprintf(body, len,
             "{\"success\": true, \"message\": \"Metrics "
             "uploaded\", \"data\": {}}");
    return 200;
  }
  snprintf(want, sizeof want, "/v1/models/%s/upload", id);
  if (strcmp(m, "POST") == 0 && strcmp(p, want) == 0) {
    char sha[65];
    const char *part =
        testsrv_part(r, "last.pt", &(size_t){0}) ? "last.pt" : "best.pt";
    bool whole = r->body_stored == r->body_len;
    if (whole && testsrv_part_sha(r, part, sha) && r->sha256_header[0] &&
        strcmp(sha, r->sha256_header) != 0) {
      snprintf(body, len,
               "{\"success\": false, \"message\": \"x-chub-sha256 "
               "does not match the received bytes\"}");
      return 400;
    }
    snprintf(body, len,
             "{\"success\": true, \"data\": {\"size\": %zu, \"sha256\": "
             "\"%s\"}}",
             r->body_len, r->sha256_header);
    return 200;
  }
  snprintf(want, sizeof want, "/v1/agent/heartbeat/models/%s", id);
  if (strcmp(m, "POST") == 0 && strcmp(p, want) == 0) {
    snprintf(body, len,
             "{\"success\": true, \"data\": {\"agentId\": "
             "\"agent-default\"}}");
    return 200;
  }
  if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/events") == 0) {
    snprintf(body, len, "{\"success\": true, \"data\": {}}");
    return 200;
  }
  snprintf(body, len, "{\"success\": false, \"message\": \"no such route\"}");
  return 404;
}

static bool testsrv_take_script(testsrv *s, const testsrv_request *r,
                                testsrv_scripted *out) {
  char key[600];
  snprintf(key, sizeof key, "%s %s", r->method, r->path);
  bool found = false;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nscript; i++) {
    if (strncmp(key, s->script[i].route, strlen(s->script[i].route)) != 0)
      continue;
    *out = s->script[i];
    memmove(&s->script[i], &s->script[i + 1],
            (s->nscript - i - 1) * sizeof *s->script);
    s->nscript--;
    found = true;
    break;
  }
  pthread_mutex_unlock(&s->mu);
  return found;
}

static void testsrv_record(testsrv *s, testsrv_request *r) {
  pthread_mutex_lock(&s->mu);
  if (s->nreqs == s->capreqs) {
    size_t cap = s->capreqs ? s->capreqs * 2 : 64;
    testsrv_request *n = realloc(s->reqs, cap * sizeof *n);
    if (!n) {
      pthread_mutex_unlock(&s->mu);
      free(r->body);
      return;
    }
    s->reqs = n;
    s->capreqs = cap;
  }
  /* Keep only a small prefix of huge bodies in the log. */
  if (r->body_stored > 65536) {
    char *small = realloc(r->body, 65537);
    if (small) {
      r->body = small;
      r->body_stored = 65536;
      r->body[65536] = '\0';
    }
  }
  s->reqs[s->nreqs++] = *r;
  pthread_mutex_unlock(&s->mu);
}

static void testsrv_serve(testsrv *s, int c) {
  testsrv_request r;
  memset(&r, 0, sizeof r);
  if (!testsrv_read(s, c, &r)) {
    free(r.body);
    return;
  }
  testsrv_scripted sc;
  bool scripted = testsrv_take_script(s, &r, &sc);
  char body[8192];
  int status = testsrv_default(s, &r, body, sizeof body);
  testsrv_record(s, &r);
  if (scripted && sc.reply.delay_ms > 0 &&
      !testsrv_sleep(s, sc.reply.delay_ms)) {
    free(sc.body);
    return;
  }
  if (scripted && sc.reply.drop) {
    free(sc.body);
    return;
  }
  if (scripted && sc.reply.status) {
    status = sc.reply.status;
    if (sc.body)
      snprintf(body, sizeof body, "%s", sc.body);
    else
      snprintf(body, sizeof body,
               "{\"success\": %s, \"message\": \"scripted %d\"}",
               status < 300 ? "true" : "false", status);
  }
  testsrv_answer(c, status, body, scripted ? sc.reply.retry_after : -1);
  if (scripted)
    free(sc.body);
}

static void *testsrv_main(void *arg) {
  testsrv *s = arg;
  for (;;) {
    struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      continue;
    testsrv_serve(s, c);
    shutdown(c, SHUT_WR);
    close(c);
  }
  return NULL;
}

testsrv *testsrv_start(void) {
  testsrv *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(s->fd, 64) != 0 ||
      getsockname(s->fd, (struct sockaddr *)&a, &al) != 0 ||
      pipe(s->stop_pipe) != 0) {
    perror("testsrv");
    if (s->fd >= 0)
      close(s->fd);
    free(s);
    return NULL;
  }
  s->port = ntohs(a.sin_port);
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
  pthread_create(&s->thread, NULL, testsrv_main, s);
  return s;
}

void testsrv_stop(testsrv *s) {
  if (!s)
    return;
  if (write(s->stop_pipe[1], "x", 1) != 1)
    perror("testsrv stop");
  pthread_join(s->thread, NULL);
  close(s->fd);
  close(s->stop_pipe[0]);
  close(s->stop_pipe[1]);
  for (size_t i = 0; i < s->nreqs; i++)
    free(s->reqs[i].body);
  for (size_t i = 0; i < s->nscript; i++)
    free(s->script[i].body);
  free(s->reqs);
  free(s->model_json);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int testsrv_port(const testsrv *s) {
  return s->port;
}

const char *testsrv_url(const testsrv *s) {
  return s->url;
}

void testsrv_script(testsrv *s, const char *route, testsrv_reply r) {
  pthread_mutex_lock(&s->mu);
  if (s->nscript < TESTSRV_SCRIPT) {
    testsrv_scripted *sc = &s->script[s->nscript++];
    snprintf(sc->route, sizeof sc->route, "%s", route);
    sc->reply = r;
    sc->body = r.body ? strdup(r.body) : NULL;
    sc->reply.body = NULL;
  }
  pthread_mutex_unlock(&s->mu);
}

void testsrv_clear_script(testsrv *s) {
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nscript; i++)
    free(s->script[i].body);
  s->nscript = 0;
  pthread_mutex_unlock(&s->mu);
}

void testsrv_set_model(testsrv *s, const char *model_json) {
  pthread_mutex_lock(&s->mu);
  free(s->model_json);
  s->model_json = strdup(model_json);
  pthread_mutex_unlock(&s->mu);
}

static bool testsrv_match(const testsrv_request *r, const char *route) {
  size_t ml = strlen(r->method);
  return strncmp(route, r->method, ml) == 0 && route[ml] == ' ' &&
         strcmp(route + ml + 1, r->path) == 0;
}

size_t testsrv_count(testsrv *s, const char *route) {
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nreqs; i++)
    n += testsrv_match(&s->reqs[i], route);
  pthread_mutex_unlock(&s->mu);
  return n;
}

bool testsrv_wait(testsrv *s, const char *route, size_t n, double timeout_s) {
  double end = testsrv_now() + timeout_s;
  while (testsrv_count(s, route) < n) {
    if (testsrv_now() > end)
      return false;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return true;
}

bool testsrv_get(testsrv *s, const char *route, size_t i,
                 testsrv_request *out) {
  bool found = false;
  pthread_mutex_lock(&s->mu);
  for (size_t k = 0; k < s->nreqs && !found; k++) {
    if (!testsrv_match(&s->reqs[k], route))
      continue;
    if (i-- > 0)
      continue;
    *out = s->reqs[k];
    out->body = malloc(out->body_stored + 1);
    if (out->body) {
      memcpy(out->body, s->reqs[k].body, out->body_stored);
      out->body[out->body_stored] = '\0';
    }
    found = true;
  }
  pthread_mutex_unlock(&s->mu);
  return found;
}

void testsrv_request_clear(testsrv_request *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

const char *testsrv_part(const testsrv_request *r, const char *name,
                         size_t *len) {
  if (!r->body)
    return NULL;
  char needle[200];
  snprintf(needle, sizeof needle, "name=\"%s\"", name);
  const char *end = r->body + r->body_stored;
  const char *h = memmem(r->body, r->body_stored, needle, strlen(needle));
  if (!h)
    return NULL;
  const char *v = memmem(h, (size_t)(end - h), "\r\n\r\n", 4);
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

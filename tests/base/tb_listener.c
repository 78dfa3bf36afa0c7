/*
 * tb_listener.c - the tiny loopback HTTP listener of tb_listener.h.
 *
 * One thread polls the listening socket every 50 ms so that stopping needs
 * no signal; each connection is read until its headers and Content-Length
 * bytes arrived (or 5 s passed), recorded, answered and closed.
 */
#include "tb_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TB_MAX_REQUESTS 64
#define TB_MAX_REQUEST_BYTES (1 << 20)

struct tb_listener {
  int fd, port;
  char url[64];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  int status;
  char *answer;
  tb_request requests[TB_MAX_REQUESTS];
  size_t n;
};

static double tb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads one request into buf (NUL-terminated); returns its length or -1. */
static long tb_read_request(int c, char *buf, size_t cap, bool *sent_continue) {
  size_t used = 0;
  double deadline = tb_now() + 5;
  while (used + 1 < cap && tb_now() < deadline) {
    struct pollfd p = {.fd = c, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    ssize_t k = recv(c, buf + used, cap - 1 - used, 0);
    if (k <= 0)
      break;
    used += (size_t)k;
    buf[used] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end)
      continue;
    size_t head = (size_t)(end - buf) + 4, clen = 0;
    for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
      if (strncasecmp(h + 2, "content-length:", 15) == 0)
        clen = strtoul(h + 17, NULL, 10);
    if (!*sent_continue && strcasestr(buf, "\r\nexpect: 100-continue")) {
      const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
      if (send(c, cont, strlen(cont), MSG_NOSIGNAL) < 0)
        return -1;
      *sent_continue = true;
    }
    if (used >= head + clen)
      return (long)used;
  }
  return used ? (long)used : -1;
}

static void tb_record(tb_listener *l, char *buf, size_t len) {
  char *end = strstr(buf, "\r\n\r\n");
  if (!end)
    return;
  tb_request r = {0};
  sscanf(buf, "%15s %511s", r.method, r.path);
  char *line = strstr(buf, "\r\n");
  size_t hlen = (size_t)(end - line); /* through the last \r\n */
  r.headers = strndup(line + 2, hlen);
  r.body_len = len - (size_t)(end + 4 - buf);
  r.body = strndup(end + 4, r.body_len);
  pthread_mutex_lock(&l->mu);
  if (l->n < TB_MAX_REQUESTS)
    l->requests[l->n++] = r;
  else
    free(r.headers), free(r.body);
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

static void tb_serve_one(tb_listener *l, int c) {
  char *buf = malloc(TB_MAX_REQUEST_BYTES);
  bool cont = false;
  long n = buf ? tb_read_request(c, buf, TB_MAX_REQUEST_BYTES, &cont) : -1;
  if (n > 0) {
    tb_record(l, buf, (size_t)n);
    pthread_mutex_lock(&l->mu);
    char *out = NULL;
    int len = asprintf(&out,
                       "HTTP/1.1 %d Answer\r\nContent-Type: application/json"
                       "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       l->status, strlen(l->answer), l->answer);
    pthread_mutex_unlock(&l->mu);
    if (len > 0 && send(c, out, (size_t)len, MSG_NOSIGNAL) < 0)
      perror("tb_listener: send");
    free(out);
  }
  free(buf);
  close(c);
}

static void *tb_main(void *arg) {
  tb_listener *l = arg;
  for (;;) {
    pthread_mutex_lock(&l->mu);
    bool stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    if (stop)
      break;
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int c = accept(l->fd, NULL, NULL);
    if (c >= 0)
      tb_serve_one(l, c);
  }
  return NULL;
}

tb_listener *tb_listener_start(int status, const char *body) {
  tb_listener *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->status = status;
  l->answer = strdup(body ? body : "");
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  l->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(l->fd, 16) != 0 ||
      getsockname(l->fd, (struct sockaddr *)&a, &alen) != 0 ||
      pthread_create(&l->thread, NULL, tb_main, l) != 0) {
    perror("tb_listener: cannot listen on 127.0.0.1");
    if (l->fd >= 0)
      close(l->fd);
    free(l->answer);
    free(l);
    return NULL;
  }
  l->port = ntohs(a.sin_port);
  snprintf(l->url, sizeof l->url, "http://127.0.0.1:%d", l->port);
  return l;
}

void tb_listener_answer(tb_listener *l, int status, const char *body) {
  pthread_mutex_lock(&l->mu);
  l->status = status;
  free(l->answer);
  l->answer = strdup(body ? body : "");
  pthread_mutex_unlock(&l->mu);
}

int tb_listener_port(const tb_listener *l) {
  return l->port;
}

const char *tb_listener_url(const tb_listener *l) {
  return l->url;
}

bool tb_listener_wait(tb_listener *l, size_t n, double timeout_s) {
  double deadline = tb_now() + timeout_s;
  pthread_mutex_lock(&l->mu);
  while (l->n < n && tb_now() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&l->cv, &l->mu, &ts);
  }
  bool ok = l->n >= n;
  pthread_mutex_unlock(&l->mu);
  return ok;
}

size_t tb_listener_count(tb_listener *l) {
  pthread_mutex_lock(&l->mu);
  size_t n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

const tb_request *tb_listener_request(tb_listener *l, size_t i) {
  pthread_mutex_lock(&l->mu);
  const tb_request *r = i < l->n ? &l->requests[i] : NULL;
  pthread_mutex_unlock(&l->mu);
  return r;
}

bool tb_request_header(const tb_request *r, const char *name, char *buf,
                       size_t len) {
  size_t nl = strlen(name);
  for (const char *h = r->headers; h && *h;) {
    const char *eol = strstr(h, "\r\n");
    size_t ll = eol ? (size_t)(eol - h) : strlen(h);
    if (ll > nl && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
      const char *v = h + nl + 1;
      while (*v == ' ')
        v++;
      snprintf(buf, len, "%.*s", (int)(ll - (size_t)(v - h)), v);
      return true;
    }
    h = eol ? eol + 2 : NULL;
  }
  return false;
}

void tb_listener_stop(tb_listener *l) {
  if (!l)
    return;
  pthread_mutex_lock(&l->mu);
  l->stop = true;
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->thread, NULL);
  close(l->fd);
  for (size_t i = 0; i < l->n; i++) {
    free(l->requests[i].headers);
    free(l->requests[i].body);
  }
  free(l->answer);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l);
}

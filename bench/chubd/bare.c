/*
 * bare.c - chubd's metrics work behind a bare epoll loop: a measuring
 * instrument for bench/chubd, not a server.
 *
 *   bench_bare DATA_DIR PORT_FILE [THREADS]
 *
 * Serves only `POST /v1/models/{id}` with a metrics upload, on 127.0.0.1
 * (a free port, written to PORT_FILE), doing what chubd does for one with
 * chubd's own functions: the API key found by auth_key() (hashed, then
 * chubd's key cache with its stat of keys.stamp), the body read by
 * metrics_read() (one pass, jansson for anything else), the upload queued to
 * the same SQLite store and its group commit, fsync included, and answered once
 * committed. What it leaves out is what chubd's HTTP layer adds around that
 * (for these requests its own loop, lane.c): the look at each request before
 * it is read, HTTP parsing and limits, routing, rate limits, connection
 * deadlines, per-request counters. bench/chubd runs it beside
 * chubd on chubd's own data directory (chubd idle meanwhile), so the difference
 * between the two is what that layer costs per request.
 *
 * Each thread has its own epoll set over the one listening socket
 * (EPOLLEXCLUSIVE) and the connections it accepted; a committed upload is
 * handed back to its connection's thread through an eventfd, written once
 * per batch of answers. One request per connection at a time, bodies up
 * to BARE_BUF bytes with their headers; anything else closes the
 * connection. Runs until killed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

#define BARE_BUF 16384
#define BARE_THREADS_MAX 16

typedef struct bare_thread bare_thread;

typedef struct bare_conn {
  int fd;
  int waiting; /* an upload is with the store */
  int closed;  /* the peer left while it was */
  bare_thread *t;
  char in[BARE_BUF];
  size_t len;
  char id[UTIL_ID_LEN + 1];
  store_key key;
  store_epoch *e;
  size_t n;
  store_rc rc;
  struct bare_conn *next; /* on its thread's answered list */
} bare_conn;

struct bare_thread {
  int ep, efd;
  pthread_mutex_t mu;
  bare_conn *answered; /* committed uploads to answer */
};

static store *bare_st;
static keycache *bare_kc;
static int bare_listen_fd;

/* The store's committer thread: hand the connection back to its thread. */
static void bare_done(void *ud, store_rc rc) {
  bare_conn *c = ud;
  bare_thread *t = c->t;
  c->rc = rc;
  pthread_mutex_lock(&t->mu);
  int wake = t->answered == NULL;
  c->next = t->answered;
  t->answered = c;
  pthread_mutex_unlock(&t->mu);
  uint64_t one = 1;
  if (wake && write(t->efd, &one, sizeof one) < 0)
    abort(); /* an eventfd write fails only on overflow */
}

static void bare_send(bare_conn *c, unsigned status, const char *body) {
  char out[512];
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                   "X-Content-Type-Options: nosniff\r\n"
                   "X-Chub-Sha256-Modes: header, part\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   status, status == 200 ? "OK" : "Error", strlen(body), body);
  if (n < 0 || (size_t)n >= sizeof out ||
      send(c->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
    c->closed = 1;
}

/* The value of header `name` in the head [h, h + len), or NULL. */
static const char *bare_header(const char *h, size_t len, const char *name,
                               size_t *vlen) {
  size_t nl = strlen(name);
  const char *end = h + len;
  for (const char *p = h; p < end;) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol)
      break;
    if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
        p[nl] == ':') {
      const char *v = p + nl + 1;
      while (v < eol && *v == ' ')
        v++;
      *vlen = (size_t)(eol - v);
      return v;
    }
    p = eol + 2;
  }
  return NULL;
}

/* Takes the next whole request off c's buffer: queued to the store, or
 * answered at once when refused. 0 when none is whole yet or one is with
 * the store, -1 to close the connection. */
static int bare_request(bare_conn *c) {
  const char *head_end = memmem(c->in, c->len, "\r\n\r\n", 4);
  if (!head_end)
    return c->len == sizeof c->in ? -1 : 0;
  size_t head = (size_t)(head_end + 4 - c->in), vlen = 0, body = 0;
  const char *v = bare_header(c->in, head, "Content-Length", &vlen);
  if (v)
    body = strtoul(v, NULL, 10);
  if (body > sizeof c->in - head)
    return -1;
  if (c->len < head + body)
    return 0;
  static const char prefix[] = "POST /v1/models/";
  char err[VALIDATE_ERR];
  char key[UTIL_KEY_LEN + 2] = "";
  v = bare_header(c->in, head, "x-api-key", &vlen);
  if (v && vlen < sizeof key) {
    memcpy(key, v, vlen);
    key[vlen] = '\0';
  }
  size_t at = sizeof prefix - 1;
  int routed = head > at + UTIL_ID_LEN && strncmp(c->in, prefix, at) == 0 &&
               c->in[at + UTIL_ID_LEN] == ' ';
  memcpy(c->id, c->in + at, routed ? UTIL_ID_LEN : 0);
  c->id[routed ? UTIL_ID_LEN : 0] = '\0';
  routed = routed && util_is_alnum_n(c->id, UTIL_ID_LEN);
  unsigned refused =
      !routed ? 404
      : !util_is_alnum_n(key, UTIL_KEY_LEN) ||
              auth_key(bare_st, bare_kc, key, &c->key) != STORE_OK
          ? 401
      : metrics_read(c->in + head, body, &c->e, &c->n, err) < 0 ? 400
                                                                : 0;
  memmove(c->in, c->in + head + body, c->len - head - body);
  c->len -= head + body;
  if (refused) {
    bare_send(c, refused, "{\"success\":false}");
    return c->closed ? -1 : 1;
  }
  c->waiting = 1;
  if (bare_st->ops->metrics_put_async(bare_st, c->id, c->key.owner, c->e, c->n,
                                      util_now_ms(), bare_done,
                                      c) != STORE_OK) {
    c->waiting = 0;
    validate_epochs_free(c->e, c->n);
    bare_send(c, 500, "{\"success\":false}");
    return c->closed ? -1 : 1;
  }
  return 0;
}

static void bare_close(bare_conn *c) {
  close(c->fd);
  free(c);
}

/* Serves c's buffered requests until one waits for the store. */
static void bare_serve(bare_conn *c) {
  int r;
  while (!c->waiting && (r = bare_request(c)) != 0)
    if (r < 0) {
      c->closed = 1;
      return;
    }
}

static void bare_answer(bare_thread *t) {
  uint64_t v;
  if (read(t->efd, &v, sizeof v) < 0 && errno != EAGAIN)
    return;
  pthread_mutex_lock(&t->mu);
  bare_conn *c = t->answered;
  t->answered = NULL;
  pthread_mutex_unlock(&t->mu);
  while (c) {
    bare_conn *next = c->next;
    validate_epochs_free(c->e, c->n);
    c->waiting = 0;
    if (!c->closed) {
      bare_send(c, c->rc == STORE_OK ? 200 : 500,
                c->rc == STORE_OK ? "{\"success\":true,\"message\":\"metrics "
                                    "stored\",\"data\":{\"epochs\":1}}"
                                  : "{\"success\":false}");
      bare_serve(c);
    }
    if (c->closed) {
      epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
      bare_close(c);
    }
    c = next;
  }
}

static void bare_accept(bare_thread *t) {
  for (;;) {
    int fd = accept4(bare_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bare_conn *c = calloc(1, sizeof *c);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (!c || epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      free(c);
      close(fd);
      continue;
    }
    c->fd = fd;
    c->t = t;
  }
}

static void bare_read(bare_thread *t, bare_conn *c) {
  ssize_t got = recv(c->fd, c->in + c->len, sizeof c->in - c->len, 0);
  if (got < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (got > 0) {
    c->len += (size_t)got;
    if (!c->waiting)
      bare_serve(c);
    if (!c->closed)
      return;
  }
  /* Gone, or broken: closed now, or once the store answered. */
  epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
  c->closed = 1;
  if (!c->waiting)
    bare_close(c);
}

static void *bare_main(void *arg) {
  bare_thread *t = arg;
  struct epoll_event ev[64];
  for (;;) {
    int k = epoll_wait(t->ep, ev, 64, -1);
    for (int i = 0; i < k; i++) {
      if (ev[i].data.ptr == NULL)
        bare_accept(t);
      else if (ev[i].data.ptr == t)
        bare_answer(t);
      else
        bare_read(t, ev[i].data.ptr);
    }
  }
  return NULL;
}

static int bare_listen(const char *port_file) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  bare_listen_fd =
      socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (bare_listen_fd < 0 || bind(bare_listen_fd, (struct sockaddr *)&a, al) ||
      listen(bare_listen_fd, 1024) ||
      getsockname(bare_listen_fd, (struct sockaddr *)&a, &al))
    return -1;
  FILE *f = fopen(port_file, "w");
  if (!f)
    return -1;
  fprintf(f, "%u\n", (unsigned)ntohs(a.sin_port));
  return fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_bare DATA_DIR PORT_FILE [THREADS]\n");
    return 2;
  }
  int nthreads = argc > 3 ? atoi(argv[3]) : 2;
  if (nthreads < 1 || nthreads > BARE_THREADS_MAX) {
    fprintf(stderr, "bench_bare: THREADS must be 1-%d\n", BARE_THREADS_MAX);
    return 2;
  }
  char err[512];
  bare_st = store_sqlite_open(argv[1], err, sizeof err);
  bare_kc = bare_st ? keycache_new(argv[1]) : NULL;
  if (!bare_kc) {
    fprintf(stderr, "bench_bare: %s\n", bare_st ? "out of memory" : err);
    return 1;
  }
  static bare_thread threads[BARE_THREADS_MAX];
  for (int i = 0; i < nthreads; i++) {
    bare_thread *t = &threads[i];
    pthread_mutex_init(&t->mu, NULL);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->ep < 0 || t->efd < 0) {
      perror("bench_bare");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->efd, &ev);
  }
  /* The listening socket goes into every set last, once the port is
   * known, and wakes one thread per connection. */
  if (bare_listen(argv[2]) < 0) {
    perror("bench_bare: listen");
    return 1;
  }
  for (int i = 0; i < nthreads; i++) {
    pthread_t id;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
                             .data.ptr = NULL};
    if (epoll_ctl(threads[i].ep, EPOLL_CTL_ADD, bare_listen_fd, &ev) < 0 ||
        pthread_create(&id, NULL, bare_main, &threads[i]) != 0) {
      perror("bench_bare");
      return 1;
    }
  }
  pause();
  return 0;
}

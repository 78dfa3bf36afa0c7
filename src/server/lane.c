/*
 * lane.c - chubd's own loop for metrics uploads, in front of
 * libmicrohttpd (see lane.h).
 *
 * Threads: each has its own epoll set over the one listening socket
 * (EPOLLEXCLUSIVE: one thread woken at a time; whichever accepts deals the
 * new connections to all threads in turn), the connections dealt to it,
 * edge-triggered, and an eventfd through which the store's committer
 * hands back committed uploads, answered once the rest of an epoll batch
 * is handled. A connection holds at most one
 * request at a time: while its upload is with the store or its answer is
 * not all sent, nothing more is looked at (pipelined requests wait in the
 * socket). The request being looked at is copied into the thread's
 * buffer with MSG_PEEK; once taken, the same bytes are dropped from the
 * socket with MSG_TRUNC, so they are copied once.
 *
 * Limits: conns.c counts the connection from accept() (total and per
 * address) and runs the header deadline while a request's head is
 * incomplete and between requests; the watchdog's shutdown() reaches the
 * lane as a hang-up. Bodies are never awaited here: a head whose body is
 * not all in goes to libmicrohttpd, whose idle timeout governs bodies.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lane.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "endpoints.h"
#include "util.h"

/* How much a first look copies: a usual upload and its head fit. */
#define LANE_PEEK_FIRST 4096
#define LANE_EVENTS 64
/* Looks at one incomplete head before its connection is handed over. */
#define LANE_LOOKS_MAX 4
/* Refusals answered in a row on one connection before it is handed over. */
#define LANE_REFUSALS_MAX 32

typedef struct lane_thread lane_thread;

/* An upload taken by the lane, from its first byte to its answer. */
typedef struct lane_req {
  chubd_request req;
  store_epoch *epochs;
  size_t nepochs;
  store_rc rc; /* the store's answer */
  double t0;
  char path[200];
} lane_req;

typedef struct lane_conn {
  int fd;
  conns_entry *ce;
  lane_thread *t;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  lane_req *rq;    /* the upload with the store, or NULL */
  int gone;        /* hung up while its upload was with the store */
  int close_after; /* close once the answer is sent */
  /* Bytes may have come while a request was being served (its event
   * came then): look before waiting for the next. */
  int more;
  int looks; /* at the current request's head, still incomplete */
  char *out; /* the part of an answer not sent yet */
  size_t out_len, out_off;
  struct lane_conn *prev, *next; /* the thread's connections */
  struct lane_conn *answered;    /* on the thread's list of answers */
} lane_conn;

struct lane_thread {
  lane *l;
  pthread_t id;
  int ep, efd;
  pthread_mutex_t mu;      /* guards answered */
  lane_conn *answered;     /* uploads the store answered */
  pthread_mutex_t list_mu; /* guards conns: other threads accept for it */
  lane_conn *conns;
  time_t date_at;
  char date[64]; /* "Date: ...\r\n" of date_at */
  char buf[LANE_REQUEST_MAX + 1];
  char drop[LANE_REQUEST_MAX]; /* never read: MSG_TRUNC writes nothing */
};

struct lane {
  chubd_server *srv;
  struct MHD_Daemon *d, *uploads;
  /* One accept() at a time, none while the socket closes; guards next. */
  pthread_mutex_t accept_mu;
  unsigned next; /* the thread the next connection goes to */
  int listen_fd;
  int port;
  atomic_int stopping;
  unsigned nthreads;
  lane_thread *threads[LANE_THREADS_MAX];
};

/* ---- the parser ---- */

static int lane_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Whether the value of a Connection header is one the lane knows
 * ("keep-alive", "close", as a comma list); close sets *close_after. */
static int lane_connection_ok(const char *v, int *close_after) {
  while (*v) {
    size_t n = strcspn(v, ",");
    const char *e = v + n;
    while (v < e && (*v == ' ' || *v == '\t'))
      v++;
    size_t k = (size_t)(e - v);
    while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
      k--;
    if (k == 5 && strncasecmp(v, "close", 5) == 0)
      *close_after = 1;
    else if (k != 10 || strncasecmp(v, "keep-alive", 10) != 0)
      return 0;
    v = *e ? e + 1 : e;
  }
  return 1;
}

/* One header line [p, e): NUL-ended name and value into h; 0, or -1 for
 * a line the lane does not take. */
static int lane_header(char *p, char *e, lane_head *h) {
  char *colon = p;
  while (colon < e && lane_tchar((unsigned char)*colon))
    colon++;
  if (colon == p || colon == e || *colon != ':' ||
      h->nheaders == LANE_HEADERS_MAX)
    return -1;
  char *v = colon + 1;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  char *ve = e;
  while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
    ve--;
  for (char *q = v; q < ve; q++)
    if ((*q < 0x20 && *q != '\t') || *q == 0x7f || (unsigned char)*q >= 0x80)
      return -1;
  *colon = '\0';
  *ve = '\0';
  for (int i = 0; i < h->nheaders; i++)
    if (strcasecmp(h->headers[i].name, p) == 0)
      return -1; /* said twice: for libmicrohttpd to make sense of */
  h->headers[h->nheaders].name = p;
  h->headers[h->nheaders].value = v;
  h->nheaders++;
  return 0;
}

int lane_parse(char *buf, size_t n, uint64_t body_max, lane_head *h) {
  static const char start[] = "POST /v1/models/";
  const size_t sn = sizeof start - 1;
  memset(h, 0, sizeof *h);
  if (memcmp(buf, start, n < sn ? n : sn) != 0)
    return LANE_HAND_OVER;
  char *end = memmem(buf, n < LANE_HEAD_MAX ? n : LANE_HEAD_MAX, "\r\n\r\n", 4);
  if (!end)
    return n >= LANE_HEAD_MAX ? LANE_HAND_OVER : LANE_MORE_HEAD;
  /* The request line: POST SP path SP HTTP/1.1, a path of plain bytes
   * with no query, escape or fragment (those are libmicrohttpd's to
   * decode). */
  char *eol = memmem(buf, (size_t)(end + 2 - buf), "\r\n", 2);
  char *path = buf + 5;
  char *sp = memchr(path, ' ', (size_t)(eol - path));
  if (!sp || sp - path >= 200 || eol - sp != 9 ||
      memcmp(sp, " HTTP/1.1", 9) != 0)
    return LANE_HAND_OVER;
  for (char *q = path; q < sp; q++)
    if (*q <= ' ' || *q >= 0x7f || strchr("?%#\\", *q))
      return LANE_HAND_OVER;
  *sp = '\0';
  h->path = path;
  /* Header lines, each ending in CRLF (the last one's is end). */
  for (char *p = eol + 2; p < end + 2;) {
    char *e = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
    if (memchr(p, '\n', (size_t)(e - p)) || memchr(p, '\r', (size_t)(e - p)) ||
        lane_header(p, e, h) < 0)
      return LANE_HAND_OVER;
    p = e + 2;
  }
  h->head_len = (size_t)(end + 4 - buf);
  int has_length = 0;
  for (int i = 0; i < h->nheaders; i++) {
    const char *name = h->headers[i].name, *v = h->headers[i].value;
    if (strcasecmp(name, "content-length") == 0) {
      size_t k = strspn(v, "0123456789");
      if (k == 0 || k > 18 || v[k])
        return LANE_HAND_OVER;
      h->body_len = (size_t)strtoull(v, NULL, 10);
      has_length = 1;
    } else if (strcasecmp(name, "transfer-encoding") == 0 ||
               strcasecmp(name, "expect") == 0 ||
               strcasecmp(name, "upgrade") == 0) {
      return LANE_HAND_OVER;
    } else if (strcasecmp(name, "connection") == 0 &&
               !lane_connection_ok(v, &h->close_after)) {
      return LANE_HAND_OVER;
    }
  }
  if (!has_length || h->body_len > body_max ||
      h->body_len > LANE_REQUEST_MAX - h->head_len)
    return LANE_HAND_OVER;
  return n < h->head_len + h->body_len ? LANE_MORE_BODY : LANE_TAKE;
}

/* ---- connections ---- */

static void lane_list(lane_thread *t, lane_conn *c) {
  pthread_mutex_lock(&t->list_mu);
  c->prev = NULL;
  c->next = t->conns;
  if (t->conns)
    t->conns->prev = c;
  t->conns = c;
  pthread_mutex_unlock(&t->list_mu);
}

static void lane_unlist(lane_thread *t, lane_conn *c) {
  pthread_mutex_lock(&t->list_mu);
  if (c->prev)
    c->prev->next = c->next;
  else
    t->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  pthread_mutex_unlock(&t->list_mu);
}

static void lane_req_free(lane_req *rq) {
  if (!rq)
    return;
  validate_epochs_free(rq->epochs, rq->nepochs);
  free(rq);
}

static void lane_close(lane_conn *c) {
  lane_thread *t = c->t;
  epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
  lane_unlist(t, c);
  conns_close(t->l->srv->conns, c->ce);
  close(c->fd);
  free(c->out);
  free(c);
}

/* Whether the connection's next request, as far as its first line shows,
 * uploads weights or a dataset. */
static int lane_next_is_upload(int fd) {
  char line[512];
  ssize_t n = recv(fd, line, sizeof line - 1, MSG_PEEK);
  if (n <= 0)
    return 0;
  line[n] = '\0';
  char *sp = strchr(line, ' ');
  if (!sp)
    return 0;
  *sp = '\0';
  char *path = sp + 1;
  size_t k = strcspn(path, " ?\r\n");
  if (!path[k])
    return 0; /* the line goes on: no upload route is this long */
  path[k] = '\0';
  route r;
  route_parse(line, path, &r);
  return r.status == 0 &&
         (r.kind == ROUTE_MODEL_UPLOAD || r.kind == ROUTE_DATASET_UPLOAD ||
          r.kind == ROUTE_PF_PUT);
}

/* The connection goes to libmicrohttpd, its unread bytes with it. */
static void lane_hand_over(lane_conn *c) {
  lane_thread *t = c->t;
  conns *cs = t->l->srv->conns;
  int up = t->l->uploads && lane_next_is_upload(c->fd);
  struct MHD_Daemon *d = up ? t->l->uploads : t->l->d;
  epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
  lane_unlist(t, c);
  conns_hand_over(cs, c->ce);
  /* On failure libmicrohttpd has closed the socket. */
  if (MHD_add_connection(d, c->fd, (struct sockaddr *)&c->addr, c->addrlen) !=
      MHD_YES)
    conns_hand_over_failed(cs, c->ce);
  prom_lane(up ? PROM_LANE_TO_UPLOADS : PROM_LANE_TO_HTTP);
  free(c);
}

/* Sends what is left of the answer: 0 when all is sent or the rest waits
 * for EPOLLOUT, -1 when the connection is broken. */
static int lane_flush(lane_conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t k =
        send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return errno == EAGAIN ? 0 : -1;
    c->out_off += (size_t)k;
  }
  free(c->out);
  c->out = NULL;
  c->out_len = c->out_off = 0;
  return 0;
}

typedef struct lane_text {
  char *p;
  size_t len, cap;
  int full;
} lane_text;

static void lane_add(lane_text *o, const char *s, size_t n) {
  if (n > o->cap - o->len) {
    o->full = 1;
    return;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void lane_add_header(void *cls, const char *name, const char *value) {
  lane_text *o = cls;
  lane_add(o, name, strlen(name));
  lane_add(o, ": ", 2);
  lane_add(o, value, strlen(value));
  lane_add(o, "\r\n", 2);
}

/* "Date: ...\r\n" for now, made once a second. */
static const char *lane_date(lane_thread *t) {
  time_t now = time(NULL);
  if (now != t->date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(t->date, sizeof t->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
             &tm);
    t->date_at = now;
  }
  return t->date;
}

/* Sends the answer rep to rq (and frees both): at once, the rest later
 * if the socket is full. 0, or -1 when the connection must be closed. */
static int lane_answer(lane_conn *c, lane_req *rq, chubd_reply *rep) {
  lane_thread *t = c->t;
  chubd_server *srv = t->l->srv;
  const char *body = rep->body ? rep->body : rep->static_body;
  size_t blen = body ? rep->len : 0;
  if (rep->fd >= 0 || rep->stream) { /* no handler of this route does */
    reply_free(rep);
    reply_error(rep, 500, "an answer the lane cannot send (a chubd bug)");
    body = rep->body;
    blen = rep->len;
  }
  char head[8192];
  lane_text o = {head, 0, sizeof head, 0};
  char num[20];
  const char *reason = MHD_get_reason_phrase_for(rep->status);
  lane_add(&o, "HTTP/1.1 ", 9);
  lane_add(&o, num, util_u64_text(rep->status, num));
  lane_add(&o, " ", 1);
  lane_add(&o, reason, strlen(reason));
  lane_add(&o, "\r\n", 2);
  const char *date = lane_date(t);
  lane_add(&o, date, strlen(date));
  httpd_reply_headers(&rq->req, rep, lane_add_header, &o);
  if (c->close_after)
    lane_add(&o, "Connection: close\r\n", 19);
  lane_add(&o, "Content-Length: ", 16);
  lane_add(&o, num, util_u64_text(blen, num));
  lane_add(&o, "\r\n\r\n", 4);
  int broken = o.full;
  size_t total = o.len + blen, sent = 0;
  if (!broken) {
    struct iovec iov[2] = {{head, o.len}, {(void *)body, blen}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
    ssize_t w;
    do
      w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN)
      broken = 1;
    sent = w > 0 ? (size_t)w : 0;
  }
  if (!broken && sent < total) { /* the rest once the socket drains */
    c->out = malloc(total - sent);
    if (!c->out) {
      broken = 1;
    } else {
      for (size_t i = sent; i < total; i++)
        c->out[i - sent] = i < o.len ? head[i] : body[i - o.len];
      c->out_len = total - sent;
    }
  }
  httpd_finished(srv, rq->req.r.kind, "POST", rq->path, rep->status, blen,
                 rq->t0, !broken);
  reply_free(rep);
  lane_req_free(rq);
  atomic_fetch_sub(&srv->in_flight, 1);
  conns_entry_request_done(srv->conns, c->ce);
  return broken ? -1 : 0;
}

/* Called by the store's committer once the upload is committed (or
 * failed): back to the connection's thread. */
static void lane_done(void *ud, store_rc rc) {
  lane_conn *c = ud;
  lane_thread *t = c->t;
  chubd_server *srv = t->l->srv;
  c->rq->rc = rc;
  pthread_mutex_lock(&t->mu);
  int wake = t->answered == NULL;
  c->answered = t->answered;
  t->answered = c;
  pthread_mutex_unlock(&t->mu);
  uint64_t one = 1;
  if (wake && write(t->efd, &one, sizeof one) < 0)
    abort(); /* an eventfd write fails only on overflow */
  atomic_fetch_sub(&srv->suspended, 1);
}

/* Serves the upload just taken off the socket (its head in h and rq->req,
 * lane_ours' doing, its body in the thread's buffer): checked as
 * libmicrohttpd's path checks it, then handed to the store, or answered at once
 * when refused. 0, or -1 when the connection must be closed. */
static int lane_serve_upload(lane_conn *c, lane_req *rq, const lane_head *h) {
  lane_thread *t = c->t;
  chubd_server *srv = t->l->srv;
  chubd_request *req = &rq->req;
  chubd_reply rep;
  reply_init(&rep);
  atomic_fetch_add(&srv->in_flight, 1);
  rq->t0 = util_mono_s();
  conns_entry_headers_done(c->ce);
  size_t plen = strnlen(h->path, sizeof rq->path - 1);
  memcpy(rq->path, h->path, plen);
  rq->path[plen] = '\0';
  req->body = t->buf + h->head_len;
  req->body_len = h->body_len;
  c->close_after = h->close_after;
  prom_lane(PROM_LANE_SERVED);
  int ok = auth_identify(req, &rep) == 0 && httpd_json_head(req, &rep) == 0 &&
           metrics_post_check(req, &rep, &rq->epochs, &rq->nepochs) == 0;
  /* The head and body live in the thread's buffer, reused next. */
  req->headers = NULL;
  req->nheaders = 0;
  req->body = NULL;
  if (ok) {
    c->rq = rq;
    atomic_fetch_add(&srv->suspended, 1);
    store_rc rc =
        metrics_post_queue(req, rq->epochs, rq->nepochs, lane_done, c);
    if (rc == STORE_OK)
      return 0;
    atomic_fetch_sub(&srv->suspended, 1);
    c->rq = NULL;
    metrics_post_answer(req, &rep, rc, rq->nepochs);
  }
  return lane_answer(c, rq, &rep);
}

/* Whether the parsed upload is one the lane serves: the route of a
 * deferred JSON endpoint, for a Host this hub answers. Fills rq->req (its
 * head still in the thread's buffer). */
static int lane_ours(lane_thread *t, lane_req *rq, const lane_head *h) {
  rq->req.srv = t->l->srv;
  rq->req.headers = h->headers;
  rq->req.nheaders = h->nheaders;
  const char *host = httpd_header(&rq->req, "host");
  if (!host || !httpd_host_ok(t->l->srv, host))
    return 0; /* libmicrohttpd answers 400 or 421 */
  route_parse("POST", h->path, &rq->req.r);
  if (rq->req.r.status != 0)
    return 0;
  const endpoint *ep = endpoint_find(&rq->req.r);
  return ep && ep->body == ENDPOINT_BODY_JSON &&
         ep->answer == ENDPOINT_DEFERRED;
}

/* Looks at the connection's next request, and serves it, waits for the
 * rest of it or hands the connection over; repeats while requests are
 * there and none is with the store or being sent. */
static void lane_serve(lane_conn *c) {
  lane_thread *t = c->t;
  chubd_server *srv = t->l->srv;
  int refused = 0;
  c->more = 0;
  while (!c->rq && !c->out) {
    size_t want = LANE_PEEK_FIRST;
    lane_head h;
    ssize_t n;
    int r;
    for (;;) {
      n = recv(c->fd, t->buf, want, MSG_PEEK);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return; /* nothing more yet */
      if (n <= 0) {
        lane_close(c); /* the client is done, or the socket broken */
        return;
      }
      r = lane_parse(t->buf, (size_t)n, srv->cfg.max_body, &h);
      /* A first look too short for the request: look at more. */
      if (r == LANE_MORE_HEAD && (size_t)n == want && want < LANE_REQUEST_MAX)
        want = LANE_REQUEST_MAX;
      else if (r == LANE_MORE_BODY && (size_t)n == want &&
               want < h.head_len + h.body_len)
        want = h.head_len + h.body_len;
      else
        break;
    }
    /* The rest comes with a later event, or the deadline does. Each look
     * copies and reads the head again from its start, so a head sent in
     * many pieces goes to libmicrohttpd, which reads on where it was. */
    if (r == LANE_MORE_HEAD && ++c->looks <= LANE_LOOKS_MAX)
      return;
    c->looks = 0;
    if (r == LANE_MORE_HEAD) {
      lane_hand_over(c);
      return;
    }
    lane_req *rq = r == LANE_TAKE ? calloc(1, sizeof *rq) : NULL;
    if (!rq || !lane_ours(t, rq, &h)) {
      free(rq);
      lane_hand_over(c);
      return;
    }
    size_t total = h.head_len + h.body_len;
    ssize_t k;
    do
      k = recv(c->fd, t->drop, total, MSG_TRUNC);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)total) { /* the bytes seen a moment ago: broken */
      free(rq);
      lane_close(c);
      return;
    }
    /* Pipelined bytes behind it came with this event, not a later one. */
    c->more = (size_t)n > total || (size_t)n == want;
    if (lane_serve_upload(c, rq, &h) < 0 ||
        (c->close_after && !c->rq && !c->out)) {
      lane_close(c);
      return;
    }
    /* Refusals are answered at once, so pipelined ones would keep this
     * thread on one connection: past a few, libmicrohttpd serves it. */
    if (!c->rq && !c->out && ++refused == LANE_REFUSALS_MAX) {
      lane_hand_over(c);
      return;
    }
  }
}

/* Answers the uploads the store committed. */
static void lane_answered(lane_thread *t) {
  uint64_t v;
  if (read(t->efd, &v, sizeof v) < 0 && errno != EAGAIN)
    return;
  pthread_mutex_lock(&t->mu);
  lane_conn *c = t->answered;
  t->answered = NULL;
  pthread_mutex_unlock(&t->mu);
  while (c) {
    lane_conn *next = c->answered;
    lane_req *rq = c->rq;
    c->rq = NULL;
    c->answered = NULL;
    if (c->gone) {
      prom_request_aborted(rq->req.r.kind);
      lane_req_free(rq);
      atomic_fetch_sub(&t->l->srv->in_flight, 1);
      lane_close(c);
    } else {
      chubd_reply rep;
      reply_init(&rep);
      metrics_post_answer(&rq->req, &rep, rq->rc, rq->nepochs);
      if (lane_answer(c, rq, &rep) < 0 || (c->close_after && !c->out))
        lane_close(c);
      else if (c->more && !c->out)
        lane_serve(c);
    }
    c = next;
  }
}

/* Accepts the connections waiting, each for the next thread in turn: a
 * burst of them (a client opening many at once) is spread over every
 * thread rather than all taken by the one that woke. */
static void lane_accept(lane *l) {
  pthread_mutex_lock(&l->accept_mu);
  while (l->listen_fd >= 0) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->listen_fd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* Out of descriptors: the backlog waits rather than spin. */
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
      break;
    }
    conns_entry *ce =
        conns_accept(l->srv->conns, fd, (struct sockaddr *)&ss, sl);
    lane_conn *c = ce ? calloc(1, sizeof *c) : NULL;
    if (!c) { /* over a limit: closed before a byte is read */
      if (ce)
        conns_close(l->srv->conns, ce);
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    lane_thread *t = l->threads[l->next++ % l->nthreads];
    c->fd = fd;
    c->ce = ce;
    c->t = t;
    memcpy(&c->addr, &ss, sizeof ss);
    c->addrlen = sl;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    lane_list(t, c);
    /* The last this thread does with c: t's own may take it from here. */
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
      lane_close(c);
  }
  pthread_mutex_unlock(&l->accept_mu);
}

static void lane_event(lane_conn *c, uint32_t events) {
  if (events & (EPOLLHUP | EPOLLERR)) {
    if (!c->rq) {
      lane_close(c);
      return;
    }
    c->gone = 1; /* closed once the store answered */
    epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    return;
  }
  if (c->rq) { /* looked at once the store answered */
    c->more = 1;
    return;
  }
  if (c->out && lane_flush(c) < 0) {
    lane_close(c);
    return;
  }
  if (c->close_after && !c->out && !c->rq) {
    lane_close(c);
    return;
  }
  lane_serve(c);
}

static void *lane_main(void *arg) {
  lane_thread *t = arg;
  struct epoll_event ev[LANE_EVENTS];
  pthread_setname_np(pthread_self(), "chubd-lane"); /* for top -H, perf */
  while (!atomic_load(&t->l->stopping)) {
    int k = epoll_wait(t->ep, ev, LANE_EVENTS, -1), answered = 0;
    for (int i = 0; i < k; i++) {
      if (ev[i].data.ptr == NULL)
        lane_accept(t->l);
      else if (ev[i].data.ptr == t)
        answered = 1;
      else
        lane_event(ev[i].data.ptr, ev[i].events);
    }
    /* Answers last: answering may close or hand over a connection, which
     * an event still ahead in this batch would then name. (An event closes
     * only its own connection, and one whose upload is with the store
     * not at all.) */
    if (answered)
      lane_answered(t);
  }
  return NULL;
}

static void lane_thread_free(lane_thread *t) {
  if (t->ep >= 0)
    close(t->ep);
  if (t->efd >= 0)
    close(t->efd);
  pthread_mutex_destroy(&t->mu);
  pthread_mutex_destroy(&t->list_mu);
  free(t);
}

lane *lane_start(chubd_server *srv, struct MHD_Daemon *d,
                 struct MHD_Daemon *uploads, int listen_fd, unsigned nthreads,
                 char *err, size_t errn) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  lane *l = calloc(1, sizeof *l);
  if (!l || getsockname(listen_fd, (struct sockaddr *)&ss, &sl) < 0) {
    snprintf(err, errn, "cannot start the request threads: %s",
             l ? strerror(errno) : "out of memory");
    free(l);
    close(listen_fd);
    return NULL;
  }
  l->srv = srv;
  l->d = d;
  l->uploads = uploads;
  l->listen_fd = listen_fd;
  l->port =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
  pthread_mutex_init(&l->accept_mu, NULL);
  atomic_init(&l->stopping, 0);
  if (nthreads < 1)
    nthreads = 1;
  if (nthreads > LANE_THREADS_MAX)
    nthreads = LANE_THREADS_MAX;
  /* Held while threads start: the first may accept before the last is
   * counted in nthreads. */
  pthread_mutex_lock(&l->accept_mu);
  for (unsigned i = 0; i < nthreads; i++) {
    lane_thread *t = calloc(1, sizeof *t);
    if (!t)
      break;
    t->l = l;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->list_mu, NULL);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wake = {.events = EPOLLIN, .data.ptr = t};
    struct epoll_event acc = {.events = EPOLLIN | EPOLLEXCLUSIVE,
                              .data.ptr = NULL};
    if (t->ep < 0 || t->efd < 0 ||
        epoll_ctl(t->ep, EPOLL_CTL_ADD, t->efd, &wake) < 0 ||
        epoll_ctl(t->ep, EPOLL_CTL_ADD, listen_fd, &acc) < 0 ||
        pthread_create(&t->id, NULL, lane_main, t) != 0) {
      lane_thread_free(t);
      break;
    }
    l->threads[l->nthreads++] = t;
  }
  pthread_mutex_unlock(&l->accept_mu);
  if (l->nthreads < nthreads) {
    snprintf(err, errn, "cannot start the request threads: %s",
             strerror(errno ? errno : ENOMEM));
    lane_quiesce(l);
    lane_stop(l);
    return NULL;
  }
  return l;
}

int lane_port(const lane *l) {
  return l->port;
}

void lane_quiesce(lane *l) {
  pthread_mutex_lock(&l->accept_mu);
  if (l->listen_fd >= 0) {
    for (unsigned i = 0; i < l->nthreads; i++)
      epoll_ctl(l->threads[i]->ep, EPOLL_CTL_DEL, l->listen_fd, NULL);
    close(l->listen_fd);
    l->listen_fd = -1;
  }
  pthread_mutex_unlock(&l->accept_mu);
}

void lane_stop(lane *l) {
  if (!l)
    return;
  lane_quiesce(l);
  atomic_store(&l->stopping, 1);
  for (unsigned i = 0; i < l->nthreads; i++) {
    uint64_t one = 1;
    if (write(l->threads[i]->efd, &one, sizeof one) < 0)
      abort();
  }
  for (unsigned i = 0; i < l->nthreads; i++) {
    lane_thread *t = l->threads[i];
    pthread_join(t->id, NULL);
    /* Answers that came after the thread's last look: dropped with their
     * connections. */
    for (lane_conn *c = t->answered; c; c = c->answered) {
      lane_req_free(c->rq);
      c->rq = NULL;
      atomic_fetch_sub(&l->srv->in_flight, 1);
    }
    t->answered = NULL;
    while (t->conns) {
      lane_req_free(t->conns->rq); /* answered: none is with the store */
      t->conns->rq = NULL;
      lane_close(t->conns);
    }
    lane_thread_free(t);
  }
  pthread_mutex_destroy(&l->accept_mu);
  free(l);
}

/*
 * conns.c - header deadlines for open connections (see conns.h).
 *
 * One list under one mutex, taken as connections open and close and when
 * the watchdog walks the list once a quarter second. A request's start and
 * end only move its entry's deadline, an atomic of its own, so the
 * request path never waits on the list. An entry is removed
 * when libmicrohttpd reports the connection closed, or when chubd's own
 * loop closes it, before the socket is closed, so the watchdog never
 * shuts down a descriptor that was reused. The same entries, by address,
 * count the connections per client for chubd's loop.
 */
#include "conns.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util.h"

#define CONNS_TICK_NS (250 * 1000 * 1000)
#define CONNS_IP_BUCKETS 1024

struct conns_entry {
  int fd;
  int counted; /* within the limit (the others are being shut) */
  /* Monotonic ms; 0: headers complete, no deadline running. */
  _Atomic int64_t deadline_ms;
  struct conns_entry *prev, *next;
  /* Accepted by chubd (conns_accept): its address, as IPv6 (IPv4 mapped),
   * on the list of its hash bucket. */
  int has_ip;
  unsigned char ip[16];
  struct conns_entry *ip_prev, *ip_next;
  struct conns_entry *adopt_next; /* on the hand-over list */
};

struct conns {
  double header_timeout_s;
  unsigned max;        /* connections in all */
  unsigned max_per_ip; /* per address, of those chubd accepted */
  unsigned open;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  conns_entry *head;
  conns_entry *ip_buckets[CONNS_IP_BUCKETS];
  conns_entry *adopt; /* handed to libmicrohttpd, not yet taken over */
  int stopping;
  pthread_t thread;
};

/* The bucket of an address (FNV-1a). */
static unsigned conns_ip_hash(const unsigned char ip[16]) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < 16; i++)
    h = (h ^ ip[i]) * 16777619u;
  return h % CONNS_IP_BUCKETS;
}

/* When a request started now must have its headers: monotonic ms. */
static int64_t conns_deadline(const conns *c) {
  return (int64_t)((util_mono_s() + c->header_timeout_s) * 1000.0);
}

static void *conns_main(void *arg) {
  conns *c = arg;
  pthread_mutex_lock(&c->mu);
  while (!c->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += CONNS_TICK_NS;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    int64_t now = (int64_t)(util_mono_s() * 1000.0);
    for (conns_entry *e = c->head; e; e = e->next) {
      int64_t d = atomic_load(&e->deadline_ms);
      if (d > 0 && now > d &&
          atomic_compare_exchange_strong(&e->deadline_ms, &d, 0)) {
        shutdown(e->fd, SHUT_RDWR);
      }
    }
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

conns *conns_new(double header_timeout_s, unsigned max_connections,
                 unsigned max_per_ip) {
  conns *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->header_timeout_s = header_timeout_s;
  c->max = max_connections;
  c->max_per_ip = max_per_ip;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (pthread_create(&c->thread, NULL, conns_main, c) != 0) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return NULL;
  }
  return c;
}

void conns_free(conns *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->stopping = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  while (c->head) {
    conns_entry *next = c->head->next;
    free(c->head);
    c->head = next;
  }
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

/* Puts e on the list (and, with an address, its bucket); under c->mu. */
static void conns_link(conns *c, conns_entry *e) {
  e->prev = NULL;
  e->next = c->head;
  if (c->head)
    c->head->prev = e;
  c->head = e;
  if (e->has_ip) {
    conns_entry **b = &c->ip_buckets[conns_ip_hash(e->ip)];
    e->ip_prev = NULL;
    e->ip_next = *b;
    if (*b)
      (*b)->ip_prev = e;
    *b = e;
  }
}

/* Takes e off the lists and uncounts it; under c->mu. */
static void conns_unlink(conns *c, conns_entry *e) {
  if (e->counted)
    c->open--;
  if (e->prev)
    e->prev->next = e->next;
  else
    c->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  if (e->has_ip) {
    if (e->ip_prev)
      e->ip_prev->ip_next = e->ip_next;
    else
      c->ip_buckets[conns_ip_hash(e->ip)] = e->ip_next;
    if (e->ip_next)
      e->ip_next->ip_prev = e->ip_prev;
  }
}

/* The entry of socket fd on the hand-over list, taken off it; or NULL.
 * Under c->mu. */
static conns_entry *conns_adopt(conns *c, int fd) {
  for (conns_entry **p = &c->adopt; *p; p = &(*p)->adopt_next) {
    if ((*p)->fd == fd) {
      conns_entry *e = *p;
      *p = e->adopt_next;
      e->adopt_next = NULL;
      return e;
    }
  }
  return NULL;
}

void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                  enum MHD_ConnectionNotificationCode code) {
  conns *c = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!fi)
      return; /* no deadline for this one; the idle timeout still holds */
    pthread_mutex_lock(&c->mu);
    conns_entry *e = conns_adopt(c, fi->connect_fd);
    if (e) { /* accepted by chubd, counted and on the list already */
      pthread_mutex_unlock(&c->mu);
      *socket_ctx = e;
      return;
    }
    e = calloc(1, sizeof *e);
    *socket_ctx = e;
    if (!e) {
      pthread_mutex_unlock(&c->mu);
      return;
    }
    e->fd = fi->connect_fd;
    if (c->open >= c->max) {
      /* Over the limit: shut at once, before a byte is read. (Each of
       * libmicrohttpd's threads counts only its own connections.) */
      shutdown(e->fd, SHUT_RDWR);
    } else {
      e->counted = 1;
      c->open++;
    }
    atomic_store(&e->deadline_ms, e->counted ? conns_deadline(c) : 0);
    conns_link(c, e);
    pthread_mutex_unlock(&c->mu);
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    conns_entry *e = *socket_ctx;
    if (!e)
      return;
    conns_close(c, e);
    *socket_ctx = NULL;
  }
}

conns_entry *conns_accept(conns *c, int fd, const struct sockaddr *addr,
                          socklen_t len) {
  conns_entry *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->fd = fd;
  if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    memcpy(e->ip, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
    e->has_ip = 1;
  } else if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    e->ip[10] = e->ip[11] = 0xff;
    memcpy(e->ip + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    e->has_ip = 1;
  }
  pthread_mutex_lock(&c->mu);
  unsigned same = 0;
  if (e->has_ip)
    for (conns_entry *o = c->ip_buckets[conns_ip_hash(e->ip)]; o;
         o = o->ip_next)
      same += memcmp(o->ip, e->ip, 16) == 0;
  if (c->open >= c->max || same >= c->max_per_ip) {
    pthread_mutex_unlock(&c->mu);
    free(e);
    return NULL;
  }
  e->counted = 1;
  c->open++;
  atomic_store(&e->deadline_ms, conns_deadline(c));
  conns_link(c, e);
  pthread_mutex_unlock(&c->mu);
  return e;
}

void conns_entry_headers_done(conns_entry *e) {
  atomic_store(&e->deadline_ms, 0);
}

void conns_entry_request_done(conns *c, conns_entry *e) {
  atomic_store(&e->deadline_ms, conns_deadline(c));
}

void conns_hand_over(conns *c, conns_entry *e) {
  pthread_mutex_lock(&c->mu);
  e->adopt_next = c->adopt;
  c->adopt = e;
  pthread_mutex_unlock(&c->mu);
}

void conns_hand_over_failed(conns *c, conns_entry *e) {
  int found = 0;
  pthread_mutex_lock(&c->mu);
  /* Compared, never followed, until found: had it been taken over, it
   * might be freed by now. */
  for (conns_entry **p = &c->adopt; *p; p = &(*p)->adopt_next) {
    if (*p == e) {
      *p = e->adopt_next;
      conns_unlink(c, e);
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (found)
    free(e);
}

void conns_close(conns *c, conns_entry *e) {
  pthread_mutex_lock(&c->mu);
  conns_unlink(c, e);
  pthread_mutex_unlock(&c->mu);
  free(e);
}

static void conns_set(conns *c, struct MHD_Connection *conn, int running) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  conns_entry *e = ci ? ci->socket_context : NULL;
  if (!e)
    return;
  if (running)
    conns_entry_request_done(c, e);
  else
    conns_entry_headers_done(e);
}

void conns_headers_done(conns *c, struct MHD_Connection *conn) {
  conns_set(c, conn, 0);
}

void conns_request_done(conns *c, struct MHD_Connection *conn) {
  conns_set(c, conn, 1);
}

unsigned conns_open(conns *c) {
  pthread_mutex_lock(&c->mu);
  unsigned n = c->open;
  pthread_mutex_unlock(&c->mu);
  return n;
}

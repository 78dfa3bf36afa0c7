/*
 * conns.c - header deadlines for open connections (see conns.h).
 *
 * One list under one mutex, taken as connections open and close and when
 * the watchdog walks the list once a quarter second. A request's start and
 * end only move its entry's deadline, an atomic of its own, so the
 * request path never waits on the list. An entry is removed
 * when libmicrohttpd reports the connection closed, before it closes the
 * socket, so the watchdog never shuts down a descriptor that was reused.
 */
#include "conns.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util.h"

#define CONNS_TICK_NS (250 * 1000 * 1000)

typedef struct conns_entry {
  int fd;
  int counted; /* within the limit (the others are being shut) */
  /* Monotonic ms; 0: headers complete, no deadline running. */
  _Atomic int64_t deadline_ms;
  struct conns_entry *prev, *next;
} conns_entry;

struct conns {
  double header_timeout_s;
  unsigned max; /* connections in all */
  unsigned open;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  conns_entry *head;
  int stopping;
  pthread_t thread;
};

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

conns *conns_new(double header_timeout_s, unsigned max_connections) {
  conns *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->header_timeout_s = header_timeout_s;
  c->max = max_connections;
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

void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                  enum MHD_ConnectionNotificationCode code) {
  conns *c = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    conns_entry *e = fi ? calloc(1, sizeof *e) : NULL;
    *socket_ctx = e;
    if (!e)
      return; /* no deadline for this one; the idle timeout still holds */
    e->fd = fi->connect_fd;
    pthread_mutex_lock(&c->mu);
    if (c->open >= c->max) {
      /* Over the limit: shut at once, before a byte is read. (Each of
       * libmicrohttpd's threads counts only its own connections.) */
      shutdown(e->fd, SHUT_RDWR);
    } else {
      e->counted = 1;
      c->open++;
    }
    atomic_store(&e->deadline_ms, e->counted ? conns_deadline(c) : 0);
    e->next = c->head;
    if (c->head)
      c->head->prev = e;
    c->head = e;
    pthread_mutex_unlock(&c->mu);
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    conns_entry *e = *socket_ctx;
    if (!e)
      return;
    pthread_mutex_lock(&c->mu);
    if (e->counted)
      c->open--;
    if (e->prev)
      e->prev->next = e->next;
    else
      c->head = e->next;
    if (e->next)
      e->next->prev = e->prev;
    pthread_mutex_unlock(&c->mu);
    free(e);
    *socket_ctx = NULL;
  }
}

static void conns_set(conns *c, struct MHD_Connection *conn, int running) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  conns_entry *e = ci ? ci->socket_context : NULL;
  if (!e)
    return;
  atomic_store(&e->deadline_ms, running ? conns_deadline(c) : 0);
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

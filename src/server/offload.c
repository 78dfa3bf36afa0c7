/*
 * offload.c - threads for work that may block on the disk (see offload.h).
 */
#include "offload.h"

#include <pthread.h>
#include <stdlib.h>

#define OFFLOAD_THREADS_MAX 16

typedef struct offload_job {
  offload_fn fn;
  void *arg;
  struct offload_job *next;
} offload_job;

struct offload {
  pthread_mutex_t mu; /* guards all below */
  pthread_cond_t cv;  /* a job queued, or stopping */
  offload_job *head, *tail;
  int stopping;
  unsigned n;
  pthread_t threads[OFFLOAD_THREADS_MAX];
};

static void *offload_main(void *arg) {
  offload *o = arg;
  pthread_setname_np(pthread_self(), "chubd-offload"); /* for top -H */
  pthread_mutex_lock(&o->mu);
  for (;;) {
    while (!o->head && !o->stopping)
      pthread_cond_wait(&o->cv, &o->mu);
    offload_job *j = o->head;
    if (!j)
      break; /* stopping, and nothing is left */
    o->head = j->next;
    if (!o->head)
      o->tail = NULL;
    pthread_mutex_unlock(&o->mu);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&o->mu);
  }
  pthread_mutex_unlock(&o->mu);
  return NULL;
}

offload *offload_start(unsigned n) {
  offload *o = calloc(1, sizeof *o);
  if (!o)
    return NULL;
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->cv, NULL);
  if (n < 1)
    n = 1;
  if (n > OFFLOAD_THREADS_MAX)
    n = OFFLOAD_THREADS_MAX;
  while (o->n < n &&
         pthread_create(&o->threads[o->n], NULL, offload_main, o) == 0)
    o->n++;
  if (o->n == 0) {
    offload_stop(o);
    return NULL;
  }
  return o;
}

int offload_run(offload *o, offload_fn fn, void *arg) {
  offload_job *j = malloc(sizeof *j);
  if (!j)
    return -1;
  *j = (offload_job){.fn = fn, .arg = arg};
  pthread_mutex_lock(&o->mu);
  if (o->stopping) {
    pthread_mutex_unlock(&o->mu);
    free(j);
    return -1;
  }
  if (o->tail)
    o->tail->next = j;
  else
    o->head = j;
  o->tail = j;
  pthread_cond_signal(&o->cv);
  pthread_mutex_unlock(&o->mu);
  return 0;
}

void offload_stop(offload *o) {
  if (!o)
    return;
  pthread_mutex_lock(&o->mu);
  o->stopping = 1;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
  for (unsigned i = 0; i < o->n; i++)
    pthread_join(o->threads[i], NULL);
  pthread_mutex_destroy(&o->mu);
  pthread_cond_destroy(&o->cv);
  free(o);
}

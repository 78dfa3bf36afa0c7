/*
 * ratelimit.c - token buckets per API key, in one small open-addressing
 * table behind one mutex.
 *
 * The number of keys is what an operator created by hand, so the table is
 * tiny and the lock is held for a few arithmetic operations; a lock-free
 * scheme would buy nothing here. Buckets start full so that a client's
 * first burst (create, heartbeat, metrics) is never refused.
 */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATELIMIT_MAX_BUCKETS 65536

typedef struct ratelimit_bucket {
  int64_t key_id; /* 0: empty slot (key ids start at 1) */
  double tokens;
  double at; /* monotonic seconds of the last refill */
} ratelimit_bucket;

struct ratelimit {
  double rate, burst;
  pthread_mutex_t mu;
  ratelimit_bucket *slots;
  size_t cap, used;
};

ratelimit *ratelimit_new(double rate, double burst) {
  ratelimit *rl = calloc(1, sizeof *rl);
  if (!rl)
    return NULL;
  rl->rate = rate;
  rl->burst = burst < 1 ? 1 : burst;
  rl->cap = 64;
  rl->slots = calloc(rl->cap, sizeof *rl->slots);
  if (!rl->slots) {
    free(rl);
    return NULL;
  }
  pthread_mutex_init(&rl->mu, NULL);
  return rl;
}

void ratelimit_free(ratelimit *rl) {
  if (!rl)
    return;
  pthread_mutex_destroy(&rl->mu);
  free(rl->slots);
  free(rl);
}

static ratelimit_bucket *ratelimit_slot(ratelimit_bucket *slots, size_t cap,
                                        int64_t key_id) {
  size_t i = (size_t)((uint64_t)key_id * 0x9E3779B97F4A7C15ULL) & (cap - 1);
  while (slots[i].key_id != 0 && slots[i].key_id != key_id)
    i = (i + 1) & (cap - 1);
  return &slots[i];
}

static int ratelimit_grow(ratelimit *rl) {
  size_t ncap = rl->cap * 2;
  ratelimit_bucket *n = calloc(ncap, sizeof *n);
  if (!n)
    return -1;
  for (size_t i = 0; i < rl->cap; i++)
    if (rl->slots[i].key_id)
      *ratelimit_slot(n, ncap, rl->slots[i].key_id) = rl->slots[i];
  free(rl->slots);
  rl->slots = n;
  rl->cap = ncap;
  return 0;
}

int ratelimit_take(ratelimit *rl, int64_t key_id, double now_s,
                   ratelimit_state *st) {
  pthread_mutex_lock(&rl->mu);
  if (rl->used >= RATELIMIT_MAX_BUCKETS) {
    /* Buckets by client address can be made by anyone: past the bound,
     * every bucket starts full again rather than memory growing. */
    memset(rl->slots, 0, rl->cap * sizeof *rl->slots);
    rl->used = 0;
  }
  if (rl->used * 2 >= rl->cap)
    ratelimit_grow(rl); /* on failure the table is just fuller */
  ratelimit_bucket *b = ratelimit_slot(rl->slots, rl->cap, key_id);
  if (b->key_id == 0) {
    b->key_id = key_id;
    b->tokens = rl->burst;
    b->at = now_s;
    rl->used++;
  }
  double elapsed = now_s - b->at;
  if (elapsed > 0) {
    b->tokens = fmin(rl->burst, b->tokens + elapsed * rl->rate);
    b->at = now_s;
  }
  int granted = b->tokens >= 1.0;
  if (granted)
    b->tokens -= 1.0;
  double tokens = b->tokens;
  pthread_mutex_unlock(&rl->mu);

  double rate = rl->rate > 0 ? rl->rate : 1e-9;
  st->limit = (long)rl->burst;
  st->remaining = (long)floor(tokens);
  double refill = fmin(ceil((rl->burst - tokens) / rate), 86400.0 * 365);
  st->reset = (int64_t)time(NULL) + (int64_t)refill;
  double wait = granted ? 0 : ceil((1.0 - tokens) / rate);
  st->retry_after = granted ? 0 : (wait < 1 ? 1 : (long)fmin(wait, 86400));
  return granted;
}

/*
 * ratelimit.h - token buckets by id: per API key for the API, per client
 * address for usage events. At most 65536 buckets are kept; past that,
 * all start full again.
 */
#ifndef CHUBD_RATELIMIT_H
#define CHUBD_RATELIMIT_H

#include <stdint.h>

typedef struct ratelimit ratelimit;

typedef struct ratelimit_state {
  long limit;       /* the bucket's size (burst) */
  long remaining;   /* whole tokens left after this request */
  int64_t reset;    /* unix seconds when the bucket is full again */
  long retry_after; /* seconds until one token is back (when refused) */
} ratelimit_state;

/* rate tokens per second, burst tokens at most. NULL when out of memory. */
ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(ratelimit *rl);

/* Takes one token from key_id's bucket at monotonic time now_s. Returns 1
 * when granted, 0 when the caller must wait; fills *st either way. */
int ratelimit_take(ratelimit *rl, int64_t key_id, double now_s,
                   ratelimit_state *st);

#endif

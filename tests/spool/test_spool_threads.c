/*
 * test_spool_threads.c - the trainer thread appends while the sender thread
 * reads, acknowledges, syncs and compacts, as in a real session. Afterwards
 * every epoch was either acknowledged (and is gone after a reopen) or is
 * still pending with its newest JSON; none is lost, none comes back. Runs
 * under TSan (label `sender`).
 */
#include "spool_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

enum { EPOCHS = 3000, VERSIONS = 2 };

typedef struct shared {
  spool *sp;
  pthread_mutex_t mu;
  bool done;                   /* the appender finished */
  unsigned char acked[EPOCHS]; /* the version acknowledged, 0 = none */
} shared;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *appender(void *arg) {
  shared *s = arg;
  double worst = 0, total = 0;
  int n = 0;
  for (int e = 0; e < EPOCHS; e++) {
    /* every tenth epoch is queued twice, the second time newer */
    for (int v = 1; v <= (e % 10 == 0 ? VERSIONS : 1); v++) {
      char json[256];
      spool_test_json(json, sizeof json, e, v);
      double t0 = now_ns();
      assert_int_equal(spool_append_metrics(s->sp, e, json), CHUB_OK);
      double dt = now_ns() - t0;
      total += dt;
      worst = dt > worst ? dt : worst;
      n++;
    }
    if (e % 500 == 0) {
      spool_ckpt c = {.epoch = e, .path = "/w/last.pt"};
      assert_int_equal(spool_append_checkpoint(s->sp, &c), CHUB_OK);
    }
  }
  pthread_mutex_lock(&s->mu);
  s->done = true;
  pthread_mutex_unlock(&s->mu);
  /* a figure, not an assertion: what the training thread paid while the
   * sender read, acknowledged, synced and compacted */
  printf("threads: %d appends while sending, mean %.0f ns, worst %.0f us\n", n,
         total / n, worst / 1000);
  return NULL;
}

/* Parses the "version" the test JSON carries. */
static int json_version(const char *json) {
  const char *p = strstr(json, "\"version\": ");
  return p ? atoi(p + 11) : -1;
}

static void *sender(void *arg) {
  shared *s = arg;
  int batch[64];
  /* Bounded: each round acknowledges at least one epoch once the appender
   * is done, so 100000 rounds is far more than enough. */
  for (int round = 0; round < 100000; round++) {
    pthread_mutex_lock(&s->mu);
    bool done = s->done;
    pthread_mutex_unlock(&s->mu);
    size_t n = spool_pending_metrics(s->sp, batch, 64);
    if (n == 0 && done)
      break;
    int acks[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      char *json = NULL;
      assert_int_equal(spool_read_metrics(s->sp, batch[i], &json), CHUB_OK);
      int v = json_version(json);
      assert_true(v >= 1 && v <= VERSIONS);
      s->acked[batch[i]] = (unsigned char)v; /* what the "hub" now holds */
      acks[k++] = batch[i];
      free(json);
    }
    assert_int_equal(spool_ack_metrics(s->sp, acks, k), CHUB_OK);
    spool_ckpt c;
    if (spool_next_checkpoint(s->sp, &c)) {
      assert_int_equal(spool_ack_checkpoint(s->sp, c.seq), CHUB_OK);
      spool_ckpt_clear(&c);
    }
    if (round % 7 == 0)
      assert_int_equal(spool_sync(s->sp), CHUB_OK);
    if (round % 50 == 0)
      assert_int_equal(spool_compact(s->sp), CHUB_OK);
  }
  return NULL;
}

static void test_append_while_sending(void **state) {
  (void)state;
  char *root = th_tmpdir_new("chub-spool");
  assert_non_null(root);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/run-t", root);
  shared *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  assert_int_equal(spool_open(dir, 0, &s->sp), CHUB_OK);
  pthread_t a, b;
  assert_int_equal(pthread_create(&a, NULL, appender, s), 0);
  assert_int_equal(pthread_create(&b, NULL, sender, s), 0);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  /* The sender loop ends when nothing is pending; anything an ack skipped
   * because a newer version arrived after the read was re-read and acked
   * in a later round. So the hub holds the newest version of every epoch. */
  int left[8];
  assert_int_equal(spool_pending_metrics(s->sp, left, 8), 0);
  for (int e = 0; e < EPOCHS; e++)
    assert_int_equal(s->acked[e], e % 10 == 0 ? VERSIONS : 1);
  spool_close(s->sp);
  assert_int_equal(spool_open(dir, 0, &s->sp), CHUB_OK);
  size_t nm = 1, nc = 1;
  spool_pending_counts(s->sp, &nm, &nc, NULL);
  assert_int_equal(nm, 0);
  assert_int_equal(nc, 0);
  spool_close(s->sp);
  printf("threads: %d epochs appended while acknowledged, none lost or "
         "stale\n",
         EPOCHS);
  pthread_mutex_destroy(&s->mu);
  free(s);
  th_tmpdir_remove(root);
  free(root);
}

/* Compaction copies without the mutex and carries over what was appended
 * meanwhile: hammer it from one thread while another appends, acking every
 * other epoch, then reopen and find every unacknowledged epoch intact. */
typedef struct compact_shared {
  spool *sp;
  int appended; /* written by the appender, read after join */
} compact_shared;

enum { COMPACT_EPOCHS = 4000 };

static void *compact_appender(void *arg) {
  compact_shared *c = arg;
  for (int e = 0; e < COMPACT_EPOCHS; e++) {
    char json[256];
    spool_test_json(json, sizeof json, e, 1);
    assert_int_equal(spool_append_metrics(c->sp, e, json), CHUB_OK);
  }
  c->appended = COMPACT_EPOCHS;
  return NULL;
}

static void test_compact_while_appending(void **state) {
  (void)state;
  char *root = th_tmpdir_new("chub-spool");
  assert_non_null(root);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/run-c", root);
  compact_shared c = {0};
  assert_int_equal(spool_open(dir, 0, &c.sp), CHUB_OK);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, compact_appender, &c), 0);
  int compactions = 0;
  for (int round = 0; round < 400; round++) {
    int pending[64];
    size_t n = spool_pending_metrics(c.sp, pending, 64);
    int acks[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (pending[i] % 2 == 0)
        acks[k++] = pending[i];
    assert_int_equal(spool_ack_metrics(c.sp, acks, k), CHUB_OK);
    assert_int_equal(spool_compact(c.sp), CHUB_OK);
    compactions++;
  }
  pthread_join(t, NULL);
  assert_int_equal(c.appended, COMPACT_EPOCHS);
  spool_close(c.sp);
  assert_int_equal(spool_open(dir, 0, &c.sp), CHUB_OK);
  int odd = 0;
  for (int e = 0; e < COMPACT_EPOCHS; e++) {
    char *json = NULL;
    chub_code rc = spool_read_metrics(c.sp, e, &json);
    if (e % 2 == 1) {
      char want[256];
      spool_test_json(want, sizeof want, e, 1);
      assert_int_equal(rc, CHUB_OK);
      assert_string_equal(json, want);
      odd++;
    }
    free(json);
  }
  spool_close(c.sp);
  printf("compaction: %d compactions while %d epochs were appended; all %d "
         "unacknowledged epochs intact after reopen\n",
         compactions, COMPACT_EPOCHS, odd);
  th_tmpdir_remove(root);
  free(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_while_sending),
      cmocka_unit_test(test_compact_while_appending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

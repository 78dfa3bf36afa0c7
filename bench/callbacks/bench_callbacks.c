/*
 * bench_callbacks.c - what the HUB callbacks cost the training thread when
 * the hub is slow or down, next to the reference's way of doing the same.
 *
 * chub: on_fit_epoch_end and on_model_save run through chub_callbacks_run
 * with the default rate limits (3 s, 900 s) and with both at 0 (the worst
 * case: every call spools and pokes the sender) against a hub that accepted the
 * session and then stops answering (slow) or stops listening (down); the
 * slow sessions take turns, BENCH_ROUNDS each. Reference:
 * the same work done the reference's way, in C, in this process: a blocking
 * POST of the epoch's metrics per call (timeout 100 ms), and a thread spawned
 * per request. Prints median, p99 and max per call and the ratio of medians;
 * asserts nothing.
 */
#include "../bench_clock.h"
#include "fakehub.h"
#include "internal.h"
#include "session.h"
#include "spool_record.h"

#include <fcntl.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BENCH_CALLS = 20000 };
/* The slow-hub sessions, with the default rate limits and with both at 0,
 * run this many times each, taking turns: on a shared host the cost of a
 * system call moves by a third from one minute to the next, and a
 * session run once takes whatever moment it gets. */
enum { BENCH_ROUNDS = 3 };

typedef struct bench_stats {
  double median, p99, max;
  size_t n;
} bench_stats;

static bench_stats bench_summarise(double *us, size_t n) {
  qsort(us, n, sizeof *us, bench_cmp);
  bench_stats s = {us[n / 2], us[(size_t)((double)n * 0.99)], us[n - 1], n};
  return s;
}

static void bench_print(const char *what, bench_stats s) {
  printf("%-58s n=%-6zu median %9.2f us  p99 %10.2f us  max %11.2f us\n", what,
         s.n, s.median, s.p99, s.max);
}

static void bench_quiet_log(chub_log_level level, const char *line,
                            void *user) {
  (void)level;
  (void)line;
  (void)user;
}

typedef struct bench_trainer {
  chub_trainer t;
  chub_metric loss[3];
  chub_metric metrics[6];
  char last[256];
} bench_trainer;

static void bench_trainer_init(bench_trainer *b, const char *dir) {
  memset(b, 0, sizeof *b);
  static const char *const loss[] = {"box_loss", "cls_loss", "dfl_loss"};
  static const char *const metrics[] = {
      "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)",
      "metrics/mAP50-95(B)",  "val/box_loss",      "val/cls_loss"};
  for (int i = 0; i < 3; i++)
    b->loss[i] = (chub_metric){loss[i], 1.0 / (i + 3)};
  for (int i = 0; i < 6; i++)
    b->metrics[i] = (chub_metric){metrics[i], 0.123456789 * (i + 1)};
  snprintf(b->last, sizeof b->last, "%s/last.pt", dir);
  FILE *fp = fopen(b->last, "wb");
  if (fp) {
    fputs("weights", fp);
    fclose(fp);
  }
  b->t.args = (chub_args){
      .model = "bench.pt", .data = "coco8.yaml", .epochs = BENCH_CALLS};
  b->t.tloss = b->loss;
  b->t.n_tloss = 3;
  b->t.metrics = b->metrics;
  b->t.n_metrics = 6;
  b->t.last = b->last;
  b->t.model_parameters = 2590620;
}

/* The floor the callback is held to: one pwrite(2) of the epoch's record,
 * as the spool frames it, to a file beside the spool. Timed right after
 * each call rather than in a run of its own, so that both see the same
 * machine: on a shared host the cost of a system call moves by a third
 * from one minute to the next. */
typedef struct bench_floor {
  int fd;
  off_t off;
  unsigned char rec[4096];
  size_t len;
  double *us; /* one sample per call */
} bench_floor;

/* Times `n` calls of `event` on the trainer into us[n], bumping the epoch
 * each call, and after each one the floor's write when `fl` is given. */
static void bench_event(chub_callbacks *cb, bench_trainer *b, chub_event event,
                        int first_epoch, size_t n, bench_floor *fl,
                        double *us) {
  for (size_t i = 0; i < n; i++) {
    b->t.epoch = first_epoch + (int)i;
    b->t.fitness = (double)(i % 7);
    b->t.best_fitness = 3.0;
    double t0 = bench_now_us();
    chub_callbacks_run(cb, event, &b->t);
    us[i] = bench_now_us() - t0;
    if (fl) {
      t0 = bench_now_us();
      ssize_t w = pwrite(fl->fd, fl->rec, fl->len, fl->off);
      fl->us[i] = bench_now_us() - t0;
      fl->off += w > 0 ? w : 0;
    }
  }
}

/* ------------------------------------------------ the reference's way */

static size_t bench_discard(char *p, size_t size, size_t n, void *u) {
  (void)p;
  (void)u;
  return size * n;
}

static void bench_blocking_post(const char *url, const char *body) {
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 100L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_discard);
  curl_easy_perform(c);
  curl_easy_cleanup(c);
}

typedef struct bench_req {
  char url[128];
  char body[512];
} bench_req;

static void *bench_request_thread(void *arg) {
  bench_req *r = arg;
  bench_blocking_post(r->url, r->body);
  free(r);
  return NULL;
}

/* Blocking POST per call (spawn = false) or a thread per call (true);
 * returns the caller-side cost per call. Spawned threads are joined after
 * timing. */
static bench_stats bench_reference(const char *root, bench_trainer *b, size_t n,
                                   bool spawn) {
  double *us = malloc(n * sizeof *us);
  pthread_t *th = spawn ? calloc(n, sizeof *th) : NULL;
  char url[128];
  snprintf(url, sizeof url, "%s/v1/models/%s", root, FAKEHUB_MODEL_ID);
  for (size_t i = 0; i < n; i++) {
    b->t.epoch = (int)i;
    double t0 = bench_now_us();
    /* The reference builds the map, JSON-encodes it, and posts it. */
    char flat[1024];
    bool dropped = false;
    hub_callbacks_metrics_json(&b->t, flat, sizeof flat, &dropped);
    json_t *body =
        json_pack("{s:s, s:{s:s}}", "type", "metrics", "metrics", "0", flat);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (spawn) {
      bench_req *r = malloc(sizeof *r);
      snprintf(r->url, sizeof r->url, "%s", url);
      snprintf(r->body, sizeof r->body, "%s", text);
      pthread_create(&th[i], NULL, bench_request_thread, r);
    } else {
      bench_blocking_post(url, text);
    }
    free(text);
    us[i] = bench_now_us() - t0;
  }
  for (size_t i = 0; spawn && i < n; i++)
    pthread_join(th[i], NULL);
  free(th);
  bench_stats s = bench_summarise(us, n);
  free(us);
  return s;
}

/* The trainer's entries as on_fit_epoch_end lists them (after epoch 0). */
static size_t bench_items(const bench_trainer *b, flat_item *items) {
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    items[n++] =
        flat_item_of("train/", b->loss[i].name, b->loss[i].value, false);
  for (int i = 0; i < 6; i++)
    items[n++] =
        flat_item_of("", b->metrics[i].name, b->metrics[i].value, false);
  return n;
}

/* The epoch's record as the spool frames it, for the floor. */
static void bench_floor_open(bench_floor *fl, const char *dir,
                             bench_trainer *b) {
  memset(fl, 0, sizeof *fl);
  flat_item items[16];
  bool dropped = false;
  b->t.epoch = 1;
  fl->len = spool_record_frame_items(fl->rec, 1, items, bench_items(b, items),
                                     &dropped);
  char path[512];
  snprintf(path, sizeof path, "%s/floor.log", dir);
  fl->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  fl->us = malloc((size_t)BENCH_ROUNDS * BENCH_CALLS * sizeof *fl->us);
  if (fl->fd < 0 || !fl->us) {
    perror("bench: floor");
    exit(1);
  }
}

/* Where on_fit_epoch_end's time goes: each step it takes, alone, on the
 * same trainer (the entries listed, checked and framed as one record with
 * its CRC, warm and right after a write), beside the whole callback and
 * the floor timed with it (one pwrite(2) of the record). The flat map's JSON,
 * which the sender's thread writes when it reads the epoch back, is timed too,
 * for comparison. */
static void bench_breakdown(bench_trainer *b, bench_stats def,
                            bench_stats whole, bench_stats wr,
                            bench_floor *fl) {
  enum { N = BENCH_CALLS };
  double *us = malloc(N * sizeof *us);
  char json[2048];
  unsigned char rec[4096];
  bool dropped = false;
  size_t jlen = 0, rlen = 0;
  for (size_t i = 0; i < N; i++) {
    b->t.epoch = (int)i + 1;
    double t0 = bench_now_us();
    jlen = hub_callbacks_metrics_json(&b->t, json, sizeof json, &dropped);
    us[i] = bench_now_us() - t0;
  }
  bench_stats js = bench_summarise(us, N);
  flat_item items[16];
  for (size_t i = 0; i < N; i++) {
    double t0 = bench_now_us();
    size_t n = bench_items(b, items);
    rlen = spool_record_frame_items(rec, (int)i, items, n, &dropped);
    us[i] = bench_now_us() - t0;
  }
  bench_stats fr = bench_summarise(us, N);
  /* The same right after a pwrite(2), as in the callback (after the
   * previous epoch's): on a kernel that isolates its page tables without
   * PCID each system call empties the TLB, and the write's own work in the
   * kernel evicts caches. */
  for (size_t i = 0; i < N; i++) {
    ssize_t w = pwrite(fl->fd, fl->rec, fl->len, fl->off);
    fl->off += w > 0 ? w : 0;
    double t0 = bench_now_us();
    size_t n = bench_items(b, items);
    rlen = spool_record_frame_items(rec, (int)i, items, n, &dropped);
    us[i] = bench_now_us() - t0;
  }
  bench_stats frc = bench_summarise(us, N);
  for (size_t i = 0; i < N; i++) {
    double t0 = bench_now_us();
    (void)getppid(); /* a system call that does nothing */
    us[i] = bench_now_us() - t0;
  }
  bench_stats sc = bench_summarise(us, N);
  free(us);
  printf("where on_fit_epoch_end's time goes (%zu-byte record; the same "
         "epoch as JSON is %zu bytes):\n",
         rlen, jlen);
  bench_print("  the entries checked and framed, CRC-32", fr);
  bench_print("  the same, right after a pwrite(2)", frc);
  bench_print("  one pwrite(2) of the record after each call (floor)", wr);
  bench_print("  the whole callback (hub slow, rate limits 0)", whole);
  bench_print("  for scale: getppid(2), a system call doing nothing", sc);
  bench_print("  for scale: the flat map as JSON (sender's thread)", js);
  /* The target holds for both ways a trainer runs: the slower decides. */
  double worst = def.median > whole.median ? def.median : whole.median;
  printf("median ratio whole callback / the pwrite timed with it: %.2fx; "
         "target: on_fit_epoch_end <= 2 us median (default rate limits %.2f "
         "us, rate limits 0 %.2f us): %s\n",
         whole.median / wr.median, def.median, whole.median,
         worst <= 2.0 ? "met" : "NOT met");
}

/* A port that refuses connections: bound, then closed. */
static int bench_refused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  return ntohs(a.sin_port);
}

/* A listener that never accepts: connections complete in the backlog and
 * no answer ever comes. Returns the fd (kept open) and the port. */
static int bench_silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  listen(fd, 4096);
  getsockname(fd, (struct sockaddr *)&a, &al);
  *port = ntohs(a.sin_port);
  return fd;
}

static void bench_env(char *root, size_t len) {
  snprintf(root, len, "/tmp/chub-bench-XXXXXX");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    exit(1);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/config", root);
  setenv("CHUB_CONFIG_DIR", path, 1);
  snprintf(path, sizeof path, "%s/runs", root);
  setenv("CHUB_RUNS_DIR", path, 1);
  setenv("CHUB_TESTING", "1", 1);
  setenv("CHUB_API_KEY", "benchkey0123456789benchkey0123456789abcdef", 1);
}

static void bench_rates(const char *metrics, const char *ckpt) {
  char err[128];
  chub_settings_set("rate_limit_metrics", metrics, err, sizeof err);
  chub_settings_set("rate_limit_ckpt", ckpt, err, sizeof err);
}

/* One chub run against a hub that goes slow (`down` false) or away: each
 * call's time into fit[BENCH_CALLS] and save[BENCH_CALLS]; the floor, when
 * given, is timed along with on_fit_epoch_end. */
static void bench_chub(const char *dir, bool down, double *fit, double *save,
                       bench_floor *fl) {
  fakehub *srv = fakehub_start();
  setenv("CHUB_API_ROOT", fakehub_url(srv), 1);
  chub_callbacks *cb = chub_callbacks_new();
  chub_add_integration_callbacks(cb);
  bench_trainer b;
  bench_trainer_init(&b, dir);
  chub_callbacks_run(cb, CHUB_ON_PRETRAIN_ROUTINE_START, &b.t);
  if (!b.t.hub_session || !chub_session_model_id(b.t.hub_session)) {
    fprintf(stderr, "bench: no online session\n");
    exit(1);
  }
  chub_callbacks_run(cb, CHUB_ON_PRETRAIN_ROUTINE_END, &b.t);
  if (down) {
    fakehub_stop(srv);
    srv = NULL;
  } else {
    for (int i = 0; i < 200; i++)
      fakehub_script(srv, "POST",
                     (fakehub_reply){.delay_ms = 600000, .retry_after = -1});
  }
  bench_event(cb, &b, CHUB_ON_FIT_EPOCH_END, 0, BENCH_CALLS, fl, fit);
  bench_event(cb, &b, CHUB_ON_MODEL_SAVE, 0, BENCH_CALLS, NULL, save);
  chub_session_close(b.t.hub_session);
  b.t.hub_session = NULL;
  chub_callbacks_free(cb);
  fakehub_stop(srv);
}

int main(void) {
  char root[64];
  bench_env(root, sizeof root);
  chub_set_log(bench_quiet_log, NULL, CHUB_LOG_ERROR);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("HUB callbacks on the training thread (%d calls a session; the "
         "slow-hub sessions %d times each, taking turns)\n",
         BENCH_CALLS, BENCH_ROUNDS);
  size_t all = (size_t)BENCH_ROUNDS * BENCH_CALLS;
  double *us[6]; /* fit and save: default limits, limits 0, hub down */
  for (int i = 0; i < 6; i++)
    if (!(us[i] = malloc(all * sizeof *us[i]))) {
      perror("bench");
      return 1;
    }
  bench_trainer b;
  bench_trainer_init(&b, root);
  bench_floor fl;
  bench_floor_open(&fl, root, &b);
  double *floor_us = fl.us;
  for (size_t r = 0, at = 0; r < BENCH_ROUNDS; r++, at += BENCH_CALLS) {
    bench_rates("3", "900");
    bench_chub(root, false, us[0] + at, us[1] + at, NULL);
    bench_rates("0", "0");
    fl.us = floor_us + at;
    bench_chub(root, false, us[2] + at, us[3] + at, &fl);
  }
  fl.us = floor_us;
  bench_chub(root, true, us[4], us[5], NULL);
  bench_stats fit_def = bench_summarise(us[0], all);
  bench_stats save_def = bench_summarise(us[1], all);
  bench_stats fit_slow = bench_summarise(us[2], all);
  bench_stats save_slow = bench_summarise(us[3], all);
  bench_stats floor = bench_summarise(fl.us, all);
  bench_stats fit_down = bench_summarise(us[4], BENCH_CALLS);
  bench_stats save_down = bench_summarise(us[5], BENCH_CALLS);
  for (int i = 0; i < 6; i++)
    free(us[i]);
  bench_print("chub on_fit_epoch_end, hub slow, default rate limits", fit_def);
  bench_print("chub on_model_save,    hub slow, default rate limits", save_def);
  printf("rate limits 0 (every call spools and wakes the sender):\n");
  bench_print("chub on_fit_epoch_end, hub slow (never answers)", fit_slow);
  bench_print("chub on_model_save,    hub slow (never answers)", save_slow);
  bench_print("chub on_fit_epoch_end, hub down (refused)", fit_down);
  bench_print("chub on_model_save,    hub down (refused)", save_down);

  int slow_port = 0;
  int silent = bench_silent_listener(&slow_port);
  char slow[64], down[64];
  snprintf(slow, sizeof slow, "http://127.0.0.1:%d", slow_port);
  snprintf(down, sizeof down, "http://127.0.0.1:%d", bench_refused_port());
  bench_stats ref_slow = bench_reference(slow, &b, 50, false);
  bench_stats ref_down = bench_reference(down, &b, 2000, false);
  bench_stats ref_spawn = bench_reference(down, &b, 2000, true);
  close(silent);
  bench_breakdown(&b, fit_def, fit_slow, floor, &fl);
  close(fl.fd);
  free(fl.us);
  bench_print("reference: blocking POST per epoch (100 ms timeout), slow",
              ref_slow);
  bench_print("reference: blocking POST per epoch, down", ref_down);
  bench_print("reference: thread spawned per request, down", ref_spawn);
  printf("median ratio reference/chub on_fit_epoch_end: slow %.0fx, down "
         "%.0fx, thread-per-request %.1fx\n",
         ref_slow.median / fit_slow.median, ref_down.median / fit_down.median,
         ref_spawn.median / fit_down.median);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0)
    fprintf(stderr, "bench: could not remove %s\n", root);
  curl_global_cleanup();
  return 0;
}

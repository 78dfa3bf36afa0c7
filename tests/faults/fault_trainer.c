/*
 * fault_trainer.c - a training loop with no learning in it, for the fault
 * scenarios: it runs libchub's HUB callbacks exactly as a real trainer
 * would, with synthetic metrics (fault_data.h) and checkpoint files of a
 * chosen size, and can kill itself with SIGKILL at a chosen epoch.
 *
 *   chub_fault_trainer --dir DIR [--model M] [--epochs N] [--start E]
 *       [--kill-at E] [--kill-phase fit|save] [--sleep-ms S]
 *       [--ckpt-bytes B] [--best-bytes B] [--rewrite-ms M] [--info FILE]
 *
 * --model is a local file name (a new model) or a model URL (resume).
 * Epochs start..N-1 run; each writes DIR/last.pt in place (truncate, then
 * the bytes in 16 slices spread over --rewrite-ms, as a slow torch.save
 * would), then fires on_fit_epoch_end and on_model_save. At the end best.pt
 * (--best-bytes) is written and on_train_end runs the final sync.
 * --kill-at E sends SIGKILL to itself right after epoch E's
 * on_fit_epoch_end (phase fit) or on_model_save (phase save) returned.
 * --info FILE receives `model_id`, `run_id`, `rss_start_kb` and, at the
 * end, `rss_max_kb` lines (rewritten atomically each time).
 * Exit status: 0 when the final sync reported success, 3 when it did not
 * (the run stays spooled), 2 on a usage or local error.
 */
#include "chub.h"
#include "fault_data.h"
#include "th_log.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct fault_trainer_opts {
  const char *dir, *model, *info, *kill_phase;
  int epochs, start, kill_at;
  long sleep_ms, rewrite_ms;
  long long ckpt_bytes, best_bytes;
} fault_trainer_opts;

/* Whether this binary runs under a sanitizer, whose shadow memory makes
 * resident size meaningless as a bound. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_TRAINER_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FAULT_TRAINER_SANITIZED 1
#endif
#endif
#ifndef FAULT_TRAINER_SANITIZED
#define FAULT_TRAINER_SANITIZED 0
#endif

/* What the final sync answered, seen in the log (th_log's hook; every
 * line is also echoed to stderr for the scenario's children.log). */
static int fault_trainer_final_ok;

static void fault_trainer_log(chub_log_level level, const char *line,
                              void *user) {
  (void)user;
  if (level == CHUB_LOG_INFO && strcmp(line, "Done") == 0)
    fault_trainer_final_ok = 1;
}

static void fault_trainer_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (ms > 0 && nanosleep(&ts, &ts) != 0) {
  }
}

static long fault_trainer_rss_kb(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* The session's ids, kept after on_train_end closed the session. */
static char fault_trainer_model_id[64] = "-", fault_trainer_run_id[256] = "-";

static void fault_trainer_info(const fault_trainer_opts *o, chub_session *s,
                               long rss_start, long rss_max) {
  if (!o->info)
    return;
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s.tmp", o->info);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return;
  const char *id = s ? chub_session_model_id(s) : NULL;
  const char *run = s ? chub_session_run_id(s) : NULL;
  if (id)
    snprintf(fault_trainer_model_id, sizeof fault_trainer_model_id, "%s", id);
  if (run)
    snprintf(fault_trainer_run_id, sizeof fault_trainer_run_id, "%s", run);
  fprintf(f, "model_id %s\nrun_id %s\nrss_start_kb %ld\n",
          fault_trainer_model_id, fault_trainer_run_id, rss_start);
  if (rss_max >= 0)
    fprintf(f, "rss_max_kb %ld\n", rss_max);
  fprintf(f, "sanitized %d\n", FAULT_TRAINER_SANITIZED);
  if (fclose(f) == 0)
    rename(tmp, o->info);
}

/* Writes `bytes` of the stream `seed` to path in place: truncate, then 16
 * slices spread over rewrite_ms, so an upload can overlap the rewrite. */
static int fault_trainer_write(const char *path, uint64_t seed, long long bytes,
                               long rewrite_ms) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    perror(path);
    return -1;
  }
  static unsigned char chunk[1 << 16];
  long long slice = (bytes + 15) / 16;
  long long off = 0;
  for (int s = 0; s < 16 && off < bytes; s++) {
    long long end = off + slice < bytes ? off + slice : bytes;
    while (off < end) {
      size_t n = (size_t)(end - off < (long long)sizeof chunk
                              ? end - off
                              : (long long)sizeof chunk);
      fault_data_fill(chunk, n, seed, (uint64_t)off);
      if (write(fd, chunk, n) != (ssize_t)n) {
        perror(path);
        close(fd);
        return -1;
      }
      off += (long long)n;
    }
    if (rewrite_ms > 0)
      fault_trainer_sleep_ms(rewrite_ms / 16);
  }
  return close(fd);
}

static int fault_trainer_usage(void) {
  fprintf(stderr,
          "usage: chub_fault_trainer --dir DIR [--model M] [--epochs N] "
          "[--start E]\n  [--kill-at E] [--kill-phase fit|save] [--sleep-ms "
          "S] [--ckpt-bytes B]\n  [--best-bytes B] [--rewrite-ms M] [--info "
          "FILE]\n");
  return 2;
}

static int fault_trainer_parse(int argc, char **argv, fault_trainer_opts *o) {
  *o = (fault_trainer_opts){.model = "faults.pt",
                            .kill_phase = "fit",
                            .epochs = 10,
                            .kill_at = -1,
                            .ckpt_bytes = 65536,
                            .best_bytes = 65536};
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--dir"))
      o->dir = v;
    else if (!strcmp(a, "--model"))
      o->model = v;
    else if (!strcmp(a, "--info"))
      o->info = v;
    else if (!strcmp(a, "--kill-phase"))
      o->kill_phase = v;
    else if (!strcmp(a, "--epochs"))
      o->epochs = atoi(v);
    else if (!strcmp(a, "--start"))
      o->start = atoi(v);
    else if (!strcmp(a, "--kill-at"))
      o->kill_at = atoi(v);
    else if (!strcmp(a, "--sleep-ms"))
      o->sleep_ms = atol(v);
    else if (!strcmp(a, "--rewrite-ms"))
      o->rewrite_ms = atol(v);
    else if (!strcmp(a, "--ckpt-bytes"))
      o->ckpt_bytes = atoll(v);
    else if (!strcmp(a, "--best-bytes"))
      o->best_bytes = atoll(v);
    else
      return -1;
  }
  return argc % 2 == 1 && o->dir && o->epochs > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  fault_trainer_opts o;
  if (fault_trainer_parse(argc, argv, &o) != 0)
    return fault_trainer_usage();
  th_log_set_echo(true);
  th_log_set_hook(fault_trainer_log, NULL);
  th_log_install(CHUB_LOG_INFO);
  char last[1024], best[1024];
  snprintf(last, sizeof last, "%s/last.pt", o.dir);
  snprintf(best, sizeof best, "%s/best.pt", o.dir);

  chub_callbacks *cb = chub_callbacks_new();
  if (!cb || chub_add_integration_callbacks(cb) != CHUB_OK) {
    fprintf(stderr, "fault_trainer: the HUB callbacks are not enabled\n");
    return 2;
  }
  chub_trainer t = {0};
  t.args = (chub_args){.model = o.model,
                       .data = "synthetic",
                       .epochs = o.epochs,
                       .batch = 16,
                       .imgsz = 32,
                       .patience = 100,
                       .device = "cpu",
                       .task = "classify",
                       .mode = "train"};
  t.start_epoch = o.start;
  t.last = last;
  t.best = best;
  t.model_parameters = 123456;
  t.model_gflops = 0.5;
  t.model_speed_ms = 1.25;

  chub_callbacks_run(cb, CHUB_ON_PRETRAIN_ROUTINE_START, &t);
  long rss_start = fault_trainer_rss_kb();
  fault_trainer_info(&o, t.hub_session, rss_start, -1);
  chub_callbacks_run(cb, CHUB_ON_PRETRAIN_ROUTINE_END, &t);
  chub_callbacks_run(cb, CHUB_ON_TRAIN_START, &t);
  /* outlive the loop: on_train_end reads the last epoch's metrics */
  chub_metric tloss[] = {{"loss", 0}};
  chub_metric metrics[] = {{"metrics/accuracy_top1", 0},
                           {"metrics/mAP50-95(B)", 0}};
  for (int e = o.start; e < o.epochs; e++) {
    t.epoch = e;
    chub_callbacks_run(cb, CHUB_ON_TRAIN_EPOCH_START, &t);
    tloss[0].value = fault_data_loss(e);
    metrics[0].value = fault_data_top1(e);
    metrics[1].value = fault_data_map(e);
    t.tloss = tloss;
    t.n_tloss = 1;
    t.metrics = metrics;
    t.n_metrics = 2;
    t.fitness = fault_data_top1(e);
    t.best_fitness = t.fitness;
    if (fault_trainer_write(last, fault_data_seed_last(e), o.ckpt_bytes,
                            o.rewrite_ms) != 0)
      return 2;
    chub_callbacks_run(cb, CHUB_ON_TRAIN_EPOCH_END, &t);
    chub_callbacks_run(cb, CHUB_ON_FIT_EPOCH_END, &t);
    if (e == o.kill_at && !strcmp(o.kill_phase, "fit"))
      kill(getpid(), SIGKILL);
    chub_callbacks_run(cb, CHUB_ON_MODEL_SAVE, &t);
    if (e == o.kill_at)
      kill(getpid(), SIGKILL);
    fault_trainer_sleep_ms(o.sleep_ms);
  }
  if (fault_trainer_write(best, fault_data_seed_best(o.epochs), o.best_bytes,
                          0) != 0)
    return 2;
  t.epoch = o.epochs - 1; /* a resume with nothing left still ends there */
  chub_session *s = t.hub_session;
  fault_trainer_info(&o, s, rss_start, -1);
  chub_callbacks_run(cb, CHUB_ON_TRAIN_END, &t);
  fault_trainer_info(&o, NULL, rss_start, fault_trainer_rss_kb());
  chub_callbacks_free(cb);
  return fault_trainer_final_ok ? 0 : 3;
}

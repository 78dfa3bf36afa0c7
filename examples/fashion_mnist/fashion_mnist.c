/*
 * fashion_mnist.c - a complete trainer in plain C that reports to a hub
 * through chub: an MLP on Fashion-MNIST, trained with Adam on minibatches.
 *
 * It is written the way a user would wire chub into their own loop: one
 * callback registry with chub_add_integration_callbacks(), one chub_trainer
 * whose fields are filled before each event, and chub_callbacks_run() at the
 * same points as Ultralytics' trainer (pretrain routine, train start, each
 * epoch's batches, validation, model save, fit epoch end, train end,
 * teardown). Everything hub-related happens inside those callbacks; the only
 * other use of chub is reading the session's resume URL and train args when
 * --model names a hub model.
 */
#include "fetch.h"
#include "idx.h"
#include "mlp.h"
#include "options.h"
#include "weights.h"

#include <chub.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FASHION_MNIST_EVAL_BATCH 500

/* Everything one training run holds. */
typedef struct fashion_mnist_run {
  options opt;
  idx_set train, test;
  mlp net;
  mlp_work work, eval_work;
  chub_callbacks *cb;
  chub_trainer trainer;
  chub_validator validator;
  char arch[64];
  char last_path[4096], best_path[4096];
  bool have_best_file;
  size_t *order; /* this epoch's shuffled training order */
  chub_metric tloss[1];
  chub_metric metrics[3];
  double started; /* monotonic seconds at on_train_start */
} fashion_mnist_run;

static double fashion_mnist_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* mkdir -p, so --out may name a directory that does not exist yet. */
static int fashion_mnist_mkdirs(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Copies `n` images, scaled to [0, 1], into the network's input rows. */
static void fashion_mnist_fill(const idx_set *set, const size_t *order,
                               size_t first, int n, float *x,
                               unsigned char *labels) {
  size_t px = set->rows * set->cols;
  for (int r = 0; r < n; r++) {
    size_t i = order ? order[first + (size_t)r] : first + (size_t)r;
    const unsigned char *src = set->pixels + i * px;
    float *dst = x + (size_t)r * px;
    for (size_t k = 0; k < px; k++)
      dst[k] = (float)src[k] * (1.0f / 255.0f);
    labels[r] = set->labels[i];
  }
}

/* Fisher-Yates with a per-epoch seed, so a resumed run shuffles epoch N
 * the same way an uninterrupted one would. */
static void fashion_mnist_shuffle(size_t *order, size_t n, uint64_t seed,
                                  int epoch) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch + 1;
  for (size_t i = 0; i < n; i++)
    order[i] = i;
  for (size_t i = n; i > 1; i--) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
    size_t j = (size_t)(s % i);
    size_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}

/* One pass over the training set; returns the mean training loss. */
static double fashion_mnist_train_epoch(fashion_mnist_run *run) {
  chub_trainer *t = &run->trainer;
  unsigned char labels[8192];
  size_t n_train = run->train.count;
  fashion_mnist_shuffle(run->order, n_train, run->opt.seed, t->epoch);
  double loss_sum = 0;
  int batch = run->opt.batch;
  for (size_t first = 0; first < n_train; first += (size_t)batch) {
    size_t left = n_train - first;
    int n = left < (size_t)batch ? (int)left : batch;
    chub_callbacks_run(run->cb, CHUB_ON_TRAIN_BATCH_START, t);
    fashion_mnist_fill(&run->train, run->order, first, n, run->work.act[0],
                       labels);
    mlp_forward(&run->net, &run->work, n);
    int top1, top5;
    loss_sum += mlp_loss(&run->net, &run->work, n, labels, &top1, &top5) * n;
    mlp_train_step(&run->net, &run->work, n, labels, run->opt.lr);
    chub_callbacks_run(run->cb, CHUB_ON_TRAIN_BATCH_END, t);
  }
  return loss_sum / (double)n_train;
}

/* Runs the validator over the whole test set. */
static void fashion_mnist_validate(fashion_mnist_run *run, double *loss,
                                   double *top1, double *top5,
                                   double *ms_per_image) {
  unsigned char labels[FASHION_MNIST_EVAL_BATCH];
  chub_callbacks_run(run->cb, CHUB_ON_VAL_START, &run->validator);
  double loss_sum = 0, started = fashion_mnist_now();
  long hit1 = 0, hit5 = 0;
  size_t n_test = run->test.count;
  for (size_t first = 0; first < n_test; first += FASHION_MNIST_EVAL_BATCH) {
    int n = (int)(n_test - first < FASHION_MNIST_EVAL_BATCH
                      ? n_test - first
                      : FASHION_MNIST_EVAL_BATCH);
    fashion_mnist_fill(&run->test, NULL, first, n, run->eval_work.act[0],
                       labels);
    mlp_forward(&run->net, &run->eval_work, n);
    int h1, h5;
    loss_sum += mlp_loss(&run->net, &run->eval_work, n, labels, &h1, &h5) * n;
    hit1 += h1;
    hit5 += h5;
  }
  *ms_per_image = (fashion_mnist_now() - started) * 1000.0 / (double)n_test;
  *loss = loss_sum / (double)n_test;
  *top1 = (double)hit1 / (double)n_test;
  *top5 = (double)hit5 / (double)n_test;
  chub_callbacks_run(run->cb, CHUB_ON_VAL_END, &run->validator);
}

/* Writes last.bin, and best.bin when this epoch is the best so far. */
static int fashion_mnist_save(fashion_mnist_run *run, bool is_best) {
  char err[512];
  weights_meta meta = {run->trainer.epoch, run->trainer.fitness,
                       run->trainer.best_fitness};
  if (weights_save(run->last_path, &run->net, &meta, err, sizeof err) != 0 ||
      (is_best &&
       weights_save(run->best_path, &run->net, &meta, err, sizeof err) != 0)) {
    fprintf(stderr, "fashion_mnist: %s\n", err);
    return -1;
  }
  if (is_best)
    run->have_best_file = true;
  return 0;
}

static int fashion_mnist_epoch(fashion_mnist_run *run) {
  chub_trainer *t = &run->trainer;
  double started = fashion_mnist_now();
  chub_callbacks_run(run->cb, CHUB_ON_TRAIN_EPOCH_START, t);
  double train_loss = fashion_mnist_train_epoch(run);
  double train_s = fashion_mnist_now() - started;
  run->tloss[0] = (chub_metric){"loss", train_loss};
  t->tloss = run->tloss;
  t->n_tloss = 1;
  chub_callbacks_run(run->cb, CHUB_ON_TRAIN_EPOCH_END, t);

  double val_loss, top1, top5, ms;
  fashion_mnist_validate(run, &val_loss, &top1, &top5, &ms);
  run->metrics[0] = (chub_metric){"metrics/accuracy_top1", top1};
  run->metrics[1] = (chub_metric){"metrics/accuracy_top5", top5};
  run->metrics[2] = (chub_metric){"val/loss", val_loss};
  t->metrics = run->metrics;
  t->n_metrics = 3;
  t->model_speed_ms = ms;
  t->fitness = top1;
  /* best_fitness is what best.bin holds, so chub's is_best test
   * (best_fitness == fitness) agrees with the file just written. */
  bool is_best = !run->have_best_file || top1 >= t->best_fitness;
  if (is_best)
    t->best_fitness = top1;

  /* Ultralytics saves, runs on_model_save, then on_fit_epoch_end. */
  if (fashion_mnist_save(run, is_best) != 0)
    return -1;
  chub_callbacks_run(run->cb, CHUB_ON_MODEL_SAVE, t);
  t->train_hours = (fashion_mnist_now() - run->started) / 3600.0;
  chub_callbacks_run(run->cb, CHUB_ON_FIT_EPOCH_END, t);

  double secs = fashion_mnist_now() - started;
  printf("epoch %3d/%d  train_loss %.4f  val_loss %.4f  top1 %6.2f%%  "
         "top5 %6.2f%%  %7.0f img/s  %5.1f s\n",
         t->epoch + 1, t->args.epochs, train_loss, val_loss, top1 * 100.0,
         top5 * 100.0, (double)run->train.count / train_s, secs);
  fflush(stdout);
  return 0;
}

/* Sets up the network for a hub model URL: the hub's epochs and batch
 * (unless given as flags), then its last weights when it has them. */
static int fashion_mnist_from_hub(fashion_mnist_run *run) {
  chub_trainer *t = &run->trainer;
  chub_session *s = t->hub_session;
  if (!s) {
    fprintf(stderr,
            "fashion_mnist: cannot use hub model %s: no hub session (is an "
            "API key set, the hub reachable and setting hub=true?)\n",
            run->opt.model);
    return -1;
  }
  const chub_args *hub_args = chub_session_train_args(s);
  if (hub_args) {
    if (!run->opt.epochs_set && hub_args->epochs > 0)
      run->opt.epochs = hub_args->epochs;
    if (!run->opt.batch_set && hub_args->batch > 0 && hub_args->batch <= 8192)
      run->opt.batch = hub_args->batch;
  }
  t->args.epochs = run->opt.epochs;
  t->args.batch = run->opt.batch;
  t->args.patience = run->opt.epochs;
  run->validator.args = t->args;
  run->validator.args.mode = "val";

  const char *url = chub_session_resume_url(s);
  if (!url) {
    int sizes[MLP_MAX_LAYERS + 1];
    int n = mlp_arch("mlp.cfg", sizes);
    printf("fashion_mnist: hub model has no weights to resume; training "
           "mlp.cfg from scratch\n");
    snprintf(run->arch, sizeof run->arch, "mlp.cfg");
    return mlp_init(&run->net, n, sizes, run->opt.seed);
  }
  char path[4096], err[1024];
  weights_meta meta;
  snprintf(path, sizeof path, "%s/resume.bin", run->opt.out);
  /* The hub's resume URL is a signed download URL: it needs no key. */
  if (fetch_file(url, path, err, sizeof err) != 0 ||
      weights_load(path, &run->net, &meta, err, sizeof err) != 0) {
    fprintf(stderr, "fashion_mnist: %s\n", err);
    return -1;
  }
  if (run->net.sizes[0] != 784 || run->net.sizes[run->net.n_layers] != 10) {
    fprintf(stderr,
            "fashion_mnist: %s holds a network for %d inputs and %d classes, "
            "not Fashion-MNIST's 784 and 10\n",
            url, run->net.sizes[0], run->net.sizes[run->net.n_layers]);
    return -1;
  }
  snprintf(run->arch, sizeof run->arch, "resumed");
  t->start_epoch = meta.epoch + 1;
  t->best_fitness = meta.best_fitness;
  printf("fashion_mnist: resuming %s from epoch %d (best top1 %.2f%%)\n",
         run->opt.model, t->start_epoch + 1, meta.best_fitness * 100.0);
  return 0;
}

static void fashion_mnist_describe(const fashion_mnist_run *run) {
  char sizes[128] = "";
  size_t used = 0;
  for (int l = 0; l <= run->net.n_layers && used < sizeof sizes; l++)
    used += (size_t)snprintf(sizes + used, sizeof sizes - used, "%s%d",
                             l ? "-" : "", run->net.sizes[l]);
  printf("fashion_mnist: %zu training / %zu test images; %s %s, %zu "
         "parameters; %d epochs, batch %d, Adam lr %g; weights in %s\n",
         run->train.count, run->test.count, run->arch, sizes, run->net.n_params,
         run->opt.epochs, run->opt.batch, run->opt.lr, run->opt.out);
  fflush(stdout);
}

/* Loads both sets; exits the program with status 2 when one is missing or
 * damaged, since no training can happen without them. */
static int fashion_mnist_load_data(fashion_mnist_run *run) {
  char err[4096 + 256];
  if (idx_load(run->opt.data_dir, "train", (size_t)run->opt.limit, &run->train,
               err, sizeof err) != 0 ||
      idx_load(run->opt.data_dir, "t10k", 0, &run->test, err, sizeof err) !=
          0) {
    fprintf(stderr, "fashion_mnist: %s\n", err);
    return -1;
  }
  run->order = malloc(run->train.count * sizeof *run->order);
  if (!run->order) {
    fprintf(stderr, "fashion_mnist: out of memory for %zu images\n",
            run->train.count);
    return -1;
  }
  return 0;
}

/* Frees the run and everything it holds. A session still open here (the
 * run failed before on_train_end) is closed, leaving its spool for
 * `chub sync`. */
static void fashion_mnist_free(fashion_mnist_run *run) {
  chub_session_close(run->trainer.hub_session);
  if (run->cb)
    chub_callbacks_free(run->cb);
  mlp_work_free(&run->work);
  mlp_work_free(&run->eval_work);
  mlp_free(&run->net);
  idx_free(&run->train);
  idx_free(&run->test);
  free(run->order);
  free(run);
}

/* From the pretrain routine to teardown; returns the exit status. */
static int fashion_mnist_train(fashion_mnist_run *run) {
  chub_trainer *t = &run->trainer;
  chub_callbacks_run(run->cb, CHUB_ON_PRETRAIN_ROUTINE_START, t);
  if (options_is_url(run->opt.model)) {
    if (fashion_mnist_from_hub(run) != 0)
      return 1;
  } else {
    int sizes[MLP_MAX_LAYERS + 1];
    int n = mlp_arch(run->opt.model, sizes);
    snprintf(run->arch, sizeof run->arch, "%s", run->opt.model);
    if (mlp_init(&run->net, n, sizes, run->opt.seed) != 0) {
      fprintf(stderr, "fashion_mnist: out of memory for the network\n");
      return 1;
    }
  }
  if (mlp_work_init(&run->work, &run->net, run->opt.batch) != 0 ||
      mlp_work_init(&run->eval_work, &run->net, FASHION_MNIST_EVAL_BATCH) !=
          0) {
    fprintf(stderr, "fashion_mnist: out of memory for batch %d\n",
            run->opt.batch);
    return 1;
  }
  t->model_parameters = (long long)run->net.n_params;
  t->model_gflops = 2.0 * (double)mlp_macs(&run->net) / 1e9;
  fashion_mnist_describe(run);
  chub_callbacks_run(run->cb, CHUB_ON_PRETRAIN_ROUTINE_END, t);

  run->started = fashion_mnist_now();
  chub_callbacks_run(run->cb, CHUB_ON_TRAIN_START, t);
  int status = 0;
  for (t->epoch = t->start_epoch; t->epoch < t->args.epochs; t->epoch++) {
    if (fashion_mnist_epoch(run) != 0) {
      status = 1;
      break;
    }
  }
  if (t->start_epoch >= t->args.epochs)
    printf("fashion_mnist: the model already has %d of %d epochs; nothing "
           "to train (pass --epochs N to train further)\n",
           t->start_epoch, t->args.epochs);
  if (t->epoch > t->start_epoch)
    t->epoch--; /* on_train_end reports the last epoch that ran */
  t->train_hours = (fashion_mnist_now() - run->started) / 3600.0;
  if (status == 0 && run->have_best_file)
    chub_callbacks_run(run->cb, CHUB_ON_TRAIN_END, t);
  chub_callbacks_run(run->cb, CHUB_TEARDOWN, t);
  if (status == 0)
    printf("fashion_mnist: best top1 %.2f%%; weights %s, %s\n",
           t->best_fitness * 100.0, run->last_path, run->best_path);
  return status;
}

int main(int argc, char **argv) {
  /* Heap, not stack: the run holds two 4 KiB paths and more. */
  fashion_mnist_run *run = calloc(1, sizeof *run);
  if (!run) {
    fprintf(stderr, "fashion_mnist: out of memory\n");
    return 1;
  }
  if (options_parse(&run->opt, argc, argv, stderr) != 0) {
    fprintf(stderr, "\n");
    options_usage(stderr, argv[0]);
    fashion_mnist_free(run);
    return 2;
  }
  if (run->opt.help) {
    options_usage(stdout, argv[0]);
    fashion_mnist_free(run);
    return 0;
  }
  if (fashion_mnist_mkdirs(run->opt.out) != 0) {
    fprintf(stderr, "fashion_mnist: cannot create --out %s: %s\n", run->opt.out,
            strerror(errno));
    fashion_mnist_free(run);
    return 2;
  }
  snprintf(run->last_path, sizeof run->last_path, "%s/last.bin", run->opt.out);
  snprintf(run->best_path, sizeof run->best_path, "%s/best.bin", run->opt.out);
  if (fashion_mnist_load_data(run) != 0) {
    fashion_mnist_free(run);
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);

  run->cb = chub_callbacks_new();
  if (!run->cb) {
    fprintf(stderr, "fashion_mnist: out of memory\n");
    fashion_mnist_free(run);
    return 1;
  }
  chub_code rc = chub_add_integration_callbacks(run->cb);
  if (rc == CHUB_EDISABLED)
    printf("fashion_mnist: hub reporting is off (setting hub=false); "
           "training locally\n");
  else if (rc != CHUB_OK)
    fprintf(stderr, "fashion_mnist: cannot add the HUB callbacks: %s\n",
            chub_strerror(rc));

  chub_args args = {.model = run->opt.model,
                    .data = "fashion-mnist",
                    .epochs = run->opt.epochs,
                    .batch = run->opt.batch,
                    .imgsz = 28,
                    .patience = run->opt.epochs,
                    .device = "cpu",
                    .cache = "ram",
                    .task = "classify",
                    .mode = "train"};
  run->trainer.args = args;
  run->trainer.last = run->last_path;
  run->trainer.best = run->best_path;
  run->validator.args = args;
  run->validator.args.mode = "val";
  run->validator.training = true;

  int status = fashion_mnist_train(run);
  fashion_mnist_free(run);
  curl_global_cleanup();
  return status;
}

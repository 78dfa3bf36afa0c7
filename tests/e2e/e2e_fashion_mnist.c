/*
 * e2e_fashion_mnist.c - the example trainer against the real chubd.
 *
 * What a user of `make demo` relies on, checked through the hub's API after
 * a real training run: every epoch's metrics arrived under the right names,
 * checkpoints were uploaded, the final weights on the hub are byte for byte
 * the local best.bin, the model is `trained`, and the agent's heartbeat was
 * recorded. Also resuming a hub model from its last weights, a run with the
 * hub down delivered later by `chub sync`, and the trainer's answers to a
 * bad flag and a missing or corrupt dataset.
 *
 * The trainer runs as a child process with its own temporary settings,
 * runs and output directories, so the user's own settings are never read.
 */
#include "chubd_proc.h"
#include "th.h"

#include <chub.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define E2E_TRAIN_TIMEOUT_S 180 /* a sanitized build trains ~10x slower */

/* One chubd and one set of temporary directories for the whole file. */
typedef struct e2e {
  chubd_proc *hub;
  char tmp[256];    /* parent of everything below */
  char config[300]; /* CHUB_CONFIG_DIR */
  char runs[300];   /* CHUB_RUNS_DIR */
} e2e;

/* Runs program `bin` with `args` and the test environment (plus
 * `extra_env`, NULL-terminated "K=V" strings applied last, or NULL). Output
 * (stdout and stderr) is returned in *output (malloc'd). Returns the exit
 * status, or -1 when it could not run, died of a signal or outlived
 * E2E_TRAIN_TIMEOUT_S. */
static int e2e_run(const e2e *t, const char *bin, const char *const args[],
                   const char *const extra_env[], char **output) {
  char out_path[400];
  snprintf(out_path, sizeof out_path, "%s/trainer.out", t->tmp);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
      _exit(126);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    setenv("CHUB_TESTING", "1", 1);
    setenv("CHUB_CONFIG_DIR", t->config, 1);
    setenv("CHUB_RUNS_DIR", t->runs, 1);
    setenv("CHUB_API_ROOT", chubd_proc_base_url(t->hub), 1);
    setenv("CHUB_API_KEY", chubd_proc_key(t->hub), 1);
    unsetenv("CHUB_WEB_ROOT");
    unsetenv("CHUB_MODE");
    unsetenv("CHUB_HUB");
    unsetenv("FASHION_MNIST_DIR");
    for (size_t i = 0; extra_env && extra_env[i]; i++)
      putenv((char *)extra_env[i]);
    const char *argv[32] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  int wstatus = 0, done = 0;
  for (int i = 0; i < E2E_TRAIN_TIMEOUT_S * 10 && !done; i++) {
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid)
      done = 1;
    else
      nanosleep(&(struct timespec){0, 100000000L}, NULL);
  }
  if (!done) {
    fprintf(stderr, "e2e: %s still running after %d s; killing it\n", bin,
            E2E_TRAIN_TIMEOUT_S);
    kill(pid, SIGKILL);
    waitpid(pid, &wstatus, 0);
  }
  FILE *fp = fopen(out_path, "rb");
  char *buf = calloc(1, 1 << 20);
  if (fp && buf) {
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
  }
  if (fp)
    fclose(fp);
  *output = buf;
  if (buf)
    fprintf(stderr, "---- %s output ----\n%s------------------------\n", bin,
            buf);
  if (!done || !WIFEXITED(wstatus))
    return -1;
  return WEXITSTATUS(wstatus);
}

static int e2e_run_trainer(const e2e *t, const char *const args[],
                           const char *const extra_env[], char **output) {
  return e2e_run(t, TRAINER_BIN, args, extra_env, output);
}

static int e2e_setup(void **state) {
  static e2e t;
  snprintf(t.tmp, sizeof t.tmp, "%s/chub-e2e-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(t.tmp))
    return -1;
  snprintf(t.config, sizeof t.config, "%s/config", t.tmp);
  snprintf(t.runs, sizeof t.runs, "%s/runs", t.tmp);
  if (mkdir(t.config, 0700) != 0 || mkdir(t.runs, 0700) != 0)
    return -1;
  static const char *const hub_args[] = {"--metrics", NULL};
  t.hub = chubd_proc_start(CHUBD_BIN, NULL, hub_args);
  if (!t.hub)
    return -1;
  /* Checkpoints after every epoch and metrics at once: a short run must
   * still exercise every upload path. */
  setenv("CHUB_CONFIG_DIR", t.config, 1);
  char err[256];
  if (chub_settings_set("rate_limit_ckpt", "0", err, sizeof err) != CHUB_OK ||
      chub_settings_set("rate_limit_metrics", "0", err, sizeof err) !=
          CHUB_OK) {
    fprintf(stderr, "e2e: cannot write test settings: %s\n", err);
    return -1;
  }
  *state = &t;
  return 0;
}

static int e2e_teardown(void **state) {
  e2e *t = *state;
  if (!t)
    return 0;
  chubd_proc_free(t->hub);
  if (!getenv("CHUB_KEEP_TMP"))
    chubd_proc_rmtree(t->tmp);
  return 0;
}

/* GETs `path` from the hub with the test key; returns the parsed envelope
 * or fails the test. */
static json_t *e2e_get(const e2e *t, const char *path) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(t->hub), path);
  th_response r = {0};
  assert_int_equal(
      th_json_request("GET", url, chubd_proc_key(t->hub), NULL, &r), 0);
  if (r.status != 200)
    fprintf(stderr, "e2e: GET %s -> %ld %s\n", path, r.status, r.body);
  assert_int_equal(r.status, 200);
  json_t *root = th_envelope(&r);
  assert_non_null(root);
  th_response_free(&r);
  free(url);
  return root;
}

static void e2e_file_sha256(const char *path, char hex[65], long *size) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  *size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)*size + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)*size, fp), (size_t)*size);
  fclose(fp);
  th_sha256_hex(buf, (size_t)*size, hex);
  free(buf);
}

/* The id in "View model at {root}/models/{id}" in the trainer's output. */
static char *e2e_model_id(const char *output) {
  const char *at = strstr(output, "View model at ");
  assert_non_null(at);
  at = strstr(at, "/models/");
  assert_non_null(at);
  at += strlen("/models/");
  size_t n = strspn(at, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789");
  assert_int_equal(n, 20);
  return th_fmt("%.*s", (int)n, at);
}

/* Every epoch's metrics by name, once each, with believable values:
 * top-1 at least `min_top1` and, at epoch 0, the model's `params`. */
static void e2e_check_metrics(const e2e *t, const char *id, int first,
                              int count, long long params, double min_top1) {
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *root = e2e_get(t, path);
  json_t *data = th_json_at(root, "data");
  assert_true(json_is_array(data));
  assert_int_equal(json_array_size(data), (size_t)(first + count));
  for (int e = 0; e < first + count; e++) {
    json_t *row = json_array_get(data, (size_t)e);
    assert_int_equal(th_json_int(row, "epoch", -1), e);
    json_t *m = th_json_at(row, "metrics");
    static const char *const names[] = {"train/loss", "val/loss",
                                        "metrics/accuracy_top1",
                                        "metrics/accuracy_top5"};
    for (size_t i = 0; i < 4; i++) {
      json_t *v = json_object_get(m, names[i]);
      if (!json_is_number(v))
        fprintf(stderr, "e2e: epoch %d lacks %s\n", e, names[i]);
      assert_true(json_is_number(v));
    }
    double top1 =
        json_number_value(json_object_get(m, "metrics/accuracy_top1"));
    double top5 =
        json_number_value(json_object_get(m, "metrics/accuracy_top5"));
    /* Ten classes: chance is 10%; even a few hundred images learn more. */
    assert_true(top1 >= min_top1 && top1 <= 1.0);
    assert_true(top5 >= top1 && top5 <= 1.0);
    if (e == 0) {
      assert_int_equal(
          (long long)json_number_value(json_object_get(m, "model/parameters")),
          params);
      assert_true(json_is_number(json_object_get(m, "model/GFLOPs")));
    }
  }
  json_decref(root);
  free(path);
}

/* chubd's count of uploads received whole whose SHA-256 came as `how`
 * (header, part, none), from its /metrics. */
static long e2e_uploads_by_digest(const e2e *t, const char *how) {
  char *url = th_fmt("%s/metrics", chubd_proc_base_url(t->hub));
  long status = 0;
  char *body = NULL;
  assert_int_equal(
      th_request("GET", url, NULL, NULL, NULL, 0, &status, &body, NULL), 0);
  assert_int_equal(status, 200);
  char *series = th_fmt("chubd_uploads_received_total{digest=\"%s\"} ", how);
  const char *at = strstr(body, series);
  assert_non_null(at);
  long n = strtol(at + strlen(series), NULL, 10);
  free(series);
  free(body);
  free(url);
  return n;
}

/* Trains `arch` on `limit` images for `epochs` epochs with the hub up and
 * checks everything the hub should now hold. */
static void e2e_train_and_check(const e2e *t, const char *arch,
                                const char *limit, int epochs, long long params,
                                double min_top1) {
  char *out_dir = th_fmt("%s/out-%s-%s", t->tmp, arch, limit);
  char *epochs_s = th_fmt("%d", epochs);
  const char *args[] = {"--model",  arch,     "--limit", limit,
                        "--epochs", epochs_s, "--out",   out_dir,
                        "--seed",   "7",      NULL};
  char *output = NULL;
  long part0 = e2e_uploads_by_digest(t, "part");
  long header0 = e2e_uploads_by_digest(t, "header");
  assert_int_equal(e2e_run_trainer(t, args, NULL, &output), 0);
  char *id = e2e_model_id(output);
  /* To chubd, every checkpoint's SHA-256 went after the file, hashed while
   * it was sent (the file read once); none as a header. */
  assert_true(e2e_uploads_by_digest(t, "part") >= part0 + 2);
  assert_int_equal(e2e_uploads_by_digest(t, "header"), header0);
  char *last_line = th_fmt("epoch %3d/%d", epochs, epochs);
  assert_non_null(strstr(output, last_line));

  e2e_check_metrics(t, id, 0, epochs, params, min_top1);

  char *path = th_fmt("/v1/models/%s", id);
  json_t *root = e2e_get(t, path);
  assert_string_equal(th_json_str(root, "data.status"), "trained");
  const char *beat = th_json_str(root, "data.agent.last_heartbeat");
  assert_non_null(beat);
  assert_true(strlen(beat) > 0);

  /* Checkpoints: each epoch's last.bin (rate limit 0) and the final. */
  char best_path[512], best_hex[65];
  long best_size;
  snprintf(best_path, sizeof best_path, "%s/best.bin", out_dir);
  e2e_file_sha256(best_path, best_hex, &best_size);
  json_t *ckpts = th_json_at(root, "data.checkpoints");
  assert_true(json_is_array(ckpts));
  int n_epoch = 0, n_final = 0;
  for (size_t i = 0; i < json_array_size(ckpts); i++) {
    json_t *c = json_array_get(ckpts, i);
    const char *type = th_json_str(c, "type");
    assert_non_null(type);
    if (strcmp(type, "epoch") == 0)
      n_epoch++;
    if (strcmp(type, "final") == 0) {
      n_final++;
      assert_string_equal(th_json_str(c, "sha256"), best_hex);
      assert_int_equal(th_json_int(c, "size", -1), best_size);
    }
  }
  assert_true(n_epoch >= 1);
  assert_int_equal(n_final, 1);

  /* And the bytes the hub serves as best are the local best.bin. */
  char *url =
      th_fmt("%s/v1/models/%s/weights/best", chubd_proc_base_url(t->hub), id);
  th_response r = {0};
  assert_int_equal(
      th_json_request("GET", url, chubd_proc_key(t->hub), NULL, &r), 0);
  assert_int_equal(r.status, 200);
  char got_hex[65];
  th_sha256_hex(r.body, r.body_len, got_hex);
  assert_string_equal(got_hex, best_hex);

  th_response_free(&r);
  free(url);
  json_decref(root);
  free(path);
  free(id);
  free(output);
  free(last_line);
  free(epochs_s);
  free(out_dir);
}

static void e2e_trains_and_reports(void **state) {
  /* mlp.cfg: 784*256+256 + 256*128+128 + 128*10+10 parameters. */
  e2e_train_and_check(*state, "mlp.cfg", "2000", 3, 235146, 0.5);
}

/* The same story, small enough to run under ThreadSanitizer: the trainer's
 * thread and libchub's sender and heartbeat threads against a real hub. */
static void e2e_trains_and_reports_small(void **state) {
  /* mlp-small.cfg: 784*128+128 + 128*10+10 parameters. */
  e2e_train_and_check(*state, "mlp-small.cfg", "500", 2, 101770, 0.3);
}

/* A hub model with an epoch checkpoint resumes from the epoch after it. */
static void e2e_resumes_hub_model(void **state) {
  e2e *t = *state;
  /* Two epochs trained with the hub off give a real last.bin (epoch 1). */
  char *local_dir = th_fmt("%s/out-local", t->tmp);
  const char *local_args[] = {"--limit", "2000",    "--epochs", "2",
                              "--out",   local_dir, NULL};
  const char *hub_off[] = {"CHUB_HUB=0", NULL};
  char *output = NULL;
  assert_int_equal(e2e_run_trainer(t, local_args, hub_off, &output), 0);
  free(output);

  char *id = th_create_model(chubd_proc_base_url(t->hub),
                             chubd_proc_key(t->hub), "mlp.cfg");
  assert_non_null(id);
  char *last = th_fmt("%s/last.bin", local_dir);
  char *upload =
      th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(t->hub), id);
  const char *fields[] = {"epoch",  "1",    "type", "epoch",
                          "isBest", "True", NULL};
  th_response r = {0};
  assert_int_equal(th_upload(upload, chubd_proc_key(t->hub), fields, "file",
                             "last.pt", NULL, 0, last, NULL, &r),
                   0);
  assert_int_equal(r.status, 200);
  th_response_free(&r);

  char *model_url = th_fmt("%s/models/%s", chubd_proc_base_url(t->hub), id);
  char *out_dir = th_fmt("%s/out-resume", t->tmp);
  const char *args[] = {"--model", model_url, "--limit", "2000", "--epochs",
                        "3",       "--out",   out_dir,   NULL};
  assert_int_equal(e2e_run_trainer(t, args, NULL, &output), 0);
  assert_non_null(strstr(output, "resuming"));
  assert_non_null(strstr(output, "epoch   3/3"));
  assert_null(strstr(output, "epoch   1/3"));

  /* Only epoch 2 ran here. */
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *root = e2e_get(t, path);
  json_t *data = th_json_at(root, "data");
  assert_int_equal(json_array_size(data), 1);
  assert_int_equal(th_json_int(data, "0.epoch", -1), 2);
  json_decref(root);
  free(path);
  path = th_fmt("/v1/models/%s", id);
  root = e2e_get(t, path);
  assert_string_equal(th_json_str(root, "data.status"), "trained");
  json_decref(root);

  free(path);
  free(out_dir);
  free(model_url);
  free(upload);
  free(last);
  free(id);
  free(output);
  free(local_dir);
}

/* With the hub down the run still trains, spools, and `chub sync` later
 * delivers every epoch and the final weights. */
static void e2e_offline_then_sync(void **state) {
  e2e *t = *state;
  char *out_dir = th_fmt("%s/out-offline", t->tmp);
  const char *args[] = {"--limit", "2000",  "--epochs", "2",
                        "--out",   out_dir, NULL};
  /* Port 1 on loopback refuses at once: no hub answers. */
  const char *down[] = {"CHUB_API_ROOT=http://127.0.0.1:1", NULL};
  char *output = NULL;
  assert_int_equal(e2e_run_trainer(t, args, down, &output), 0);
  assert_non_null(strstr(output, "epoch   2/2"));
  const char *sync = strstr(output, "chub sync ");
  assert_non_null(sync);
  sync += strlen("chub sync ");
  char *run_id = th_fmt("%.*s", (int)strcspn(sync, " \n"), sync);
  free(output);

  char *before = th_fmt("/v1/models?limit=100");
  json_t *root = e2e_get(t, before);
  long long models_before =
      (long long)json_array_size(th_json_at(root, "data.results"));
  json_decref(root);

  const char *sync_args[] = {"sync", run_id, NULL};
  assert_int_equal(e2e_run(t, CHUB_BIN, sync_args, NULL, &output), 0);
  free(output);

  root = e2e_get(t, before);
  json_t *results = th_json_at(root, "data.results");
  assert_int_equal((long long)json_array_size(results), models_before + 1);
  char *id = strdup(th_json_str(results, "0.id")); /* newest first */
  json_decref(root);
  e2e_check_metrics(t, id, 0, 2, 235146, 0.5);
  char *path = th_fmt("/v1/models/%s", id);
  root = e2e_get(t, path);
  assert_string_equal(th_json_str(root, "data.status"), "trained");
  json_decref(root);

  free(path);
  free(id);
  free(before);
  free(run_id);
  free(out_dir);
}

static void e2e_missing_dataset_exits_2(void **state) {
  e2e *t = *state;
  char *empty = th_fmt("%s/no-dataset", t->tmp);
  mkdir(empty, 0700);
  char *out_dir = th_fmt("%s/out-missing", t->tmp);
  const char *args[] = {"--data-dir", empty, "--out", out_dir, NULL};
  char *output = NULL;
  assert_int_equal(e2e_run_trainer(t, args, NULL, &output), 2);
  /* The message names the file that is missing and what to do. */
  char *want = th_fmt("cannot open %s/train-labels-idx1-ubyte.gz", empty);
  assert_non_null(strstr(output, want));
  assert_non_null(strstr(output, "--data-dir"));
  free(want);
  free(output);

  /* The environment variable points there too. */
  char *env = th_fmt("FASHION_MNIST_DIR=%s", empty);
  const char *env_list[] = {env, NULL};
  const char *args2[] = {"--out", out_dir, NULL};
  assert_int_equal(e2e_run_trainer(t, args2, env_list, &output), 2);
  assert_non_null(strstr(output, "train-labels-idx1-ubyte.gz"));
  free(output);
  free(env);
  free(out_dir);
  free(empty);
}

static void e2e_corrupt_dataset_exits_2(void **state) {
  e2e *t = *state;
  char *dir = th_fmt("%s/bad-dataset", t->tmp);
  mkdir(dir, 0700);
  char *file = th_fmt("%s/train-labels-idx1-ubyte.gz", dir);
  FILE *fp = fopen(file, "wb");
  assert_non_null(fp);
  fputs("this is not an IDX file", fp); /* gzip reads plain text through */
  fclose(fp);
  const char *args[] = {"--data-dir", dir, NULL};
  char *output = NULL;
  assert_int_equal(e2e_run_trainer(t, args, NULL, &output), 2);
  assert_non_null(strstr(output, file));
  assert_non_null(strstr(output, "magic number"));
  free(output);
  free(file);
  free(dir);
}

static void e2e_bad_flag_exits_2(void **state) {
  e2e *t = *state;
  char *output = NULL;
  const char *unknown[] = {"--epoch", "3", NULL};
  assert_int_equal(e2e_run_trainer(t, unknown, NULL, &output), 2);
  assert_non_null(strstr(output, "unknown flag '--epoch'"));
  assert_non_null(strstr(output, "usage:"));
  free(output);
  const char *bad_value[] = {"--batch", "lots", NULL};
  assert_int_equal(e2e_run_trainer(t, bad_value, NULL, &output), 2);
  assert_non_null(strstr(output, "--batch needs a whole number"));
  free(output);
  const char *bad_model[] = {"--model", "resnet.cfg", NULL};
  assert_int_equal(e2e_run_trainer(t, bad_model, NULL, &output), 2);
  assert_non_null(strstr(output, "mlp-small.cfg"));
  free(output);
  const char *help[] = {"--help", NULL};
  assert_int_equal(e2e_run_trainer(t, help, NULL, &output), 0);
  assert_non_null(strstr(output, "--data-dir DIR"));
  free(output);
}

int main(int argc, char **argv) {
  /* --threads: only the small run, for the sender label (TSan). */
  if (argc > 1 && strcmp(argv[1], "--threads") == 0) {
    const struct CMUnitTest small[] = {
        cmocka_unit_test(e2e_trains_and_reports_small),
    };
    return cmocka_run_group_tests(small, e2e_setup, e2e_teardown);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(e2e_bad_flag_exits_2),
      cmocka_unit_test(e2e_missing_dataset_exits_2),
      cmocka_unit_test(e2e_corrupt_dataset_exits_2),
      cmocka_unit_test(e2e_trains_and_reports),
      cmocka_unit_test(e2e_resumes_hub_model),
      cmocka_unit_test(e2e_offline_then_sync),
  };
  return cmocka_run_group_tests(tests, e2e_setup, e2e_teardown);
}

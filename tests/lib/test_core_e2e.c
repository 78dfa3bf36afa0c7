/*
 * test_core_e2e.c - a trainer loop through the HUB callbacks against the
 * real chubd (started on a free port with a temporary data directory).
 *
 * What a user checks after training: the hub's model holds every epoch's
 * metrics, the final weights with the SHA-256 of the file on disk, and the
 * status `trained`. The second case trains offline and uploads with
 * `chub sync`, and the hub ends up the same.
 */
#include "chubd_proc.h"
#include "core_test.h"
#include "th.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static const char *chubd_bin;

enum { E2E_EPOCHS = 6 };

typedef struct e2e {
  chubd_proc *hub;
  core_test_env env;
} e2e;

static int e2e_setup(void **state) {
  e2e *e = calloc(1, sizeof *e);
  e->hub = chubd_proc_start(chubd_bin, NULL, NULL);
  if (!e->hub) {
    free(e);
    return -1;
  }
  core_test_env_init(&e->env, chubd_proc_base_url(e->hub),
                     chubd_proc_key(e->hub));
  /* Real retry times: chubd answers promptly. */
  unsetenv("CHUB_RETRY_SCALE");
  *state = e;
  return 0;
}

static int e2e_teardown(void **state) {
  e2e *e = *state;
  chubd_proc_free(e->hub);
  core_test_env_free(&e->env);
  free(e);
  return 0;
}

static void file_sha256(const char *path, char hex[65]) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  unsigned char buf[4096];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
    EVP_DigestUpdate(ctx, buf, n);
  fclose(fp);
  unsigned char md[32];
  unsigned int l;
  EVP_DigestFinal_ex(ctx, md, &l);
  EVP_MD_CTX_free(ctx);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Runs E2E_EPOCHS epochs through the callbacks; returns the model id the
 * session had (or "" offline) in `id`. */
static void train(e2e *e, char id[32], char run[64]) {
  chub_callbacks *cb = chub_callbacks_new();
  assert_int_equal(chub_add_integration_callbacks(cb), CHUB_OK);
  char last[256], best[256];
  snprintf(last, sizeof last, "%s/last.pt", e->env.root);
  snprintf(best, sizeof best, "%s/best.pt", e->env.root);
  chub_metric loss[1] = {{"loss", 0}};
  chub_metric metrics[2] = {{"metrics/accuracy_top1", 0}, {"val/loss", 0}};
  chub_trainer t = {.args = {.model = "mnist-mlp.bin",
                             .data = "fashion-mnist",
                             .epochs = E2E_EPOCHS,
                             .batch = 64,
                             .imgsz = 28,
                             .device = "cpu",
                             .task = "classify",
                             .mode = "train"},
                    .tloss = loss,
                    .n_tloss = 1,
                    .metrics = metrics,
                    .n_metrics = 2,
                    .last = last,
                    .best = best,
                    .model_parameters = 101770};
  chub_callbacks_run(cb, CHUB_ON_PRETRAIN_ROUTINE_START, &t);
  assert_non_null(t.hub_session);
  const char *mid = chub_session_model_id(t.hub_session);
  snprintf(id, 32, "%s", mid ? mid : "");
  snprintf(run, 64, "%s", chub_session_run_id(t.hub_session));
  chub_callbacks_run(cb, CHUB_ON_PRETRAIN_ROUTINE_END, &t);
  chub_callbacks_run(cb, CHUB_ON_TRAIN_START, &t);
  for (int ep = 0; ep < E2E_EPOCHS; ep++) {
    t.epoch = ep;
    loss[0].value = 2.0 / (ep + 1);
    metrics[0].value = 0.5 + 0.05 * ep;
    metrics[1].value = 1.0 / (ep + 2);
    chub_callbacks_run(cb, CHUB_ON_FIT_EPOCH_END, &t);
    core_test_write_file(last, 20000 + (size_t)ep, ep);
    t.fitness = metrics[0].value;
    t.best_fitness = t.fitness;
    core_test_write_file(best, 20000 + (size_t)ep, ep);
    chub_callbacks_run(cb, CHUB_ON_MODEL_SAVE, &t);
  }
  chub_callbacks_run(cb, CHUB_ON_TRAIN_END, &t);
  assert_null(t.hub_session);
  chub_callbacks_free(cb);
}

/* The hub's view of model `id`: every epoch, the final weights' digest
 * equal to the file's, status trained. */
static void check_hub(e2e *e, const char *id) {
  char best[256], want[65];
  snprintf(best, sizeof best, "%s/best.pt", e->env.root);
  file_sha256(best, want);
  char *url = th_fmt("%s/v1/models/%s", chubd_proc_base_url(e->hub), id);
  th_response r;
  assert_int_equal(
      th_json_request("GET", url, chubd_proc_key(e->hub), NULL, &r), 0);
  assert_int_equal(r.status, 200);
  json_t *model = th_envelope(&r);
  assert_non_null(model);
  assert_string_equal(th_json_str(model, "data.status"), "trained");
  json_t *ck = th_json_at(model, "data.checkpoints");
  bool found = false;
  size_t i;
  json_t *c;
  json_array_foreach(ck, i, c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *sha = json_string_value(json_object_get(c, "sha256"));
    if (type && strcmp(type, "final") == 0 && sha && strcmp(sha, want) == 0)
      found = true;
  }
  assert_true(found);
  json_decref(model);
  th_response_free(&r);
  free(url);
  url = th_fmt("%s/v1/models/%s/metrics", chubd_proc_base_url(e->hub), id);
  assert_int_equal(
      th_json_request("GET", url, chubd_proc_key(e->hub), NULL, &r), 0);
  json_t *m = th_envelope(&r);
  json_t *data = json_object_get(m, "data");
  assert_int_equal(json_array_size(data), E2E_EPOCHS);
  json_array_foreach(data, i, c) {
    assert_int_equal(json_integer_value(json_object_get(c, "epoch")), i);
    json_t *acc =
        json_object_get(json_object_get(c, "metrics"), "metrics/accuracy_top1");
    assert_true(json_number_value(acc) == 0.5 + 0.05 * (double)i);
  }
  json_decref(m);
  th_response_free(&r);
  free(url);
}

static void test_online_run(void **state) {
  e2e *e = *state;
  core_test_set("rate_limit_ckpt", "0");
  char id[32], run[64];
  train(e, id, run);
  assert_int_equal(strlen(id), 20);
  assert_true(th_log_wait_contains("Done", 5000));
  check_hub(e, id);
}

static void test_offline_run_then_sync(void **state) {
  e2e *e = *state;
  setenv("CHUB_MODE", "offline", 1);
  char id[32], run[64];
  train(e, id, run);
  assert_string_equal(id, "");
  char hint[128];
  snprintf(hint, sizeof hint, "upload it with: chub sync %s", run);
  assert_true(th_log_wait_contains(hint, 5000));
  unsetenv("CHUB_MODE");
  assert_int_equal(chub_sync_run(run), CHUB_OK);
  /* The model id the sync created is in the run listing. */
  char listing[1024] = "";
  FILE *fp = fmemopen(listing, sizeof listing, "w");
  chub_list_runs(fp);
  fclose(fp);
  char *line = strstr(listing, run);
  assert_non_null(line);
  char model[32] = "";
  assert_int_equal(sscanf(line + strlen(run), " %20s", model), 1);
  assert_int_equal(strlen(model), 20);
  check_hub(e, model);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CHUBD_BINARY\n", argv[0]);
    return 2;
  }
  chubd_bin = argv[1];
  setenv("CHUB_TESTING", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_online_run, e2e_setup, e2e_teardown),
      cmocka_unit_test_setup_teardown(test_offline_run_then_sync, e2e_setup,
                                      e2e_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_core_protocol.c - libchub's HUB callbacks, session and sender against
 * a scripted hub that fails on purpose (fakehub).
 *
 * What a user would notice is asserted from the hub's side: which requests
 * arrived, how many attempts a failure cost, which epochs each upload
 * carried, what the multipart body held. Waits are bounded polls on the
 * server's request log, never timings.
 */
#include "core_test.h"
#include "internal.h"
#include "session.h"
#include "fakehub.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define KEY "testkey0123456789testkey0123456789abcdefgh"
#define ROUTE_CREATE "POST /v1/models"
#define ROUTE_METRICS "POST /v1/models/" FAKEHUB_MODEL_ID
#define ROUTE_UPLOAD "POST /v1/models/" FAKEHUB_MODEL_ID "/upload"
#define ROUTE_GET "GET /v1/models/" FAKEHUB_MODEL_ID
#define ROUTE_HEARTBEAT "POST /v1/agent/heartbeat/models/" FAKEHUB_MODEL_ID
#define ROUTE_EVENTS "POST /v1/events"
#define MODEL_URL_PATH "/models/" FAKEHUB_MODEL_ID

typedef struct fixture {
  fakehub *srv;
  core_test_env env;
  chub_callbacks *cb;
  chub_trainer t;
  chub_metric loss[2];
  chub_metric metrics[2];
  char last[256];
  char best[256];
} fixture;

static int fixture_setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->srv = fakehub_start();
  if (!f->srv)
    return -1;
  core_test_env_init(&f->env, fakehub_url(f->srv), KEY);
  f->cb = chub_callbacks_new();
  snprintf(f->last, sizeof f->last, "%s/last.pt", f->env.root);
  snprintf(f->best, sizeof f->best, "%s/best.pt", f->env.root);
  f->loss[0] = (chub_metric){"box_loss", 1.5};
  f->loss[1] = (chub_metric){"cls_loss", 0.5};
  f->metrics[0] = (chub_metric){"metrics/mAP50-95(B)", 0.25};
  f->metrics[1] = (chub_metric){"val/loss", 0.75};
  f->t.args = (chub_args){.model = "yolo11n.pt",
                          .data = "coco8.yaml",
                          .epochs = 5,
                          .batch = 16,
                          .imgsz = 640,
                          .device = "cpu",
                          .task = "detect",
                          .mode = "train"};
  f->t.tloss = f->loss;
  f->t.n_tloss = 2;
  f->t.metrics = f->metrics;
  f->t.n_metrics = 2;
  f->t.last = f->last;
  f->t.best = f->best;
  f->t.model_parameters = 2590620;
  f->t.model_gflops = 6.5;
  f->t.model_speed_ms = 1.5;
  *state = f;
  return 0;
}

static int fixture_teardown(void **state) {
  fixture *f = *state;
  if (f->t.hub_session)
    chub_session_close(f->t.hub_session);
  chub_callbacks_free(f->cb);
  fakehub_stop(f->srv);
  core_test_env_free(&f->env);
  free(f);
  return 0;
}

static void sha256_file(const char *path, char out[65]) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  unsigned char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
    EVP_DigestUpdate(ctx, buf, n);
  fclose(fp);
  unsigned char md[32];
  unsigned int l = 0;
  EVP_DigestFinal_ex(ctx, md, &l);
  EVP_MD_CTX_free(ctx);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The epochs (as keys) of the i-th metrics upload, decoded; NULL if none. */
static json_t *metrics_upload(fakehub *srv, size_t i) {
  const fakehub_request *r = fakehub_find(srv, ROUTE_METRICS, i);
  if (!r)
    return NULL;
  json_t *body = json_loads(r->body, 0, NULL);
  assert_non_null(body);
  assert_string_equal(json_string_value(json_object_get(body, "type")),
                      "metrics");
  json_t *m = json_incref(json_object_get(body, "metrics"));
  json_decref(body);
  assert_true(json_is_object(m));
  return m;
}

/* Every epoch the hub received over all metrics uploads, as a bitmask. */
static unsigned long epochs_received(fakehub *srv) {
  unsigned long mask = 0;
  size_t n = fakehub_count(srv, ROUTE_METRICS);
  for (size_t i = 0; i < n; i++) {
    json_t *m = metrics_upload(srv, i);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
      /* Each value is itself a JSON-encoded flat map. */
      json_t *flat = json_loads(json_string_value(v), 0, NULL);
      assert_non_null(flat);
      assert_true(json_is_object(flat));
      json_decref(flat);
      mask |= 1ul << atoi(k);
    }
    json_decref(m);
  }
  return mask;
}

static size_t pending_metrics(chub_session *s) {
  size_t m = 0, c = 0;
  bool fin = false;
  spool_pending_counts(session_spool(s), &m, &c, &fin);
  return m;
}

/* Waits (bounded) until the session's spool has no pending epoch. */
static bool wait_drained(chub_session *s) {
  for (int i = 0; i < 1000; i++) {
    if (pending_metrics(s) == 0)
      return true;
    usleep(10000);
  }
  return false;
}

static chub_session *open_session(fixture *f) {
  chub_session *s = NULL;
  assert_int_equal(chub_session_open("yolo11n.pt", &f->t.args, &s), CHUB_OK);
  assert_non_null(s);
  return s;
}

static void run_epoch(fixture *f, int epoch) {
  f->t.epoch = epoch;
  f->loss[0].value = 1.5 / (epoch + 1);
  f->metrics[0].value = 0.25 + 0.1 * epoch;
  chub_callbacks_run(f->cb, CHUB_ON_FIT_EPOCH_END, &f->t);
}

static void save_model(fixture *f, int epoch, bool best) {
  core_test_write_file(f->last, 3000 + (size_t)epoch * 17, epoch);
  if (best)
    core_test_write_file(f->best, 5000 + (size_t)epoch * 13, 100 + epoch);
  f->t.fitness = 0.3 + 0.01 * epoch;
  f->t.best_fitness = best ? f->t.fitness : 0.99;
  chub_callbacks_run(f->cb, CHUB_ON_MODEL_SAVE, &f->t);
}

/* A full run through the callbacks, no rate limit: every epoch, every
 * checkpoint and the final weights reach the hub with the right fields. */
static void test_training_run(void **state) {
  fixture *f = *state;
  core_test_set("rate_limit_metrics", "0");
  core_test_set("rate_limit_ckpt", "0");
  assert_int_equal(chub_add_integration_callbacks(f->cb), CHUB_OK);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_START, &f->t);
  assert_non_null(f->t.hub_session);
  assert_string_equal(chub_session_model_id(f->t.hub_session),
                      FAKEHUB_MODEL_ID);
  assert_true(th_log_wait_contains("View model at ", 5000));
  assert_true(th_log_wait_contains(MODEL_URL_PATH, 5000));
  const fakehub_request *r = fakehub_find(f->srv, ROUTE_CREATE, 0);
  assert_non_null(r);
  assert_string_equal(r->api_key, KEY);
  json_t *create = json_loads(r->body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(create, "meta"), "name")),
                      "yolo11n.pt");
  json_decref(create);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_END, &f->t);
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_START, &f->t);
  for (int e = 0; e < 5; e++) {
    run_epoch(f, e);
    assert_true(fakehub_wait(f->srv, ROUTE_METRICS, (size_t)e + 1, 10));
    save_model(f, e, e % 2 == 0);
    assert_true(fakehub_wait(f->srv, ROUTE_UPLOAD, (size_t)e + 1, 10));
  }
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_END, &f->t);
  assert_null(f->t.hub_session);
  assert_true(th_log_wait_contains("Syncing final model...", 5000));
  assert_true(th_log_wait_contains("Done", 5000));
  /* One upload per epoch, each carrying that epoch. */
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), 5);
  for (size_t i = 0; i < 5; i++) {
    json_t *m = metrics_upload(f->srv, i);
    char key[8];
    snprintf(key, sizeof key, "%zu", i);
    json_t *flat =
        json_loads(json_string_value(json_object_get(m, key)), 0, NULL);
    assert_non_null(flat);
    assert_true(json_number_value(json_object_get(flat, "train/box_loss")) ==
                1.5 / (double)(i + 1));
    assert_non_null(json_object_get(flat, "metrics/mAP50-95(B)"));
    if (i == 0)
      assert_int_equal(
          json_integer_value(json_object_get(flat, "model/parameters")),
          2590620);
    else
      assert_null(json_object_get(flat, "model/parameters"));
    json_decref(flat);
    json_decref(m);
  }
  /* Five checkpoints then the final: multipart fields and digests. */
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 6);
  for (size_t i = 0; i < 6; i++) {
    r = fakehub_find(f->srv, ROUTE_UPLOAD, i);
    assert_non_null(r);
    size_t len = 0;
    const char *v = fakehub_part(r, "type", &len);
    bool final = i == 5;
    assert_non_null(v);
    assert_memory_equal(v, final ? "final" : "epoch", len);
    v = fakehub_part(r, "epoch", &len);
    char num[8];
    snprintf(num, sizeof num, "%zu", final ? 4 : i);
    assert_int_equal(len, strlen(num));
    assert_memory_equal(v, num, len);
    if (final) {
      v = fakehub_part(r, "map", &len);
      assert_non_null(v);
      assert_true(strtod(v, NULL) == 0.25 + 0.1 * 4);
      assert_non_null(fakehub_part(r, "best.pt", &len));
    } else {
      v = fakehub_part(r, "isBest", &len);
      assert_non_null(v);
      assert_memory_equal(v, i % 2 == 0 ? "True" : "False", len);
      assert_non_null(fakehub_part(r, "last.pt", &len));
    }
    /* The digest header matches the bytes of the file part. */
    const char *file = fakehub_part(r, final ? "best.pt" : "last.pt", &len);
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(file, len, md, &ml, EVP_sha256(), NULL);
    char hex[65];
    for (int k = 0; k < 32; k++)
      snprintf(hex + 2 * k, 3, "%02x", md[k]);
    assert_string_equal(r->sha256_header, hex);
  }
  char want[65];
  sha256_file(f->best, want);
  r = fakehub_find(f->srv, ROUTE_UPLOAD, 5);
  assert_non_null(r);
  assert_string_equal(r->sha256_header, want);
  /* Heartbeats carried the agent name; usage events never leave a test. */
  assert_true(fakehub_count(f->srv, ROUTE_HEARTBEAT) >= 1);
  r = fakehub_find(f->srv, ROUTE_HEARTBEAT, 0);
  assert_non_null(r);
  assert_non_null(strstr(r->body, "chub-" CHUB_VERSION "-local"));
  assert_int_equal(fakehub_count(f->srv, ROUTE_EVENTS), 0);
}

/* 502, 504, 408, 500, 503 and a dropped connection are retried; the epoch
 * arrives on the attempt after the failures. */
static void test_retryable_statuses(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  fakehub_reply fails[] = {
      {.status = 502, .retry_after = -1}, {.status = 504, .retry_after = -1},
      {.status = 408, .retry_after = -1}, {.status = 500, .retry_after = -1},
      {.status = 503, .retry_after = -1}, {.drop = true, .retry_after = -1}};
  size_t expect = 0;
  for (int e = 0; e < 6; e++) {
    fakehub_script(f->srv, ROUTE_METRICS, fails[e]);
    if (e == 0) { /* three in a row still fit the 3 retries */
      fakehub_script(f->srv, ROUTE_METRICS, fails[e]);
      fakehub_script(f->srv, ROUTE_METRICS, fails[e]);
    }
    char json[32];
    snprintf(json, sizeof json, "{\"x\": %d}", e);
    assert_int_equal(chub_session_queue_metrics(s, e, json), CHUB_OK);
    assert_int_equal(chub_session_flush_metrics(s), CHUB_OK);
    expect += e == 0 ? 4 : 2;
    assert_true(fakehub_wait(f->srv, ROUTE_METRICS, expect, 20));
    assert_true(wait_drained(s));
  }
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), expect);
  assert_int_equal(epochs_received(f->srv), 0x3f);
  chub_session_close(s);
}

/* Four failures exhaust 1 + 3 retries: the epoch stays spooled and goes
 * with the next upload, together with the new epoch. */
static void test_give_up_then_merge(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  for (int i = 0; i < 4; i++)
    fakehub_script(f->srv, ROUTE_METRICS,
                   (fakehub_reply){.status = 502, .retry_after = -1});
  chub_session_queue_metrics(s, 0, "{\"a\": 1}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 4, 20));
  assert_true(th_log_wait_contains("failed after 4 attempt(s)", 5000));
  assert_int_equal(pending_metrics(s), 1);
  chub_session_queue_metrics(s, 1, "{\"a\": 2}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 5, 10));
  assert_true(wait_drained(s));
  json_t *m = metrics_upload(f->srv, 4);
  assert_int_equal(json_object_size(m), 2);
  assert_string_equal(json_string_value(json_object_get(m, "0")), "{\"a\": 1}");
  assert_string_equal(json_string_value(json_object_get(m, "1")), "{\"a\": 2}");
  json_decref(m);
  chub_session_close(s);
}

/* 400 and 401 are not retried; the server's message is logged and the data
 * stays for the next upload. */
static void test_no_retry_on_client_errors(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  fakehub_script(f->srv, ROUTE_METRICS,
                 (fakehub_reply){.status = 400,
                                 .body = "{\"success\": false, \"message\": "
                                         "\"metrics.0 is not a string\"}",
                                 .retry_after = -1});
  chub_session_queue_metrics(s, 0, "{\"a\": 1}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 1, 10));
  for (int i = 0; i < 200 && !th_log_contains("metrics.0 is not a string"); i++)
    usleep(10000);
  assert_true(th_log_wait_contains("metrics.0 is not a string", 5000));
  assert_false(fakehub_wait(f->srv, ROUTE_METRICS, 2, 0.5));
  assert_int_equal(pending_metrics(s), 1);
  fakehub_script(f->srv, ROUTE_METRICS,
                 (fakehub_reply){.status = 401, .retry_after = -1});
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 2, 10));
  for (int i = 0; i < 200 && !th_log_contains("check your API key"); i++)
    usleep(10000);
  assert_true(th_log_wait_contains("check your API key", 5000));
  assert_false(fakehub_wait(f->srv, ROUTE_METRICS, 3, 0.5));
  assert_int_equal(pending_metrics(s), 1);
  chub_session_close(s);
}

/* 429 waits Retry-After when it fits the time budget, and gives up at
 * once (data kept) when it does not. */
static void test_rate_limited(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  fakehub_script(f->srv, ROUTE_METRICS,
                 (fakehub_reply){.status = 429, .retry_after = 1});
  chub_session_queue_metrics(s, 0, "{\"a\": 1}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 2, 10));
  assert_true(wait_drained(s));
  /* A new session for the second half: the first one's sender may still
   * be inside the drain that emptied the spool, and would take the next
   * epoch there before the flush below asks again (two attempts, each
   * correct, but not the one this half counts). */
  chub_session_close(s);
  s = open_session(f);
  fakehub_script(f->srv, ROUTE_METRICS,
                 (fakehub_reply){.status = 429, .retry_after = 3600});
  chub_session_queue_metrics(s, 1, "{\"a\": 2}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 3, 10));
  assert_false(fakehub_wait(f->srv, ROUTE_METRICS, 4, 0.5));
  assert_int_equal(pending_metrics(s), 1);
  chub_session_close(s);
}

/* With a long metrics rate limit nothing is sent during training and the
 * final sync sends every epoch in one request; a long checkpoint limit
 * sends no intermediate checkpoint. */
static void test_rate_limits_hold(void **state) {
  fixture *f = *state;
  core_test_set("rate_limit_metrics", "3600");
  core_test_set("rate_limit_ckpt", "3600");
  chub_add_integration_callbacks(f->cb);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_START, &f->t);
  assert_non_null(f->t.hub_session);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_END, &f->t);
  for (int e = 0; e < 5; e++) {
    run_epoch(f, e);
    save_model(f, e, true);
  }
  /* The sender has been idle: its first heartbeat is the sign it ran. */
  assert_true(fakehub_wait(f->srv, ROUTE_HEARTBEAT, 1, 10));
  assert_false(fakehub_wait(f->srv, ROUTE_METRICS, 1, 0.3));
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 0);
  assert_false(th_log_contains("Uploading checkpoint"));
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_END, &f->t);
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), 1);
  json_t *m = metrics_upload(f->srv, 0);
  assert_int_equal(json_object_size(m), 5);
  json_decref(m);
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 1);
  const fakehub_request *r = fakehub_find(f->srv, ROUTE_UPLOAD, 0);
  assert_non_null(r);
  size_t len;
  const char *type = fakehub_part(r, "type", &len);
  assert_memory_equal(type, "final", len);
}

/* The second heartbeat sends back the agent id the hub issued. */
static void test_heartbeat_agent_id(void **state) {
  fixture *f = *state;
  core_test_set("rate_limit_heartbeat", "1");
  fakehub_script(f->srv, ROUTE_HEARTBEAT,
                 (fakehub_reply){.status = 200,
                                 .body = "{\"success\": true, \"data\": "
                                         "{\"agentId\": \"agent-A1\"}}",
                                 .retry_after = -1});
  chub_session *s = open_session(f);
  assert_true(fakehub_wait(f->srv, ROUTE_HEARTBEAT, 2, 10));
  const fakehub_request *r = fakehub_find(f->srv, ROUTE_HEARTBEAT, 0);
  assert_non_null(r);
  json_t *b = json_loads(r->body, 0, NULL);
  assert_true(json_is_null(json_object_get(b, "agentId")));
  json_decref(b);
  r = fakehub_find(f->srv, ROUTE_HEARTBEAT, 1);
  assert_non_null(r);
  b = json_loads(r->body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(b, "agentId")),
                      "agent-A1");
  assert_string_equal(json_string_value(json_object_get(b, "agent")),
                      "chub-" CHUB_VERSION "-local");
  json_decref(b);
  chub_session_close(s);
}

/* The body of the i-th heartbeat, decoded. */
static json_t *heartbeat_body(fakehub *srv, size_t i) {
  const fakehub_request *r = fakehub_find(srv, ROUTE_HEARTBEAT, i);
  assert_non_null(r);
  json_t *b = json_loads(r->body, 0, NULL);
  assert_true(json_is_object(b));
  return b;
}

/* Opens a session with a heartbeat a second and closes it after `n`
 * heartbeats arrived. */
static void heartbeats(fixture *f, size_t n) {
  core_test_set("rate_limit_heartbeat", "1");
  chub_session *s = open_session(f);
  assert_true(fakehub_wait(f->srv, ROUTE_HEARTBEAT, n, 10));
  chub_session_close(s);
}

static bool readable(const char *path) {
  return access(path, R_OK) == 0;
}

/* Heartbeats carry the machine's load in "system": ram from the first,
 * and from the next, a second later, the rates too (cpu, disk, network);
 * gpus is {} on a machine without NVML. */
static void test_heartbeat_system(void **state) {
  fixture *f = *state;
  heartbeats(f, 2);
  json_t *b = heartbeat_body(f->srv, 0);
  json_t *sys = json_object_get(b, "system");
  assert_true(json_is_object(sys));
  assert_true(json_is_real(json_object_get(sys, "ram")));
  json_decref(b);

  b = heartbeat_body(f->srv, 1);
  assert_int_equal(json_object_size(b), 3); /* agent, agentId, system */
  sys = json_object_get(b, "system");
  json_t *cpu = json_object_get(sys, "cpu"), *ram = json_object_get(sys, "ram");
  assert_true(json_is_real(cpu));
  assert_true(json_real_value(cpu) >= 0 && json_real_value(cpu) <= 100);
  assert_true(json_is_real(ram));
  assert_true(json_real_value(ram) > 0 && json_real_value(ram) < 100);
  json_t *disk = json_object_get(sys, "disk");
  assert_true(json_is_real(json_object_get(disk, "used_gb")));
  if (readable("/proc/diskstats"))
    assert_true(json_is_real(json_object_get(disk, "write_mbs")));
  if (readable("/proc/net/dev"))
    assert_true(json_is_real(
        json_object_get(json_object_get(sys, "network"), "recv_mbs")));
  json_t *gpus = json_object_get(sys, "gpus");
  assert_true(json_is_object(gpus));
  void *nvml = dlopen("libnvidia-ml.so.1", RTLD_LAZY);
  if (!nvml)
    assert_int_equal(json_object_size(gpus), 0);
  else
    dlclose(nvml);
  json_decref(b);
}

/* CHUB_SYSTEM_METRICS=0: heartbeats as the HUB protocol has them. */
static void test_heartbeat_system_off(void **state) {
  fixture *f = *state;
  setenv("CHUB_SYSTEM_METRICS", "0", 1);
  heartbeats(f, 2);
  unsetenv("CHUB_SYSTEM_METRICS");
  for (size_t i = 0; i < 2; i++) {
    json_t *b = heartbeat_body(f->srv, i);
    assert_null(json_object_get(b, "system"));
    assert_int_equal(json_object_size(b), 2); /* agent, agentId */
    json_decref(b);
  }
}

/* A hub that refuses the unknown field (400) gets that heartbeat again at
 * once without it, and plain heartbeats from then on; nothing failed. */
static void test_heartbeat_system_refused(void **state) {
  fixture *f = *state;
  fakehub_script(f->srv, ROUTE_HEARTBEAT,
                 (fakehub_reply){.status = 400,
                                 .body = "{\"success\": false, \"message\": "
                                         "\"unknown field \\\"system\\\"\"}",
                                 .retry_after = -1});
  heartbeats(f, 3);
  for (size_t i = 0; i < 3; i++) {
    json_t *b = heartbeat_body(f->srv, i);
    assert_int_equal(json_object_get(b, "system") != NULL, i == 0);
    json_decref(b);
  }
  assert_true(th_log_contains("refuses the machine's load"));
  assert_false(th_log_contains("heartbeat for model"));
}

/* A 400 that is not about the load (the plain heartbeat is refused too)
 * is a failed heartbeat, and the load stays in the next one. */
static void test_heartbeat_400_keeps_system(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 2; i++)
    fakehub_script(f->srv, ROUTE_HEARTBEAT,
                   (fakehub_reply){.status = 400, .retry_after = -1});
  heartbeats(f, 3);
  for (size_t i = 0; i < 3; i++) {
    json_t *b = heartbeat_body(f->srv, i);
    assert_int_equal(json_object_get(b, "system") != NULL, i != 1);
    json_decref(b);
  }
  assert_true(th_log_contains("heartbeat for model"));
  assert_false(th_log_contains("refuses the machine's load"));
}

/* mode=offline: nothing reaches the hub, everything spools, and `chub
 * sync` later creates the model and uploads every epoch and the final. */
static void test_offline_then_sync(void **state) {
  fixture *f = *state;
  setenv("CHUB_MODE", "offline", 1);
  chub_session *s = NULL;
  assert_int_equal(chub_session_open("yolo11n.pt", &f->t.args, &s),
                   CHUB_EOFFLINE);
  assert_non_null(s);
  assert_null(chub_session_model_id(s));
  char run[64];
  snprintf(run, sizeof run, "%s", chub_session_run_id(s));
  for (int e = 0; e < 3; e++)
    assert_int_equal(chub_session_queue_metrics(s, e, "{\"loss\": 1.5}"),
                     CHUB_OK);
  core_test_write_file(f->best, 4096, 9);
  assert_int_equal(chub_session_upload_final(s, 2, f->best, 0.5, 10),
                   CHUB_EOFFLINE);
  chub_session_close(s);
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 0);
  assert_int_equal(fakehub_count(f->srv, ROUTE_HEARTBEAT), 0);
  char listing[1024] = "";
  FILE *fp = fmemopen(listing, sizeof listing, "w");
  assert_int_equal(chub_list_runs(fp), CHUB_OK);
  fclose(fp);
  assert_non_null(strstr(listing, run));
  assert_non_null(strstr(listing, "offline"));
  assert_non_null(strstr(listing, "metrics 3"));
  unsetenv("CHUB_MODE");
  assert_int_equal(chub_sync_run(run), CHUB_OK);
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 1);
  assert_int_equal(epochs_received(f->srv), 0x7);
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 1);
  /* Syncing again has nothing left to send. */
  assert_int_equal(chub_sync_run(run), CHUB_OK);
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 1);
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 1);
  memset(listing, 0, sizeof listing);
  fp = fmemopen(listing, sizeof listing, "w");
  chub_list_runs(fp);
  fclose(fp);
  assert_non_null(strstr(listing, FAKEHUB_MODEL_ID));
  assert_non_null(strstr(listing, "metrics 0"));
}

/* A loopback port nobody listens on: bound, then closed. */
static int refused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* A hub that refuses connections at open: the session opens offline. A
 * hub that rejects the key: no session at all, one clear line. */
static void test_open_failures(void **state) {
  fixture *f = *state;
  char refused[64];
  snprintf(refused, sizeof refused, "http://127.0.0.1:%d", refused_port());
  setenv("CHUB_API_ROOT", refused, 1);
  chub_session *s = NULL;
  assert_int_equal(chub_session_open("yolo11n.pt", &f->t.args, &s),
                   CHUB_EOFFLINE);
  assert_non_null(s);
  assert_true(th_log_wait_contains("gave no answer", 5000));
  assert_true(th_log_wait_contains("chub sync ", 5000));
  chub_session_close(s);
  setenv("CHUB_API_ROOT", fakehub_url(f->srv), 1);
  /* A hub that keeps failing with 503 is as good as no answer. */
  for (int i = 0; i < 2; i++)
    fakehub_script(f->srv, ROUTE_CREATE,
                   (fakehub_reply){.status = 503, .retry_after = -1});
  assert_int_equal(chub_session_open("yolo11n.pt", &f->t.args, &s),
                   CHUB_EOFFLINE);
  assert_non_null(s);
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 2);
  chub_session_close(s);
  fakehub_script(f->srv, ROUTE_CREATE,
                 (fakehub_reply){.status = 401, .retry_after = -1});
  s = (chub_session *)1;
  assert_int_equal(chub_session_open("yolo11n.pt", &f->t.args, &s), CHUB_EAUTH);
  assert_null(s);
  assert_true(th_log_contains("the hub rejected the API key; check your API "
                              "key (chub login KEY)"));
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 3);
  assert_int_equal(chub_session_open("model.txt", &f->t.args, &s), CHUB_EINVAL);
  assert_null(s);
}

/* A model URL loads the model's train args and resume URL; an epoch the
 * hub refused stays in the run, and the next session of the same model
 * resumes that run and sends it. */
static void test_load_and_resume_run(void **state) {
  fixture *f = *state;
  fakehub_set_model(f->srv,
                    "{\"id\": \"" FAKEHUB_MODEL_ID "\", \"status\": "
                    "\"training\", \"has_last_weights\": true, \"resume\": "
                    "\"/v1/models/" FAKEHUB_MODEL_ID "/weights/last\", "
                    "\"train_args\": {\"data\": \"mnist\", \"epochs\": 7, "
                    "\"batch\": 32, \"imgsz\": 28}}");
  char url[256];
  snprintf(url, sizeof url, "%s/models/%s", fakehub_url(f->srv),
           FAKEHUB_MODEL_ID);
  chub_session *s = NULL;
  assert_int_equal(chub_session_open(url, &f->t.args, &s), CHUB_OK);
  const chub_args *ta = chub_session_train_args(s);
  assert_non_null(ta);
  assert_string_equal(ta->data, "mnist");
  assert_int_equal(ta->epochs, 7);
  assert_int_equal(ta->batch, 32);
  char resume[256];
  snprintf(resume, sizeof resume, "%s/v1/models/%s/weights/last",
           fakehub_url(f->srv), FAKEHUB_MODEL_ID);
  assert_string_equal(chub_session_resume_url(s), resume);
  char run[64];
  snprintf(run, sizeof run, "%s", chub_session_run_id(s));
  fakehub_script(f->srv, ROUTE_METRICS,
                 (fakehub_reply){.status = 400, .retry_after = -1});
  chub_session_queue_metrics(s, 3, "{\"a\": 3}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 1, 10));
  chub_session_close(s);
  assert_int_equal(chub_session_open(url, &f->t.args, &s), CHUB_OK);
  assert_string_equal(chub_session_run_id(s), run);
  assert_true(th_log_wait_contains("resuming local run", 5000));
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 2, 10));
  assert_true(wait_drained(s));
  assert_int_equal(epochs_received(f->srv), 1ul << 3);
  chub_session_close(s);
}

/* The final sync against a hub that keeps failing stops at its deadline,
 * says how to finish, and `chub sync` finishes once the hub is back. */
static void test_final_deadline_then_sync(void **state) {
  fixture *f = *state;
  core_test_set("rate_limit_metrics", "3600");
  core_test_set("final_sync_deadline", "1");
  chub_add_integration_callbacks(f->cb);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_START, &f->t);
  assert_non_null(f->t.hub_session);
  char run[64];
  snprintf(run, sizeof run, "%s", chub_session_run_id(f->t.hub_session));
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_END, &f->t);
  run_epoch(f, 0);
  run_epoch(f, 1);
  core_test_write_file(f->best, 10000, 3);
  for (int i = 0; i < 200; i++)
    fakehub_script(f->srv, ROUTE_METRICS,
                   (fakehub_reply){.status = 503, .retry_after = -1});
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_END, &f->t);
  assert_null(f->t.hub_session);
  assert_true(th_log_wait_contains("everything stays spooled", 5000));
  char hint[96];
  snprintf(hint, sizeof hint, "chub sync %s", run);
  assert_true(th_log_wait_contains(hint, 5000));
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 0);
  fakehub_clear_script(f->srv);
  size_t before = fakehub_count(f->srv, ROUTE_METRICS);
  assert_int_equal(chub_sync_run(run), CHUB_OK);
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), before + 1);
  assert_int_equal(epochs_received(f->srv) & 0x3, 0x3);
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 1);
}

/* Usage-event callbacks return at once and, under tests, send nothing. */
static void test_event_callbacks(void **state) {
  fixture *f = *state;
  chub_add_integration_callbacks(f->cb);
  chub_validator v = {.args = f->t.args, .training = false};
  chub_predictor p = {.args = f->t.args};
  chub_exporter x = {.args = f->t.args};
  x.args.format = "onnx";
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_START, &f->t);
  chub_callbacks_run(f->cb, CHUB_ON_VAL_START, &v);
  chub_callbacks_run(f->cb, CHUB_ON_PREDICT_START, &p);
  chub_callbacks_run(f->cb, CHUB_ON_EXPORT_START, &x);
  assert_int_equal(chub_callbacks_count(f->cb, CHUB_ON_VAL_START), 1);
  assert_false(fakehub_wait(f->srv, ROUTE_EVENTS, 1, 0.3));
  /* Without a session the training callbacks do nothing at all. */
  chub_callbacks_run(f->cb, CHUB_ON_FIT_EPOCH_END, &f->t);
  chub_callbacks_run(f->cb, CHUB_ON_MODEL_SAVE, &f->t);
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_END, &f->t);
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), 0);
}

/* With the hub sitting on a request, callbacks still return at once, and
 * closing returns (bounded by the close grace) keeping every epoch. */
static void test_close_with_slow_hub(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  fakehub_script(f->srv, ROUTE_METRICS,
                 (fakehub_reply){.delay_ms = 60000, .retry_after = -1});
  chub_session_queue_metrics(s, 0, "{\"a\": 1}");
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 1, 10));
  assert_int_equal(pending_metrics(s), 1);
  /* While the hub sits on that request, more epochs spool at once: a
   * blocking callback would wait out the 60 s answer (past the test's
   * timeout) for each of them. */
  for (int e = 1; e <= 5; e++) {
    assert_int_equal(chub_session_queue_metrics(s, e, "{\"a\": 2}"), CHUB_OK);
    assert_int_equal(chub_session_flush_metrics(s), CHUB_OK);
  }
  assert_int_equal(pending_metrics(s), 6);
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), 1);
  chub_session_close(s);
}

static size_t pending_checkpoints(chub_session *s) {
  size_t m = 0, c = 0;
  bool fin = false;
  spool_pending_counts(session_spool(s), &m, &c, &fin);
  return c + (fin ? 1 : 0);
}

static bool wait_no_checkpoints(chub_session *s) {
  for (int i = 0; i < 1000; i++) {
    if (pending_checkpoints(s) == 0)
      return true;
    usleep(10000);
  }
  return false;
}

/* A checkpoint file rewritten in place while it was being uploaded may
 * have been sent torn: it stays queued and the next upload sends the file
 * as it is now, with that content's digest. */
static void test_torn_checkpoint_is_sent_again(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  core_test_write_file(f->last, 3000, 1);
  fakehub_script(f->srv, ROUTE_UPLOAD,
                 (fakehub_reply){.delay_ms = 500, .retry_after = -1});
  assert_int_equal(chub_session_queue_checkpoint(s, 0, f->last, true), CHUB_OK);
  /* The server has the whole body and sits on its answer: rewrite now. */
  assert_true(fakehub_wait(f->srv, ROUTE_UPLOAD, 1, 10));
  core_test_write_file(f->last, 3500, 2);
  for (int i = 0; i < 500 && !th_log_contains("changed while it was uploaded");
       i++)
    usleep(10000);
  assert_true(th_log_wait_contains("changed while it was uploaded", 5000));
  assert_int_equal(pending_checkpoints(s), 1);
  sender_post(session_sender(s), SENDER_CHECKPOINT);
  assert_true(fakehub_wait(f->srv, ROUTE_UPLOAD, 2, 10));
  assert_true(wait_no_checkpoints(s));
  char want[65];
  sha256_file(f->last, want);
  const fakehub_request *r = fakehub_find(f->srv, ROUTE_UPLOAD, 1);
  assert_non_null(r);
  assert_string_equal(r->sha256_header, want);
  chub_session_close(s);
}

/* Checkpoints queued while an older one is still uploading supersede each
 * other: only the newest is sent next. */
static void test_superseded_checkpoints_dropped(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  core_test_write_file(f->last, 2000, 1);
  fakehub_script(f->srv, ROUTE_UPLOAD,
                 (fakehub_reply){.delay_ms = 300, .retry_after = -1});
  chub_session_queue_checkpoint(s, 0, f->last, false);
  assert_true(fakehub_wait(f->srv, ROUTE_UPLOAD, 1, 10));
  chub_session_queue_checkpoint(s, 1, f->last, false);
  chub_session_queue_checkpoint(s, 2, f->last, true);
  assert_true(fakehub_wait(f->srv, ROUTE_UPLOAD, 2, 10));
  assert_true(wait_no_checkpoints(s));
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 2);
  const fakehub_request *r = fakehub_find(f->srv, ROUTE_UPLOAD, 1);
  assert_non_null(r);
  size_t len = 0;
  const char *epoch = fakehub_part(r, "epoch", &len);
  assert_non_null(epoch);
  assert_memory_equal(epoch, "2", len);
  const char *best = fakehub_part(r, "isBest", &len);
  assert_memory_equal(best, "True", len);
  chub_session_close(s);
}

/* Without best weights the final sync still delivers every metric and
 * says why no weights went; on a non-terminal it prints progress lines. */
static void test_final_without_weights(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  chub_session_queue_metrics(s, 0, "{\"a\": 1}");
  chub_session_queue_metrics(s, 1, "{\"a\": 2}");
  char missing[300];
  snprintf(missing, sizeof missing, "%s/nope/best.pt", f->env.root);
  assert_int_equal(chub_session_upload_final(s, 1, missing, 0.5, 30), CHUB_OK);
  assert_true(th_log_wait_contains("no best weights at", 5000));
  assert_int_equal(epochs_received(f->srv), 0x3);
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 0);
  chub_session_close(s);
  /* With weights: a progress line reaches the log (stderr is not a tty
   * under ctest). */
  s = open_session(f);
  core_test_write_file(f->best, 200000, 5);
  assert_int_equal(chub_session_upload_final(s, 1, f->best, 0.5, 30), CHUB_OK);
  if (!isatty(STDERR_FILENO))
    assert_true(th_log_wait_contains("Uploading best.pt: ", 5000));
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 1);
  chub_session_close(s);
}

/* A long backlog goes in batches of at most 100 epochs per request, every
 * epoch exactly once. */
static void test_backlog_in_batches(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  for (int e = 0; e < 250; e++)
    assert_int_equal(chub_session_queue_metrics(s, e, "{\"l\": 0.5}"), CHUB_OK);
  chub_session_flush_metrics(s);
  assert_true(fakehub_wait(f->srv, ROUTE_METRICS, 3, 20));
  assert_true(wait_drained(s));
  assert_int_equal(fakehub_count(f->srv, ROUTE_METRICS), 3);
  size_t total = 0;
  for (size_t i = 0; i < 3; i++) {
    json_t *m = metrics_upload(f->srv, i);
    assert_true(json_object_size(m) <= 100);
    total += json_object_size(m);
    json_decref(m);
  }
  assert_int_equal(total, 250);
  chub_session_close(s);
}

/* The callbacks open no session on a rank other than -1/0, nor without a
 * key in online mode (as the reference gates on the key). */
static void test_pretrain_gates(void **state) {
  fixture *f = *state;
  chub_add_integration_callbacks(f->cb);
  setenv("RANK", "1", 1);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_START, &f->t);
  unsetenv("RANK");
  assert_null(f->t.hub_session);
  unsetenv("CHUB_API_KEY");
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_START, &f->t);
  assert_null(f->t.hub_session);
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 0);
  /* Offline mode opens a local run even without a key. */
  setenv("CHUB_MODE", "offline", 1);
  chub_callbacks_run(f->cb, CHUB_ON_PRETRAIN_ROUTINE_START, &f->t);
  unsetenv("CHUB_MODE");
  assert_non_null(f->t.hub_session);
  assert_null(chub_session_model_id(f->t.hub_session));
  chub_callbacks_run(f->cb, CHUB_ON_TRAIN_END, &f->t);
  assert_null(f->t.hub_session);
  assert_true(th_log_wait_contains(
      "is saved offline; upload it with: chub sync", 5000));
  assert_int_equal(fakehub_count(f->srv, ROUTE_CREATE), 0);
  /* A run that does not exist is named in the error. */
  assert_int_equal(chub_sync_run("no-such-run"), CHUB_EINVAL);
  assert_true(th_log_wait_contains("no run no-such-run", 5000));
}

/* A body over the hub's limit (413) is split until it fits; a single
 * epoch the hub never takes is dropped with a line saying so, so that it
 * does not hold back the epochs after it. */
static void test_too_large_splits(void **state) {
  fixture *f = *state;
  chub_session *s = open_session(f);
  for (int e = 0; e < 4; e++)
    chub_session_queue_metrics(s, e, "{\"l\": 1}");
  /* 4 epochs -> 413, 2 -> 413, 1 (epoch 0) -> 413: dropped; then the rest. */
  for (int i = 0; i < 3; i++)
    fakehub_script(f->srv, ROUTE_METRICS,
                   (fakehub_reply){.status = 413, .retry_after = -1});
  chub_session_flush_metrics(s);
  assert_true(wait_drained(s));
  assert_true(th_log_wait_contains("epoch 0 of model", 5000));
  assert_true(th_log_wait_contains("larger than the hub accepts", 5000));
  /* The three refused requests carried 4, 2 and 1 epochs; what came after
   * them carried epochs 1-3, each once. */
  size_t n = fakehub_count(f->srv, ROUTE_METRICS);
  assert_true(n >= 4);
  json_t *m = metrics_upload(f->srv, 0);
  assert_int_equal(json_object_size(m), 4);
  json_decref(m);
  m = metrics_upload(f->srv, 1);
  assert_int_equal(json_object_size(m), 2);
  json_decref(m);
  m = metrics_upload(f->srv, 2);
  assert_int_equal(json_object_size(m), 1);
  assert_non_null(json_object_get(m, "0"));
  json_decref(m);
  unsigned long later = 0;
  size_t count = 0;
  for (size_t i = 3; i < n; i++) {
    m = metrics_upload(f->srv, i);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
      later |= 1ul << atoi(k);
      count++;
    }
    json_decref(m);
  }
  assert_int_equal(later, 0xe);
  assert_int_equal(count, 3);
  chub_session_close(s);
}

/* A run left by a killed trainer may hold checkpoints whose files no
 * longer hold what was queued: empty, or rewritten in place (perhaps cut
 * short by the kill). `chub sync` drops those with a line saying so, never
 * uploads them, and still sends the rest. */
static void test_sync_drops_gone_checkpoints(void **state) {
  fixture *f = *state;
  setenv("CHUB_MODE", "offline", 1);
  chub_session *s = NULL;
  assert_int_equal(chub_session_open("yolo11n.pt", &f->t.args, &s),
                   CHUB_EOFFLINE);
  char run[64];
  snprintf(run, sizeof run, "%s", chub_session_run_id(s));
  char empty[300], rewritten[300];
  snprintf(empty, sizeof empty, "%s/empty.pt", f->env.root);
  snprintf(rewritten, sizeof rewritten, "%s/rewritten.pt", f->env.root);
  core_test_write_file(empty, 0, 0);
  core_test_write_file(f->last, 4000, 4);
  core_test_write_file(rewritten, 6000, 6);
  chub_session_queue_metrics(s, 0, "{\"a\": 1}");
  chub_session_queue_checkpoint(s, 0, empty, false);
  chub_session_queue_checkpoint(s, 1, f->last, true);
  chub_session_queue_checkpoint(s, 2, rewritten, false);
  chub_session_close(s);
  /* Cut short after it was queued, as a kill mid-save leaves it. */
  core_test_write_file(rewritten, 2500, 7);
  unsetenv("CHUB_MODE");
  assert_int_equal(chub_sync_run(run), CHUB_OK);
  assert_true(th_log_wait_contains("empty.pt (epoch 0) is empty", 5000));
  assert_true(th_log_wait_contains("rewritten since it was queued", 5000));
  assert_int_equal(fakehub_count(f->srv, ROUTE_UPLOAD), 1);
  const fakehub_request *r = fakehub_find(f->srv, ROUTE_UPLOAD, 0);
  assert_non_null(r);
  size_t len = 0;
  const char *epoch = fakehub_part(r, "epoch", &len);
  assert_non_null(epoch);
  assert_memory_equal(epoch, "1", len);
  char want[65];
  sha256_file(f->last, want);
  assert_string_equal(r->sha256_header, want);
  assert_int_equal(epochs_received(f->srv), 0x1);
}

int main(void) {
  setenv("CHUB_TESTING", "1", 1);
#define T(name)                                                                \
  cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
  const struct CMUnitTest tests[] = {
      T(test_training_run),
      T(test_retryable_statuses),
      T(test_give_up_then_merge),
      T(test_no_retry_on_client_errors),
      T(test_rate_limited),
      T(test_rate_limits_hold),
      T(test_heartbeat_agent_id),
      T(test_heartbeat_system),
      T(test_heartbeat_system_off),
      T(test_heartbeat_system_refused),
      T(test_heartbeat_400_keeps_system),
      T(test_offline_then_sync),
      T(test_open_failures),
      T(test_load_and_resume_run),
      T(test_final_deadline_then_sync),
      T(test_event_callbacks),
      T(test_close_with_slow_hub),
      T(test_torn_checkpoint_is_sent_again),
      T(test_superseded_checkpoints_dropped),
      T(test_final_without_weights),
      T(test_backlog_in_batches),
      T(test_pretrain_gates),
      T(test_too_large_splits),
      T(test_sync_drops_gone_checkpoints),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

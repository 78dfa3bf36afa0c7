/*
 * server_platform.c - conformance: Ultralytics Platform's webhooks
 * (ultralytics-clients.md part A) against chubd, with the request shapes
 * ultralytics 8.4 sends, and the projects, stop and console endpoints
 * around them (README "Ultralytics Platform runs against chubd").
 *
 * Each test plays part of a run with `Authorization: Bearer KEY`, the only
 * header Platform sends, and checks what a user would see through chubd's
 * own API: the model, its metrics, its checkpoints byte for byte, its
 * project. Retries are answered without storing twice; another owner's key
 * finds nothing; bad input is refused with a 4xx naming the problem and
 * stores nothing.
 */
#include "sv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "zipbuild.h"

#define PF_METRICS "/api/webhooks/training/metrics"
#define PF_UPLOAD "/api/webhooks/models/upload"

/* Sends METHOD path with Bearer key (NULL: no auth) and JSON body; the
 * answer in *out. */
static void pf_send(chubd_proc *p, const char *method, const char *path,
                    const char *key, const char *json, th_response *out) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *auth = key ? th_fmt("Authorization: Bearer %s", key) : NULL;
  const char *hdrs[] = {"Content-Type: application/json",
                        auth ? auth : "X-None: 1", NULL};
  if (th_request_hdrs(method, url, hdrs, json, json ? strlen(json) : 0, out) !=
      0) {
    chubd_proc_dump_log(p, 4096);
    fail_msg("%s %s: no answer from chubd", method, path);
  }
  free(auth);
  free(url);
}

/* POSTs json to path with Bearer key, asserts status `want`, returns the
 * parsed answer. */
static json_t *pf_post(chubd_proc *p, const char *path, const char *key,
                       const char *json, long want) {
  th_response r;
  pf_send(p, "POST", path, key, json, &r);
  json_t *o = th_json_parse(r.body);
  if (r.status != want || !o) {
    fprintf(stderr, "pf: POST %s %.300s\n  -> %ld %.500s\n", path, json,
            r.status, r.body);
    fail_msg("POST %s: expected %ld, got %ld", path, want, r.status);
  }
  th_response_free(&r);
  return o;
}

/* The message of an error answer (Platform logs `error`, chub `message`):
 * both there, and containing needle. */
static void pf_error_has(json_t *o, const char *needle) {
  const char *e = th_json_str(o, "error");
  const char *m = th_json_str(o, "message");
  assert_non_null(e);
  assert_non_null(m);
  if (!strstr(e, needle))
    fail_msg("error \"%s\" does not mention \"%s\"", e, needle);
}

/* The count sql answers on p's database, SQLite or PostgreSQL. */
static long pf_count(chubd_proc *p, const char *sql) {
  if (chubd_proc_db(p)) {
    char *n = chubd_proc_db_query(p, sql);
    assert_non_null(n);
    long v = atol(n);
    free(n);
    return v;
  }
  char *path = sv_find_sqlite(chubd_proc_data_dir(p));
  assert_non_null(path);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long v = (long)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(path);
  return v;
}

/* Rows a run keeps besides the model's own: console, documents, system
 * samples, run. */
static long pf_rows_of(chubd_proc *p, const char *id) {
  char *sql = th_fmt("SELECT (SELECT count(*) FROM console WHERE model_id = "
                     "'%s') + (SELECT count(*) FROM model_docs WHERE "
                     "model_id = '%s') + (SELECT count(*) FROM model_system "
                     "WHERE model_id = '%s') + (SELECT count(*) FROM runs "
                     "WHERE model_id = '%s')",
                     id, id, id, id);
  long n = pf_count(p, sql);
  free(sql);
  return n;
}

/* training_started for project/name; returns the modelId (malloc'd). */
static char *pf_start(chubd_proc *p, const char *key, const char *project,
                      const char *name) {
  char *body = th_fmt(
      "{\"event\": \"training_started\", \"project\": \"%s\", \"name\": "
      "\"%s\", \"data\": {\"trainArgs\": {\"model\": \"yolo11n.pt\", "
      "\"data\": \"coco8.yaml\", \"epochs\": \"3\", \"batch\": \"16\", "
      "\"imgsz\": \"640\", \"device\": \"cpu\"}, \"epochs\": 3, \"device\": "
      "\"cpu\", \"environment\": {\"os\": \"Linux\", \"python\": \"3.12\"}}}",
      project, name);
  th_response r;
  pf_send(p, "POST", PF_METRICS, key, body, &r);
  free(body);
  if (r.status != 200 && r.status != 201)
    fail_msg("training_started answered %ld: %.300s", r.status, r.body);
  json_t *o = th_json_parse(r.body);
  assert_non_null(o);
  const char *id = th_json_str(o, "modelId");
  assert_true(id && sv_is_alnum(id, 20));
  sv_assert_str(th_json_str(o, "modelSlug"), name);
  assert_int_equal(th_json_bool(o, "cancelled"), 0);
  char *out = strdup(id);
  json_decref(o);
  th_response_free(&r);
  return out;
}

static json_t *pf_event(chubd_proc *p, const char *key, const char *id,
                        const char *event, const char *data, long want) {
  char *body = th_fmt("{\"event\": \"%s\", \"project\": \"proj\", \"name\": "
                      "\"train\", \"modelId\": \"%s\", \"data\": %s}",
                      event, id, data);
  json_t *o = pf_post(p, PF_METRICS, key, body, want);
  free(body);
  return o;
}

static int pf_epoch_cancelled(chubd_proc *p, const char *key, const char *id,
                              int epoch) {
  char *data = th_fmt("{\"epoch\": %d, \"metrics\": {\"train/box_loss\": "
                      "%d.5, \"metrics/mAP50-95(B)\": 0.%d, \"val/cls_loss\": "
                      "null}, \"system\": {\"cpu\": 12.5, \"ram\": 40.1, "
                      "\"gpus\": []}, \"fitness\": 0.3, \"best_fitness\": "
                      "0.3}",
                      epoch, 3 - epoch, epoch + 1);
  json_t *o = pf_event(p, key, id, "epoch_end", data, 200);
  free(data);
  int c = th_json_bool(o, "cancelled");
  json_decref(o);
  assert_true(c == 0 || c == 1);
  return c;
}

/* A run as ultralytics plays it: start (twice: the same run is found
 * again), epochs (one retried with other values: replaced), and the
 * metrics in chubd's own metrics endpoint under HUB's numbering, nulls
 * dropped, modelInfo under HUB's names. */
static void server_platform_run_metrics(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "train");
  char *again = pf_start(p, key, "proj", "train");
  sv_assert_str(again, id);
  free(again);

  json_t *o = pf_event(p, key, id, "epoch_end",
                       "{\"epoch\": 0, \"metrics\": {\"train/box_loss\": 9, "
                       "\"lr\": {\"pg0\": 0.01}}, \"modelInfo\": "
                       "{\"parameters\": 2590620, \"gflops\": 6.4, "
                       "\"speedMs\": 1.5}}",
                       200);
  assert_int_equal(th_json_bool(o, "cancelled"), 0);
  json_decref(o);
  /* The retry of epoch 0 replaces it. */
  o = pf_event(p, key, id, "epoch_end",
               "{\"epoch\": 0, \"metrics\": {\"train/box_loss\": 2.5, "
               "\"val/box_loss\": null}, \"modelInfo\": {\"parameters\": "
               "2590620, \"gflops\": 6.5, \"speedMs\": 1.5}}",
               200);
  json_decref(o);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 1), 0);

  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 2);
  assert_int_equal(th_json_int(env, "data.0.epoch", -1), 0);
  assert_true(
      json_real_value(th_json_at(env, "data.0.metrics.train/box_loss")) == 2.5);
  assert_null(th_json_at(env, "data.0.metrics.val/box_loss"));
  assert_int_equal(th_json_int(env, "data.0.metrics.model/parameters", -1),
                   2590620);
  assert_non_null(th_json_at(env, "data.0.metrics.model/GFLOPs"));
  assert_null(th_json_at(env, "data.0.metrics.lr/pg0")); /* replaced */
  assert_int_equal(th_json_int(env, "data.1.epoch", -1), 1);
  assert_null(th_json_at(env, "data.1.metrics.val/cls_loss"));
  json_decref(env);
  free(path);

  /* The model is a model like a HUB one: in the list, with its config. */
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "meta.name"), "train");
  sv_assert_str(th_json_str(m, "status"), "training");
  assert_int_equal(th_json_int(m, "epochs", -1), 3);
  assert_int_equal(th_json_int(m, "batch_size", -1), 16);
  sv_assert_str(th_json_str(m, "data"), "coco8.yaml");
  sv_assert_str(th_json_str(m, "device"), "cpu");
  assert_int_equal(json_string_length(th_json_at(m, "device")), 3);
  json_decref(m);
  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  int found = 0;
  json_t *list = th_json_at(env, "data.results");
  for (size_t i = 0; i < json_array_size(list); i++)
    found += strcmp(th_json_str(json_array_get(list, i), "id"), id) == 0;
  assert_int_equal(found, 1);
  json_decref(env);
  free(id);
}

typedef struct pf_racer {
  chubd_proc *p;
  const char *key;
  long status;
  char id[21];
} pf_racer;

/* One training_started of run "race", no cmocka calls (another thread). */
static void *pf_race(void *arg) {
  pf_racer *r = arg;
  char *url = th_fmt("%s%s", chubd_proc_base_url(r->p), PF_METRICS);
  char *auth = th_fmt("Authorization: Bearer %s", r->key);
  const char *hdrs[] = {"Content-Type: application/json", auth, NULL};
  const char *body = "{\"event\": \"training_started\", \"project\": "
                     "\"racing\", \"name\": \"race\", \"data\": {}}";
  th_response out;
  r->status = -1;
  if (th_request_hdrs("POST", url, hdrs, body, strlen(body), &out) == 0) {
    r->status = out.status;
    json_t *o = out.body ? json_loads(out.body, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(o, "modelId"));
    if (id)
      snprintf(r->id, sizeof r->id, "%s", id);
    json_decref(o);
    th_response_free(&out);
  }
  free(auth);
  free(url);
  return NULL;
}

/* Starts of one run racing each other (a client retrying while its first
 * request is still being answered) end with one model: every answer
 * names it, and the project holds it alone. */
static void server_platform_start_race(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "racer");
  assert_non_null(key);
  pf_racer r[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    memset(&r[i], 0, sizeof r[i]);
    r[i].p = p;
    r[i].key = key;
    assert_int_equal(pthread_create(&t[i], NULL, pf_race, &r[i]), 0);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 8; i++) {
    assert_true(r[i].status == 200 || r[i].status == 201);
    sv_assert_str(r[i].id, r[0].id);
  }
  json_t *env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 1);
  sv_assert_str(th_json_str(env, "data.results.0.id"), r[0].id);
  json_decref(env);
  free(key);
}

/* Console chunks: stored in order, once per chunkId; without modelId
 * answered and not stored; an oversized chunk refused with 413. */
static void server_platform_console(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "console-run");
  const char *chunks[] = {"a1", "a2", "a1", "a3"};
  for (int i = 0; i < 4; i++) {
    char *data = th_fmt("{\"chunkId\": \"%s\", \"content\": \"line %s\\n\", "
                        "\"lineCount\": 1}",
                        chunks[i], chunks[i]);
    json_t *o = pf_event(p, key, id, "console_output", data, 200);
    assert_int_equal(th_json_bool(o, "stored"), i == 2 ? 0 : 1);
    json_decref(o);
    free(data);
  }
  /* No modelId: training_started failed; answered, nothing stored. */
  json_t *o = pf_post(p, PF_METRICS, key,
                      "{\"event\": \"console_output\", \"project\": \"proj\", "
                      "\"name\": \"console-run\", \"data\": {\"chunkId\": "
                      "\"zz\", \"content\": \"orphan\\n\", \"lineCount\": 1}}",
                      202);
  assert_int_equal(th_json_bool(o, "stored"), 0);
  json_decref(o);
  /* Over the per-chunk limit (256 KiB). */
  size_t big = 300 * 1024;
  char *content = malloc(big + 1);
  memset(content, 'x', big);
  content[big] = '\0';
  char *data = th_fmt("{\"chunkId\": \"huge\", \"content\": \"%s\", "
                      "\"lineCount\": 1}",
                      content);
  char *body = th_fmt("{\"event\": \"console_output\", \"project\": \"proj\", "
                      "\"name\": \"console-run\", \"modelId\": \"%s\", "
                      "\"data\": %s}",
                      id, data);
  o = pf_post(p, PF_METRICS, key, body, 413);
  pf_error_has(o, "data.content");
  json_decref(o);
  free(body);
  free(data);
  free(content);

  char *path = th_fmt("/v1/models/%s/console", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  json_t *got = th_json_at(env, "data.chunks");
  assert_int_equal(json_array_size(got), 3);
  sv_assert_str(th_json_str(env, "data.chunks.0.chunkId"), "a1");
  sv_assert_str(th_json_str(env, "data.chunks.1.chunkId"), "a2");
  sv_assert_str(th_json_str(env, "data.chunks.2.chunkId"), "a3");
  sv_assert_str(th_json_str(env, "data.chunks.2.content"), "line a3\n");
  json_decref(env);
  free(path);

  /* The page's live tail: after the last seq seen, a page at a time. */
  path = th_fmt("/v1/models/%s/console?limit=2", id);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.chunks")), 2);
  assert_int_equal(th_json_bool(env, "data.more"), 1);
  long long after = th_json_int(env, "data.next", -1);
  assert_int_equal(after, th_json_int(env, "data.chunks.1.seq", -2));
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/console?after=%lld", id, after);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.chunks")), 1);
  sv_assert_str(th_json_str(env, "data.chunks.0.chunkId"), "a3");
  assert_int_equal(th_json_bool(env, "data.more"), 0);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/console?after=-1", id);
  env = sv_expect(p, "GET", path, key, NULL, 400);
  assert_true(sv_message_has(env, "after"));
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/console?format=html", id);
  env = sv_expect(p, "GET", path, key, NULL, 400);
  assert_true(sv_message_has(env, "format"));
  json_decref(env);
  free(path);
  /* The whole log as a file. */
  long status = 0;
  char *text = NULL, *headers = NULL;
  char *url =
      th_fmt("%s/v1/models/%s/console?format=text", chubd_proc_base_url(p), id);
  assert_int_equal(
      th_request("GET", url, key, NULL, NULL, 0, &status, &text, &headers), 0);
  assert_int_equal(status, 200);
  sv_assert_str(text, "line a1\nline a2\nline a3\n");
  char *cd = th_header(headers, "content-disposition");
  assert_non_null(cd);
  assert_non_null(strstr(cd, "attachment"));
  assert_non_null(strstr(cd, id));
  free(cd);
  free(text);
  free(headers);
  free(url);

  /* A reset (POST /model-reset) drops the console and documents with the
   * metrics; the run keeps its model. */
  assert_true(pf_rows_of(p, id) >= 5); /* 3 chunks, start, stop, run */
  char *reset = th_fmt("{\"modelId\": \"%s\"}", id);
  env = sv_expect(p, "POST", "/model-reset", key, reset, 200);
  json_decref(env);
  free(reset);
  assert_int_equal(pf_rows_of(p, id), 1); /* the run */
  path = th_fmt("/v1/models/%s/console", id);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.chunks")), 0);
  json_decref(env);
  free(path);
  json_t *again = pf_event(p, key, id, "console_output",
                           "{\"chunkId\": \"a1\", \"content\": \"x\", "
                           "\"lineCount\": 1}",
                           200);
  assert_int_equal(th_json_bool(again, "stored"), 1);
  json_decref(again);

  /* A hard delete takes the run's console and documents with it. */
  path = th_fmt("/v1/models/%s?hard=true", id);
  env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  free(path);
  assert_int_equal(pf_rows_of(p, id), 0);
  char *next = pf_start(p, key, "proj", "console-run");
  assert_string_not_equal(next, id);
  free(next);
  free(id);
}

/* The per-model console bound: 4 MiB kept, then new chunks are answered
 * 200 with stored: false and full: true and not stored; the first ones
 * stay. */
static void server_platform_console_full(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "chatty");
  size_t len = 256 * 1024; /* the largest chunk taken */
  char *content = malloc(len + 1);
  memset(content, 'y', len);
  content[len] = '\0';
  for (int i = 0; i < 17; i++) {
    char *data = th_fmt("{\"chunkId\": \"k%d\", \"content\": \"%s\", "
                        "\"lineCount\": 1}",
                        i, content);
    json_t *o = pf_event(p, key, id, "console_output", data, 200);
    assert_int_equal(th_json_bool(o, "stored"), i < 16);
    if (i == 16) {
      assert_int_equal(th_json_bool(o, "full"), 1);
      assert_non_null(strstr(th_json_str(o, "message"), "4194304"));
    }
    json_decref(o);
    free(data);
  }
  char *path = th_fmt("/v1/models/%s/console", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.chunks")), 16);
  sv_assert_str(th_json_str(env, "data.chunks.0.chunkId"), "k0");
  sv_assert_str(th_json_str(env, "data.chunks.15.chunkId"), "k15");
  json_decref(env);
  free(path);
  free(content);
  free(id);
}

/* The two-step upload: a signed URL on chubd, a PUT without auth, the
 * checkpoint downloadable byte for byte; training_complete makes the
 * best.pt the final weights and the model trained; the ul:// HEAD
 * redirects to it. Altered and expired URLs get 403 saying which. */
static void server_platform_upload(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "upload-run");
  assert_int_equal(pf_epoch_cancelled(p, key, id, 0), 0);
  char *body = th_fmt("{\"project\": \"proj\", \"name\": \"upload-run\", "
                      "\"filename\": \"best.pt\", \"modelId\": \"%s\"}",
                      id);
  json_t *o = pf_post(p, PF_UPLOAD, key, body, 200);
  free(body);
  const char *u = th_json_str(o, "uploadUrl");
  assert_non_null(u);
  assert_true(
      strncmp(u, chubd_proc_base_url(p), strlen(chubd_proc_base_url(p))) == 0);
  char *url = strdup(u);
  json_decref(o);

  size_t len = 200000;
  unsigned char *bytes = sv_bytes(len, 41);
  char hex[65];
  th_sha256_hex(bytes, len, hex);
  const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
  th_response r;
  /* Altered: another file name under the same signature. */
  char *bad = strdup(url);
  char *at = strstr(bad, "best.pt");
  assert_non_null(at);
  memcpy(at, "last", 4);
  assert_int_equal(th_request_hdrs("PUT", bad, hdrs, bytes, len, &r), 0);
  assert_int_equal(r.status, 403);
  assert_non_null(strstr(r.body, "signature does not match"));
  th_response_free(&r);
  free(bad);
  /* Tampered expiry: a later one under the same signature. */
  bad = strdup(url);
  at = strstr(bad, "expires=");
  assert_non_null(at);
  at[8] = '9';
  assert_int_equal(th_request_hdrs("PUT", bad, hdrs, bytes, len, &r), 0);
  assert_int_equal(r.status, 403);
  assert_non_null(strstr(r.body, "upload URL signature does not match"));
  th_response_free(&r);
  free(bad);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), bytes, len, 0), 0);

  assert_int_equal(th_request_hdrs("PUT", url, hdrs, bytes, len, &r), 0);
  if (r.status != 200)
    fail_msg("PUT uploadUrl answered %ld: %s", r.status, r.body);
  json_t *env = th_json_parse(r.body);
  sv_assert_str(th_json_str(env, "data.sha256"), hex);
  json_decref(env);
  th_response_free(&r);

  /* Downloadable byte for byte through the weights endpoints. */
  char *path =
      th_fmt("%s/v1/models/%s/weights/best", chubd_proc_base_url(p), id);
  assert_int_equal(
      th_request("GET", path, key, NULL, NULL, 0, &r.status, &r.body, NULL), 0);
  assert_int_equal(r.status, 200);
  free(r.body);
  free(path);
  path = th_fmt("%s/v1/models/%s/weights/%s", chubd_proc_base_url(p), id, hex);
  th_response d;
  const char *kh[] = {NULL, NULL};
  char *xk = th_fmt("x-api-key: %s", key);
  kh[0] = xk;
  assert_int_equal(th_request_hdrs("GET", path, kh, NULL, 0, &d), 0);
  assert_int_equal(d.status, 200);
  assert_int_equal(d.body_len, len);
  assert_memory_equal(d.body, bytes, len);
  th_response_free(&d);
  free(path);
  free(xk);

  o = pf_event(p, key, id, "training_complete",
               "{\"results\": {\"metrics\": {\"metrics/mAP50-95(B)\": 0.42}, "
               "\"bestEpoch\": 0, \"bestFitness\": 0.3, \"modelSize\": "
               "200000}, \"classNames\": [\"a\", \"b\"], \"plots\": "
               "{\"pr_curve\": {\"x\": [0, 1], \"y\": [1, 0], \"ap\": [0.5]}}}",
               200);
  json_decref(o);
  /* A retried training_complete changes nothing. */
  o = pf_event(p, key, id, "training_complete", "{\"results\": {}}", 200);
  json_decref(o);
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "status"), "trained");
  json_t *ck = th_json_at(m, "checkpoints");
  int finals = 0;
  for (size_t i = 0; i < json_array_size(ck); i++) {
    json_t *c = json_array_get(ck, i);
    if (strcmp(th_json_str(c, "type"), "final") == 0) {
      finals++;
      sv_assert_str(th_json_str(c, "sha256"), hex);
    }
  }
  assert_int_equal(finals, 1);
  json_decref(m);

  /* ul://owner/proj/upload-run: a redirect to the signed best weights. */
  char *head = th_fmt("%s/api/webhooks/models/owner/proj/upload-run/download",
                      chubd_proc_base_url(p));
  char *auth = th_fmt("Authorization: Bearer %s", key);
  const char *ah[] = {auth, NULL};
  assert_int_equal(th_request_hdrs("HEAD", head, ah, NULL, 0, &r), 0);
  assert_true(r.status >= 300 && r.status < 400);
  char *loc = th_header(r.headers, "Location");
  assert_non_null(loc);
  assert_non_null(strstr(loc, hex));
  th_response_free(&r);
  /* The Location is fetched without auth, as ultralytics does. */
  assert_int_equal(th_request_hdrs("GET", loc, NULL, NULL, 0, &d), 0);
  assert_int_equal(d.status, 200);
  assert_int_equal(d.body_len, len);
  assert_memory_equal(d.body, bytes, len);
  th_response_free(&d);
  free(loc);
  free(head);
  /* Absent run: 404. */
  head = th_fmt("%s/api/webhooks/models/owner/proj/nothing/download",
                chubd_proc_base_url(p));
  assert_int_equal(th_request_hdrs("HEAD", head, ah, NULL, 0, &r), 0);
  assert_int_equal(r.status, 404);
  th_response_free(&r);
  free(head);
  free(auth);
  free(bytes);
  free(url);
  free(id);
}

/* An upload URL past its --url-ttl is refused as expired, and nothing
 * of the body is kept. */
static void server_platform_upload_expired(void **state) {
  (void)state;
  const char *args[] = {"--url-ttl", "1", NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "late");
  json_t *o = pf_post(p, PF_UPLOAD, key,
                      "{\"project\": \"proj\", \"name\": \"late\", "
                      "\"filename\": \"last.pt\"}",
                      200);
  char *url = strdup(th_json_str(o, "uploadUrl"));
  json_decref(o);
  size_t len = 4096;
  unsigned char *bytes = sv_bytes(len, 77);
  const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
  th_response r;
  /* The expiry is in whole seconds, now + 1: past it after 2 s at most
   * (a few more tries, bounded, for a slow machine). */
  long status = 0;
  sv_sleep_ms(2100);
  for (int i = 0; i < 5 && status != 403; i++) {
    if (i)
      sv_sleep_ms(200);
    assert_int_equal(th_request_hdrs("PUT", url, hdrs, bytes, len, &r), 0);
    status = r.status;
    if (status == 403)
      assert_non_null(strstr(r.body, "upload URL expired"));
    th_response_free(&r);
  }
  assert_int_equal(status, 403);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), bytes, len, 0), 0);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 0);
  json_decref(m);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(bytes);
  free(url);
  free(id);
}

/* ul:// of a dataset: HEAD .../datasets/{owner}/{slug}/export redirects
 * to the signed download of the owner's dataset of that slug (once it has
 * its file); absent, fileless or another owner's: 404. */
static void server_platform_dataset_export(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  json_t *env = sv_expect(p, "POST", "/v1/datasets", key,
                          "{\"meta\": {\"name\": \"Shapes Small\"}}", 200);
  char *id = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  char *auth = th_fmt("Authorization: Bearer %s", key);
  const char *ah[] = {auth, NULL};
  char *head = th_fmt("%s/api/webhooks/datasets/owner/shapes-small/export",
                      chubd_proc_base_url(p));
  th_response r;
  assert_int_equal(th_request_hdrs("HEAD", head, ah, NULL, 0, &r), 0);
  assert_int_equal(r.status, 404); /* no file yet */
  th_response_free(&r);

  const char *yaml = "path: .\ntrain: images\nval: images\nnames: {0: a}\n";
  unsigned char *img = sv_bytes(3000, 5);
  zb_file f[] = {{"data.yaml", 0, yaml, strlen(yaml), 0},
                 {"images/", 0, "", 0, 0},
                 {"images/0001.bin", 0, img, 3000, 0}};
  zb_zip z;
  assert_int_equal(zb_build(f, 3, NULL, &z), 0);
  char *url = th_fmt("%s/v1/datasets/%s/upload", chubd_proc_base_url(p), id);
  assert_int_equal(th_upload(url, key, NULL, "shapes.zip", "shapes.zip", z.buf,
                             z.len, NULL, NULL, &r),
                   0);
  assert_int_equal(r.status, 200);
  th_response_free(&r);
  free(url);

  assert_int_equal(th_request_hdrs("HEAD", head, ah, NULL, 0, &r), 0);
  assert_true(r.status >= 300 && r.status < 400);
  char *loc = th_header(r.headers, "Location");
  assert_non_null(loc);
  th_response_free(&r);
  th_response d;
  assert_int_equal(th_request_hdrs("GET", loc, NULL, NULL, 0, &d), 0);
  assert_int_equal(d.status, 200);
  assert_int_equal(d.body_len, z.len);
  assert_memory_equal(d.body, z.buf, z.len);
  th_response_free(&d);
  free(loc);

  /* Another owner, even naming this owner, finds nothing. */
  char *evil = chubd_proc_create_key(p, "eve");
  char *eauth = th_fmt("Authorization: Bearer %s", evil);
  const char *eh[] = {eauth, NULL};
  assert_int_equal(th_request_hdrs("HEAD", head, eh, NULL, 0, &r), 0);
  assert_int_equal(r.status, 404);
  th_response_free(&r);
  free(head);
  head = th_fmt("%s/api/webhooks/datasets/eve/shapes-small/export",
                chubd_proc_base_url(p));
  assert_int_equal(th_request_hdrs("HEAD", head, eh, NULL, 0, &r), 0);
  assert_int_equal(r.status, 404);
  th_response_free(&r);
  free(head);
  free(eauth);
  free(evil);
  free(auth);
  zb_free(&z);
  free(img);
  free(id);
}

/* A stop asked through /v1/models/{id}/stop: the next epoch_end answers
 * cancelled: true; a new start of the run clears it. */
static void server_platform_stop(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "stop-run");
  assert_int_equal(pf_epoch_cancelled(p, key, id, 0), 0);
  char *path = th_fmt("/v1/models/%s/stop", id);
  json_t *env = sv_expect(p, "POST", path, key, NULL, 200);
  json_decref(env);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 1), 1);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 1), 1); /* retry */
  char *again = pf_start(p, key, "proj", "stop-run");
  sv_assert_str(again, id);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 2), 0);
  free(again);
  free(path);
  /* Once its model is deleted (softly), the run starts a new model. */
  path = th_fmt("/v1/models/%s", id);
  json_t *del = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(del);
  again = pf_start(p, key, "proj", "stop-run");
  assert_string_not_equal(again, id);
  char *third = pf_start(p, key, "proj", "stop-run");
  sv_assert_str(third, again);
  free(third);
  free(again);
  free(path);
  free(id);
}

/* The machine's load: Platform's per-epoch `system` (a retried epoch
 * replaces its sample) and libchub's heartbeat `system` (by time), read
 * back in order after a seq; GET .../run says what the page may offer. */
static void server_platform_system(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "system-run");
  assert_int_equal(pf_epoch_cancelled(p, key, id, 0), 0);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 1), 0);
  json_t *o = pf_event(p, key, id, "epoch_end",
                       "{\"epoch\": 1, \"metrics\": {\"train/box_loss\": 1}, "
                       "\"system\": {\"cpu\": 99.5, \"ram\": 50, \"gpus\": "
                       "{\"0\": {\"usage\": 80, \"memory\": 30.5}}}}",
                       200);
  json_decref(o);
  char *path = th_fmt("/v1/models/%s/system", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.samples")), 2);
  assert_int_equal(th_json_int(env, "data.samples.0.epoch", -1), 0);
  assert_int_equal(th_json_int(env, "data.samples.1.epoch", -1), 1);
  assert_true(json_number_value(th_json_at(env, "data.samples.1.system.cpu")) ==
              99.5);
  assert_int_equal(th_json_int(env, "data.samples.1.system.gpus.0.usage", -1),
                   80);
  long long first = th_json_int(env, "data.samples.0.seq", -1);
  assert_true(th_json_int(env, "data.samples.0.t", 0) > 0);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/system?after=%lld&limit=1", id, first);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.samples")), 1);
  assert_int_equal(th_json_int(env, "data.samples.0.epoch", -1), 1);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/system?limit=0", id);
  env = sv_expect(p, "GET", path, key, NULL, 400);
  assert_true(sv_message_has(env, "limit"));
  json_decref(env);
  free(path);
  /* system must be an object. */
  o = pf_event(p, key, id, "epoch_end",
               "{\"epoch\": 2, \"metrics\": {}, \"system\": 5}", 400);
  pf_error_has(o, "system");
  json_decref(o);

  path = th_fmt("/v1/models/%s/run", id);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  sv_assert_str(th_json_str(env, "data.protocol"), "platform");
  assert_int_equal(th_json_bool(env, "data.stoppable"), 1);
  assert_int_equal(th_json_bool(env, "data.stopAsked"), 0);
  sv_assert_str(th_json_str(env, "data.start.trainArgs.model"), "yolo11n.pt");
  assert_true(json_is_null(th_json_at(env, "data.results")));
  assert_true(json_is_null(th_json_at(env, "data.cancelled")));
  json_decref(env);
  /* Stop: asked, then told at the next epoch, which the run page shows. */
  char *stop = th_fmt("/v1/models/%s/stop", id);
  env = sv_expect(p, "POST", stop, key, NULL, 200);
  json_decref(env);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(th_json_bool(env, "data.stopAsked"), 1);
  assert_true(json_is_null(th_json_at(env, "data.cancelled")));
  json_decref(env);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 2), 1);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.cancelled.epoch", -1), 2);
  json_decref(env);
  o = pf_event(p, key, id, "training_complete",
               "{\"results\": {\"metrics\": {\"metrics/mAP50-95(B)\": "
               "0.5}}, \"classNames\": [\"cat\", \"dog\"], \"plots\": "
               "{\"confusion_matrix\": {\"matrix\": [[3, 1], [0, 4]]}}}",
               200);
  json_decref(o);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(
      th_json_int(env, "data.results.plots.confusion_matrix.matrix.1.1", -1),
      4);
  sv_assert_str(th_json_str(env, "data.results.classNames.1"), "dog");
  json_decref(env);
  free(path);
  free(stop);

  /* A HUB model: load from heartbeats; it cannot be stopped. */
  char *hub = sv_create(p, key, "hub-run");
  path = th_fmt("/v1/agent/heartbeat/models/%s", hub);
  env = sv_expect(p, "POST", path, key,
                  "{\"agent\": \"chub\", \"agentId\": null, \"system\": "
                  "{\"cpu\": 7.5, \"ram\": 12, \"gpus\": {}}}",
                  200);
  json_decref(env);
  env = sv_expect(p, "POST", path, key,
                  "{\"agent\": \"chub\", \"agentId\": null, \"system\": "
                  "[1]}",
                  400);
  assert_true(sv_message_has(env, "system"));
  json_decref(env);
  size_t big = 20000;
  char *pad = malloc(big + 1);
  memset(pad, 'z', big);
  pad[big] = '\0';
  char *body = th_fmt("{\"agent\": \"chub\", \"agentId\": null, "
                      "\"system\": {\"note\": \"%s\"}}",
                      pad);
  env = sv_expect(p, "POST", path, key, body, 400);
  assert_true(sv_message_has(env, "16384"));
  json_decref(env);
  free(body);
  free(pad);
  free(path);
  path = th_fmt("/v1/models/%s/system", hub);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.samples")), 1);
  assert_true(json_is_null(th_json_at(env, "data.samples.0.epoch")));
  assert_true(json_number_value(th_json_at(env, "data.samples.0.system.cpu")) ==
              7.5);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/run", hub);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  sv_assert_str(th_json_str(env, "data.protocol"), "hub");
  assert_int_equal(th_json_bool(env, "data.stoppable"), 0);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/stop", hub);
  env = sv_expect(p, "POST", path, key, NULL, 409);
  assert_true(sv_message_has(env, "HUB protocol"));
  json_decref(env);
  free(path);
  /* Another owner sees none of it. */
  char *other = chubd_proc_create_key(p, "someone-else");
  path = th_fmt("/v1/models/%s/system", id);
  env = sv_expect(p, "GET", path, other, NULL, 404);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/run", id);
  env = sv_expect(p, "GET", path, other, NULL, 404);
  json_decref(env);
  free(path);
  free(other);
  free(hub);
  free(id);
}

/* Projects: made by the first run that names one, listed with its runs,
 * and the model list filtered by it; created, renamed and deleted by hand
 * in hub-sdk's style. */
static void server_platform_projects(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "projowner");
  assert_non_null(key);
  char *a = pf_start(p, key, "alpha", "train");
  char *b = pf_start(p, key, "alpha", "train2");
  char *c = pf_start(p, key, "projowner/beta", "train");
  assert_string_not_equal(a, c);
  json_t *env = sv_expect(p, "GET", "/v1/projects", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 2);
  sv_assert_str(th_json_str(env, "data.results.0.name"), "beta");
  sv_assert_str(th_json_str(env, "data.results.1.name"), "alpha");
  assert_int_equal(th_json_int(env, "data.results.1.models", -1), 2);
  char *alpha = strdup(th_json_str(env, "data.results.1.id"));
  json_decref(env);
  /* Paged as /v1/models. */
  env = sv_expect(p, "GET", "/v1/projects?limit=1", key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 1);
  assert_non_null(th_json_str(env, "data.lastRecordId"));
  json_decref(env);

  char *path = th_fmt("/v1/models?project=%s", alpha);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 2);
  sv_assert_str(th_json_str(env, "data.results.0.id"), b);
  sv_assert_str(th_json_str(env, "data.results.1.id"), a);
  sv_assert_str(th_json_str(env, "data.results.0.project.id"), alpha);
  sv_assert_str(th_json_str(env, "data.results.1.project.name"), "alpha");
  json_decref(env);
  free(path);

  /* Each run's model names its project, read alone and in the list; a
   * model made through HUB's API has none (null). */
  char *hub = sv_create(p, key, "hub.pt");
  json_t *m = sv_model(p, key, a);
  sv_assert_str(th_json_str(m, "project.id"), alpha);
  sv_assert_str(th_json_str(m, "project.name"), "alpha");
  json_decref(m);
  m = sv_model(p, key, hub);
  assert_true(json_is_null(th_json_at(m, "project")));
  json_decref(m);
  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 4);
  sv_assert_str(th_json_str(env, "data.results.0.id"), hub);
  assert_true(json_is_null(th_json_at(env, "data.results.0.project")));
  sv_assert_str(th_json_str(env, "data.results.1.id"), c);
  sv_assert_str(th_json_str(env, "data.results.1.project.name"), "beta");
  sv_assert_str(th_json_str(env, "data.results.2.project.name"), "alpha");
  sv_assert_str(th_json_str(env, "data.results.3.project.id"), alpha);
  char *beta = strdup(th_json_str(env, "data.results.1.project.id"));
  json_decref(env);
  /* A renamed project is named so on its models; a deleted one leaves
   * them without a project. */
  path = th_fmt("/v1/projects/%s", beta);
  env = sv_expect(p, "PATCH", path, key, "{\"name\": \"beta-2\"}", 200);
  json_decref(env);
  m = sv_model(p, key, c);
  sv_assert_str(th_json_str(m, "project.id"), beta);
  sv_assert_str(th_json_str(m, "project.name"), "beta-2");
  json_decref(m);
  env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  m = sv_model(p, key, c);
  assert_true(json_is_null(th_json_at(m, "project")));
  json_decref(m);
  free(path);
  free(beta);
  free(hub);

  env = sv_expect(p, "POST", "/v1/projects", key,
                  "{\"name\": \"gamma\", \"meta\": {\"note\": \"x\"}}", 201);
  char *gamma = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/projects", key, "{\"name\": \"Bad Name\"}",
                  400);
  assert_true(sv_message_has(env, "name"));
  json_decref(env);
  path = th_fmt("/v1/projects/%s", gamma);
  env = sv_expect(p, "PATCH", path, key, "{\"name\": \"alpha\"}", 409);
  json_decref(env);
  env = sv_expect(p, "PATCH", path, key, "{\"name\": \"delta\"}", 200);
  sv_assert_str(th_json_str(env, "data.name"), "delta");
  sv_assert_str(th_json_str(env, "data.meta.note"), "x");
  json_decref(env);
  /* Another owner sees none of it. */
  const char *other = chubd_proc_key(p);
  env = sv_expect(p, "GET", path, other, NULL, 404);
  json_decref(env);
  env = sv_expect(p, "DELETE", path, other, NULL, 404);
  json_decref(env);
  env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  env = sv_expect(p, "GET", path, key, NULL, 404);
  json_decref(env);
  free(path);
  free(gamma);
  free(alpha);
  free(a);
  free(b);
  free(c);
  free(key);
}

/* Another owner's key finds nothing of a run: not by modelId, not by
 * project and name, not through ul://, not its stop or console; and an
 * "owner/project" naming someone else is not that owner's project. */
static void server_platform_isolation(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "secret", "train");
  char *evil = chubd_proc_create_key(p, "mallory");
  assert_non_null(evil);
  char *body = th_fmt("{\"event\": \"epoch_end\", \"project\": \"secret\", "
                      "\"name\": \"train\", \"modelId\": \"%s\", \"data\": "
                      "{\"epoch\": 0, \"metrics\": {\"x\": 1}}}",
                      id);
  json_t *o = pf_post(p, PF_METRICS, evil, body, 404);
  json_decref(o);
  free(body);
  body = th_fmt("{\"event\": \"console_output\", \"project\": \"secret\", "
                "\"name\": \"train\", \"modelId\": \"%s\", \"data\": "
                "{\"chunkId\": \"e\", \"content\": \"evil\", \"lineCount\": "
                "1}}",
                id);
  o = pf_post(p, PF_METRICS, evil, body, 404);
  json_decref(o);
  free(body);
  o = pf_post(p, PF_UPLOAD, evil,
              "{\"project\": \"secret\", \"name\": \"train\", \"filename\": "
              "\"best.pt\"}",
              404);
  json_decref(o);
  body = th_fmt("{\"project\": \"secret\", \"name\": \"train\", "
                "\"filename\": \"best.pt\", \"modelId\": \"%s\"}",
                id);
  o = pf_post(p, PF_UPLOAD, evil, body, 404);
  json_decref(o);
  free(body);
  o = pf_post(p, PF_METRICS, evil,
              "{\"event\": \"training_started\", \"project\": "
              "\"owner/secret\", \"name\": \"train\", \"data\": {}}",
              404);
  json_decref(o);
  char *path = th_fmt("/v1/models/%s/stop", id);
  json_t *env = sv_expect(p, "POST", path, evil, NULL, 404);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/console", id);
  env = sv_expect(p, "GET", path, evil, NULL, 404);
  json_decref(env);
  free(path);
  th_response r;
  pf_send(p, "HEAD", "/api/webhooks/models/owner/secret/train/download", evil,
          NULL, &r);
  assert_int_equal(r.status, 404);
  th_response_free(&r);
  /* mallory's own training_started of "secret/train" is a model of hers. */
  char *mine = pf_start(p, evil, "secret", "train");
  assert_string_not_equal(mine, id);
  assert_int_equal(pf_epoch_cancelled(p, key, id, 0), 0);
  free(mine);
  free(evil);
  free(id);
}

/* Bearer auth: none or a wrong key is 401 (with `error`, which Platform
 * logs); x-api-key still works. */
static void server_platform_auth(void **state) {
  chubd_proc *p = *state;
  const char *start = "{\"event\": \"training_started\", \"project\": "
                      "\"proj\", \"name\": \"auth\", \"data\": {}}";
  json_t *o = pf_post(p, PF_METRICS, NULL, start, 401);
  pf_error_has(o, "API key");
  json_decref(o);
  o = pf_post(p, PF_METRICS, "0123456789012345678901234567890123456789ab",
              start, 401);
  pf_error_has(o, "API key");
  json_decref(o);
  o = pf_post(p, PF_UPLOAD, NULL,
              "{\"project\": \"proj\", \"name\": \"auth\", \"filename\": "
              "\"best.pt\"}",
              401);
  json_decref(o);
  th_response r;
  pf_send(p, "HEAD", "/api/webhooks/models/owner/proj/auth/download", NULL,
          NULL, &r);
  assert_int_equal(r.status, 401);
  th_response_free(&r);
  pf_send(p, "HEAD", "/api/webhooks/datasets/owner/coco/export", NULL, NULL,
          &r);
  assert_int_equal(r.status, 401);
  th_response_free(&r);
  /* The PUT URL without its signature. */
  char *put =
      th_fmt("/api/webhooks/models/%s/upload/best.pt", "AAAAAAAAAAAAAAAAAAAA");
  pf_send(p, "PUT", put, NULL, "x", &r);
  assert_int_equal(r.status, 403);
  th_response_free(&r);
  free(put);
  json_t *env = sv_expect(p, "POST", PF_METRICS, chubd_proc_key(p), start, 201);
  json_decref(env);
}

/* Wrong input: 4xx naming the field or event, nothing stored. */
static void server_platform_bad_input(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = pf_start(p, key, "proj", "bad-run");
  struct {
    const char *body, *needle;
  } bad[] = {
      {"{\"event\": \"training_paused\", \"project\": \"proj\", \"name\": "
       "\"bad-run\", \"data\": {}}",
       "training_paused"},
      {"{\"event\": 7, \"project\": \"proj\", \"name\": \"bad-run\", "
       "\"data\": {}}",
       "event"},
      {"{\"event\": \"training_started\", \"project\": 3, \"name\": "
       "\"bad-run\", \"data\": {}}",
       "project"},
      {"{\"event\": \"training_started\", \"project\": \"Pro/j/x\", "
       "\"name\": \"bad-run\", \"data\": {}}",
       "project"},
      {"{\"event\": \"training_started\", \"project\": \"proj\", \"name\": "
       "\"../etc\", \"data\": {}}",
       "name"},
      {"{\"event\": \"training_started\", \"project\": \"proj\", \"name\": "
       "\"x\", \"data\": []}",
       "data"},
      {"{\"event\": \"training_started\", \"project\": \"proj\", \"name\": "
       "\"x\", \"data\": {}, \"extra\": 1}",
       "extra"},
      {"{\"event\": \"epoch_end\", \"project\": \"proj\", \"name\": "
       "\"bad-run\", \"modelId\": 5, \"data\": {}}",
       "modelId"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *o = pf_post(p, PF_METRICS, key, bad[i].body, 400);
    pf_error_has(o, bad[i].needle);
    json_decref(o);
  }
  struct {
    const char *data, *needle;
  } epoch_bad[] = {
      {"{\"epoch\": \"1\", \"metrics\": {}}", "data.epoch"},
      {"{\"epoch\": -1, \"metrics\": {}}", "data.epoch"},
      {"{\"epoch\": 1, \"metrics\": []}", "data.metrics"},
      {"{\"epoch\": 1, \"metrics\": {\"loss\": \"low\"}}", "loss"},
      {"{\"epoch\": 1, \"metrics\": {\"a\": {\"b\": [1]}}}", "a/b"},
      {"{\"epoch\": 1, \"metrics\": {}, \"modelInfo\": {\"gflops\": \"x\"}}",
       "gflops"},
  };
  for (size_t i = 0; i < sizeof epoch_bad / sizeof epoch_bad[0]; i++) {
    json_t *o = pf_event(p, key, id, "epoch_end", epoch_bad[i].data, 400);
    pf_error_has(o, epoch_bad[i].needle);
    json_decref(o);
  }
  struct {
    const char *data, *needle;
  } console_bad[] = {
      {"{\"chunkId\": 3, \"content\": \"x\", \"lineCount\": 1}", "chunkId"},
      {"{\"chunkId\": \"c\", \"content\": 3, \"lineCount\": 1}", "content"},
      {"{\"chunkId\": \"c\", \"content\": \"x\", \"lineCount\": \"1\"}",
       "lineCount"},
  };
  for (size_t i = 0; i < sizeof console_bad / sizeof console_bad[0]; i++) {
    json_t *o =
        pf_event(p, key, id, "console_output", console_bad[i].data, 400);
    pf_error_has(o, console_bad[i].needle);
    json_decref(o);
  }
  json_t *o = pf_post(p, PF_UPLOAD, key,
                      "{\"project\": \"proj\", \"name\": \"bad-run\", "
                      "\"filename\": \"../../x.pt\"}",
                      400);
  pf_error_has(o, "filename");
  json_decref(o);
  /* epoch_end without modelId. */
  o = pf_post(p, PF_METRICS, key,
              "{\"event\": \"epoch_end\", \"project\": \"proj\", \"name\": "
              "\"bad-run\", \"data\": {\"epoch\": 0, \"metrics\": {}}}",
              400);
  pf_error_has(o, "modelId");
  json_decref(o);
  /* Nothing of the above was stored. */
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 0);
  json_decref(env);
  free(path);
  path = th_fmt("/v1/models/%s/console", id);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.chunks")), 0);
  json_decref(env);
  free(path);
  free(id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_platform_run_metrics),
      cmocka_unit_test(server_platform_start_race),
      cmocka_unit_test(server_platform_console),
      cmocka_unit_test(server_platform_console_full),
      cmocka_unit_test(server_platform_upload),
      cmocka_unit_test(server_platform_upload_expired),
      cmocka_unit_test(server_platform_dataset_export),
      cmocka_unit_test(server_platform_stop),
      cmocka_unit_test(server_platform_system),
      cmocka_unit_test(server_platform_projects),
      cmocka_unit_test(server_platform_isolation),
      cmocka_unit_test(server_platform_auth),
      cmocka_unit_test(server_platform_bad_input),
  };
  return sv_suite_result(
      cmocka_run_group_tests(tests, sv_group_setup, sv_group_teardown));
}

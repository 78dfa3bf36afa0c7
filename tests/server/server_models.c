/*
 * server_models.c - conformance: create, read, update, delete and list
 * models (hub-api.md POST/GET/PATCH/DELETE /v1/models...).
 *
 * The MODEL fields are checked against the create payload a Python client
 * sends, because hub-sdk and ultralytics read exactly those names back.
 * Listing uses a fresh owner per test so counts are exact.
 */
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void server_models_create_read(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "yolo11n.pt");
  json_t *m = sv_model(p, key, id);

  sv_assert_str(th_json_str(m, "id"), id);
  sv_assert_str(th_json_str(m, "meta.name"), "yolo11n.pt");
  assert_true(sv_is_rfc3339_utc(th_json_str(m, "created_at")));
  assert_true(sv_is_rfc3339_utc(th_json_str(m, "updated_at")));
  sv_assert_str(th_json_str(m, "status"), "new");
  assert_int_equal(th_json_int(m, "batch_size", -1), 16);
  assert_int_equal(th_json_int(m, "epochs", -1), 100);
  assert_int_equal(th_json_int(m, "imgsz", -1), 640);
  assert_int_equal(th_json_int(m, "patience", -1), 100);
  sv_assert_str(th_json_str(m, "device"), "cpu");
  sv_assert_str(th_json_str(m, "cache"), "ram");
  sv_assert_str(th_json_str(m, "data"), "coco8.yaml");
  /* A bare architecture name is served as the file Ultralytics builds. */
  sv_assert_str(th_json_str(m, "cfg"), "yolo11n.yaml");

  sv_assert_str(th_json_str(m, "train_args.data"), "coco8.yaml");
  assert_int_equal(th_json_int(m, "train_args.epochs", -1), 100);
  assert_int_equal(th_json_int(m, "train_args.batch", -1), 16);
  assert_int_equal(th_json_int(m, "train_args.imgsz", -1), 640);
  assert_int_equal(th_json_int(m, "train_args.patience", -1), 100);
  sv_assert_str(th_json_str(m, "train_args.device"), "cpu");
  sv_assert_str(th_json_str(m, "train_args.cache"), "ram");

  assert_int_equal(th_json_bool(m, "has_last_weights"), 0);
  assert_int_equal(th_json_bool(m, "has_best_weights"), 0);
  /* Started from yolo11n.pt (lineage.parent.name): pretrained. */
  assert_int_equal(th_json_bool(m, "is_pretrained"), 1);
  assert_true(th_json_bool(m, "is_custom") >= 0);
  /* Absent until uploaded / until the first heartbeat. */
  assert_null(th_json_at(m, "resume"));
  assert_null(th_json_at(m, "agent"));
  /* Until its own weights exist, a pretrained model's weights are its
   * parent's, which Ultralytics loads to start from. */
  sv_assert_str(th_json_str(m, "weights"), "yolo11n.pt");
  /* Extension fields of the chubd interface spec. */
  json_t *ck = th_json_at(m, "checkpoints");
  assert_true(json_is_array(ck));
  assert_int_equal(json_array_size(ck), 0);
  assert_int_equal(th_json_int(m, "metrics_count", -1), 0);
  /* Only Platform runs belong to a project. */
  assert_true(json_is_null(th_json_at(m, "project")));
  json_decref(m);
  free(id);
}

static void server_models_create_from_scratch(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  /* No lineage.parent: not pretrained. */
  const char *body =
      "{\"config\": {\"batchSize\": 8, \"epochs\": 3, \"imageSize\": 320, "
      "\"patience\": 5, \"device\": \"cpu\", \"cache\": \"disk\"}, "
      "\"dataset\": {\"name\": \"fashion-mnist\"}, "
      "\"lineage\": {\"architecture\": {\"name\": \"mlp.cfg\"}}, "
      "\"meta\": {\"name\": \"mlp.cfg\"}}";
  json_t *env = sv_expect(p, "POST", "/v1/models", key, body, 200);
  const char *id = th_json_str(env, "data.id");
  assert_true(sv_is_alnum(id, 20));
  json_t *m = sv_model(p, key, id);
  assert_int_equal(th_json_bool(m, "is_pretrained"), 0);
  assert_int_equal(th_json_int(m, "epochs", -1), 3);
  assert_int_equal(th_json_int(m, "batch_size", -1), 8);
  sv_assert_str(th_json_str(m, "cache"), "disk");
  sv_assert_str(th_json_str(m, "data"), "fashion-mnist");
  sv_assert_str(th_json_str(m, "cfg"), "mlp.cfg");
  json_decref(m);
  json_decref(env);
}

static void server_models_ids_unique(void **state) {
  chubd_proc *p = *state;
  char *ids[5];
  for (int i = 0; i < 5; i++) {
    ids[i] = sv_create(p, chubd_proc_key(p), "u.pt");
    for (int j = 0; j < i; j++)
      assert_string_not_equal(ids[i], ids[j]);
  }
  for (int i = 0; i < 5; i++)
    free(ids[i]);
}

static void server_models_patch(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "before.pt");
  char *path = th_fmt("/v1/models/%s", id);
  json_t *env = sv_expect(p, "PATCH", path, key,
                          "{\"meta\": {\"name\": \"after\"}, "
                          "\"config\": {\"epochs\": 42, \"batchSize\": 4}}",
                          200);
  json_decref(env);
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "meta.name"), "after");
  assert_int_equal(th_json_int(m, "epochs", -1), 42);
  assert_int_equal(th_json_int(m, "train_args.epochs", -1), 42);
  assert_int_equal(th_json_int(m, "batch_size", -1), 4);
  /* Untouched fields stay. */
  assert_int_equal(th_json_int(m, "imgsz", -1), 640);
  sv_assert_str(th_json_str(m, "data"), "coco8.yaml");
  json_decref(m);

  /* An ill-typed field is a 400 that names it, and changes nothing. */
  env = sv_expect(p, "PATCH", path, key, "{\"config\": {\"epochs\": \"many\"}}",
                  400);
  assert_true(sv_message_has(env, "epochs"));
  json_decref(env);
  m = sv_model(p, key, id);
  assert_int_equal(th_json_int(m, "epochs", -1), 42);
  json_decref(m);
  free(path);
  free(id);
}

/* Uploads a small checkpoint so hard deletion has something to remove. */
static unsigned char *server_models_with_weights(chubd_proc *p, const char *id,
                                                 size_t len, unsigned seed) {
  unsigned char *bytes = sv_bytes(len, seed);
  th_response r;
  long st = sv_upload(p, chubd_proc_key(p), id, 0, "epoch", "False", bytes, len,
                      NULL, &r);
  assert_int_equal(st, 200);
  th_response_free(&r);
  assert_int_equal(
      sv_metrics(p, chubd_proc_key(p), id, "{\"0\": \"{\\\"a\\\": 1}\"}"), 200);
  return bytes;
}

static void server_models_delete(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  const char *soft[] = {"False", "false", "0"};
  const char *hard[] = {"True", "true", "1"};
  for (int i = 0; i < 3; i++) {
    /* Soft: hidden from read and list, its weights stay on disk. */
    char *id = sv_create(p, key, "soft.pt");
    size_t len = 4096 + (size_t)i;
    unsigned char *bytes = server_models_with_weights(p, id, len, 100 + i);
    assert_int_equal(sv_files_equal(chubd_proc_data_dir(p), bytes, len), 1);
    char *path = th_fmt("/v1/models/%s?hard=%s", id, soft[i]);
    json_t *env = sv_expect(p, "DELETE", path, key, NULL, 200);
    json_decref(env);
    char *rpath = th_fmt("/v1/models/%s", id);
    env = sv_expect(p, "GET", rpath, key, NULL, 404);
    json_decref(env);
    env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
    json_t *res = th_json_at(env, "data.results");
    size_t k;
    json_t *v;
    json_array_foreach(res, k, v) {
      assert_string_not_equal(th_json_str(v, "id"), id);
    }
    json_decref(env);
    assert_int_equal(sv_files_equal(chubd_proc_data_dir(p), bytes, len), 1);
    /* Hidden means hidden for writes too. */
    assert_int_equal(sv_metrics(p, key, id, "{\"5\": \"{\\\"a\\\": 1}\"}"),
                     404);
    th_response r;
    assert_int_equal(
        sv_upload(p, key, id, 5, "epoch", "False", bytes, 100, NULL, &r), 404);
    th_response_free(&r);
    env =
        sv_expect(p, "PATCH", rpath, key, "{\"meta\": {\"name\": \"z\"}}", 404);
    json_decref(env);
    free(rpath);
    free(path);
    free(bytes);
    free(id);

    /* Hard: gone, and its weights are no longer on disk. */
    id = sv_create(p, key, "hard.pt");
    len = 8192 + (size_t)i;
    bytes = server_models_with_weights(p, id, len, 200 + i);
    assert_int_equal(sv_files_equal(chubd_proc_data_dir(p), bytes, len), 1);
    path = th_fmt("/v1/models/%s?hard=%s", id, hard[i]);
    env = sv_expect(p, "DELETE", path, key, NULL, 200);
    json_decref(env);
    rpath = th_fmt("/v1/models/%s", id);
    env = sv_expect(p, "GET", rpath, key, NULL, 404);
    json_decref(env);
    char *wpath = th_fmt("/v1/models/%s/weights/last", id);
    env = sv_expect(p, "GET", wpath, key, NULL, 404);
    json_decref(env);
    char *mpath = th_fmt("/v1/models/%s/metrics", id);
    env = sv_expect(p, "GET", mpath, key, NULL, 404);
    json_decref(env);
    assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), bytes, len, 0), 0);
    free(mpath);
    free(wpath);
    free(rpath);
    free(path);
    free(bytes);
    free(id);
  }
  /* Deleting what is not there: 404. */
  json_t *env =
      sv_expect(p, "DELETE", "/v1/models/AAAAAAAAAAAAAAAAAAAA", key, NULL, 404);
  json_decref(env);
}

static void server_models_list(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "lister");
  assert_non_null(key);
  /* A new owner has none. */
  json_t *env = sv_expect(p, "GET", "/v1/models", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 0);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 0);
  json_decref(env);

  enum { N = 13 };
  char *ids[N];
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%d.pt", i);
    ids[i] = sv_create(p, key, name);
  }
  /* Default limit 10, newest first, total counts all. */
  env = sv_expect(p, "GET", "/v1/models", key, NULL, 200);
  json_t *res = th_json_at(env, "data.results");
  assert_int_equal(json_array_size(res), 10);
  assert_int_equal(th_json_int(env, "data.total", -1), N);
  for (int i = 0; i < 10; i++) {
    char sub[32];
    snprintf(sub, sizeof sub, "%d.id", i);
    sv_assert_str(th_json_str(res, sub), ids[N - 1 - i]);
    /* Listed models carry their project too: none for a HUB model. */
    snprintf(sub, sizeof sub, "%d.project", i);
    assert_true(json_is_null(th_json_at(res, sub)));
  }
  json_decref(env);

  /* Cursor paging: pages of 5 walk every model once, newest first. */
  char *cursor = NULL;
  int seen = 0;
  for (int page = 0; page < 5 && seen < N; page++) {
    char *path = cursor ? th_fmt("/v1/models?limit=5&last_doc_id=%s", cursor)
                        : th_fmt("/v1/models?limit=5");
    env = sv_expect(p, "GET", path, key, NULL, 200);
    res = th_json_at(env, "data.results");
    size_t n = json_array_size(res);
    assert_true(n >= 1 && n <= 5);
    for (size_t i = 0; i < n; i++) {
      assert_true(seen < N);
      char *sub = th_fmt("%zu.id", i);
      sv_assert_str(th_json_str(res, sub), ids[N - 1 - seen]);
      free(sub);
      seen++;
    }
    assert_int_equal(th_json_int(env, "data.total", -1), N);
    free(cursor);
    cursor = NULL;
    const char *last = th_json_str(env, "data.lastRecordId");
    if (seen < N) {
      /* More to come: the cursor is the last id of this page. */
      assert_non_null(last);
      assert_string_equal(last, ids[N - seen]);
      cursor = strdup(last);
    }
    json_decref(env);
    free(path);
  }
  free(cursor);
  assert_int_equal(seen, N);
  for (int i = 0; i < N; i++)
    free(ids[i]);
  free(key);
}

/* One page of the walk below: appends its ids to seen, returns the
 * cursor for the next page (malloc'd) or NULL at the end, and checks the
 * total it answers. */
static char *server_models_walk_page(chubd_proc *p, const char *key,
                                     const char *cursor, char **seen,
                                     int *nseen, int max, long long total) {
  char *path = cursor ? th_fmt("/v1/models?limit=4&last_doc_id=%s", cursor)
                      : th_fmt("/v1/models?limit=4");
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  json_t *res = th_json_at(env, "data.results");
  for (size_t i = 0; i < json_array_size(res); i++) {
    assert_true(*nseen < max);
    char *sub = th_fmt("%zu.id", i);
    seen[(*nseen)++] = strdup(th_json_str(res, sub));
    free(sub);
  }
  assert_int_equal(th_json_int(env, "data.total", -1), total);
  const char *last = th_json_str(env, "data.lastRecordId");
  char *next = last ? strdup(last) : NULL;
  json_decref(env);
  free(path);
  return next;
}

/* Keyset paging: a walk of the list meets every model that existed when it
 * began exactly once, newest first, though models are created between its
 * pages (they are newer than any cursor, so none is met twice or shifts
 * the pages) and the model a cursor names is deleted meanwhile; total
 * follows the count. */
static void server_models_list_walk(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "walker");
  assert_non_null(key);
  enum { N = 25, MAX = 64 };
  char *ids[N], *seen[MAX], *made[MAX];
  int nseen = 0, nmade = 0;
  for (int i = 0; i < N; i++)
    ids[i] = sv_create(p, key, "walk.pt");
  long long total = N;
  char *cursor = NULL;
  for (int page = 0; page < MAX; page++) {
    char *next =
        server_models_walk_page(p, key, cursor, seen, &nseen, MAX, total);
    free(cursor);
    cursor = next;
    if (!cursor)
      break;
    made[nmade++] = sv_create(p, key, "between.pt");
    total++;
    if (page == 2) {
      /* The cursor's own model goes (soft delete): the walk goes on. */
      char *del = th_fmt("/v1/models/%s", cursor);
      json_decref(sv_expect(p, "DELETE", del, key, NULL, 200));
      free(del);
      total--;
    }
  }
  assert_null(cursor);
  assert_int_equal(nseen, N);
  for (int i = 0; i < N; i++)
    sv_assert_str(seen[i], ids[N - 1 - i]);
  /* A hard-deleted cursor names nothing: 400 naming it. */
  char *gone = th_fmt("/v1/models/%s?hard=true", made[0]);
  json_decref(sv_expect(p, "DELETE", gone, key, NULL, 200));
  char *path = th_fmt("/v1/models?last_doc_id=%s", made[0]);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 400);
  assert_true(sv_message_has(env, "last_doc_id"));
  json_decref(env);
  /* A fresh walk sees the models made meanwhile too, and the total. */
  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), total - 1);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), total - 1);
  json_decref(env);
  free(path);
  free(gone);
  for (int i = 0; i < nseen; i++)
    free(seen[i]);
  for (int i = 0; i < nmade; i++)
    free(made[i]);
  for (int i = 0; i < N; i++)
    free(ids[i]);
  free(key);
}

static void server_models_list_cap(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "hoarder");
  assert_non_null(key);
  enum { N = 103 };
  for (int i = 0; i < N; i++) {
    char *id = sv_create(p, key, "cap.pt");
    free(id);
  }
  json_t *env = sv_expect(p, "GET", "/v1/models?limit=1000", key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 100);
  assert_int_equal(th_json_int(env, "data.total", -1), N);
  json_decref(env);
  /* Every listed MODEL has the read fields too. */
  env = sv_expect(p, "GET", "/v1/models?limit=1", key, NULL, 200);
  json_t *m = th_json_at(env, "data.results.0");
  sv_assert_str(th_json_str(m, "status"), "new");
  sv_assert_str(th_json_str(m, "meta.name"), "cap.pt");
  json_decref(env);
  free(key);
}

static void server_models_list_bad_params(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  /* A limit that is not a positive integer, a cursor that is not an id. */
  const char *bad_limit[] = {"/v1/models?limit=abc", "/v1/models?limit=-1",
                             "/v1/models?limit=0", "/v1/models?limit=1.5"};
  for (size_t i = 0; i < sizeof bad_limit / sizeof *bad_limit; i++) {
    json_t *env = sv_expect(p, "GET", bad_limit[i], key, NULL, 400);
    assert_true(sv_message_has(env, "limit"));
    json_decref(env);
  }
  json_t *env =
      sv_expect(p, "GET", "/v1/models?last_doc_id=..%2Fx", key, NULL, 400);
  assert_true(sv_message_has(env, "last_doc_id"));
  json_decref(env);
  /* Soft delete with a value that is no boolean spelling. */
  char *id = sv_create(p, key, "keep.pt");
  char *path = th_fmt("/v1/models/%s?hard=maybe", id);
  env = sv_expect(p, "DELETE", path, key, NULL, 400);
  assert_true(sv_message_has(env, "hard"));
  json_decref(env);
  json_t *m = sv_model(p, key, id);
  json_decref(m);
  free(path);
  free(id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_models_create_read),
      cmocka_unit_test(server_models_create_from_scratch),
      cmocka_unit_test(server_models_ids_unique),
      cmocka_unit_test(server_models_patch),
      cmocka_unit_test(server_models_delete),
      cmocka_unit_test(server_models_list),
      cmocka_unit_test(server_models_list_walk),
      cmocka_unit_test(server_models_list_cap),
      cmocka_unit_test(server_models_list_bad_params),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_models", tests, sv_group_setup, sv_group_teardown));
}

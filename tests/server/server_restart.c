/*
 * server_restart.c - conformance: what chubd stored survives a restart, a
 * clean one (SIGTERM: drain, close the database, exit 0) and a crash
 * (SIGKILL), after which the SQLite file passes PRAGMA integrity_check.
 */
#include "sv.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct server_restart_fixture {
  char *id;
  unsigned char *bytes;
  size_t len;
} server_restart_fixture;

static void server_restart_fill(chubd_proc *p, server_restart_fixture *f,
                                unsigned seed) {
  const char *key = chubd_proc_key(p);
  f->id = sv_create(p, key, "persist.pt");
  assert_int_equal(sv_metrics(p, key, f->id,
                              "{\"0\": \"{\\\"loss\\\": 2.5}\", "
                              "\"1\": \"{\\\"loss\\\": 1.25}\"}"),
                   200);
  f->len = 250000;
  f->bytes = sv_bytes(f->len, seed);
  th_response r;
  assert_int_equal(
      sv_upload(p, key, f->id, 1, "epoch", "True", f->bytes, f->len, NULL, &r),
      200);
  th_response_free(&r);
  char *path = th_fmt("/v1/agent/heartbeat/models/%s", f->id);
  json_t *env =
      sv_expect(p, "POST", path, key,
                "{\"agent\": \"chub-0.1.0-local\", \"agentId\": null}", 200);
  json_decref(env);
  free(path);
}

static void server_restart_check(chubd_proc *p, server_restart_fixture *f) {
  const char *key = chubd_proc_key(p);
  json_t *env = sv_expect(p, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  json_t *m = sv_model(p, key, f->id);
  sv_assert_str(th_json_str(m, "meta.name"), "persist.pt");
  assert_int_equal(th_json_int(m, "epochs", -1), 100);
  assert_int_equal(th_json_bool(m, "has_last_weights"), 1);
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 1);
  sv_assert_str(th_json_str(m, "agent.name"), "chub-0.1.0-local");
  json_decref(m);

  char *path = th_fmt("/v1/models/%s/metrics", f->id);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 2);
  assert_true(json_number_value(th_json_at(env, "data.1.metrics.loss")) ==
              1.25);
  json_decref(env);
  free(path);

  char *url =
      th_fmt("%s/v1/models/%s/weights/last", chubd_proc_base_url(p), f->id);
  th_response r;
  char *key_h = th_fmt("x-api-key: %s", key);
  const char *hdrs[] = {key_h, NULL};
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, f->len);
  assert_memory_equal(r.body, f->bytes, f->len);
  th_response_free(&r);
  free(key_h);
  free(url);

  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  assert_true(th_json_int(env, "data.total", 0) >= 1);
  json_decref(env);
}

static void server_restart_clean(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  server_restart_fixture f;
  server_restart_fill(p, &f, 1);
  assert_int_equal(chubd_proc_stop(p), 0);
  assert_int_equal(chubd_proc_restart(p), 0);
  server_restart_check(p, &f);
  /* SIGINT (Ctrl-C in a terminal) is a clean stop too. */
  assert_int_equal(chubd_proc_signal(p, SIGINT), 0);
  assert_int_equal(chubd_proc_restart(p), 0);
  server_restart_check(p, &f);
  /* Things still work after the restart, not only reads. */
  char *id2 = sv_create(p, chubd_proc_key(p), "after.pt");
  assert_string_not_equal(id2, f.id);
  free(id2);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(f.bytes);
  free(f.id);
}

static void server_restart_integrity_sqlite(const char *data_dir) {
  char *db_path = sv_find_sqlite(data_dir);
  if (!db_path)
    fail_msg("no SQLite database under %s", data_dir);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st = NULL;
  assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const char *res = (const char *)sqlite3_column_text(st, 0);
  if (!res || strcmp(res, "ok") != 0)
    fail_msg("PRAGMA integrity_check on %s: %s", db_path, res ? res : "NULL");
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(db_path);
}

/* On PostgreSQL the database is the server's to keep whole after chubd is
 * killed: PRAGMA integrity_check, SQLite's own, is skipped, and what is
 * checked is that the database answers with the models in it. */
static void server_restart_integrity(chubd_proc *p) {
  if (!chubd_proc_db(p)) {
    server_restart_integrity_sqlite(chubd_proc_data_dir(p));
    return;
  }
  fprintf(stderr, "server_restart: PRAGMA integrity_check skipped: the "
                  "store is PostgreSQL\n");
  char *n = chubd_proc_db_query(p, "SELECT count(*) FROM models");
  assert_non_null(n);
  assert_true(atoi(n) >= 1);
  free(n);
}

static void server_restart_kill9(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  server_restart_fixture f;
  server_restart_fill(p, &f, 2);
  chubd_proc_kill9(p);
  server_restart_integrity(p);
  assert_int_equal(chubd_proc_restart(p), 0);
  server_restart_check(p, &f);
  /* A second crash in the middle of a stream of writes. */
  for (int e = 2; e < 40; e++) {
    char *m = th_fmt("{\"%d\": \"{\\\"loss\\\": %d}\"}", e, e);
    assert_int_equal(sv_metrics(p, chubd_proc_key(p), f.id, m), 200);
    free(m);
  }
  chubd_proc_kill9(p);
  server_restart_integrity(p);
  assert_int_equal(chubd_proc_restart(p), 0);
  char *path = th_fmt("/v1/models/%s/metrics", f.id);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 200);
  /* Every acknowledged epoch is there. */
  assert_int_equal(json_array_size(th_json_at(env, "data")), 40);
  json_decref(env);
  free(path);
  assert_int_equal(chubd_proc_stop(p), 0);
  server_restart_integrity(p);
  chubd_proc_free(p);
  free(f.bytes);
  free(f.id);
}

/* SIGTERM drains: an upload already in flight is finished and answered,
 * then chubd exits 0, and the checkpoint is there after a restart. */
static void server_restart_sigterm_drains(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "drain.pt");
  size_t len = 300000;
  unsigned char *b = sv_bytes(len, 50);
  size_t req_len;
  char *req = sv_raw_upload(id, key, b, len, &req_len);
  int fd = sv_connect(chubd_proc_port(p));
  sv_send(fd, req, req_len / 2);
  sv_sleep_ms(200); /* let chubd start on the request before the signal */
  assert_int_equal(kill(chubd_proc_pid(p), SIGTERM), 0);
  sv_sleep_ms(200);
  sv_send(fd, req + req_len / 2, req_len - req_len / 2);
  char *answer = sv_recv(fd, 10000);
  close(fd);
  if (strncmp(answer, "HTTP/1.1 200", 12) != 0)
    fail_msg("upload in flight at SIGTERM answered: %.300s", answer);
  free(answer);
  /* It was already told to stop: reaping gives the exit status. */
  assert_int_equal(chubd_proc_stop(p), 0);
  assert_int_equal(chubd_proc_restart(p), 0);
  char *url =
      th_fmt("%s/v1/models/%s/weights/last", chubd_proc_base_url(p), id);
  char *key_h = th_fmt("x-api-key: %s", key);
  const char *hdrs[] = {key_h, NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, b, len);
  th_response_free(&r);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(key_h);
  free(url);
  free(req);
  free(b);
  free(id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_restart_clean),
      cmocka_unit_test(server_restart_kill9),
      cmocka_unit_test(server_restart_sigterm_drains),
  };
  return cmocka_run_group_tests_name("server_restart", tests, NULL, NULL);
}

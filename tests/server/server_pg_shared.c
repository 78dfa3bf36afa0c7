/*
 * server_pg_shared.c - two chubd on one PostgreSQL database: the database,
 * not either process, settles every race.
 *
 * Two chubd with data directories of their own share one --db. Creates
 * sent to both at once all succeed with distinct ids that both list;
 * metrics uploads for the same epochs racing through both leave one row
 * per epoch, the same on both, each a value that was sent, and the last
 * upload wins; of two final uploads for one model, one through each, one
 * answers 200 and the other 409; a download URL signed by one is accepted
 * by the other (the secret is the database's) and an altered one is not;
 * a key revoked through one stops working on the other within 3 s; when
 * the server ends every connection, requests are still answered; with
 * --db-pool 1 and that connection stuck on a locked row, another request
 * waits a bounded time and gets 503, and all is well once the lock goes.
 *
 * Runs only on the test cluster (CHUB_TEST_PG, ctest label postgres);
 * without it, it exits 77: skipped.
 */
#include "sv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>

#define SHARED_SKIP 77
#define SHARED_THREADS 4

typedef struct shared_pair {
  chubd_proc *p[2];
} shared_pair;

static const char *const shared_fast[] = {"--rate-limit", "100000",
                                          "--rate-burst", "100000", NULL};

static int shared_setup(void **state) {
  shared_pair *s = calloc(1, sizeof *s);
  s->p[0] = chubd_proc_start(sv_chubd_bin(), NULL, shared_fast);
  if (!s->p[0] || !chubd_proc_db(s->p[0])) {
    fprintf(stderr, "server_pg_shared: the first chubd did not start on "
                    "PostgreSQL\n");
    chubd_proc_free(s->p[0]);
    free(s);
    return -1;
  }
  const char *args[] = {"--db",   chubd_proc_db(s->p[0]), "--rate-limit",
                        "100000", "--rate-burst",         "100000",
                        NULL};
  s->p[1] = chubd_proc_start(sv_chubd_bin(), NULL, args);
  if (!s->p[1]) {
    chubd_proc_free(s->p[0]);
    free(s);
    return -1;
  }
  *state = s;
  return 0;
}

static int shared_failed; /* a chubd did not exit 0 on SIGTERM */

static int shared_teardown(void **state) {
  shared_pair *s = *state;
  int rc = 0;
  for (int i = 1; i >= 0; i--) {
    if (chubd_proc_stop(s->p[i]) != 0)
      rc = shared_failed = -1;
    chubd_proc_free(s->p[i]);
  }
  free(s);
  return rc;
}

/* ------------------------------------------------------------ creates */

typedef struct shared_creator {
  chubd_proc *p;
  int n;
  char **ids;
  int failed;
} shared_creator;

static void *shared_create_main(void *arg) {
  shared_creator *c = arg;
  char *url = th_fmt("%s/v1/models", chubd_proc_base_url(c->p));
  for (int i = 0; i < c->n; i++) {
    th_response r;
    if (th_json_request("POST", url, chubd_proc_key(c->p),
                        "{\"meta\": {\"name\": \"race.pt\"}}", &r) != 0 ||
        r.status != 200) {
      fprintf(stderr, "server_pg_shared: create answered %ld: %s\n", r.status,
              r.body ? r.body : "");
      c->failed++;
    } else {
      json_t *env = th_json_parse(r.body);
      const char *id = th_json_str(env, "data.id");
      c->ids[i] = id ? strdup(id) : NULL;
      json_decref(env);
    }
    th_response_free(&r);
  }
  free(url);
  return NULL;
}

static int shared_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void shared_creates(void **state) {
  shared_pair *s = *state;
  enum { PER = 25 };
  shared_creator c[SHARED_THREADS];
  pthread_t t[SHARED_THREADS];
  char *ids[SHARED_THREADS * PER] = {0};
  for (int i = 0; i < SHARED_THREADS; i++) {
    c[i] = (shared_creator){s->p[i % 2], PER, ids + i * PER, 0};
    assert_int_equal(pthread_create(&t[i], NULL, shared_create_main, &c[i]), 0);
  }
  for (int i = 0; i < SHARED_THREADS; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < SHARED_THREADS; i++)
    assert_int_equal(c[i].failed, 0);
  size_t n = SHARED_THREADS * PER;
  for (size_t i = 0; i < n; i++)
    assert_non_null(ids[i]);
  qsort(ids, n, sizeof ids[0], shared_cmp);
  for (size_t i = 1; i < n; i++)
    if (strcmp(ids[i - 1], ids[i]) == 0)
      fail_msg("two creates got the same id %s", ids[i]);
  /* Both see every model (both keys belong to "owner"), and each other's. */
  for (int k = 0; k < 2; k++) {
    json_t *env = sv_expect(s->p[k], "GET", "/v1/models?limit=1",
                            chubd_proc_key(s->p[k]), NULL, 200);
    json_t *total = th_json_at(env, "total");
    if (!total)
      total = th_json_at(env, "data.total");
    assert_true(json_is_integer(total));
    assert_true(json_integer_value(total) >= (json_int_t)n);
    json_decref(env);
    json_t *m = sv_model(s->p[k], chubd_proc_key(s->p[k]), ids[k]);
    json_decref(m);
  }
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
}

/* ------------------------------------------------------------ metrics */

enum { SHARED_EPOCHS = 40, SHARED_ROUNDS = 15 };

typedef struct shared_writer {
  chubd_proc *p;
  const char *id;
  int who;
  int bad;
} shared_writer;

/* Every round sends all the epochs at once, tagged with who and the
 * round, in an order that differs between writers. */
static void *shared_metrics_main(void *arg) {
  shared_writer *w = arg;
  for (int round = 0; round < SHARED_ROUNDS; round++) {
    size_t cap = 64 * SHARED_EPOCHS, len = 0;
    char *body = malloc(cap);
    len += (size_t)snprintf(body + len, cap - len, "{");
    for (int i = 0; i < SHARED_EPOCHS; i++) {
      int e = w->who % 2 ? SHARED_EPOCHS - 1 - i : i;
      len += (size_t)snprintf(body + len, cap - len,
                              "%s\"%d\": \"{\\\"who\\\": %d, \\\"round\\\": "
                              "%d}\"",
                              i ? ", " : "", e, w->who, round);
    }
    snprintf(body + len, cap - len, "}");
    long st = sv_metrics(w->p, chubd_proc_key(w->p), w->id, body);
    if (st != 200) {
      fprintf(stderr, "server_pg_shared: metrics answered %ld\n", st);
      w->bad++;
    }
    free(body);
  }
  return NULL;
}

static json_t *shared_metrics_read(chubd_proc *p, const char *id) {
  char *path = th_fmt("/v1/models/%s/metrics", id);
  json_t *env = sv_expect(p, "GET", path, chubd_proc_key(p), NULL, 200);
  free(path);
  json_t *data = json_incref(th_json_at(env, "data"));
  json_decref(env);
  assert_true(json_is_array(data));
  return data;
}

static void shared_metrics(void **state) {
  shared_pair *s = *state;
  char *id = sv_create(s->p[0], chubd_proc_key(s->p[0]), "upsert.pt");
  shared_writer w[SHARED_THREADS];
  pthread_t t[SHARED_THREADS];
  for (int i = 0; i < SHARED_THREADS; i++) {
    w[i] = (shared_writer){s->p[i % 2], id, i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, shared_metrics_main, &w[i]),
                     0);
  }
  for (int i = 0; i < SHARED_THREADS; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < SHARED_THREADS; i++)
    assert_int_equal(w[i].bad, 0);
  json_t *a = shared_metrics_read(s->p[0], id);
  json_t *b = shared_metrics_read(s->p[1], id);
  /* One row per epoch, in order, the same through both. */
  assert_int_equal(json_array_size(a), SHARED_EPOCHS);
  if (!json_equal(a, b))
    fail_msg("the two chubd read different metrics for one model");
  for (int e = 0; e < SHARED_EPOCHS; e++) {
    char path[64];
    snprintf(path, sizeof path, "%d.epoch", e);
    assert_int_equal(th_json_int(a, path, -1), e);
    snprintf(path, sizeof path, "%d.metrics.who", e);
    long who = th_json_int(a, path, -1);
    snprintf(path, sizeof path, "%d.metrics.round", e);
    long round = th_json_int(a, path, -1);
    assert_true(who >= 0 && who < SHARED_THREADS);
    assert_true(round >= 0 && round < SHARED_ROUNDS);
  }
  json_decref(a);
  json_decref(b);
  /* Each epoch counted once, though both hubs wrote every one of them. */
  for (int k = 0; k < 2; k++) {
    json_t *model = sv_model(s->p[k], chubd_proc_key(s->p[k]), id);
    assert_int_equal(th_json_int(model, "metrics_count", -1), SHARED_EPOCHS);
    json_decref(model);
  }
  /* The last upload wins, whichever chubd took it and whichever reads. */
  assert_int_equal(sv_metrics(s->p[1], chubd_proc_key(s->p[1]), id,
                              "{\"3\": \"{\\\"who\\\": 99}\"}"),
                   200);
  assert_int_equal(sv_metrics(s->p[0], chubd_proc_key(s->p[0]), id,
                              "{\"3\": \"{\\\"who\\\": 98}\"}"),
                   200);
  for (int k = 0; k < 2; k++) {
    json_t *d = shared_metrics_read(s->p[k], id);
    assert_int_equal(json_array_size(d), SHARED_EPOCHS);
    assert_int_equal(th_json_int(d, "3.metrics.who", -1), 98);
    json_decref(d);
  }
  free(id);
}

/* ------------------------------------------------------------- finals */

typedef struct shared_final {
  chubd_proc *p;
  const char *id;
  unsigned char *bytes;
  size_t len;
  long status;
} shared_final;

static void *shared_final_main(void *arg) {
  shared_final *f = arg;
  char *url =
      th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(f->p), f->id);
  const char *fields[] = {"epoch", "9", "type", "final", "map", "0.5", NULL};
  th_response r;
  f->status = th_upload(url, chubd_proc_key(f->p), fields, "best.pt", "best.pt",
                        f->bytes, f->len, NULL, NULL, &r) == 0
                  ? r.status
                  : -1;
  th_response_free(&r);
  free(url);
  return NULL;
}

static void shared_finals(void **state) {
  shared_pair *s = *state;
  for (int round = 0; round < 5; round++) {
    char *id = sv_create(s->p[round % 2], chubd_proc_key(s->p[0]), "f.pt");
    shared_final f[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
      f[i] = (shared_final){s->p[i], id, NULL, 100000 + (size_t)i, 0};
      f[i].bytes = sv_bytes(f[i].len, 900 + (unsigned)(round * 2 + i));
    }
    for (int i = 0; i < 2; i++)
      assert_int_equal(pthread_create(&t[i], NULL, shared_final_main, &f[i]),
                       0);
    for (int i = 0; i < 2; i++)
      pthread_join(t[i], NULL);
    int won = f[0].status == 200 ? 0 : 1;
    if (f[won].status != 200 || f[1 - won].status != 409)
      fail_msg("two finals through two chubd answered %ld and %ld, "
               "expected 200 and 409",
               f[0].status, f[1].status);
    for (int k = 0; k < 2; k++) {
      json_t *m = sv_model(s->p[k], chubd_proc_key(s->p[k]), id);
      sv_assert_str(th_json_str(m, "status"), "trained");
      json_decref(m);
    }
    free(f[0].bytes);
    free(f[1].bytes);
    free(id);
  }
}

/* ------------------------------------------------------- signed links */

static void shared_copy_blob(const char *from_dir, const char *to_dir,
                             const char *sha) {
  char *from = th_fmt("%s/blobs/%s", from_dir, sha);
  char *to = th_fmt("%s/blobs/%s", to_dir, sha);
  FILE *in = fopen(from, "rb");
  if (!in)
    fail_msg("no blob %s", from);
  FILE *out = fopen(to, "wb");
  assert_non_null(out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  assert_int_equal(fclose(out), 0);
  free(from);
  free(to);
}

static void shared_signed_url(void **state) {
  shared_pair *s = *state;
  chubd_proc *a = s->p[0], *b = s->p[1];
  char *id = sv_create(a, chubd_proc_key(a), "link.pt");
  size_t len = 50000;
  unsigned char *bytes = sv_bytes(len, 77);
  th_response up;
  assert_int_equal(sv_upload(a, chubd_proc_key(a), id, 1, "epoch", NULL, bytes,
                             len, NULL, &up),
                   200);
  th_response_free(&up);
  char sha[65];
  th_sha256_hex(bytes, len, sha);
  /* The files are each chubd's own (--data); the database is shared. */
  shared_copy_blob(chubd_proc_data_dir(a), chubd_proc_data_dir(b), sha);
  json_t *m = sv_model(a, chubd_proc_key(a), id);
  const char *url = th_json_str(m, "resume");
  assert_non_null(url);
  const char *root = chubd_proc_base_url(a);
  assert_true(strncmp(url, root, strlen(root)) == 0);
  /* The same URL, on the other chubd, without a key. */
  char *other = th_fmt("%s%s", chubd_proc_base_url(b), url + strlen(root));
  th_response r;
  assert_int_equal(th_request_hdrs("GET", other, NULL, NULL, 0, &r), 0);
  if (r.status != 200)
    fail_msg("a URL signed by one chubd answered %ld on the other: %s",
             r.status, r.body ? r.body : "");
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, bytes, len);
  th_response_free(&r);
  /* An altered signature is refused there all the same. */
  char *sig = strstr(other, "sig=");
  assert_non_null(sig);
  sig[4] = sig[4] == 'a' ? 'b' : 'a';
  assert_int_equal(th_request_hdrs("GET", other, NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 403);
  th_response_free(&r);
  free(other);
  json_decref(m);
  free(bytes);
  free(id);
}

/* A key revoked through one chubd (`keys revoke` on its data directory)
 * stops working on the other too, within a bounded wait, although that
 * one had just confirmed (and cached) it. */
static void shared_revoke(void **state) {
  shared_pair *s = *state;
  chubd_proc *a = s->p[0], *b = s->p[1];
  char *key = chubd_proc_create_key(a, "leaver");
  assert_non_null(key);
  json_t *env = sv_expect(a, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  env = sv_expect(b, "POST", "/v1/auth", key, NULL, 200);
  json_decref(env);
  char *list = NULL;
  const char *ls[] = {"keys", "list", NULL};
  assert_int_equal(chubd_proc_cli(b, ls, &list), 0);
  char *prefix = sv_listed_prefix(list, key);
  assert_non_null(prefix);
  const char *revoke[] = {"keys", "revoke", prefix, NULL};
  assert_int_equal(chubd_proc_cli(b, revoke, NULL), 0);
  long status = 0;
  for (int i = 0; i < 60; i++) {
    env = sv_json(a, "POST", "/v1/auth", key, NULL, &status);
    json_decref(env);
    if (status == 401)
      break;
    sv_sleep_ms(50);
  }
  if (status != 401)
    fail_msg("a key revoked through the other chubd still answered %ld "
             "after 3 s",
             status);
  env = sv_expect(b, "POST", "/v1/auth", key, NULL, 401);
  json_decref(env);
  free(prefix);
  free(list);
  free(key);
}

/* Every connection both chubd hold is ended by the server (as when it
 * restarts or an administrator ends sessions): the next requests are
 * answered all the same, each pooled connection made again before use. */
static void shared_reconnect(void **state) {
  shared_pair *s = *state;
  char *id = sv_create(s->p[0], chubd_proc_key(s->p[0]), "again.pt");
  char *n = chubd_proc_db_query(
      s->p[0], "SELECT count(pg_terminate_backend(pid)) FROM "
               "pg_stat_activity WHERE datname = current_database() "
               "AND pid <> pg_backend_pid()");
  assert_non_null(n);
  assert_true(atoi(n) >= 2);
  free(n);
  for (int i = 0; i < 20; i++) {
    chubd_proc *p = s->p[i % 2];
    char *m = th_fmt("{\"%d\": \"{\\\"loss\\\": %d}\"}", i, i);
    long st = sv_metrics(p, chubd_proc_key(p), id, m);
    if (st != 200)
      fail_msg("metrics after the connections were ended answered %ld", st);
    free(m);
    json_t *model = sv_model(p, chubd_proc_key(p), id);
    json_decref(model);
  }
  free(id);
}

/* A chubd with --db-pool 1 whose one connection waits on a row another
 * session holds locked: a second request waits a bounded time for a
 * connection, then gets 503 with Retry-After; once the lock goes, both
 * the waiting write and new requests succeed. */
typedef struct shared_blocked {
  chubd_proc *p;
  const char *id;
  long status;
} shared_blocked;

static void *shared_blocked_main(void *arg) {
  shared_blocked *b = arg;
  b->status = sv_metrics(b->p, chubd_proc_key(b->p), b->id,
                         "{\"0\": \"{\\\"loss\\\": 1}\"}");
  return NULL;
}

static long shared_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void shared_pool_bounded(void **state) {
  shared_pair *s = *state;
  const char *args[] = {"--db", chubd_proc_db(s->p[0]), "--db-pool", "1", NULL};
  chubd_proc *c = chubd_proc_start(sv_chubd_bin(), NULL, args);
  assert_non_null(c);
  char *locked = sv_create(c, chubd_proc_key(c), "locked.pt");
  char *other = sv_create(c, chubd_proc_key(c), "other.pt");
  PGconn *db = PQconnectdb(chubd_proc_db(c));
  assert_int_equal(PQstatus(db), CONNECTION_OK);
  PQclear(PQexec(db, "BEGIN"));
  char *sql = th_fmt("SELECT 1 FROM models WHERE id = '%s' FOR UPDATE", locked);
  PGresult *r = PQexec(db, sql);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  free(sql);
  shared_blocked b = {c, locked, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, shared_blocked_main, &b), 0);
  sv_sleep_ms(300); /* the upload now holds the one connection, waiting */
  long start = shared_now_ms();
  char *path = th_fmt("/v1/models/%s", other);
  char *url = th_fmt("%s%s", chubd_proc_base_url(c), path);
  th_response resp;
  const char *hdrs[] = {NULL, NULL};
  char *key = th_fmt("x-api-key: %s", chubd_proc_key(c));
  hdrs[0] = key;
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &resp), 0);
  long took = shared_now_ms() - start;
  if (resp.status != 503)
    fail_msg("with the one connection busy, a read answered %ld after %ld ms",
             resp.status, took);
  char *retry = th_header(resp.headers, "Retry-After");
  assert_non_null(retry);
  free(retry);
  th_response_free(&resp);
  assert_true(took >= 3000 && took < 9000);
  PQclear(PQexec(db, "ROLLBACK"));
  PQfinish(db);
  pthread_join(t, NULL);
  assert_int_equal(b.status, 200);
  json_t *env = sv_expect(c, "GET", path, chubd_proc_key(c), NULL, 200);
  json_decref(env);
  assert_int_equal(chubd_proc_stop(c), 0);
  chubd_proc_free(c);
  free(key);
  free(url);
  free(path);
  free(locked);
  free(other);
}

int main(void) {
  if (!chubd_proc_pg_dir()) {
    fprintf(stderr, "server_pg_shared: needs the PostgreSQL test cluster "
                    "(CHUB_TEST_PG); skipped\n");
    return SHARED_SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shared_creates),
      cmocka_unit_test(shared_metrics),
      cmocka_unit_test(shared_finals),
      cmocka_unit_test(shared_signed_url),
      cmocka_unit_test(shared_revoke),
      cmocka_unit_test(shared_reconnect),
      cmocka_unit_test(shared_pool_bounded),
  };
  /* cmocka 1.1.5 leaves a failed group teardown out of its result. */
  int rc = cmocka_run_group_tests(tests, shared_setup, shared_teardown);
  return rc ? rc : shared_failed != 0;
}

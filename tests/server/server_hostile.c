/*
 * server_hostile.c - conformance: input a client should never send.
 *
 * chubd may face the network, so every malformed thing gets a precise 4xx
 * envelope and never a 500, a crash or a file outside its data directory:
 * ids of the wrong shape, bodies over --max-body, wrong content types,
 * unknown routes and methods, unknown fields, and a bounded batch of
 * garbage. After all of it chubd still answers.
 */
#include "sv.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void server_hostile_bad_ids(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  const char *ids[] = {
      "AAAAAAAAAAAAAAAAAAA",   /* 19 */
      "AAAAAAAAAAAAAAAAAAAAA", /* 21 */
      "AAAAAAAAAA-AAAAAAAAA",  /* 20, not alnum */
      "AAAAAAAAAA%20AAAAAAAA", /* 20 with a space */
      "AAAAAAAAAA%00AAAAAAAA", /* 20 with a NUL */
      "..",
  };
  const char *forms[] = {"/v1/models/%s", "/v1/models/%s/metrics",
                         "/v1/models/%s/weights/last", "/v1/models/%s/upload",
                         "/v1/agent/heartbeat/models/%s"};
  const char *methods[] = {"GET", "GET", "GET", "POST", "POST"};
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
      char *path = th_fmt(forms[f], ids[i]);
      json_t *env = sv_expect(
          p, methods[f], path, key,
          f == 4 ? "{\"agent\": \"a\", \"agentId\": null}" : NULL, 400);
      json_decref(env);
      free(path);
    }
  }
}

static void server_hostile_traversal(void **state) {
  chubd_proc *p = *state;
  /* Dot segments as sent (curl is told not to squash them): whatever the
   * router makes of it, no file from outside is served. */
  const char *paths[] = {"/v1/models/../../etc/passwd",
                         "/v1/models/..%2F..%2Fetc",
                         "/v1/models/..%2F..%2Fetc/weights/last",
                         "/v1/models/AAAAAAAA%2e%2e%2fAAAAAAAA/metrics",
                         "/static/../../../../etc/passwd",
                         "/static/..%2f..%2f..%2fetc%2fpasswd",
                         "/models/../../etc/passwd"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    char *url = th_fmt("%s%s", chubd_proc_base_url(p), paths[i]);
    long status = 0;
    char *body = NULL;
    assert_int_equal(th_request("GET", url, chubd_proc_key(p), NULL, NULL, 0,
                                &status, &body, NULL),
                     0);
    if (status != 400 && status != 404)
      fail_msg("GET %s: expected 400 or 404, got %ld", paths[i], status);
    assert_null(strstr(body, "root:"));
    free(body);
    free(url);
  }
}

static void server_hostile_content_type(void **state) {
  chubd_proc *p = *state;
  char *url = th_fmt("%s/v1/models", chubd_proc_base_url(p));
  const char *json = "{\"meta\": {\"name\": \"x.pt\"}}";
  const char *types[] = {"text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"};
  for (size_t i = 0; i < 3; i++) {
    long status = 0;
    char *body = NULL;
    assert_int_equal(th_request("POST", url, chubd_proc_key(p), types[i], json,
                                strlen(json), &status, &body, NULL),
                     0);
    if (status != 415)
      fail_msg("POST /v1/models as %s: expected 415, got %ld %s", types[i],
               status, body);
    th_response r = {status, body, strlen(body), NULL};
    json_t *env = th_envelope(&r);
    assert_non_null(env);
    json_decref(env);
    free(body);
  }
  /* The charset parameter is still JSON. */
  long status = 0;
  char *body = NULL;
  assert_int_equal(th_request("POST", url, chubd_proc_key(p),
                              "application/json; charset=utf-8", json,
                              strlen(json), &status, &body, NULL),
                   0);
  assert_int_equal(status, 200);
  free(body);
  free(url);
}

static void server_hostile_routes(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  json_t *env = sv_expect(p, "GET", "/v1/nothing-here", key, NULL, 404);
  json_decref(env);
  env = sv_expect(p, "GET", "/v2/models", key, NULL, 404);
  json_decref(env);
  char *id = sv_create(p, key, "r.pt");
  char *path = th_fmt("/v1/models/%s/nothing", id);
  env = sv_expect(p, "GET", path, key, NULL, 404);
  json_decref(env);
  free(path);

  /* Known routes, wrong method: 405. */
  struct {
    const char *method, *path;
  } wrong[] = {{"PUT", "/v1/models"},
               {"DELETE", "/v1/auth"},
               {"GET", "/v1/auth"},
               {"DELETE", "/v1/health"},
               {"GET", "/v1/events"},
               {"PUT", "/v1/models/%s"},
               {"DELETE", "/v1/models/%s/metrics"},
               {"GET", "/v1/models/%s/upload"},
               {"GET", "/v1/agent/heartbeat/models/%s"}};
  for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
    char *pth = th_fmt(wrong[i].path, id);
    env = sv_expect(p, wrong[i].method, pth, key, NULL, 405);
    json_decref(env);
    free(pth);
  }
  free(id);
}

static void server_hostile_unknown_fields(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  json_t *env =
      sv_expect(p, "POST", "/v1/models", key,
                "{\"meta\": {\"name\": \"x.pt\"}, \"bogus\": 1}", 400);
  assert_true(sv_message_has(env, "bogus"));
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/models", key,
                  "{\"meta\": {\"name\": \"x.pt\", \"colour\": \"red\"}}", 400);
  assert_true(sv_message_has(env, "colour"));
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/models", key,
                  "{\"config\": {\"epochs\": 3, \"warp\": 9}, "
                  "\"meta\": {\"name\": \"x.pt\"}}",
                  400);
  assert_true(sv_message_has(env, "warp"));
  json_decref(env);
  char *id = sv_create(p, key, "u.pt");
  char *path = th_fmt("/v1/models/%s", id);
  env = sv_expect(p, "PATCH", path, key, "{\"owner\": \"me\"}", 400);
  assert_true(sv_message_has(env, "owner"));
  json_decref(env);
  env =
      sv_expect(p, "POST", path, key,
                "{\"type\": \"metrics\", \"metrics\": {}, \"extra\": 1}", 400);
  assert_true(sv_message_has(env, "extra"));
  json_decref(env);
  /* Ill-typed known fields name the field too. */
  env = sv_expect(p, "POST", "/v1/models", key,
                  "{\"config\": {\"epochs\": \"ten\"}, "
                  "\"meta\": {\"name\": \"x.pt\"}}",
                  400);
  assert_true(sv_message_has(env, "epochs"));
  json_decref(env);
  env =
      sv_expect(p, "POST", "/v1/models", key, "{\"meta\": {\"name\": 7}}", 400);
  assert_true(sv_message_has(env, "name"));
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/models", key, "[]", 400);
  json_decref(env);
  free(path);
  free(id);
}

static void server_hostile_max_body(void **state) {
  (void)state;
  const char *args[] = {"--max-body",   "2048",         "--max-upload",
                        "65536",        "--rate-limit", "100000",
                        "--rate-burst", "100000",       NULL};
  chubd_proc *p = sv_start(args);
  char *id = sv_create(p, chubd_proc_key(p), "big.pt");
  /* A metrics body over 2048 bytes: 413 naming the limit. */
  json_t *metrics = json_object();
  for (int e = 0; e < 100; e++) {
    char k[16];
    snprintf(k, sizeof k, "%d", e);
    json_object_set_new(metrics, k, json_string("{\"loss\": 1.2345}"));
  }
  char *mj = json_dumps(metrics, JSON_COMPACT);
  json_decref(metrics);
  assert_true(strlen(mj) > 2048);
  char *body = th_fmt("{\"type\": \"metrics\", \"metrics\": %s}", mj);
  char *path = th_fmt("/v1/models/%s", id);
  json_t *env = sv_expect(p, "POST", path, chubd_proc_key(p), body, 413);
  assert_true(sv_message_has(env, "2048"));
  json_decref(env);
  /* Nothing of it was stored. */
  char *mpath = th_fmt("/v1/models/%s/metrics", id);
  env = sv_expect(p, "GET", mpath, chubd_proc_key(p), NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 0);
  json_decref(env);
  /* An upload over --max-upload: 413 naming that limit. */
  unsigned char *b = sv_bytes(100000, 7);
  th_response r;
  assert_int_equal(sv_upload(p, chubd_proc_key(p), id, 0, "epoch", "False", b,
                             100000, NULL, &r),
                   413);
  env = th_envelope(&r);
  assert_non_null(env);
  assert_true(sv_message_has(env, "65536"));
  json_decref(env);
  th_response_free(&r);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), b + 100, 4096, 1), 0);
  /* Under the limits all is well. */
  assert_int_equal(sv_upload(p, chubd_proc_key(p), id, 0, "epoch", "False", b,
                             30000, NULL, &r),
                   200);
  th_response_free(&r);
  assert_int_equal(
      sv_metrics(p, chubd_proc_key(p), id, "{\"0\": \"{\\\"loss\\\": 1}\"}"),
      200);
  free(b);
  free(mpath);
  free(path);
  free(body);
  free(mj);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Garbage: a bounded, seeded batch of bodies to every JSON endpoint. */
static void server_hostile_garbage(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "g.pt");
  char *targets[] = {
      th_fmt("/v1/models"),
      th_fmt("/v1/models/%s", id),
      th_fmt("/v1/agent/heartbeat/models/%s", id),
      th_fmt("/v1/events"),
      th_fmt("/v1/models/%s/upload", id),
  };
  const char *fragments[] = {"{",
                             "}",
                             "[",
                             "]",
                             "\"",
                             ":",
                             ",",
                             "null",
                             "true",
                             "1e999999",
                             "-0",
                             "\"type\"",
                             "\"metrics\"",
                             "\"0\"",
                             "\"\\u0000\"",
                             "\\",
                             "\xff\xfe",
                             "{\"a\":",
                             "99999999999999999999999",
                             "\"events\"",
                             "[[[[[[[[[[[[[[[[[[[[",
                             "\"agent\"",
                             "\"\\ud800\""};
  const size_t nfrag = sizeof fragments / sizeof *fragments;
  unsigned x = 12345;
  int bad = 0;
  for (int i = 0; i < 300; i++) {
    char body[512];
    size_t len = 0;
    int parts = 1 + (int)(i % 12);
    for (int k = 0; k < parts; k++) {
      x = x * 1103515245u + 12345u;
      const char *f = fragments[(x >> 16) % nfrag];
      size_t fl = strlen(f);
      if (len + fl >= sizeof body)
        break;
      memcpy(body + len, f, fl);
      len += fl;
    }
    char *target = targets[i % 5];
    char *url = th_fmt("%s%s", chubd_proc_base_url(p), target);
    const char *ct =
        i % 5 == 4 ? "multipart/form-data; boundary=zz" : "application/json";
    long status = 0;
    char *resp = NULL;
    int rc = th_request(i % 7 == 0 ? "PATCH" : "POST", url, key, ct, body, len,
                        &status, &resp, NULL);
    if (rc != 0 || status >= 500) {
      fprintf(stderr, "garbage %d to %s answered %ld: %.200s\n", i, target,
              status, resp ? resp : "(no answer)");
      bad++;
    }
    free(resp);
    free(url);
    if (bad)
      break;
  }
  assert_int_equal(bad, 0);
  assert_true(sv_alive(p, 2000));
  assert_int_equal(kill(chubd_proc_pid(p), 0), 0);
  /* The model is still intact. */
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "meta.name"), "g.pt");
  json_decref(m);
  for (int i = 0; i < 5; i++)
    free(targets[i]);
  free(id);
}

/* Garbage at the HTTP level: broken request lines and headers. */
static void server_hostile_raw_http(void **state) {
  chubd_proc *p = *state;
  const char *reqs[] = {
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      ("POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: "
       "99999999999999999999\r\n\r\n"),
      "GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
      "\x00\x01\x02\x03\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
    /* The NUL-led request is 8 bytes; the rest are strings. */
    size_t len = reqs[i][0] == '\0' ? 8 : strlen(reqs[i]);
    char *answer = sv_raw(chubd_proc_port(p), reqs[i], len, 1);
    /* An answer, if any, is not a server error. */
    assert_null(strstr(answer, "HTTP/1.1 5"));
    assert_null(strstr(answer, "HTTP/1.0 5"));
    free(answer);
  }
  assert_true(sv_alive(p, 2000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_hostile_bad_ids),
      cmocka_unit_test(server_hostile_traversal),
      cmocka_unit_test(server_hostile_content_type),
      cmocka_unit_test(server_hostile_routes),
      cmocka_unit_test(server_hostile_unknown_fields),
      cmocka_unit_test(server_hostile_max_body),
      cmocka_unit_test(server_hostile_garbage),
      cmocka_unit_test(server_hostile_raw_http),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_hostile", tests, sv_group_setup, sv_group_teardown));
}

/*
 * server_remote.c - conformance: page auth when chubd does not listen on a
 * loopback address (the chubd interface spec "Page auth").
 *
 * Off loopback, the /ui/ JSON needs the chub_session cookie from POST
 * /ui/login (a session token, never the key) and shows only that key's
 * owner's models. To test that without touching any
 * real network, the test moves itself into a private network namespace
 * (unshare(CLONE_NEWNET): nothing in it reaches outside) and gives its lo a
 * non-loopback address, 10.99.0.1, for chubd to listen on. That needs root;
 * without it the test reports itself skipped (exit 77).
 */
#include "sv.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVER_REMOTE_HOST "10.99.0.1"

typedef struct server_remote {
  chubd_proc *p;
  char *key_b;
  char *id_a;
  char *id_b;
  unsigned char *bytes;
  size_t len;
  char sha[65];
} server_remote;

static int server_remote_setup(void **state) {
  server_remote *s = calloc(1, sizeof *s);
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  s->p = chubd_proc_start_on(sv_chubd_bin(), SERVER_REMOTE_HOST, NULL, args);
  if (!s->p) {
    free(s);
    return -1;
  }
  s->key_b = chubd_proc_create_key(s->p, "other-owner");
  s->id_a =
      th_create_model(chubd_proc_base_url(s->p), chubd_proc_key(s->p), "a.pt");
  s->id_b = th_create_model(chubd_proc_base_url(s->p), s->key_b, "b.pt");
  s->len = 9000;
  s->bytes = sv_bytes(s->len, 88);
  th_sha256_hex(s->bytes, s->len, s->sha);
  *state = s;
  return s->key_b && s->id_a && s->id_b ? 0 : -1;
}

static int server_remote_teardown(void **state) {
  server_remote *s = *state;
  void *p = s->p;
  int rc = sv_group_teardown(&p);
  free(s->bytes);
  free(s->id_b);
  free(s->id_a);
  free(s->key_b);
  free(s);
  return rc;
}

/* GET with a cookie (NULL: none). */
static long server_remote_get(chubd_proc *p, const char *path,
                              const char *cookie, th_response *r) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *c = cookie ? th_fmt("Cookie: chub_session=%s", cookie) : NULL;
  const char *hdrs[] = {c, NULL};
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, r), 0);
  free(c);
  free(url);
  return r->status;
}

static json_t *server_remote_json(chubd_proc *p, const char *path,
                                  const char *cookie, long want) {
  th_response r;
  long st = server_remote_get(p, path, cookie, &r);
  if (st != want)
    fail_msg("GET %s (cookie %s): %ld, expected %ld: %.300s", path,
             cookie ? "set" : "none", st, want, r.body);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  th_response_free(&r);
  return env;
}

/* Logs in with `body` of `content_type`; returns the cookie's value
 * (malloc'd) after checking its attributes, or NULL when not 200. */
static char *server_remote_login(chubd_proc *p, const char *content_type,
                                 const char *body, long *status) {
  char *url = th_fmt("%s/ui/login", chubd_proc_base_url(p));
  char *ct = th_fmt("Content-Type: %s", content_type);
  char *origin = th_fmt("Origin: %s", chubd_proc_base_url(p));
  const char *hdrs[] = {ct, origin, NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("POST", url, hdrs, body, strlen(body), &r),
                   0);
  *status = r.status;
  char *value = NULL;
  if (r.status == 200) {
    char *sc = th_header(r.headers, "Set-Cookie");
    assert_non_null(sc);
    if (strncmp(sc, "chub_session=", 13) != 0)
      fail_msg("Set-Cookie \"%s\" does not set chub_session", sc);
    assert_non_null(strcasestr(sc, "HttpOnly"));
    assert_non_null(strcasestr(sc, "SameSite=Strict"));
    assert_non_null(strcasestr(sc, "Path=/"));
    value = strndup(sc + 13, strcspn(sc + 13, ";"));
    /* A session token, never the key itself. */
    assert_int_equal(strlen(value), 64);
    assert_null(strstr(body, value));
    free(sc);
  } else {
    json_t *env = th_envelope(&r);
    assert_non_null(env);
    json_decref(env);
  }
  th_response_free(&r);
  free(origin);
  free(ct);
  free(url);
  return value;
}

static void server_remote_needs_cookie(void **state) {
  server_remote *s = *state;
  chubd_proc *p = s->p;
  char *paths[] = {
      th_fmt("/ui/models"),
      th_fmt("/ui/models/%s", s->id_a),
      th_fmt("/ui/models/%s/metrics", s->id_a),
      th_fmt("/ui/models/%s/weights/last", s->id_a),
  };
  for (int i = 0; i < 4; i++) {
    json_t *env = server_remote_json(p, paths[i], NULL, 401);
    json_decref(env);
    /* A cookie with a key that was never issued is no better. */
    env = server_remote_json(p, paths[i],
                             "abcdefghijABCDEFGHIJ0123456789abcdefghijKL", 401);
    json_decref(env);
    free(paths[i]);
  }
  /* The pages themselves load (their script sends the person to /login). */
  th_response r;
  assert_int_equal(server_remote_get(p, "/login", NULL, &r), 200);
  th_response_free(&r);
  assert_int_equal(server_remote_get(p, "/", NULL, &r), 200);
  th_response_free(&r);
  /* The API is unchanged: the key header works off loopback too. */
  json_t *m = sv_model(p, chubd_proc_key(p), s->id_a);
  json_decref(m);
}

static void server_remote_login_scopes_owner(void **state) {
  server_remote *s = *state;
  chubd_proc *p = s->p;
  long st = 0;
  char *bad = server_remote_login(
      p, "application/json",
      "{\"key\": \"abcdefghijABCDEFGHIJ0123456789abcdefghijKL\"}", &st);
  assert_int_equal(st, 401);
  assert_null(bad);

  char *body = th_fmt("{\"key\": \"%s\"}", chubd_proc_key(p));
  char *cookie_a = server_remote_login(p, "application/json", body, &st);
  assert_int_equal(st, 200);
  free(body);

  th_response r;
  assert_int_equal(sv_upload(p, chubd_proc_key(p), s->id_a, 0, "epoch", "True",
                             s->bytes, s->len, NULL, &r),
                   200);
  th_response_free(&r);
  assert_int_equal(
      sv_metrics(p, chubd_proc_key(p), s->id_a, "{\"0\": \"{\\\"m\\\": 1}\"}"),
      200);

  /* A's cookie: A's model, not B's. */
  json_t *env = server_remote_json(p, "/ui/models", cookie_a, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 1);
  sv_assert_str(th_json_str(env, "data.results.0.id"), s->id_a);
  json_decref(env);
  char *path = th_fmt("/ui/models/%s", s->id_b);
  env = server_remote_json(p, path, cookie_a, 404);
  json_decref(env);
  free(path);
  path = th_fmt("/ui/models/%s", s->id_a);
  env = server_remote_json(p, path, cookie_a, 200);
  sv_assert_str(th_json_str(env, "data.id"), s->id_a);
  json_decref(env);
  free(path);
  path = th_fmt("/ui/models/%s/metrics", s->id_a);
  env = server_remote_json(p, path, cookie_a, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 1);
  json_decref(env);
  free(path);
  path = th_fmt("/ui/models/%s/weights/%s", s->id_a, s->sha);
  assert_int_equal(server_remote_get(p, path, cookie_a, &r), 200);
  assert_int_equal(r.body_len, s->len);
  assert_memory_equal(r.body, s->bytes, s->len);
  th_response_free(&r);
  free(path);

  /* A cross-site form post cannot log anyone in. */
  char *form = th_fmt("key=%s", s->key_b);
  assert_null(
      server_remote_login(p, "application/x-www-form-urlencoded", form, &st));
  assert_int_equal(st, 415);
  free(form);
  /* B logs in: B's model only. */
  body = th_fmt("{\"key\": \"%s\"}", s->key_b);
  char *cookie_b = server_remote_login(p, "application/json", body, &st);
  assert_int_equal(st, 200);
  env = server_remote_json(p, "/ui/models", cookie_b, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 1);
  sv_assert_str(th_json_str(env, "data.results.0.id"), s->id_b);
  json_decref(env);
  path = th_fmt("/ui/models/%s/weights/%s", s->id_a, s->sha);
  assert_int_equal(server_remote_get(p, path, cookie_b, &r), 404);
  th_response_free(&r);
  free(path);

  /* Logout clears the cookie and ends the session: the same cookie, kept
   * by whoever copied it, no longer works. */
  char *url = th_fmt("%s/ui/logout", chubd_proc_base_url(p));
  char *c = th_fmt("Cookie: chub_session=%s", cookie_b);
  char *origin = th_fmt("Origin: %s", chubd_proc_base_url(p));
  const char *hdrs[] = {c, origin, NULL};
  assert_int_equal(th_request_hdrs("POST", url, hdrs, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  char *sc = th_header(r.headers, "Set-Cookie");
  assert_non_null(sc);
  assert_true(strncmp(sc, "chub_session=;", 14) == 0 ||
              strcasestr(sc, "Max-Age=0") != NULL);
  free(sc);
  th_response_free(&r);
  free(c);
  free(origin);
  free(url);
  env = server_remote_json(p, "/ui/models", "", 401);
  json_decref(env);
  env = server_remote_json(p, "/ui/models", cookie_b, 401);
  json_decref(env);
  free(cookie_b);
  cookie_b = server_remote_login(p, "application/json", body, &st);
  assert_int_equal(st, 200);
  free(body);

  /* A revoked key's cookie stops working. */
  const char *list_args[] = {"keys", "list", NULL};
  char *list = NULL;
  assert_int_equal(chubd_proc_cli(p, list_args, &list), 0);
  char *prefix = sv_listed_prefix(list, s->key_b);
  assert_non_null(prefix);
  const char *revoke[] = {"keys", "revoke", prefix, NULL};
  assert_int_equal(chubd_proc_cli(p, revoke, NULL), 0);
  env = server_remote_json(p, "/ui/models", cookie_b, 401);
  json_decref(env);
  free(prefix);
  free(list);
  free(cookie_b);
  free(cookie_a);
}

int main(void) {
  if (geteuid() != 0) {
    printf("server_remote: skipped: needs root for a private network "
           "namespace\n");
    return 77;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    perror("server_remote: skipped: unshare(CLONE_NEWNET)");
    return 77;
  }
  /* Inside the new namespace: only lo, with one non-loopback address. */
  if (system("PATH=$PATH:/usr/sbin:/sbin; ip link set lo up && "
             "ip addr add " SERVER_REMOTE_HOST "/32 dev lo") != 0) {
    printf("server_remote: skipped: cannot configure lo (iproute2)\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_remote_needs_cookie),
      cmocka_unit_test(server_remote_login_scopes_owner),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_remote", tests, server_remote_setup, server_remote_teardown));
}

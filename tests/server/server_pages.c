/*
 * server_pages.c - conformance: the pages and their JSON (the chubd interface
 * spec "chubd pages and their JSON").
 *
 * On loopback the pages and the /ui/ JSON need no key. The assets a page names
 * are read from the HTML chubd serves, so every reference is checked to
 * resolve, with a content type a browser accepts and an ETag that answers
 * a conditional request with 304.
 */
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void server_pages_get(chubd_proc *p, const char *path,
                             const char *const extra[], th_response *r) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  assert_int_equal(th_request_hdrs("GET", url, extra, NULL, 0, r), 0);
  free(url);
}

static void server_pages_html(chubd_proc *p, const char *path) {
  th_response r;
  server_pages_get(p, path, NULL, &r);
  if (r.status != 200)
    fail_msg("GET %s: %ld", path, r.status);
  char *ct = th_header(r.headers, "Content-Type");
  assert_non_null(ct);
  assert_non_null(strstr(ct, "text/html"));
  assert_true(strcasestr(r.body, "<html") != NULL);
  free(ct);

  /* Every /static/ asset the page names resolves. */
  int n = 0;
  for (const char *s = strstr(r.body, "/static/"); s && n < 50;
       s = strstr(s + 1, "/static/"), n++) {
    size_t len = strcspn(s, "\"' >?#)");
    char *asset = strndup(s, len);
    th_response a;
    server_pages_get(p, asset, NULL, &a);
    if (a.status != 200 || a.body_len == 0)
      fail_msg("%s names %s, which answers %ld (%zu bytes)", path, asset,
               a.status, a.body_len);
    char *act = th_header(a.headers, "Content-Type");
    char *etag = th_header(a.headers, "ETag");
    assert_non_null(act);
    assert_non_null(etag);
    const char *ext = strrchr(asset, '.');
    if (ext && strcmp(ext, ".js") == 0)
      assert_non_null(strstr(act, "javascript"));
    if (ext && strcmp(ext, ".css") == 0)
      assert_non_null(strstr(act, "text/css"));
    if (ext && strcmp(ext, ".svg") == 0)
      assert_non_null(strstr(act, "image/svg+xml"));
    char *inm = th_fmt("If-None-Match: %s", etag);
    const char *hdrs[] = {inm, NULL};
    th_response c;
    server_pages_get(p, asset, hdrs, &c);
    if (c.status != 304)
      fail_msg("GET %s with If-None-Match %s: %ld, expected 304", asset, etag,
               c.status);
    th_response_free(&c);
    free(inm);
    free(etag);
    free(act);
    th_response_free(&a);
    free(asset);
  }
  th_response_free(&r);
}

static void server_pages_serves_pages(void **state) {
  chubd_proc *p = *state;
  char *id = sv_create(p, chubd_proc_key(p), "page.pt");
  server_pages_html(p, "/");
  char *path = th_fmt("/models/%s", id);
  server_pages_html(p, path);
  server_pages_html(p, "/login");
  server_pages_html(p, "/compare");
  free(path);
  path = th_fmt("/compare?ids=%s,AAAAAAAAAAAAAAAAAAAA", id);
  server_pages_html(p, path);
  free(path);
  /* An asset that does not exist. */
  th_response r;
  server_pages_get(p, "/static/no-such-file.js", NULL, &r);
  assert_int_equal(r.status, 404);
  th_response_free(&r);
  free(id);
}

static void server_pages_ui_json(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "ui.pt");
  assert_int_equal(sv_metrics(p, key, id,
                              "{\"0\": \"{\\\"loss\\\": 4}\", "
                              "\"1\": \"{\\\"loss\\\": 3}\"}"),
                   200);
  size_t len = 20000;
  unsigned char *b = sv_bytes(len, 77);
  char hex[65];
  th_sha256_hex(b, len, hex);
  th_response r;
  assert_int_equal(sv_upload(p, key, id, 1, "epoch", "True", b, len, NULL, &r),
                   200);
  th_response_free(&r);

  /* No key on loopback. */
  json_t *env = sv_expect(p, "GET", "/ui/models?limit=100", NULL, NULL, 200);
  json_t *res = th_json_at(env, "data.results");
  assert_true(json_is_array(res));
  int found = 0;
  size_t k;
  json_t *v;
  json_array_foreach(res, k, v) {
    if (strcmp(th_json_str(v, "id"), id) == 0)
      found = 1;
  }
  assert_true(found);
  assert_true(th_json_int(env, "data.total", 0) >= 1);
  json_decref(env);
  env = sv_expect(p, "GET", "/ui/models?limit=1", NULL, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 1);
  json_decref(env);

  char *path = th_fmt("/ui/models/%s", id);
  env = sv_expect(p, "GET", path, NULL, NULL, 200);
  sv_assert_str(th_json_str(env, "data.id"), id);
  sv_assert_str(th_json_str(env, "data.status"), "training");
  assert_int_equal(th_json_int(env, "data.metrics_count", -1), 2);
  assert_int_equal(th_json_int(env, "data.last_epoch", -1), 1);
  /* The page links the same signed download URL the API gives, which
   * works without a cookie or key. */
  char *ui_url = th_fmt("/ui/models/%s/weights/%s", id, hex);
  char *link_want =
      th_fmt("%s/v1/models/%s/weights/%s/", chubd_proc_base_url(p), id, hex);
  char *link = strdup(th_json_str(env, "data.checkpoints.0.url")
                          ? th_json_str(env, "data.checkpoints.0.url")
                          : "(none)");
  if (strncmp(link, link_want, strlen(link_want)) != 0)
    fail_msg("checkpoint link is %s, expected it to start with %s", link,
             link_want);
  free(link_want);
  json_decref(env);
  free(path);
  assert_int_equal(th_request_hdrs("GET", link, NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, b, len);
  th_response_free(&r);
  free(link);

  path = th_fmt("/ui/models/%s/metrics", id);
  env = sv_expect(p, "GET", path, NULL, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 2);
  assert_int_equal(th_json_int(env, "data.1.epoch", -1), 1);
  json_decref(env);
  free(path);

  /* The page's download link gives the right bytes. */
  server_pages_get(p, ui_url, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, b, len);
  char *cd = th_header(r.headers, "Content-Disposition");
  assert_non_null(cd);
  assert_non_null(strstr(cd, "attachment"));
  assert_non_null(strstr(cd, id));
  free(cd);
  th_response_free(&r);
  path = th_fmt("/ui/models/%s/weights/last", id);
  server_pages_get(p, path, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, b, len);
  th_response_free(&r);
  free(path);

  /* Unknown ids are 404 here too. */
  env = sv_expect(p, "GET", "/ui/models/AAAAAAAAAAAAAAAAAAAA", NULL, NULL, 404);
  json_decref(env);
  free(ui_url);
  free(b);
  free(id);
}

/* POST /ui/login: JSON from this hub's own pages only; the cookie holds a
 * session token, never the key. */
static void server_pages_login_cookie(void **state) {
  chubd_proc *p = *state;
  char *url = th_fmt("%s/ui/login", chubd_proc_base_url(p));
  char *body = th_fmt("{\"key\": \"%s\"}", chubd_proc_key(p));
  char *origin = th_fmt("Origin: %s", chubd_proc_base_url(p));
  const char *json_h[] = {"Content-Type: application/json", origin, NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("POST", url, json_h, body, strlen(body), &r),
                   0);
  assert_int_equal(r.status, 200);
  char *cookie = th_header(r.headers, "Set-Cookie");
  assert_non_null(cookie);
  assert_non_null(strstr(cookie, "chub_session="));
  assert_null(strstr(cookie, chubd_proc_key(p)));
  assert_non_null(strcasestr(cookie, "HttpOnly"));
  assert_non_null(strcasestr(cookie, "SameSite=Strict"));
  assert_non_null(strcasestr(cookie, "Path=/"));
  free(cookie);
  th_response_free(&r);

  /* Another site's page, or none named: refused. */
  const char *foreign_h[] = {"Content-Type: application/json",
                             "Origin: http://evil.example", NULL};
  assert_int_equal(
      th_request_hdrs("POST", url, foreign_h, body, strlen(body), &r), 0);
  assert_int_equal(r.status, 403);
  th_response_free(&r);
  const char *bare_h[] = {"Content-Type: application/json", NULL};
  assert_int_equal(th_request_hdrs("POST", url, bare_h, body, strlen(body), &r),
                   0);
  assert_int_equal(r.status, 403);
  th_response_free(&r);

  /* The form spelling (what a cross-site form posts): refused. */
  char *form = th_fmt("key=%s", chubd_proc_key(p));
  const char *form_h[] = {"Content-Type: application/x-www-form-urlencoded",
                          origin, NULL};
  assert_int_equal(th_request_hdrs("POST", url, form_h, form, strlen(form), &r),
                   0);
  assert_int_equal(r.status, 415);
  th_response_free(&r);
  free(form);

  /* An unknown key: 401 envelope, no cookie. */
  const char *bad = "{\"key\": \"abcdefghijABCDEFGHIJ0123456789abcdefghijKL\"}";
  assert_int_equal(th_request_hdrs("POST", url, json_h, bad, strlen(bad), &r),
                   0);
  assert_int_equal(r.status, 401);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  json_decref(env);
  cookie = th_header(r.headers, "Set-Cookie");
  assert_null(cookie);
  th_response_free(&r);

  /* Logout clears the cookie. */
  char *out_url = th_fmt("%s/ui/logout", chubd_proc_base_url(p));
  const char *out_h[] = {origin, NULL};
  assert_int_equal(th_request_hdrs("POST", out_url, out_h, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  cookie = th_header(r.headers, "Set-Cookie");
  assert_non_null(cookie);
  assert_non_null(strstr(cookie, "chub_session="));
  assert_true(strcasestr(cookie, "Max-Age=0") != NULL ||
              strcasestr(cookie, "Expires=") != NULL);
  free(cookie);
  th_response_free(&r);
  free(out_url);
  free(origin);
  free(body);
  free(url);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_pages_serves_pages),
      cmocka_unit_test(server_pages_ui_json),
      cmocka_unit_test(server_pages_login_cookie),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_pages", tests, sv_group_setup, sv_group_teardown));
}

/*
 * security_sessions.c - contract item 3, page sessions.
 *
 * POST /ui/login takes only a same-origin JSON {"key"} and answers with a
 * random session token in `chub_session` (64 hex; HttpOnly; SameSite=Strict;
 * Path=/), never the API key. The token opens /ui until logout, until the
 * key is revoked, or until --session-ttl passes; a `chub_key` cookie holding
 * the raw key no longer opens anything. State-changing /ui routes (login,
 * logout, POST /ui/models) refuse cross-origin requests with 403.
 * `--pages-login` makes a loopback chubd ask for the login, which is how
 * these tests exercise sessions on 127.0.0.1.
 */
#include "sec.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SS_JSON "Content-Type: application/json"

static chubd_proc *ss_start(const char *ttl) {
  const char *args[] = {"--pages-login",
                        "--rate-limit",
                        "100000",
                        "--rate-burst",
                        "100000",
                        ttl ? "--session-ttl" : NULL,
                        ttl,
                        NULL};
  return sv_start(args);
}

static char *ss_origin(chubd_proc *p) {
  return th_fmt("Origin: http://127.0.0.1:%d", chubd_proc_port(p));
}

/* POST path with the given extra headers (NULL-terminated, may hold NULL
 * holes at the end) and body. */
static void ss_post(chubd_proc *p, const char *path, const char *const hdrs[],
                    const char *body, th_response *r) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  if (th_request_hdrs("POST", url, hdrs, body, body ? strlen(body) : 0, r) != 0)
    fail_msg("POST %s: no answer", path);
  free(url);
}

/* GET path with a Cookie header (NULL: none); the status. */
static long ss_get(chubd_proc *p, const char *path, const char *cookie,
                   th_response *out) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *c = cookie ? th_fmt("Cookie: %s", cookie) : NULL;
  const char *hdrs[] = {c, NULL};
  th_response r;
  if (th_request_hdrs("GET", url, hdrs, NULL, 0, &r) != 0)
    fail_msg("GET %s: no answer", path);
  long st = r.status;
  if (out)
    *out = r;
  else
    th_response_free(&r);
  free(c);
  free(url);
  return st;
}

/* The chub_session value among the answer's Set-Cookie headers, after
 * checking the cookie's attributes and that no cookie holds the key;
 * malloc'd, or NULL when none is set. */
static char *ss_session_cookie(const th_response *r, const char *key) {
  char *all = sec_set_cookies(r->headers);
  if (!all)
    return NULL;
  if (strstr(all, key))
    fail_msg("a Set-Cookie of the login answer holds the API key: %s", all);
  char *value = NULL;
  for (char *line = all; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = '\0';
    if (strncmp(line, "chub_session=", 13) == 0) {
      value = strndup(line + 13, strcspn(line + 13, ";"));
      if (!sec_is_hex(value, 64))
        fail_msg("chub_session is \"%s\", not 64 hex digits", value);
      if (!strcasestr(line, "HttpOnly") ||
          !strcasestr(line, "SameSite=Strict") || !strstr(line, "Path=/"))
        fail_msg("chub_session cookie lacks HttpOnly, SameSite=Strict or "
                 "Path=/: %s",
                 line);
      if (strcasestr(line, "Secure"))
        fail_msg("chub_session is Secure over plain HTTP: %s", line);
    }
    line = nl ? nl + 1 : NULL;
  }
  free(all);
  return value;
}

/* Logs in with key from the page's own origin; returns the session cookie
 * value (fails the test otherwise). */
static char *ss_login(chubd_proc *p, const char *key) {
  char *origin = ss_origin(p);
  const char *hdrs[] = {SS_JSON, origin, NULL};
  char *body = th_fmt("{\"key\": \"%s\"}", key);
  th_response r;
  ss_post(p, "/ui/login", hdrs, body, &r);
  if (r.status != 200)
    fail_msg("same-origin JSON login answered %ld: %.300s", r.status, r.body);
  char *token = ss_session_cookie(&r, key);
  if (!token)
    fail_msg("the login answer sets no chub_session cookie: %s", r.headers);
  th_response_free(&r);
  free(body);
  free(origin);
  return token;
}

static char *ss_cookie(const char *token) {
  return th_fmt("chub_session=%s", token);
}

/* Polls GET path with cookie until it answers `want` (bounded: ms). */
static long ss_until(chubd_proc *p, const char *path, const char *cookie,
                     long want, int ms) {
  long deadline = sec_now_ms() + ms, st;
  for (;;) {
    st = ss_get(p, path, cookie, NULL);
    if (st == want || sec_now_ms() >= deadline)
      return st;
    sv_sleep_ms(200);
  }
}

/* On a plain loopback chubd (no new flag), logging in must not put the
 * API key in a cookie. */
static void ss_cookie_never_key(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  const char *key = chubd_proc_key(p);
  char *origin = ss_origin(p);
  const char *hdrs[] = {SS_JSON, origin, NULL};
  char *body = th_fmt("{\"key\": \"%s\"}", key);
  th_response r;
  ss_post(p, "/ui/login", hdrs, body, &r);
  char *all = sec_set_cookies(r.headers);
  if (all && strstr(all, key))
    fail_msg("POST /ui/login (%ld) answered Set-Cookie holding the API key: "
             "%.80s...",
             r.status, all);
  free(all);
  th_response_free(&r);
  free(body);
  free(origin);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Only application/json: a form post (what a foreign page can send
 * without a preflight) or text/plain is 415 and logs nobody in. */
static void ss_login_json_only(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  const char *key = chubd_proc_key(p);
  char *origin = ss_origin(p);
  char *form = th_fmt("key=%s", key);
  const char *form_h[] = {"Content-Type: application/x-www-form-urlencoded",
                          origin, NULL};
  th_response r;
  ss_post(p, "/ui/login", form_h, form, &r);
  if (r.status != 415)
    fail_msg("a form-urlencoded POST /ui/login answered %ld; expected 415",
             r.status);
  if (ss_session_cookie(&r, key))
    fail_msg("a refused login set a session cookie");
  th_response_free(&r);
  char *json = th_fmt("{\"key\": \"%s\"}", key);
  const char *text_h[] = {"Content-Type: text/plain", origin, NULL};
  ss_post(p, "/ui/login", text_h, json, &r);
  if (r.status != 415)
    fail_msg("a text/plain POST /ui/login answered %ld; expected 415",
             r.status);
  th_response_free(&r);
  /* A wrong key is 401 and sets nothing. */
  const char *bad = "{\"key\": \"abcdefghijABCDEFGHIJ0123456789abcdefghijKL\"}";
  const char *json_h[] = {SS_JSON, origin, NULL};
  ss_post(p, "/ui/login", json_h, bad, &r);
  assert_int_equal(r.status, 401);
  assert_null(sec_set_cookies(r.headers));
  th_response_free(&r);
  free(json);
  free(form);
  free(origin);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Missing or foreign Origin (and Referer) is 403; the page's own origin,
 * or a Referer on it, logs in. */
static void ss_login_same_origin(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  char *body = th_fmt("{\"key\": \"%s\"}", key);
  char *cases[][2] = {
      {NULL, NULL},
      {th_fmt("Origin: http://evil.example"), NULL},
      {th_fmt("Origin: null"), NULL},
      {th_fmt("Origin: http://localhost:%d", port + 1), NULL},
      {th_fmt("Origin: https://127.0.0.1:%d", port), NULL},
      {th_fmt("Origin: http://127.0.0.1:%d.evil.example", port), NULL},
      {NULL, th_fmt("Referer: http://evil.example/login")},
      {NULL,
       th_fmt("Referer: http://evil.example/?http://127.0.0.1:%d/", port)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *hdrs[4] = {SS_JSON, NULL, NULL, NULL};
    int n = 1;
    if (cases[i][0])
      hdrs[n++] = cases[i][0];
    if (cases[i][1])
      hdrs[n++] = cases[i][1];
    th_response r;
    ss_post(p, "/ui/login", hdrs, body, &r);
    if (r.status != 403)
      fail_msg("POST /ui/login with %s / %s answered %ld; expected 403",
               cases[i][0] ? cases[i][0] : "no Origin",
               cases[i][1] ? cases[i][1] : "no Referer", r.status);
    if (ss_session_cookie(&r, key))
      fail_msg("a cross-origin login set a session cookie");
    th_response_free(&r);
    free(cases[i][0]);
    free(cases[i][1]);
  }
  /* Same origin by Referer alone. */
  char *referer = th_fmt("Referer: http://127.0.0.1:%d/login?next=/", port);
  const char *ref_h[] = {SS_JSON, referer, NULL};
  th_response r;
  ss_post(p, "/ui/login", ref_h, body, &r);
  if (r.status != 200)
    fail_msg("POST /ui/login with a same-origin Referer and no Origin "
             "answered %ld; expected 200",
             r.status);
  char *token = ss_session_cookie(&r, key);
  assert_non_null(token);
  free(token);
  th_response_free(&r);
  free(referer);
  free(body);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* A Referer whose text starts with the origin but whose origin is another
 * one (userinfo, a longer host) is not same-origin. */
static void ss_login_referer_lookalike(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  int port = chubd_proc_port(p);
  char *body = th_fmt("{\"key\": \"%s\"}", chubd_proc_key(p));
  char *refs[] = {
      th_fmt("Referer: http://127.0.0.1:%d@evil.example/", port),
      th_fmt("Referer: http://127.0.0.1:%d.evil.example/", port),
      th_fmt("Referer: http://127.0.0.1:%d0/", port),
  };
  for (size_t i = 0; i < sizeof refs / sizeof *refs; i++) {
    const char *hdrs[] = {SS_JSON, refs[i], NULL};
    th_response r;
    ss_post(p, "/ui/login", hdrs, body, &r);
    if (r.status != 403)
      fail_msg("POST /ui/login with \"%s\" (another origin) answered %ld; "
               "expected 403",
               refs[i], r.status);
    th_response_free(&r);
    free(refs[i]);
  }
  free(body);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* The session opens /ui; nothing else does. */
static void ss_session_opens_ui(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "session.pt");
  char *model = th_fmt("/ui/models/%s", id);
  const char *paths[] = {"/ui/models", model};
  char *raw_key = th_fmt("chub_key=%s", key);
  const char *forged =
      "chub_session="
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  for (size_t i = 0; i < 2; i++) {
    long st = ss_get(p, paths[i], NULL, NULL);
    if (st != 401)
      fail_msg("GET %s without a cookie (--pages-login) answered %ld; "
               "expected 401",
               paths[i], st);
    st = ss_get(p, paths[i], raw_key, NULL);
    if (st != 401)
      fail_msg("GET %s with Cookie chub_key=<the API key> answered %ld; "
               "expected 401 (the key is no longer a cookie)",
               paths[i], st);
    st = ss_get(p, paths[i], forged, NULL);
    if (st != 401)
      fail_msg("GET %s with a made-up chub_session answered %ld; expected "
               "401",
               paths[i], st);
  }
  char *token = ss_login(p, key);
  char *cookie = ss_cookie(token);
  th_response r;
  long st = ss_get(p, "/ui/models", cookie, &r);
  if (st != 200)
    fail_msg("GET /ui/models with the session answered %ld", st);
  if (!strstr(r.body, id))
    fail_msg("GET /ui/models with the session does not list model %s", id);
  th_response_free(&r);
  assert_int_equal(ss_get(p, model, cookie, NULL), 200);
  /* Each login is a new random token. */
  char *token2 = ss_login(p, key);
  assert_string_not_equal(token, token2);
  free(token2);
  free(cookie);
  free(token);
  free(raw_key);
  free(model);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Logout (same-origin only) ends the session on the server. */
static void ss_logout_revokes(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  char *token = ss_login(p, chubd_proc_key(p));
  char *cookie = ss_cookie(token);
  char *cookie_h = th_fmt("Cookie: %s", cookie);
  assert_int_equal(ss_get(p, "/ui/models", cookie, NULL), 200);
  th_response r;
  const char *evil_h[] = {SS_JSON, cookie_h, "Origin: http://evil.example",
                          NULL};
  ss_post(p, "/ui/logout", evil_h, "{}", &r);
  if (r.status != 403)
    fail_msg("a cross-origin POST /ui/logout answered %ld; expected 403",
             r.status);
  th_response_free(&r);
  assert_int_equal(ss_get(p, "/ui/models", cookie, NULL), 200);
  char *origin = ss_origin(p);
  const char *out_h[] = {SS_JSON, cookie_h, origin, NULL};
  ss_post(p, "/ui/logout", out_h, "{}", &r);
  if (r.status != 200)
    fail_msg("same-origin POST /ui/logout answered %ld: %.200s", r.status,
             r.body);
  th_response_free(&r);
  long st = ss_get(p, "/ui/models", cookie, NULL);
  if (st != 401)
    fail_msg("the session cookie still answers %ld after logout; expected "
             "401 (a stolen cookie must die with logout)",
             st);
  free(origin);
  free(cookie_h);
  free(cookie);
  free(token);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* `chubd keys revoke` of the key ends its sessions. */
static void ss_revoke_ends_session(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  char *other = chubd_proc_create_key(p, "other-owner");
  assert_non_null(other);
  char *token = ss_login(p, other);
  char *cookie = ss_cookie(token);
  assert_int_equal(ss_get(p, "/ui/models", cookie, NULL), 200);
  const char *rev[] = {"keys", "revoke", "other-owner", NULL};
  assert_int_equal(chubd_proc_cli(p, rev, NULL), 0);
  long st = ss_until(p, "/ui/models", cookie, 401, 3000);
  if (st != 401)
    fail_msg("a session of a revoked key still answers %ld 3 s after "
             "`keys revoke`; expected 401",
             st);
  /* The owner's own sessions are not affected. */
  char *t2 = ss_login(p, chubd_proc_key(p));
  char *c2 = ss_cookie(t2);
  assert_int_equal(ss_get(p, "/ui/models", c2, NULL), 200);
  free(c2);
  free(t2);
  free(cookie);
  free(token);
  free(other);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* --session-ttl 3: the session works, then expires (bounded: 8 s). */
static void ss_session_expires(void **state) {
  (void)state;
  chubd_proc *p = ss_start("3");
  char *token = ss_login(p, chubd_proc_key(p));
  char *cookie = ss_cookie(token);
  long st = ss_get(p, "/ui/models", cookie, NULL);
  if (st != 200)
    fail_msg("a fresh session (--session-ttl 3) answered %ld", st);
  st = ss_until(p, "/ui/models", cookie, 401, 8000);
  if (st != 401)
    fail_msg("a session with --session-ttl 3 still answers %ld after 8 s; "
             "expected 401",
             st);
  free(cookie);
  free(token);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* A key can hold only so many sessions (64): one who logs in again and
 * again cannot grow the session table without bound. The newest sessions
 * work; the oldest are gone. */
static void ss_sessions_bounded(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  enum { LOGINS = 70 };
  char *tokens[LOGINS];
  for (int i = 0; i < LOGINS; i++)
    tokens[i] = ss_login(p, chubd_proc_key(p));
  char *oldest = ss_cookie(tokens[0]);
  char *newest = ss_cookie(tokens[LOGINS - 1]);
  char *last_kept = ss_cookie(tokens[LOGINS - 64]);
  long st = ss_get(p, "/ui/models", newest, NULL);
  if (st != 200)
    fail_msg("the newest of %d sessions answered %ld", LOGINS, st);
  st = ss_get(p, "/ui/models", last_kept, NULL);
  if (st != 200)
    fail_msg("the 64th newest session answered %ld; 64 are kept", st);
  st = ss_get(p, "/ui/models", oldest, NULL);
  if (st != 401)
    fail_msg("the oldest of %d sessions of one key still answers %ld; "
             "expected 401 (at most 64 per key)",
             LOGINS, st);
  free(oldest);
  free(newest);
  free(last_kept);
  for (int i = 0; i < LOGINS; i++)
    free(tokens[i]);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* POST /ui/models with a valid session: cross-origin or origin-less is 403
 * and creates nothing; same-origin JSON creates the model. */
static void ss_ui_models_same_origin(void **state) {
  (void)state;
  chubd_proc *p = ss_start(NULL);
  const char *key = chubd_proc_key(p);
  char *token = ss_login(p, key);
  char *cookie_h = th_fmt("Cookie: chub_session=%s", token);
  const char *body = "{\"name\": \"csrf-model\", \"architecture\": "
                     "\"yolo11n\"}";
  const char *hdr_sets[][4] = {
      {SS_JSON, cookie_h, "Origin: http://evil.example", NULL},
      {SS_JSON, cookie_h, "Referer: http://evil.example/page", NULL},
      {SS_JSON, cookie_h, NULL, NULL},
  };
  for (size_t i = 0; i < 3; i++) {
    th_response r;
    ss_post(p, "/ui/models", hdr_sets[i], body, &r);
    if (r.status != 403)
      fail_msg("POST /ui/models with a session and %s answered %ld; "
               "expected 403",
               hdr_sets[i][2] ? hdr_sets[i][2] : "no Origin or Referer",
               r.status);
    th_response_free(&r);
  }
  json_t *env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  char *listed = json_dumps(env, 0);
  if (strstr(listed, "csrf-model"))
    fail_msg("a refused cross-origin POST /ui/models created a model");
  free(listed);
  json_decref(env);
  char *origin = ss_origin(p);
  const char *ok_h[] = {SS_JSON, cookie_h, origin, NULL};
  th_response r;
  ss_post(p, "/ui/models", ok_h, body, &r);
  if (r.status != 200)
    fail_msg("same-origin POST /ui/models with a session answered %ld: "
             "%.300s",
             r.status, r.body);
  th_response_free(&r);
  free(origin);
  free(cookie_h);
  free(token);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

static size_t ss_collect(char *ptr, size_t size, size_t n, void *ud) {
  char **buf = ud;
  size_t old = *buf ? strlen(*buf) : 0, add = size * n;
  char *b = realloc(*buf, old + add + 1);
  if (!b)
    return 0;
  memcpy(b + old, ptr, add);
  b[old + add] = '\0';
  *buf = b;
  return add;
}

/* A self-signed certificate in a directory of its own, removed by the
 * teardown whatever the test's outcome. */
typedef struct ss_tls {
  char dir[64];
  char *cert;
  char *key;
} ss_tls;

static int ss_tls_setup(void **state) {
  ss_tls *t = calloc(1, sizeof *t);
  snprintf(t->dir, sizeof t->dir, "/tmp/chub-sec-tls-XXXXXX");
  if (!mkdtemp(t->dir)) {
    free(t);
    return -1;
  }
  t->cert = th_fmt("%s/cert.pem", t->dir);
  t->key = th_fmt("%s/key.pem", t->dir);
  *state = t;
  return 0;
}

static int ss_tls_teardown(void **state) {
  ss_tls *t = *state;
  unlink(t->cert);
  unlink(t->key);
  rmdir(t->dir);
  free(t->cert);
  free(t->key);
  free(t);
  return 0;
}

/* Over TLS (--tls-cert/--tls-key with a self-signed certificate made by
 * `openssl req`), the session cookie is also Secure. */
static void ss_secure_over_tls(void **state) {
  ss_tls *t = *state;
  if (system("command -v openssl >/dev/null 2>&1") != 0)
    skip();
  char *cmd = th_fmt("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                     "-subj /CN=127.0.0.1 -keyout %s -out %s "
                     ">/dev/null 2>&1",
                     t->key, t->cert);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  const char *args[] = {"--pages-login", "--tls-cert", t->cert,
                        "--tls-key",     t->key,       NULL};
  chubd_proc *p = sv_start(args);
  int port = chubd_proc_port(p);
  char *url = th_fmt("https://127.0.0.1:%d/ui/login", port);
  char *origin = th_fmt("Origin: https://127.0.0.1:%d", port);
  char *body = th_fmt("{\"key\": \"%s\"}", chubd_proc_key(p));
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, SS_JSON);
  h = curl_slist_append(h, origin);
  char *headers = NULL, *answer = NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ss_collect);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ss_collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  CURLcode rc = curl_easy_perform(c);
  long st = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  if (rc != CURLE_OK)
    fail_msg("POST %s: %s", url, curl_easy_strerror(rc));
  if (st != 200)
    fail_msg("same-origin login over TLS answered %ld: %s", st,
             answer ? answer : "");
  char *all = sec_set_cookies(headers);
  char *line = all ? strstr(all, "chub_session=") : NULL;
  if (!line)
    fail_msg("the TLS login sets no chub_session cookie: %s", headers);
  char *nl = strchr(line, '\n');
  if (nl)
    *nl = '\0';
  if (!strcasestr(line, "; Secure"))
    fail_msg("over TLS the session cookie is not Secure: %s", line);
  if (strstr(line, chubd_proc_key(p)))
    fail_msg("the TLS session cookie holds the API key");
  free(all);
  free(answer);
  free(headers);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(body);
  free(origin);
  free(url);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ss_cookie_never_key),
      cmocka_unit_test(ss_login_json_only),
      cmocka_unit_test(ss_login_same_origin),
      cmocka_unit_test(ss_login_referer_lookalike),
      cmocka_unit_test(ss_session_opens_ui),
      cmocka_unit_test(ss_logout_revokes),
      cmocka_unit_test(ss_revoke_ends_session),
      cmocka_unit_test(ss_session_expires),
      cmocka_unit_test(ss_sessions_bounded),
      cmocka_unit_test(ss_ui_models_same_origin),
      cmocka_unit_test_setup_teardown(ss_secure_over_tls, ss_tls_setup,
                                      ss_tls_teardown),
  };
  return cmocka_run_group_tests_name("security_sessions", tests, NULL, NULL);
}

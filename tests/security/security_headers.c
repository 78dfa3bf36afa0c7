/*
 * security_headers.c - contract item 4, security headers.
 *
 * Every page (/, /models/{id}, /datasets, /datasets/{id}, /login,
 * /static/...) and every /ui answer, errors included, carries a
 * Content-Security-Policy with default-src 'self' and frame-ancestors
 * 'none' (and no inline script allowed), X-Content-Type-Options: nosniff,
 * X-Frame-Options: DENY and Referrer-Policy: same-origin. The pages must
 * still work under that policy: no inline script or event handler.
 */
#include "sec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The value of directive `name` in a CSP (malloc'd) or NULL. */
static char *sh_directive(const char *csp, const char *name) {
  size_t n = strlen(name);
  const char *s = csp;
  while (s && *s) {
    while (*s == ' ' || *s == ';')
      s++;
    const char *end = strchr(s, ';');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (len >= n && strncasecmp(s, name, n) == 0 && (len == n || s[n] == ' '))
      return strndup(s + n, len - n);
    s = end;
  }
  return NULL;
}

/* Asserts the four headers on one answer; `what` names the request. */
static void sh_check(const char *what, long status, const char *headers) {
  char *csp = th_header(headers, "Content-Security-Policy");
  char *nosniff = th_header(headers, "X-Content-Type-Options");
  char *xfo = th_header(headers, "X-Frame-Options");
  char *rp = th_header(headers, "Referrer-Policy");
  if (!csp)
    fail_msg("%s (%ld): no Content-Security-Policy", what, status);
  char *def = sh_directive(csp, "default-src");
  char *fa = sh_directive(csp, "frame-ancestors");
  char *script = sh_directive(csp, "script-src");
  if (!def || !strstr(def, "'self'"))
    fail_msg("%s (%ld): CSP \"%s\" lacks default-src 'self'", what, status,
             csp);
  if (!fa || !strstr(fa, "'none'"))
    fail_msg("%s (%ld): CSP \"%s\" lacks frame-ancestors 'none'", what, status,
             csp);
  const char *scripts = script ? script : def;
  if (strstr(scripts, "'unsafe-inline'") || strstr(scripts, "'unsafe-eval'"))
    fail_msg("%s (%ld): CSP \"%s\" allows inline script or eval", what, status,
             csp);
  if (!nosniff || strcasecmp(nosniff, "nosniff") != 0)
    fail_msg("%s (%ld): X-Content-Type-Options is %s, expected nosniff", what,
             status, nosniff ? nosniff : "missing");
  if (!xfo || strcasecmp(xfo, "DENY") != 0)
    fail_msg("%s (%ld): X-Frame-Options is %s, expected DENY", what, status,
             xfo ? xfo : "missing");
  if (!rp || strcasecmp(rp, "same-origin") != 0)
    fail_msg("%s (%ld): Referrer-Policy is %s, expected same-origin", what,
             status, rp ? rp : "missing");
  free(script);
  free(fa);
  free(def);
  free(rp);
  free(xfo);
  free(nosniff);
  free(csp);
}

/* METHOD path (optional JSON body), asserting the status and the headers;
 * returns the answer in *out when out is set. */
static void sh_expect(chubd_proc *p, const char *method, const char *path,
                      const char *body, long want, th_response *out) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  /* From the page's own origin, as the pages' script sends it. */
  char *origin = th_fmt("Origin: http://127.0.0.1:%d", chubd_proc_port(p));
  const char *hdrs[] = {origin, "Content-Type: application/json", NULL};
  th_response r;
  if (th_request_hdrs(method, url, hdrs, body, body ? strlen(body) : 0, &r) !=
      0)
    fail_msg("%s %s: no answer", method, path);
  free(origin);
  if (r.status != want)
    fail_msg("%s %s answered %ld; expected %ld", method, path, r.status, want);
  char *what = th_fmt("%s %s", method, path);
  sh_check(what, r.status, r.headers);
  free(what);
  if (out)
    *out = r;
  else
    th_response_free(&r);
  free(url);
}

typedef struct sh_fixture {
  chubd_proc *p;
  char *model;
  char *dataset;
} sh_fixture;

static int sh_setup(void **state) {
  sh_fixture *f = calloc(1, sizeof *f);
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  f->p = chubd_proc_start(sv_chubd_bin(), NULL, args);
  if (!f->p)
    return -1;
  const char *base = chubd_proc_base_url(f->p);
  const char *key = chubd_proc_key(f->p);
  f->model = th_create_model(base, key, "headers.pt");
  char *url = th_fmt("%s/v1/datasets", base);
  th_response r;
  if (th_json_request("POST", url, key, "{\"meta\": {\"name\": \"hdr\"}}",
                      &r) == 0 &&
      r.status == 200) {
    json_t *env = th_json_parse(r.body);
    const char *id = th_json_str(env, "data.id");
    f->dataset = id ? strdup(id) : NULL;
    json_decref(env);
  }
  th_response_free(&r);
  free(url);
  /* A checkpoint, so the /ui download answers 200. */
  url = th_fmt("%s/v1/models/%s/upload", base, f->model);
  const char *fields[] = {"epoch",  "1",    "type", "epoch",
                          "isBest", "True", NULL};
  unsigned char *b = sv_bytes(5000, 3);
  th_upload(url, key, fields, "last.pt", "last.pt", b, 5000, NULL, NULL, &r);
  long st = r.status;
  th_response_free(&r);
  free(b);
  free(url);
  *state = f;
  return f->model && f->dataset && st == 200 ? 0 : -1;
}

static int sh_teardown(void **state) {
  sh_fixture *f = *state;
  void *p = f->p;
  int rc = sv_group_teardown(&p);
  free(f->model);
  free(f->dataset);
  free(f);
  return rc;
}

static void sh_pages(void **state) {
  sh_fixture *f = *state;
  char *model = th_fmt("/models/%s", f->model);
  char *dataset = th_fmt("/datasets/%s", f->dataset);
  const char *pages[] = {"/",
                         model,
                         "/datasets",
                         dataset,
                         "/login",
                         "/login?next=/models",
                         "/compare?ids=AAAAAAAAAAAAAAAAAAAA",
                         "/static/app.css",
                         "/static/common.js",
                         "/static/model.js",
                         "/static/uPlot.iife.min.js",
                         "/static/favicon.svg"};
  for (size_t i = 0; i < sizeof pages / sizeof *pages; i++)
    sh_expect(f->p, "GET", pages[i], NULL, 200, NULL);
  /* Pages that do not exist are pages too. */
  sh_expect(f->p, "GET", "/static/nope.js", NULL, 404, NULL);
  free(dataset);
  free(model);
}

static void sh_ui(void **state) {
  sh_fixture *f = *state;
  char *model = th_fmt("/ui/models/%s", f->model);
  char *metrics = th_fmt("/ui/models/%s/metrics", f->model);
  char *weights = th_fmt("/ui/models/%s/weights/last", f->model);
  char *dataset = th_fmt("/ui/datasets/%s", f->dataset);
  const char *ok[] = {"/ui/models",   model,   metrics,     weights,
                      "/ui/datasets", dataset, "/ui/owners"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    sh_expect(f->p, "GET", ok[i], NULL, 200, NULL);
  /* Errors of /ui carry them too. */
  sh_expect(f->p, "GET", "/ui/models/AAAAAAAAAAAAAAAAAAAA", NULL, 404, NULL);
  sh_expect(f->p, "GET", "/ui/models/short", NULL, 400, NULL);
  sh_expect(f->p, "GET", "/ui/nothing-here", NULL, 404, NULL);
  sh_expect(f->p, "DELETE", "/ui/models", NULL, 405, NULL);
  sh_expect(f->p, "POST", "/ui/login",
            "{\"key\": \"abcdefghijABCDEFGHIJ0123456789abcdefghijKL\"}", 401,
            NULL);
  free(dataset);
  free(weights);
  free(metrics);
  free(model);
}

/* The pages work under the policy: every script is a file from /static,
 * no inline handler, no javascript: URL. */
static void sh_pages_without_inline_script(void **state) {
  sh_fixture *f = *state;
  char *model = th_fmt("/models/%s", f->model);
  char *dataset = th_fmt("/datasets/%s", f->dataset);
  const char *pages[] = {"/",     model,    "/datasets",
                         dataset, "/login", "/compare"};
  for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
    char *url = th_fmt("%s%s", chubd_proc_base_url(f->p), pages[i]);
    th_response r;
    if (th_request_hdrs("GET", url, NULL, NULL, 0, &r) != 0 || r.status != 200)
      fail_msg("GET %s answered %ld", pages[i], r.status);
    free(url);
    for (const char *s = r.body; (s = strcasestr(s, "<script")) != NULL; s++) {
      const char *end = strchr(s, '>');
      if (!end)
        fail_msg("%s: unterminated <script", pages[i]);
      char *tag = strndup(s, (size_t)(end - s));
      if (!strstr(tag, "src=\"/static/"))
        fail_msg("%s: inline script (a CSP without 'unsafe-inline' "
                 "blocks it): %.80s",
                 pages[i], tag);
      free(tag);
    }
    for (const char *s = r.body; *s; s++) {
      if (isspace((unsigned char)s[0]) && strncasecmp(s + 1, "on", 2) == 0) {
        const char *t = s + 3;
        while (isalpha((unsigned char)*t))
          t++;
        if (t > s + 3 && *t == '=')
          fail_msg("%s: inline event handler at \"%.40s\"", pages[i], s + 1);
      }
    }
    if (strcasestr(r.body, "javascript:"))
      fail_msg("%s: a javascript: URL", pages[i]);
    th_response_free(&r);
  }
  free(dataset);
  free(model);
}

/* With --pages-login, the refusals of /ui (401 without a session, 403
 * cross-origin) carry the headers too. */
static void sh_refusals(void **state) {
  (void)state;
  const char *args[] = {"--pages-login", NULL};
  chubd_proc *p = sv_start(args);
  sh_expect(p, "GET", "/ui/models", NULL, 401, NULL);
  sh_expect(p, "GET", "/", NULL, 200, NULL);
  sh_expect(p, "GET", "/login", NULL, 200, NULL);
  char *url = th_fmt("%s/ui/login", chubd_proc_base_url(p));
  const char *hdrs[] = {"Origin: http://evil.example",
                        "Content-Type: application/json", NULL};
  char *body = th_fmt("{\"key\": \"%s\"}", chubd_proc_key(p));
  th_response r;
  if (th_request_hdrs("POST", url, hdrs, body, strlen(body), &r) != 0)
    fail_msg("POST /ui/login: no answer");
  if (r.status != 403)
    fail_msg("a cross-origin POST /ui/login answered %ld; expected 403",
             r.status);
  sh_check("cross-origin POST /ui/login", r.status, r.headers);
  th_response_free(&r);
  free(body);
  free(url);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sh_pages),
      cmocka_unit_test(sh_ui),
      cmocka_unit_test(sh_pages_without_inline_script),
      cmocka_unit_test(sh_refusals),
  };
  return sv_suite_result(cmocka_run_group_tests_name("security_headers", tests,
                                                     sh_setup, sh_teardown));
}

/*
 * web_assets.c - the embedded page table that chubd serves: every page and
 * script is there with the right content type, byte for byte what is in the
 * source tree (and uPlot what npm installed), each with its own quoted ETag,
 * and every page refers only to assets that exist and to nothing outside
 * the hub (chubd must work with no network).
 *
 * A broken reference here is a page that loads without its script or style
 * in a person's browser, so it is checked without starting a browser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

/* URL path, file it comes from (relative to its directory), content type. */
static const struct {
  const char *path;
  const char *dir;
  const char *file;
  const char *type;
} web_assets_expected[] = {
    {"/index.html", CHUB_WEB_SRC_DIR, "index.html", "text/html"},
    {"/model.html", CHUB_WEB_SRC_DIR, "model.html", "text/html"},
    {"/login.html", CHUB_WEB_SRC_DIR, "login.html", "text/html"},
    {"/datasets.html", CHUB_WEB_SRC_DIR, "datasets.html", "text/html"},
    {"/dataset.html", CHUB_WEB_SRC_DIR, "dataset.html", "text/html"},
    {"/compare.html", CHUB_WEB_SRC_DIR, "compare.html", "text/html"},
    {"/static/app.css", CHUB_WEB_SRC_DIR, "static/app.css", "text/css"},
    {"/static/common.js", CHUB_WEB_SRC_DIR, "static/common.js",
     "text/javascript"},
    {"/static/index.js", CHUB_WEB_SRC_DIR, "static/index.js",
     "text/javascript"},
    {"/static/model.js", CHUB_WEB_SRC_DIR, "static/model.js",
     "text/javascript"},
    {"/static/run.js", CHUB_WEB_SRC_DIR, "static/run.js", "text/javascript"},
    {"/static/run.css", CHUB_WEB_SRC_DIR, "static/run.css", "text/css"},
    {"/static/login.js", CHUB_WEB_SRC_DIR, "static/login.js",
     "text/javascript"},
    {"/static/datasets.js", CHUB_WEB_SRC_DIR, "static/datasets.js",
     "text/javascript"},
    {"/static/dataset.js", CHUB_WEB_SRC_DIR, "static/dataset.js",
     "text/javascript"},
    {"/static/compare.js", CHUB_WEB_SRC_DIR, "static/compare.js",
     "text/javascript"},
    {"/static/compare.css", CHUB_WEB_SRC_DIR, "static/compare.css", "text/css"},
    {"/static/favicon.svg", CHUB_WEB_SRC_DIR, "static/favicon.svg",
     "image/svg+xml"},
    {"/static/uPlot.iife.min.js", CHUB_WEB_UPLOT_DIR, "uPlot.iife.min.js",
     "text/javascript"},
    {"/static/uPlot.min.css", CHUB_WEB_UPLOT_DIR, "uPlot.min.css", "text/css"},
};
#define WEB_ASSETS_N                                                           \
  (sizeof web_assets_expected / sizeof web_assets_expected[0])

static unsigned char *web_assets_read(const char *dir, const char *file,
                                      size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fail_msg("cannot open %s", path);
  }
  unsigned char *buf = malloc(1 << 20);
  assert_non_null(buf);
  *len = fread(buf, 1, 1 << 20, f);
  assert_true(feof(f));
  fclose(f);
  return buf;
}

static void web_assets_all_present(void **state) {
  (void)state;
  for (size_t i = 0; i < WEB_ASSETS_N; i++) {
    const chubd_asset *a = chubd_web_asset(web_assets_expected[i].path);
    if (a == NULL) {
      fail_msg("asset %s missing", web_assets_expected[i].path);
    }
    assert_string_equal(a->path, web_assets_expected[i].path);
    const char *want = web_assets_expected[i].type;
    if (strncmp(a->content_type, want, strlen(want)) != 0) {
      fail_msg("%s served as %s, want %s", a->path, a->content_type, want);
    }
    if (strncmp(want, "text/", 5) == 0) {
      assert_non_null(strstr(a->content_type, "charset=utf-8"));
    }
  }
}

static void web_assets_unknown_paths(void **state) {
  (void)state;
  assert_null(chubd_web_asset(NULL));
  assert_null(chubd_web_asset(""));
  assert_null(chubd_web_asset("/"));
  assert_null(chubd_web_asset("/static/"));
  assert_null(chubd_web_asset("/static/../index.html"));
  assert_null(chubd_web_asset("/static/app.css/"));
  assert_null(chubd_web_asset("/STATIC/app.css"));
  assert_null(chubd_web_asset("index.html"));
}

static void web_assets_bytes_match_sources(void **state) {
  (void)state;
  for (size_t i = 0; i < WEB_ASSETS_N; i++) {
    size_t len = 0;
    unsigned char *src = web_assets_read(web_assets_expected[i].dir,
                                         web_assets_expected[i].file, &len);
    const chubd_asset *a = chubd_web_asset(web_assets_expected[i].path);
    assert_non_null(a);
    if (a->len != len || memcmp(a->data, src, len) != 0) {
      fail_msg("%s: embedded %zu bytes differ from %s/%s (%zu bytes)", a->path,
               a->len, web_assets_expected[i].dir, web_assets_expected[i].file,
               len);
    }
    assert_true(len > 0);
    free(src);
  }
}

static void web_assets_etags(void **state) {
  (void)state;
  for (size_t i = 0; i < WEB_ASSETS_N; i++) {
    const chubd_asset *a = chubd_web_asset(web_assets_expected[i].path);
    assert_non_null(a);
    size_t n = strlen(a->etag);
    if (n < 3 || a->etag[0] != '"' || a->etag[n - 1] != '"') {
      fail_msg("%s: ETag %s is not quoted", a->path, a->etag);
    }
    for (size_t k = 1; k + 1 < n; k++) {
      assert_true(isxdigit((unsigned char)a->etag[k]));
    }
    for (size_t j = 0; j < i; j++) {
      const chubd_asset *b = chubd_web_asset(web_assets_expected[j].path);
      if (strcmp(a->etag, b->etag) == 0) {
        fail_msg("%s and %s share ETag %s", a->path, b->path, a->etag);
      }
    }
  }
}

/* Each src="..." or href="..." in an HTML page: a path on this hub that is
 * either a page route (/, /login, /datasets) or an embedded asset; never
 * another host. */
static void web_assets_check_refs(const chubd_asset *page) {
  char *text = malloc(page->len + 1);
  assert_non_null(text);
  memcpy(text, page->data, page->len);
  text[page->len] = '\0';
  static const char *const attrs[] = {"src=\"", "href=\""};
  int refs = 0;
  for (size_t k = 0; k < 2; k++) {
    for (char *p = strstr(text, attrs[k]); p != NULL;
         p = strstr(p + 1, attrs[k])) {
      char *v = p + strlen(attrs[k]);
      char *end = strchr(v, '"');
      assert_non_null(end);
      char ref[256];
      snprintf(ref, sizeof ref, "%.*s", (int)(end - v), v);
      refs++;
      if (strcmp(ref, "/") == 0 || strcmp(ref, "/login") == 0 ||
          strcmp(ref, "/datasets") == 0 || ref[0] == '#') {
        continue;
      }
      if (ref[0] != '/' || ref[1] == '/') {
        fail_msg("%s refers to %s, outside the hub", page->path, ref);
      }
      if (chubd_web_asset(ref) == NULL) {
        fail_msg("%s refers to %s, which is not embedded", page->path, ref);
      }
    }
  }
  assert_true(refs > 0);
  assert_null(strstr(text, "http://"));
  assert_null(strstr(text, "https://"));
  assert_null(strstr(text, "@import"));
  free(text);
}

static void web_assets_pages_self_contained(void **state) {
  (void)state;
  static const char *const pages[] = {"/index.html",   "/model.html",
                                      "/login.html",   "/datasets.html",
                                      "/dataset.html", "/compare.html"};
  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
    const chubd_asset *page = chubd_web_asset(pages[i]);
    assert_non_null(page);
    web_assets_check_refs(page);
  }
  /* Styles load no fonts or images from elsewhere either. */
  static const char *const styles[] = {"/static/app.css",
                                       "/static/compare.css"};
  for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++) {
    const chubd_asset *css = chubd_web_asset(styles[i]);
    assert_non_null(css);
    char *text = malloc(css->len + 1);
    assert_non_null(text);
    memcpy(text, css->data, css->len);
    text[css->len] = '\0';
    assert_null(strstr(text, "url("));
    assert_null(strstr(text, "@import"));
    free(text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(web_assets_all_present),
      cmocka_unit_test(web_assets_unknown_paths),
      cmocka_unit_test(web_assets_bytes_match_sources),
      cmocka_unit_test(web_assets_etags),
      cmocka_unit_test(web_assets_pages_self_contained),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

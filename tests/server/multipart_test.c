/*
 * multipart_test.c - unit test of multipart.c: the parts and bytes read
 * are the same however the body is cut into pieces (every split in two,
 * and byte by byte), with file bytes that hold near-copies of the
 * delimiter and one that ends a piece in the middle of it; the preamble
 * and the epilogue are skipped; the boundary parameter is read quoted or
 * not, and refused when missing or too long; and each malformed body is
 * refused with a message that names its problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "multipart.h"

/* What the callbacks saw, as text: "[name|filename]" at each part's start
 * ("-" for no filename), then its bytes. */
typedef struct seen {
  char *text;
  size_t len, cap;
  int stop_at_part; /* the callback stops at this part (1-based), or 0 */
  int parts;
} seen;

static void seen_add(seen *s, const char *p, size_t n) {
  if (s->len + n + 1 > s->cap) {
    s->cap = (s->len + n + 1) * 2;
    s->text = realloc(s->text, s->cap);
    assert_non_null(s->text);
  }
  memcpy(s->text + s->len, p, n);
  s->len += n;
  s->text[s->len] = '\0';
}

static int on_part(void *ctx, const char *name, const char *filename) {
  seen *s = ctx;
  char head[512];
  snprintf(head, sizeof head, "[%s|%s]", name, filename ? filename : "-");
  seen_add(s, head, strlen(head));
  return ++s->parts == s->stop_at_part ? -1 : 0;
}

static int on_data(void *ctx, const char *p, size_t n) {
  assert_true(n > 0);
  seen_add(ctx, p, n);
  return 0;
}

static const multipart_cb cb = {on_part, on_data};

#define CTYPE "multipart/form-data; boundary=b0undary"
#define D "--b0undary"

/* Feeds body in pieces of at most `piece` bytes, the first cut at `cut`
 * (0: no special first cut). Returns the feed result; *done and the text
 * seen are filled. */
static int feed(const char *ctype, const char *body, size_t n, size_t cut,
                size_t piece, seen *s, int *done, char *err, size_t errn) {
  char nerr[256];
  multipart *m = multipart_new(ctype, &cb, s, nerr, sizeof nerr);
  assert_non_null(m);
  int rc = 0;
  size_t off = 0;
  if (cut > 0 && cut < n) {
    rc = multipart_feed(m, body, cut);
    off = cut;
  }
  while (rc == 0 && off < n) {
    size_t k = n - off < piece ? n - off : piece;
    rc = multipart_feed(m, body + off, k);
    off += k;
  }
  *done = multipart_done(m);
  snprintf(err, errn, "%s", multipart_error(m));
  multipart_free(m);
  return rc;
}

/* A body whose file holds bytes that look like the delimiter but are
 * not, and ends in a CR, so that many cuts fall inside a candidate. */
static const char body3[] =
    "preamble, to be skipped\r\n" D "\r\n"
    "Content-Disposition: form-data; name=\"epoch\"\r\n\r\n"
    "7\r\n" D "\r\n"
    "content-disposition: form-data; name=\"file\"; "
    "filename=\"best \\\"v2\\\";.pt\"\r\n"
    "Content-Type: application/octet-stream\r\n\r\n"
    "\r\n--b0undar\r\n-\r\r\n--b0undarx--b0undary\r\n\r\r" /* no delimiter */
    "\r\n" D "  \t\r\n"                                    /* padding */
    "Content-Disposition: form-data; NAME=tok ; x=1\r\n\r\n"
    "\r\n" D "--\r\nepilogue \r\n" D "\r\n ignored";

static const char want3[] =
    "[epoch|-]7"
    "[file|best \"v2\";.pt]"
    "\r\n--b0undar\r\n-\r\r\n--b0undarx--b0undary\r\n\r\r"
    "[tok|-]";

static void test_every_split(void **state) {
  (void)state;
  size_t n = sizeof body3 - 1;
  for (size_t cut = 0; cut <= n; cut++) {
    seen s = {0};
    int done;
    char err[256];
    assert_int_equal(feed(CTYPE, body3, n, cut, n, &s, &done, err, sizeof err),
                     0);
    assert_true(done);
    if (strcmp(s.text, want3) != 0)
      fail_msg("cut at %zu: read \"%s\"", cut, s.text);
    free(s.text);
  }
  for (size_t piece = 1; piece <= 13; piece++) {
    seen s = {0};
    int done;
    char err[256];
    assert_int_equal(
        feed(CTYPE, body3, n, 0, piece, &s, &done, err, sizeof err), 0);
    assert_true(done);
    assert_string_equal(s.text, want3);
    free(s.text);
  }
}

/* A file of every byte value, large enough to span many pieces, with the
 * boundary at the very start of the body (no preamble). */
static void test_binary_file(void **state) {
  (void)state;
  size_t fn = 300000;
  char *file = malloc(fn);
  assert_non_null(file);
  unsigned x = 12345;
  for (size_t i = 0; i < fn; i++) {
    x = x * 1103515245u + 12345u;
    file[i] = (char)(x >> 16);
    if (i % 997 == 0) /* near-delimiters now and then */
      memcpy(file + i, "\r\n--b0undar", i + 11 <= fn ? 11 : 0);
  }
  const char *head = D "\r\nContent-Disposition: form-data; name=\"f\"; "
                       "filename=\"w.bin\"\r\n\r\n";
  const char *tail = "\r\n" D "--";
  size_t hn = strlen(head), tn = strlen(tail), n = hn + fn + tn;
  char *body = malloc(n);
  assert_non_null(body);
  memcpy(body, head, hn);
  memcpy(body + hn, file, fn);
  memcpy(body + hn + fn, tail, tn);
  size_t pieces[] = {1, 3, 10, 11, 12, 4096, 65536, n};
  for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
    seen s = {0};
    int done;
    char err[256];
    assert_int_equal(
        feed(CTYPE, body, n, 0, pieces[i], &s, &done, err, sizeof err), 0);
    assert_true(done);
    const char *want_head = "[f|w.bin]";
    assert_int_equal(s.len, strlen(want_head) + fn);
    assert_memory_equal(s.text, want_head, strlen(want_head));
    assert_memory_equal(s.text + strlen(want_head), file, fn);
    free(s.text);
  }
  free(body);
  free(file);
}

static void test_boundary_parameter(void **state) {
  (void)state;
  char err[256];
  seen s = {0};
  static const char *good[] = {
      "multipart/form-data; boundary=\"b0undary\"",
      "Multipart/Form-Data;charset=utf-8;BOUNDARY=b0undary",
      "multipart/form-data; boundary=b0undary; charset=utf-8",
      /* A ';' inside quotes does not start a parameter. */
      "multipart/form-data; x=\"a;boundary=wrong\"; boundary=b0undary",
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    const char *body = D "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                         "x\r\n" D "--";
    int done;
    assert_int_equal(
        feed(good[i], body, strlen(body), 0, 5, &s, &done, err, sizeof err), 0);
    assert_true(done);
    assert_string_equal(s.text, "[a|-]x");
    s.len = 0;
  }
  free(s.text);
  char b71[128];
  snprintf(b71, sizeof b71, "multipart/form-data; boundary=%071d", 0);
  static const char *bad[] = {
      "multipart/form-data",
      "multipart/form-data; boundary=", "multipart/form-data; boundary=\"open",
      "application/json; boundary=x", NULL};
  for (size_t i = 0; bad[i]; i++) {
    err[0] = '\0';
    assert_null(multipart_new(bad[i], &cb, &s, err, sizeof err));
    assert_true(strstr(err, "multipart/form-data") != NULL);
  }
  assert_null(multipart_new(b71, &cb, &s, err, sizeof err));
  assert_true(strstr(err, "boundary") != NULL);
  assert_null(multipart_new(NULL, &cb, &s, err, sizeof err));
}

/* Each malformed body, its error's words, and whether the bytes before
 * the problem were read. */
static void test_malformed(void **state) {
  (void)state;
  char big[MULTIPART_HEADERS_MAX + 200];
  memset(big, 'h', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  char overlong[sizeof big + 200];
  snprintf(overlong, sizeof overlong,
           D "\r\nContent-Disposition: form-data; name=a\r\nX: %s\r\n\r\n",
           big);
  static const char nul[] = D "\r\nContent-Disposition: form-data; "
                              "name=a\r\nX: \0\r\n\r\nx\r\n" D "--";
  struct {
    const char *body;
    size_t n;
    const char *words;
  } cases[] = {
      {D "x\r\n", 0, "neither a line break"},
      {D "-x", 0, "single \"-\""},
      {D " x\r\n", 0, "more than the boundary"},
      {D "\rx", 0, "CR without LF"},
      {overlong, 0, "over 8192 bytes"},
      {nul, sizeof nul - 1, "NUL byte"},
      {D "\r\nContent-Disposition: attachment; name=a\r\n\r\nx", 0,
       "not form-data"},
      {D "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx", 0,
       "unclosed quote"},
      {D "\r\nContent-Type: text/plain\r\n\r\nx", 0, "no Content-Disposition"},
      {D "\r\n\r\nx", 0, "no Content-Disposition"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = cases[i].n ? cases[i].n : strlen(cases[i].body);
    for (size_t piece = 1; piece <= n; piece += n - 1) {
      seen s = {0};
      int done;
      char err[256];
      assert_int_equal(
          feed(CTYPE, cases[i].body, n, 0, piece, &s, &done, err, sizeof err),
          -1);
      assert_false(done);
      if (!strstr(err, cases[i].words))
        fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].words);
      free(s.text);
    }
  }
}

/* Cut short: never done, and what arrived was read. */
static void test_cut_short(void **state) {
  (void)state;
  const char *whole = D "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                        "abc\r\n" D "--";
  size_t n = strlen(whole);
  for (size_t k = 0; k < n; k++) {
    seen s = {0};
    int done;
    char err[256];
    assert_int_equal(feed(CTYPE, whole, k, 0, 4, &s, &done, err, sizeof err),
                     0);
    assert_false(done);
    free(s.text);
  }
  seen s = {0};
  int done;
  char err[256];
  assert_int_equal(feed(CTYPE, whole, n, 0, 4, &s, &done, err, sizeof err), 0);
  assert_true(done);
  free(s.text);
}

/* A callback that stops: -1 with no error of the reader's, and every
 * later feed fails too. */
static void test_callback_stops(void **state) {
  (void)state;
  seen s = {.stop_at_part = 2};
  char err[256];
  multipart *m = multipart_new(CTYPE, &cb, &s, err, sizeof err);
  assert_non_null(m);
  size_t n = sizeof body3 - 1;
  assert_int_equal(multipart_feed(m, body3, n), -1);
  assert_string_equal(multipart_error(m), "");
  assert_int_equal(multipart_feed(m, "x", 1), -1);
  assert_false(multipart_done(m));
  assert_string_equal(s.text, "[epoch|-]7[file|best \"v2\";.pt]");
  multipart_free(m);
  free(s.text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_split),
      cmocka_unit_test(test_binary_file),
      cmocka_unit_test(test_boundary_parameter),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_cut_short),
      cmocka_unit_test(test_callback_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

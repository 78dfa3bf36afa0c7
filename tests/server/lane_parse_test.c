/*
 * lane_parse_test.c - unit test of what chubd's own loop takes from a
 * connection (lane_parse in lane.c).
 *
 * The loop serves only plain metrics uploads and leaves everything else
 * to libmicrohttpd, so the parser is tested on what it must hand over as
 * much as on what it takes: other methods and routes, HTTP/1.0, queries
 * and escapes in the path, chunked bodies, Expect, Upgrade, headers said
 * twice, folded or with control bytes, sizes over the limits. A request
 * cut anywhere is never taken; it waits for its head (LANE_MORE_HEAD) or
 * has its body still to come (LANE_MORE_BODY).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lane.h"

#define ID "AAAAAAAAAAAAAAAAAAAA"
#define BODY                                                                   \
  "{\"type\":\"metrics\",\"metrics\":{\"1\":\"{\\\"loss\\\": 0.5}\"}}"

/* lane_parse on a copy of text with body_max 1 MiB. */
static int parse(const char *text, lane_head *h) {
  size_t n = strlen(text);
  char *buf = malloc(n ? n : 1);
  assert_non_null(buf);
  memcpy(buf, text, n);
  int r = lane_parse(buf, n, 1024 * 1024, h);
  /* h points into buf: keep what the tests read. */
  static char keep[LANE_REQUEST_MAX];
  if (r == LANE_TAKE) {
    memcpy(keep, buf, n);
    h->path = keep + (h->path - buf);
    for (int i = 0; i < h->nheaders; i++) {
      h->headers[i].name = keep + (h->headers[i].name - buf);
      h->headers[i].value = keep + (h->headers[i].value - buf);
    }
  }
  free(buf);
  return r;
}

static char *lane_upload(const char *extra_headers, const char *body) {
  static char out[LANE_REQUEST_MAX * 2];
  snprintf(out, sizeof out,
           "POST /v1/models/" ID " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
           "x-api-key: abc\r\nContent-Type: application/json\r\n"
           "%sContent-Length: %zu\r\n\r\n%s",
           extra_headers, strlen(body), body);
  return out;
}

static void lane_parse_takes_a_plain_upload(void **state) {
  (void)state;
  lane_head h;
  const char *req = lane_upload("", BODY);
  assert_int_equal(parse(req, &h), LANE_TAKE);
  assert_string_equal(h.path, "/v1/models/" ID);
  assert_int_equal(h.body_len, strlen(BODY));
  assert_int_equal(h.head_len + h.body_len, strlen(req));
  assert_int_equal(h.nheaders, 4);
  assert_string_equal(h.headers[0].name, "Host");
  assert_string_equal(h.headers[0].value, "127.0.0.1:8080");
  assert_string_equal(h.headers[1].value, "abc");
  assert_int_equal(h.close_after, 0);
  /* Spaces around a value are not part of it. */
  assert_int_equal(parse(lane_upload("X-Pad: \t padded \t\r\n", BODY), &h),
                   LANE_TAKE);
  assert_string_equal(h.headers[3].value, "padded");
  /* Pipelined bytes behind it are the next request's. */
  char two[4096];
  snprintf(two, sizeof two, "%s%s", lane_upload("", BODY),
           "GET / HTTP/1.1\r\n");
  assert_int_equal(parse(two, &h), LANE_TAKE);
  assert_int_equal(h.head_len + h.body_len, strlen(lane_upload("", BODY)));
}

static void lane_parse_connection(void **state) {
  (void)state;
  lane_head h;
  assert_int_equal(parse(lane_upload("Connection: close\r\n", BODY), &h),
                   LANE_TAKE);
  assert_int_equal(h.close_after, 1);
  assert_int_equal(parse(lane_upload("Connection: Keep-Alive\r\n", BODY), &h),
                   LANE_TAKE);
  assert_int_equal(h.close_after, 0);
  assert_int_equal(
      parse(lane_upload("Connection: keep-alive , CLOSE\r\n", BODY), &h),
      LANE_TAKE);
  assert_int_equal(h.close_after, 1);
  assert_int_equal(parse(lane_upload("Connection: upgrade\r\n", BODY), &h),
                   LANE_HAND_OVER);
  assert_int_equal(parse(lane_upload("Connection: close, te\r\n", BODY), &h),
                   LANE_HAND_OVER);
}

static void lane_parse_hands_over(void **state) {
  (void)state;
  lane_head h;
  const char *other[] = {
      "GET /v1/models/" ID " HTTP/1.1\r\nHost: h\r\n\r\n",
      "G",
      "POST /v1/models HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1 \r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      "?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/%41" ID
      " HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      "#f HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      "\\ HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      "POST  /v1/models/" ID
      " HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
      /* no Content-Length, or one that is not plain digits */
      "POST /v1/models/" ID " HTTP/1.1\r\nHost: h\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nContent-Length: 2 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nContent-Length: \r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nContent-Length: 0x2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n{}",
      /* bodies libmicrohttpd frames or negotiates */
      "POST /v1/models/" ID " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nExpect: 100-continue\r\n"
      "Content-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nUpgrade: h2c\r\n"
      "Content-Length: 2\r\n\r\n{}",
      /* headers said twice, in any case */
      "POST /v1/models/" ID " HTTP/1.1\r\nContent-Length: 2\r\n"
      "content-length: 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nHost: a\r\nHOST: b\r\n"
      "Content-Length: 2\r\n\r\n{}",
      /* lines that are not plain name: value */
      "POST /v1/models/" ID " HTTP/1.1\r\nX-A: 1\r\n folded\r\n"
      "Content-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nX-A 1\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\n: 1\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1\r\nX A: 1\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1\r\nX-A: a\nb\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID " HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n"
      "Content-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1\r\nX-A: a\x7f\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID
      " HTTP/1.1\r\nX-A: a\x01\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/models/" ID "\n HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
  };
  for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
    int r = parse(other[i], &h);
    if (r != LANE_HAND_OVER)
      fail_msg("request %zu: %d, not handed over: %s", i, r, other[i]);
  }
  /* A NUL in a header's value, or in the path. */
  const char *with_nul[] = {lane_upload("X-A: a?b\r\n", "{}"),
                            "POST /v1/models/A?B HTTP/1.1\r\n"
                            "Content-Length: 2\r\n\r\n{}"};
  for (size_t i = 0; i < 2; i++) {
    char *req = strdup(with_nul[i]);
    size_t n = strlen(req);
    *strchr(req, '?') = '\0';
    assert_int_equal(lane_parse(req, n, 1024, &h), LANE_HAND_OVER);
    free(req);
  }
}

static void lane_parse_limits(void **state) {
  (void)state;
  lane_head h;
  /* A body over the caller's limit (--max-body): libmicrohttpd says 413. */
  char *req = lane_upload("", BODY);
  char *buf = strdup(req);
  assert_int_equal(lane_parse(buf, strlen(buf), strlen(BODY), &h), LANE_TAKE);
  free(buf);
  buf = strdup(req);
  assert_int_equal(lane_parse(buf, strlen(buf), strlen(BODY) - 1, &h),
                   LANE_HAND_OVER);
  free(buf);
  /* Head and body up to what the loop holds, and one byte more. */
  static char big[LANE_REQUEST_MAX + 1];
  memset(big, 'x', sizeof big - 1);
  big[10000] = '\0'; /* as many digits in Content-Length as below */
  assert_int_equal(parse(lane_upload("", big), &h), LANE_TAKE);
  size_t fits = LANE_REQUEST_MAX - h.head_len;
  big[10000] = 'x';
  big[fits] = '\0';
  assert_int_equal(parse(lane_upload("", big), &h), LANE_TAKE);
  assert_int_equal(h.head_len + h.body_len, LANE_REQUEST_MAX);
  big[fits] = 'x';
  big[fits + 1] = '\0';
  assert_int_equal(parse(lane_upload("", big), &h), LANE_HAND_OVER);
  /* More header lines than it keeps. */
  static char many[LANE_HEAD_MAX];
  size_t at = 0;
  for (int i = 0; i < LANE_HEADERS_MAX; i++)
    at += (size_t)snprintf(many + at, sizeof many - at, "X-H%d: v\r\n", i);
  assert_int_equal(parse(lane_upload(many, BODY), &h), LANE_HAND_OVER);
  /* A head that never ends within LANE_HEAD_MAX. */
  static char endless[LANE_HEAD_MAX + 64];
  int k = snprintf(endless, sizeof endless,
                   "POST /v1/models/" ID " HTTP/1.1\r\nX-Long: ");
  memset(endless + k, 'v', sizeof endless - (size_t)k - 1);
  assert_int_equal(parse(endless, &h), LANE_HAND_OVER);
}

static void lane_parse_waits_for_a_whole_request(void **state) {
  (void)state;
  lane_head h;
  const char *req = lane_upload("", BODY);
  size_t n = strlen(req);
  size_t head = n - strlen(BODY);
  for (size_t cut = 1; cut < n; cut++) {
    char *buf = malloc(cut);
    memcpy(buf, req, cut);
    int r = lane_parse(buf, cut, 1024 * 1024, &h);
    free(buf);
    if (r != (cut < head ? LANE_MORE_HEAD : LANE_MORE_BODY))
      fail_msg("cut at %zu of %zu: %d", cut, n, r);
    if (r == LANE_MORE_BODY && h.head_len + h.body_len != n)
      fail_msg("cut at %zu: the whole request is %zu + %zu", cut, h.head_len,
               h.body_len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lane_parse_takes_a_plain_upload),
      cmocka_unit_test(lane_parse_connection),
      cmocka_unit_test(lane_parse_hands_over),
      cmocka_unit_test(lane_parse_limits),
      cmocka_unit_test(lane_parse_waits_for_a_whole_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

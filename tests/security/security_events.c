/*
 * security_events.c - contract item 6, POST /v1/events bounded.
 *
 * The endpoint needs no key, so it is bounded per client address
 * (--events-rate N per second, burst 4N, default 5: beyond it 429 with
 * Retry-After and X-RateLimit-Limit/-Remaining/-Reset), per parameter
 * (a value over 256 bytes or a name over 64 is 400 naming it) and per
 * client_id and UTC day (--events-per-day, default 10000: beyond it 429).
 * Another address, or another client_id, is not affected.
 */
#include "sec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *ev_body(const char *client, const char *pname,
                     const char *pvalue) {
  json_t *params = json_object();
  json_object_set_new(params, pname, json_string(pvalue));
  json_t *body = json_pack("{s:s, s:[{s:s, s:o}]}", "client_id", client,
                           "events", "name", "train", "params", params);
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  return s;
}

/* POST /v1/events from src (NULL: curl from 127.0.0.1); the answer. */
static void ev_post(chubd_proc *p, const char *src, const char *body,
                    sec_answer *a) {
  int port = chubd_proc_port(p);
  char *req = th_fmt("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     port, strlen(body), body);
  if (sec_exchange(src, port, req, strlen(req), 5000, a) != 0)
    fail_msg("POST /v1/events from %s: no answer", src ? src : "127.0.0.1");
  free(req);
}

static int ev_is_uint(const char *s) {
  if (!s || !*s)
    return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s))
      return 0;
  return 1;
}

/* A 429 envelope with the rate-limit headers. */
static void ev_check_429(const char *what, sec_answer *a) {
  const char *names[] = {"Retry-After", "X-RateLimit-Limit",
                         "X-RateLimit-Remaining", "X-RateLimit-Reset"};
  for (int i = 0; i < 4; i++) {
    char *v = th_header(a->head, names[i]);
    if (!ev_is_uint(v))
      fail_msg("%s: the 429 has %s: %s", what, names[i], v ? v : "(missing)");
    free(v);
  }
  th_response r = {a->status, a->body, a->body_len, a->head};
  json_t *env = th_envelope(&r);
  if (!env)
    fail_msg("%s: the 429 is not an envelope", what);
  json_decref(env);
}

/* Sends up to n events as fast as it can from src; returns how many were
 * answered 200 before the first 429 (whose answer goes to *first_429), or
 * -1 when none was refused. Any other status fails. */
static int ev_flood(chubd_proc *p, const char *src, const char *client, int n,
                    sec_answer *first_429) {
  char *body = ev_body(client, "task", "classify");
  int ok = 0;
  for (int i = 0; i < n; i++) {
    sec_answer a;
    ev_post(p, src, body, &a);
    if (a.status == 429) {
      *first_429 = a;
      free(body);
      return ok;
    }
    if (a.status != 200)
      fail_msg("POST /v1/events %d answered %ld: %.200s", i, a.status, a.body);
    ok++;
    sec_answer_free(&a);
  }
  free(body);
  return -1;
}

/* Default --events-rate 5 (burst 20): 60 posts at once from one address
 * meet a 429; another address is still served; the first address is
 * served again after Retry-After. */
static void ev_rate_default(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  sec_answer a;
  int ok = ev_flood(p, "127.0.0.1", "aaaaaaaaaaaaaaaa", 60, &a);
  if (ok < 0)
    fail_msg("60 POST /v1/events at once from one address: none answered "
             "429 (default --events-rate 5, burst 20)");
  if (ok < 1)
    fail_msg("the very first POST /v1/events was refused");
  ev_check_429("events flood from 127.0.0.1", &a);
  char *ra = th_header(a.head, "Retry-After");
  long retry = strtol(ra, NULL, 10);
  free(ra);
  sec_answer_free(&a);
  /* Per address: 127.0.0.2 has its own bucket. */
  char *body = ev_body("bbbbbbbbbbbbbbbb", "task", "detect");
  ev_post(p, "127.0.0.2", body, &a);
  if (a.status != 200)
    fail_msg("POST /v1/events from 127.0.0.2 answered %ld while 127.0.0.1 "
             "was limited; expected 200 (the limit is per address)",
             a.status);
  sec_answer_free(&a);
  /* And the limited address recovers (bounded: Retry-After + 3 s). */
  if (retry < 0 || retry > 10)
    fail_msg("Retry-After %ld is not a few seconds", retry);
  long deadline = sec_now_ms() + (retry + 3) * 1000;
  long st = 0;
  while (sec_now_ms() < deadline) {
    ev_post(p, "127.0.0.1", body, &a);
    st = a.status;
    sec_answer_free(&a);
    if (st == 200)
      break;
    sv_sleep_ms(250);
  }
  if (st != 200)
    fail_msg("127.0.0.1 still refused %ld s after the 429 (Retry-After %ld)",
             retry + 3, retry);
  free(body);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* --events-rate 2: burst 8, then 429. */
static void ev_rate_flag(void **state) {
  (void)state;
  const char *args[] = {"--events-rate", "2", NULL};
  chubd_proc *p = sv_start(args);
  sec_answer a;
  int ok = ev_flood(p, NULL, "cccccccccccccccc", 30, &a);
  if (ok < 0)
    fail_msg("30 POST /v1/events at once with --events-rate 2: none "
             "answered 429");
  if (ok < 1)
    fail_msg("the very first POST /v1/events was refused");
  ev_check_429("--events-rate 2", &a);
  char *limit = th_header(a.head, "X-RateLimit-Remaining");
  sv_assert_str(limit, "0");
  free(limit);
  sec_answer_free(&a);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* POST /v1/events expecting `want`; `what` names the case. */
static json_t *ev_expect(chubd_proc *p, const char *what, const char *body,
                         long want) {
  long st = 0;
  json_t *env = sv_json(p, "POST", "/v1/events", NULL, body, &st);
  if (st != want)
    fail_msg("POST /v1/events with %s answered %ld; expected %ld", what, st,
             want);
  return env;
}

/* A param value over 256 bytes or a name over 64: 400 naming it; at the
 * limits: 200. Few requests, within the default rate. */
static void ev_param_sizes(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  char value[300], name[80];
  memset(value, 'v', sizeof value);
  memset(name, 'n', sizeof name);

  value[256] = '\0';
  char *b = ev_body("dddddddddddddddd", "model_size", value);
  json_t *env = ev_expect(p, "a 256-byte param value", b, 200);
  json_decref(env);
  free(b);
  value[256] = 'v';
  value[257] = '\0';
  b = ev_body("dddddddddddddddd", "model_size", value);
  env = ev_expect(p, "a 257-byte param value", b, 400);
  if (!sv_message_has(env, "model_size"))
    fail_msg("a 257-byte param value: the 400 does not name model_size");
  json_decref(env);
  free(b);
  /* Bytes, not characters: 129 two-byte characters are 258 bytes. */
  char utf8[300] = "";
  for (int i = 0; i < 129; i++)
    strcat(utf8, "\xc3\xa9");
  b = ev_body("dddddddddddddddd", "label", utf8);
  env = ev_expect(p, "a param value of 129 two-byte characters", b, 400);
  json_decref(env);
  free(b);

  memcpy(name, "param_", 6);
  name[64] = '\0';
  b = ev_body("dddddddddddddddd", name, "x");
  env = ev_expect(p, "a 64-byte param name", b, 200);
  json_decref(env);
  free(b);
  name[64] = 'n';
  name[65] = '\0';
  b = ev_body("dddddddddddddddd", name, "x");
  env = ev_expect(p, "a 65-byte param name", b, 400);
  /* Named: by the name itself (or its start), or by the limit. */
  if (!sv_message_has(env, "param_nnnnnnnnnn") && !sv_message_has(env, "64"))
    fail_msg("a 65-byte param name: the 400 names neither it nor the limit");
  json_decref(env);
  free(b);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* --events-per-day 5 (and a rate that never interferes): a client_id's
 * sixth event of the day is 429; another client_id is still stored. */
static void ev_per_day(void **state) {
  (void)state;
  const char *args[] = {"--events-per-day", "5", "--events-rate", "1000", NULL};
  chubd_proc *p = sv_start(args);
  char *b = ev_body("eeeeeeeeeeeeeeee", "task", "segment");
  for (int i = 0; i < 5; i++) {
    json_t *env = sv_expect(p, "POST", "/v1/events", NULL, b, 200);
    json_decref(env);
  }
  long st = 0;
  json_t *env = sv_json(p, "POST", "/v1/events", NULL, b, &st);
  if (st != 429)
    fail_msg("the 6th event of client_id eeee... today answered %ld; "
             "expected 429 (--events-per-day 5)",
             st);
  json_decref(env);
  char *other = ev_body("ffffffffffffffff", "task", "segment");
  env = sv_expect(p, "POST", "/v1/events", NULL, other, 200);
  json_decref(env);
  free(other);
  free(b);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ev_rate_default),
      cmocka_unit_test(ev_rate_flag),
      cmocka_unit_test(ev_param_sizes),
      cmocka_unit_test(ev_per_day),
  };
  return cmocka_run_group_tests_name("security_events", tests, NULL, NULL);
}

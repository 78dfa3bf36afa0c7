/*
 * security_conn_limits.c - contract item 1, connection limits.
 *
 * One address holding its maximum of idle connections (--max-per-ip,
 * default 32) must not lock anyone else out: the attacker (source address
 * 127.0.0.2) opens its maximum and then one more, which chubd closes at
 * once without an answer, while the victim (127.0.0.1) is answered. The
 * connections within the limit are real connections (each still gets an
 * answer), and once the attacker lets go it is served again. The total
 * limit (--max-connections) is checked the same way across addresses.
 * Socket counts are bounded (at most 40 per test) and every wait too.
 */
#include "sec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTACKER "127.0.0.2"
#define VICTIM "127.0.0.1"
#define CL_MAX_FDS 40

/* Opens n idle connections from src, asserting each connects; fds[] gets
 * them. */
static void cl_open(const char *src, int port, int *fds, int n) {
  for (int i = 0; i < n; i++) {
    fds[i] = sec_dial(src, port);
    if (fds[i] < 0)
      fail_msg("connection %d from %s: %s", i + 1, src, strerror(errno));
  }
}

static void cl_close(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* Asserts none of fds was closed by chubd: they are within the limit. */
static void cl_all_open(const char *what, int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (sec_is_closed(fds[i]))
      fail_msg("%s: connection %d of %d (within the limit) was closed", what,
               i + 1, n);
}

/* The connection one past the limit: closed at once, never answered. */
static void cl_expect_cut(const char *what, const char *src, int port) {
  int fd = sec_dial(src, port);
  if (fd < 0) {
    /* Refused outright is also "closed without an answer". */
    if (errno == ECONNREFUSED || errno == ECONNRESET)
      return;
    fail_msg("%s: connect from %s: %s", what, src, strerror(errno));
  }
  char got[200];
  sec_fate f = sec_watch(fd, 3000, got, sizeof got);
  close(fd);
  if (f == SEC_OPEN)
    fail_msg("%s: the connection from %s past the limit is still open after "
             "3 s; expected chubd to close it at once",
             what, src);
  if (f == SEC_ANSWERED)
    fail_msg("%s: the connection from %s past the limit was answered "
             "(\"%.80s\"); expected it closed without an answer",
             what, src, got);
}

/* GET /v1/health from src answers 200 (bounded: 5 s). */
static void cl_expect_health(const char *what, const char *src, int port) {
  sec_answer a;
  int rc = sec_get_from(src, port, "/v1/health", 5000, &a);
  if (rc != 0 || a.status != 200)
    fail_msg("%s: GET /v1/health from %s: %s %ld", what, src,
             rc ? "no answer within 5 s" : "answered", a.status);
  sec_answer_free(&a);
}

/* Sends GET /v1/health on each held connection and expects 200 on each:
 * the connections within the limit are served, not just tolerated. */
static void cl_all_served(const char *what, int *fds, int n, int port) {
  char *req = sec_health_request(port);
  for (int i = 0; i < n; i++)
    sv_send(fds[i], req, strlen(req));
  for (int i = 0; i < n; i++) {
    sec_answer a;
    if (sec_read_answer(fds[i], 5000, &a) != 0 || a.status != 200)
      fail_msg("%s: held connection %d of %d: GET /v1/health got %ld", what,
               i + 1, n, a.status);
    sec_answer_free(&a);
  }
  free(req);
}

/* After the attacker lets go, it is served again (bounded: 3 s for chubd
 * to see the closes). */
static void cl_served_again(const char *src, int port) {
  long deadline = sec_now_ms() + 3000;
  long last = 0;
  while (sec_now_ms() < deadline) {
    sec_answer a;
    if (sec_get_from(src, port, "/v1/health", 2000, &a) == 0 &&
        a.status == 200) {
      sec_answer_free(&a);
      return;
    }
    last = a.status;
    sec_answer_free(&a);
    sv_sleep_ms(100);
  }
  fail_msg("%s is not served again after closing its connections (last "
           "status %ld)",
           src, last);
}

static void cl_per_ip(int max, const char *const args[]) {
  chubd_proc *p = sv_start(args);
  int port = chubd_proc_port(p);
  int fds[CL_MAX_FDS];
  cl_open(ATTACKER, port, fds, max);
  sv_sleep_ms(300); /* let chubd accept them all */
  cl_all_open("per address", fds, max);
  char *what = th_fmt("%s holding %d idle connections (--max-per-ip %d)",
                      ATTACKER, max, max);
  cl_expect_cut(what, ATTACKER, port);
  cl_expect_cut(what, ATTACKER, port);
  cl_expect_health(what, VICTIM, port);
  cl_all_open(what, fds, max);
  cl_all_served(what, fds, max, port);
  cl_close(fds, max);
  cl_served_again(ATTACKER, port);
  free(what);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* The default limit, 32, with no new flag given. */
static void cl_per_ip_default(void **state) {
  (void)state;
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  cl_per_ip(32, args);
}

static void cl_per_ip_flag(void **state) {
  (void)state;
  const char *args[] = {
      "--max-per-ip", "4", "--rate-limit", "100000", "--rate-burst",
      "100000",       NULL};
  cl_per_ip(4, args);
}

/* --max-connections 8: eight connections from two addresses fill it; the
 * ninth, from a third address, is closed at once; the eight are served;
 * when they go, others are served again. */
static void cl_total(void **state) {
  (void)state;
  const char *args[] = {"--max-connections",
                        "8",
                        "--max-per-ip",
                        "32",
                        "--rate-limit",
                        "100000",
                        "--rate-burst",
                        "100000",
                        NULL};
  chubd_proc *p = sv_start(args);
  int port = chubd_proc_port(p);
  int fds[8];
  cl_open("127.0.0.2", port, fds, 4);
  cl_open("127.0.0.3", port, fds + 4, 4);
  sv_sleep_ms(300);
  cl_all_open("--max-connections 8", fds, 8);
  cl_expect_cut("8 connections open (--max-connections 8)", "127.0.0.4", port);
  cl_all_open("--max-connections 8", fds, 8);
  cl_all_served("--max-connections 8", fds, 8, port);
  cl_close(fds, 8);
  cl_served_again("127.0.0.4", port);
  cl_served_again(VICTIM, port);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cl_per_ip_default),
      cmocka_unit_test(cl_per_ip_flag),
      cmocka_unit_test(cl_total),
  };
  return cmocka_run_group_tests_name("security_conn_limits", tests, NULL, NULL);
}

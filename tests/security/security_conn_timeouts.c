/*
 * security_conn_timeouts.c - contract item 1, deadlines.
 *
 * The request line and headers must arrive within --header-timeout of the
 * connection opening (default 10 s): a client dribbling one header line a
 * second, or sending nothing, is disconnected. A body is cut only after
 * --idle-timeout of silence: an upload that sends a little every second
 * for longer than the idle timeout is stored (200), while one that stops
 * is closed and leaves no temporary file under DATA/blobs/.incoming and no
 * checkpoint. Each wait is bounded; a disconnect is accepted a few seconds
 * after the deadline, never asserted to be early or fast.
 */
#include "sec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sends the request line and one header line per second until chubd
 * closes the connection or `bound_s` seconds pass. Returns the seconds it
 * stayed open (bound_s + 1 when never closed); a 2xx answer fails. */
static int ct_dribble(int port, int bound_s) {
  int fd = sec_dial(NULL, port);
  if (fd < 0)
    fail_msg("connect: %s", strerror(errno));
  char *start =
      th_fmt("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", port);
  sv_send(fd, start, strlen(start));
  free(start);
  long t0 = sec_now_ms();
  for (int i = 0; i <= bound_s; i++) {
    char got[200];
    sec_fate f = sec_watch(fd, 1000, got, sizeof got);
    if (f == SEC_ANSWERED) {
      /* A 408 (or any 4xx) before closing is a disconnect too. */
      if (strncmp(got, "HTTP/1.1 2", 10) == 0 ||
          strncmp(got, "HTTP/1.0 2", 10) == 0)
        fail_msg("the dribbled request was answered: %.80s", got);
      f = sec_watch(fd, 2000, NULL, 0) == SEC_OPEN ? SEC_OPEN : SEC_CLOSED;
    }
    if (f == SEC_CLOSED) {
      close(fd);
      return (int)((sec_now_ms() - t0) / 1000);
    }
    char line[64];
    snprintf(line, sizeof line, "X-Dribble-%d: %d\r\n", i, i);
    sv_send(fd, line, strlen(line));
  }
  close(fd);
  return bound_s + 1;
}

/* Default --header-timeout (10 s), no new flag: disconnected within 16 s. */
static void ct_dribble_default(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  int open_s = ct_dribble(chubd_proc_port(p), 16);
  if (open_s > 16)
    fail_msg("a client sending one header line per second was still "
             "connected after 16 s; the default --header-timeout is 10 s");
  assert_true(sv_alive(p, 2000));
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* --header-timeout 3: a dribbler and a silent connection are both
 * disconnected within 3 s (+ 4 s of slack); others are still served. */
static void ct_dribble_flag(void **state) {
  (void)state;
  const char *args[] = {"--header-timeout", "3", NULL};
  chubd_proc *p = sv_start(args);
  int port = chubd_proc_port(p);
  int silent = sec_dial(NULL, port);
  if (silent < 0)
    fail_msg("connect: %s", strerror(errno));
  int open_s = ct_dribble(port, 7);
  if (open_s > 7)
    fail_msg("with --header-timeout 3, a client sending one header line "
             "per second was still connected after 7 s");
  /* The silent one was opened before the dribbler: its deadline passed. */
  char got[200];
  sec_fate f = sec_watch(silent, 1000, got, sizeof got);
  if (f == SEC_OPEN)
    fail_msg("with --header-timeout 3, a connection that sent nothing was "
             "still open after more than 7 s");
  if (f == SEC_ANSWERED && strstr(got, " 200 "))
    fail_msg("a connection that sent nothing was answered 200");
  close(silent);
  assert_true(sv_alive(p, 2000));
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* --idle-timeout 2 (and --header-timeout 3): the request head at once,
 * then the body in 8 pieces one second apart (8 s, longer than both):
 * answered 200 and stored. */
static void ct_slow_upload_kept(void **state) {
  (void)state;
  const char *args[] = {"--idle-timeout", "2", "--header-timeout", "3", NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "slow.pt");
  size_t len = 80000, req_len;
  unsigned char *b = sv_bytes(len, 11);
  char *req = sv_raw_upload(id, key, b, len, &req_len);
  size_t head = (size_t)(strstr(req, "\r\n\r\n") - req) + 4;
  int fd = sec_dial(NULL, chubd_proc_port(p));
  if (fd < 0)
    fail_msg("connect: %s", strerror(errno));
  sv_send(fd, req, head);
  size_t off = head, piece = (req_len - head + 7) / 8;
  for (int i = 0; i < 8 && off < req_len; i++) {
    sv_sleep_ms(1000);
    if (sec_is_closed(fd))
      fail_msg("chubd closed a slow but steady upload after %d s "
               "(--idle-timeout 2: only silence may cut a body)",
               i + 1);
    size_t n = req_len - off < piece ? req_len - off : piece;
    sv_send(fd, req + off, n);
    off += n;
  }
  sec_answer a;
  if (sec_read_answer(fd, 10000, &a) != 0)
    fail_msg("the slow upload got no answer: %.200s", a.head ? a.head : "");
  if (a.status != 200)
    fail_msg("the slow upload answered %ld: %.300s", a.status, a.body);
  sec_answer_free(&a);
  close(fd);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(th_json_bool(m, "has_last_weights"), 1);
  json_decref(m);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(req);
  free(b);
  free(id);
}

/* --idle-timeout 2: half a body, then silence. chubd closes the connection
 * (within 2 s + 4 s of slack), removes the temporary file and stores
 * nothing. */
static void ct_stalled_body_dropped(void **state) {
  (void)state;
  const char *args[] = {"--idle-timeout", "2", NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "stall.pt");
  size_t len = 200000, req_len;
  unsigned char *b = sv_bytes(len, 12);
  char *req = sv_raw_upload(id, key, b, len, &req_len);
  int fd = sec_dial(NULL, chubd_proc_port(p));
  if (fd < 0)
    fail_msg("connect: %s", strerror(errno));
  sv_send(fd, req, req_len / 2);
  char got[200];
  sec_fate f = sec_watch(fd, 6000, got, sizeof got);
  if (f == SEC_ANSWERED && strstr(got, " 200 "))
    fail_msg("half an upload was answered 200: %.80s", got);
  if (f == SEC_ANSWERED)
    f = sec_watch(fd, 2000, NULL, 0) == SEC_OPEN ? SEC_OPEN : SEC_CLOSED;
  int closed = f != SEC_OPEN;
  close(fd);
  /* The partial file must be gone whether or not the close came. */
  int tmp_left = sec_tmp_empty(chubd_proc_data_dir(p), 3000);
  int holding = sv_files_gone(chubd_proc_data_dir(p), b, 4096, 1);
  if (!closed)
    fail_msg("with --idle-timeout 2, an upload silent after half its body "
             "was still connected after 6 s");
  if (tmp_left)
    fail_msg("%d temporary file(s) of the dropped upload remain under "
             "DATA/blobs/.incoming",
             tmp_left);
  assert_int_equal(holding, 0);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(th_json_bool(m, "has_last_weights"), 0);
  json_decref(m);
  assert_true(sv_alive(p, 2000));
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(req);
  free(b);
  free(id);
}

/* A kept-alive connection falls silent after its answer: with
 * --idle-timeout 2 (and a long header deadline) it is closed within 2 s
 * (+ 4 s of slack); with --header-timeout 3 (and a long idle timeout) the
 * next request's headers are due 3 s after the answer, so too. */
static void ct_keepalive(const char *const args[], const char *what) {
  chubd_proc *p = sv_start(args);
  int port = chubd_proc_port(p);
  int fd = sec_dial(NULL, port);
  if (fd < 0)
    fail_msg("connect: %s", strerror(errno));
  char *req = sec_health_request(port);
  sv_send(fd, req, strlen(req));
  sec_answer a;
  if (sec_read_answer(fd, 5000, &a) != 0 || a.status != 200)
    fail_msg("%s: GET /v1/health on a kept-alive connection got %ld", what,
             a.status);
  sec_answer_free(&a);
  sec_fate f = sec_watch(fd, 6000, NULL, 0);
  close(fd);
  if (f == SEC_OPEN)
    fail_msg("%s: a kept-alive connection silent after its answer was "
             "still open 6 s later",
             what);
  free(req);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

static void ct_keepalive_idle(void **state) {
  (void)state;
  const char *idle[] = {"--idle-timeout", "2", "--header-timeout", "30", NULL};
  ct_keepalive(idle, "--idle-timeout 2");
  const char *header[] = {"--idle-timeout", "60", "--header-timeout", "3",
                          NULL};
  ct_keepalive(header, "--header-timeout 3");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ct_dribble_default),
      cmocka_unit_test(ct_dribble_flag),
      cmocka_unit_test(ct_slow_upload_kept),
      cmocka_unit_test(ct_stalled_body_dropped),
      cmocka_unit_test(ct_keepalive_idle),
  };
  return cmocka_run_group_tests_name("security_conn_timeouts", tests, NULL,
                                     NULL);
}

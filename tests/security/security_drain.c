/*
 * security_drain.c - contract item 10, SIGTERM with a stalled upload.
 *
 * On SIGTERM chubd stops accepting at once (a connection attempted after
 * the signal is refused, ECONNREFUSED), finishes what progresses (an
 * upload still sending is answered 200 and stored), drops what does not
 * (a stalled upload: its temporary file removed, nothing stored) and exits
 * 0 within --drain-timeout (default 10 s) plus a margin. Checked once with
 * the default and once with --drain-timeout 2. Each check is recorded and
 * all that failed are reported together.
 */
#include "sec.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DR_MARGIN_MS 3000
#define DR_GRACE_MS 500 /* for chubd to take the signal */

typedef struct dr_report {
  char text[2048];
  int failed;
} dr_report;

static void dr_fail(dr_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void dr_fail(dr_report *r, const char *fmt, ...) {
  size_t used = strlen(r->text);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->text + used, sizeof r->text - used, fmt, ap);
  va_end(ap);
  used = strlen(r->text);
  snprintf(r->text + used, sizeof r->text - used, "\n");
  r->failed = 1;
}

static void dr_run(const char *drain, int drain_s) {
  const char *args[] = {"--rate-limit",
                        "100000",
                        "--rate-burst",
                        "100000",
                        drain ? "--drain-timeout" : NULL,
                        drain,
                        NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  int port = chubd_proc_port(p);
  pid_t pid = chubd_proc_pid(p);
  char *stalled_id = sv_create(p, key, "stalled.pt");
  char *steady_id = sv_create(p, key, "steady.pt");
  dr_report rep = {"", 0};

  /* The stalled upload: head and half the body, then nothing. */
  size_t slen = 300000, sreq_len;
  unsigned char *sb = sv_bytes(slen, 70);
  char *sreq = sv_raw_upload(stalled_id, key, sb, slen, &sreq_len);
  int sfd = sec_dial(NULL, port);
  if (sfd < 0)
    fail_msg("connect: %s", strerror(errno));
  sv_send(sfd, sreq, sreq_len / 2);

  /* The steady upload: head and a first piece now, the rest in 8 pieces
   * during the drain. */
  size_t tlen = 120000, treq_len;
  unsigned char *tb = sv_bytes(tlen, 71);
  char *treq = sv_raw_upload(steady_id, key, tb, tlen, &treq_len);
  int tfd = sec_dial(NULL, port);
  if (tfd < 0)
    fail_msg("connect: %s", strerror(errno));
  size_t toff = (size_t)(strstr(treq, "\r\n\r\n") - treq) + 4 + 1000;
  sv_send(tfd, treq, toff);
  size_t piece = (treq_len - toff + 7) / 8;
  sv_sleep_ms(300); /* chubd has begun on both */

  long t0 = sec_now_ms();
  assert_int_equal(kill(pid, SIGTERM), 0);
  long deadline = t0 + drain_s * 1000L + DR_MARGIN_MS;
  int exited = 0, attempts = 0, accepted = 0;
  long first_accept_ms = -1, exit_ms = -1;
  while (sec_now_ms() < deadline) {
    if (toff < treq_len) {
      size_t n = treq_len - toff < piece ? treq_len - toff : piece;
      sv_send(tfd, treq + toff, n);
      toff += n;
    }
    if (sec_exited_within(pid, 0)) {
      exited = 1;
      exit_ms = sec_now_ms() - t0;
      break;
    }
    if (sec_now_ms() - t0 >= DR_GRACE_MS) {
      int fd = sec_dial(NULL, port);
      attempts++;
      if (fd >= 0) {
        /* Accepted after the signal: unless chubd exited meanwhile, a
         * violation. */
        if (!sec_exited_within(pid, 0)) {
          accepted++;
          if (first_accept_ms < 0)
            first_accept_ms = sec_now_ms() - t0;
        }
        close(fd);
      } else if (errno != ECONNREFUSED) {
        dr_fail(&rep,
                "a connection attempted after SIGTERM failed with %s, "
                "not ECONNREFUSED",
                strerror(errno));
      }
    }
    sv_sleep_ms(100);
  }
  if (accepted)
    dr_fail(&rep,
            "%d of %d connections attempted %d ms or more after SIGTERM "
            "were accepted (first at %ld ms); expected ECONNREFUSED",
            accepted, attempts, DR_GRACE_MS, first_accept_ms);
  if (!exited) {
    dr_fail(&rep,
            "chubd was still running %ld ms after SIGTERM with a stalled "
            "upload (--drain-timeout %s)",
            sec_now_ms() - t0, drain ? drain : "default 10");
    chubd_proc_kill9(p);
  } else {
    fprintf(stderr, "security_drain: chubd exited %ld ms after SIGTERM\n",
            exit_ms);
  }

  /* The steady upload was finished and answered. */
  sec_answer a;
  if (sec_read_answer(tfd, 2000, &a) != 0 || a.status != 200)
    dr_fail(&rep,
            "the upload still progressing at SIGTERM got %ld, expected 200",
            a.status);
  sec_answer_free(&a);
  close(tfd);
  close(sfd);

  int status = exited ? chubd_proc_stop(p) : -1;
  if (exited && status != 0)
    dr_fail(&rep, "chubd exited with status %d after SIGTERM, expected 0",
            status);
  int tmp = sec_tmp_files(chubd_proc_data_dir(p));
  if (tmp)
    dr_fail(
        &rep,
        "%d temporary file(s) remain under DATA/blobs/.incoming after chubd "
        "exited (the stalled upload's must be removed)",
        tmp);

  /* Restarted: the stalled upload stored nothing, the steady one is
   * there. */
  if (chubd_proc_restart(p) != 0)
    fail_msg("chubd did not start again on the same data");
  json_t *m = sv_model(p, key, stalled_id);
  if (th_json_bool(m, "has_last_weights") != 0)
    dr_fail(&rep, "the stalled upload was stored as a checkpoint");
  json_decref(m);
  m = sv_model(p, key, steady_id);
  if (th_json_bool(m, "has_last_weights") != 1)
    dr_fail(&rep, "the upload that progressed during the drain was not "
                  "stored");
  json_decref(m);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(treq);
  free(tb);
  free(sreq);
  free(sb);
  free(steady_id);
  free(stalled_id);
  if (rep.failed)
    fail_msg("SIGTERM with a stalled upload (--drain-timeout %s):\n%s",
             drain ? drain : "default 10", rep.text);
}

static void dr_default(void **state) {
  (void)state;
  dr_run(NULL, 10);
}

static void dr_flag(void **state) {
  (void)state;
  dr_run("2", 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dr_default),
      cmocka_unit_test(dr_flag),
  };
  return cmocka_run_group_tests_name("security_drain", tests, NULL, NULL);
}

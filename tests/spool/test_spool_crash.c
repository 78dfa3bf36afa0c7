/*
 * test_spool_crash.c - a process appending to its spool is killed with
 * SIGKILL at a random moment (20 seeds); replaying the log afterwards finds
 * every record the child had reported as appended, with its exact JSON, and
 * nothing it had reported as acknowledged. The child reports over a pipe
 * only after each call returned, which is the promise a trainer relies on:
 * once the callback returned, the epoch survives the process.
 */
#include "spool_test_util.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

enum { SEEDS = 20, MAX_EPOCHS = 200000 };

/* The child: appends forever (bounded by MAX_EPOCHS), acknowledging and
 * compacting now and then like a sender would, and reports each step. */
static void child_run(const char *dir, int out) {
  spool *sp = NULL;
  if (spool_open(dir, 1 << 20, &sp) != CHUB_OK)
    _exit(2);
  for (int e = 0; e < MAX_EPOCHS; e++) {
    char json[256];
    spool_test_json(json, sizeof json, e, 1);
    if (spool_append_metrics(sp, e, json) != CHUB_OK)
      _exit(3);
    int rep[2] = {'A', e};
    if (write(out, rep, sizeof rep) != (ssize_t)sizeof rep)
      _exit(4);
    if (e % 3 == 2) { /* acknowledge the one before: some stay pending */
      int ack = e - 1;
      /* announced first: killed in between, the epoch may be either */
      int intent[2] = {'k', ack};
      if (write(out, intent, sizeof intent) != (ssize_t)sizeof intent)
        _exit(4);
      if (spool_ack_metrics(sp, &ack, 1) != CHUB_OK)
        _exit(5);
      int rep2[2] = {'K', ack};
      if (write(out, rep2, sizeof rep2) != (ssize_t)sizeof rep2)
        _exit(4);
    }
    if (e % 997 == 0)
      spool_compact(sp);
    if (e % 101 == 0)
      spool_sync(sp);
  }
  spool_close(sp);
  _exit(0);
}

/* What a report says about an epoch: 1 appended, 2 acknowledged, 3 being
 * acknowledged (either outcome is right). */
static unsigned char report_status(int kind) {
  return kind == 'A' ? 1 : kind == 'K' ? 2 : 3;
}

static void test_sigkill_at_random_moments(void **state) {
  (void)state;
  char *root = th_tmpdir_new("chub-spool");
  assert_non_null(root);
  unsigned char *status = malloc(MAX_EPOCHS); /* see report_status */
  long long total_checked = 0;
  for (unsigned seed = 1; seed <= SEEDS; seed++) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run-%u", root, seed);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      child_run(dir, fds[1]);
    }
    close(fds[1]);
    srand(seed);
    /* wait for a random number of reports (0..2999), then kill at once */
    int target = rand() % 3000;
    memset(status, 0, MAX_EPOCHS);
    int reports = 0;
    int rep[2];
    while (reports < target &&
           read(fds[0], rep, sizeof rep) == (ssize_t)sizeof rep) {
      status[rep[1]] = report_status(rep[0]);
      reports++;
    }
    kill(pid, SIGKILL);
    /* drain what the child reported before it died */
    while (read(fds[0], rep, sizeof rep) == (ssize_t)sizeof rep) {
      status[rep[1]] = report_status(rep[0]);
      reports++;
    }
    close(fds[0]);
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    if (!WIFSIGNALED(wst) || WTERMSIG(wst) != SIGKILL)
      fail_msg("seed %u: the child was not killed but ended with status %d "
               "(exit codes: 2 open, 3 append, 4 pipe, 5 ack failed)",
               seed, WIFEXITED(wst) ? WEXITSTATUS(wst) : -WTERMSIG(wst));

    spool *sp = NULL;
    assert_int_equal(spool_open(dir, 1 << 20, &sp), CHUB_OK);
    int checked = 0;
    for (int e = 0; e < MAX_EPOCHS; e++) {
      char *json = NULL;
      chub_code rc = spool_read_metrics(sp, e, &json);
      if (status[e] == 1) {
        char want[256];
        spool_test_json(want, sizeof want, e, 1);
        if (rc != CHUB_OK)
          fail_msg("seed %u: epoch %d was reported appended but is not in "
                   "the replayed spool %s (%d reports)",
                   seed, e, dir, reports);
        assert_string_equal(json, want);
        checked++;
      } else if (status[e] == 2) {
        assert_int_equal(rc, CHUB_EINVAL); /* acknowledged: gone */
      } else if (rc == CHUB_OK) {
        /* appended but killed before it could report, or being
         * acknowledged when killed: must be whole */
        char want[256];
        spool_test_json(want, sizeof want, e, 1);
        assert_string_equal(json, want);
      }
      free(json);
    }
    spool_close(sp);
    total_checked += checked;
    printf("crash seed %u: killed after %d reports, %d pending epochs all "
           "replayed\n",
           seed, reports, checked);
  }
  printf("crash: %d SIGKILLs, %lld reported epochs checked, lost 0\n", SEEDS,
         total_checked);
  free(status);
  if (!getenv("KEEP"))
    th_tmpdir_remove(root);
  free(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigkill_at_random_moments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

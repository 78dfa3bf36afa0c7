/*
 * server_ratelimit.c - conformance: rate limiting (hub-api.md 429 with
 * X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset and
 * Retry-After).
 *
 * chubd runs with --rate-limit 5 --rate-burst 5: five quick requests pass,
 * the ones after are refused with the four headers a client needs to wait
 * correctly. Only counts are asserted, never durations.
 */
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int server_ratelimit_setup(void **state) {
  const char *args[] = {"--rate-limit", "5", "--rate-burst", "5", NULL};
  return sv_group_start(state, args);
}

static void server_ratelimit_429(void **state) {
  chubd_proc *p = *state;
  char *url = th_fmt("%s/v1/models", chubd_proc_base_url(p));
  char *key_h = th_fmt("x-api-key: %s", chubd_proc_key(p));
  const char *hdrs[] = {key_h, NULL};
  int ok = 0, limited = 0, first_limited = -1;
  for (int i = 0; i < 20; i++) {
    th_response r;
    assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &r), 0);
    if (r.status == 200) {
      ok++;
    } else if (r.status == 429) {
      if (first_limited < 0)
        first_limited = i;
      limited++;
      json_t *env = th_envelope(&r);
      assert_non_null(env);
      json_decref(env);
      char *lim = th_header(r.headers, "X-RateLimit-Limit");
      char *rem = th_header(r.headers, "X-RateLimit-Remaining");
      char *reset = th_header(r.headers, "X-RateLimit-Reset");
      char *retry = th_header(r.headers, "Retry-After");
      if (!lim || !rem || !reset || !retry)
        fail_msg("429 without all four headers:\n%s", r.headers);
      assert_int_equal(atol(lim), 5);
      assert_int_equal(atol(rem), 0);
      /* Reset is a unix time in the near future (not a duration). */
      long long now = (long long)time(NULL);
      long long rs = atoll(reset);
      if (rs < now - 5 || rs > now + 3600)
        fail_msg("X-RateLimit-Reset %s is not a unix time near %lld", reset,
                 now);
      /* Retry-After is whole seconds, at least 1, and not absurd. */
      long ra = atol(retry);
      if (ra < 1 || ra > 3600)
        fail_msg("Retry-After %s is not sensible", retry);
      free(lim);
      free(rem);
      free(reset);
      free(retry);
    } else {
      fail_msg("request %d answered %ld", i, r.status);
    }
    th_response_free(&r);
  }
  /* The burst is 5: the first five pass and quick requests after them are
   * refused. Tokens may refill while the loop runs, so the counts are
   * bounds, not exact. */
  if (first_limited >= 0 && first_limited < 5)
    fail_msg("request %d was limited inside the burst of 5", first_limited);
  assert_true(ok >= 5);
  assert_true(limited >= 1);
  free(key_h);
  free(url);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_ratelimit_429),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_ratelimit", tests, server_ratelimit_setup, sv_group_teardown));
}

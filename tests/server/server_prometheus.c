/*
 * server_prometheus.c - conformance: GET /metrics, chubd's own figures in
 * the Prometheus text format (chubd --metrics, --metrics-listen).
 *
 * Off unless asked for; with --metrics on the main address, with
 * --metrics-listen only on its own address. The text is checked line by
 * line against the format (every sample of a declared family, values that
 * parse, histogram buckets that only grow and end at _count), and the
 * figures against what the test itself did: the requests it made by route
 * and status, the bytes it uploaded, the epochs it sent.
 */
#include "sv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A free loopback port (bound and released; the test's chubd takes it a
 * moment later). */
static int prom_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t n = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static char *prom_fetch(int port, const char *method, long want,
                        char **headers) {
  char *url = th_fmt("http://127.0.0.1:%d/metrics", port);
  long status = 0;
  char *body = NULL;
  assert_int_equal(
      th_request(method, url, NULL, NULL, NULL, 0, &status, &body, headers), 0);
  if (status != want)
    fail_msg("%s %s answered %ld, want %ld: %s", method, url, status, want,
             body ? body : "");
  free(url);
  return body;
}

/* The value of the sample whose name and labels are exactly `series`
 * (e.g. `chubd_upload_bytes_total{kind="weights"}`), or -1 when absent. */
static double prom_value(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *line = text; line && *line;) {
    const char *end = strchr(line, '\n');
    if (strncmp(line, series, n) == 0 && line[n] == ' ')
      return strtod(line + n + 1, NULL);
    line = end ? end + 1 : NULL;
  }
  return -1;
}

/* The text follows the exposition format: comments are HELP or TYPE, a
 * family's TYPE comes before its samples, every sample is NAME{labels}
 * VALUE with a value that parses. */
static void prom_check_format(const char *text) {
  char types[64][80];
  int ntypes = 0;
  char *copy = strdup(text);
  char *save = NULL;
  int samples = 0;
  for (char *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') {
      char name[80], kind[32];
      if (sscanf(line, "# TYPE %79s %31s", name, kind) == 2) {
        assert_true(!strcmp(kind, "counter") || !strcmp(kind, "gauge") ||
                    !strcmp(kind, "histogram"));
        assert_true(ntypes < 64);
        snprintf(types[ntypes++], sizeof types[0], "%s", name);
      } else if (strncmp(line, "# HELP ", 7) != 0) {
        fail_msg("a comment that is neither HELP nor TYPE: %s", line);
      }
      continue;
    }
    size_t i = 0;
    while (isalnum((unsigned char)line[i]) || line[i] == '_' || line[i] == ':')
      i++;
    if (i == 0)
      fail_msg("a sample without a name: %s", line);
    int declared = 0;
    for (int t = 0; t < ntypes && !declared; t++) {
      size_t tl = strlen(types[t]);
      declared = strncmp(line, types[t], tl) == 0 &&
                 (i == tl || !strcmp(line + tl, "_bucket") ||
                  strncmp(line + tl, "_bucket", 7) == 0 ||
                  strncmp(line + tl, "_sum", 4) == 0 ||
                  strncmp(line + tl, "_count", 6) == 0);
    }
    if (!declared)
      fail_msg("a sample of no declared family: %s", line);
    const char *rest = line + i;
    if (*rest == '{') {
      rest = strchr(rest, '}');
      if (!rest)
        fail_msg("labels not closed: %s", line);
      rest++;
    }
    if (*rest != ' ')
      fail_msg("no value after the name: %s", line);
    char *end;
    strtod(rest + 1, &end);
    if (end == rest + 1 || *end)
      fail_msg("a value that does not parse: %s", line);
    samples++;
  }
  free(copy);
  assert_true(samples > 0);
}

/* route's histogram: buckets never shrink and +Inf equals _count. */
static double prom_check_histogram(const char *text, const char *route) {
  static const char *const le[] = {
      "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
      "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60",  "+Inf"};
  double prev = 0;
  for (size_t i = 0; i < sizeof le / sizeof le[0]; i++) {
    char *s =
        th_fmt("chubd_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"}",
               route, le[i]);
    double v = prom_value(text, s);
    if (v < prev)
      fail_msg("%s is %g, below the bucket before it (%g)", s, v, prev);
    prev = v;
    free(s);
  }
  char *count =
      th_fmt("chubd_request_duration_seconds_count{route=\"%s\"}", route);
  assert_true(prom_value(text, count) == prev);
  free(count);
  return prev;
}

static void server_prometheus_off_by_default(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  char *body = prom_fetch(chubd_proc_port(p), "GET", 404, NULL);
  assert_null(strstr(body, "chubd_requests_total"));
  free(body);
  chubd_proc_free(p);
}

static void server_prometheus_main_address(void **state) {
  (void)state;
  const char *const extra[] = {"--metrics", NULL};
  chubd_proc *p = sv_start(extra);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "prom.pt");
  assert_int_equal(sv_metrics(p, key, id, "{\"0\": \"{\\\"loss\\\": 1.5}\"}"),
                   200);
  assert_int_equal(sv_metrics(p, key, id,
                              "{\"1\": \"{\\\"loss\\\": 1.25}\", \"2\": "
                              "\"{\\\"loss\\\": 1.0}\"}"),
                   200);
  /* A refused upload is counted under its own status. */
  char *path = th_fmt("/v1/models/%s", id);
  json_decref(sv_expect(p, "POST", path, key, "{\"type\": \"metrics\"}", 400));
  free(path);
  size_t len = 100000;
  unsigned char *bytes = sv_bytes(len, 7);
  char sha[65];
  th_sha256_hex(bytes, len, sha);
  th_response up;
  assert_int_equal(
      sv_upload(p, key, id, 1, "epoch", "true", bytes, len, sha, &up), 200);
  th_response_free(&up);
  free(bytes);

  /* A request is counted when its connection is done with it, a moment
   * after the client read its answer: scrape until the last one shows
   * (bounded: 5 s), then check everything on that scrape. */
  char *headers = NULL;
  char *text = NULL;
  for (int i = 0; i < 250; i++) {
    free(text);
    free(headers);
    headers = NULL;
    text = prom_fetch(chubd_proc_port(p), "GET", 200, &headers);
    if (prom_value(text, "chubd_requests_total{route=\"model_upload\","
                         "status=\"200\"}") >= 1)
      break;
    sv_sleep_ms(20);
  }
  assert_non_null(strcasestr(headers, "content-type: text/plain; "
                                      "version=0.0.4"));
  prom_check_format(text);
  assert_true(prom_value(text, "chubd_requests_total{route=\"model\","
                               "status=\"200\"}") >= 2);
  assert_true(prom_value(text, "chubd_requests_total{route=\"model\","
                               "status=\"400\"}") >= 1);
  assert_true(prom_value(text, "chubd_requests_total{route=\"model_upload\","
                               "status=\"200\"}") >= 1);
  /* The body carried the 100000 bytes and the multipart framing. */
  assert_true(prom_value(text, "chubd_upload_bytes_total{kind=\"weights\"}") >=
              (double)len);
  assert_true(prom_value(text, "chubd_metrics_epochs_total") >= 3);
  assert_true(prom_value(text, "chubd_metrics_commit_requests_sum") >= 2);
  assert_true(prom_value(text, "chubd_metrics_commit_requests_count") >= 1);
  double model = prom_check_histogram(text, "model");
  assert_true(model >= 3);
  /* The scrape's own connection is open while it is answered. */
  assert_true(prom_value(text, "chubd_open_connections") >= 1);
  assert_true(prom_value(text, "chubd_store_pool_connections") >= 1);
  assert_true(prom_value(text, "chubd_store_errors_total") == 0);
  if (!chubd_proc_db(p)) { /* SQLite: every commit synced its log */
    assert_true(prom_value(text, "chubd_store_log_sync_seconds_count") >= 1);
    assert_true(prom_value(text, "chubd_store_log_sync_seconds_sum") > 0);
  }
  char *info = th_fmt("chubd_store_info{store=\"%s\"",
                      chubd_proc_db(p) ? "postgresql" : "sqlite");
  assert_non_null(strstr(text, info));
  free(info);
  free(text);
  free(headers);

  /* A scrape is counted too, by the scrapes after it. */
  double scrapes = 0;
  for (int i = 0; i < 250 && scrapes < 1; i++) {
    text = prom_fetch(chubd_proc_port(p), "GET", 200, NULL);
    scrapes = prom_value(text, "chubd_requests_total{route=\"metrics\","
                               "status=\"200\"}");
    free(text);
    if (scrapes < 1)
      sv_sleep_ms(20);
  }
  assert_true(scrapes >= 1);
  free(id);
  chubd_proc_free(p);
}

static void server_prometheus_own_address(void **state) {
  (void)state;
  int port = prom_free_port();
  char *addr = th_fmt("127.0.0.1:%d", port);
  const char *const extra[] = {"--metrics-listen", addr, NULL};
  chubd_proc *p = sv_start(extra);
  json_decref(sv_expect(p, "GET", "/v1/health", NULL, NULL, 200));
  /* Not on the main address... */
  free(prom_fetch(chubd_proc_port(p), "GET", 404, NULL));
  /* ...only on its own, and nothing else there. */
  double health = 0;
  for (int i = 0; i < 250 && health < 1; i++) {
    char *text = prom_fetch(port, "GET", 200, NULL);
    prom_check_format(text);
    health = prom_value(text, "chubd_requests_total{route=\"health\","
                              "status=\"200\"}");
    free(text);
    if (health < 1)
      sv_sleep_ms(20);
  }
  assert_true(health >= 1);
  free(prom_fetch(port, "POST", 405, NULL));
  char *url = th_fmt("http://127.0.0.1:%d/v1/health", port);
  long status = 0;
  assert_int_equal(
      th_request("GET", url, NULL, NULL, NULL, 0, &status, NULL, NULL), 0);
  assert_int_equal(status, 404);
  free(url);
  free(addr);
  chubd_proc_free(p);
}

/* A bad address is refused at start, naming the flag. */
static void server_prometheus_bad_address(void **state) {
  (void)state;
  char *cmd = th_fmt("%s --listen 127.0.0.1:0 --metrics-listen nowhere 2>&1",
                     sv_chubd_bin());
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  /* Read it all (the usage follows), keeping the start. */
  char out[2048] = "", rest[4096];
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  while (fread(rest, 1, sizeof rest, f) > 0)
    ;
  int rc = pclose(f);
  assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
  assert_non_null(strstr(out, "--metrics-listen"));
  assert_non_null(strstr(out, "HOST:PORT"));
  free(cmd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_prometheus_off_by_default),
      cmocka_unit_test(server_prometheus_main_address),
      cmocka_unit_test(server_prometheus_own_address),
      cmocka_unit_test(server_prometheus_bad_address),
  };
  return cmocka_run_group_tests_name("server_prometheus", tests, NULL, NULL);
}

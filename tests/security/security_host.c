/*
 * security_host.c - contract item 2, the Host check (DNS rebinding).
 *
 * A page on a rebinding name reaches chubd's loopback listener with that
 * name in Host. Any Host chubd does not serve is answered 421 (an
 * envelope whose message names the host) before any handler runs, so
 * nothing is read or written. Served are localhost, any IP literal, the
 * --listen host and the host of --public-url; ports are not compared, and
 * a request with no Host at all (HTTP/1.0) is served.
 */
#include "sec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* METHOD path with `Host: host` (and x-api-key key, JSON body unless
 * NULL); returns the answer. */
static void hc_request(chubd_proc *p, const char *method, const char *path,
                       const char *host, const char *key, const char *body,
                       th_response *r) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *host_h = th_fmt("Host: %s", host);
  char *key_h = key ? th_fmt("x-api-key: %s", key) : NULL;
  const char *hdrs[] = {host_h, "Content-Type: application/json", key_h, NULL};
  if (th_request_hdrs(method, url, hdrs, body, body ? strlen(body) : 0, r) != 0)
    fail_msg("%s %s (Host: %s): no answer", method, path, host);
  free(key_h);
  free(host_h);
  free(url);
}

/* Expects 421 with an envelope naming `name`. */
static void hc_expect_421(chubd_proc *p, const char *method, const char *path,
                          const char *host, const char *name, const char *key,
                          const char *body) {
  th_response r;
  hc_request(p, method, path, host, key, body, &r);
  if (r.status != 421)
    fail_msg("%s %s with Host: %s answered %ld; expected 421", method, path,
             host, r.status);
  json_t *env = th_envelope(&r);
  if (!env)
    fail_msg("%s %s with Host: %s: the 421 is not an envelope", method, path,
             host);
  if (!sv_message_has(env, name))
    fail_msg("%s %s with Host: %s: the 421's message does not name %s", method,
             path, host, name);
  char *cookie = th_header(r.headers, "Set-Cookie");
  if (cookie)
    fail_msg("%s %s with Host: %s set a cookie: %s", method, path, host,
             cookie);
  json_decref(env);
  th_response_free(&r);
}

static void hc_expect_served(chubd_proc *p, const char *host) {
  th_response r;
  hc_request(p, "GET", "/v1/health", host, NULL, NULL, &r);
  if (r.status != 200)
    fail_msg("GET /v1/health with Host: %s answered %ld; expected 200 (a "
             "host chubd serves)",
             host, r.status);
  th_response_free(&r);
}

static long hc_model_count(chubd_proc *p, const char *key) {
  json_t *env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  long n = (long)json_array_size(th_json_at(env, "data.results"));
  json_decref(env);
  return n;
}

/* Names a rebinding page would use: every route answers 421. */
static void hc_foreign_hosts(void **state) {
  (void)state;
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "rebind.pt");
  char *model_page = th_fmt("/models/%s", id);
  char *ui_model = th_fmt("/ui/models/%s", id);
  char *ui_weights = th_fmt("/ui/models/%s/weights/last", id);
  char *v1_model = th_fmt("/v1/models/%s", id);
  const char *gets[] = {"/v1/health", "/ui/models", ui_model,
                        ui_weights,   "/ui/owners", "/",
                        model_page,   "/login",     "/static/app.css"};
  for (size_t i = 0; i < sizeof gets / sizeof *gets; i++)
    hc_expect_421(p, "GET", gets[i], "evil.example", "evil.example", NULL,
                  NULL);
  hc_expect_421(p, "GET", v1_model, "evil.example", "evil.example", key, NULL);
  /* The port does not make a foreign name served, and the message names
   * the host. */
  char *with_port = th_fmt("attacker.example:%d", chubd_proc_port(p));
  hc_expect_421(p, "GET", "/ui/models", with_port, "attacker.example", NULL,
                NULL);
  /* Names that only look like served ones. */
  const char *lookalikes[] = {"localhost.evil.example", "127.0.0.1.nip.io",
                              "evil-localhost", "127.0.0.1evil", "intranet"};
  for (size_t i = 0; i < sizeof lookalikes / sizeof *lookalikes; i++)
    hc_expect_421(p, "GET", "/ui/models", lookalikes[i], lookalikes[i], NULL,
                  NULL);

  /* Before any handler: no model is created, no login happens. */
  long before = hc_model_count(p, key);
  hc_expect_421(p, "POST", "/v1/models", "evil.example", "evil.example", key,
                "{\"meta\": {\"name\": \"x.pt\"}, \"config\": {\"epochs\": "
                "1}}");
  char *login = th_fmt("{\"key\": \"%s\"}", key);
  hc_expect_421(p, "POST", "/ui/login", "evil.example", "evil.example", NULL,
                login);
  hc_expect_421(p, "POST", "/ui/models", "evil.example", "evil.example", NULL,
                "{\"name\": \"x\", \"architecture\": \"yolo11n\"}");
  assert_int_equal(hc_model_count(p, key), before);
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "meta.name"), "rebind.pt");
  json_decref(m);

  free(login);
  free(with_port);
  free(v1_model);
  free(ui_weights);
  free(ui_model);
  free(model_page);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* localhost, IP literals and the listen address are served, with any
 * port or none; so is a request without Host. */
static void hc_served_hosts(void **state) {
  (void)state;
  chubd_proc *p = sv_start(NULL);
  int port = chubd_proc_port(p);
  char *listen = th_fmt("127.0.0.1:%d", port);
  char *lh_port = th_fmt("localhost:%d", port);
  char *v6_port = th_fmt("[::1]:%d", port);
  const char *hosts[] = {listen,      "127.0.0.1",       lh_port,
                         "localhost", v6_port,           "[::1]",
                         "10.0.0.7",  "192.168.1.20:81", "localhost:1"};
  for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++)
    hc_expect_served(p, hosts[i]);
  /* HTTP/1.0 without Host. */
  sec_answer a;
  const char *req = "GET /v1/health HTTP/1.0\r\n\r\n";
  if (sec_exchange(NULL, port, req, strlen(req), 5000, &a) != 0)
    fail_msg("GET /v1/health HTTP/1.0 without Host: no answer");
  if (a.status != 200)
    fail_msg("GET /v1/health HTTP/1.0 without Host answered %ld; expected "
             "200",
             a.status);
  sec_answer_free(&a);
  free(v6_port);
  free(lh_port);
  free(listen);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* --public-url's host is served (any port); other names still are not. */
static void hc_public_url_host(void **state) {
  (void)state;
  const char *args[] = {"--public-url", "https://hub.example.test:9443/chub",
                        NULL};
  chubd_proc *p = sv_start(args);
  hc_expect_served(p, "hub.example.test:9443");
  hc_expect_served(p, "hub.example.test");
  hc_expect_served(p, "hub.example.test:8080");
  hc_expect_served(p, "localhost");
  hc_expect_421(p, "GET", "/ui/models", "other.example.test",
                "other.example.test", NULL, NULL);
  hc_expect_421(p, "GET", "/ui/models", "hub.example.test.evil.example",
                "hub.example.test.evil.example", NULL, NULL);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hc_foreign_hosts),
      cmocka_unit_test(hc_served_hosts),
      cmocka_unit_test(hc_public_url_host),
  };
  return cmocka_run_group_tests_name("security_host", tests, NULL, NULL);
}

/*
 * test_core_unit.c - the pure pieces of libchub's core: identifier
 * parsing, the create payload, the epoch's flat map, the retry policy's
 * numbers, the answer envelope and the file digest.
 *
 * These decide what reaches the hub; each test states what a user would see
 * go wrong if it failed (a URL not recognised, a metric misnamed, a retry
 * that never waits).
 */
#include "core_test.h"
#include "http.h"
#include "internal.h"
#include "progress.h"
#include "th_log.h"
#include "session.h"

#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void test_identifier_urls(void **state) {
  (void)state;
  session_ident id;
  assert_int_equal(
      session_parse_identifier(
          "https://hub.ultralytics.com/models/abcdefghij0123456789", &id),
      CHUB_OK);
  assert_int_equal(id.kind, SESSION_IDENT_URL);
  assert_string_equal(id.model_id, "abcdefghij0123456789");
  assert_string_equal(id.api_key, "");
  /* Any host, a port, a trailing slash, an api_key in the query. */
  assert_int_equal(session_parse_identifier(
                       "http://127.0.0.1:8080/models/ABCDEFGHIJ0123456789/"
                       "?api_key=k1234567890",
                       &id),
                   CHUB_OK);
  assert_string_equal(id.model_id, "ABCDEFGHIJ0123456789");
  assert_string_equal(id.api_key, "k1234567890");
  assert_int_equal(session_parse_identifier("http://h/x/models/"
                                            "abcdefghij0123456789?a=b&api_"
                                            "key=XYZ",
                                            &id),
                   CHUB_OK);
  assert_string_equal(id.api_key, "XYZ");
}

static void test_identifier_rejects(void **state) {
  (void)state;
  session_ident id;
  const char *bad[] = {
      "",
      "https://hub.ultralytics.com/models/short",
      "https://hub.ultralytics.com/models/abcdefghij01234567890", /* 21 */
      "https://hub.ultralytics.com/model/abcdefghij0123456789",
      "https://hub.ultralytics.com/models/abcdefghij012345678!",
      "https:///models/abcdefghij0123456789",
      "http://h/models/abcdefghij0123456789?api_key=bad-key",
      "model.txt",
      "yolo11n",
      ".pt",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(session_parse_identifier(bad[i], &id), CHUB_EINVAL);
    assert_int_equal(id.kind, SESSION_IDENT_INVALID);
  }
}

static void test_identifier_files(void **state) {
  (void)state;
  session_ident id;
  assert_int_equal(session_parse_identifier("weights/yolo11n.pt", &id),
                   CHUB_OK);
  assert_int_equal(id.kind, SESSION_IDENT_FILE);
  assert_string_equal(id.base, "yolo11n.pt");
  assert_string_equal(id.stem, "yolo11n");
  assert_true(id.weights);
  assert_int_equal(session_parse_identifier("yolo11n.yaml", &id), CHUB_OK);
  assert_false(id.weights);
  assert_int_equal(session_parse_identifier("net.cfg", &id), CHUB_OK);
  assert_false(id.weights);
  const char *weights[] = {"a.weights",     "a.bin",  "a.gguf",
                           "a.safetensors", "a.onnx", "A.PT"};
  for (size_t i = 0; i < sizeof weights / sizeof *weights; i++) {
    assert_int_equal(session_parse_identifier(weights[i], &id), CHUB_OK);
    assert_true(id.weights);
  }
}

static void test_create_payload(void **state) {
  (void)state;
  session_ident id;
  session_parse_identifier("models/yolo11n.pt", &id);
  chub_args a = {.model = "models/yolo11n.pt",
                 .data = "coco8.yaml",
                 .epochs = 100,
                 .batch = 16,
                 .imgsz = 640,
                 .patience = 100,
                 .device = "cpu",
                 .cache = "ram"};
  char *text = session_create_payload(&a, &id);
  assert_non_null(text);
  json_t *p = json_loads(text, 0, NULL);
  assert_non_null(p);
  json_t *cfg = json_object_get(p, "config");
  assert_int_equal(json_integer_value(json_object_get(cfg, "batchSize")), 16);
  assert_int_equal(json_integer_value(json_object_get(cfg, "epochs")), 100);
  assert_int_equal(json_integer_value(json_object_get(cfg, "imageSize")), 640);
  assert_int_equal(json_integer_value(json_object_get(cfg, "patience")), 100);
  assert_string_equal(json_string_value(json_object_get(cfg, "device")), "cpu");
  assert_string_equal(json_string_value(json_object_get(cfg, "cache")), "ram");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(p, "dataset"), "name")),
      "coco8.yaml");
  json_t *lin = json_object_get(p, "lineage");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(lin, "architecture"), "name")),
                      "yolo11n");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(lin, "parent"), "name")),
                      "yolo11n.pt");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(p, "meta"), "name")),
      "yolo11n.pt");
  json_decref(p);
  free(text);
  /* A config file starts from scratch: no parent. */
  session_parse_identifier("yolo11n.yaml", &id);
  text = session_create_payload(&a, &id);
  p = json_loads(text, 0, NULL);
  assert_null(json_object_get(json_object_get(p, "lineage"), "parent"));
  json_decref(p);
  free(text);
}

static json_t *flat_map(const chub_trainer *t, bool *dropped) {
  char buf[4096];
  size_t n = hub_callbacks_metrics_json(t, buf, sizeof buf, dropped);
  assert_true(n < sizeof buf);
  assert_int_equal(strlen(buf), n);
  json_error_t err;
  json_t *j = json_loads(buf, JSON_REJECT_DUPLICATES, &err);
  if (!j)
    fail_msg("not JSON: %s (%s)", buf, err.text);
  return j;
}

static void test_flat_map(void **state) {
  (void)state;
  chub_metric loss[] = {{"box_loss", 1.53}, {"cls_loss", 0.1}};
  chub_metric metrics[] = {{"metrics/mAP50-95(B)", 0.21},
                           {"val/loss", 0.3333333333333333}};
  chub_trainer t = {.epoch = 0,
                    .tloss = loss,
                    .n_tloss = 2,
                    .metrics = metrics,
                    .n_metrics = 2,
                    .model_parameters = 2590620,
                    .model_gflops = 6.5,
                    .model_speed_ms = 1.25};
  bool dropped = false;
  json_t *j = flat_map(&t, &dropped);
  assert_false(dropped);
  assert_int_equal(json_object_size(j), 7);
  assert_true(json_real_value(json_object_get(j, "train/box_loss")) == 1.53);
  assert_true(json_real_value(json_object_get(j, "train/cls_loss")) == 0.1);
  assert_true(json_real_value(json_object_get(j, "metrics/mAP50-95(B)")) ==
              0.21);
  /* Full precision survives the text form. */
  assert_true(json_real_value(json_object_get(j, "val/loss")) ==
              0.3333333333333333);
  assert_int_equal(json_integer_value(json_object_get(j, "model/parameters")),
                   2590620);
  assert_true(json_real_value(json_object_get(j, "model/GFLOPs")) == 6.5);
  assert_true(json_real_value(json_object_get(j, "model/speed_PyTorch(ms)")) ==
              1.25);
  json_decref(j);
  /* After epoch 0 the model info is not repeated. */
  t.epoch = 1;
  j = flat_map(&t, &dropped);
  assert_int_equal(json_object_size(j), 4);
  assert_null(json_object_get(j, "model/parameters"));
  json_decref(j);
}

static void test_flat_map_edge_cases(void **state) {
  (void)state;
  chub_metric loss[] = {{"nan\"loss", NAN}, {"q\"uo\\te\n", 2.0}};
  chub_metric metrics[] = {
      {"metrics/x", INFINITY}, {"train/q\"uo\\te\n", 3.0}, {"m", 1e-300}};
  chub_trainer t = {.epoch = 4,
                    .tloss = loss,
                    .n_tloss = 2,
                    .metrics = metrics,
                    .n_metrics = 3};
  bool dropped = false;
  json_t *j = flat_map(&t, &dropped);
  /* Non-finite values are left out (JSON has no NaN); a later duplicate
   * key wins, as a dict update does; names are escaped. */
  assert_true(dropped);
  assert_int_equal(json_object_size(j), 2);
  assert_true(json_number_value(json_object_get(j, "train/q\"uo\\te\n")) ==
              3.0);
  assert_true(json_real_value(json_object_get(j, "m")) == 1e-300);
  json_decref(j);
  /* UTF-8 names pass as they are; a name that is not UTF-8 (Latin-1,
   * a cut sequence, an overlong form) is left out, never sent broken. */
  chub_metric names[] = {{"val/\xc2\xb5s", 1.5},
                         {"lat1/\xb5s", 2.5},
                         {"cut\xe2\x82", 3.5},
                         {"over\xe0\x80\xaf", 4.5},
                         {"emoji\xf0\x9f\x99\x82", 5.5}};
  chub_trainer u = {.epoch = 2, .metrics = names, .n_metrics = 5};
  dropped = false;
  j = flat_map(&u, &dropped);
  assert_true(dropped);
  assert_int_equal(json_object_size(j), 2);
  assert_true(json_real_value(json_object_get(j, "val/\xc2\xb5s")) == 1.5);
  assert_true(json_real_value(json_object_get(j, "emoji\xf0\x9f\x99\x82")) ==
              5.5);
  json_decref(j);
  /* A buffer too small reports the size needed and stays terminated. */
  char tiny[8];
  dropped = false;
  size_t need = hub_callbacks_metrics_json(&t, tiny, sizeof tiny, &dropped);
  assert_true(need >= sizeof tiny);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* Names are checked eight bytes at a time: a byte that needs escaping (or
 * UTF-8 checking) is found wherever it sits in a long name, and every key
 * still comes back exactly. */
static void test_flat_map_every_position(void **state) {
  (void)state;
  static const char specials[] = {'"', '\\', '\n', '\x01', '\x1f'};
  for (size_t k = 0; k < sizeof specials; k++) {
    for (size_t len = 1; len <= 41; len++)
      for (size_t pos = 0; pos < len; pos++) {
        char name[48];
        memset(name, 'a', len);
        name[len] = '\0';
        name[pos] = specials[k];
        chub_metric m[] = {{name, 0.5}, {"plain/name", 0.25}};
        chub_trainer t = {.epoch = 3, .metrics = m, .n_metrics = 2};
        bool dropped = false;
        json_t *j = flat_map(&t, &dropped);
        assert_false(dropped);
        assert_int_equal(json_object_size(j), 2);
        assert_true(json_real_value(json_object_get(j, name)) == 0.5);
        json_decref(j);
      }
  }
  /* UTF-8 at any position stays as it is; a broken sequence anywhere
   * leaves the name out. */
  for (size_t len = 2; len <= 41; len++)
    for (size_t pos = 0; pos + 2 <= len; pos++) {
      char good[48], bad[48];
      memset(good, 'b', len);
      good[len] = '\0';
      memcpy(bad, good, sizeof good);
      memcpy(good + pos, "\xc2\xb5", 2);
      bad[pos] = (char)0xb5;
      chub_metric m[] = {{good, 1.5}, {bad, 2.5}};
      chub_trainer t = {.epoch = 3, .metrics = m, .n_metrics = 2};
      bool dropped = false;
      json_t *j = flat_map(&t, &dropped);
      assert_true(dropped);
      assert_int_equal(json_object_size(j), 1);
      assert_true(json_real_value(json_object_get(j, good)) == 1.5);
      json_decref(j);
    }
}

/* Keys of the same length that differ are all kept; the same key twice
 * keeps the later value, for short keys and for keys of 64 bytes or more. */
static void test_flat_map_same_length_keys(void **state) {
  (void)state;
  char long_a[80], long_b[80];
  memset(long_a, 'x', 70);
  long_a[70] = '\0';
  memcpy(long_b, long_a, sizeof long_a);
  long_b[69] = 'y';
  chub_metric loss[] = {{"box_loss", 1.0}, {"cls_loss", 2.0}};
  chub_metric metrics[] = {{long_a, 3.0},          {"train/box_loss", 4.0},
                           {long_b, 5.0},          {"val/box_loss", 6.0},
                           {long_a, 7.0},          {"val/cls_loss", 8.0},
                           {"train/dfl_loss", 9.0}};
  chub_trainer t = {.epoch = 5,
                    .tloss = loss,
                    .n_tloss = 2,
                    .metrics = metrics,
                    .n_metrics = 7};
  bool dropped = false;
  json_t *j = flat_map(&t, &dropped);
  assert_false(dropped);
  assert_int_equal(json_object_size(j), 7);
  assert_true(json_real_value(json_object_get(j, "train/box_loss")) == 4.0);
  assert_true(json_real_value(json_object_get(j, "train/cls_loss")) == 2.0);
  assert_true(json_real_value(json_object_get(j, "train/dfl_loss")) == 9.0);
  assert_true(json_real_value(json_object_get(j, "val/box_loss")) == 6.0);
  assert_true(json_real_value(json_object_get(j, "val/cls_loss")) == 8.0);
  assert_true(json_real_value(json_object_get(j, long_a)) == 7.0);
  assert_true(json_real_value(json_object_get(j, long_b)) == 5.0);
  json_decref(j);
}

static void test_backoff_and_retry_set(void **state) {
  (void)state;
  unsigned seed = 7;
  for (int i = 0; i < 4; i++) {
    double b = http_backoff(i, 1.0, &seed);
    assert_true(b >= ldexp(1.0, i));
    assert_true(b < ldexp(1.0, i) * 1.25);
  }
  assert_true(http_backoff(2, 0.5, &seed) < 2.5);
  long retry[] = {0, 408, 429, 500, 502, 503, 504};
  long stop[] = {200, 400, 401, 403, 404, 409, 413, 422};
  for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
    assert_true(http_retryable(retry[i]));
  for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
    assert_false(http_retryable(stop[i]));
  assert_int_equal(http_code_for_status(0), CHUB_ENET);
  assert_int_equal(http_code_for_status(401), CHUB_EAUTH);
  assert_int_equal(http_code_for_status(404), CHUB_ENOTFOUND);
  assert_int_equal(http_code_for_status(409), CHUB_ECONFLICT);
  assert_int_equal(http_code_for_status(502), CHUB_EHTTP);
  assert_true(http_retry_after("7", 0) == 7.0);
  assert_true(http_retry_after(" 0", 0) == 0.0);
  assert_true(http_retry_after("soon", 0) < 0);
  assert_true(http_retry_after(NULL, 0) < 0);
  /* An HTTP date 30 s after "now". */
  assert_true(http_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", 0) == 30.0);
}

static void test_envelope(void **state) {
  (void)state;
  json_t *data = NULL;
  char msg[64];
  const char *ok = "{\"success\": true, \"message\": \"hi\", \"data\": "
                   "{\"id\": \"x\"}}";
  assert_int_equal(http_parse_envelope(ok, strlen(ok), &data, msg, sizeof msg),
                   CHUB_OK);
  assert_string_equal(msg, "hi");
  assert_string_equal(json_string_value(json_object_get(data, "id")), "x");
  json_decref(data);
  const char *no = "{\"success\": false, \"message\": \"epochs must be an "
                   "integer\"}";
  assert_int_equal(http_parse_envelope(no, strlen(no), &data, msg, sizeof msg),
                   CHUB_EHTTP);
  assert_null(data);
  assert_string_equal(msg, "epochs must be an integer");
  const char *nodata = "{\"success\": true}";
  assert_int_equal(
      http_parse_envelope(nodata, strlen(nodata), &data, msg, sizeof msg),
      CHUB_OK);
  assert_true(json_is_null(data));
  json_decref(data);
  const char *bad[] = {"", "[1]", "{", "null", "<html>502</html>"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(
        http_parse_envelope(bad[i], strlen(bad[i]), &data, msg, sizeof msg),
        CHUB_EPROTO);
  /* A long message is truncated, never overrun. */
  char big[600];
  memset(big, 'm', sizeof big);
  char body[700];
  snprintf(body, sizeof body, "{\"message\": \"%.*s\"}", 500, big);
  char small[16];
  assert_int_equal(
      http_parse_envelope(body, strlen(body), NULL, small, sizeof small),
      CHUB_OK);
  assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_sha256_fd(void **state) {
  (void)state;
  char path[] = "/tmp/chub-sha-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "abc", 3), 3);
  char hex[65];
  assert_int_equal(chub_sha256_fd(fd, hex), CHUB_OK);
  assert_string_equal(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  /* Only the first n bytes when asked: the upload's snapshot size. */
  assert_int_equal(chub_sha256_fd_n(fd, 0, hex), CHUB_OK);
  assert_string_equal(
      hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  close(fd);
  unlink(path);
}

/* Off a terminal, one progress line per quarter passed, each saying how
 * far the transfer is: its percentage is of the bytes it shows (curl
 * reports in steps, so a line may come well past its quarter). */
static void test_progress_lines(void **state) {
  (void)state;
  th_log_install(CHUB_LOG_INFO);
  progress p;
  progress_init(&p, "Uploading best.pt");
  p.tty = false; /* as under ctest, or into a log file */
  const long long total = 2800000;
  /* 2097152 (74%) falls in the quarter whose line 1600000 (57%) gave:
   * no line of its own. */
  const long long sent[] = {0, 1048576, 1600000, 2097152, 2790000, 2800000};
  for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++)
    progress_cb(sent[i], total, &p);
  progress_done(&p);
  char *text = th_log_text();
  th_log_uninstall();
  assert_string_equal(text, "Uploading best.pt: 0% (0.0 of 2.8 MB)\n"
                            "Uploading best.pt: 37% (1.0 of 2.8 MB)\n"
                            "Uploading best.pt: 57% (1.6 of 2.8 MB)\n"
                            "Uploading best.pt: 99% (2.8 of 2.8 MB)\n"
                            "Uploading best.pt: 100% (2.8 of 2.8 MB)\n");
  free(text);
}

int main(void) {
  /* Nothing here reads settings or runs, but keep the user's own out of
   * reach all the same. */
  core_test_env env;
  core_test_env_init(&env, NULL, NULL);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identifier_urls),
      cmocka_unit_test(test_identifier_rejects),
      cmocka_unit_test(test_identifier_files),
      cmocka_unit_test(test_create_payload),
      cmocka_unit_test(test_flat_map),
      cmocka_unit_test(test_flat_map_edge_cases),
      cmocka_unit_test(test_flat_map_every_position),
      cmocka_unit_test(test_flat_map_same_length_keys),
      cmocka_unit_test(test_backoff_and_retry_set),
      cmocka_unit_test(test_envelope),
      cmocka_unit_test(test_sha256_fd),
      cmocka_unit_test(test_progress_lines),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  core_test_env_free(&env);
  return failed;
}

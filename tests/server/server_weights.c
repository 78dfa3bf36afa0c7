/*
 * server_weights.c - conformance: weights upload and download
 * (hub-api.md POST /v1/models/{id}/upload, GET .../weights/{last|best},
 * the chubd interface spec checkpoints list and weights/{sha256}).
 *
 * What a user must be able to trust: a checkpoint is stored whole and
 * verified or not at all (a digest mismatch or a body cut in half leaves
 * nothing behind, on the API or on disk), a finished model cannot be
 * finished twice, and a download is byte-exact, resumable with Range.
 */
#include "sv.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct server_weights_dl {
  th_response r;
  char *etag;
  char *length;
  char *disposition;
} server_weights_dl;

static void server_weights_get(chubd_proc *p, const char *path,
                               const char *range, server_weights_dl *dl) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *key_h = th_fmt("x-api-key: %s", chubd_proc_key(p));
  char *range_h = range ? th_fmt("Range: %s", range) : NULL;
  const char *hdrs[] = {key_h, range_h, NULL};
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &dl->r), 0);
  dl->etag = th_header(dl->r.headers, "ETag");
  dl->length = th_header(dl->r.headers, "Content-Length");
  dl->disposition = th_header(dl->r.headers, "Content-Disposition");
  free(range_h);
  free(key_h);
  free(url);
}

static void server_weights_dl_free(server_weights_dl *dl) {
  th_response_free(&dl->r);
  free(dl->etag);
  free(dl->length);
  free(dl->disposition);
}

/* Asserts GET path serves exactly bytes/len with the spec's headers. */
static void server_weights_expect_file(chubd_proc *p, const char *path,
                                       const unsigned char *bytes, size_t len,
                                       const char *filename) {
  server_weights_dl dl;
  server_weights_get(p, path, NULL, &dl);
  if (dl.r.status != 200)
    fail_msg("GET %s: %ld %.300s", path, dl.r.status, dl.r.body);
  assert_int_equal(dl.r.body_len, len);
  assert_memory_equal(dl.r.body, bytes, len);
  assert_non_null(dl.length);
  assert_int_equal(strtoull(dl.length, NULL, 10), len);
  char hex[65];
  th_sha256_hex(bytes, len, hex);
  char *etag = th_fmt("\"%s\"", hex);
  assert_non_null(dl.etag);
  assert_string_equal(dl.etag, etag);
  free(etag);
  if (filename) {
    assert_non_null(dl.disposition);
    char *want = th_fmt("filename=\"%s\"", filename);
    if (!strstr(dl.disposition, "attachment") || !strstr(dl.disposition, want))
      fail_msg("Content-Disposition \"%s\" is not an attachment %s",
               dl.disposition, want);
    free(want);
  }
  server_weights_dl_free(&dl);
}

static void server_weights_expect_404(chubd_proc *p, const char *path) {
  server_weights_dl dl;
  server_weights_get(p, path, NULL, &dl);
  if (dl.r.status != 404)
    fail_msg("GET %s: expected 404, got %ld", path, dl.r.status);
  server_weights_dl_free(&dl);
}

static void server_weights_upload_download(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "w.pt");
  char *last = th_fmt("/v1/models/%s/weights/last", id);
  char *best = th_fmt("/v1/models/%s/weights/best", id);
  server_weights_expect_404(p, last);

  size_t len1 = 300000;
  unsigned char *b1 = sv_bytes(len1, 1);
  char hex1[65];
  th_sha256_hex(b1, len1, hex1);
  th_response r;
  assert_int_equal(
      sv_upload(p, key, id, 3, "epoch", "True", b1, len1, NULL, &r), 200);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  assert_int_equal(th_json_int(env, "data.size", -1), (long long)len1);
  sv_assert_str(th_json_str(env, "data.sha256"), hex1);
  json_decref(env);
  th_response_free(&r);

  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "status"), "training");
  assert_int_equal(th_json_bool(m, "has_last_weights"), 1);
  /* resume is a download URL a client can use as is: absolute, on this
   * server, the last weights, named uniquely per blob, signed. */
  const char *resume = th_json_str(m, "resume");
  char *resume_want = th_fmt("%s/v1/models/%s/weights/%s/%s-last-%.8s.pt?",
                             chubd_proc_base_url(p), id, hex1, id, hex1);
  assert_non_null(resume);
  if (strncmp(resume, resume_want, strlen(resume_want)) != 0)
    fail_msg("resume is %s, expected it to start with %s", resume, resume_want);
  free(resume_want);
  json_t *ck = th_json_at(m, "checkpoints");
  assert_int_equal(json_array_size(ck), 1);
  assert_int_equal(th_json_int(ck, "0.epoch", -1), 3);
  sv_assert_str(th_json_str(ck, "0.type"), "epoch");
  assert_int_equal(th_json_bool(ck, "0.is_best"), 1);
  assert_int_equal(th_json_int(ck, "0.size", -1), (long long)len1);
  sv_assert_str(th_json_str(ck, "0.sha256"), hex1);
  assert_true(sv_is_rfc3339_utc(th_json_str(ck, "0.created_at")));
  char *sha_url = th_fmt("/v1/models/%s/weights/%s", id, hex1);
  char *ck_want = th_fmt("%s%s/%s-epoch3-%.8s.pt?", chubd_proc_base_url(p),
                         sha_url, id, hex1);
  const char *ck_url = th_json_str(ck, "0.url");
  assert_non_null(ck_url);
  if (strncmp(ck_url, ck_want, strlen(ck_want)) != 0)
    fail_msg("checkpoint url is %s, expected it to start with %s", ck_url,
             ck_want);
  free(ck_want);
  json_decref(m);

  char *fname = th_fmt("%s-last.pt", id);
  server_weights_expect_file(p, last, b1, len1, fname);
  free(fname);
  server_weights_expect_file(p, sha_url, b1, len1, NULL);
  /* By sha256 the file is named after its epoch: {id}-epoch N.pt (the
   * spacing is the server's choice). */
  server_weights_dl dl;
  server_weights_get(p, sha_url, NULL, &dl);
  assert_non_null(dl.disposition);
  char *stem = th_fmt("filename=\"%s-epoch", id);
  if (!strstr(dl.disposition, stem) || !strstr(dl.disposition, "3.pt\""))
    fail_msg("Content-Disposition \"%s\" does not name %s-epoch 3.pt",
             dl.disposition, id);
  free(stem);
  server_weights_dl_free(&dl);

  /* A second checkpoint, isBest spelt in lowercase: last moves. */
  size_t len2 = 123457;
  unsigned char *b2 = sv_bytes(len2, 2);
  char hex2[65];
  th_sha256_hex(b2, len2, hex2);
  assert_int_equal(
      sv_upload(p, key, id, 4, "epoch", "false", b2, len2, hex2, &r), 200);
  th_response_free(&r);
  server_weights_expect_file(p, last, b2, len2, NULL);
  server_weights_expect_file(p, sha_url, b1, len1, NULL);
  m = sv_model(p, key, id);
  ck = th_json_at(m, "checkpoints");
  assert_int_equal(json_array_size(ck), 2);
  /* Newest first. */
  assert_int_equal(th_json_int(ck, "0.epoch", -1), 4);
  assert_int_equal(th_json_bool(ck, "0.is_best"), 0);
  assert_int_equal(th_json_int(ck, "1.epoch", -1), 3);
  json_decref(m);

  /* The final model: status trained, best served. */
  size_t len3 = 77777;
  unsigned char *b3 = sv_bytes(len3, 3);
  assert_int_equal(sv_upload(p, key, id, 5, "final", NULL, b3, len3, NULL, &r),
                   200);
  th_response_free(&r);
  m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "status"), "trained");
  assert_int_equal(th_json_bool(m, "has_best_weights"), 1);
  char *weights_want =
      th_fmt("%s/v1/models/%s/weights/%s/%s-best-%.8s.pt?",
             chubd_proc_base_url(p), id, th_json_str(m, "checkpoints.0.sha256"),
             id, th_json_str(m, "checkpoints.0.sha256"));
  const char *weights = th_json_str(m, "weights");
  assert_non_null(weights);
  if (strncmp(weights, weights_want, strlen(weights_want)) != 0)
    fail_msg("weights is %s, expected it to start with %s", weights,
             weights_want);
  free(weights_want);
  sv_assert_str(th_json_str(m, "checkpoints.0.type"), "final");
  json_decref(m);
  fname = th_fmt("%s-best.pt", id);
  server_weights_expect_file(p, best, b3, len3, fname);
  free(fname);

  /* Finished once: a second final is a conflict and changes nothing. */
  unsigned char *b4 = sv_bytes(1000, 4);
  assert_int_equal(sv_upload(p, key, id, 6, "final", NULL, b4, 1000, NULL, &r),
                   409);
  env = th_envelope(&r);
  assert_non_null(env);
  json_decref(env);
  th_response_free(&r);
  server_weights_expect_file(p, best, b3, len3, NULL);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), b4, 1000, 0), 0);

  free(b4);
  free(b3);
  free(b2);
  free(b1);
  free(sha_url);
  free(best);
  free(last);
  free(id);
}

static void server_weights_sha_mismatch(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "sha.pt");
  char *last = th_fmt("/v1/models/%s/weights/last", id);
  size_t len = 50000;
  unsigned char *good = sv_bytes(len, 10);
  unsigned char *bad = sv_bytes(len, 11);
  char hex_good[65], hex_bad[65];
  th_sha256_hex(good, len, hex_good);
  th_sha256_hex(bad, len, hex_bad);
  th_response r;

  /* Nothing stored yet: a mismatch leaves 404. */
  assert_int_equal(
      sv_upload(p, key, id, 0, "epoch", "False", bad, len, hex_good, &r), 400);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  json_decref(env);
  th_response_free(&r);
  server_weights_expect_404(p, last);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), bad, len, 0), 0);

  /* A matching digest stores. */
  assert_int_equal(
      sv_upload(p, key, id, 1, "epoch", "False", good, len, hex_good, &r), 200);
  th_response_free(&r);
  /* Another mismatch: the previous stays, nothing new on disk. */
  assert_int_equal(
      sv_upload(p, key, id, 2, "epoch", "True", bad, len, hex_good, &r), 400);
  th_response_free(&r);
  server_weights_expect_file(p, last, good, len, NULL);
  assert_int_equal(sv_files_equal(chubd_proc_data_dir(p), good, len), 1);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), bad, len, 0), 0);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 1);
  json_decref(m);

  /* A final with a wrong digest does not finish the model. */
  assert_int_equal(
      sv_upload(p, key, id, 3, "final", NULL, bad, len, hex_good, &r), 400);
  th_response_free(&r);
  m = sv_model(p, key, id);
  assert_string_not_equal(th_json_str(m, "status"), "trained");
  json_decref(m);
  free(bad);
  free(good);
  free(last);
  free(id);
}

static void server_weights_bool_spellings(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "bools.pt");
  const char *spell[] = {"True", "False", "true", "false", "1", "0"};
  for (int i = 0; i < 6; i++) {
    unsigned char *b = sv_bytes(512, 300 + (unsigned)i);
    th_response r;
    assert_int_equal(
        sv_upload(p, key, id, i, "epoch", spell[i], b, 512, NULL, &r), 200);
    th_response_free(&r);
    json_t *m = sv_model(p, key, id);
    /* Newest first: entry 0 is the one just sent. */
    assert_int_equal(th_json_int(m, "checkpoints.0.epoch", -1), i);
    assert_int_equal(th_json_bool(m, "checkpoints.0.is_best"), i % 2 == 0);
    json_decref(m);
    free(b);
  }
  /* A sha256 that names no checkpoint of this model. */
  char *path = th_fmt("/v1/models/%s/weights/%064d", id, 0);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 404);
  json_decref(env);
  free(path);
  free(id);
}

/* A checkpoint big enough that no server would hold it in one buffer by
 * accident, streamed from a file: stored and served byte-exact. */
static void server_weights_large(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "large.pt");
  size_t len = 24u << 20;
  unsigned char *b = sv_bytes(len, 60);
  char hex[65];
  th_sha256_hex(b, len, hex);
  /* The source file lives outside chubd's data dir, which tests scan. */
  const char *tmp = getenv("TMPDIR");
  char *file = th_fmt("%s/chubd-upload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(file);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, len, f), len);
  fclose(f);
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), id);
  const char *fields[] = {"epoch",  "7",    "type", "epoch",
                          "isBest", "True", NULL};
  char *sha_h = th_fmt("x-chub-sha256: %s", hex);
  const char *hdrs[] = {sha_h, NULL};
  th_response r;
  assert_int_equal(th_upload(url, key, fields, "last.pt", "last.pt", NULL, 0,
                             file, hdrs, &r),
                   0);
  remove(file); /* before any assert can leave it behind */
  if (r.status != 200)
    fail_msg("24 MiB upload: %ld %.300s", r.status, r.body);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  sv_assert_str(th_json_str(env, "data.sha256"), hex);
  assert_int_equal(th_json_int(env, "data.size", -1), (long long)len);
  json_decref(env);
  th_response_free(&r);
  char *last = th_fmt("/v1/models/%s/weights/last", id);
  server_weights_expect_file(p, last, b, len, NULL);
  free(last);
  free(sha_h);
  free(url);
  free(file);
  free(b);
  free(id);
}

/* A multipart body with the file part first and the fields after it:
 * clients order parts as they like, so the server cannot rely on having
 * read `type` and `epoch` before the file streams in. */
static char *server_weights_file_first(const unsigned char *bytes, size_t len,
                                       const char *bd, int epoch,
                                       size_t *out_len) {
  char *head = th_fmt("--%s\r\nContent-Disposition: form-data; "
                      "name=\"last.pt\"; filename=\"x.bin\"\r\n"
                      "Content-Type: application/octet-stream\r\n\r\n",
                      bd);
  char *tail = th_fmt(
      "\r\n--%s\r\nContent-Disposition: form-data; name=\"isBest\"\r\n\r\n"
      "0\r\n--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n"
      "epoch\r\n--%s\r\nContent-Disposition: form-data; "
      "name=\"epoch\"\r\n\r\n%d\r\n--%s--\r\n",
      bd, bd, bd, epoch, bd);
  size_t total = strlen(head) + len + strlen(tail);
  char *body = malloc(total);
  memcpy(body, head, strlen(head));
  memcpy(body + strlen(head), bytes, len);
  memcpy(body + strlen(head) + len, tail, strlen(tail));
  *out_len = total;
  free(tail);
  free(head);
  return body;
}

static void server_weights_part_order_and_chunked(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "order.pt");
  char *last = th_fmt("/v1/models/%s/weights/last", id);

  /* File first, fields after, sent with a Content-Length. */
  size_t len = 70000, body_len;
  unsigned char *b = sv_bytes(len, 70);
  char *body = server_weights_file_first(b, len, "ordertest", 2, &body_len);
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), id);
  char *key_h = th_fmt("x-api-key: %s", key);
  const char *hdrs[] = {
      key_h, "Content-Type: multipart/form-data; boundary=ordertest", NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("POST", url, hdrs, body, body_len, &r), 0);
  if (r.status != 200)
    fail_msg("file-first multipart: %ld %.300s", r.status, r.body);
  th_response_free(&r);
  server_weights_expect_file(p, last, b, len, NULL);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(th_json_int(m, "checkpoints.0.epoch", -1), 2);
  json_decref(m);
  free(body);

  /* Chunked transfer encoding (no Content-Length), as a client streaming
   * from disk may send it; HTTP/1.1 servers must accept it. */
  size_t len2 = 50000;
  unsigned char *b2 = sv_bytes(len2, 71);
  body = server_weights_file_first(b2, len2, "chunkedtest", 3, &body_len);
  char *head =
      th_fmt("POST /v1/models/%s/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "x-api-key: %s\r\nContent-Type: multipart/form-data; "
             "boundary=chunkedtest\r\nTransfer-Encoding: chunked\r\n\r\n",
             id, key);
  int fd = sv_connect(chubd_proc_port(p));
  sv_send(fd, head, strlen(head));
  for (size_t off = 0; off < body_len; off += 8192) {
    size_t n = body_len - off < 8192 ? body_len - off : 8192;
    char size_line[32];
    snprintf(size_line, sizeof size_line, "%zx\r\n", n);
    sv_send(fd, size_line, strlen(size_line));
    sv_send(fd, body + off, n);
    sv_send(fd, "\r\n", 2);
  }
  sv_send(fd, "0\r\n\r\n", 5);
  char *answer = sv_recv(fd, 10000);
  close(fd);
  if (strncmp(answer, "HTTP/1.1 200", 12) != 0)
    fail_msg("chunked upload answered: %.300s", answer);
  free(answer);
  server_weights_expect_file(p, last, b2, len2, NULL);
  free(head);
  free(body);
  free(b2);
  free(key_h);
  free(url);
  free(b);
  free(last);
  free(id);
}

/* Uploads b (epoch `epoch`) as libchub does for a hub that takes the
 * digest after the file: the file part, the fields, then form field
 * x-chub-sha256 = `sha` last; `header` (NULL: none) goes as header
 * x-chub-sha256 too. The answer in *r. */
static void server_weights_sha_field(chubd_proc *p, const char *id,
                                     const unsigned char *b, size_t len,
                                     int epoch, const char *sha,
                                     const char *header, th_response *r) {
  size_t body_len;
  char *body = server_weights_file_first(b, len, "shafield", epoch, &body_len);
  /* Drop the closing boundary's "--\r\n" and add the digest field. */
  char *field = th_fmt("\r\nContent-Disposition: form-data; "
                       "name=\"x-chub-sha256\"\r\n\r\n%s\r\n--shafield--\r\n",
                       sha);
  body_len -= 4;
  char *all = malloc(body_len + strlen(field));
  memcpy(all, body, body_len);
  memcpy(all + body_len, field, strlen(field));
  body_len += strlen(field);
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), id);
  char *key_h = th_fmt("x-api-key: %s", chubd_proc_key(p));
  char *sha_h = header ? th_fmt("x-chub-sha256: %s", header) : NULL;
  const char *hdrs[] = {key_h,
                        "Content-Type: multipart/form-data; boundary=shafield",
                        sha_h, NULL};
  assert_int_equal(th_request_hdrs("POST", url, hdrs, all, body_len, r), 0);
  free(sha_h);
  free(key_h);
  free(url);
  free(all);
  free(field);
  free(body);
}

/* The SHA-256 as a last form field, after the file, so that a client
 * hashes while it sends and reads its file once: the right digest stores
 * the file; a wrong or malformed one, or one that disagrees with the
 * header, stores nothing. Every answer says chubd takes both ways. */
static void server_weights_digest_field(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "shafield.pt");
  char *last = th_fmt("/v1/models/%s/weights/last", id);
  size_t len = 90000;
  unsigned char *b = sv_bytes(len, 91);
  char sha[65];
  th_sha256_hex(b, len, sha);
  th_response r;
  server_weights_sha_field(p, id, b, len, 1, sha, NULL, &r);
  if (r.status != 200)
    fail_msg("upload with the digest after the file: %ld %.300s", r.status,
             r.body);
  char *modes = th_header(r.headers, "x-chub-sha256-modes");
  assert_non_null(modes);
  assert_non_null(strstr(modes, "part"));
  free(modes);
  th_response_free(&r);
  server_weights_expect_file(p, last, b, len, NULL);

  unsigned char *c = sv_bytes(len, 92);
  server_weights_sha_field(p, id, c, len, 2, sha, NULL, &r);
  if (r.status != 400 || !strstr(r.body, "mismatch"))
    fail_msg("a wrong digest after the file: %ld %.300s", r.status, r.body);
  th_response_free(&r);
  server_weights_sha_field(p, id, c, len, 2, "not-hex", NULL, &r);
  if (r.status != 400 || !strstr(r.body, "64 hex digits"))
    fail_msg("a malformed digest field: %ld %.300s", r.status, r.body);
  th_response_free(&r);
  char csha[65];
  th_sha256_hex(c, len, csha);
  server_weights_sha_field(p, id, c, len, 2, csha, sha, &r);
  if (r.status != 400 || !strstr(r.body, "differ"))
    fail_msg("digest header and field that differ: %ld %.300s", r.status,
             r.body);
  th_response_free(&r);
  /* None of the refused uploads left anything. */
  server_weights_expect_file(p, last, b, len, NULL);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 1);
  json_decref(m);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), c, len, 1), 0);
  free(c);
  free(b);
  free(last);
  free(id);
}

/* Two finals racing for one model: exactly one wins, the other gets 409,
 * and the best weights are the winner's bytes. */
typedef struct server_weights_racer {
  chubd_proc *p;
  const char *id;
  unsigned char *bytes;
  size_t len;
  long status;
} server_weights_racer;

static void *server_weights_race(void *arg) {
  server_weights_racer *w = arg;
  char *url =
      th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(w->p), w->id);
  const char *fields[] = {"epoch", "9", "type", "final", "map", "0.5", NULL};
  th_response r;
  w->status = th_upload(url, chubd_proc_key(w->p), fields, "best.pt", "best.pt",
                        w->bytes, w->len, NULL, NULL, &r) == 0
                  ? r.status
                  : -1;
  th_response_free(&r);
  free(url);
  return NULL;
}

static void server_weights_final_race(void **state) {
  chubd_proc *p = *state;
  for (int round = 0; round < 3; round++) {
    char *id = sv_create(p, chubd_proc_key(p), "race.pt");
    server_weights_racer w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
      w[i] = (server_weights_racer){p, id, NULL, 200000 + (size_t)i, 0};
      w[i].bytes = sv_bytes(w[i].len, 500 + (unsigned)(round * 2 + i));
      assert_int_equal(pthread_create(&t[i], NULL, server_weights_race, &w[i]),
                       0);
    }
    for (int i = 0; i < 2; i++)
      pthread_join(t[i], NULL);
    int winner = w[0].status == 200 ? 0 : 1;
    if (w[winner].status != 200 || w[1 - winner].status != 409)
      fail_msg("two finals answered %ld and %ld, expected 200 and 409",
               w[0].status, w[1].status);
    char *best = th_fmt("/v1/models/%s/weights/best", id);
    server_weights_expect_file(p, best, w[winner].bytes, w[winner].len, NULL);
    json_t *m = sv_model(p, chubd_proc_key(p), id);
    sv_assert_str(th_json_str(m, "status"), "trained");
    json_decref(m);
    assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), w[1 - winner].bytes,
                                   w[1 - winner].len, 0),
                     0);
    free(best);
    free(w[0].bytes);
    free(w[1].bytes);
    free(id);
  }
}

static void server_weights_range(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "range.pt");
  size_t len = 100000;
  unsigned char *b = sv_bytes(len, 20);
  th_response r;
  assert_int_equal(sv_upload(p, key, id, 0, "epoch", "False", b, len, NULL, &r),
                   200);
  th_response_free(&r);
  char *last = th_fmt("/v1/models/%s/weights/last", id);

  server_weights_dl dl;
  server_weights_get(p, last, "bytes=1000-1999", &dl);
  assert_int_equal(dl.r.status, 206);
  assert_int_equal(dl.r.body_len, 1000);
  assert_memory_equal(dl.r.body, b + 1000, 1000);
  char *cr = th_header(dl.r.headers, "Content-Range");
  assert_non_null(cr);
  assert_string_equal(cr, "bytes 1000-1999/100000");
  free(cr);
  assert_int_equal(strtoull(dl.length, NULL, 10), 1000);
  server_weights_dl_free(&dl);

  /* Open-ended: the resume case. */
  server_weights_get(p, last, "bytes=99000-", &dl);
  assert_int_equal(dl.r.status, 206);
  assert_int_equal(dl.r.body_len, 1000);
  assert_memory_equal(dl.r.body, b + 99000, 1000);
  cr = th_header(dl.r.headers, "Content-Range");
  assert_non_null(cr);
  assert_string_equal(cr, "bytes 99000-99999/100000");
  free(cr);
  server_weights_dl_free(&dl);

  /* A suffix range: the last 500 bytes. */
  server_weights_get(p, last, "bytes=-500", &dl);
  assert_int_equal(dl.r.status, 206);
  assert_int_equal(dl.r.body_len, 500);
  assert_memory_equal(dl.r.body, b + len - 500, 500);
  cr = th_header(dl.r.headers, "Content-Range");
  assert_non_null(cr);
  assert_string_equal(cr, "bytes 99500-99999/100000");
  free(cr);
  server_weights_dl_free(&dl);

  /* Beyond the end: 416, and (RFC 9110 "SHOULD") the size. */
  server_weights_get(p, last, "bytes=100000-100100", &dl);
  assert_int_equal(dl.r.status, 416);
  cr = th_header(dl.r.headers, "Content-Range");
  if (cr)
    assert_string_equal(cr, "bytes */100000");
  free(cr);
  server_weights_dl_free(&dl);

  free(last);
  free(b);
  free(id);
}

static void server_weights_half_body(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "half.pt");
  size_t len = 400000;
  unsigned char *b = sv_bytes(len, 30);
  size_t req_len;
  char *req = sv_raw_upload(id, key, b, len, &req_len);
  /* Half the body, then the connection closes: a crashed client. */
  sv_raw(chubd_proc_port(p), req, req_len / 2, 0);

  /* Whatever chubd does with the pieces, nothing may become visible: check
   * a few times over a second (bounded), not once. */
  char *last = th_fmt("/v1/models/%s/weights/last", id);
  for (int i = 0; i < 5; i++) {
    sv_sleep_ms(200);
    server_weights_expect_404(p, last);
    json_t *m = sv_model(p, key, id);
    assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 0);
    assert_int_equal(th_json_bool(m, "has_last_weights"), 0);
    json_decref(m);
  }
  /* No stored piece of it on disk either (a 4 KiB run from the first
   * half would be there if a partial file were kept). */
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), b + 1000, 4096, 1), 0);
  assert_true(sv_alive(p, 2000));

  /* The same request sent whole works: the raw request itself is valid. */
  char *answer = sv_raw(chubd_proc_port(p), req, req_len, 1);
  assert_non_null(answer);
  if (strncmp(answer, "HTTP/1.1 200", 12) != 0)
    fail_msg("whole raw upload answered: %.300s", answer);
  free(answer);
  server_weights_expect_file(p, last, b, len, NULL);
  free(last);
  free(req);
  free(b);
  free(id);
}

/* Uploads `fields` (with the file part when `file` is not NULL) and expects
 * a 400 whose message names `names` (NULL: any 400). */
static void server_weights_expect_400(const char *url, const char *key,
                                      const char *const *fields,
                                      const unsigned char *file,
                                      const char *names) {
  th_response r;
  assert_int_equal(th_upload(url, key, fields, file ? "last.pt" : NULL,
                             file ? "last.pt" : NULL, file, file ? 1000 : 0,
                             NULL, NULL, &r),
                   0);
  assert_int_equal(r.status, 400);
  if (names) {
    json_t *env = th_envelope(&r);
    assert_non_null(env);
    assert_true(sv_message_has(env, names));
    json_decref(env);
  }
  th_response_free(&r);
}

static void server_weights_bad_uploads(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "bad.pt");
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), id);
  unsigned char *b = sv_bytes(1000, 40);
  json_t *env;

  /* No epoch. */
  const char *no_epoch[] = {"type", "epoch", "isBest", "False", NULL};
  server_weights_expect_400(url, key, no_epoch, b, "epoch");
  /* isBest that is no boolean spelling. */
  const char *bad_best[] = {"epoch",  "1",   "type", "epoch",
                            "isBest", "yes", NULL};
  server_weights_expect_400(url, key, bad_best, b, "isBest");
  /* A negative epoch. */
  const char *neg_epoch[] = {"epoch", "-1", "type", "epoch", NULL};
  server_weights_expect_400(url, key, neg_epoch, b, NULL);
  /* No file part. */
  const char *no_file[] = {"epoch", "1", "type", "epoch", NULL};
  server_weights_expect_400(url, key, no_file, NULL, NULL);
  /* A type that is neither epoch nor final. */
  const char *bad_type[] = {"epoch", "1", "type", "weird", NULL};
  server_weights_expect_400(url, key, bad_type, b, "type");
  /* An epoch that is not an integer. */
  const char *bad_epoch[] = {"epoch", "three", "type", "epoch", NULL};
  server_weights_expect_400(url, key, bad_epoch, b, "epoch");
  /* A JSON body where multipart is expected. */
  char *path = th_fmt("/v1/models/%s/upload", id);
  long status = 0;
  env = sv_json(p, "POST", path, key, "{}", &status);
  json_decref(env);
  free(path);
  assert_true(status == 400 || status == 415);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), b, 1000, 0), 0);
  json_t *m = sv_model(p, key, id);
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 0);
  json_decref(m);
  free(b);
  free(url);
  free(id);
}

int main(void) {
  /* Threads below share libcurl: initialise it once, up front. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_weights_upload_download),
      cmocka_unit_test(server_weights_sha_mismatch),
      cmocka_unit_test(server_weights_bool_spellings),
      cmocka_unit_test(server_weights_large),
      cmocka_unit_test(server_weights_part_order_and_chunked),
      cmocka_unit_test(server_weights_digest_field),
      cmocka_unit_test(server_weights_final_race),
      cmocka_unit_test(server_weights_range),
      cmocka_unit_test(server_weights_half_body),
      cmocka_unit_test(server_weights_bad_uploads),
  };
  int rc = sv_suite_result(cmocka_run_group_tests_name(
      "server_weights", tests, sv_group_setup, sv_group_teardown));
  curl_global_cleanup();
  return rc;
}

/*
 * security_uploads.c - contract item 5, multipart uploads checked whole.
 *
 * A weights or dataset upload is stored only when its multipart body ends
 * with the closing boundary and carries exactly one non-empty file part.
 * A body cut before the closing boundary (while its Content-Length is
 * honest: the HTTP request itself is complete) is 400 with a message
 * containing "closing boundary"; no file part, an empty one or a second
 * one is 400 too. In every case nothing is stored: no checkpoint, the
 * dataset stays `new`, no file under DATA holds the bytes, DATA/blobs/.incoming
 * is empty. Each case has a positive control built the same way.
 */
#include "sec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zipbuild.h"

#define UP_BD "secboundary5a1f0c"
#define UP_CTYPE "multipart/form-data; boundary=" UP_BD
#define UP_CLOSE "\r\n--%s--\r\n"

typedef struct up_case {
  const char *what;
  int n_files;
  int empty;        /* the file part holds 0 bytes */
  const char *tail; /* what follows the last part */
  const char *must_say;
} up_case;

/* The refused shapes, for weights and datasets alike. */
static const up_case up_cases[] = {
    {"a body cut right after the file's bytes", 1, 0, "", "closing boundary"},
    {"a body cut after CRLF", 1, 0, "\r\n", "closing boundary"},
    {"a body ending in the boundary without its final --", 1, 0, "\r\n--%s\r\n",
     "closing boundary"},
    {"a body ending in \"--B\" with no \"--\" after it", 1, 0, "\r\n--%s",
     "closing boundary"},
    {"no file part", 0, 0, "--%s--\r\n", NULL},
    {"an empty file part", 1, 1, UP_CLOSE, NULL},
    {"two file parts", 2, 0, UP_CLOSE, NULL},
};

static const char *const up_weight_fields[] = {
    "epoch", "1", "type", "epoch", "isBest", "True", NULL};

/* Sends one multipart upload to path; returns the answer in *a. */
static void up_send(chubd_proc *p, const char *path, const char *key,
                    const char *const fields[], const char *file_field,
                    const char *file_name, const up_case *c, const void *data,
                    size_t len, sec_answer *a) {
  size_t body_len;
  char *body = sec_multipart(UP_BD, fields, c->n_files, file_field, file_name,
                             data, c->empty ? 0 : len, c->tail, &body_len);
  sec_post_raw(chubd_proc_port(p), path, key, UP_CTYPE, body, body_len, a);
  free(body);
}

/* What a refused upload must leave: nothing holding the bytes,
 * DATA/blobs/.incoming empty. */
static void up_nothing_stored(chubd_proc *p, const char *what,
                              const unsigned char *b, size_t len) {
  const char *data = chubd_proc_data_dir(p);
  int tmp = sec_tmp_empty(data, 3000);
  if (tmp)
    fail_msg("%s: %d temporary file(s) remain under DATA/blobs/.incoming", what,
             tmp);
  /* The bytes are distinctive: any file holding their first 4 KiB is a
   * stored (or leaked) copy. */
  int n = sv_files_gone(data, b, len < 4096 ? len : 4096, 1);
  if (n)
    fail_msg("%s: %d file(s) under DATA hold the refused bytes", what, n);
}

static void up_expect_refused(const char *what, const up_case *c,
                              sec_answer *a) {
  if (a->status != 400)
    fail_msg("%s with %s answered %ld; expected 400: %.300s", what, c->what,
             a->status, a->body ? a->body : "");
  sec_answer ans = *a;
  th_response r = {ans.status, ans.body, ans.body_len, ans.head};
  json_t *env = th_envelope(&r);
  if (!env)
    fail_msg("%s with %s: the 400 is not an envelope", what, c->what);
  if (c->must_say && !sv_message_has(env, c->must_say))
    fail_msg("%s with %s: the 400's message does not say \"%s\"", what, c->what,
             c->must_say);
  json_decref(env);
}

static chubd_proc *up_start(void) {
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  return sv_start(args);
}

static void up_weights(void **state) {
  (void)state;
  chubd_proc *p = up_start();
  const char *key = chubd_proc_key(p);
  size_t len = 70000;

  /* Control: the same builder with the closing boundary is stored. */
  char *ctl = sv_create(p, key, "control.pt");
  char *path = th_fmt("/v1/models/%s/upload", ctl);
  unsigned char *cb = sv_bytes(len, 500);
  up_case whole = {"a whole body", 1, 0, UP_CLOSE, NULL};
  sec_answer a;
  up_send(p, path, key, up_weight_fields, "last.pt", "last.pt", &whole, cb, len,
          &a);
  if (a.status != 200)
    fail_msg("control: a whole multipart upload answered %ld: %.300s", a.status,
             a.body);
  sec_answer_free(&a);
  free(path);

  for (size_t i = 0; i < sizeof up_cases / sizeof *up_cases; i++) {
    const up_case *c = &up_cases[i];
    char *id = sv_create(p, key, "refused.pt");
    path = th_fmt("/v1/models/%s/upload", id);
    unsigned char *b = sv_bytes(len, 501 + (unsigned)i);
    up_send(p, path, key, up_weight_fields, "last.pt", "last.pt", c, b, len,
            &a);
    char *what = th_fmt("weights upload (%s)", c->what);
    up_expect_refused("weights upload", c, &a);
    sec_answer_free(&a);
    json_t *m = sv_model(p, key, id);
    if (th_json_bool(m, "has_last_weights") != 0 ||
        json_array_size(th_json_at(m, "checkpoints")) != 0)
      fail_msg("%s: the model has a checkpoint after the 400", what);
    json_decref(m);
    up_nothing_stored(p, what, b, len);
    free(what);
    free(b);
    free(path);
    free(id);
  }
  assert_true(sv_alive(p, 2000));
  free(cb);
  free(ctl);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

static char *up_dataset(chubd_proc *p, const char *key, const char *name) {
  char *json = th_fmt("{\"meta\": {\"name\": \"%s\"}}", name);
  json_t *env = sv_expect(p, "POST", "/v1/datasets", key, json, 200);
  const char *id = th_json_str(env, "data.id");
  if (!id)
    fail_msg("POST /v1/datasets: no data.id");
  char *out = strdup(id);
  json_decref(env);
  free(json);
  return out;
}

static void up_datasets(void **state) {
  (void)state;
  chubd_proc *p = up_start();
  const char *key = chubd_proc_key(p);
  size_t len = 60000;

  /* Control. */
  char *ctl = up_dataset(p, key, "control");
  char *path = th_fmt("/v1/datasets/%s/upload", ctl);
  unsigned char *cb = sv_bytes(len, 600);
  zb_zip cz;
  zb_one("data/a.bin", cb, len, &cz);
  up_case whole = {"a whole body", 1, 0, UP_CLOSE, NULL};
  sec_answer a;
  up_send(p, path, key, NULL, "file", "control.zip", &whole, cz.buf, cz.len,
          &a);
  if (a.status != 200)
    fail_msg("control: a whole dataset upload answered %ld: %.300s", a.status,
             a.body);
  sec_answer_free(&a);
  free(path);

  for (size_t i = 0; i < sizeof up_cases / sizeof *up_cases; i++) {
    const up_case *c = &up_cases[i];
    char *id = up_dataset(p, key, "refused");
    path = th_fmt("/v1/datasets/%s/upload", id);
    unsigned char *b = sv_bytes(len, 601 + (unsigned)i);
    zb_zip z;
    zb_one("data/a.bin", b, len, &z);
    up_send(p, path, key, NULL, "file", "refused.zip", c, z.buf, z.len, &a);
    char *what = th_fmt("dataset upload (%s)", c->what);
    up_expect_refused("dataset upload", c, &a);
    sec_answer_free(&a);
    char *get = th_fmt("/v1/datasets/%s", id);
    json_t *env = sv_expect(p, "GET", get, key, NULL, 200);
    const char *status = th_json_str(env, "data.status");
    if (!status || strcmp(status, "new") != 0)
      fail_msg("%s: the dataset's status is %s after the 400, expected new",
               what, status ? status : "(none)");
    json_decref(env);
    up_nothing_stored(p, what, b, len);
    free(get);
    free(what);
    zb_free(&z);
    free(b);
    free(path);
    free(id);
  }
  assert_true(sv_alive(p, 2000));
  zb_free(&cz);
  free(cb);
  free(ctl);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(up_weights),
      cmocka_unit_test(up_datasets),
  };
  return cmocka_run_group_tests_name("security_uploads", tests, NULL, NULL);
}

/*
 * server_heldsync.c - one upload's slow fsync holds up no other upload.
 *
 * chubd makes each finished upload durable (fsync) before it links it in
 * as a blob. On a slow disk, or the network filesystem several chubd share
 * their blobs on, that fsync takes seconds for a large file, and the other
 * uploads must be stored meanwhile. The real chubd runs with fsynchold.c
 * preloaded: the fsync of any temporary of 1 MiB or more under
 * BLOBS/.incoming waits until this test lets it go. While a 4 MiB
 * checkpoint waits there, a small checkpoint of another model and a small
 * dataset are uploaded: each must be answered 200 while the big one is
 * still held. Then the big one is let go, answered 200, and all three are
 * downloadable with their bytes.
 */
#include "sv.h"
#include "th_tmpdir.h"
#include "zipbuild.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HELD_BIG (4u << 20)
#define HELD_MIN "1048576"

typedef struct held_upload {
  char *url, *key;
  unsigned char *bytes;
  atomic_int done; /* the answer came */
  long status;
  char body[512];
} held_upload;

static char gate[512];

/* The big checkpoint, on a thread of its own: its answer waits for the
 * release. No cmocka assertion runs here. */
static void *held_big(void *arg) {
  held_upload *u = arg;
  const char *fields[] = {"epoch",  "3",    "type", "epoch",
                          "isBest", "True", NULL};
  th_response r;
  if (th_upload(u->url, u->key, fields, "last.pt", "last.pt", u->bytes,
                HELD_BIG, NULL, NULL, &r) == 0) {
    u->status = r.status;
    snprintf(u->body, sizeof u->body, "%s", r.body ? r.body : "");
    th_response_free(&r);
  }
  atomic_store(&u->done, 1);
  return NULL;
}

static void held_release(void) {
  char *path = th_fmt("%s/release", gate);
  FILE *f = fopen(path, "w");
  if (f)
    fclose(f);
  free(path);
}

/* Waits (10 s at most) for the preloaded library to say it holds a sync. */
static int held_wait(void) {
  char *path = th_fmt("%s/held", gate);
  int ok = 0;
  for (int i = 0; i < 1000 && !ok; i++) {
    ok = access(path, F_OK) == 0;
    if (!ok)
      sv_sleep_ms(10);
  }
  free(path);
  return ok;
}

/* GET path with key: the bytes must be want/len. */
static void held_expect_bytes(chubd_proc *p, const char *key, const char *path,
                              const void *want, size_t len) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *hdr = th_fmt("x-api-key: %s", key);
  const char *hdrs[] = {hdr, NULL};
  th_response r;
  assert_int_equal(th_request_hdrs("GET", url, hdrs, NULL, 0, &r), 0);
  if (r.status != 200 || r.body_len != len || memcmp(r.body, want, len) != 0)
    fail_msg("GET %s: %ld, %zu bytes, want 200 and the %zu bytes uploaded",
             path, r.status, r.body_len, len);
  th_response_free(&r);
  free(hdr);
  free(url);
}

static void server_heldsync_others_stored(void **state) {
  (void)state;
  assert_int_equal(th_tmpdir_make(gate, sizeof gate, "chubd-heldsync"), 0);
  setenv("LD_PRELOAD", FSYNCHOLD_LIB, 1);
  setenv("FSYNCHOLD_MATCH", "/.incoming/", 1);
  setenv("FSYNCHOLD_MIN", HELD_MIN, 1);
  setenv("FSYNCHOLD_GATE", gate, 1);
  chubd_proc *p = chubd_proc_start(sv_chubd_bin(), NULL, NULL);
  unsetenv("LD_PRELOAD");
  assert_non_null(p);
  const char *key = chubd_proc_key(p);
  char *big_id = sv_create(p, key, "big.pt");
  char *small_id = sv_create(p, key, "small.pt");

  held_upload u = {.key = (char *)key, .bytes = sv_bytes(HELD_BIG, 71)};
  atomic_init(&u.done, 0);
  u.url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), big_id);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, held_big, &u), 0);
  if (!held_wait()) {
    held_release();
    pthread_join(t, NULL);
    fail_msg("the big upload's fsync was never held (answer %ld: %.200s)",
             u.status, u.body);
  }

  /* Another model's checkpoint, while the big one's fsync is held. */
  unsigned char *small = sv_bytes(1000, 72);
  th_response r;
  long st =
      sv_upload(p, key, small_id, 1, "epoch", "False", small, 1000, NULL, &r);
  int big_done = atomic_load(&u.done);
  if (st != 200 || big_done) {
    held_release();
    pthread_join(t, NULL);
    fail_msg("small checkpoint: %ld %.200s (big upload answered already: %d)",
             st, r.body, big_done);
  }
  th_response_free(&r);

  /* A dataset, too: datasets and weights share the blobs. */
  json_t *env = sv_expect(p, "POST", "/v1/datasets", key,
                          "{\"meta\": {\"name\": \"d\"}}", 200);
  char *ds = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  const char yaml[] = "path: .\ntrain: images\nval: images\nnames: {0: a}\n";
  zb_zip z;
  zb_one("data.yaml", yaml, sizeof yaml - 1, &z);
  char *ds_url = th_fmt("%s/v1/datasets/%s/upload", chubd_proc_base_url(p), ds);
  assert_int_equal(th_upload(ds_url, key, NULL, "d.zip", "d.zip", z.buf, z.len,
                             NULL, NULL, &r),
                   0);
  st = r.status;
  big_done = atomic_load(&u.done);
  if (st != 200 || big_done) {
    held_release();
    pthread_join(t, NULL);
    fail_msg("small dataset: %ld %.200s (big upload answered already: %d)", st,
             r.body, big_done);
  }
  th_response_free(&r);

  /* Let the big one go: it is stored as well. */
  held_release();
  pthread_join(t, NULL);
  if (u.status != 200)
    fail_msg("big checkpoint: %ld %.300s", u.status, u.body);

  char *path = th_fmt("/v1/models/%s/weights/last", big_id);
  held_expect_bytes(p, key, path, u.bytes, HELD_BIG);
  free(path);
  path = th_fmt("/v1/models/%s/weights/last", small_id);
  held_expect_bytes(p, key, path, small, 1000);
  free(path);
  path = th_fmt("/v1/datasets/%s", ds);
  json_t *d = sv_expect(p, "GET", path, key, NULL, 200);
  free(path);
  char hex[65];
  th_sha256_hex(z.buf, z.len, hex);
  sv_assert_str(th_json_str(d, "data.sha256"), hex);
  json_decref(d);

  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  zb_free(&z);
  free(ds_url);
  free(ds);
  free(small);
  free(u.bytes);
  free(u.url);
  free(big_id);
  free(small_id);
  th_tmpdir_remove(gate);
  gate[0] = '\0';
}

/* After a failure too: a sync still held is let go, so that chubd can
 * stop. */
static int held_teardown(void **state) {
  (void)state;
  if (gate[0])
    held_release();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(server_heldsync_others_stored, held_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

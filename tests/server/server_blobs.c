/*
 * server_blobs.c - conformance: --blobs, a weights directory several chubd
 * share, and `chubd gc`.
 *
 * Weights land in the --blobs directory and nowhere under --data; two
 * instances storing the same bytes at the same moment both succeed with
 * one file; gc removes only what no row names (and temporaries nobody
 * wrote to for --stale seconds), says what it did, and --dry-run removes
 * nothing. The step-by-step interleavings of removal against storing are
 * in blobs_test.c.
 */
#include "sv.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "th_tmpdir.h"

/* Regular files directly in dir whose name does not start with a dot. */
static int blobs_count(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char *path = th_fmt("%s/%s", dir, e->d_name);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
      n++;
    free(path);
  }
  closedir(d);
  return n;
}

static int blobs_exists(const char *dir, const char *name) {
  char *path = th_fmt("%s/%s", dir, name);
  int ok = access(path, F_OK) == 0;
  free(path);
  return ok;
}

static void blobs_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void server_blobs_elsewhere(void **state) {
  (void)state;
  char *shared = th_tmpdir_new("chub-blobs");
  const char *const extra[] = {"--blobs", shared, NULL};
  chubd_proc *p = sv_start(extra);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "elsewhere.pt");
  size_t len = 200000;
  unsigned char *b = sv_bytes(len, 3);
  char sha[65];
  th_sha256_hex(b, len, sha);
  th_response r;
  assert_int_equal(sv_upload(p, key, id, 1, "epoch", "True", b, len, NULL, &r),
                   200);
  th_response_free(&r);
  assert_true(blobs_exists(shared, sha));
  assert_int_equal(sv_files_equal(shared, b, len), 1);
  /* Nothing under --data holds the bytes. */
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), b, len, 0), 0);
  /* Served from there. */
  char *url =
      th_fmt("%s/v1/models/%s/weights/last", chubd_proc_base_url(p), id);
  long status = 0;
  assert_int_equal(
      th_request("GET", url, key, NULL, NULL, 0, &status, NULL, NULL), 0);
  assert_int_equal(status, 200);
  free(url);
  free(b);
  free(id);
  chubd_proc_free(p);
  th_rmtree(shared);
  free(shared);
}

typedef struct blobs_upload {
  chubd_proc *p;
  const unsigned char *bytes;
  size_t len;
  long status;
} blobs_upload;

static void *blobs_upload_main(void *arg) {
  blobs_upload *u = arg;
  const char *key = chubd_proc_key(u->p);
  char *id = sv_create(u->p, key, "twin.pt");
  th_response r;
  u->status =
      sv_upload(u->p, key, id, 1, "epoch", "True", u->bytes, u->len, NULL, &r);
  th_response_free(&r);
  free(id);
  return NULL;
}

/* Two instances, one blob directory, the same bytes at once: both stored,
 * one file, no temporary left. Repeated to give the two commits a chance
 * to meet. */
static void server_blobs_two_instances(void **state) {
  (void)state;
  char *shared = th_tmpdir_new("chub-blobs");
  const char *const extra[] = {"--blobs", shared, NULL};
  chubd_proc *a = sv_start(extra), *b = sv_start(extra);
  for (unsigned round = 0; round < 8; round++) {
    size_t len = 150000 + round;
    unsigned char *bytes = sv_bytes(len, 100 + round);
    blobs_upload ua = {a, bytes, len, 0}, ub = {b, bytes, len, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, blobs_upload_main, &ua), 0);
    assert_int_equal(pthread_create(&tb, NULL, blobs_upload_main, &ub), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(ua.status, 200);
    assert_int_equal(ub.status, 200);
    assert_int_equal(sv_files_equal(shared, bytes, len), 1);
    free(bytes);
  }
  assert_int_equal(blobs_count(shared), 8);
  char *inc = th_fmt("%s/.incoming", shared);
  assert_int_equal(blobs_count(inc), 0);
  free(inc);
  chubd_proc_free(a);
  chubd_proc_free(b);
  th_rmtree(shared);
  free(shared);
}

static void server_blobs_gc(void **state) {
  (void)state;
  char *shared = th_tmpdir_new("chub-blobs");
  const char *const extra[] = {"--blobs", shared, NULL};
  chubd_proc *p = sv_start(extra);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "kept.pt");
  size_t len = 100000;
  unsigned char *kept = sv_bytes(len, 5);
  char kept_sha[65];
  th_sha256_hex(kept, len, kept_sha);
  th_response r;
  assert_int_equal(
      sv_upload(p, key, id, 1, "epoch", "True", kept, len, NULL, &r), 200);
  th_response_free(&r);
  /* A blob no row names (a crash between storing it and its row, or a
   * model deleted by another version), a temporary nobody wrote to for two
   * days, and one being written now. */
  unsigned char *stray = sv_bytes(len, 6);
  char stray_sha[65];
  th_sha256_hex(stray, len, stray_sha);
  char *stray_path = th_fmt("%s/%s", shared, stray_sha);
  blobs_write(stray_path, stray, len);
  char *old_tmp = th_fmt("%s/.incoming/1@elsewhere.AAAAAA", shared);
  char *new_tmp = th_fmt("%s/.incoming/2@elsewhere.BBBBBB", shared);
  blobs_write(old_tmp, "part", 4);
  blobs_write(new_tmp, "part", 4);
  struct timeval two_days[2];
  gettimeofday(&two_days[0], NULL);
  two_days[0].tv_sec -= 2 * 86400;
  two_days[1] = two_days[0];
  assert_int_equal(utimes(old_tmp, two_days), 0);

  /* --dry-run says and removes nothing. */
  char *out = NULL;
  const char *const dry[] = {"--blobs", shared, "gc", "--dry-run", NULL};
  assert_int_equal(chubd_proc_cli(p, dry, &out), 0);
  assert_non_null(strstr(out, stray_sha));
  assert_null(strstr(out, kept_sha));
  assert_non_null(strstr(out, "1 unused would be removed"));
  free(out);
  assert_true(blobs_exists(shared, stray_sha));
  assert_int_equal(access(old_tmp, F_OK), 0);

  /* gc, while chubd serves. */
  const char *const gc[] = {"--blobs", shared, "gc", NULL};
  assert_int_equal(chubd_proc_cli(p, gc, &out), 0);
  assert_non_null(
      strstr(out, "gc: 1 blob(s) in use kept, 1 unused removed (100000 bytes), "
                  "1 stale temporary removed"));
  free(out);
  assert_false(blobs_exists(shared, stray_sha));
  assert_true(blobs_exists(shared, kept_sha));
  assert_int_equal(access(old_tmp, F_OK), -1);
  assert_int_equal(access(new_tmp, F_OK), 0);
  /* The kept checkpoint still downloads. */
  char *url =
      th_fmt("%s/v1/models/%s/weights/last", chubd_proc_base_url(p), id);
  long status = 0;
  assert_int_equal(
      th_request("GET", url, key, NULL, NULL, 0, &status, NULL, NULL), 0);
  assert_int_equal(status, 200);
  free(url);

  /* A bad argument names itself. */
  const char *const bad[] = {"--blobs", shared, "gc", "--stale", "soon", NULL};
  assert_int_equal(chubd_proc_cli(p, bad, NULL), 2);

  free(stray_path);
  free(old_tmp);
  free(new_tmp);
  free(stray);
  free(kept);
  free(id);
  chubd_proc_free(p);
  th_rmtree(shared);
  free(shared);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_blobs_elsewhere),
      cmocka_unit_test(server_blobs_two_instances),
      cmocka_unit_test(server_blobs_gc),
  };
  return cmocka_run_group_tests_name("server_blobs", tests, NULL, NULL);
}

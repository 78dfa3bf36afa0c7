/*
 * blobs_test.c - unit test of blobs.c against a real SQLite store: a blob
 * that a row names is never left missing, whatever order a remover on
 * one instance and a committer on another take their steps in, and a blob
 * nobody names is removed.
 *
 * The interleavings are driven step by step on one thread (the steps are
 * the same calls the two instances make), so each one is checked every
 * run rather than hoped for under load.
 */
#include <setjmp.h>
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blobs.h"
#include "store.h"
#include "th_tmpdir.h"

typedef struct fixture {
  char *dir;
  char blobs[4200];
  store *st;
} fixture;

static const char *SHA =
    "1111111111111111111111111111111111111111111111111111111111111111";

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = th_tmpdir_new("chub-blobs");
  assert_non_null(f->dir);
  snprintf(f->blobs, sizeof f->blobs, "%s/blobs", f->dir);
  char err[256];
  assert_int_equal(blobs_prepare(f->dir, f->blobs, 1, err, sizeof err), 0);
  f->st = store_sqlite_open(f->dir, err, sizeof err);
  assert_non_null(f->st);
  store_model m;
  memset(&m, 0, sizeof m);
  snprintf(m.id, sizeof m.id, "abcdefghij0123456789");
  snprintf(m.owner, sizeof m.owner, "owner");
  m.meta = m.config = m.dataset = m.lineage = "{}";
  assert_int_equal(f->st->ops->model_add(f->st, &m), STORE_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  f->st->ops->close(f->st);
  th_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* A finished upload in .incoming, as the committer holds it. */
static int upload_tmp(fixture *f, char *tmp, size_t n) {
  int fd = blobs_tmp_open(f->blobs, tmp, n);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "weights", 7), 7);
  return fd;
}

static void add_row(fixture *f) {
  store_checkpoint k;
  memset(&k, 0, sizeof k);
  k.epoch = 1;
  k.size = 7;
  memcpy(k.sha256, SHA, 65);
  assert_int_equal(
      f->st->ops->checkpoint_add(f->st, "abcdefghij0123456789", &k), STORE_OK);
}

static int blob_exists(fixture *f) {
  char path[4300];
  blobs_path(f->blobs, SHA, path, sizeof path);
  return access(path, F_OK) == 0;
}

/* Entries in .incoming (temporaries and graves), -1 without it. */
static int incoming_files(fixture *f) {
  char dir[4300];
  snprintf(dir, sizeof dir, "%s/.incoming", f->blobs);
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

/* Nobody names it: removed, and nothing stays behind. */
static void test_unused_is_removed(void **state) {
  fixture *f = *state;
  char tmp[4300];
  int fd = upload_tmp(f, tmp, sizeof tmp);
  assert_int_equal(blobs_seal(fd), 0);
  assert_int_equal(blobs_commit(f->blobs, tmp, SHA), 0);
  unlink(tmp); /* the row was refused */
  assert_true(blob_exists(f));
  assert_int_equal(blobs_drop_unused(f->blobs, f->st, SHA), 1);
  assert_false(blob_exists(f));
  assert_int_equal(incoming_files(f), 0);
  /* Gone already: nothing to do. */
  assert_int_equal(blobs_drop_unused(f->blobs, f->st, SHA), 0);
}

/* The remover looked before the committer's row and removed the blob
 * after the link: the committer's settle, after its row, puts it back. */
static void test_commit_races_removal(void **state) {
  fixture *f = *state;
  char tmp[4300];
  int fd = upload_tmp(f, tmp, sizeof tmp);
  assert_int_equal(blobs_seal(fd), 0);
  assert_int_equal(blobs_commit(f->blobs, tmp, SHA), 0);
  assert_int_equal(blobs_drop_unused(f->blobs, f->st, SHA), 1); /* A */
  assert_false(blob_exists(f));
  add_row(f);                       /* B records the row */
  blobs_settle(f->blobs, tmp, SHA); /* B checks after its row */
  assert_true(blob_exists(f));
  assert_int_equal(incoming_files(f), 0);
  /* From now on a remover keeps it. */
  assert_int_equal(blobs_drop_unused(f->blobs, f->st, SHA), 0);
  assert_true(blob_exists(f));
}

/* A blob already there (another instance stored the same bytes): the
 * commit keeps it, and the row keeps it from any remover. */
static void test_commit_onto_existing(void **state) {
  fixture *f = *state;
  char tmp1[4300], tmp2[4300];
  int fd1 = upload_tmp(f, tmp1, sizeof tmp1);
  int fd2 = upload_tmp(f, tmp2, sizeof tmp2);
  assert_int_equal(blobs_seal(fd1), 0);
  assert_int_equal(blobs_commit(f->blobs, tmp1, SHA), 0);
  assert_int_equal(blobs_seal(fd2), 0);
  assert_int_equal(blobs_commit(f->blobs, tmp2, SHA), 0);
  add_row(f);
  blobs_settle(f->blobs, tmp1, SHA);
  blobs_settle(f->blobs, tmp2, SHA);
  assert_true(blob_exists(f));
  assert_int_equal(incoming_files(f), 0);
  assert_int_equal(blobs_drop_unused(f->blobs, f->st, SHA), 0);
  assert_true(blob_exists(f));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unused_is_removed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_races_removal, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_commit_onto_existing, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("blobs", tests, NULL, NULL);
}

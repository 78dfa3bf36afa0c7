/*
 * security_disk_full.c - contract item 9, disk full answers 507.
 *
 * chubd's data directory lives on a tiny tmpfs (8 MiB) mounted in a
 * private mount namespace of this test, so nothing outside sees it. Once
 * the tmpfs is filled up, a database write (a metrics post) answers 507
 * with a message, never a bare 500; no write answers 500 while the disk is
 * full, and chubd keeps serving. When the space comes back, writes succeed
 * again without a restart.
 *
 * Needs root (mount). Without it, or where unshare(CLONE_NEWNS) or the
 * mount is not permitted, the test exits 77: skipped.
 */
#include "sec.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define DF_SKIP 77

static char df_mnt[4096];

/* Fills the tmpfs with one file until ENOSPC; returns its path. */
static char *df_fill(void) {
  char *path = th_fmt("%s/filler", df_mnt);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    fail_msg("cannot create %s: %s", path, strerror(errno));
  static char block[65536];
  memset(block, 0x5a, sizeof block);
  size_t total = 0;
  /* Bounded by the tmpfs size; smaller writes take the last pages. */
  for (size_t bs = sizeof block; bs >= 512; bs /= 2) {
    for (int i = 0; i < 100000; i++) {
      ssize_t w = write(fd, block, bs);
      if (w <= 0)
        break;
      total += (size_t)w;
    }
  }
  close(fd);
  fprintf(stderr, "security_disk_full: filler holds %zu bytes\n", total);
  return path;
}

/* A metrics body of 300 epochs from `start` with 8 fields each. */
static char *df_metrics(long start) {
  json_t *m = json_object();
  for (long e = start; e < start + 300; e++) {
    char k[24], v[400];
    snprintf(k, sizeof k, "%ld", e);
    snprintf(v, sizeof v,
             "{\"loss\": %ld.25, \"metrics/accuracy_top1\": 0.%ld, "
             "\"metrics/accuracy_top5\": 0.%ld, \"val/loss\": %ld.5, "
             "\"lr/pg0\": 0.001, \"lr/pg1\": 0.002, \"lr/pg2\": 0.003, "
             "\"train/box_loss\": %ld.75}",
             e, e % 97, e % 89, e, e);
    json_object_set_new(m, k, json_string(v));
  }
  char *s = json_dumps(m, JSON_COMPACT);
  json_decref(m);
  return s;
}

static void df_disk_full(void **state) {
  (void)state;
  char *data = th_fmt("%s/data", df_mnt);
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  chubd_proc *p = chubd_proc_start(sv_chubd_bin(), data, args);
  if (!p)
    fail_msg("chubd did not start on the tmpfs");
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "full.pt");
  char *m = df_metrics(0);
  assert_int_equal(sv_metrics(p, key, id, m), 200);
  free(m);

  char *filler = df_fill();
  /* Writes until one is refused (bounded: 30 posts of ~90 KB, more than
   * the tmpfs holds); the refusal must be 507 with a message. */
  long status = 200, next = 1000;
  json_t *env = NULL;
  for (int i = 0; i < 30 && status == 200; i++, next += 1000) {
    m = df_metrics(next);
    char *path = th_fmt("/v1/models/%s", id);
    char *body = th_fmt("{\"type\": \"metrics\", \"metrics\": %s}", m);
    json_decref(env);
    env = sv_json(p, "POST", path, key, body, &status);
    free(body);
    free(path);
    free(m);
  }
  if (status == 200)
    fail_msg("30 metrics posts on a full disk all answered 200 (the test "
             "could not fill the disk)");
  const char *msg = th_json_str(env, "message");
  fprintf(stderr, "security_disk_full: metrics post on a full disk: %ld %s\n",
          status, msg ? msg : "");
  if (status != 507)
    fail_msg("a metrics post on a full disk answered %ld (\"%s\"); expected "
             "507 with a message",
             status, msg ? msg : "");
  if (!msg || !*msg)
    fail_msg("the 507 has no message");
  json_decref(env);

  /* Other writes while full: never a 500. A weights upload needs new
   * space for certain: 507, and no temporary file is left. */
  unsigned char *b = sv_bytes(300000, 9);
  th_response r;
  long st = sv_upload(p, key, id, 3, "epoch", "False", b, 300000, NULL, &r);
  th_response_free(&r);
  if (st != 507)
    fail_msg("a weights upload on a full disk answered %ld; expected 507", st);
  if (sec_tmp_empty(data, 3000))
    fail_msg(
        "the refused upload left a temporary file under DATA/blobs/.incoming");
  env = sv_json(p, "POST", "/v1/models", key,
                "{\"meta\": {\"name\": \"x.pt\"}, \"config\": {\"epochs\": "
                "1}}",
                &st);
  json_decref(env);
  if (st != 200 && st != 507)
    fail_msg("POST /v1/models on a full disk answered %ld; expected 507 (or "
             "200 if it fit)",
             st);
  assert_true(sv_alive(p, 2000));

  /* Space returns: the same post succeeds again, without a restart
   * (bounded: 5 s). */
  assert_int_equal(unlink(filler), 0);
  long again = 0;
  long deadline = sec_now_ms() + 5000;
  m = df_metrics(50000);
  while (sec_now_ms() < deadline) {
    again = sv_metrics(p, key, id, m);
    if (again == 200)
      break;
    sv_sleep_ms(200);
  }
  free(m);
  if (again != 200)
    fail_msg("after space returned, a metrics post still answers %ld", again);
  /* The post after recovery is there: the last epoch read back. */
  char *path = th_fmt("/v1/models/%s/metrics", id);
  env = sv_expect(p, "GET", path, key, NULL, 200);
  json_t *rows = th_json_at(env, "data");
  size_t n = json_array_size(rows);
  if (n == 0 || th_json_int(json_array_get(rows, n - 1), "epoch", -1) != 50299)
    fail_msg("after recovery, the metrics read back do not end at epoch "
             "50299 (%zu records)",
             n);
  json_decref(env);
  free(path);
  st = sv_upload(p, key, id, 4, "epoch", "False", b, 300000, NULL, &r);
  th_response_free(&r);
  if (st != 200)
    fail_msg("after space returned, a weights upload answers %ld", st);
  char *id2 = sv_create(p, key, "after.pt");
  free(id2);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
  free(b);
  free(filler);
  free(id);
  free(data);
}

int main(void) {
  if (chubd_proc_pg_dir()) {
    /* The tmpfs holds the data directory; on PostgreSQL the database is
     * elsewhere (the test cluster), so filling the tmpfs fills nothing a
     * metrics post writes to. */
    fprintf(stderr, "security_disk_full: the store is PostgreSQL, whose "
                    "files are not on the data directory; skipped\n");
    return DF_SKIP;
  }
  if (getuid() != 0) {
    fprintf(stderr, "security_disk_full: needs root to mount a tmpfs in a "
                    "private mount namespace; skipped\n");
    return DF_SKIP;
  }
  /* Before any thread exists: unshare(CLONE_NEWNS) needs an unshared
   * filesystem context. */
  if (unshare(CLONE_NEWNS) != 0) {
    fprintf(stderr, "security_disk_full: unshare(CLONE_NEWNS): %s; skipped\n",
            strerror(errno));
    return DF_SKIP;
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    fprintf(stderr, "security_disk_full: making / private: %s; skipped\n",
            strerror(errno));
    return DF_SKIP;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(df_mnt, sizeof df_mnt, "%s/chub-sec-full-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(df_mnt)) {
    fprintf(stderr, "security_disk_full: mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  if (mount("tmpfs", df_mnt, "tmpfs", MS_NOSUID | MS_NODEV,
            "size=8m,mode=0700") != 0) {
    fprintf(stderr, "security_disk_full: mount tmpfs: %s; skipped\n",
            strerror(errno));
    rmdir(df_mnt);
    return DF_SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(df_disk_full),
  };
  int rc = cmocka_run_group_tests_name("security_disk_full", tests, NULL, NULL);
  if (umount2(df_mnt, MNT_DETACH) != 0)
    fprintf(stderr, "security_disk_full: umount %s: %s\n", df_mnt,
            strerror(errno));
  rmdir(df_mnt);
  return rc;
}

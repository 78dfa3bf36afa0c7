/*
 * e2e_pull.c - `chub pull` against the real chubd.
 *
 * A model gets known bytes as an epoch checkpoint (twice for one epoch), a
 * best epoch checkpoint and a final upload; `chub pull` of --best, --last
 * and --epoch N must then leave exactly those bytes under the name the
 * signed download URL gives. A cut download (the first half in FILE.part)
 * must resume with a Range request; a FILE.part holding other bytes, too
 * short or too long, must be discarded and the file fetched again; bytes
 * the hub serves wrongly (its blob rewritten on disk) must never become
 * FILE. Another owner's model and an unknown id fail with a message that
 * says so; a bad command line exits 2.
 *
 * chub runs as a child process in a scratch directory of its own, with its
 * own settings directory (CHUB_CONFIG_DIR) and the key saved there by
 * `chub login`, so the user's settings are never read.
 */
#include "chubd_proc.h"
#include "th.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define PULL_TIMEOUT_S 120 /* a few MB on loopback, even sanitized */

typedef struct pull_blob {
  unsigned char *bytes;
  size_t len;
  char sha[65];
} pull_blob;

/* One chubd, one model with checkpoints and the directories for the whole
 * file. */
typedef struct pull_t {
  chubd_proc *hub;
  char tmp[256];
  char config[300]; /* CHUB_CONFIG_DIR */
  char work[300];   /* chub's current directory */
  char *id;         /* the owner's model, with every kind of weights */
  pull_blob a;      /* epoch 1, isBest */
  pull_blob c0;     /* epoch 3, first upload */
  pull_blob c;      /* epoch 3 again, later: the last weights */
  pull_blob b;      /* final: the best weights */
  char *out, *err;  /* the last run's stdout and stderr */
} pull_t;

/* Deterministic bytes: a different stream for each seed. */
static void pull_make(pull_blob *blob, size_t len, uint64_t seed) {
  blob->bytes = malloc(len);
  assert_non_null(blob->bytes);
  blob->len = len;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    blob->bytes[i] = (unsigned char)(x >> 24);
  }
  th_sha256_hex(blob->bytes, len, blob->sha);
}

static char *pull_slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, fp);
  buf[got] = '\0';
  fclose(fp);
  if (len)
    *len = got;
  return buf;
}

static void pull_write(const char *path, const void *bytes, size_t len) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(bytes, 1, len, fp), len);
  assert_int_equal(fclose(fp), 0);
}

static bool pull_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Runs `chub pull ARGS` (or another command when args[0] is not "pull")
 * in t->work with the test environment plus `extra_env` ("K=V" strings,
 * NULL-terminated, may be NULL); returns its exit status with its output
 * in t->out and t->err. */
static int pull_run(pull_t *t, const char *const args[],
                    const char *const extra_env[]) {
  free(t->out);
  free(t->err);
  t->out = t->err = NULL;
  char out_path[400], err_path[400];
  snprintf(out_path, sizeof out_path, "%s/stdout", t->tmp);
  snprintf(err_path, sizeof err_path, "%s/stderr", t->tmp);
  const char *argv[32] = {CHUB_BIN};
  size_t n = 1;
  for (size_t i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || chdir(t->work) != 0)
      _exit(126);
    dup2(o, 1);
    dup2(e, 2);
    setenv("CHUB_TESTING", "1", 1);
    setenv("CHUB_CONFIG_DIR", t->config, 1);
    setenv("CHUB_API_ROOT", chubd_proc_base_url(t->hub), 1);
    unsetenv("CHUB_API_KEY"); /* the key saved by `chub login` */
    unsetenv("CHUB_WEB_ROOT");
    unsetenv("CHUB_MODE");
    for (size_t i = 0; extra_env && extra_env[i]; i++)
      putenv((char *)extra_env[i]);
    execv(CHUB_BIN, (char *const *)argv);
    _exit(127);
  }
  int status = 0, done = 0;
  for (int i = 0; i < PULL_TIMEOUT_S * 100 && !done; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid)
      done = 1;
    else
      nanosleep(&(struct timespec){0, 10000000L}, NULL);
  }
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  t->out = pull_slurp(out_path, NULL);
  t->err = pull_slurp(err_path, NULL);
  fprintf(stderr, "---- chub");
  for (size_t i = 1; argv[i]; i++)
    fprintf(stderr, " %s", argv[i]);
  fprintf(stderr, " ----\n%s%s", t->out ? t->out : "", t->err ? t->err : "");
  if (!done)
    fail_msg("chub did not finish in %d s", PULL_TIMEOUT_S);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    if (!strstr((hay) ? (hay) : "", (needle)))                                 \
      fail_msg("expected '%s' in:\n%s", (needle), (hay) ? (hay) : "");         \
  } while (0)

/* Uploads `blob` to model `id` as multipart (hub-api.md), failing the test
 * unless the hub stored exactly it. */
static void pull_upload(const pull_t *t, const char *key, const char *id,
                        const char *type, int epoch, const char *best,
                        const pull_blob *blob) {
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(t->hub), id);
  char ep[16];
  snprintf(ep, sizeof ep, "%d", epoch);
  bool final = !strcmp(type, "final");
  const char *fields[] = {"epoch", ep,  "type", type, final ? "map" : "isBest",
                          best,    NULL};
  th_response r = {0};
  const char *name = final ? "best.pt" : "last.pt";
  assert_int_equal(th_upload(url, key, fields, name, name, blob->bytes,
                             blob->len, NULL, NULL, &r),
                   0);
  if (r.status != 200)
    fail_msg("upload %s epoch %d: %ld %.300s", type, epoch, r.status, r.body);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  assert_string_equal(th_json_str(env, "data.sha256"), blob->sha);
  json_decref(env);
  th_response_free(&r);
  free(url);
}

/* The name the contract gives a download: {id}-{what}-{sha8}.pt. */
static char *pull_name(const char *id, const char *what, const pull_blob *b) {
  return th_fmt("%s-%s-%.8s.pt", id, what, b->sha);
}

/* Checks that the last run saved exactly `blob` as `name` in t->work (or
 * at `path` when not NULL), said so on stdout, and left no part behind. */
static void pull_assert_saved(const pull_t *t, const char *name,
                              const char *path, const pull_blob *blob) {
  char *full = path ? strdup(path) : th_fmt("%s/%s", t->work, name);
  size_t len = 0;
  char *got = pull_slurp(full, &len);
  if (!got)
    fail_msg("%s was not saved", full);
  assert_int_equal(len, blob->len);
  assert_memory_equal(got, blob->bytes, blob->len);
  free(got);
  char *line = th_fmt("chub: saved %s (%zu bytes, sha256 %s)\n",
                      path ? path : name, blob->len, blob->sha);
  assert_string_equal(t->out, line);
  free(line);
  char *part = th_fmt("%s.part", full);
  assert_false(pull_exists(part));
  free(part);
  free(full);
}

/* How many times chubd's --verbose log shows a 206 for a path containing
 * `name`. */
static int pull_log_206(const pull_t *t, const char *name) {
  char *log = pull_slurp(chubd_proc_log_path(t->hub), NULL);
  int n = 0;
  for (const char *p = log; p && (p = strstr(p, name)); p++) {
    const char *eol = strchr(p, '\n');
    const char *hit = strstr(p, " 206 ");
    if (hit && (!eol || hit < eol))
      n++;
  }
  free(log);
  return n;
}

static int pull_setup(void **state) {
  static pull_t t;
  snprintf(t.tmp, sizeof t.tmp, "%s/chub-e2e-pull-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(t.tmp))
    return -1;
  snprintf(t.config, sizeof t.config, "%s/config", t.tmp);
  snprintf(t.work, sizeof t.work, "%s/work", t.tmp);
  if (mkdir(t.config, 0700) != 0 || mkdir(t.work, 0700) != 0)
    return -1;
  /* --verbose: the log shows which downloads were served as 206. */
  const char *const extra[] = {"--verbose", NULL};
  t.hub = chubd_proc_start(CHUBD_BIN, NULL, extra);
  if (!t.hub)
    return -1;
  *state = &t;
  const char *key = chubd_proc_key(t.hub);
  t.id = th_create_model(chubd_proc_base_url(t.hub), key, "pull.pt");
  if (!t.id)
    return -1;
  /* Sizes a little off round numbers, so a half is not a block boundary. */
  pull_make(&t.a, (3 << 20) + 11, 1);
  pull_make(&t.c0, (1 << 20) + 5, 2);
  pull_make(&t.c, (2 << 20) + 123, 3);
  pull_make(&t.b, (4 << 20) + 7, 4);
  pull_upload(&t, key, t.id, "epoch", 1, "True", &t.a);
  pull_upload(&t, key, t.id, "epoch", 3, "False", &t.c0);
  /* A second upload of epoch 3 (a resumed run) a second later, so its
   * created_at is the newer one. */
  nanosleep(&(struct timespec){1, 100000000L}, NULL);
  pull_upload(&t, key, t.id, "epoch", 3, "False", &t.c);
  pull_upload(&t, key, t.id, "final", 3, "0.9", &t.b);
  /* The key is saved in the temporary settings the way a person would. */
  if (pull_run(&t, (const char *[]){"login", key, NULL}, NULL) != 0)
    return -1;
  return 0;
}

static int pull_teardown(void **state) {
  pull_t *t = *state;
  if (!t)
    return 0;
  chubd_proc_free(t->hub);
  if (!getenv("CHUB_KEEP_TMP"))
    chubd_proc_rmtree(t->tmp);
  free(t->out);
  free(t->err);
  free(t->id);
  free(t->a.bytes), free(t->b.bytes), free(t->c.bytes), free(t->c0.bytes);
  return 0;
}

/* Removes what the last test left in the work directory. */
static void pull_clean_work(const pull_t *t) {
  DIR *d = opendir(t->work);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char *p = th_fmt("%s/%s", t->work, e->d_name);
    chubd_proc_rmtree(p);
    free(p);
  }
  closedir(d);
}

/* The work directory holds nothing. */
static void pull_assert_work_empty(const pull_t *t) {
  DIR *d = opendir(t->work);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      fail_msg("%s left behind in %s", e->d_name, t->work);
  closedir(d);
}

static void pull_bad_command_lines_exit_2(void **state) {
  pull_t *t = *state;
  pull_clean_work(t);
  const char *const bad[][6] = {
      {"pull", NULL},
      {"pull", t->id, "--epoch", NULL},
      {"pull", t->id, "--epoch", "three", NULL},
      {"pull", t->id, "--epoch", "-1", NULL},
      {"pull", t->id, "--epoch", "2x", NULL},
      {"pull", t->id, "--bogus", NULL},
      {"pull", t->id, "--best", "--last", NULL},
      {"pull", t->id, "--last", "--epoch", "1", NULL},
      {"pull", t->id, "-o", NULL},
      {"pull", t->id, t->id, NULL},
      {"pull", "notamodel", NULL},
      {"pull", "http://127.0.0.1:1/runs/abc", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(pull_run(t, bad[i], NULL), 2);
    ASSERT_CONTAINS(t->err, "chub: pull");
    ASSERT_CONTAINS(t->err, "usage:");
    assert_string_equal(t->out, "");
  }
  pull_assert_work_empty(t);
  assert_int_equal(pull_run(t, (const char *[]){"pull", "--help", NULL}, NULL),
                   0);
  ASSERT_CONTAINS(t->out, "--epoch N");
}

static void pull_best_last_and_epochs(void **state) {
  pull_t *t = *state;
  pull_clean_work(t);
  char *best = pull_name(t->id, "best", &t->b);
  char *last = pull_name(t->id, "last", &t->c);
  char *ep1 = pull_name(t->id, "epoch1", &t->a);
  char *ep3 = pull_name(t->id, "epoch3", &t->c);

  /* The default is --best. */
  assert_int_equal(pull_run(t, (const char *[]){"pull", t->id, NULL}, NULL), 0);
  pull_assert_saved(t, best, NULL, &t->b);
  pull_clean_work(t);
  /* The model URL works as the id does. */
  char *url = th_fmt("%s/models/%s", chubd_proc_base_url(t->hub), t->id);
  assert_int_equal(
      pull_run(t, (const char *[]){"pull", url, "--best", NULL}, NULL), 0);
  pull_assert_saved(t, best, NULL, &t->b);
  free(url);

  assert_int_equal(
      pull_run(t, (const char *[]){"pull", "--last", t->id, NULL}, NULL), 0);
  pull_assert_saved(t, last, NULL, &t->c);
  assert_int_equal(
      pull_run(t, (const char *[]){"pull", t->id, "--epoch", "1", NULL}, NULL),
      0);
  pull_assert_saved(t, ep1, NULL, &t->a);
  /* Epoch 3 has two epoch checkpoints and the final: the newer epoch
   * checkpoint is the one. */
  assert_int_equal(
      pull_run(t, (const char *[]){"pull", t->id, "--epoch", "3", NULL}, NULL),
      0);
  pull_assert_saved(t, ep3, NULL, &t->c);

  /* -o names the file, in another directory; an existing file there is
   * replaced. */
  char *sub = th_fmt("%s/sub", t->work);
  assert_int_equal(mkdir(sub, 0700), 0);
  char *dest = th_fmt("%s/weights.pt", sub);
  pull_write(dest, "old", 3);
  assert_int_equal(pull_run(t,
                            (const char *[]){"pull", t->id, "--epoch", "1",
                                             "-o", dest, NULL},
                            NULL),
                   0);
  pull_assert_saved(t, NULL, dest, &t->a);
  free(dest);
  free(sub);
  free(best), free(last), free(ep1), free(ep3);
}

static void pull_resumes_a_cut_download(void **state) {
  pull_t *t = *state;
  pull_clean_work(t);
  char *best = pull_name(t->id, "best", &t->b);
  char *part = th_fmt("%s/%s.part", t->work, best);
  int before = pull_log_206(t, best);
  pull_write(part, t->b.bytes, t->b.len / 2);
  assert_int_equal(pull_run(t, (const char *[]){"pull", t->id, NULL}, NULL), 0);
  char *from = th_fmt("from byte %zu", t->b.len / 2);
  ASSERT_CONTAINS(t->err, from);
  free(from);
  pull_assert_saved(t, best, NULL, &t->b);
  /* The hub served the rest as a range, not the whole file again. */
  assert_int_equal(pull_log_206(t, best), before + 1);
  free(part);
  free(best);
}

static void pull_recovers_from_a_wrong_part(void **state) {
  pull_t *t = *state;
  char *last = pull_name(t->id, "last", &t->c);
  char *part = th_fmt("%s/%s.part", t->work, last);
  /* Other bytes, half the size: resumed, found wrong, fetched again. Then
   * the whole size and longer: the hub cannot resume past the end (416). */
  const size_t sizes[] = {t->c.len / 2, t->c.len, t->c.len + 100};
  const char *says[] = {"does not match the SHA-256", "cannot resume",
                        "cannot resume"};
  for (size_t i = 0; i < 3; i++) {
    pull_clean_work(t);
    pull_blob junk;
    pull_make(&junk, sizes[i], 99 + i);
    pull_write(part, junk.bytes, junk.len);
    free(junk.bytes);
    assert_int_equal(
        pull_run(t, (const char *[]){"pull", t->id, "--last", NULL}, NULL), 0);
    ASSERT_CONTAINS(t->err, says[i]);
    ASSERT_CONTAINS(t->err, "downloading it again");
    pull_assert_saved(t, last, NULL, &t->c);
  }
  free(part);
  free(last);
}

static void pull_refuses_what_the_key_cannot_see(void **state) {
  pull_t *t = *state;
  pull_clean_work(t);
  char *bob = chubd_proc_create_key(t->hub, "bob");
  assert_non_null(bob);
  char *other = th_create_model(chubd_proc_base_url(t->hub), bob, "bob.pt");
  assert_non_null(other);
  pull_blob d;
  pull_make(&d, (1 << 20) + 3, 7);
  pull_upload(t, bob, other, "final", 0, "0.5", &d);

  assert_int_equal(pull_run(t, (const char *[]){"pull", other, NULL}, NULL), 1);
  ASSERT_CONTAINS(t->err, other);
  ASSERT_CONTAINS(t->err, "not found");
  assert_int_equal(
      pull_run(t,
               (const char *[]){"pull", "AAAAAAAAAAAAAAAAAAAA", "--last", NULL},
               NULL),
      1);
  ASSERT_CONTAINS(t->err, "AAAAAAAAAAAAAAAAAAAA not found");
  pull_assert_work_empty(t);

  /* Bob's key in the URL reaches Bob's model; so does CHUB_API_KEY. */
  char *url = th_fmt("%s/models/%s?api_key=%s", chubd_proc_base_url(t->hub),
                     other, bob);
  assert_int_equal(pull_run(t, (const char *[]){"pull", url, NULL}, NULL), 0);
  char *name = pull_name(other, "best", &d);
  pull_assert_saved(t, name, NULL, &d);
  pull_clean_work(t);
  char *env = th_fmt("CHUB_API_KEY=%s", bob);
  assert_int_equal(pull_run(t, (const char *[]){"pull", other, NULL},
                            (const char *[]){env, NULL}),
                   0);
  pull_assert_saved(t, name, NULL, &d);
  free(env);
  free(name);
  free(url);
  free(d.bytes);
  free(other);
  free(bob);
}

static void pull_says_what_is_missing(void **state) {
  pull_t *t = *state;
  pull_clean_work(t);
  char *empty = th_create_model(chubd_proc_base_url(t->hub),
                                chubd_proc_key(t->hub), "empty.pt");
  assert_non_null(empty);
  assert_int_equal(pull_run(t, (const char *[]){"pull", empty, NULL}, NULL), 1);
  ASSERT_CONTAINS(t->err, "no best weights");
  assert_int_equal(
      pull_run(t, (const char *[]){"pull", empty, "--last", NULL}, NULL), 1);
  ASSERT_CONTAINS(t->err, "no last weights");
  assert_int_equal(
      pull_run(t, (const char *[]){"pull", t->id, "--epoch", "7", NULL}, NULL),
      1);
  ASSERT_CONTAINS(t->err, "no checkpoint of epoch 7");
  ASSERT_CONTAINS(t->err, "1, 3");
  pull_assert_work_empty(t);
  free(empty);
}

static void pull_never_saves_wrong_bytes(void **state) {
  pull_t *t = *state;
  pull_clean_work(t);
  const char *key = chubd_proc_key(t->hub);
  char *id = th_create_model(chubd_proc_base_url(t->hub), key, "bad.pt");
  assert_non_null(id);
  pull_blob d;
  pull_make(&d, (2 << 20) + 1, 11);
  pull_upload(t, key, id, "final", 0, "0.5", &d);
  /* The hub's stored blob rewritten behind its back: same size, other
   * bytes. The hub still lists (and signs) the original SHA-256. */
  char *blob = th_fmt("%s/blobs/%s", chubd_proc_data_dir(t->hub), d.sha);
  assert_true(pull_exists(blob));
  pull_blob rot;
  pull_make(&rot, d.len, 12);
  char *tmp = th_fmt("%s.rot", blob);
  pull_write(tmp, rot.bytes, rot.len);
  assert_int_equal(rename(tmp, blob), 0);
  char *name = pull_name(id, "best", &d);

  assert_int_equal(pull_run(t, (const char *[]){"pull", id, NULL}, NULL), 1);
  ASSERT_CONTAINS(t->err, "SHA-256");
  ASSERT_CONTAINS(t->err, "nothing saved");
  pull_assert_work_empty(t);
  /* Also when a part was there to resume: one fresh try, then give up. */
  char *part = th_fmt("%s/%s.part", t->work, name);
  pull_write(part, d.bytes, d.len / 2);
  assert_int_equal(pull_run(t, (const char *[]){"pull", id, NULL}, NULL), 1);
  ASSERT_CONTAINS(t->err, "downloading it again");
  ASSERT_CONTAINS(t->err, "nothing saved");
  pull_assert_work_empty(t);
  free(part);
  free(name);
  free(tmp);
  free(blob);
  free(rot.bytes);
  free(d.bytes);
  free(id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pull_bad_command_lines_exit_2),
      cmocka_unit_test(pull_best_last_and_epochs),
      cmocka_unit_test(pull_resumes_a_cut_download),
      cmocka_unit_test(pull_recovers_from_a_wrong_part),
      cmocka_unit_test(pull_refuses_what_the_key_cannot_see),
      cmocka_unit_test(pull_says_what_is_missing),
      cmocka_unit_test(pull_never_saves_wrong_bytes),
  };
  return cmocka_run_group_tests(tests, pull_setup, pull_teardown);
}

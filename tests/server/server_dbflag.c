/*
 * server_dbflag.c - chubd's --db flag when it cannot work, and the URL
 * secret a hub carries over from DATA/url-secret.
 *
 * A --db that names an unreachable server stops chubd (serving or `keys`)
 * with a non-zero status and libpq's reason, naming the database without
 * its password; a --db that is not a connection string at all is refused
 * the same way. A hub whose data directory holds the url-secret file of an
 * older chubd keeps signing with that secret, so links handed out before
 * stay valid, even once the file is gone: the store keeps it now.
 * Needs no PostgreSQL server: nothing listens on 127.0.0.1 port 1.
 */
#include "sv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "th_tmpdir.h"

/* Runs chubd with args (NULL-terminated), bounded to 20 s; returns its
 * exit status and its stderr in *err (malloc'd). */
static int dbflag_run(const char *const args[], char **err) {
  char *argv[32];
  int n = 0;
  argv[n++] = (char *)sv_chubd_bin();
  for (int i = 0; args[i] && n < 31; i++)
    argv[n++] = (char *)args[i];
  argv[n] = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    close(fds[0]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  int status = -1;
  for (int ms = 0; ms < 20000; ms += 10) {
    ssize_t r;
    while ((r = read(fds[0], buf + len, cap - 1 - len)) > 0)
      len += (size_t)r;
    int ws;
    if (waitpid(pid, &ws, WNOHANG) == pid) {
      while ((r = read(fds[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
      status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      break;
    }
    sv_sleep_ms(10);
  }
  if (status < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  close(fds[0]);
  buf[len] = '\0';
  *err = buf;
  return status;
}

static void dbflag_unreachable(void **state) {
  (void)state;
  char dir[4096];
  assert_int_equal(th_tmpdir_make(dir, sizeof dir, "chubd-dbflag"), 0);
  const char *url = "postgresql://alice:s3cret-pw@127.0.0.1:1/chub";
  const char *serve[] = {"--data",   dir,           "--db", url,
                         "--listen", "127.0.0.1:0", NULL};
  const char *keys[] = {"--data", dir, "--db", url, "keys", "list", NULL};
  const char *const *runs[] = {serve, keys};
  for (int i = 0; i < 2; i++) {
    char *err = NULL;
    int rc = dbflag_run(runs[i], &err);
    if (rc == 0 || rc >= 128)
      fail_msg("chubd with an unreachable --db exited %d: %s", rc, err);
    if (!strstr(err, "postgresql://alice@127.0.0.1:1/chub"))
      fail_msg("the message does not name the database: %s", err);
    if (!strstr(err, "127.0.0.1") || !strstr(err, "failed"))
      fail_msg("the message does not give libpq's reason: %s", err);
    if (strstr(err, "s3cret-pw"))
      fail_msg("the message shows the password: %s", err);
    free(err);
  }
  /* The key=value form: its password stays out of the message too. */
  const char *kv[] = {"--data",
                      dir,
                      "--db",
                      "host=127.0.0.1 port=1 user=bob password=s3cret-pw "
                      "dbname=chub",
                      "keys",
                      "list",
                      NULL};
  char *err = NULL;
  int rc = dbflag_run(kv, &err);
  assert_true(rc != 0);
  if (strstr(err, "s3cret-pw") || !strstr(err, "dbname=chub"))
    fail_msg("key=value --db: %s", err);
  free(err);
  /* Not a connection string: refused, saying what is wrong. */
  const char *bad[] = {"--data", dir,    "--db", "not a url",
                       "keys",   "list", NULL};
  rc = dbflag_run(bad, &err);
  assert_true(rc != 0 && rc < 128);
  if (!strstr(err, "--db"))
    fail_msg("a bad --db is not named: %s", err);
  free(err);
  th_rmtree(dir);
}

/* Checks the sig of a signed URL against `secret`, as sign.h defines it:
 * HMAC-SHA256 of "GET\nPATH\nEXPIRES\nKID". */
static int dbflag_signed_by(const char *url, const unsigned char secret[32]) {
  const char *path = strstr(url, "/v1/");
  const char *q = strchr(url, '?');
  assert_non_null(path);
  assert_non_null(q);
  const char *e = strstr(q, "expires=");
  const char *k = strstr(q, "kid=");
  const char *s = strstr(q, "sig=");
  assert_non_null(e);
  assert_non_null(k);
  assert_non_null(s);
  char *msg = th_fmt("GET\n%.*s\n%lld\n%lld", (int)(q - path), path,
                     atoll(e + 8), atoll(k + 4));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret, 32, (const unsigned char *)msg, strlen(msg), mac,
       &len);
  free(msg);
  char hex[65];
  for (unsigned i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  return strncmp(s + 4, hex, 64) == 0;
}

static void dbflag_secret_carried_over(void **state) {
  (void)state;
  if (chubd_proc_pg_dir()) {
    fprintf(stderr, "server_dbflag: DATA/url-secret is carried over on "
                    "SQLite only; skipped on PostgreSQL\n");
    skip();
  }
  char dir[4096];
  assert_int_equal(th_tmpdir_make(dir, sizeof dir, "chubd-secret"), 0);
  unsigned char secret[32];
  for (int i = 0; i < 32; i++)
    secret[i] = (unsigned char)(i * 7 + 1);
  char *path = th_fmt("%s/url-secret", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(secret, 1, 32, f), 32);
  assert_int_equal(fclose(f), 0);
  chmod(path, 0600);
  chubd_proc *p = chubd_proc_start(sv_chubd_bin(), dir, NULL);
  assert_non_null(p);
  char *id = sv_create(p, chubd_proc_key(p), "old.pt");
  unsigned char *bytes = sv_bytes(1000, 3);
  th_response r;
  assert_int_equal(sv_upload(p, chubd_proc_key(p), id, 1, "epoch", NULL, bytes,
                             1000, NULL, &r),
                   200);
  th_response_free(&r);
  json_t *m = sv_model(p, chubd_proc_key(p), id);
  const char *url = th_json_str(m, "resume");
  assert_non_null(url);
  if (!dbflag_signed_by(url, secret))
    fail_msg("%s is not signed with DATA/url-secret", url);
  json_decref(m);
  /* Without the file, the store still has it. */
  assert_int_equal(chubd_proc_stop(p), 0);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(chubd_proc_restart(p), 0);
  m = sv_model(p, chubd_proc_key(p), id);
  url = th_json_str(m, "resume");
  assert_non_null(url);
  if (!dbflag_signed_by(url, secret))
    fail_msg("%s: the secret changed once DATA/url-secret was gone", url);
  assert_int_equal(th_request_hdrs("GET", url, NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 1000);
  th_response_free(&r);
  json_decref(m);
  chubd_proc_free(p);
  free(bytes);
  free(id);
  free(path);
  th_rmtree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dbflag_unreachable),
      cmocka_unit_test(dbflag_secret_carried_over),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

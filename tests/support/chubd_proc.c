/*
 * chubd_proc.c - start, stop, kill and restart the real chubd for tests.
 *
 * chubd is run with fork/exec rather than in-process so that a test sees
 * exactly what a user sees: its own address space, its signal handling,
 * its exit status, its files on disk after a SIGKILL. The port comes from
 * --port-file (chubd writes it atomically once it serves), so tests never
 * race for a fixed port. Every running child is kept in one table,
 * chubd_proc_live, so an atexit handler can stop what a failing test left
 * behind; PR_SET_PDEATHSIG covers the case where the test itself is killed.
 *
 * With CHUB_TEST_PG set (the socket directory of the throwaway cluster
 * tests/support/pg.sh started), every chubd runs on PostgreSQL: a database
 * named after its data directory (so a chubd started again on the same
 * directory finds its data, and every test stays apart) is created on
 * first use and passed with --db, to the server and to `keys` alike.
 */
#include "chubd_proc.h"
#include "th_tmpdir.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define CHUBD_PROC_MAX_ARGS 32
#define CHUBD_PROC_START_TIMEOUT_MS 10000
#define CHUBD_PROC_STOP_TIMEOUT_MS 10000
#define CHUBD_PROC_CLI_TIMEOUT_MS 10000

struct chubd_proc {
  char *bin;
  char *data_dir;
  char *work_dir; /* ours: port file and log; always removed on free */
  int own_data;   /* data_dir was created here and is removed on free */
  char *extra[CHUBD_PROC_MAX_ARGS];
  int n_extra;
  pid_t pid;
  int port;
  char port_file[4096];
  char log_path[4096];
  char host[64];
  char listen[96];
  char base_url[128];
  char *key;
  char *db;     /* --db for chubd: NULL on SQLite */
  int db_extra; /* --db came in extra_args (not added again) */
  int own_db;   /* created here for own_data; dropped on free */
  char db_name[64];
};

/* The one piece of global mutable state: the processes still running, so
 * that exit() stops them even when a test aborted midway. */
#define CHUBD_PROC_LIVE_MAX 64
static chubd_proc *chubd_proc_live[CHUBD_PROC_LIVE_MAX];
static int chubd_proc_atexit_set;

static void chubd_proc_atexit(void) {
  for (int i = 0; i < CHUBD_PROC_LIVE_MAX; i++) {
    chubd_proc *p = chubd_proc_live[i];
    if (p && p->pid > 0) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, NULL, 0);
      p->pid = 0;
    }
  }
}

static void chubd_proc_track(chubd_proc *p, int on) {
  if (!chubd_proc_atexit_set) {
    atexit(chubd_proc_atexit);
    chubd_proc_atexit_set = 1;
  }
  for (int i = 0; i < CHUBD_PROC_LIVE_MAX; i++) {
    if (on && !chubd_proc_live[i]) {
      chubd_proc_live[i] = p;
      return;
    }
    if (!on && chubd_proc_live[i] == p) {
      chubd_proc_live[i] = NULL;
      return;
    }
  }
}

static long chubd_proc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void chubd_proc_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static char *chubd_proc_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

const char *chubd_proc_pg_dir(void) {
  const char *d = getenv("CHUB_TEST_PG");
  return d && *d ? d : NULL;
}

/* Runs sql on the cluster's maintenance database. 0, or -1 after printing
 * why; when ok_state is the SQLSTATE of the error, that error is fine. */
static int chubd_proc_pg_admin(const char *sql, const char *ok_state) {
  char conninfo[4200];
  snprintf(conninfo, sizeof conninfo,
           "host=%s user=postgres dbname=postgres connect_timeout=10",
           chubd_proc_pg_dir());
  PGconn *db = PQconnectdb(conninfo);
  if (PQstatus(db) != CONNECTION_OK) {
    fprintf(stderr, "chubd_proc: cannot reach the test cluster (%s): %s",
            conninfo, PQerrorMessage(db));
    PQfinish(db);
    return -1;
  }
  PGresult *r = PQexec(db, sql);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK &&
      PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!ok_state || !state || strcmp(state, ok_state) != 0) {
      fprintf(stderr, "chubd_proc: %s: %s", sql, PQerrorMessage(db));
      rc = -1;
    }
  }
  PQclear(r);
  PQfinish(db);
  return rc;
}

/* The database of p's data directory: named by a hash of its path, made
 * unless it is there already. */
static int chubd_proc_pg_create(chubd_proc *p) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char *c = p->data_dir; *c; c++)
    h = (h ^ (unsigned char)*c) * 1099511628211ull;
  snprintf(p->db_name, sizeof p->db_name, "chubt_%016llx",
           (unsigned long long)h);
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", p->db_name);
  if (chubd_proc_pg_admin(sql, "42P04") != 0) /* 42P04: exists already */
    return -1;
  char conninfo[4300];
  snprintf(conninfo, sizeof conninfo, "host=%s user=postgres dbname=%s",
           chubd_proc_pg_dir(), p->db_name);
  p->db = chubd_proc_strdup(conninfo);
  p->own_db = p->own_data;
  return 0;
}

const char *chubd_proc_db(const chubd_proc *p) {
  return p->db;
}

char *chubd_proc_db_query(const chubd_proc *p, const char *sql) {
  if (!p->db)
    return NULL;
  PGconn *db = PQconnectdb(p->db);
  char *out = NULL;
  if (PQstatus(db) == CONNECTION_OK) {
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
      out = chubd_proc_strdup(PQgetvalue(r, 0, 0));
    else
      fprintf(stderr, "chubd_proc: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
  } else {
    fprintf(stderr, "chubd_proc: cannot connect to %s: %s", p->db,
            PQerrorMessage(db));
  }
  PQfinish(db);
  return out;
}

int chubd_proc_rmtree(const char *path) {
  return th_rmtree(path);
}

/* Waits for pid with a deadline; returns the wait status or -1 if it is
 * still running when the deadline passes. */
static int chubd_proc_wait(pid_t pid, long timeout_ms, int *wstatus) {
  long deadline = chubd_proc_now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, wstatus, WNOHANG);
    if (r == pid)
      return 0;
    if (r < 0 && errno != EINTR)
      return 0; /* already reaped elsewhere: treat as gone */
    if (chubd_proc_now_ms() >= deadline)
      return -1;
    chubd_proc_sleep_ms(10);
  }
}

static int chubd_proc_status_code(int wstatus) {
  if (WIFEXITED(wstatus))
    return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus))
    return 128 + WTERMSIG(wstatus);
  return -1;
}

/* In the child: stdin from /dev/null, stdout to out_fd (or the log),
 * stderr to the log; die with the parent. Never returns. */
static void chubd_proc_exec_child(const char *log_path, int out_fd,
                                  char *const argv[]) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int devnull = open("/dev/null", O_RDONLY);
  int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (devnull >= 0)
    dup2(devnull, 0);
  if (log >= 0) {
    dup2(out_fd >= 0 ? out_fd : log, 1);
    dup2(log, 2);
  }
  execv(argv[0], argv);
  fprintf(stderr, "chubd_proc: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

void chubd_proc_dump_log(const chubd_proc *p, size_t max_bytes) {
  FILE *f = fopen(p->log_path, "rb");
  if (!f) {
    fprintf(stderr, "chubd_proc: no chubd log at %s\n", p->log_path);
    return;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  long from = size > (long)max_bytes ? size - (long)max_bytes : 0;
  fseek(f, from, SEEK_SET);
  fprintf(stderr, "---- chubd stderr (%s, last %ld bytes) ----\n", p->log_path,
          size - from);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    fwrite(buf, 1, n, stderr);
  fprintf(stderr, "---- end of chubd stderr ----\n");
  fclose(f);
}

static int chubd_proc_read_port(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  char buf[32] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  /* A complete port file ends in a newline; anything else is not ready. */
  if (n == 0 || buf[n - 1] != '\n')
    return 0;
  int port = atoi(buf);
  return port > 0 && port < 65536 ? port : 0;
}

/* Launches the server and waits for its port file. */
static int chubd_proc_launch(chubd_proc *p) {
  char *argv[CHUBD_PROC_MAX_ARGS + 16];
  int n = 0;
  argv[n++] = p->bin;
  argv[n++] = "--listen";
  argv[n++] = p->listen;
  argv[n++] = "--data";
  argv[n++] = p->data_dir;
  argv[n++] = "--port-file";
  argv[n++] = p->port_file;
  if (p->db && !p->db_extra) {
    argv[n++] = "--db";
    argv[n++] = p->db;
  }
  for (int i = 0; i < p->n_extra; i++)
    argv[n++] = p->extra[i];
  argv[n] = NULL;

  unlink(p->port_file); /* a stale file from the last run is not readiness */
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "chubd_proc: fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0)
    chubd_proc_exec_child(p->log_path, -1, argv);
  p->pid = pid;
  p->port = 0;
  chubd_proc_track(p, 1);

  long deadline = chubd_proc_now_ms() + CHUBD_PROC_START_TIMEOUT_MS;
  while (chubd_proc_now_ms() < deadline) {
    int port = chubd_proc_read_port(p->port_file);
    if (port) {
      p->port = port;
      snprintf(p->base_url, sizeof p->base_url, "http://%s:%d", p->host, port);
      return 0;
    }
    int ws;
    if (waitpid(pid, &ws, WNOHANG) == pid) {
      fprintf(stderr, "chubd_proc: %s exited with status %d before serving\n",
              p->bin, chubd_proc_status_code(ws));
      p->pid = 0;
      chubd_proc_track(p, 0);
      chubd_proc_dump_log(p, 8192);
      return -1;
    }
    chubd_proc_sleep_ms(20);
  }
  fprintf(stderr, "chubd_proc: %s wrote no port file %s within %d ms\n", p->bin,
          p->port_file, CHUBD_PROC_START_TIMEOUT_MS);
  chubd_proc_kill9(p);
  chubd_proc_dump_log(p, 8192);
  return -1;
}

int chubd_proc_cli(chubd_proc *p, const char *const args[], char **out) {
  char *argv[CHUBD_PROC_MAX_ARGS + 6];
  int n = 0;
  argv[n++] = p->bin;
  argv[n++] = "--data";
  argv[n++] = p->data_dir;
  if (p->db) {
    argv[n++] = "--db";
    argv[n++] = p->db;
  }
  for (int i = 0; args && args[i] && n < CHUBD_PROC_MAX_ARGS + 5; i++)
    argv[n++] = (char *)args[i];
  argv[n] = NULL;
  if (out)
    *out = NULL;

  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    chubd_proc_exec_child(p->log_path, fds[1], argv);
  }
  close(fds[1]);

  /* The output is small (a key, a list of prefixes); read it with a
   * deadline so a hung child cannot hang the test. */
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  long deadline = chubd_proc_now_ms() + CHUBD_PROC_CLI_TIMEOUT_MS;
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  int timed_out = 0;
  for (;;) {
    if (len + 1024 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    ssize_t r = read(fds[0], buf + len, cap - len - 1);
    if (r > 0) {
      len += (size_t)r;
      continue;
    }
    if (r == 0)
      break;
    if (errno != EAGAIN && errno != EINTR)
      break;
    if (chubd_proc_now_ms() >= deadline) {
      timed_out = 1;
      break;
    }
    chubd_proc_sleep_ms(5);
  }
  close(fds[0]);
  buf[len] = '\0';

  int ws = 0;
  if (timed_out || chubd_proc_wait(pid, CHUBD_PROC_CLI_TIMEOUT_MS, &ws) != 0) {
    fprintf(stderr, "chubd_proc: `%s --data %s %s` did not finish in %d ms\n",
            p->bin, p->data_dir, args && args[0] ? args[0] : "",
            CHUBD_PROC_CLI_TIMEOUT_MS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    free(buf);
    return -1;
  }
  if (out)
    *out = buf;
  else
    free(buf);
  return chubd_proc_status_code(ws);
}

char *chubd_proc_create_key(chubd_proc *p, const char *owner) {
  const char *args[] = {"keys", "create", owner, NULL};
  char *out = NULL;
  int rc = chubd_proc_cli(p, args, &out);
  if (rc != 0 || !out) {
    fprintf(stderr, "chubd_proc: `keys create %s` exited %d\n", owner, rc);
    chubd_proc_dump_log(p, 4096);
    free(out);
    return NULL;
  }
  size_t n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
    out[--n] = '\0';
  return out;
}

chubd_proc *chubd_proc_start(const char *chubd_bin, const char *data_dir,
                             const char *const extra_args[]) {
  return chubd_proc_start_on(chubd_bin, "127.0.0.1", data_dir, extra_args);
}

chubd_proc *chubd_proc_start_on(const char *chubd_bin, const char *host,
                                const char *data_dir,
                                const char *const extra_args[]) {
  chubd_proc *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  snprintf(p->host, sizeof p->host, "%s", host);
  snprintf(p->listen, sizeof p->listen, "%s:0", host);
  p->bin = chubd_proc_strdup(chubd_bin);
  char templ[4096];
  if (th_tmpdir_make(templ, sizeof templ, "chubd-test") != 0) {
    free(p->bin);
    free(p);
    return NULL;
  }
  p->work_dir = chubd_proc_strdup(templ);
  if (data_dir) {
    p->data_dir = chubd_proc_strdup(data_dir);
  } else {
    char d[4200];
    snprintf(d, sizeof d, "%s/data", p->work_dir);
    mkdir(d, 0700);
    p->data_dir = chubd_proc_strdup(d);
    p->own_data = 1;
  }
  snprintf(p->port_file, sizeof p->port_file, "%s/port", p->work_dir);
  snprintf(p->log_path, sizeof p->log_path, "%s/chubd.log", p->work_dir);
  for (int i = 0; extra_args && extra_args[i]; i++) {
    if (p->n_extra >= CHUBD_PROC_MAX_ARGS) {
      fprintf(stderr, "chubd_proc: more than %d extra arguments\n",
              CHUBD_PROC_MAX_ARGS);
      chubd_proc_free(p);
      return NULL;
    }
    p->extra[p->n_extra++] = chubd_proc_strdup(extra_args[i]);
    if (strcmp(extra_args[i], "--db") == 0 && extra_args[i + 1]) {
      p->db = chubd_proc_strdup(extra_args[i + 1]);
      p->db_extra = 1;
    }
  }
  if (!p->db && chubd_proc_pg_dir() && chubd_proc_pg_create(p) != 0) {
    chubd_proc_free(p);
    return NULL;
  }

  /* The key is made before the server starts so that a test's first
   * request never races the key store being created. */
  p->key = chubd_proc_create_key(p, "owner");
  if (!p->key || chubd_proc_launch(p) != 0) {
    chubd_proc_free(p);
    return NULL;
  }
  return p;
}

int chubd_proc_stop(chubd_proc *p) {
  return chubd_proc_signal(p, SIGTERM);
}

int chubd_proc_signal(chubd_proc *p, int sig) {
  if (!p || p->pid <= 0)
    return -1;
  int ws = 0;
  kill(p->pid, sig);
  if (chubd_proc_wait(p->pid, CHUBD_PROC_STOP_TIMEOUT_MS, &ws) != 0) {
    fprintf(stderr,
            "chubd_proc: chubd pid %d ignored signal %d for %d ms; "
            "sending SIGKILL\n",
            (int)p->pid, sig, CHUBD_PROC_STOP_TIMEOUT_MS);
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &ws, 0);
  }
  p->pid = 0;
  chubd_proc_track(p, 0);
  return chubd_proc_status_code(ws);
}

void chubd_proc_kill9(chubd_proc *p) {
  if (!p || p->pid <= 0)
    return;
  kill(p->pid, SIGKILL);
  waitpid(p->pid, NULL, 0);
  p->pid = 0;
  chubd_proc_track(p, 0);
}

int chubd_proc_restart(chubd_proc *p) {
  if (p->pid > 0)
    chubd_proc_stop(p);
  return chubd_proc_launch(p);
}

void chubd_proc_free(chubd_proc *p) {
  if (!p)
    return;
  if (p->pid > 0)
    chubd_proc_stop(p);
  if (p->work_dir) {
    if (getenv("CHUB_KEEP_TMP")) {
      fprintf(stderr, "chubd_proc: keeping %s (data %s)\n", p->work_dir,
              p->data_dir);
    } else {
      if (p->own_data)
        th_rmtree(p->data_dir);
      th_rmtree(p->work_dir);
    }
  }
  if (p->own_db && !getenv("CHUB_KEEP_TMP")) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
             p->db_name);
    chubd_proc_pg_admin(sql, NULL);
  }
  for (int i = 0; i < p->n_extra; i++)
    free(p->extra[i]);
  free(p->db);
  free(p->bin);
  free(p->data_dir);
  free(p->work_dir);
  free(p->key);
  free(p);
}

int chubd_proc_port(const chubd_proc *p) {
  return p->port;
}

pid_t chubd_proc_pid(const chubd_proc *p) {
  return p->pid;
}

const char *chubd_proc_base_url(const chubd_proc *p) {
  return p->base_url;
}

const char *chubd_proc_key(const chubd_proc *p) {
  return p->key;
}

const char *chubd_proc_data_dir(const chubd_proc *p) {
  return p->data_dir;
}

const char *chubd_proc_log_path(const chubd_proc *p) {
  return p->log_path;
}

/*
 * fault_scenarios.c - the fault suite's driver: runs the synthetic trainer
 * (chub_fault_trainer, the real HUB callbacks) against the real chubd
 * through the fault proxy (chub_faultproxy), breaks things on purpose, and
 * then counts, through chubd's own API, that the hub holds every epoch
 * exactly once with the values the trainer produced, and weights whose
 * SHA-256 is that of a whole file the trainer wrote.
 *
 *   fault_scenarios SCENARIO --chubd BIN --cli BIN --proxy BIN --trainer BIN
 *
 * SCENARIO: hub_down, hub_down_middle, every_fault, trainer_killed,
 * chubd_killed, ckpt_rewrite, final_answer_lost. Each prints one line
 *   scenario NAME: epochs N, faults F, lost L, duplicated D
 * and exits non-zero on any loss, duplicate, torn file, failed integrity
 * check or memory that grew with the checkpoint size. Every child process
 * is bounded in time and stopped by its PID on every exit path.
 */
#include "chub.h"
#include "chubd_proc.h"
#include "fault_data.h"
#include "spool.h"
#include "th.h"
#include "th_tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FS_CHILD_TIMEOUT_S 120

typedef struct fs_env {
  const char *name;
  const char *chubd_bin, *cli_bin, *proxy_bin, *trainer_bin;
  char work[512];
  chubd_proc *hub;
  pid_t proxy_pid;
  int proxy_port;
  char proxy_url[64];
  char control[600], stats[600], proxy_log[600], port_file[600];
  char runs[600], cfg[600], wdir[600], log[600];
} fs_env;

/* The proxy's PID for the atexit handler: the one piece of global state. */
static pid_t fs_proxy_pid_live;

static void fs_atexit(void) {
  if (fs_proxy_pid_live > 0) {
    kill(fs_proxy_pid_live, SIGKILL);
    waitpid(fs_proxy_pid_live, NULL, 0);
    fs_proxy_pid_live = 0;
  }
}

static void fs_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int fs_write_file(const char *path, const char *text) {
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  fputs(text, f);
  if (fclose(f) != 0)
    return -1;
  return rename(tmp, path);
}

static char *fs_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf)
    buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Prints the last `max` bytes of a log file, for a failure's context. */
static void fs_dump(const char *title, const char *path, size_t max) {
  char *t = fs_read_file(path);
  if (!t)
    return;
  size_t n = strlen(t);
  fprintf(stderr, "---- %s (%s, last %zu bytes)\n%s\n----\n", title, path,
          n < max ? n : max, t + (n > max ? n - max : 0));
  free(t);
}

/* Sets the proxy's control file: rules and `upstream`/`down` lines. The
 * upstream line is added here, from the running chubd. */
static void fs_control(fs_env *e, const char *rules) {
  char text[4096];
  snprintf(text, sizeof text, "upstream %d\n%s", chubd_proc_port(e->hub),
           rules ? rules : "");
  if (fs_write_file(e->control, text) != 0) {
    fprintf(stderr, "%s: cannot write %s\n", e->name, e->control);
    exit(1);
  }
}

static long fs_proxy_faults(const fs_env *e) {
  char *t = fs_read_file(e->stats);
  const char *p = t ? strstr(t, "faults ") : NULL;
  long n = p ? atol(p + 7) : -1;
  free(t);
  return n;
}

/* Runs argv with stdout+stderr appended to the scenario log, waits at most
 * timeout_s, SIGKILLs it (by PID) past that. Returns the exit status, or
 * 128+signal. */
static int fs_run(fs_env *e, char *const argv[], int timeout_s) {
  FILE *lf = fopen(e->log, "a");
  if (lf) {
    fprintf(lf, "\n$");
    for (int i = 0; argv[i]; i++)
      fprintf(lf, " %s", argv[i]);
    fprintf(lf, "\n");
    fclose(lf);
  }
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(e->log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  for (int i = 0; i < timeout_s * 50; i++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    fs_sleep_ms(20);
  }
  fprintf(stderr, "%s: %s ran past %d s; killing it\n", e->name, argv[0],
          timeout_s);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return 128 + SIGKILL;
}

/* Starts a child without waiting (the trainer while the driver breaks
 * things); returns its PID. */
static pid_t fs_spawn(fs_env *e, char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(e->log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

static int fs_wait(fs_env *e, pid_t pid, int timeout_s) {
  int st = 0;
  for (int i = 0; i < timeout_s * 50; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    fs_sleep_ms(20);
  }
  fprintf(stderr, "%s: child %d ran past %d s; killing it\n", e->name, (int)pid,
          timeout_s);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return 128 + SIGKILL;
}

static void fs_setenv(fs_env *e) {
  setenv("CHUB_TESTING", "1", 1);
  setenv("CHUB_CONFIG_DIR", e->cfg, 1);
  setenv("CHUB_RUNS_DIR", e->runs, 1);
  setenv("CHUB_API_KEY", chubd_proc_key(e->hub), 1);
  setenv("CHUB_API_ROOT", e->proxy_url, 1);
  setenv("CHUB_RETRY_SCALE", "0.01", 1);
  unsetenv("CHUB_WEB_ROOT");
  unsetenv("CHUB_MODE");
  unsetenv("CHUB_HUB");
  unsetenv("RANK");
  /* Every epoch uploads at once and every save queues a checkpoint, so a
   * short run crosses every path; the final sync may take its time. */
  static const char *const settings[][2] = {{"rate_limit_metrics", "0"},
                                            {"rate_limit_ckpt", "0"},
                                            {"rate_limit_heartbeat", "1"},
                                            {"final_sync_deadline", "90"}};
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    char err[256] = "";
    if (chub_settings_set(settings[i][0], settings[i][1], err, sizeof err) !=
        CHUB_OK) {
      fprintf(stderr, "%s: cannot set %s: %s\n", e->name, settings[i][0], err);
      exit(1);
    }
  }
}

static int fs_start_proxy(fs_env *e) {
  fs_control(e, NULL);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(e->proxy_log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
      dup2(fd, 2);
      close(fd);
    }
    execl(e->proxy_bin, e->proxy_bin, "--upstream", "127.0.0.1:0",
          "--port-file", e->port_file, "--control", e->control, "--stats",
          e->stats, (char *)NULL);
    _exit(127);
  }
  e->proxy_pid = fs_proxy_pid_live = pid;
  for (int i = 0; i < 500; i++) {
    char *t = fs_read_file(e->port_file);
    if (t) {
      e->proxy_port = atoi(t);
      free(t);
      snprintf(e->proxy_url, sizeof e->proxy_url, "http://127.0.0.1:%d",
               e->proxy_port);
      return 0;
    }
    fs_sleep_ms(20);
  }
  fs_dump("proxy", e->proxy_log, 2000);
  return -1;
}

static int fs_setup(fs_env *e) {
  if (th_tmpdir_make(e->work, sizeof e->work, "chub-faults") != 0)
    return -1;
  snprintf(e->control, sizeof e->control, "%s/proxy.control", e->work);
  snprintf(e->stats, sizeof e->stats, "%s/proxy.stats", e->work);
  snprintf(e->proxy_log, sizeof e->proxy_log, "%s/proxy.log", e->work);
  snprintf(e->port_file, sizeof e->port_file, "%s/proxy.port", e->work);
  snprintf(e->runs, sizeof e->runs, "%s/runs", e->work);
  snprintf(e->cfg, sizeof e->cfg, "%s/config", e->work);
  snprintf(e->wdir, sizeof e->wdir, "%s/weights", e->work);
  snprintf(e->log, sizeof e->log, "%s/children.log", e->work);
  mkdir(e->runs, 0700);
  mkdir(e->cfg, 0700);
  mkdir(e->wdir, 0700);
  atexit(fs_atexit);
  e->hub = chubd_proc_start(e->chubd_bin, NULL, NULL);
  if (!e->hub)
    return -1;
  if (fs_start_proxy(e) != 0)
    return -1;
  fs_setenv(e);
  return 0;
}

static void fs_teardown(fs_env *e, bool ok) {
  if (!ok) {
    fs_dump("trainer and cli output", e->log, 6000);
    fs_dump("proxy log", e->proxy_log, 3000);
    chubd_proc_dump_log(e->hub, 3000);
  }
  if (e->proxy_pid > 0) {
    kill(e->proxy_pid, SIGKILL);
    waitpid(e->proxy_pid, NULL, 0);
    e->proxy_pid = fs_proxy_pid_live = 0;
  }
  chubd_proc_free(e->hub);
  e->hub = NULL;
  if (ok || !getenv("CHUB_KEEP_TMP"))
    th_rmtree(e->work);
  else
    fprintf(stderr, "%s: kept %s\n", e->name, e->work);
}

/* ------------------------------------------------------------ trainer */

typedef struct fs_info {
  char model_id[64], run_id[256];
  long rss_start_kb, rss_max_kb;
  int sanitized;
} fs_info;

static int fs_info_read(const char *path, fs_info *in) {
  memset(in, 0, sizeof *in);
  in->rss_max_kb = -1;
  char *t = fs_read_file(path);
  if (!t)
    return -1;
  char *save = NULL;
  for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    if (!strncmp(l, "model_id ", 9))
      snprintf(in->model_id, sizeof in->model_id, "%s", l + 9);
    else if (!strncmp(l, "run_id ", 7))
      snprintf(in->run_id, sizeof in->run_id, "%s", l + 7);
    else if (!strncmp(l, "rss_start_kb ", 13))
      in->rss_start_kb = atol(l + 13);
    else if (!strncmp(l, "rss_max_kb ", 11))
      in->rss_max_kb = atol(l + 11);
    else if (!strncmp(l, "sanitized ", 10))
      in->sanitized = atoi(l + 10);
  }
  free(t);
  return 0;
}

/* Builds the trainer's argv: fixed flags, then `extra` (NULL-terminated,
 * may be NULL). Strings are copied into `store`. */
typedef struct fs_argv {
  char *argv[48];
  char store[48][600];
  int n;
} fs_argv;

static void fs_arg(fs_argv *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->store[a->n], sizeof a->store[a->n], fmt, ap);
  va_end(ap);
  a->argv[a->n] = a->store[a->n];
  a->n++;
  a->argv[a->n] = NULL;
}

static void fs_trainer_argv(fs_env *e, fs_argv *a, const char *info,
                            const char *const extra[]) {
  a->n = 0;
  fs_arg(a, "%s", e->trainer_bin);
  fs_arg(a, "--dir");
  fs_arg(a, "%s", e->wdir);
  fs_arg(a, "--info");
  fs_arg(a, "%s", info);
  for (int i = 0; extra && extra[i]; i++)
    fs_arg(a, "%s", extra[i]);
}

static int fs_sync(fs_env *e, const char *run) {
  fs_argv a = {.n = 0};
  fs_arg(&a, "%s", e->cli_bin);
  fs_arg(&a, "sync");
  fs_arg(&a, "%s", run);
  return fs_run(e, a.argv, FS_CHILD_TIMEOUT_S);
}

/* The model id `chub sync` (or the session) recorded in the run's
 * run.json, or "" when it has none. */
static void fs_run_model_id(fs_env *e, const char *run, char *out, size_t len) {
  char path[900];
  snprintf(path, sizeof path, "%s/%s/run.json", e->runs, run);
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  const char *id = json_string_value(json_object_get(j, "model_id"));
  snprintf(out, len, "%s", id ? id : "");
  json_decref(j);
}

/* ------------------------------------------------------------ checks */

/* After a successful sync the run's spool must hold nothing: a person
 * running `chub runs` would otherwise be told there is more to upload.
 * Returns how many records are still pending (or -1 when it cannot tell). */
static long fs_run_pending(fs_env *e, const char *run) {
  char dir[900];
  snprintf(dir, sizeof dir, "%s/%s", e->runs, run);
  struct stat st;
  if (stat(dir, &st) != 0)
    return 0; /* the sync removed the finished run */
  spool *sp = NULL;
  if (spool_open(dir, 0, &sp) != CHUB_OK)
    return -1;
  size_t m = 0, c = 0;
  bool fin = false;
  spool_pending_counts(sp, &m, &c, &fin);
  spool_close(sp);
  if (m || c)
    fprintf(stderr,
            "%s: run %s still holds %zu epochs and %zu checkpoints "
            "after its sync\n",
            e->name, run, m, c);
  return (long)(m + c);
}

static void fs_sha_stream(uint64_t seed, long long bytes, char hex[65]) {
  unsigned char *buf = malloc(bytes > 0 ? (size_t)bytes : 1);
  fault_data_fill(buf, (size_t)bytes, seed, 0);
  th_sha256_hex(buf, (size_t)bytes, hex);
  free(buf);
}

typedef struct fs_expect {
  int epochs;           /* 0..epochs-1 must each be there once */
  long long ckpt_bytes; /* size of every last.pt version */
  long long best_bytes;
  bool final; /* a final upload must be there, status trained */
} fs_expect;

typedef struct fs_result {
  int lost, duplicated, torn, wrong;
} fs_result;

static bool fs_close(double a, double b) {
  return a == b;
}

/* Reads the hub's metrics for the model straight from chubd (not through
 * the proxy) and counts lost, duplicated and wrong epochs. */
static int fs_check_metrics(fs_env *e, const char *id, const fs_expect *x,
                            fs_result *r) {
  char *url =
      th_fmt("%s/v1/models/%s/metrics", chubd_proc_base_url(e->hub), id);
  th_response resp = {0};
  int rc = th_json_request("GET", url, chubd_proc_key(e->hub), NULL, &resp);
  free(url);
  json_t *root =
      rc == 0 && resp.status == 200 ? th_json_parse(resp.body) : NULL;
  th_response_free(&resp);
  json_t *data = json_object_get(root, "data");
  if (!json_is_array(data)) {
    fprintf(stderr, "%s: no metrics list for model %s\n", e->name, id);
    json_decref(root);
    return -1;
  }
  int *seen = calloc((size_t)x->epochs, sizeof *seen);
  size_t i;
  json_t *row;
  json_array_foreach(data, i, row) {
    json_int_t ep = json_integer_value(json_object_get(row, "epoch"));
    json_t *m = json_object_get(row, "metrics");
    if (ep < 0 || ep >= x->epochs) {
      fprintf(stderr, "%s: unexpected epoch %lld on the hub\n", e->name,
              (long long)ep);
      r->duplicated++;
      continue;
    }
    seen[ep]++;
    int ie = (int)ep;
    bool ok =
        fs_close(json_number_value(json_object_get(m, "train/loss")),
                 fault_data_loss(ie)) &&
        fs_close(json_number_value(json_object_get(m, "metrics/accuracy_top1")),
                 fault_data_top1(ie)) &&
        fs_close(json_number_value(json_object_get(m, "metrics/mAP50-95(B)")),
                 fault_data_map(ie));
    if (ie == 0)
      ok = ok &&
           json_integer_value(json_object_get(m, "model/parameters")) == 123456;
    if (!ok) {
      char *dump = json_dumps(m, JSON_COMPACT);
      fprintf(stderr, "%s: epoch %d has wrong metrics on the hub: %s\n",
              e->name, ie, dump ? dump : "?");
      free(dump);
      r->wrong++;
    }
  }
  for (int ep = 0; ep < x->epochs; ep++) {
    if (seen[ep] == 0) {
      fprintf(stderr, "%s: epoch %d is missing on the hub\n", e->name, ep);
      r->lost++;
    }
    if (seen[ep] > 1) {
      fprintf(stderr, "%s: epoch %d is on the hub %d times\n", e->name, ep,
              seen[ep]);
      r->duplicated += seen[ep] - 1;
    }
  }
  free(seen);
  json_decref(root);
  return 0;
}

/* Downloads `path` (a path on chubd, or an absolute URL the hub gave)
 * from chubd (straight, not through the proxy): the SHA-256 and size of
 * the bytes, or -1. */
static int fs_download_sha(fs_env *e, const char *path, char hex[65],
                           size_t *size) {
  char *url = strncmp(path, "http", 4) == 0
                  ? th_fmt("%s", path)
                  : th_fmt("%s%s", chubd_proc_base_url(e->hub), path);
  char *key = th_fmt("x-api-key: %s", chubd_proc_key(e->hub));
  const char *const hdrs[] = {key, NULL};
  th_response resp = {0};
  int rc = th_request_hdrs("GET", url, hdrs, NULL, 0, &resp);
  free(url);
  free(key);
  if (rc != 0 || resp.status != 200) {
    fprintf(stderr, "%s: GET %s answered %ld\n", e->name, path, resp.status);
    th_response_free(&resp);
    return -1;
  }
  th_sha256_hex(resp.body, resp.body_len, hex);
  *size = resp.body_len;
  th_response_free(&resp);
  return 0;
}

/* Checks the model's record and weights: status, every checkpoint listed is
 * a whole version the trainer wrote, downloads match their digests. */
static int fs_check_model(fs_env *e, const char *id, const fs_expect *x,
                          fs_result *r) {
  char *url = th_fmt("%s/v1/models/%s", chubd_proc_base_url(e->hub), id);
  th_response resp = {0};
  int rc = th_json_request("GET", url, chubd_proc_key(e->hub), NULL, &resp);
  free(url);
  json_t *root =
      rc == 0 && resp.status == 200 ? th_json_parse(resp.body) : NULL;
  th_response_free(&resp);
  json_t *m = json_object_get(root, "data");
  if (!m) {
    fprintf(stderr, "%s: cannot read model %s\n", e->name, id);
    json_decref(root);
    return -1;
  }
  const char *status = json_string_value(json_object_get(m, "status"));
  if (x->final && (!status || strcmp(status, "trained") != 0)) {
    fprintf(stderr, "%s: model %s is '%s', not trained\n", e->name, id,
            status ? status : "?");
    r->lost++;
  }
  /* every version of last.pt the trainer wrote, and the final best.pt */
  char(*last)[65] = calloc((size_t)x->epochs, sizeof *last);
  for (int ep = 0; ep < x->epochs; ep++)
    fs_sha_stream(fault_data_seed_last(ep), x->ckpt_bytes, last[ep]);
  char best[65];
  fs_sha_stream(fault_data_seed_best(x->epochs), x->best_bytes, best);
  json_t *cks = json_object_get(m, "checkpoints");
  size_t i;
  json_t *ck;
  int finals = 0;
  json_array_foreach(cks, i, ck) {
    const char *type = json_string_value(json_object_get(ck, "type"));
    const char *sha = json_string_value(json_object_get(ck, "sha256"));
    const char *curl = json_string_value(json_object_get(ck, "url"));
    json_int_t ep = json_integer_value(json_object_get(ck, "epoch"));
    size_t size = (size_t)json_integer_value(json_object_get(ck, "size"));
    bool whole = false;
    if (type && !strcmp(type, "final")) {
      finals++;
      whole = sha && !strcmp(sha, best) && size == (size_t)x->best_bytes;
    } else {
      /* the file may have been rewritten by a later epoch before the
       * upload read it: any whole version from this epoch on will do */
      for (int v = (int)ep; v < x->epochs && sha && !whole; v++)
        whole = !strcmp(sha, last[v]) && size == (size_t)x->ckpt_bytes;
    }
    char got[65] = "";
    size_t got_size = 0;
    if (whole && (!curl || fs_download_sha(e, curl, got, &got_size) != 0 ||
                  strcmp(got, sha) != 0 || got_size != size))
      whole = false;
    if (!whole) {
      fprintf(stderr,
              "%s: checkpoint %s epoch %lld (sha %s, %zu bytes, download "
              "%s) is not a whole file the trainer wrote\n",
              e->name, type ? type : "?", (long long)ep, sha ? sha : "?", size,
              got);
      r->torn++;
    }
  }
  printf("scenario %s: model %s holds %zu checkpoints, %d of them torn\n",
         e->name, id, json_array_size(cks), r->torn);
  if (x->final && finals != 1) {
    fprintf(stderr, "%s: %d final checkpoints listed, want 1\n", e->name,
            finals);
    if (finals == 0)
      r->lost++;
    else
      r->duplicated += finals - 1;
  }
  if (x->final) {
    char got[65] = "";
    size_t size = 0;
    char *path = th_fmt("/v1/models/%s/weights/best", id);
    if (fs_download_sha(e, path, got, &size) != 0 || strcmp(got, best) != 0 ||
        size != (size_t)x->best_bytes) {
      fprintf(stderr, "%s: best weights of %s do not match best.pt\n", e->name,
              id);
      r->torn++;
    }
    free(path);
  }
  free(last);
  json_decref(root);
  return 0;
}

static int fs_check(fs_env *e, const char *id, const fs_expect *x,
                    fs_result *r) {
  if (!id || !*id || !strcmp(id, "-")) {
    fprintf(stderr, "%s: no model id to check\n", e->name);
    r->lost += x->epochs;
    return -1;
  }
  int a = fs_check_metrics(e, id, x, r);
  int b = fs_check_model(e, id, x, r);
  return a == 0 && b == 0 ? 0 : -1;
}

/* Every blob chubd stores is named by its SHA-256: a partial file under
 * that name would be served as if whole. */
static int fs_check_blobs(fs_env *e, fs_result *r) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s/blobs", chubd_proc_data_dir(e->hub));
  DIR *d = opendir(dir);
  if (!d)
    return 0; /* nothing stored yet */
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char path[1000];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    FILE *f = fopen(path, "rb");
    if (!f)
      continue;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    char hex[65];
    th_sha256_hex(buf, got, hex);
    free(buf);
    if (strlen(de->d_name) == 64 && strcmp(hex, de->d_name) != 0) {
      fprintf(stderr, "%s: blob %s holds bytes whose SHA-256 is %s\n", e->name,
              de->d_name, hex);
      r->torn++;
    }
    n++;
  }
  closedir(d);
  return n;
}

/* PRAGMA integrity_check on chubd's database, with chubd not running. */
static int fs_integrity(fs_env *e) {
  if (chubd_proc_db(e->hub)) {
    /* PostgreSQL keeps its own files whole; what a killed chubd must not
     * leave is a database that no longer answers. */
    char *n = chubd_proc_db_query(e->hub, "SELECT count(*) FROM models");
    int ok = n && atoi(n) >= 0 ? 0 : -1;
    if (ok != 0)
      fprintf(stderr, "%s: the PostgreSQL database does not answer\n", e->name);
    free(n);
    return ok;
  }
  char path[700];
  snprintf(path, sizeof path, "%s/chubd.db", chubd_proc_data_dir(e->hub));
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: cannot open %s: %s\n", e->name, path,
            db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return -1;
  }
  sqlite3_stmt *st = NULL;
  int ok = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    ok = v && !strcmp(v, "ok") ? 0 : -1;
    if (ok != 0)
      fprintf(stderr, "%s: integrity_check of %s: %s\n", e->name, path,
              v ? v : "?");
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return ok;
}

static int fs_report(fs_env *e, int epochs, const fs_result *r, bool extra_ok) {
  long faults = fs_proxy_faults(e);
  printf("scenario %s: epochs %d, faults %ld, lost %d, duplicated %d\n",
         e->name, epochs, faults, r->lost + r->wrong, r->duplicated);
  if (r->torn)
    printf("scenario %s: %d torn or foreign weights\n", e->name, r->torn);
  fflush(stdout);
  return r->lost || r->wrong || r->duplicated || r->torn || !extra_ok ? 1 : 0;
}

/* ------------------------------------------------------------ scenarios */

static int fs_train(fs_env *e, const char *info, const char *const extra[]) {
  fs_argv a;
  fs_trainer_argv(e, &a, info, extra);
  return fs_run(e, a.argv, FS_CHILD_TIMEOUT_S);
}

static pid_t fs_train_async(fs_env *e, const char *info,
                            const char *const extra[]) {
  fs_argv a;
  fs_trainer_argv(e, &a, info, extra);
  return fs_spawn(e, a.argv);
}

/* Waits (bounded: 30 s) until the trainer wrote its info file. */
static int fs_wait_info(const char *info, fs_info *in) {
  for (int i = 0; i < 3000; i++) {
    if (fs_info_read(info, in) == 0)
      return 0;
    fs_sleep_ms(10);
  }
  return -1;
}

/* Waits (bounded) until the proxy log holds `needle`. */
static int fs_wait_proxy_log(fs_env *e, const char *needle, int timeout_s) {
  for (int i = 0; i < timeout_s * 50; i++) {
    char *t = fs_read_file(e->proxy_log);
    bool found = t && strstr(t, needle);
    free(t);
    if (found)
      return 0;
    fs_sleep_ms(20);
  }
  return -1;
}

static bool fs_expect_status(fs_env *e, const char *what, int got, int want) {
  if (got == want)
    return true;
  fprintf(stderr, "%s: %s exited %d, want %d\n", e->name, what, got, want);
  return false;
}

/* 1. The hub is down for the whole run; `chub sync` uploads it all. */
static int fs_hub_down(fs_env *e) {
  const int n = 12;
  fs_control(e, "down\n");
  char info[700];
  snprintf(info, sizeof info, "%s/train.info", e->work);
  const char *const extra[] = {"--epochs", "12",           "--ckpt-bytes",
                               "65536",    "--best-bytes", "131072",
                               NULL};
  bool ok = fs_expect_status(e, "the trainer (final sync while down)",
                             fs_train(e, info, extra), 3);
  fs_info in;
  if (fs_info_read(info, &in) != 0 || !strcmp(in.run_id, "-")) {
    fprintf(stderr, "%s: the trainer left no run id\n", e->name);
    return 1;
  }
  fs_control(e, NULL); /* the hub is back */
  ok &= fs_expect_status(e, "chub sync", fs_sync(e, in.run_id), 0);
  char id[64];
  fs_run_model_id(e, in.run_id, id, sizeof id);
  fs_expect x = {n, 65536, 131072, true};
  fs_result r = {0};
  fs_check(e, id, &x, &r);
  /* a second sync finds nothing to do and duplicates nothing */
  ok &= fs_expect_status(e, "chub sync (again)", fs_sync(e, in.run_id), 0);
  fs_result r2 = {0};
  fs_check(e, id, &x, &r2);
  r.duplicated += r2.duplicated;
  r.lost += r2.lost;
  ok &= fs_run_pending(e, in.run_id) == 0;
  return fs_report(e, n, &r, ok);
}

/* 2. The hub goes away in the middle of the run and comes back before the
 * end; the final sync finishes it without `chub sync`. The final weights
 * are large, to show the client streams them (memory stays flat). */
static int fs_hub_down_middle(fs_env *e) {
  const int n = 60;
  const long long best_bytes = 48ll << 20;
  char info[700];
  snprintf(info, sizeof info, "%s/train.info", e->work);
  const char *const extra[] = {"--epochs",     "60",           "--sleep-ms",
                               "150",          "--ckpt-bytes", "65536",
                               "--best-bytes", "50331648",     NULL};
  pid_t pid = fs_train_async(e, info, extra);
  fs_info in;
  bool ok = fs_wait_info(info, &in) == 0;
  fs_sleep_ms(800);
  fs_control(e, "down\n");
  /* down until the client met it twice (the sender's pace varies), at
   * most 6 s, well inside the run */
  long refused = 0;
  for (int i = 0; i < 300 && refused < 2; i++) {
    fs_sleep_ms(20);
    refused = fs_proxy_faults(e);
  }
  fs_control(e, NULL);
  if (refused <= 0) {
    fprintf(stderr, "%s: no request met the hub while it was down\n", e->name);
    ok = false;
  }
  ok &= fs_expect_status(e, "the trainer", fs_wait(e, pid, FS_CHILD_TIMEOUT_S),
                         0);
  fs_info_read(info, &in);
  fs_expect x = {n, 65536, best_bytes, true};
  fs_result r = {0};
  fs_check(e, in.model_id, &x, &r);
  long grew = in.rss_max_kb - in.rss_start_kb;
  printf("scenario %s: trainer memory grew %ld KiB while uploading a %lld "
         "MiB final%s\n",
         e->name, grew, best_bytes >> 20,
         in.sanitized ? " (sanitizer build: not bounded here)" : "");
  if (!in.sanitized && (in.rss_max_kb < 0 || grew * 1024 > best_bytes / 2)) {
    fprintf(stderr, "%s: trainer memory grew with the file size\n", e->name);
    ok = false;
  }
  return fs_report(e, n, &r, ok);
}

/* 3. Every kind of failure the proxy can make, each twice, spread over
 * the run (one request goes through after each fault). */
static int fs_every_fault(fs_env *e) {
  const int n = 40;
  fs_control(e, "gap 1\n"
                "kind=reset,after=3000,match=POST /v1/models/*/upload,"
                "count=2\n"
                "kind=slow,bps=400000,match=POST /v1/models/*/upload,count=2\n"
                "kind=refuse,match=POST *,count=2\n"
                "kind=status,code=408,match=POST *,count=2\n"
                "kind=status,code=429,retry_after=1,match=POST *,count=2\n"
                "kind=status,code=500,match=POST *,count=2\n"
                "kind=status,code=502,match=POST *,count=2\n"
                "kind=status,code=503,match=POST *,count=2\n"
                "kind=status,code=504,match=POST *,count=2\n"
                "kind=reset,after=20,match=POST *,count=2\n"
                "kind=stall,secs=2,match=POST *,count=2\n");
  static const char *const kinds[] = {"-> refused",      "-> answered 408",
                                      "-> answered 429", "-> answered 500",
                                      "-> answered 502", "-> answered 503",
                                      "-> answered 504", "-> reset mid-body",
                                      "-> stalled",      "-> slow"};
  const size_t n_kinds = sizeof kinds / sizeof kinds[0];
  /* How many requests a run makes depends on how the sender batches, so
   * runs (each a new model, each checked) repeat until every kind of fault
   * was met, at most 4 times. */
  bool ok = true;
  fs_result r = {0};
  int runs = 0;
  size_t met = 0;
  while (runs < 4 && met < n_kinds) {
    char info[700];
    snprintf(info, sizeof info, "%s/train%d.info", e->work, runs);
    const char *const extra[] = {"--epochs",     "40",           "--sleep-ms",
                                 "150",          "--ckpt-bytes", "65536",
                                 "--best-bytes", "262144",       NULL};
    int st = fs_train(e, info, extra);
    fs_info in;
    fs_info_read(info, &in);
    if (st == 3) {
      /* the hub did not answer in time (a stalled create, a failed final
       * sync): the run stays spooled and `chub sync` must finish it */
      printf("scenario %s: run %d ended offline; syncing %s\n", e->name, runs,
             in.run_id);
      ok &= fs_expect_status(e, "chub sync", fs_sync(e, in.run_id), 0);
      fs_run_model_id(e, in.run_id, in.model_id, sizeof in.model_id);
    } else {
      ok &= fs_expect_status(e, "the trainer", st, 0);
    }
    fs_expect x = {n, 65536, 262144, true};
    fs_check(e, in.model_id, &x, &r);
    runs++;
    char *log = fs_read_file(e->proxy_log);
    met = 0;
    for (size_t i = 0; i < n_kinds; i++)
      met += log && strstr(log, kinds[i]) ? 1 : 0;
    free(log);
  }
  char *log = fs_read_file(e->proxy_log);
  for (size_t i = 0; i < n_kinds; i++) {
    if (!log || !strstr(log, kinds[i])) {
      fprintf(stderr,
              "%s: %d runs never met '%s'; the scenario did not exercise "
              "it\n",
              e->name, runs, kinds[i]);
      ok = false;
    }
  }
  free(log);
  return fs_report(e, n * runs, &r, ok);
}

/* A resumed trainer either finished its final sync (0) or, when the hub
 * did not answer its load or final in time (a loaded machine), ended
 * offline (3) with its run spooled: then `chub sync` must finish it. */
static bool fs_resumed(fs_env *e, int status, const char *info) {
  if (status != 3)
    return fs_expect_status(e, "the resumed trainer", status, 0);
  fs_info in;
  if (fs_info_read(info, &in) != 0 || !strcmp(in.run_id, "-"))
    return fs_expect_status(e, "the resumed trainer (no run id)", status, 0);
  printf("scenario %s: the resumed run %s ended offline; syncing it\n", e->name,
         in.run_id);
  return fs_expect_status(e, "chub sync of the resumed run",
                          fs_sync(e, in.run_id), 0);
}

/* The highest epoch the hub holds for model `id` (-1: none) and whether
 * the model is trained. */
static void fs_hub_state(fs_env *e, const char *id, int *last, bool *trained) {
  *last = -1;
  *trained = false;
  char *url =
      th_fmt("%s/v1/models/%s/metrics", chubd_proc_base_url(e->hub), id);
  th_response resp = {0};
  if (th_json_request("GET", url, chubd_proc_key(e->hub), NULL, &resp) == 0 &&
      resp.status == 200) {
    json_t *root = th_json_parse(resp.body);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(root, "data"), i, row) {
      int ep = (int)json_integer_value(json_object_get(row, "epoch"));
      if (ep > *last)
        *last = ep;
    }
    json_decref(root);
  }
  th_response_free(&resp);
  free(url);
  url = th_fmt("%s/v1/models/%s", chubd_proc_base_url(e->hub), id);
  resp = (th_response){0};
  if (th_json_request("GET", url, chubd_proc_key(e->hub), NULL, &resp) == 0 &&
      resp.status == 200) {
    json_t *root = th_json_parse(resp.body);
    const char *st = th_json_str(root, "data.status");
    *trained = st && !strcmp(st, "trained");
    json_decref(root);
  }
  th_response_free(&resp);
  free(url);
}

/* 4. The trainer is SIGKILLed at a random epoch (20 seeds); the leftover
 * run is synced and training resumed, in either order. Then 10 more are
 * killed from outside at a random moment. */
static int fs_trainer_killed(fs_env *e) {
  const int n = 6, seeds = 20;
  fs_result total = {0};
  bool ok = true;
  for (int seed = 1; seed <= seeds; seed++) {
    srand((unsigned)seed);
    int kill_at = rand() % (n - 1);
    const char *phase = rand() % 2 ? "fit" : "save";
    bool sync_first = seed % 2 == 0;
    char dir[700], info[700], info2[700], k[16], start[16];
    snprintf(dir, sizeof dir, "%s/seed%d", e->wdir, seed);
    mkdir(dir, 0700);
    snprintf(info, sizeof info, "%s/kill%d.info", e->work, seed);
    snprintf(info2, sizeof info2, "%s/resume%d.info", e->work, seed);
    snprintf(k, sizeof k, "%d", kill_at);
    snprintf(start, sizeof start, "%d", kill_at + 1);
    const char *const first[] = {"--dir",     dir, "--epochs",     "6",
                                 "--kill-at", k,   "--kill-phase", phase,
                                 NULL};
    bool s_ok = fs_expect_status(e, "the killed trainer",
                                 fs_train(e, info, first), 128 + SIGKILL);
    fs_info in;
    if (fs_info_read(info, &in) != 0 || !strcmp(in.model_id, "-")) {
      fprintf(stderr, "%s: seed %d: no model id from the killed run\n", e->name,
              seed);
      ok = false;
      continue;
    }
    char url[256];
    snprintf(url, sizeof url, "%s/models/%s", e->proxy_url, in.model_id);
    const char *const resume[] = {
        "--dir", dir, "--epochs", "6", "--model", url, "--start", start, NULL};
    int sync_st = -1;
    if (sync_first)
      sync_st = fs_sync(e, in.run_id);
    s_ok &= fs_resumed(e, fs_train(e, info2, resume), info2);
    if (!sync_first)
      sync_st = fs_sync(e, in.run_id);
    s_ok &= fs_expect_status(e, "chub sync of the killed run", sync_st, 0);
    fs_expect x = {n, 65536, 65536, true};
    fs_result r = {0};
    fs_check(e, in.model_id, &x, &r);
    s_ok &= fs_run_pending(e, in.run_id) == 0;
    printf("scenario %s: seed %d killed at epoch %d (%s), %s: lost %d, "
           "duplicated %d\n",
           e->name, seed, kill_at, phase,
           sync_first ? "synced then resumed" : "resumed then synced",
           r.lost + r.wrong, r.duplicated);
    total.lost += r.lost;
    total.wrong += r.wrong;
    total.duplicated += r.duplicated;
    total.torn += r.torn;
    ok &= s_ok;
  }
  int epochs = n * seeds;
  /* Then 10 seeds killed from outside at a random moment (inside a
   * callback, mid-upload, mid-write of last.pt): the leftover run is
   * synced, then training resumes after the last epoch the hub holds. */
  const int n2 = 12;
  for (int seed = 1; seed <= 10; seed++) {
    srand(1000u + (unsigned)seed);
    long delay = 100 + rand() % 1000;
    char dir[700], info[700], info2[700], start[16];
    snprintf(dir, sizeof dir, "%s/ext%d", e->wdir, seed);
    mkdir(dir, 0700);
    snprintf(info, sizeof info, "%s/ext%d.info", e->work, seed);
    snprintf(info2, sizeof info2, "%s/extresume%d.info", e->work, seed);
    const char *const first[] = {"--dir",        dir,          "--epochs",
                                 "12",           "--sleep-ms", "80",
                                 "--ckpt-bytes", "262144",     NULL};
    pid_t pid = fs_train_async(e, info, first);
    fs_sleep_ms(delay);
    kill(pid, SIGKILL);
    int st = fs_wait(e, pid, 30);
    fs_info in;
    if (fs_info_read(info, &in) != 0 || !strcmp(in.run_id, "-")) {
      printf("scenario %s: external seed %d killed after %ld ms, before the "
             "session opened: nothing spooled\n",
             e->name, seed, delay);
      continue;
    }
    bool s_ok = fs_expect_status(e, "chub sync of the killed run",
                                 fs_sync(e, in.run_id), 0);
    char id[64];
    fs_run_model_id(e, in.run_id, id, sizeof id);
    int last = -1;
    bool trained = false;
    fs_hub_state(e, id, &last, &trained);
    if (!trained) {
      char url[256];
      snprintf(url, sizeof url, "%s/models/%s", e->proxy_url, id);
      snprintf(start, sizeof start, "%d", last + 1);
      const char *const resume[] = {"--dir",        dir,      "--epochs", "12",
                                    "--ckpt-bytes", "262144", "--model",  url,
                                    "--start",      start,    NULL};
      s_ok &= fs_resumed(e, fs_train(e, info2, resume), info2);
    }
    fs_expect x = {n2, 262144, 65536, true};
    fs_result r = {0};
    fs_check(e, id, &x, &r);
    s_ok &= fs_run_pending(e, in.run_id) == 0;
    printf("scenario %s: external seed %d killed after %ld ms (%s), hub "
           "held epochs 0..%d%s: lost %d, duplicated %d\n",
           e->name, seed, delay,
           st == 128 + SIGKILL ? "killed" : "had finished", last,
           trained ? ", trained" : ", resumed", r.lost + r.wrong, r.duplicated);
    total.lost += r.lost;
    total.wrong += r.wrong;
    total.duplicated += r.duplicated;
    total.torn += r.torn;
    epochs += n2;
    ok &= s_ok;
  }
  return fs_report(e, epochs, &total, ok);
}

/* 5. chubd is SIGKILLed while a checkpoint upload streams through a slow
 * link, then restarted on its data directory. */
static int fs_chubd_killed(fs_env *e) {
  const int n = 14;
  const char *rules =
      "kind=slow,bps=1000000,match=POST /v1/models/*/upload,count=3\n";
  fs_control(e, rules);
  char info[700];
  snprintf(info, sizeof info, "%s/train.info", e->work);
  const char *const extra[] = {"--epochs",     "14",           "--sleep-ms",
                               "150",          "--ckpt-bytes", "3145728",
                               "--best-bytes", "1048576",      NULL};
  pid_t pid = fs_train_async(e, info, extra);
  fs_info in;
  bool ok = fs_wait_info(info, &in) == 0;
  if (fs_wait_proxy_log(e, "-> slow", 30) != 0) {
    fprintf(stderr, "%s: no checkpoint upload started\n", e->name);
    ok = false;
  }
  fs_sleep_ms(800); /* mid-body: about a quarter of the file sent */
  chubd_proc_kill9(e->hub);
  fs_result r = {0};
  if (fs_integrity(e) != 0)
    ok = false;
  fs_check_blobs(e, &r);
  fs_sleep_ms(700); /* the client meets a dead hub for a while */
  if (chubd_proc_restart(e->hub) != 0) {
    fprintf(stderr, "%s: chubd did not restart\n", e->name);
    fs_wait(e, pid, 5);
    return 1;
  }
  fs_control(e, rules);
  ok &= fs_expect_status(e, "the trainer", fs_wait(e, pid, FS_CHILD_TIMEOUT_S),
                         0);
  fs_info_read(info, &in);
  fs_expect x = {n, 3145728, 1048576, true};
  fs_check(e, in.model_id, &x, &r);
  int blobs = fs_check_blobs(e, &r);
  if (chubd_proc_stop(e->hub) != 0)
    fprintf(stderr, "%s: chubd did not stop cleanly\n", e->name);
  if (fs_integrity(e) != 0)
    ok = false;
  printf("scenario %s: integrity_check ok after SIGKILL and at the end; %d "
         "stored blobs all match their SHA-256\n",
         e->name, blobs);
  chubd_proc_restart(e->hub); /* for fs_report's counters only */
  return fs_report(e, n, &r, ok);
}

/* 6. The trainer rewrites last.pt in place while the previous version
 * uploads: the hub must hold whole versions only. */
static int fs_ckpt_rewrite(fs_env *e) {
  const int n = 10;
  fs_control(e, "kind=slow,bps=3000000,match=POST /v1/models/*/upload,"
                "count=6\n");
  char info[700];
  snprintf(info, sizeof info, "%s/train.info", e->work);
  const char *const extra[] = {
      "--epochs", "10",         "--ckpt-bytes", "2097152",      "--rewrite-ms",
      "400",      "--sleep-ms", "300",          "--best-bytes", "524288",
      NULL};
  bool ok = fs_expect_status(e, "the trainer", fs_train(e, info, extra), 0);
  fs_info in;
  fs_info_read(info, &in);
  fs_expect x = {n, 2097152, 524288, true};
  fs_result r = {0};
  fs_check(e, in.model_id, &x, &r);
  fs_check_blobs(e, &r);
  return fs_report(e, n, &r, ok);
}

/* 7. The hub stored the final weights but its answer never reached the
 * trainer, which was killed while the proxy held that answer: `chub sync`
 * must recognise that the hub already holds exactly these weights and
 * finish without an error, leaving nothing pending. */
static int fs_final_answer_lost(fs_env *e) {
  const int n = 4;
  char err[256] = "";
  /* no epoch checkpoints: the one upload is the final */
  if (chub_settings_set("rate_limit_ckpt", "600000", err, sizeof err) !=
      CHUB_OK) {
    fprintf(stderr, "%s: cannot set rate_limit_ckpt: %s\n", e->name, err);
    return 1;
  }
  fs_control(e, "kind=hold,secs=30,match=POST /v1/models/*/upload,count=1\n");
  char info[700];
  snprintf(info, sizeof info, "%s/train.info", e->work);
  const char *const extra[] = {
      "--epochs", "4", "--ckpt-bytes", "65536", "--best-bytes", "131072", NULL};
  pid_t pid = fs_train_async(e, info, extra);
  bool ok = fs_wait_proxy_log(e, "-> answer held", 60) == 0;
  if (!ok)
    fprintf(stderr, "%s: the final upload never got its answer\n", e->name);
  kill(pid, SIGKILL);
  ok &= fs_expect_status(e, "the trainer", fs_wait(e, pid, 10), 128 + SIGKILL);
  fs_control(e, NULL);
  fs_info in;
  if (fs_info_read(info, &in) != 0 || !strcmp(in.run_id, "-")) {
    fprintf(stderr, "%s: the trainer left no run id\n", e->name);
    return 1;
  }
  ok &= fs_expect_status(e, "chub sync", fs_sync(e, in.run_id), 0);
  fs_expect x = {n, 65536, 131072, true};
  fs_result r = {0};
  fs_check(e, in.model_id, &x, &r);
  ok &= fs_run_pending(e, in.run_id) == 0;
  return fs_report(e, n, &r, ok);
}

int main(int argc, char **argv) {
  fs_env e = {0};
  if (argc < 2)
    goto usage;
  e.name = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--chubd"))
      e.chubd_bin = argv[i + 1];
    else if (!strcmp(argv[i], "--cli"))
      e.cli_bin = argv[i + 1];
    else if (!strcmp(argv[i], "--proxy"))
      e.proxy_bin = argv[i + 1];
    else if (!strcmp(argv[i], "--trainer"))
      e.trainer_bin = argv[i + 1];
    else
      goto usage;
  }
  if (!e.chubd_bin || !e.cli_bin || !e.proxy_bin || !e.trainer_bin)
    goto usage;
  static const struct {
    const char *name;
    int (*fn)(fs_env *);
  } table[] = {{"hub_down", fs_hub_down},
               {"hub_down_middle", fs_hub_down_middle},
               {"every_fault", fs_every_fault},
               {"trainer_killed", fs_trainer_killed},
               {"chubd_killed", fs_chubd_killed},
               {"ckpt_rewrite", fs_ckpt_rewrite},
               {"final_answer_lost", fs_final_answer_lost}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(table[i].name, e.name) != 0)
      continue;
    chub_set_log(NULL, NULL, CHUB_LOG_WARN);
    if (fs_setup(&e) != 0) {
      fprintf(stderr, "%s: setup failed (chubd or the proxy did not start)\n",
              e.name);
      fs_teardown(&e, false);
      return 1;
    }
    int rc = table[i].fn(&e);
    fs_teardown(&e, rc == 0);
    return rc;
  }
usage:
  fprintf(stderr, "usage: fault_scenarios hub_down|hub_down_middle|"
                  "every_fault|trainer_killed|chubd_killed|ckpt_rewrite|"
                  "final_answer_lost "
                  "--chubd BIN --cli BIN --proxy BIN --trainer BIN\n");
  return 2;
}

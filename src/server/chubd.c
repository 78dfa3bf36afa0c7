/*
 * chubd.c - chubd's command line and lifetime: parse the flags, run a
 * `keys` command or start serving, write the port file, wait for SIGTERM
 * or SIGINT, drain, close the database and exit 0.
 *
 * chubd_main() is the whole program so that `chub serve ARGS` runs exactly
 * what `chubd ARGS` runs. Signals are blocked before any thread starts and
 * taken synchronously with sigwait(), so no code runs in a signal handler
 * and every server thread inherits the mask.
 */
#include "chubd.h"
#include "migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "blobs.h"
#include "keys.h"
#include "offload.h"
#include "server.h"

/* Threads where uploads end (offload.h): how many may sit in a slow fsync
 * at once before the end of another waits for one of them. */
#define CHUBD_OFFLOAD_THREADS 8

static int chubd_bad(const char *fmt, const char *arg) {
  fprintf(stderr, "chubd: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  config_usage(stderr);
  return 2;
}

/* Without --public-url, URLs name the address chubd listens on; a
 * wildcard address names no host, so then each request's Host is used. */
static void chubd_default_public_url(chubd_config *cfg) {
  if (cfg->public_url[0] || strcmp(cfg->host, "0.0.0.0") == 0 ||
      strcmp(cfg->host, "::") == 0 || cfg->host[0] == '\0')
    return;
  int v6 = strchr(cfg->host, ':') != NULL;
  snprintf(cfg->public_url, sizeof cfg->public_url, "%s://%s%s%s:%d",
           cfg->tls_cert[0] ? "https" : "http", v6 ? "[" : "", cfg->host,
           v6 ? "]" : "", cfg->port);
}

static int chubd_default_data(chubd_config *cfg) {
  const char *xdg = getenv("XDG_DATA_HOME");
  const char *home = getenv("HOME");
  int w;
  if (xdg && *xdg)
    w = snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s/chub/chubd", xdg);
  else if (home && *home)
    w = snprintf(cfg->data_dir, sizeof cfg->data_dir,
                 "%s/.local/share/chub/chubd", home);
  else
    return -1;
  return w > 0 && (size_t)w < sizeof cfg->data_dir ? 0 : -1;
}

/* Parses flags up to the first non-flag (a `keys` command). Returns 0, 1
 * when it printed help or the version, or 2 on a bad flag. */
static int chubd_write_port_file(const char *path, int port) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  int ok = fprintf(f, "%d\n", port) > 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* The store chosen by the flags: PostgreSQL with --db, else SQLite in the
 * data directory. NULL with a message in err. */
static store *chubd_store_open(const chubd_config *cfg, char *err,
                               size_t errn) {
  if (cfg->db[0])
    return store_pg_open(cfg->db, cfg->db_pool, err, errn);
  return store_sqlite_open(cfg->data_dir, err, errn);
}

/* The secret that signs download URLs, from the store, so that every chubd
 * on one database agrees on it. A hub on SQLite that kept it in
 * DATA/url-secret gives the store that one: links handed out before stay
 * valid. */
static int chubd_url_secret(chubd_server *srv, char *err, size_t errn) {
  unsigned char init[SIGN_SECRET_LEN];
  int have = 0;
  if (!srv->cfg.db[0] &&
      (have = sign_secret_file(srv->cfg.data_dir, init, err, errn)) < 0)
    return -1;
  if (!have && sign_secret_make(init, err, errn) < 0)
    return -1;
  store_rc rc = srv->st->ops->secret_get(srv->st, "url", init, srv->url_secret,
                                         SIGN_SECRET_LEN);
  OPENSSL_cleanse(init, sizeof init);
  if (rc != STORE_OK) {
    snprintf(err, errn,
             "cannot read or store the URL secret in the "
             "database (see above)");
    return -1;
  }
  return 0;
}

static int chubd_keys(chubd_config *cfg, int argc, char **argv) {
  char err[1024];
  /* A first `keys create` makes the data directory; DATA/tmp is left
   * alone, a chubd may be uploading into it. */
  if (blobs_prepare(cfg->data_dir, cfg->blobs_dir, 0, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: %s\n", err);
    return 1;
  }
  store *st = chubd_store_open(cfg, err, sizeof err);
  if (!st) {
    fprintf(stderr, "chubd: %s\n", err);
    return 1;
  }
  int rc = keys_command(st, cfg->data_dir, argc, argv);
  st->ops->close(st);
  return rc;
}

/* chubd gc [--dry-run] [--stale S]: removes the blobs no row names and
 * temporaries untouched for S seconds (default a day). */
static int chubd_gc(chubd_config *cfg, int argc, char **argv) {
  int dry_run = 0;
  double stale_s = 86400;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (strcmp(argv[i], "--dry-run") == 0) {
      dry_run = 1;
    } else if (strcmp(argv[i], "--stale") == 0 && i + 1 < argc &&
               (stale_s = strtod(argv[i + 1], &end)) >= 0 && end &&
               end != argv[i + 1] && !*end) {
      i++;
    } else {
      fprintf(stderr,
              "chubd: gc takes --dry-run and --stale SECONDS, not %s\n"
              "usage: chubd [--data DIR] [--blobs DIR] gc [--dry-run] "
              "[--stale S]\n",
              argv[i]);
      return 2;
    }
  }
  char err[512];
  if (blobs_prepare(cfg->data_dir, cfg->blobs_dir, 0, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: %s\n", err);
    return 1;
  }
  store *st = chubd_store_open(cfg, err, sizeof err);
  if (!st) {
    fprintf(stderr, "chubd: %s\n", err);
    return 1;
  }
  int rc = blobs_gc(cfg->blobs_dir, st, stale_s, dry_run, stdout);
  st->ops->close(st);
  return rc;
}

/* Holds DATA/chubd.lock for the life of the process: a second chubd on
 * the same directory would clean the first one's uploads in progress. The
 * kernel drops the lock when the process ends, however it ends. */
static int chubd_lock_data(const char *data_dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/chubd.lock", data_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "chubd: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr, "chubd: another chubd already serves %s\n", data_dir);
    close(fd);
    return -1;
  }
  return fd;
}

/* The host name of --public-url, which the Host check then accepts. */
static void chubd_public_host(chubd_server *srv) {
  const char *u = srv->cfg.public_url;
  const char *h = strstr(u, "://");
  srv->public_host[0] = srv->public_origin[0] = srv->own_host[0] = '\0';
  /* Listening on every address, chubd is reached by this machine's name
   * too (what `hostname` prints). */
  if ((strcmp(srv->cfg.host, "0.0.0.0") == 0 ||
       strcmp(srv->cfg.host, "::") == 0) &&
      gethostname(srv->own_host, sizeof srv->own_host - 1) != 0)
    srv->own_host[0] = '\0';
  srv->secure_cookies = srv->cfg.tls_cert[0] || strncmp(u, "https://", 8) == 0;
  if (!h)
    return;
  h += 3;
  size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
  if (n < sizeof srv->public_host)
    snprintf(srv->public_host, sizeof srv->public_host, "%.*s", (int)n, h);
  size_t o = (size_t)(h - u) + strcspn(h, "/");
  snprintf(srv->public_origin, sizeof srv->public_origin, "%.*s", (int)o, u);
}

/* A PEM file's text (at most 1 MiB), malloc'd, or NULL with err. */
static char *chubd_read_pem(const char *path, char *err, size_t errn) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errn, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1024 * 1024, len = 0;
  char *buf = malloc(cap + 2);
  if (buf) {
    len = fread(buf, 1, cap + 1, f);
    buf[len] = '\0';
  }
  int bad = !buf || ferror(f) || len > cap || len == 0;
  fclose(f);
  if (bad || !strstr(buf, "-----BEGIN ")) {
    snprintf(err, errn, "%s is not a PEM file (or is over 1 MiB)", path);
    free(buf);
    return NULL;
  }
  return buf;
}

static int chubd_serve(chubd_server *srv) {
  char err[1024] = "";
  int lock_fd = -1;
  if (blobs_prepare(srv->cfg.data_dir, srv->cfg.blobs_dir, 0, err, sizeof err) <
          0 ||
      (lock_fd = chubd_lock_data(srv->cfg.data_dir)) < 0 ||
      blobs_prepare(srv->cfg.data_dir, srv->cfg.blobs_dir, 1, err, sizeof err) <
          0) {
    if (err[0]) /* chubd_lock_data() speaks for itself */
      fprintf(stderr, "chubd: %s\n", err);
    if (lock_fd >= 0)
      close(lock_fd);
    return 1;
  }
  srv->st = chubd_store_open(&srv->cfg, err, sizeof err);
  if (!srv->st) {
    fprintf(stderr, "chubd: %s\n", err);
    close(lock_fd);
    return 1;
  }
  if (chubd_url_secret(srv, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: %s\n", err);
    srv->st->ops->close(srv->st);
    close(lock_fd);
    return 1;
  }
  if (srv->cfg.tls_cert[0] &&
      (!(srv->tls_cert = chubd_read_pem(srv->cfg.tls_cert, err, sizeof err)) ||
       !(srv->tls_key = chubd_read_pem(srv->cfg.tls_key, err, sizeof err)))) {
    fprintf(stderr, "chubd: %s\n", err);
    free(srv->tls_cert);
    srv->st->ops->close(srv->st);
    close(lock_fd);
    return 1;
  }
  srv->rl = ratelimit_new(srv->cfg.rate, srv->cfg.burst);
  srv->events_rl =
      ratelimit_new(srv->cfg.events_rate, 4 * srv->cfg.events_rate);
  srv->kc = keycache_new(srv->cfg.data_dir);
  /* On a shared database, `chubd keys revoke` may run against another
   * chubd's data directory: a revoked key stops working here within 1 s. */
  if (srv->kc && srv->cfg.db[0])
    keycache_set_max_age(srv->kc, 1000);
  pthread_mutex_init(&srv->blobs_mu, NULL);
  atomic_init(&srv->in_flight, 0);
  atomic_init(&srv->suspended, 0);
  atomic_init(&srv->public_url_ready, srv->cfg.public_url[0] != '\0');
  chubd_public_host(srv);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Threads start only now, so that each inherits the blocked signals. */
  srv->conns = conns_new(srv->cfg.header_timeout_s, srv->cfg.max_connections,
                         srv->cfg.max_per_ip);
  srv->offload = offload_start(CHUBD_OFFLOAD_THREADS);

  int status = 1;
  int ready =
      srv->rl && srv->events_rl && srv->kc && srv->conns && srv->offload;
  struct MHD_Daemon *d = ready ? httpd_start(srv, err, sizeof err) : NULL;
  if (!ready)
    snprintf(err, sizeof err, "out of memory");
  if (!d) {
    fprintf(stderr, "chubd: %s\n", err);
    goto out;
  }
  if (prom_listen_start(srv, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: %s\n", err);
    httpd_stop(srv, d);
    goto out;
  }
  srv->cfg.port = httpd_bound_port(srv, d);
  chubd_default_public_url(&srv->cfg);
  atomic_store(&srv->public_url_ready, 1);
  if (srv->cfg.port_file[0] &&
      chubd_write_port_file(srv->cfg.port_file, srv->cfg.port) < 0) {
    fprintf(stderr, "chubd: cannot write port file %s: %s\n",
            srv->cfg.port_file, strerror(errno));
    prom_listen_stop(srv);
    httpd_stop(srv, d);
    goto out;
  }
  int v6 = strchr(srv->cfg.host, ':') != NULL;
  fprintf(stderr, "chubd: listening on %s://%s%s%s:%d\n",
          srv->tls_cert ? "https" : "http", v6 ? "[" : "", srv->cfg.host,
          v6 ? "]" : "", srv->cfg.port);
  if (srv->metrics_daemon)
    fprintf(stderr, "chubd: metrics on http://%s:%d/metrics\n",
            srv->cfg.metrics_host,
            MHD_get_daemon_info(srv->metrics_daemon, MHD_DAEMON_INFO_BIND_PORT)
                ->port);
  int sig = 0;
  while (sigwait(&stop, &sig) != 0)
    ;
  fprintf(stderr, "chubd: %s received; finishing requests in flight\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  prom_listen_stop(srv);
  httpd_stop(srv, d);
  status = 0;
out:
  /* After httpd_stop, which waited for every suspended upload's answer. */
  offload_stop(srv->offload);
  srv->st->ops->close(srv->st);
  ratelimit_free(srv->rl);
  ratelimit_free(srv->events_rl);
  keycache_free(srv->kc);
  conns_free(srv->conns);
  free(srv->tls_cert);
  free(srv->tls_key);
  pthread_mutex_destroy(&srv->blobs_mu);
  close(lock_fd);
  if (status == 0)
    fprintf(stderr, "chubd: stopped\n");
  return status;
}

int chubd_main(int argc, char **argv) {
  chubd_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    fprintf(stderr, "chubd: out of memory\n");
    return 1;
  }
  chubd_config *cfg = &srv->cfg;
  config_defaults(cfg);
  int next = argc;
  int rc = config_parse(argc, argv, cfg, &next);
  if (rc == 1) {
    free(srv);
    return 0;
  }
  if (rc == 0 && !cfg->data_dir[0] && chubd_default_data(cfg) < 0) {
    fprintf(stderr, "chubd: no data directory: set --data, XDG_DATA_HOME "
                    "or HOME\n");
    rc = 2;
  }
  if (rc == 0 && !cfg->blobs_dir[0] &&
      snprintf(cfg->blobs_dir, sizeof cfg->blobs_dir, "%s/blobs",
               cfg->data_dir) >= (int)sizeof cfg->blobs_dir) {
    fprintf(stderr, "chubd: --data is too long\n");
    rc = 2;
  }
  if (rc == 0) {
    if (next < argc && strcmp(argv[next], "keys") == 0)
      rc = chubd_keys(cfg, argc - next, argv + next);
    else if (next < argc && strcmp(argv[next], "gc") == 0)
      rc = chubd_gc(cfg, argc - next, argv + next);
    else if (next < argc && strcmp(argv[next], "migrate") == 0)
      rc = migrate_command(cfg->db, argc - next, argv + next);
    else if (next < argc)
      rc = chubd_bad("unexpected argument %s", argv[next]);
    else
      rc = chubd_serve(srv);
  }
  free(srv);
  return rc;
}

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

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "blobs.h"
#include "keys.h"
#include "server.h"

static void chubd_usage(FILE *out) {
  fprintf(out,
          "usage: chubd [options]\n"
          "       chubd [--data DIR] keys create NAME | keys list | "
          "keys revoke PREFIX|NAME\n"
          "\n"
          "  --listen HOST:PORT   address to serve (default 127.0.0.1:8080; "
          "port 0 = any free port)\n"
          "  --data DIR           data directory (default "
          "$XDG_DATA_HOME/chub/chubd)\n"
          "  --port-file FILE     write the bound port there once serving\n"
          "  --verbose            log one line per request\n"
          "  --agent-timeout S    a training model without a heartbeat for "
          "S seconds shows disconnected (600)\n"
          "  --max-body BYTES     largest JSON body (1048576)\n"
          "  --max-upload BYTES   largest weights upload (8589934592)\n"
          "  --rate-limit N       requests per second per key (100)\n"
          "  --rate-burst N       burst per key (200)\n"
          "  --public-url URL     root of the download URLs chubd hands out "
          "(default\n"
          "                       http://LISTEN-HOST:PORT; env "
          "CHUBD_PUBLIC_URL)\n"
          "  --url-ttl S          lifetime of a signed download URL in "
          "seconds\n"
          "                       (86400; env CHUBD_URL_TTL)\n"
          "  --help, --version\n");
}

static int chubd_bad(const char *fmt, const char *arg) {
  fprintf(stderr, "chubd: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  chubd_usage(stderr);
  return 2;
}

/* "HOST:PORT" or "[V6]:PORT" into cfg. */
static int chubd_parse_listen(const char *s, chubd_config *cfg) {
  const char *colon;
  size_t hlen;
  const char *host = s;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return -1;
    host = s + 1;
    hlen = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon)
      return -1;
    hlen = (size_t)(colon - s);
  }
  long long port;
  if (hlen == 0 || hlen >= sizeof cfg->host ||
      validate_uint(colon + 1, 65535, &port) < 0)
    return -1;
  memcpy(cfg->host, host, hlen);
  cfg->host[hlen] = '\0';
  cfg->port = (int)port;
  return 0;
}

static int chubd_parse_number(const char *s, double min, double max,
                              double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || v < min || v > max || v != v)
    return -1;
  *out = v;
  return 0;
}

/* http[s]://HOST[:PORT][/PATH], kept without a trailing slash. */
static int chubd_set_public_url(chubd_config *cfg, const char *url) {
  size_t n = strlen(url);
  const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                     : strncmp(url, "https://", 8) == 0 ? url + 8
                                                        : NULL;
  if (!host || n >= sizeof cfg->public_url - 1 || *host == '\0' || *host == '/')
    return -1;
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 ||
        strchr("\"<>\\^`{|}?#", *p))
      return -1;
  while (n > 0 && url[n - 1] == '/')
    n--;
  memcpy(cfg->public_url, url, n);
  cfg->public_url[n] = '\0';
  return 0;
}

/* CHUBD_PUBLIC_URL and CHUBD_URL_TTL, which the flags override. */
static int chubd_env(chubd_config *cfg) {
  const char *v = getenv("CHUBD_PUBLIC_URL");
  double d;
  if (v && *v && chubd_set_public_url(cfg, v) < 0)
    return chubd_bad("CHUBD_PUBLIC_URL wants http[s]://HOST[:PORT][/PATH], "
                     "not \"%s\"",
                     v);
  v = getenv("CHUBD_URL_TTL");
  if (v && *v) {
    if (chubd_parse_number(v, 1, 3e7, &d) < 0)
      return chubd_bad("CHUBD_URL_TTL wants seconds from 1 to 30000000, not "
                       "\"%s\"",
                       v);
    cfg->url_ttl_s = (int64_t)d;
  }
  return 0;
}

/* Without --public-url, URLs name the address chubd listens on; a
 * wildcard address names no host, so then each request's Host is used. */
static void chubd_default_public_url(chubd_config *cfg) {
  if (cfg->public_url[0] || strcmp(cfg->host, "0.0.0.0") == 0 ||
      strcmp(cfg->host, "::") == 0 || cfg->host[0] == '\0')
    return;
  int v6 = strchr(cfg->host, ':') != NULL;
  snprintf(cfg->public_url, sizeof cfg->public_url, "http://%s%s%s:%d",
           v6 ? "[" : "", cfg->host, v6 ? "]" : "", cfg->port);
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
static int chubd_parse(int argc, char **argv, chubd_config *cfg, int *next) {
  int i;
  for (i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0)
      break;
    char name[32];
    const char *val = NULL;
    char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nlen >= sizeof name)
      return chubd_bad("unknown option %s", arg);
    memcpy(name, arg, nlen);
    name[nlen] = '\0';
    if (eq && (!strcmp(name, "--help") || !strcmp(name, "--version")))
      return chubd_bad("option %s takes no value", name);
    if (!strcmp(name, "--help")) {
      chubd_usage(stdout);
      return 1;
    }
    if (!strcmp(name, "--version")) {
      printf("chubd %s\n", CHUBD_VERSION);
      return 1;
    }
    if (!strcmp(name, "--verbose")) {
      if (eq)
        return chubd_bad("option %s takes no value", name);
      cfg->verbose = 1;
      continue;
    }
    static const char *const valued[] = {
        "--listen",     "--data",       "--port-file",  "--agent-timeout",
        "--max-body",   "--max-upload", "--rate-limit", "--rate-burst",
        "--public-url", "--url-ttl"};
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
      known |= strcmp(name, valued[k]) == 0;
    if (!known)
      return chubd_bad("unknown option %s", name);
    if (eq)
      val = eq + 1;
    else if (i + 1 < argc)
      val = argv[++i];
    else
      return chubd_bad("option %s needs a value", name);
    double d;
    if (!strcmp(name, "--listen")) {
      if (chubd_parse_listen(val, cfg) < 0)
        return chubd_bad("--listen wants HOST:PORT, not \"%s\"", val);
    } else if (!strcmp(name, "--data")) {
      if (!*val || strlen(val) >= sizeof cfg->data_dir - 64)
        return chubd_bad("--data wants a directory, not \"%s\"", val);
      snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", val);
    } else if (!strcmp(name, "--port-file")) {
      if (!*val || strlen(val) >= sizeof cfg->port_file - 32)
        return chubd_bad("--port-file wants a file name, not \"%s\"", val);
      snprintf(cfg->port_file, sizeof cfg->port_file, "%s", val);
    } else if (!strcmp(name, "--agent-timeout")) {
      if (chubd_parse_number(val, 0, 1e9, &cfg->agent_timeout_s) < 0)
        return chubd_bad("--agent-timeout wants seconds, not \"%s\"", val);
    } else if (!strcmp(name, "--max-body")) {
      if (chubd_parse_number(val, 1, 1e12, &d) < 0)
        return chubd_bad("--max-body wants bytes, not \"%s\"", val);
      cfg->max_body = (uint64_t)d;
    } else if (!strcmp(name, "--max-upload")) {
      if (chubd_parse_number(val, 1, 1e15, &d) < 0)
        return chubd_bad("--max-upload wants bytes, not \"%s\"", val);
      cfg->max_upload = (uint64_t)d;
    } else if (!strcmp(name, "--rate-limit")) {
      if (chubd_parse_number(val, 0.001, 1e9, &cfg->rate) < 0)
        return chubd_bad("--rate-limit wants requests per second, not "
                         "\"%s\"",
                         val);
    } else if (!strcmp(name, "--rate-burst")) {
      if (chubd_parse_number(val, 1, 1e9, &cfg->burst) < 0)
        return chubd_bad("--rate-burst wants a count of 1 or more, not "
                         "\"%s\"",
                         val);
    } else if (!strcmp(name, "--public-url")) {
      if (chubd_set_public_url(cfg, val) < 0)
        return chubd_bad("--public-url wants http[s]://HOST[:PORT][/PATH] "
                         "without query or spaces, not \"%s\"",
                         val);
    } else if (!strcmp(name, "--url-ttl")) {
      if (chubd_parse_number(val, 1, 3e7, &d) < 0)
        return chubd_bad("--url-ttl wants seconds from 1 to 30000000, not "
                         "\"%s\"",
                         val);
      cfg->url_ttl_s = (int64_t)d;
    } else {
      return chubd_bad("unknown option %s", name);
    }
  }
  *next = i;
  return 0;
}

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

static int chubd_keys(chubd_config *cfg, int argc, char **argv) {
  char err[512];
  /* A first `keys create` makes the data directory; DATA/tmp is left
   * alone, a chubd may be uploading into it. */
  if (blobs_prepare(cfg->data_dir, 0, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: %s\n", err);
    return 1;
  }
  store *st = store_sqlite_open(cfg->data_dir, err, sizeof err);
  if (!st) {
    fprintf(stderr, "chubd: %s\n", err);
    return 1;
  }
  int rc = keys_command(st, cfg->data_dir, argc, argv);
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

static int chubd_serve(chubd_server *srv) {
  char err[512] = "";
  int lock_fd = -1;
  if (blobs_prepare(srv->cfg.data_dir, 0, err, sizeof err) < 0 ||
      (lock_fd = chubd_lock_data(srv->cfg.data_dir)) < 0 ||
      blobs_prepare(srv->cfg.data_dir, 1, err, sizeof err) < 0) {
    if (err[0]) /* chubd_lock_data() speaks for itself */
      fprintf(stderr, "chubd: %s\n", err);
    if (lock_fd >= 0)
      close(lock_fd);
    return 1;
  }
  srv->st = store_sqlite_open(srv->cfg.data_dir, err, sizeof err);
  if (!srv->st) {
    fprintf(stderr, "chubd: %s\n", err);
    close(lock_fd);
    return 1;
  }
  if (sign_secret_load(srv->cfg.data_dir, srv->url_secret, err, sizeof err) <
      0) {
    fprintf(stderr, "chubd: %s\n", err);
    srv->st->ops->close(srv->st);
    close(lock_fd);
    return 1;
  }
  srv->rl = ratelimit_new(srv->cfg.rate, srv->cfg.burst);
  srv->kc = keycache_new(srv->cfg.data_dir);
  pthread_mutex_init(&srv->blobs_mu, NULL);
  atomic_init(&srv->in_flight, 0);
  atomic_init(&srv->suspended, 0);
  atomic_init(&srv->public_url_ready, srv->cfg.public_url[0] != '\0');

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  int status = 1;
  struct MHD_Daemon *d =
      srv->rl && srv->kc ? http_start(srv, err, sizeof err) : NULL;
  if (!srv->rl || !srv->kc)
    snprintf(err, sizeof err, "out of memory");
  if (!d) {
    fprintf(stderr, "chubd: %s\n", err);
    goto out;
  }
  srv->cfg.port = http_bound_port(d);
  chubd_default_public_url(&srv->cfg);
  atomic_store(&srv->public_url_ready, 1);
  if (srv->cfg.port_file[0] &&
      chubd_write_port_file(srv->cfg.port_file, srv->cfg.port) < 0) {
    fprintf(stderr, "chubd: cannot write port file %s: %s\n",
            srv->cfg.port_file, strerror(errno));
    http_stop(srv, d);
    goto out;
  }
  int v6 = strchr(srv->cfg.host, ':') != NULL;
  fprintf(stderr, "chubd: listening on http://%s%s%s:%d\n", v6 ? "[" : "",
          srv->cfg.host, v6 ? "]" : "", srv->cfg.port);
  int sig = 0;
  while (sigwait(&stop, &sig) != 0)
    ;
  fprintf(stderr, "chubd: %s received; finishing requests in flight\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  http_stop(srv, d);
  status = 0;
out:
  srv->st->ops->close(srv->st);
  ratelimit_free(srv->rl);
  keycache_free(srv->kc);
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
  snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
  cfg->port = 8080;
  cfg->agent_timeout_s = 600;
  cfg->max_body = 1024 * 1024;
  cfg->max_upload = 8ull * 1024 * 1024 * 1024;
  cfg->rate = 100;
  cfg->burst = 200;
  cfg->url_ttl_s = 24 * 3600;
  int next = argc;
  int rc = chubd_env(cfg);
  if (rc == 0)
    rc = chubd_parse(argc, argv, cfg, &next);
  if (rc == 1) {
    free(srv);
    return 0;
  }
  if (rc == 0 && !cfg->data_dir[0] && chubd_default_data(cfg) < 0) {
    fprintf(stderr, "chubd: no data directory: set --data, XDG_DATA_HOME "
                    "or HOME\n");
    rc = 2;
  }
  if (rc == 0) {
    if (next < argc && strcmp(argv[next], "keys") == 0)
      rc = chubd_keys(cfg, argc - next, argv + next);
    else if (next < argc)
      rc = chubd_bad("unexpected argument %s", argv[next]);
    else
      rc = chubd_serve(srv);
  }
  free(srv);
  return rc;
}

/*
 * config.c - chubd's flags and environment variables, from one table.
 *
 * Each entry says where the value goes and how it is checked; the usage
 * text is printed from the same entries. Environment variables are read
 * first and flags override them. A bad value names the option and what it
 * wants, then the usage follows, and chubd exits 2.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "validate.h"

#define CHUBD_VERSION_TEXT "0.1.0"

typedef enum config_kind {
  CONFIG_FLAG,   /* no value: sets an int to 1 */
  CONFIG_DOUBLE, /* seconds, rates */
  CONFIG_U64,    /* bytes, counts */
  CONFIG_I64,
  CONFIG_UINT,
  CONFIG_PATH,   /* a file or directory name */
  CONFIG_LISTEN, /* HOST:PORT: the main address */
  CONFIG_ADDR,   /* HOST:PORT: the metrics address */
  CONFIG_URL,    /* http[s]://HOST[:PORT][/PATH] */
} config_kind;

typedef struct config_option {
  const char *name; /* "--listen" */
  const char *env;  /* or NULL */
  config_kind kind;
  size_t offset; /* into chubd_config */
  double min, max;
  const char *arg;  /* "HOST:PORT", for the usage */
  const char *help; /* one line, with the default */
} config_option;

#define CFG(field) offsetof(chubd_config, field)

static const config_option config_options[] = {
    {"--listen", NULL, CONFIG_LISTEN, 0, 0, 0, "HOST:PORT",
     "address to serve (127.0.0.1:8080; port 0 = any free port)"},
    {"--data", NULL, CONFIG_PATH, CFG(data_dir), 0, 0, "DIR",
     "data directory ($XDG_DATA_HOME/chub/chubd)"},
    {"--blobs", "CHUBD_BLOBS", CONFIG_PATH, CFG(blobs_dir), 0, 0, "DIR",
     "weights and datasets, shareable by several chubd (DATA/blobs)"},
    {"--db", "CHUBD_DB", CONFIG_PATH, CFG(db), 0, 0, "URL",
     "PostgreSQL database instead of DATA/chubd.db: postgresql://USER@HOST:"
     "PORT/DB or libpq's key=value string"},
    {"--db-pool", "CHUBD_DB_POOL", CONFIG_UINT, CFG(db_pool), 1, 1000, "N",
     "connections to the --db database at most (8)"},
    {"--port-file", NULL, CONFIG_PATH, CFG(port_file), 0, 0, "FILE",
     "write the bound port there once serving"},
    {"--verbose", NULL, CONFIG_FLAG, CFG(verbose), 0, 0, NULL,
     "log one line per request"},
    {"--agent-timeout", NULL, CONFIG_DOUBLE, CFG(agent_timeout_s), 0, 1e9, "S",
     "a training model without a heartbeat for S s shows disconnected (600)"},
    {"--max-body", NULL, CONFIG_U64, CFG(max_body), 1, 1e12, "BYTES",
     "largest JSON body (1048576)"},
    {"--max-upload", NULL, CONFIG_U64, CFG(max_upload), 1, 1e15, "BYTES",
     "largest weights or dataset upload (8589934592)"},
    {"--rate-limit", NULL, CONFIG_DOUBLE, CFG(rate), 0.001, 1e9, "N",
     "requests per second per key (100)"},
    {"--rate-burst", NULL, CONFIG_DOUBLE, CFG(burst), 1, 1e9, "N",
     "burst per key (200)"},
    {"--public-url", "CHUBD_PUBLIC_URL", CONFIG_URL, CFG(public_url), 0, 0,
     "URL", "root of the URLs chubd hands out (http://LISTEN-HOST:PORT)"},
    {"--url-ttl", "CHUBD_URL_TTL", CONFIG_I64, CFG(url_ttl_s), 1, 3e7, "S",
     "lifetime of a signed download URL (86400)"},
    {"--max-connections", NULL, CONFIG_UINT, CFG(max_connections), 1, 1e6, "N",
     "open connections in all (512)"},
    {"--max-per-ip", NULL, CONFIG_UINT, CFG(max_per_ip), 1, 1e6, "N",
     "open connections per client address (32)"},
    {"--header-timeout", NULL, CONFIG_DOUBLE, CFG(header_timeout_s), 0.1, 3600,
     "S",
     "time for a request line and its headers to arrive, from the "
     "connection's start or the previous answer (10)"},
    {"--idle-timeout", NULL, CONFIG_DOUBLE, CFG(idle_timeout_s), 1, 86400, "S",
     "silence allowed in a request body (60)"},
    {"--drain-timeout", NULL, CONFIG_DOUBLE, CFG(drain_timeout_s), 0, 3600, "S",
     "on SIGTERM, time for requests in flight to finish (10)"},
    {"--pages-login", NULL, CONFIG_FLAG, CFG(pages_login), 0, 0, NULL,
     "pages ask for a key even on a loopback address"},
    {"--session-ttl", NULL, CONFIG_I64, CFG(session_ttl_s), 1, 3e8, "S",
     "lifetime of a page session (604800)"},
    {"--events-rate", NULL, CONFIG_DOUBLE, CFG(events_rate), 0.001, 1e6, "N",
     "usage-event requests per second per client address (5)"},
    {"--events-per-day", NULL, CONFIG_I64, CFG(events_per_day), 1, 1e12, "N",
     "usage events kept per client id per day (10000)"},
    {"--metrics", NULL, CONFIG_FLAG, CFG(metrics), 0, 0, NULL,
     "serve GET /metrics (Prometheus text) on the main address, to anyone"},
    {"--metrics-listen", NULL, CONFIG_ADDR, 0, 0, 0, "HOST:PORT",
     "serve GET /metrics only there, on an address of its own"},
    {"--tls-cert", "CHUBD_TLS_CERT", CONFIG_PATH, CFG(tls_cert), 0, 0, "FILE",
     "serve HTTPS with this PEM certificate (chain)"},
    {"--tls-key", "CHUBD_TLS_KEY", CONFIG_PATH, CFG(tls_key), 0, 0, "FILE",
     "and this PEM private key"},
};

#define CONFIG_NOPTIONS (sizeof config_options / sizeof config_options[0])

void config_defaults(chubd_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
  cfg->port = 8080;
  cfg->agent_timeout_s = 600;
  cfg->max_body = 1024 * 1024;
  cfg->max_upload = 8ull * 1024 * 1024 * 1024;
  cfg->rate = 100;
  cfg->burst = 200;
  cfg->url_ttl_s = 24 * 3600;
  cfg->max_connections = 512;
  cfg->max_per_ip = 32;
  cfg->header_timeout_s = 10;
  cfg->idle_timeout_s = 60;
  cfg->drain_timeout_s = 10;
  cfg->session_ttl_s = 7 * 24 * 3600;
  cfg->events_rate = 5;
  cfg->events_per_day = 10000;
}

void config_usage(FILE *out) {
  fprintf(out, "usage: chubd [options]\n"
               "       chubd [--data DIR] [--db URL] keys create NAME | keys "
               "list | keys revoke PREFIX|NAME\n"
               "       chubd [--data DIR] [--db URL] [--blobs DIR] gc "
               "[--dry-run] [--stale S]\n"
               "       chubd migrate --from DATA_DIR --to URL\n\n");
  for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
    const config_option *o = &config_options[i];
    char left[48];
    snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "",
             o->arg ? o->arg : "");
    fprintf(out, "  %-26s %s%s%s%s\n", left, o->help, o->env ? " [env " : "",
            o->env ? o->env : "", o->env ? "]" : "");
  }
  fprintf(out, "  --help, --version\n");
}

static int config_bad(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int config_bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "chubd: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  config_usage(stderr);
  return 2;
}

/* "HOST:PORT" or "[V6]:PORT" into cfg. */
static int config_listen(const char *s, char *out_host, size_t hostn,
                         int *out_port) {
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
  if (hlen == 0 || hlen >= hostn || validate_uint(colon + 1, 65535, &port) < 0)
    return -1;
  memcpy(out_host, host, hlen);
  out_host[hlen] = '\0';
  *out_port = (int)port;
  return 0;
}

/* http[s]://HOST[:PORT][/PATH], kept without a trailing slash. */
static int config_url(const char *url, char *out, size_t outn) {
  size_t n = strlen(url);
  const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                     : strncmp(url, "https://", 8) == 0 ? url + 8
                                                        : NULL;
  if (!host || n >= outn - 1 || *host == '\0' || *host == '/')
    return -1;
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 ||
        strchr("\"<>\\^`{|}?#", *p))
      return -1;
  while (n > 0 && url[n - 1] == '/')
    n--;
  memcpy(out, url, n);
  out[n] = '\0';
  return 0;
}

static const char *config_wants(config_kind k) {
  switch (k) {
  case CONFIG_LISTEN:
  case CONFIG_ADDR:
    return "HOST:PORT";
  case CONFIG_URL:
    return "http[s]://HOST[:PORT][/PATH] without query or spaces";
  case CONFIG_PATH:
    return "a file or directory name";
  default:
    return "a number in its range";
  }
}

/* Stores `val` for option o; 0, or -1 when it is not acceptable. */
static int config_set(const config_option *o, const char *val,
                      chubd_config *cfg) {
  char *field = (char *)cfg + o->offset;
  double d = 0;
  if (o->kind == CONFIG_DOUBLE || o->kind == CONFIG_U64 ||
      o->kind == CONFIG_I64 || o->kind == CONFIG_UINT) {
    char *end;
    errno = 0;
    d = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(d) || d < o->min || d > o->max)
      return -1;
  }
  switch (o->kind) {
  case CONFIG_FLAG:
    *(int *)(void *)field = 1;
    return 0;
  case CONFIG_DOUBLE:
    *(double *)(void *)field = d;
    return 0;
  case CONFIG_U64:
    *(uint64_t *)(void *)field = (uint64_t)d;
    return 0;
  case CONFIG_I64:
    *(int64_t *)(void *)field = (int64_t)d;
    return 0;
  case CONFIG_UINT:
    *(unsigned *)(void *)field = (unsigned)d;
    return 0;
  case CONFIG_PATH:
    if (!*val || strlen(val) >= 4096 - 64)
      return -1;
    snprintf(field, 4096, "%s", val);
    return 0;
  case CONFIG_LISTEN:
    return config_listen(val, cfg->host, sizeof cfg->host, &cfg->port);
  case CONFIG_ADDR:
    return config_listen(val, cfg->metrics_host, sizeof cfg->metrics_host,
                         &cfg->metrics_port);
  case CONFIG_URL:
    return config_url(val, field, sizeof cfg->public_url);
  }
  return -1;
}

static const config_option *config_find(const char *name) {
  for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
    if (strcmp(config_options[i].name, name) == 0)
      return &config_options[i];
  return NULL;
}

static int config_env(chubd_config *cfg) {
  for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
    const config_option *o = &config_options[i];
    const char *v = o->env ? getenv(o->env) : NULL;
    if (v && *v && config_set(o, v, cfg) < 0)
      return config_bad("%s wants %s", o->env, config_wants(o->kind));
  }
  return 0;
}

int config_parse(int argc, char **argv, chubd_config *cfg, int *next) {
  int rc = config_env(cfg);
  if (rc)
    return rc;
  int i;
  for (i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0)
      break;
    char name[40];
    char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nlen >= sizeof name)
      return config_bad("unknown option %s", arg);
    memcpy(name, arg, nlen);
    name[nlen] = '\0';
    if (!strcmp(name, "--help") || !strcmp(name, "--version")) {
      if (eq)
        return config_bad("option %s takes no value", name);
      if (name[2] == 'h')
        config_usage(stdout);
      else
        printf("chubd %s\n", CHUBD_VERSION_TEXT);
      return 1;
    }
    const config_option *o = config_find(name);
    if (!o)
      return config_bad("unknown option %s", name);
    const char *val;
    if (o->kind == CONFIG_FLAG) {
      if (eq)
        return config_bad("option %s takes no value", name);
      val = "1";
    } else if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      return config_bad("option %s needs a value (%s)", name,
                        config_wants(o->kind));
    }
    if (config_set(o, val, cfg) < 0) {
      if (o->max > 0)
        return config_bad("%s wants a number from %g to %g, not \"%s\"", name,
                          o->min, o->max, val);
      return config_bad("%s wants %s, not \"%s\"", name, config_wants(o->kind),
                        val);
    }
  }
  if (!cfg->tls_cert[0] != !cfg->tls_key[0])
    return config_bad("%s needs %s too",
                      cfg->tls_cert[0] ? "--tls-cert" : "--tls-key",
                      cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
  *next = i;
  return 0;
}

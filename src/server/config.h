/*
 * config.h - chubd's settings: one table (config.c) names every flag, its
 * environment variable if it has one, its limits, its default and its
 * help line, so the usage text, the parser and the README cannot drift.
 */
#ifndef CHUBD_CONFIG_H
#define CHUBD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef struct chubd_config {
  char host[256]; /* listen host as given ("127.0.0.1", "::1", ...) */
  int port;
  int metrics;            /* serve GET /metrics on the main address */
  char metrics_host[256]; /* --metrics-listen: "" when not given */
  int metrics_port;
  char data_dir[4096];
  char blobs_dir[4096]; /* --blobs; DATA/blobs when not given */
  char db[4096];        /* PostgreSQL conninfo; "" = SQLite in data_dir */
  unsigned db_pool;     /* its connections at most; 0 = the default */
  char port_file[4096];
  int verbose;
  double agent_timeout_s;
  uint64_t max_body;
  uint64_t max_upload;
  double rate;
  double burst;
  char public_url[512]; /* root of the URLs handed out; "" = from Host */
  int64_t url_ttl_s;    /* lifetime of a signed download URL */
  unsigned max_connections;
  unsigned max_per_ip;
  double header_timeout_s; /* request line and headers, from the start */
  double idle_timeout_s;   /* silence in a body or between requests */
  double drain_timeout_s;  /* shutdown: how long requests may finish */
  int pages_login;         /* pages ask for a key even on loopback */
  int64_t session_ttl_s;
  double events_rate;     /* /v1/events per second per address */
  int64_t events_per_day; /* events stored per client id per day */
  char tls_cert[4096];    /* PEM files; both or neither */
  char tls_key[4096];
} chubd_config;

/* The defaults. */
void config_defaults(chubd_config *cfg);

/* Reads the environment variables, then the flags of argv up to the first
 * argument that is not a flag (*next). Returns 0, 1 when it printed help
 * or the version (exit 0), or 2 after printing what is wrong and the usage
 * (exit 2). */
int config_parse(int argc, char **argv, chubd_config *cfg, int *next);

/* Prints the usage text. */
void config_usage(FILE *out);

#endif

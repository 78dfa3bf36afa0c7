/*
 * cli.h - what the `chub` program's command files share.
 *
 * Each command group lives in its own file (cmd_account.c, cmd_settings.c,
 * cmd_runs.c, cmd_models.c, cmd_pull.c, cmd_datasets.c, cmd_serve.c) and is
 * entered with the arguments after the command name. Exit statuses are the same
 * everywhere: 0 done, 1 the command failed, 2 the command line was wrong (usage
 * on stderr).
 */
#ifndef CHUB_CLI_H
#define CHUB_CLI_H

#include "internal.h"

#include <stdio.h>

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* main.c: prints the usage text to `fp`. */
void cli_usage(FILE *fp);

/* Prints "chub: MESSAGE" to stderr. */
void cli_error(const char *fmt, ...) CHUB_PRINTF(1, 2);

/* Prints the problem and the usage to stderr; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) CHUB_PRINTF(1, 2);

/* cli_http.c: one request to the hub. */
typedef struct cli_http_answer {
  long status;     /* 0 when there was no answer */
  char *body;      /* malloc'd, NUL-terminated; NULL without an answer */
  char error[256]; /* why there was no answer */
} cli_http_answer;

/* Sends METHOD url with `x-api-key: key` (when not NULL) and the JSON
 * `body` (when not NULL). Blocks at most ~30 s. Returns CHUB_OK when any
 * HTTP answer came back (whatever its status), CHUB_ENET otherwise. */
chub_code cli_http_request(const char *method, const char *url, const char *key,
                           const char *body, cli_http_answer *out);
void cli_http_answer_free(cli_http_answer *a);

/* The envelope's "message" of an answer (borrowed from a static buffer),
 * or a description of the status when there is none. */
const char *cli_http_message(const cli_http_answer *a);

/* What a download got. */
typedef struct cli_http_fetch {
  long status;           /* of the last response; 0 when there was none */
  char etag[80];         /* its ETag header as sent (quotes kept), or "" */
  long long range_start; /* a 206's Content-Range start, else -1 */
  long long size;        /* the whole file's size when told, else -1 */
  long long body_start;  /* where the body went in the file, -1: nowhere */
  long long written;     /* body bytes written to the file */
  bool range_wrong;      /* a 206 not starting where asked: nothing written */
  char message[512];     /* an answer other than 200/206: what it says */
  char error[256];       /* why the transfer broke off */
} cli_http_fetch;

typedef void (*cli_http_progress_fn)(long long got, long long total,
                                     void *user);

/* GETs `url` into `fd`, sending no API key (a download URL is a capability
 * of its own). With from > 0 asks for `Range: bytes=from-`: a 206 starting
 * there is written from `from` on; a 200 (the whole file) truncates fd and
 * is written from 0. Any other answer leaves fd untouched and its message
 * in out->message. Follows redirects; no overall time limit, but gives up
 * after a minute without a byte. `progress` (may be NULL) is called with
 * the bytes of the whole file held so far. Returns CHUB_OK when the answer
 * came back whole (whatever its status), CHUB_ENET when the transfer broke
 * off (what arrived stays written), CHUB_EIO when fd could not be written.
 * Does not fsync. */
chub_code cli_http_download(const char *url, int fd, long long from,
                            cli_http_progress_fn progress, void *user,
                            cli_http_fetch *out);

/* POSTs the file at `path` to `url` as the one file part of a
 * multipart/form-data body (field and file name `filename`), streamed from
 * disk, with `x-api-key: key` and `x-chub-sha256: sha256`. `progress` (may
 * be NULL) sees the bytes sent. No overall time limit; gives up after a
 * minute without progress. Returns as cli_http_request. */
chub_code cli_http_upload_file(const char *url, const char *key,
                               const char *path, const char *filename,
                               const char *sha256,
                               cli_http_progress_fn progress, void *user,
                               cli_http_answer *out);

/* The commands. argv[0] is the command name. */
int cmd_account_login(int argc, char **argv);
int cmd_account_logout(int argc, char **argv);
int cmd_settings_main(int argc, char **argv);
int cmd_runs_sync(int argc, char **argv);
int cmd_runs_list(int argc, char **argv);
int cmd_models_main(int argc, char **argv);
int cmd_pull_main(int argc, char **argv);
int cmd_datasets_list(int argc, char **argv);
int cmd_datasets_push(int argc, char **argv);
int cmd_serve_main(int argc, char **argv);

#endif

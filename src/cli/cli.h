/*
 * cli.h - what the `chub` program's command files share.
 *
 * Each command group lives in its own file (cmd_account.c, cmd_settings.c,
 * cmd_runs.c, cmd_models.c, cmd_serve.c) and is entered with the arguments
 * after the command name. Exit statuses are the same everywhere: 0 done,
 * 1 the command failed, 2 the command line was wrong (usage on stderr).
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

/* The commands. argv[0] is the command name. */
int cmd_account_login(int argc, char **argv);
int cmd_account_logout(int argc, char **argv);
int cmd_settings_main(int argc, char **argv);
int cmd_runs_sync(int argc, char **argv);
int cmd_runs_list(int argc, char **argv);
int cmd_models_main(int argc, char **argv);
int cmd_serve_main(int argc, char **argv);

#endif

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

#include <jansson.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* main.c: prints the usage text to `fp`. */
void cli_usage(FILE *fp);

/* Prints "chub: MESSAGE" to stderr. */
void cli_error(const char *fmt, ...) CHUB_PRINTF(1, 2);

/* Prints the problem to stderr, then the usage line of the command being
 * run (every command's usage when none was found); returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) CHUB_PRINTF(1, 2);

/* cli_list.c: prints every page of GET /v1/NOUNs for the saved key, a
 * `header` line then a `row` per item; "(no NOUNs yet)" for none. Returns
 * the exit status. */
int cli_list_all(const char *noun, const char *header,
                 void (*row)(json_t *item));

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

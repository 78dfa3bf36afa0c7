/*
 * main.c - the `chub` program: finds the command and hands it the rest of
 * the command line.
 *
 * The table below is the whole command set, so that `chub help` and the
 * dispatch cannot drift apart.
 */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

typedef struct cli_command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *args;
  const char *help;
} cli_command;

static const cli_command cli_commands[] = {
    {"login", cmd_account_login, "KEY",
     "check KEY with the hub and save it in the settings"},
    {"logout", cmd_account_logout, "", "remove the saved API key"},
    {"settings", cmd_settings_main, "[KEY=VALUE ... | reset]",
     "show the settings, change some, or reset them to defaults"},
    {"serve", cmd_serve_main, "[chubd options]",
     "run the hub server (same options as chubd)"},
    {"sync", cmd_runs_sync, "[RUN ... | --all]",
     "upload spooled runs to the hub (default: every run with pending work)"},
    {"runs", cmd_runs_list, "", "list local runs and what they still hold"},
    {"models", cmd_models_main, "", "list the hub's models for your API key"},
    {"pull", cmd_pull_main, "MODEL [--best|--last|--epoch N] [-o FILE]",
     "download a model's weights (MODEL: URL or id), verified by SHA-256"},
    {"datasets", cmd_datasets_list, "", "list the hub's datasets for your key"},
    {"push-dataset", cmd_datasets_push, "FILE.zip [--name NAME]",
     "create a dataset on the hub and upload the zip to it"},
};
#define CLI_NCOMMANDS (sizeof cli_commands / sizeof cli_commands[0])

/* The command being run, for its usage line after an error in its
 * arguments; NULL before one is found. */
static const cli_command *cli_running;

/* "usage: chub NAME ARGS", trimmed when the command takes no arguments. */
static void cli_command_usage(FILE *fp, const cli_command *c) {
  fprintf(fp, "usage: chub %s%s%s\n", c->name, c->args[0] ? " " : "", c->args);
}

void cli_usage(FILE *fp) {
  fprintf(fp, "usage: chub COMMAND [ARGS]\n\ncommands:\n");
  for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
    char left[64];
    snprintf(left, sizeof left, "%s %s", cli_commands[i].name,
             cli_commands[i].args);
    /* A long synopsis gets its own line rather than a ragged column. */
    if (strlen(left) > 34)
      fprintf(fp, "  %s\n  %-34s %s\n", left, "", cli_commands[i].help);
    else
      fprintf(fp, "  %-34s %s\n", left, cli_commands[i].help);
  }
  fprintf(
      fp,
      "  %-34s %s\n  %-34s %s\n\n"
      "environment: CHUB_API_KEY, CHUB_API_ROOT, CHUB_WEB_ROOT, CHUB_HUB,\n"
      "  CHUB_SYNC, CHUB_MODE, CHUB_RUNS_DIR, CHUB_SYSTEM_METRICS override\n"
      "  the settings file; CHUB_CONFIG_DIR says where it is; CHUB_CA_FILE\n"
      "  names the CA certificates to trust for an https:// hub.\n",
      "help, --help", "show this help", "--version", "print the version");
}

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("chub: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("chub: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n", stderr);
  va_end(ap);
  if (cli_running) {
    cli_command_usage(stderr, cli_running);
    fputs("(chub help lists every command)\n", stderr);
  } else {
    fputc('\n', stderr);
    cli_usage(stderr);
  }
  return CLI_USAGE;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return cli_usage_error("no command given");
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    cli_usage(stdout);
    return CLI_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("chub %s\n", CHUB_VERSION);
    return CLI_OK;
  }
  bool wants_help =
      argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"));
  for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
    if (strcmp(cmd, cli_commands[i].name) != 0)
      continue;
    /* `chub serve --help` is chubd's own help. */
    if (wants_help && cli_commands[i].run != cmd_serve_main) {
      cli_command_usage(stdout, &cli_commands[i]);
      printf("  %s\n", cli_commands[i].help);
      return CLI_OK;
    }
    cli_running = &cli_commands[i];
    return cli_commands[i].run(argc - 1, argv + 1);
  }
  return cli_usage_error("unknown command '%s'", cmd);
}

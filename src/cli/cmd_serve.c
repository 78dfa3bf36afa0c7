/*
 * cmd_serve.c - `chub serve [chubd options]`: the hub server, in process.
 *
 * The same chubd_main() as the chubd program, so both take the same options
 * and behave the same; "serve" stands in for the program name.
 */
#include "cli.h"

#ifdef CHUB_CLI_HAVE_CHUBD
#include "chubd.h"

int cmd_serve_main(int argc, char **argv) {
  return chubd_main(argc, argv);
}
#else
int cmd_serve_main(int argc, char **argv) {
  (void)argc, (void)argv;
  cli_error("this chub was built without the server; run chubd instead");
  return CLI_FAILED;
}
#endif

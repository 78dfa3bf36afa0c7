/*
 * cmd_account.c - `chub login KEY` and `chub logout`.
 *
 * A key is saved only after the hub accepted it, so that a typo never
 * replaces a working key; a rejected key shows the hub's own message.
 */
#include "cli.h"
#include "http.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int cmd_account_login(int argc, char **argv) {
  if (argc != 2)
    return cli_usage_error("login takes exactly one argument: the API key");
  const char *key = argv[1];
  char err[256];
  if (chub_settings_check_value("api_key", key, err, sizeof err) != CHUB_OK)
    return cli_usage_error("%s", err);
  chub_settings s;
  if (chub_settings_load(&s) != CHUB_OK)
    return CLI_FAILED;

  char url[600];
  snprintf(url, sizeof url, "%s/v1/auth", s.api_root);
  http_answer a;
  if (http_once("POST", url, key, "{}", &http_policy_command, &a) != CHUB_OK) {
    cli_error("cannot reach the hub at %s: %s; is it running (chub serve) and "
              "is api_root right (chub settings api_root=URL)?",
              s.api_root, a.error);
    return CLI_FAILED;
  }
  if (a.status != 200) {
    cli_error("login failed: %s (HTTP %ld from %s); the key was not saved",
              http_answer_message(&a), a.status, s.api_root);
    http_answer_free(&a);
    return CLI_FAILED;
  }
  json_t *doc = json_loads(a.body, 0, NULL);
  const char *uid =
      json_string_value(json_object_get(json_object_get(doc, "data"), "uid"));
  chub_code rc = chub_settings_set("api_key", key, err, sizeof err);
  if (rc == CHUB_OK) {
    char path[4096] = "";
    chub_settings_path(path, sizeof path);
    printf("Logged in to %s%s%s; key saved in %s\n", s.api_root,
           uid ? " as " : "", uid ? uid : "", path);
    if (getenv("CHUB_API_KEY"))
      cli_error("note: CHUB_API_KEY is set and overrides the saved key");
  } else {
    cli_error("the hub accepted the key but it could not be saved: %s",
              err[0] ? err : chub_strerror(rc));
  }
  json_decref(doc);
  http_answer_free(&a);
  return rc == CHUB_OK ? CLI_OK : CLI_FAILED;
}

int cmd_account_logout(int argc, char **argv) {
  (void)argv;
  if (argc != 1)
    return cli_usage_error("logout takes no arguments");
  char err[256];
  chub_code rc = chub_settings_set("api_key", "", err, sizeof err);
  if (rc != CHUB_OK) {
    cli_error("cannot remove the API key: %s",
              err[0] ? err : chub_strerror(rc));
    return CLI_FAILED;
  }
  char path[4096] = "";
  chub_settings_path(path, sizeof path);
  printf("Logged out; API key removed from %s\n", path);
  if (getenv("CHUB_API_KEY"))
    cli_error("note: CHUB_API_KEY is still set in the environment");
  return CLI_OK;
}

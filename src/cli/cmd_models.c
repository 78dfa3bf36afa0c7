/*
 * cmd_models.c - `chub models`: the hub's models for the logged-in key.
 *
 * Pages through GET /v1/models with the cursor the hub returns, at most
 * 100 per page and a bounded number of pages, newest first as the hub
 * orders them.
 */
#include "cli.h"
#include "http.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CMD_MODELS_PAGE 100
#define CMD_MODELS_MAX_PAGES 50

static void cmd_models_row(json_t *m) {
  const char *id = json_string_value(json_object_get(m, "id"));
  const char *name =
      json_string_value(json_object_get(json_object_get(m, "meta"), "name"));
  const char *status = json_string_value(json_object_get(m, "status"));
  const char *updated = json_string_value(json_object_get(m, "updated_at"));
  json_t *epochs = json_object_get(m, "epochs");
  json_t *last = json_object_get(m, "last_epoch");
  char ep[32] = "-";
  if (json_is_integer(last) && json_is_integer(epochs))
    snprintf(ep, sizeof ep, "%lld/%lld", json_integer_value(last) + 1,
             json_integer_value(epochs));
  else if (json_is_integer(epochs))
    snprintf(ep, sizeof ep, "%lld", json_integer_value(epochs));
  printf("%-20s  %-24s  %-12s  %-9s  %s\n", id ? id : "?", name ? name : "-",
         status ? status : "-", ep, updated ? updated : "-");
}

int cmd_models_main(int argc, char **argv) {
  (void)argv;
  if (argc != 1)
    return cli_usage_error("models takes no arguments");
  chub_settings s;
  if (chub_settings_load(&s) != CHUB_OK)
    return CLI_FAILED;
  if (!s.api_key[0]) {
    cli_error("no API key is set; log in first with: chub login KEY");
    return CLI_FAILED;
  }
  char cursor[64] = "";
  size_t shown = 0;
  for (int page = 0; page < CMD_MODELS_MAX_PAGES; page++) {
    char url[800];
    snprintf(url, sizeof url, "%s/v1/models?limit=%d%s%s", s.api_root,
             CMD_MODELS_PAGE, cursor[0] ? "&last_doc_id=" : "", cursor);
    http_answer a;
    if (http_once("GET", url, s.api_key, NULL, &http_policy_command, &a) !=
        CHUB_OK) {
      cli_error("cannot reach the hub at %s: %s", s.api_root, a.error);
      return CLI_FAILED;
    }
    if (a.status != 200) {
      cli_error("cannot list models: %s (HTTP %ld)%s", http_answer_message(&a),
                a.status,
                a.status == 401 ? "; check your API key (chub login KEY)" : "");
      http_answer_free(&a);
      return CLI_FAILED;
    }
    json_t *doc = json_loads(a.body, 0, NULL);
    http_answer_free(&a);
    json_t *data = json_object_get(doc, "data");
    json_t *results = json_object_get(data, "results");
    if (!json_is_array(results)) {
      cli_error("the hub's model list is not what the protocol says");
      json_decref(doc);
      return CLI_FAILED;
    }
    if (page == 0)
      printf("%-20s  %-24s  %-12s  %-9s  %s\n", "ID", "NAME", "STATUS",
             "EPOCHS", "UPDATED");
    size_t i;
    json_t *m;
    json_array_foreach(results, i, m) cmd_models_row(m);
    shown += json_array_size(results);
    const char *next = json_string_value(json_object_get(data, "lastRecordId"));
    bool more = next && *next && json_array_size(results) == CMD_MODELS_PAGE &&
                strlen(next) < sizeof cursor;
    if (more)
      snprintf(cursor, sizeof cursor, "%s", next);
    json_decref(doc);
    if (!more)
      break;
  }
  if (shown == 0)
    printf("(no models yet)\n");
  return CLI_OK;
}

/*
 * cmd_models.c - `chub models`: the hub's models for the logged-in key.
 * A row per model under cli_list.c's paging.
 */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>

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
  char header[128];
  snprintf(header, sizeof header, "%-20s  %-24s  %-12s  %-9s  %s", "ID", "NAME",
           "STATUS", "EPOCHS", "UPDATED");
  return cli_list_all("model", header, cmd_models_row);
}

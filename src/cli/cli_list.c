/*
 * cli_list.c - what `chub models` and `chub datasets` share: every page of
 * a hub list (GET /v1/RESOURCE?limit=&last_doc_id=) for the logged-in key,
 * printed a row at a time under one header.
 *
 * Pages through the list with the cursor the hub returns, at most 100 per
 * page and a bounded number of pages, newest first as the hub orders them.
 */
#include "cli.h"
#include "http.h"

#include <stdlib.h>
#include <string.h>

#define CLI_LIST_PAGE 100
#define CLI_LIST_MAX_PAGES 50

int cli_list_all(const char *noun, const char *header,
                 void (*row)(json_t *item)) {
  chub_settings s;
  if (chub_settings_load(&s) != CHUB_OK)
    return CLI_FAILED;
  if (!s.api_key[0]) {
    cli_error("no API key is set; log in first with: chub login KEY");
    return CLI_FAILED;
  }
  char cursor[64] = "";
  size_t shown = 0;
  for (int page = 0; page < CLI_LIST_MAX_PAGES; page++) {
    char url[800];
    snprintf(url, sizeof url, "%s/v1/%ss?limit=%d%s%s", s.api_root, noun,
             CLI_LIST_PAGE, cursor[0] ? "&last_doc_id=" : "", cursor);
    http_answer a;
    if (http_once("GET", url, s.api_key, NULL, &http_policy_command, &a) !=
        CHUB_OK) {
      cli_error("cannot reach the hub at %s: %s", s.api_root, a.error);
      return CLI_FAILED;
    }
    if (a.status != 200) {
      cli_error("cannot list %ss: %s (HTTP %ld)%s", noun,
                http_answer_message(&a), a.status,
                a.status == 401 ? "; check your API key (chub login KEY)" : "");
      http_answer_free(&a);
      return CLI_FAILED;
    }
    json_t *doc = json_loads(a.body, 0, NULL);
    http_answer_free(&a);
    json_t *data = json_object_get(doc, "data");
    json_t *results = json_object_get(data, "results");
    if (!json_is_array(results)) {
      cli_error("the hub's %s list is not what the protocol says", noun);
      json_decref(doc);
      return CLI_FAILED;
    }
    if (page == 0)
      printf("%s\n", header);
    size_t i;
    json_t *item;
    json_array_foreach(results, i, item) row(item);
    shown += json_array_size(results);
    const char *next = json_string_value(json_object_get(data, "lastRecordId"));
    bool more = next && *next && json_array_size(results) == CLI_LIST_PAGE &&
                strlen(next) < sizeof cursor;
    if (more)
      snprintf(cursor, sizeof cursor, "%s", next);
    json_decref(doc);
    if (!more)
      break;
  }
  if (shown == 0)
    printf("(no %ss yet)\n", noun);
  return CLI_OK;
}

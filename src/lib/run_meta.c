/*
 * run_meta.c - reading and replacing run.json (see run_meta.h).
 */
#include "run_meta.h"

#include "fs.h"
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Loads run.json as an object: empty when absent; a damaged file is named
 * in a warning and treated as empty rather than failing the run. */
static json_t *run_meta_load(const char *path) {
  if (access(path, F_OK) != 0)
    return json_object();
  json_error_t err;
  json_t *obj = json_load_file(path, 0, &err);
  if (!obj || !json_is_object(obj)) {
    chub_log(CHUB_LOG_WARN,
             "run metadata %s is not a JSON object (line %d: %s); starting "
             "it afresh",
             path, err.line, obj ? "not an object" : err.text);
    json_decref(obj);
    return json_object();
  }
  return obj;
}

chub_code run_meta_set(const char *dir, const char *key, const char *value) {
  if (!dir || !key || !*key)
    return CHUB_EINVAL;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/run.json", dir);
  json_t *obj = run_meta_load(path);
  chub_code rc = obj ? CHUB_OK : CHUB_ENOMEM;
  if (rc == CHUB_OK) {
    if (value)
      rc = json_object_set_new(obj, key, json_string(value)) == 0
               ? CHUB_OK
               : CHUB_EINVAL; /* not UTF-8 */
    else
      json_object_del(obj, key);
  }
  char *text =
      rc == CHUB_OK ? json_dumps(obj, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
  if (rc == CHUB_OK && !text)
    rc = CHUB_ENOMEM;
  if (rc == CHUB_OK && fs_replace(path, text, strlen(text), 0600) != CHUB_OK) {
    chub_log(CHUB_LOG_ERROR, "cannot write %s: %s", path, strerror(errno));
    rc = CHUB_EIO;
  }
  free(text);
  json_decref(obj);
  return rc;
}

char *run_meta_get(const char *dir, const char *key) {
  if (!dir || !key)
    return NULL;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/run.json", dir);
  json_t *obj = run_meta_load(path);
  const char *v = json_string_value(json_object_get(obj, key));
  char *copy = v ? strdup(v) : NULL;
  json_decref(obj);
  return copy;
}

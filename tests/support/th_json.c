/*
 * th_json.c - reading chub's JSON answers in tests.
 *
 * Every chub answer is an envelope ({"success", "message", "data"}), and
 * tests mostly want one value deep inside it. A dotted path keeps the
 * assertion on one line; every miss prints what was there, so a failing
 * test says what the server actually answered.
 */
#include "th.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *th_json_parse(const char *body) {
  json_error_t err;
  json_t *j = json_loads(body ? body : "", JSON_DECODE_ANY, &err);
  if (!j)
    fprintf(stderr, "th: answer is not JSON (line %d column %d: %s): %.500s\n",
            err.line, err.column, err.text, body ? body : "(no body)");
  return j;
}

static int th_json_is_index(const char *s, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return 0;
  return 1;
}

json_t *th_json_at(json_t *root, const char *path) {
  json_t *cur = root;
  const char *p = path;
  while (cur && p && *p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    char key[256];
    if (n >= sizeof key)
      return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    if (json_is_array(cur) && th_json_is_index(key, n))
      cur = json_array_get(cur, (size_t)strtoul(key, NULL, 10));
    else if (json_is_object(cur))
      cur = json_object_get(cur, key);
    else
      cur = NULL;
    p = dot ? dot + 1 : NULL;
  }
  return cur;
}

const char *th_json_str(json_t *root, const char *path) {
  return json_string_value(th_json_at(root, path));
}

long long th_json_int(json_t *root, const char *path, long long dflt) {
  json_t *v = th_json_at(root, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

int th_json_bool(json_t *root, const char *path) {
  json_t *v = th_json_at(root, path);
  return json_is_boolean(v) ? json_is_true(v) : -1;
}

json_t *th_envelope(const th_response *r) {
  json_t *j = th_json_parse(r->body);
  if (!j)
    return NULL;
  int ok2xx = r->status >= 200 && r->status < 300;
  json_t *success = json_object_get(j, "success");
  json_t *message = json_object_get(j, "message");
  if (!json_is_object(j) || !json_is_boolean(success) ||
      json_is_true(success) != ok2xx || (!ok2xx && !json_is_string(message))) {
    fprintf(stderr,
            "th: status %ld but the answer is not a matching "
            "envelope: %.500s\n",
            r->status, r->body);
    json_decref(j);
    return NULL;
  }
  return j;
}

char *th_create_model(const char *base_url, const char *key, const char *name) {
  json_t *body = json_pack(
      "{s:{s:i,s:i,s:i,s:i,s:s,s:s},s:{s:s},s:{s:{s:s},s:{s:s}},s:{s:s}}",
      "config", "batchSize", 16, "epochs", 100, "imageSize", 640, "patience",
      100, "device", "cpu", "cache", "ram", "dataset", "name", "coco8.yaml",
      "lineage", "architecture", "name", "yolo11n", "parent", "name",
      "yolo11n.pt", "meta", "name", name);
  char *json = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char *url = th_fmt("%s/v1/models", base_url);
  th_response r;
  char *id = NULL;
  if (th_json_request("POST", url, key, json, &r) == 0) {
    json_t *j = th_json_parse(r.body);
    const char *s = th_json_str(j, "data.id");
    if (r.status == 200 && s)
      id = strdup(s);
    else
      fprintf(stderr, "th: create model: status %ld: %.500s\n", r.status,
              r.body);
    json_decref(j);
    th_response_free(&r);
  }
  free(url);
  free(json);
  return id;
}

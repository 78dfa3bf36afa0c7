/*
 * validate.c - the rules for what chubd accepts, kept in one place.
 *
 * Models are described by a small table of known fields and their types
 * (validate_field), so that an unknown field or a wrong type is refused
 * with its dotted path, and the rule can be read at a glance. Metrics,
 * events and upload fields have their own short checkers because their
 * shapes are not fixed field lists.
 */
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static int validate_fail(char err[VALIDATE_ERR], const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, VALIDATE_ERR, fmt, ap);
  va_end(ap);
  return -1;
}

int validate_json_object(const char *buf, size_t len, json_t **out,
                         char err[VALIDATE_ERR]) {
  json_error_t je;
  *out = NULL;
  if (len == 0)
    return validate_fail(err, "request body is empty; a JSON object is "
                              "expected");
  json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  if (!v)
    return validate_fail(err, "malformed JSON at line %d column %d: %s",
                         je.line, je.column, je.text);
  if (!json_is_object(v)) {
    json_decref(v);
    return validate_fail(err, "request body must be a JSON object");
  }
  *out = v;
  return 0;
}

int validate_bool(const char *s, int *out) {
  if (!s)
    return -1;
  if (!strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "1")) {
    *out = 1;
    return 0;
  }
  if (!strcmp(s, "False") || !strcmp(s, "false") || !strcmp(s, "0")) {
    *out = 0;
    return 0;
  }
  return -1;
}

int validate_uint(const char *s, long long max, long long *out) {
  if (!s || !*s || strlen(s) > 18)
    return -1;
  long long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (*p - '0');
  }
  if (v > max)
    return -1;
  *out = v;
  return 0;
}

/* ------------------------------------------------------------- models */

typedef enum validate_type {
  VT_STRING,
  VT_INTEGER,
  VT_NUMBER,
  VT_STRING_OR_BOOL,
  VT_OBJECT,
} validate_type;

typedef struct validate_field {
  const char *name;
  validate_type type;
  const struct validate_field *fields; /* VT_OBJECT: its fields */
} validate_field;

static const validate_field validate_config_fields[] = {
    {"batchSize", VT_NUMBER, NULL},  {"epochs", VT_INTEGER, NULL},
    {"imageSize", VT_INTEGER, NULL}, {"patience", VT_INTEGER, NULL},
    {"device", VT_STRING, NULL},     {"cache", VT_STRING_OR_BOOL, NULL},
    {NULL, VT_STRING, NULL}};
static const validate_field validate_name_fields[] = {{"name", VT_STRING, NULL},
                                                      {"url", VT_STRING, NULL},
                                                      {NULL, VT_STRING, NULL}};
static const validate_field validate_dataset_fields[] = {
    {"name", VT_STRING, NULL},
    {"url", VT_STRING, NULL},
    {"id", VT_STRING, NULL},
    {NULL, VT_STRING, NULL}};
static const validate_field validate_lineage_fields[] = {
    {"architecture", VT_OBJECT, validate_name_fields},
    {"parent", VT_OBJECT, validate_name_fields},
    {NULL, VT_STRING, NULL}};
static const validate_field validate_meta_fields[] = {
    {"name", VT_STRING, NULL},
    {"description", VT_STRING, NULL},
    {NULL, VT_STRING, NULL}};
static const validate_field validate_create_fields[] = {
    {"config", VT_OBJECT, validate_config_fields},
    {"dataset", VT_OBJECT, validate_dataset_fields},
    {"lineage", VT_OBJECT, validate_lineage_fields},
    {"meta", VT_OBJECT, validate_meta_fields},
    {"projectId", VT_STRING, NULL},
    {NULL, VT_STRING, NULL}};
static const validate_field validate_patch_fields[] = {
    {"config", VT_OBJECT, validate_config_fields},
    {"meta", VT_OBJECT, validate_meta_fields},
    {NULL, VT_STRING, NULL}};

static const char *validate_type_name(validate_type t) {
  switch (t) {
  case VT_STRING:
    return "a string";
  case VT_INTEGER:
    return "an integer";
  case VT_NUMBER:
    return "a number";
  case VT_STRING_OR_BOOL:
    return "a string or a boolean";
  case VT_OBJECT:
    return "an object";
  }
  return "?";
}

static int validate_type_ok(json_t *v, validate_type t) {
  if (json_is_null(v))
    return t != VT_OBJECT;
  switch (t) {
  case VT_STRING:
    return json_is_string(v);
  case VT_INTEGER:
    return json_is_integer(v);
  case VT_NUMBER:
    return json_is_number(v);
  case VT_STRING_OR_BOOL:
    return json_is_string(v) || json_is_boolean(v);
  case VT_OBJECT:
    return json_is_object(v);
  }
  return 0;
}

static int validate_object(json_t *obj, const char *path,
                           const validate_field *fields,
                           char err[VALIDATE_ERR]) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    const validate_field *f = fields;
    while (f->name && strcmp(f->name, key) != 0)
      f++;
    if (!f->name)
      return validate_fail(err, "unknown field \"%s%s%.64s\"", path,
                           *path ? "." : "", key);
    if (!validate_type_ok(v, f->type))
      return validate_fail(err, "field \"%s%s%s\" must be %s", path,
                           *path ? "." : "", key, validate_type_name(f->type));
    if (f->type == VT_OBJECT) {
      char sub[128];
      snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
      if (validate_object(v, sub, f->fields, err) < 0)
        return -1;
    }
  }
  return 0;
}

int validate_model_create(json_t *body, char err[VALIDATE_ERR]) {
  return validate_object(body, "", validate_create_fields, err);
}

static const validate_field validate_dataset_body_fields[] = {
    {"meta", VT_OBJECT, validate_meta_fields}, {NULL, VT_STRING, NULL}};

int validate_dataset_body(json_t *body, int create, char err[VALIDATE_ERR]) {
  if (validate_object(body, "", validate_dataset_body_fields, err) < 0)
    return -1;
  json_t *meta = json_object_get(body, "meta");
  json_t *name = json_object_get(meta, "name");
  if (!create && !meta)
    return validate_fail(err, "nothing to update: send \"meta\"");
  if ((create || name) &&
      (!json_is_string(name) || json_string_length(name) == 0 ||
       json_string_length(name) > 128))
    return validate_fail(err, "field \"meta.name\" must be a string of 1 to "
                              "128 characters");
  return 0;
}

int validate_model_patch(json_t *body, char err[VALIDATE_ERR]) {
  if (validate_object(body, "", validate_patch_fields, err) < 0)
    return -1;
  if (!json_object_get(body, "meta") && !json_object_get(body, "config"))
    return validate_fail(err, "nothing to update: send \"meta\" or "
                              "\"config\"");
  return 0;
}

/* ------------------------------------------------------------ metrics */

void validate_epochs_free(store_epoch *e, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(e[i].json);
  free(e);
}

int validate_epoch_key(const char *key, long long *epoch) {
  /* Canonical only: "07" and "7" would name one row and count twice. */
  if (validate_uint(key, 1000000000LL, epoch) < 0 ||
      (key[0] == '0' && key[1] != '\0'))
    return -1;
  return 0;
}

static int validate_one_epoch(const char *key, json_t *value, store_epoch *out,
                              char err[VALIDATE_ERR]) {
  long long epoch;
  if (validate_epoch_key(key, &epoch) < 0)
    return validate_fail(err,
                         "metrics: key \"%.32s\" is not an epoch "
                         "number (0 or more, in decimal without leading "
                         "zeros)",
                         key);
  if (!json_is_string(value))
    return validate_fail(err,
                         "metrics.%lld must be a string holding a JSON "
                         "object",
                         epoch);
  json_error_t je;
  json_t *m = json_loadb(json_string_value(value), json_string_length(value),
                         JSON_REJECT_DUPLICATES, &je);
  if (!m)
    return validate_fail(err,
                         "metrics.%lld: malformed JSON at line %d "
                         "column %d: %s",
                         epoch, je.line, je.column, je.text);
  if (!json_is_object(m)) {
    json_decref(m);
    return validate_fail(err, "metrics.%lld must hold a JSON object", epoch);
  }
  const char *name;
  json_t *v;
  json_object_foreach(m, name, v) {
    if (!json_is_number(v)) {
      validate_fail(err, "metrics.%lld: field \"%.64s\" is not a number", epoch,
                    name);
      json_decref(m);
      return -1;
    }
  }
  json_decref(m);
  /* Stored as the client wrote it: checked to be an object of numbers, and
   * re-encoding it would only cost time on the hot path. */
  out->epoch = epoch;
  out->json = strdup(json_string_value(value));
  if (!out->json)
    return validate_fail(err, "metrics.%lld: out of memory", epoch);
  return 0;
}

int validate_metrics(json_t *body, store_epoch **out, size_t *n,
                     char err[VALIDATE_ERR]) {
  *out = NULL;
  *n = 0;
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "type") != 0 && strcmp(key, "metrics") != 0)
      return validate_fail(err, "unknown field \"%.64s\"", key);
  }
  json_t *type = json_object_get(body, "type");
  if (!type)
    return validate_fail(err, "missing field \"type\" (expected "
                              "\"metrics\")");
  if (!json_is_string(type) || strcmp(json_string_value(type), "metrics"))
    return validate_fail(err, "field \"type\" must be \"metrics\"");
  json_t *metrics = json_object_get(body, "metrics");
  if (!metrics)
    return validate_fail(err, "missing field \"metrics\"");
  if (!json_is_object(metrics))
    return validate_fail(err, "field \"metrics\" must be an object of "
                              "epoch -> JSON string");
  size_t count = json_object_size(metrics);
  store_epoch *e = calloc(count ? count : 1, sizeof *e);
  if (!e)
    return validate_fail(err, "out of memory");
  size_t i = 0;
  json_object_foreach(metrics, key, v) {
    if (validate_one_epoch(key, v, &e[i], err) < 0) {
      validate_epochs_free(e, i);
      return -1;
    }
    i++;
  }
  *out = e;
  *n = i;
  return 0;
}

/* ------------------------------------------------------------- events */

#define VALIDATE_MAX_EVENTS 25
#define VALIDATE_MAX_PARAMS 25
#define VALIDATE_MAX_PARAM_NAME 64
#define VALIDATE_MAX_PARAM_VALUE 256

static int validate_event(json_t *ev, size_t i, char err[VALIDATE_ERR]) {
  static const char *names[] = {"train", "val", "predict", "export"};
  if (!json_is_object(ev))
    return validate_fail(err, "events[%zu] must be an object", i);
  const char *key;
  json_t *v;
  json_object_foreach(ev, key, v) {
    if (strcmp(key, "name") != 0 && strcmp(key, "params") != 0)
      return validate_fail(err, "events[%zu]: unknown field \"%.64s\"", i, key);
  }
  json_t *name = json_object_get(ev, "name");
  if (!name)
    return validate_fail(err, "events[%zu]: missing field \"name\"", i);
  int known = 0;
  for (size_t k = 0; k < 4 && json_is_string(name); k++)
    known |= strcmp(json_string_value(name), names[k]) == 0;
  if (!known)
    return validate_fail(err,
                         "events[%zu].name must be train, val, predict "
                         "or export",
                         i);
  json_t *params = json_object_get(ev, "params");
  if (!params)
    return 0;
  if (!json_is_object(params))
    return validate_fail(err, "events[%zu].params must be an object", i);
  if (json_object_size(params) > VALIDATE_MAX_PARAMS)
    return validate_fail(err,
                         "events[%zu].params holds %zu params; at most "
                         "%d are allowed",
                         i, json_object_size(params), VALIDATE_MAX_PARAMS);
  json_object_foreach(params, key, v) {
    if (strlen(key) > VALIDATE_MAX_PARAM_NAME)
      return validate_fail(err,
                           "events[%zu].params: name \"%.32s...\" is over "
                           "%d bytes",
                           i, key, VALIDATE_MAX_PARAM_NAME);
    if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
      return validate_fail(err,
                           "events[%zu].params.%.64s must be a string, "
                           "number or boolean",
                           i, key);
    if (json_is_string(v) && json_string_length(v) > VALIDATE_MAX_PARAM_VALUE)
      return validate_fail(err, "events[%zu].params.%.64s is over %d bytes", i,
                           key, VALIDATE_MAX_PARAM_VALUE);
  }
  return 0;
}

int validate_events(json_t *body, char err[VALIDATE_ERR]) {
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "client_id") != 0 && strcmp(key, "events") != 0)
      return validate_fail(err, "unknown field \"%.64s\"", key);
  }
  json_t *cid = json_object_get(body, "client_id");
  if (!cid)
    return validate_fail(err, "missing field \"client_id\"");
  if (!json_is_string(cid) || json_string_length(cid) > 128)
    return validate_fail(err, "field \"client_id\" must be a string of at "
                              "most 128 characters");
  json_t *events = json_object_get(body, "events");
  if (!events)
    return validate_fail(err, "missing field \"events\"");
  if (!json_is_array(events))
    return validate_fail(err, "field \"events\" must be an array");
  if (json_array_size(events) > VALIDATE_MAX_EVENTS)
    return validate_fail(err,
                         "field \"events\" holds %zu events; at most %d "
                         "are allowed",
                         json_array_size(events), VALIDATE_MAX_EVENTS);
  size_t i;
  json_array_foreach(events, i, v) {
    if (validate_event(v, i, err) < 0)
      return -1;
  }
  return 0;
}

/* ---------------------------------------------------------- heartbeat */

static int validate_agent_id_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
      return 0;
  return 1;
}

int validate_heartbeat(json_t *body, const char **agent, const char **agent_id,
                       json_t **system, char err[VALIDATE_ERR]) {
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "agent") != 0 && strcmp(key, "agentId") != 0 &&
        strcmp(key, "system") != 0)
      return validate_fail(err, "unknown field \"%.64s\"", key);
  }
  *system = json_object_get(body, "system");
  if (*system && json_is_null(*system))
    *system = NULL;
  if (*system && !json_is_object(*system))
    return validate_fail(err, "field \"system\" must be an object (the "
                              "machine's load) or null");
  json_t *a = json_object_get(body, "agent");
  json_t *id = json_object_get(body, "agentId");
  if (a && !json_is_null(a) &&
      (!json_is_string(a) || json_string_length(a) > 128))
    return validate_fail(err, "field \"agent\" must be a string of at most "
                              "128 characters");
  if (id && !json_is_null(id) &&
      (!json_is_string(id) || !validate_agent_id_ok(json_string_value(id))))
    return validate_fail(err, "field \"agentId\" must be null or 1-64 "
                              "characters [A-Za-z0-9_-]");
  *agent = json_is_string(a) ? json_string_value(a) : "";
  *agent_id = json_is_string(id) ? json_string_value(id) : NULL;
  return 0;
}

/* ------------------------------------------------------------ uploads */

int validate_upload_field(validate_upload *u, const char *name,
                          const char *value, char err[VALIDATE_ERR]) {
  if (!strcmp(name, "epoch")) {
    if (validate_uint(value, 1000000000LL, &u->epoch) < 0)
      return validate_fail(err, "field \"epoch\" must be an integer (0 or "
                                "more)");
    u->has_epoch = 1;
  } else if (!strcmp(name, "type")) {
    if (!strcmp(value, "epoch"))
      u->final = 0;
    else if (!strcmp(value, "final"))
      u->final = 1;
    else
      return validate_fail(err, "field \"type\" must be epoch or final");
    u->has_type = 1;
  } else if (!strcmp(name, "isBest")) {
    if (validate_bool(value, &u->is_best) < 0)
      return validate_fail(err, "field \"isBest\" must be True, False, "
                                "true, false, 1 or 0");
    u->has_best = 1;
  } else if (!strcmp(name, "map")) {
    char *end;
    errno = 0;
    double d = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(d))
      return validate_fail(err, "field \"map\" must be a finite number");
    u->map = d;
    u->has_map = 1;
  } else {
    return validate_fail(err, "unknown field \"%.64s\"", name);
  }
  return 0;
}

int validate_upload_done(const validate_upload *u, char err[VALIDATE_ERR]) {
  if (!u->has_epoch)
    return validate_fail(err, "missing field \"epoch\"");
  if (!u->has_type)
    return validate_fail(err, "missing field \"type\" (epoch or final)");
  return 0;
}

/* -------------------------------------------------------------- range */

static int validate_range_num(const char **p, uint64_t *out) {
  if (**p < '0' || **p > '9')
    return -1;
  uint64_t v = 0;
  while (**p >= '0' && **p <= '9') {
    if (v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(**p - '0');
    (*p)++;
  }
  *out = v;
  return 0;
}

int validate_range(const char *header, uint64_t size, uint64_t *first,
                   uint64_t *last) {
  if (!header)
    return 0;
  const char *p = header;
  while (*p == ' ')
    p++;
  if (strncasecmp(p, "bytes=", 6) != 0)
    return -1;
  p += 6;
  while (*p == ' ')
    p++;
  if (strchr(p, ','))
    return 0; /* several ranges: allowed to answer with the whole file */
  uint64_t a, b;
  if (*p == '-') {
    p++;
    if (validate_range_num(&p, &b) < 0 || b == 0)
      return -1;
    a = b >= size ? 0 : size - b;
    b = size ? size - 1 : 0;
  } else {
    if (validate_range_num(&p, &a) < 0 || *p != '-')
      return -1;
    p++;
    if (*p == '\0' || *p == ' ')
      b = size ? size - 1 : 0;
    else if (validate_range_num(&p, &b) < 0 || b < a)
      return -1;
    if (b >= size && size)
      b = size - 1;
  }
  while (*p == ' ')
    p++;
  if (*p != '\0' || size == 0 || a >= size)
    return -1;
  *first = a;
  *last = b;
  return 1;
}

/* ------------------------------------------------------ form, cookies */

static int validate_hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int validate_form_value(const char *body, size_t len, const char *name,
                        char *out, size_t outn) {
  size_t nlen = strlen(name);
  size_t i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && body[end] != '&')
      end++;
    if (end - i > nlen && memcmp(body + i, name, nlen) == 0 &&
        body[i + nlen] == '=') {
      size_t o = 0;
      for (size_t k = i + nlen + 1; k < end; k++) {
        char c = body[k];
        if (c == '+') {
          c = ' ';
        } else if (c == '%') {
          if (k + 2 >= end)
            return -1;
          int hi = validate_hexval(body[k + 1]);
          int lo = validate_hexval(body[k + 2]);
          if (hi < 0 || lo < 0)
            return -1;
          c = (char)(hi * 16 + lo);
          k += 2;
        }
        if (o + 1 >= outn || c == '\0')
          return -1;
        out[o++] = c;
      }
      out[o] = '\0';
      return 0;
    }
    i = end + 1;
  }
  return -1;
}

int validate_cookie(const char *header, const char *name, char *out,
                    size_t outn) {
  if (!header)
    return -1;
  size_t nlen = strlen(name);
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == ';')
      p++;
    const char *end = strchr(p, ';');
    size_t seg = end ? (size_t)(end - p) : strlen(p);
    if (seg > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
      size_t vlen = seg - nlen - 1;
      if (vlen + 1 > outn)
        return -1;
      memcpy(out, p + nlen + 1, vlen);
      out[vlen] = '\0';
      return 0;
    }
    p += seg;
  }
  return -1;
}

/* ------------------------------------------- Ultralytics Platform */

static int validate_pf_slug(const char *s, size_t n) {
  if (n == 0 || n > VALIDATE_PF_SLUG_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return 0;
  }
  return 1;
}

int validate_pf_body(json_t *body, int with_event, validate_pf *out,
                     char err[VALIDATE_ERR]) {
  static const char *const events[] = {"training_started", "console_output",
                                       "epoch_end", "training_complete"};
  memset(out, 0, sizeof *out);
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "project") != 0 && strcmp(key, "name") != 0 &&
        strcmp(key, "modelId") != 0 &&
        !(with_event &&
          (strcmp(key, "event") == 0 || strcmp(key, "data") == 0)) &&
        !(!with_event && strcmp(key, "filename") == 0))
      return validate_fail(err, "unknown field \"%.64s\"", key);
  }
  if (with_event) {
    const char *ev = json_string_value(json_object_get(body, "event"));
    if (!ev)
      return validate_fail(err, "field \"event\" must be a string: "
                                "training_started, console_output, "
                                "epoch_end or training_complete");
    size_t i;
    for (i = 0; i < sizeof events / sizeof events[0]; i++)
      if (strcmp(ev, events[i]) == 0)
        break;
    if (i == sizeof events / sizeof events[0])
      return validate_fail(err,
                           "unknown event \"%.64s\" (expected "
                           "training_started, console_output, epoch_end or "
                           "training_complete)",
                           ev);
    out->event = (validate_pf_event)i;
    out->data = json_object_get(body, "data");
    if (!json_is_object(out->data))
      return validate_fail(err, "field \"data\" must be an object");
  }
  const char *project = json_string_value(json_object_get(body, "project"));
  if (!project)
    return validate_fail(err, "field \"project\" must be a string "
                              "(the run's project=)");
  const char *slash = strchr(project, '/');
  const char *slug = slash ? slash + 1 : project;
  if (slash) {
    size_t on = (size_t)(slash - project);
    if (on == 0 || on > STORE_OWNER_MAX)
      return validate_fail(err, "field \"project\": the owner before \"/\" "
                                "must be 1 to 64 characters");
    memcpy(out->owner, project, on);
    out->owner[on] = '\0';
  }
  if (!validate_pf_slug(slug, strlen(slug)))
    return validate_fail(err,
                         "field \"project\" must be \"slug\" or "
                         "\"owner/slug\", the slug 1 to %d characters "
                         "[a-z0-9-]",
                         VALIDATE_PF_SLUG_MAX);
  snprintf(out->project, sizeof out->project, "%s", slug);
  out->name = json_string_value(json_object_get(body, "name"));
  if (!out->name || !validate_pf_slug(out->name, strlen(out->name)))
    return validate_fail(err,
                         "field \"name\" must be a string of 1 to %d "
                         "characters [a-z0-9-]",
                         VALIDATE_PF_SLUG_MAX);
  v = json_object_get(body, "modelId");
  if (v && !json_is_null(v)) {
    out->model_id = json_string_value(v);
    if (!out->model_id || !util_is_alnum_n(out->model_id, UTIL_ID_LEN))
      return validate_fail(err, "field \"modelId\" must be a model id (20 "
                                "characters [A-Za-z0-9]) or absent");
  }
  return 0;
}

/* Adds name = v to flat unless v is null; -1 with err for anything but a
 * number. */
static int validate_pf_number(json_t *flat, const char *name, json_t *v,
                              char err[VALIDATE_ERR]) {
  if (json_is_null(v))
    return 0;
  if (!json_is_number(v))
    return validate_fail(
        err, "data.metrics: \"%.64s\" must be a number or null", name);
  if (strlen(name) == 0 || strlen(name) > VALIDATE_PF_NAME_MAX)
    return validate_fail(err,
                         "data.metrics: a metric name must be 1 to %d "
                         "bytes",
                         VALIDATE_PF_NAME_MAX);
  if (json_object_size(flat) >= VALIDATE_PF_METRICS_MAX)
    return validate_fail(err, "data.metrics: more than %d numbers",
                         VALIDATE_PF_METRICS_MAX);
  json_object_set(flat, name, v);
  return 0;
}

int validate_pf_epoch(json_t *data, int64_t *epoch, char **json,
                      char err[VALIDATE_ERR]) {
  *json = NULL;
  json_t *e = json_object_get(data, "epoch");
  if (!json_is_integer(e) || json_integer_value(e) < 0 ||
      json_integer_value(e) > 1000000000LL)
    return validate_fail(err, "field \"data.epoch\" must be an integer from "
                              "0 to 1000000000");
  *epoch = json_integer_value(e);
  json_t *metrics = json_object_get(data, "metrics");
  if (!json_is_object(metrics))
    return validate_fail(err, "field \"data.metrics\" must be an object");
  json_t *flat = json_object();
  const char *key, *sub;
  json_t *v, *w;
  json_object_foreach(metrics, key, v) {
    if (json_is_object(v)) {
      json_object_foreach(v, sub, w) {
        char name[2 * VALIDATE_PF_NAME_MAX + 2];
        snprintf(name, sizeof name, "%.128s/%.128s", key, sub);
        if (validate_pf_number(flat, name, w, err) < 0)
          goto fail;
      }
    } else if (validate_pf_number(flat, key, v, err) < 0) {
      goto fail;
    }
  }
  json_t *info = json_object_get(data, "modelInfo");
  if (info && !json_is_null(info)) {
    static const char *const from[] = {"parameters", "gflops", "speedMs"};
    static const char *const to[] = {"model/parameters", "model/GFLOPs",
                                     "model/speed_PyTorch(ms)"};
    if (!json_is_object(info)) {
      validate_fail(err, "field \"data.modelInfo\" must be an object");
      goto fail;
    }
    for (int i = 0; i < 3; i++) {
      w = json_object_get(info, from[i]);
      if (w && !json_is_null(w) && !json_is_number(w)) {
        validate_fail(err, "data.modelInfo: \"%s\" must be a number or null",
                      from[i]);
        goto fail;
      }
      if (w && validate_pf_number(flat, to[i], w, err) < 0)
        goto fail;
    }
  }
  *json = json_dumps(flat, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(flat);
  if (!*json)
    return validate_fail(err, "out of memory");
  return 0;
fail:
  json_decref(flat);
  return -1;
}

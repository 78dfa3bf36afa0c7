/*
 * settings.c - the settings file (settings.json) merged with the
 * environment.
 *
 * The file is the user's: it holds their API key, so it is created 0600 in a
 * 0700 directory and always replaced atomically (a temporary file in the same
 * directory, fsync, rename), never edited in place. Every key is described
 * once in `chub_settings_keys`: its type, its range and how to check it, so
 * that loading a file, `chub settings KEY=VALUE` and the defaults cannot
 * disagree. A file that is not JSON, or a value of the wrong type, is never
 * silently thrown away: the old file is kept as settings.json.bad, the bad
 * values go back to their defaults, and one warning names the file and the
 * problem. Environment variables override the file for one process and are
 * never written back.
 *
 * The only state kept between calls is `chub_settings_lock`, which makes a
 * read-modify-write of the file atomic between threads of one process.
 */
#include "fs.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUB_SETTINGS_VERSION "1"
#define CHUB_SETTINGS_DEFAULT_API_ROOT "http://127.0.0.1:8080"

/* Serialises read-modify-write of the settings file within the process. */
static pthread_mutex_t chub_settings_lock = PTHREAD_MUTEX_INITIALIZER;

typedef enum chub_settings_type {
  CHUB_SETTING_BOOL,
  CHUB_SETTING_STRING,
  CHUB_SETTING_NUMBER, /* seconds, may have a fraction */
  CHUB_SETTING_INT
} chub_settings_type;

/* Checks a string value; returns NULL when valid, else what is wrong. */
typedef const char *(*chub_settings_check_fn)(const char *v);

typedef struct chub_settings_key {
  const char *key;
  chub_settings_type type;
  double min, max;              /* NUMBER and INT */
  size_t maxlen;                /* STRING: longest value that fits */
  chub_settings_check_fn check; /* STRING: extra check, may be NULL */
  bool settable;                /* by chub_settings_set */
} chub_settings_key;

static const char *chub_settings_check_url(const char *v) {
  if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
    return "must start with http:// or https://";
  if (strpbrk(v, " \t\r\n"))
    return "must not contain spaces";
  return NULL;
}

static const char *chub_settings_check_web_root(const char *v) {
  return *v ? chub_settings_check_url(v) : NULL;
}

static const char *chub_settings_check_mode(const char *v) {
  if (strcmp(v, "online") == 0 || strcmp(v, "offline") == 0)
    return NULL;
  return "must be online or offline";
}

static const char *chub_settings_check_key(const char *v) {
  for (const char *p = v; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return "must not contain spaces or control characters";
  return NULL;
}

static const char *chub_settings_check_uuid(const char *v) {
  if (!*v)
    return "must not be empty";
  return chub_settings_check_key(v);
}

static const char *chub_settings_check_runs_dir(const char *v) {
  if (*v && *v != '/' && strncmp(v, "~/", 2) != 0)
    return "must be an absolute path (or empty for the default)";
  return NULL;
}

/* The order here is the order of the file and of `chub settings`. */
static const chub_settings_key chub_settings_keys[] = {
    {"settings_version", CHUB_SETTING_STRING, 0, 0, 15, NULL, false},
    {"uuid", CHUB_SETTING_STRING, 0, 0, 64, chub_settings_check_uuid, true},
    {"sync", CHUB_SETTING_BOOL, 0, 0, 0, NULL, true},
    {"hub", CHUB_SETTING_BOOL, 0, 0, 0, NULL, true},
    {"api_key", CHUB_SETTING_STRING, 0, 0, 127, chub_settings_check_key, true},
    {"api_root", CHUB_SETTING_STRING, 0, 0, 511, chub_settings_check_url, true},
    {"web_root", CHUB_SETTING_STRING, 0, 0, 511, chub_settings_check_web_root,
     true},
    {"mode", CHUB_SETTING_STRING, 0, 0, 15, chub_settings_check_mode, true},
    {"system_metrics", CHUB_SETTING_BOOL, 0, 0, 0, NULL, true},
    {"rate_limit_metrics", CHUB_SETTING_NUMBER, 0, 86400, 0, NULL, true},
    {"rate_limit_ckpt", CHUB_SETTING_NUMBER, 0, 604800, 0, NULL, true},
    {"rate_limit_heartbeat", CHUB_SETTING_NUMBER, 1, 86400, 0, NULL, true},
    {"final_sync_deadline", CHUB_SETTING_NUMBER, 0, 604800, 0, NULL, true},
    {"spool_max_mb", CHUB_SETTING_INT, 1, 1048576, 0, NULL, true},
    {"runs_dir", CHUB_SETTING_STRING, 0, 0, 511, chub_settings_check_runs_dir,
     true},
};
#define CHUB_SETTINGS_NKEYS                                                    \
  (sizeof chub_settings_keys / sizeof chub_settings_keys[0])

static const chub_settings_key *chub_settings_find_key(const char *key) {
  for (size_t i = 0; i < CHUB_SETTINGS_NKEYS; i++)
    if (strcmp(chub_settings_keys[i].key, key) == 0)
      return &chub_settings_keys[i];
  return NULL;
}

/* ------------------------------------------------------------ paths */

bool chub_under_tests(void) {
  const char *v = getenv("CHUB_TESTING");
  return v && *v && strcmp(v, "0") != 0;
}

/* Writes "{base}{suffix}" into buf; false when it does not fit. */
static bool chub_settings_join(char *buf, size_t len, const char *base,
                               const char *suffix) {
  int n = snprintf(buf, len, "%s%s", base, suffix);
  return n >= 0 && (size_t)n < len;
}

/* The user's home directory into buf: $HOME, else the password database
 * (getpwuid_r: settings may be loaded from several threads). */
static const char *chub_settings_home(char *buf, size_t len) {
  const char *h = getenv("HOME");
  if (h && *h)
    return chub_settings_join(buf, len, h, "") ? buf : NULL;
  struct passwd pw, *found = NULL;
  char scratch[4096];
  if (getpwuid_r(getuid(), &pw, scratch, sizeof scratch, &found) != 0 ||
      !found || !pw.pw_dir || !*pw.pw_dir)
    return NULL;
  return chub_settings_join(buf, len, pw.pw_dir, "") ? buf : NULL;
}

static chub_code chub_settings_dir(char *buf, size_t len) {
  const char *v = getenv("CHUB_CONFIG_DIR");
  if (v && *v)
    return chub_settings_join(buf, len, v, "") ? CHUB_OK : CHUB_EINVAL;
  v = getenv("XDG_CONFIG_HOME");
  if (v && *v == '/')
    return chub_settings_join(buf, len, v, "/chub") ? CHUB_OK : CHUB_EINVAL;
  char home[4096];
  v = chub_settings_home(home, sizeof home);
  if (!v)
    return CHUB_EIO;
  return chub_settings_join(buf, len, v, "/.config/chub") ? CHUB_OK
                                                          : CHUB_EINVAL;
}

chub_code chub_settings_path(char *buf, size_t len) {
  if (!buf || len == 0)
    return CHUB_EINVAL;
  char dir[4096];
  chub_code rc = chub_settings_dir(dir, sizeof dir);
  if (rc != CHUB_OK)
    return rc;
  return chub_settings_join(buf, len, dir, "/settings.json") ? CHUB_OK
                                                             : CHUB_EINVAL;
}

/* The default runs directory: $XDG_DATA_HOME/chub/runs, else
 * ~/.local/share/chub/runs. */
static void chub_settings_default_runs_dir(char *buf, size_t len) {
  const char *v = getenv("XDG_DATA_HOME");
  if (v && *v == '/' && chub_settings_join(buf, len, v, "/chub/runs"))
    return;
  char home[4096];
  v = chub_settings_home(home, sizeof home);
  if (!v || !chub_settings_join(buf, len, v, "/.local/share/chub/runs"))
    chub_settings_join(buf, len, "/tmp/chub-runs", "");
}

/* ------------------------------------------------------------ uuid */

static bool chub_settings_sha256_hex(const void *data, size_t len,
                                     char hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
    return false;
  for (unsigned i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return true;
}

/* An anonymous, stable id: the SHA-256 of the machine id, so that the raw
 * machine id never leaves the host; a random one when there is none. */
static void chub_settings_new_uuid(char out[65]) {
  static const char *const files[] = {"/etc/machine-id",
                                      "/var/lib/dbus/machine-id"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    FILE *fp = fopen(files[i], "r");
    if (!fp)
      continue;
    char id[256] = "";
    size_t n = fread(id, 1, sizeof id - 1, fp);
    fclose(fp);
    while (n > 0 && (id[n - 1] == '\n' || id[n - 1] == ' '))
      n--;
    if (n > 0 && chub_settings_sha256_hex(id, n, out))
      return;
  }
  unsigned char rnd[32];
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    /* No entropy source at all: still unique enough per host and time. */
    snprintf((char *)rnd, sizeof rnd, "%ld-%ld", (long)getpid(),
             (long)time(NULL));
  }
  if (!chub_settings_sha256_hex(rnd, sizeof rnd, out))
    snprintf(out, 65, "%064x", 0);
}

/* ------------------------------------------------------------ values */

/* The default value of a key; `uuid` is the id to keep (NULL: a new one). */
static json_t *chub_settings_default(const chub_settings_key *k,
                                     const char *uuid) {
  const char *key = k->key;
  if (strcmp(key, "settings_version") == 0)
    return json_string(CHUB_SETTINGS_VERSION);
  if (strcmp(key, "uuid") == 0) {
    char id[65];
    if (uuid && *uuid)
      return json_string(uuid);
    chub_settings_new_uuid(id);
    return json_string(id);
  }
  if (strcmp(key, "sync") == 0 || strcmp(key, "hub") == 0 ||
      strcmp(key, "system_metrics") == 0)
    return json_true();
  if (strcmp(key, "api_root") == 0)
    return json_string(CHUB_SETTINGS_DEFAULT_API_ROOT);
  if (strcmp(key, "mode") == 0)
    return json_string("online");
  if (strcmp(key, "rate_limit_metrics") == 0)
    return json_real(3);
  if (strcmp(key, "rate_limit_ckpt") == 0)
    return json_real(900);
  if (strcmp(key, "rate_limit_heartbeat") == 0)
    return json_real(300);
  if (strcmp(key, "final_sync_deadline") == 0)
    return json_real(3600);
  if (strcmp(key, "spool_max_mb") == 0)
    return json_integer(256);
  return json_string(""); /* api_key, web_root, runs_dir */
}

static json_t *chub_settings_defaults(const char *uuid) {
  json_t *doc = json_object();
  for (size_t i = 0; doc && i < CHUB_SETTINGS_NKEYS; i++)
    json_object_set_new(doc, chub_settings_keys[i].key,
                        chub_settings_default(&chub_settings_keys[i], uuid));
  return doc;
}

/* Checks a JSON value against its key; NULL when valid, else why not,
 * written into `why`. */
static const char *chub_settings_check(const chub_settings_key *k,
                                       const json_t *v, char *why, size_t len) {
  switch (k->type) {
  case CHUB_SETTING_BOOL:
    if (json_is_boolean(v))
      return NULL;
    snprintf(why, len, "must be true or false");
    return why;
  case CHUB_SETTING_NUMBER:
  case CHUB_SETTING_INT: {
    bool ok =
        k->type == CHUB_SETTING_INT ? json_is_integer(v) : json_is_number(v);
    double d = ok ? json_number_value(v) : 0;
    if (ok && isfinite(d) && d >= k->min && d <= k->max)
      return NULL;
    snprintf(why, len, "must be %s from %g to %g",
             k->type == CHUB_SETTING_INT ? "a whole number" : "a number",
             k->min, k->max);
    return why;
  }
  case CHUB_SETTING_STRING: {
    if (!json_is_string(v)) {
      snprintf(why, len, "must be a string");
      return why;
    }
    const char *s = json_string_value(v);
    if (strlen(s) > k->maxlen) {
      snprintf(why, len, "must be at most %zu characters", k->maxlen);
      return why;
    }
    const char *bad = k->check ? k->check(s) : NULL;
    if (!bad)
      return NULL;
    snprintf(why, len, "%s", bad);
    return why;
  }
  }
  return NULL;
}

/* ------------------------------------------------------------ file */

/* Writes `doc` to `path` atomically with mode 0600. */
static chub_code chub_settings_write(const char *path, const json_t *doc) {
  char dir[4096];
  if (chub_settings_dir(dir, sizeof dir) != CHUB_OK ||
      fs_mkdirs(dir) != CHUB_OK) {
    chub_log(CHUB_LOG_WARN, "cannot create settings directory for %s: %s", path,
             strerror(errno));
    return CHUB_EIO;
  }
  /* The file holds a key: 0600 from the first byte. */
  char *text = json_dumps(doc, JSON_INDENT(2));
  size_t len = text ? strlen(text) : 0;
  char *withnl = text ? realloc(text, len + 2) : NULL;
  int err = ENOMEM;
  if (withnl) {
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    chub_code rc = fs_replace(path, withnl, len + 1, 0600);
    err = errno;
    free(withnl);
    if (rc == CHUB_OK)
      return CHUB_OK;
  } else {
    free(text);
  }
  chub_log(CHUB_LOG_WARN, "cannot write settings %s: %s", path, strerror(err));
  return CHUB_EIO;
}

/* Keeps the current file as {path}.bad so a reset never loses it. */
static void chub_settings_keep_bad(const char *path, char *bad, size_t len) {
  snprintf(bad, len, "%s.bad", path);
  if (rename(path, bad) != 0)
    chub_log(CHUB_LOG_WARN, "cannot keep old settings as %s: %s", bad,
             strerror(errno));
}

/* Brings `doc` to one valid value per key: missing keys get their default
 * quietly, wrong ones get their default with a warning. Sets *changed when
 * the file must be rewritten. */
static void chub_settings_repair(const char *path, json_t *doc, bool *changed) {
  char problems[1024] = "";
  size_t used = 0;
  for (size_t i = 0; i < CHUB_SETTINGS_NKEYS; i++) {
    const chub_settings_key *k = &chub_settings_keys[i];
    json_t *v = json_object_get(doc, k->key);
    char why[128];
    if (!v) {
      json_object_set_new(doc, k->key, chub_settings_default(k, NULL));
      *changed = true;
    } else if (chub_settings_check(k, v, why, sizeof why)) {
      int n = snprintf(problems + used, sizeof problems - used, "%s%s %s",
                       used ? "; " : "", k->key, why);
      if (n > 0 && used + (size_t)n < sizeof problems)
        used += (size_t)n;
      json_object_set_new(doc, k->key, chub_settings_default(k, NULL));
      *changed = true;
    }
  }
  if (!used)
    return;
  char bad[4200];
  chub_settings_keep_bad(path, bad, sizeof bad);
  chub_log(CHUB_LOG_WARN,
           "settings %s: %s; reset to the default (old file kept as %s)", path,
           problems, bad);
}

/* Reads the file into a valid document (never NULL unless out of memory).
 * *changed says whether it must be written back. */
static json_t *chub_settings_read(const char *path, bool *changed) {
  *changed = false;
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  if (!doc) {
    struct stat st;
    int err = stat(path, &st) != 0 ? errno : 0;
    if (err == ENOENT) {
      *changed = true; /* first use */
      return chub_settings_defaults(NULL);
    }
    if (err == 0 && !S_ISREG(st.st_mode))
      err = EISDIR;
    if (err != 0 || access(path, R_OK) != 0) {
      chub_log(CHUB_LOG_WARN, "cannot read settings %s: %s; using defaults",
               path, strerror(err ? err : errno));
      return chub_settings_defaults(NULL); /* do not overwrite it */
    }
    char bad[4200];
    chub_settings_keep_bad(path, bad, sizeof bad);
    chub_log(CHUB_LOG_WARN,
             "cannot read settings %s: not valid JSON at line %d, column %d "
             "(%s); reset to defaults (old file kept as %s)",
             path, jerr.line, jerr.column, jerr.text, bad);
    *changed = true;
    return chub_settings_defaults(NULL);
  }
  if (!json_is_object(doc)) {
    json_decref(doc);
    char bad[4200];
    chub_settings_keep_bad(path, bad, sizeof bad);
    chub_log(CHUB_LOG_WARN,
             "cannot read settings %s: not a JSON object; reset to defaults "
             "(old file kept as %s)",
             path, bad);
    *changed = true;
    return chub_settings_defaults(NULL);
  }
  chub_settings_repair(path, doc, changed);
  return doc;
}

/* Reads (creating or repairing and writing back as needed) under the lock
 * held by the caller. */
static json_t *chub_settings_open(const char *path) {
  bool changed = false;
  json_t *doc = chub_settings_read(path, &changed);
  if (doc && changed)
    chub_settings_write(path, doc);
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & 077) != 0 &&
      chmod(path, 0600) == 0) /* it holds a key */
    chub_log(CHUB_LOG_DEBUG, "settings %s: mode set to 0600", path);
  return doc;
}

/* ------------------------------------------------------------ snapshot */

static void chub_settings_copy(char *dst, size_t len, const char *src) {
  snprintf(dst, len, "%s", src ? src : "");
}

/* Drops trailing slashes so that "{root}/v1/..." is always well formed. */
static void chub_settings_trim_slash(char *s) {
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == '/')
    s[--n] = '\0';
}

static void chub_settings_set_runs_dir(chub_settings *out, const char *v) {
  char home[4096];
  if (!v || !*v)
    chub_settings_default_runs_dir(out->runs_dir, sizeof out->runs_dir);
  else if (strncmp(v, "~/", 2) == 0 && chub_settings_home(home, sizeof home) &&
           chub_settings_join(out->runs_dir, sizeof out->runs_dir, home, v + 1))
    return;
  else
    chub_settings_copy(out->runs_dir, sizeof out->runs_dir, v);
}

static void chub_settings_fill(const json_t *doc, chub_settings *out) {
#define STR(k) json_string_value(json_object_get(doc, k))
#define NUM(k) json_number_value(json_object_get(doc, k))
  memset(out, 0, sizeof *out);
  chub_settings_copy(out->uuid, sizeof out->uuid, STR("uuid"));
  out->sync = json_is_true(json_object_get(doc, "sync"));
  out->hub = json_is_true(json_object_get(doc, "hub"));
  chub_settings_copy(out->api_key, sizeof out->api_key, STR("api_key"));
  chub_settings_copy(out->api_root, sizeof out->api_root, STR("api_root"));
  chub_settings_copy(out->web_root, sizeof out->web_root, STR("web_root"));
  chub_settings_copy(out->mode, sizeof out->mode, STR("mode"));
  out->system_metrics = json_is_true(json_object_get(doc, "system_metrics"));
  out->rate_metrics = NUM("rate_limit_metrics");
  out->rate_ckpt = NUM("rate_limit_ckpt");
  out->rate_heartbeat = NUM("rate_limit_heartbeat");
  out->final_deadline = NUM("final_sync_deadline");
  out->spool_max_bytes = (long long)NUM("spool_max_mb") * 1024 * 1024;
  chub_settings_set_runs_dir(out, STR("runs_dir"));
#undef STR
#undef NUM
}

/* Parses true/false/1/0/True/False (Python's spelling included). */
static bool chub_settings_parse_bool(const char *v, bool *out) {
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1")) {
    *out = true;
    return true;
  }
  if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0")) {
    *out = false;
    return true;
  }
  return false;
}

/* Applies one string override from the environment after checking it. */
static void chub_settings_env_string(const char *var, const char *key,
                                     char *dst, size_t len) {
  const char *v = getenv(var);
  if (!v)
    return;
  const chub_settings_key *k = chub_settings_find_key(key);
  json_t *j = json_string(v);
  char why[128];
  const char *bad = j ? chub_settings_check(k, j, why, sizeof why) : "";
  json_decref(j);
  if (bad || strlen(v) >= len) {
    chub_log(CHUB_LOG_WARN, "ignoring %s='%s': %s", var, v,
             bad ? bad : "too long");
    return;
  }
  chub_settings_copy(dst, len, v);
}

static void chub_settings_env_bool(const char *var, bool *dst) {
  const char *v = getenv(var);
  if (v && !chub_settings_parse_bool(v, dst))
    chub_log(CHUB_LOG_WARN,
             "ignoring %s='%s': must be true/false/1/0/True/False", var, v);
}

static void chub_settings_apply_env(chub_settings *out) {
  chub_settings_env_string("CHUB_API_KEY", "api_key", out->api_key,
                           sizeof out->api_key);
  chub_settings_env_string("CHUB_API_ROOT", "api_root", out->api_root,
                           sizeof out->api_root);
  chub_settings_env_string("CHUB_WEB_ROOT", "web_root", out->web_root,
                           sizeof out->web_root);
  chub_settings_env_string("CHUB_MODE", "mode", out->mode, sizeof out->mode);
  chub_settings_env_bool("CHUB_HUB", &out->hub);
  chub_settings_env_bool("CHUB_SYNC", &out->sync);
  chub_settings_env_bool("CHUB_SYSTEM_METRICS", &out->system_metrics);
  const char *runs = getenv("CHUB_RUNS_DIR");
  if (runs && *runs) {
    if (chub_settings_check_runs_dir(runs))
      chub_log(CHUB_LOG_WARN, "ignoring CHUB_RUNS_DIR='%s': %s", runs,
               chub_settings_check_runs_dir(runs));
    else
      chub_settings_set_runs_dir(out, runs);
  }
  chub_settings_trim_slash(out->api_root);
  chub_settings_trim_slash(out->web_root);
}

chub_code chub_settings_load(chub_settings *out) {
  if (!out)
    return CHUB_EINVAL;
  char path[4096];
  chub_code rc = chub_settings_path(path, sizeof path);
  if (rc != CHUB_OK) {
    chub_log(CHUB_LOG_ERROR,
             "cannot locate the settings file: set CHUB_CONFIG_DIR or HOME");
    return CHUB_EIO;
  }
  pthread_mutex_lock(&chub_settings_lock);
  json_t *doc = chub_settings_open(path);
  pthread_mutex_unlock(&chub_settings_lock);
  if (!doc)
    return CHUB_EIO;
  chub_settings_fill(doc, out);
  json_decref(doc);
  chub_settings_apply_env(out);
  return CHUB_OK;
}

const char *chub_settings_web_root(const chub_settings *s) {
  return s->web_root[0] ? s->web_root : s->api_root;
}

/* ------------------------------------------------------------ changes */

/* Turns the text `value` into the JSON value `k` takes, or NULL with a
 * message in `err`. */
static json_t *chub_settings_parse(const chub_settings_key *k,
                                   const char *value, char *err,
                                   size_t errlen) {
  json_t *v = NULL;
  char *end = NULL;
  switch (k->type) {
  case CHUB_SETTING_BOOL: {
    bool b;
    if (chub_settings_parse_bool(value, &b))
      v = json_boolean(b);
    break;
  }
  case CHUB_SETTING_NUMBER: {
    double d = strtod(value, &end);
    if (*value && end && !*end)
      v = json_real(d);
    break;
  }
  case CHUB_SETTING_INT: {
    long long n = strtoll(value, &end, 10);
    if (*value && end && !*end)
      v = json_integer(n);
    break;
  }
  case CHUB_SETTING_STRING: {
    char *copy = strdup(value);
    if (copy &&
        (strcmp(k->key, "api_root") == 0 || strcmp(k->key, "web_root") == 0))
      chub_settings_trim_slash(copy);
    v = copy ? json_string(copy) : NULL;
    free(copy);
    break;
  }
  }
  char why[128];
  const char *bad = v ? chub_settings_check(k, v, why, sizeof why) : NULL;
  if (v && !bad)
    return v;
  if (!v)
    bad = k->type == CHUB_SETTING_BOOL  ? "must be true/false/1/0/True/False"
          : k->type == CHUB_SETTING_INT ? "must be a whole number"
                                        : "must be a number";
  if (err && errlen)
    snprintf(err, errlen, "setting %s=%s is not valid: %s", k->key, value, bad);
  json_decref(v);
  return NULL;
}

/* The settable key named `key`, or NULL with a message in `err`. */
static const chub_settings_key *chub_settings_settable(const char *key,
                                                       const char *value,
                                                       char *err,
                                                       size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!key || !value) {
    if (err && errlen)
      snprintf(err, errlen, "a setting needs a key and a value");
    return NULL;
  }
  const chub_settings_key *k = chub_settings_find_key(key);
  if (!k || !k->settable) {
    if (err && errlen)
      snprintf(err, errlen,
               k ? "setting %s is managed by chub and cannot be set"
                 : "unknown setting '%s' (see `chub settings` for the keys)",
               key);
    return NULL;
  }
  return k;
}

chub_code chub_settings_check_value(const char *key, const char *value,
                                    char *err, size_t errlen) {
  const chub_settings_key *k = chub_settings_settable(key, value, err, errlen);
  json_t *v = k ? chub_settings_parse(k, value, err, errlen) : NULL;
  if (!v)
    return CHUB_EINVAL;
  json_decref(v);
  return CHUB_OK;
}

chub_code chub_settings_set(const char *key, const char *value, char *err,
                            size_t errlen) {
  const chub_settings_key *k = chub_settings_settable(key, value, err, errlen);
  if (!k)
    return CHUB_EINVAL;
  json_t *v = chub_settings_parse(k, value, err, errlen);
  if (!v)
    return CHUB_EINVAL;
  char path[4096];
  if (chub_settings_path(path, sizeof path) != CHUB_OK) {
    json_decref(v);
    return CHUB_EIO;
  }
  pthread_mutex_lock(&chub_settings_lock);
  json_t *doc = chub_settings_open(path);
  chub_code rc = CHUB_ENOMEM;
  if (doc && json_object_set_new(doc, k->key, v) == 0)
    rc = chub_settings_write(path, doc);
  else
    json_decref(v);
  pthread_mutex_unlock(&chub_settings_lock);
  json_decref(doc);
  if (rc == CHUB_EIO && err && errlen)
    snprintf(err, errlen, "cannot write settings %s", path);
  return rc;
}

chub_code chub_settings_reset(void) {
  char path[4096];
  if (chub_settings_path(path, sizeof path) != CHUB_OK)
    return CHUB_EIO;
  pthread_mutex_lock(&chub_settings_lock);
  json_t *old = chub_settings_open(path);
  const char *uuid =
      old ? json_string_value(json_object_get(old, "uuid")) : NULL;
  json_t *doc = chub_settings_defaults(uuid);
  chub_code rc = doc ? chub_settings_write(path, doc) : CHUB_ENOMEM;
  pthread_mutex_unlock(&chub_settings_lock);
  json_decref(doc);
  json_decref(old);
  return rc;
}

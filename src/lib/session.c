/*
 * session.c - a HUB training session: which model, which run spool, and
 * the sender that uploads it.
 *
 * Opening is the one place that waits on the hub (create or load, bounded
 * by a few seconds). Whatever happens there, a trainer with hub=true keeps
 * training: with no key, mode=offline or no answer, the session opens
 * offline on a local run that `chub sync` uploads later; only an explicit
 * refusal (401, 404) is a configuration error that opens nothing. Every
 * epoch and checkpoint goes through the run's spool first, so the sender
 * and the final sync only ever send what the spool holds.
 */
#include "session.h"

#include "drain.h"
#include "fs.h"
#include "hot_path.h"
#include "http.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct chub_session {
  chub_settings set;
  char api_key[128];
  char *model_id;   /* NULL until the hub issued one */
  char *model_url;  /* {web root}/models/{id} */
  char *resume_url; /* last weights to resume from, or NULL */
  json_t *train_args_json;
  chub_args train_args;
  bool has_train_args;
  spool *sp;
  sender *snd; /* NULL while offline */
  bool offline;
  /* Trainer-thread state of the callbacks. */
  double timer_metrics;
  double timer_ckpt;
  bool warned_nonfinite;
  bool warned_full;
};

/* How often the final sync tries a checkpoint whose file is being written
 * before it gives up (each try waits for the file to settle). */
enum { SESSION_UNSETTLED_TRIES = 3 };

/* Opening waits at most about this long for the hub. */
static const http_policy session_policy_open = {1, 6.0, 5.0};

static const char *const session_weight_exts[] = {
    "pt", "weights", "bin", "gguf", "safetensors", "onnx"};
static const char *const session_config_exts[] = {"yaml", "cfg"};

static bool session_is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

static chub_code session_parse_url(const char *text, session_ident *out) {
  const char *rest = NULL;
  if (strncmp(text, "http://", 7) == 0)
    rest = text + 7;
  else if (strncmp(text, "https://", 8) == 0)
    rest = text + 8;
  if (!rest || *rest == '/' || *rest == '\0')
    return CHUB_EINVAL;
  const char *query = strchr(rest, '?');
  size_t pathlen = query ? (size_t)(query - rest) : strlen(rest);
  /* The path must end in /models/{id} (a trailing slash is tolerated). */
  if (pathlen > 0 && rest[pathlen - 1] == '/')
    pathlen--;
  if (pathlen < 28)
    return CHUB_EINVAL;
  const char *id = rest + pathlen - 20;
  if (strncmp(id - 8, "/models/", 8) != 0)
    return CHUB_EINVAL;
  for (int i = 0; i < 20; i++)
    if (!session_is_alnum(id[i]))
      return CHUB_EINVAL;
  memcpy(out->model_id, id, 20);
  out->model_id[20] = '\0';
  while (query && *query) {
    query++;
    size_t n = strcspn(query, "&");
    if (n > 8 && strncmp(query, "api_key=", 8) == 0) {
      size_t kl = n - 8;
      if (kl >= sizeof out->api_key)
        return CHUB_EINVAL;
      for (size_t i = 0; i < kl; i++)
        if (!session_is_alnum(query[8 + i]))
          return CHUB_EINVAL;
      memcpy(out->api_key, query + 8, kl);
      out->api_key[kl] = '\0';
    }
    query += n;
  }
  out->kind = SESSION_IDENT_URL;
  return CHUB_OK;
}

static chub_code session_parse_file(const char *text, session_ident *out) {
  const char *base = strrchr(text, '/');
  base = base ? base + 1 : text;
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base || strlen(base) >= sizeof out->base)
    return CHUB_EINVAL;
  const char *ext = dot + 1;
  bool known = false;
  for (size_t i = 0;
       i < sizeof session_weight_exts / sizeof *session_weight_exts; i++)
    if (strcasecmp(ext, session_weight_exts[i]) == 0)
      known = out->weights = true;
  for (size_t i = 0;
       i < sizeof session_config_exts / sizeof *session_config_exts; i++)
    if (strcasecmp(ext, session_config_exts[i]) == 0)
      known = true;
  if (!known)
    return CHUB_EINVAL;
  snprintf(out->base, sizeof out->base, "%s", base);
  snprintf(out->stem, sizeof out->stem, "%.*s", (int)(dot - base), base);
  out->kind = SESSION_IDENT_FILE;
  return CHUB_OK;
}

chub_code session_parse_identifier(const char *text, session_ident *out) {
  memset(out, 0, sizeof *out);
  if (!text || !*text)
    return CHUB_EINVAL;
  if (strncmp(text, "http://", 7) == 0 || strncmp(text, "https://", 8) == 0) {
    if (session_parse_url(text, out) == CHUB_OK)
      return CHUB_OK;
    memset(out, 0, sizeof *out);
    return CHUB_EINVAL;
  }
  if (session_parse_file(text, out) == CHUB_OK)
    return CHUB_OK;
  memset(out, 0, sizeof *out);
  return CHUB_EINVAL;
}

char *session_create_payload(const chub_args *args, const session_ident *id) {
  json_t *config = json_object();
  if (args->batch > 0)
    json_object_set_new(config, "batchSize", json_integer(args->batch));
  if (args->epochs > 0)
    json_object_set_new(config, "epochs", json_integer(args->epochs));
  if (args->imgsz > 0)
    json_object_set_new(config, "imageSize", json_integer(args->imgsz));
  if (args->patience > 0)
    json_object_set_new(config, "patience", json_integer(args->patience));
  if (args->device)
    json_object_set_new(config, "device", json_string(args->device));
  if (args->cache)
    json_object_set_new(config, "cache", json_string(args->cache));
  json_t *lineage = json_pack("{s:{s:s}}", "architecture", "name", id->stem);
  if (id->weights && lineage)
    json_object_set_new(lineage, "parent",
                        json_pack("{s:s}", "name", id->base));
  json_t *dataset = json_object();
  if (args->data)
    json_object_set_new(dataset, "name", json_string(args->data));
  json_t *root =
      json_pack("{s:o, s:o, s:o, s:{s:s}}", "config", config, "dataset",
                dataset, "lineage", lineage, "meta", "name", id->base);
  char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  return text;
}

void session_new_run_id(char out[32]) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char rnd[4] = {0};
  if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int i = 0; i < 4; i++)
      rnd[i] = (unsigned char)rand_r(&seed);
  }
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char stamp[20];
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  snprintf(out, 32, "%s-%c%c%c%c", stamp, alphabet[rnd[0] % 36],
           alphabet[rnd[1] % 36], alphabet[rnd[2] % 36], alphabet[rnd[3] % 36]);
}

void session_index_run(const char *runs_dir, const char *model_id,
                       const char *run_id) {
  char dir[PATH_MAX], path[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/by-model", runs_dir);
  if (fs_mkdirs(dir) != CHUB_OK)
    return;
  snprintf(path, sizeof path, "%s/%s", dir, model_id);
  char line[80];
  int n = snprintf(line, sizeof line, "%s\n", run_id);
  if (n > 0 && (size_t)n < sizeof line &&
      fs_replace(path, line, (size_t)n, 0600) != CHUB_OK)
    chub_log(CHUB_LOG_DEBUG, "cannot write %s: %s", path, strerror(errno));
}

/* The run a previous session of `model_id` left with pending records. */
static bool session_find_run(const char *runs_dir, const char *model_id,
                             char run_id[64]) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/by-model/%s", runs_dir, model_id);
  FILE *fp = fopen(path, "r");
  if (!fp)
    return false;
  bool ok = fgets(run_id, 64, fp) != NULL;
  fclose(fp);
  if (!ok)
    return false;
  run_id[strcspn(run_id, "\r\n")] = '\0';
  return run_id[0] && !strchr(run_id, '/') && strcmp(run_id, "..") != 0;
}

static chub_code session_open_spool(chub_session *s, const char *run_id) {
  char dir[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s/%s", s->set.runs_dir, run_id) >=
      (int)sizeof dir)
    return CHUB_EINVAL;
  if (fs_mkdirs(s->set.runs_dir) != CHUB_OK) {
    chub_log(CHUB_LOG_ERROR, "cannot create the runs directory %s: %s",
             s->set.runs_dir, strerror(errno));
    return CHUB_EIO;
  }
  return spool_open(dir, s->set.spool_max_bytes, &s->sp);
}

/* Reuses the model's earlier run when it still holds unsent records. */
static chub_code session_attach_run(chub_session *s, const char *model_id) {
  char run_id[64];
  if (model_id && session_find_run(s->set.runs_dir, model_id, run_id) &&
      session_open_spool(s, run_id) == CHUB_OK) {
    size_t m = 0, c = 0;
    bool fin = false;
    spool_pending_counts(s->sp, &m, &c, &fin);
    if (m || c || fin) {
      chub_log(CHUB_LOG_INFO,
               "resuming local run %s of model %s (%zu epoch(s), %zu "
               "checkpoint(s) not yet on the hub)",
               run_id, model_id, m, c + (fin ? 1 : 0));
      return CHUB_OK;
    }
    spool_close(s->sp);
    s->sp = NULL;
  }
  char fresh[32];
  session_new_run_id(fresh);
  chub_code rc = session_open_spool(s, fresh);
  if (rc != CHUB_OK)
    chub_log(CHUB_LOG_ERROR, "cannot open the local run %s/%s: %s",
             s->set.runs_dir, fresh, chub_strerror(rc));
  return rc;
}

static void session_set_model(chub_session *s, const char *id) {
  free(s->model_id);
  free(s->model_url);
  s->model_id = strdup(id);
  const char *web = chub_settings_web_root(&s->set);
  size_t n = strlen(web);
  while (n > 0 && web[n - 1] == '/')
    n--;
  size_t len = n + strlen(id) + 16;
  s->model_url = malloc(len);
  if (s->model_url)
    snprintf(s->model_url, len, "%.*s/models/%s", (int)n, web, id);
}

static void session_take_train_args(chub_session *s, json_t *model) {
  json_t *ta = json_object_get(model, "train_args");
  if (!json_is_object(ta))
    return;
  s->train_args_json = json_incref(ta);
  chub_args *a = &s->train_args;
  a->data = json_string_value(json_object_get(ta, "data"));
  a->device = json_string_value(json_object_get(ta, "device"));
  a->cache = json_string_value(json_object_get(ta, "cache"));
  a->epochs = (int)json_number_value(json_object_get(ta, "epochs"));
  a->batch = (int)json_number_value(json_object_get(ta, "batch"));
  a->imgsz = (int)json_number_value(json_object_get(ta, "imgsz"));
  a->patience = (int)json_number_value(json_object_get(ta, "patience"));
  s->has_train_args = true;
}

static char *session_absolute_url(const chub_session *s, const char *url) {
  if (!url)
    return NULL;
  if (url[0] != '/')
    return strdup(url);
  size_t len = strlen(s->set.api_root) + strlen(url) + 1;
  char *out = malloc(len);
  if (out)
    snprintf(out, len, "%s%s", s->set.api_root, url);
  return out;
}

/* What the open request got back, for session_report_failure. */
typedef struct session_answer {
  long status;
  char msg[256];
} session_answer;

static chub_code session_load(chub_session *s, http_client *h, const char *id,
                              session_answer *ans) {
  char path[64];
  snprintf(path, sizeof path, "/v1/models/%s", id);
  http_result res;
  chub_code rc =
      http_call(h, "GET", path, NULL, NULL, &session_policy_open, &res);
  ans->status = res.status;
  snprintf(ans->msg, sizeof ans->msg, "%s", res.message);
  if (rc == CHUB_OK) {
    session_set_model(s, id);
    session_take_train_args(s, res.data);
    const char *status = json_string_value(json_object_get(res.data, "status"));
    bool trained = status && strcmp(status, "trained") == 0;
    if (trained) {
      const char *w = json_string_value(json_object_get(res.data, "weights"));
      char *abs = session_absolute_url(s, w);
      chub_log(CHUB_LOG_INFO,
               "model %s is already trained; its best weights are at %s", id,
               abs ? abs : "(none uploaded)");
      free(abs);
    } else if (json_is_true(json_object_get(res.data, "has_last_weights"))) {
      s->resume_url = session_absolute_url(
          s, json_string_value(json_object_get(res.data, "resume")));
      if (s->resume_url)
        chub_log(CHUB_LOG_INFO, "model %s can resume from %s", id,
                 s->resume_url);
    }
  }
  http_result_clear(&res);
  return rc;
}

static chub_code session_create(chub_session *s, http_client *h,
                                const char *payload, session_answer *ans) {
  http_result res;
  chub_code rc = http_call(h, "POST", "/v1/models", payload, NULL,
                           &session_policy_open, &res);
  ans->status = res.status;
  snprintf(ans->msg, sizeof ans->msg, "%s", res.message);
  if (rc == CHUB_OK) {
    const char *id = json_string_value(json_object_get(res.data, "id"));
    session_ident check;
    char url[64];
    snprintf(url, sizeof url, "http://h/models/%s", id ? id : "");
    if (!id || strlen(id) != 20 ||
        session_parse_identifier(url, &check) != CHUB_OK) {
      snprintf(ans->msg, sizeof ans->msg,
               "the answer to create has no valid model id");
      rc = CHUB_EPROTO;
    } else {
      session_set_model(s, id);
    }
  }
  http_result_clear(&res);
  return rc;
}

/* Logs why the hub refused and whether training goes on offline. Returns
 * true when the failure means "open offline": no answer, or a status the
 * retry policy treats as passing (5xx, 408, 429) that outlasted it. */
static bool session_report_failure(chub_code rc, const char *what,
                                   const chub_session *s,
                                   const session_answer *ans) {
  const char *msg = ans->msg;
  switch (rc) {
  case CHUB_EAUTH:
    chub_log(CHUB_LOG_ERROR, "the hub rejected the API key; check your API "
                             "key (chub login KEY)");
    return false;
  case CHUB_ENOTFOUND:
    chub_log(CHUB_LOG_ERROR,
             "the hub at %s has no model %s (or it belongs to another key); "
             "training continues without the hub",
             s->set.api_root, what);
    return false;
  case CHUB_ENET:
  case CHUB_ETIMEDOUT:
    return true;
  default:
    if (rc == CHUB_EHTTP && http_retryable(ans->status))
      return true;
    chub_log(CHUB_LOG_ERROR,
             "the hub at %s refused %s: %s; training continues without the "
             "hub",
             s->set.api_root, what, msg[0] ? msg : chub_strerror(rc));
    return false;
  }
}

void chub_session_close(chub_session *s) {
  if (!s)
    return;
  sender_stop(s->snd, 2.0);
  if (s->sp) {
    spool_sync(s->sp);
    spool_close(s->sp);
  }
  json_decref(s->train_args_json);
  free(s->model_id);
  free(s->model_url);
  free(s->resume_url);
  free(s);
}

static chub_code session_start_online(chub_session *s) {
  size_t m = 0, c = 0;
  bool fin = false;
  spool_pending_counts(s->sp, &m, &c, &fin);
  sender_config cfg = {.backlog = m || c || fin,
                       .api_root = s->set.api_root,
                       .api_key = s->api_key,
                       .model_id = s->model_id,
                       .sp = s->sp,
                       .heartbeat_s = s->set.rate_heartbeat,
                       .system_load = s->set.system_metrics};
  s->snd = sender_start(&cfg);
  if (!s->snd) {
    s->offline = true;
    return CHUB_EOFFLINE;
  }
  chub_log(CHUB_LOG_INFO, "View model at %s", s->model_url);
  return CHUB_OK;
}

chub_code chub_session_open(const char *model, const chub_args *args,
                            chub_session **out) {
  *out = NULL;
  session_ident id;
  if (session_parse_identifier(model, &id) != CHUB_OK) {
    chub_log(CHUB_LOG_ERROR,
             "cannot use '%s' as a hub model: give a model URL "
             "({web root}/models/ID) or a model file (*.pt, *.yaml, *.cfg, "
             "*.weights, *.bin, *.gguf, *.safetensors, *.onnx)",
             model ? model : "(null)");
    return CHUB_EINVAL;
  }
  chub_session *s = calloc(1, sizeof *s);
  if (!s)
    return CHUB_ENOMEM;
  chub_code rc = chub_settings_load(&s->set);
  if (rc != CHUB_OK) {
    free(s);
    return rc;
  }
  snprintf(s->api_key, sizeof s->api_key, "%s",
           id.api_key[0] ? id.api_key : s->set.api_key);
  s->offline = strcmp(s->set.mode, "offline") == 0 || !s->api_key[0];
  char *payload = NULL;
  if (id.kind == SESSION_IDENT_FILE) {
    payload = session_create_payload(args, &id);
    if (!payload) {
      free(s);
      return CHUB_ENOMEM;
    }
  }
  session_answer ans = {0, ""};
  if (!s->offline) {
    http_client *h = http_client_new(s->set.api_root, s->api_key);
    if (!h)
      rc = CHUB_ENOMEM;
    else if (id.kind == SESSION_IDENT_URL)
      rc = session_load(s, h, id.model_id, &ans);
    else
      rc = session_create(s, h, payload, &ans);
    http_client_free(h);
    if (rc != CHUB_OK) {
      if (!session_report_failure(
              rc, id.kind == SESSION_IDENT_URL ? id.model_id : "the new model",
              s, &ans)) {
        free(payload);
        chub_session_close(s);
        return rc;
      }
      chub_log(CHUB_LOG_WARN,
               "the hub at %s gave no answer (%s); training continues "
               "offline",
               s->set.api_root, ans.msg[0] ? ans.msg : chub_strerror(rc));
      s->offline = true;
    }
  }
  const char *known = s->model_id                    ? s->model_id
                      : id.kind == SESSION_IDENT_URL ? id.model_id
                                                     : NULL;
  rc = session_attach_run(s, known);
  if (rc != CHUB_OK) {
    free(payload);
    chub_session_close(s);
    return rc;
  }
  spool_meta_set(s->sp, "api_root", s->set.api_root);
  /* Without its query: a ?api_key= must not end up in run.json. */
  char ident[1024];
  snprintf(ident, sizeof ident, "%.*s", (int)strcspn(model, "?"), model);
  spool_meta_set(s->sp, "identifier", ident);
  if (payload)
    spool_meta_set(s->sp, "create", payload);
  free(payload);
  if (known) {
    spool_meta_set(s->sp, "model_id", known);
    session_index_run(s->set.runs_dir, known, spool_run_id(s->sp));
  }
  if (!s->offline)
    rc = session_start_online(s);
  if (s->offline) {
    chub_log(CHUB_LOG_INFO,
             "running offline: run %s keeps every epoch and checkpoint; "
             "upload it later with: chub sync %s",
             spool_run_id(s->sp), spool_run_id(s->sp));
    rc = CHUB_EOFFLINE;
  }
  *out = s;
  return rc;
}

const char *chub_session_model_id(const chub_session *s) {
  return s && !s->offline ? s->model_id : NULL;
}

const char *chub_session_model_url(const chub_session *s) {
  return s && !s->offline ? s->model_url : NULL;
}

const char *chub_session_run_id(const chub_session *s) {
  return s && s->sp ? spool_run_id(s->sp) : NULL;
}

const char *chub_session_resume_url(const chub_session *s) {
  return s ? s->resume_url : NULL;
}

const chub_args *chub_session_train_args(const chub_session *s) {
  return s && s->has_train_args ? &s->train_args : NULL;
}

/* An epoch the spool refused (full, or the disk failed): said once. */
static void session_warn_unspooled(chub_session *s, int epoch, chub_code rc) {
  if (s->warned_full)
    return;
  chub_log(CHUB_LOG_WARN,
           "cannot spool epoch %d of run %s: %s; later epochs are tried "
           "again",
           epoch, spool_run_id(s->sp), chub_strerror(rc));
  s->warned_full = true;
}

chub_code chub_session_queue_metrics(chub_session *s, int epoch,
                                     const char *json) {
  if (!s || !json || epoch < 0)
    return CHUB_EINVAL;
  chub_code rc = spool_append_metrics(s->sp, epoch, json);
  if (rc != CHUB_OK)
    session_warn_unspooled(s, epoch, rc);
  return rc;
}

CHUB_HOT chub_code chub_session_flush_metrics(chub_session *s) {
  if (!s)
    return CHUB_EINVAL;
  if (!s->snd)
    return CHUB_EOFFLINE;
  sender_post(s->snd, SENDER_METRICS);
  return CHUB_OK;
}

/* The spool outlives the process's working directory; keep paths whole. */
static char *session_abs_path(const char *path) {
  if (path[0] == '/')
    return strdup(path);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd))
    return strdup(path);
  size_t len = strlen(cwd) + strlen(path) + 2;
  char *out = malloc(len);
  if (out)
    snprintf(out, len, "%s/%s", cwd, path);
  return out;
}

chub_code chub_session_queue_checkpoint(chub_session *s, int epoch,
                                        const char *path, bool is_best) {
  if (!s || !path)
    return CHUB_EINVAL;
  /* The trainer calls this after it finished writing `path`. */
  double queued_at = chub_wall_now();
  char *abs = session_abs_path(path);
  if (!abs)
    return CHUB_ENOMEM;
  spool_ckpt c = {.epoch = epoch, .is_best = is_best, .path = abs};
  chub_code rc = spool_append_checkpoint(s->sp, &c);
  free(abs);
  if (rc != CHUB_OK)
    return rc;
  if (!s->snd)
    return CHUB_EOFFLINE;
  sender_note_checkpoint(s->snd, c.seq, queued_at);
  sender_post(s->snd, SENDER_CHECKPOINT);
  return CHUB_OK;
}

chub_code chub_session_upload_final(chub_session *s, int epoch,
                                    const char *path, double map,
                                    double deadline_s) {
  if (!s)
    return CHUB_EINVAL;
  /* The final sync runs here, on the caller's thread, so the sender (and
   * its heartbeats) stops first and no two threads send at once. */
  sender_stop(s->snd, 2.0);
  s->snd = NULL;
  unsigned long long final_seq = 0;
  double final_at = chub_wall_now();
  struct stat st;
  if (path && stat(path, &st) == 0) {
    char *abs = session_abs_path(path);
    spool_ckpt c = {.epoch = epoch, .final = true, .map = map, .path = abs};
    if (abs && spool_append_checkpoint(s->sp, &c) == CHUB_OK)
      final_seq = c.seq;
    free(abs);
  } else {
    chub_log(CHUB_LOG_WARN, "no best weights at %s; only metrics are synced",
             path ? path : "(none given)");
  }
  spool_sync(s->sp);
  if (s->offline || !s->model_id)
    return CHUB_EOFFLINE;
  http_client *h = http_client_new(s->set.api_root, s->api_key);
  if (!h)
    return CHUB_ENOMEM;
  _Atomic long long deadline_ms;
  atomic_init(&deadline_ms, (long long)((chub_now() + deadline_s) * 1000.0));
  http_client_set_abort(h, &deadline_ms);
  /* The deadline bounds the whole sync; the budget must not cut it short
   * (it is scaled by CHUB_RETRY_SCALE, the deadline is not). */
  http_policy policy = {10, deadline_s / http_client_scale(h), 30.0};
  drain_newest final;
  drain_newest_init(&final);
  drain_newest_set(&final, final_seq, final_at);
  /* A file caught mid-write stays pending after a few tries; the trainer
   * is still here and `chub sync` can send it later. */
  drain_policy drain = {.http = &policy,
                        .newest = &final,
                        .busy_tries = SESSION_UNSETTLED_TRIES,
                        .progress = true};
  drain_report report = {0};
  chub_code rc = drain_all(h, s->sp, s->model_id, &drain, &report);
  http_client_free(h);
  spool_sync(s->sp);
  return rc;
}

/* ------------------------------------------------------------ callbacks */

void session_on_train_start(chub_session *s) {
  s->timer_metrics = s->timer_ckpt = chub_now();
}

CHUB_HOT void session_on_epoch_end(chub_session *s, int epoch,
                                   const flat_item *items, size_t n) {
  /* Spooled first: from here on a failed or late upload loses nothing, and
   * everything still pending goes with the next upload. */
  bool dropped = false;
  chub_code rc = spool_append_metrics_items(s->sp, epoch, items, n, &dropped);
  if (dropped && !s->warned_nonfinite) {
    chub_log(CHUB_LOG_WARN,
             "epoch %d has a NaN or infinite metric, or a metric name that "
             "is not UTF-8; such entries are left out of the upload (logged "
             "once)",
             epoch);
    s->warned_nonfinite = true;
  }
  if (rc != CHUB_OK)
    session_warn_unspooled(s, epoch, rc);
  double now = chub_now();
  if (now - s->timer_metrics > s->set.rate_metrics) {
    chub_session_flush_metrics(s);
    s->timer_metrics = now;
  }
}

void session_on_model_save(chub_session *s, int epoch, const char *path,
                           bool is_best) {
  double now = chub_now();
  if (now - s->timer_ckpt > s->set.rate_ckpt) {
    if (s->model_url)
      chub_log(CHUB_LOG_INFO, "Uploading checkpoint %s", s->model_url);
    chub_session_queue_checkpoint(s, epoch, path, is_best);
    s->timer_ckpt = now;
  }
}

void session_on_train_end(chub_session *s, int epoch, const char *best,
                          double map) {
  const char *run = chub_session_run_id(s);
  chub_log(CHUB_LOG_INFO, "Syncing final model...");
  chub_code rc =
      chub_session_upload_final(s, epoch, best, map, s->set.final_deadline);
  if (rc == CHUB_OK) {
    chub_log(CHUB_LOG_INFO, "Done");
    chub_log(CHUB_LOG_INFO, "View model at %s", s->model_url);
  } else if (rc == CHUB_EOFFLINE) {
    chub_log(CHUB_LOG_INFO,
             "run %s is saved offline; upload it with: chub sync %s", run, run);
  } else {
    chub_log(CHUB_LOG_WARN,
             "the final sync did not finish (%s); everything stays spooled "
             "in run %s; upload it with: chub sync %s",
             rc == CHUB_ETIMEDOUT ? "the deadline passed" : chub_strerror(rc),
             run, run);
  }
  chub_session_close(s);
}

spool *session_spool(const chub_session *s) {
  return s->sp;
}

sender *session_sender(const chub_session *s) {
  return s->snd;
}

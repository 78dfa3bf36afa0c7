/*
 * cmd_pull.c - `chub pull MODEL [--best|--last|--epoch N] [-o FILE]`: a
 * model's weights from the hub to a local file, verified.
 *
 * The MODEL answer names the weights by a signed download URL and lists
 * every checkpoint with its SHA-256. The file is fetched from that URL
 * without the API key (the URL is the capability, and it may point
 * elsewhere), into FILE.part next to FILE, so an interrupted pull resumes
 * with a Range request. FILE appears only by an atomic rename once the
 * whole file's SHA-256 matched what the hub said: whatever happens, FILE
 * is either absent, as before, or exactly the weights.
 */
#include "cli.h"
#include "http.h"
#include "progress.h"
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum pull_which { PULL_BEST, PULL_LAST, PULL_EPOCH } pull_which;

/* What one attempt at the file ended with. */
typedef enum pull_result {
  PULL_DONE,    /* FILE holds the verified weights */
  PULL_RESTART, /* the part cannot be resumed: discard it, start over */
  PULL_FAILED   /* reported; the part is kept only when it may be resumed */
} pull_result;

typedef struct pull_job {
  const char *url;  /* the signed download URL */
  char expect[65];  /* the SHA-256 the hub gives for these weights */
  const char *file; /* where the weights go */
  char part[PATH_MAX];
} pull_job;

static bool pull_is_hex64(const char *s, size_t n) {
  if (n != 64)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

/* The SHA-256 a download URL names (`.../weights/{sha256}/NAME`) into
 * hex; false when its path holds none. */
static bool pull_url_sha(const char *url, char hex[65]) {
  size_t pathlen = strcspn(url, "?#");
  for (const char *p = strstr(url, "/weights/");
       p && (size_t)(p - url) < pathlen; p = strstr(p + 1, "/weights/")) {
    const char *h = p + 9;
    size_t n = strcspn(h, "/?#");
    if (h[n] == '/' && pull_is_hex64(h, n)) {
      memcpy(hex, h, 64);
      hex[64] = '\0';
      return true;
    }
  }
  return false;
}

/* The file name a URL gives: its last path segment, the query dropped.
 * False when that is no usable name (empty, "." or ".."). */
static bool pull_url_name(const char *url, char *out, size_t n) {
  size_t pathlen = strcspn(url, "?#");
  const char *scheme = strstr(url, "://");
  const char *path = scheme ? strchr(scheme + 3, '/') : NULL;
  if (!path || (size_t)(path - url) >= pathlen)
    return false;
  const char *end = url + pathlen;
  const char *seg = end;
  while (seg > path && seg[-1] != '/')
    seg--;
  size_t len = (size_t)(end - seg);
  if (len == 0 || len >= n || (len == 1 && seg[0] == '.') ||
      (len == 2 && seg[0] == '.' && seg[1] == '.'))
    return false;
  memcpy(out, seg, len);
  out[len] = '\0';
  return true;
}

/* The checkpoint of `epoch`: an `epoch` checkpoint rather than a final one
 * of the same epoch (that is what a trainer resumes from), and of several
 * the newest (created_at; on a tie the first, as chubd lists newest
 * first). NULL when there is none. */
static json_t *pull_epoch_entry(json_t *checkpoints, long long epoch) {
  json_t *pick = NULL, *c;
  size_t i;
  json_array_foreach(checkpoints, i, c) {
    json_t *e = json_object_get(c, "epoch");
    if (!json_is_integer(e) || json_integer_value(e) != epoch)
      continue;
    if (!pick) {
      pick = c;
      continue;
    }
    const char *t = json_string_value(json_object_get(c, "type"));
    const char *pt = json_string_value(json_object_get(pick, "type"));
    bool is_epoch = t && !strcmp(t, "epoch");
    bool pick_epoch = pt && !strcmp(pt, "epoch");
    if (is_epoch != pick_epoch) {
      if (is_epoch)
        pick = c;
      continue;
    }
    const char *at = json_string_value(json_object_get(c, "created_at"));
    const char *pat = json_string_value(json_object_get(pick, "created_at"));
    if (at && pat && strcmp(at, pat) > 0)
      pick = c;
  }
  return pick;
}

/* The epochs the model has checkpoints of, ascending and each once, for
 * an error message. */
static void pull_epochs_list(json_t *checkpoints, char *out, size_t n) {
  long long seen[64];
  size_t count = 0, i;
  json_t *c;
  json_array_foreach(checkpoints, i, c) {
    json_t *e = json_object_get(c, "epoch");
    if (!json_is_integer(e))
      continue;
    long long v = json_integer_value(e);
    size_t at = 0;
    while (at < count && seen[at] < v)
      at++;
    if ((at < count && seen[at] == v) || count == 64)
      continue;
    memmove(seen + at + 1, seen + at, (count - at) * sizeof *seen);
    seen[at] = v;
    count++;
  }
  out[0] = '\0';
  size_t len = 0;
  for (size_t k = 0; k < count && len + 24 < n; k++)
    len +=
        (size_t)snprintf(out + len, n - len, "%s%lld", k ? ", " : "", seen[k]);
}

/* fsyncs the directory holding `path`, so that a rename in it survives a
 * crash. */
static void pull_sync_dir(const char *path) {
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

/* The ETag as a bare lowercase SHA-256, or "" when it is not one (a weak
 * or foreign ETag says nothing about the bytes). */
static void pull_etag_sha(const char *etag, char hex[65]) {
  hex[0] = '\0';
  size_t n = strlen(etag);
  if (n == 66 && etag[0] == '"' && etag[65] == '"' &&
      pull_is_hex64(etag + 1, 64)) {
    memcpy(hex, etag + 1, 64);
    hex[64] = '\0';
  }
}

/* One attempt: resumes the part when `resume` and it holds bytes, else
 * starts it over. */
static pull_result pull_attempt(pull_job *j, bool resume) {
  int fd = open(j->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    cli_error("cannot open %s: %s", j->part, strerror(errno));
    return PULL_FAILED;
  }
  struct stat st;
  long long from = 0;
  if (resume && fstat(fd, &st) == 0)
    from = (long long)st.st_size;
  if (from > 0)
    fprintf(stderr, "chub: resuming %s from byte %lld\n", j->part, from);
  const char *base = strrchr(j->file, '/');
  char label[300];
  snprintf(label, sizeof label, "Downloading %s", base ? base + 1 : j->file);
  /* The shared progress bar, only on a terminal: its plain-log fallback
   * would clutter a script's output. */
  progress prog;
  progress_init(&prog, label);
  http_fetch f;
  chub_code rc =
      http_download(j->url, fd, from, prog.tty ? progress_cb : NULL, &prog, &f);
  progress_done(&prog);
  if (f.range_wrong || (from > 0 && f.status == 416)) {
    close(fd);
    cli_error("the hub cannot resume %s (HTTP %ld); downloading it again",
              j->part, f.status);
    return PULL_RESTART;
  }
  if (rc != CHUB_OK) {
    close(fd);
    if (rc == CHUB_ENET)
      cli_error("the download broke off after %lld bytes: %s; %s is kept, "
                "run the same pull again to resume it",
                f.written, f.error, j->part);
    else
      cli_error("%s: %s", j->part, f.error);
    return PULL_FAILED;
  }
  if (f.status != 200 && f.status != 206) {
    close(fd);
    if (from == 0)
      unlink(j->part); /* created just now, holds nothing */
    /* The hub's message says which: expired, signature, revoked key. */
    cli_error("cannot download the weights: %s (HTTP %ld)", f.message,
              f.status);
    return PULL_FAILED;
  }
  char etag[65];
  pull_etag_sha(f.etag, etag);
  if (etag[0] && strcmp(etag, j->expect) != 0) {
    close(fd);
    cli_error("the download's ETag (%s) is not the SHA-256 the hub lists for "
              "these weights (%s); nothing saved",
              etag, j->expect);
    unlink(j->part);
    return PULL_FAILED;
  }
  char got[65];
  if (fsync(fd) != 0 || chub_sha256_fd(fd, got) != CHUB_OK) {
    cli_error("cannot write %s: %s", j->part, strerror(errno));
    close(fd);
    return PULL_FAILED;
  }
  if (fstat(fd, &st) != 0)
    st.st_size = 0;
  close(fd);
  if (strcmp(got, j->expect) != 0) {
    if (from > 0 && f.status == 206) {
      cli_error("%s resumed from byte %lld does not match the SHA-256 (the "
                "part held other bytes); downloading it again",
                j->part, from);
      return PULL_RESTART;
    }
    unlink(j->part);
    cli_error("the downloaded file's SHA-256 %s is not the %s the hub lists "
              "for these weights; nothing saved",
              got, j->expect);
    return PULL_FAILED;
  }
  if (rename(j->part, j->file) != 0) {
    cli_error("cannot rename %s to %s: %s", j->part, j->file, strerror(errno));
    return PULL_FAILED;
  }
  pull_sync_dir(j->file);
  printf("chub: saved %s (%lld bytes, sha256 %s)\n", j->file,
         (long long)st.st_size, got);
  return PULL_DONE;
}

/* Fetches the job's URL into its file: resumes a part that is there, and
 * starts over once when the part turns out not to be resumable. */
static int pull_fetch(pull_job *j) {
  pull_result r = pull_attempt(j, true);
  if (r == PULL_RESTART) {
    if (unlink(j->part) != 0 && errno != ENOENT) {
      cli_error("cannot remove %s: %s", j->part, strerror(errno));
      return CLI_FAILED;
    }
    r = pull_attempt(j, false);
    if (r == PULL_RESTART) {
      unlink(j->part);
      cli_error("the hub sent other bytes than it lists for these weights; "
                "nothing saved");
    }
  }
  return r == PULL_DONE ? CLI_OK : CLI_FAILED;
}

/* Picks the download URL and its expected SHA-256 out of MODEL into *j
 * (j->url borrowed from `model`). Returns CLI_OK, or CLI_FAILED after
 * saying what the model lacks. */
static int pull_pick(json_t *model, const char *id, pull_which which,
                     long long epoch, pull_job *j) {
  json_t *checkpoints = json_object_get(model, "checkpoints");
  const char *url = NULL, *what = NULL;
  char whatbuf[64];
  json_t *entry = NULL;
  if (which == PULL_EPOCH) {
    snprintf(whatbuf, sizeof whatbuf, "checkpoint of epoch %lld", epoch);
    what = whatbuf;
    entry = pull_epoch_entry(checkpoints, epoch);
    if (!entry) {
      char epochs[256];
      pull_epochs_list(checkpoints, epochs, sizeof epochs);
      cli_error("model %s has no checkpoint of epoch %lld (%s%s)", id, epoch,
                epochs[0] ? "it has epochs " : "it has no checkpoints at all",
                epochs);
      return CLI_FAILED;
    }
    url = json_string_value(json_object_get(entry, "url"));
  } else {
    const char *field = which == PULL_BEST ? "weights" : "resume";
    what = which == PULL_BEST ? "best weights" : "last weights";
    url = json_string_value(json_object_get(model, field));
    if (!url || !*url) {
      cli_error("model %s has no %s on the hub yet (nothing uploaded)", id,
                what);
      return CLI_FAILED;
    }
  }
  if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
    /* Before its own weights exist, `weights` may name a parent model
     * (e.g. yolo11n.pt): that is not a file on this hub. */
    if (which != PULL_EPOCH && url && *url)
      cli_error("model %s has no %s of its own yet: the hub gives '%s', not "
                "a download URL",
                id, what, url);
    else
      cli_error("the hub gives no download URL for the %s of model %s%s%s%s",
                what, id, url && *url ? " ('" : "", url ? url : "",
                url && *url ? "')" : "");
    return CLI_FAILED;
  }
  j->url = url;
  /* The SHA-256 to verify against: the checkpoint's own, matched by the
   * digest the URL names; else the URL's digest itself. */
  char url_sha[65] = "";
  pull_url_sha(url, url_sha);
  const char *sha = json_string_value(json_object_get(entry, "sha256"));
  if (!sha && url_sha[0]) {
    json_t *c;
    size_t i;
    json_array_foreach(checkpoints, i, c) {
      const char *s = json_string_value(json_object_get(c, "sha256"));
      if (s && !strcmp(s, url_sha))
        sha = s;
    }
    if (!sha)
      sha = url_sha;
  }
  if (!sha || !pull_is_hex64(sha, strlen(sha))) {
    cli_error("the hub gives no SHA-256 for the %s of model %s; refusing to "
              "save bytes that cannot be verified",
              what, id);
    return CLI_FAILED;
  }
  snprintf(j->expect, sizeof j->expect, "%s", sha);
  return CLI_OK;
}

/* GET /v1/models/{id}: the MODEL (a new reference), or NULL after saying
 * why not. */
static json_t *pull_model(const chub_settings *s, const char *id,
                          const char *key) {
  char url[800];
  snprintf(url, sizeof url, "%s/v1/models/%s", s->api_root, id);
  http_answer a;
  if (http_once("GET", url, key, NULL, &http_policy_command, &a) != CHUB_OK) {
    cli_error("cannot reach the hub at %s: %s", s->api_root, a.error);
    return NULL;
  }
  if (a.status != 200) {
    if (a.status == 404)
      cli_error("model %s not found on the hub at %s (no such model, or it "
                "belongs to another API key's owner)",
                id, s->api_root);
    else
      cli_error("cannot read model %s: %s (HTTP %ld)%s", id,
                http_answer_message(&a), a.status,
                a.status == 401 ? "; check your API key (chub login KEY)" : "");
    http_answer_free(&a);
    return NULL;
  }
  json_t *doc = json_loads(a.body, 0, NULL);
  http_answer_free(&a);
  json_t *model = json_incref(json_object_get(doc, "data"));
  json_decref(doc);
  if (!json_is_object(model)) {
    cli_error("the hub's answer for model %s is not what the protocol says",
              id);
    json_decref(model);
    return NULL;
  }
  return model;
}

int cmd_pull_main(int argc, char **argv) {
  const char *model_arg = NULL, *out = NULL;
  pull_which which = PULL_BEST;
  int selectors = 0;
  long long epoch = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--best")) {
      which = PULL_BEST, selectors++;
    } else if (!strcmp(a, "--last")) {
      which = PULL_LAST, selectors++;
    } else if (!strcmp(a, "--epoch")) {
      if (i + 1 >= argc)
        return cli_usage_error("pull: --epoch needs a number");
      char *end;
      errno = 0;
      epoch = strtoll(argv[++i], &end, 10);
      if (errno || end == argv[i] || *end || epoch < 0)
        return cli_usage_error("pull: --epoch wants an epoch number >= 0, "
                               "not '%s'",
                               argv[i]);
      which = PULL_EPOCH, selectors++;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      if (i + 1 >= argc || !argv[i + 1][0])
        return cli_usage_error("pull: %s needs a file name", a);
      if (out)
        return cli_usage_error("pull: -o given twice");
      out = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      return cli_usage_error("pull: unknown option '%s'", a);
    } else if (model_arg) {
      return cli_usage_error("pull takes one model, got '%s' and '%s'",
                             model_arg, a);
    } else {
      model_arg = a;
    }
  }
  if (!model_arg)
    return cli_usage_error("pull: which model? give its URL or its id");
  if (selectors > 1)
    return cli_usage_error("pull: give at most one of --best, --last and "
                           "--epoch N");
  /* A bare id is checked as the URL it stands for, by the same parser the
   * library uses for a trainer's `model`. */
  session_ident ident;
  char as_url[128];
  bool bare = strlen(model_arg) == 20 && !strchr(model_arg, '/');
  if (bare)
    snprintf(as_url, sizeof as_url, "http://h/models/%s", model_arg);
  if (session_parse_identifier(bare ? as_url : model_arg, &ident) != CHUB_OK ||
      ident.kind != SESSION_IDENT_URL)
    return cli_usage_error("pull: '%s' is neither a model URL ({web "
                           "root}/models/ID) nor a 20-character model id",
                           model_arg);
  chub_settings s;
  if (chub_settings_load(&s) != CHUB_OK)
    return CLI_FAILED;
  const char *key = ident.api_key[0] ? ident.api_key : s.api_key;
  if (!key[0]) {
    cli_error("no API key is set; log in first with: chub login KEY (or add "
              "?api_key=KEY to the model URL)");
    return CLI_FAILED;
  }
  json_t *model = pull_model(&s, ident.model_id, key);
  if (!model)
    return CLI_FAILED;
  pull_job j = {0};
  int rc = pull_pick(model, ident.model_id, which, epoch, &j);
  char name[256];
  if (rc == CLI_OK && !out) {
    if (!pull_url_name(j.url, name, sizeof name)) {
      cli_error("the download URL %s gives no file name; name one with -o "
                "FILE",
                j.url);
      rc = CLI_FAILED;
    }
    out = name;
  }
  if (rc == CLI_OK) {
    j.file = out;
    if ((size_t)snprintf(j.part, sizeof j.part, "%s.part", out) >=
        sizeof j.part) {
      cli_error("file name too long: %s", out);
      rc = CLI_FAILED;
    } else {
      rc = pull_fetch(&j);
    }
  }
  json_decref(model);
  return rc;
}

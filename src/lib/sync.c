/*
 * sync.c - `chub sync` and `chub runs`: upload a spooled run later, and list
 * what local runs still hold.
 *
 * A run that trained offline (or whose final sync missed its deadline)
 * keeps everything in its spool plus, in run.json, what is needed to finish
 * the job: the create payload when the model was never created, the model
 * id once it was. Syncing runs the upload engine (drain.c) on the caller's
 * thread; each step acknowledges in the spool as it succeeds and the hub is
 * idempotent per epoch, so running it twice or interrupting it is safe.
 */
#include "drain.h"
#include "internal.h"
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Syncing is interactive and may be rerun; try a little harder than the
 * background sender, still bounded. */
static const http_policy sync_policy = {5, 120.0, 30.0};

/* No trainer writes a synced run any more: a checkpoint whose file is
 * still empty or changing after a few tries is not the one that was
 * queued, and is dropped rather than block what follows. */
static const drain_policy sync_drain = {
    .http = &sync_policy, .busy_tries = 3, .drop_busy = true, .progress = true};

static chub_code sync_run_dir(const chub_settings *set, const char *run,
                              char *dir, size_t len) {
  int n = strchr(run, '/') ? snprintf(dir, len, "%s", run)
                           : snprintf(dir, len, "%s/%s", set->runs_dir, run);
  if (n < 0 || (size_t)n >= len)
    return CHUB_EINVAL;
  struct stat st;
  char log[PATH_MAX + 16];
  snprintf(log, sizeof log, "%s/spool.log", dir);
  if (stat(log, &st) != 0) {
    chub_log(CHUB_LOG_ERROR, "no run %s: %s has no spool.log (see chub runs)",
             run, dir);
    return CHUB_EINVAL;
  }
  return CHUB_OK;
}

static chub_code sync_create_model(spool *sp, http_client *h,
                                   const chub_settings *set, char **model_id) {
  char *payload = spool_meta_get(sp, "create");
  if (!payload) {
    chub_log(CHUB_LOG_ERROR,
             "run %s has no model id and no create payload in run.json; "
             "nothing says which model it belongs to",
             spool_run_id(sp));
    return CHUB_ECORRUPT;
  }
  http_result res;
  chub_code rc =
      http_call(h, "POST", "/v1/models", payload, NULL, &sync_policy, &res);
  free(payload);
  const char *id = json_string_value(json_object_get(res.data, "id"));
  if (rc == CHUB_OK && id && strlen(id) == 20) {
    *model_id = strdup(id);
    spool_meta_set(sp, "model_id", id);
    spool_meta_set(sp, "api_root", set->api_root);
    session_index_run(set->runs_dir, id, spool_run_id(sp));
    chub_log(CHUB_LOG_INFO, "created model %s for run %s", id,
             spool_run_id(sp));
  } else {
    if (rc == CHUB_OK)
      rc = CHUB_EPROTO;
    chub_log(CHUB_LOG_ERROR, "cannot create the model of run %s on %s: %s",
             spool_run_id(sp), set->api_root,
             rc == CHUB_EAUTH ? "the hub rejected the API key; check your API "
                                "key (chub login KEY)"
                              : res.message);
  }
  http_result_clear(&res);
  return rc;
}

chub_code chub_sync_run(const char *run) {
  if (!run || !*run)
    return CHUB_EINVAL;
  chub_settings set;
  chub_code rc = chub_settings_load(&set);
  if (rc != CHUB_OK)
    return rc;
  char dir[PATH_MAX];
  rc = sync_run_dir(&set, run, dir, sizeof dir);
  if (rc != CHUB_OK)
    return rc;
  if (strcmp(set.mode, "offline") == 0) {
    chub_log(CHUB_LOG_ERROR, "mode is offline; switch it on with: chub "
                             "settings mode=online");
    return CHUB_EOFFLINE;
  }
  if (!set.api_key[0]) {
    chub_log(CHUB_LOG_ERROR, "no API key is set; log in first with: chub "
                             "login KEY");
    return CHUB_EAUTH;
  }
  spool *sp = NULL;
  rc = spool_open(dir, set.spool_max_bytes, &sp);
  if (rc != CHUB_OK)
    return rc;
  char *model_id = spool_meta_get(sp, "model_id");
  char *root = model_id ? spool_meta_get(sp, "api_root") : NULL;
  http_client *h = http_client_new(root ? root : set.api_root, set.api_key);
  if (!h) {
    rc = CHUB_ENOMEM;
    goto out;
  }
  if (!model_id)
    rc = sync_create_model(sp, h, &set, &model_id);
  drain_report report = {0};
  if (rc == CHUB_OK)
    rc = drain_all(h, sp, model_id, &sync_drain, &report);
  if (rc == CHUB_OK) {
    const char *web = chub_settings_web_root(&set);
    chub_log(CHUB_LOG_INFO, "run %s is on the hub: %s/models/%s",
             spool_run_id(sp), web, model_id);
  } else {
    chub_log(CHUB_LOG_WARN,
             "run %s is not fully synced (%s); what is left stays spooled; "
             "run chub sync %s again",
             spool_run_id(sp), chub_strerror(rc), spool_run_id(sp));
  }
out:
  http_client_free(h);
  free(model_id);
  free(root);
  spool_close(sp);
  return rc;
}

static int sync_compare(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One line for run `name`; a run another process holds is reported as in
 * use rather than opened (opening would wait for nobody and log an error). */
static void sync_list_one(FILE *fp, const chub_settings *set,
                          const char *name) {
  char dir[PATH_MAX], log[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/%s", set->runs_dir, name);
  snprintf(log, sizeof log, "%s/spool.log", dir);
  struct stat st;
  if (stat(log, &st) != 0)
    return;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return;
  bool busy = flock(dfd, LOCK_EX | LOCK_NB) != 0;
  close(dfd);
  if (busy) {
    fprintf(fp, "%s  (in use by a running session)\n", name);
    return;
  }
  spool *sp = NULL;
  if (spool_open(dir, set->spool_max_bytes, &sp) != CHUB_OK)
    return;
  size_t m = 0, c = 0;
  bool fin = false;
  spool_pending_counts(sp, &m, &c, &fin);
  char *model = spool_meta_get(sp, "model_id");
  fprintf(fp, "%s  %-20s  metrics %zu  checkpoints %zu  final %s\n", name,
          model ? model : "offline", m, c, fin ? "pending" : "-");
  free(model);
  spool_close(sp);
}

size_t chub_runs_names(const char *runs_dir, char ***names_out) {
  *names_out = NULL;
  DIR *d = opendir(runs_dir);
  if (!d)
    return 0;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "by-model") == 0)
      continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 32;
      char **nn = realloc(names, nc * sizeof *nn);
      if (!nn)
        break;
      names = nn;
      cap = nc;
    }
    names[n] = strdup(e->d_name);
    if (names[n])
      n++;
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, sync_compare);
  *names_out = names;
  return n;
}

void chub_runs_names_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

chub_code chub_list_runs(void *out) {
  FILE *fp = out ? out : stdout;
  chub_settings set;
  chub_code rc = chub_settings_load(&set);
  if (rc != CHUB_OK)
    return rc;
  char **names;
  size_t n = chub_runs_names(set.runs_dir, &names);
  for (size_t i = 0; i < n; i++)
    sync_list_one(fp, &set, names[i]);
  chub_runs_names_free(names, n);
  return CHUB_OK;
}

/*
 * cmd_runs.c - `chub sync [RUN ... | --all]` and `chub runs`.
 *
 * Syncing one run is the library's chub_sync_run(); this file only decides
 * which runs to hand it. "--all" (and no argument at all) means every run in
 * runs_dir whose spool still holds work or whose model was never created;
 * a run that a training process holds open is left to that process.
 */
#include "cli.h"
#include "internal.h"
#include "spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether the run in `dir` has something to upload. A run in use by a
 * session is skipped (*busy set): that session uploads it. */
static bool cmd_runs_pending(const chub_settings *s, const char *dir,
                             bool *busy) {
  *busy = false;
  char log[4300];
  int n = snprintf(log, sizeof log, "%s/spool.log", dir);
  struct stat st;
  if (n < 0 || (size_t)n >= sizeof log || stat(log, &st) != 0)
    return false;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return false;
  *busy = flock(dfd, LOCK_EX | LOCK_NB) != 0;
  close(dfd); /* releases the probe lock */
  if (*busy)
    return false;
  spool *sp = NULL;
  if (spool_open(dir, s->spool_max_bytes, &sp) != CHUB_OK)
    return true; /* let chub_sync_run say what is wrong with it */
  size_t metrics = 0, ckpts = 0;
  bool final_pending = false;
  spool_pending_counts(sp, &metrics, &ckpts, &final_pending);
  char *model = spool_meta_get(sp, "model_id");
  bool pending = metrics || ckpts || final_pending || !model;
  free(model);
  spool_close(sp);
  return pending;
}

/* Syncs one run and reports it; returns whether it succeeded. */
static bool cmd_runs_sync_one(const char *run) {
  chub_code rc = chub_sync_run(run);
  if (rc == CHUB_OK) {
    printf("synced %s\n", run);
    return true;
  }
  cli_error("sync of %s failed: %s", run, chub_strerror(rc));
  return false;
}

static int cmd_runs_sync_all(void) {
  chub_settings s;
  if (chub_settings_load(&s) != CHUB_OK)
    return CLI_FAILED;
  char **names;
  size_t n = chub_runs_names(s.runs_dir, &names);

  size_t synced = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    char dir[4200];
    int len = snprintf(dir, sizeof dir, "%s/%s", s.runs_dir, names[i]);
    bool busy = false;
    if (len > 0 && (size_t)len < sizeof dir &&
        cmd_runs_pending(&s, dir, &busy)) {
      if (cmd_runs_sync_one(names[i]))
        synced++;
      else
        failed++;
    } else if (busy) {
      printf("skipped %s: in use by a running session\n", names[i]);
    }
  }
  chub_runs_names_free(names, n);
  if (synced + failed == 0)
    printf("nothing to sync in %s\n", s.runs_dir);
  return failed ? CLI_FAILED : CLI_OK;
}

/* Says once, before any run is tried, why nothing could be uploaded. */
static bool cmd_runs_can_sync(void) {
  chub_settings s;
  if (chub_settings_load(&s) != CHUB_OK)
    return false;
  if (strcmp(s.mode, "offline") == 0) {
    cli_error("mode is offline; switch it on with: chub settings mode=online");
    return false;
  }
  if (!s.api_key[0]) {
    cli_error("no API key is set; log in first with: chub login KEY");
    return false;
  }
  return true;
}

int cmd_runs_sync(int argc, char **argv) {
  bool all = argc == 1 || (argc == 2 && strcmp(argv[1], "--all") == 0);
  for (int i = 1; !all && i < argc; i++) {
    if (argv[i][0] == '-')
      return cli_usage_error("unknown option '%s' for sync", argv[i]);
  }
  if (!cmd_runs_can_sync())
    return CLI_FAILED;
  if (all)
    return cmd_runs_sync_all();
  size_t failed = 0;
  for (int i = 1; i < argc; i++)
    failed += cmd_runs_sync_one(argv[i]) ? 0 : 1;
  return failed ? CLI_FAILED : CLI_OK;
}

int cmd_runs_list(int argc, char **argv) {
  (void)argv;
  if (argc != 1)
    return cli_usage_error("runs takes no arguments");
  chub_settings s;
  chub_code rc = chub_settings_load(&s);
  char **names = NULL;
  size_t n = rc == CHUB_OK ? chub_runs_names(s.runs_dir, &names) : 0;
  chub_runs_names_free(names, n);
  if (rc == CHUB_OK && n == 0) {
    printf("no runs in %s\n", s.runs_dir);
    return CLI_OK;
  }
  if (rc == CHUB_OK)
    rc = chub_list_runs(stdout);
  if (rc != CHUB_OK) {
    cli_error("cannot list runs: %s", chub_strerror(rc));
    return CLI_FAILED;
  }
  return CLI_OK;
}

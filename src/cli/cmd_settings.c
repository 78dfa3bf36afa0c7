/*
 * cmd_settings.c - `chub settings`, `chub settings KEY=VALUE ...` and
 * `chub settings reset`.
 *
 * Showing prints what a run would actually use (file merged with the
 * environment), marks what the environment overrides, and masks the API key
 * to its last four characters so a shared terminal does not leak it.
 * Setting checks every KEY=VALUE before writing any, so a command line with
 * one bad value changes nothing.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The API key with all but its last 4 characters masked. */
static void cmd_settings_mask(const char *key, char *out, size_t len) {
  size_t n = strlen(key);
  if (n == 0) {
    snprintf(out, len, "(not set: chub login KEY)");
    return;
  }
  size_t shown = n > 4 ? 4 : 0;
  size_t i = 0;
  for (; i < n - shown && i + 1 < len; i++)
    out[i] = '*';
  snprintf(out + i, len - i, "%s", key + n - shown);
}

/* The environment variable that overrides `key`, or NULL. */
static const char *cmd_settings_env_var(const char *key) {
  static const char *const map[][2] = {
      {"api_key", "CHUB_API_KEY"},   {"api_root", "CHUB_API_ROOT"},
      {"web_root", "CHUB_WEB_ROOT"}, {"hub", "CHUB_HUB"},
      {"sync", "CHUB_SYNC"},         {"mode", "CHUB_MODE"},
      {"runs_dir", "CHUB_RUNS_DIR"}, {"system_metrics", "CHUB_SYSTEM_METRICS"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], key) == 0)
      return map[i][1];
  return NULL;
}

static void cmd_settings_row(const char *key, const char *value,
                             const char *env) {
  const char *from = env && getenv(env) ? env : NULL;
  printf("%-22s %s%s%s%s\n", key, value, from ? "  (from " : "",
         from ? from : "", from ? ")" : "");
}

static int cmd_settings_show(void) {
  chub_settings s;
  char path[4096];
  if (chub_settings_path(path, sizeof path) != CHUB_OK ||
      chub_settings_load(&s) != CHUB_OK) {
    cli_error("cannot read the settings");
    return CLI_FAILED;
  }
  char buf[600];
  cmd_settings_row("uuid", s.uuid, NULL);
  cmd_settings_row("sync", s.sync ? "true" : "false", "CHUB_SYNC");
  cmd_settings_row("hub", s.hub ? "true" : "false", "CHUB_HUB");
  cmd_settings_mask(s.api_key, buf, sizeof buf);
  cmd_settings_row("api_key", buf, "CHUB_API_KEY");
  cmd_settings_row("api_root", s.api_root, "CHUB_API_ROOT");
  if (!s.web_root[0])
    snprintf(buf, sizeof buf, "(same as api_root)");
  cmd_settings_row("web_root", s.web_root[0] ? s.web_root : buf,
                   "CHUB_WEB_ROOT");
  cmd_settings_row("mode", s.mode, "CHUB_MODE");
  cmd_settings_row("system_metrics", s.system_metrics ? "true" : "false",
                   "CHUB_SYSTEM_METRICS");
  snprintf(buf, sizeof buf, "%g", s.rate_metrics);
  cmd_settings_row("rate_limit_metrics", buf, NULL);
  snprintf(buf, sizeof buf, "%g", s.rate_ckpt);
  cmd_settings_row("rate_limit_ckpt", buf, NULL);
  snprintf(buf, sizeof buf, "%g", s.rate_heartbeat);
  cmd_settings_row("rate_limit_heartbeat", buf, NULL);
  snprintf(buf, sizeof buf, "%g", s.final_deadline);
  cmd_settings_row("final_sync_deadline", buf, NULL);
  snprintf(buf, sizeof buf, "%lld", s.spool_max_bytes / (1024 * 1024));
  cmd_settings_row("spool_max_mb", buf, NULL);
  cmd_settings_row("runs_dir", s.runs_dir, "CHUB_RUNS_DIR");
  printf("\nsettings file: %s\n", path);
  return CLI_OK;
}

static int cmd_settings_reset(void) {
  chub_code rc = chub_settings_reset();
  if (rc != CHUB_OK) {
    cli_error("cannot reset the settings: %s", chub_strerror(rc));
    return CLI_FAILED;
  }
  char path[4096] = "";
  chub_settings_path(path, sizeof path);
  printf("Settings reset to defaults in %s (the anonymous uuid is kept)\n",
         path);
  return CLI_OK;
}

/* Splits "KEY=VALUE" into key (copied into `key`) and the value. */
static const char *cmd_settings_split(const char *arg, char *key, size_t len) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || (size_t)(eq - arg) >= len)
    return NULL;
  snprintf(key, len, "%.*s", (int)(eq - arg), arg);
  return eq + 1;
}

static int cmd_settings_set_all(int argc, char **argv) {
  char key[64], err[512];
  for (int i = 1; i < argc; i++) {
    const char *value = cmd_settings_split(argv[i], key, sizeof key);
    if (!value)
      return cli_usage_error("expected KEY=VALUE, got '%s'", argv[i]);
    if (chub_settings_check_value(key, value, err, sizeof err) != CHUB_OK)
      return cli_usage_error("%s; nothing was changed", err);
  }
  for (int i = 1; i < argc; i++) {
    const char *value = cmd_settings_split(argv[i], key, sizeof key);
    chub_code rc = chub_settings_set(key, value, err, sizeof err);
    if (rc != CHUB_OK) {
      cli_error("cannot set %s: %s", key, err[0] ? err : chub_strerror(rc));
      return CLI_FAILED;
    }
    printf("%s set\n", key);
    const char *env = cmd_settings_env_var(key);
    if (env && getenv(env))
      cli_error("note: %s is set in the environment and overrides %s", env,
                key);
  }
  return CLI_OK;
}

int cmd_settings_main(int argc, char **argv) {
  if (argc == 1)
    return cmd_settings_show();
  if (argc == 2 && strcmp(argv[1], "reset") == 0)
    return cmd_settings_reset();
  return cmd_settings_set_all(argc, argv);
}

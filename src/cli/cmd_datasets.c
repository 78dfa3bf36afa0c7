/*
 * cmd_datasets.c - `chub datasets` (the hub's datasets for the logged-in
 * key) and `chub push-dataset FILE.zip [--name NAME]` (a new dataset on
 * the hub with the zip uploaded to it).
 *
 * The zip is hashed first and sent with its SHA-256, streamed from disk;
 * the hub checks the zip's structure and the digest and keeps nothing it
 * refused; the dataset made for a refused or failed upload is deleted
 * again, so a push either leaves a whole dataset or none.
 */
#include "cli.h"
#include "http.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmd_datasets_settings(chub_settings *s) {
  if (chub_settings_load(s) != CHUB_OK)
    return -1;
  if (!s->api_key[0]) {
    cli_error("no API key is set; log in first with: chub login KEY");
    return -1;
  }
  return 0;
}

/* Reports an answer that is not 200; returns CLI_FAILED. */
static int cmd_datasets_refused(const char *what, const http_answer *a) {
  cli_error("%s: %s (HTTP %ld)%s", what, http_answer_message(a), a->status,
            a->status == 401 ? "; check your API key (chub login KEY)" : "");
  return CLI_FAILED;
}

static void cmd_datasets_row(json_t *d) {
  const char *id = json_string_value(json_object_get(d, "id"));
  const char *name = json_string_value(json_object_get(d, "name"));
  const char *status = json_string_value(json_object_get(d, "status"));
  const char *updated = json_string_value(json_object_get(d, "updated_at"));
  json_t *size = json_object_get(d, "size");
  char sz[32] = "-";
  if (json_is_integer(size))
    snprintf(sz, sizeof sz, "%.1f MB", (double)json_integer_value(size) / 1e6);
  printf("%-20s  %-24s  %-6s  %-10s  %s\n", id ? id : "?", name ? name : "-",
         status ? status : "-", sz, updated ? updated : "-");
}

int cmd_datasets_list(int argc, char **argv) {
  (void)argv;
  if (argc != 1)
    return cli_usage_error("datasets takes no arguments");
  char header[128];
  snprintf(header, sizeof header, "%-20s  %-24s  %-6s  %-10s  %s", "ID", "NAME",
           "STATUS", "SIZE", "UPDATED");
  return cli_list_all("dataset", header, cmd_datasets_row);
}

/* The file's base name without ".zip", as the dataset's default name. */
static void cmd_datasets_default_name(const char *path, char *out, size_t n) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t len = strlen(base);
  if (len > 4 && strcmp(base + len - 4, ".zip") == 0)
    len -= 4;
  snprintf(out, n, "%.*s", (int)len, base);
}

/* POST /v1/datasets; the new id into id. */
static int cmd_datasets_create(const chub_settings *s, const char *name,
                               char id[64]) {
  json_t *body = json_pack("{s:{s:s}}", "meta", "name", name);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text) {
    cli_error("out of memory");
    return CLI_FAILED;
  }
  char url[800];
  snprintf(url, sizeof url, "%s/v1/datasets", s->api_root);
  http_answer a;
  chub_code rc =
      http_once("POST", url, s->api_key, text, &http_policy_command, &a);
  free(text);
  if (rc != CHUB_OK) {
    cli_error("cannot reach the hub at %s: %s", s->api_root, a.error);
    return CLI_FAILED;
  }
  if (a.status != 200) {
    int r = cmd_datasets_refused("cannot create the dataset", &a);
    http_answer_free(&a);
    return r;
  }
  json_t *doc = json_loads(a.body, 0, NULL);
  http_answer_free(&a);
  const char *got =
      json_string_value(json_object_get(json_object_get(doc, "data"), "id"));
  int ok = got && strlen(got) < 64;
  if (ok)
    snprintf(id, 64, "%s", got);
  json_decref(doc);
  if (!ok) {
    cli_error("the hub's answer to create a dataset holds no id");
    return CLI_FAILED;
  }
  return CLI_OK;
}

/* Deletes the dataset made for an upload that did not land. */
static void cmd_datasets_drop(const chub_settings *s, const char *id) {
  char url[800];
  snprintf(url, sizeof url, "%s/v1/datasets/%s?hard=true", s->api_root, id);
  http_answer a;
  if (http_once("DELETE", url, s->api_key, NULL, &http_policy_command, &a) !=
          CHUB_OK ||
      a.status != 200)
    cli_error("the empty dataset %s stays on the hub; remove it with DELETE "
              "%s",
              id, url);
  http_answer_free(&a);
}

int cmd_datasets_push(int argc, char **argv) {
  const char *path = NULL, *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--name") == 0) {
      if (i + 1 >= argc || !*argv[i + 1])
        return cli_usage_error("--name needs a dataset name");
      name = argv[++i];
    } else if (strncmp(argv[i], "--name=", 7) == 0 && argv[i][7]) {
      name = argv[i] + 7;
    } else if (argv[i][0] == '-') {
      return cli_usage_error("push-dataset: unknown option %s", argv[i]);
    } else if (path) {
      return cli_usage_error("push-dataset takes one file");
    } else {
      path = argv[i];
    }
  }
  if (!path)
    return cli_usage_error("push-dataset needs a FILE.zip");
  if (name && strlen(name) > 128)
    return cli_usage_error("--name takes at most 128 characters");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    cli_error("cannot read %s: %s", path,
              fd < 0 ? strerror(errno) : "not a regular file");
    if (fd >= 0)
      close(fd);
    return CLI_FAILED;
  }
  char sha[65];
  chub_code hrc = chub_sha256_fd(fd, sha);
  close(fd);
  if (hrc != CHUB_OK) {
    cli_error("cannot read %s: %s", path, strerror(errno));
    return CLI_FAILED;
  }
  if (sb.st_size == 0) {
    cli_error("%s is empty; a dataset is a zip of images and labels", path);
    return CLI_FAILED;
  }
  chub_settings s;
  if (cmd_datasets_settings(&s) < 0)
    return CLI_FAILED;
  char dname[160], id[64];
  if (name)
    snprintf(dname, sizeof dname, "%s", name);
  else
    cmd_datasets_default_name(path, dname, sizeof dname);
  int rc = cmd_datasets_create(&s, dname, id);
  if (rc != CLI_OK)
    return rc;
  char url[800], filename[200];
  snprintf(url, sizeof url, "%s/v1/datasets/%s/upload", s.api_root, id);
  const char *base = strrchr(path, '/');
  snprintf(filename, sizeof filename, "%s", base ? base + 1 : path);
  progress prog;
  bool tty = isatty(STDERR_FILENO);
  if (tty)
    progress_init(&prog, "Uploading dataset");
  http_answer a;
  chub_code up =
      http_upload_file(url, s.api_key, path, filename, sha,
                       tty ? progress_cb : NULL, tty ? &prog : NULL, &a);
  if (tty)
    progress_done(&prog);
  if (up != CHUB_OK || a.status != 200) {
    if (up != CHUB_OK) {
      cli_error("upload of %s failed: %s; nothing stored", path, a.error);
      rc = CLI_FAILED;
    } else {
      char what[300];
      snprintf(what, sizeof what, "the hub refused %s, nothing stored", path);
      rc = cmd_datasets_refused(what, &a);
      http_answer_free(&a);
    }
    cmd_datasets_drop(&s, id);
    return rc;
  }
  http_answer_free(&a);
  printf("chub: dataset %s \"%s\" holds %s (%lld bytes, sha256 %s)\n", id,
         dname, filename, (long long)sb.st_size, sha);
  return CLI_OK;
}

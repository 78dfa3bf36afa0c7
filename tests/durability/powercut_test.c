/*
 * powercut_test.c - every metrics epoch, model and checkpoint chubd
 * acknowledged survives a power cut.
 *
 * chubd runs with libpowercut.so preloaded (powercut.c), which keeps
 * beside the data directory what a power cut would leave of it: each file
 * as of its last fsync, under the names its directory held at its last
 * fsync. Clients create a model, upload a checkpoint and stream metrics
 * from four connections; chubd is killed with SIGKILL in the middle; the
 * data directory is replaced by that image; and a chubd started on it must
 * hold every epoch, the model and the checkpoint it answered 2xx for, in a
 * database that passes PRAGMA integrity_check. Three rounds, each killed
 * at a different moment.
 */
#include "chubd_proc.h"
#include "th.h"
#include "th_tmpdir.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PT_THREADS 4
#define PT_EPOCHS 100000 /* per thread, far more than a round sends */

typedef struct pt_writer {
  const char *base, *key, *id;
  int first;
  atomic_int acked; /* epochs first .. first+acked-1 were answered 200 */
  atomic_int *stop;
} pt_writer;

static void *pt_write(void *arg) {
  pt_writer *w = arg;
  char *url = th_fmt("%s/v1/models/%s", w->base, w->id);
  for (int i = 0; i < PT_EPOCHS && !atomic_load(w->stop); i++) {
    char *body = th_fmt("{\"type\": \"metrics\", \"metrics\": {\"%d\": "
                        "\"{\\\"loss\\\": %d.5}\"}}",
                        w->first + i, i);
    long status = 0;
    int rc = th_request("POST", url, w->key, "application/json", body,
                        strlen(body), &status, NULL, NULL);
    free(body);
    if (rc != 0 || status != 200) {
      if (rc == 0 && !atomic_load(w->stop))
        fprintf(stderr, "powercut: epoch %d answered %ld\n", w->first + i,
                status);
      break; /* chubd is gone: what was answered is what counts */
    }
    atomic_store(&w->acked, i + 1);
  }
  free(url);
  return NULL;
}

/* Lays the image out as the data directory, as a power cut leaves it. */
static int pt_restore(const char *data, const char *image) {
  th_rmtree(data);
  if (mkdir(data, 0700) != 0)
    return -1;
  char *mpath = th_fmt("%s/manifest", image);
  FILE *m = fopen(mpath, "r");
  free(mpath);
  if (!m)
    return -1;
  char line[8192];
  int files = 0;
  while (fgets(line, sizeof line, m)) {
    unsigned long ino;
    char rel[4096];
    if (sscanf(line, "%lu\t%4095[^\n]", &ino, rel) != 2)
      continue;
    char *dst = th_fmt("%s/%s", data, rel);
    for (char *p = dst + strlen(data) + 1; *p; p++)
      if (*p == '/') {
        *p = '\0';
        mkdir(dst, 0700);
        *p = '/';
      }
    char *src = th_fmt("%s/ino-%lu", image, ino);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
      fwrite(buf, 1, n, out);
    if (in)
      fclose(in);
    if (out)
      fclose(out);
    free(src);
    free(dst);
    files++;
  }
  fclose(m);
  return files;
}

static int pt_integrity(const char *data) {
  char *path = th_fmt("%s/chubd.db", data);
  sqlite3 *db = NULL;
  int ok = 0;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  free(path);
  return ok;
}

/* The epochs the hub holds for model id, all pages. */
static int pt_epochs(const char *base, const char *key, const char *id,
                     unsigned char *have, int max) {
  long long after = -1;
  int n = 0;
  for (int page = 0; page < 10000; page++) {
    char *url = th_fmt("%s/v1/models/%s/metrics?after=%lld&limit=1000", base,
                       id, after);
    long status = 0;
    char *body = NULL;
    th_request("GET", url, key, NULL, NULL, 0, &status, &body, NULL);
    free(url);
    json_t *env = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    json_t *rows = json_object_get(env, "data");
    if (status != 200 || !json_is_array(rows)) {
      json_decref(env);
      return -1;
    }
    size_t i, got = json_array_size(rows);
    json_t *row;
    json_array_foreach(rows, i, row) {
      long long e = json_integer_value(json_object_get(row, "epoch"));
      if (e >= 0 && e < max && !have[e]) {
        have[e] = 1;
        n++;
      }
      after = e;
    }
    json_decref(env);
    if (got < 1000)
      break;
  }
  return n;
}

static int pt_round(const char *chubd, int round, unsigned seed) {
  char *data = th_tmpdir_new("chub-powercut-data");
  char *image = th_tmpdir_new("chub-powercut-image");
  setenv("LD_PRELOAD", POWERCUT_LIB, 1);
  setenv("POWERCUT_DIR", data, 1);
  setenv("POWERCUT_IMAGE", image, 1);
  /* The stream is bounded by chubd's speed, not by its rate limit. */
  const char *const extra[] = {"--rate-limit", "1000000", "--rate-burst",
                               "1000000", NULL};
  chubd_proc *p = chubd_proc_start(chubd, data, extra);
  unsetenv("LD_PRELOAD");
  if (!p) {
    fprintf(stderr, "powercut: chubd did not start\n");
    return 1;
  }
  const char *key = chubd_proc_key(p);
  char *base = strdup(chubd_proc_base_url(p));
  int bad = 0;

  /* A model and a checkpoint, acknowledged before the stream starts. */
  char *url = th_fmt("%s/v1/models", base);
  const char *create = "{\"meta\": {\"name\": \"cut.pt\"}, \"config\": "
                       "{\"epochs\": 10}}";
  long status = 0;
  char *body = NULL;
  th_request("POST", url, key, "application/json", create, strlen(create),
             &status, &body, NULL);
  free(url);
  json_t *env = body ? json_loads(body, 0, NULL) : NULL;
  free(body);
  const char *idp =
      json_string_value(json_object_get(json_object_get(env, "data"), "id"));
  if (status != 200 || !idp) {
    fprintf(stderr, "powercut: model create answered %ld\n", status);
    json_decref(env);
    chubd_proc_free(p);
    return 1;
  }
  char *id = strdup(idp);
  json_decref(env);
  unsigned char blob[200000];
  for (size_t i = 0; i < sizeof blob; i++)
    blob[i] = (unsigned char)(i * 131 + seed);
  char sha[65];
  th_sha256_hex(blob, sizeof blob, sha);
  url = th_fmt("%s/v1/models/%s/upload", base, id);
  const char *fields[] = {"epoch", "1", "type", "epoch", NULL};
  th_response up;
  memset(&up, 0, sizeof up);
  int urc = th_upload(url, key, fields, "file", "last.pt", blob, sizeof blob,
                      NULL, NULL, &up);
  free(url);
  if (urc != 0 || up.status != 200) {
    fprintf(stderr, "powercut: checkpoint upload answered %ld\n", up.status);
    bad = 1;
  }
  th_response_free(&up);

  atomic_int stop;
  atomic_init(&stop, 0);
  pt_writer w[PT_THREADS];
  pthread_t t[PT_THREADS];
  for (int i = 0; i < PT_THREADS; i++) {
    w[i] = (pt_writer){base, key, id, i * PT_EPOCHS, 0, &stop};
    atomic_init(&w[i].acked, 0);
    pthread_create(&t[i], NULL, pt_write, &w[i]);
  }
  /* The cut: somewhere between 0.3 and 1.2 s into the stream. */
  long cut_ms = 300 + (long)((seed * 7919u) % 900);
  struct timespec ts = {cut_ms / 1000, cut_ms % 1000 * 1000000L};
  nanosleep(&ts, NULL);
  chubd_proc_kill9(p);
  atomic_store(&stop, 1);
  for (int i = 0; i < PT_THREADS; i++)
    pthread_join(t[i], NULL);

  int files = pt_restore(data, image);
  if (files <= 0) {
    fprintf(stderr, "powercut: no image to restore\n");
    bad = 1;
  }
  unsetenv("POWERCUT_DIR");
  unsetenv("POWERCUT_IMAGE");
  if (!pt_integrity(data)) {
    fprintf(stderr, "powercut: the database fails integrity_check\n");
    bad = 1;
  }
  if (chubd_proc_restart(p) != 0) {
    fprintf(stderr, "powercut: chubd does not start on what the cut left\n");
    chubd_proc_free(p);
    return 1;
  }
  free(base);
  base = strdup(chubd_proc_base_url(p));
  unsigned char *have = calloc(PT_THREADS * PT_EPOCHS, 1);
  int held = pt_epochs(base, key, id, have, PT_THREADS * PT_EPOCHS);
  long acked = 0, lost = 0;
  for (int i = 0; i < PT_THREADS; i++) {
    int n = atomic_load(&w[i].acked);
    acked += n;
    for (int e = 0; e < n; e++)
      if (!have[w[i].first + e])
        lost++;
  }
  if (held < 0) {
    fprintf(stderr, "powercut: the model is gone after the cut\n");
    bad = 1;
  }
  url = th_fmt("%s/v1/models/%s/weights/last", base, id);
  char *got = NULL;
  status = 0;
  th_request("GET", url, key, NULL, NULL, 0, &status, &got, NULL);
  free(url);
  free(got);
  if (status != 200) {
    fprintf(stderr, "powercut: the acknowledged checkpoint is gone (%ld)\n",
            status);
    bad = 1;
  }
  printf("powercut round %d: %ld epochs acknowledged, %d held after the cut, "
         "%ld lost\n",
         round, acked, held, lost);
  if (lost)
    bad = 1;
  free(have);
  free(base);
  free(id);
  chubd_proc_free(p);
  th_rmtree(image);
  free(image);
  th_rmtree(data);
  free(data);
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: powercut_test CHUBD\n");
    return 2;
  }
  int bad = 0;
  for (int round = 1; round <= 3; round++)
    bad |= pt_round(argv[1], round, (unsigned)round * 2654435761u);
  return bad;
}

/*
 * server_datasets.c - conformance: datasets (the chubd datasets contract:
 * POST/GET/PATCH/DELETE /v1/datasets..., the zip upload and its signed
 * download URL), models created from a dataset, and the /ui calls of the
 * pages' "New model" form (/ui/datasets, /ui/owners, POST /ui/models).
 *
 * What a user must be able to trust: a dataset's zip is stored whole and
 * checked or not at all (a broken or hostile archive, a digest mismatch,
 * an empty file, two files, one over --max-upload leave the dataset as it
 * was and nothing on disk); its URL serves exactly that zip to a plain
 * GET and nothing once altered; a replaced or deleted zip leaves the disk
 * unless something else uses it; another owner can neither see nor touch
 * it; a model created from it trains on its URL; and the form's POST
 * cannot come from another site's form (415 unless application/json).
 * The zips are built by hand (zipbuild.c), hostile ones by breaking one
 * number of a valid one.
 */
#include "sv.h"
#include "zipbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The suite's chubd takes uploads up to this size (413 beyond). */
#define DS_MAX_UPLOAD 200000
#define DS_REFUSED_ZIP "dataset upload refused, not a zip file"

static int ds_setup(void **state) {
  const char *args[] = {
      "--rate-limit", "100000", "--rate-burst", "100000", "--max-upload",
      "200000",       NULL};
  return sv_group_start(state, args);
}

/* ------------------------------------------------------------ helpers */

/* POST /v1/datasets {"meta": {"name": name}}; returns the new id. */
static char *ds_create(chubd_proc *p, const char *key, const char *name) {
  json_t *body = json_pack("{s:{s:s}}", "meta", "name", name);
  char *json = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  json_t *env = sv_expect(p, "POST", "/v1/datasets", key, json, 200);
  const char *id = th_json_str(env, "data.id");
  if (!sv_is_alnum(id, 20))
    fail_msg("dataset id \"%s\" is not 20 characters [A-Za-z0-9]",
             id ? id : "(none)");
  char *out = strdup(id);
  json_decref(env);
  free(json);
  return out;
}

/* GET /v1/datasets/{id} (or /ui/... when ui is set, without a key),
 * asserting 200; returns DATASET. */
static json_t *ds_read_at(chubd_proc *p, const char *key, const char *id,
                          int ui) {
  char *path = th_fmt("/%s/datasets/%s", ui ? "ui" : "v1", id);
  json_t *env = sv_expect(p, "GET", path, ui ? NULL : key, NULL, 200);
  json_t *d = json_incref(json_object_get(env, "data"));
  json_decref(env);
  if (!json_is_object(d))
    fail_msg("GET %s: data is not an object", path);
  free(path);
  return d;
}

static json_t *ds_read(chubd_proc *p, const char *key, const char *id) {
  return ds_read_at(p, key, id, 0);
}

/* A dataset zip of 3 entries: data.yaml, images/ and images/0001.bin
 * holding `len` bytes of seed `seed` (so each seed is another zip). */
#define DS_ZIP_FILES 3
static void ds_zip(unsigned seed, size_t len, zb_zip *z) {
  unsigned char *b = sv_bytes(len, seed);
  char yaml[96];
  snprintf(yaml, sizeof yaml,
           "path: .\ntrain: images\nval: images\nnames: {0: s%u}\n", seed);
  zb_file f[] = {{"data.yaml", 0, yaml, strlen(yaml), 0},
                 {"images/", 0, "", 0, 0},
                 {"images/0001.bin", 0, b, len, 0}};
  if (zb_build(f, DS_ZIP_FILES, NULL, z) != 0)
    fail_msg("cannot build a zip");
  free(b);
}

/* POST /v1/datasets/{id}/upload with one file part `field` whose file
 * name is `filename`; sha256 (NULL: none) goes as x-chub-sha256. */
static long ds_upload(chubd_proc *p, const char *key, const char *id,
                      const char *field, const char *filename, const void *data,
                      size_t len, const char *sha256, th_response *out) {
  char *url = th_fmt("%s/v1/datasets/%s/upload", chubd_proc_base_url(p), id);
  char *sha_h = sha256 ? th_fmt("x-chub-sha256: %s", sha256) : NULL;
  const char *hdrs[] = {sha_h, NULL};
  int rc =
      th_upload(url, key, NULL, field, filename, data, len, NULL, hdrs, out);
  free(sha_h);
  free(url);
  if (rc != 0)
    fail_msg("upload to dataset %s: no answer from chubd", id);
  return out->status;
}

/* Uploads z as `filename` (the field named after the file, as hub-sdk
 * sends it) and asserts the answer: 200, size, sha256, files. */
static void ds_upload_ok(chubd_proc *p, const char *key, const char *id,
                         const char *filename, const zb_zip *z) {
  th_response r;
  long st = ds_upload(p, key, id, filename, filename, z->buf, z->len, NULL, &r);
  if (st != 200)
    fail_msg("upload of %s (%zu bytes) to dataset %s: %ld %.300s", filename,
             z->len, id, st, r.body);
  json_t *env = th_envelope(&r);
  assert_non_null(env);
  char hex[65];
  th_sha256_hex(z->buf, z->len, hex);
  assert_int_equal(th_json_int(env, "data.size", -1), (long long)z->len);
  sv_assert_str(th_json_str(env, "data.sha256"), hex);
  assert_int_equal(th_json_int(env, "data.files", -1), (long long)z->n);
  json_decref(env);
  th_response_free(&r);
}

/* What a refused upload must leave as it was. */
typedef struct ds_state {
  char *status, *sha256, *filename, *updated_at;
  long long size, files;
} ds_state;

static char *ds_dup(const char *s) {
  return s ? strdup(s) : NULL;
}

static void ds_snapshot(chubd_proc *p, const char *key, const char *id,
                        ds_state *s) {
  json_t *d = ds_read(p, key, id);
  s->status = ds_dup(th_json_str(d, "status"));
  s->sha256 = ds_dup(th_json_str(d, "sha256"));
  s->filename = ds_dup(th_json_str(d, "filename"));
  s->updated_at = ds_dup(th_json_str(d, "updated_at"));
  s->size = th_json_int(d, "size", -1);
  s->files = th_json_int(d, "files", -1);
  json_decref(d);
}

static void ds_state_free(ds_state *s) {
  free(s->status);
  free(s->sha256);
  free(s->filename);
  free(s->updated_at);
}

static int ds_str_same(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void ds_expect_same(const ds_state *a, const ds_state *b,
                           const char *what) {
  if (!ds_str_same(a->status, b->status) ||
      !ds_str_same(a->sha256, b->sha256) ||
      !ds_str_same(a->filename, b->filename) ||
      !ds_str_same(a->updated_at, b->updated_at) || a->size != b->size ||
      a->files != b->files)
    fail_msg("%s changed the dataset: status %s -> %s, sha256 %s -> %s, "
             "size %lld -> %lld, files %lld -> %lld, filename %s -> %s, "
             "updated_at %s -> %s",
             what, a->status, b->status, a->sha256 ? a->sha256 : "(none)",
             b->sha256 ? b->sha256 : "(none)", a->size, b->size, a->files,
             b->files, a->filename ? a->filename : "(none)",
             b->filename ? b->filename : "(none)", a->updated_at,
             b->updated_at);
}

/* Asserts an answer is `want` with a message starting `prefix` (NULL:
 * any message); prints it. */
static void ds_expect_answer(th_response *r, long want, const char *prefix,
                             const char *what) {
  if (r->status != want)
    fail_msg("%s: %ld %.300s, expected %ld", what, r->status, r->body, want);
  json_t *env = th_envelope(r);
  if (!env)
    fail_msg("%s: %ld without a chub envelope", what, r->status);
  const char *msg = th_json_str(env, "message");
  if (!msg || !*msg)
    fail_msg("%s: %ld without a message", what, r->status);
  if (prefix && strncmp(msg, prefix, strlen(prefix)) != 0)
    fail_msg("%s: message \"%s\" does not start with \"%s\"", what, msg,
             prefix);
  fprintf(stderr, "  %s: %ld \"%s\"\n", what, r->status, msg);
  json_decref(env);
}

/* Uploads bytes that must be refused with `want` (message starting with
 * prefix, NULL: any) and asserts the dataset is as it was and the bytes
 * are nowhere on disk. */
static void ds_refused(chubd_proc *p, const char *key, const char *id,
                       const void *bytes, size_t len, long want,
                       const char *prefix, const char *what) {
  ds_state before, after;
  ds_snapshot(p, key, id, &before);
  th_response r;
  ds_upload(p, key, id, "data.zip", "data.zip", bytes, len, NULL, &r);
  ds_expect_answer(&r, want, prefix, what);
  th_response_free(&r);
  ds_snapshot(p, key, id, &after);
  ds_expect_same(&before, &after, what);
  /* Not even part of it (a big one probed by 4 KiB from its middle). */
  const unsigned char *probe = bytes;
  size_t plen = len;
  if (len > 8192) {
    probe += len / 2 - 2048;
    plen = 4096;
  }
  if (len > 0 && sv_files_gone(chubd_proc_data_dir(p), probe, plen, 1) != 0)
    fail_msg("%s: the refused file is on disk", what);
  ds_state_free(&after);
  ds_state_free(&before);
}

/* A plain GET (or with the headers given) of an absolute URL. */
static void ds_fetch(const char *url, const char *const hdrs[],
                     th_response *r) {
  if (th_request_hdrs("GET", url, hdrs, NULL, 0, r) != 0)
    fail_msg("GET %s: no answer", url);
}

/* Asserts a plain GET of url, with no header at all, serves exactly z as
 * a download named `name` (NULL: any name). */
static void ds_expect_zip(const char *url, const zb_zip *z, const char *name) {
  if (!url)
    fail_msg("no URL to download the %zu-byte zip from", z->len);
  th_response r;
  ds_fetch(url, NULL, &r);
  if (r.status != 200)
    fail_msg("GET %s with no header: %ld %.300s", url, r.status, r.body);
  if (r.body_len != z->len || memcmp(r.body, z->buf, z->len) != 0)
    fail_msg("GET %s: %zu bytes that are not the %zu-byte zip", url, r.body_len,
             z->len);
  char hex[65];
  th_sha256_hex(z->buf, z->len, hex);
  char *etag_want = th_fmt("\"%s\"", hex);
  char *etag = th_header(r.headers, "ETag");
  sv_assert_str(etag, etag_want);
  char *cl = th_header(r.headers, "Content-Length");
  assert_non_null(cl);
  assert_int_equal(strtoull(cl, NULL, 10), z->len);
  char *ct = th_header(r.headers, "Content-Type");
  sv_assert_str(ct, "application/octet-stream");
  char *cd = th_header(r.headers, "Content-Disposition");
  if (name) {
    char *want = th_fmt("attachment; filename=\"%s\"", name);
    sv_assert_str(cd, want);
    free(want);
  }
  free(cd);
  free(ct);
  free(cl);
  free(etag);
  free(etag_want);
  th_response_free(&r);
}

/* Asserts a plain GET of url answers `want` with a JSON envelope whose
 * message mentions `word` (NULL: any), and not the zip z (NULL: any). */
static void ds_expect_refused_url(const char *url, long want, const char *word,
                                  const zb_zip *z) {
  th_response r;
  ds_fetch(url, NULL, &r);
  if (z && r.body_len == z->len && memcmp(r.body, z->buf, z->len) == 0)
    fail_msg("GET %s served the zip (%ld), expected %ld", url, r.status, want);
  if (r.status != want)
    fail_msg("GET %s: %ld %.300s, expected %ld", url, r.status, r.body, want);
  json_t *env = th_envelope(&r);
  if (!env)
    fail_msg("GET %s: %ld without a chub envelope", url, r.status);
  if (word && !sv_message_has(env, word))
    fail_msg("GET %s: %ld, the message does not say \"%s\"", url, r.status,
             word);
  json_decref(env);
  th_response_free(&r);
}

/* A dataset's signed URL split as
 * {base}/v1/datasets/{id}/download/{sha}/{name}?{query}. */
typedef struct ds_url {
  char *dir; /* through the '/' before the name */
  char *name, *query;
} ds_url;

/* Asserts `url` is the signed URL of dataset id holding z, named
 * {slug}-{sha8}.zip, and splits it. */
static void ds_parse_url(chubd_proc *p, const char *url, const char *id,
                         const char *slug, const zb_zip *z, ds_url *u) {
  if (!url)
    fail_msg("dataset %s has no url", id);
  char hex[65];
  th_sha256_hex(z->buf, z->len, hex);
  char *dir =
      th_fmt("%s/v1/datasets/%s/download/%s/", chubd_proc_base_url(p), id, hex);
  if (strncmp(url, dir, strlen(dir)) != 0)
    fail_msg("url \"%s\" does not start with %s", url, dir);
  const char *name = url + strlen(dir);
  const char *q = strchr(name, '?');
  if (!q)
    fail_msg("url \"%s\" is not signed (no query)", url);
  u->dir = dir;
  u->name = strndup(name, (size_t)(q - name));
  u->query = strdup(q + 1);
  char *want = th_fmt("%s-%.8s.zip", slug, hex);
  sv_assert_str(u->name, want);
  free(want);
  const char *keys[] = {"expires=", "kid=", "sig="};
  for (size_t i = 0; i < 3; i++) {
    const char *at = strstr(u->query, keys[i]);
    if (!at || (at != u->query && at[-1] != '&') ||
        at[strlen(keys[i])] == '\0' || at[strlen(keys[i])] == '&')
      fail_msg("url \"%s\" lacks %s", url, keys[i]);
  }
}

static void ds_url_free(ds_url *u) {
  free(u->dir);
  free(u->name);
  free(u->query);
}

/* url with the character after `marker` (in the query) changed. */
static char *ds_url_flip(const char *url, const char *marker) {
  char *t = strdup(url);
  char *at = strstr(t, marker);
  if (!at)
    fail_msg("no %s in %s", marker, url);
  at += strlen(marker);
  *at = *at == '1' ? '2' : *at == 'a' ? 'b' : '1';
  return t;
}

static size_t ds_count_id(json_t *list, const char *id) {
  size_t k, n = 0;
  json_t *v;
  json_array_foreach(list, k, v) {
    const char *vid = th_json_str(v, "id");
    if (vid && strcmp(vid, id) == 0)
      n++;
  }
  return n;
}

/* The create payload of hub-api.md for a model trained on dataset `ds`. */
static char *ds_model_body(const char *name, const char *ds) {
  json_t *b =
      json_pack("{s:{s:i,s:i,s:i,s:i,s:s},s:{s:s},s:{s:{s:s}},s:{s:s}}",
                "config", "batchSize", 16, "epochs", 5, "imageSize", 64,
                "patience", 10, "device", "cpu", "dataset", "id", ds, "lineage",
                "architecture", "name", "yolo11n-cls", "meta", "name", name);
  char *s = json_dumps(b, JSON_COMPACT);
  json_decref(b);
  return s;
}

/* -------------------------------------------------------------- tests */

/* Create, read, and what a create must name when refused. */
static void server_datasets_create_read(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = ds_create(p, key, "Fashion 2k");
  json_t *d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "id"), id);
  sv_assert_str(th_json_str(d, "name"), "Fashion 2k");
  sv_assert_str(th_json_str(d, "meta.name"), "Fashion 2k");
  sv_assert_str(th_json_str(d, "slug"), "fashion-2k");
  sv_assert_str(th_json_str(d, "status"), "new");
  assert_true(sv_is_rfc3339_utc(th_json_str(d, "created_at")));
  assert_true(sv_is_rfc3339_utc(th_json_str(d, "updated_at")));
  /* Nothing uploaded yet. */
  const char *absent[] = {"size", "sha256", "filename", "files", "url"};
  for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
    if (th_json_at(d, absent[i]) && !json_is_null(th_json_at(d, absent[i])))
      fail_msg("a new dataset has \"%s\"", absent[i]);
  json_t *models = th_json_at(d, "models");
  assert_true(json_is_array(models));
  assert_int_equal(json_array_size(models), 0);
  json_decref(d);

  /* Any name gives a slug of [a-z0-9-]; 128 characters is the most. */
  char long_name[130];
  memset(long_name, 'N', 128);
  long_name[128] = '\0';
  const char *names[] = {"Ünïcode / 日本 Set #3", long_name, "a"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char *other = ds_create(p, key, names[i]);
    d = ds_read(p, key, other);
    sv_assert_str(th_json_str(d, "name"), names[i]);
    const char *slug = th_json_str(d, "slug");
    if (!slug || !*slug ||
        strspn(slug, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(slug))
      fail_msg("name \"%s\" has slug \"%s\", not [a-z0-9-]", names[i],
               slug ? slug : "(none)");
    json_decref(d);
    free(other);
  }

  /* meta.name is required, a string of 1..128 characters. */
  long_name[128] = 'N';
  long_name[129] = '\0';
  char *too_long = th_fmt("{\"meta\": {\"name\": \"%s\"}}", long_name);
  const char *bad[] = {"{}",
                       "{\"meta\": {}}",
                       "{\"meta\": {\"name\": \"\"}}",
                       "{\"meta\": {\"name\": 7}}",
                       "{\"meta\": {\"name\": null}}",
                       "{\"meta\": \"Fashion\"}",
                       too_long};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *env = sv_expect(p, "POST", "/v1/datasets", key, bad[i], 400);
    if (!sv_message_has(env, "meta"))
      fail_msg("create %s: the 400 does not name meta.name", bad[i]);
    if (strcmp(bad[i], "{\"meta\": \"Fashion\"}") != 0 &&
        !sv_message_has(env, "meta.name"))
      fail_msg("create %s: the 400 does not name meta.name", bad[i]);
    json_decref(env);
  }
  free(too_long);
  json_t *env = sv_expect(p, "POST", "/v1/datasets", key, "{\"meta\": ", 400);
  json_decref(env);
  env = sv_expect(p, "POST", "/v1/datasets", NULL,
                  "{\"meta\": {\"name\": \"x\"}}", 401);
  json_decref(env);

  /* Unknown: 404. */
  env =
      sv_expect(p, "GET", "/v1/datasets/AAAAAAAAAAAAAAAAAAAA", key, NULL, 404);
  json_decref(env);
  free(id);
}

/* List: newest first, limit, cursor, total, lastRecordId. */
static void server_datasets_list(void **state) {
  chubd_proc *p = *state;
  char *key = chubd_proc_create_key(p, "ds-lister");
  assert_non_null(key);
  json_t *env = sv_expect(p, "GET", "/v1/datasets", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 0);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 0);
  json_decref(env);

  enum { N = 7 };
  char *ids[N];
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "set %d", i);
    ids[i] = ds_create(p, key, name);
  }
  env = sv_expect(p, "GET", "/v1/datasets", key, NULL, 200);
  json_t *res = th_json_at(env, "data.results");
  assert_int_equal(json_array_size(res), N);
  assert_int_equal(th_json_int(env, "data.total", -1), N);
  for (int i = 0; i < N; i++) {
    char *sub = th_fmt("%d.id", i);
    sv_assert_str(th_json_str(res, sub), ids[N - 1 - i]);
    free(sub);
  }
  /* Each entry is a DATASET. */
  sv_assert_str(th_json_str(res, "0.name"), "set 6");
  sv_assert_str(th_json_str(res, "0.meta.name"), "set 6");
  sv_assert_str(th_json_str(res, "0.status"), "new");
  sv_assert_str(th_json_str(res, "0.slug"), "set-6");
  assert_true(sv_is_rfc3339_utc(th_json_str(res, "0.created_at")));
  json_decref(env);

  /* Pages of 3: 3, 3, 1, each dataset once, newest first. */
  char *cursor = NULL;
  int seen = 0;
  for (int page = 0; page < 4 && seen < N; page++) {
    char *path = cursor ? th_fmt("/v1/datasets?limit=3&last_doc_id=%s", cursor)
                        : th_fmt("/v1/datasets?limit=3");
    env = sv_expect(p, "GET", path, key, NULL, 200);
    res = th_json_at(env, "data.results");
    size_t n = json_array_size(res);
    assert_int_equal(n, page < 2 ? 3 : 1);
    for (size_t i = 0; i < n; i++) {
      char *sub = th_fmt("%zu.id", i);
      sv_assert_str(th_json_str(res, sub), ids[N - 1 - seen]);
      free(sub);
      seen++;
    }
    assert_int_equal(th_json_int(env, "data.total", -1), N);
    json_t *last = th_json_at(env, "data.lastRecordId");
    if (!last)
      fail_msg("GET %s: no lastRecordId", path);
    free(cursor);
    cursor = NULL;
    if (seen < N) {
      sv_assert_str(json_string_value(last), ids[N - seen]);
      cursor = strdup(json_string_value(last));
    } else if (!json_is_null(last)) {
      /* The last page: no cursor to a next one (or one that gives none). */
      char *next = th_fmt("/v1/datasets?limit=3&last_doc_id=%s",
                          json_string_value(last));
      json_t *e2 = sv_expect(p, "GET", next, key, NULL, 200);
      assert_int_equal(json_array_size(th_json_at(e2, "data.results")), 0);
      json_decref(e2);
      free(next);
    }
    json_decref(env);
    free(path);
  }
  assert_int_equal(seen, N);
  free(cursor);

  /* Bad paging: 400 naming the field. */
  const char *bad_limit[] = {"/v1/datasets?limit=abc", "/v1/datasets?limit=0",
                             "/v1/datasets?limit=-2"};
  for (size_t i = 0; i < sizeof bad_limit / sizeof *bad_limit; i++) {
    env = sv_expect(p, "GET", bad_limit[i], key, NULL, 400);
    assert_true(sv_message_has(env, "limit"));
    json_decref(env);
  }
  env = sv_expect(p, "GET", "/v1/datasets?last_doc_id=..%2Fx", key, NULL, 400);
  assert_true(sv_message_has(env, "last_doc_id"));
  json_decref(env);
  for (int i = 0; i < N; i++)
    free(ids[i]);
  free(key);
}

/* PATCH merges meta and answers DATASET; a bad name changes nothing. */
static void server_datasets_patch(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = ds_create(p, key, "Before");
  char *path = th_fmt("/v1/datasets/%s", id);
  json_t *env = sv_expect(p, "PATCH", path, key,
                          "{\"meta\": {\"description\": \"shirts\"}}", 200);
  sv_assert_str(th_json_str(env, "data.id"), id);
  sv_assert_str(th_json_str(env, "data.name"), "Before");
  json_decref(env);
  json_t *d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "meta.name"), "Before");
  sv_assert_str(th_json_str(d, "meta.description"), "shirts");
  json_decref(d);

  env = sv_expect(p, "PATCH", path, key,
                  "{\"meta\": {\"name\": \"After Rename\"}}", 200);
  sv_assert_str(th_json_str(env, "data.name"), "After Rename");
  sv_assert_str(th_json_str(env, "data.slug"), "after-rename");
  json_decref(env);
  d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "name"), "After Rename");
  sv_assert_str(th_json_str(d, "meta.name"), "After Rename");
  sv_assert_str(th_json_str(d, "meta.description"), "shirts");
  sv_assert_str(th_json_str(d, "slug"), "after-rename");
  assert_true(
      strcmp(th_json_str(d, "updated_at"), th_json_str(d, "created_at")) >= 0);
  json_decref(d);

  const char *bad[] = {"{\"meta\": {\"name\": \"\"}}",
                       "{\"meta\": {\"name\": 3}}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    env = sv_expect(p, "PATCH", path, key, bad[i], 400);
    assert_true(sv_message_has(env, "meta.name"));
    json_decref(env);
  }
  env = sv_expect(p, "PATCH", path, key, "{}", 400);
  json_decref(env);
  d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "name"), "After Rename");
  json_decref(d);
  env = sv_expect(p, "PATCH", "/v1/datasets/AAAAAAAAAAAAAAAAAAAA", key,
                  "{\"meta\": {\"name\": \"x\"}}", 404);
  json_decref(env);
  free(path);
  free(id);
}

/* Upload, DATASET once uploaded, and its signed URL. */
static void server_datasets_upload_download(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = ds_create(p, key, "Fashion 2k");
  zb_zip z;
  ds_zip(1, 5000, &z);
  char hex[65];
  th_sha256_hex(z.buf, z.len, hex);
  ds_upload_ok(p, key, id, "fashion.zip", &z);
  assert_int_equal(sv_files_equal(chubd_proc_data_dir(p), z.buf, z.len), 1);

  json_t *d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "status"), "ready");
  assert_int_equal(th_json_int(d, "size", -1), (long long)z.len);
  sv_assert_str(th_json_str(d, "sha256"), hex);
  sv_assert_str(th_json_str(d, "filename"), "fashion.zip");
  assert_int_equal(th_json_int(d, "files", -1), DS_ZIP_FILES);
  char *url = strdup(th_json_str(d, "url") ? th_json_str(d, "url") : "");
  ds_url u;
  ds_parse_url(p, url, id, "fashion-2k", &z, &u);
  json_decref(d);

  /* A plain GET with no header: the exact bytes. */
  ds_expect_zip(url, &z, u.name);

  /* Resumed from byte 100: 206 and the tail. */
  th_response r;
  const char *range[] = {"Range: bytes=100-", NULL};
  ds_fetch(url, range, &r);
  assert_int_equal(r.status, 206);
  assert_int_equal(r.body_len, z.len - 100);
  assert_memory_equal(r.body, z.buf + 100, z.len - 100);
  char *cr = th_header(r.headers, "Content-Range");
  char *cr_want = th_fmt("bytes 100-%zu/%zu", z.len - 1, z.len);
  sv_assert_str(cr, cr_want);
  free(cr_want);
  free(cr);
  th_response_free(&r);
  /* Already have it: 304. */
  char *inm = th_fmt("If-None-Match: \"%s\"", hex);
  const char *cond[] = {inm, NULL};
  ds_fetch(url, cond, &r);
  assert_int_equal(r.status, 304);
  assert_int_equal(r.body_len, 0);
  th_response_free(&r);
  free(inm);
  /* HEAD: the GET's headers, no body. */
  if (th_request_hdrs("HEAD", url, NULL, NULL, 0, &r) != 0)
    fail_msg("HEAD %s: no answer", url);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  char *hl = th_header(r.headers, "Content-Length");
  assert_non_null(hl);
  assert_int_equal(strtoull(hl, NULL, 10), z.len);
  free(hl);
  th_response_free(&r);

  /* Altered: 403, never the zip. */
  char *other = ds_create(p, key, "Other");
  char *a = ds_url_flip(url, "sig=");
  ds_expect_refused_url(a, 403, "signature", &z);
  free(a);
  a = ds_url_flip(url, "kid=");
  ds_expect_refused_url(a, 403, NULL, &z);
  free(a);
  a = th_fmt("%sother-%s?%s", u.dir, u.name, u.query);
  ds_expect_refused_url(a, 403, "signature", &z);
  free(a);
  char *exp_at = strstr(url, "expires=");
  assert_non_null(exp_at);
  long long exp = strtoll(exp_at + 8, NULL, 10);
  char *exp_old = th_fmt("expires=%lld", exp);
  char *exp_new = th_fmt("expires=%lld", exp + 3600);
  size_t pre = (size_t)(exp_at - url);
  a = th_fmt("%.*s%s%s", (int)pre, url, exp_new, exp_at + strlen(exp_old));
  ds_expect_refused_url(a, 403, "signature", &z);
  free(a);
  free(exp_new);
  free(exp_old);
  /* Another dataset's id in the path. */
  char *id_at = strstr(url, id);
  a = th_fmt("%.*s%s%s", (int)(id_at - url), url, other, id_at + strlen(id));
  ds_expect_refused_url(a, 403, NULL, &z);
  free(a);
  /* The original still works. */
  ds_expect_zip(url, &z, u.name);

  /* With the owner's key the path works without the query; another
   * owner's key 404; neither key nor signature 401. */
  char *path = th_fmt("/v1/datasets/%s/download/%s/%s", id, hex, u.name);
  char *full = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *key_h = th_fmt("x-api-key: %s", key);
  const char *keyed[] = {key_h, NULL};
  ds_fetch(full, keyed, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, z.len);
  assert_memory_equal(r.body, z.buf, z.len);
  th_response_free(&r);
  char *kb = chubd_proc_create_key(p, "ds-downloader");
  assert_non_null(kb);
  json_t *env = sv_expect(p, "GET", path, kb, NULL, 404);
  json_decref(env);
  ds_expect_refused_url(full, 401, NULL, &z);

  /* /ui/datasets/{id} (no key on loopback): the same DATASET. */
  json_t *v1 = ds_read(p, key, id), *ui = ds_read_at(p, NULL, id, 1);
  const char *ui_url = th_json_str(ui, "url");
  assert_non_null(ui_url);
  size_t qlen = strcspn(url, "?");
  if (strncmp(ui_url, url, qlen + 1) != 0)
    fail_msg("/ui url %s is not the /v1 one %s", ui_url, url);
  ds_expect_zip(ui_url, &z, u.name);
  json_object_del(v1, "url");
  json_object_del(ui, "url");
  if (!json_equal(v1, ui)) {
    char *s1 = json_dumps(v1, JSON_COMPACT), *s2 = json_dumps(ui, JSON_COMPACT);
    fail_msg("/ui/datasets/%s differs from /v1:\n%s\n%s", id, s2, s1);
  }
  json_decref(ui);
  json_decref(v1);

  free(kb);
  free(key_h);
  free(full);
  free(path);
  free(other);
  ds_url_free(&u);
  free(url);
  zb_free(&z);
  free(id);
}

/* The URL dies with the key that issued it (403 "revoked") and with its
 * expiry (403 "expired"; --url-ttl 2 on a chubd of its own); the dataset
 * read again gives a fresh one that works. */
static void server_datasets_url_revoked_expired(void **state) {
  chubd_proc *p = *state;
  char *kr = chubd_proc_create_key(p, "ds-to-be-revoked");
  assert_non_null(kr);
  char *id = ds_create(p, kr, "Revoked");
  zb_zip z;
  ds_zip(90, 2000, &z);
  ds_upload_ok(p, kr, id, "r.zip", &z);
  json_t *d = ds_read(p, kr, id);
  char *url = strdup(th_json_str(d, "url"));
  json_decref(d);
  ds_expect_zip(url, &z, NULL);
  sv_revoke_key(p, kr);
  /* Bounded: at most 3 s for the revocation to reach the server. */
  th_response r;
  for (int i = 0; i < 30; i++) {
    ds_fetch(url, NULL, &r);
    long st = r.status;
    th_response_free(&r);
    if (st != 200)
      break;
    sv_sleep_ms(100);
  }
  ds_expect_refused_url(url, 403, "revoked", &z);
  free(url);
  zb_free(&z);
  free(id);
  free(kr);

  const char *args[] = {"--url-ttl", "2", NULL};
  chubd_proc *q = sv_start(args);
  const char *key = chubd_proc_key(q);
  id = ds_create(q, key, "Expiring");
  ds_zip(91, 2000, &z);
  ds_upload_ok(q, key, id, "e.zip", &z);
  long long before = (long long)time(NULL);
  d = ds_read(q, key, id);
  url = strdup(th_json_str(d, "url"));
  json_decref(d);
  const char *at = strstr(url, "expires=");
  assert_non_null(at);
  long long exp = strtoll(at + 8, NULL, 10);
  long long after = (long long)time(NULL);
  if (exp < before + 1 || exp > after + 3)
    fail_msg("--url-ttl 2: expires %lld, now %lld", exp, after);
  ds_expect_zip(url, &z, NULL);
  /* Bounded by the check above: at most about 5 s. */
  while ((long long)time(NULL) <= exp + 1)
    sv_sleep_ms(100);
  ds_expect_refused_url(url, 403, "expired", &z);
  d = ds_read(q, key, id);
  ds_expect_zip(th_json_str(d, "url"), &z, NULL);
  json_decref(d);
  free(url);
  zb_free(&z);
  free(id);
  assert_int_equal(chubd_proc_stop(q), 0);
  chubd_proc_free(q);
}

/* Uploads that must be refused, each leaving the dataset as it was and
 * nothing on disk. */
static void server_datasets_upload_refused(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = ds_create(p, key, "Hostile");
  char *fresh = ds_create(p, key, "Still new");

  /* x-chub-sha256 that is not the file's: 400, nothing stored. */
  zb_zip z;
  ds_zip(20, 3000, &z);
  const char *wrong =
      "0000000000000000000000000000000000000000000000000000000000000000";
  th_response r;
  ds_state before, after;
  ds_snapshot(p, key, fresh, &before);
  ds_upload(p, key, fresh, "a.zip", "a.zip", z.buf, z.len, wrong, &r);
  ds_expect_answer(&r, 400, NULL, "an x-chub-sha256 mismatch");
  th_response_free(&r);
  ds_snapshot(p, key, fresh, &after);
  ds_expect_same(&before, &after, "an x-chub-sha256 mismatch");
  sv_assert_str(after.status, "new");
  ds_state_free(&after);
  ds_state_free(&before);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), z.buf, z.len, 0), 0);
  /* The right digest: taken. */
  char hex[65];
  th_sha256_hex(z.buf, z.len, hex);
  assert_int_equal(
      ds_upload(p, key, id, "a.zip", "a.zip", z.buf, z.len, hex, &r), 200);
  th_response_free(&r);
  json_t *d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "status"), "ready");
  json_decref(d);

  /* Mismatch on a dataset that has its file: still that file. */
  zb_zip z2;
  ds_zip(21, 3000, &z2);
  ds_snapshot(p, key, id, &before);
  ds_upload(p, key, id, "b.zip", "b.zip", z2.buf, z2.len, wrong, &r);
  ds_expect_answer(&r, 400, NULL, "a mismatch over a stored zip");
  th_response_free(&r);
  ds_snapshot(p, key, id, &after);
  ds_expect_same(&before, &after, "a mismatch over a stored zip");
  ds_state_free(&after);
  ds_state_free(&before);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), z2.buf, z2.len, 0), 0);

  /* Hostile and broken archives, each one number of a valid zip broken. */
  zb_zip base;
  ds_zip(22, 2000, &base);
  unsigned char *b = malloc(base.len);
  unsigned char *junk = sv_bytes(3000, 23);
  ds_refused(p, key, id, junk, 3000, 400, DS_REFUSED_ZIP, "not a zip");
  ds_refused(p, key, fresh, junk, 3000, 400, DS_REFUSED_ZIP,
             "not a zip (new dataset)");
  ds_refused(p, key, id, base.buf, base.len - 7, 400, DS_REFUSED_ZIP,
             "a truncated zip");
  ds_refused(p, key, id, base.buf, base.cd_off, 400, DS_REFUSED_ZIP,
             "a zip cut before its directory");

  const char *names[] = {"../x", "/etc/x", "images\\..\\..\\x",
                         "images/../../x"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    zb_file f[] = {{"data.yaml", 0, "path: .\n", 8, 0},
                   {names[i], 0, "evil", 4, 0}};
    zb_zip h;
    assert_int_equal(zb_build(f, 2, NULL, &h), 0);
    char *what = th_fmt("an entry named %s", names[i]);
    ds_refused(p, key, id, h.buf, h.len, 400, DS_REFUSED_ZIP, what);
    if (i == 0)
      ds_refused(p, key, fresh, h.buf, h.len, 400, DS_REFUSED_ZIP, what);
    free(what);
    zb_free(&h);
  }

  memcpy(b, base.buf, base.len);
  zb_put32(b + base.eocd + ZB_EOCD_CD_OFFSET, (uint32_t)base.len + 100);
  ds_refused(p, key, id, b, base.len, 400, DS_REFUSED_ZIP,
             "a central directory offset past the file");

  memcpy(b, base.buf, base.len);
  size_t data = base.local[2] + 30 + strlen("images/0001.bin");
  zb_put32(b + base.central[2] + ZB_CENTRAL_OFFSET, (uint32_t)data + 10);
  ds_refused(p, key, id, b, base.len, 400, DS_REFUSED_ZIP,
             "a local header offset at garbage");

  memcpy(b, base.buf, base.len);
  zb_put16(b + base.eocd + ZB_EOCD_DISK_ENTRIES, 40);
  zb_put16(b + base.eocd + ZB_EOCD_ENTRIES, 40);
  ds_refused(p, key, id, b, base.len, 400, DS_REFUSED_ZIP,
             "40 entries claimed, 3 in the directory");

  memcpy(b, base.buf, base.len);
  zb_put32(b + base.central[2] + ZB_CENTRAL_CSIZE, 2000 + 1);
  ds_refused(p, key, id, b, base.len, 400, DS_REFUSED_ZIP,
             "data running into the central directory");

  memcpy(b, base.buf, base.len);
  zb_put16(b + base.eocd + ZB_EOCD_COMMENT_LEN, 9);
  ds_refused(p, key, id, b, base.len, 400, DS_REFUSED_ZIP,
             "a comment length past the end");

  /* An empty file, no file, two files, one over --max-upload. */
  ds_refused(p, key, id, "", 0, 400, NULL, "an empty file");
  ds_refused(p, key, fresh, "", 0, 400, NULL, "an empty file (new dataset)");
  char *url = th_fmt("%s/v1/datasets/%s/upload", chubd_proc_base_url(p), id);
  const char *bd = "dsboundary5f2e";
  char *head =
      th_fmt("--%s\r\nContent-Disposition: form-data; name=\"one.zip\"; "
             "filename=\"one.zip\"\r\nContent-Type: application/zip\r\n\r\n",
             bd);
  char *mid =
      th_fmt("\r\n--%s\r\nContent-Disposition: form-data; name=\"two.zip\"; "
             "filename=\"two.zip\"\r\nContent-Type: application/zip\r\n\r\n",
             bd);
  char *tail = th_fmt("\r\n--%s--\r\n", bd);
  size_t body_len =
      strlen(head) + z2.len + strlen(mid) + base.len + strlen(tail);
  char *body = malloc(body_len);
  size_t off = 0;
  memcpy(body + off, head, strlen(head)), off += strlen(head);
  memcpy(body + off, z2.buf, z2.len), off += z2.len;
  memcpy(body + off, mid, strlen(mid)), off += strlen(mid);
  memcpy(body + off, base.buf, base.len), off += base.len;
  memcpy(body + off, tail, strlen(tail));
  char *ctype = th_fmt("multipart/form-data; boundary=%s", bd);
  ds_snapshot(p, key, id, &before);
  assert_int_equal(th_request("POST", url, key, ctype, body, body_len,
                              &r.status, &r.body, &r.headers),
                   0);
  r.body_len = r.body ? strlen(r.body) : 0;
  ds_expect_answer(&r, 400, NULL, "two file parts");
  th_response_free(&r);
  ds_snapshot(p, key, id, &after);
  ds_expect_same(&before, &after, "two file parts");
  ds_state_free(&after);
  ds_state_free(&before);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), z2.buf, z2.len, 0), 0);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), base.buf, base.len, 0),
                   0);
  /* Only a form field, no file part. */
  const char *fields[] = {"name", "x", NULL};
  assert_int_equal(
      th_upload(url, key, fields, NULL, NULL, NULL, 0, NULL, NULL, &r), 0);
  ds_expect_answer(&r, 400, NULL, "no file part");
  th_response_free(&r);

  zb_zip big;
  ds_zip(24, DS_MAX_UPLOAD + 1000, &big);
  ds_refused(p, key, id, big.buf, big.len, 413, NULL,
             "a zip over --max-upload");
  ds_refused(p, key, fresh, big.buf, big.len, 413, NULL,
             "a zip over --max-upload (new dataset)");
  zb_free(&big);

  /* After all that, the stored zip is the one taken and still served. */
  d = ds_read(p, key, id);
  sv_assert_str(th_json_str(d, "sha256"), hex);
  sv_assert_str(th_json_str(d, "filename"), "a.zip");
  ds_expect_zip(th_json_str(d, "url"), &z, NULL);
  json_decref(d);
  d = ds_read(p, key, fresh);
  sv_assert_str(th_json_str(d, "status"), "new");
  json_decref(d);

  free(ctype);
  free(body);
  free(tail);
  free(mid);
  free(head);
  free(url);
  free(junk);
  free(b);
  zb_free(&base);
  zb_free(&z2);
  zb_free(&z);
  free(fresh);
  free(id);
}

/* A second upload replaces the first: new sha and URL; the old blob
 * leaves the disk unless another dataset or a checkpoint still uses it. */
static void server_datasets_replace(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  const char *dir = chubd_proc_data_dir(p);
  char *id = ds_create(p, key, "Replaced");
  zb_zip z1, z2;
  ds_zip(30, 4000, &z1);
  ds_zip(31, 4100, &z2);
  ds_upload_ok(p, key, id, "v1.zip", &z1);
  json_t *d = ds_read(p, key, id);
  char *url1 = strdup(th_json_str(d, "url"));
  json_decref(d);
  /* Any field name: "file" this time. */
  th_response r;
  assert_int_equal(
      ds_upload(p, key, id, "file", "v2.zip", z2.buf, z2.len, NULL, &r), 200);
  th_response_free(&r);
  d = ds_read(p, key, id);
  char hex2[65];
  th_sha256_hex(z2.buf, z2.len, hex2);
  sv_assert_str(th_json_str(d, "sha256"), hex2);
  sv_assert_str(th_json_str(d, "filename"), "v2.zip");
  assert_int_equal(th_json_int(d, "size", -1), (long long)z2.len);
  ds_url u;
  ds_parse_url(p, th_json_str(d, "url"), id, "replaced", &z2, &u);
  ds_expect_zip(th_json_str(d, "url"), &z2, u.name);
  ds_url_free(&u);
  json_decref(d);
  assert_int_equal(sv_files_gone(dir, z1.buf, z1.len, 0), 0);
  assert_int_equal(sv_files_equal(dir, z2.buf, z2.len), 1);
  /* The old URL no longer serves anything. */
  th_response old;
  ds_fetch(url1, NULL, &old);
  if (old.status == 200)
    fail_msg("the replaced zip's URL still answers 200");
  th_response_free(&old);

  /* Two datasets with the same zip: replacing one keeps it for the
   * other; hard-deleting the other removes it. */
  char *b = ds_create(p, key, "Shares B"), *c = ds_create(p, key, "Shares C");
  zb_zip z3, z4;
  ds_zip(32, 4200, &z3);
  ds_zip(33, 4300, &z4);
  ds_upload_ok(p, key, b, "same.zip", &z3);
  ds_upload_ok(p, key, c, "same.zip", &z3);
  assert_int_equal(sv_files_equal(dir, z3.buf, z3.len), 1);
  ds_upload_ok(p, key, b, "new.zip", &z4);
  assert_int_equal(sv_files_equal(dir, z3.buf, z3.len), 1);
  d = ds_read(p, key, c);
  ds_expect_zip(th_json_str(d, "url"), &z3, NULL);
  json_decref(d);
  char *path = th_fmt("/v1/datasets/%s?hard=true", c);
  json_t *env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  free(path);
  assert_int_equal(sv_files_gone(dir, z3.buf, z3.len, 0), 0);

  /* The same bytes as a model's checkpoint and a dataset's zip: deleting
   * either keeps them for the other. */
  char *mid = sv_create(p, key, "shares.pt");
  zb_zip z5;
  ds_zip(34, 4400, &z5);
  assert_int_equal(
      sv_upload(p, key, mid, 0, "epoch", "False", z5.buf, z5.len, NULL, &r),
      200);
  th_response_free(&r);
  char *e = ds_create(p, key, "Shares E");
  ds_upload_ok(p, key, e, "ck.zip", &z5);
  path = th_fmt("/v1/datasets/%s?hard=true", e);
  env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  free(path);
  assert_int_equal(sv_files_equal(dir, z5.buf, z5.len), 1);
  char *last = th_fmt("/v1/models/%s/weights/last", mid);
  char *lurl = th_fmt("%s%s", chubd_proc_base_url(p), last);
  char *key_h = th_fmt("x-api-key: %s", key);
  const char *hdrs[] = {key_h, NULL};
  ds_fetch(lurl, hdrs, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, z5.len);
  assert_memory_equal(r.body, z5.buf, z5.len);
  th_response_free(&r);
  char *f = ds_create(p, key, "Shares F");
  ds_upload_ok(p, key, f, "ck.zip", &z5);
  path = th_fmt("/v1/models/%s?hard=true", mid);
  env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  free(path);
  assert_int_equal(sv_files_equal(dir, z5.buf, z5.len), 1);
  d = ds_read(p, key, f);
  ds_expect_zip(th_json_str(d, "url"), &z5, NULL);
  json_decref(d);

  free(f);
  free(key_h);
  free(lurl);
  free(last);
  free(e);
  zb_free(&z5);
  free(mid);
  zb_free(&z4);
  zb_free(&z3);
  free(c);
  free(b);
  free(url1);
  zb_free(&z2);
  zb_free(&z1);
  free(id);
}

/* Soft delete hides the dataset and keeps its zip on disk; hard delete
 * removes both, and the URL answers 404. */
static void server_datasets_delete(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  const char *dir = chubd_proc_data_dir(p);
  const char *soft[] = {"false", "False", "0"};
  const char *hard[] = {"true", "True", "1"};
  for (int i = 0; i < 3; i++) {
    char *id = ds_create(p, key, "Soft");
    zb_zip z;
    ds_zip(40 + (unsigned)i, 3000, &z);
    ds_upload_ok(p, key, id, "soft.zip", &z);
    char *path = th_fmt("/v1/datasets/%s?hard=%s", id, soft[i]);
    json_t *env = sv_expect(p, "DELETE", path, key, NULL, 200);
    json_decref(env);
    char *rpath = th_fmt("/v1/datasets/%s", id);
    env = sv_expect(p, "GET", rpath, key, NULL, 404);
    json_decref(env);
    env = sv_expect(p, "GET", "/v1/datasets?limit=100", key, NULL, 200);
    assert_int_equal(ds_count_id(th_json_at(env, "data.results"), id), 0);
    json_decref(env);
    env =
        sv_expect(p, "PATCH", rpath, key, "{\"meta\": {\"name\": \"z\"}}", 404);
    json_decref(env);
    th_response r;
    assert_int_equal(
        ds_upload(p, key, id, "x.zip", "x.zip", z.buf, z.len, NULL, &r), 404);
    th_response_free(&r);
    assert_int_equal(sv_files_equal(dir, z.buf, z.len), 1);
    free(rpath);
    free(path);
    zb_free(&z);
    free(id);

    id = ds_create(p, key, "Hard");
    ds_zip(50 + (unsigned)i, 3000, &z);
    ds_upload_ok(p, key, id, "hard.zip", &z);
    json_t *d = ds_read(p, key, id);
    char *url = strdup(th_json_str(d, "url"));
    json_decref(d);
    ds_expect_zip(url, &z, NULL);
    path = th_fmt("/v1/datasets/%s?hard=%s", id, hard[i]);
    env = sv_expect(p, "DELETE", path, key, NULL, 200);
    json_decref(env);
    rpath = th_fmt("/v1/datasets/%s", id);
    env = sv_expect(p, "GET", rpath, key, NULL, 404);
    json_decref(env);
    ds_expect_refused_url(url, 404, NULL, &z);
    assert_int_equal(sv_files_gone(dir, z.buf, z.len, 0), 0);
    free(rpath);
    free(path);
    free(url);
    zb_free(&z);
    free(id);
  }
  /* Without ?hard: soft. A value that is no boolean: 400 naming hard. */
  char *id = ds_create(p, key, "Default");
  char *path = th_fmt("/v1/datasets/%s?hard=maybe", id);
  json_t *env = sv_expect(p, "DELETE", path, key, NULL, 400);
  assert_true(sv_message_has(env, "hard"));
  json_decref(env);
  json_decref(ds_read(p, key, id));
  free(path);
  path = th_fmt("/v1/datasets/%s", id);
  env = sv_expect(p, "DELETE", path, key, NULL, 200);
  json_decref(env);
  env = sv_expect(p, "GET", path, key, NULL, 404);
  json_decref(env);
  free(path);
  free(id);
  env = sv_expect(p, "DELETE", "/v1/datasets/AAAAAAAAAAAAAAAAAAAA", key, NULL,
                  404);
  json_decref(env);
}

/* Another owner: 404 on every route, never listed, nothing changed. */
static void server_datasets_isolation(void **state) {
  chubd_proc *p = *state;
  const char *a = chubd_proc_key(p);
  char *b = chubd_proc_create_key(p, "ds-intruder");
  assert_non_null(b);
  char *id = ds_create(p, a, "Private");
  zb_zip z;
  ds_zip(60, 3000, &z);
  ds_upload_ok(p, a, id, "private.zip", &z);
  ds_state before, after;
  ds_snapshot(p, a, id, &before);
  char *bid = ds_create(p, b, "Intruder's own");

  struct {
    const char *method, *fmt, *body;
  } calls[] = {
      {"GET", "/v1/datasets/%s", NULL},
      {"PATCH", "/v1/datasets/%s", "{\"meta\": {\"name\": \"stolen\"}}"},
      {"DELETE", "/v1/datasets/%s?hard=false", NULL},
      {"DELETE", "/v1/datasets/%s?hard=true", NULL},
      {"DELETE", "/v1/datasets/%s", NULL},
  };
  for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
    char *path = th_fmt(calls[i].fmt, id);
    json_t *env = sv_expect(p, calls[i].method, path, b, calls[i].body, 404);
    json_decref(env);
    free(path);
  }
  char hex[65];
  th_sha256_hex(z.buf, z.len, hex);
  json_t *d = ds_read(p, a, id);
  ds_url u;
  ds_parse_url(p, th_json_str(d, "url"), id, "private", &z, &u);
  json_decref(d);
  char *path = th_fmt("/v1/datasets/%s/download/%s/%s", id, hex, u.name);
  json_t *env = sv_expect(p, "GET", path, b, NULL, 404);
  json_decref(env);
  free(path);
  ds_url_free(&u);
  /* Upload: 404, and nothing stored. */
  zb_zip evil;
  ds_zip(61, 3000, &evil);
  th_response r;
  assert_int_equal(
      ds_upload(p, b, id, "e.zip", "e.zip", evil.buf, evil.len, NULL, &r), 404);
  th_response_free(&r);
  assert_int_equal(sv_files_gone(chubd_proc_data_dir(p), evil.buf, evil.len, 0),
                   0);
  /* B cannot train on it. */
  char *body = ds_model_body("borrowed", id);
  env = sv_expect(p, "POST", "/v1/models", b, body, 400);
  assert_true(sv_message_has(env, "dataset.id"));
  json_decref(env);
  free(body);

  /* Each list shows only its owner's. */
  env = sv_expect(p, "GET", "/v1/datasets?limit=100", b, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), 1);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 1);
  sv_assert_str(th_json_str(env, "data.results.0.id"), bid);
  json_decref(env);
  env = sv_expect(p, "GET", "/v1/datasets?limit=100", a, NULL, 200);
  assert_int_equal(ds_count_id(th_json_at(env, "data.results"), id), 1);
  assert_int_equal(ds_count_id(th_json_at(env, "data.results"), bid), 0);
  json_decref(env);
  /* B's cursor cannot walk A's list. */
  char *cur = th_fmt("/v1/datasets?last_doc_id=%s", id);
  long cur_status = 0;
  env = sv_json(p, "GET", cur, b, NULL, &cur_status);
  if (cur_status == 200)
    assert_int_equal(ds_count_id(th_json_at(env, "data.results"), id), 0);
  json_decref(env);
  free(cur);

  /* A's dataset is as A left it and still downloads. */
  ds_snapshot(p, a, id, &after);
  ds_expect_same(&before, &after, "another owner's calls");
  sv_assert_str(after.status, "ready");
  d = ds_read(p, a, id);
  sv_assert_str(th_json_str(d, "name"), "Private");
  ds_expect_zip(th_json_str(d, "url"), &z, NULL);
  json_decref(d);
  ds_state_free(&after);
  ds_state_free(&before);
  zb_free(&evil);
  free(bid);
  zb_free(&z);
  free(id);
  free(b);
}

/* A model created with {"dataset": {"id": DS}} trains on the dataset's
 * signed URL (its name before an upload); the dataset lists it. */
static void server_datasets_models(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *ds = ds_create(p, key, "Train Me");
  char *body = ds_model_body("from a dataset", ds);
  json_t *env = sv_expect(p, "POST", "/v1/models", key, body, 200);
  char *m1 = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  free(body);
  /* Not uploaded yet: the name. */
  json_t *m = sv_model(p, key, m1);
  sv_assert_str(th_json_str(m, "data"), "Train Me");
  sv_assert_str(th_json_str(m, "train_args.data"), "Train Me");
  json_decref(m);

  zb_zip z;
  ds_zip(70, 3000, &z);
  ds_upload_ok(p, key, ds, "train.zip", &z);
  body = ds_model_body("second from it", ds);
  env = sv_expect(p, "POST", "/v1/models", key, body, 200);
  char *m2 = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  free(body);

  char hex[65];
  th_sha256_hex(z.buf, z.len, hex);
  char *prefix =
      th_fmt("%s/v1/datasets/%s/download/%s/", chubd_proc_base_url(p), ds, hex);
  const char *ids[] = {m1, m2};
  for (size_t i = 0; i < 2; i++) {
    m = sv_model(p, key, ids[i]);
    const char *data = th_json_str(m, "data");
    const char *targ = th_json_str(m, "train_args.data");
    if (!data || strncmp(data, prefix, strlen(prefix)) != 0 ||
        !strchr(data, '?'))
      fail_msg("model %s: data \"%s\" is not a signed URL under %s", ids[i],
               data ? data : "(none)", prefix);
    if (!targ || strncmp(targ, prefix, strlen(prefix)) != 0)
      fail_msg("model %s: train_args.data \"%s\" is not under %s", ids[i],
               targ ? targ : "(none)", prefix);
    ds_expect_zip(data, &z, NULL);
    ds_expect_zip(targ, &z, NULL);
    json_decref(m);
  }
  /* In the list too. */
  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  json_t *res = th_json_at(env, "data.results"), *v;
  size_t k;
  int found = 0;
  json_array_foreach(res, k, v) {
    const char *vid = th_json_str(v, "id");
    if (vid && strcmp(vid, m2) == 0) {
      found = 1;
      const char *data = th_json_str(v, "data");
      if (!data || strncmp(data, prefix, strlen(prefix)) != 0)
        fail_msg("listed model %s: data \"%s\" is not under %s", m2,
                 data ? data : "(none)", prefix);
    }
  }
  assert_true(found);
  json_decref(env);

  /* The dataset lists both, with name and status. */
  json_t *d = ds_read(p, key, ds);
  json_t *models = th_json_at(d, "models");
  assert_int_equal(json_array_size(models), 2);
  for (size_t i = 0; i < 2; i++) {
    json_t *e = json_array_get(models, i);
    const char *eid = th_json_str(e, "id");
    int which = eid && strcmp(eid, m1) == 0   ? 0
                : eid && strcmp(eid, m2) == 0 ? 1
                                              : -1;
    if (which < 0)
      fail_msg("dataset models[%zu] is %s, not a model made from it", i,
               eid ? eid : "(none)");
    sv_assert_str(th_json_str(e, "name"),
                  which ? "second from it" : "from a dataset");
    sv_assert_str(th_json_str(e, "status"), "new");
  }
  json_decref(d);

  /* A new zip: the models train on the new one. */
  zb_zip z2;
  ds_zip(71, 3100, &z2);
  ds_upload_ok(p, key, ds, "train2.zip", &z2);
  m = sv_model(p, key, m1);
  ds_expect_zip(th_json_str(m, "data"), &z2, NULL);
  json_decref(m);

  /* Not your dataset, or none: 400 naming dataset.id, no model made. */
  char *kb = chubd_proc_create_key(p, "ds-other-owner");
  assert_non_null(kb);
  char *theirs = ds_create(p, kb, "Theirs");
  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  long long before = th_json_int(env, "data.total", -1);
  json_decref(env);
  const char *bad[] = {theirs, "AAAAAAAAAAAAAAAAAAAA", "short"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    body = ds_model_body("nope", bad[i]);
    env = sv_expect(p, "POST", "/v1/models", key, body, 400);
    if (!sv_message_has(env, "dataset.id"))
      fail_msg("dataset.id %s: the 400 does not name dataset.id", bad[i]);
    json_decref(env);
    free(body);
  }
  env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), before);
  json_decref(env);

  free(theirs);
  free(kb);
  zb_free(&z2);
  free(prefix);
  zb_free(&z);
  free(m2);
  free(m1);
  free(ds);
}

/* /ui/datasets lists (no key on loopback) with the /v1 paging. */
static void server_datasets_ui_list(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = ds_create(p, key, "On the page");
  json_t *env = sv_expect(p, "GET", "/ui/datasets?limit=100", NULL, NULL, 200);
  assert_int_equal(ds_count_id(th_json_at(env, "data.results"), id), 1);
  assert_true(th_json_int(env, "data.total", -1) >= 1);
  assert_non_null(th_json_at(env, "data.lastRecordId"));
  json_decref(env);
  /* Newest first: limit=1 is this one; the cursor pages on. */
  env = sv_expect(p, "GET", "/ui/datasets?limit=1", NULL, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data.results")), 1);
  sv_assert_str(th_json_str(env, "data.results.0.id"), id);
  sv_assert_str(th_json_str(env, "data.lastRecordId"), id);
  json_decref(env);
  char *next = th_fmt("/ui/datasets?limit=1&last_doc_id=%s", id);
  env = sv_expect(p, "GET", next, NULL, NULL, 200);
  assert_int_equal(ds_count_id(th_json_at(env, "data.results"), id), 0);
  json_decref(env);
  free(next);
  /* The same entry as /v1 gives (its URL's expiry aside). */
  json_t *v1 = sv_expect(p, "GET", "/v1/datasets?limit=1", key, NULL, 200);
  json_t *ui = sv_expect(p, "GET", "/ui/datasets?limit=1", NULL, NULL, 200);
  json_t *e1 = th_json_at(v1, "data.results.0");
  json_t *e2 = th_json_at(ui, "data.results.0");
  json_object_del(e1, "url");
  json_object_del(e2, "url");
  if (!e1 || !json_equal(e1, e2))
    fail_msg("/ui/datasets?limit=1 and /v1 differ on dataset %s", id);
  json_decref(ui);
  json_decref(v1);
  /* The pages read them; they do not write. */
  char *url = th_fmt("%s/ui/datasets", chubd_proc_base_url(p));
  th_response r;
  assert_int_equal(
      th_json_request("POST", url, NULL, "{\"meta\": {\"name\": \"x\"}}", &r),
      0);
  if (r.status == 200)
    fail_msg("POST /ui/datasets created a dataset");
  th_response_free(&r);
  free(url);
  /* And the pages themselves. */
  char *page = th_fmt("%s/datasets", chubd_proc_base_url(p));
  char *page1 = th_fmt("%s/datasets/%s", chubd_proc_base_url(p), id);
  const char *pages[] = {page, page1};
  for (size_t i = 0; i < 2; i++) {
    ds_fetch(pages[i], NULL, &r);
    if (r.status != 200)
      fail_msg("GET %s: %ld", pages[i], r.status);
    char *ct = th_header(r.headers, "Content-Type");
    if (!ct || !strstr(ct, "text/html"))
      fail_msg("GET %s: Content-Type %s", pages[i], ct ? ct : "(none)");
    free(ct);
    th_response_free(&r);
  }
  free(page1);
  free(page);
  free(id);
}

/* POST /ui/models with a Content-Type; the answer in *r. */
static void ds_ui_post(chubd_proc *p, const char *ctype, const char *body,
                       th_response *r) {
  char *url = th_fmt("%s/ui/models", chubd_proc_base_url(p));
  char *ct = th_fmt("Content-Type: %s", ctype);
  /* From the hub's own page, so that only the body's type is tried. */
  char *origin = th_fmt("Origin: %s", chubd_proc_base_url(p));
  const char *hdrs[] = {ct, origin, NULL};
  if (th_request_hdrs("POST", url, hdrs, body, strlen(body), r) != 0)
    fail_msg("POST /ui/models: no answer");
  free(origin);
  free(ct);
  free(url);
}

/* POST /ui/models (application/json) expected to answer `want`; returns
 * the envelope. */
static json_t *ds_ui_model(chubd_proc *p, const char *body, long want) {
  return sv_expect(p, "POST", "/ui/models", NULL, body, want);
}

/* The owners /ui/owners lists, as one sorted comma-joined string. */
static char *ds_owners(chubd_proc *p) {
  json_t *env = sv_expect(p, "GET", "/ui/owners", NULL, NULL, 200);
  json_t *you = th_json_at(env, "data.you");
  if (!you || !json_is_null(you))
    fail_msg("/ui/owners without a key: \"you\" is not null");
  json_t *list = th_json_at(env, "data.owners");
  if (!json_is_array(list))
    fail_msg("/ui/owners: owners is not an array");
  size_t n = json_array_size(list);
  const char **names = calloc(n + 1, sizeof *names);
  for (size_t i = 0; i < n; i++) {
    names[i] = json_string_value(json_array_get(list, i));
    if (!names[i])
      fail_msg("/ui/owners: owners[%zu] is not a string", i);
  }
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      const char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  char *out = strdup("");
  for (size_t i = 0; i < n; i++) {
    char *t = th_fmt("%s%s%s", out, i ? "," : "", names[i]);
    free(out);
    out = t;
  }
  free(names);
  json_decref(env);
  return out;
}

/* Asserts /ui/owners becomes `want` (bounded: 3 s). */
static void ds_expect_owners(chubd_proc *p, const char *want) {
  char *got = NULL;
  for (int i = 0; i < 30; i++) {
    free(got);
    got = ds_owners(p);
    if (strcmp(got, want) == 0)
      break;
    sv_sleep_ms(100);
  }
  if (strcmp(got, want) != 0)
    fail_msg("/ui/owners lists %s, expected %s", got, want);
  free(got);
}

/* The form's POST /ui/models and /ui/owners, on a chubd of its own so the
 * owners are exactly those this test makes. */
static void server_datasets_ui_models(void **state) {
  (void)state;
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  chubd_proc *p = sv_start(args);
  const char *ko = chubd_proc_key(p); /* owner "owner" */
  const char *base = chubd_proc_base_url(p);
  ds_expect_owners(p, "owner");

  /* One owner: the owner may be left out. */
  json_t *env = ds_ui_model(
      p, "{\"name\": \"first\", \"architecture\": \"yolo11n\"}", 200);
  const char *id = th_json_str(env, "data.id");
  if (!sv_is_alnum(id, 20))
    fail_msg("POST /ui/models: id \"%s\"", id ? id : "(none)");
  char *first = strdup(id);
  char *model_url = th_fmt("%s/models/%s", base, first);
  sv_assert_str(th_json_str(env, "data.url"), model_url);
  json_t *cmds = th_json_at(env, "data.commands");
  if (!json_is_array(cmds) || json_array_size(cmds) != 2)
    fail_msg("commands is not an array of 2");
  int names_url = 0;
  for (size_t i = 0; i < 2; i++) {
    const char *c = json_string_value(json_array_get(cmds, i));
    if (!c || !*c)
      fail_msg("commands[%zu] is not a string", i);
    if (strstr(c, model_url))
      names_url = 1;
    fprintf(stderr, "  command %zu: %s\n", i, c);
  }
  if (!names_url)
    fail_msg("no command holds the model URL %s", model_url);
  json_decref(env);
  json_t *m = sv_model(p, ko, first);
  sv_assert_str(th_json_str(m, "meta.name"), "first");
  sv_assert_str(th_json_str(m, "cfg"), "yolo11n.yaml");
  assert_int_equal(th_json_bool(m, "is_pretrained"), 0);
  json_decref(m);

  /* Several owners: the owner is required and must hold a key. */
  char *ka = chubd_proc_create_key(p, "alice");
  char *kb = chubd_proc_create_key(p, "bob");
  assert_non_null(ka);
  assert_non_null(kb);
  ds_expect_owners(p, "alice,bob,owner");
  env = ds_ui_model(p, "{\"name\": \"whose\", \"architecture\": \"yolo11n\"}",
                    400);
  assert_true(sv_message_has(env, "owner"));
  json_decref(env);
  env = ds_ui_model(p,
                    "{\"owner\": \"mallory\", \"name\": \"whose\", "
                    "\"architecture\": \"yolo11n\"}",
                    400);
  assert_true(sv_message_has(env, "owner"));
  json_decref(env);

  /* For alice, from pretrained weights, with every config field. */
  env = ds_ui_model(p,
                    "{\"owner\": \"alice\", \"name\": \"alice's\", "
                    "\"architecture\": \"yolo11n.pt\", \"epochs\": 7, "
                    "\"imgsz\": 320, \"batch\": 8, \"patience\": 3}",
                    200);
  char *am = strdup(th_json_str(env, "data.id"));
  char *am_url = th_fmt("%s/models/%s", base, am);
  sv_assert_str(th_json_str(env, "data.url"), am_url);
  const char *line = th_json_str(env, "data.commands.1");
  const char *line0 = th_json_str(env, "data.commands.0");
  if (!(line && strstr(line, am_url)) && !(line0 && strstr(line0, am_url)))
    fail_msg("no command holds the model URL %s", am_url);
  json_decref(env);
  m = sv_model(p, ka, am);
  sv_assert_str(th_json_str(m, "meta.name"), "alice's");
  assert_int_equal(th_json_int(m, "epochs", -1), 7);
  assert_int_equal(th_json_int(m, "imgsz", -1), 320);
  assert_int_equal(th_json_int(m, "batch_size", -1), 8);
  assert_int_equal(th_json_int(m, "patience", -1), 3);
  assert_int_equal(th_json_int(m, "train_args.epochs", -1), 7);
  assert_int_equal(th_json_int(m, "train_args.imgsz", -1), 320);
  assert_int_equal(th_json_int(m, "train_args.batch", -1), 8);
  assert_int_equal(th_json_int(m, "train_args.patience", -1), 3);
  assert_int_equal(th_json_bool(m, "is_pretrained"), 1);
  sv_assert_str(th_json_str(m, "weights"), "yolo11n.pt");
  json_decref(m);
  char *mpath = th_fmt("/v1/models/%s", am);
  env = sv_expect(p, "GET", mpath, kb, NULL, 404);
  json_decref(env);
  env = sv_expect(p, "GET", mpath, ko, NULL, 404);
  json_decref(env);
  free(mpath);

  /* From alice's dataset: trains on its URL; bob cannot use it. */
  char *ds = ds_create(p, ka, "Alice Set");
  zb_zip z;
  ds_zip(80, 2000, &z);
  ds_upload_ok(p, ka, ds, "alice.zip", &z);
  char *form = th_fmt("{\"owner\": \"alice\", \"name\": \"on data\", "
                      "\"architecture\": \"yolo11n\", \"dataset\": \"%s\"}",
                      ds);
  env = ds_ui_model(p, form, 200);
  char *dm = strdup(th_json_str(env, "data.id"));
  json_decref(env);
  free(form);
  m = sv_model(p, ka, dm);
  char *prefix = th_fmt("%s/v1/datasets/%s/download/", base, ds);
  const char *data = th_json_str(m, "data");
  if (!data || strncmp(data, prefix, strlen(prefix)) != 0)
    fail_msg("model from the form: data \"%s\" is not under %s",
             data ? data : "(none)", prefix);
  ds_expect_zip(data, &z, NULL);
  sv_assert_str(th_json_str(m, "cfg"), "yolo11n.yaml");
  json_decref(m);
  json_t *d = ds_read(p, ka, ds);
  assert_int_equal(ds_count_id(th_json_at(d, "models"), dm), 1);
  json_decref(d);
  form = th_fmt("{\"owner\": \"bob\", \"name\": \"on data\", "
                "\"architecture\": \"yolo11n\", \"dataset\": \"%s\"}",
                ds);
  env = ds_ui_model(p, form, 400);
  assert_true(sv_message_has(env, "dataset"));
  json_decref(env);
  free(form);

  /* Bad input: 400 naming the field, nothing created. */
  env = sv_expect(p, "GET", "/v1/models?limit=100", ka, NULL, 200);
  long long before = th_json_int(env, "data.total", -1);
  json_decref(env);
  const struct {
    const char *extra, *field;
  } bad[] = {
      {"\"epochs\": 0", "epochs"},       {"\"epochs\": -1", "epochs"},
      {"\"epochs\": \"10\"", "epochs"},  {"\"epochs\": 1.5", "epochs"},
      {"\"epochs\": true", "epochs"},    {"\"imgsz\": \"640\"", "imgsz"},
      {"\"imgsz\": -640", "imgsz"},      {"\"batch\": 0", "batch"},
      {"\"batch\": [8]", "batch"},       {"\"patience\": -5", "patience"},
      {"\"patience\": 2.5", "patience"}, {"\"name\": \"\"", "name"},
      {"\"name\": 5", "name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int has_name = strncmp(bad[i].extra, "\"name\"", 6) == 0;
    char *b = th_fmt("{\"owner\": \"alice\", %s\"architecture\": "
                     "\"yolo11n\", %s}",
                     has_name ? "" : "\"name\": \"bad\", ", bad[i].extra);
    env = ds_ui_model(p, b, 400);
    if (!sv_message_has(env, bad[i].field))
      fail_msg("POST /ui/models %s: the 400 does not name %s", b, bad[i].field);
    json_decref(env);
    free(b);
  }
  env = ds_ui_model(p, "{\"owner\": \"alice\", \"architecture\": \"yolo11n\"}",
                    400);
  assert_true(sv_message_has(env, "name"));
  json_decref(env);

  /* Not application/json: 415, the defence against another site's form
   * (a form can send only these three), nothing created. */
  const char *ctypes[] = {"text/plain", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x"};
  const char *json_form = "{\"owner\": \"alice\", \"name\": \"csrf\", "
                          "\"architecture\": \"yolo11n\"}";
  for (size_t i = 0; i < sizeof ctypes / sizeof *ctypes; i++) {
    th_response r;
    ds_ui_post(p, ctypes[i], json_form, &r);
    char *what = th_fmt("POST /ui/models as %s", ctypes[i]);
    ds_expect_answer(&r, 415, NULL, what);
    free(what);
    th_response_free(&r);
  }
  env = sv_expect(p, "GET", "/v1/models?limit=100", ka, NULL, 200);
  assert_int_equal(th_json_int(env, "data.total", -1), before);
  json_decref(env);

  /* A revoked key's owner is no longer offered, unless another key of
   * theirs is live. */
  sv_revoke_key(p, kb);
  ds_expect_owners(p, "alice,owner");
  char *ka2 = chubd_proc_create_key(p, "alice");
  assert_non_null(ka2);
  sv_revoke_key(p, ka);
  ds_expect_owners(p, "alice,owner");
  env = ds_ui_model(p,
                    "{\"owner\": \"bob\", \"name\": \"gone\", "
                    "\"architecture\": \"yolo11n\"}",
                    400);
  assert_true(sv_message_has(env, "owner"));
  json_decref(env);

  free(ka2);
  free(prefix);
  free(dm);
  zb_free(&z);
  free(ds);
  free(am_url);
  free(am);
  free(kb);
  free(ka);
  free(model_url);
  free(first);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_datasets_create_read),
      cmocka_unit_test(server_datasets_list),
      cmocka_unit_test(server_datasets_patch),
      cmocka_unit_test(server_datasets_upload_download),
      cmocka_unit_test(server_datasets_url_revoked_expired),
      cmocka_unit_test(server_datasets_upload_refused),
      cmocka_unit_test(server_datasets_replace),
      cmocka_unit_test(server_datasets_delete),
      cmocka_unit_test(server_datasets_isolation),
      cmocka_unit_test(server_datasets_models),
      cmocka_unit_test(server_datasets_ui_list),
      cmocka_unit_test(server_datasets_ui_models),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_datasets", tests, ds_setup, sv_group_teardown));
}

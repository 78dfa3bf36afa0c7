/*
 * server_download.c - conformance: signed download URLs, model reset, and
 * the 501 answers for export and predict (hub-api.md "Download URLs", the
 * chubd contract for signed URLs, ultralytics-clients.md part B).
 *
 * Ultralytics fetches `weights`, `resume` and checkpoint URLs with a plain
 * GET and no header, names the local file after the URL's last path
 * segment (reused without asking again, loaded only when it ends in .pt).
 * So what a user must be able to trust: every such URL is absolute under
 * the hub's public root, its last segment ends in .pt and differs per
 * blob, it serves exactly that blob (ETag, Range, HEAD, 304) to anyone who
 * holds it, and any change to it, its expiry passing or its key being
 * revoked answers 403 with a JSON message, never some other file.
 */
#include "sv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A signed URL split into its parts:
 * {root}/v1/models/{id}/weights/{sha}/{name}?expires=E&kid=K&sig=S */
typedef struct dl_url {
  char *root, *id, *sha, *name, *expires, *kid, *sig;
} dl_url;

static void dl_url_free(dl_url *u) {
  free(u->root);
  free(u->id);
  free(u->sha);
  free(u->name);
  free(u->expires);
  free(u->kid);
  free(u->sig);
  memset(u, 0, sizeof *u);
}

/* The characters up to the first of `stops` (or the end), malloc'd; *s is
 * moved past them. */
static char *dl_take(const char **s, const char *stops) {
  size_t n = strcspn(*s, stops);
  char *t = strndup(*s, n);
  *s += n;
  return t;
}

/* Splits `url` (a string from a MODEL) or fails the test naming `what`. */
static void dl_parse(const char *url, const char *what, dl_url *u) {
  memset(u, 0, sizeof *u);
  if (!url)
    fail_msg("%s: no URL", what);
  if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
    fail_msg("%s \"%s\" is not an absolute http(s) URL", what, url);
  const char *at = strstr(url, "/v1/models/");
  if (!at)
    fail_msg("%s \"%s\" is not under /v1/models/", what, url);
  u->root = strndup(url, (size_t)(at - url));
  const char *s = at + strlen("/v1/models/");
  u->id = dl_take(&s, "/?");
  if (strncmp(s, "/weights/", 9) != 0)
    fail_msg("%s \"%s\": no /weights/ after the model id", what, url);
  s += 9;
  u->sha = dl_take(&s, "/?");
  if (*s != '/')
    fail_msg("%s \"%s\": no file name after the sha256", what, url);
  s++;
  u->name = dl_take(&s, "?");
  if (*s != '?')
    fail_msg("%s \"%s\" has no query (expires, kid, sig)", what, url);
  s++;
  while (*s) {
    char *k = dl_take(&s, "=&");
    char *v = NULL;
    if (*s == '=') {
      s++;
      v = dl_take(&s, "&");
    }
    if (*s == '&')
      s++;
    char **slot = strcmp(k, "expires") == 0 ? &u->expires
                  : strcmp(k, "kid") == 0   ? &u->kid
                  : strcmp(k, "sig") == 0   ? &u->sig
                                            : NULL;
    if (slot && !*slot)
      *slot = v ? v : strdup("");
    else
      free(v);
    free(k);
  }
  if (!u->expires || !u->kid || !*u->kid || !u->sig)
    fail_msg("%s \"%s\" lacks expires, kid or sig", what, url);
  if (!sv_is_alnum(u->id, 20))
    fail_msg("%s \"%s\": model id \"%s\" is not 20 [A-Za-z0-9]", what, url,
             u->id);
  if (strlen(u->sha) != 64 || strspn(u->sha, "0123456789abcdef") != 64)
    fail_msg("%s \"%s\": \"%s\" is not a sha256", what, url, u->sha);
  if (strlen(u->sig) != 64 || strspn(u->sig, "0123456789abcdef") != 64)
    fail_msg("%s \"%s\": sig \"%s\" is not 64 hex", what, url, u->sig);
  if (!*u->expires || strspn(u->expires, "0123456789") != strlen(u->expires))
    fail_msg("%s \"%s\": expires \"%s\" is not unix seconds", what, url,
             u->expires);
}

/* Puts a URL back together from its parts, malloc'd. */
static char *dl_build(const dl_url *u) {
  return th_fmt("%s/v1/models/%s/weights/%s/%s?expires=%s&kid=%s&sig=%s",
                u->root, u->id, u->sha, u->name, u->expires, u->kid, u->sig);
}

/* A copy of `u` with one part replaced (field names as in dl_url). */
static char *dl_with(const dl_url *u, const char *field, const char *value) {
  dl_url c = *u;
  if (strcmp(field, "id") == 0)
    c.id = (char *)value;
  else if (strcmp(field, "sha") == 0)
    c.sha = (char *)value;
  else if (strcmp(field, "name") == 0)
    c.name = (char *)value;
  else if (strcmp(field, "expires") == 0)
    c.expires = (char *)value;
  else if (strcmp(field, "kid") == 0)
    c.kid = (char *)value;
  else if (strcmp(field, "sig") == 0)
    c.sig = (char *)value;
  else
    fail_msg("dl_with: no field %s", field);
  return dl_build(&c);
}

/* s with its character at i changed to another one of the same kind. */
static char *dl_flip(const char *s, size_t i) {
  char *t = strdup(s);
  t[i] = t[i] == '0' ? '1' : t[i] == 'a' ? 'b' : t[i] == 'A' ? 'B' : '0';
  return t;
}

/* GET (or HEAD) of an absolute URL with exactly the headers given (NULL:
 * none beyond what any HTTP client sends). */
static void dl_get(const char *method, const char *url,
                   const char *const hdrs[], th_response *r) {
  if (th_request_hdrs(method, url, hdrs, NULL, 0, r) != 0)
    fail_msg("%s %s: no answer", method, url);
}

static char *dl_header(const th_response *r, const char *name) {
  return th_header(r->headers, name);
}

/* Asserts that a plain GET of url, with no header at all, serves exactly
 * bytes/len as a download named `name` (NULL: any name). */
static void dl_expect_file(const char *url, const void *bytes, size_t len,
                           const char *name) {
  th_response r;
  dl_get("GET", url, NULL, &r);
  if (r.status != 200)
    fail_msg("GET %s with no header: %ld %.300s", url, r.status, r.body);
  if (r.body_len != len || memcmp(r.body, bytes, len) != 0)
    fail_msg("GET %s: %zu bytes that are not the %zu-byte file", url,
             r.body_len, len);
  char hex[65];
  th_sha256_hex(bytes, len, hex);
  char *etag_want = th_fmt("\"%s\"", hex);
  char *etag = dl_header(&r, "ETag");
  sv_assert_str(etag, etag_want);
  char *cl = dl_header(&r, "Content-Length");
  assert_non_null(cl);
  assert_int_equal(strtoull(cl, NULL, 10), len);
  char *ct = dl_header(&r, "Content-Type");
  sv_assert_str(ct, "application/octet-stream");
  char *ar = dl_header(&r, "Accept-Ranges");
  sv_assert_str(ar, "bytes");
  char *cd = dl_header(&r, "Content-Disposition");
  if (name) {
    char *want = th_fmt("attachment; filename=\"%s\"", name);
    sv_assert_str(cd, want);
    free(want);
  }
  free(cd);
  free(ar);
  free(ct);
  free(cl);
  free(etag);
  free(etag_want);
  th_response_free(&r);
}

/* Asserts that a plain GET of url answers `status` with a JSON envelope
 * (success false) whose message mentions `word` (NULL: any), and that the
 * body is not the file bytes/len (when given). */
static void dl_expect_refused(const char *url, long status, const char *word,
                              const void *bytes, size_t len) {
  th_response r;
  dl_get("GET", url, NULL, &r);
  if (bytes && r.body_len == len && memcmp(r.body, bytes, len) == 0)
    fail_msg("GET %s served the file (%ld), expected %ld", url, r.status,
             status);
  if (r.status != status)
    fail_msg("GET %s: expected %ld, got %ld %.300s", url, status, r.status,
             r.body);
  char *ct = dl_header(&r, "Content-Type");
  if (!ct || strncmp(ct, "application/json", 16) != 0)
    fail_msg("GET %s: %ld with Content-Type %s, not a JSON message", url,
             r.status, ct ? ct : "(none)");
  free(ct);
  json_t *env = th_envelope(&r);
  if (!env)
    fail_msg("GET %s: %ld without a chub envelope", url, r.status);
  if (word && !sv_message_has(env, word))
    fail_msg("GET %s: %ld, the message does not say \"%s\"", url, r.status,
             word);
  json_decref(env);
  th_response_free(&r);
}

/* GET with x-api-key (NULL: none) of base+path; returns the status and,
 * when out is not NULL, the answer. */
static long dl_keyed(chubd_proc *p, const char *path, const char *key,
                     th_response *out) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  char *key_h = key ? th_fmt("x-api-key: %s", key) : NULL;
  const char *hdrs[] = {key_h, NULL};
  th_response r;
  dl_get("GET", url, hdrs, &r);
  long status = r.status;
  if (out)
    *out = r;
  else
    th_response_free(&r);
  free(key_h);
  free(url);
  return status;
}

/* Uploads bytes as a checkpoint and asserts 200. */
static void dl_upload(chubd_proc *p, const char *key, const char *id, int epoch,
                      const char *type, const char *is_best,
                      const unsigned char *bytes, size_t len) {
  th_response r;
  long st = sv_upload(p, key, id, epoch, type, is_best, bytes, len, NULL, &r);
  if (st != 200)
    fail_msg("upload epoch %d (%s) to %s: %ld %.300s", epoch, type, id, st,
             r.body);
  th_response_free(&r);
}

/* Creates a model with architecture `arch` and, when not NULL, parent
 * weights `parent`; returns its id. */
static char *dl_create(chubd_proc *p, const char *key, const char *arch,
                       const char *parent) {
  char *parent_s =
      parent ? th_fmt(", \"parent\": {\"name\": \"%s\"}", parent) : strdup("");
  char *body = th_fmt(
      "{\"config\": {\"batchSize\": 16, \"epochs\": 10, \"imageSize\": 224, "
      "\"patience\": 50, \"device\": \"cpu\", \"cache\": \"ram\"}, "
      "\"dataset\": {\"name\": \"imagenet10\"}, "
      "\"lineage\": {\"architecture\": {\"name\": \"%s\"}%s}, "
      "\"meta\": {\"name\": \"%s\"}}",
      arch, parent_s, arch);
  json_t *env = sv_expect(p, "POST", "/v1/models", key, body, 200);
  const char *id = th_json_str(env, "data.id");
  if (!sv_is_alnum(id, 20))
    fail_msg("create %s: id \"%s\" is not 20 [A-Za-z0-9]", arch,
             id ? id : "(none)");
  char *out = strdup(id);
  json_decref(env);
  free(body);
  free(parent_s);
  return out;
}

/* The signed URL `field` ("weights" or "resume") of a model, parsed. */
static void dl_model_url(chubd_proc *p, const char *key, const char *id,
                         const char *field, dl_url *u, char **url) {
  json_t *m = sv_model(p, key, id);
  const char *s = th_json_str(m, field);
  char *what = th_fmt("model %s %s", id, field);
  dl_parse(s, what, u);
  if (url)
    *url = strdup(s);
  free(what);
  json_decref(m);
}

/* The bytes chubd serves at an old keyed path (.../weights/last|best), to
 * compare a signed URL against. */
static th_response dl_old_path(chubd_proc *p, const char *key, const char *id,
                               const char *which) {
  char *path = th_fmt("/v1/models/%s/weights/%s", id, which);
  th_response r;
  long st = dl_keyed(p, path, key, &r);
  if (st != 200)
    fail_msg("GET %s with x-api-key: %ld %.300s", path, st, r.body);
  free(path);
  return r;
}

/* Asserts a signed URL from a MODEL: under root, for model id, named
 * {id}-{label}-{sha8}{suffix}, serving the blob whose sha256 is in it,
 * which is bytes/len. */
static void dl_check_url(const char *url, const char *what, const char *root,
                         const char *id, const char *label, const char *suffix,
                         const void *bytes, size_t len) {
  dl_url u;
  dl_parse(url, what, &u);
  char *prefix = th_fmt("%s/v1/models/%s/weights/", root, id);
  if (strncmp(url, prefix, strlen(prefix)) != 0)
    fail_msg("%s \"%s\" does not start with %s", what, url, prefix);
  char hex[65];
  th_sha256_hex(bytes, len, hex);
  if (strcmp(u.sha, hex) != 0)
    fail_msg("%s \"%s\" names sha256 %s, the blob's is %s", what, url, u.sha,
             hex);
  char *name = th_fmt("%s-%s-%.8s%s", id, label, hex, suffix);
  if (strcmp(u.name, name) != 0)
    fail_msg("%s \"%s\": last segment \"%s\", expected \"%s\"", what, url,
             u.name, name);
  dl_expect_file(url, bytes, len, name);
  free(name);
  free(prefix);
  dl_url_free(&u);
}

/* MODEL's weights, resume and checkpoint URLs: absolute, named per blob,
 * each serving its blob with no header; the same in the list and /ui. */
static void server_download_model_urls(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  const char *root = chubd_proc_base_url(p);
  char *id = sv_create(p, key, "urls.pt");
  size_t len[3] = {40000, 40001, 40002};
  unsigned char *b[3];
  char hex[3][65];
  for (int i = 0; i < 3; i++) {
    b[i] = sv_bytes(len[i], 900 + (unsigned)i);
    th_sha256_hex(b[i], len[i], hex[i]);
  }
  dl_upload(p, key, id, 0, "epoch", "True", b[0], len[0]);
  dl_upload(p, key, id, 1, "epoch", "False", b[1], len[1]);

  /* Before the final: resume is the last weights. */
  json_t *m = sv_model(p, key, id);
  th_response last = dl_old_path(p, key, id, "last");
  assert_int_equal(last.body_len, len[1]);
  assert_memory_equal(last.body, b[1], len[1]);
  dl_check_url(th_json_str(m, "resume"), "resume", root, id, "last", ".pt",
               b[1], len[1]);
  th_response_free(&last);
  json_decref(m);

  dl_upload(p, key, id, 2, "final", NULL, b[2], len[2]);
  m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "status"), "trained");
  /* weights and resume serve what the keyed best and last paths serve. */
  th_response best = dl_old_path(p, key, id, "best");
  assert_int_equal(best.body_len, len[2]);
  assert_memory_equal(best.body, b[2], len[2]);
  dl_check_url(th_json_str(m, "weights"), "weights", root, id, "best", ".pt",
               best.body, best.body_len);
  last = dl_old_path(p, key, id, "last");
  dl_check_url(th_json_str(m, "resume"), "resume", root, id, "last", ".pt",
               last.body, last.body_len);
  th_response_free(&last);
  th_response_free(&best);

  /* Every checkpoint's url serves that checkpoint. */
  json_t *ck = th_json_at(m, "checkpoints");
  assert_int_equal(json_array_size(ck), 3);
  const char *names[8];
  const char *shas[8];
  size_t n_names = 0;
  dl_url uw, ur;
  dl_parse(th_json_str(m, "weights"), "weights", &uw);
  dl_parse(th_json_str(m, "resume"), "resume", &ur);
  names[n_names] = uw.name, shas[n_names++] = uw.sha;
  names[n_names] = ur.name, shas[n_names++] = ur.sha;
  dl_url cu[3];
  for (size_t i = 0; i < 3; i++) {
    json_t *c = json_array_get(ck, i);
    const char *sha = th_json_str(c, "sha256");
    int which = -1;
    for (int j = 0; j < 3; j++)
      if (sha && strcmp(sha, hex[j]) == 0)
        which = j;
    if (which < 0)
      fail_msg("checkpoint %zu has sha256 %s, not one uploaded", i,
               sha ? sha : "(none)");
    char *label = which == 2 ? strdup("final") : th_fmt("epoch%d", which);
    char *what = th_fmt("checkpoints[%zu].url", i);
    dl_check_url(th_json_str(c, "url"), what, root, id, label, ".pt", b[which],
                 len[which]);
    dl_parse(th_json_str(c, "url"), what, &cu[i]);
    names[n_names] = cu[i].name, shas[n_names++] = cu[i].sha;
    free(what);
    free(label);
  }
  /* A file name never stands for two different blobs. */
  for (size_t i = 0; i < n_names; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(shas[i], shas[j]) != 0 && strcmp(names[i], names[j]) == 0)
        fail_msg("two blobs share the file name %s", names[i]);
  assert_string_not_equal(uw.name, ur.name);

  /* The default lifetime: a day (86400 s) from now. */
  long long now = (long long)time(NULL);
  long long exp = strtoll(uw.expires, NULL, 10);
  if (exp < now + 86400 - 120 || exp > now + 86400 + 120)
    fail_msg("expires %lld is not about now (%lld) + 86400", exp, now);
  for (size_t i = 0; i < 3; i++)
    dl_url_free(&cu[i]);
  dl_url_free(&ur);
  dl_url_free(&uw);
  json_decref(m);

  /* The list entry carries working URLs too. */
  json_t *env = sv_expect(p, "GET", "/v1/models?limit=100", key, NULL, 200);
  json_t *res = th_json_at(env, "data.results");
  json_t *entry = NULL, *v;
  size_t k;
  json_array_foreach(res, k, v) {
    const char *eid = th_json_str(v, "id");
    if (eid && strcmp(eid, id) == 0)
      entry = v;
  }
  assert_non_null(entry);
  dl_check_url(th_json_str(entry, "weights"), "list weights", root, id, "best",
               ".pt", b[2], len[2]);
  last = dl_old_path(p, key, id, "last");
  dl_check_url(th_json_str(entry, "resume"), "list resume", root, id, "last",
               ".pt", last.body, last.body_len);
  th_response_free(&last);
  json_decref(env);

  /* And the page's model (/ui, open on loopback). */
  char *ui = th_fmt("/ui/models/%s", id);
  env = sv_expect(p, "GET", ui, NULL, NULL, 200);
  dl_check_url(th_json_str(env, "data.weights"), "/ui weights", root, id,
               "best", ".pt", b[2], len[2]);
  const char *ui_ck = th_json_str(env, "data.checkpoints.0.url");
  dl_url uc;
  dl_parse(ui_ck, "/ui checkpoints[0].url", &uc);
  json_decref(env);
  dl_url_free(&uc);
  free(ui);
  for (int i = 0; i < 3; i++)
    free(b[i]);
  free(id);
}

/* The uploaded file part's suffix carries into the name when it is not
 * .pt; a name without one gets .pt. */
static void server_download_name_suffix(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "suffix.pt");
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), id);
  size_t len = 3000;
  unsigned char *bin = sv_bytes(len, 950), *bare = sv_bytes(len, 951);
  const char *f3[] = {"epoch", "3", "type", "epoch", "isBest", "False", NULL};
  th_response r;
  assert_int_equal(th_upload(url, key, f3, "last.pt", "weights.bin", bin, len,
                             NULL, NULL, &r),
                   0);
  assert_int_equal(r.status, 200);
  th_response_free(&r);
  json_t *m = sv_model(p, key, id);
  dl_check_url(th_json_str(m, "resume"), "resume of weights.bin",
               chubd_proc_base_url(p), id, "last", ".bin", bin, len);
  dl_check_url(th_json_str(m, "checkpoints.0.url"), "checkpoint of weights.bin",
               chubd_proc_base_url(p), id, "epoch3", ".bin", bin, len);
  json_decref(m);

  const char *f4[] = {"epoch", "4", "type", "epoch", "isBest", "False", NULL};
  assert_int_equal(
      th_upload(url, key, f4, "last.pt", "blob", bare, len, NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  th_response_free(&r);
  m = sv_model(p, key, id);
  dl_check_url(th_json_str(m, "resume"), "resume of a bare name",
               chubd_proc_base_url(p), id, "last", ".pt", bare, len);
  json_decref(m);
  free(bare);
  free(bin);
  free(url);
  free(id);
}

/* Range, If-None-Match and HEAD on a signed URL, with no key. */
static void server_download_fetch(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "fetch.pt");
  size_t len = 100000;
  unsigned char *b = sv_bytes(len, 960);
  char hex[65];
  th_sha256_hex(b, len, hex);
  dl_upload(p, key, id, 0, "epoch", "False", b, len);
  dl_url u;
  char *url;
  dl_model_url(p, key, id, "resume", &u, &url);
  dl_expect_file(url, b, len, u.name);

  /* A cut download resumed: the tail from byte 60000 (curl -C -). */
  th_response r;
  const char *range[] = {"Range: bytes=60000-", NULL};
  dl_get("GET", url, range, &r);
  assert_int_equal(r.status, 206);
  assert_int_equal(r.body_len, len - 60000);
  assert_memory_equal(r.body, b + 60000, len - 60000);
  char *cr = dl_header(&r, "Content-Range");
  sv_assert_str(cr, "bytes 60000-99999/100000");
  free(cr);
  char *cl = dl_header(&r, "Content-Length");
  assert_non_null(cl);
  assert_int_equal(strtoull(cl, NULL, 10), len - 60000);
  free(cl);
  th_response_free(&r);

  /* Already have it: 304, no body. */
  char *inm = th_fmt("If-None-Match: \"%s\"", hex);
  const char *cond[] = {inm, NULL};
  dl_get("GET", url, cond, &r);
  assert_int_equal(r.status, 304);
  assert_int_equal(r.body_len, 0);
  th_response_free(&r);
  /* Another version: the file. */
  const char *other[] = {"If-None-Match: \"0000\"", NULL};
  dl_get("GET", url, other, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, len);
  th_response_free(&r);

  /* HEAD: the headers of the GET, no body. */
  dl_get("HEAD", url, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  cl = dl_header(&r, "Content-Length");
  assert_non_null(cl);
  assert_int_equal(strtoull(cl, NULL, 10), len);
  free(cl);
  char *etag = dl_header(&r, "ETag");
  char *etag_want = th_fmt("\"%s\"", hex);
  sv_assert_str(etag, etag_want);
  free(etag_want);
  free(etag);
  th_response_free(&r);

  free(inm);
  free(url);
  dl_url_free(&u);
  free(b);
  free(id);
}

/* Any change to a signed URL: 403 "signature", never a file. */
static void server_download_altered(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "altered.pt");
  char *twin = sv_create(p, key, "twin.pt");
  size_t len = 20000;
  unsigned char *best = sv_bytes(len, 970), *last = sv_bytes(len, 971);
  dl_upload(p, key, id, 0, "epoch", "False", last, len);
  dl_upload(p, key, id, 1, "final", NULL, best, len);
  /* The same bytes in another model of the same owner. */
  dl_upload(p, key, twin, 1, "final", NULL, best, len);
  dl_url u, ul;
  char *url;
  dl_model_url(p, key, id, "weights", &u, &url);
  dl_model_url(p, key, id, "resume", &ul, NULL);
  dl_url ut;
  dl_model_url(p, key, twin, "weights", &ut, NULL);

  /* The URL as given, and as put back together from its parts, works: the
   * alterations below change one thing only. */
  dl_expect_file(url, best, len, u.name);
  char *same = dl_build(&u);
  dl_expect_file(same, best, len, u.name);
  free(same);

  char *bad_id = strdup("AAAAAAAAAAAAAAAAAAAA");
  char *id_flip = dl_flip(u.id, 19);
  char *sha_flip = dl_flip(u.sha, 63);
  char *other_name = th_fmt("%s-last-%.8s.pt", u.id, u.sha);
  char *exp_plus = th_fmt("%lld", strtoll(u.expires, NULL, 10) + 1);
  char *exp_far = th_fmt("%lld", strtoll(u.expires, NULL, 10) + 365 * 86400LL);
  char *kid_flip = dl_flip(u.kid, strlen(u.kid) - 1);
  char *sig_flip = dl_flip(u.sig, 63);
  char *sig_first = dl_flip(u.sig, 0);
  char *sig_short = strndup(u.sig, 63);
  const char *zeros =
      "0000000000000000000000000000000000000000000000000000000000000000";
  struct {
    const char *field, *value, *why;
  } alt[] = {
      {"id", twin, "the id of a model holding the same blob"},
      {"id", id_flip, "one character of the id"},
      {"id", bad_id, "an id no model has"},
      {"sha", ul.sha, "the sha256 of the model's other blob"},
      {"sha", sha_flip, "one character of the sha256"},
      {"name", other_name, "another valid-looking name"},
      {"name", "best.pt", "a plain name"},
      {"name", ut.name, "the twin's name"},
      {"expires", exp_plus, "one second more"},
      {"expires", exp_far, "a year more"},
      {"kid", kid_flip, "one character of kid"},
      {"sig", sig_flip, "the last hex digit of sig"},
      {"sig", sig_first, "the first hex digit of sig"},
      {"sig", sig_short, "sig cut by one digit"},
      {"sig", zeros, "sig all zeros"},
      {"sig", ut.sig, "the twin URL's sig"},
  };
  for (size_t i = 0; i < sizeof alt / sizeof *alt; i++) {
    char *a = dl_with(&u, alt[i].field, alt[i].value);
    fprintf(stderr, "altered %s (%s)\n", alt[i].field, alt[i].why);
    dl_expect_refused(a, 403, "signature", best, len);
    free(a);
  }
  /* The twin's path with this URL's query, and the other way round. */
  dl_url mix = ut;
  mix.expires = u.expires, mix.kid = u.kid, mix.sig = u.sig;
  char *a = dl_build(&mix);
  dl_expect_refused(a, 403, "signature", best, len);
  free(a);

  /* The original still works after all that. */
  dl_expect_file(url, best, len, u.name);
  free(sig_short);
  free(sig_first);
  free(sig_flip);
  free(kid_flip);
  free(exp_far);
  free(exp_plus);
  free(other_name);
  free(sha_flip);
  free(id_flip);
  free(bad_id);
  dl_url_free(&ut);
  dl_url_free(&ul);
  dl_url_free(&u);
  free(url);
  free(last);
  free(best);
  free(twin);
  free(id);
}

/* A URL of owner A names one blob of A's model: swapping in owner B's
 * model (id, sha, name, even B's own signature) is 403, never B's file. */
static void server_download_other_owner(void **state) {
  chubd_proc *p = *state;
  const char *ka = chubd_proc_key(p);
  char *kb = chubd_proc_create_key(p, "owner-b");
  assert_non_null(kb);
  char *ida = sv_create(p, ka, "a.pt");
  char *idb = sv_create(p, kb, "b.pt");
  size_t len = 12345;
  unsigned char *ba = sv_bytes(len, 980), *bb = sv_bytes(len, 981);
  dl_upload(p, ka, ida, 0, "epoch", "True", ba, len);
  dl_upload(p, kb, idb, 0, "epoch", "True", bb, len);
  dl_url ua, ub;
  char *url_a, *url_b;
  dl_model_url(p, ka, ida, "resume", &ua, &url_a);
  dl_model_url(p, kb, idb, "resume", &ub, &url_b);
  /* Each works for anyone who holds it. */
  dl_expect_file(url_a, ba, len, ua.name);
  dl_expect_file(url_b, bb, len, ub.name);

  dl_url s;
  char *a;
  /* A's URL with B's id. */
  a = dl_with(&ua, "id", ub.id);
  dl_expect_refused(a, 403, NULL, bb, len);
  free(a);
  /* A's URL with B's id and sha. */
  s = ua, s.id = ub.id, s.sha = ub.sha;
  a = dl_build(&s);
  dl_expect_refused(a, 403, NULL, bb, len);
  free(a);
  /* A's URL with B's id, sha and name: B's path, A's query. */
  s.name = ub.name;
  a = dl_build(&s);
  dl_expect_refused(a, 403, NULL, bb, len);
  free(a);
  /* A's model id with B's sha, B's query. */
  s = ub, s.id = ua.id;
  a = dl_build(&s);
  dl_expect_refused(a, 403, NULL, bb, len);
  free(a);
  /* A's path with B's (valid) expires, kid and sig. */
  s = ua, s.expires = ub.expires, s.kid = ub.kid, s.sig = ub.sig;
  a = dl_build(&s);
  dl_expect_refused(a, 403, NULL, ba, len);
  free(a);
  /* A's id and sha with B's name and query. */
  s = ub, s.id = ua.id, s.sha = ua.sha;
  a = dl_build(&s);
  dl_expect_refused(a, 403, NULL, ba, len);
  free(a);

  dl_url_free(&ub);
  dl_url_free(&ua);
  free(url_b);
  free(url_a);
  free(bb);
  free(ba);
  free(idb);
  free(ida);
  free(kb);
}

/* x-api-key on the signed path without the query: the owner gets the
 * file, another owner 404; neither key nor signature: 401. */
static void server_download_key_header(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *kb = chubd_proc_create_key(p, "owner-c");
  assert_non_null(kb);
  char *id = sv_create(p, key, "keyed.pt");
  size_t len = 7777;
  unsigned char *b = sv_bytes(len, 990);
  dl_upload(p, key, id, 0, "epoch", "False", b, len);
  dl_url u;
  dl_model_url(p, key, id, "resume", &u, NULL);
  char *path = th_fmt("/v1/models/%s/weights/%s/%s", u.id, u.sha, u.name);

  th_response r;
  assert_int_equal(dl_keyed(p, path, key, &r), 200);
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, b, len);
  th_response_free(&r);

  json_t *env = sv_expect(p, "GET", path, kb, NULL, 404);
  json_decref(env);
  env = sv_expect(p, "GET", path, NULL, NULL, 401);
  json_decref(env);
  char *full = th_fmt("%s%s", chubd_proc_base_url(p), path);
  dl_expect_refused(full, 401, NULL, b, len);
  free(full);

  /* The old keyed paths keep working. */
  char *old_last = th_fmt("/v1/models/%s/weights/last", id);
  char *old_sha = th_fmt("/v1/models/%s/weights/%s", id, u.sha);
  assert_int_equal(dl_keyed(p, old_last, key, &r), 200);
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, b, len);
  th_response_free(&r);
  assert_int_equal(dl_keyed(p, old_sha, key, &r), 200);
  assert_int_equal(r.body_len, len);
  th_response_free(&r);
  env = sv_expect(p, "GET", old_last, NULL, NULL, 401);
  json_decref(env);
  free(old_sha);
  free(old_last);
  free(path);
  dl_url_free(&u);
  free(b);
  free(id);
  free(kb);
}

/* Revoking the key that issued a URL kills the URL (403 "revoked"); URLs
 * of other keys keep working. */
static void server_download_revoked(void **state) {
  chubd_proc *p = *state;
  char *kr = chubd_proc_create_key(p, "to-be-revoked");
  assert_non_null(kr);
  char *id = sv_create(p, kr, "revoked.pt");
  size_t len = 5000;
  unsigned char *b = sv_bytes(len, 1000);
  dl_upload(p, kr, id, 0, "epoch", "False", b, len);
  dl_url u;
  char *url;
  dl_model_url(p, kr, id, "resume", &u, &url);
  dl_expect_file(url, b, len, u.name);

  /* A URL of the suite's own key, to see it survive. */
  const char *key = chubd_proc_key(p);
  char *keep_id = sv_create(p, key, "kept.pt");
  unsigned char *kb = sv_bytes(len, 1001);
  dl_upload(p, key, keep_id, 0, "epoch", "False", kb, len);
  char *keep_url;
  dl_url ku;
  dl_model_url(p, key, keep_id, "resume", &ku, &keep_url);

  sv_revoke_key(p, kr);

  /* Bounded: at most 3 s for the revocation to reach the server. */
  th_response r;
  for (int i = 0; i < 30; i++) {
    dl_get("GET", url, NULL, &r);
    long st = r.status;
    th_response_free(&r);
    if (st != 200)
      break;
    sv_sleep_ms(100);
  }
  dl_expect_refused(url, 403, "revoked", b, len);
  dl_expect_file(keep_url, kb, len, ku.name);

  dl_url_free(&ku);
  free(keep_url);
  free(kb);
  free(keep_id);
  free(url);
  dl_url_free(&u);
  free(b);
  free(id);
  free(kr);
}

/* --url-ttl 2: the URL works, then after its expiry answers 403
 * "expired"; the model read again hands out a fresh one that works. */
static void server_download_expired(void **state) {
  (void)state;
  const char *args[] = {"--url-ttl", "2", NULL};
  chubd_proc *p = sv_start(args);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "expiring.pt");
  size_t len = 9000;
  unsigned char *b = sv_bytes(len, 1010);
  dl_upload(p, key, id, 0, "epoch", "False", b, len);
  long long before = (long long)time(NULL);
  dl_url u;
  char *url;
  dl_model_url(p, key, id, "resume", &u, &url);
  long long exp = strtoll(u.expires, NULL, 10);
  long long after = (long long)time(NULL);
  if (exp < before + 1 || exp > after + 3)
    fail_msg("--url-ttl 2: expires %lld, now %lld", exp, after);
  dl_expect_file(url, b, len, u.name);

  /* Wait until the expiry is past (bounded by the check above: < 6 s). */
  while ((long long)time(NULL) <= exp + 1)
    sv_sleep_ms(100);
  dl_expect_refused(url, 403, "expired", b, len);

  dl_url fresh;
  char *fresh_url;
  dl_model_url(p, key, id, "resume", &fresh, &fresh_url);
  assert_true(strtoll(fresh.expires, NULL, 10) > exp);
  dl_expect_file(fresh_url, b, len, fresh.name);
  dl_url_free(&fresh);
  free(fresh_url);
  free(url);
  dl_url_free(&u);
  free(b);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Every URL of a model of chubd `p` starts with `want` + /v1/models/{id}. */
static void dl_expect_root(chubd_proc *p, const char *want) {
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "public.pt");
  size_t len = 1000;
  unsigned char *b = sv_bytes(len, 1020), *c = sv_bytes(len, 1021);
  dl_upload(p, key, id, 0, "epoch", "False", b, len);
  dl_upload(p, key, id, 1, "final", NULL, c, len);
  json_t *m = sv_model(p, key, id);
  char *prefix = th_fmt("%s/v1/models/%s/weights/", want, id);
  const char *urls[] = {th_json_str(m, "weights"), th_json_str(m, "resume"),
                        th_json_str(m, "checkpoints.0.url"),
                        th_json_str(m, "checkpoints.1.url")};
  for (size_t i = 0; i < 4; i++) {
    dl_url u;
    dl_parse(urls[i], "URL", &u);
    if (strncmp(urls[i], prefix, strlen(prefix)) != 0)
      fail_msg("\"%s\" does not start with %s", urls[i], prefix);
    dl_url_free(&u);
  }
  free(prefix);
  json_decref(m);
  free(c);
  free(b);
  free(id);
}

/* --public-url and CHUBD_PUBLIC_URL set the root of every URL;
 * CHUBD_URL_TTL sets the lifetime as --url-ttl does. */
static void server_download_public_url(void **state) {
  (void)state;
  const char *args[] = {"--public-url", "http://hub.example.test:1234/sub",
                        NULL};
  chubd_proc *p = sv_start(args);
  dl_expect_root(p, "http://hub.example.test:1234/sub");
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);

  setenv("CHUBD_PUBLIC_URL", "https://hub.example.com/chub", 1);
  setenv("CHUBD_URL_TTL", "100", 1);
  p = sv_start(NULL);
  unsetenv("CHUBD_URL_TTL");
  unsetenv("CHUBD_PUBLIC_URL");
  dl_expect_root(p, "https://hub.example.com/chub");
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "ttl.pt");
  unsigned char *b = sv_bytes(100, 1030);
  dl_upload(p, key, id, 0, "epoch", "False", b, 100);
  long long now = (long long)time(NULL);
  dl_url u;
  dl_model_url(p, key, id, "resume", &u, NULL);
  long long exp = strtoll(u.expires, NULL, 10);
  if (exp < now + 100 - 5 || exp > now + 100 + 5)
    fail_msg("CHUBD_URL_TTL=100: expires %lld, now %lld", exp, now);
  dl_url_free(&u);
  free(b);
  free(id);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* Without --public-url the root is the listen address, an IPv6 one in
 * brackets. (A wildcard listener, which names no host, is not tried:
 * tests listen on loopback only.) */
static void server_download_default_root(void **state) {
  (void)state;
  chubd_proc *p = chubd_proc_start_on(sv_chubd_bin(), "[::1]", NULL, NULL);
  if (!p)
    fail_msg("chubd --listen [::1]:0 did not start");
  char *root = th_fmt("http://[::1]:%d", chubd_proc_port(p));
  dl_expect_root(p, root);
  const char *key = chubd_proc_key(p);
  char *id = sv_create(p, key, "v6.pt");
  unsigned char *b = sv_bytes(3000, 1070);
  dl_upload(p, key, id, 0, "epoch", "False", b, 3000);
  dl_url u;
  char *url;
  dl_model_url(p, key, id, "resume", &u, &url);
  dl_expect_file(url, b, 3000, u.name);
  free(url);
  dl_url_free(&u);
  free(id);
  free(root);
  free(b);
  assert_int_equal(chubd_proc_stop(p), 0);
  chubd_proc_free(p);
}

/* POST /model-reset {modelId}: metrics and weights gone, status new. */
static void server_download_model_reset(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *kb = chubd_proc_create_key(p, "owner-reset");
  assert_non_null(kb);
  char *id = dl_create(p, key, "yolo11n.yaml", NULL);
  assert_int_equal(sv_metrics(p, key, id,
                              "{\"0\": \"{\\\"loss\\\": 2}\", "
                              "\"1\": \"{\\\"loss\\\": 1}\"}"),
                   200);
  size_t len = 4000;
  unsigned char *b = sv_bytes(len, 1040), *c = sv_bytes(len, 1041);
  dl_upload(p, key, id, 0, "epoch", "True", b, len);
  dl_upload(p, key, id, 1, "final", NULL, c, len);
  char *body = th_fmt("{\"modelId\": \"%s\"}", id);
  char *metrics = th_fmt("/v1/models/%s/metrics", id);

  /* Refused: another owner, an unknown id, no key, no or ill-typed id. */
  json_t *env = sv_expect(p, "POST", "/model-reset", kb, body, 404);
  json_decref(env);
  env = sv_expect(p, "POST", "/model-reset", key,
                  "{\"modelId\": \"AAAAAAAAAAAAAAAAAAAA\"}", 404);
  json_decref(env);
  env = sv_expect(p, "POST", "/model-reset", NULL, body, 401);
  json_decref(env);
  env = sv_expect(p, "POST", "/model-reset", key, "{}", 400);
  assert_true(sv_message_has(env, "modelId"));
  json_decref(env);
  env = sv_expect(p, "POST", "/model-reset", key, "{\"modelId\": 5}", 400);
  assert_true(sv_message_has(env, "modelId"));
  json_decref(env);
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "status"), "trained");
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 2);
  json_decref(m);
  env = sv_expect(p, "GET", metrics, key, NULL, 200);
  assert_int_equal(json_array_size(th_json_at(env, "data")), 2);
  json_decref(env);

  /* The owner resets. */
  env = sv_expect(p, "POST", "/model-reset", key, body, 200);
  json_decref(env);
  env = sv_expect(p, "GET", metrics, key, NULL, 200);
  json_t *data = th_json_at(env, "data");
  assert_true(json_is_array(data));
  assert_int_equal(json_array_size(data), 0);
  json_decref(env);
  m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "status"), "new");
  assert_int_equal(th_json_bool(m, "has_last_weights"), 0);
  assert_int_equal(th_json_bool(m, "has_best_weights"), 0);
  assert_null(th_json_at(m, "weights"));
  assert_null(th_json_at(m, "resume"));
  assert_int_equal(json_array_size(th_json_at(m, "checkpoints")), 0);
  assert_int_equal(th_json_int(m, "metrics_count", -1), 0);
  assert_true(json_is_null(th_json_at(m, "last_epoch")));
  json_decref(m);
  /* Counted again from nothing. */
  assert_int_equal(sv_metrics(p, key, id, "{\"0\": \"{\\\"loss\\\": 3}\"}"),
                   200);
  m = sv_model(p, key, id);
  assert_int_equal(th_json_int(m, "metrics_count", -1), 1);
  json_decref(m);
  char *last = th_fmt("/v1/models/%s/weights/last", id);
  env = sv_expect(p, "GET", last, key, NULL, 404);
  json_decref(env);
  free(last);
  free(metrics);
  free(body);
  free(c);
  free(b);
  free(id);
  free(kb);
}

/* The message of a 501: chubd does not run models, and the command that
 * does it locally (`yolo export model=... format=...` for an export; for
 * predict, a local `yolo` command). */
static void dl_expect_501(chubd_proc *p, const char *path, const char *key,
                          const char *body, const char *command) {
  json_t *env = sv_expect(p, "POST", path, key, body, 501);
  const char *msg = th_json_str(env, "message");
  if (!msg || !strcasestr(msg, "chubd") ||
      (!strcasestr(msg, "not run") && !strcasestr(msg, "n't run")) ||
      !strcasestr(msg, command))
    fail_msg("POST %s: 501 message \"%s\" does not say chubd does not run "
             "models and `%s ...`",
             path, msg ? msg : "(none)", command);
  json_decref(env);
}

/* Export, get-export and predict: 401 without a key, 404 for another
 * owner or an unknown id, else 501 saying how to export locally. */
static void server_download_export_predict_501(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *kb = chubd_proc_create_key(p, "owner-export");
  assert_non_null(kb);
  char *id = sv_create(p, key, "export.pt");
  unsigned char *b = sv_bytes(100, 1050);
  dl_upload(p, key, id, 0, "final", NULL, b, 100);
  const char *unknown = "AAAAAAAAAAAAAAAAAAAA";
  char *export = th_fmt("/v1/models/%s/export", id);
  char *export_unknown = th_fmt("/v1/models/%s/export", unknown);
  char *predict = th_fmt("/v1/predict/%s", id);
  char *predict_unknown = th_fmt("/v1/predict/%s", unknown);
  const char *fmt = "{\"format\": \"onnx\"}";
  char *ge =
      th_fmt("{\"apiKey\": \"%s\", \"modelId\": \"%s\", \"format\": \"onnx\"}",
             key, id);
  char *ge_b =
      th_fmt("{\"apiKey\": \"%s\", \"modelId\": \"%s\", \"format\": \"onnx\"}",
             kb, id);
  char *ge_unknown =
      th_fmt("{\"apiKey\": \"%s\", \"modelId\": \"%s\", \"format\": \"onnx\"}",
             key, unknown);
  const char *ge_nokey = "{\"modelId\": \"AAAAAAAAAAAAAAAAAAAA\", "
                         "\"format\": \"onnx\"}";
  json_t *env;

  env = sv_expect(p, "POST", export, NULL, fmt, 401);
  json_decref(env);
  env = sv_expect(p, "POST", "/get-export", NULL, ge_nokey, 401);
  json_decref(env);
  env = sv_expect(p, "POST", predict, NULL, "{}", 401);
  json_decref(env);

  env = sv_expect(p, "POST", export, kb, fmt, 404);
  json_decref(env);
  env = sv_expect(p, "POST", "/get-export", kb, ge_b, 404);
  json_decref(env);
  env = sv_expect(p, "POST", predict, kb, "{}", 404);
  json_decref(env);
  env = sv_expect(p, "POST", export_unknown, key, fmt, 404);
  json_decref(env);
  env = sv_expect(p, "POST", "/get-export", key, ge_unknown, 404);
  json_decref(env);
  env = sv_expect(p, "POST", predict_unknown, key, "{}", 404);
  json_decref(env);

  dl_expect_501(p, export, key, fmt, "yolo export");
  dl_expect_501(p, "/get-export", key, ge, "yolo export");
  dl_expect_501(p, predict, key, "{}", "yolo ");

  free(ge_unknown);
  free(ge_b);
  free(ge);
  free(predict_unknown);
  free(predict);
  free(export_unknown);
  free(export);
  free(b);
  free(id);
  free(kb);
}

/* train_args holds data and only valid Ultralytics trainer arguments. */
static void dl_expect_train_args(json_t *m, const char *data) {
  json_t *ta = th_json_at(m, "train_args");
  assert_true(json_is_object(ta));
  sv_assert_str(th_json_str(ta, "data"), data);
  static const char *const ok[] = {"data",     "epochs", "batch", "imgsz",
                                   "patience", "device", "cache"};
  const char *k;
  json_t *v;
  json_object_foreach(ta, k, v) {
    int found = 0;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
      if (strcmp(k, ok[i]) == 0)
        found = 1;
    if (!found)
      fail_msg("train_args has \"%s\", not an Ultralytics trainer argument", k);
  }
}

/* cfg is a name Ultralytics builds locally; a parent's weights stand in
 * for `weights` until some are uploaded. */
static void server_download_cfg_and_parent(void **state) {
  chubd_proc *p = *state;
  const char *key = chubd_proc_key(p);
  char *id = dl_create(p, key, "yolov8n-cls", NULL);
  json_t *m = sv_model(p, key, id);
  sv_assert_str(th_json_str(m, "cfg"), "yolov8n-cls.yaml");
  assert_int_equal(th_json_bool(m, "is_pretrained"), 0);
  assert_null(th_json_at(m, "weights"));
  assert_null(th_json_at(m, "resume"));
  dl_expect_train_args(m, "imagenet10");
  json_decref(m);
  free(id);

  const char *kept[] = {"yolo11s.yaml", "yolo11s-seg.yml"};
  for (size_t i = 0; i < 2; i++) {
    id = dl_create(p, key, kept[i], NULL);
    m = sv_model(p, key, id);
    sv_assert_str(th_json_str(m, "cfg"), kept[i]);
    dl_expect_train_args(m, "imagenet10");
    json_decref(m);
    free(id);
  }

  id = dl_create(p, key, "yolo11n", "yolo11n.pt");
  m = sv_model(p, key, id);
  assert_int_equal(th_json_bool(m, "is_pretrained"), 1);
  sv_assert_str(th_json_str(m, "weights"), "yolo11n.pt");
  assert_int_equal(th_json_bool(m, "has_last_weights"), 0);
  assert_null(th_json_at(m, "resume"));
  dl_expect_train_args(m, "imagenet10");
  json_decref(m);

  /* Once weights are uploaded, they are what `weights` names. */
  unsigned char *b = sv_bytes(2000, 1060);
  dl_upload(p, key, id, 0, "final", NULL, b, 2000);
  m = sv_model(p, key, id);
  dl_check_url(th_json_str(m, "weights"), "weights after upload",
               chubd_proc_base_url(p), id, "best", ".pt", b, 2000);
  json_decref(m);
  free(b);
  free(id);

  /* The suite's usual create payload too. */
  id = sv_create(p, key, "args.pt");
  m = sv_model(p, key, id);
  dl_expect_train_args(m, "coco8.yaml");
  json_decref(m);
  free(id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_download_model_urls),
      cmocka_unit_test(server_download_name_suffix),
      cmocka_unit_test(server_download_fetch),
      cmocka_unit_test(server_download_altered),
      cmocka_unit_test(server_download_other_owner),
      cmocka_unit_test(server_download_key_header),
      cmocka_unit_test(server_download_revoked),
      cmocka_unit_test(server_download_expired),
      cmocka_unit_test(server_download_public_url),
      cmocka_unit_test(server_download_default_root),
      cmocka_unit_test(server_download_model_reset),
      cmocka_unit_test(server_download_export_predict_501),
      cmocka_unit_test(server_download_cfg_and_parent),
  };
  return sv_suite_result(cmocka_run_group_tests_name(
      "server_download", tests, sv_group_setup, sv_group_teardown));
}

/*
 * sv.c - helpers shared by chubd's conformance suite.
 *
 * Each helper turns one promise of the spec into an assertion so the test
 * files read as the spec does. The chubd under test is the real binary
 * (SV_CHUBD_BIN, set by the build from the chubd target), started on a free
 * loopback port with a temporary data directory.
 */
#include "sv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SV_CHUBD_BIN
#error "SV_CHUBD_BIN must be the path of the chubd binary"
#endif

const char *sv_chubd_bin(void) {
  return SV_CHUBD_BIN;
}

chubd_proc *sv_start(const char *const extra[]) {
  chubd_proc *p = chubd_proc_start(SV_CHUBD_BIN, NULL, extra);
  if (!p)
    fail_msg("chubd (%s) did not start; its stderr is above", SV_CHUBD_BIN);
  return p;
}

int sv_group_setup(void **state) {
  const char *args[] = {"--rate-limit", "100000", "--rate-burst", "100000",
                        NULL};
  return sv_group_start(state, args);
}

int sv_group_start(void **state, const char *const extra[]) {
  chubd_proc *p = chubd_proc_start(SV_CHUBD_BIN, NULL, extra);
  if (!p) {
    fprintf(stderr, "sv: chubd (%s) did not start\n", SV_CHUBD_BIN);
    return -1;
  }
  *state = p;
  return 0;
}

static int sv_teardown_failed;

int sv_suite_result(int rc) {
  return rc ? rc : sv_teardown_failed;
}

int sv_group_teardown(void **state) {
  chubd_proc *p = *state;
  int rc = 0;
  if (p) {
    /* SIGTERM must drain and exit 0; say so if not. */
    int st = chubd_proc_stop(p);
    if (st != 0) {
      fprintf(stderr, "sv: chubd exited %d on SIGTERM, expected 0\n", st);
      chubd_proc_dump_log(p, 4096);
      rc = -1;
      sv_teardown_failed = 1;
    }
    chubd_proc_free(p);
  }
  return rc;
}

json_t *sv_json(chubd_proc *p, const char *method, const char *path,
                const char *key, const char *json, long *status) {
  char *url = th_fmt("%s%s", chubd_proc_base_url(p), path);
  th_response r;
  int rc;
  if (strncmp(path, "/ui/", 4) == 0 && strcmp(method, "GET") != 0) {
    /* A change through /ui is what chubd's own pages send: JSON, with
     * their Origin. */
    char *origin = th_fmt("Origin: %s", chubd_proc_base_url(p));
    const char *hdrs[] = {
        json ? "Content-Type: application/json" : "Content-Type:", origin,
        NULL};
    rc = th_request_hdrs(method, url, hdrs, json, json ? strlen(json) : 0, &r);
    free(origin);
  } else {
    rc = th_json_request(method, url, key, json, &r);
  }
  if (rc != 0) {
    chubd_proc_dump_log(p, 4096);
    fail_msg("%s %s: no answer from chubd", method, url);
  }
  /* hub-api.md: JSON answers are application/json. */
  char *ct = th_header(r.headers, "Content-Type");
  if (!ct || strncmp(ct, "application/json", 16) != 0)
    fail_msg("%s %s answered %ld with Content-Type %s, not application/json",
             method, path, r.status, ct ? ct : "(none)");
  free(ct);
  json_t *env = th_envelope(&r);
  if (!env) {
    fprintf(stderr, "sv: %s %s with body %.300s\n", method, path,
            json ? json : "(none)");
    fail_msg("%s %s answered %ld without a chub envelope", method, path,
             r.status);
  }
  if (status)
    *status = r.status;
  th_response_free(&r);
  free(url);
  return env;
}

json_t *sv_expect(chubd_proc *p, const char *method, const char *path,
                  const char *key, const char *json, long want) {
  long status = 0;
  json_t *env = sv_json(p, method, path, key, json, &status);
  if (status != want) {
    char *dump = json_dumps(env, JSON_COMPACT);
    fprintf(stderr, "sv: %s %s body %.300s\n  -> %ld %s\n", method, path,
            json ? json : "(none)", status, dump ? dump : "");
    free(dump);
    fail_msg("%s %s: expected %ld, got %ld", method, path, want, status);
  }
  return env;
}

/* The first token in `list` of 4..41 alnum characters that is a prefix of
 * key, or NULL: how `keys list` names a key without showing it. */
char *sv_listed_prefix(const char *list, const char *key) {
  const char *s = list;
  while (*s) {
    while (*s && !isalnum((unsigned char)*s))
      s++;
    const char *start = s;
    while (*s && isalnum((unsigned char)*s))
      s++;
    size_t n = (size_t)(s - start);
    if (n >= 4 && n < 42 && strncmp(start, key, n) == 0)
      return strndup(start, n);
  }
  return NULL;
}

void sv_assert_str_(const char *actual, const char *want, const char *expr,
                    const char *file, int line) {
  if (!actual)
    fail_msg("%s:%d: %s is missing, expected \"%s\"", file, line, expr, want);
  if (strcmp(actual, want) != 0)
    fail_msg("%s:%d: %s is \"%s\", expected \"%s\"", file, line, expr, actual,
             want);
}

int sv_message_has(json_t *env, const char *needle) {
  const char *m = th_json_str(env, "message");
  if (!m)
    return 0;
  size_t n = strlen(needle);
  for (const char *s = m; *s; s++)
    if (strncasecmp(s, needle, n) == 0)
      return 1;
  fprintf(stderr, "sv: message \"%s\" does not mention \"%s\"\n", m, needle);
  return 0;
}

char *sv_create(chubd_proc *p, const char *key, const char *name) {
  char *id = th_create_model(chubd_proc_base_url(p), key, name);
  if (!id)
    fail_msg("could not create model %s", name);
  if (!sv_is_alnum(id, 20))
    fail_msg("model id \"%s\" is not 20 characters [A-Za-z0-9]", id);
  return id;
}

long sv_metrics(chubd_proc *p, const char *key, const char *id,
                const char *metrics) {
  char *path = th_fmt("/v1/models/%s", id);
  char *body = th_fmt("{\"type\": \"metrics\", \"metrics\": %s}", metrics);
  long status = 0;
  json_t *env = sv_json(p, "POST", path, key, body, &status);
  json_decref(env);
  free(body);
  free(path);
  return status;
}

json_t *sv_model(chubd_proc *p, const char *key, const char *id) {
  char *path = th_fmt("/v1/models/%s", id);
  json_t *env = sv_expect(p, "GET", path, key, NULL, 200);
  free(path);
  json_t *data = json_incref(json_object_get(env, "data"));
  json_decref(env);
  if (!json_is_object(data))
    fail_msg("GET /v1/models/%s: data is not an object", id);
  return data;
}

long sv_upload(chubd_proc *p, const char *key, const char *id, int epoch,
               const char *type, const char *is_best, const void *data,
               size_t len, const char *sha256, th_response *out) {
  char *url = th_fmt("%s/v1/models/%s/upload", chubd_proc_base_url(p), id);
  char epoch_s[32];
  snprintf(epoch_s, sizeof epoch_s, "%d", epoch);
  const char *fields[9] = {"epoch", epoch_s, "type", type, NULL};
  int n = 4;
  if (is_best) {
    fields[n++] = "isBest";
    fields[n++] = is_best;
  } else if (strcmp(type, "final") == 0) {
    fields[n++] = "map";
    fields[n++] = "0.5";
  }
  fields[n] = NULL;
  char *sha_h = sha256 ? th_fmt("x-chub-sha256: %s", sha256) : NULL;
  const char *hdrs[] = {sha_h, NULL};
  const char *part = strcmp(type, "final") == 0 ? "best.pt" : "last.pt";
  int rc = th_upload(url, key, fields, part, part, data, len, NULL,
                     sha_h ? hdrs : NULL, out);
  free(sha_h);
  free(url);
  if (rc != 0)
    fail_msg("upload to model %s: no answer from chubd", id);
  return out->status;
}

unsigned char *sv_bytes(size_t len, unsigned seed) {
  unsigned char *b = malloc(len ? len : 1);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    x = x * 1664525u + 1013904223u;
    b[i] = (unsigned char)(x >> 24);
  }
  return b;
}

/* Walks regular files under dir (no symlinks followed), calling fn with a
 * caller's context; fn returns non-zero to stop. A recursive readdir walk
 * rather than nftw so the question travels in ctx, not in a global. */
typedef int (*sv_walk_fn)(const char *path, const struct stat *sb, void *ctx);

static int sv_walk(const char *dir, sv_walk_fn fn, void *ctx, int depth) {
  DIR *d = opendir(dir);
  if (!d || depth > 16) {
    if (d)
      closedir(d);
    return 0;
  }
  int stop = 0;
  struct dirent *e;
  while (!stop && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *path = th_fmt("%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(path, &sb) == 0) {
      if (S_ISDIR(sb.st_mode))
        stop = sv_walk(path, fn, ctx, depth + 1);
      else if (S_ISREG(sb.st_mode))
        stop = fn(path, &sb, ctx);
    }
    free(path);
  }
  closedir(d);
  return stop;
}

typedef struct sv_match {
  const unsigned char *data;
  size_t len;
  int contains;
  int count;
} sv_match;

static int sv_match_file(const char *path, const struct stat *sb, void *ctx) {
  sv_match *m = ctx;
  size_t size = (size_t)sb->st_size;
  if ((!m->contains && size != m->len) || (m->contains && size < m->len))
    return 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  unsigned char *buf = malloc(size ? size : 1);
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got == size) {
    if (!m->contains) {
      if (memcmp(buf, m->data, size) == 0)
        m->count++;
    } else if (memmem(buf, size, m->data, m->len)) {
      m->count++;
    }
  }
  free(buf);
  return 0;
}

int sv_files_equal(const char *dir, const void *data, size_t len) {
  sv_match m = {data, len, 0, 0};
  sv_walk(dir, sv_match_file, &m, 0);
  return m.count;
}

int sv_files_containing(const char *dir, const void *needle, size_t len) {
  sv_match m = {needle, len, 1, 0};
  sv_walk(dir, sv_match_file, &m, 0);
  return m.count;
}

int sv_files_gone(const char *dir, const void *data, size_t len, int contains) {
  int n = 0;
  for (int i = 0; i < 60; i++) {
    n = contains ? sv_files_containing(dir, data, len)
                 : sv_files_equal(dir, data, len);
    if (n == 0)
      break;
    sv_sleep_ms(50);
  }
  return n;
}

static int sv_sqlite_file(const char *path, const struct stat *sb, void *ctx) {
  if (sb->st_size < 100)
    return 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  char head[16] = {0};
  size_t n = fread(head, 1, 16, f);
  fclose(f);
  if (n == 16 && memcmp(head, "SQLite format 3", 16) == 0) {
    *(char **)ctx = strdup(path);
    return 1;
  }
  return 0;
}

char *sv_find_sqlite(const char *dir) {
  char *found = NULL;
  sv_walk(dir, sv_sqlite_file, &found, 0);
  return found;
}

int sv_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    fail_msg("socket: %s", strerror(errno));
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    fail_msg("connect 127.0.0.1:%d: %s", port, strerror(e));
  }
  return fd;
}

void sv_send(int fd, const void *data, size_t len) {
  const char *d = data;
  size_t off = 0;
  while (off < len) {
    ssize_t w = send(fd, d + off, len - off, MSG_NOSIGNAL);
    if (w <= 0)
      break; /* the peer closed: what the test checks next shows it */
    off += (size_t)w;
  }
}

char *sv_recv(int fd, int ms) {
  size_t cap = 65536, got = 0;
  char *answer = malloc(cap + 1);
  for (int waited = 0; waited < ms && got < cap; waited += 100) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0)
      continue;
    ssize_t r = recv(fd, answer + got, cap - got, 0);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  answer[got] = '\0';
  return answer;
}

char *sv_raw(int port, const void *data, size_t len, int read_answer) {
  int fd = sv_connect(port);
  sv_send(fd, data, len);
  char *answer = read_answer ? sv_recv(fd, 5000) : NULL;
  close(fd);
  return answer;
}

char *sv_raw_upload(const char *id, const char *key, const unsigned char *bytes,
                    size_t len, size_t *out_len) {
  const char *bd = "chubtestboundary7d3a";
  char *head_part = th_fmt(
      "--%s\r\nContent-Disposition: form-data; name=\"epoch\"\r\n\r\n1\r\n"
      "--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nepoch\r\n"
      "--%s\r\nContent-Disposition: form-data; name=\"isBest\"\r\n\r\nFalse\r\n"
      "--%s\r\nContent-Disposition: form-data; name=\"last.pt\"; "
      "filename=\"last.pt\"\r\nContent-Type: application/octet-stream\r\n\r\n",
      bd, bd, bd, bd);
  char *tail = th_fmt("\r\n--%s--\r\n", bd);
  size_t body_len = strlen(head_part) + len + strlen(tail);
  char *req_head = th_fmt("POST /v1/models/%s/upload HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\nx-api-key: %s\r\n"
                          "Content-Type: multipart/form-data; boundary=%s\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          id, key, bd, body_len);
  size_t total = strlen(req_head) + body_len;
  char *req = malloc(total);
  size_t off = 0;
  memcpy(req + off, req_head, strlen(req_head));
  off += strlen(req_head);
  memcpy(req + off, head_part, strlen(head_part));
  off += strlen(head_part);
  memcpy(req + off, bytes, len);
  off += len;
  memcpy(req + off, tail, strlen(tail));
  *out_len = total;
  free(req_head);
  free(tail);
  free(head_part);
  return req;
}

int sv_alive(chubd_proc *p, int ms) {
  char *url = th_fmt("%s/v1/health", chubd_proc_base_url(p));
  int ok = 0;
  for (int waited = 0; waited <= ms && !ok; waited += 50) {
    long status = 0;
    char *body = NULL;
    if (th_request("GET", url, NULL, NULL, NULL, 0, &status, &body, NULL) ==
            0 &&
        status == 200)
      ok = 1;
    free(body);
    if (!ok)
      sv_sleep_ms(50);
  }
  free(url);
  return ok;
}

void sv_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

int sv_is_rfc3339_utc(const char *s) {
  if (!s)
    return 0;
  const char *pat = "dddd-dd-ddTdd:dd:dd";
  size_t i = 0;
  for (; pat[i]; i++) {
    if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
      return 0;
  }
  if (s[i] == '.') {
    i++;
    if (!isdigit((unsigned char)s[i]))
      return 0;
    while (isdigit((unsigned char)s[i]))
      i++;
  }
  return s[i] == 'Z' && s[i + 1] == '\0';
}

int sv_is_alnum(const char *s, size_t n) {
  if (!s || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]))
      return 0;
  return 1;
}

void sv_revoke_key(chubd_proc *p, const char *key) {
  const char *list_args[] = {"keys", "list", NULL};
  char *list = NULL;
  assert_int_equal(chubd_proc_cli(p, list_args, &list), 0);
  char *prefix = sv_listed_prefix(list ? list : "", key);
  if (!prefix)
    fail_msg("`keys list` shows no prefix of the key:\n%s", list);
  free(list);
  const char *revoke[] = {"keys", "revoke", prefix, NULL};
  assert_int_equal(chubd_proc_cli(p, revoke, NULL), 0);
  free(prefix);
}

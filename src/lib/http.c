/*
 * http.c - chub's one HTTP client, and its only user of libcurl: the hub
 * protocol's requests, envelopes, retries and streamed checkpoint uploads
 * (the sender and the session), and one-shot requests under a named
 * policy (a command a person typed; the usage-events budget), file
 * downloads with Range and streamed file uploads (the CLI).
 *
 * Built around one reused easy handle per client (one client per thread), so
 * keep-alive connections survive between uploads and nothing is allocated
 * per request beyond curl's own bookkeeping. Checkpoints go as a multipart
 * body whose file part is read by pread from the caller's descriptor: the
 * file is never held in memory and a retry can rewind it. A transfer can be
 * cut short from another thread through an atomic deadline checked in curl's
 * progress callback, which is how closing a session bounds its wait.
 */
#include "http.h"
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An answer body larger than this is not a protocol envelope; keep memory
 * bounded whatever a server sends. */
enum { HTTP_MAX_BODY = 4 << 20 };
/* The shortest request timeout CHUB_RETRY_SCALE may bring a request to. */
#define HTTP_MIN_TIMEOUT_S 2.0

struct http_client {
  CURL *curl;
  char *root;
  char key_header[160];
  double scale;
  unsigned seed;
  _Atomic long long *abort_ms;
  bool sha_part; /* the hub takes an upload's SHA-256 after the file */
};

/* What one attempt collects while curl runs. */
typedef struct http_attempt {
  char *body;
  size_t len;
  size_t cap;
  double retry_after;
  const http_upload *up;
  http_client *client;
  bool aborted;
  bool sha_part; /* the answer's X-Chub-Sha256-Modes names "part" */
} http_attempt;

/* The file part's reader state: the descriptor and where we are in it,
 * and when the digest goes after the file, the hash of what was read, the
 * file as it was when the upload started, and how much of the digest
 * field was read. */
typedef struct http_reader {
  int fd;
  long long size;
  long long off;
  EVP_MD_CTX *md; /* NULL: the digest went as a header */
  struct stat before;
  char *sha256;
  size_t sha_off;
} http_reader;

/* curl_global_init is not safe to race; run it once per process. */
static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static void http_global_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_curl_setup(void *curl) {
  pthread_once(&http_global_once, http_global_init);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "chub/" CHUB_VERSION);
  const char *ca = getenv("CHUB_CA_FILE");
  if (ca && *ca)
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
}

static double http_env_scale(void) {
  const char *v = getenv("CHUB_RETRY_SCALE");
  if (!v || !*v)
    return 1.0;
  char *end = NULL;
  double s = strtod(v, &end);
  if (end == v || !isfinite(s) || s <= 0 || s > 100) {
    chub_log(CHUB_LOG_WARN,
             "CHUB_RETRY_SCALE=%s is not a number in (0, 100]; using 1", v);
    return 1.0;
  }
  return s;
}

/* Hubs of this process that said they take an upload's digest after the
 * file, so that a new client (the final sync's) knows before its first
 * request. A handful is plenty: a process talks to one hub or two. */
#define HTTP_PART_HUBS 8
static pthread_mutex_t http_part_mu = PTHREAD_MUTEX_INITIALIZER;
static char *http_part_hubs[HTTP_PART_HUBS];

static bool http_part_known(const char *root) {
  bool yes = false;
  pthread_mutex_lock(&http_part_mu);
  for (int i = 0; i < HTTP_PART_HUBS && http_part_hubs[i] && !yes; i++)
    yes = strcmp(http_part_hubs[i], root) == 0;
  pthread_mutex_unlock(&http_part_mu);
  return yes;
}

static void http_part_learn(http_client *c) {
  c->sha_part = true;
  pthread_mutex_lock(&http_part_mu);
  int i = 0;
  while (i < HTTP_PART_HUBS && http_part_hubs[i] &&
         strcmp(http_part_hubs[i], c->root) != 0)
    i++;
  if (i < HTTP_PART_HUBS && !http_part_hubs[i])
    http_part_hubs[i] = strdup(c->root); /* kept for the process */
  pthread_mutex_unlock(&http_part_mu);
}

http_client *http_client_new(const char *api_root, const char *api_key) {
  pthread_once(&http_global_once, http_global_init);
  http_client *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->curl = curl_easy_init();
  size_t n = strlen(api_root);
  while (n > 0 && api_root[n - 1] == '/')
    n--;
  c->root = strndup(api_root, n);
  if (!c->curl || !c->root) {
    http_client_free(c);
    return NULL;
  }
  snprintf(c->key_header, sizeof c->key_header, "x-api-key: %s",
           api_key ? api_key : "");
  c->scale = http_env_scale();
  c->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)c;
  c->sha_part = http_part_known(c->root);
  return c;
}

void http_client_free(http_client *c) {
  if (!c)
    return;
  if (c->curl)
    curl_easy_cleanup(c->curl);
  free(c->root);
  free(c);
}

void http_client_set_abort(http_client *c, _Atomic long long *deadline_ms) {
  c->abort_ms = deadline_ms;
}

double http_client_scale(const http_client *c) {
  return c->scale;
}

static bool http_should_abort(const http_client *c) {
  if (!c->abort_ms)
    return false;
  long long d = atomic_load(c->abort_ms);
  return d != 0 && (long long)(chub_now() * 1000.0) >= d;
}

bool http_client_aborted(const void *c) {
  return http_should_abort(c);
}

void http_result_clear(http_result *res) {
  if (res->data)
    json_decref(res->data);
  memset(res, 0, sizeof *res);
}

bool http_retryable(long status) {
  switch (status) {
  case 0:
  case 408:
  case 429:
  case 500:
  case 502:
  case 503:
  case 504:
    return true;
  default:
    return false;
  }
}

chub_code http_code_for_status(long status) {
  if (status == 0)
    return CHUB_ENET;
  if (status >= 200 && status < 300)
    return CHUB_OK;
  if (status == 401)
    return CHUB_EAUTH;
  if (status == 404)
    return CHUB_ENOTFOUND;
  if (status == 409)
    return CHUB_ECONFLICT;
  return CHUB_EHTTP;
}

double http_backoff(int attempt, double scale, unsigned *seed) {
  if (attempt < 0)
    attempt = 0;
  if (attempt > 16)
    attempt = 16;
  double jitter = 1.0 + 0.25 * ((double)rand_r(seed) / ((double)RAND_MAX + 1));
  return ldexp(1.0, attempt) * jitter * scale;
}

double http_retry_after(const char *value, long long now_unix) {
  if (!value)
    return -1;
  while (*value == ' ' || *value == '\t')
    value++;
  if (*value >= '0' && *value <= '9') {
    char *end = NULL;
    double s = strtod(value, &end);
    return isfinite(s) && s >= 0 ? s : -1;
  }
  time_t t = curl_getdate(value, NULL);
  if (t == (time_t)-1)
    return -1;
  double s = (double)((long long)t - now_unix);
  return s < 0 ? 0 : s;
}

chub_code http_parse_envelope(const char *body, size_t len, json_t **data,
                              char *msg, size_t msglen) {
  if (data)
    *data = NULL;
  if (msg && msglen)
    msg[0] = '\0';
  if (!body)
    return CHUB_EPROTO;
  json_error_t err;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
  if (!root)
    return CHUB_EPROTO;
  if (!json_is_object(root)) {
    json_decref(root);
    return CHUB_EPROTO;
  }
  const char *m = json_string_value(json_object_get(root, "message"));
  if (m && msg && msglen)
    snprintf(msg, msglen, "%s", m);
  json_t *success = json_object_get(root, "success");
  chub_code rc = CHUB_OK;
  if (success && json_is_false(success))
    rc = CHUB_EHTTP;
  if (rc == CHUB_OK && data) {
    json_t *d = json_object_get(root, "data");
    *data = d ? json_incref(d) : json_null();
  }
  json_decref(root);
  return rc;
}

static size_t http_on_body(char *ptr, size_t size, size_t nmemb, void *user) {
  http_attempt *a = user;
  size_t n = size * nmemb;
  if (a->len + n > HTTP_MAX_BODY)
    return n; /* drop the excess; the envelope parse will reject it */
  if (a->len + n + 1 > a->cap) {
    size_t cap = a->cap ? a->cap : 1024;
    while (cap < a->len + n + 1)
      cap *= 2;
    char *b = realloc(a->body, cap);
    if (!b)
      return 0;
    a->body = b;
    a->cap = cap;
  }
  memcpy(a->body + a->len, ptr, n);
  a->len += n;
  a->body[a->len] = '\0';
  return n;
}

/* Whether header line ptr (n bytes) is `name: ...` with a value that
 * holds `word` (lower case), case aside. */
static bool http_header_has(const char *ptr, size_t n, const char *name,
                            const char *word) {
  size_t nl = strlen(name);
  if (n <= nl + 1 || strncasecmp(ptr, name, nl) != 0 || ptr[nl] != ':')
    return false;
  char v[128];
  size_t vl = n - nl - 1 < sizeof v - 1 ? n - nl - 1 : sizeof v - 1;
  for (size_t i = 0; i < vl; i++)
    v[i] = (char)tolower((unsigned char)ptr[nl + 1 + i]);
  v[vl] = '\0';
  return strstr(v, word) != NULL;
}

static size_t http_on_header(char *ptr, size_t size, size_t nmemb, void *user) {
  http_attempt *a = user;
  size_t n = size * nmemb;
  if (http_header_has(ptr, n, "x-chub-sha256-modes", "part"))
    a->sha_part = true;
  static const char name[] = "retry-after:";
  if (n > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0) {
    char v[64];
    size_t vl = n - (sizeof name - 1);
    if (vl >= sizeof v)
      vl = sizeof v - 1;
    memcpy(v, ptr + sizeof name - 1, vl);
    v[vl] = '\0';
    v[strcspn(v, "\r\n")] = '\0';
    a->retry_after = http_retry_after(v, (long long)time(NULL));
  }
  return n;
}

static int http_on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow,
                            curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal;
  (void)dlnow;
  http_attempt *a = user;
  if (http_should_abort(a->client)) {
    a->aborted = true;
    return 1;
  }
  if (a->up && a->up->progress && ultotal > 0)
    a->up->progress((long long)ulnow, (long long)ultotal, a->up->progress_user);
  return 0;
}

static size_t http_read_part(char *buf, size_t size, size_t nitems, void *arg) {
  http_reader *r = arg;
  size_t want = size * nitems;
  if ((long long)want > r->size - r->off)
    want = (size_t)(r->size - r->off);
  if (want == 0)
    return 0;
  for (;;) {
    ssize_t n = pread(r->fd, buf, want, (off_t)r->off);
    if (n < 0 && errno == EINTR)
      continue;
    /* A file that shrank or failed mid-upload cannot give the promised
     * bytes; abort rather than send a short body. */
    if (n <= 0)
      return CURL_READFUNC_ABORT;
    if (r->md && EVP_DigestUpdate(r->md, buf, (size_t)n) != 1)
      return CURL_READFUNC_ABORT;
    r->off += n;
    return (size_t)n;
  }
}

static int http_seek_part(void *arg, curl_off_t offset, int origin) {
  http_reader *r = arg;
  if (origin != SEEK_SET || offset < 0 || offset > r->size)
    return CURL_SEEKFUNC_CANTSEEK;
  /* Sent again from the start (a redirect, a resend): hashed again. */
  if (r->md &&
      (offset != 0 || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1))
    return CURL_SEEKFUNC_CANTSEEK;
  r->off = (long long)offset;
  r->sha_off = 0;
  return CURL_SEEKFUNC_OK;
}

/* The last form field, x-chub-sha256, read after the whole file part: the
 * digest of what was read, unless the file changed meanwhile (then one
 * that matches nothing). */
static size_t http_read_sha(char *buf, size_t size, size_t nitems, void *arg) {
  http_reader *r = arg;
  if (r->sha_off == 0) {
    unsigned char d[32];
    unsigned int dn = 0;
    struct stat now;
    if (r->off != r->size || EVP_DigestFinal_ex(r->md, d, &dn) != 1)
      return CURL_READFUNC_ABORT;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
      r->sha256[2 * i] = digits[d[i] >> 4];
      r->sha256[2 * i + 1] = digits[d[i] & 15];
    }
    r->sha256[64] = '\0';
    bool same = fstat(r->fd, &now) == 0 && now.st_size == r->before.st_size &&
                now.st_mtim.tv_sec == r->before.st_mtim.tv_sec &&
                now.st_mtim.tv_nsec == r->before.st_mtim.tv_nsec;
    if (!same)
      memset(r->sha256, '0', 64);
  }
  size_t want = size * nitems;
  if (want > 64 - r->sha_off)
    want = 64 - r->sha_off;
  memcpy(buf, r->sha256 + r->sha_off, want);
  r->sha_off += want;
  return want;
}

static int http_seek_sha(void *arg, curl_off_t offset, int origin) {
  http_reader *r = arg;
  if (origin != SEEK_SET || offset != 0)
    return CURL_SEEKFUNC_CANTSEEK;
  r->sha_off = 0;
  return CURL_SEEKFUNC_OK;
}

static void http_mime_field(curl_mime *mime, const char *name,
                            const char *value) {
  curl_mimepart *p = curl_mime_addpart(mime);
  curl_mime_name(p, name);
  curl_mime_data(p, value, CURL_ZERO_TERMINATED);
}

/* best.pt / last.pt, or best.SUFFIX when the local file has another plain
 * suffix (a C trainer's .bin): the hub keeps it for download names. */
static void http_upload_filename(const http_upload *up, char *out, size_t n) {
  const char *stem = up->final ? "best" : "last";
  const char *base = up->path ? strrchr(up->path, '/') : NULL;
  base = base ? base + 1 : up->path;
  const char *dot = base ? strrchr(base, '.') : NULL;
  size_t len = dot ? strlen(dot + 1) : 0;
  bool plain = dot && dot != base && len > 0 && len < 16;
  for (size_t i = 0; plain && i < len; i++)
    plain = isalnum((unsigned char)dot[1 + i]) != 0;
  snprintf(out, n, "%s.%s", stem, plain ? dot + 1 : "pt");
}

static curl_mime *http_build_mime(CURL *curl, const http_upload *up,
                                  http_reader *reader) {
  curl_mime *mime = curl_mime_init(curl);
  if (!mime)
    return NULL;
  char num[64];
  snprintf(num, sizeof num, "%d", up->epoch);
  http_mime_field(mime, "epoch", num);
  http_mime_field(mime, "type", up->final ? "final" : "epoch");
  if (up->final) {
    snprintf(num, sizeof num, "%.17g", isfinite(up->map) ? up->map : 0.0);
    http_mime_field(mime, "map", num);
  } else {
    http_mime_field(mime, "isBest", up->is_best ? "True" : "False");
  }
  const char *part = up->final ? "best.pt" : "last.pt";
  char filename[32];
  http_upload_filename(up, filename, sizeof filename);
  curl_mimepart *p = curl_mime_addpart(mime);
  curl_mime_name(p, part);
  curl_mime_filename(p, filename);
  curl_mime_type(p, "application/octet-stream");
  reader->fd = up->fd;
  reader->size = up->size;
  reader->off = 0;
  reader->sha256 = up->sha256;
  reader->sha_off = 0;
  curl_mime_data_cb(p, (curl_off_t)up->size, http_read_part, http_seek_part,
                    NULL, reader);
  if (reader->md) {
    curl_mimepart *s = curl_mime_addpart(mime);
    curl_mime_name(s, "x-chub-sha256");
    curl_mime_data_cb(s, 64, http_read_sha, http_seek_sha, NULL, reader);
  }
  return mime;
}

/* One request. Returns the HTTP status, 0 for no answer; fills `a`. */
static long http_attempt_once(http_client *c, const char *method,
                              const char *path, const char *json,
                              const http_upload *up, double timeout_s,
                              http_attempt *a, char *err, size_t errlen) {
  CURL *curl = c->curl;
  curl_easy_reset(curl);
  size_t ulen = strlen(c->root) + strlen(path) + 1;
  char *url = malloc(ulen);
  if (!url) {
    snprintf(err, errlen, "out of memory");
    return 0;
  }
  snprintf(url, ulen, "%s%s", c->root, path);
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *hdr = NULL;
  hdr = curl_slist_append(hdr, c->key_header);
  hdr = curl_slist_append(hdr, "Accept: application/json");
  hdr = curl_slist_append(hdr, "Expect:");
  char shahdr[96];
  bool part = up && c->sha_part;
  if (up && !part) {
    snprintf(shahdr, sizeof shahdr, "x-chub-sha256: %s", up->sha256);
    hdr = curl_slist_append(hdr, shahdr);
  }
  if (json)
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
  http_curl_setup(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, http_on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, http_on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, a);
  long connect_ms = (long)(timeout_s * 1000.0);
  if (connect_ms > 10000)
    connect_ms = 10000;
  if (connect_ms < 100)
    connect_ms = 100;
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_mime *mime = NULL;
  http_reader reader = {.md = NULL};
  if (part) {
    reader.md = EVP_MD_CTX_new();
    if (!reader.md || EVP_DigestInit_ex(reader.md, EVP_sha256(), NULL) != 1 ||
        fstat(up->fd, &reader.before) != 0) {
      EVP_MD_CTX_free(reader.md);
      curl_slist_free_all(hdr);
      free(url);
      snprintf(err, errlen, "cannot start hashing the upload");
      return 0;
    }
  }
  if (up) {
    mime = http_build_mime(curl, up, &reader);
    curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
    /* Large reads and sends for a file of many MiB: a thirtieth of the
     * calls of libcurl's default 64 KiB, for 1 MiB more memory. */
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
    /* An upload may take long; give up only when it stalls. */
    long stall = (long)ceil(timeout_s);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall < 1 ? 1L : stall);
  } else {
    long total_ms = (long)(timeout_s * 1000.0);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, total_ms < 100 ? 100 : total_ms);
    if (json) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)strlen(json));
    }
    if (strcmp(method, "GET") == 0)
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0 || !json)
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode cc = curl_easy_perform(curl);
  long status = 0;
  if (cc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  } else {
    snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
  }
  curl_mime_free(mime);
  curl_slist_free_all(hdr);
  EVP_MD_CTX_free(reader.md);
  /* The error buffer and the attempt live on this stack frame. */
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
  free(url);
  return status;
}

/* Sleeps `s` seconds in short slices, returning false early when the
 * client's abort deadline passes. */
bool http_sleep(const http_client *c, double s) {
  double end = chub_now() + s;
  for (;;) {
    if (http_should_abort(c))
      return false;
    double left = end - chub_now();
    if (left <= 0)
      return true;
    double slice = left < 0.02 ? left : 0.02;
    struct timespec ts = {(time_t)slice, (long)((slice - (time_t)slice) * 1e9)};
    nanosleep(&ts, NULL);
  }
}

chub_code http_call(http_client *c, const char *method, const char *path,
                    const char *json, const http_upload *up,
                    const http_policy *policy, http_result *res) {
  memset(res, 0, sizeof *res);
  double budget = policy->budget_s * c->scale;
  /* CHUB_RETRY_SCALE shortens waits for tests, but a request still gets
   * long enough for a busy (or sanitized) hub to answer: a timeout shorter
   * than that turns a slow answer into a spurious failure. */
  double timeout = policy->timeout_s * c->scale;
  if (timeout < HTTP_MIN_TIMEOUT_S)
    timeout = policy->timeout_s < HTTP_MIN_TIMEOUT_S ? policy->timeout_s
                                                     : HTTP_MIN_TIMEOUT_S;
  double t0 = chub_now();
  chub_code rc = CHUB_ENET;
  for (int attempt = 0;; attempt++) {
    if (http_should_abort(c))
      return CHUB_ETIMEDOUT;
    http_attempt a = {.retry_after = -1, .up = up, .client = c};
    char err[CURL_ERROR_SIZE] = "";
    if (up && !c->sha_part) {
      /* The digest goes first: hash the file before sending it. */
      chub_code hrc = chub_sha256_fd_stop(up->fd, up->size, up->sha256,
                                          http_client_aborted, c);
      if (hrc != CHUB_OK) {
        snprintf(res->message, sizeof res->message, "%s",
                 hrc == CHUB_ETIMEDOUT ? "stopped" : "the file cannot be read");
        return hrc == CHUB_ETIMEDOUT ? CHUB_ETIMEDOUT : CHUB_EIO;
      }
    }
    long status = http_attempt_once(c, method, path, json, up, timeout, &a, err,
                                    sizeof err);
    res->attempts++;
    res->status = status;
    if (a.sha_part && !c->sha_part)
      http_part_learn(c);
    if (res->data) {
      json_decref(res->data);
      res->data = NULL;
    }
    if (a.aborted) {
      free(a.body);
      snprintf(res->message, sizeof res->message, "stopped");
      return CHUB_ETIMEDOUT;
    }
    if (status == 0) {
      snprintf(res->message, sizeof res->message, "no answer (%s)", err);
      rc = CHUB_ENET;
    } else if (status >= 200 && status < 300 && a.len == 0) {
      rc = CHUB_OK; /* e.g. 204: done, nothing to read */
      res->data = json_null();
    } else if (status >= 200 && status < 300) {
      rc = http_parse_envelope(a.body, a.len, &res->data, res->message,
                               sizeof res->message);
      if (rc != CHUB_OK)
        rc = CHUB_EPROTO;
    } else {
      rc = http_code_for_status(status);
      if (!a.body || http_parse_envelope(a.body, a.len, NULL, res->message,
                                         sizeof res->message) == CHUB_EPROTO)
        res->message[0] = '\0';
      if (!res->message[0])
        snprintf(res->message, sizeof res->message, "HTTP %ld", status);
    }
    free(a.body);
    if (rc == CHUB_OK || rc == CHUB_EPROTO || !http_retryable(status) ||
        attempt >= policy->retries)
      return rc;
    double wait = http_backoff(attempt, c->scale, &c->seed);
    if (status == 429 && a.retry_after >= 0)
      wait = a.retry_after;
    /* A wait that would end past the budget is not worth starting: the
     * data stays spooled and the next upload picks it up. */
    if (chub_now() - t0 + wait > budget)
      return rc;
    if (!http_sleep(c, wait))
      return CHUB_ETIMEDOUT;
  }
}

/* ------------------------------------------------- one-shot requests */

/* A command a person typed (chub login, pull, ...) and a best-effort send
 * (usage events) want one request, a clear answer and a prompt failure
 * when nobody answers: no retries, no spool, a policy of timeouts. File
 * downloads write straight to disk with Range; file uploads stream from
 * disk. */

typedef struct http_once_buf {
  char *data;
  size_t len;
} http_once_buf;

static size_t http_once_collect(char *p, size_t size, size_t n, void *user) {
  http_once_buf *b = user;
  size_t add = size * n;
  if (b->len + add > 64 * 1024 * 1024) /* an answer this big is not ours */
    return 0;
  char *grown = realloc(b->data, b->len + add + 1);
  if (!grown)
    return 0;
  memcpy(grown + b->len, p, add);
  b->data = grown;
  b->len += add;
  b->data[b->len] = '\0';
  return add;
}

const http_once_policy http_policy_command = {5000L, 30000L, NULL};

static int http_once_abort(void *user, curl_off_t a, curl_off_t b, curl_off_t c,
                           curl_off_t d) {
  const http_once_policy *p = user;
  (void)a, (void)b, (void)c, (void)d;
  return p->abort() ? 1 : 0;
}

/* Runs the prepared one-shot transfer, collecting the answer's body:
 * CHUB_OK with out->status and out->body (malloc'd) when any answer came,
 * CHUB_ENET with out->error when none did. */
static chub_code http_once_perform(CURL *curl, http_answer *out) {
  http_once_buf buf = {0};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_once_collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    free(buf.data);
    return CHUB_ENET;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
  out->body = buf.data ? buf.data : strdup("");
  return CHUB_OK;
}

chub_code http_once(const char *method, const char *url, const char *key,
                    const char *body, const http_once_policy *policy,
                    http_answer *out) {
  memset(out, 0, sizeof *out);
  CURL *curl = curl_easy_init();
  if (!curl) {
    snprintf(out->error, sizeof out->error, "cannot start libcurl");
    return CHUB_ENOMEM;
  }
  struct curl_slist *hdrs = NULL;
  char auth[200];
  if (key && *key) {
    snprintf(auth, sizeof auth, "x-api-key: %s", key);
    hdrs = curl_slist_append(hdrs, auth);
  }
  if (body)
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  http_curl_setup(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, policy->connect_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, policy->total_ms);
  if (policy->abort) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, http_once_abort);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)policy);
  }
  chub_code result = http_once_perform(curl, out);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  return result;
}

void http_answer_free(http_answer *a) {
  free(a->body);
  a->body = NULL;
}

const char *http_answer_message(const http_answer *a) {
  static char msg[512];
  json_t *doc = a->body ? json_loads(a->body, 0, NULL) : NULL;
  const char *m = json_string_value(json_object_get(doc, "message"));
  if (m && *m)
    snprintf(msg, sizeof msg, "%s", m);
  else
    snprintf(msg, sizeof msg, "the hub answered HTTP %ld", a->status);
  json_decref(doc);
  return msg;
}

/* ------------------------------------------------------------ downloads */

typedef struct http_once_dl {
  int fd;
  long long from;    /* the Range start asked for (0: none) */
  long long written; /* body bytes written so far */
  http_fetch *out;
  http_once_buf err; /* the body of an answer that is not the file */
  bool write_failed; /* pwrite failed: errno_saved says why */
  int errno_saved;
  bool range_wrong; /* a 206 that does not start where we asked */
  http_progress_fn progress;
  void *progress_user;
} http_once_dl;

/* Headers arrive once per response (a redirect has its own); only the last
 * response's status and headers describe the body that is written. */
static size_t http_once_dl_header(char *p, size_t size, size_t n, void *user) {
  http_once_dl *d = user;
  size_t len = size * n;
  char line[512];
  size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, p, l);
  line[l] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) {
    const char *sp = strchr(line, ' ');
    d->out->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    d->out->etag[0] = '\0';
    d->out->range_start = -1;
    d->out->size = -1;
    return len;
  }
  if (strncasecmp(line, "etag:", 5) == 0) {
    const char *v = line + 5;
    v += strspn(v, " \t");
    snprintf(d->out->etag, sizeof d->out->etag, "%s", v);
  } else if (strncasecmp(line, "content-range:", 14) == 0) {
    long long a, b, total;
    if (sscanf(line + 14, " bytes %lld-%lld/%lld", &a, &b, &total) == 3) {
      d->out->range_start = a;
      d->out->size = total;
    }
  } else if (strncasecmp(line, "content-length:", 15) == 0 &&
             d->out->status == 200) {
    d->out->size = strtoll(line + 15, NULL, 10);
  }
  return len;
}

static size_t http_once_dl_write(char *p, size_t size, size_t n, void *user) {
  http_once_dl *d = user;
  size_t len = size * n;
  long status = d->out->status;
  if (status != 200 && status != 206) {
    /* An error answer: keep its message for the person, never in the file. */
    return http_once_collect(p, size, n, &d->err);
  }
  if (d->written == 0 && d->out->body_start < 0) {
    if (status == 206 && d->out->range_start != d->from) {
      d->range_wrong = true;
      return 0;
    }
    /* A 200 is the whole file whatever was asked: it replaces the part. */
    d->out->body_start = status == 206 ? d->from : 0;
    if (ftruncate(d->fd, (off_t)d->out->body_start) != 0) {
      d->write_failed = true;
      d->errno_saved = errno;
      return 0;
    }
  }
  size_t done = 0;
  while (done < len) {
    ssize_t w = pwrite(d->fd, p + done, len - done,
                       (off_t)(d->out->body_start + d->written));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      d->write_failed = true;
      d->errno_saved = w < 0 ? errno : ENOSPC;
      return 0;
    }
    done += (size_t)w;
    d->written += w;
  }
  return len;
}

static int http_once_dl_progress(void *user, curl_off_t dltotal,
                                 curl_off_t dlnow, curl_off_t ultotal,
                                 curl_off_t ulnow) {
  (void)ultotal, (void)ulnow;
  http_once_dl *d = user;
  /* A resumed transfer counts what the part already held, so the bar shows
   * the whole file rather than restarting at zero. */
  long long base = d->out->status == 206 ? d->from : 0;
  if (d->progress && dltotal > 0)
    d->progress(base + (long long)dlnow, base + (long long)dltotal,
                d->progress_user);
  return 0;
}

chub_code http_download(const char *url, int fd, long long from,
                        http_progress_fn progress, void *user,
                        http_fetch *out) {
  memset(out, 0, sizeof *out);
  out->range_start = -1;
  out->size = -1;
  out->body_start = -1;
  CURL *curl = curl_easy_init();
  if (!curl) {
    snprintf(out->error, sizeof out->error, "cannot start libcurl");
    return CHUB_ENOMEM;
  }
  http_once_dl d = {.fd = fd,
                    .from = from,
                    .out = out,
                    .progress = progress,
                    .progress_user = user};
  char range[64];
  snprintf(range, sizeof range, "%lld-", from);
  http_curl_setup(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  /* No x-api-key, on purpose: the signed URL is the capability, and a key
   * must never travel to wherever a download URL (or its redirect) points. */
  if (from > 0)
    curl_easy_setopt(curl, CURLOPT_RANGE, range);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  /* Weights can take hours on a slow link, so there is no overall limit;
   * a transfer that stalls for a minute is given up instead (the part
   * stays, and the next pull resumes it). */
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, http_once_dl_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &d);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_once_dl_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, http_once_dl_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d);
  CURLcode rc = curl_easy_perform(curl);
  chub_code result = CHUB_OK;
  out->written = d.written;
  if (d.range_wrong) {
    out->range_wrong = true; /* an answer, just not the bytes asked for */
  } else if (d.write_failed) {
    snprintf(out->error, sizeof out->error, "cannot write the file: %s",
             strerror(d.errno_saved));
    result = CHUB_EIO;
  } else if (rc != CURLE_OK) {
    snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    result = CHUB_ENET;
  }
  if (out->status != 200 && out->status != 206) {
    http_answer a = {.status = out->status, .body = d.err.data};
    snprintf(out->message, sizeof out->message, "%s", http_answer_message(&a));
  }
  free(d.err.data);
  curl_easy_cleanup(curl);
  return result;
}

/* -------------------------------------------------------------- uploads */

typedef struct http_once_up {
  http_progress_fn progress;
  void *user;
} http_once_up;

static int http_once_up_progress(void *user, curl_off_t dltotal,
                                 curl_off_t dlnow, curl_off_t ultotal,
                                 curl_off_t ulnow) {
  http_once_up *u = user;
  (void)dltotal;
  (void)dlnow;
  if (u->progress && ultotal > 0)
    u->progress((long long)ulnow, (long long)ultotal, u->user);
  return 0;
}

chub_code http_upload_file(const char *url, const char *key, const char *path,
                           const char *filename, const char *sha256,
                           http_progress_fn progress, void *user,
                           http_answer *out) {
  memset(out, 0, sizeof *out);
  CURL *curl = curl_easy_init();
  curl_mime *mime = curl ? curl_mime_init(curl) : NULL;
  if (!mime) {
    snprintf(out->error, sizeof out->error, "cannot start libcurl");
    curl_easy_cleanup(curl);
    return CHUB_ENOMEM;
  }
  /* curl reads the file as it sends it: memory stays flat. */
  curl_mimepart *part = curl_mime_addpart(mime);
  curl_mime_name(part, filename);
  curl_mime_filename(part, filename);
  curl_mime_type(part, "application/zip");
  if (curl_mime_filedata(part, path) != CURLE_OK) {
    snprintf(out->error, sizeof out->error, "cannot read %s", path);
    curl_mime_free(mime);
    curl_easy_cleanup(curl);
    return CHUB_EIO;
  }
  struct curl_slist *hdrs = NULL;
  char line[200];
  snprintf(line, sizeof line, "x-api-key: %s", key);
  hdrs = curl_slist_append(hdrs, line);
  snprintf(line, sizeof line, "x-chub-sha256: %s", sha256);
  hdrs = curl_slist_append(hdrs, line);
  http_once_up up = {progress, user};
  http_curl_setup(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  /* No overall limit for a large file; give up after a minute stalled. */
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, http_once_up_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &up);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, progress ? 0L : 1L);
  chub_code result = http_once_perform(curl, out);
  curl_slist_free_all(hdrs);
  curl_mime_free(mime);
  curl_easy_cleanup(curl);
  return result;
}

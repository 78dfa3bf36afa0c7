/*
 * http.c - the hub protocol's HTTP client: requests, envelopes, retries and
 * streamed checkpoint uploads, on libcurl.
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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
} http_attempt;

/* The file part's reader state: the descriptor and where we are in it. */
typedef struct http_reader {
  int fd;
  long long size;
  long long off;
} http_reader;

/* curl_global_init is not safe to race; run it once per process. */
static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static void http_global_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_curl_setup(void *curl) {
  pthread_once(&http_once, http_global_init);
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

http_client *http_client_new(const char *api_root, const char *api_key) {
  pthread_once(&http_once, http_global_init);
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

static size_t http_on_header(char *ptr, size_t size, size_t nmemb, void *user) {
  http_attempt *a = user;
  size_t n = size * nmemb;
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
    r->off += n;
    return (size_t)n;
  }
}

static int http_seek_part(void *arg, curl_off_t offset, int origin) {
  http_reader *r = arg;
  if (origin != SEEK_SET || offset < 0 || offset > r->size)
    return CURL_SEEKFUNC_CANTSEEK;
  r->off = (long long)offset;
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
  curl_mime_data_cb(p, (curl_off_t)up->size, http_read_part, http_seek_part,
                    NULL, reader);
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
  if (up && up->sha256) {
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
  http_reader reader;
  if (up) {
    mime = http_build_mime(curl, up, &reader);
    curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
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
    long status = http_attempt_once(c, method, path, json, up, timeout, &a, err,
                                    sizeof err);
    res->attempts++;
    res->status = status;
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

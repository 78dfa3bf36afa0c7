/*
 * cli_http.c - the CLI's one-shot requests to the hub (login, models) and
 * its file downloads (pull): every libcurl call of the `chub` program.
 *
 * The library's sender is built for a long run with retries and a spool; a
 * command a person typed wants one request, a clear answer, and a prompt
 * failure when nobody answers. So this is plain libcurl with short
 * timeouts and no retries.
 */
#include "cli.h"
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct cli_http_buf {
  char *data;
  size_t len;
} cli_http_buf;

static size_t cli_http_collect(char *p, size_t size, size_t n, void *user) {
  cli_http_buf *b = user;
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

chub_code cli_http_request(const char *method, const char *url, const char *key,
                           const char *body, cli_http_answer *out) {
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
  cli_http_buf buf = {0};
  http_curl_setup(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli_http_collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
  CURLcode rc = curl_easy_perform(curl);
  chub_code result = CHUB_OK;
  if (rc != CURLE_OK) {
    snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    free(buf.data);
    result = CHUB_ENET;
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = buf.data ? buf.data : strdup("");
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  return result;
}

void cli_http_answer_free(cli_http_answer *a) {
  free(a->body);
  a->body = NULL;
}

const char *cli_http_message(const cli_http_answer *a) {
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

typedef struct cli_http_dl {
  int fd;
  long long from;    /* the Range start asked for (0: none) */
  long long written; /* body bytes written so far */
  cli_http_fetch *out;
  cli_http_buf err;  /* the body of an answer that is not the file */
  bool write_failed; /* pwrite failed: errno_saved says why */
  int errno_saved;
  bool range_wrong; /* a 206 that does not start where we asked */
  cli_http_progress_fn progress;
  void *progress_user;
} cli_http_dl;

/* Headers arrive once per response (a redirect has its own); only the last
 * response's status and headers describe the body that is written. */
static size_t cli_http_dl_header(char *p, size_t size, size_t n, void *user) {
  cli_http_dl *d = user;
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

static size_t cli_http_dl_write(char *p, size_t size, size_t n, void *user) {
  cli_http_dl *d = user;
  size_t len = size * n;
  long status = d->out->status;
  if (status != 200 && status != 206) {
    /* An error answer: keep its message for the person, never in the file. */
    return cli_http_collect(p, size, n, &d->err);
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

static int cli_http_dl_progress(void *user, curl_off_t dltotal,
                                curl_off_t dlnow, curl_off_t ultotal,
                                curl_off_t ulnow) {
  (void)ultotal, (void)ulnow;
  cli_http_dl *d = user;
  /* A resumed transfer counts what the part already held, so the bar shows
   * the whole file rather than restarting at zero. */
  long long base = d->out->status == 206 ? d->from : 0;
  if (d->progress && dltotal > 0)
    d->progress(base + (long long)dlnow, base + (long long)dltotal,
                d->progress_user);
  return 0;
}

chub_code cli_http_download(const char *url, int fd, long long from,
                            cli_http_progress_fn progress, void *user,
                            cli_http_fetch *out) {
  memset(out, 0, sizeof *out);
  out->range_start = -1;
  out->size = -1;
  out->body_start = -1;
  CURL *curl = curl_easy_init();
  if (!curl) {
    snprintf(out->error, sizeof out->error, "cannot start libcurl");
    return CHUB_ENOMEM;
  }
  cli_http_dl d = {.fd = fd,
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
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, cli_http_dl_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &d);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli_http_dl_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, cli_http_dl_progress);
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
    cli_http_answer a = {.status = out->status, .body = d.err.data};
    snprintf(out->message, sizeof out->message, "%s", cli_http_message(&a));
  }
  free(d.err.data);
  curl_easy_cleanup(curl);
  return result;
}

/* -------------------------------------------------------------- uploads */

typedef struct cli_http_up {
  cli_http_progress_fn progress;
  void *user;
} cli_http_up;

static int cli_http_up_progress(void *user, curl_off_t dltotal,
                                curl_off_t dlnow, curl_off_t ultotal,
                                curl_off_t ulnow) {
  cli_http_up *u = user;
  (void)dltotal;
  (void)dlnow;
  if (u->progress && ultotal > 0)
    u->progress((long long)ulnow, (long long)ultotal, u->user);
  return 0;
}

chub_code cli_http_upload_file(const char *url, const char *key,
                               const char *path, const char *filename,
                               const char *sha256,
                               cli_http_progress_fn progress, void *user,
                               cli_http_answer *out) {
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
  cli_http_buf buf = {0};
  cli_http_up up = {progress, user};
  http_curl_setup(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  /* No overall limit for a large file; give up after a minute stalled. */
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli_http_collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, cli_http_up_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &up);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, progress ? 0L : 1L);
  CURLcode rc = curl_easy_perform(curl);
  chub_code result = CHUB_OK;
  if (rc != CURLE_OK) {
    snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    free(buf.data);
    result = CHUB_ENET;
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = buf.data ? buf.data : strdup("");
  }
  curl_slist_free_all(hdrs);
  curl_mime_free(mime);
  curl_easy_cleanup(curl);
  return result;
}

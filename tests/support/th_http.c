/*
 * th_http.c - HTTP for tests: one libcurl easy handle per request.
 *
 * A fresh handle per call keeps requests independent (no reused
 * connection hides a server that closes early) and the helpers free of
 * state. Bodies are collected in memory: test answers are small, and the
 * big-file cases stream from a file through curl's mime API instead.
 */
#include "th.h"

#include <curl/curl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct th_http_buf {
  char *data;
  size_t len;
  size_t cap;
} th_http_buf;

static size_t th_http_collect(char *ptr, size_t size, size_t nmemb,
                              void *userdata) {
  th_http_buf *b = userdata;
  size_t n = size * nmemb;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
      return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* Keeps only the last response's headers: after a 100 Continue or a
 * redirect curl reports every block, and the test wants the final one. */
static size_t th_http_header(char *ptr, size_t size, size_t nmemb,
                             void *userdata) {
  th_http_buf *b = userdata;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
    b->len = 0;
  return th_http_collect(ptr, size, nmemb, userdata);
}

static char *th_http_take(th_http_buf *b) {
  if (!b->data) {
    b->data = malloc(1);
    if (b->data)
      b->data[0] = '\0';
  }
  char *d = b->data;
  b->data = NULL;
  return d;
}

void th_response_free(th_response *r) {
  if (!r)
    return;
  free(r->body);
  free(r->headers);
  r->body = NULL;
  r->headers = NULL;
  r->body_len = 0;
  r->status = 0;
}

char *th_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

void th_sha256_hex(const void *data, size_t len, char hex[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data, len, md);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Runs a prepared handle and fills out. */
static int th_http_perform(CURL *c, const char *method, const char *url,
                           struct curl_slist *hdrs, th_response *out) {
  th_http_buf body = {0}, head = {0};
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_http_collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, th_http_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  /* Send the path exactly as written: tests probe "../" on purpose. */
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  CURLcode rc = curl_easy_perform(c);
  memset(out, 0, sizeof *out);
  if (rc != CURLE_OK) {
    fprintf(stderr, "th: %s %s: %s\n", method, url,
            err[0] ? err : curl_easy_strerror(rc));
    free(body.data);
    free(head.data);
    return -1;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
  out->body_len = body.len;
  out->body = th_http_take(&body);
  out->headers = th_http_take(&head);
  return 0;
}

int th_request_hdrs(const char *method, const char *url,
                    const char *const headers[], const void *body, size_t len,
                    th_response *out) {
  memset(out, 0, sizeof *out);
  CURL *c = curl_easy_init();
  if (!c)
    return -1;
  struct curl_slist *hdrs = NULL;
  for (int i = 0; headers && headers[i]; i++)
    hdrs = curl_slist_append(hdrs, headers[i]);
  /* curl would otherwise add "Expect: 100-continue" for big bodies and
   * a default form content type for POSTs; tests set what they mean. */
  hdrs = curl_slist_append(hdrs, "Expect:");
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  int rc = th_http_perform(c, method, url, hdrs, out);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return rc;
}

int th_request(const char *method, const char *url, const char *key,
               const char *content_type, const void *body, size_t len,
               long *status, char **resp_body, char **resp_headers) {
  char *key_h = key ? th_fmt("x-api-key: %s", key) : NULL;
  /* "Content-Type:" with no value stops curl adding its form default. */
  char *ct_h = content_type ? th_fmt("Content-Type: %s", content_type)
                            : th_fmt("Content-Type:");
  const char *hdrs[3] = {ct_h, key_h, NULL};
  if (!key_h)
    hdrs[1] = NULL;
  th_response r;
  int rc = th_request_hdrs(method, url, hdrs, body, len, &r);
  free(key_h);
  free(ct_h);
  if (status)
    *status = rc == 0 ? r.status : 0;
  if (resp_body) {
    *resp_body = r.body;
    r.body = NULL;
  }
  if (resp_headers) {
    *resp_headers = r.headers;
    r.headers = NULL;
  }
  if (rc == 0)
    th_response_free(&r);
  return rc;
}

int th_json_request(const char *method, const char *url, const char *key,
                    const char *json, th_response *out) {
  char *key_h = key ? th_fmt("x-api-key: %s", key) : NULL;
  const char *hdrs[3] = {"Content-Type: application/json", key_h, NULL};
  if (!json)
    hdrs[0] = "Content-Type:";
  int rc =
      th_request_hdrs(method, url, hdrs, json, json ? strlen(json) : 0, out);
  free(key_h);
  return rc;
}

int th_upload(const char *url, const char *key, const char *const fields[],
              const char *file_field, const char *file_name, const void *data,
              size_t len, const char *path, const char *const headers[],
              th_response *out) {
  memset(out, 0, sizeof *out);
  CURL *c = curl_easy_init();
  if (!c)
    return -1;
  curl_mime *mime = curl_mime_init(c);
  for (int i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, fields[i]);
    curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
  }
  if (file_field) {
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, file_field);
    if (data)
      curl_mime_data(part, data, len);
    else if (path && curl_mime_filedata(part, path) != CURLE_OK)
      fprintf(stderr, "th: cannot attach %s\n", path);
    curl_mime_filename(part, file_name ? file_name : file_field);
    curl_mime_type(part, "application/octet-stream");
  }
  curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
  struct curl_slist *hdrs = NULL;
  char *key_h = key ? th_fmt("x-api-key: %s", key) : NULL;
  if (key_h)
    hdrs = curl_slist_append(hdrs, key_h);
  for (int i = 0; headers && headers[i]; i++)
    hdrs = curl_slist_append(hdrs, headers[i]);
  hdrs = curl_slist_append(hdrs, "Expect:");
  int rc = th_http_perform(c, "POST", url, hdrs, out);
  curl_slist_free_all(hdrs);
  curl_mime_free(mime);
  curl_easy_cleanup(c);
  free(key_h);
  return rc;
}

char *th_header(const char *headers, const char *name) {
  if (!headers)
    return NULL;
  size_t nlen = strlen(name);
  const char *line = headers;
  while (*line) {
    const char *end = strstr(line, "\r\n");
    if (!end)
      end = line + strlen(line);
    if ((size_t)(end - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
        line[nlen] == ':') {
      const char *v = line + nlen + 1;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      const char *ve = end;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      char *out = malloc((size_t)(ve - v) + 1);
      if (!out)
        return NULL;
      memcpy(out, v, (size_t)(ve - v));
      out[ve - v] = '\0';
      return out;
    }
    line = *end ? end + 2 : end;
  }
  return NULL;
}

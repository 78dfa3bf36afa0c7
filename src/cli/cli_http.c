/*
 * cli_http.c - the CLI's one-shot requests to the hub (login, models).
 *
 * The library's sender is built for a long run with retries and a spool; a
 * command a person typed wants one request, a clear answer, and a prompt
 * failure when nobody answers. So this is plain libcurl with short
 * timeouts and no retries.
 */
#include "cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
  curl_global_init(CURL_GLOBAL_DEFAULT);
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
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "chub/" CHUB_VERSION);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
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

/*
 * reply.c - builds the answers handlers give: the JSON envelope of
 * hub-api.md ({"success", "message", "data"}) and extra headers.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "blobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Only the fields that say what is set: the header slots (a few KiB) are
 * read up to nheaders only, and clearing them cost a memset of the whole
 * table several times per request. */
void reply_init(chubd_reply *rep) {
  rep->status = 0;
  rep->body = NULL;
  rep->len = 0;
  rep->static_body = NULL;
  rep->ctype = NULL;
  rep->fd = -1;
  rep->off = 0;
  rep->flen = 0;
  rep->stream = NULL;
  rep->stream_cls = NULL;
  rep->stream_free = NULL;
  rep->nheaders = 0;
}

void reply_free(chubd_reply *rep) {
  free(rep->body);
  if (rep->fd >= 0)
    close(rep->fd);
  if (rep->stream_free)
    rep->stream_free(rep->stream_cls);
  reply_init(rep);
}

void reply_header(chubd_reply *rep, const char *name, const char *fmt, ...) {
  if (rep->nheaders == CHUBD_REPLY_HEADERS)
    return;
  va_list ap;
  va_start(ap, fmt);
  snprintf(rep->headers[rep->nheaders].name,
           sizeof rep->headers[rep->nheaders].name, "%s", name);
  vsnprintf(rep->headers[rep->nheaders].value,
            sizeof rep->headers[rep->nheaders].value, fmt, ap);
  va_end(ap);
  rep->nheaders++;
}

static void reply_set_json(chubd_reply *rep, unsigned status, json_t *env) {
  free(rep->body);
  rep->body = NULL;
  rep->len = 0;
  rep->status = status;
  rep->ctype = "application/json";
  char *text =
      env ? json_dumps(env, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
  json_decref(env);
  if (!text) {
    /* Out of memory while answering: still say so in the envelope. */
    static const char oom[] =
        "{\"success\":false,\"message\":\"server out of memory\"}";
    rep->status = 503;
    rep->static_body = oom;
    rep->len = sizeof oom - 1;
    return;
  }
  rep->body = text;
  rep->len = strlen(text);
}

void reply_data(chubd_reply *rep, unsigned status, json_t *data,
                const char *message) {
  json_t *env = json_object();
  if (env) {
    json_object_set_new(env, "success", json_true());
    json_object_set_new(env, "message", json_string(message ? message : ""));
    json_object_set_new(env, "data", data ? data : json_null());
  } else {
    json_decref(data);
  }
  reply_set_json(rep, status, env);
}

void reply_data_text(chubd_reply *rep, unsigned status, const char *data_json,
                     const char *message) {
  /* The same bytes reply_data gives, without building and dumping a tree;
   * message is a fixed string of ours that needs no escaping. */
  static const char head[] = "{\"success\":true,\"message\":\"";
  static const char mid[] = "\",\"data\":";
  size_t lm = strlen(message), ld = strlen(data_json);
  size_t n = sizeof head - 1 + lm + sizeof mid - 1 + ld + 1;
  free(rep->body);
  rep->status = status;
  rep->ctype = "application/json";
  rep->len = 0;
  rep->body = malloc(n + 1);
  if (!rep->body) {
    static const char oom[] =
        "{\"success\":false,\"message\":\"server out of memory\"}";
    rep->status = 503;
    rep->static_body = oom;
    rep->len = sizeof oom - 1;
    return;
  }
  char *o = rep->body; /* what the format says, without snprintf's cost */
  memcpy(o, head, sizeof head - 1);
  o += sizeof head - 1;
  memcpy(o, message, lm);
  o += lm;
  memcpy(o, mid, sizeof mid - 1);
  o += sizeof mid - 1;
  memcpy(o, data_json, ld);
  o += ld;
  *o++ = '}';
  *o = '\0';
  rep->static_body = NULL;
  rep->len = n;
}

void reply_error(chubd_reply *rep, unsigned status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *env = json_object();
  if (env) {
    json_object_set_new(env, "success", json_false());
    /* json_string refuses invalid UTF-8; a message quoting client bytes
     * falls back to a lossless-enough escape. */
    json_t *m = json_string(msg);
    json_object_set_new(env, "message",
                        m ? m
                          : json_string("request refused (the detail "
                                        "held invalid UTF-8)"));
  }
  reply_set_json(rep, status, env);
}

void reply_store(chubd_reply *rep, store_rc rc, const char *what) {
  switch (rc) {
  case STORE_OK:
    return;
  case STORE_NOTFOUND:
    reply_error(rep, 404, "%s not found", what);
    return;
  case STORE_CONFLICT:
    reply_error(rep, 409, "%s: conflict", what);
    return;
  case STORE_BUSY:
    reply_header(rep, "Retry-After", "1");
    reply_error(rep, 503, "database busy; retry shortly");
    return;
  case STORE_FULL:
    reply_error(rep, 507,
                "the server's disk is full: %s not stored; retry once the "
                "operator has freed space",
                what);
    return;
  case STORE_LIMIT:
    reply_error(rep, 429, "%s: limit reached", what);
    return;
  case STORE_ERROR:
    reply_error(rep, 500, "database error (see the chubd log)");
    return;
  }
}

static int reply_etag_matches(const char *inm, const char *sha) {
  if (!inm)
    return 0;
  if (strcmp(inm, "*") == 0)
    return 1;
  return strstr(inm, sha) != NULL;
}

void reply_blob(const chubd_request *req, chubd_reply *rep, const char *sha256,
                const char *filename) {
  char path[4200];
  blobs_path(req->srv->cfg.blobs_dir, sha256, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    if (fd >= 0)
      close(fd);
    fprintf(stderr, "chubd: stored file %s is missing: %s\n", path,
            strerror(errno));
    reply_error(rep, 404, "the file %s is missing on the server", filename);
    return;
  }
  uint64_t size = (uint64_t)sb.st_size;
  reply_header(rep, "ETag", "\"%s\"", sha256);
  reply_header(rep, "Accept-Ranges", "bytes");
  reply_header(rep, "Content-Disposition", "attachment; filename=\"%s\"",
               filename);
  if (reply_etag_matches(httpd_header(req, "if-none-match"), sha256)) {
    close(fd);
    rep->status = 304;
    return;
  }
  uint64_t first = 0, last = size ? size - 1 : 0;
  int range = validate_range(httpd_header(req, "range"), size, &first, &last);
  if (range < 0) {
    close(fd);
    reply_header(rep, "Content-Range", "bytes */%llu",
                 (unsigned long long)size);
    reply_error(rep, 416, "range not satisfiable for %llu bytes",
                (unsigned long long)size);
    return;
  }
  rep->status = range ? 206 : 200;
  if (range)
    reply_header(rep, "Content-Range", "bytes %llu-%llu/%llu",
                 (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)size);
  rep->ctype = "application/octet-stream";
  rep->fd = fd;
  rep->off = first;
  rep->flen = range ? last - first + 1 : size;
}

void reply_error_field(chubd_reply *rep) {
  if (rep->status < 400 || !rep->body)
    return;
  json_t *o = json_loadb(rep->body, rep->len, 0, NULL);
  json_t *msg = json_object_get(o, "message");
  if (json_is_string(msg) && !json_object_get(o, "error")) {
    json_object_set(o, "error", msg);
    reply_set_json(rep, rep->status, json_incref(o));
  }
  json_decref(o);
}

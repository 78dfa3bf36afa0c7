/*
 * metrics.c - per-epoch metrics: upload (POST /v1/models/{id} with type
 * metrics) and read-back (GET .../metrics).
 *
 * An upload is checked whole before anything is stored, then stored in one
 * transaction, so a request is all-or-nothing and re-sending it replaces
 * the same epochs: the idempotence a client relies on to retry after a
 * crash without duplicates. The store answers an upload later, from its
 * committer thread (see store_sqlite.c), so the request thread can serve
 * other connections while the upload waits for its transaction; httpd.c
 * suspends the connection meanwhile and answers after the commit. Metrics are
 * kept re-encoded compactly and decoded into objects on the way out.
 */
#include "server.h"

#include "metrics_fast.h"
#include "points.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int metrics_read(const char *body, size_t len, store_epoch **e, size_t *n,
                 char err[VALIDATE_ERR]) {
  json_t *v;
  /* The usual body in one pass; anything else, and every error, through
   * jansson. */
  if (metrics_fast(body, len, e, n))
    return 0;
  if (validate_json_object(body, len, &v, err) < 0)
    return -1;
  int rc = validate_metrics(v, e, n, err);
  json_decref(v);
  return rc;
}

int metrics_post_check(chubd_request *req, chubd_reply *rep, store_epoch **e,
                       size_t *n) {
  char err[VALIDATE_ERR];
  if (metrics_read(req->body, req->body_len, e, n, err) < 0) {
    reply_error(rep, 400, "%s", err);
    return -1;
  }
  return 0;
}

store_rc metrics_post_queue(chubd_request *req, const store_epoch *e, size_t n,
                            store_done_cb done, void *ud) {
  /* The model and owner check happens inside the write transaction. */
  store *st = req->srv->st;
  return st->ops->metrics_put_async(st, req->r.id, req->owner, e, n,
                                    util_now_ms(), done, ud);
}

void metrics_post_answer(chubd_request *req, chubd_reply *rep, store_rc rc,
                         size_t n) {
  if (rc == STORE_NOTFOUND) {
    reply_error(rep, 404, "model %s not found", req->r.id);
    return;
  }
  if (rc != STORE_OK) {
    reply_store(rep, rc, "model");
    return;
  }
  char data[48] = "{\"epochs\":";
  size_t k = strlen(data);
  k += util_u64_text(n, data + k);
  memcpy(data + k, "}", 2);
  reply_data_text(rep, 200, data, "metrics stored");
}

/* The read-back is streamed: the envelope, then pages of rows fetched as
 * the client takes them, so that memory stays flat however long the
 * history and however many read it at once. Rows are the stored JSON as
 * it is (checked when it was uploaded), not decoded and encoded again.
 * With ?points=N the rows pass through a downsampler (points.h) on their
 * way: pages are larger then, as few of their rows are given out. */
#define METRICS_PAGE_ROWS 512
#define METRICS_POINTS_PAGE_ROWS 2048
#define METRICS_LIMIT_MAX 10000

typedef struct metrics_stream {
  chubd_server *srv;
  char id[UTIL_ID_LEN + 1];
  int64_t after; /* the last epoch read */
  int64_t left;  /* rows the client may still get (its limit) */
  int rows;      /* rows sent so far */
  int got;       /* rows read by the current refill */
  int done;
  points *pts;    /* ?points=N, or NULL */
  int pts_done;   /* the downsampler has its last row */
  int pts_failed; /* out of memory in the downsampler */
  char *buf;
  size_t len, off, cap;
} metrics_stream;

static int metrics_append(metrics_stream *ms, const char *s, size_t n) {
  if (ms->len + n > ms->cap) {
    size_t ncap = ms->cap ? ms->cap : 64 * 1024;
    while (ncap < ms->len + n)
      ncap *= 2;
    char *grown = realloc(ms->buf, ncap);
    if (!grown)
      return -1;
    ms->buf = grown;
    ms->cap = ncap;
  }
  memcpy(ms->buf + ms->len, s, n);
  ms->len += n;
  return 0;
}

/* One row of the answer: {"epoch":E,"metrics":JSON}. */
static int metrics_put_row(void *ud, int64_t epoch, const char *json,
                           size_t len) {
  metrics_stream *ms = ud;
  char head[64];
  int n = snprintf(head, sizeof head,
                   "%s{\"epoch\":%lld,\"metrics\":", ms->rows ? "," : "",
                   (long long)epoch);
  if (metrics_append(ms, head, (size_t)n) < 0 ||
      metrics_append(ms, json, len) < 0 || metrics_append(ms, "}", 1) < 0)
    return 1;
  ms->rows++;
  return 0;
}

static int metrics_row(void *ud, int64_t epoch, const char *json) {
  metrics_stream *ms = ud;
  ms->after = epoch;
  ms->got++;
  if (!ms->pts) {
    ms->left--;
    return metrics_put_row(ms, epoch, json, strlen(json));
  }
  if (ms->pts_done)
    return 0; /* past the last epoch: the rest of this page is not used */
  int r = points_row(ms->pts, epoch, json);
  if (r < 0) {
    ms->pts_failed = 1;
    return 1;
  }
  ms->pts_done = r > 0;
  return 0;
}

/* Fills the buffer with the next page; -1 when the store failed. */
static int metrics_refill(metrics_stream *ms) {
  ms->len = ms->off = 0;
  int page = ms->pts ? METRICS_POINTS_PAGE_ROWS : METRICS_PAGE_ROWS;
  int want = ms->left < page ? (int)ms->left : page;
  ms->got = 0;
  if (want > 0) {
    store *st = ms->srv->st;
    if (st->ops->metrics_get(st, ms->id, ms->after, want, metrics_row, ms) !=
        STORE_OK)
      return -1;
  }
  if (ms->got < want || ms->left == 0 || ms->pts_done) {
    ms->done = 1;
    if (ms->pts && !ms->pts_done && points_finish(ms->pts) < 0)
      return -1;
    if (metrics_append(ms, "]}", 2) < 0)
      return -1;
  }
  return 0;
}

static ssize_t metrics_stream_read(void *cls, uint64_t pos, char *out,
                                   size_t max) {
  metrics_stream *ms = cls;
  (void)pos;
  while (ms->off == ms->len) {
    if (ms->done)
      return MHD_CONTENT_READER_END_OF_STREAM;
    if (metrics_refill(ms) < 0)
      return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  size_t n = ms->len - ms->off < max ? ms->len - ms->off : max;
  memcpy(out, ms->buf + ms->off, n);
  ms->off += n;
  return (ssize_t)n;
}

static void metrics_stream_free(void *cls) {
  metrics_stream *ms = cls;
  if (!ms)
    return;
  points_free(ms->pts);
  free(ms->buf);
  free(ms);
}

/* ?after=EPOCH (-1 or absent: from the first) and ?limit=N; 0, or a 400 in
 * rep. */
static int metrics_range(chubd_request *req, chubd_reply *rep, int64_t *after,
                         int64_t *limit) {
  const char *a = httpd_query(req, "after");
  const char *l = httpd_query(req, "limit");
  long long v;
  *after = -1;
  *limit = INT64_MAX;
  if (a && strcmp(a, "-1") != 0) {
    if (validate_uint(a, 1000000000LL, &v) < 0) {
      reply_error(rep, 400, "query field \"after\" must be an epoch number");
      return -1;
    }
    *after = v;
  }
  if (l) {
    if (validate_uint(l, METRICS_LIMIT_MAX, &v) < 0 || v < 1) {
      reply_error(rep, 400,
                  "query field \"limit\" must be an integer from 1 to %d",
                  METRICS_LIMIT_MAX);
      return -1;
    }
    *limit = v;
  }
  return 0;
}

/* ?points=N: 0 for none, N, or -1 with a 400 in rep. */
static int metrics_points(chubd_request *req, chubd_reply *rep) {
  const char *q = httpd_query(req, "points");
  long long v;
  if (!q)
    return 0;
  if (validate_uint(q, POINTS_MAX, &v) < 0 || v < POINTS_MIN) {
    reply_error(rep, 400,
                "query field \"points\" must be an integer from %d to %d",
                POINTS_MIN, POINTS_MAX);
    return -1;
  }
  if (httpd_query(req, "limit")) {
    reply_error(rep, 400,
                "query field \"points\" cannot be combined with \"limit\"");
    return -1;
  }
  return (int)v;
}

/* The downsampler of a ?points read: up to the model's last epoch now
 * (rows stored later wait for the next read); 0, or -1 with rep filled. */
static int metrics_points_start(chubd_request *req, chubd_reply *rep,
                                metrics_stream *ms, int n, int64_t after) {
  store_model m;
  if (models_lookup(req, rep, &m) < 0)
    return -1;
  int64_t rows = after < 0 ? m.metrics_count : INT64_MAX;
  ms->pts = points_new(n, m.last_epoch, rows, metrics_put_row, ms);
  ms->pts_done = m.last_epoch < 0 || m.last_epoch <= after;
  store_model_free(&m);
  if (!ms->pts) {
    reply_error(rep, 503, "server out of memory");
    return -1;
  }
  return 0;
}

void metrics_get(chubd_request *req, chubd_reply *rep) {
  int64_t after, limit;
  int n;
  if (metrics_range(req, rep, &after, &limit) < 0 ||
      (n = metrics_points(req, rep)) < 0 ||
      (n == 0 && models_check(req, rep) < 0))
    return;
  metrics_stream *ms = calloc(1, sizeof *ms);
  static const char head[] = "{\"success\":true,\"message\":\"\",\"data\":[";
  if (!ms || metrics_append(ms, head, sizeof head - 1) < 0) {
    metrics_stream_free(ms);
    reply_error(rep, 503, "server out of memory");
    return;
  }
  if (n > 0 && metrics_points_start(req, rep, ms, n, after) < 0) {
    metrics_stream_free(ms);
    return;
  }
  ms->srv = req->srv;
  memcpy(ms->id, req->r.id, sizeof ms->id);
  ms->after = after;
  ms->left = limit;
  rep->status = 200;
  rep->ctype = "application/json";
  rep->stream = metrics_stream_read;
  rep->stream_cls = ms;
  rep->stream_free = metrics_stream_free;
}

/*
 * testsrv.h - a small scripted HTTP server for libchub's protocol tests.
 *
 * It stands in for a hub that misbehaves on purpose: it listens on
 * 127.0.0.1 (port 0), answers one connection at a time on its own thread,
 * records every request it read (method, path, key, x-chub-sha256, the
 * body's length and SHA-256, and its first bytes), and answers either a
 * scripted reply (a status such as 408/429/500/502/504, a Retry-After, a
 * delay, or a dropped connection) or the protocol's normal answer. It is a
 * fault injector for testing the client's retries, not a model of chubd.
 */
#ifndef TESTSRV_H
#define TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

#define TESTSRV_MODEL_ID "abcdefghij0123456789"

typedef struct testsrv testsrv;

/* One scripted answer. status 0 means "answer normally" (after delay_ms). */
typedef struct testsrv_reply {
  int status;
  const char *body; /* NULL: an envelope with success = status < 300 */
  int retry_after;  /* >= 0: send Retry-After with this many seconds */
  int delay_ms;     /* wait before answering (or dropping) */
  bool drop;        /* close the connection without any answer */
} testsrv_reply;

/* A recorded request; strings are owned by the copy (testsrv_request_clear). */
typedef struct testsrv_request {
  char method[8];
  char path[512];
  char api_key[160];
  char sha256_header[80];
  char *body;         /* the first bytes of the body (<= 4 MiB), NUL-ended */
  size_t body_stored; /* how many of them */
  size_t body_len;    /* the whole body's length */
  char body_sha256[65];
} testsrv_request;

testsrv *testsrv_start(void);
void testsrv_stop(testsrv *s);
int testsrv_port(const testsrv *s);
/* "http://127.0.0.1:PORT" */
const char *testsrv_url(const testsrv *s);

/* Queues `r` for the next request whose "METHOD PATH" starts with `route`
 * (e.g. "POST /v1/models/" + id). Scripted replies are used in order. */
void testsrv_script(testsrv *s, const char *route, testsrv_reply r);

/* Forgets every scripted reply not used yet. */
void testsrv_clear_script(testsrv *s);

/* The data object the server answers to GET /v1/models/{id} (JSON text). */
void testsrv_set_model(testsrv *s, const char *model_json);

/* How many recorded requests match `route` exactly ("METHOD PATH"). */
size_t testsrv_count(testsrv *s, const char *route);

/* Waits until testsrv_count(route) >= n or `timeout_s` passes. */
bool testsrv_wait(testsrv *s, const char *route, size_t n, double timeout_s);

/* Copies the i-th request matching `route`; false when there is none. */
bool testsrv_get(testsrv *s, const char *route, size_t i, testsrv_request *out);
void testsrv_request_clear(testsrv_request *r);

/* The value of multipart part `name` in a recorded body (not NUL-ended),
 * or NULL; *len receives its length. */
const char *testsrv_part(const testsrv_request *r, const char *name,
                         size_t *len);

#endif

/*
 * fakehub.h - a small HTTP/1.1 hub on 127.0.0.1 for tests of chub's
 * clients (libchub's sender, usage events, the `chub` program).
 *
 * It listens on a free loopback port, answers one connection at a time on
 * its own thread (Connection: close on every answer) and records every
 * request it read whole: method, path, raw headers, x-api-key,
 * x-chub-sha256, the body's first bytes, its length and its SHA-256. A
 * request that never arrived whole is not recorded and gets no answer.
 *
 * Each request is answered, in this order of precedence, by
 *   - a scripted reply queued for its route (fakehub_script): a status such
 *     as 408/429/500/502/504 with an optional body and Retry-After, a delay,
 *     or a dropped connection - a fault injector for the client's retries;
 *   - the fixed answer, when one is set (fakehub_answer_all): the same
 *     status and body for every request, as "a server that answers X";
 *   - otherwise the protocol's normal answer for model FAKEHUB_MODEL_ID
 *     (create, get, metrics, upload with its digest check, heartbeat,
 *     events; 404 for anything else). It is not a model of chubd.
 *
 * Waits are bounded by the caller's timeout. Not a server: no keep-alive,
 * no chunked bodies, no TLS.
 */
#ifndef FAKEHUB_H
#define FAKEHUB_H

#include <stdbool.h>
#include <stddef.h>

#define FAKEHUB_MODEL_ID "abcdefghij0123456789"

typedef struct fakehub fakehub;

/* One scripted answer. status 0 means "answer as usual" (after delay_ms). */
typedef struct fakehub_reply {
  int status;
  const char *body; /* NULL: an envelope with success = status < 300 */
  int retry_after;  /* >= 0: send Retry-After with this many seconds */
  int delay_ms;     /* wait before answering (or dropping) */
  bool drop;        /* close the connection without any answer */
} fakehub_reply;

/* A recorded request, owned by the hub and valid until fakehub_stop. */
typedef struct fakehub_request {
  char method[16];
  char path[512];
  char *headers; /* the raw header block, lines "Name: value\r\n" */
  char api_key[160];
  char sha256_header[80];
  char *body;         /* the body's first bytes (<= 1 MiB), NUL-ended */
  size_t body_stored; /* how many of them */
  size_t body_len;    /* the whole body's length */
  char body_sha256[65];
} fakehub_request;

/* Starts listening on 127.0.0.1, port 0; NULL (after printing why) on
 * failure. Answers with the protocol until told otherwise. */
fakehub *fakehub_start(void);

/* fakehub_start, then fakehub_answer_all(status, body). */
fakehub *fakehub_start_fixed(int status, const char *body);

/* Stops the thread, closes the socket and frees every record. NULL is a
 * no-op. */
void fakehub_stop(fakehub *h);

int fakehub_port(const fakehub *h);

/* "http://127.0.0.1:PORT" (owned by h). */
const char *fakehub_url(const fakehub *h);

/* Answers every request that has no scripted reply with `status` and the
 * JSON `body` (NULL: empty) from now on; status 0 goes back to the
 * protocol's answers. */
void fakehub_answer_all(fakehub *h, int status, const char *body);

/* Queues `r` for the next request whose "METHOD PATH" starts with `route`
 * (e.g. "POST /v1/models/" FAKEHUB_MODEL_ID). Scripted replies are used in
 * the order queued. */
void fakehub_script(fakehub *h, const char *route, fakehub_reply r);

/* Forgets every scripted reply not used yet. */
void fakehub_clear_script(fakehub *h);

/* The data object answered to GET /v1/models/{id} (JSON text). */
void fakehub_set_model(fakehub *h, const char *model_json);

/* How many recorded requests match `route` exactly ("METHOD PATH"); NULL
 * counts every request. */
size_t fakehub_count(fakehub *h, const char *route);

/* Waits until fakehub_count(route) >= n or timeout_s passed; returns
 * whether it is. */
bool fakehub_wait(fakehub *h, const char *route, size_t n, double timeout_s);

/* The i-th (0-based) recorded request matching `route` exactly (NULL: any
 * request), or NULL when there is none. */
const fakehub_request *fakehub_find(fakehub *h, const char *route, size_t i);

/* The value of header `name` (case-insensitive) in r copied into buf;
 * false when absent. */
bool fakehub_header(const fakehub_request *r, const char *name, char *buf,
                    size_t len);

/* The value of multipart part `name` in a recorded body (not NUL-ended),
 * or NULL; *len receives its length. */
const char *fakehub_part(const fakehub_request *r, const char *name,
                         size_t *len);

#endif

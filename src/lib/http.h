/*
 * http.h - libchub's HTTP client for the hub protocol (hub-api.md).
 *
 * One http_client wraps one curl easy handle (reused, so connections are
 * kept alive) for one thread. Requests carry `x-api-key`; answers are parsed
 * as the protocol's envelope. http_call() applies the retry policy of
 * hub-api.md: no answer, 408, 500, 502, 503 and 504 are retried with
 * exponential backoff and jitter, 429 waits Retry-After, anything else
 * stops at once. Checkpoints stream from a file descriptor with pread, so
 * memory does not grow with their size.
 *
 * CHUB_RETRY_SCALE (environment, default 1) multiplies every backoff, time
 * budget and request timeout; tests set it small to run the policy quickly.
 */
#ifndef CHUB_HTTP_H
#define CHUB_HTTP_H

#include "chub.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct http_client http_client;

/* How hard to try: up to 1 + `retries` attempts, no new attempt once
 * `budget_s` passed since the first, each attempt's JSON request bounded by
 * `timeout_s` (uploads instead abort when stalled that long). */
typedef struct http_policy {
  int retries;
  double budget_s;
  double timeout_s;
} http_policy;

/* The answer to one call. `data` is the envelope's data (owned; free with
 * http_result_clear), `message` its message, `status` 0 when there was no
 * answer, `attempts` how many requests were made. */
typedef struct http_result {
  long status;
  json_t *data;
  char message[256];
  int attempts;
} http_result;

/* Called during an upload with bytes sent so far and the total. */
typedef void (*http_progress_fn)(long long sent, long long total, void *user);

/* A multipart checkpoint upload streamed from `fd` (its first `size`
 * bytes), with the form fields of hub-api.md and the SHA-256 of what was
 * sent, which goes into sha256 (65 bytes). A hub that says it takes the
 * digest after the file (chubd: X-Chub-Sha256-Modes names "part") gets
 * the file hashed while it is sent, read once, and the digest as a last
 * form field x-chub-sha256; any other hub gets header x-chub-sha256, the
 * file hashed first. A file changed while it is sent gets a digest that
 * cannot match, so the hub stores nothing. */
typedef struct http_upload {
  int fd;
  const char *path; /* the local file; its suffix names the upload */
  long long size;
  char *sha256;
  int epoch;
  bool final;
  bool is_best;
  double map;
  http_progress_fn progress;
  void *progress_user;
} http_upload;

/* A client for `api_root` ("http://host:port", no trailing slash needed)
 * sending `api_key` (may be empty). NULL when out of memory. */
http_client *http_client_new(const char *api_root, const char *api_key);

/* What every libcurl handle of chub (library and CLI) gets: libcurl's
 * global init done once per process, no signals, chub's user agent, and
 * the CA certificates of CHUB_CA_FILE when set (a hub with its own
 * certificate authority). `curl` is a CURL *. */
void http_curl_setup(void *curl);
void http_client_free(http_client *c);

/* Makes every transfer of `c` stop once chub_now() passes *deadline (a
 * value of 0 means no deadline). Lets another thread bound an in-flight
 * request; the pointed-to value may change at any time. */
void http_client_set_abort(http_client *c, _Atomic long long *deadline_ms);

/* The CHUB_RETRY_SCALE factor this client applies. */
double http_client_scale(const http_client *c);

/* One call with the retry policy. `method` is "GET"/"POST"; `json` the
 * request body or NULL; `up` a checkpoint upload or NULL. Returns CHUB_OK
 * on a 2xx envelope, else the code of the last attempt (CHUB_ENET for no
 * answer, CHUB_EAUTH 401, CHUB_ENOTFOUND 404, CHUB_ECONFLICT 409,
 * CHUB_EHTTP other statuses, CHUB_EPROTO a 2xx that is not an envelope,
 * CHUB_ETIMEDOUT when aborted). */
chub_code http_call(http_client *c, const char *method, const char *path,
                    const char *json, const http_upload *up,
                    const http_policy *policy, http_result *res);

void http_result_clear(http_result *res);

/* Sleeps `s` seconds in short slices; false (early) once the client's abort
 * deadline passed, so a stopping session never waits out a sleep. */
bool http_sleep(const http_client *c, double s);

/* Parses the envelope {"success", "message", "data"} of `body`. On
 * success *data (if not NULL) holds a new reference to data (json null
 * when absent). `msg` receives the message (empty when none). Returns
 * CHUB_EPROTO when the body is not JSON or not an object, CHUB_EHTTP when
 * success is false. */
chub_code http_parse_envelope(const char *body, size_t len, json_t **data,
                              char *msg, size_t msglen);

/* Whether a status (0 = no answer) is retried by the policy. */
bool http_retryable(long status);

/* The chub_code for an HTTP status (0 = no answer). */
chub_code http_code_for_status(long status);

/* Seconds to wait before retry `attempt` (0-based): 2^attempt times a jitter
 * in [1, 1.25) drawn from *seed, times `scale`. */
double http_backoff(int attempt, double scale, unsigned *seed);

/* Seconds from a Retry-After header value (delta seconds or an HTTP date
 * relative to `now_unix`); -1 when absent or unreadable. */
double http_retry_after(const char *value, long long now_unix);

/* Whether the client's abort deadline passed (a stopping session). */
bool http_client_aborted(const void *c);

/* sha256.c: hex SHA-256 of the first `limit` bytes of fd (all when < 0). */
chub_code chub_sha256_fd_n(int fd, long long limit, char hex[65]);

/* The same, giving up with CHUB_ETIMEDOUT as soon as stop(arg) is true
 * (checked between chunks; stop may be NULL). */
chub_code chub_sha256_fd_stop(int fd, long long limit, char hex[65],
                              bool (*stop)(const void *), const void *arg);

/* How long a one-shot request may take: connecting, and in all (ms);
 * `abort`, when set, is polled during the transfer and stops it by
 * answering true. */
typedef struct http_once_policy {
  long connect_ms;
  long total_ms;
  bool (*abort)(void);
} http_once_policy;

/* A command a person typed: 5 s to connect, 30 s in all. */
extern const http_once_policy http_policy_command;

typedef struct http_answer {
  long status;     /* 0 when there was no answer */
  char *body;      /* malloc'd, NUL-terminated; NULL without an answer */
  char error[256]; /* why there was no answer */
} http_answer;

/* Sends METHOD url with `x-api-key: key` (when not NULL) and the JSON
 * `body` (when not NULL), once, within the policy's times. Returns CHUB_OK
 * when any HTTP answer came back (whatever its status), CHUB_ENET
 * otherwise (out->error says why). */
chub_code http_once(const char *method, const char *url, const char *key,
                    const char *body, const http_once_policy *policy,
                    http_answer *out);
void http_answer_free(http_answer *a);

/* The envelope's "message" of an answer (borrowed from a static buffer),
 * or a description of the status when there is none. */
const char *http_answer_message(const http_answer *a);

/* What a download got. */
typedef struct http_fetch {
  long status;           /* of the last response; 0 when there was none */
  char etag[80];         /* its ETag header as sent (quotes kept), or "" */
  long long range_start; /* a 206's Content-Range start, else -1 */
  long long size;        /* the whole file's size when told, else -1 */
  long long body_start;  /* where the body went in the file, -1: nowhere */
  long long written;     /* body bytes written to the file */
  bool range_wrong;      /* a 206 not starting where asked: nothing written */
  char message[512];     /* an answer other than 200/206: what it says */
  char error[256];       /* why the transfer broke off */
} http_fetch;

/* GETs `url` into `fd`, sending no API key (a download URL is a capability
 * of its own). With from > 0 asks for `Range: bytes=from-`: a 206 starting
 * there is written from `from` on; a 200 (the whole file) truncates fd and
 * is written from 0. Any other answer leaves fd untouched and its message
 * in out->message. Follows redirects; no overall time limit, but gives up
 * after a minute without a byte. `progress` (may be NULL) is called with
 * the bytes of the whole file held so far. Returns CHUB_OK when the answer
 * came back whole (whatever its status), CHUB_ENET when the transfer broke
 * off (what arrived stays written), CHUB_EIO when fd could not be written.
 * Does not fsync. */
chub_code http_download(const char *url, int fd, long long from,
                        http_progress_fn progress, void *user, http_fetch *out);

/* POSTs the file at `path` to `url` as the one file part of a
 * multipart/form-data body (field and file name `filename`), streamed from
 * disk, with `x-api-key: key` and `x-chub-sha256: sha256`. `progress` (may
 * be NULL) sees the bytes sent. No overall time limit; gives up after a
 * minute without progress. Returns as http_once. */
chub_code http_upload_file(const char *url, const char *key, const char *path,
                           const char *filename, const char *sha256,
                           http_progress_fn progress, void *user,
                           http_answer *out);

#endif

/*
 * sv.h - helpers shared by chubd's conformance suite (tests/server/).
 *
 * The suite is written from hub-api.md and the chubd interface spec, not from
 * chubd's code: each helper states one thing the spec promises (every JSON
 * answer is an envelope, an upload answers size and sha256) and fails the
 * running cmocka test when chubd does not keep it, printing what came back.
 */
#ifndef SV_H
#define SV_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chubd_proc.h"
#include "th.h"

/* Starts the chubd under test (path from the build) with extra arguments
 * (NULL-terminated or NULL) on a fresh data dir; fails the test when it
 * does not start. */
chubd_proc *sv_start(const char *const extra[]);

/* Path of the chubd under test. */
const char *sv_chubd_bin(void);

/* cmocka group setup/teardown that start one chubd for a whole file with
 * a rate limit high enough never to interfere. */
int sv_group_setup(void **state);
/* A group setup with chosen arguments (NULL-terminated). */
int sv_group_start(void **state, const char *const extra[]);
int sv_group_teardown(void **state);
/* A suite's exit status: rc (cmocka's), or 1 when sv_group_teardown found
 * that chubd did not exit 0 on SIGTERM. cmocka 1.1.5 prints a failed group
 * teardown but leaves it out of its result, so a suite whose chubd fails
 * to drain would otherwise pass. */
int sv_suite_result(int rc);

/* Revokes `key` the way an operator does: `chubd keys revoke` with the
 * prefix `keys list` shows for it; fails the test otherwise. */
void sv_revoke_key(chubd_proc *p, const char *key);

/* Sends METHOD base+path with x-api-key `key` (NULL: none) and JSON body
 * `json` (NULL: none). Asserts the answer is a chub envelope and returns it
 * parsed (caller decrefs); *status gets the code. */
json_t *sv_json(chubd_proc *p, const char *method, const char *path,
                const char *key, const char *json, long *status);

/* As sv_json, asserting the status is `want`. */
json_t *sv_expect(chubd_proc *p, const char *method, const char *path,
                  const char *key, const char *json, long want);

/* The first token in `list` (the output of `keys list`) of 4..41
 * characters [A-Za-z0-9] that is a prefix of key, malloc'd, or NULL: how
 * the list names a key without showing it, and what `keys revoke` takes. */
char *sv_listed_prefix(const char *list, const char *key);

/* Asserts a string read from an answer equals `want`; unlike
 * assert_string_equal it reports a missing value (NULL) as a failure that
 * names the expression instead of crashing. */
#define sv_assert_str(actual, want)                                            \
  sv_assert_str_((actual), (want), #actual, __FILE__, __LINE__)
void sv_assert_str_(const char *actual, const char *want, const char *expr,
                    const char *file, int line);

/* True when the envelope's message contains `needle` (case-insensitive). */
int sv_message_has(json_t *env, const char *needle);

/* Creates a model (hub-api.md create payload, name `name`) and returns its
 * id (malloc'd); fails the test otherwise. */
char *sv_create(chubd_proc *p, const char *key, const char *name);

/* Uploads metrics: `metrics` is the JSON object of the wire format, e.g.
 * {"0": "{\"a\": 1}"}; returns the status. */
long sv_metrics(chubd_proc *p, const char *key, const char *id,
                const char *metrics);

/* Reads GET /v1/models/{id} with `key`, asserting 200; returns data. */
json_t *sv_model(chubd_proc *p, const char *key, const char *id);

/* Multipart weights upload. type "epoch" or "final"; is_best is sent as the
 * string given (NULL: not sent); sha256 (NULL: no header) goes as
 * x-chub-sha256. Returns the status; *out keeps the answer. */
long sv_upload(chubd_proc *p, const char *key, const char *id, int epoch,
               const char *type, const char *is_best, const void *data,
               size_t len, const char *sha256, th_response *out);

/* Deterministic test bytes (a simple LCG seeded by `seed`), malloc'd. */
unsigned char *sv_bytes(size_t len, unsigned seed);

/* Counts regular files under `dir` (recursively) whose whole content is
 * exactly data/len, and files that contain `needle` anywhere when
 * contains is set. */
int sv_files_equal(const char *dir, const void *data, size_t len);
int sv_files_containing(const char *dir, const void *needle, size_t len);

/* Waits (bounded: 3 s) until no file under dir holds data/len (exactly,
 * or anywhere in it when contains is set) and returns how many still do.
 * A rejected upload's temporary file may outlive the answer by moments;
 * what matters to a user is that none remains. */
int sv_files_gone(const char *dir, const void *data, size_t len, int contains);

/* Path of the SQLite database under dir (the first regular file starting
 * with the SQLite header), malloc'd, or NULL. */
char *sv_find_sqlite(const char *dir);

/* Sends raw bytes to 127.0.0.1:port and closes (half a request, on
 * purpose). When read_answer is set, reads the answer (bounded: 5 s) and
 * returns it malloc'd; otherwise returns NULL. */
char *sv_raw(int port, const void *data, size_t len, int read_answer);

/* A connected TCP socket to 127.0.0.1:port (fails the test otherwise),
 * for requests sent in pieces; sv_send writes all of data. */
int sv_connect(int port);
void sv_send(int fd, const void *data, size_t len);

/* Reads what arrives on fd for at most `ms` milliseconds or until the peer
 * closes; malloc'd, NUL-terminated. */
char *sv_recv(int fd, int ms);

/* A whole HTTP/1.1 multipart upload request (epoch 1, type epoch, isBest
 * False, file part last.pt = bytes) built by hand for a raw socket, so a
 * test can send part of it. malloc'd; *out_len is its length. */
char *sv_raw_upload(const char *id, const char *key, const unsigned char *bytes,
                    size_t len, size_t *out_len);

/* Polls GET /v1/health until chubd answers 200, at most `ms` milliseconds;
 * returns 1 if it did. */
int sv_alive(chubd_proc *p, int ms);

/* Sleeps. For bounded waits on a state change, never for timing asserts. */
void sv_sleep_ms(long ms);

/* True when s is an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SS[.f]Z). */
int sv_is_rfc3339_utc(const char *s);

/* True when s is n characters of [A-Za-z0-9]. */
int sv_is_alnum(const char *s, size_t n);

#endif

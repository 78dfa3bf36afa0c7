/*
 * th.h - test helpers: HTTP requests with libcurl and JSON with jansson.
 *
 * Tests speak to chubd the way a client does, over real HTTP on loopback,
 * and read the answers as JSON. These helpers keep each test about what it
 * asserts: one call sends a request and hands back status, body and
 * headers; one call reads a dotted path out of a JSON envelope. Nothing
 * here retries or hides a failure: a transport error is returned as such.
 */
#ifndef TH_H
#define TH_H

#include <jansson.h>
#include <stddef.h>

/* An answer. body is NUL-terminated (body_len excludes the NUL); headers is
 * the raw header block of the final response ("Name: value\r\n" lines).
 * Free with th_response_free. */
typedef struct th_response {
  long status;
  char *body;
  size_t body_len;
  char *headers;
} th_response;

void th_response_free(th_response *r);

/* Sends METHOD url. key, when not NULL, goes as `x-api-key`; content_type,
 * when not NULL, as Content-Type; body/len as the request body (body may be
 * NULL for none). *resp_body and *resp_headers (either may be NULL) receive
 * malloc'd NUL-terminated copies. Returns 0, or -1 on a transport error
 * (connection refused, reset, timeout: 30 s), printing curl's reason. */
int th_request(const char *method, const char *url, const char *key,
               const char *content_type, const void *body, size_t len,
               long *status, char **resp_body, char **resp_headers);

/* Like th_request with any request headers ("Name: value" strings,
 * NULL-terminated, may be NULL) and the answer in *out. */
int th_request_hdrs(const char *method, const char *url,
                    const char *const headers[], const void *body, size_t len,
                    th_response *out);

/* JSON shortcuts: sends `json` (may be NULL for no body) with
 * Content-Type application/json and x-api-key key (may be NULL). */
int th_json_request(const char *method, const char *url, const char *key,
                    const char *json, th_response *out);

/* Multipart upload. fields: NULL-terminated name,value pairs (may be NULL).
 * The file part is named file_field with filename file_name and the bytes
 * data/len (or, when data is NULL, the contents of file `path`). headers:
 * extra request headers as in th_request_hdrs (x-api-key goes there or via
 * key). */
int th_upload(const char *url, const char *key, const char *const fields[],
              const char *file_field, const char *file_name, const void *data,
              size_t len, const char *path, const char *const headers[],
              th_response *out);

/* The value of header `name` (case-insensitive) in a raw header block,
 * malloc'd and trimmed, or NULL when absent. */
char *th_header(const char *headers, const char *name);

/* Formats into a malloc'd string. */
char *th_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* SHA-256 of bytes as 64 lowercase hex characters into hex[65]. */
void th_sha256_hex(const void *data, size_t len, char hex[65]);

/* Parses a body; NULL (after printing the parse error and the body) when it
 * is not JSON. The caller json_decref()s. */
json_t *th_json_parse(const char *body);

/* Follows a dotted path ("data.results.0.id"; numeric parts index arrays)
 * from root. Borrowed reference or NULL. */
json_t *th_json_at(json_t *root, const char *path);

/* Typed reads of th_json_at: the string (borrowed) or NULL; the integer or
 * `dflt`; the boolean as 0/1 or -1 when absent or not a boolean. */
const char *th_json_str(json_t *root, const char *path);
long long th_json_int(json_t *root, const char *path, long long dflt);
int th_json_bool(json_t *root, const char *path);

/* Checks an answer is a chub envelope: JSON object with boolean `success`
 * equal to (status in 2xx) and a string `message` when it is a failure.
 * Returns the parsed body (caller decrefs) or NULL, printing why. */
json_t *th_envelope(const th_response *r);

/* Creates a model named `name` with the hub-api.md create payload and
 * returns its id (malloc'd) or NULL, printing the answer. */
char *th_create_model(const char *base_url, const char *key, const char *name);

#endif

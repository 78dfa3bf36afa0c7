/*
 * sec.h - helpers of chubd's security suite (tests/security/).
 *
 * The suite is written from the hardening contract (issue 9), not from
 * chubd's code, and runs the real chubd (tests/server/sv.h starts it). What
 * libcurl cannot do is here: TCP connections from a chosen loopback source
 * address (bind() before connect(), so 127.0.0.2 can play the attacker and
 * 127.0.0.1 the victim), raw requests whose bodies are cut or malformed on
 * purpose, watching whether chubd closes a connection, and watching whether
 * chubd has exited without reaping it (chubd_proc reaps it later). Every
 * wait is bounded by the caller's milliseconds.
 */
#ifndef SEC_H
#define SEC_H

#include <stddef.h>
#include <sys/types.h>

#include "sv.h"

/* A TCP connection to 127.0.0.1:port from source address src (an IPv4
 * literal; NULL: the kernel's choice), bound before connecting. Returns
 * the socket, or -1 with errno set (ECONNREFUSED when chubd refuses, or
 * ETIMEDOUT after 3 s). */
int sec_dial(const char *src, int port);

/* What became of a connection the test is watching. */
typedef enum sec_fate {
  SEC_OPEN,    /* still open when the wait ended */
  SEC_CLOSED,  /* the peer closed or reset it and sent nothing */
  SEC_ANSWERED /* the peer sent bytes (then maybe closed) */
} sec_fate;

/* Waits at most ms for the peer to send something or close fd. When it
 * sent bytes, the first n-1 of them go to got (NUL-terminated; got may be
 * NULL). */
sec_fate sec_watch(int fd, int ms, char *got, size_t n);

/* True when the peer has already closed fd (no waiting). */
int sec_is_closed(int fd);

/* One HTTP answer read from a socket. head is the status line and headers
 * (for th_header), body the decoded body (NUL-terminated). */
typedef struct sec_answer {
  long status;
  char *head;
  char *body;
  size_t body_len;
} sec_answer;

void sec_answer_free(sec_answer *a);

/* Reads one answer from fd (Content-Length, chunked, or up to the close),
 * for at most ms. Returns 0, or -1 when no complete answer arrived (a->status
 * is then 0; whatever arrived is in a->head). */
int sec_read_answer(int fd, int ms, sec_answer *a);

/* Sends req (len bytes) on a new connection from src and reads the answer
 * (bounded by ms). Returns 0, or -1 when the connection failed or no
 * complete answer came back. */
int sec_exchange(const char *src, int port, const void *req, size_t len, int ms,
                 sec_answer *a);

/* GET path from src, with Host 127.0.0.1:port and Connection: close. */
int sec_get_from(const char *src, int port, const char *path, int ms,
                 sec_answer *a);

/* A "GET /v1/health" request for a kept-alive connection (Host set). */
char *sec_health_request(int port);

/* A multipart/form-data body built by hand, so a test can leave out the
 * closing boundary or repeat a part. fields: NULL-terminated name,value
 * pairs (may be NULL). Then n_files file parts, each named file_field with
 * filename file_name and content data/len. close_tail: the text after the
 * last part ("\r\n--B--\r\n" for a whole body; anything else for a cut
 * one; "%s" in it is replaced by the boundary). *len gets the length. */
char *sec_multipart(const char *boundary, const char *const fields[],
                    int n_files, const char *file_field, const char *file_name,
                    const void *data, size_t len, const char *close_tail,
                    size_t *out_len);

/* POST path with a body of content_type (x-api-key key unless NULL) as
 * one raw request with Content-Length and Connection: close; the answer in
 * *a (fails the test when none comes within 10 s). */
void sec_post_raw(int port, const char *path, const char *key,
                  const char *content_type, const void *body, size_t len,
                  sec_answer *a);

/* Regular files under DATA/tmp (the upload area), counted. */
int sec_tmp_files(const char *data_dir);

/* Waits at most ms for DATA/tmp to hold no file; returns how many remain. */
int sec_tmp_empty(const char *data_dir, int ms);

/* Waits at most ms for process pid (a child of the test) to exit, without
 * reaping it, so chubd_proc_stop() still collects its status. Returns 1
 * when it exited. */
int sec_exited_within(pid_t pid, int ms);

/* Milliseconds on a monotonic clock. */
long sec_now_ms(void);

/* Every Set-Cookie value in a header block (malloc'd, "\n"-separated), or
 * NULL when there is none. */
char *sec_set_cookies(const char *headers);

/* True when s is n lowercase hexadecimal digits. */
int sec_is_hex(const char *s, size_t n);

#endif

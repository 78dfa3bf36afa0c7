/*
 * lane.h - chubd's own loop in front of libmicrohttpd: it accepts every
 * connection of a plain-HTTP listener, serves the metrics uploads itself
 * and hands every other connection, its bytes still unread, to
 * libmicrohttpd.
 *
 * A metrics upload is most of what a hub receives, and most of what
 * serving one cost was libmicrohttpd's (a poll over every connection of
 * its thread, a 32 KiB pool zeroed per request, a response object, a
 * suspend and resume through a pipe). The lane looks at each request
 * without reading it (MSG_PEEK); one that is a plain metrics upload
 * (POST /v1/models/{id}, HTTP/1.1, Content-Length, head and body arrived
 * whole, nothing unusual in the head) it takes and serves with chubd's
 * own checks, the same ones in the same order as libmicrohttpd's path
 * (auth.c, httpd_json_head, metrics.c), and answers after the commit.
 * Anything else (another route, a query string, a chunked body, Expect,
 * a partial body, HTTP/1.0, a foreign Host) goes to libmicrohttpd with
 * MHD_add_connection(), which reads it from its first byte; that
 * connection stays there. Uploads of weights and datasets go to a daemon
 * of their own whose connections read in larger pieces (httpd.c), so
 * that the others keep small buffers. Limits hold across both: conns.c counts
 * every connection from accept() to close, per address too, and runs its header
 * deadline whoever holds it.
 */
#ifndef CHUBD_LANE_H
#define CHUBD_LANE_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

typedef struct lane lane;

/* Starts nthreads threads (1 to LANE_THREADS_MAX) accepting on listen_fd
 * (bound, listening, non-blocking; the lane closes it) and handing what
 * is not theirs to d, or, when the request is an upload of weights or a
 * dataset, to uploads (NULL: d too); daemons started with
 * MHD_USE_NO_LISTEN_SOCKET. NULL with the reason in err. */
lane *lane_start(chubd_server *srv, struct MHD_Daemon *d,
                 struct MHD_Daemon *uploads, int listen_fd, unsigned nthreads,
                 char *err, size_t errn);
#define LANE_THREADS_MAX 8

/* The port the lane listens on. */
int lane_port(const lane *l);

/* Stops accepting (the listening socket is closed at once); connections
 * open are still served. */
void lane_quiesce(lane *l);

/* Stops the threads and closes every connection the lane still holds.
 * Call once no upload is with the store (srv->suspended is 0). */
void lane_stop(lane *l);

/* What the lane does with the bytes at the start of a connection (head:
 * the request read so far, n bytes, which the parser changes: it ends
 * names and values with NULs). */
enum {
  LANE_TAKE,      /* a whole upload the lane serves */
  LANE_MORE_HEAD, /* its head is not all here yet */
  LANE_MORE_BODY, /* its head is, its body not all yet */
  LANE_HAND_OVER, /* anything else: libmicrohttpd's */
};
#define LANE_HEADERS_MAX 32
#define LANE_HEAD_MAX 8192
#define LANE_REQUEST_MAX (64 * 1024) /* head and body */

typedef struct lane_head {
  const char *path; /* of the request line, NUL-ended */
  chubd_header headers[LANE_HEADERS_MAX];
  int nheaders;
  size_t head_len, body_len;
  int close_after; /* Connection: close */
} lane_head;

/* Reads the request at the start of buf (n bytes): LANE_TAKE with its
 * head in *h, or one of the others (for LANE_MORE_BODY, h->head_len and
 * h->body_len are set). Strict on purpose: whatever is not plainly a
 * metrics upload of at most body_max bytes is LANE_HAND_OVER, for
 * libmicrohttpd to read and answer as it always did. */
int lane_parse(char *buf, size_t n, uint64_t body_max, lane_head *h);

#endif

/*
 * tb_listener.h - a tiny HTTP/1.1 listener on 127.0.0.1 for base's tests.
 *
 * It stands in for "a server that answers X" where the thing under test is a
 * client (usage events, `chub login`): it records each request whole and
 * answers every one with a status and body the test chose. One connection
 * at a time, Connection: close, bounded reads; it is a test fixture, not a
 * server.
 */
#ifndef TB_LISTENER_H
#define TB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tb_listener tb_listener;

typedef struct tb_request {
  char method[16];
  char path[512];
  char *headers; /* raw header block, lines "Name: value\r\n" */
  char *body;    /* NUL-terminated */
  size_t body_len;
} tb_request;

/* Starts listening on a free loopback port; every request is answered with
 * `status` and the JSON `body`. NULL on failure. */
tb_listener *tb_listener_start(int status, const char *body);

/* Changes the answer for the requests that follow. */
void tb_listener_answer(tb_listener *l, int status, const char *body);

int tb_listener_port(const tb_listener *l);

/* "http://127.0.0.1:PORT" (owned by l). */
const char *tb_listener_url(const tb_listener *l);

/* Waits at most timeout_s until at least n requests were received; returns
 * whether they were. */
bool tb_listener_wait(tb_listener *l, size_t n, double timeout_s);

size_t tb_listener_count(tb_listener *l);

/* The i-th request received (0-based), owned by l; NULL when none. */
const tb_request *tb_listener_request(tb_listener *l, size_t i);

/* The value of header `name` in r (case-insensitive) copied into buf;
 * false when absent. */
bool tb_request_header(const tb_request *r, const char *name, char *buf,
                       size_t len);

/* Stops the thread, closes the socket and frees everything. */
void tb_listener_stop(tb_listener *l);

#endif

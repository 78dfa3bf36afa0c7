/*
 * conns.h - the clock of every open connection: the request line and
 * headers must arrive within the header deadline.
 *
 * libmicrohttpd's own timeout is an idle timeout: a client that sends one
 * header byte every few seconds would hold its connection for ever. This
 * keeps a deadline per connection from the moment it opens (and again
 * after each answer on a kept-alive connection) until its headers are
 * complete, and a watchdog thread shuts down the socket of any connection
 * past it; libmicrohttpd then sees the connection end and closes it. It
 * also counts the connections open in all, which libmicrohttpd's thread
 * pool counts only per thread.
 *
 * A connection comes in one of two ways. Served over TLS, libmicrohttpd
 * accepts it and conns_notify() opens its entry. Otherwise chubd's own
 * loop (lane.c) accepts it: conns_accept() opens the entry, counted
 * against the total and per-address limits before a byte is read; the
 * loop moves its deadline while it serves the connection, and either
 * closes it (conns_close) or hands it to libmicrohttpd (conns_hand_over),
 * whose notifications then take the same entry over.
 */
#ifndef CHUBD_CONNS_H
#define CHUBD_CONNS_H

#include <microhttpd.h>
#include <sys/socket.h>

typedef struct conns conns;
typedef struct conns_entry conns_entry;

/* Starts the watchdog. Connections beyond max_connections open at once
 * are shut as they arrive; so are those from an address that already has
 * max_per_ip open, when chubd accepted them (libmicrohttpd counts the
 * ones it accepts itself). NULL when out of memory or threads. */
conns *conns_new(double header_timeout_s, unsigned max_connections,
                 unsigned max_per_ip);
/* Stops the watchdog; every connection must have been closed first. */
void conns_free(conns *c);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the conns). */
void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                  enum MHD_ConnectionNotificationCode code);

/* The headers of the connection's current request are complete. */
void conns_headers_done(conns *c, struct MHD_Connection *conn);
/* The connection's request was answered: the next one has a new
 * deadline. */
void conns_request_done(conns *c, struct MHD_Connection *conn);

/* A connection chubd accepted on socket fd from addr, before any byte is
 * read: its entry, counted and with its header deadline running; NULL
 * when it is over a limit (or out of memory), for the caller to close. */
conns_entry *conns_accept(conns *c, int fd, const struct sockaddr *addr,
                          socklen_t len);
/* Its current request's headers are complete: no deadline while it is
 * served. */
void conns_entry_headers_done(conns_entry *e);
/* Its request was answered: the next one has a new deadline. */
void conns_entry_request_done(conns *c, conns_entry *e);
/* Its socket goes to libmicrohttpd (MHD_add_connection) next: the
 * notification of that connection takes e over, deadline and count. */
void conns_hand_over(conns *c, conns_entry *e);
/* MHD_add_connection() refused e's socket (and closed it): e, not taken
 * over then, is closed. */
void conns_hand_over_failed(conns *c, conns_entry *e);
/* Its socket is about to be closed by the one who accepted it: the entry
 * is uncounted and freed. Call before close(), so that the watchdog never
 * shuts a descriptor that was reused. */
void conns_close(conns *c, conns_entry *e);

/* Connections open now, within the limit. */
unsigned conns_open(conns *c);

#endif

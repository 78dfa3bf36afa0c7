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
 */
#ifndef CHUBD_CONNS_H
#define CHUBD_CONNS_H

#include <microhttpd.h>

typedef struct conns conns;

/* Starts the watchdog. Connections beyond max_connections open at once
 * are shut as they arrive. NULL when out of memory or threads. */
conns *conns_new(double header_timeout_s, unsigned max_connections);
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

/* Connections open now, within the limit. */
unsigned conns_open(conns *c);

#endif

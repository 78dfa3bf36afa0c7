/*
 * prom.h - chubd's own figures in the Prometheus text format (GET
 * /metrics): requests by route and status, latency histograms per route,
 * metrics commit batches and their sizes, upload bytes, store errors, open
 * connections and the store's connection pool.
 *
 * Counters are process-wide atomics that any thread bumps without a lock;
 * GET /metrics reads them as they are (each value exact, the set not one
 * snapshot, as Prometheus expects of a scrape). Served only when asked
 * for: `--metrics` on the main address, or `--metrics-listen HOST:PORT` on
 * an address of its own (the figures say how busy the hub is and which
 * routes fail; keep them off the public address if that matters).
 */
#ifndef CHUBD_PROM_H
#define CHUBD_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

typedef struct chubd_server chubd_server;

/* One answered request of route `kind` (ROUTE_NONE: no route) with HTTP
 * status `status`, `seconds` after its first byte. */
void prom_request(route_kind kind, unsigned status, double seconds);

/* A request whose connection ended before it was answered whole. */
void prom_request_aborted(route_kind kind);

/* Body bytes of a weights (`dataset` 0) or dataset upload received. */
void prom_upload_bytes(int dataset, uint64_t n);

/* An upload stored whole, by how its SHA-256 came: PROM_DIGEST_*. */
enum { PROM_DIGEST_NONE, PROM_DIGEST_HEADER, PROM_DIGEST_PART };
void prom_upload_digest(int how);

/* What chubd's own loop (lane.c) did with a request: PROM_LANE_SERVED,
 * or handed its connection to libmicrohttpd's daemon for most requests
 * (PROM_LANE_TO_HTTP) or for uploads (PROM_LANE_TO_UPLOADS). */
enum { PROM_LANE_SERVED, PROM_LANE_TO_HTTP, PROM_LANE_TO_UPLOADS };
void prom_lane(int what);

/* One commit of the store's metrics committer: `uploads` requests,
 * `epochs` epochs in all. */
void prom_metrics_commit(size_t uploads, size_t epochs);

/* A store operation that failed (logged by the store). */
void prom_store_error(void);

/* A sync of the SQLite store's write-ahead log took this long. */
void prom_log_sync(double seconds);

/* The store's connections: how many there are, and the change in how
 * many are in use (+1 taken, -1 given back). */
void prom_store_pool_size(int n);
void prom_store_pool_use(int delta);

/* The whole text, malloc'd into *out (*len bytes); -1 when out of memory. */
int prom_render(const chubd_server *srv, char **out, size_t *len);

struct chubd_request;
struct chubd_reply;

/* GET /metrics on the main address: the text with --metrics, else 404 as
 * for any path chubd does not serve. */
void prom_get(struct chubd_request *req, struct chubd_reply *rep);

/* --metrics-listen: a small daemon of its own that serves GET /metrics and
 * nothing else. 0 (nothing to do without the flag), or -1 with err. */
int prom_listen_start(chubd_server *srv, char *err, size_t errn);
void prom_listen_stop(chubd_server *srv);

#endif

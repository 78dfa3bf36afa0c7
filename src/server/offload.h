/*
 * offload.h - a few threads for work that may block on the disk for long,
 * so that the HTTP thread whose connection it is keeps serving its other
 * connections meanwhile.
 *
 * The end of a weights or dataset upload is such work: the file's fsync,
 * its link as a blob and its row in the store. On a slow disk, or on the
 * network filesystem several chubd share their blobs on, the fsync of a
 * large file takes seconds; done on libmicrohttpd's thread it held up
 * every connection of that thread. httpd.c suspends the connection, runs
 * the upload's handler here and resumes the connection with its answer.
 * Several threads, so that one upload held in a slow fsync leaves the
 * others to store theirs.
 */
#ifndef CHUBD_OFFLOAD_H
#define CHUBD_OFFLOAD_H

typedef struct offload offload;

typedef void (*offload_fn)(void *arg);

/* Starts n threads (at least 1) named "chubd-offload". NULL when none
 * could start. */
offload *offload_start(unsigned n);

/* Queues fn(arg) for one of the threads, in order of arrival. 0, or -1
 * (out of memory, or stopping): then fn was not queued and the caller
 * does the work itself. */
int offload_run(offload *o, offload_fn fn, void *arg);

/* Runs what is still queued, ends the threads and frees o. NULL is a
 * no-op. */
void offload_stop(offload *o);

#endif

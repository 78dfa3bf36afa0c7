/*
 * upload_sink.h - where an upload's file bytes go: hashed (SHA-256) and
 * written to an open file, on threads of their own once the file is
 * large, so that the connection's thread only receives.
 *
 * Bytes are copied into a few staging buffers; each full one is hashed
 * by one of the sink's threads and written by the other while the
 * connection's thread fills the next, with O_DIRECT where the filesystem
 * takes it (straight from the buffer to the disk, no copy into the page
 * cache), else through the cache with the disk asked to start writing
 * every few megabytes (write-behind). A small file never starts the
 * threads: its bytes are hashed and written at upload_sink_finish. The
 * staging memory of all sinks together is bounded (UPLOAD_SINK_BUDGET);
 * a sink that finds it spent hashes and writes on the caller's thread,
 * as it does when its threads cannot be started.
 *
 * One caller thread per sink; none of these calls may run concurrently
 * on the same sink.
 */
#ifndef CHUBD_UPLOAD_SINK_H
#define CHUBD_UPLOAD_SINK_H

#include <stddef.h>

/* Staging memory all sinks may hold at once, in bytes. */
#define UPLOAD_SINK_BUDGET (64u << 20)

typedef struct upload_sink upload_sink;

/* A sink writing to fd, a new empty file, from offset 0; the caller keeps
 * owning fd (and closes it only after upload_sink_free; its flags are as
 * they were once upload_sink_finish returns). NULL when out of memory. */
upload_sink *upload_sink_new(int fd);

/* Hands over n bytes (copied or written before it returns). 0, or -1
 * with errno set once a write to the file has failed: nothing after that
 * is written, and every later call fails the same way. */
int upload_sink_put(upload_sink *s, const void *data, size_t n);

/* Writes what is still staged, waits for the sink's threads to write and
 * hash everything, and gives the SHA-256 of all the bytes put. 0, or -1
 * with errno set when a write failed. */
int upload_sink_finish(upload_sink *s, unsigned char digest[32]);

/* Staging bytes all sinks hold now (at most UPLOAD_SINK_BUDGET). */
size_t upload_sink_staged(void);

/* Stops the sink, finished or not (what is still staged is dropped), and
 * frees it. NULL is fine. */
void upload_sink_free(upload_sink *s);

#endif

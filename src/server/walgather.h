/*
 * walgather.h - a SQLite VFS that writes each commit's log frames to the
 * WAL file in one write() per 64 KiB instead of two per page.
 *
 * SQLite appends a commit to its write-ahead log frame by frame: a 24-byte
 * header, then the page, each its own pwrite(). A metrics batch of a dozen
 * uploads writes eight or so pages, so sixteen system calls, each taking
 * the file's lock and touching its page cache, for what is one run of
 * bytes. This VFS wraps the default one and, for WAL files only, gathers
 * writes that continue one another in memory, writing them out as one
 * before anything else touches the file: a read, a sync, a truncation, its
 * size, a file control, or a write elsewhere in it. Every other file, and
 * every other call, is the default VFS's own.
 *
 * It relies on synchronous=FULL: SQLite then syncs the log at every
 * commit before it tells other connections about the new frames (in the
 * WAL index), so no reader can look for a write still gathered. Under
 * NORMAL or OFF a commit's frames could stay in memory while readers look
 * for them: store_sqlite.c opens every connection with FULL.
 */
#ifndef CHUBD_WALGATHER_H
#define CHUBD_WALGATHER_H

/* The VFS's name, for sqlite3_open_v2(); registered by walgather_init(). */
#define WALGATHER_VFS "chubd-walgather"

/* Registers the VFS (once; safe from any thread). SQLITE_OK, or SQLite's
 * error code. synced, when not NULL (the first call's counts), is told how
 * long each sync of a log took, on the syncing thread: the disk's
 * latency as the commits see it. */
int walgather_init(void (*synced)(double seconds));

#endif

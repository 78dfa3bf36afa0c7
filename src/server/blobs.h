/*
 * blobs.h - weights and dataset files on disk: BLOBS/{sha256} once
 * complete and verified, BLOBS/.incoming/ while they arrive. BLOBS is
 * --blobs (default DATA/blobs) and may be shared by several chubd on one
 * database, on a network filesystem.
 */
#ifndef CHUBD_BLOBS_H
#define CHUBD_BLOBS_H

#include <stddef.h>

struct store;

/* Creates BLOBS and BLOBS/.incoming. With clean, removes what an earlier
 * run of a chubd on this machine left there (uploads cut short by a crash:
 * temporaries of this host whose process is gone), and DATA/tmp of older
 * versions. 0, or -1 with err. */
int blobs_prepare(const char *data_dir, const char *blobs_dir, int clean,
                  char *err, size_t errn);

/* A new temporary file under BLOBS/.incoming; its path goes to path.
 * Returns the fd, or -1. */
int blobs_tmp_open(const char *blobs_dir, char *path, size_t pathn);

/* Makes the finished temporary file durable (fsync) and closes fd. The
 * slow part of storing a large file: done before taking any lock that
 * other uploads wait on. 0, or -1 with errno set. */
int blobs_seal(int fd);

/* Makes the sealed temporary file visible as BLOBS/{sha256} (a hard link,
 * atomic; an identical file already there is kept). The temporary stays
 * until blobs_settle. 0, or -1 with errno set. */
int blobs_commit(const char *blobs_dir, const char *tmp_path,
                 const char *sha256);

/* After the store recorded a row naming the blob: makes sure the blob is
 * still there (another instance may have been removing an unused copy at
 * that very moment; see blobs.c), then removes the temporary. Needs no
 * lock: blobs.c's order makes it safe against a removal at any moment,
 * and removing a temporary that was the only copy (the same bytes were
 * stored before) takes long for a large file. */
void blobs_settle(const char *blobs_dir, const char *tmp_path,
                  const char *sha256);

/* BLOBS/{sha256} into out. sha256 must come from a digest chubd computed,
 * never from a client. */
void blobs_path(const char *blobs_dir, const char *sha256, char *out, size_t n);

/* Removes BLOBS/{sha256} when no checkpoint or dataset names it, safely
 * against another instance committing the same blob meanwhile. 1 when
 * removed, 0 when kept (in use, or already gone), -1 on an error (logged). */
int blobs_drop_unused(const char *blobs_dir, struct store *st,
                      const char *sha256);

/* chubd gc: removes every blob no row names and temporaries untouched for
 * `stale_s` seconds, printing what it did to out; with dry_run, only
 * says. Safe while chubd instances upload. 0, or 1 on an error. */
int blobs_gc(const char *blobs_dir, struct store *st, double stale_s,
             int dry_run, void *out);

#endif

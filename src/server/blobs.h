/*
 * blobs.h - weights files on disk: DATA/tmp while they arrive,
 * DATA/blobs/{sha256} once complete and verified.
 */
#ifndef CHUBD_BLOBS_H
#define CHUBD_BLOBS_H

#include <stddef.h>

/* Creates DATA, DATA/blobs and DATA/tmp and, with clean_tmp, removes what
 * an earlier run left in DATA/tmp (uploads cut short by a crash; only the
 * one chubd serving DATA may do that). 0, or -1 with err. */
int blobs_prepare(const char *data_dir, int clean_tmp, char *err, size_t errn);

/* A new temporary file under DATA/tmp; its path goes to path. Returns the
 * fd, or -1. */
int blobs_tmp_open(const char *data_dir, char *path, size_t pathn);

/* Makes the finished temporary file durable and visible as
 * DATA/blobs/{sha256} in one rename. Closes fd. 0, or -1 with errno set. */
int blobs_commit(const char *data_dir, int fd, const char *tmp_path,
                 const char *sha256);

/* DATA/blobs/{sha256} into out. sha256 must come from a digest chubd
 * computed, never from a client. */
void blobs_path(const char *data_dir, const char *sha256, char *out, size_t n);

struct store;

/* Removes DATA/blobs/{sha256} when no checkpoint or dataset names it any
 * more. The caller holds the server's blobs lock, so that no upload
 * commits the same blob in between. */
void blobs_drop_unused(const char *data_dir, struct store *st,
                       const char *sha256);

#endif

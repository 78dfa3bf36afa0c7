/*
 * fs.h - the few filesystem moves libchub makes, each in one place with
 * one durability rule: directories are made 0700 (they hold keys and
 * spools); a file is replaced by writing a temporary file beside it,
 * fsyncing it, renaming it over the old one and fsyncing the directory,
 * so that after a crash the path holds the old contents or the new, never
 * a mix, and the new once the call returned.
 */
#ifndef CHUB_FS_H
#define CHUB_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "chub.h"

/* mkdir -p, each missing level mode 0700. */
chub_code fs_mkdirs(const char *path);

/* Replaces path with len bytes of data, file mode `mode`, durably (see
 * above). CHUB_EIO with errno set when it could not; path is untouched
 * then. */
chub_code fs_replace(const char *path, const void *data, size_t len,
                     mode_t mode);

/* All n bytes written at off / read from off, through partial transfers
 * and EINTR. 0, or -1 with errno set (a read past the end: -1). */
int fs_pwrite_all(int fd, const void *buf, size_t n, off_t off);
int fs_pread_all(int fd, void *buf, size_t n, off_t off);

/* fsync of the directory holding path (made durable: a rename in it). */
int fs_sync_dir_of(const char *path);

#endif

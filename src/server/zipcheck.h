/*
 * zipcheck.h - is this file a zip archive an unzip tool will take whole?
 *
 * A dataset arrives as a zip that Ultralytics (or a person) extracts on
 * another machine, so chubd checks its structure before calling it a
 * dataset, without trusting any size or offset in it: the end record, the
 * central directory, and for every entry its local header, inside the
 * file, with a name that stays inside the target directory. Nothing is
 * decompressed. Pure: all reading goes through a callback, so the fuzz
 * target drives it with bytes in memory.
 */
#ifndef CHUBD_ZIPCHECK_H
#define CHUBD_ZIPCHECK_H

#include <stddef.h>
#include <stdint.h>

/* Reads exactly n bytes at off into buf; 0, or -1 (short or failed). */
typedef int (*zipcheck_read_fn)(void *ud, uint64_t off, void *buf, size_t n);

typedef struct zipcheck_info {
  uint64_t entries; /* files and directories in the archive */
  uint64_t yamls;   /* entries named *.yaml or *.yml */
} zipcheck_info;

/* The most entries an archive may hold. */
#define ZIPCHECK_MAX_ENTRIES 10000000ull

/* Checks the archive of `size` bytes. 0 with *info filled, or -1 with a
 * message for a person in err ("not a zip file: ..."). */
int zipcheck(zipcheck_read_fn read, void *ud, uint64_t size,
             zipcheck_info *info, char *err, size_t errn);

#endif

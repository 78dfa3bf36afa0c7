/*
 * zipbuild.h - small zip archives built by hand for the dataset tests.
 *
 * The dataset tests need valid archives (stored and deflated entries, the
 * ZIP64 end records, a comment) and hostile ones (a name that climbs out,
 * an offset past the end, a count the directory cannot hold). A writer
 * that records where each record starts lets a test build a valid archive
 * and then break exactly one number in it. Layout per APPNOTE.TXT: local
 * headers and data, the central directory, [ZIP64 end record and
 * locator], the end record. CRC-32 and raw deflate come from zlib.
 */
#ifndef ZIPBUILD_H
#define ZIPBUILD_H

#include <stddef.h>
#include <stdint.h>

#define ZB_MAX_FILES 16

typedef struct zb_file {
  const char *name; /* the entry's name, as stored (not checked) */
  size_t name_len;  /* 0: strlen(name) */
  const void *data;
  size_t len;
  int deflate; /* method 8 (raw deflate) instead of 0 (stored) */
} zb_file;

typedef struct zb_opts {
  int zip64;           /* ZIP64 end record and locator; the end record's
                          count, size and offset saturated (0xffff...) */
  int zip64_entries;   /* every entry's sizes and offset in a ZIP64 extra
                          field, 0xffffffff in the headers */
  const char *comment; /* the archive comment (NULL: none) */
  int descriptor;      /* sizes and CRC in a data descriptor after each
                          entry's data (flag bit 3), as streaming writers
                          do; the local header holds zeros */
} zb_opts;

/* A built archive and where its records start, for a test to patch. */
typedef struct zb_zip {
  unsigned char *buf;
  size_t len;
  size_t n;
  size_t local[ZB_MAX_FILES];   /* each entry's local header */
  size_t central[ZB_MAX_FILES]; /* each entry's central header */
  size_t cd_off, cd_size;       /* the central directory */
  size_t eocd64, locator;       /* the ZIP64 records (when zip64) */
  size_t eocd;                  /* the end of central directory record */
} zb_zip;

/* Builds an archive of n (1..ZB_MAX_FILES, or 0) files; opts may be NULL.
 * Returns 0, or -1 (out of memory, too many files, deflate failed). */
int zb_build(const zb_file *files, size_t n, const zb_opts *opts, zb_zip *z);

/* One stored file `name` holding data/len. Fails the process (abort) when
 * it cannot be built: tests use it for fixtures. */
void zb_one(const char *name, const void *data, size_t len, zb_zip *z);

void zb_free(zb_zip *z);

/* Little-endian writes into a built archive, to break one field. */
void zb_put16(unsigned char *p, uint16_t v);
void zb_put32(unsigned char *p, uint32_t v);
void zb_put64(unsigned char *p, uint64_t v);

/* Field offsets inside the records (APPNOTE 4.3.7, 4.3.12, 4.3.16). */
#define ZB_LOCAL_CSIZE 18
#define ZB_LOCAL_NLEN 26
#define ZB_CENTRAL_CSIZE 20
#define ZB_CENTRAL_NLEN 28
#define ZB_CENTRAL_OFFSET 42
#define ZB_CENTRAL_LEN 46
#define ZB_EOCD_DISK_ENTRIES 8
#define ZB_EOCD_ENTRIES 10
#define ZB_EOCD_CD_SIZE 12
#define ZB_EOCD_CD_OFFSET 16
#define ZB_EOCD_COMMENT_LEN 20
#define ZB_EOCD64_ENTRIES 32
#define ZB_EOCD64_CD_OFFSET 48
#define ZB_LOCATOR_OFFSET 8

#endif

/*
 * zipcheck.c - the structure of a zip archive, checked from its end
 * (APPNOTE.TXT: the end of central directory record, its ZIP64 forms, the
 * central directory headers and the local headers they point to).
 *
 * Every number read from the file is bounded against the file's size
 * before it is used, and every read is of a known small size, so a
 * hostile archive costs at most one pass over its central directory.
 */
#include "zipcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_EOCD_LEN 22u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_LOCATOR_LEN 20u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_EOCD_LEN 56u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_CENTRAL_LEN 46u
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_LOCAL_LEN 30u
#define ZIP_MAX_COMMENT 65535u

static uint16_t zip_u16(const unsigned char *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t zip_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t zip_u64(const unsigned char *p) {
  return (uint64_t)zip_u32(p) | (uint64_t)zip_u32(p + 4) << 32;
}

static int zip_fail(char *err, size_t errn, const char *msg) {
  snprintf(err, errn, "not a zip file: %s", msg);
  return -1;
}

typedef struct zip_dir {
  uint64_t entries, cd_size, cd_off;
  uint64_t end; /* where the central directory must end */
} zip_dir;

/* Finds the end record in the last 64 KiB + 22 bytes: the last signature
 * whose comment runs exactly to the end of the file. */
static int zip_find_end(zipcheck_read_fn rd, void *ud, uint64_t size,
                        uint64_t *pos, unsigned char rec[ZIP_EOCD_LEN],
                        char *err, size_t errn) {
  uint64_t tail = size < ZIP_MAX_COMMENT + ZIP_EOCD_LEN
                      ? size
                      : ZIP_MAX_COMMENT + ZIP_EOCD_LEN;
  unsigned char *buf = malloc((size_t)tail);
  if (!buf) {
    snprintf(err, errn, "out of memory while reading the zip");
    return -1;
  }
  int found = 0;
  if (rd(ud, size - tail, buf, (size_t)tail) == 0) {
    for (uint64_t i = tail - ZIP_EOCD_LEN + 1; i-- > 0;) {
      if (zip_u32(buf + i) != ZIP_EOCD_SIG)
        continue;
      if (i + ZIP_EOCD_LEN + zip_u16(buf + i + 20) != tail)
        continue;
      memcpy(rec, buf + i, ZIP_EOCD_LEN);
      *pos = size - tail + i;
      found = 1;
      break;
    }
  }
  free(buf);
  if (!found)
    return zip_fail(err, errn,
                    "no end of central directory record at its end "
                    "(cut short, or another format)");
  return 0;
}

/* The ZIP64 end record the locator before `eocd` names. */
static int zip_read_64(zipcheck_read_fn rd, void *ud, uint64_t eocd, zip_dir *d,
                       char *err, size_t errn) {
  unsigned char loc[ZIP64_LOCATOR_LEN], rec[ZIP64_EOCD_LEN];
  if (eocd < ZIP64_LOCATOR_LEN ||
      rd(ud, eocd - ZIP64_LOCATOR_LEN, loc, sizeof loc) < 0 ||
      zip_u32(loc) != ZIP64_LOCATOR_SIG)
    return zip_fail(err, errn, "ZIP64 sizes without a ZIP64 locator");
  uint64_t off = zip_u64(loc + 8);
  if (zip_u32(loc + 4) != 0 || zip_u32(loc + 16) > 1)
    return zip_fail(err, errn,
                    "archives split over several disks are not "
                    "taken");
  if (off > eocd - ZIP64_LOCATOR_LEN ||
      eocd - ZIP64_LOCATOR_LEN - off < ZIP64_EOCD_LEN ||
      rd(ud, off, rec, sizeof rec) < 0 || zip_u32(rec) != ZIP64_EOCD_SIG)
    return zip_fail(err, errn,
                    "the ZIP64 end record is not where its "
                    "locator says");
  if (zip_u32(rec + 16) != 0 || zip_u32(rec + 20) != 0 ||
      zip_u64(rec + 24) != zip_u64(rec + 32))
    return zip_fail(err, errn,
                    "archives split over several disks are not "
                    "taken");
  d->entries = zip_u64(rec + 32);
  d->cd_size = zip_u64(rec + 40);
  d->cd_off = zip_u64(rec + 48);
  d->end = off;
  return 0;
}

static int zip_read_dir(zipcheck_read_fn rd, void *ud, uint64_t size,
                        zip_dir *d, char *err, size_t errn) {
  unsigned char rec[ZIP_EOCD_LEN];
  uint64_t pos;
  if (size < ZIP_EOCD_LEN)
    return zip_fail(err, errn, "too short to hold an end record");
  if (zip_find_end(rd, ud, size, &pos, rec, err, errn) < 0)
    return -1;
  if (zip_u16(rec + 4) != 0 || zip_u16(rec + 6) != 0 ||
      zip_u16(rec + 8) != zip_u16(rec + 10))
    return zip_fail(err, errn,
                    "archives split over several disks are not "
                    "taken");
  d->entries = zip_u16(rec + 10);
  d->cd_size = zip_u32(rec + 12);
  d->cd_off = zip_u32(rec + 16);
  d->end = pos;
  if (d->entries == 0xffff || d->cd_size == 0xffffffffu ||
      d->cd_off == 0xffffffffu) {
    if (zip_read_64(rd, ud, pos, d, err, errn) < 0)
      return -1;
  }
  if (d->cd_off > d->end || d->cd_size > d->end - d->cd_off)
    return zip_fail(err, errn, "the central directory lies outside the file");
  if (d->entries > ZIPCHECK_MAX_ENTRIES)
    return zip_fail(err, errn, "more entries than chubd takes (10 million)");
  if (d->entries > d->cd_size / ZIP_CENTRAL_LEN)
    return zip_fail(err, errn,
                    "more entries than its central directory can "
                    "hold");
  return 0;
}

/* Whether an entry name, once extracted, stays inside the target: no
 * absolute path, drive, backslash, NUL or ".." component. */
static int zip_name_ok(const unsigned char *name, size_t n) {
  if (n == 0 || name[0] == '/' || (n >= 2 && name[1] == ':'))
    return 0;
  size_t seg = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && (name[i] == '\0' || name[i] == '\\'))
      return 0;
    if (i == n || name[i] == '/') {
      if (i - seg == 2 && name[seg] == '.' && name[seg + 1] == '.')
        return 0;
      seg = i + 1;
    }
  }
  return 1;
}

static int zip_is_yaml(const unsigned char *name, size_t n) {
  return (n > 5 && memcmp(name + n - 5, ".yaml", 5) == 0) ||
         (n > 4 && memcmp(name + n - 4, ".yml", 4) == 0);
}

/* Sizes and offset of an entry that says 0xffffffff are in its ZIP64
 * extra field, in this order, each present only when needed. */
static int zip_extra_64(const unsigned char *ex, size_t len, uint64_t *usize,
                        uint64_t *csize, uint64_t *off) {
  size_t i = 0;
  while (i + 4 <= len) {
    uint16_t id = zip_u16(ex + i), sz = zip_u16(ex + i + 2);
    if (i + 4 + sz > len)
      return -1;
    if (id == 0x0001) {
      const unsigned char *p = ex + i + 4;
      size_t left = sz;
      uint64_t *want[3] = {usize, csize, off};
      for (int k = 0; k < 3; k++) {
        if (*want[k] != 0xffffffffu)
          continue;
        if (left < 8)
          return -1;
        *want[k] = zip_u64(p);
        p += 8;
        left -= 8;
      }
      return 0;
    }
    i += 4 + (size_t)sz;
  }
  return *usize == 0xffffffffu || *csize == 0xffffffffu || *off == 0xffffffffu
             ? -1
             : 0;
}

/* One central directory entry at *pos: checked with its local header,
 * which must name the same file and lie after the previous entry's data
 * (*data_end): entries that share or overlap bytes are how zip bombs
 * multiply their size, and unzip refuses them. */
static int zip_entry(zipcheck_read_fn rd, void *ud, const zip_dir *d,
                     uint64_t *pos, uint64_t *data_end, unsigned char *var,
                     zipcheck_info *info, char *err, size_t errn) {
  unsigned char h[ZIP_CENTRAL_LEN];
  uint64_t cd_end = d->cd_off + d->cd_size;
  if (cd_end - *pos < ZIP_CENTRAL_LEN || rd(ud, *pos, h, sizeof h) < 0 ||
      zip_u32(h) != ZIP_CENTRAL_SIG)
    return zip_fail(err, errn, "a central directory entry is damaged");
  size_t nlen = zip_u16(h + 28), xlen = zip_u16(h + 30), clen = zip_u16(h + 32);
  uint64_t rest = (uint64_t)nlen + xlen + clen;
  if (cd_end - *pos - ZIP_CENTRAL_LEN < rest ||
      rd(ud, *pos + ZIP_CENTRAL_LEN, var, nlen + xlen) < 0)
    return zip_fail(err, errn, "a central directory entry runs past its end");
  if (!zip_name_ok(var, nlen))
    return zip_fail(err, errn,
                    "an entry's name is absolute, empty or "
                    "climbs out with \"..\"");
  uint64_t csize = zip_u32(h + 20), usize = zip_u32(h + 24),
           off = zip_u32(h + 42);
  if (zip_extra_64(var + nlen, xlen, &usize, &csize, &off) < 0)
    return zip_fail(err, errn, "an entry's ZIP64 sizes are missing");
  unsigned char l[ZIP_LOCAL_LEN];
  if (off > d->cd_off || d->cd_off - off < ZIP_LOCAL_LEN ||
      rd(ud, off, l, sizeof l) < 0 || zip_u32(l) != ZIP_LOCAL_SIG)
    return zip_fail(err, errn, "an entry's local header is missing");
  if (off < *data_end)
    return zip_fail(err, errn, "entries overlap or are out of order");
  size_t lnlen = zip_u16(l + 26);
  uint64_t data = off + ZIP_LOCAL_LEN + lnlen + zip_u16(l + 28);
  if (data > d->cd_off || d->cd_off - data < csize)
    return zip_fail(err, errn,
                    "an entry's data runs past the central "
                    "directory");
  unsigned char *lname = var + nlen + xlen;
  if (lnlen != nlen || rd(ud, off + ZIP_LOCAL_LEN, lname, lnlen) < 0 ||
      memcmp(lname, var, nlen) != 0)
    return zip_fail(err, errn,
                    "an entry's local header names another file "
                    "than its central directory entry");
  *data_end = data + csize;
  info->entries++;
  if (zip_is_yaml(var, nlen))
    info->yamls++;
  *pos += ZIP_CENTRAL_LEN + rest;
  return 0;
}

int zipcheck(zipcheck_read_fn read, void *ud, uint64_t size,
             zipcheck_info *info, char *err, size_t errn) {
  zip_dir d;
  memset(info, 0, sizeof *info);
  if (zip_read_dir(read, ud, size, &d, err, errn) < 0)
    return -1;
  if (d.entries == 0)
    return zip_fail(err, errn, "the archive is empty");
  /* Name and extra field of a central entry, then the local name. */
  unsigned char *var = malloc(3 * 65535);
  if (!var) {
    snprintf(err, errn, "out of memory while reading the zip");
    return -1;
  }
  uint64_t pos = d.cd_off, data_end = 0;
  int rc = 0;
  for (uint64_t i = 0; i < d.entries && rc == 0; i++)
    rc = zip_entry(read, ud, &d, &pos, &data_end, var, info, err, errn);
  free(var);
  if (rc == 0 && pos != d.cd_off + d.cd_size)
    return zip_fail(err, errn,
                    "the central directory holds more than its "
                    "entries");
  return rc;
}

/*
 * zipcheck_test.c - unit test of chubd's zip structure check (zipcheck.h),
 * fed archives held in memory.
 *
 * A dataset is a zip that someone else's machine will extract, so what a
 * user must be able to trust: every archive an unzip tool takes whole is
 * taken (stored, deflated, ZIP64 end records, a comment, one made by
 * Python's zipfile), its entries and YAML files counted; and every archive
 * that is not whole or would write outside the target directory is
 * refused with a message starting "not a zip file: ", without a read
 * outside the file. Archives are built by zipbuild.c, then one number in
 * them is broken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zipbuild.h"
#include "zipcheck.h"

/* Made once by Python's zipfile (ZIP_DEFLATED): ds/data.yaml (deflated),
 * ds/images/ (a directory), ds/images/1.txt (deflated). */
static const unsigned char zt_python_zip[] = {
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
    0x21, 0x58, 0xd8, 0xea, 0x25, 0x62, 0x26, 0x00, 0x00, 0x00, 0x24, 0x00,
    0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x64, 0x73, 0x2f, 0x64, 0x61, 0x74,
    0x61, 0x2e, 0x79, 0x61, 0x6d, 0x6c, 0x2b, 0x48, 0x2c, 0xc9, 0xb0, 0x52,
    0xd0, 0xe3, 0x2a, 0x29, 0x4a, 0xcc, 0xcc, 0xb3, 0x52, 0xc8, 0xcc, 0x4d,
    0x4c, 0x4f, 0x2d, 0xe6, 0xca, 0x4b, 0xcc, 0x4d, 0x2d, 0xb6, 0x52, 0xa8,
    0x36, 0xb0, 0x52, 0x48, 0xac, 0xe5, 0x02, 0x00, 0x50, 0x4b, 0x03, 0x04,
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x58, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00,
    0x00, 0x00, 0x64, 0x73, 0x2f, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x73, 0x2f,
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
    0x21, 0x58, 0xc7, 0xaa, 0xb3, 0xc3, 0x0f, 0x00, 0x00, 0x00, 0x90, 0x00,
    0x00, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x64, 0x73, 0x2f, 0x69, 0x6d, 0x61,
    0x67, 0x65, 0x73, 0x2f, 0x31, 0x2e, 0x74, 0x78, 0x74, 0x33, 0x50, 0x30,
    0xd0, 0x33, 0x85, 0x62, 0x43, 0x10, 0xe6, 0x32, 0x18, 0x50, 0x11, 0x00,
    0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00,
    0x00, 0x00, 0x21, 0x58, 0xd8, 0xea, 0x25, 0x62, 0x26, 0x00, 0x00, 0x00,
    0x24, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xa4, 0x01, 0x00, 0x00, 0x00, 0x00, 0x64, 0x73,
    0x2f, 0x64, 0x61, 0x74, 0x61, 0x2e, 0x79, 0x61, 0x6d, 0x6c, 0x50, 0x4b,
    0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x21, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x10, 0x00, 0xed, 0x41, 0x50, 0x00, 0x00, 0x00, 0x64, 0x73, 0x2f, 0x69,
    0x6d, 0x61, 0x67, 0x65, 0x73, 0x2f, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03,
    0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x58, 0xc7, 0xaa,
    0xb3, 0xc3, 0x0f, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x0f, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa4, 0x01,
    0x78, 0x00, 0x00, 0x00, 0x64, 0x73, 0x2f, 0x69, 0x6d, 0x61, 0x67, 0x65,
    0x73, 0x2f, 0x31, 0x2e, 0x74, 0x78, 0x74, 0x50, 0x4b, 0x05, 0x06, 0x00,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x03, 0x00, 0xaf, 0x00, 0x00, 0x00, 0xb4,
    0x00, 0x00, 0x00, 0x00, 0x00,
};

/* The archive as zipcheck sees it through its read callback: `len` bytes
 * whose last `tail_len` are `tail` and the rest zeros (a large file without
 * holding it), every read checked to lie inside the file. */
typedef struct zt_file {
  const unsigned char *tail;
  size_t tail_len;
  uint64_t len;
  int outside;     /* reads asked for outside the file */
  size_t max_read; /* the largest single read */
  int fail;        /* every read fails, as on an I/O error */
} zt_file;

static int zt_read(void *ud, uint64_t off, void *buf, size_t n) {
  zt_file *f = ud;
  if (n > f->max_read)
    f->max_read = n;
  if (off > f->len || n > f->len - off) {
    f->outside++;
    return -1;
  }
  if (f->fail)
    return -1;
  uint64_t start = f->len - f->tail_len; /* where the tail begins */
  for (size_t i = 0; i < n; i++) {
    uint64_t at = off + i;
    ((unsigned char *)buf)[i] = at < start ? 0 : f->tail[at - start];
  }
  return 0;
}

/* Runs zipcheck over f; returns its result, err filled. Fails the test on
 * a read outside the file or a read larger than the biggest record
 * (64 KiB comment + end record, or a name and extra field of 64 KiB each):
 * whatever the archive claims, zipcheck reads only inside it, in small
 * pieces. */
static int zt_run(zt_file *f, zipcheck_info *info, char *err, size_t errn) {
  memset(info, 0xa5, sizeof *info);
  err[0] = '\0';
  int rc = zipcheck(zt_read, f, f->len, info, err, errn);
  if (f->outside)
    fail_msg("zipcheck asked for %d read(s) outside the %llu-byte file",
             f->outside, (unsigned long long)f->len);
  if (f->max_read > 2 * 65535)
    fail_msg("zipcheck read %zu bytes at once", f->max_read);
  if (rc != 0 && rc != -1)
    fail_msg("zipcheck returned %d, neither 0 nor -1", rc);
  return rc;
}

static int zt_check(const void *p, size_t len, zipcheck_info *info,
                    char err[256]) {
  zt_file f = {p, len, len, 0, 0, 0};
  return zt_run(&f, info, err, 256);
}

/* Asserts the archive is taken with these counts. */
static void zt_ok(const void *p, size_t len, uint64_t entries, uint64_t yamls,
                  const char *what) {
  zipcheck_info info;
  char err[256];
  if (zt_check(p, len, &info, err) != 0)
    fail_msg("%s: refused (%s), expected it taken", what, err);
  if (info.entries != entries || info.yamls != yamls)
    fail_msg("%s: %llu entries and %llu yamls, expected %llu and %llu", what,
             (unsigned long long)info.entries, (unsigned long long)info.yamls,
             (unsigned long long)entries, (unsigned long long)yamls);
}

/* Asserts a refusal that says why: "not a zip file: <reason>". */
static void zt_refused_msg(const char *err, const char *what) {
  if (strncmp(err, "not a zip file: ", 16) != 0 || strlen(err) < 20)
    fail_msg("%s: refused with \"%s\", not \"not a zip file: <why>\"", what,
             err);
  fprintf(stderr, "  refused %s: %s\n", what, err);
}

static void zt_refused(const void *p, size_t len, const char *what) {
  zipcheck_info info;
  char err[256];
  if (zt_check(p, len, &info, err) != -1)
    fail_msg("%s: taken (%llu entries), expected it refused", what,
             (unsigned long long)info.entries);
  zt_refused_msg(err, what);
}

static const char zt_yaml[] = "path: .\ntrain: images\nval: images\n"
                              "names:\n  0: shirt\n  1: shoe\n";
static const char zt_labels[] = "0 0.5 0.5 0.25 0.25\n1 0.1 0.2 0.3 0.4\n"
                                "0 0.5 0.5 0.25 0.25\n1 0.1 0.2 0.3 0.4\n";

/* A dataset as people zip one: a data.yaml, a directory, a label file and
 * a second YAML. 4 entries, 2 of them YAML. */
static void zt_dataset(const zb_opts *o, int deflate, zb_zip *z) {
  zb_file f[] = {
      {"fashion/data.yaml", 0, zt_yaml, strlen(zt_yaml), deflate},
      {"fashion/images/", 0, "", 0, 0},
      {"fashion/images/0001.txt", 0, zt_labels, strlen(zt_labels), deflate},
      {"fashion/extra.yml", 0, zt_yaml, strlen(zt_yaml), 0},
  };
  assert_int_equal(zb_build(f, 4, o, z), 0);
}

/* --------------------------------------------------------------- taken */

static void zt_valid_stored(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 0, &z);
  zt_ok(z.buf, z.len, 4, 2, "a stored dataset");
  zb_free(&z);

  zb_one("one.bin", "x", 1, &z);
  zt_ok(z.buf, z.len, 1, 0, "one stored byte");
  zb_free(&z);
  zb_one("empty.txt", "", 0, &z);
  zt_ok(z.buf, z.len, 1, 0, "one empty file");
  zb_free(&z);

  /* Names with dots that do not climb out. */
  zb_file f[] = {{"a..b", 0, "1", 1, 0},         {"..a/b", 0, "2", 1, 0},
                 {"x/..y/z.yaml", 0, "3", 1, 0}, {"./f", 0, "4", 1, 0},
                 {"d/.../g", 0, "5", 1, 0},      {"b../c.yml", 0, "6", 1, 0}};
  assert_int_equal(zb_build(f, 6, NULL, &z), 0);
  zt_ok(z.buf, z.len, 6, 2, "names with dots inside them");
  zb_free(&z);
}

static void zt_valid_deflated(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 1, &z);
  zt_ok(z.buf, z.len, 4, 2, "a deflated dataset");
  zb_free(&z);
  /* Made by another tool. */
  zt_ok(zt_python_zip, sizeof zt_python_zip, 3, 1, "Python's zipfile");
}

static void zt_valid_zip64(void **state) {
  (void)state;
  const struct {
    zb_opts o;
    const char *what;
  } cases[] = {
      {{1, 0, NULL, 0}, "ZIP64 end record and locator"},
      {{1, 1, NULL, 0}, "ZIP64 end record and ZIP64 entries"},
      {{0, 1, NULL, 0}, "ZIP64 entries under a classic end record"},
      {{0, 0, NULL, 1}, "data descriptors (a streaming writer)"},
      {{1, 1, NULL, 1}, "ZIP64 data descriptors"},
      {{1, 1, "a comment after ZIP64", 0}, "ZIP64 with a comment"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    zb_zip z;
    zt_dataset(&cases[i].o, i % 2, &z);
    zt_ok(z.buf, z.len, 4, 2, cases[i].what);
    zb_free(&z);
  }
}

static void zt_comment(void **state) {
  (void)state;
  zb_opts o = {0, 0, "dataset of 2024", 0};
  zb_zip z;
  zt_dataset(&o, 0, &z);
  zt_ok(z.buf, z.len, 4, 2, "a comment");
  unsigned char *cl = z.buf + z.eocd + ZB_EOCD_COMMENT_LEN;
  uint16_t n = (uint16_t)strlen(o.comment);
  zb_put16(cl, (uint16_t)(n + 1));
  zt_refused(z.buf, z.len, "a comment length 1 past the end of the file");
  zb_put16(cl, 0xffff);
  zt_refused(z.buf, z.len, "a comment length of 65535 with 15 bytes there");
  zb_put16(cl, (uint16_t)(n - 1));
  zt_refused(z.buf, z.len, "a comment length 1 short of the end");
  zb_put16(cl, 0);
  zt_refused(z.buf, z.len, "a comment length 0 with a comment there");
  zb_free(&z);

  /* Bytes after an archive without a comment. */
  zt_dataset(NULL, 0, &z);
  unsigned char *more = malloc(z.len + 1);
  memcpy(more, z.buf, z.len);
  more[z.len] = '\n';
  zt_refused(more, z.len + 1, "a byte after the end record");
  free(more);
  zb_free(&z);

  /* The longest comment there is: the end record 64 KiB from the end. */
  char *longest = malloc(65536);
  memset(longest, 'c', 65535);
  longest[65535] = '\0';
  o.comment = longest;
  zt_dataset(&o, 1, &z);
  zt_ok(z.buf, z.len, 4, 2, "a 65535-byte comment");
  zb_free(&z);
  free(longest);
}

/* ------------------------------------------------------------- refused */

static void zt_not_a_zip(void **state) {
  (void)state;
  zt_refused("", 0, "an empty file");
  zt_refused("P", 1, "one byte");
  unsigned char zeros[4096] = {0};
  zt_refused(zeros, 21, "21 zero bytes");
  zt_refused(zeros, 22, "22 zero bytes");
  zt_refused(zeros, sizeof zeros, "4 KiB of zeros");
  const char *text = "images/0001.jpg 0\nimages/0002.jpg 1\n";
  zt_refused(text, strlen(text), "a text file");
  unsigned char gz[64] = {0x1f, 0x8b, 0x08, 0x00};
  zt_refused(gz, sizeof gz, "a gzip header");
  unsigned char rnd[5000];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof rnd; i++) {
    x = x * 1664525u + 1013904223u;
    rnd[i] = (unsigned char)(x >> 24);
  }
  zt_refused(rnd, sizeof rnd, "5000 random bytes");
  /* An end record and nothing else: a zip with no file in it. */
  zb_zip z;
  assert_int_equal(zb_build(NULL, 0, NULL, &z), 0);
  assert_int_equal(z.len, 22);
  zt_refused(z.buf, z.len, "an archive of no entries");
  zb_free(&z);
}

static void zt_truncated(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 1, &z);
  zipcheck_info info;
  char err[256];
  /* Cut anywhere: refused, every time. */
  for (size_t cut = 0; cut < z.len; cut++) {
    if (zt_check(z.buf, cut, &info, err) != -1)
      fail_msg("the first %zu of %zu bytes taken as a zip", cut, z.len);
    if (strncmp(err, "not a zip file: ", 16) != 0)
      fail_msg("cut at %zu: \"%s\"", cut, err);
  }
  zt_refused(z.buf, z.len - 1, "the last byte cut");
  zt_refused(z.buf, z.cd_off, "cut before its central directory");
  for (size_t cut = 0; cut < sizeof zt_python_zip; cut++)
    if (zt_check(zt_python_zip, cut, &info, err) != -1)
      fail_msg("the first %zu bytes of Python's zip taken", cut);
  /* Its beginning lost: every offset is now wrong. */
  zt_refused(z.buf + 1, z.len - 1, "the first byte lost");
  zt_refused(z.buf + z.local[1], z.len - z.local[1], "the first entry lost");
  zb_free(&z);
}

/* One stored entry named `name` (n bytes of it). */
static void zt_named(const char *name, size_t n, zb_zip *z) {
  zb_file f[] = {{"ok.txt", 0, "fine", 4, 0}, {name, n, "bad", 3, 0}};
  if (n == 0) {
    f[1].name_len = 1; /* zb_build reads 0 as strlen: build, then cut */
    f[1].name = "x";
  }
  assert_int_equal(zb_build(f, 2, NULL, z), 0);
  if (n == 0) {
    /* An empty name: drop the one byte from the central header. */
    size_t at = z->central[1] + ZB_CENTRAL_LEN;
    zb_put16(z->buf + z->central[1] + ZB_CENTRAL_NLEN, 0);
    memmove(z->buf + at, z->buf + at + 1, z->len - at - 1);
    z->len--;
    z->eocd--;
    z->cd_size--;
    zb_put32(z->buf + z->eocd + ZB_EOCD_CD_SIZE, (uint32_t)z->cd_size);
  }
}

static void zt_names(void **state) {
  (void)state;
  const struct {
    const char *name;
    size_t len;
  } bad[] = {
#define ZT_NAME(s) {s, sizeof s - 1}
      ZT_NAME("../x"),        ZT_NAME("a/../../x"), ZT_NAME("a/.."),
      ZT_NAME(".."),          ZT_NAME("../"),       ZT_NAME("./../x"),
      ZT_NAME("a/./../../x"), ZT_NAME("/etc/x"),    ZT_NAME("/"),
      ZT_NAME("//srv/x"),     ZT_NAME("C:x"),       ZT_NAME("C:/x"),
      ZT_NAME("a\\b"),        ZT_NAME("..\\..\\x"), ZT_NAME("images\\1.txt"),
      ZT_NAME("a\0b"),        ZT_NAME(""),
#undef ZT_NAME
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    zb_zip z;
    zt_named(bad[i].name, bad[i].len, &z);
    char shown[32], what[64];
    size_t j = 0;
    for (size_t k = 0; k < bad[i].len && j + 3 < sizeof shown; k++) {
      if (bad[i].name[k] == '\0')
        shown[j++] = '\\', shown[j++] = '0';
      else
        shown[j++] = bad[i].name[k];
    }
    shown[j] = '\0';
    snprintf(what, sizeof what, "an entry named \"%s\"", shown);
    zt_refused(z.buf, z.len, what);
    zb_free(&z);
  }
  /* The same checks with ZIP64 records. */
  zb_file f[] = {{"ok.txt", 0, "fine", 4, 0}, {"../x", 0, "bad", 3, 0}};
  zb_opts o = {1, 1, NULL, 0};
  zb_zip z;
  assert_int_equal(zb_build(f, 2, &o, &z), 0);
  zt_refused(z.buf, z.len, "\"../x\" in a ZIP64 archive");
  zb_free(&z);
}

static void zt_central_directory_offset(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 0, &z);
  unsigned char *off = z.buf + z.eocd + ZB_EOCD_CD_OFFSET;
  unsigned char *size = z.buf + z.eocd + ZB_EOCD_CD_SIZE;
  zb_put32(off, (uint32_t)z.len + 100);
  zt_refused(z.buf, z.len, "a central directory offset past the file");
  zb_put32(off, 0xfffffffeu);
  zt_refused(z.buf, z.len, "a central directory offset of 4 GiB");
  zb_put32(off, (uint32_t)z.eocd);
  zt_refused(z.buf, z.len, "a central directory at the end record");
  zb_put32(off, (uint32_t)z.cd_off + 1);
  zt_refused(z.buf, z.len, "a central directory offset one byte late");
  zb_put32(off, (uint32_t)z.cd_off - 1);
  zt_refused(z.buf, z.len, "a central directory offset one byte early");
  zb_put32(off, (uint32_t)z.cd_off);
  zb_put32(size, (uint32_t)z.cd_size + 1);
  zt_refused(z.buf, z.len, "a central directory one byte longer");
  zb_put32(size, 0xfffffff0u);
  zt_refused(z.buf, z.len, "a central directory of 4 GiB");
  zb_put32(size, (uint32_t)z.cd_size - 1);
  zt_refused(z.buf, z.len, "a central directory one byte shorter");
  zb_free(&z);

  /* In the ZIP64 records. */
  zb_opts o = {1, 0, NULL, 0};
  zt_dataset(&o, 0, &z);
  zb_put64(z.buf + z.eocd64 + ZB_EOCD64_CD_OFFSET, 1ull << 40);
  zt_refused(z.buf, z.len, "a ZIP64 central directory offset of 1 TiB");
  zb_free(&z);
  zt_dataset(&o, 0, &z);
  zb_put64(z.buf + z.locator + ZB_LOCATOR_OFFSET, (uint64_t)z.len + 10);
  zt_refused(z.buf, z.len, "a ZIP64 locator pointing past the file");
  zb_put64(z.buf + z.locator + ZB_LOCATOR_OFFSET, (uint64_t)z.eocd64 + 1);
  zt_refused(z.buf, z.len, "a ZIP64 locator pointing one byte late");
  zb_free(&z);
  zt_dataset(&o, 0, &z);
  z.buf[z.locator] = 'X';
  zt_refused(z.buf, z.len, "saturated end record without a ZIP64 locator");
  zb_free(&z);
  zt_dataset(&o, 0, &z);
  z.buf[z.eocd64] = 'X';
  zt_refused(z.buf, z.len, "a ZIP64 locator pointing at no ZIP64 record");
  zb_free(&z);
}

static void zt_local_header_offset(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 0, &z);
  /* Entry 2 (fashion/images/0001.txt) made to point elsewhere. */
  unsigned char *off = z.buf + z.central[2] + ZB_CENTRAL_OFFSET;
  size_t data = z.local[2] + 30 + strlen("fashion/images/0001.txt");
  const struct {
    uint64_t at;
    const char *what;
  } cases[] = {
      {data, "a local header offset at the entry's data (garbage)"},
      {z.local[2] + 1, "a local header offset one byte late"},
      {z.local[2] - 1, "a local header offset one byte early"},
      {z.cd_off, "a local header offset at the central directory"},
      {z.eocd, "a local header offset at the end record"},
      {z.len + 5, "a local header offset past the file"},
      {0xfffffffeu, "a local header offset of 4 GiB"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    zb_put32(off, (uint32_t)cases[i].at);
    zt_refused(z.buf, z.len, cases[i].what);
  }
  zb_free(&z);
  /* A local header that is not one: its signature broken. */
  zt_dataset(NULL, 0, &z);
  z.buf[z.local[3]] = 'Q';
  zt_refused(z.buf, z.len, "a local header without its signature");
  zb_free(&z);
  /* ZIP64 entries: the offset in the extra field. */
  zb_opts o = {1, 1, NULL, 0};
  zt_dataset(&o, 0, &z);
  /* The extra field of entry 0 follows its name: usize, csize, offset. */
  size_t ex = z.central[0] + ZB_CENTRAL_LEN + strlen("fashion/data.yaml");
  zb_put64(z.buf + ex + 4 + 16, 1ull << 33);
  zt_refused(z.buf, z.len, "a ZIP64 local header offset of 8 GiB");
  zb_free(&z);
  /* A ZIP64 entry whose extra field is missing. */
  o.zip64_entries = 1;
  o.zip64 = 0;
  zt_dataset(&o, 0, &z);
  zb_put16(z.buf + ex, 0x5455); /* the ZIP64 id turned into another's */
  zt_refused(z.buf, z.len, "0xffffffff sizes without a ZIP64 extra field");
  zb_free(&z);
}

static void zt_entry_count(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 0, &z);
  unsigned char *disk = z.buf + z.eocd + ZB_EOCD_DISK_ENTRIES;
  unsigned char *total = z.buf + z.eocd + ZB_EOCD_ENTRIES;
  const struct {
    uint16_t n;
    const char *what;
  } cases[] = {
      {5, "5 entries claimed, 4 in the directory"},
      {100, "100 entries claimed, 4 in the directory"},
      {0xfffe, "65534 entries claimed, 4 in the directory"},
      {3, "3 entries claimed, 4 in the directory"},
      {0, "0 entries claimed, 4 in the directory"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    zb_put16(disk, cases[i].n);
    zb_put16(total, cases[i].n);
    zt_refused(z.buf, z.len, cases[i].what);
  }
  /* This disk's count differs from the total: a split archive. */
  zb_put16(disk, 4);
  zb_put16(total, 5);
  zt_refused(z.buf, z.len, "a split archive's counts");
  zb_put16(total, 4);
  zb_put16(z.buf + z.eocd + 4, 1); /* this disk's number */
  zt_refused(z.buf, z.len, "the end record on disk 1");
  zb_free(&z);

  zb_opts o = {1, 0, NULL, 0};
  zt_dataset(&o, 0, &z);
  zb_put64(z.buf + z.eocd64 + ZB_EOCD64_ENTRIES, 1ull << 40);
  zb_put64(z.buf + z.eocd64 + ZB_EOCD64_ENTRIES - 8, 1ull << 40);
  zt_refused(z.buf, z.len, "2^40 ZIP64 entries claimed, 4 in the directory");
  zb_free(&z);
}

/* A 1 TiB file (read through the callback, mostly zeros) whose ZIP64
 * records claim a central directory of `entries` and `cd_size` bytes (0:
 * the whole file) at offset 0: refused quickly, without reading the
 * terabyte. */
static void zt_huge_claim(uint64_t entries, uint64_t cd_size,
                          const char *what) {
  const uint64_t size = 1ull << 40;
  unsigned char tail[56 + 20 + 22];
  memset(tail, 0, sizeof tail);
  uint64_t eocd64 = size - sizeof tail;
  zb_put32(tail, 0x06064b50u);
  zb_put64(tail + 4, 44);
  zb_put16(tail + 12, 45);
  zb_put16(tail + 14, 45);
  zb_put64(tail + 24, entries);
  zb_put64(tail + 32, entries);
  zb_put64(tail + 40, cd_size ? cd_size : eocd64);
  zb_put64(tail + 48, 0);
  zb_put32(tail + 56, 0x07064b50u);
  zb_put64(tail + 56 + 8, eocd64);
  zb_put32(tail + 56 + 16, 1);
  unsigned char *e = tail + 76;
  zb_put32(e, 0x06054b50u);
  zb_put16(e + 8, 0xffff);
  zb_put16(e + 10, 0xffff);
  zb_put32(e + 12, 0xffffffffu);
  zb_put32(e + 16, 0xffffffffu);
  zt_file f = {tail, sizeof tail, size, 0, 0, 0};
  zipcheck_info info;
  char err[256];
  if (zt_run(&f, &info, err, sizeof err) != -1)
    fail_msg("%s: taken", what);
  zt_refused_msg(err, what);
}

static void zt_huge_claims(void **state) {
  (void)state;
  zt_huge_claim(ZIPCHECK_MAX_ENTRIES + 1, 0, "10 million and one entries");
  zt_huge_claim(5000000, 46000, "5 million entries in 46000 bytes");
  /* Within the limits: the first entry (zeros) is damaged. */
  zt_huge_claim(1000000, 0, "a million entries of zeros");
}

static void zt_overlap(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 0, &z);
  /* The last entry's data (fashion/extra.yml) runs into the directory. */
  unsigned char *csize = z.buf + z.central[3] + ZB_CENTRAL_CSIZE;
  uint32_t real = (uint32_t)strlen(zt_yaml);
  zb_put32(csize, real + 1);
  zt_refused(z.buf, z.len, "data running 1 byte into the central directory");
  zb_put32(csize, real + (uint32_t)z.cd_size);
  zt_refused(z.buf, z.len, "data running over the central directory");
  zb_put32(csize, 0xfffffff0u);
  zt_refused(z.buf, z.len, "data of 4 GiB");
  zb_put32(csize, real);
  zt_ok(z.buf, z.len, 4, 2, "put back");
  /* Its local header's name made longer: the data starts in the
   * directory. */
  zb_put16(z.buf + z.local[3] + ZB_LOCAL_NLEN, 0xff00);
  zt_refused(z.buf, z.len, "a local name running into the directory");
  zb_free(&z);
  /* A central entry's name running past the directory's end. */
  zt_dataset(NULL, 0, &z);
  zb_put16(z.buf + z.central[3] + ZB_CENTRAL_NLEN, 200);
  zt_refused(z.buf, z.len, "a central name running past the directory");
  zb_free(&z);
  /* A central entry that is not one. */
  zt_dataset(NULL, 0, &z);
  z.buf[z.central[1]] = 'Q';
  zt_refused(z.buf, z.len, "a central header without its signature");
  zb_free(&z);
}

/* What an extractor reading the local headers finds must be what the
 * central directory says. Python's zipfile (which Ultralytics extracts
 * datasets with) refuses a local name that differs from the central one,
 * and a streaming extractor writes the local name; Info-ZIP's unzip
 * refuses two entries over the same bytes ("overlapped components
 * (possible zip bomb)"): one deflated entry listed a thousand times
 * unpacks to a thousand times its size. */
static void zt_local_header_name(void **state) {
  (void)state;
  zb_file f[] = {{"ok.txt", 0, "hello", 5, 0}, {"b.txt", 0, "world", 5, 0}};
  zb_zip z;
  assert_int_equal(zb_build(f, 2, NULL, &z), 0);
  memcpy(z.buf + z.local[0] + 30, "../xyz", 6);
  zt_refused(z.buf, z.len, "a local header named ../xyz, ok.txt centrally");
  zb_free(&z);
}

static void zt_local_header_shared(void **state) {
  (void)state;
  zb_zip z;
  zb_file same[] = {{"a.txt", 0, "hello", 5, 0}, {"a.txt", 0, "hello", 5, 0}};
  assert_int_equal(zb_build(same, 2, NULL, &z), 0);
  zb_put32(z.buf + z.central[1] + ZB_CENTRAL_OFFSET, (uint32_t)z.local[0]);
  zt_refused(z.buf, z.len, "two entries over one local header");
  zb_free(&z);
}

static void zt_read_errors(void **state) {
  (void)state;
  zb_zip z;
  zt_dataset(NULL, 0, &z);
  zt_file f = {z.buf, z.len, z.len, 0, 0, 1};
  zipcheck_info info;
  char err[256];
  assert_int_equal(zt_run(&f, &info, err, sizeof err), -1);
  assert_true(err[0] != '\0');
  /* A small message buffer: cut, terminated, never overrun. */
  char small[12];
  memset(small, 'Z', sizeof small);
  zt_file g = {z.buf, z.len - 1, z.len - 1, 0, 0, 0};
  assert_int_equal(zt_run(&g, &info, small, 10), -1);
  assert_int_equal(small[9], '\0');
  assert_int_equal(small[10], 'Z');
  assert_string_equal(small, "not a zip");
  zb_free(&z);
}

/* Every byte of a small archive changed (to 0, 0xff, its top bit flipped,
 * '\\' and '/'): zipcheck answers every time, reads only inside the file,
 * counts no more entries than fit, and never takes a name made unsafe. */
static void zt_mutations(void **state) {
  (void)state;
  zb_zip z;
  zb_file files[] = {{"d/a.yaml", 0, "x: 1\n", 5, 0},
                     {"d/b.txt", 0, zt_labels, strlen(zt_labels), 1}};
  assert_int_equal(zb_build(files, 2, NULL, &z), 0);
  unsigned char *m = malloc(z.len);
  size_t taken = 0, refused = 0;
  for (size_t i = 0; i < z.len; i++) {
    int in_name = 0, first = 0;
    for (size_t k = 0; k < 2; k++) {
      size_t s = z.central[k] + ZB_CENTRAL_LEN;
      size_t n = strlen(files[k].name);
      if (i >= s && i < s + n)
        in_name = 1, first = i == s;
    }
    const unsigned char vals[] = {0x00, 0xff, (unsigned char)(z.buf[i] ^ 0x80),
                                  '\\', '/'};
    for (size_t v = 0; v < sizeof vals; v++) {
      if (vals[v] == z.buf[i])
        continue;
      memcpy(m, z.buf, z.len);
      m[i] = vals[v];
      zipcheck_info info;
      char err[256];
      int rc = zt_check(m, z.len, &info, err);
      if (rc == 0) {
        taken++;
        if (info.entries == 0 || info.entries > 2 || info.yamls > info.entries)
          fail_msg("byte %zu = 0x%02x: taken with %llu entries, %llu yamls", i,
                   vals[v], (unsigned long long)info.entries,
                   (unsigned long long)info.yamls);
        int unsafe =
            vals[v] == 0 || vals[v] == '\\' || (first && vals[v] == '/');
        if (in_name && unsafe)
          fail_msg("byte %zu of a name set to 0x%02x: taken", i, vals[v]);
      } else {
        refused++;
        if (strncmp(err, "not a zip file: ", 16) != 0)
          fail_msg("byte %zu = 0x%02x: refused with \"%s\"", i, vals[v], err);
      }
    }
  }
  fprintf(stderr, "  %zu mutations of a %zu-byte zip: %zu taken, %zu refused\n",
          taken + refused, z.len, taken, refused);
  assert_true(refused > 0 && taken > 0);
  free(m);
  zb_free(&z);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(zt_valid_stored),
      cmocka_unit_test(zt_valid_deflated),
      cmocka_unit_test(zt_valid_zip64),
      cmocka_unit_test(zt_comment),
      cmocka_unit_test(zt_not_a_zip),
      cmocka_unit_test(zt_truncated),
      cmocka_unit_test(zt_names),
      cmocka_unit_test(zt_central_directory_offset),
      cmocka_unit_test(zt_local_header_offset),
      cmocka_unit_test(zt_entry_count),
      cmocka_unit_test(zt_huge_claims),
      cmocka_unit_test(zt_overlap),
      cmocka_unit_test(zt_local_header_name),
      cmocka_unit_test(zt_local_header_shared),
      cmocka_unit_test(zt_read_errors),
      cmocka_unit_test(zt_mutations),
  };
  return cmocka_run_group_tests_name("server_zipcheck", tests, NULL, NULL);
}

/*
 * zipbuild.c - small zip archives built by hand (see zipbuild.h).
 */
#include "zipbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct zb_buf {
  unsigned char *p;
  size_t len, cap;
  int failed;
} zb_buf;

static void zb_add(zb_buf *b, const void *data, size_t n) {
  if (b->failed)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
      cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
}

void zb_put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

void zb_put32(unsigned char *p, uint32_t v) {
  zb_put16(p, (uint16_t)v);
  zb_put16(p + 2, (uint16_t)(v >> 16));
}

void zb_put64(unsigned char *p, uint64_t v) {
  zb_put32(p, (uint32_t)v);
  zb_put32(p + 4, (uint32_t)(v >> 32));
}

static void zb_add16(zb_buf *b, uint16_t v) {
  unsigned char t[2];
  zb_put16(t, v);
  zb_add(b, t, 2);
}

static void zb_add32(zb_buf *b, uint32_t v) {
  unsigned char t[4];
  zb_put32(t, v);
  zb_add(b, t, 4);
}

static void zb_add64(zb_buf *b, uint64_t v) {
  unsigned char t[8];
  zb_put64(t, v);
  zb_add(b, t, 8);
}

/* Raw deflate (no zlib header), as method 8 stores it; malloc'd. */
static unsigned char *zb_deflate(const void *data, size_t len, size_t *out) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (deflateInit2(&s, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return NULL;
  uLong cap = deflateBound(&s, (uLong)len);
  unsigned char *buf = malloc(cap ? cap : 1);
  if (!buf) {
    deflateEnd(&s);
    return NULL;
  }
  s.next_in = (Bytef *)data;
  s.avail_in = (uInt)len;
  s.next_out = buf;
  s.avail_out = (uInt)cap;
  int rc = deflate(&s, Z_FINISH);
  *out = (size_t)s.total_out;
  deflateEnd(&s);
  if (rc != Z_STREAM_END) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* Where each entry's bytes went, for its central header. */
typedef struct zb_entry {
  uint32_t crc;
  uint64_t csize, usize, off;
  uint16_t method, nlen;
  int dir;
} zb_entry;

int zb_build(const zb_file *files, size_t n, const zb_opts *opts, zb_zip *z) {
  zb_opts none = {0, 0, NULL, 0};
  const zb_opts *o = opts ? opts : &none;
  memset(z, 0, sizeof *z);
  if (n > ZB_MAX_FILES)
    return -1;
  zb_buf b = {NULL, 0, 0, 0};
  zb_entry e[ZB_MAX_FILES];
  uint16_t need = o->zip64_entries || o->zip64 ? 45 : 20;
  uint16_t flags = o->descriptor ? 0x08 : 0;
  for (size_t i = 0; i < n; i++) {
    const zb_file *f = &files[i];
    size_t nlen = f->name_len ? f->name_len : strlen(f->name);
    unsigned char *packed = NULL;
    size_t plen = f->len;
    if (f->deflate) {
      packed = zb_deflate(f->data, f->len, &plen);
      if (!packed) {
        free(b.p);
        return -1;
      }
    }
    e[i].crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), f->data, (uInt)f->len);
    e[i].csize = plen;
    e[i].usize = f->len;
    e[i].off = b.len;
    e[i].method = f->deflate ? 8 : 0;
    e[i].nlen = (uint16_t)nlen;
    e[i].dir = nlen > 0 && f->name[nlen - 1] == '/';
    z->local[i] = b.len;
    zb_add32(&b, 0x04034b50u);
    zb_add16(&b, need);
    zb_add16(&b, flags);
    zb_add16(&b, e[i].method);
    zb_add16(&b, 0);    /* time 00:00 */
    zb_add16(&b, 0x21); /* date 1980-01-01 */
    zb_add32(&b, o->descriptor ? 0 : e[i].crc);
    if (o->descriptor && !o->zip64_entries) {
      zb_add32(&b, 0);
      zb_add32(&b, 0);
    } else if (o->zip64_entries) {
      zb_add32(&b, 0xffffffffu);
      zb_add32(&b, 0xffffffffu);
    } else {
      zb_add32(&b, (uint32_t)e[i].csize);
      zb_add32(&b, (uint32_t)e[i].usize);
    }
    zb_add16(&b, (uint16_t)nlen);
    zb_add16(&b, o->zip64_entries ? 20 : 0);
    zb_add(&b, f->name, nlen);
    if (o->zip64_entries) {
      zb_add16(&b, 0x0001);
      zb_add16(&b, 16);
      zb_add64(&b, o->descriptor ? 0 : e[i].usize);
      zb_add64(&b, o->descriptor ? 0 : e[i].csize);
    }
    zb_add(&b, packed ? packed : f->data, plen);
    free(packed);
    if (o->descriptor) {
      zb_add32(&b, 0x08074b50u);
      zb_add32(&b, e[i].crc);
      if (o->zip64_entries) {
        zb_add64(&b, e[i].csize);
        zb_add64(&b, e[i].usize);
      } else {
        zb_add32(&b, (uint32_t)e[i].csize);
        zb_add32(&b, (uint32_t)e[i].usize);
      }
    }
  }
  z->cd_off = b.len;
  for (size_t i = 0; i < n; i++) {
    z->central[i] = b.len;
    zb_add32(&b, 0x02014b50u);
    zb_add16(&b, 0x031e); /* made by: unix, 3.0 */
    zb_add16(&b, need);
    zb_add16(&b, flags);
    zb_add16(&b, e[i].method);
    zb_add16(&b, 0);
    zb_add16(&b, 0x21);
    zb_add32(&b, e[i].crc);
    if (o->zip64_entries) {
      zb_add32(&b, 0xffffffffu);
      zb_add32(&b, 0xffffffffu);
    } else {
      zb_add32(&b, (uint32_t)e[i].csize);
      zb_add32(&b, (uint32_t)e[i].usize);
    }
    zb_add16(&b, e[i].nlen);
    zb_add16(&b, o->zip64_entries ? 28 : 0);
    zb_add16(&b, 0); /* comment */
    zb_add16(&b, 0); /* disk */
    zb_add16(&b, 0); /* internal attributes */
    zb_add32(&b, e[i].dir ? (040755u << 16) | 0x10 : 0100644u << 16);
    zb_add32(&b, o->zip64_entries ? 0xffffffffu : (uint32_t)e[i].off);
    zb_add(&b, files[i].name, e[i].nlen);
    if (o->zip64_entries) {
      zb_add16(&b, 0x0001);
      zb_add16(&b, 24);
      zb_add64(&b, e[i].usize);
      zb_add64(&b, e[i].csize);
      zb_add64(&b, e[i].off);
    }
  }
  z->cd_size = b.len - z->cd_off;
  if (o->zip64) {
    z->eocd64 = b.len;
    zb_add32(&b, 0x06064b50u);
    zb_add64(&b, 44); /* the record's size after this field */
    zb_add16(&b, 0x031e);
    zb_add16(&b, 45);
    zb_add32(&b, 0); /* this disk */
    zb_add32(&b, 0); /* the directory's disk */
    zb_add64(&b, n);
    zb_add64(&b, n);
    zb_add64(&b, z->cd_size);
    zb_add64(&b, z->cd_off);
    z->locator = b.len;
    zb_add32(&b, 0x07064b50u);
    zb_add32(&b, 0); /* the ZIP64 end record's disk */
    zb_add64(&b, z->eocd64);
    zb_add32(&b, 1); /* disks */
  }
  z->eocd = b.len;
  size_t clen = o->comment ? strlen(o->comment) : 0;
  zb_add32(&b, 0x06054b50u);
  zb_add16(&b, 0);
  zb_add16(&b, 0);
  zb_add16(&b, o->zip64 ? 0xffff : (uint16_t)n);
  zb_add16(&b, o->zip64 ? 0xffff : (uint16_t)n);
  zb_add32(&b, o->zip64 ? 0xffffffffu : (uint32_t)z->cd_size);
  zb_add32(&b, o->zip64 ? 0xffffffffu : (uint32_t)z->cd_off);
  zb_add16(&b, (uint16_t)clen);
  zb_add(&b, o->comment, clen);
  if (b.failed) {
    free(b.p);
    memset(z, 0, sizeof *z);
    return -1;
  }
  z->buf = b.p;
  z->len = b.len;
  z->n = n;
  return 0;
}

void zb_one(const char *name, const void *data, size_t len, zb_zip *z) {
  zb_file f = {name, 0, data, len, 0};
  if (zb_build(&f, 1, NULL, z) != 0) {
    fprintf(stderr, "zipbuild: cannot build a zip of %s\n", name);
    abort();
  }
}

void zb_free(zb_zip *z) {
  free(z->buf);
  memset(z, 0, sizeof *z);
}

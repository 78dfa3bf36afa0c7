/*
 * spool_record.c - framing and checking the spool's records (the format is
 * in spool_record.h).
 *
 * Every check a record must pass lives here, so that replay, reads and
 * compaction agree on what a record is: the magic, a known type and
 * version, a length within bounds, the CRC-32 over header and payload, and
 * a payload whose structure fits its type. Bytes that fail are never
 * decoded.
 */
#include "spool_record.h"

#include "crc32.h"
#include "hot_path.h"

#include <string.h>

#define SPOOL_FLAG_FINAL 1u
#define SPOOL_FLAG_BEST 2u

/* CRC-32 of the record (IEEE 802.3, zlib's crc32() value): the value the
 * spool has always written, so spools written before read the same. */
CHUB_HOT static uint32_t spool_record_crc(uint32_t crc, const unsigned char *p,
                                          size_t n) {
  return crc32_ieee(crc, p, n);
}

/* Sequence numbers start at 1 and stay far from overflowing next_seq. */
static bool spool_record_seq_ok(const unsigned char *p) {
  uint64_t seq = spool_get64(p);
  return seq > 0 && seq < (UINT64_C(1) << 62);
}

/* Checks the payload's structure for its type, so that a record that passes
 * is always safe to decode. */
static bool spool_record_payload_ok(int type, const unsigned char *p,
                                    size_t len) {
  switch (type) {
  case SPOOL_METRICS:
    return len > 4 && (int32_t)spool_get32(p) >= 0 &&
           memchr(p + 4, 0, len - 4) == NULL;
  case SPOOL_METRICS_ACK:
    if (len == 0 || len % 4 != 0)
      return false;
    for (size_t i = 0; i < len; i += 4)
      if ((int32_t)spool_get32(p + i) < 0)
        return false;
    return true;
  case SPOOL_CKPT:
    return len > SPOOL_CKPT_FIXED && len - SPOOL_CKPT_FIXED <= SPOOL_MAX_PATH &&
           spool_record_seq_ok(p) && (int32_t)spool_get32(p + 8) >= 0 &&
           (p[12] & ~(SPOOL_FLAG_FINAL | SPOOL_FLAG_BEST)) == 0 &&
           memchr(p + SPOOL_CKPT_FIXED, 0, len - SPOOL_CKPT_FIXED) == NULL;
  case SPOOL_CKPT_ACK:
    return len == 8 && spool_record_seq_ok(p);
  case SPOOL_METRICS_ITEMS:
    if (len < 4 || (int32_t)spool_get32(p) < 0)
      return false;
    for (size_t at = 4; at < len;) {
      if (len - at < SPOOL_ITEM_FIXED || p[at] > 1)
        return false;
      uint32_t klen = spool_get32(p + at + 1);
      if (klen > len - at - SPOOL_ITEM_FIXED ||
          memchr(p + at + 5, 0, klen) != NULL)
        return false;
      at += SPOOL_ITEM_FIXED + klen;
    }
    return true;
  default:
    return false;
  }
}

/* The format a record of `type` is written in (see SPOOL_VERSION). */
static unsigned char spool_record_version(int type) {
  return type == SPOOL_METRICS_ITEMS ? SPOOL_VERSION : SPOOL_VERSION_MIN;
}

enum spool_verdict spool_record_check_header(const unsigned char *buf,
                                             size_t avail, uint32_t *len) {
  if (avail < SPOOL_HEADER)
    return SPOOL_TORN;
  if (spool_get32(buf) != SPOOL_MAGIC)
    return SPOOL_CORRUPT;
  *len = spool_get32(buf + 8);
  if (*len > SPOOL_MAX_PAYLOAD)
    return SPOOL_CORRUPT;
  if (buf[5] > SPOOL_VERSION)
    return SPOOL_NEWER; /* confirmed by the checksum in spool_record_check */
  /* Each type is written in exactly one format (spool_record_version). */
  if (buf[4] < SPOOL_METRICS || buf[4] > SPOOL_METRICS_ITEMS ||
      buf[5] != spool_record_version(buf[4]) || buf[6] != 0 || buf[7] != 0)
    return SPOOL_CORRUPT;
  return SPOOL_VALID;
}

enum spool_verdict spool_record_check(const unsigned char *buf, size_t avail,
                                      int *type, const unsigned char **payload,
                                      uint32_t *plen, size_t *total) {
  uint32_t len = 0;
  enum spool_verdict v = spool_record_check_header(buf, avail, &len);
  if (v != SPOOL_VALID && v != SPOOL_NEWER)
    return v;
  if (avail - SPOOL_HEADER < len)
    return SPOOL_TORN;
  uint32_t crc = spool_record_crc(0, buf, 12);
  crc = spool_record_crc(crc, buf + SPOOL_HEADER, len);
  if (crc != spool_get32(buf + 12))
    return SPOOL_CORRUPT;
  if (v == SPOOL_NEWER)
    return SPOOL_NEWER;
  if (!spool_record_payload_ok(buf[4], buf + SPOOL_HEADER, len))
    return SPOOL_CORRUPT;
  *type = buf[4];
  *payload = buf + SPOOL_HEADER;
  *plen = len;
  *total = SPOOL_HEADER + (size_t)len;
  return SPOOL_VALID;
}

size_t spool_record_frame(unsigned char *out, int type, const void *a,
                          size_t alen, const void *b, size_t blen) {
  uint32_t len = (uint32_t)(alen + blen);
  spool_put32(out, SPOOL_MAGIC);
  out[4] = (unsigned char)type;
  out[5] = spool_record_version(type);
  out[6] = 0;
  out[7] = 0;
  spool_put32(out + 8, len);
  if (alen)
    memcpy(out + SPOOL_HEADER, a, alen);
  if (blen)
    memcpy(out + SPOOL_HEADER + alen, b, blen);
  uint32_t crc = spool_record_crc(0, out, 12);
  crc = spool_record_crc(crc, out + SPOOL_HEADER, len);
  spool_put32(out + 12, crc);
  return SPOOL_HEADER + (size_t)len;
}

CHUB_HOT size_t spool_record_items_size(const flat_item *items, size_t n) {
  size_t len = 4;
  for (size_t i = 0; i < n; i++)
    if (items[i].name)
      len += SPOOL_ITEM_FIXED + items[i].plen + items[i].nlen;
  return len;
}

CHUB_HOT size_t spool_record_frame_items(unsigned char *out, int epoch,
                                         const flat_item *items, size_t n,
                                         bool *dropped) {
  unsigned char *w = out + SPOOL_HEADER;
  spool_put32(w, (uint32_t)epoch);
  w += 4;
  for (size_t i = 0; i < n; i++) {
    const flat_item *it = &items[i];
    if (!it->name)
      continue;
    if (!flat_item_sendable(it)) {
      *dropped = true;
      continue;
    }
    uint64_t bits;
    memcpy(&bits, &it->value, sizeof bits);
    *w = it->integer ? 1 : 0;
    spool_put32(w + 1, (uint32_t)(it->plen + it->nlen));
    w += 5;
    memcpy(w, it->prefix, it->plen);
    w += it->plen;
    memcpy(w, it->name, it->nlen);
    w += it->nlen;
    spool_put64(w, bits);
    w += 8;
  }
  uint32_t len = (uint32_t)(w - out - SPOOL_HEADER);
  spool_put32(out, SPOOL_MAGIC);
  out[4] = SPOOL_METRICS_ITEMS;
  out[5] = spool_record_version(SPOOL_METRICS_ITEMS);
  out[6] = 0;
  out[7] = 0;
  spool_put32(out + 8, len);
  uint32_t crc = spool_record_crc(0, out, 12);
  crc = spool_record_crc(crc, out + SPOOL_HEADER, len);
  spool_put32(out + 12, crc);
  return SPOOL_HEADER + (size_t)len;
}

size_t spool_record_read_items(const unsigned char *p, size_t len,
                               flat_item *out, size_t max) {
  size_t n = 0;
  for (size_t at = 4; at + SPOOL_ITEM_FIXED <= len; n++) {
    uint32_t klen = spool_get32(p + at + 1);
    if (n < max) {
      uint64_t bits = spool_get64(p + at + 5 + klen);
      flat_item *it = &out[n];
      *it = (flat_item){.prefix = "",
                        .name = (const char *)p + at + 5,
                        .nlen = klen,
                        .integer = p[at] == 1};
      memcpy(&it->value, &bits, sizeof bits);
    }
    at += SPOOL_ITEM_FIXED + klen;
  }
  return n;
}

size_t spool_record_frame_ckpt(unsigned char *out, const spool_record_ckpt *c) {
  unsigned char fixed[SPOOL_CKPT_FIXED];
  uint64_t bits;
  memcpy(&bits, &c->map, sizeof bits);
  spool_put64(fixed, c->seq);
  spool_put32(fixed + 8, (uint32_t)c->epoch);
  fixed[12] = (unsigned char)((c->final ? SPOOL_FLAG_FINAL : 0) |
                              (c->is_best ? SPOOL_FLAG_BEST : 0));
  spool_put64(fixed + 13, bits);
  spool_put64(fixed + 21, (uint64_t)c->size);
  spool_put64(fixed + 29, (uint64_t)c->mtime_ns);
  return spool_record_frame(out, SPOOL_CKPT, fixed, sizeof fixed, c->path,
                            c->path_len);
}

void spool_record_read_ckpt(const unsigned char *p, size_t len,
                            spool_record_ckpt *c) {
  uint64_t bits = spool_get64(p + 13);
  c->seq = spool_get64(p);
  c->epoch = (int)(int32_t)spool_get32(p + 8);
  c->final = (p[12] & SPOOL_FLAG_FINAL) != 0;
  c->is_best = (p[12] & SPOOL_FLAG_BEST) != 0;
  memcpy(&c->map, &bits, sizeof c->map);
  c->size = (long long)spool_get64(p + 21);
  c->mtime_ns = (long long)spool_get64(p + 29);
  c->path = (const char *)p + SPOOL_CKPT_FIXED;
  c->path_len = len - SPOOL_CKPT_FIXED;
}

size_t spool_scan(const unsigned char *buf, size_t len, spool_record_fn fn,
                  void *user) {
  size_t off = 0;
  while (off < len) {
    int type = 0;
    const unsigned char *payload = NULL;
    uint32_t plen = 0;
    size_t total = 0;
    if (spool_record_check(buf + off, len - off, &type, &payload, &plen,
                           &total) != SPOOL_VALID)
      break;
    if (fn)
      fn(type, payload, plen, user);
    off += total;
  }
  return off;
}

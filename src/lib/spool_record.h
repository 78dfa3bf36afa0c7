/*
 * spool_record.h - the spool's record format: framing, checksums and the
 * checks that decide whether bytes are a record. Pure functions over
 * buffers, no I/O and no state, so the fuzzer drives them directly.
 *
 * Layout (little-endian):
 *   0  u32 magic "CSPL"      8  u32 payload length
 *   4  u8 type, u8 version,  12 u32 CRC-32 (IEEE, zlib's crc32()) of
 *      u16 zero                 bytes 0..11 and the payload
 *   16 payload
 * Payloads:
 *   metrics      i32 epoch, JSON text (no NUL)
 *   metrics-items  (format 3) i32 epoch, then per entry: u8 flags (1 a
 *                count), u32 key length, the key (no NUL), f64 value; the
 *                epoch's flat map before it is JSON (flat_map.h writes it
 *                when the epoch is read), so the trainer's thread formats
 *                no numbers
 *   metrics-ack  i32 epoch, repeated
 *   checkpoint   u64 seq, i32 epoch, u8 flags (1 final, 2 best), f64 map,
 *                i64 size, i64 mtime_ns (the file as queued), path (no NUL)
 *   ckpt-ack     u64 seq
 * A record that passes spool_record_check() is always safe to decode.
 */
#ifndef CHUB_SPOOL_RECORD_H
#define CHUB_SPOOL_RECORD_H

#include "chub.h"
#include "flat_map.h"

#include <stddef.h>
#include <stdint.h>

#define SPOOL_MAGIC 0x4c505343u /* "CSPL" read as little-endian u32 */
/* The format each record is written in: 2 (checkpoints carry the file's
 * size and mtime) for every type but metrics-items, which is 3, so that a
 * chub that predates it leaves such a spool alone (SPOOL_NEWER) instead
 * of reading it wrong. */
#define SPOOL_VERSION_MIN 2
#define SPOOL_VERSION 3
#define SPOOL_HEADER 16
#define SPOOL_MAX_PAYLOAD (1u << 20) /* metrics JSON of one epoch, a path */
#define SPOOL_MAX_PATH 4096
/* seq 8 + epoch 4 + flags 1 + map 8 + size 8 + mtime_ns 8 */
#define SPOOL_CKPT_FIXED 37
/* The largest checkpoint record, for a stack buffer. */
#define SPOOL_CKPT_RECORD (SPOOL_HEADER + SPOOL_CKPT_FIXED + SPOOL_MAX_PATH)

enum spool_type {
  SPOOL_METRICS = 1,
  SPOOL_METRICS_ACK = 2,
  SPOOL_CKPT = 3,
  SPOOL_CKPT_ACK = 4,
  SPOOL_METRICS_ITEMS = 5
};

/* The bytes an entry of a metrics-items payload takes beside its key. */
#define SPOOL_ITEM_FIXED 13

/* What spool_record_check() made of the bytes at the start of a buffer. */
enum spool_verdict {
  SPOOL_VALID,   /* a whole, checksummed, well-formed record */
  SPOOL_TORN,    /* the header or the payload runs past the end */
  SPOOL_CORRUPT, /* the bytes are complete but not a record */
  SPOOL_NEWER    /* a whole, checksummed record of a later format */
};

/* A checkpoint as the record carries it (the path points into the
 * payload and is not NUL-terminated). */
typedef struct spool_record_ckpt {
  uint64_t seq;
  int epoch;
  bool final;
  bool is_best;
  double map;
  long long size;
  long long mtime_ns;
  const char *path;
  size_t path_len;
} spool_record_ckpt;

static inline void spool_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t spool_get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static inline void spool_put64(unsigned char *p, uint64_t v) {
  spool_put32(p, (uint32_t)v);
  spool_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t spool_get64(const unsigned char *p) {
  return (uint64_t)spool_get32(p) | (uint64_t)spool_get32(p + 4) << 32;
}

/* Reads the record header at buf (`avail` bytes readable): its payload
 * length into *len, or a verdict when the header alone already says torn
 * or corrupt. SPOOL_NEWER here is confirmed only by spool_record_check. */
enum spool_verdict spool_record_check_header(const unsigned char *buf,
                                             size_t avail, uint32_t *len);

/* Verifies one whole record at buf (header and payload, `avail` bytes
 * readable). On SPOOL_VALID sets the type, the payload, its length and the
 * record's total size. */
enum spool_verdict spool_record_check(const unsigned char *buf, size_t avail,
                                      int *type, const unsigned char **payload,
                                      uint32_t *plen, size_t *total);

/* Frames a record into out: the header, then the payload pieces a and b (b
 * may be empty). out must hold SPOOL_HEADER + alen + blen bytes. Returns
 * the record's size. */
size_t spool_record_frame(unsigned char *out, int type, const void *a,
                          size_t alen, const void *b, size_t blen);

/* Frames checkpoint `c` (path of c->path_len bytes, at most
 * SPOOL_MAX_PATH) into out (SPOOL_CKPT_RECORD bytes). */
size_t spool_record_frame_ckpt(unsigned char *out, const spool_record_ckpt *c);

/* The payload size of a metrics-items record of all the entries of
 * entries[0..n) that have a name: what spool_record_frame_items needs, at
 * most. */
size_t spool_record_items_size(const flat_item *items, size_t n);

/* Frames the metrics-items record of `epoch` into out, which holds
 * SPOOL_HEADER + spool_record_items_size(items, n) bytes. Entries without a
 * name are skipped; those the hub could not take (a value that is not
 * finite, a key that is not UTF-8 or holds a NUL) are left out and set
 * *dropped. Returns the record's size. */
size_t spool_record_frame_items(unsigned char *out, int epoch,
                                const flat_item *items, size_t n,
                                bool *dropped);

/* Decodes up to `max` entries of a metrics-items payload that passed the
 * check into out (keys point into the payload); returns how many it has,
 * so a first call with max 0 counts them. */
size_t spool_record_read_items(const unsigned char *p, size_t len,
                               flat_item *out, size_t max);

/* Decodes the payload of a checkpoint record that passed the check. */
void spool_record_read_ckpt(const unsigned char *payload, size_t len,
                            spool_record_ckpt *c);

/* The record scanner behind replay, exposed for tests and fuzzing: calls
 * `fn` for each valid record in buf, stops at the first torn or corrupt
 * one and returns how many bytes were valid. */
typedef void (*spool_record_fn)(int type, const unsigned char *payload,
                                size_t len, void *user);
size_t spool_scan(const unsigned char *buf, size_t len, spool_record_fn fn,
                  void *user);

#endif

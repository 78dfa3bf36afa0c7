/*
 * flat_map.h - an epoch's flat metrics map as the JSON text the hub takes
 * ({"train/box_loss": 1.25, "metrics/mAP50-95(B)": 0.31, ...}), written
 * from a list of entries without a JSON library or an allocation.
 *
 *   flat_item it[] = {flat_item_of("train/", "box_loss", 1.25, false),
 *                     flat_item_of("", "model/parameters", 2590620, true)};
 *   bool dropped = false;
 *   size_t need = flat_map_json(it, 2, buf, sizeof buf, &dropped);
 *   if (need >= sizeof buf)   // too small: call again with need + 1 bytes
 *
 * Entries the hub could not take are left out and *dropped is set:
 * non-finite values (JSON has no NaN) and keys that are not UTF-8 (the hub
 * would refuse the whole batch). A later entry with the same key wins, as
 * a Python dict update does. Numbers are "%.17g" (they read back as the
 * same double); whole values print as "3.0", or "3" for counts.
 */
#ifndef CHUB_FLAT_MAP_H
#define CHUB_FLAT_MAP_H

#include <stdbool.h>
#include <stddef.h>

/* One entry: key = prefix + name (neither needs a NUL within its length).
 * An entry with a NULL name is skipped, silently. */
typedef struct flat_item {
  const char *prefix;
  const char *name;
  size_t plen, nlen;
  double value;
  bool integer; /* a count: printed without a fraction */
  bool twin;    /* flat_map_json's own: a later key has the same length */
} flat_item;

/* An entry of NUL-terminated prefix and name (name may be NULL). */
flat_item flat_item_of(const char *prefix, const char *name, double value,
                       bool integer);

/* Whether the hub can take the entry: a finite value and a UTF-8 key. */
bool flat_item_sendable(const flat_item *it);

/* The map as JSON into buf (NUL-terminated when cap > 0); returns the
 * length it needs without the NUL, so a result >= cap means "call again
 * with more". Sets *dropped when an entry was left out. */
size_t flat_map_json(flat_item *items, size_t n, char *buf, size_t cap,
                     bool *dropped);

#endif

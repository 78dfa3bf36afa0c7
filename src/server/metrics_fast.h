/*
 * metrics_fast.h - a metrics upload's body read in one pass, without a
 * JSON tree.
 *
 * Nearly every metrics upload has the same shape:
 *
 *   {"type": "metrics", "metrics": {"7": "{\"train/box_loss\": 1.25}"}}
 *
 * Checking it with jansson decodes the body into a tree of small
 * allocations, then decodes each epoch's string again into another, only
 * to free both: on the request thread that was the largest single cost of
 * a metrics upload. metrics_fast() reads such a body in one pass and
 * allocates only the text that is stored.
 *
 * It is a shortcut, not a second judge: it accepts a body only when
 * validate_metrics() would accept it with the same epochs, and hands
 * everything else back undecided: any error, an escape other than
 * \" \\ \/ \b \f \n \r \t, a byte outside printable ASCII, a repeated
 * name, a number near the limits of a long long or a double, more than
 * METRICS_FAST_NAMES values in one epoch. The caller then takes the full
 * path (validate_json_object() and validate_metrics()), which also words
 * the error.
 */
#ifndef CHUBD_METRICS_FAST_H
#define CHUBD_METRICS_FAST_H

#include <stddef.h>

#include "store.h"

/* An epoch with more named values than this is left to the full path. */
#define METRICS_FAST_NAMES 64

/* 1: the body is a valid metrics upload; *out holds its *n epochs in the
 * body's order, each with its text as decoded (free with
 * validate_epochs_free()). 0: not decided here, or out of memory; *out is
 * NULL and the full path decides. */
int metrics_fast(const char *buf, size_t len, store_epoch **out, size_t *n);

#endif

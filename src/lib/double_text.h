/*
 * double_text.h - a double as the text printf("%.17g") gives, fast.
 *
 * The epoch's flat map is built on the trainer's thread, and glibc's
 * printf formats a double through arbitrary-precision arithmetic: nine
 * numbers cost most of on_fit_epoch_end. 17 significant digits read back
 * as exactly the same double, and for the values metrics take (about 1e-15
 * to 1e30) they can be computed exactly in 128-bit integer arithmetic, so
 * this writes the very same bytes as "%.17g" in a fraction of the time and
 * falls back to snprintf outside that range. tests/lib/test_double_text.c
 * compares the two on millions of values.
 */
#ifndef CHUB_DOUBLE_TEXT_H
#define CHUB_DOUBLE_TEXT_H

#include <stddef.h>

/* Writes v as "%.17g" would into out (at least 32 bytes), NUL-terminated;
 * returns the length. */
size_t double_text_17g(double v, char *out);

#endif

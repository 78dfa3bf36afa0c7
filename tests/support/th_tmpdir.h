/*
 * th_tmpdir.h - a fresh temporary directory per test, and its removal.
 *
 * Every suite that writes files (settings, runs, spools, chubd's data) makes
 * its directory here: under $TMPDIR (or /tmp when it is unset or empty),
 * named PREFIX-XXXXXX by mkdtemp. Removal walks the tree with nftw, never
 * following a symlink and never running a shell; with CHUB_KEEP_TMP set in
 * the environment th_tmpdir_remove keeps the tree and says where it is, so
 * a failing test's files can be looked at.
 */
#ifndef TH_TMPDIR_H
#define TH_TMPDIR_H

#include <stddef.h>

/* Creates a new empty directory $TMPDIR/PREFIX-XXXXXX (mode 0700) and
 * writes its path into out[len]. Returns 0, or -1 after printing why (the
 * path did not fit, or mkdtemp failed). */
int th_tmpdir_make(char *out, size_t len, const char *prefix);

/* As th_tmpdir_make, the path malloc'd (the caller frees); NULL on
 * failure. */
char *th_tmpdir_new(const char *prefix);

/* Removes the tree at path unless CHUB_KEEP_TMP is set, in which case it
 * prints "kept PATH" to stderr and leaves it. NULL is a no-op. Returns 0
 * when the tree is gone (or kept), -1 when something could not be
 * removed. */
int th_tmpdir_remove(const char *path);

/* Removes the tree at path whatever the environment says (no symlink is
 * followed; an entry that cannot be removed is reported and skipped).
 * Returns 0 when everything went, -1 otherwise. */
int th_rmtree(const char *path);

#endif

/*
 * hot_path.h - CHUB_HOT marks the functions that on_fit_epoch_end runs on
 * the trainer's thread every epoch.
 *
 * The compiler places them side by side (in .text.hot), so the path spans
 * a couple of code pages instead of one or more per source file. That
 * matters because the path makes a system call: on a machine whose kernel
 * isolates its page tables and has no PCID, every system call empties the
 * TLB, and each page touched after it costs a page-table walk. Measured by
 * bench/callbacks; mark only what that path runs.
 */
#ifndef CHUB_HOT_PATH_H
#define CHUB_HOT_PATH_H

#if defined(__GNUC__)
#define CHUB_HOT __attribute__((hot))
#else
#define CHUB_HOT
#endif

#endif

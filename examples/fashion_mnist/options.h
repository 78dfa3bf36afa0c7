/*
 * options.h - the trainer's command line.
 */
#ifndef FASHION_MNIST_OPTIONS_H
#define FASHION_MNIST_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define OPTIONS_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

typedef struct options {
  const char *model;    /* architecture name (NAME.cfg) or hub model URL */
  const char *out;      /* where last.bin and best.bin go */
  const char *data_dir; /* where the IDX .gz files are */
  int epochs;
  bool epochs_set; /* given on the command line (beats the hub's args) */
  int batch;
  bool batch_set;
  double lr;
  long limit; /* first N training images; 0 = all */
  uint64_t seed;
  bool help;
} options;

/* Parses argv into `opt` (defaults first, then FASHION_MNIST_DIR, then the
 * flags). Returns 0, or -1 after writing one line saying what is wrong to
 * `err_fp`. */
int options_parse(options *opt, int argc, char **argv, FILE *err_fp);

/* Writes the help text. */
void options_usage(FILE *fp, const char *prog);

/* True when `model` is a hub model URL rather than an architecture name. */
bool options_is_url(const char *model);

#endif

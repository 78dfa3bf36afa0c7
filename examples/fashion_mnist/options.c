/*
 * options.c - parses the trainer's flags, each as `--flag VALUE` or
 * `--flag=VALUE`, with a message that names the flag and the bad value.
 *
 * Values are checked here, before the dataset is read, so a typo costs the
 * user no waiting.
 */
#include "options.h"

#include "mlp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void options_usage(FILE *fp, const char *prog) {
  static const char *const lines[] = {
      "",
      "Trains an MLP classifier on Fashion-MNIST and reports the run to a hub",
      "through chub's HUB callbacks (settings: `chub settings`).",
      "",
      "  --model NAME.cfg  architecture to train from scratch; a name, no file",
      "                    is read: mlp.cfg (784-256-128-10, the default),",
      "                    mlp-small.cfg (784-128-10), mlp-large.cfg",
      "                    (784-512-256-10)",
      "  --model URL       a hub model, http://HOST/models/ID[?api_key=KEY]:",
      "                    resumes it from its last weights, with the hub's",
      "                    epochs and batch unless given as flags",
      "  --epochs N        epochs to train (default 5; 1..10000)",
      "  --batch N         minibatch size (default 64; 1..8192)",
      "  --lr X            Adam learning rate (default 0.001; above 0, at most",
      "                    1)",
      "  --limit N         train on the first N images only (default: all",
      "                    60000); the test set is always all 10000",
      "  --out DIR         where last.bin and best.bin are written (default",
      "                    runs/fashion_mnist; created if missing)",
      "  --seed N          seed for initial weights and shuffling (default 0)",
      "  --data-dir DIR    directory holding {train,t10k}-{images-idx3,",
      "                    labels-idx1}-ubyte.gz (default: $FASHION_MNIST_DIR,",
      "                    else " OPTIONS_DEFAULT_DATA_DIR ")",
      "  --help            this text",
      "",
      "Exit status: 0 trained, 1 a run-time failure (weights, hub model), 2 a",
      "bad flag or a missing or corrupt dataset file.",
  };
  fprintf(fp,
          "usage: %s [--model NAME.cfg|URL] [--epochs N] [--batch N] "
          "[--lr X]\n"
          "       [--limit N] [--out DIR] [--seed N] [--data-dir DIR]\n",
          prog);
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    fprintf(fp, "%s\n", lines[i]);
}

bool options_is_url(const char *model) {
  return strncmp(model, "http://", 7) == 0 ||
         strncmp(model, "https://", 8) == 0;
}

static int options_long(const char *flag, const char *s, long lo, long hi,
                        long *out, FILE *err_fp) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
    fprintf(
        err_fp,
        "fashion_mnist: %s needs a whole number from %ld to %ld, got '%s'\n",
        flag, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

static int options_value(options *opt, const char *flag, const char *val,
                         FILE *err_fp) {
  long v;
  if (strcmp(flag, "--model") == 0) {
    int sizes[MLP_MAX_LAYERS + 1];
    if (!options_is_url(val) && mlp_arch(val, sizes) == 0) {
      fprintf(err_fp,
              "fashion_mnist: --model '%s' is neither a known architecture "
              "(%s) nor a hub "
              "model URL (http://HOST/models/ID)\n",
              val, mlp_arch_list());
      return -1;
    }
    opt->model = val;
  } else if (strcmp(flag, "--epochs") == 0) {
    if (options_long(flag, val, 1, 10000, &v, err_fp) != 0)
      return -1;
    opt->epochs = (int)v;
    opt->epochs_set = true;
  } else if (strcmp(flag, "--batch") == 0) {
    if (options_long(flag, val, 1, 8192, &v, err_fp) != 0)
      return -1;
    opt->batch = (int)v;
    opt->batch_set = true;
  } else if (strcmp(flag, "--lr") == 0) {
    char *end;
    errno = 0;
    double lr = strtod(val, &end);
    if (errno != 0 || end == val || *end != '\0' || !(lr > 0 && lr <= 1)) {
      fprintf(err_fp,
              "fashion_mnist: --lr needs a number above 0 and at most 1, got "
              "'%s'\n",
              val);
      return -1;
    }
    opt->lr = lr;
  } else if (strcmp(flag, "--limit") == 0) {
    if (options_long(flag, val, 1, 100000000, &v, err_fp) != 0)
      return -1;
    opt->limit = v;
  } else if (strcmp(flag, "--seed") == 0) {
    if (options_long(flag, val, 0, 2147483647, &v, err_fp) != 0)
      return -1;
    opt->seed = (uint64_t)v;
  } else if (strcmp(flag, "--out") == 0) {
    if (!*val) {
      fprintf(err_fp, "fashion_mnist: --out needs a directory\n");
      return -1;
    }
    opt->out = val;
  } else if (strcmp(flag, "--data-dir") == 0) {
    if (!*val) {
      fprintf(err_fp, "fashion_mnist: --data-dir needs a directory\n");
      return -1;
    }
    opt->data_dir = val;
  } else {
    fprintf(err_fp, "fashion_mnist: unknown flag '%s'\n", flag);
    return -1;
  }
  return 0;
}

static bool options_known(const char *flag) {
  static const char *const known[] = {"--model", "--epochs",  "--batch",
                                      "--lr",    "--limit",   "--seed",
                                      "--out",   "--data-dir"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(flag, known[i]) == 0)
      return true;
  return false;
}

int options_parse(options *opt, int argc, char **argv, FILE *err_fp) {
  const char *env_dir = getenv("FASHION_MNIST_DIR");
  *opt = (options){.model = "mlp.cfg",
                   .out = "runs/fashion_mnist",
                   .data_dir =
                       env_dir && *env_dir ? env_dir : OPTIONS_DEFAULT_DATA_DIR,
                   .epochs = 5,
                   .batch = 64,
                   .lr = 1e-3};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      opt->help = true;
      return 0;
    }
    if (strncmp(arg, "--", 2) != 0) {
      fprintf(err_fp,
              "fashion_mnist: unexpected argument '%s' (flags start with --)\n",
              arg);
      return -1;
    }
    char flag[64];
    const char *eq = strchr(arg, '=');
    const char *val;
    size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (flen >= sizeof flag) {
      fprintf(err_fp, "fashion_mnist: unknown flag '%s'\n", arg);
      return -1;
    }
    memcpy(flag, arg, flen);
    flag[flen] = '\0';
    if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      fprintf(err_fp,
              options_known(flag) ? "fashion_mnist: %s needs a value\n"
                                  : "fashion_mnist: unknown flag '%s'\n",
              flag);
      return -1;
    }
    if (options_value(opt, flag, val, err_fp) != 0)
      return -1;
  }
  return 0;
}

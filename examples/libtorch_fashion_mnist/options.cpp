/*
 * options.cpp - parses the trainer's flags with a message that names the
 * flag and the bad value, before the dataset is read, so a typo costs no
 * waiting. Same flags, ranges and exit codes as the C example's options.c.
 */
#include "options.hpp"

#include "net.hpp"

#include <cerrno>
#include <cstdlib>
#include <ostream>

namespace fmnist {

void print_usage(std::ostream &os, std::string_view prog) {
  os << "usage: " << prog
     << " [--model NAME.cfg|URL] [--epochs N] [--batch N] [--lr X]\n"
        "       [--limit N] [--out DIR] [--seed N] [--data-dir DIR]\n"
        "\n"
        "Trains a convolutional classifier on Fashion-MNIST with LibTorch "
        "(CPU) and\n"
        "reports the run to a hub through chub's HUB callbacks (settings: "
        "`chub settings`).\n"
        "\n"
        "  --model NAME.cfg  architecture to train from scratch; a name, no "
        "file is read:\n"
        "                    "
     << arch_list()
     << "\n"
        "  --model URL       a hub model, http://HOST/models/ID[?api_key=KEY]: "
        "resumes it\n"
        "                    from its last weights, with the hub's epochs and "
        "batch\n"
        "                    unless given as flags\n"
        "  --epochs N        epochs to train (default 5; 1..10000)\n"
        "  --batch N         minibatch size (default 64; 1..8192)\n"
        "  --lr X            Adam learning rate (default 0.001; above 0, at "
        "most 1)\n"
        "  --limit N         train on the first N images only (default: all "
        "60000); the\n"
        "                    test set is always all 10000\n"
        "  --out DIR         where last.pt and best.pt are written (default\n"
        "                    runs/libtorch_fashion_mnist; created if missing)\n"
        "  --seed N          seed for initial weights and shuffling (default "
        "0)\n"
        "  --data-dir DIR    directory holding {train,t10k}-{images-idx3,\n"
        "                    labels-idx1}-ubyte.gz (default: "
        "$FASHION_MNIST_DIR,\n"
        "                    else "
     << default_data_dir
     << ")\n"
        "  --help            this text\n"
        "\n"
        "Exit status: 0 trained, 1 a run-time failure (weights, hub model), 2 "
        "a bad flag\n"
        "or a missing or corrupt dataset file.\n";
}

bool is_url(std::string_view model) {
  return model.substr(0, 7) == "http://" || model.substr(0, 8) == "https://";
}

namespace {

bool parse_long(std::string_view flag, const std::string &s, long lo, long hi,
                long &out, std::ostream &err) {
  char *end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0' || v < lo || v > hi) {
    err << "libtorch_fashion_mnist: " << flag << " needs a whole number from "
        << lo << " to " << hi << ", got '" << s << "'\n";
    return false;
  }
  out = v;
  return true;
}

bool set_value(options &opt, std::string_view flag, const std::string &val,
               std::ostream &err) {
  long v = 0;
  if (flag == "--model") {
    if (!is_url(val) && !arch_named(val)) {
      err << "libtorch_fashion_mnist: --model '" << val
          << "' is neither a known architecture (" << arch_list()
          << ") nor a hub model URL (http://HOST/models/ID)\n";
      return false;
    }
    opt.model = val;
  } else if (flag == "--epochs") {
    if (!parse_long(flag, val, 1, 10000, v, err))
      return false;
    opt.epochs = static_cast<int>(v);
    opt.epochs_set = true;
  } else if (flag == "--batch") {
    if (!parse_long(flag, val, 1, 8192, v, err))
      return false;
    opt.batch = static_cast<int>(v);
    opt.batch_set = true;
  } else if (flag == "--lr") {
    char *end = nullptr;
    errno = 0;
    double lr = std::strtod(val.c_str(), &end);
    if (errno != 0 || end == val.c_str() || *end != '\0' ||
        !(lr > 0 && lr <= 1)) {
      err << "libtorch_fashion_mnist: --lr needs a number above 0 and at "
             "most 1, got '"
          << val << "'\n";
      return false;
    }
    opt.lr = lr;
  } else if (flag == "--limit") {
    if (!parse_long(flag, val, 1, 100000000, v, err))
      return false;
    opt.limit = v;
  } else if (flag == "--seed") {
    if (!parse_long(flag, val, 0, 2147483647, v, err))
      return false;
    opt.seed = static_cast<std::uint64_t>(v);
  } else if (flag == "--out" || flag == "--data-dir") {
    if (val.empty()) {
      err << "libtorch_fashion_mnist: " << flag << " needs a directory\n";
      return false;
    }
    (flag == "--out" ? opt.out : opt.data_dir) = val;
  } else {
    err << "libtorch_fashion_mnist: unknown flag '" << flag << "'\n";
    return false;
  }
  return true;
}

bool known(std::string_view flag) {
  for (std::string_view k : {"--model", "--epochs", "--batch", "--lr",
                             "--limit", "--seed", "--out", "--data-dir"})
    if (flag == k)
      return true;
  return false;
}

} // namespace

bool parse_options(options &opt, int argc, char **argv, std::ostream &err) {
  opt = options{};
  const char *env_dir = std::getenv("FASHION_MNIST_DIR");
  opt.data_dir = env_dir && *env_dir ? env_dir : default_data_dir;
  for (int i = 1; i < argc; i++) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      opt.help = true;
      return true;
    }
    if (arg.substr(0, 2) != "--") {
      err << "libtorch_fashion_mnist: unexpected argument '" << arg
          << "' (flags start with --)\n";
      return false;
    }
    size_t eq = arg.find('=');
    std::string_view flag = arg.substr(0, eq);
    std::string val;
    if (eq != std::string_view::npos) {
      val = std::string(arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      if (known(flag))
        err << "libtorch_fashion_mnist: " << flag << " needs a value\n";
      else
        err << "libtorch_fashion_mnist: unknown flag '" << flag << "'\n";
      return false;
    }
    if (!set_value(opt, flag, val, err))
      return false;
  }
  return true;
}

} // namespace fmnist

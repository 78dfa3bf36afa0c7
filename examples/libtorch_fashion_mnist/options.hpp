/*
 * options.hpp - the LibTorch trainer's command line: the C example's flags
 * (examples/fashion_mnist), with convolutional architectures for --model.
 */
#ifndef LIBTORCH_FASHION_MNIST_OPTIONS_HPP
#define LIBTORCH_FASHION_MNIST_OPTIONS_HPP

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

namespace fmnist {

inline constexpr const char *default_data_dir =
    "/usr/share/datasets/fashion-mnist";

struct options {
  std::string model = "cnn.cfg"; /* architecture name or hub model URL */
  std::string out = "runs/libtorch_fashion_mnist"; /* last.pt, best.pt */
  std::string data_dir;                            /* the IDX .gz files */
  int epochs = 5;
  bool epochs_set = false; /* given as a flag (beats the hub's args) */
  int batch = 64;
  bool batch_set = false;
  double lr = 1e-3;
  long limit = 0; /* first N training images; 0 = all */
  std::uint64_t seed = 0;
  bool help = false;
};

/* Parses argv (defaults, then FASHION_MNIST_DIR, then the flags, each as
 * `--flag VALUE` or `--flag=VALUE`). Returns true, or false after writing
 * one line saying what is wrong to `err`. */
bool parse_options(options &opt, int argc, char **argv, std::ostream &err);

/* Writes the help text. */
void print_usage(std::ostream &os, std::string_view prog);

/* True when `model` is a hub model URL rather than an architecture name. */
bool is_url(std::string_view model);

} // namespace fmnist

#endif

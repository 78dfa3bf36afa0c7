/*
 * checkpoint.hpp - last.pt and best.pt, written with LibTorch's serializer
 * (torch::serialize::OutputArchive, the format torch::save writes).
 *
 * Besides the module's parameters (conv1.weight, ...) a checkpoint holds
 * what is needed to use it with no other knowledge: `chub_arch` (the
 * channels and hidden units, so the same network is rebuilt), `chub_meta`
 * (epoch, fitness, best fitness) and `optimizer` (Adam's state, so a hub
 * model resumes where it stopped). Files are written to NAME.tmp and
 * renamed, so a reader or an upload never sees half a file.
 */
#ifndef LIBTORCH_FASHION_MNIST_CHECKPOINT_HPP
#define LIBTORCH_FASHION_MNIST_CHECKPOINT_HPP

#include "net.hpp"

#include <torch/optim/adam.h>
#include <torch/serialize/input-archive.h>

#include <string>

namespace fmnist {

struct checkpoint_meta {
  int epoch = -1; /* last finished epoch, 0-based */
  double fitness = 0;
  double best_fitness = 0;
};

/* Writes `net`, `opt` and `meta` to `path`. Throws std::exception. */
void checkpoint_save(const std::string &path, Net &net, torch::optim::Adam &opt,
                     const checkpoint_meta &meta);

/* Reads a checkpoint into a new network of the architecture it names;
 * `archive` keeps the file for checkpoint_load_optimizer(). Throws
 * std::exception naming the file. */
Net checkpoint_load(const std::string &path, checkpoint_meta &meta,
                    torch::serialize::InputArchive &archive);

/* Restores Adam's state from a loaded checkpoint into `opt`, built over
 * the loaded network's parameters. */
void checkpoint_load_optimizer(torch::serialize::InputArchive &archive,
                               torch::optim::Adam &opt);

} // namespace fmnist

#endif

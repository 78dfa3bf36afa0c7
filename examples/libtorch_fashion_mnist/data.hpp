/*
 * data.hpp - Fashion-MNIST as a LibTorch dataset.
 *
 * The files are the C example's (Debian's dataset-fashion-mnist, the four
 * gzip-compressed IDX files), read and checked by the C example's own
 * reader (examples/fashion_mnist/idx.c), so both trainers accept and refuse
 * exactly the same files with the same messages. Each set becomes two
 * tensors held in memory (images as float in [0, 1], [N, 1, 28, 28];
 * labels as int64, [N]) behind torch::data's Dataset interface, so that
 * torch::data::make_data_loader batches and shuffles it.
 */
#ifndef LIBTORCH_FASHION_MNIST_DATA_HPP
#define LIBTORCH_FASHION_MNIST_DATA_HPP

#include <torch/data.h>

#include <cstddef>
#include <optional>
#include <string>

namespace fmnist {

class dataset : public torch::data::datasets::Dataset<dataset> {
public:
  /* Loads {dir}/{prefix}-images-idx3-ubyte.gz and its labels, at most
   * `limit` items (0: all). Throws std::runtime_error naming the file. */
  dataset(const std::string &dir, const std::string &prefix, std::size_t limit);

  torch::data::Example<> get(std::size_t index) override;
  torch::optional<std::size_t> size() const override;

  const torch::Tensor &images() const {
    return images_;
  }
  const torch::Tensor &labels() const {
    return labels_;
  }

private:
  torch::Tensor images_, labels_;
};

} // namespace fmnist

#endif

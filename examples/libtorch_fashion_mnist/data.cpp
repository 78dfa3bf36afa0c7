/*
 * data.cpp - loads the IDX files with the C example's reader and keeps
 * them as tensors.
 */
#include "data.hpp"

extern "C" {
#include "idx.h"
}

#include <stdexcept>

namespace fmnist {

dataset::dataset(const std::string &dir, const std::string &prefix,
                 std::size_t limit) {
  idx_set set{};
  char err[4096 + 256];
  if (idx_load(dir.c_str(), prefix.c_str(), limit, &set, err, sizeof err) != 0)
    throw std::runtime_error(err);
  auto n = static_cast<std::int64_t>(set.count);
  auto rows = static_cast<std::int64_t>(set.rows);
  auto cols = static_cast<std::int64_t>(set.cols);
  images_ = torch::from_blob(set.pixels, {n, 1, rows, cols}, torch::kUInt8)
                .to(torch::kFloat32)
                .div_(255.0);
  labels_ = torch::from_blob(set.labels, {n}, torch::kUInt8).to(torch::kInt64);
  idx_free(&set); /* the tensors above are copies */
}

torch::data::Example<> dataset::get(std::size_t index) {
  auto i = static_cast<std::int64_t>(index);
  return {images_[i], labels_[i]};
}

torch::optional<std::size_t> dataset::size() const {
  return static_cast<std::size_t>(images_.size(0));
}

} // namespace fmnist

/*
 * evaluate.hpp - one validation pass: the numbers the trainer reports each
 * epoch, and the ones the evaluation program recomputes from a downloaded
 * checkpoint. Both call this one function, in batches of the same size, so
 * the same weights give the same counts.
 */
#ifndef LIBTORCH_FASHION_MNIST_EVALUATE_HPP
#define LIBTORCH_FASHION_MNIST_EVALUATE_HPP

#include "data.hpp"
#include "net.hpp"

namespace fmnist {

inline constexpr std::size_t eval_batch = 500;

struct eval_result {
  long hits1 = 0, hits5 = 0, count = 0;
  double loss = 0;         /* mean cross-entropy */
  double ms_per_image = 0; /* forward time */
  double top1() const {
    return count ? static_cast<double>(hits1) / static_cast<double>(count) : 0;
  }
  double top5() const {
    return count ? static_cast<double>(hits5) / static_cast<double>(count) : 0;
  }
};

/* Runs `net` (switched to eval mode, no gradients) over all of `data`. */
eval_result evaluate(Net &net, dataset &data);

} // namespace fmnist

#endif

/*
 * net.hpp - the classifier: two 3x3 convolutions (each ReLU and 2x2 max
 * pooling), a hidden fully connected layer and ten class logits, as a
 * LibTorch module. The architecture is named like the C example's
 * (NAME.cfg) and travels inside every checkpoint, so a downloaded best.pt
 * rebuilds the same network.
 */
#ifndef LIBTORCH_FASHION_MNIST_NET_HPP
#define LIBTORCH_FASHION_MNIST_NET_HPP

#include <torch/nn.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fmnist {

struct arch {
  std::string name; /* "cnn.cfg" */
  std::int64_t c1;  /* channels of the first convolution */
  std::int64_t c2;  /* and of the second */
  std::int64_t fc;  /* hidden units */
};

/* The architecture called `name` ("cnn.cfg", "cnn-small.cfg",
 * "cnn-large.cfg"; ".cfg" may be left off), or nullopt. */
std::optional<arch> arch_named(std::string_view name);

/* The names arch_named() knows, with their shapes, for help text. */
std::string arch_list();

class NetImpl : public torch::nn::Module {
public:
  explicit NetImpl(const arch &a);

  /* x: [N, 1, 28, 28] in [0, 1]; returns [N, 10] logits. */
  torch::Tensor forward(torch::Tensor x);

  const arch &architecture() const {
    return arch_;
  }
  /* Multiply-accumulates of one forward pass for one image. */
  long long macs() const;
  /* Number of trainable values. */
  long long parameter_count() const;

private:
  arch arch_;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Net);

} // namespace fmnist

#endif

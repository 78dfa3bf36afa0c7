/*
 * net.cpp - the convolutional classifier and its named architectures.
 */
#include "net.hpp"

#include <torch/nn/functional.h>

namespace fmnist {

namespace {
const arch known_archs[] = {
    {"cnn.cfg", 16, 32, 128},
    {"cnn-small.cfg", 8, 16, 64},
    {"cnn-large.cfg", 32, 64, 256},
};
} // namespace

std::optional<arch> arch_named(std::string_view name) {
  for (const arch &a : known_archs) {
    std::string_view full = a.name;
    if (name == full || name == full.substr(0, full.size() - 4))
      return a;
  }
  return std::nullopt;
}

std::string arch_list() {
  std::string out;
  for (const arch &a : known_archs) {
    if (!out.empty())
      out += ", ";
    out += a.name + " (conv " + std::to_string(a.c1) + "-" +
           std::to_string(a.c2) + ", fc " + std::to_string(a.fc) + ")";
  }
  return out;
}

NetImpl::NetImpl(const arch &a) : arch_(a) {
  namespace nn = torch::nn;
  conv1 = register_module("conv1",
                          nn::Conv2d(nn::Conv2dOptions(1, a.c1, 3).padding(1)));
  conv2 = register_module(
      "conv2", nn::Conv2d(nn::Conv2dOptions(a.c1, a.c2, 3).padding(1)));
  fc1 = register_module("fc1", nn::Linear(a.c2 * 7 * 7, a.fc));
  fc2 = register_module("fc2", nn::Linear(a.fc, 10));
}

torch::Tensor NetImpl::forward(torch::Tensor x) {
  namespace F = torch::nn::functional;
  x = F::max_pool2d(torch::relu(conv1(x)), F::MaxPool2dFuncOptions(2));
  x = F::max_pool2d(torch::relu(conv2(x)), F::MaxPool2dFuncOptions(2));
  x = torch::relu(fc1(x.flatten(1)));
  return fc2(x);
}

long long NetImpl::macs() const {
  const arch &a = arch_;
  return 28LL * 28 * a.c1 * 1 * 9 + 14LL * 14 * a.c2 * a.c1 * 9 +
         a.c2 * 7LL * 7 * a.fc + a.fc * 10LL;
}

long long NetImpl::parameter_count() const {
  long long n = 0;
  for (const auto &p : parameters())
    n += p.numel();
  return n;
}

} // namespace fmnist

/*
 * evaluate.cpp - the validation pass through torch::data's sequential
 * loader.
 */
#include "evaluate.hpp"

#include <chrono>

namespace fmnist {

eval_result evaluate(Net &net, dataset &data) {
  torch::NoGradGuard no_grad;
  net->eval();
  auto loader =
      torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
          data.map(torch::data::transforms::Stack<>()),
          torch::data::DataLoaderOptions().batch_size(eval_batch));
  eval_result r;
  double loss_sum = 0;
  auto started = std::chrono::steady_clock::now();
  for (auto &batch : *loader) {
    torch::Tensor logits = net->forward(batch.data);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.target,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(
                        torch::kSum))
                    .item<double>();
    torch::Tensor top5 = std::get<1>(logits.topk(5, 1));
    torch::Tensor hit = top5.eq(batch.target.unsqueeze(1));
    r.hits1 += hit.select(1, 0).sum().item<long>();
    r.hits5 += hit.any(1).sum().item<long>();
    r.count += batch.target.size(0);
  }
  std::chrono::duration<double, std::milli> ms =
      std::chrono::steady_clock::now() - started;
  r.loss = r.count ? loss_sum / static_cast<double>(r.count) : 0;
  r.ms_per_image = r.count ? ms.count() / static_cast<double>(r.count) : 0;
  net->train();
  return r;
}

} // namespace fmnist

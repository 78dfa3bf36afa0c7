/*
 * eval_main.cpp - libtorch_fashion_mnist_eval: loads a checkpoint written
 * by the trainer (a local best.pt, or one downloaded from a hub) into the
 * same network class and measures it on the same 10000 test images with
 * the same validation pass, printing what the trainer reported for it and
 * what it scores now.
 *
 *   libtorch_fashion_mnist_eval WEIGHTS.pt [--data-dir DIR]
 *
 * Exit status 0 when measured, 1 when the weights cannot be loaded, 2 for
 * bad arguments or a missing or corrupt dataset file.
 */
#include "checkpoint.hpp"
#include "data.hpp"
#include "evaluate.hpp"
#include "options.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

int main(int argc, char **argv) {
  const char *env_dir = std::getenv("FASHION_MNIST_DIR");
  std::string data_dir =
      env_dir && *env_dir ? env_dir : fmnist::default_data_dir;
  std::string weights;
  bool ok = true;
  for (int i = 1; i < argc && ok; i++) {
    std::string_view arg = argv[i];
    if (arg == "--data-dir" && i + 1 < argc)
      data_dir = argv[++i];
    else if (weights.empty() && arg.substr(0, 1) != "-")
      weights = arg;
    else
      ok = false;
  }
  if (!ok || weights.empty()) {
    std::cerr << "usage: " << argv[0] << " WEIGHTS.pt [--data-dir DIR]\n";
    return 2;
  }
  try {
    fmnist::dataset test(data_dir, "t10k", 0);
    fmnist::checkpoint_meta meta;
    torch::serialize::InputArchive archive;
    fmnist::Net net = fmnist::checkpoint_load(weights, meta, archive);
    fmnist::eval_result e = fmnist::evaluate(net, test);
    std::printf("%s: %s, epoch %d; reported top1 %.6f; measured top1 %.6f "
                "(%ld/%ld), top5 %.6f, val_loss %.4f\n",
                weights.c_str(), net->architecture().name.c_str(),
                meta.epoch + 1, meta.fitness, e.top1(), e.hits1, e.count,
                e.top5(), e.loss);
    return 0;
  } catch (const c10::Error &e) {
    std::cerr << "libtorch_fashion_mnist_eval: " << e.what_without_backtrace()
              << "\n";
  } catch (const std::exception &e) {
    std::cerr << "libtorch_fashion_mnist_eval: " << e.what() << "\n";
    return std::string(e.what()).find("cannot load") == 0 ? 1 : 2;
  }
  return 1;
}

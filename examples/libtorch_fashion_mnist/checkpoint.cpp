/*
 * checkpoint.cpp - saves and loads checkpoints through
 * torch::serialize archives.
 */
#include "checkpoint.hpp"

#include <torch/serialize/output-archive.h>

#include <filesystem>
#include <stdexcept>

namespace fmnist {

void checkpoint_save(const std::string &path, Net &net, torch::optim::Adam &opt,
                     const checkpoint_meta &meta) {
  const arch &a = net->architecture();
  torch::serialize::OutputArchive archive;
  net->save(archive);
  archive.write("chub_arch", torch::tensor({a.c1, a.c2, a.fc}));
  archive.write("chub_meta", torch::tensor({static_cast<double>(meta.epoch),
                                            meta.fitness, meta.best_fitness},
                                           torch::kFloat64));
  torch::serialize::OutputArchive optimizer;
  opt.save(optimizer);
  archive.write("optimizer", optimizer);
  std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  std::filesystem::rename(tmp, path);
}

Net checkpoint_load(const std::string &path, checkpoint_meta &meta,
                    torch::serialize::InputArchive &archive) {
  try {
    archive.load_from(path);
    torch::Tensor shape, m;
    archive.read("chub_arch", shape);
    archive.read("chub_meta", m);
    if (shape.numel() != 3 || m.numel() != 3)
      throw std::runtime_error("chub_arch or chub_meta has the wrong size");
    arch a{"loaded", shape[0].item<std::int64_t>(),
           shape[1].item<std::int64_t>(), shape[2].item<std::int64_t>()};
    if (a.c1 < 1 || a.c1 > 1024 || a.c2 < 1 || a.c2 > 1024 || a.fc < 1 ||
        a.fc > 65536)
      throw std::runtime_error("chub_arch is not a network this trainer "
                               "builds");
    for (const arch &known :
         {*arch_named("cnn.cfg"), *arch_named("cnn-small.cfg"),
          *arch_named("cnn-large.cfg")})
      if (known.c1 == a.c1 && known.c2 == a.c2 && known.fc == a.fc)
        a.name = known.name;
    Net net(a);
    net->load(archive);
    meta.epoch = static_cast<int>(m[0].item<double>());
    meta.fitness = m[1].item<double>();
    meta.best_fitness = m[2].item<double>();
    return net;
  } catch (const c10::Error &e) {
    throw std::runtime_error("cannot load " + path + ": " +
                             e.what_without_backtrace());
  } catch (const std::exception &e) {
    throw std::runtime_error("cannot load " + path + ": " + e.what());
  }
}

void checkpoint_load_optimizer(torch::serialize::InputArchive &archive,
                               torch::optim::Adam &opt) {
  torch::serialize::InputArchive optimizer;
  if (archive.try_read("optimizer", optimizer))
    opt.load(optimizer);
}

} // namespace fmnist

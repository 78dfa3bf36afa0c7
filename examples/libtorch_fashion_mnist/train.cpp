/*
 * train.cpp - a convolutional classifier in C++ with LibTorch that reports
 * to a hub through chub.hpp, the same way the C example
 * (examples/fashion_mnist) reports through chub.h.
 *
 * One chub::callbacks with the HUB callbacks, one chub::trainer whose
 * members are set before each event, and callbacks::run() at the points
 * Ultralytics' trainer (and the C example) runs its events: pretrain
 * routine, train start, each epoch's batches, validation, model save, fit
 * epoch end, train end, teardown. Everything hub-related happens inside
 * those callbacks; the only other use of chub is reading the session's
 * resume URL and train args when --model names a hub model.
 */
#include "checkpoint.hpp"
#include "data.hpp"
#include "evaluate.hpp"
#include "net.hpp"
#include "options.hpp"

extern "C" {
#include "fetch.h"
}

#include <chub.hpp>
#include <curl/curl.h>
#include <torch/optim/adam.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

namespace {

using fmnist::Net;

double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/* Everything one training run holds. */
struct run {
  fmnist::options opt;
  std::optional<fmnist::dataset> train, test;
  chub::callbacks cb;
  chub::trainer t;
  chub::validator v;
  std::optional<Net> net;
  std::unique_ptr<torch::optim::Adam> adam;
  torch::serialize::InputArchive resumed; /* optimizer state to restore */
  bool have_resumed = false;
  bool have_best_file = false;
  double started = 0; /* at on_train_start */
};

/* One pass over the training set, shuffled by a per-epoch seed (so a
 * resumed run shuffles epoch N as an uninterrupted one would); returns the
 * mean training loss. */
double train_epoch(run &r) {
  torch::manual_seed(r.opt.seed * 1000003 +
                     static_cast<std::uint64_t>(r.t.epoch));
  auto loader =
      torch::data::make_data_loader<torch::data::samplers::RandomSampler>(
          r.train->map(torch::data::transforms::Stack<>()),
          torch::data::DataLoaderOptions().batch_size(
              static_cast<std::size_t>(r.opt.batch)));
  Net &net = *r.net;
  net->train();
  double loss_sum = 0;
  long seen = 0;
  for (auto &batch : *loader) {
    r.cb.run(CHUB_ON_TRAIN_BATCH_START, r.t);
    r.adam->zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        net->forward(batch.data), batch.target);
    loss.backward();
    r.adam->step();
    long n = batch.target.size(0);
    loss_sum += loss.item<double>() * static_cast<double>(n);
    seen += n;
    r.cb.run(CHUB_ON_TRAIN_BATCH_END, r.t);
  }
  return seen ? loss_sum / static_cast<double>(seen) : 0;
}

/* Writes last.pt, and best.pt when this epoch is the best so far. */
void save(run &r, bool is_best) {
  fmnist::checkpoint_meta meta{r.t.epoch, r.t.fitness, r.t.best_fitness};
  fmnist::checkpoint_save(r.t.last, *r.net, *r.adam, meta);
  if (is_best) {
    fmnist::checkpoint_save(r.t.best, *r.net, *r.adam, meta);
    r.have_best_file = true;
  }
}

void epoch(run &r) {
  chub::trainer &t = r.t;
  double started = now_s();
  r.cb.run(CHUB_ON_TRAIN_EPOCH_START, t);
  double train_loss = train_epoch(r);
  double train_s = now_s() - started;
  t.tloss["loss"] = train_loss;
  r.cb.run(CHUB_ON_TRAIN_EPOCH_END, t);

  r.cb.run(CHUB_ON_VAL_START, r.v);
  fmnist::eval_result e = fmnist::evaluate(*r.net, *r.test);
  r.cb.run(CHUB_ON_VAL_END, r.v);
  t.metrics["metrics/accuracy_top1"] = e.top1();
  t.metrics["metrics/accuracy_top5"] = e.top5();
  t.metrics["val/loss"] = e.loss;
  t.model_speed_ms = e.ms_per_image;
  t.fitness = e.top1();
  /* best_fitness is what best.pt holds, so chub's is_best test
   * (best_fitness == fitness) agrees with the file just written. */
  bool is_best = !r.have_best_file || e.top1() >= t.best_fitness;
  if (is_best)
    t.best_fitness = e.top1();

  /* Ultralytics saves, runs on_model_save, then on_fit_epoch_end. */
  save(r, is_best);
  r.cb.run(CHUB_ON_MODEL_SAVE, t);
  t.train_hours = (now_s() - r.started) / 3600.0;
  r.cb.run(CHUB_ON_FIT_EPOCH_END, t);

  double secs = now_s() - started;
  std::printf("epoch %3d/%d  train_loss %.4f  val_loss %.4f  top1 %6.2f%%  "
              "top5 %6.2f%%  %7.0f img/s  %5.1f s\n",
              t.epoch + 1, t.args.epochs, train_loss, e.loss, e.top1() * 100.0,
              e.top5() * 100.0, static_cast<double>(*r.train->size()) / train_s,
              secs);
  std::fflush(stdout);
}

/* Sets up the network for a hub model URL: the hub's epochs and batch
 * (unless given as flags), then its last weights when it has them. Returns
 * false after saying why. */
bool from_hub(run &r) {
  chub::trainer &t = r.t;
  chub::session_ref s = t.hub_session();
  if (!s) {
    std::cerr << "libtorch_fashion_mnist: cannot use hub model " << r.opt.model
              << ": no hub session (is an API key set, the hub reachable and "
                 "setting hub=true?)\n";
    return false;
  }
  if (std::optional<chub::args> hub = s.train_args()) {
    if (!r.opt.epochs_set && hub->epochs > 0)
      r.opt.epochs = hub->epochs;
    if (!r.opt.batch_set && hub->batch > 0 && hub->batch <= 8192)
      r.opt.batch = hub->batch;
  }
  t.args.epochs = r.opt.epochs;
  t.args.batch = r.opt.batch;
  t.args.patience = r.opt.epochs;
  r.v.args = t.args;
  r.v.args.mode = "val";

  std::string url = s.resume_url();
  if (url.empty()) {
    std::printf("libtorch_fashion_mnist: hub model has no weights to resume; "
                "training cnn.cfg from scratch\n");
    r.net.emplace(*fmnist::arch_named("cnn.cfg"));
    return true;
  }
  std::string path = r.opt.out + "/resume.pt";
  char err[1024];
  /* The hub's resume URL is a signed download URL: it needs no key. */
  if (fetch_file(url.c_str(), path.c_str(), err, sizeof err) != 0) {
    std::cerr << "libtorch_fashion_mnist: " << err << "\n";
    return false;
  }
  fmnist::checkpoint_meta meta;
  r.net.emplace(fmnist::checkpoint_load(path, meta, r.resumed));
  r.have_resumed = true;
  t.start_epoch = meta.epoch + 1;
  t.best_fitness = meta.best_fitness;
  std::printf("libtorch_fashion_mnist: resuming %s from epoch %d (best top1 "
              "%.2f%%)\n",
              r.opt.model.c_str(), t.start_epoch + 1,
              meta.best_fitness * 100.0);
  return true;
}

/* From the pretrain routine to teardown; returns the exit status. */
int train(run &r) {
  chub::trainer &t = r.t;
  r.cb.run(CHUB_ON_PRETRAIN_ROUTINE_START, t);
  torch::manual_seed(r.opt.seed);
  if (fmnist::is_url(r.opt.model)) {
    if (!from_hub(r))
      return 1;
  } else {
    r.net.emplace(*fmnist::arch_named(r.opt.model));
  }
  Net &net = *r.net;
  r.adam = std::make_unique<torch::optim::Adam>(
      net->parameters(), torch::optim::AdamOptions(r.opt.lr));
  if (r.have_resumed)
    fmnist::checkpoint_load_optimizer(r.resumed, *r.adam);
  t.model_parameters = net->parameter_count();
  t.model_gflops = 2.0 * static_cast<double>(net->macs()) / 1e9;
  const fmnist::arch &a = net->architecture();
  std::printf("libtorch_fashion_mnist: %zu training / %zu test images; %s "
              "(conv %lld-%lld, fc %lld), %lld parameters; %d epochs, batch "
              "%d, Adam lr %g, CPU, %d threads; weights in %s\n",
              *r.train->size(), *r.test->size(), a.name.c_str(),
              static_cast<long long>(a.c1), static_cast<long long>(a.c2),
              static_cast<long long>(a.fc), t.model_parameters, r.opt.epochs,
              r.opt.batch, r.opt.lr, torch::get_num_threads(),
              r.opt.out.c_str());
  std::fflush(stdout);
  r.cb.run(CHUB_ON_PRETRAIN_ROUTINE_END, t);

  r.started = now_s();
  r.cb.run(CHUB_ON_TRAIN_START, t);
  for (t.epoch = t.start_epoch; t.epoch < t.args.epochs; t.epoch++)
    epoch(r);
  if (t.start_epoch >= t.args.epochs)
    std::printf("libtorch_fashion_mnist: the model already has %d of %d "
                "epochs; nothing to train (pass --epochs N to train "
                "further)\n",
                t.start_epoch, t.args.epochs);
  if (t.epoch > t.start_epoch)
    t.epoch--; /* on_train_end reports the last epoch that ran */
  t.train_hours = (now_s() - r.started) / 3600.0;
  if (r.have_best_file)
    r.cb.run(CHUB_ON_TRAIN_END, t);
  r.cb.run(CHUB_TEARDOWN, t);
  std::printf("libtorch_fashion_mnist: best top1 %.2f%%; weights %s, %s\n",
              t.best_fitness * 100.0, t.last.c_str(), t.best.c_str());
  return 0;
}

int main_checked(int argc, char **argv) {
  run r;
  if (!fmnist::parse_options(r.opt, argc, argv, std::cerr)) {
    std::cerr << "\n";
    fmnist::print_usage(std::cerr, argv[0]);
    return 2;
  }
  if (r.opt.help) {
    fmnist::print_usage(std::cout, argv[0]);
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(r.opt.out, ec);
  if (ec) {
    std::cerr << "libtorch_fashion_mnist: cannot create --out " << r.opt.out
              << ": " << ec.message() << "\n";
    return 2;
  }
  try {
    r.train.emplace(r.opt.data_dir, "train",
                    static_cast<std::size_t>(r.opt.limit));
    r.test.emplace(r.opt.data_dir, "t10k", 0);
  } catch (const std::exception &e) {
    std::cerr << "libtorch_fashion_mnist: " << e.what() << "\n";
    return 2;
  }

  try {
    if (!r.cb.add_integration_callbacks())
      std::printf("libtorch_fashion_mnist: hub reporting is off (setting "
                  "hub=false); training locally\n");
  } catch (const chub::error &e) {
    std::cerr << "libtorch_fashion_mnist: cannot add the HUB callbacks: "
              << e.what() << "\n";
  }
  chub::args &args = r.t.args;
  args.model = r.opt.model;
  args.data = "fashion-mnist";
  args.epochs = r.opt.epochs;
  args.batch = r.opt.batch;
  args.imgsz = 28;
  args.patience = r.opt.epochs;
  args.device = "cpu";
  args.cache = "ram";
  args.task = "classify";
  args.mode = "train";
  r.t.last = r.opt.out + "/last.pt";
  r.t.best = r.opt.out + "/best.pt";
  r.v.args = args;
  r.v.args.mode = "val";
  r.v.training = true;
  /* A failure below leaves r.t's hub session open; its destructor closes
   * it, keeping the spool for `chub sync`. */
  return train(r);
}

} // namespace

int main(int argc, char **argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int status = 1;
  try {
    status = main_checked(argc, argv);
  } catch (const c10::Error &e) {
    std::cerr << "libtorch_fashion_mnist: " << e.what_without_backtrace()
              << "\n";
  } catch (const std::exception &e) {
    std::cerr << "libtorch_fashion_mnist: " << e.what() << "\n";
  }
  curl_global_cleanup();
  return status;
}

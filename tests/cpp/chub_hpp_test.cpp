/*
 * chub_hpp_test.cpp - unit test of chub.hpp, the C++17 layer over chub.h.
 *
 * What a C++ trainer relies on: the owners free what they own (ASan's leak
 * check runs this file) and their moved-from husks are safe to use; the
 * fallible calls throw chub::error with the chub_code and chub's words;
 * callables with captured state run where they were added, see the
 * subject's current values, may remove themselves, and an exception one of
 * them throws reaches callbacks::run() after the rest ran; the HUB
 * callbacks see the trainer's std::map metrics. No network: sessions run
 * offline (CHUB_MODE=offline) in a temporary settings and runs directory.
 */
#include <chub.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

/* The owners are move-only; the views and values are copyable. */
static_assert(!std::is_copy_constructible_v<chub::callbacks> &&
              std::is_nothrow_move_constructible_v<chub::callbacks> &&
              std::is_nothrow_move_assignable_v<chub::callbacks>);
static_assert(!std::is_copy_constructible_v<chub::session> &&
              std::is_nothrow_move_constructible_v<chub::session> &&
              std::is_nothrow_move_assignable_v<chub::session>);
static_assert(!std::is_copy_constructible_v<chub::trainer> &&
              std::is_move_constructible_v<chub::trainer>);
static_assert(std::is_copy_constructible_v<chub::session_ref> &&
              std::is_copy_constructible_v<chub::args>);
static_assert(std::is_base_of_v<std::runtime_error, chub::error>);

int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK(" #cond ") failed"  \
                << std::endl;                                                  \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* Runs `fn`; true when it threw chub::error with `code`. */
template <class F> bool throws_code(F &&fn, chub_code code) {
  try {
    fn();
  } catch (const chub::error &e) {
    if (e.code() != code)
      std::cerr << "threw " << e.what() << " (code " << e.code() << ")\n";
    return e.code() == code;
  }
  return false;
}

/* A fresh settings and runs directory, removed at the end. */
struct scratch {
  std::filesystem::path dir;
  scratch() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "chub-hpp-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    dir = buf.data();
    setenv("CHUB_CONFIG_DIR", (dir / "config").c_str(), 1);
    setenv("CHUB_RUNS_DIR", (dir / "runs").c_str(), 1);
    setenv("CHUB_MODE", "offline", 1);
    setenv("CHUB_TESTING", "1", 1);
    unsetenv("CHUB_API_KEY");
    unsetenv("CHUB_HUB");
  }
  ~scratch() {
    std::error_code ec;
    if (!std::getenv("CHUB_KEEP_TMP"))
      std::filesystem::remove_all(dir, ec);
  }
};

void test_errors() {
  chub::error e(CHUB_EAUTH, "login");
  CHECK(e.code() == CHUB_EAUTH);
  CHECK(std::string(e.what()) ==
        std::string("login: ") + chub_strerror(CHUB_EAUTH));
  CHECK(chub::strerror(CHUB_ENOTFOUND) == chub_strerror(CHUB_ENOTFOUND));

  /* settings_set: chub's own message, naming the problem. */
  bool caught = false;
  try {
    chub::settings_set("rate_limit_metrics", "soon");
  } catch (const chub::error &err) {
    caught = true;
    CHECK(err.code() == CHUB_EINVAL);
    CHECK(std::string(err.what()).find("rate_limit_metrics") !=
          std::string::npos);
  }
  CHECK(caught);
  CHECK(
      throws_code([] { chub::settings_set("no_such_key", "1"); }, CHUB_EINVAL));
  chub::settings_set("rate_limit_metrics", "0"); /* a good one does not */
  CHECK(chub::settings_load().rate_metrics == 0);
  CHECK(!chub::settings_path().empty());

  CHECK(chub::event_name(CHUB_ON_FIT_EPOCH_END) == "on_fit_epoch_end");
  CHECK(chub::event_from_name("on_val_end") == CHUB_ON_VAL_END);
  CHECK(!chub::event_from_name("on_nothing"));
  CHECK(chub::event_name(CHUB_EVENT_COUNT).empty());
}

void test_callbacks_capture_state() {
  chub::callbacks cb;
  chub::trainer t;
  int calls = 0;
  std::vector<int> epochs;
  auto owned = std::make_unique<int>(41); /* a move-only capture */
  cb.add(CHUB_ON_FIT_EPOCH_END,
         [&epochs](const chub::trainer &tr) { epochs.push_back(tr.epoch); });
  cb.add(CHUB_ON_FIT_EPOCH_END, [&calls, p = std::move(owned)] {
    calls++;
    (*p)++;
  });
  CHECK(cb.count(CHUB_ON_FIT_EPOCH_END) == 2);
  for (t.epoch = 0; t.epoch < 3; t.epoch++)
    cb.run(CHUB_ON_FIT_EPOCH_END, t);
  CHECK(calls == 3);
  CHECK((epochs == std::vector<int>{0, 1, 2}));

  /* A callable that changes the subject: the C callbacks after it see the
   * change in their chub_trainer (here a plain C function added through
   * chub.h, as the HUB callbacks are). */
  cb.add(CHUB_ON_MODEL_SAVE, [](chub::trainer &tr) {
    tr.metrics["metrics/accuracy_top1"] = 0.75;
    tr.last = "changed.pt";
  });
  struct seen {
    double top1 = -1;
    std::string last;
  } s;
  chub_callbacks_add(
      cb.get(), CHUB_ON_MODEL_SAVE,
      [](void *subject, void *user) {
        auto *c = static_cast<chub_trainer *>(subject);
        auto *out = static_cast<seen *>(user);
        for (size_t i = 0; i < c->n_metrics; i++)
          if (std::string(c->metrics[i].name) == "metrics/accuracy_top1")
            out->top1 = c->metrics[i].value;
        out->last = c->last ? c->last : "";
      },
      &s);
  cb.run(CHUB_ON_MODEL_SAVE, t);
  CHECK(s.top1 == 0.75);
  CHECK(s.last == "changed.pt");

  /* A callable that removes itself runs once; one that runs another event
   * (nested) sees that event's subject. */
  chub::callbacks::id self = 0;
  int once = 0;
  self = cb.add(CHUB_ON_TRAIN_EPOCH_START, [&] {
    once++;
    CHECK(cb.remove(self));
  });
  chub::validator v;
  v.args.mode = "val";
  std::string mode_seen;
  cb.add(CHUB_ON_VAL_START,
         [&mode_seen](chub::validator &val) { mode_seen = val.args.mode; });
  cb.add(CHUB_ON_TRAIN_EPOCH_END, [&] { cb.run(CHUB_ON_VAL_START, v); });
  for (int i = 0; i < 3; i++) {
    cb.run(CHUB_ON_TRAIN_EPOCH_START, t);
    cb.run(CHUB_ON_TRAIN_EPOCH_END, t);
  }
  CHECK(once == 1);
  CHECK(!cb.remove(self));
  CHECK(cb.count(CHUB_ON_TRAIN_EPOCH_START) == 0);
  CHECK(mode_seen == "val");
}

void test_callbacks_exceptions() {
  chub::callbacks cb;
  chub::trainer t;
  int after = 0;
  cb.add(CHUB_ON_TRAIN_START, [] { throw std::runtime_error("first"); });
  cb.add(CHUB_ON_TRAIN_START, [] { throw std::logic_error("second"); });
  cb.add(CHUB_ON_TRAIN_START, [&after] { after++; });
  bool caught = false;
  try {
    cb.run(CHUB_ON_TRAIN_START, t);
  } catch (const std::runtime_error &e) {
    caught = std::string(e.what()) == "first";
  }
  CHECK(caught);
  CHECK(after == 1);            /* the rest still ran */
  cb.run(CHUB_ON_TRAIN_END, t); /* and nothing is left over */

  /* A callable that cannot take the event's subject, and a subject the
   * event does not take. */
  CHECK(throws_code([&] { cb.add(CHUB_ON_VAL_START, [](chub::trainer &) {}); },
                    CHUB_EINVAL));
  CHECK(throws_code([&] { cb.add(CHUB_EVENT_COUNT, [] {}); }, CHUB_EINVAL));
  CHECK(throws_code([&] { cb.run(CHUB_ON_VAL_END, t); }, CHUB_EINVAL));
  chub::exporter x;
  x.args.format = "onnx";
  std::string fmt;
  cb.add(CHUB_ON_EXPORT_START,
         [&fmt](chub::exporter &e) { fmt = e.args.format; });
  cb.run(CHUB_ON_EXPORT_START, x);
  CHECK(fmt == "onnx");
  chub::predictor p;
  CHECK(throws_code([&] { cb.run(CHUB_ON_EXPORT_START, p); }, CHUB_EINVAL));

  /* A session call without a session. */
  chub::session none;
  CHECK(throws_code([&] { none.queue_metrics(0, "{}"); }, CHUB_EINVAL));
  CHECK(throws_code([&] { none.flush_metrics(); }, CHUB_EINVAL));
}

void test_ownership_and_moves() {
  chub::callbacks a;
  int n = 0;
  a.add(CHUB_ON_TRAIN_START, [&n] { n++; });
  chub::callbacks b(std::move(a)); /* the callables move with it */
  chub::trainer t;
  b.run(CHUB_ON_TRAIN_START, t);
  CHECK(n == 1);
  /* The moved-from registry owns nothing and is safe to use. */
  CHECK(a.get() == nullptr); // NOLINT(bugprone-use-after-move)
  CHECK(a.count(CHUB_ON_TRAIN_START) == 0);
  a.run(CHUB_ON_TRAIN_START, t);
  CHECK(!a.remove(1));
  CHECK(throws_code([&] { a.add(CHUB_ON_TRAIN_START, [] {}); }, CHUB_EINVAL));
  CHECK(throws_code([&] { a.add_integration_callbacks(); }, CHUB_EINVAL));
  a = std::move(b); /* assigning back revives it */
  a.run(CHUB_ON_TRAIN_START, t);
  CHECK(n == 2);
  CHECK(a.count(CHUB_ON_TRAIN_START) == 1);

  /* An offline session: opened, moved, closed once. */
  chub::args args;
  args.data = "fashion-mnist";
  args.epochs = 2;
  args.task = "classify";
  chub::session s = chub::session::open("cnn.cfg", args);
  CHECK(s);
  CHECK(s.offline());
  CHECK(s.model_id().empty()); /* NULL while offline */
  CHECK(s.resume_url().empty());
  CHECK(!s.train_args());
  std::string run = s.run_id();
  CHECK(!run.empty());
  s.queue_metrics(0, R"({"metrics/accuracy_top1": 0.5})");
  chub::session moved(std::move(s));
  CHECK(!s); // NOLINT(bugprone-use-after-move)
  CHECK(s.run_id().empty());
  CHECK(moved.run_id() == run);
  chub::session_ref view = moved; /* a non-owning copy */
  CHECK(view.run_id() == run);
  s = std::move(moved);
  CHECK(s.run_id() == run);
  s.close();
  s.close(); /* twice is fine */
  CHECK(!s);
  CHECK(
      throws_code([] { chub::session::open("", chub::args()); }, CHUB_EINVAL));
}

void test_hub_callbacks_offline() {
  std::mutex lock;
  std::vector<std::string> lines;
  chub::set_log(
      [&](chub_log_level, std::string_view line) {
        std::lock_guard<std::mutex> hold(lock);
        lines.emplace_back(line);
      },
      CHUB_LOG_DEBUG);

  chub::callbacks cb;
  CHECK(cb.add_integration_callbacks());
  std::string run;
  {
    chub::trainer t;
    t.args.model = "cnn.cfg";
    t.args.data = "fashion-mnist";
    t.args.epochs = 2;
    t.args.task = "classify";
    t.args.mode = "train";
    cb.run(CHUB_ON_PRETRAIN_ROUTINE_START, t);
    CHECK(t.hub_session()); /* offline, but open */
    run = t.hub_session().run_id();
    t.model_parameters = 1234;
    for (t.epoch = 0; t.epoch < 2; t.epoch++) {
      t.tloss["loss"] = 1.0 / (t.epoch + 1);
      t.metrics["metrics/accuracy_top1"] = 0.5 + 0.25 * t.epoch;
      t.fitness = t.best_fitness = t.metrics["metrics/accuracy_top1"];
      cb.run(CHUB_ON_FIT_EPOCH_END, t);
    }
    /* A trainer moved elsewhere takes its session along; the one left
     * behind has none, and the destructor of the new one closes it (the
     * run stopped before on_train_end). */
    chub::trainer other(std::move(t));
    CHECK(!t.hub_session()); // NOLINT(bugprone-use-after-move)
    CHECK(other.hub_session().run_id() == run);
  }
  CHECK(!run.empty());
  chub::set_log(nullptr, CHUB_LOG_INFO);
  bool said_offline = false;
  for (const auto &l : lines)
    said_offline = said_offline || l.find(run) != std::string::npos;
  CHECK(said_offline); /* the lines went to our sink */

  /* Both epochs were spooled: the run lists them as pending. */
  std::FILE *fp = std::tmpfile();
  CHECK(fp != nullptr);
  chub::list_runs(fp);
  std::rewind(fp);
  std::string listing;
  char buf[512];
  while (std::fgets(buf, sizeof buf, fp))
    listing += buf;
  std::fclose(fp);
  std::cout << listing;
  size_t at = listing.find(run);
  CHECK(at != std::string::npos);
  std::string line = listing.substr(at, listing.find('\n', at) - at);
  CHECK(line.find("metrics 2") != std::string::npos);

  /* With hub=false no callbacks are added, and that is not an error. */
  chub::settings_set("hub", "false");
  chub::callbacks off;
  CHECK(!off.add_integration_callbacks());
  CHECK(off.count(CHUB_ON_PRETRAIN_ROUTINE_START) == 0);
  chub::settings_set("hub", "true");
}

} // namespace

int main() {
  scratch tmp;
  test_errors();
  test_callbacks_capture_state();
  test_callbacks_exceptions();
  test_ownership_and_moves();
  test_hub_callbacks_offline();
  if (failures) {
    std::cerr << "chub_hpp_test: " << failures << " check(s) failed\n";
    return 1;
  }
  std::cout << "chub_hpp_test: all checks passed\n";
  return 0;
}

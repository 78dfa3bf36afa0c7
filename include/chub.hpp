/*
 * chub.hpp - live run tracking for training loops written in C++17.
 *
 * A header-only layer over chub.h: every call below forwards to the C
 * function of the same name, and nothing is re-implemented. What it adds is
 * C++'s way of holding things:
 *
 *  - owners: chub::callbacks owns a registry and chub::session a session;
 *    both free what they own when they go out of scope, and both are
 *    move-only (a moved-from object owns nothing and is safe to use: its
 *    getters return empty values, its fallible calls throw);
 *  - strings: std::string_view in, std::string out (empty where chub.h
 *    returns NULL);
 *  - callbacks: any callable, lambdas with captures included, taking the
 *    event's subject (chub::trainer&, chub::validator&, chub::predictor&,
 *    chub::exporter&) or nothing;
 *  - errors: the calls that can fail throw chub::error, which carries the
 *    chub_code and chub_strerror()'s words;
 *  - subjects: chub::trainer (and validator, predictor, exporter) hold the
 *    run's arguments as std::string and its metrics as std::map, and build
 *    the borrowed C view (chub_trainer) right before each event, so the
 *    lifetime of what chub reads is never the caller's concern.
 *
 * The HUB callbacks are libchub's own C functions: a C++ trainer adds them
 * with callbacks::add_integration_callbacks() and runs events with
 * callbacks::run(), exactly where the C example runs chub_callbacks_run():
 *
 *   chub::callbacks cb;
 *   cb.add_integration_callbacks();          // false when setting hub=false
 *   chub::trainer t;
 *   t.args.model = "cnn.cfg", t.args.epochs = 3;
 *   t.last = "last.pt", t.best = "best.pt";
 *   cb.run(CHUB_ON_PRETRAIN_ROUTINE_START, t); // creates the hub model
 *   ...
 *   t.tloss["loss"] = loss;                  // reported as train/loss
 *   t.metrics["metrics/accuracy_top1"] = top1;
 *   cb.run(CHUB_ON_FIT_EPOCH_END, t);
 *
 * Thread-safety is chub.h's: an object is used by one thread at a time;
 * chub::set_log() is the one function that may be called from any thread.
 * Exceptions never cross libchub's C frames: one thrown by a callable is
 * caught, the event's other callbacks still run, and callbacks::run()
 * rethrows the first one when the event is done.
 */
#ifndef CHUB_HPP
#define CHUB_HPP

#include <chub.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace chub {

/* ---------------------------------------------------------------- errors */

/* chub_strerror(code) as a string. */
inline std::string strerror(chub_code code) {
  return chub_strerror(code);
}

/* What the fallible calls throw: what() is "CONTEXT: STRERROR" (or the
 * message chub gave, for settings_set), code() the chub_code. */
class error : public std::runtime_error {
public:
  error(chub_code code, const std::string &context)
      : std::runtime_error(context.empty()
                               ? std::string(chub_strerror(code))
                               : context + ": " + chub_strerror(code)),
        code_(code) {}
  error(chub_code code, const std::string &context, const std::string &detail)
      : std::runtime_error(context + ": " + detail), code_(code) {}

  chub_code code() const noexcept {
    return code_;
  }

private:
  chub_code code_;
};

namespace detail {
inline void check(chub_code rc, const char *context) {
  if (rc != CHUB_OK)
    throw error(rc, context);
}
inline std::string str(const char *s) {
  return s ? std::string(s) : std::string();
}
/* NULL for an empty string: chub.h's "not given". */
inline const char *c_str_or_null(const std::string &s) {
  return s.empty() ? nullptr : s.c_str();
}
} // namespace detail

/* ---------------------------------------------------------------- logging */

/* Receives one finished log line (no trailing newline), on the thread that
 * logs, which may be chub's sender thread. */
using log_fn = std::function<void(chub_log_level, std::string_view)>;

/* Routes chub's log lines to `fn` (an empty fn restores the default:
 * stderr, prefixed "chub: "); lines below `min_level` are dropped. Every
 * fn given is kept until the program exits, so a line being logged on
 * another thread while the sink changes never reaches a destroyed one. An
 * exception thrown by fn is swallowed. Thread-safe; call it before opening
 * sessions. */
inline void set_log(log_fn fn, chub_log_level min_level = CHUB_LOG_INFO) {
  struct sinks {
    std::mutex lock;
    std::list<log_fn> kept;
  };
  /* Never destroyed: the sender thread may log during static destruction. */
  static sinks *const all = new sinks;
  if (!fn) {
    chub_set_log(nullptr, nullptr, min_level);
    return;
  }
  std::lock_guard<std::mutex> hold(all->lock);
  all->kept.push_back(std::move(fn));
  chub_set_log(
      [](chub_log_level level, const char *line, void *user) {
        try {
          (*static_cast<log_fn *>(user))(level, line);
        } catch (...) {
        }
      },
      &all->kept.back(), min_level);
}

/* ---------------------------------------------------------------- settings */

/* chub_settings_load(): the settings file merged with the environment.
 * Throws chub::error when no settings can be produced. */
inline chub_settings settings_load() {
  chub_settings s{};
  detail::check(chub_settings_load(&s), "chub_settings_load");
  return s;
}

/* chub_settings_set(): sets one key after checking its type and range.
 * Throws chub::error (CHUB_EINVAL with chub's message naming the problem). */
inline void settings_set(std::string_view key, std::string_view value) {
  char err[512] = "";
  chub_code rc = chub_settings_set(std::string(key).c_str(),
                                   std::string(value).c_str(), err, sizeof err);
  if (rc != CHUB_OK)
    throw err[0] ? error(rc, "chub_settings_set", err)
                 : error(rc, "chub_settings_set");
}

/* chub_settings_reset(): rewrites the settings file with defaults. */
inline void settings_reset() {
  detail::check(chub_settings_reset(), "chub_settings_reset");
}

/* chub_settings_path(): where the settings file is. */
inline std::string settings_path() {
  char buf[4096] = "";
  detail::check(chub_settings_path(buf, sizeof buf), "chub_settings_path");
  return buf;
}

/* chub_rank(): the distributed rank, -1 when none is set. */
inline int rank() {
  return chub_rank();
}

/* ---------------------------------------------------------------- events */

/* The event's Ultralytics name ("on_fit_epoch_end"), empty when unknown. */
inline std::string event_name(chub_event event) {
  return detail::str(chub_event_name(event));
}

/* The event named `name`, or nullopt. */
inline std::optional<chub_event> event_from_name(std::string_view name) {
  chub_event e = chub_event_from_name(std::string(name).c_str());
  return e == CHUB_EVENT_COUNT ? std::nullopt : std::optional<chub_event>(e);
}

/* ---------------------------------------------------------------- subjects */

/* The run's arguments (chub_args), owned. An empty string is chub.h's
 * NULL ("not given"). */
struct args {
  std::string model; /* local model file (creates a model) or hub URL */
  std::string data;  /* dataset name or path */
  int epochs = 0;
  int batch = 0;
  int imgsz = 0;
  int patience = 0;
  std::string device; /* "cpu", "cuda:0", ... */
  std::string cache;  /* "ram", "disk" or empty */
  std::string task;   /* "classify", "detect", ... */
  std::string mode;   /* "train", "val", "predict", "export" */
  std::string format; /* export format, for the exporter */

  args() = default;
  /* A copy of C arguments (NULL strings become empty). */
  explicit args(const chub_args &a)
      : model(detail::str(a.model)), data(detail::str(a.data)),
        epochs(a.epochs), batch(a.batch), imgsz(a.imgsz), patience(a.patience),
        device(detail::str(a.device)), cache(detail::str(a.cache)),
        task(detail::str(a.task)), mode(detail::str(a.mode)),
        format(detail::str(a.format)) {}

  /* The C view, borrowing these strings: valid until they change. */
  chub_args c() const {
    chub_args a{};
    a.model = detail::c_str_or_null(model);
    a.data = detail::c_str_or_null(data);
    a.epochs = epochs;
    a.batch = batch;
    a.imgsz = imgsz;
    a.patience = patience;
    a.device = detail::c_str_or_null(device);
    a.cache = detail::c_str_or_null(cache);
    a.task = detail::c_str_or_null(task);
    a.mode = detail::c_str_or_null(mode);
    a.format = detail::c_str_or_null(format);
    return a;
  }
};

namespace detail {
/* A chub_trainer that owns its hub_session: moved with it, closed with it.
 * The other fields are rebuilt by trainer::c() before every use. */
struct trainer_view {
  chub_trainer c{};
  trainer_view() = default;
  trainer_view(trainer_view &&o) noexcept {
    c.hub_session = std::exchange(o.c.hub_session, nullptr);
  }
  trainer_view &operator=(trainer_view &&o) noexcept {
    if (this != &o) {
      chub_session_close(c.hub_session);
      c.hub_session = std::exchange(o.c.hub_session, nullptr);
    }
    return *this;
  }
  ~trainer_view() {
    chub_session_close(c.hub_session);
  }
};
} // namespace detail

/* A session someone else owns (the one the HUB callbacks opened, see
 * trainer::hub_session()), or none. Copyable; it never closes anything.
 * The getters return empty strings where chub.h returns NULL. */
class session_ref {
public:
  session_ref() = default;
  explicit session_ref(chub_session *s) noexcept : s_(s) {}

  explicit operator bool() const noexcept {
    return s_ != nullptr;
  }
  chub_session *get() const noexcept {
    return s_;
  }

  /* The hub's model id; empty while offline or with no session. */
  std::string model_id() const {
    return detail::str(chub_session_model_id(s_));
  }
  /* {web root}/models/{id}; empty while offline or with no session. */
  std::string model_url() const {
    return detail::str(chub_session_model_url(s_));
  }
  /* The local run id (the spool's directory name). */
  std::string run_id() const {
    return s_ ? detail::str(chub_session_run_id(s_)) : std::string();
  }
  /* The download URL of the model's last weights when it can be resumed,
   * else empty. */
  std::string resume_url() const {
    return s_ ? detail::str(chub_session_resume_url(s_)) : std::string();
  }
  /* The train args the hub holds for a loaded model (a copy), or nullopt
   * for a model this session created. */
  std::optional<chub::args> train_args() const {
    const chub_args *a = s_ ? chub_session_train_args(s_) : nullptr;
    return a ? std::optional<chub::args>(chub::args(*a)) : std::nullopt;
  }

  /* chub_session_queue_metrics(): spools epoch `epoch`'s metrics, `json`
   * being a JSON object of {name: number}. Does not send. Throws. */
  void queue_metrics(int epoch, std::string_view json) {
    detail::check(
        chub_session_queue_metrics(s_, epoch, std::string(json).c_str()),
        "chub_session_queue_metrics");
  }
  /* chub_session_flush_metrics(): asks the sender to upload now. Throws. */
  void flush_metrics() {
    detail::check(chub_session_flush_metrics(s_), "chub_session_flush_metrics");
  }
  /* chub_session_queue_checkpoint(): queues `path` as epoch `epoch`'s
   * checkpoint. Returns at once. Throws. */
  void queue_checkpoint(int epoch, std::string_view path, bool is_best) {
    detail::check(chub_session_queue_checkpoint(
                      s_, epoch, std::string(path).c_str(), is_best),
                  "chub_session_queue_checkpoint");
  }
  /* chub_session_upload_final(): uploads what is pending, then `path` as
   * the final model, waiting at most `deadline_s`. Returns true when the
   * hub has it all, false when it stays spooled for `chub sync`
   * (CHUB_ETIMEDOUT, CHUB_EOFFLINE); throws on any other failure. */
  bool upload_final(int epoch, std::string_view path, double map,
                    double deadline_s) {
    chub_code rc = chub_session_upload_final(
        s_, epoch, std::string(path).c_str(), map, deadline_s);
    if (rc == CHUB_ETIMEDOUT || rc == CHUB_EOFFLINE)
      return false;
    detail::check(rc, "chub_session_upload_final");
    return true;
  }

protected:
  chub_session *s_ = nullptr;
};

/* An open session, owned: closed (chub_session_close) when destroyed.
 * Move-only. */
class session : public session_ref {
public:
  session() = default;
  /* Takes ownership of `s` (may be NULL). */
  explicit session(chub_session *s) noexcept : session_ref(s) {}
  ~session() {
    close();
  }
  session(session &&o) noexcept
      : session_ref(std::exchange(o.s_, nullptr)),
        offline_(std::exchange(o.offline_, false)) {}
  session &operator=(session &&o) noexcept {
    if (this != &o) {
      close();
      s_ = std::exchange(o.s_, nullptr);
      offline_ = std::exchange(o.offline_, false);
    }
    return *this;
  }
  session(const session &) = delete;
  session &operator=(const session &) = delete;

  /* chub_session_open(): opens a session for `model` (a local model file
   * name creates a hub model from `a`; a model URL loads one). With no
   * hub, no key or mode=offline the session still opens and offline() is
   * true. Throws chub::error when no session could be opened. Blocks for
   * the create/load request (a few seconds at most). */
  static session open(std::string_view model, const chub::args &a) {
    chub_args ca = a.c();
    std::string m(model);
    ca.model = m.c_str();
    chub_session *s = nullptr;
    chub_code rc = chub_session_open(m.c_str(), &ca, &s);
    if (!s)
      throw error(rc == CHUB_OK ? CHUB_EPROTO : rc, "chub_session_open");
    session out(s);
    out.offline_ = rc == CHUB_EOFFLINE;
    return out;
  }

  /* True when the session runs offline (everything spools for sync). */
  bool offline() const noexcept {
    return offline_;
  }
  /* chub_session_close(): stops the sender; unacknowledged work stays
   * spooled. Safe to call twice. */
  void close() noexcept {
    chub_session_close(std::exchange(s_, nullptr));
  }
  /* Gives up ownership: the caller closes the returned session. */
  chub_session *release() noexcept {
    return std::exchange(s_, nullptr);
  }

private:
  bool offline_ = false;
};

/* What a trainer reports: chub_trainer with owned strings and metrics. The
 * C view chub's callbacks read is rebuilt from these members by c() (and
 * before every event by callbacks::run), so they may be changed freely
 * between events. Move-only, because it owns the session the HUB callbacks
 * open: on_train_end closes it, and the destructor closes one still open
 * (a run that stopped early), leaving its spool for `chub sync`. */
class trainer {
public:
  chub::args args;
  int epoch = 0;       /* current epoch, 0-based */
  int start_epoch = 0; /* first epoch of this run (resume) */
  /* Train loss items, names without "train/" ("loss"). */
  std::map<std::string, double> tloss;
  /* e.g. "metrics/accuracy_top1", "val/loss". */
  std::map<std::string, double> metrics;
  double fitness = 0;
  double best_fitness = 0;
  std::string last; /* path of the last weights */
  std::string best; /* path of the best weights */
  long long model_parameters = 0;
  double model_gflops = 0;
  double model_speed_ms = 0; /* inference ms per image */
  double train_hours = 0;    /* wall time trained so far */

  /* The session the HUB callbacks opened (on_pretrain_routine_start), or
   * none. Owned by this trainer. */
  session_ref hub_session() const noexcept {
    return session_ref(view_.c.hub_session);
  }

  /* The C view, rebuilt from the members now; it borrows them, so it is
   * valid until one of them changes. */
  chub_trainer *c() {
    tloss_v_.clear();
    for (const auto &[name, value] : tloss)
      tloss_v_.push_back(chub_metric{name.c_str(), value});
    metrics_v_.clear();
    for (const auto &[name, value] : metrics)
      metrics_v_.push_back(chub_metric{name.c_str(), value});
    chub_trainer &c = view_.c;
    c.args = args.c();
    c.epoch = epoch;
    c.start_epoch = start_epoch;
    c.tloss = tloss_v_.data();
    c.n_tloss = tloss_v_.size();
    c.metrics = metrics_v_.data();
    c.n_metrics = metrics_v_.size();
    c.fitness = fitness;
    c.best_fitness = best_fitness;
    c.last = detail::c_str_or_null(last);
    c.best = detail::c_str_or_null(best);
    c.model_parameters = model_parameters;
    c.model_gflops = model_gflops;
    c.model_speed_ms = model_speed_ms;
    c.train_hours = train_hours;
    return &c; /* hub_session is the callbacks' to set: left as it is */
  }

private:
  detail::trainer_view view_;
  std::vector<chub_metric> tloss_v_, metrics_v_;
};

/* chub_validator, owned. */
class validator {
public:
  chub::args args;
  bool training = false; /* run by the trainer (no usage event) */

  chub_validator *c() {
    c_.args = args.c();
    c_.training = training;
    return &c_;
  }

private:
  chub_validator c_{};
};

/* chub_predictor, owned. */
class predictor {
public:
  chub::args args;

  chub_predictor *c() {
    c_.args = args.c();
    return &c_;
  }

private:
  chub_predictor c_{};
};

/* chub_exporter, owned; args.format is the export format. */
class exporter {
public:
  chub::args args;

  chub_exporter *c() {
    c_.args = args.c();
    return &c_;
  }

private:
  chub_exporter c_{};
};

/* ---------------------------------------------------------------- callbacks */

namespace detail {

/* Which subject an event passes, as chub_event's comments group them. */
enum class subject_kind { trainer, validator, predictor, exporter, none };

inline subject_kind kind_of(chub_event e) {
  if (e >= CHUB_ON_PRETRAIN_ROUTINE_START && e <= CHUB_TEARDOWN)
    return subject_kind::trainer;
  if (e >= CHUB_ON_VAL_START && e <= CHUB_ON_VAL_END)
    return subject_kind::validator;
  if (e >= CHUB_ON_PREDICT_START && e <= CHUB_ON_PREDICT_END)
    return subject_kind::predictor;
  if (e >= CHUB_ON_EXPORT_START && e <= CHUB_ON_EXPORT_END)
    return subject_kind::exporter;
  return subject_kind::none;
}

template <class S> constexpr subject_kind kind_for() {
  if constexpr (std::is_same_v<S, trainer>)
    return subject_kind::trainer;
  else if constexpr (std::is_same_v<S, validator>)
    return subject_kind::validator;
  else if constexpr (std::is_same_v<S, predictor>)
    return subject_kind::predictor;
  else
    return subject_kind::exporter;
}

struct registry_state;

/* One added callable; its address is the C user data. */
struct slot {
  registry_state *owner = nullptr;
  chub_event event = CHUB_EVENT_COUNT;
  virtual ~slot() = default;
  virtual void call(void *subject) = 0; /* the C++ subject */
};

template <class S, class F> struct slot_for final : slot {
  F fn;
  explicit slot_for(F f) : fn(std::move(f)) {}
  void call(void *subject) override {
    if constexpr (std::is_invocable_v<F &, S &>)
      std::invoke(fn, *static_cast<S *>(subject));
    else
      std::invoke(fn);
  }
};

/* Makes a slot calling `fn` with subject type S, or nullptr when fn takes
 * neither an S& nor nothing. */
template <class S, class F> std::unique_ptr<slot> make_slot(F &&fn) {
  using D = std::decay_t<F>;
  if constexpr (std::is_invocable_v<D &, S &> || std::is_invocable_v<D &>)
    return std::make_unique<slot_for<S, D>>(std::forward<F>(fn));
  else
    return nullptr;
}

/* A registry and the callables it calls. Heap-held by chub::callbacks, so
 * that moving the owner leaves every C user-data pointer valid. */
struct registry_state {
  chub_callbacks *cb = nullptr;
  std::map<std::uint64_t, std::unique_ptr<slot>> slots;
  std::uint64_t next_id = 1;
  int running = 0;                            /* nested run() depth */
  std::vector<std::unique_ptr<slot>> retired; /* removed while running */
  void *cxx_subject = nullptr;                /* what run() was given */
  const void *c_subject = nullptr;            /* its C view */
  void (*refresh)(void *) = nullptr;          /* rebuilds that C view */
  std::exception_ptr first_error;

  ~registry_state() {
    chub_callbacks_free(cb);
  }

  static void trampoline(void *c_subject, void *user) {
    auto *s = static_cast<slot *>(user);
    registry_state *st = s->owner;
    /* Only events run through chub::callbacks::run carry a C++ subject. */
    if (!st || st->c_subject != c_subject || !st->cxx_subject)
      return;
    try {
      s->call(st->cxx_subject);
      if (st->refresh) /* the callable may have changed the subject */
        st->refresh(st->cxx_subject);
    } catch (...) {
      if (!st->first_error)
        st->first_error = std::current_exception();
    }
  }
};

} // namespace detail

/* A callback registry (chub_callbacks), owned: freed when destroyed.
 * Move-only. Events hold libchub's C callbacks (the HUB ones) and any C++
 * callables added here, called in the order they were added. */
class callbacks {
public:
  /* Identifies an added callable, for remove(). */
  using id = std::uint64_t;

  /* A new, empty registry. Throws chub::error (CHUB_ENOMEM). */
  callbacks() : st_(std::make_unique<detail::registry_state>()) {
    st_->cb = chub_callbacks_new();
    if (!st_->cb)
      throw error(CHUB_ENOMEM, "chub_callbacks_new");
  }
  callbacks(callbacks &&) noexcept = default;
  callbacks &operator=(callbacks &&) noexcept = default;
  callbacks(const callbacks &) = delete;
  callbacks &operator=(const callbacks &) = delete;
  ~callbacks() = default;

  /* The registry, for chub.h calls; NULL when moved from. Owned here. */
  chub_callbacks *get() const noexcept {
    return st_ ? st_->cb : nullptr;
  }

  /* chub_add_integration_callbacks(): adds the HUB callbacks. Returns true
   * when added, false when the setting `hub` is off (CHUB_EDISABLED);
   * throws chub::error on any other failure. */
  bool add_integration_callbacks() {
    chub_code rc = chub_add_integration_callbacks(get());
    if (rc == CHUB_EDISABLED)
      return false;
    detail::check(rc, "chub_add_integration_callbacks");
    return true;
  }

  /* Appends `fn` to the event's list. fn takes the event's subject
   * (chub::trainer& for on_pretrain_routine_start .. teardown,
   * chub::validator& for on_val_*, chub::predictor& for on_predict_*,
   * chub::exporter& for on_export_*) or nothing; it is moved in and kept
   * until removed or the registry is destroyed. Throws chub::error
   * (CHUB_EINVAL) when fn cannot take that subject or the event is
   * unknown. */
  template <class F> id add(chub_event event, F &&fn) {
    using D = std::decay_t<F>;
    static_assert(std::is_invocable_v<D &> ||
                      std::is_invocable_v<D &, trainer &> ||
                      std::is_invocable_v<D &, validator &> ||
                      std::is_invocable_v<D &, predictor &> ||
                      std::is_invocable_v<D &, exporter &>,
                  "a chub callback takes chub::trainer&, chub::validator&, "
                  "chub::predictor&, chub::exporter& or nothing");
    if (!st_)
      throw error(CHUB_EINVAL, "chub::callbacks::add on a moved-from registry");
    std::unique_ptr<detail::slot> s;
    switch (detail::kind_of(event)) {
    case detail::subject_kind::trainer:
      s = detail::make_slot<trainer>(std::forward<F>(fn));
      break;
    case detail::subject_kind::validator:
      s = detail::make_slot<validator>(std::forward<F>(fn));
      break;
    case detail::subject_kind::predictor:
      s = detail::make_slot<predictor>(std::forward<F>(fn));
      break;
    case detail::subject_kind::exporter:
      s = detail::make_slot<exporter>(std::forward<F>(fn));
      break;
    case detail::subject_kind::none:
      throw error(CHUB_EINVAL, "chub::callbacks::add: unknown event");
    }
    if (!s)
      throw error(CHUB_EINVAL, "chub::callbacks::add: the callable cannot take "
                               "the subject of " +
                                   event_name(event));
    s->owner = st_.get();
    s->event = event;
    detail::check(chub_callbacks_add(st_->cb, event,
                                     &detail::registry_state::trampoline,
                                     s.get()),
                  "chub_callbacks_add");
    id key = st_->next_id++;
    st_->slots.emplace(key, std::move(s));
    return key;
  }

  /* Removes the callable `key` returned by add(); false when there is none
   * (already removed). Safe from inside a callable, itself included. */
  bool remove(id key) {
    if (!st_)
      return false;
    auto it = st_->slots.find(key);
    if (it == st_->slots.end())
      return false;
    chub_callbacks_remove(st_->cb, it->second->event,
                          &detail::registry_state::trampoline,
                          it->second.get());
    if (st_->running > 0) /* it may be executing: free it after run() */
      st_->retired.push_back(std::move(it->second));
    st_->slots.erase(it);
    return true;
  }

  /* How many callbacks (C and C++) the event holds; 0 when moved from. */
  std::size_t count(chub_event event) const {
    return chub_callbacks_count(get(), event);
  }

  /* Runs the event's callbacks in order with `subject`, whose C view is
   * rebuilt first (and again after each C++ callable, which may change it).
   * When callables threw, the rest still ran and the first exception is
   * rethrown here. Throws chub::error (CHUB_EINVAL) when the event does
   * not take this subject. A moved-from registry runs nothing. */
  void run(chub_event event, trainer &subject) {
    run_with(event, subject);
  }
  void run(chub_event event, validator &subject) {
    run_with(event, subject);
  }
  void run(chub_event event, predictor &subject) {
    run_with(event, subject);
  }
  void run(chub_event event, exporter &subject) {
    run_with(event, subject);
  }

private:
  template <class S> void run_with(chub_event event, S &subject) {
    if (detail::kind_of(event) != detail::kind_for<S>())
      throw error(CHUB_EINVAL, "chub::callbacks::run: " + event_name(event) +
                                   " does not take this subject");
    if (!st_)
      return;
    detail::registry_state &st = *st_;
    /* Saved and restored: a callable may run another event. */
    void *saved_cxx = st.cxx_subject;
    const void *saved_c = st.c_subject;
    auto saved_refresh = st.refresh;
    std::exception_ptr saved_error = std::exchange(st.first_error, nullptr);
    void *c_view = subject.c();
    st.cxx_subject = &subject;
    st.c_subject = c_view;
    st.refresh = [](void *s) { static_cast<S *>(s)->c(); };
    st.running++;
    chub_callbacks_run(st.cb, event, c_view);
    st.running--;
    st.cxx_subject = saved_cxx;
    st.c_subject = saved_c;
    st.refresh = saved_refresh;
    if (st.running == 0)
      st.retired.clear();
    std::exception_ptr err = std::exchange(st.first_error, saved_error);
    if (err)
      std::rethrow_exception(err);
  }

  std::unique_ptr<detail::registry_state> st_;
};

/* ---------------------------------------------------------------- sync */

/* chub_sync_run(): uploads a spooled run (id or directory). Blocks.
 * Throws chub::error. */
inline void sync_run(std::string_view run) {
  detail::check(chub_sync_run(std::string(run).c_str()), "chub_sync_run");
}

/* chub_list_runs(): one line per local run to `fp`. Throws chub::error. */
inline void list_runs(std::FILE *fp) {
  detail::check(chub_list_runs(fp), "chub_list_runs");
}

/* chub_event_record(): records a usage event ("train", "val", "predict",
 * "export"). Never blocks; failures are silent. */
inline void event_record(std::string_view name, const chub::args &a,
                         trainer *t = nullptr) {
  chub_args ca = a.c();
  chub_event_record(std::string(name).c_str(), &ca, t ? t->c() : nullptr);
}

} // namespace chub

#endif /* CHUB_HPP */

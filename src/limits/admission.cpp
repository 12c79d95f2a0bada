#include "limits/admission.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ondol::limits {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

const char* to_string(AdmissionOutcome outcome) {
  switch (outcome) {
    case AdmissionOutcome::Admitted:
      return "admitted";
    case AdmissionOutcome::QueueFull:
      return "queue_full";
    case AdmissionOutcome::QueueTimeout:
      return "queue_timeout";
  }
  return "?";
}

namespace detail {

struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;  // touched only on its own executor
  bool granted = false;      // guarded by AdmissionCore::mu: a slot was handed to this waiter
  bool done = false;         // guarded by AdmissionCore::mu: the waiter has taken its answer
};

struct AdmissionCore {
  explicit AdmissionCore(AdmissionOptions o) : options(o) {}

  // Frees a slot: hands it to the oldest waiter, or lowers the count. Called under mu.
  void release_locked() {
    if (!queue.empty()) {
      std::shared_ptr<Waiter> w = std::move(queue.front());
      queue.pop_front();
      w->granted = true;
      asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
      return;
    }
    --in_flight;
  }

  void release() {
    std::lock_guard lock(mu);
    release_locked();
  }

  bool unlimited() const { return options.max_parallel <= 0; }

  int64_t retry_after_seconds() const {
    int64_t s = (options.queue_timeout.count() + 999) / 1000;
    return std::max<int64_t>(1, s);
  }

  AdmissionOptions options;
  mutable std::mutex mu;
  int in_flight = 0;
  std::deque<std::shared_ptr<Waiter>> queue;
};

}  // namespace detail

using detail::AdmissionCore;
using detail::Waiter;

Permit& Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release();
    core_ = std::move(other.core_);
  }
  return *this;
}

Permit::~Permit() {
  release();
}

void Permit::release() {
  if (core_ == nullptr) return;
  core_->release();
  core_.reset();
}

Admission::Admission(AdmissionOptions options) : core_(std::make_shared<AdmissionCore>(options)) {}

AdmissionResult Admission::try_acquire() {
  AdmissionResult r;
  std::lock_guard lock(core_->mu);
  if (core_->unlimited() ||
      (core_->in_flight < core_->options.max_parallel && core_->queue.empty())) {
    ++core_->in_flight;
    r.permit = Permit(core_);
    return r;
  }
  r.outcome = AdmissionOutcome::QueueFull;
  r.retry_after_seconds = core_->retry_after_seconds();
  return r;
}

namespace {

// Gives a waiter's place, or a slot handed to it, back if its coroutine ends without taking an
// answer (the frame destroyed while suspended).
class WaitGuard {
 public:
  WaitGuard(AdmissionCore& core, std::shared_ptr<Waiter> w) : core_(core), w_(std::move(w)) {}
  ~WaitGuard() {
    std::lock_guard lock(core_.mu);
    if (w_->done) return;
    w_->done = true;
    if (w_->granted)
      core_.release_locked();
    else
      std::erase(core_.queue, w_);
  }
  WaitGuard(const WaitGuard&) = delete;
  WaitGuard& operator=(const WaitGuard&) = delete;

 private:
  AdmissionCore& core_;
  std::shared_ptr<Waiter> w_;
};

}  // namespace

asio::awaitable<AdmissionResult> Admission::acquire() {
  AdmissionResult r = try_acquire();
  if (r.admitted()) {
    co_return r;
  }
  auto executor = co_await asio::this_coro::executor;
  const Clock::time_point start = Clock::now();
  auto w = std::make_shared<Waiter>(executor);
  bool queued = false;
  {
    std::lock_guard lock(core_->mu);
    // The slot count may have changed since try_acquire.
    if (core_->in_flight < core_->options.max_parallel && core_->queue.empty()) {
      ++core_->in_flight;
      r.outcome = AdmissionOutcome::Admitted;
      r.permit = Permit(core_);
      r.retry_after_seconds = 0;
    } else if (static_cast<int>(core_->queue.size()) < core_->options.max_queue) {
      w->timer.expires_after(core_->options.queue_timeout);
      core_->queue.push_back(w);
      queued = true;
    }  // else QueueFull, as try_acquire answered
  }
  if (!queued) {
    co_return r;
  }
  WaitGuard guard(*core_, w);
  boost::system::error_code ec;
  co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  {
    std::lock_guard lock(core_->mu);
    w->done = true;
    r.waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (w->granted) {
      r.outcome = AdmissionOutcome::Admitted;
      r.permit = Permit(core_);
      r.retry_after_seconds = 0;
    } else {
      std::erase(core_->queue, w);
      r.outcome = AdmissionOutcome::QueueTimeout;
      r.retry_after_seconds = core_->retry_after_seconds();
    }
  }
  co_return r;
}

int Admission::in_flight() const {
  std::lock_guard lock(core_->mu);
  return core_->in_flight;
}

int Admission::queued() const {
  std::lock_guard lock(core_->mu);
  return static_cast<int>(core_->queue.size());
}

const AdmissionOptions& Admission::options() const {
  return core_->options;
}

}  // namespace ondol::limits

// Admission control: at most `max_parallel` requests run at once; up to `max_queue` more wait
// in FIFO order for at most `queue_timeout`; beyond that a request is refused at once, so that
// an overloaded gateway answers 503 + Retry-After instead of letting requests time out.
// One Admission for the whole gateway (global_max_parallel_requests) and one per deployment
// (max_parallel_requests); see docs/limits.md.
//
// Thread-safe: one mutex guards the counts and the queue; a waiter is woken on its own
// executor. Assumes one thread per io_context (as `ondol serve` runs): a wake-up posted to a
// waiter's executor runs after the waiter has suspended.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange (GCC 12)

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace ondol::limits {

struct AdmissionOptions {
  int max_parallel = 0;  // <= 0: no limit (every request is admitted at once)
  int max_queue = 0;     // requests that may wait for a slot; 0: none wait
  std::chrono::milliseconds queue_timeout{30'000};
};

enum class AdmissionOutcome {
  Admitted,
  QueueFull,     // all slots busy and the queue full: refused at once
  QueueTimeout,  // waited queue_timeout without getting a slot
};

const char* to_string(AdmissionOutcome outcome);

class Admission;
namespace detail {
struct AdmissionCore;
}  // namespace detail

// A running request's slot; destroying (or releasing) it frees the slot, which passes straight
// to the oldest waiter if there is one. Movable, not copyable.
class Permit {
 public:
  Permit() = default;
  Permit(Permit&& other) noexcept = default;
  Permit& operator=(Permit&& other) noexcept;
  ~Permit();

  bool valid() const { return core_ != nullptr; }
  void release();

 private:
  friend class Admission;
  explicit Permit(std::shared_ptr<detail::AdmissionCore> core) : core_(std::move(core)) {}
  std::shared_ptr<detail::AdmissionCore> core_;
};

struct AdmissionResult {
  AdmissionOutcome outcome = AdmissionOutcome::Admitted;
  Permit permit;                    // valid when admitted
  int64_t retry_after_seconds = 0;  // when refused: queue_timeout rounded up, at least 1
  std::chrono::milliseconds waited{0};

  bool admitted() const { return outcome == AdmissionOutcome::Admitted; }
};

class Admission {
 public:
  explicit Admission(AdmissionOptions options);

  // A slot now, or a place in the queue and a slot when one frees up within queue_timeout.
  // Destroying the awaiting coroutine while it waits gives its place (or slot) back.
  boost::asio::awaitable<AdmissionResult> acquire();
  // A slot now or a refusal (QueueFull); never waits.
  AdmissionResult try_acquire();

  int in_flight() const;
  int queued() const;
  const AdmissionOptions& options() const;

 private:
  std::shared_ptr<detail::AdmissionCore> core_;
};

}  // namespace ondol::limits

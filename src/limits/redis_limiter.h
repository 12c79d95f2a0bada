// Rate-limit counters in Redis, shared by every gateway instance: check-and-consume over all
// limits of a request is one Lua script, which Redis runs atomically, so N instances admit
// exactly the limit in total. The script mirrors roll() and check() of sliding_window.h; the
// decision (remaining, retry-after) is computed here from the state it returns, with the same
// functions the in-process limiter uses.
//
// One RedisLimiter per I/O thread (its RedisClient is bound to that thread's executor); the
// instances of a process share a RedisLimiterStats and the fail-open LocalLimiter.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "limits/limiter.h"
#include "limits/local_limiter.h"
#include "limits/redis_client.h"

namespace ondol::metrics {
class Registry;
class Gauge;
class Counter;
}  // namespace ondol::metrics

namespace ondol::limits {

enum class FailMode {
  Open,    // Redis unreachable: decide with the in-process counters (degraded)
  Closed,  // Redis unreachable: refuse with Outcome::Unavailable (503)
};

struct RedisLimiterOptions {
  FailMode fail_mode = FailMode::Open;
  std::string key_prefix = "ondol:rl:";
  std::chrono::milliseconds unavailable_retry_after{1000};  // Retry-After of a fail-closed 503
};

// Health and counters of the Redis limiters of one process, for /health and /metrics.
class RedisLimiterStats {
 public:
  // Declares ondol_redis_up, ondol_redis_errors_total and
  // ondol_rate_limit_degraded_total{mode}, kept up to date from then on.
  void declare_metrics(metrics::Registry& registry);

  void record_success();
  void record_error();                 // a call failed
  void record_failure(FailMode mode);  // a call failed and a decision was made without Redis

  bool reachable() const { return reachable_.load(std::memory_order_relaxed); }
  uint64_t errors_total() const { return errors_total_.load(std::memory_order_relaxed); }
  uint64_t degraded_total() const { return degraded_total_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> reachable_{true};
  std::atomic<uint64_t> errors_total_{0};
  std::atomic<uint64_t> degraded_total_{0};
  std::atomic<metrics::Gauge*> up_{nullptr};
  std::atomic<metrics::Counter*> errors_{nullptr};
  std::atomic<metrics::Counter*> degraded_open_{nullptr};
  std::atomic<metrics::Counter*> degraded_closed_{nullptr};
};

class RedisLimiter final : public Limiter {
 public:
  // `client`, `fallback` and `stats` must outlive the limiter; `fallback` is used only in
  // fail-open mode (and may be null in fail-closed mode).
  RedisLimiter(RedisClient& client, LocalLimiter* fallback, RedisLimiterStats& stats,
               RedisLimiterOptions options);

  boost::asio::awaitable<Decision> acquire(const std::vector<LimitSpec>& limits,
                                           int64_t estimated_tokens) override;
  boost::asio::awaitable<void> settle(const Ticket& ticket, int64_t actual_tokens) override;

  const RedisLimiterOptions& options() const { return options_; }

  // The Lua sources (tests and docs).
  static const LuaScript& acquire_script();
  static const LuaScript& settle_script();

 private:
  Decision unreachable(const std::vector<LimitSpec>& limits, int64_t estimated_tokens);

  RedisClient& client_;
  LocalLimiter* fallback_;
  RedisLimiterStats& stats_;
  RedisLimiterOptions options_;
};

}  // namespace ondol::limits

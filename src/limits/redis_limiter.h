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
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <optional>
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

  // The first success after a failure, and the first failure after a success, are logged.
  void record_success();
  void record_error(std::string_view reason);  // a call failed
  // A call failed and a decision was made without Redis.
  void record_failure(FailMode mode, std::string_view reason);

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

  // acquire() that also reads `get_key` (a full Redis key; empty: none) in the same script call:
  // the response cache's lookup rides along with the rate limits. `got` is false when Redis did
  // not answer (then the decision is the fail mode's) or `limits` is empty (nothing was sent).
  struct AcquireAndGet {
    Decision decision;
    bool got = false;
    std::optional<std::string> value;  // the key's value; nullopt: absent
  };
  boost::asio::awaitable<AcquireAndGet> acquire_and_get(const std::vector<LimitSpec>& limits,
                                                        int64_t estimated_tokens,
                                                        std::string get_key);
  boost::asio::awaitable<void> settle(const Ticket& ticket, int64_t actual_tokens) override;

  // settle() without waiting, coalesced: the deltas of every ticket settled this way before the
  // flush runs are summed per (counter, window) and sent in one script call by a coroutine
  // spawned on `executor` (the client's). Under load one call carries the settlements of many
  // requests, instead of one call each. The limiter must outlive the flush.
  void settle_soon(const boost::asio::any_io_executor& executor, const Ticket& ticket,
                   int64_t actual_tokens);
  // Concurrency shared by every instance (max_parallel_requests of keys, users, teams, tiers):
  // one lease per request in a sorted set per scope, scored by its expiry. A request is admitted
  // when every scope has fewer than its limit of unexpired leases, and then leases all of them
  // (one script call, all or nothing). Leases expire after lease_ms, so those of a crashed
  // instance stop counting then. `reached` is false when Redis did not answer.
  struct LeaseResult {
    bool reached = false;
    bool admitted = false;
    size_t refused = 0;  // the index of the scope that had no room
  };
  boost::asio::awaitable<LeaseResult> acquire_leases(const std::vector<std::string>& scopes,
                                                     const std::vector<int64_t>& limits,
                                                     std::string member, int64_t lease_ms);
  // Gives the leases back, off the request's path: queued and sent with the turn's others.
  void release_leases_soon(const boost::asio::any_io_executor& executor,
                           const std::vector<std::string>& scopes, const std::string& member);
  // Lease releases queued and not yet sent (tests).
  size_t num_unsent_releases() const { return unsent_releases_.size() / 2; }

  // Settlements queued and not yet sent (tests).
  size_t num_unsent_settlements() const { return unsent_.size(); }
  // Script calls that carried settlements (tests: coalescing happened).
  uint64_t num_settle_calls() const { return settle_calls_; }

  const RedisLimiterOptions& options() const { return options_; }

  // The Lua sources (tests and docs).
  static const LuaScript& acquire_script();
  static const LuaScript& settle_script();

 private:
  Decision unreachable(const std::vector<LimitSpec>& limits, int64_t estimated_tokens,
                       std::string_view reason);
  // One script call settling `entries` (counter key with prefix, window_ms, window start, delta).
  struct Settlement {
    std::string key;  // prefixed counter key
    int64_t window_ms = 0;
    int64_t window_start_ms = 0;
    int64_t delta = 0;
  };
  boost::asio::awaitable<void> send_settlements(std::vector<Settlement> entries);
  boost::asio::awaitable<void> flush_settlements();
  boost::asio::awaitable<void> flush_releases();
  std::string lease_key(const std::string& scope) const;

  RedisClient& client_;
  LocalLimiter* fallback_;
  RedisLimiterStats& stats_;
  RedisLimiterOptions options_;
  std::vector<Settlement> unsent_;  // settle_soon()'s, coalesced, until the flush takes them
  bool flush_scheduled_ = false;
  std::vector<std::string> unsent_releases_;  // key, member, key, member, ...
  bool release_flush_scheduled_ = false;
  uint64_t settle_calls_ = 0;
};

}  // namespace ondol::limits

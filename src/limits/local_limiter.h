// Rate-limit counters in process: the embedded default, and the fallback of RedisLimiter when
// Redis is unreachable in fail-open mode. Thread-safe: counters live in shards, each behind its
// own mutex; a request locks the shards of its counters in index order, so check-and-consume
// over several limits is atomic and deadlock-free.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "limits/limiter.h"
#include "limits/sliding_window.h"

namespace ondol::limits {

// Unix time in milliseconds; injectable so that tests drive time without sleeping.
using ClockMs = std::function<int64_t()>;
int64_t system_now_ms();

class LocalLimiter final : public Limiter {
 public:
  static constexpr size_t kNumShards = 64;
  // A shard drops counters idle for two windows after this many operations on it.
  static constexpr uint32_t kSweepEveryOps = 4096;

  explicit LocalLimiter(ClockMs now_ms = system_now_ms, uint32_t sweep_every_ops = kSweepEveryOps);

  // The synchronous forms: the work is a few map lookups under short locks.
  Decision try_acquire(const std::vector<LimitSpec>& limits, int64_t estimated_tokens);
  void settle_now(const Ticket& ticket, int64_t actual_tokens);

  boost::asio::awaitable<Decision> acquire(const std::vector<LimitSpec>& limits,
                                           int64_t estimated_tokens) override;
  boost::asio::awaitable<void> settle(const Ticket& ticket, int64_t actual_tokens) override;

  // Counters held (for tests and a gauge).
  size_t num_counters() const;
  // The counter's state rolled to now, or zeros if absent (tests).
  WindowCounter peek(const LimitSpec& spec) const;

 private:
  struct Entry {
    WindowCounter counter;
    int64_t window_ms = 0;
  };
  // Looked up by string_view: a request's counter names are not copied to find them.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry, NameHash, std::equal_to<>> counters;
    uint32_t ops_since_sweep = 0;
  };

  size_t shard_of(std::string_view key) const;
  void maybe_sweep(Shard& shard, int64_t now_ms);

  ClockMs now_ms_;
  uint32_t sweep_every_ops_;
  std::array<Shard, kNumShards> shards_;
};

}  // namespace ondol::limits

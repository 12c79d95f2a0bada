// The gateway's request policies and the state behind them: rate-limit counters (in process, or
// in Redis through one RedisLimiter per I/O thread), admission control (global, per deployment,
// per key/user/team/tier scope) and the response cache. Created once at startup from the first
// config; Redis and cache settings take effect at restart, limit values (rpm, tpm,
// max_parallel_requests) at every reload because the proxy reads them from the current config.
// See docs/limits.md and docs/gateway.md.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange (GCC 12)

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics/registry.h"
#include "gateway/cache/response_cache.h"
#include "gateway/config/config.h"
#include "gateway/principal.h"
#include "limits/admission.h"
#include "limits/local_limiter.h"
#include "limits/redis_client.h"
#include "limits/redis_limiter.h"

namespace ondol::gateway {

class Policies {
 public:
  Policies(const GatewayConfig& config, metrics::Registry& registry);
  ~Policies();
  Policies(const Policies&) = delete;
  Policies& operator=(const Policies&) = delete;

  // Rate limits: check-and-consume over `specs`, then settle with the real token count.
  // Must run on an I/O thread (the Redis client is that thread's). settle() does not wait:
  // in process it is done on return; in Redis it is queued on the calling I/O thread and sent,
  // summed with the others queued in the same turn, in one script call right after it (bounded
  // by redis_timeout, at most once).
  boost::asio::awaitable<limits::Decision> acquire(const std::vector<limits::LimitSpec>& specs,
                                                   int64_t estimated_tokens);
  void settle(const limits::Ticket& ticket, int64_t actual_tokens);

  // acquire() that also looks `cache_key` up (empty: no lookup) in the same Redis call when the
  // response cache lives in the limits' Redis; `lookup` tells whether it did, and what it found.
  struct CacheLookup {
    bool done = false;
    std::optional<cache::CachedResponse> hit;
  };
  boost::asio::awaitable<limits::Decision> acquire_and_lookup(
      const std::vector<limits::LimitSpec>& specs, int64_t estimated_tokens,
      const std::string& cache_key, CacheLookup* lookup);

  // The global admission (null when global_max_parallel_requests is unset).
  limits::Admission* global_admission() { return global_.get(); }
  // The admission of one scope ("deployment:<id>", "key:<hash>", ...) with this many slots,
  // created on first use; a changed max_parallel (a reload) makes a new one.
  limits::Admission* admission(const std::string& scope, int max_parallel);

  // max_parallel_requests of a caller's scopes (key, user, team, tier; refused at once, as
  // LiteLLM does). With Redis, counted for every instance sharing it: a lease per request per
  // scope (RedisLimiter::acquire_leases), given back when the permit goes; Redis unreachable:
  // counted in this process (fail open) or refused (fail closed). Without Redis, in process.
  class ParallelPermit {
   public:
    ParallelPermit() = default;
    ParallelPermit(ParallelPermit&& other) noexcept
        : local_(std::move(other.local_)),
          limiter_(std::exchange(other.limiter_, nullptr)),
          executor_(std::move(other.executor_)),
          scopes_(std::move(other.scopes_)),
          member_(std::move(other.member_)) {}
    ParallelPermit& operator=(ParallelPermit&&) = delete;
    ~ParallelPermit();

   private:
    friend class Policies;
    std::vector<limits::Permit> local_;
    limits::RedisLimiter* limiter_ = nullptr;  // its thread's, parked for the process's life
    boost::asio::any_io_executor executor_;
    std::vector<std::string> scopes_;
    std::string member_;
  };
  struct ParallelResult {
    bool admitted = true;
    bool unavailable = false;  // Redis unreachable and the fail mode is closed
    std::string refused_scope;
    ParallelPermit permit;
  };
  boost::asio::awaitable<ParallelResult> acquire_parallel(const std::vector<ScopeLimits>& scopes);

  // The response cache. get() misses when Redis cannot answer; store() drops what cannot be
  // stored.
  bool cache_enabled() const { return cache_.enabled; }
  const CacheConfig& cache_config() const { return cache_; }
  boost::asio::awaitable<std::optional<cache::CachedResponse>> cache_get(const std::string& key);
  // Stores without waiting: in process it is done on return; in Redis it is queued on the
  // calling I/O thread (`executor`) and sent, with the other stores queued in the same turn, in
  // one script call right after it (safe after this object is gone).
  void cache_store(const boost::asio::any_io_executor& executor, std::string key,
                   cache::CachedResponse value, double ttl_s);
  void count_cache(bool hit, const std::string& model);

  // /health: whether Redis is configured for limits and answered the last call; check_redis()
  // asks it now (PING, within redis_timeout) and records the answer.
  bool redis_configured() const { return redis_ != nullptr; }
  boost::asio::awaitable<bool> check_redis();
  bool redis_reachable() const { return stats_.reachable(); }
  bool fail_closed() const { return fail_closed_; }
  int64_t default_completion_tokens() const { return default_completion_tokens_; }
  // After a reload: warns about settings that only a restart applies (Redis, fail mode, global
  // admission, the cache).
  void warn_startup_only_changes(const GatewayConfig& config) const;

 private:
  struct ThreadState;
  ThreadState& thread_state();
  limits::RedisClient& cache_client(ThreadState& t, const boost::asio::any_io_executor& executor);
  // The thread's Redis client for limits (made on first use), and its limiter.
  limits::RedisClient& limits_client(ThreadState& t, const boost::asio::any_io_executor& executor);
  limits::RedisLimiter& redis_limiter(ThreadState& t, const boost::asio::any_io_executor& executor);
  ParallelResult acquire_parallel_locally(const std::vector<ScopeLimits>& scopes);
  std::string cache_redis_key(const std::string& key) const;
  static boost::asio::awaitable<void> flush_stores(ThreadState* t, limits::RedisClient* client);

  std::unique_ptr<limits::RedisConfig> redis_;        // null: counters in process
  std::unique_ptr<limits::RedisConfig> cache_redis_;  // null: the cache is in process
  // The cache's Redis is the limits' one: one connection per thread carries both, so that a
  // request's commands share writes and reads.
  bool cache_shares_limits_client_ = false;
  bool fail_closed_ = false;
  int64_t lease_ms_ = 600'000;  // a parallel-request lease: the longest a request may take
  int64_t default_completion_tokens_ = 256;
  limits::LocalLimiter local_;
  limits::RedisLimiterStats stats_;
  std::unique_ptr<limits::Admission> global_;
  int max_queue_ = 0;                            // general_settings.max_queue_size
  std::chrono::milliseconds queue_timeout_{0};   // general_settings.queue_timeout
  std::mutex admissions_mu_;
  std::unordered_map<std::string, std::shared_ptr<limits::Admission>> admissions_;
  CacheConfig cache_;
  LimitsConfig limits_config_;  // as read at startup
  std::unique_ptr<cache::LocalResponseCache> local_cache_;
  metrics::CounterFamily* cache_hits_ = nullptr;
  metrics::CounterFamily* cache_misses_ = nullptr;
  uint64_t generation_;
  std::mutex threads_mu_;
  std::unordered_map<std::thread::id, std::unique_ptr<ThreadState>> threads_;
};

// Builds a RedisConfig from config fields (url wins); an error names the bad url.
Result<limits::RedisConfig> to_redis_config(const RedisSettings& s, double timeout_s);

}  // namespace ondol::gateway

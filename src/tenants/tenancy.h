// Tenancy: who may call and what it costs them. It owns the tenant store (SQLite or PostgreSQL),
// the thread that talks to it (blocking database calls never run on an I/O thread), the
// in-process key cache and the spend log.
//
//   resolve(key)   a presented virtual key → its Principal (key, user, team and tier limits),
//                  from the cache when fresh, else from the database on the database thread;
//                  stale cache entries answer while the database is away.
//   run(f)         any store operation, on the database thread, awaited from an I/O thread.
#pragma once

#include <utility>  // before asio/awaitable.hpp (Boost 1.74 + GCC 12)

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <type_traits>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/principal.h"
#include "tenants/key_cache.h"
#include "tenants/spend_log.h"
#include "tenants/store.h"

namespace ondol::tenants {

// A tier's limits (general_settings.tiers.NAME). Unset: no limit.
struct TierLimits {
  std::optional<int64_t> rpm;
  std::optional<int64_t> tpm;
  std::optional<int64_t> tpd;
  std::optional<int64_t> max_parallel_requests;
};
using Tiers = std::map<std::string, TierLimits, std::less<>>;

struct TenancyOptions {
  std::string database_url;  // "postgresql://..." or a SQLite file path
  std::string spool_dir;     // the spend log's durable queue
  std::chrono::milliseconds key_cache_ttl{5000};
  // How often to look for key changes made by other instances (change_generation); 0: never.
  std::chrono::milliseconds change_poll{1000};
  std::chrono::milliseconds spend_flush_interval{200};
  bool spend_logs_enabled = true;
  Tiers tiers;
};

enum class KeyStatus { Ok, Unknown, Expired, Blocked, Unavailable };

struct KeyResolution {
  KeyStatus status = KeyStatus::Unknown;
  std::shared_ptr<const gateway::Principal> principal;  // set when Ok
};

class Tenancy {
 public:
  // Opens the database (two connections: one for the database thread, one for the spend log),
  // applies migrations and starts both threads.
  static Result<std::unique_ptr<Tenancy>> open(TenancyOptions options);
  ~Tenancy();

  boost::asio::awaitable<KeyResolution> resolve(std::string presented_key);

  // Runs f(TenantStore&) on the database thread; the awaiting coroutine resumes on its own
  // executor with f's result.
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F&, TenantStore&>> run(F f);

  void invalidate(const std::string& key_hash) { cache_.invalidate(key_hash); }
  void invalidate_all() { cache_.clear(); }
  // A reload: new tier limits and cache TTL; cached principals carry tier limits, so they go.
  void reconfigure(Tiers tiers, std::chrono::milliseconds key_cache_ttl);
  std::shared_ptr<const Tiers> tiers() const;

  SpendLog& spend_log() { return *spend_log_; }
  // Where principals report finished requests: the spend log, or null when spend logs are off.
  gateway::UsageSink* spend_sink() { return spend_logs_enabled_ ? spend_log_.get() : nullptr; }
  KeyCache& cache() { return cache_; }
  // The database answered the last call made on the database thread (and the spend log's).
  bool db_up() const { return db_up_.load() && spend_log_->target_up(); }
  // Pings the database (on its thread) and updates db_up().
  boost::asio::awaitable<bool> check_db();
  const std::string& dialect() const { return dialect_; }
  // ondol_tenant_db_up, ondol_key_cache_lookups_total{result="hit|miss"} and
  // ondol_spend_log_records_total{outcome="written|dropped"}.
  void declare_metrics(metrics::Registry& registry);

 private:
  Tenancy() = default;
  void note_db(bool ok);
  // At most once per change_poll, asks the database thread for the change generation and
  // drops every cached key when it moved (a key changed on another instance). Never waits.
  void poll_changes();

  std::unique_ptr<TenantStore> store_;  // used on db_thread_ only
  std::unique_ptr<SpendLog> spend_log_;
  KeyCache cache_{std::chrono::milliseconds(5000)};
  mutable std::mutex tiers_mu_;
  std::shared_ptr<const Tiers> tiers_;
  std::atomic<bool> db_up_{true};
  std::atomic<int64_t> db_failed_at_ms_{0};
  std::atomic<int64_t> next_change_poll_ms_{0};
  std::atomic<metrics::Gauge*> db_up_gauge_{nullptr};
  std::atomic<metrics::Counter*> cache_hits_{nullptr};
  std::atomic<metrics::Counter*> cache_misses_{nullptr};
  int64_t seen_generation_ = -1;  // on db_thread_ only; -1: not read yet
  int64_t change_poll_ms_ = 1000;
  std::string dialect_;
  bool spend_logs_enabled_ = true;
  boost::asio::thread_pool db_thread_{1};
};

// The Principal of a key, built from its record and those of its user and team (nullopt when
// absent) and the tier limits. Exposed for tests.
ResolvedKey build_resolved_key(const KeyRecord& key, const std::optional<UserRecord>& user,
                               const std::optional<TeamRecord>& team, const Tiers& tiers,
                               gateway::UsageSink* usage_sink = nullptr);

template <typename F>
boost::asio::awaitable<std::invoke_result_t<F&, TenantStore&>> Tenancy::run(F f) {
  using R = std::invoke_result_t<F&, TenantStore&>;
  auto initiate = [this, f = std::move(f)](auto handler) mutable {
    boost::asio::post(db_thread_, [this, f = std::move(f), handler = std::move(handler)]() mutable {
      R result = f(*store_);
      auto ex = boost::asio::get_associated_executor(handler);
      boost::asio::post(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
        handler(std::move(result));
      });
    });
  };
  R result = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
      std::move(initiate), boost::asio::use_awaitable);
  co_return result;
}

}  // namespace ondol::tenants

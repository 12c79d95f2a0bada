#include "gateway/policies.h"

#include <boost/asio.hpp>

#include <atomic>
#include <random>

#include <fmt/format.h>

#include "common/log.h"

namespace ondol::gateway {

namespace asio = boost::asio;

namespace {

std::atomic<uint64_t> g_next_generation{1};

int64_t now_ms() { return limits::system_now_ms(); }

bool same_server(const limits::RedisConfig& a, const limits::RedisConfig& b) {
  return a.host == b.host && a.port == b.port && a.username == b.username &&
         a.password == b.password && a.db == b.db && a.command_timeout == b.command_timeout;
}

}  // namespace

// One I/O thread's Redis connections, bound to its executor.
struct Policies::ThreadState {
  asio::any_io_executor executor;  // the I/O thread's, which the clients are bound to
  std::unique_ptr<limits::RedisClient> limits_client;
  std::unique_ptr<limits::RedisLimiter> limiter;
  std::unique_ptr<limits::RedisClient> cache_client;
  // cache_store()'s entries not sent yet: the next flush sends them all in one script call.
  struct Store {
    std::string key;
    std::string value;
    int64_t ttl_ms = 0;
  };
  std::vector<Store> unsent_stores;
  bool store_flush_scheduled = false;
};

Result<limits::RedisConfig> to_redis_config(const RedisSettings& s, double timeout_s) {
  limits::RedisConfig c;
  if (!s.url.empty()) {
    auto parsed = limits::parse_redis_url(s.url);
    if (!parsed) return parsed.error();
    c = *parsed;
  } else {
    c.host = s.host;
    c.port = static_cast<uint16_t>(s.port);
    c.password = s.password;
    c.db = s.db;
  }
  c.command_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return c;
}

Policies::Policies(const GatewayConfig& config, metrics::Registry& registry)
    : fail_closed_(config.limits.fail_closed),
      lease_ms_(static_cast<int64_t>(std::max(60.0, config.request_timeout_s) * 1000)),
      default_completion_tokens_(config.limits.default_completion_tokens),
      max_queue_(config.limits.max_queue),
      queue_timeout_(static_cast<int64_t>(config.limits.queue_timeout_s * 1000)),
      cache_(config.cache),
      limits_config_(config.limits),
      generation_(g_next_generation.fetch_add(1)) {
  const LimitsConfig& l = config.limits;
  if (l.redis.configured()) {
    auto c = to_redis_config(l.redis, l.redis_timeout_s);
    if (c) {
      redis_ = std::make_unique<limits::RedisConfig>(*c);
      stats_.declare_metrics(registry);
    } else {
      log::error("limits", "router_settings.redis_url is invalid; counting in process",
                 {{"error", c.error().message}});
    }
  }
  if (l.global_max_parallel_requests > 0) {
    global_ = std::make_unique<limits::Admission>(limits::AdmissionOptions{
        .max_parallel = l.global_max_parallel_requests,
        .max_queue = max_queue_,
        .queue_timeout = queue_timeout_});
  }
  if (cache_.enabled) {
    if (cache_.redis) {
      const RedisSettings& s =
          cache_.redis_settings.configured() ? cache_.redis_settings : l.redis;
      auto c = to_redis_config(s, l.redis_timeout_s);
      if (s.configured() && c) {
        cache_redis_ = std::make_unique<limits::RedisConfig>(*c);
      } else {
        log::error("cache", "cache_params.type is redis but no Redis is configured (cache_params "
                            "host/port or router_settings.redis_*): caching in process");
      }
    }
    cache_shares_limits_client_ = cache_redis_ && redis_ && same_server(*cache_redis_, *redis_);
    if (!cache_redis_)
      local_cache_ = std::make_unique<cache::LocalResponseCache>(
          static_cast<size_t>(cache_.max_entries));
    cache_hits_ = &registry.counter("litellm_cache_hits_metric_total",
                                    "Requests answered from the response cache", {"model"});
    cache_misses_ = &registry.counter("litellm_cache_misses_metric_total",
                                      "Cacheable requests not found in the response cache",
                                      {"model"});
  }
}

// The Redis clients hold sockets of the I/O threads' io_contexts, which `ondol serve` destroys
// before the gateway: they are parked until the process ends rather than closed on a dead
// context (reachable from here, so a leak checker does not report them).
Policies::~Policies() {
  static auto* parked = new std::vector<std::unique_ptr<ThreadState>>();
  static std::mutex parked_mu;
  std::lock_guard lock(parked_mu);
  for (auto& [id, state] : threads_) parked->push_back(std::move(state));
}

Policies::ThreadState& Policies::thread_state() {
  struct Cached {
    uint64_t generation = 0;
    ThreadState* state = nullptr;
  };
  thread_local Cached cached;
  if (cached.generation == generation_) return *cached.state;
  std::lock_guard lock(threads_mu_);
  auto& slot = threads_[std::this_thread::get_id()];
  if (!slot) slot = std::make_unique<ThreadState>();
  cached = {.generation = generation_, .state = slot.get()};
  return *slot;
}

asio::awaitable<limits::Decision> Policies::acquire(const std::vector<limits::LimitSpec>& specs,
                                                    int64_t estimated_tokens) {
  if (!redis_) {
    limits::Decision d = local_.try_acquire(specs, estimated_tokens);
    co_return d;
  }
  auto executor = co_await asio::this_coro::executor;
  limits::RedisLimiter& limiter = redis_limiter(thread_state(), executor);
  limits::Decision d = co_await limiter.acquire(specs, estimated_tokens);
  co_return d;
}

limits::RedisClient& Policies::limits_client(ThreadState& t,
                                             const asio::any_io_executor& executor) {
  if (!t.limits_client) {
    t.executor = executor;
    t.limits_client = std::make_unique<limits::RedisClient>(executor, *redis_);
  }
  return *t.limits_client;
}

limits::RedisLimiter& Policies::redis_limiter(ThreadState& t,
                                              const asio::any_io_executor& executor) {
  if (!t.limiter) {
    t.limiter = std::make_unique<limits::RedisLimiter>(
        limits_client(t, executor), &local_, stats_,
        limits::RedisLimiterOptions{.fail_mode = fail_closed_ ? limits::FailMode::Closed
                                                              : limits::FailMode::Open});
  }
  return *t.limiter;
}

asio::awaitable<limits::Decision> Policies::acquire_and_lookup(
    const std::vector<limits::LimitSpec>& specs, int64_t estimated_tokens,
    const std::string& cache_key, CacheLookup* lookup) {
  if (!cache_shares_limits_client_ || cache_key.empty() || specs.empty()) {
    limits::Decision d = co_await acquire(specs, estimated_tokens);
    co_return d;
  }
  auto executor = co_await asio::this_coro::executor;
  limits::RedisLimiter& limiter = redis_limiter(thread_state(), executor);
  std::string get_key = cache_redis_key(cache_key);
  limits::RedisLimiter::AcquireAndGet r =
      co_await limiter.acquire_and_get(specs, estimated_tokens, std::move(get_key));
  if (r.got) {
    lookup->done = true;
    if (r.value) lookup->hit = cache::deserialize(*r.value);
  }
  co_return std::move(r.decision);
}

asio::awaitable<bool> Policies::check_redis() {
  if (!redis_) co_return true;
  auto executor = co_await asio::this_coro::executor;
  limits::RedisClient& client = limits_client(thread_state(), executor);
  std::vector<std::string> args{"PING"};
  Result<limits::RespValue> reply = co_await client.command(std::move(args));
  bool ok = reply && !reply->is_error();
  if (ok) stats_.record_success();
  else
    stats_.record_error(reply ? std::string_view(reply->str) : reply.error().message);
  co_return ok;
}

void Policies::settle(const limits::Ticket& ticket, int64_t actual_tokens) {
  if (ticket.source == limits::Ticket::Source::None || ticket.tokens.empty()) return;
  if (ticket.source == limits::Ticket::Source::Local || !redis_) {
    local_.settle_now(ticket, actual_tokens);
    return;
  }
  if (std::max<int64_t>(0, actual_tokens) == ticket.estimated_tokens) return;  // nothing to add
  ThreadState& t = thread_state();
  if (!t.limiter) return;
  // Off the request's path, coalesced with the other settlements of this thread's current turn
  // into one script call sent right after it (docs/limits.md).
  t.limiter->settle_soon(t.executor, ticket, actual_tokens);
}

limits::Admission* Policies::admission(const std::string& scope, int max_parallel) {
  if (max_parallel <= 0) return nullptr;
  std::string key = scope + "|" + std::to_string(max_parallel);
  std::lock_guard lock(admissions_mu_);
  auto& slot = admissions_[key];
  if (!slot) {
    slot = std::make_shared<limits::Admission>(limits::AdmissionOptions{
        .max_parallel = max_parallel, .max_queue = max_queue_, .queue_timeout = queue_timeout_});
  }
  return slot.get();
}

Policies::ParallelPermit::~ParallelPermit() {
  if (limiter_ != nullptr) limiter_->release_leases_soon(executor_, scopes_, member_);
}

Policies::ParallelResult Policies::acquire_parallel_locally(
    const std::vector<ScopeLimits>& scopes) {
  ParallelResult out;
  for (const ScopeLimits& l : scopes) {
    if (!l.max_parallel_requests) continue;
    limits::AdmissionResult r = admission(l.scope, *l.max_parallel_requests)->try_acquire();
    if (!r.admitted()) {
      out.admitted = false;
      out.refused_scope = l.scope;
      out.permit.local_.clear();  // the slots taken so far go back
      return out;
    }
    out.permit.local_.push_back(std::move(r.permit));
  }
  return out;
}

asio::awaitable<Policies::ParallelResult> Policies::acquire_parallel(
    const std::vector<ScopeLimits>& scopes) {
  std::vector<std::string> names;
  std::vector<int64_t> limits;
  for (const ScopeLimits& l : scopes) {
    if (!l.max_parallel_requests) continue;
    names.push_back(l.scope);
    limits.push_back(*l.max_parallel_requests);
  }
  if (names.empty()) co_return ParallelResult{};
  if (!redis_) {
    co_return acquire_parallel_locally(scopes);
  }
  auto executor = co_await asio::this_coro::executor;
  limits::RedisLimiter& limiter = redis_limiter(thread_state(), executor);
  // The lease's name: random, not the request id, which a client may choose (and repeat).
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string member = fmt::format("{:016x}{:016x}", rng(), rng());
  limits::RedisLimiter::LeaseResult r =
      co_await limiter.acquire_leases(names, limits, member, lease_ms_);
  ParallelResult out;
  if (!r.reached) {
    if (!fail_closed_) {
      co_return acquire_parallel_locally(scopes);
    }
    out.admitted = false;
    out.unavailable = true;
    co_return out;
  }
  if (!r.admitted) {
    out.admitted = false;
    out.refused_scope = names[std::min(r.refused, names.size() - 1)];
    co_return out;
  }
  out.permit.limiter_ = &limiter;
  out.permit.executor_ = executor;
  out.permit.scopes_ = std::move(names);
  out.permit.member_ = std::move(member);
  co_return out;
}

std::string Policies::cache_redis_key(const std::string& key) const {
  return cache_.namespace_ + "ondol:cache:" + key;
}

limits::RedisClient& Policies::cache_client(ThreadState& t, const asio::any_io_executor& executor) {
  if (cache_shares_limits_client_) return limits_client(t, executor);
  if (!t.cache_client)
    t.cache_client = std::make_unique<limits::RedisClient>(executor, *cache_redis_);
  return *t.cache_client;
}

asio::awaitable<std::optional<cache::CachedResponse>> Policies::cache_get(const std::string& key) {
  std::optional<cache::CachedResponse> out;
  if (local_cache_) {
    out = local_cache_->get(key, now_ms());
    co_return out;
  }
  if (!cache_redis_) co_return out;
  auto executor = co_await asio::this_coro::executor;
  limits::RedisClient& client = cache_client(thread_state(), executor);
  std::vector<std::string> args{"GET", cache_redis_key(key)};
  Result<limits::RespValue> reply = co_await client.command(std::move(args));
  if (reply && reply->type == limits::RespType::BulkString) out = cache::deserialize(reply->str);
  co_return out;
}

namespace {

// SET with PX of every KEYS[i] to ARGV[2i-1] for ARGV[2i] ms: the stores of one turn, one call.
const limits::LuaScript& store_script() {
  static const limits::LuaScript script(R"lua(
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
return #KEYS
)lua");
  return script;
}

}  // namespace

// The thread state and its client are parked for the process's life (see ~Policies): safe to
// use after the Policies that queued the stores is gone.
asio::awaitable<void> Policies::flush_stores(ThreadState* t, limits::RedisClient* client) {
  // Runs once the handlers ready now have run: the stores they queue go in this call.
  auto executor = co_await asio::this_coro::executor;
  co_await asio::post(executor, asio::use_awaitable);
  std::vector<ThreadState::Store> stores;
  stores.swap(t->unsent_stores);
  t->store_flush_scheduled = false;
  // In calls of at most kBatchBytes (answers may be up to 4 MiB each), one after another.
  constexpr size_t kBatchBytes = 1 << 20;
  size_t next = 0;
  while (next < stores.size()) {
    std::vector<std::string> keys;
    std::vector<std::string> args;
    size_t bytes = 0;
    for (;
         next < stores.size() && (keys.empty() || bytes + stores[next].value.size() <= kBatchBytes);
         ++next) {
      bytes += stores[next].value.size();
      keys.push_back(std::move(stores[next].key));
      args.push_back(std::move(stores[next].value));
      args.push_back(std::to_string(stores[next].ttl_ms));
    }
    Result<limits::RespValue> reply =
        co_await client->eval(store_script(), std::move(keys), std::move(args));
    (void)reply;  // a failed store is a later miss, nothing more
  }
}

void Policies::cache_store(const asio::any_io_executor& executor, std::string key,
                           cache::CachedResponse value, double ttl_s) {
  int64_t ttl_ms = std::max<int64_t>(1, static_cast<int64_t>(ttl_s * 1000));
  if (local_cache_) {
    local_cache_->put(key, std::move(value), now_ms() + ttl_ms);
    return;
  }
  if (!cache_redis_) return;
  ThreadState& t = thread_state();
  limits::RedisClient& client = cache_client(t, executor);
  t.unsent_stores.push_back({cache_redis_key(key), cache::serialize(value), ttl_ms});
  if (t.store_flush_scheduled) return;
  t.store_flush_scheduled = true;
  asio::co_spawn(executor, flush_stores(&t, &client), asio::detached);
}

namespace {

bool same(const RedisSettings& a, const RedisSettings& b) {
  return a.url == b.url && a.host == b.host && a.port == b.port && a.password == b.password &&
         a.db == b.db;
}

}  // namespace

void Policies::warn_startup_only_changes(const GatewayConfig& config) const {
  const LimitsConfig& a = limits_config_;
  const LimitsConfig& b = config.limits;
  const CacheConfig& c = config.cache;
  bool changed = !same(a.redis, b.redis) || a.fail_closed != b.fail_closed ||
                 a.redis_timeout_s != b.redis_timeout_s ||
                 a.global_max_parallel_requests != b.global_max_parallel_requests ||
                 a.max_queue != b.max_queue || a.queue_timeout_s != b.queue_timeout_s ||
                 cache_.enabled != c.enabled || cache_.redis != c.redis ||
                 cache_.ttl_s != c.ttl_s || cache_.default_off != c.default_off ||
                 cache_.max_entries != c.max_entries || cache_.namespace_ != c.namespace_ ||
                 !same(cache_.redis_settings, c.redis_settings);
  if (changed) {
    log::warn("config", "Redis, rate_limit_fail_mode, global admission and cache settings "
                        "changed; they take effect at restart, the running values stay");
  }
}

void Policies::count_cache(bool hit, const std::string& model) {
  metrics::CounterFamily* f = hit ? cache_hits_ : cache_misses_;
  if (f) f->with({model})->inc();
}

}  // namespace ondol::gateway

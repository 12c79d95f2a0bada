#include "tenants/tenancy.h"

#include <fmt/format.h>

#include "common/log.h"
#include "tenants/key_codec.h"

namespace ondol::tenants {

namespace {

constexpr std::string_view kComponent = "tenants";
// While the database is known to be away, cached keys answer without asking it again for this
// long, so that an outage does not add a connect timeout to every request.
constexpr int64_t kOutageRecheckMs = 1000;

// Only scopes that limit something are passed on.
void add_scope(std::vector<gateway::ScopeLimits>& out, std::string scope, const Limits& l,
               int64_t now) {
  if (!l.rpm_limit && !l.tpm_limit && !l.tpd_limit && !l.max_parallel_requests && !l.max_budget)
    return;
  gateway::ScopeLimits s;
  s.scope = std::move(scope);
  s.rpm = l.rpm_limit;
  s.tpm = l.tpm_limit;
  s.tpd = l.tpd_limit;
  if (l.max_parallel_requests) s.max_parallel_requests = static_cast<int>(*l.max_parallel_requests);
  s.max_budget = l.max_budget;
  s.spend = current_spend(l, now);
  out.push_back(std::move(s));
}

KeyResolution check(const std::shared_ptr<const ResolvedKey>& entry) {
  if (entry->blocked) return {KeyStatus::Blocked, nullptr};
  if (entry->expires_at_ms && *entry->expires_at_ms <= now_ms()) return {KeyStatus::Expired, nullptr};
  return {KeyStatus::Ok, entry->principal};
}

using Loaded = Result<std::optional<ResolvedKey>>;

Loaded load_key(TenantStore& store, const std::string& hash, const Tiers& tiers,
                gateway::UsageSink* sink) {
  auto key = store.find_key(hash);
  if (!key) return key.error();
  if (!*key) return std::optional<ResolvedKey>();
  std::optional<UserRecord> user;
  std::optional<TeamRecord> team;
  if ((*key)->user_id) {
    auto u = store.find_user(*(*key)->user_id);
    if (!u) return u.error();
    user = std::move(*u);
  }
  std::optional<std::string> team_id = (*key)->team_id;
  if (!team_id && user && user->team_id) team_id = user->team_id;
  if (team_id) {
    auto t = store.find_team(*team_id);
    if (!t) return t.error();
    team = std::move(*t);
  }
  return std::optional<ResolvedKey>(build_resolved_key(**key, user, team, tiers, sink));
}

}  // namespace

ResolvedKey build_resolved_key(const KeyRecord& key, const std::optional<UserRecord>& user,
                               const std::optional<TeamRecord>& team, const Tiers& tiers,
                               gateway::UsageSink* usage_sink) {
  auto p = std::make_shared<gateway::Principal>();
  p->usage_sink = usage_sink;
  int64_t now = now_ms();
  p->kind = gateway::Principal::Kind::VirtualKey;
  p->key_hash = key.key_hash;
  p->key_alias = key.key_alias.value_or("");
  p->user_id = key.user_id.value_or("");
  p->team_id = key.team_id ? *key.team_id : team ? team->team_id : "";
  p->tier = key.tier ? *key.tier : user && user->tier ? *user->tier : team && team->tier ? *team->tier : "";
  // The narrowest list that is set: the key's, else its team's, else its user's.
  p->models = !key.models.empty() ? key.models
              : team && !team->models.empty() ? team->models
              : user ? user->models : std::vector<std::string>{};
  add_scope(p->limits, "key:" + key.key_hash, key.limits, now);
  if (user) add_scope(p->limits, "user:" + user->user_id, user->limits, now);
  if (team) add_scope(p->limits, "team:" + team->team_id, team->limits, now);
  if (!p->tier.empty()) {
    auto it = tiers.find(p->tier);
    if (it != tiers.end()) {
      const TierLimits& t = it->second;
      Limits l{.rpm_limit = t.rpm, .tpm_limit = t.tpm, .tpd_limit = t.tpd,
               .max_parallel_requests = t.max_parallel_requests};
      add_scope(p->limits, "tier:" + p->tier, l, now);
    }
  }
  p->rate_limits = gateway::rate_limit_specs(p->limits);
  ResolvedKey r;
  r.blocked = key.blocked || (team && team->blocked);
  r.expires_at_ms = key.expires_at_ms;
  r.principal = std::move(p);
  return r;
}

Result<std::unique_ptr<Tenancy>> Tenancy::open(TenancyOptions options) {
  auto store = TenantStore::open(options.database_url);
  if (!store) return store.error();
  auto version = (*store)->migrate();
  if (!version) return version.error();
  auto spend_store = TenantStore::open(options.database_url);
  if (!spend_store) return spend_store.error();
  std::unique_ptr<Tenancy> t(new Tenancy());
  t->dialect_ = (*store)->connection().dialect();
  t->spend_logs_enabled_ = options.spend_logs_enabled;
  t->store_ = std::move(*store);
  if (auto g = t->store_->change_generation()) t->seen_generation_ = *g;
  t->cache_.set_ttl(options.key_cache_ttl);
  t->change_poll_ms_ = options.change_poll.count();
  t->tiers_ = std::make_shared<const Tiers>(std::move(options.tiers));
  auto log = SpendLog::start(std::move(*spend_store),
                             {.spool_dir = options.spool_dir,
                              .flush_interval = options.spend_flush_interval});
  if (!log) return log.error();
  t->spend_log_ = std::move(*log);
  log::info(kComponent, "tenant store ready",
            {{"database", t->dialect_}, {"schema_version", static_cast<int64_t>(*version)},
             {"spool_dir", t->spend_log_->spool_dir()}});
  return t;
}

Tenancy::~Tenancy() {
  if (spend_log_) spend_log_->stop();
  db_thread_.join();
}

void Tenancy::reconfigure(Tiers tiers, std::chrono::milliseconds key_cache_ttl) {
  {
    std::lock_guard lock(tiers_mu_);
    tiers_ = std::make_shared<const Tiers>(std::move(tiers));
  }
  cache_.set_ttl(key_cache_ttl);
  cache_.clear();
}

std::shared_ptr<const Tiers> Tenancy::tiers() const {
  std::lock_guard lock(tiers_mu_);
  return tiers_;
}

void Tenancy::declare_metrics(metrics::Registry& registry) {
  auto& up = registry.gauge("ondol_tenant_db_up",
                            "1 when the last key lookup or health check reached the tenant store");
  auto& lookups = registry.counter(
      "ondol_key_cache_lookups_total",
      "Virtual-key lookups answered from the in-process cache (hit) or the database (miss)",
      {"result"});
  auto& records =
      registry.counter("ondol_spend_log_records_total",
                       "Spend-log records written to the database, or dropped", {"outcome"});
  metrics::Gauge* g = up.with({});
  g->set(db_up_.load() ? 1 : 0);
  db_up_gauge_.store(g);
  cache_hits_.store(lookups.with({"hit"}));
  cache_misses_.store(lookups.with({"miss"}));
  spend_log_->set_counters(records.with({"written"}), records.with({"dropped"}));
}

void Tenancy::note_db(bool ok) {
  if (auto* g = db_up_gauge_.load()) g->set(ok ? 1 : 0);
  bool was = db_up_.exchange(ok);
  if (!ok) db_failed_at_ms_.store(now_ms());
  if (was && !ok) log::error(kComponent, "database unavailable; cached keys keep working", {});
  if (!was && ok) log::info(kComponent, "database available again", {});
}

void Tenancy::poll_changes() {
  if (change_poll_ms_ <= 0) return;
  int64_t now = now_ms();
  int64_t due = next_change_poll_ms_.load(std::memory_order_relaxed);
  if (now < due || !next_change_poll_ms_.compare_exchange_strong(due, now + change_poll_ms_))
    return;
  boost::asio::post(db_thread_, [this] {
    Result<int64_t> g = store_->change_generation();
    if (!g) return;  // the database is away: cached keys keep answering
    if (seen_generation_ >= 0 && *g != seen_generation_) cache_.clear();
    seen_generation_ = *g;
  });
}

boost::asio::awaitable<KeyResolution> Tenancy::resolve(std::string presented_key) {
  poll_changes();
  std::string hash = hash_key(presented_key);
  KeyCache::Lookup cached = cache_.find(hash, KeyCache::Clock::now());
  if (auto* c = (cached.entry && cached.fresh ? cache_hits_ : cache_misses_).load()) c->inc();
  if (cached.entry && cached.fresh) co_return check(cached.entry);
  bool recently_down = !db_up_.load() && now_ms() - db_failed_at_ms_.load() < kOutageRecheckMs;
  if (cached.entry && recently_down) co_return check(cached.entry);
  if (recently_down) co_return KeyResolution{KeyStatus::Unavailable, nullptr};
  std::shared_ptr<const Tiers> tier_table = tiers();
  gateway::UsageSink* sink = spend_sink();
  auto load = [hash, tier_table, sink](TenantStore& store) {
    return load_key(store, hash, *tier_table, sink);
  };
  Loaded loaded = co_await run(std::move(load));
  if (!loaded) {
    note_db(false);
    log::warn(kComponent, "key lookup failed", {{"error", loaded.error().message}});
    if (cached.entry) co_return check(cached.entry);
    co_return KeyResolution{KeyStatus::Unavailable, nullptr};
  }
  note_db(true);
  if (!*loaded) {
    cache_.invalidate(hash);
    co_return KeyResolution{KeyStatus::Unknown, nullptr};
  }
  auto entry = std::make_shared<const ResolvedKey>(std::move(**loaded));
  cache_.put(hash, entry, KeyCache::Clock::now());
  co_return check(entry);
}

boost::asio::awaitable<bool> Tenancy::check_db() {
  if (!db_up_.load() && now_ms() - db_failed_at_ms_.load() < kOutageRecheckMs) co_return false;
  auto ping = [](TenantStore& store) { return store.ping(); };
  Status st = co_await run(std::move(ping));
  note_db(st.ok());
  co_return st.ok() && spend_log_->target_up();
}

}  // namespace ondol::tenants

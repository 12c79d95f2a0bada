#include "limits/redis_limiter.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cassert>

#include "common/log.h"
#include "common/metrics/registry.h"

namespace ondol::limits {

namespace {

// KEYS[i]: the hash of limit i, fields ws (window start, Unix ms), cur, prev.
// ARGV[3i-2], ARGV[3i-1], ARGV[3i]: window_ms, limit, cost of limit i.
// A key beyond the limits' (#KEYS > #ARGV / 3) is read with GET, for the caller's response
// cache: one call instead of two.
// Returns {admitted (0/1), now_ms, then ws, cur, prev of each limit before the charge, then the
// extra key's value (nil when absent) if one was given}.
// Redis's TIME is the one clock all instances share. Arithmetic in doubles, exact while
// limit * window_ms < 2^53 (docs/limits.md).
constexpr const char* kAcquireLua = R"lua(
if redis.replicate_commands then redis.replicate_commands() end  -- writes after TIME, Redis < 5
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = math.floor(#ARGV / 3)
local state = {}
local fits = 1
for i = 1, n do
  local w = tonumber(ARGV[3 * i - 2])
  local limit = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local h = redis.call('HMGET', KEYS[i], 'ws', 'cur', 'prev')
  local ws = tonumber(h[1])
  local cur = tonumber(h[2]) or 0
  local prev = tonumber(h[3]) or 0
  local start = now - (now % w)
  local moved = true  -- new, or rolled into a later window: every field and the TTL are written
  if ws == nil then
    ws = start
    cur = 0
    prev = 0
  elseif start > ws then
    if start - ws == w then prev = cur else prev = 0 end
    cur = 0
    ws = start
  else
    moved = false
  end
  local e = now - ws
  if e < 0 then e = 0 end
  if prev * (w - e) + (cur + cost) * w > limit * w then fits = 0 end
  state[i] = {ws, cur, prev, w, cost, moved}
end
if fits == 1 then
  for i = 1, n do
    local s = state[i]
    if s[6] then
      redis.call('HSET', KEYS[i], 'ws', string.format('%.0f', s[1]),
                 'cur', string.format('%.0f', s[2] + s[5]), 'prev', string.format('%.0f', s[3]))
      -- Expires at ws + 2w + 1 s, which depends on the window only: set when it moves.
      local ttl = s[1] + 2 * s[4] - now + 1000
      redis.call('PEXPIRE', KEYS[i], string.format('%.0f', ttl))
    else
      redis.call('HINCRBY', KEYS[i], 'cur', ARGV[3 * i])  -- the cost, as the caller wrote it
    end
  end
end
local out = {fits, now}
for i = 1, n do
  local s = state[i]
  out[#out + 1] = s[1]
  out[#out + 1] = s[2]
  out[#out + 1] = s[3]
end
if #KEYS > n then out[#out + 1] = redis.call('GET', KEYS[n + 1]) end
return out
)lua";

// KEYS[i]: a token counter's hash. ARGV[3i-2], ARGV[3i-1], ARGV[3i]: window_ms, the window
// start the estimate was charged in, delta. Mirrors settle() in sliding_window.h.
constexpr const char* kSettleLua = R"lua(
for i = 1, #KEYS do
  local w = tonumber(ARGV[3 * i - 2])
  local charged = tonumber(ARGV[3 * i - 1])
  local ws = tonumber(redis.call('HGET', KEYS[i], 'ws'))
  if ws ~= nil then
    if ws == charged then
      redis.call('HINCRBY', KEYS[i], 'cur', ARGV[3 * i])
    elseif ws == charged + w then
      redis.call('HINCRBY', KEYS[i], 'prev', ARGV[3 * i])
    end
  end
end
return 1
)lua";

// KEYS[i]: the lease set of scope i (members: request ids, scores: expiry, Unix ms).
// ARGV[1]: lease_ms; ARGV[2]: this request's member; ARGV[2 + i]: the limit of scope i.
// Returns {1, 0} when every scope had room (then leased), else {0, i} for the first without.
constexpr const char* kLeaseLua = R"lua(
if redis.replicate_commands then redis.replicate_commands() end  -- writes after TIME, Redis < 5
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[2 + i]) then return {0, i} end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return {1, 0}
)lua";

// KEYS[i] lost the lease ARGV[i]: the releases of one turn, one call.
constexpr const char* kReleaseLua = R"lua(
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[i]) end
return #KEYS
)lua";

const LuaScript& lease_script() {
  static const LuaScript script(kLeaseLua);
  return script;
}

const LuaScript& release_script() {
  static const LuaScript script(kReleaseLua);
  return script;
}

}  // namespace

std::string RedisLimiter::lease_key(const std::string& scope) const {
  return options_.key_prefix + "par|" + scope;
}

boost::asio::awaitable<RedisLimiter::LeaseResult> RedisLimiter::acquire_leases(
    const std::vector<std::string>& scopes, const std::vector<int64_t>& limits, std::string member,
    int64_t lease_ms) {
  LeaseResult out;
  std::vector<std::string> keys;
  std::vector<std::string> args{std::to_string(lease_ms), std::move(member)};
  for (size_t i = 0; i < scopes.size(); ++i) {
    keys.push_back(lease_key(scopes[i]));
    args.push_back(std::to_string(limits[i]));
  }
  Result<RespValue> reply = co_await client_.eval(lease_script(), std::move(keys), std::move(args));
  if (!reply.ok() || reply->type != RespType::Array || reply->elements.size() != 2 ||
      reply->elements[0].type != RespType::Integer ||
      reply->elements[1].type != RespType::Integer) {
    stats_.record_error(reply.ok() ? std::string_view("unexpected reply") : reply.error().message);
    co_return out;
  }
  stats_.record_success();
  out.reached = true;
  out.admitted = reply->elements[0].integer == 1;
  if (!out.admitted)
    out.refused = static_cast<size_t>(std::max<int64_t>(1, reply->elements[1].integer) - 1);
  co_return out;
}

void RedisLimiter::release_leases_soon(const boost::asio::any_io_executor& executor,
                                       const std::vector<std::string>& scopes,
                                       const std::string& member) {
  for (const std::string& scope : scopes) {
    unsent_releases_.push_back(lease_key(scope));
    unsent_releases_.push_back(member);
  }
  if (release_flush_scheduled_ || scopes.empty()) return;
  release_flush_scheduled_ = true;
  boost::asio::co_spawn(executor, flush_releases(), boost::asio::detached);
}

boost::asio::awaitable<void> RedisLimiter::flush_releases() {
  auto executor = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(executor, boost::asio::use_awaitable);
  std::vector<std::string> pairs;
  pairs.swap(unsent_releases_);
  release_flush_scheduled_ = false;
  std::vector<std::string> keys;
  std::vector<std::string> members;
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    keys.push_back(std::move(pairs[i]));
    members.push_back(std::move(pairs[i + 1]));
  }
  // A lost release leaves the lease until it expires: the limit errs on the safe side.
  Result<RespValue> reply =
      co_await client_.eval(release_script(), std::move(keys), std::move(members));
  if (!reply.ok() || reply->is_error())
    stats_.record_error(reply.ok() ? std::string_view(reply->str) : reply.error().message);
}

const LuaScript& RedisLimiter::acquire_script() {
  static const LuaScript script(kAcquireLua);
  return script;
}

const LuaScript& RedisLimiter::settle_script() {
  static const LuaScript script(kSettleLua);
  return script;
}

void RedisLimiterStats::declare_metrics(metrics::Registry& registry) {
  auto& up = registry.gauge("ondol_redis_up",
                            "1 when the last call to Redis for rate limits succeeded, else 0");
  auto& errors = registry.counter("ondol_redis_errors_total",
                                  "Rate-limit calls to Redis that failed or timed out");
  auto& degraded = registry.counter(
      "ondol_rate_limit_degraded_total",
      "Rate-limit decisions made without Redis, by fail mode (open: in process; closed: 503)",
      {"mode"});
  up.with({})->set(reachable() ? 1 : 0);
  up_.store(up.with({}));
  errors_.store(errors.with({}));
  degraded_open_.store(degraded.with({"open"}));
  degraded_closed_.store(degraded.with({"closed"}));
}

void RedisLimiterStats::record_success() {
  if (!reachable_.exchange(true, std::memory_order_relaxed))
    log::info("limits", "redis reachable again: rate limits are counted in redis", {});
  if (auto* g = up_.load()) g->set(1);
}

void RedisLimiterStats::record_error(std::string_view reason) {
  if (reachable_.exchange(false, std::memory_order_relaxed))
    log::warn("limits", "redis unreachable", {{"error", reason}});
  errors_total_.fetch_add(1, std::memory_order_relaxed);
  if (auto* g = up_.load()) g->set(0);
  if (auto* c = errors_.load()) c->inc();
}

void RedisLimiterStats::record_failure(FailMode mode, std::string_view reason) {
  record_error(reason);
  degraded_total_.fetch_add(1, std::memory_order_relaxed);
  auto* d = mode == FailMode::Open ? degraded_open_.load() : degraded_closed_.load();
  if (d) d->inc();
}

RedisLimiter::RedisLimiter(RedisClient& client, LocalLimiter* fallback, RedisLimiterStats& stats,
                           RedisLimiterOptions options)
    : client_(client), fallback_(fallback), stats_(stats), options_(std::move(options)) {
  assert(fallback_ != nullptr || options_.fail_mode == FailMode::Closed);
}

Decision RedisLimiter::unreachable(const std::vector<LimitSpec>& limits, int64_t estimated_tokens,
                                   std::string_view reason) {
  stats_.record_failure(options_.fail_mode, reason);
  Decision d;
  if (options_.fail_mode == FailMode::Open && fallback_ != nullptr) {
    d = fallback_->try_acquire(limits, estimated_tokens);
  } else {
    d.outcome = Outcome::Unavailable;
    d.retry_after_ms = options_.unavailable_retry_after.count();
    for (const LimitSpec& spec : limits)
      d.limits.push_back({.unit = spec.unit,
                          .limit = spec.limit,
                          .remaining = 0,
                          .retry_after_ms = d.retry_after_ms,
                          .fits = false});
  }
  d.degraded = true;
  return d;
}

boost::asio::awaitable<Decision> RedisLimiter::acquire(const std::vector<LimitSpec>& limits,
                                                       int64_t estimated_tokens) {
  std::string no_key;
  AcquireAndGet r = co_await acquire_and_get(limits, estimated_tokens, std::move(no_key));
  co_return std::move(r.decision);
}

boost::asio::awaitable<RedisLimiter::AcquireAndGet> RedisLimiter::acquire_and_get(
    const std::vector<LimitSpec>& limits, int64_t estimated_tokens, std::string get_key) {
  AcquireAndGet out;
  if (limits.empty()) {
    co_return out;
  }
  const bool get = !get_key.empty();
  std::vector<std::string> keys;
  std::vector<std::string> args;
  keys.reserve(limits.size());
  args.reserve(3 * limits.size());
  for (const LimitSpec& spec : limits) {
    std::string scratch;
    keys.push_back(options_.key_prefix);
    keys.back() += counter_of(spec, scratch);
    args.push_back(std::to_string(spec.window_ms));
    args.push_back(std::to_string(spec.limit));
    args.push_back(std::to_string(cost_for(spec, estimated_tokens)));
  }
  if (get) keys.push_back(std::move(get_key));
  Result<RespValue> reply =
      co_await client_.eval(acquire_script(), std::move(keys), std::move(args));
  const size_t expected = 2 + 3 * limits.size() + (get ? 1 : 0);
  if (!reply.ok()) {
    out.decision = unreachable(limits, estimated_tokens, reply.error().message);
    co_return out;
  }
  if (reply->type != RespType::Array || reply->elements.size() != expected) {
    std::string_view why = reply->is_error() ? std::string_view(reply->str) : "unexpected reply";
    out.decision = unreachable(limits, estimated_tokens, why);
    co_return out;
  }
  for (size_t i = 0; i < 2 + 3 * limits.size(); ++i) {
    if (reply->elements[i].type != RespType::Integer) {
      out.decision = unreachable(limits, estimated_tokens, "unexpected reply");
      co_return out;
    }
  }
  if (get) {
    RespValue& v = reply->elements.back();
    out.got = true;
    if (v.type == RespType::BulkString) out.value = std::move(v.str);
  }
  stats_.record_success();
  const auto& el = reply->elements;
  const bool admitted = el[0].integer == 1;
  const int64_t now_ms = el[1].integer;
  std::vector<WindowCounter> rolled(limits.size());
  for (size_t i = 0; i < limits.size(); ++i) {
    rolled[i] = {.window_start_ms = el[2 + 3 * i].integer,
                 .current = el[3 + 3 * i].integer,
                 .previous = el[4 + 3 * i].integer};
  }
  Decision d = evaluate(rolled, limits, estimated_tokens, now_ms);
  // The script's answer is the one that counted; the two agree except for rounding beyond
  // 2^53 (docs/limits.md), where the script wins.
  if (admitted && !d.admitted()) {
    d.outcome = Outcome::Admitted;
    d.retry_after_ms = 0;
    d.too_large = false;
    d.ticket.estimated_tokens = std::max<int64_t>(0, estimated_tokens);
    for (size_t i = 0; i < limits.size(); ++i) {
      if (limits[i].unit == LimitUnit::Tokens)
        d.ticket.tokens.push_back(
            {limits[i].counter.empty() ? counter_key(limits[i]) : limits[i].counter,
             limits[i].window_ms, rolled[i].window_start_ms});
    }
  } else if (!admitted && d.admitted()) {
    d.outcome = Outcome::Denied;
    d.ticket = {};
    d.retry_after_ms = 1;
  }
  if (d.admitted()) d.ticket.source = Ticket::Source::Redis;
  out.decision = std::move(d);
  co_return out;
}

boost::asio::awaitable<void> RedisLimiter::settle(const Ticket& ticket, int64_t actual_tokens) {
  if (ticket.source == Ticket::Source::Local) {
    if (fallback_ != nullptr) fallback_->settle_now(ticket, actual_tokens);
    co_return;
  }
  const int64_t delta = std::max<int64_t>(0, actual_tokens) - ticket.estimated_tokens;
  if (ticket.source != Ticket::Source::Redis || delta == 0 || ticket.tokens.empty()) {
    co_return;
  }
  std::vector<Settlement> entries;
  for (const Ticket::Entry& t : ticket.tokens)
    entries.push_back({options_.key_prefix + t.counter_key, t.window_ms, t.window_start_ms, delta});
  co_await send_settlements(std::move(entries));
}

boost::asio::awaitable<void> RedisLimiter::send_settlements(std::vector<Settlement> entries) {
  std::vector<std::string> keys;
  std::vector<std::string> args;
  keys.reserve(entries.size());
  args.reserve(3 * entries.size());
  for (Settlement& e : entries) {
    keys.push_back(std::move(e.key));
    args.push_back(std::to_string(e.window_ms));
    args.push_back(std::to_string(e.window_start_ms));
    args.push_back(std::to_string(e.delta));
  }
  ++settle_calls_;
  Result<RespValue> reply =
      co_await client_.eval(settle_script(), std::move(keys), std::move(args));
  // A lost settlement leaves the estimate charged: the limit errs on the safe side.
  if (!reply.ok() || reply->is_error()) {
    stats_.record_error(reply.ok() ? std::string_view(reply->str) : reply.error().message);
  } else {
    stats_.record_success();
  }
}

void RedisLimiter::settle_soon(const boost::asio::any_io_executor& executor, const Ticket& ticket,
                               int64_t actual_tokens) {
  if (ticket.source == Ticket::Source::Local) {
    if (fallback_ != nullptr) fallback_->settle_now(ticket, actual_tokens);
    return;
  }
  const int64_t delta = std::max<int64_t>(0, actual_tokens) - ticket.estimated_tokens;
  if (ticket.source != Ticket::Source::Redis || delta == 0 || ticket.tokens.empty()) return;
  for (const Ticket::Entry& t : ticket.tokens) {
    // Coalesced with the latest kCoalesceWindow entries: a linear search, cheaper than a map for
    // the few counters usually in flight, and bounded when there are many.
    constexpr size_t kCoalesceWindow = 64;
    auto same = [&](const Settlement& s) {
      return s.window_start_ms == t.window_start_ms && s.window_ms == t.window_ms &&
             std::string_view(s.key).substr(options_.key_prefix.size()) == t.counter_key;
    };
    auto from =
        unsent_.size() > kCoalesceWindow ? unsent_.end() - kCoalesceWindow : unsent_.begin();
    auto it = std::find_if(from, unsent_.end(), same);
    if (it != unsent_.end()) {
      it->delta += delta;
    } else {
      unsent_.push_back(
          {options_.key_prefix + t.counter_key, t.window_ms, t.window_start_ms, delta});
    }
  }
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  boost::asio::co_spawn(executor, flush_settlements(), boost::asio::detached);
}

boost::asio::awaitable<void> RedisLimiter::flush_settlements() {
  // Runs once the handlers ready now have run: the settlements they queue go in this call.
  auto executor = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(executor, boost::asio::use_awaitable);
  std::vector<Settlement> entries;
  entries.swap(unsent_);
  flush_scheduled_ = false;
  std::erase_if(entries, [](const Settlement& s) { return s.delta == 0; });
  if (entries.empty()) co_return;
  co_await send_settlements(std::move(entries));
}

}  // namespace ondol::limits

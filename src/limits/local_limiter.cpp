#include "limits/local_limiter.h"

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <chrono>

namespace ondol::limits {

int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

LocalLimiter::LocalLimiter(ClockMs now_ms, uint32_t sweep_every_ops)
    : now_ms_(std::move(now_ms)), sweep_every_ops_(std::max<uint32_t>(1, sweep_every_ops)) {}

size_t LocalLimiter::shard_of(std::string_view key) const {
  return std::hash<std::string_view>{}(key) % kNumShards;
}

void LocalLimiter::maybe_sweep(Shard& shard, int64_t now_ms) {
  if (++shard.ops_since_sweep < sweep_every_ops_) return;
  shard.ops_since_sweep = 0;
  std::erase_if(shard.counters, [now_ms](const auto& kv) {
    return kv.second.counter.window_start_ms + 2 * kv.second.window_ms <= now_ms;
  });
}

Decision LocalLimiter::try_acquire(const std::vector<LimitSpec>& limits, int64_t estimated_tokens) {
  // A request has a handful of limits (at most 3 per scope): kept on the stack.
  constexpr size_t kInline = 12;
  boost::container::small_vector<std::string, kInline> scratch(limits.size());
  boost::container::small_vector<std::string_view, kInline> keys;
  boost::container::small_vector<size_t, kInline> shard_ids;
  for (size_t i = 0; i < limits.size(); ++i) {
    keys.push_back(counter_of(limits[i], scratch[i]));
    shard_ids.push_back(shard_of(keys.back()));
  }
  boost::container::small_vector<size_t, kInline> order = shard_ids;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  boost::container::small_vector<std::unique_lock<std::mutex>, kInline> locks;
  for (size_t s : order) locks.emplace_back(shards_[s].mu);

  // The clock is read under the locks, so that charges to one counter are made in time order.
  const int64_t now = now_ms_();
  boost::container::small_vector<Entry*, kInline> entries;
  boost::container::small_vector<WindowCounter, kInline> rolled;
  for (size_t i = 0; i < limits.size(); ++i) {
    Shard& shard = shards_[shard_ids[i]];
    auto it = shard.counters.find(keys[i]);
    if (it == shard.counters.end()) {
      it = shard.counters.emplace(std::string(keys[i]), Entry{}).first;
      it->second.window_ms = limits[i].window_ms;
      it->second.counter.window_start_ms = window_start_for(now, limits[i].window_ms);
    }
    Entry& e = it->second;
    roll(e.counter, now, limits[i].window_ms);
    entries.push_back(&e);
    rolled.push_back(e.counter);
  }
  Decision d = evaluate({rolled.data(), rolled.size()}, limits, estimated_tokens, now);
  if (d.admitted()) {
    for (size_t i = 0; i < limits.size(); ++i)
      entries[i]->counter.current += cost_for(limits[i], estimated_tokens);
    d.ticket.source = Ticket::Source::Local;
  }
  for (size_t s : order) maybe_sweep(shards_[s], now);
  return d;
}

void LocalLimiter::settle_now(const Ticket& ticket, int64_t actual_tokens) {
  const int64_t delta = std::max<int64_t>(0, actual_tokens) - ticket.estimated_tokens;
  if (delta == 0) return;
  const int64_t now = now_ms_();
  for (const Ticket::Entry& t : ticket.tokens) {
    Shard& shard = shards_[shard_of(t.counter_key)];
    std::lock_guard lock(shard.mu);
    auto it = shard.counters.find(t.counter_key);
    if (it == shard.counters.end()) continue;  // swept: its windows no longer count
    roll(it->second.counter, now, t.window_ms);
    ondol::limits::settle(it->second.counter, t.window_start_ms, t.window_ms, delta);
  }
}

boost::asio::awaitable<Decision> LocalLimiter::acquire(const std::vector<LimitSpec>& limits,
                                                       int64_t estimated_tokens) {
  co_return try_acquire(limits, estimated_tokens);
}

boost::asio::awaitable<void> LocalLimiter::settle(const Ticket& ticket, int64_t actual_tokens) {
  settle_now(ticket, actual_tokens);
  co_return;
}

size_t LocalLimiter::num_counters() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.counters.size();
  }
  return n;
}

WindowCounter LocalLimiter::peek(const LimitSpec& spec) const {
  std::string scratch;
  std::string_view key = counter_of(spec, scratch);
  const Shard& shard = shards_[shard_of(key)];
  std::lock_guard lock(shard.mu);
  auto it = shard.counters.find(key);
  if (it == shard.counters.end()) return {};
  WindowCounter c = it->second.counter;
  roll(c, now_ms_(), spec.window_ms);
  return c;
}

}  // namespace ondol::limits

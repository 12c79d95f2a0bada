#include "tenants/key_cache.h"

namespace ondol::tenants {

KeyCache::Lookup KeyCache::find(const std::string& key_hash, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = slots_.find(key_hash);
  if (it == slots_.end()) return {};
  return {it->second.entry, now - it->second.fetched_at < ttl_};
}

void KeyCache::put(const std::string& key_hash, std::shared_ptr<const ResolvedKey> entry,
                   Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (slots_.size() >= max_entries_ && !slots_.contains(key_hash)) {
    // Full: drop the stalest entry of a small sample (bounded work under the lock).
    auto victim = slots_.begin();
    int looked = 0;
    for (auto it = slots_.begin(); it != slots_.end() && looked < 16; ++it, ++looked)
      if (it->second.fetched_at < victim->second.fetched_at) victim = it;
    slots_.erase(victim);
  }
  slots_[key_hash] = Slot{std::move(entry), now};
}

void KeyCache::invalidate(const std::string& key_hash) {
  std::lock_guard lock(mu_);
  slots_.erase(key_hash);
}

void KeyCache::clear() {
  std::lock_guard lock(mu_);
  slots_.clear();
}

void KeyCache::set_ttl(std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  ttl_ = ttl;
}

size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

}  // namespace ondol::tenants

// KeyCache: resolved virtual keys by hash, in process, so that the hot path does not ask the
// database for every request. An entry is fresh for `ttl`; after that the next request for it
// asks the database again, and if the database does not answer the stale entry is used — a
// database outage must not turn valid keys into 401s. Changes made through this instance's admin
// API invalidate their entry at once; changes made on another instance are seen within `ttl`.
// Thread-safe (one mutex; entries are immutable and shared).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "gateway/principal.h"

namespace ondol::tenants {

// What a key resolves to, with what is checked at every use.
struct ResolvedKey {
  std::shared_ptr<const gateway::Principal> principal;
  bool blocked = false;                   // the key or its team
  std::optional<int64_t> expires_at_ms;   // Unix ms
};

class KeyCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit KeyCache(std::chrono::milliseconds ttl, size_t max_entries = 100000)
      : ttl_(ttl), max_entries_(max_entries) {}

  struct Lookup {
    std::shared_ptr<const ResolvedKey> entry;  // null: never seen (or evicted)
    bool fresh = false;
  };
  Lookup find(const std::string& key_hash, Clock::time_point now) const;
  void put(const std::string& key_hash, std::shared_ptr<const ResolvedKey> entry,
           Clock::time_point now);
  void invalidate(const std::string& key_hash);
  void clear();
  void set_ttl(std::chrono::milliseconds ttl);
  size_t size() const;

 private:
  struct Slot {
    std::shared_ptr<const ResolvedKey> entry;
    Clock::time_point fetched_at;
  };
  mutable std::mutex mu_;
  std::chrono::milliseconds ttl_;
  size_t max_entries_;
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace ondol::tenants

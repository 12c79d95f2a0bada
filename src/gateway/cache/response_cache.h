// The exact-match response cache (litellm_settings.cache): answers stored by cache key
// (cache_key.h) with a TTL, in process (an LRU bounded by cache_params.max_size) or in Redis
// (shared by every instance; Redis expires the keys). A stored answer is replayed as it was
// sent: a JSON body, or the whole SSE stream of a streamed request.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ondol::gateway::cache {

struct CachedResponse {
  std::string content_type;        // "application/json" or "text/event-stream"
  std::string body;                // the whole body as the client received it
  int64_t created_ms = 0;          // Unix ms when stored (for s-maxage)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// Redis value: "ondol-cache-v1\n<content_type>\n<created_ms>\n<prompt>\n<completion>\n<body>".
std::string serialize(const CachedResponse& r);
std::optional<CachedResponse> deserialize(std::string_view text);

// In process: least recently used entries go first beyond max_entries; expired entries are
// dropped when met. Thread-safe (one mutex; the work under it is a hash lookup).
class LocalResponseCache {
 public:
  explicit LocalResponseCache(size_t max_entries);

  std::optional<CachedResponse> get(const std::string& key, int64_t now_ms);
  void put(const std::string& key, CachedResponse value, int64_t expires_at_ms);
  size_t size() const;

 private:
  struct Entry {
    uint64_t id = 0;  // id_of(key)
    std::string key;
    CachedResponse value;
    int64_t expires_at_ms = 0;
  };
  // The index is keyed by a 64-bit hash of the key, so that a lookup touches no key bytes; an
  // entry whose key differs (two keys, one hash) is a miss, and a put replaces it.
  static uint64_t id_of(std::string_view key);
  void erase(std::unordered_map<uint64_t, std::list<Entry>::iterator>::iterator it);

  size_t max_entries_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

}  // namespace ondol::gateway::cache

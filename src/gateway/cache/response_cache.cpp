#include "gateway/cache/response_cache.h"

#include <algorithm>
#include <charconv>

namespace ondol::gateway::cache {
namespace {

constexpr std::string_view kMagic = "ondol-cache-v1";

// The next '\n'-terminated field of `text` from `pos`.
std::optional<std::string_view> field(std::string_view text, size_t& pos) {
  size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view f = text.substr(pos, end - pos);
  pos = end + 1;
  return f;
}

bool to_int(std::string_view s, int64_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::string serialize(const CachedResponse& r) {
  std::string out;
  out.reserve(r.body.size() + 64);
  out.append(kMagic).push_back('\n');
  out.append(r.content_type).push_back('\n');
  out.append(std::to_string(r.created_ms)).push_back('\n');
  out.append(std::to_string(r.prompt_tokens)).push_back('\n');
  out.append(std::to_string(r.completion_tokens)).push_back('\n');
  out.append(r.body);
  return out;
}

std::optional<CachedResponse> deserialize(std::string_view text) {
  size_t pos = 0;
  auto magic = field(text, pos);
  if (!magic || *magic != kMagic) return std::nullopt;
  auto type = field(text, pos);
  auto created = field(text, pos);
  auto prompt = field(text, pos);
  auto completion = field(text, pos);
  if (!type || !created || !prompt || !completion) return std::nullopt;
  CachedResponse r;
  r.content_type = std::string(*type);
  if (!to_int(*created, &r.created_ms) || !to_int(*prompt, &r.prompt_tokens) ||
      !to_int(*completion, &r.completion_tokens))
    return std::nullopt;
  r.body = std::string(text.substr(pos));
  return r;
}

LocalResponseCache::LocalResponseCache(size_t max_entries) : max_entries_(max_entries) {
  index_.reserve(std::min<size_t>(max_entries, size_t{1} << 16));  // no rehash while filling
}

uint64_t LocalResponseCache::id_of(std::string_view key) {
  return std::hash<std::string_view>{}(key);
}

void LocalResponseCache::erase(
    std::unordered_map<uint64_t, std::list<Entry>::iterator>::iterator it) {
  lru_.erase(it->second);
  index_.erase(it);
}

std::optional<CachedResponse> LocalResponseCache::get(const std::string& key, int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = index_.find(id_of(key));
  if (it == index_.end() || it->second->key != key) return std::nullopt;
  if (it->second->expires_at_ms <= now_ms) {
    erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

void LocalResponseCache::put(const std::string& key, CachedResponse value,
                             int64_t expires_at_ms) {
  const uint64_t id = id_of(key);
  std::lock_guard lock(mu_);
  if (auto it = index_.find(id); it != index_.end()) erase(it);
  lru_.push_front(
      Entry{.id = id, .key = key, .value = std::move(value), .expires_at_ms = expires_at_ms});
  index_[id] = lru_.begin();
  while (lru_.size() > max_entries_ && !lru_.empty()) {
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

size_t LocalResponseCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace ondol::gateway::cache

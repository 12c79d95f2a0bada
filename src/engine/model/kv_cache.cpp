#include "engine/model/kv_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace ondol::engine {

BlockHash hash_block(BlockHash parent, std::span<const TokenId> tokens) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
}

Result<KvCache> KvCache::create(const KvCacheConfig& config) {
  if (config.num_layers <= 0 || config.num_kv_heads <= 0 || config.head_dim <= 0 ||
      config.num_blocks <= 0 || config.block_size <= 0 || config.block_size > kMaxBlockSize) {
    return make_error(
        fmt::format("invalid KV cache shape: {} layers, {} kv heads, head_dim {}, "
                    "{} blocks of {} tokens",
                    config.num_layers, config.num_kv_heads, config.head_dim, config.num_blocks,
                    config.block_size));
  }
  KvCache cache;
  cache.config_ = config;
  const int64_t values = int64_t{config.block_size} * config.head_dim * cache.bytes_per_value();
  if (config.dtype == KvDtype::kI8) {
    cache.scales_offset_ = (values + 3) / 4 * 4;  // the floats stay aligned
    cache.head_bytes_ = cache.scales_offset_ + int64_t{config.block_size} * sizeof(float);
  } else {
    cache.head_bytes_ = values;
  }
  cache.layer_bytes_ = int64_t{config.num_blocks} * config.num_kv_heads * cache.head_bytes_;
  const size_t total = static_cast<size_t>(cache.layer_bytes_) * config.num_layers;
  cache.keys_.resize(total);
  cache.values_.resize(total);
  const size_t n = static_cast<size_t>(config.num_blocks);
  cache.refs_.assign(n, 0);
  cache.prev_.assign(n + 1, kNoBlock);
  cache.next_.assign(n + 1, kNoBlock);
  cache.hash_.assign(n, 0);
  cache.parent_.assign(n, 0);
  cache.has_hash_.assign(n, 0);
  cache.tokens_.assign(n * static_cast<size_t>(config.block_size), 0);
  const auto s = static_cast<BlockId>(n);
  cache.prev_[n] = cache.next_[n] = s;  // empty queue: the sentinel points at itself
  for (BlockId b = 0; b < s; ++b) cache.push_back(b);
  return cache;
}

// Per token of a full block (rounded down where kI8 pads before the scales).
int64_t KvCache::bytes_per_token() const {
  return bytes_per_block() / config_.block_size;
}

Result<KvDtype> parse_kv_dtype(std::string_view name) {
  if (name == "auto" || name == "float16") return KvDtype::kF16;
  if (name == "float32") return KvDtype::kF32;
  if (name == "int8") return KvDtype::kI8;
  return make_error(
      fmt::format("unknown KV cache dtype '{}' (auto, float16, float32, int8)", name));
}

std::string_view kv_dtype_name(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kF32:
      return "float32";
    case KvDtype::kF16:
      return "float16";
    case KvDtype::kI8:
      return "int8";
  }
  return "float16";
}

void KvCache::unlink(BlockId block) {
  const auto b = static_cast<size_t>(block);
  next_[static_cast<size_t>(prev_[b])] = next_[b];
  prev_[static_cast<size_t>(next_[b])] = prev_[b];
  prev_[b] = next_[b] = kNoBlock;
  --num_free_;
}

void KvCache::push_back(BlockId block) {
  const auto b = static_cast<size_t>(block);
  const size_t s = sentinel();
  const BlockId last = prev_[s];
  next_[static_cast<size_t>(last)] = block;
  prev_[b] = last;
  next_[b] = static_cast<BlockId>(s);
  prev_[s] = block;
  ++num_free_;
}

BlockId KvCache::allocate_block() {
  assert(num_free_ > 0);
  const BlockId b = next_[sentinel()];
  unlink(b);
  const auto i = static_cast<size_t>(b);
  if (has_hash_[i]) {  // evicted: its key no longer finds it
    cached_.erase(hash_[i]);
    has_hash_[i] = 0;
  }
  refs_[i] = 1;
  return b;
}

void KvCache::free_block(BlockId block) {
  assert(block >= 0 && block < config_.num_blocks);
  const auto i = static_cast<size_t>(block);
  assert(refs_[i] > 0);
  if (--refs_[i] == 0) push_back(block);
}

bool KvCache::reserve(BlockTable& table, int64_t num_tokens) {
  const int64_t bs = config_.block_size;
  const int64_t needed = (num_tokens + bs - 1) / bs;
  const int64_t missing = needed - static_cast<int64_t>(table.size());
  if (missing <= 0) return true;
  if (!can_allocate(static_cast<int>(missing))) return false;
  for (int64_t i = 0; i < missing; ++i) table.push_back(allocate_block());
  return true;
}

void KvCache::release(BlockTable& table) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) free_block(*it);
  table.clear();
}

BlockId KvCache::find_cached(BlockHash hash, BlockHash parent,
                             std::span<const TokenId> tokens) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return kNoBlock;
  const auto i = static_cast<size_t>(it->second);
  const size_t bs = static_cast<size_t>(config_.block_size);
  if (parent_[i] != parent || tokens.size() != bs ||
      std::memcmp(tokens.data(), tokens_.data() + i * bs, bs * sizeof(TokenId)) != 0) {
    return kNoBlock;  // a 64-bit collision: not the same prefix
  }
  return it->second;
}

void KvCache::acquire(BlockId block) {
  const auto i = static_cast<size_t>(block);
  if (refs_[i]++ == 0) unlink(block);
}

void KvCache::publish(BlockId block, BlockHash hash, BlockHash parent,
                      std::span<const TokenId> tokens) {
  const auto i = static_cast<size_t>(block);
  assert(refs_[i] > 0);
  assert(tokens.size() == static_cast<size_t>(config_.block_size));
  if (has_hash_[i] || cached_.contains(hash)) return;
  cached_.emplace(hash, block);
  has_hash_[i] = 1;
  hash_[i] = hash;
  parent_[i] = parent;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<std::ptrdiff_t>(i * tokens.size()));
}

Status KvCache::check_invariants(std::span<const BlockTable* const> holders) const {
  const size_t n = static_cast<size_t>(config_.num_blocks);
  std::vector<int32_t> held(n, 0);
  for (const BlockTable* table : holders) {
    if (table == nullptr) continue;
    for (BlockId b : *table) {
      if (b < 0 || static_cast<size_t>(b) >= n) return make_error(fmt::format("table names block {}", b));
      ++held[static_cast<size_t>(b)];
    }
  }
  for (size_t b = 0; b < n; ++b) {
    if (held[b] != refs_[b]) {
      return make_error(fmt::format("block {}: count {} but {} tables hold it", b, refs_[b], held[b]));
    }
  }
  std::vector<uint8_t> queued(n, 0);
  int count = 0;
  for (BlockId b = next_[sentinel()]; b != static_cast<BlockId>(n); b = next_[static_cast<size_t>(b)]) {
    const auto i = static_cast<size_t>(b);
    if (queued[i]) return make_error(fmt::format("block {} is in the free queue twice", b));
    if (refs_[i] != 0) return make_error(fmt::format("block {} is free with count {}", b, refs_[i]));
    queued[i] = 1;
    if (++count > num_free_) return make_error("the free queue is longer than its count");
  }
  if (count != num_free_) return make_error(fmt::format("free queue {} != count {}", count, num_free_));
  for (size_t b = 0; b < n; ++b) {
    if (refs_[b] == 0 && !queued[b]) return make_error(fmt::format("block {} lost: count 0, not free", b));
  }
  for (const auto& [hash, block] : cached_) {
    const auto i = static_cast<size_t>(block);
    if (!has_hash_[i] || hash_[i] != hash) return make_error(fmt::format("key of block {} does not match", block));
  }
  size_t with_key = 0;
  for (size_t b = 0; b < n; ++b) with_key += has_hash_[b];
  if (with_key != cached_.size()) return make_error("a block carries a key the cache does not know");
  return Ok{};
}

std::byte* KvCache::at(const std::vector<std::byte>& pool, int layer, BlockId block,
                       int kv_head) const {
  assert(layer >= 0 && layer < config_.num_layers);
  assert(block >= 0 && block < config_.num_blocks);
  assert(kv_head >= 0 && kv_head < config_.num_kv_heads);
  const int64_t offset =
      layer * layer_bytes_ + (int64_t{block} * config_.num_kv_heads + kv_head) * head_bytes_;
  // The pools are owned (non-const) by this object; const only marks the accessor.
  return const_cast<std::byte*>(pool.data()) + offset;
}

}  // namespace ondol::engine

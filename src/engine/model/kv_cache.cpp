#include "engine/model/kv_cache.h"

#include <fmt/format.h>

#include <cassert>

namespace ondol::engine {

Result<KvCache> KvCache::create(const KvCacheConfig& config) {
  if (config.num_layers <= 0 || config.num_kv_heads <= 0 || config.head_dim <= 0 ||
      config.num_blocks <= 0) {
    return make_error(
        fmt::format("invalid KV cache shape: {} layers, {} kv heads, head_dim {}, "
                    "{} blocks",
                    config.num_layers, config.num_kv_heads, config.head_dim, config.num_blocks));
  }
  KvCache cache;
  cache.config_ = config;
  cache.layer_bytes_ =
      int64_t{config.num_blocks} * kBlockSize * cache.kv_dim() * cache.bytes_per_value();
  const size_t total = static_cast<size_t>(cache.layer_bytes_) * config.num_layers;
  cache.keys_.resize(total);
  cache.values_.resize(total);
  cache.free_.reserve(config.num_blocks);
  for (BlockId b = config.num_blocks - 1; b >= 0; --b) cache.free_.push_back(b);
  return cache;
}

int64_t KvCache::bytes_per_token() const {
  return 2 * int64_t{config_.num_layers} * kv_dim() * bytes_per_value();
}

BlockId KvCache::allocate_block() {
  assert(!free_.empty());
  const BlockId b = free_.back();
  free_.pop_back();
  return b;
}

void KvCache::free_block(BlockId block) {
  assert(block >= 0 && block < config_.num_blocks);
  free_.push_back(block);
}

bool KvCache::reserve(BlockTable& table, int64_t num_tokens) {
  const int64_t needed = (num_tokens + kBlockSize - 1) / kBlockSize;
  const int64_t missing = needed - static_cast<int64_t>(table.size());
  if (missing <= 0) return true;
  if (!can_allocate(static_cast<int>(missing))) return false;
  for (int64_t i = 0; i < missing; ++i) table.push_back(allocate_block());
  return true;
}

void KvCache::release(BlockTable& table) {
  for (BlockId b : table) free_block(b);
  table.clear();
}

std::byte* KvCache::at(const std::vector<std::byte>& pool, int layer, BlockId block,
                       int kv_head) const {
  assert(layer >= 0 && layer < config_.num_layers);
  assert(block >= 0 && block < config_.num_blocks);
  assert(kv_head >= 0 && kv_head < config_.num_kv_heads);
  const int64_t head_bytes = int64_t{kBlockSize} * config_.head_dim * bytes_per_value();
  const int64_t offset =
      layer * layer_bytes_ + (int64_t{block} * config_.num_kv_heads + kv_head) * head_bytes;
  // The pools are owned (non-const) by this object; const only marks the accessor.
  return const_cast<std::byte*>(pool.data()) + offset;
}

}  // namespace ondol::engine

// KvCache: the keys and values of every cached token, paged. Per layer a K pool and a V pool of
// num_blocks blocks of kBlockSize tokens, laid out [block][kv_head][slot][head_dim] (as vLLM
// does, so one head's 16 rows of a block are contiguous for attention), stored as F32 or F16. A
// sequence owns a BlockTable (block ids in position order): position p lives in block table[p /
// kBlockSize] at slot p % kBlockSize. Blocks come from a free list here; the scheduler decides who
// gets them (and, later, shares full blocks between prefixes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace ondol::engine {

inline constexpr int kBlockSize = 16;  // tokens per KV block

enum class KvDtype : uint8_t { kF32, kF16 };

struct KvCacheConfig {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int num_blocks = 0;
  KvDtype dtype = KvDtype::kF16;
};

using BlockId = int32_t;
using BlockTable = std::vector<BlockId>;

class KvCache {
 public:
  // Allocates num_layers * 2 * num_blocks * kBlockSize * kv_dim values up front.
  static Result<KvCache> create(const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  KvDtype dtype() const { return config_.dtype; }
  int kv_dim() const { return config_.num_kv_heads * config_.head_dim; }
  int64_t bytes_per_value() const { return config_.dtype == KvDtype::kF32 ? 4 : 2; }
  // K and V of one token, all layers.
  int64_t bytes_per_token() const;

  int num_blocks() const { return config_.num_blocks; }
  int num_blocks_free() const { return static_cast<int>(free_.size()); }
  int num_blocks_used() const { return num_blocks() - num_blocks_free(); }

  bool can_allocate(int num_blocks) const { return num_blocks <= num_blocks_free(); }
  BlockId allocate_block();  // precondition: can_allocate(1)
  void free_block(BlockId block);

  // Grows `table` to cover num_tokens positions; false (table unchanged) when blocks run out.
  bool reserve(BlockTable& table, int64_t num_tokens);
  // Returns every block of `table` to the free list and clears it.
  void release(BlockTable& table);

  // One head of one block in a layer's K or V pool: (kBlockSize, head_dim) values, F32 or F16
  // per dtype(); the token in slot s starts s * head_dim values in.
  std::byte* key_block(int layer, BlockId block, int kv_head) {
    return at(keys_, layer, block, kv_head);
  }
  std::byte* value_block(int layer, BlockId block, int kv_head) {
    return at(values_, layer, block, kv_head);
  }
  const std::byte* key_block(int layer, BlockId block, int kv_head) const {
    return at(keys_, layer, block, kv_head);
  }
  const std::byte* value_block(int layer, BlockId block, int kv_head) const {
    return at(values_, layer, block, kv_head);
  }

 private:
  KvCache() = default;
  std::byte* at(const std::vector<std::byte>& pool, int layer, BlockId block, int kv_head) const;

  KvCacheConfig config_;
  int64_t layer_bytes_ = 0;        // one layer's pool: num_blocks * kBlockSize * kv_dim values
  std::vector<std::byte> keys_;    // (num_layers, num_blocks, num_kv_heads, kBlockSize, head_dim)
  std::vector<std::byte> values_;  // (num_layers, num_blocks, num_kv_heads, kBlockSize, head_dim)
  std::vector<BlockId> free_;      // a stack: the most recently freed block is reused first
};

// What forward() sees of the cache: the pools and one block table per sequence slot that the
// batch names. The tables must already cover every position in the batch.
struct KvView {
  KvCache* cache = nullptr;
  std::span<const BlockTable* const> tables;  // indexed by BatchToken::seq_slot
};

}  // namespace ondol::engine

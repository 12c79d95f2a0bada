// KvCache: the keys and values of every cached token, paged. Per layer a K pool and a V pool of
// num_blocks blocks of block_size tokens, laid out [block][kv_head][slot][head_dim] (as vLLM
// does, so one head's rows of a block are contiguous for attention), stored as F32 or F16. A
// sequence owns a BlockTable (block ids in position order): position p lives in block table[p /
// block_size] at slot p % block_size.
//
// Blocks are reference counted, so full blocks can be shared between sequences with a common
// prefix (automatic prefix caching, docs/engine-serving.md). Blocks with count 0 wait in one
// free queue, least recently freed first; a published (cached) block keeps its key while it
// waits there and is evicted only when allocation reaches it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

inline constexpr int kDefaultBlockSize = 16;  // tokens per KV block
inline constexpr int kMaxBlockSize = 256;

// How K and V values are stored. kI8: each row (head_dim values of one token and head) as int8
// with one float scale (kernels::KernelTable::quantize_row_i8), half the bytes of F16: opt-in,
// for memory-bound decode and more sequences per byte of cache.
enum class KvDtype : uint8_t { kF32, kF16, kI8 };

// The --kv-cache-dtype names: "auto" (F16, the default), "float16", "float32", "int8".
Result<KvDtype> parse_kv_dtype(std::string_view name);
std::string_view kv_dtype_name(KvDtype dtype);  // "float16", "float32", "int8"

struct KvCacheConfig {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int num_blocks = 0;
  KvDtype dtype = KvDtype::kF16;
  int block_size = kDefaultBlockSize;
};

using BlockId = int32_t;
using BlockTable = std::vector<BlockId>;
using BlockHash = uint64_t;

inline constexpr BlockId kNoBlock = -1;
// The parent hash of a sequence's first block.
inline constexpr BlockHash kRootBlockHash = 0x6f6e646f6c6b7663ULL;

// The prefix-cache key of a full block: xxHash3-64 of its token ids, seeded with the parent's
// key, so that it names the whole prefix up to the block's end.
BlockHash hash_block(BlockHash parent, std::span<const TokenId> tokens);

class KvCache {
 public:
  // Allocates num_layers * 2 * num_blocks * block_size * kv_dim values up front.
  static Result<KvCache> create(const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  KvDtype dtype() const { return config_.dtype; }
  int block_size() const { return config_.block_size; }
  int kv_dim() const { return config_.num_kv_heads * config_.head_dim; }
  int64_t bytes_per_value() const {
    return config_.dtype == KvDtype::kF32 ? 4 : config_.dtype == KvDtype::kF16 ? 2 : 1;
  }
  // One head of one block: block_size rows of head_dim values, then (kI8) block_size float
  // scales, one per row.
  int64_t head_bytes() const { return head_bytes_; }
  // K and V of one token, all layers.
  int64_t bytes_per_token() const;
  // K and V of one block, all layers.
  int64_t bytes_per_block() const {
    return 2 * int64_t{config_.num_layers} * config_.num_kv_heads * head_bytes_;
  }

  int num_blocks() const { return config_.num_blocks; }
  // Blocks no sequence holds, cached ones included (they are evicted on demand).
  int num_blocks_free() const { return num_free_; }
  int num_blocks_used() const { return num_blocks() - num_blocks_free(); }
  // Blocks carrying a prefix-cache key, held or free.
  int num_blocks_cached() const { return static_cast<int>(cached_.size()); }

  bool can_allocate(int num_blocks) const { return num_blocks <= num_blocks_free(); }
  // Takes the free queue's head (evicting its key, if cached); count 1. Precondition:
  // can_allocate(1).
  BlockId allocate_block();
  // Count down; at 0 the block joins the free queue's tail (keeping its key).
  void free_block(BlockId block);

  // Grows `table` to cover num_tokens positions; false (table unchanged) when blocks run out.
  bool reserve(BlockTable& table, int64_t num_tokens);
  // Frees every block of `table`, last first (so a sequence's tail is evicted before its
  // shareable head), and clears it.
  void release(BlockTable& table);

  // Prefix cache. The cached block for `hash` whose parent key and tokens match, or kNoBlock.
  // Does not change any count.
  BlockId find_cached(BlockHash hash, BlockHash parent, std::span<const TokenId> tokens) const;
  // One more holder of `block` (which may be free and cached: it leaves the free queue).
  void acquire(BlockId block);
  // Marks a full, computed, held block as the cached copy of `hash`. A no-op when the block
  // already has a key or another block holds `hash` (the first one published stays).
  void publish(BlockId block, BlockHash hash, BlockHash parent, std::span<const TokenId> tokens);
  int ref_count(BlockId block) const { return refs_[static_cast<size_t>(block)]; }

  // Checks the bookkeeping against the block tables of every holder: counts equal the number
  // of tables naming a block, the free queue holds exactly the blocks with count 0, each key
  // maps to a block carrying it. Returns the first violation.
  Status check_invariants(std::span<const BlockTable* const> holders) const;

  // One head of one block in a layer's K or V pool: (block_size, head_dim) values, F32, F16 or
  // int8 per dtype(); the token in slot s starts s * head_dim values in. For kI8 the rows'
  // scales follow the values (row_scales).
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
  // The block_size float scales of a kI8 head block (key_block or value_block).
  float* row_scales(std::byte* head_block) const {
    return reinterpret_cast<float*>(head_block + scales_offset_);
  }
  const float* row_scales(const std::byte* head_block) const {
    return reinterpret_cast<const float*>(head_block + scales_offset_);
  }

 private:
  KvCache() = default;
  std::byte* at(const std::vector<std::byte>& pool, int layer, BlockId block, int kv_head) const;
  void unlink(BlockId block);       // out of the free queue
  void push_back(BlockId block);    // onto the free queue's tail
  size_t sentinel() const { return static_cast<size_t>(config_.num_blocks); }

  KvCacheConfig config_;
  int64_t head_bytes_ = 0;         // head_bytes()
  int64_t scales_offset_ = 0;      // kI8: of the scales in a head block (a multiple of 4)
  int64_t layer_bytes_ = 0;        // one layer's pool: num_blocks * num_kv_heads * head_bytes
  std::vector<std::byte> keys_;    // (num_layers, num_blocks, num_kv_heads, block_size, head_dim)
  std::vector<std::byte> values_;  // (num_layers, num_blocks, num_kv_heads, block_size, head_dim)

  std::vector<int32_t> refs_;      // per block: holders
  // The free queue, a doubly linked list through prev_/next_ with a sentinel at num_blocks.
  std::vector<BlockId> prev_, next_;
  int num_free_ = 0;

  // Prefix cache: key → block, and per block its key (0 when none), parent key and tokens.
  std::unordered_map<BlockHash, BlockId> cached_;
  std::vector<BlockHash> hash_, parent_;
  std::vector<uint8_t> has_hash_;
  std::vector<TokenId> tokens_;    // (num_blocks, block_size)
};

// What forward() sees of the cache: the pools and one block table per sequence slot that the
// batch names. The tables must already cover every position in the batch.
struct KvView {
  KvCache* cache = nullptr;
  std::span<const BlockTable* const> tables;  // indexed by BatchToken::seq_slot
};

}  // namespace ondol::engine

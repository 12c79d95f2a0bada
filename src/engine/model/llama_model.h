// LlamaModel: a loaded Llama-family model (llama, qwen2) and its batched forward pass.
//
// Loading maps the GGUF, reads the config, points the weight views into the mapping (no copy)
// and sizes every scratch buffer for ModelOptions::max_batch_tokens, so forward() allocates
// nothing. One forward() computes any mix of prefill chunks and decode steps from different
// sequences: each matmul runs once with M = number of tokens in the batch.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/repacked_weights.h"
#include "engine/kernels/rope.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/batch.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"

namespace ondol::engine {

struct ModelOptions {
  int num_threads = 1;         // compute threads, the caller of forward() included
  int max_batch_tokens = 512;  // most tokens one forward() may carry
  int max_context = 0;         // longest sequence attention must cover; 0: context_length
  int block_size = kDefaultBlockSize;  // tokens per KV block of the caches forward() reads
  // Kernel level; null: kernels::active_kernels() (tests pass kernels_for(Isa::kScalar)).
  const kernels::KernelTable* kernels = nullptr;
};

class LlamaModel {
 public:
  // Takes the file: the weights are views into its mapping.
  static Result<std::unique_ptr<LlamaModel>> load(GgufFile file, const ModelOptions& options);
  static Result<std::unique_ptr<LlamaModel>> open(const std::string& path,
                                                  const ModelOptions& options);

  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const GgufFile& file() const { return file_; }
  const ModelConfig& config() const { return config_; }
  // The matrices the forward pass multiplies with: Q8_0 ones may be repacked copies
  // (layout kQ8_0x16); token_embd is always the GGUF tensor.
  const ModelWeights& weights() const { return weights_; }
  const ModelOptions& options() const { return options_; }
  int vocab_size() const { return config_.vocab_size; }
  int max_context() const { return options_.max_context; }

  // A KvCacheConfig for this model's layer count and head shape.
  KvCacheConfig kv_cache_config(int num_blocks, KvDtype dtype) const;

  // logits: (batch.num_logits(), vocab_size) floats, one row per token that wants logits, in
  // batch order. Writes the batch's K/V into kv before attending. An Error (nothing computed)
  // for a batch that does not fit the options, a token id outside the vocabulary, a position
  // beyond max_context or not covered by its sequence's block table.
  Status forward(const Batch& batch, const KvView& kv, float* logits);
  // The same pass, but for each token that wants output it writes the final hidden state
  // (after the output norm) instead of logits: hidden is (batch.num_logits(), dim) floats.
  // Embeddings pool these.
  Status forward_hidden(const Batch& batch, const KvView& kv, float* hidden);

 private:
  LlamaModel(GgufFile file, const ModelConfig& config, ModelWeights weights,
             const ModelOptions& options);

  void repack_weights();
  Status check(const Batch& batch, const KvView& kv) const;
  void embed(const Batch& batch);
  void rope_angles(const Batch& batch);
  int64_t rope_pairs() const { return rope_.params().rotary_dim / 2; }
  void attention_block(int layer, const Batch& batch, const KvView& kv);
  enum class Residual { kNone, kAddBlockOutput };
  void rmsnorm_rows(const float* weight, int64_t n, Residual residual);
  void store_kv(int layer, const BatchToken& tok, const float* k, const float* v, const KvView& kv);
  // A run of at least this many tokens attends with matmuls (prefill), shorter ones with one
  // dot and one axpy per position (decode), unless its tokens name their role (TokenRole).
  static constexpr int64_t kMinTokensForMatmulAttention = 4;
  static constexpr int64_t kAttentionTileTokens = 32;  // query rows per scores matmul
  struct AttentionScratch {
    float* keys;    // (max_blocks * block_size, head_dim) F32 keys
    float* values;  // (max_blocks * block_size, head_dim) F32 values, or their transpose
    float* block;   // (block_size, head_dim) one converted F16 block
    float* scores;  // (score rows, max_blocks * block_size), score rows as sized at load
  };
  struct HeadRange {
    int begin;  // first KV head
    int end;    // one past the last
  };
  // The K and V rows of one attention item, fetched into L2 a few cache lines at a time while
  // the item before it computes (attend()).
  class ItemPrefetch {
   public:
    ItemPrefetch() = default;  // nothing to fetch
    ItemPrefetch(const KvCache& cache, int layer, const BlockTable& table, HeadRange heads,
                 int64_t num_positions);
    int64_t lines_left() const { return lines_left_; }
    void issue(int64_t lines);  // the next `lines` lines of K and of V
    void finish() { issue(lines_left_); }

   private:
    int64_t stretch_bytes(int64_t block) const;
    const KvCache* cache_ = nullptr;
    const BlockTable* table_ = nullptr;
    int layer_ = 0;
    HeadRange heads_{};
    int64_t num_positions_ = 0;
    int64_t block_ = 0;   // cursor: block
    int64_t offset_ = 0;  // and byte offset in its stretch
    int64_t lines_left_ = 0;
  };
  void attend(int layer, const Batch& batch, const KvView& kv);
  HeadRange item_heads(int64_t item) const;
  AttentionScratch attention_scratch(int64_t slice);
  ItemPrefetch item_prefetch(int layer, const Batch& batch, const KvView& kv, int64_t item) const;
  void attend_run_rows(int layer, const Batch& batch, const KvView& kv, int64_t run,
                       HeadRange heads, const AttentionScratch& a, ItemPrefetch& next);
  void attend_run_matmul(int layer, const Batch& batch, const KvView& kv, int64_t run, int kv_head,
                         const AttentionScratch& a);
  int64_t find_runs(const Batch& batch);
  bool attends_by_matmul(const Batch& batch, int64_t run) const;
  void ffn_block(int layer, int64_t n);
  void output(const Batch& batch, float* logits);
  void run_layers(const Batch& batch, const KvView& kv);
  // Final norm of the tokens that want output, rows packed into `out` (m, dim); returns m.
  int64_t final_norm(const Batch& batch, float* out);
  void matmul(const kernels::WeightMatrix& w, const float* x, int64_t n, float* y);
  static constexpr size_t kMaxSharedInput = 3;  // Q, K, V
  void matmul_shared_input(std::span<const kernels::WeightMatrix* const> ws,
                           std::span<float* const> ys, const float* x, int64_t n);

  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
  ModelOptions options_;
  const kernels::KernelTable& kernels_;
  kernels::Rope rope_;
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::vector<kernels::RepackedWeights> repacked_;  // what weights_ points to for repacked matrices

  // Activations for T = max_batch_tokens rows, allocated once at load.
  std::vector<float> x_;    // (T, dim) residual stream
  std::vector<float> xb_;   // (T, dim) normed input of a block; also a block's output
  std::vector<float> q_;    // (T, num_heads * head_dim)
  std::vector<float> k_;    // (T, num_kv_heads * head_dim)
  std::vector<float> v_;    // (T, num_kv_heads * head_dim)
  std::vector<float> att_;  // (T, num_heads * head_dim) attention output
  std::vector<float> hb_;   // (T, ffn_dim) gate, then silu(gate) * up
  std::vector<float> hb2_;  // (T, ffn_dim) up
  // Attention: one slice per thread, each holding an AttentionScratch (slice_floats floats).
  std::vector<int64_t> run_begin_;  // (T + 1) first token of each run of one sequence
  // (T, rotary_dim / 2) each: the rotary angles of each token's position, computed once per
  // forward pass for all layers.
  std::vector<float> rope_cos_, rope_sin_;
  int64_t num_slices_ = 0;
  int64_t slice_floats_ = 0;
  std::vector<float> att_scratch_;        // (num_slices, slice_floats)
  int64_t max_blocks_ = 0;                // blocks covering max_context
  int heads_per_item_ = 0;                // KV heads of one attention work item
  int64_t head_ranges_ = 0;               // attention work items per run
  // Matmul activation conversions (Q8 blocks, BF16), 64-byte aligned.
  std::unique_ptr<std::byte[]> matmul_scratch_storage_;
  std::byte* matmul_scratch_ = nullptr;
};

}  // namespace ondol::engine

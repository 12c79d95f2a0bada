#include "engine/model/llama_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "engine/kernels/quantize.h"

namespace ondol::engine {

namespace {

constexpr int64_t kMaxBatchTokensLimit = 1 << 16;

int64_t max_matmul_scratch_bytes(const ModelWeights& w, int64_t m) {
  int64_t bytes = kernels::matmul_scratch_bytes(w.output.type, m, w.output.num_cols);
  for (const LayerWeights& l : w.layers) {
    for (const kernels::WeightMatrix* mat :
         {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      bytes = std::max(bytes, kernels::matmul_scratch_bytes(mat->type, m, mat->num_cols));
    }
  }
  return bytes;
}

}  // namespace

Result<std::unique_ptr<LlamaModel>> LlamaModel::open(const std::string& path,
                                                     const ModelOptions& options) {
  auto file = GgufFile::open(path);
  if (!file) return file.error();
  return load(std::move(*file), options);
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(GgufFile file, const ModelOptions& options) {
  auto config = read_model_config(file);
  if (!config) return config.error();
  auto weights = load_model_weights(file, *config);
  if (!weights) return weights.error();
  ModelOptions o = options;
  if (o.num_threads < 1) return make_error("num_threads must be at least 1");
  if (o.max_batch_tokens < 1 || o.max_batch_tokens > kMaxBatchTokensLimit) {
    return make_error(fmt::format("max_batch_tokens must be in [1, {}]", kMaxBatchTokensLimit));
  }
  if (o.block_size < 1 || o.block_size > kMaxBlockSize) {
    return make_error(fmt::format("block_size must be in [1, {}]", kMaxBlockSize));
  }
  if (o.max_context <= 0) o.max_context = config->context_length;
  if (o.kernels == nullptr) o.kernels = &kernels::active_kernels();
  return std::unique_ptr<LlamaModel>(
      new LlamaModel(std::move(file), *config, std::move(*weights), o));
}

LlamaModel::LlamaModel(GgufFile file, const ModelConfig& config, ModelWeights weights,
                       const ModelOptions& options)
    : file_(std::move(file)),
      config_(config),
      weights_(std::move(weights)),
      options_(options),
      kernels_(*options.kernels),
      rope_(config.rope),
      pool_(std::make_unique<kernels::ThreadPool>(options.num_threads)) {
  repack_weights();
  const ModelConfig& c = config_;
  const size_t t = static_cast<size_t>(options_.max_batch_tokens);
  x_.resize(t * c.dim);
  xb_.resize(t * c.dim);
  q_.resize(t * c.q_dim());
  k_.resize(t * c.kv_dim());
  v_.resize(t * c.kv_dim());
  att_.resize(t * c.q_dim());
  hb_.resize(t * c.ffn_dim);
  hb2_.resize(t * c.ffn_dim);
  run_begin_.resize(t + 1);
  rope_cos_.resize(t * rope_pairs());
  rope_sin_.resize(t * rope_pairs());
  const int64_t bs = options_.block_size;
  max_blocks_ = (int64_t{options_.max_context} + bs - 1) / bs;
  num_slices_ = options_.num_threads;
  // A run's KV heads split over the threads: one range per thread (all heads with one thread).
  heads_per_item_ = (c.num_kv_heads + options_.num_threads - 1) / options_.num_threads;
  head_ranges_ = (c.num_kv_heads + heads_per_item_ - 1) / heads_per_item_;
  // Scores rows: a prefill tile, or each (token, query head) of a decode run and head range.
  const int64_t score_rows = std::max<int64_t>(
      kAttentionTileTokens, (kMinTokensForMatmulAttention - 1) * int64_t{heads_per_item_} *
                                (c.num_heads / c.num_kv_heads));
  slice_floats_ = (2 * max_blocks_ * bs + bs) * c.head_dim + score_rows * max_blocks_ * bs;
  att_scratch_.resize(static_cast<size_t>(num_slices_ * slice_floats_));
  const int64_t scratch = max_matmul_scratch_bytes(weights_, options_.max_batch_tokens);
  matmul_scratch_storage_ = std::make_unique<std::byte[]>(scratch + kernels::kMatmulScratchAlign);
  const auto base = reinterpret_cast<uintptr_t>(matmul_scratch_storage_.get());
  const uintptr_t align = kernels::kMatmulScratchAlign;
  matmul_scratch_ = matmul_scratch_storage_.get() + ((align - base % align) % align);
}

// Q8_0 matmul weights are copied into the layout of the table's fastest kernel where it has one
// (kQ8_0x16 on AVX-512 VNNI: about 3x the row layout's throughput for M >= 4). token_embd keeps
// the GGUF rows for the embedding lookup, also when the output matrix is tied to it: only the
// output's view is replaced.
void LlamaModel::repack_weights() {
  std::vector<kernels::WeightMatrix*> matrices = {&weights_.output};
  for (LayerWeights& l : weights_.layers) {
    matrices.insert(matrices.end(), {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down});
  }
  for (kernels::WeightMatrix* m : matrices) {
    if (!kernels::RepackedWeights::can_repack(kernels_, *m)) continue;
    repacked_.emplace_back(*m, pool_.get());
    *m = repacked_.back().matrix();  // the buffer stays put when repacked_ grows
  }
}

KvCacheConfig LlamaModel::kv_cache_config(int num_blocks, KvDtype dtype) const {
  return KvCacheConfig{.num_layers = config_.num_layers,
                       .num_kv_heads = config_.num_kv_heads,
                       .head_dim = config_.head_dim,
                       .num_blocks = num_blocks,
                       .dtype = dtype,
                       .block_size = options_.block_size};
}

Status LlamaModel::check(const Batch& batch, const KvView& kv) const {
  const int64_t n = batch.num_tokens();
  if (n < 1 || n > options_.max_batch_tokens) {
    return make_error(
        fmt::format("batch of {} tokens (allowed 1..{})", n, options_.max_batch_tokens));
  }
  if (kv.cache == nullptr) return make_error("no KV cache");
  const KvCacheConfig& kc = kv.cache->config();
  if (kc.num_layers != config_.num_layers || kc.num_kv_heads != config_.num_kv_heads ||
      kc.head_dim != config_.head_dim || kc.block_size != options_.block_size) {
    return make_error("KV cache shape does not match the model");
  }
  for (const BatchToken& t : batch.tokens) {
    if (t.token < 0 || t.token >= config_.vocab_size) {
      return make_error(fmt::format("token id {} outside the vocabulary", t.token));
    }
    if (t.position < 0 || t.position >= options_.max_context) {
      return make_error(
          fmt::format("position {} outside [0, {})", t.position, options_.max_context));
    }
    if (t.seq_slot < 0 || static_cast<size_t>(t.seq_slot) >= kv.tables.size() ||
        kv.tables[t.seq_slot] == nullptr) {
      return make_error(fmt::format("sequence slot {} has no block table", t.seq_slot));
    }
    const BlockTable& table = *kv.tables[t.seq_slot];
    if (static_cast<int64_t>(table.size()) * kc.block_size <= t.position) {
      return make_error(
          fmt::format("block table of slot {} does not cover position {}", t.seq_slot, t.position));
    }
    // Attention reads blocks 0..position/block_size: every one must lie in the pool.
    for (int64_t b = 0; b <= t.position / kc.block_size; ++b) {
      if (table[b] < 0 || table[b] >= kv.cache->num_blocks()) {
        return make_error(fmt::format("block table of slot {} names block {} of {}", t.seq_slot,
                                      table[b], kv.cache->num_blocks()));
      }
    }
  }
  return Ok{};
}

Status LlamaModel::forward(const Batch& batch, const KvView& kv, float* logits) {
  if (Status s = check(batch, kv); !s) return s;
  run_layers(batch, kv);
  output(batch, logits);
  return Ok{};
}

Status LlamaModel::forward_hidden(const Batch& batch, const KvView& kv, float* hidden) {
  if (Status s = check(batch, kv); !s) return s;
  run_layers(batch, kv);
  final_norm(batch, hidden);
  return Ok{};
}

void LlamaModel::run_layers(const Batch& batch, const KvView& kv) {
  const int64_t n = batch.num_tokens();
  embed(batch);
  rope_angles(batch);
  for (int l = 0; l < config_.num_layers; ++l) {
    attention_block(l, batch, kv);
    ffn_block(l, n);
  }
  // The last block's output (xb) is added to x by final_norm, for the rows it reads.
}

void LlamaModel::matmul(const kernels::WeightMatrix& w, const float* x, int64_t n, float* y) {
  const kernels::WeightMatrix* ws[] = {&w};
  float* ys[] = {y};
  matmul_shared_input(ws, ys, x, n);
}

// y_i = x · W_iᵀ for weights that read the same input (Q/K/V, gate/up): x is converted once for
// the kernels and all output rows are split over the pool in one parallel_for, so a layer has
// 4 synchronisation points instead of 7. Weights of different types or widths fall back to one
// call each.
void LlamaModel::matmul_shared_input(std::span<const kernels::WeightMatrix* const> ws,
                                     std::span<float* const> ys, const float* x, int64_t n) {
  const kernels::WeightType type = ws[0]->type;
  const int64_t k = ws[0]->num_cols;
  for (size_t i = 1; i < ws.size(); ++i) {
    if (ws[i]->type != type || ws[i]->num_cols != k) {
      for (size_t j = 0; j < ws.size(); ++j) {
        matmul_shared_input(ws.subspan(j, 1), ys.subspan(j, 1), x, n);
      }
      return;
    }
  }
  // Rows are split in units of whole register tiles and cache lines of y.
  constexpr int64_t kRowsPerUnit = 16;
  const kernels::MatmulKernel& kernel = kernels::matmul_kernel(kernels_, type);
  kernels::PreparedActivations px;
  if (n == 1 || kernel.activation == kernels::ActivationType::kF32) {
    px = kernels::prepare_activations(kernels_, type, x, n, k, k, matmul_scratch_);
  } else {
    const int64_t row = kernels::activation_row_bytes(kernel.activation, k);
    pool_->parallel_for(n, [&](int64_t begin, int64_t end) {
      kernels::prepare_activations(kernels_, type, x + begin * k, end - begin, k, k,
                                   matmul_scratch_ + begin * row);
    });
    px = {kernel.activation, reinterpret_cast<const uint8_t*>(matmul_scratch_), row, n, k};
  }
  assert(ws.size() <= kMaxSharedInput && ws.size() == ys.size());
  int64_t unit_end[kMaxSharedInput];  // cumulative units of weights 0..i
  int64_t units = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    units += (ws[i]->num_rows + kRowsPerUnit - 1) / kRowsPerUnit;
    unit_end[i] = units;
  }
  pool_->parallel_for(units, [&](int64_t begin, int64_t end) {
    size_t i = 0;
    int64_t first = 0;  // first unit of weight i
    while (begin < end) {
      while (begin >= unit_end[i]) first = unit_end[i++];
      const int64_t stop = std::min(end, unit_end[i]);
      const kernels::WeightMatrix& w = *ws[i];
      kernels::matmul_rows(kernels_, w, px, ys[i], w.num_rows, (begin - first) * kRowsPerUnit,
                           std::min((stop - first) * kRowsPerUnit, w.num_rows));
      begin = stop;
    }
  });
}

// x[t] = token_embd[token t], dequantized from whatever type the table is stored in.
void LlamaModel::embed(const Batch& batch) {
  const kernels::WeightMatrix& e = weights_.token_embd;
  const int64_t row = kernels::row_bytes(e.type, e.num_cols);
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    const auto* src = static_cast<const std::byte*>(e.data) + batch.tokens[t].token * row;
    kernels::dequantize_row(e.type, src, x_.data() + t * config_.dim, config_.dim);
  }
}

// cos and sin of each token's rotary angles: libm's sin and cos in double, worth computing once
// per pass rather than once per layer (a 512-token prompt chunk: 12 x 16,384 of each).
void LlamaModel::rope_angles(const Batch& batch) {
  const int64_t pairs = rope_pairs();
  pool_->parallel_for(batch.num_tokens(), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      rope_.angles(batch.tokens[t].position, rope_cos_.data() + t * pairs,
                   rope_sin_.data() + t * pairs);
    }
  });
}

void LlamaModel::attention_block(int layer, const Batch& batch, const KvView& kv) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[layer];
  const int64_t n = batch.num_tokens();
  // The previous layer's FFN output is added here, in the same pass over the rows as the norm.
  rmsnorm_rows(w.attn_norm, n, layer == 0 ? Residual::kNone : Residual::kAddBlockOutput);
  // q (n, q_dim), k (n, kv_dim), v (n, kv_dim)
  const kernels::WeightMatrix* qkv[] = {&w.wq, &w.wk, &w.wv};
  float* qkv_out[] = {q_.data(), k_.data(), v_.data()};
  matmul_shared_input(qkv, qkv_out, xb_.data(), n);
  // Per token: biases, rotation to its position, K/V into its sequence's block.
  pool_->parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* q = q_.data() + t * c.q_dim();
      float* k = k_.data() + t * c.kv_dim();
      float* v = v_.data() + t * c.kv_dim();
      if (w.bq != nullptr) {
        kernels_.add(q, q, w.bq, c.q_dim());
        kernels_.add(k, k, w.bk, c.kv_dim());
        kernels_.add(v, v, w.bv, c.kv_dim());
      }
      const float* cos = rope_cos_.data() + t * rope_pairs();
      const float* sin = rope_sin_.data() + t * rope_pairs();
      rope_.rotate(q, c.num_heads, cos, sin);
      rope_.rotate(k, c.num_kv_heads, cos, sin);
      store_kv(layer, batch.tokens[t], k, v, kv);
    }
  });
  attend(layer, batch, kv);
  matmul(w.wo, att_.data(), n, xb_.data());  // (n, dim), added to x by ffn_block's norm
}

// xb[t] = rmsnorm(x[t]) * weight for the first n rows, after x[t] += xb[t] (the residual
// connection of the block before) with Residual::kAddBlockOutput: one pass over the pool for
// both, instead of the add running on the calling thread alone between two passes.
void LlamaModel::rmsnorm_rows(const float* weight, int64_t n, Residual residual) {
  const int dim = config_.dim;
  pool_->parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* x = x_.data() + t * dim;
      float* xb = xb_.data() + t * dim;
      if (residual == Residual::kAddBlockOutput) kernels_.add(x, x, xb, dim);
      kernels_.rmsnorm(xb, x, weight, dim, config_.rms_eps);
    }
  });
}

// A token's key and value (kv_dim each) go into its sequence's block before anyone attends, so
// a token sees the tokens before it in the same batch as if an earlier step had cached them.
void LlamaModel::store_kv(int layer, const BatchToken& tok, const float* k, const float* v,
                          const KvView& kv) {
  const int hd = config_.head_dim;
  KvCache& cache = *kv.cache;
  const int bs = cache.block_size();
  const BlockId block = (*kv.tables[tok.seq_slot])[tok.position / bs];
  const int slot = tok.position % bs;
  const int64_t slot_offset = int64_t{slot} * hd * cache.bytes_per_value();
  for (int h = 0; h < config_.num_kv_heads; ++h) {
    std::byte* kb = cache.key_block(layer, block, h);
    std::byte* vb = cache.value_block(layer, block, h);
    const float* kh = k + int64_t{h} * hd;
    const float* vh = v + int64_t{h} * hd;
    switch (cache.dtype()) {
      case KvDtype::kF32:
        std::memcpy(kb + slot_offset, kh, hd * sizeof(float));
        std::memcpy(vb + slot_offset, vh, hd * sizeof(float));
        break;
      case KvDtype::kF16:
        kernels_.fp32_to_fp16_row(kh, reinterpret_cast<uint16_t*>(kb + slot_offset), hd);
        kernels_.fp32_to_fp16_row(vh, reinterpret_cast<uint16_t*>(vb + slot_offset), hd);
        break;
      case KvDtype::kI8:
        kernels_.quantize_row_i8(kh, reinterpret_cast<int8_t*>(kb + slot_offset),
                                 cache.row_scales(kb) + slot, hd);
        kernels_.quantize_row_i8(vh, reinterpret_cast<int8_t*>(vb + slot_offset),
                                 cache.row_scales(vb) + slot, hd);
        break;
    }
  }
}

// Splits the batch into runs: maximal stretches of consecutive tokens of one sequence and role
// (a prompt chunk, or one decode token); a generated token is always a run of its own.
int64_t LlamaModel::find_runs(const Batch& batch) {
  int64_t num_runs = 0;
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    const BatchToken& tok = batch.tokens[t];
    if (t == 0 || tok.role == TokenRole::kGenerated || tok.role != batch.tokens[t - 1].role ||
        tok.seq_slot != batch.tokens[t - 1].seq_slot ||
        tok.position != batch.tokens[t - 1].position + 1) {
      run_begin_[num_runs++] = t;
    }
  }
  run_begin_[num_runs] = batch.num_tokens();
  return num_runs;
}

bool LlamaModel::attends_by_matmul(const Batch& batch, int64_t run) const {
  switch (batch.tokens[run_begin_[run]].role) {
    case TokenRole::kPrompt:
      return true;
    case TokenRole::kGenerated:
      return false;
    case TokenRole::kUnspecified:
      break;
  }
  return run_begin_[run + 1] - run_begin_[run] >= kMinTokensForMatmulAttention;
}

// Blocks of a sequence lie anywhere in the pool: start loading the next one while this one is
// used (the hardware prefetcher only follows the stream inside a block).
inline void prefetch_rows(const std::byte* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

// att[t, head h] = sum over p <= position(t) of softmax_p(q·k_p / sqrt(head_dim)) v_p, with K/V
// of the token's own sequence read through its block table. Work items are (run, range of
// heads_per_item_ KV heads) pairs: a block's heads lie next to each other in the cache, so an
// item reads one stretch of heads_per_item * 2 KiB per block (F16, block size 16, head_dim 64)
// that the hardware prefetcher follows, where one head alone is a 2 KiB island in the pool.
// Slice s (one per thread, with its own buffers) takes items s, s + num_slices, ...: the ranges of
// one run go to different threads. Each (token, head) is computed the same whatever the items.
// Decode attention waits on memory (every K/V row is read once per step), so while a thread
// computes one item it fetches the next one's rows into L2, spread over the item's blocks: the
// memory keeps working while the thread computes.
void LlamaModel::attend(int layer, const Batch& batch, const KvView& kv) {
  const int64_t num_runs = find_runs(batch);
  const int64_t num_items = num_runs * head_ranges_;
  const int64_t num_slices = std::min(num_slices_, num_items);
  pool_->parallel_for(num_slices, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      AttentionScratch scratch = attention_scratch(s);
      for (int64_t item = s; item < num_items; item += num_slices) {
        ItemPrefetch next;
        if (item + num_slices < num_items)
          next = item_prefetch(layer, batch, kv, item + num_slices);
        const HeadRange heads = item_heads(item);
        const int64_t run = item / head_ranges_;
        if (attends_by_matmul(batch, run)) {
          next.finish();
          for (int h = heads.begin; h < heads.end; ++h)
            attend_run_matmul(layer, batch, kv, run, h, scratch);
        } else {
          attend_run_rows(layer, batch, kv, run, heads, scratch, next);
        }
      }
    }
  });
}

LlamaModel::HeadRange LlamaModel::item_heads(int64_t item) const {
  const int begin = static_cast<int>(item % head_ranges_) * heads_per_item_;
  return {begin, std::min(begin + heads_per_item_, config_.num_kv_heads)};
}

LlamaModel::ItemPrefetch LlamaModel::item_prefetch(int layer, const Batch& batch, const KvView& kv,
                                                   int64_t item) const {
  const int64_t run = item / head_ranges_;
  return ItemPrefetch(*kv.cache, layer, *kv.tables[batch.tokens[run_begin_[run]].seq_slot],
                      item_heads(item),
                      int64_t{batch.tokens[run_begin_[run + 1] - 1].position} + 1);
}

LlamaModel::ItemPrefetch::ItemPrefetch(const KvCache& cache, int layer, const BlockTable& table,
                                       HeadRange heads, int64_t num_positions)
    : cache_(&cache), table_(&table), layer_(layer), heads_(heads), num_positions_(num_positions) {
  const int64_t bs = cache.block_size();
  for (int64_t b = 0; b * bs < num_positions; ++b) lines_left_ += (stretch_bytes(b) + 63) / 64;
}

// One stretch per block: the range's heads but the last whole (unused slots included), the last
// up to the run's last position (whole with kI8: its scales come after all its rows).
int64_t LlamaModel::ItemPrefetch::stretch_bytes(int64_t block) const {
  const int64_t bs = cache_->block_size();
  const int64_t row_bytes = int64_t{cache_->config().head_dim} * cache_->bytes_per_value();
  const int64_t last = cache_->dtype() == KvDtype::kI8
                           ? cache_->head_bytes()
                           : std::min(bs, num_positions_ - block * bs) * row_bytes;
  return (heads_.end - heads_.begin - 1) * cache_->head_bytes() + last;
}

void LlamaModel::ItemPrefetch::issue(int64_t lines) {
  lines = std::min(lines, lines_left_);
  lines_left_ -= lines;
  while (lines > 0) {
    const int64_t bytes = stretch_bytes(block_);
    const std::byte* kb = cache_->key_block(layer_, (*table_)[block_], heads_.begin);
    const std::byte* vb = cache_->value_block(layer_, (*table_)[block_], heads_.begin);
    for (; offset_ < bytes && lines > 0; offset_ += 64, --lines) {
      __builtin_prefetch(kb + offset_, 0, 2);
      __builtin_prefetch(vb + offset_, 0, 2);
    }
    if (offset_ >= bytes) {
      ++block_;
      offset_ = 0;
    }
  }
}

LlamaModel::AttentionScratch LlamaModel::attention_scratch(int64_t slice) {
  const int64_t rows = max_blocks_ * options_.block_size;
  const int64_t hd = config_.head_dim;
  AttentionScratch a;
  a.keys = att_scratch_.data() + slice * slice_floats_;
  a.values = a.keys + rows * hd;
  a.block = a.values + rows * hd;
  a.scores = a.block + options_.block_size * hd;
  return a;
}

// Decode (a run of a few tokens), for the KV heads of `heads`: per token and query head, one dot
// per position for the scores and one axpy per position for the weighted values, reading the
// cache's blocks in place (F16 rows are widened in registers: converting whole blocks first cost
// more than the attention itself once many sequences decode together). Block by block, all heads
// of the range in turn, so the reads run through each block's stretch of heads in order. Scores
// of (token i, query head j of the range, position p) sit at scores[(i * heads + j) * P + p].
void LlamaModel::attend_run_rows(int layer, const Batch& batch, const KvView& kv, int64_t run,
                                 HeadRange heads, const AttentionScratch& a, ItemPrefetch& next) {
  const ModelConfig& c = config_;
  const int hd = c.head_dim;
  const int group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KvCache& cache = *kv.cache;
  const KvDtype dtype = cache.dtype();
  const int64_t t_begin = run_begin_[run], t_end = run_begin_[run + 1];
  const BlockTable& table = *kv.tables[batch.tokens[t_begin].seq_slot];
  const int64_t num_positions = int64_t{batch.tokens[t_end - 1].position} + 1;  // P
  const int64_t bs = cache.block_size();
  const int64_t num_blocks = (num_positions + bs - 1) / bs;
  const int q_heads = (heads.end - heads.begin) * group;  // query heads of the range
  const int64_t row_bytes = hd * cache.bytes_per_value();
  const int64_t range_bytes = (heads.end - heads.begin) * cache.head_bytes();  // a block's heads
  auto q_row = [&](int64_t t, int h) { return q_.data() + t * c.q_dim() + int64_t{h} * hd; };
  auto out_row = [&](int64_t t, int h) { return att_.data() + t * c.q_dim() + int64_t{h} * hd; };
  auto scores_row = [&](int64_t t, int h) {
    return a.scores + ((t - t_begin) * q_heads + (h - heads.begin * group)) * num_positions;
  };
  // The next item's lines, an equal share after each (block, head) of both passes.
  const int64_t ticks = 2 * num_blocks * (heads.end - heads.begin);
  const int64_t lines_per_tick = (next.lines_left() + ticks - 1) / ticks;
  // Scores: block by block; token t sees positions 0..position(t).
  for (int64_t b = 0; b < num_blocks; ++b) {
    if (b + 1 < num_blocks)
      prefetch_rows(cache.key_block(layer, table[b + 1], heads.begin), range_bytes);
    for (int kv_head = heads.begin; kv_head < heads.end; ++kv_head) {
      next.issue(lines_per_tick);
      const std::byte* kb = cache.key_block(layer, table[b], kv_head);
      for (int64_t t = t_begin; t < t_end; ++t) {
        const int64_t rows = std::min(bs, int64_t{batch.tokens[t].position} + 1 - b * bs);
        if (rows <= 0) continue;
        for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
          float* scores = scores_row(t, h) + b * bs;
          if (dtype == KvDtype::kF16) {
            kernels_.dot_rows_f16(q_row(t, h), reinterpret_cast<const uint16_t*>(kb), rows, hd,
                                  scale, scores);
          } else if (dtype == KvDtype::kI8) {
            kernels_.dot_rows_i8(q_row(t, h), reinterpret_cast<const int8_t*>(kb),
                                 cache.row_scales(kb), rows, hd, scale, scores);
          } else {
            for (int64_t r = 0; r < rows; ++r) {
              scores[r] = kernels_.dot(q_row(t, h),
                                       reinterpret_cast<const float*>(kb + r * row_bytes), hd) *
                          scale;
            }
          }
        }
      }
    }
  }
  for (int64_t t = t_begin; t < t_end; ++t) {
    for (int h = heads.begin * group; h < heads.end * group; ++h) {
      kernels_.softmax(scores_row(t, h), int64_t{batch.tokens[t].position} + 1);
      std::fill(out_row(t, h), out_row(t, h) + hd, 0.0f);
    }
  }
  // Weighted values: the same walk over V.
  for (int64_t b = 0; b < num_blocks; ++b) {
    if (b + 1 < num_blocks)
      prefetch_rows(cache.value_block(layer, table[b + 1], heads.begin), range_bytes);
    for (int kv_head = heads.begin; kv_head < heads.end; ++kv_head) {
      next.issue(lines_per_tick);
      const std::byte* vb = cache.value_block(layer, table[b], kv_head);
      for (int64_t t = t_begin; t < t_end; ++t) {
        const int64_t rows = std::min(bs, int64_t{batch.tokens[t].position} + 1 - b * bs);
        if (rows <= 0) continue;
        for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
          const float* weights = scores_row(t, h) + b * bs;
          if (dtype == KvDtype::kF16) {
            kernels_.axpy_rows_f16(out_row(t, h), weights, reinterpret_cast<const uint16_t*>(vb),
                                   rows, hd);
          } else if (dtype == KvDtype::kI8) {
            kernels_.axpy_rows_i8(out_row(t, h), weights, reinterpret_cast<const int8_t*>(vb),
                                  cache.row_scales(vb), rows, hd);
          } else {
            for (int64_t r = 0; r < rows; ++r) {
              kernels_.axpy(out_row(t, h), weights[r],
                            reinterpret_cast<const float*>(vb + r * row_bytes), hd);
            }
          }
        }
      }
    }
  }
}

// Prompt tokens (a run of them): the run's keys are gathered transposed and its values as F32
// rows, once per item; then for each query head and tile of tokens,
//   scores (tile, P) = Q (tile, head_dim) · Kᵀ (head_dim, P)     matmul_nn
//   scores = causal softmax(scores / sqrt(head_dim))             row i keeps positions 0..pos(i)
//   out (tile, head_dim) = scores (tile, P) · V (P, head_dim)    matmul_nn
// matmul_nn vectorises along the output row (positions, then head_dim) with no horizontal sums,
// and each element is one fma chain in order: a token's result does not depend on the tile, on
// the chunk its run came in, or on how long the run is (later positions add exact zeros).
void LlamaModel::attend_run_matmul(int layer, const Batch& batch, const KvView& kv, int64_t run,
                                   int kv_head, const AttentionScratch& a) {
  const ModelConfig& c = config_;
  const int hd = c.head_dim;
  const int group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KvCache& cache = *kv.cache;
  const int64_t t_begin = run_begin_[run], t_end = run_begin_[run + 1];
  const BlockTable& table = *kv.tables[batch.tokens[t_begin].seq_slot];
  const int64_t num_positions = int64_t{batch.tokens[t_end - 1].position} + 1;  // P
  const int64_t bs = cache.block_size();
  const int64_t num_blocks = (num_positions + bs - 1) / bs;

  float* keys_t = a.keys;    // (head_dim, P)
  float* values = a.values;  // (P, head_dim)
  for (int64_t b = 0; b < num_blocks; ++b) {
    const int64_t rows = std::min<int64_t>(bs, num_positions - b * bs);
    const std::byte* kb = cache.key_block(layer, table[b], kv_head);
    const std::byte* vb = cache.value_block(layer, table[b], kv_head);
    float* v_rows = values + b * bs * hd;
    const float* k_rows = a.block;  // (rows, head_dim)
    switch (cache.dtype()) {
      case KvDtype::kF16:
        kernels_.fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(kb), a.block, rows * hd);
        kernels_.fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(vb), v_rows, rows * hd);
        break;
      case KvDtype::kI8:
        kernels_.dequantize_rows_i8(reinterpret_cast<const int8_t*>(kb), cache.row_scales(kb), rows,
                                    hd, a.block);
        kernels_.dequantize_rows_i8(reinterpret_cast<const int8_t*>(vb), cache.row_scales(vb), rows,
                                    hd, v_rows);
        break;
      case KvDtype::kF32:
      default:
        k_rows = reinterpret_cast<const float*>(kb);
        std::memcpy(v_rows, vb, rows * hd * sizeof(float));
        break;
    }
    for (int64_t r = 0; r < rows; ++r) {
      for (int d = 0; d < hd; ++d) keys_t[d * num_positions + b * bs + r] = k_rows[r * hd + d];
    }
  }
  for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
    for (int64_t t0 = t_begin; t0 < t_end; t0 += kAttentionTileTokens) {
      const int64_t m = std::min<int64_t>(kAttentionTileTokens, t_end - t0);
      const int64_t tile_positions = int64_t{batch.tokens[t0 + m - 1].position} + 1;
      float* scores = a.scores;  // (m, P)
      kernels_.matmul_nn(q_.data() + t0 * c.q_dim() + int64_t{h} * hd, c.q_dim(), keys_t,
                         num_positions, scores, num_positions, m, tile_positions, hd);
      for (int64_t i = 0; i < m; ++i) {
        float* row = scores + i * num_positions;
        const int64_t n = int64_t{batch.tokens[t0 + i].position} + 1;
        for (int64_t p = 0; p < n; ++p) row[p] *= scale;
        kernels_.softmax(row, n);
        std::fill(row + n, row + num_positions, 0.0f);  // masked and never computed
      }
      kernels_.matmul_nn(scores, num_positions, values, hd,
                         att_.data() + t0 * c.q_dim() + int64_t{h} * hd, c.q_dim(), m, hd,
                         num_positions);
    }
  }
}

// x += W_down(silu(W_gate xb) * W_up xb), xb = rmsnorm(x) * ffn_norm.
void LlamaModel::ffn_block(int layer, int64_t n) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[layer];
  rmsnorm_rows(w.ffn_norm, n, Residual::kAddBlockOutput);  // x += attention output
  // gate (n, ffn_dim), up (n, ffn_dim)
  const kernels::WeightMatrix* gate_up[] = {&w.w_gate, &w.w_up};
  float* gate_up_out[] = {hb_.data(), hb2_.data()};
  matmul_shared_input(gate_up, gate_up_out, xb_.data(), n);
  pool_->parallel_for(n, [&](int64_t begin, int64_t end) {
    const int64_t f = c.ffn_dim;
    kernels_.silu_mul(hb_.data() + begin * f, hb_.data() + begin * f, hb2_.data() + begin * f,
                      (end - begin) * f);
  });
  matmul(w.w_down, hb_.data(), n, xb_.data());  // (n, dim), added to x by the next norm
}

// Only the rows that want logits get the last FFN output added and are normed (into `out`,
// packed) and multiplied by the output matrix: for a prefill of P tokens that is 1 row of the
// vocab-sized matmul, not P. `out` may be xb_: row m <= t is written after row t was read.
int64_t LlamaModel::final_norm(const Batch& batch, float* out) {
  const ModelConfig& c = config_;
  int64_t m = 0;
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    if (!batch.tokens[t].wants_logits) continue;
    float* x = x_.data() + t * c.dim;
    kernels_.add(x, x, xb_.data() + t * c.dim, c.dim);
    kernels_.rmsnorm(out + m * c.dim, x_.data() + t * c.dim, weights_.output_norm, c.dim,
                     c.rms_eps);
    ++m;
  }
  return m;
}

void LlamaModel::output(const Batch& batch, float* logits) {
  int64_t m = final_norm(batch, xb_.data());
  if (m > 0) matmul(weights_.output, xb_.data(), m, logits);  // (m, vocab)
}

}  // namespace ondol::engine

#include "engine/model/llama_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/quantize.h"

namespace ondol::engine {

namespace {

constexpr int64_t kMaxBatchTokensLimit = 1 << 16;

int64_t max_matmul_scratch_bytes(const ModelWeights& w, int64_t m) {
  int64_t bytes = kernels::matmul_scratch_bytes(w.output.type, m, w.output.num_cols);
  for (const LayerWeights& l : w.layers) {
    for (const kernels::WeightMatrix* mat : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up,
                                             &l.w_down}) {
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
  num_slices_ = int64_t{options_.num_threads} * kernels::ThreadPool::kChunksPerThread;
  slice_floats_ = options_.max_context + 2 * int64_t{c.head_dim};
  att_scratch_.resize(static_cast<size_t>(num_slices_ * slice_floats_));
  const int64_t scratch = max_matmul_scratch_bytes(weights_, options_.max_batch_tokens);
  matmul_scratch_storage_ = std::make_unique<std::byte[]>(scratch + kernels::kMatmulScratchAlign);
  const auto base = reinterpret_cast<uintptr_t>(matmul_scratch_storage_.get());
  const uintptr_t align = kernels::kMatmulScratchAlign;
  matmul_scratch_ = matmul_scratch_storage_.get() + ((align - base % align) % align);
}

KvCacheConfig LlamaModel::kv_cache_config(int num_blocks, KvDtype dtype) const {
  return KvCacheConfig{.num_layers = config_.num_layers,
                       .num_kv_heads = config_.num_kv_heads,
                       .head_dim = config_.head_dim,
                       .num_blocks = num_blocks,
                       .dtype = dtype};
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
      kc.head_dim != config_.head_dim) {
    return make_error("KV cache shape does not match the model");
  }
  for (const BatchToken& t : batch.tokens) {
    if (t.token < 0 || t.token >= config_.vocab_size) {
      return make_error(fmt::format("token id {} outside the vocabulary", t.token));
    }
    if (t.position < 0 || t.position >= options_.max_context) {
      return make_error(fmt::format("position {} outside [0, {})", t.position,
                                    options_.max_context));
    }
    if (t.seq_slot < 0 || static_cast<size_t>(t.seq_slot) >= kv.tables.size() ||
        kv.tables[t.seq_slot] == nullptr) {
      return make_error(fmt::format("sequence slot {} has no block table", t.seq_slot));
    }
    const BlockTable& table = *kv.tables[t.seq_slot];
    if (static_cast<int64_t>(table.size()) * kBlockSize <= t.position) {
      return make_error(fmt::format("block table of slot {} does not cover position {}",
                                    t.seq_slot, t.position));
    }
  }
  return Ok{};
}

Status LlamaModel::forward(const Batch& batch, const KvView& kv, float* logits) {
  if (Status s = check(batch, kv); !s) return s;
  const int64_t n = batch.num_tokens();
  embed(batch);
  for (int l = 0; l < config_.num_layers; ++l) {
    attention_block(l, batch, kv);
    ffn_block(l, n);
  }
  output(batch, logits);
  return Ok{};
}

void LlamaModel::matmul(const kernels::WeightMatrix& w, const float* x, int64_t n, float* y) {
  kernels::matmul(kernels_,
                  kernels::MatmulArgs{.w = w,
                                      .x = x,
                                      .num_tokens = n,
                                      .x_stride = w.num_cols,
                                      .y = y,
                                      .y_stride = w.num_rows,
                                      .scratch = matmul_scratch_},
                  pool_.get());
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

void LlamaModel::attention_block(int layer, const Batch& batch, const KvView& kv) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[layer];
  const int64_t n = batch.num_tokens();
  for (int64_t t = 0; t < n; ++t) {
    kernels_.rmsnorm(xb_.data() + t * c.dim, x_.data() + t * c.dim, w.attn_norm, c.dim,
                     c.rms_eps);
  }
  matmul(w.wq, xb_.data(), n, q_.data());  // q (n, q_dim)
  matmul(w.wk, xb_.data(), n, k_.data());  // k (n, kv_dim)
  matmul(w.wv, xb_.data(), n, v_.data());  // v (n, kv_dim)
  for (int64_t t = 0; t < n; ++t) {
    float* q = q_.data() + t * c.q_dim();
    float* k = k_.data() + t * c.kv_dim();
    if (w.bq != nullptr) {
      kernels_.add(q, q, w.bq, c.q_dim());
      kernels_.add(k, k, w.bk, c.kv_dim());
      kernels_.add(v_.data() + t * c.kv_dim(), v_.data() + t * c.kv_dim(), w.bv, c.kv_dim());
    }
    rope_.apply(q, c.num_heads, k, c.num_kv_heads, batch.tokens[t].position);
  }
  store_kv(layer, batch, kv);
  attend(layer, batch, kv);
  matmul(w.wo, att_.data(), n, xb_.data());  // (n, dim)
  kernels_.add(x_.data(), x_.data(), xb_.data(), n * c.dim);
}

// The batch's keys and values go into their sequences' blocks before anyone attends, so a token
// sees the tokens before it in the same batch as if they had been cached by an earlier step.
void LlamaModel::store_kv(int layer, const Batch& batch, const KvView& kv) {
  const int kv_dim = config_.kv_dim();
  KvCache& cache = *kv.cache;
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    const BatchToken& tok = batch.tokens[t];
    const BlockId block = (*kv.tables[tok.seq_slot])[tok.position / kBlockSize];
    const int slot = tok.position % kBlockSize;
    const float* k = k_.data() + t * kv_dim;
    const float* v = v_.data() + t * kv_dim;
    std::byte* kd = cache.key(layer, block, slot);
    std::byte* vd = cache.value(layer, block, slot);
    if (cache.dtype() == KvDtype::kF32) {
      std::memcpy(kd, k, kv_dim * sizeof(float));
      std::memcpy(vd, v, kv_dim * sizeof(float));
    } else {
      kernels_.fp32_to_fp16_row(k, reinterpret_cast<uint16_t*>(kd), kv_dim);
      kernels_.fp32_to_fp16_row(v, reinterpret_cast<uint16_t*>(vd), kv_dim);
    }
  }
}

// att[t, head h] = sum over p <= position(t) of softmax_p(q·k_p / sqrt(head_dim)) v_p, with K/V
// of the token's own sequence read through its block table. Work items are (token, head) pairs,
// split into num_slices_ contiguous ranges; each slice owns a scores row in att_scratch_.
void LlamaModel::attend(int layer, const Batch& batch, const KvView& kv) {
  const ModelConfig& c = config_;
  const int hd = c.head_dim;
  const int group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KvCache& cache = *kv.cache;
  const bool f16 = cache.dtype() == KvDtype::kF16;
  const int64_t num_items = batch.num_tokens() * c.num_heads;
  const int64_t num_slices = std::min(num_slices_, num_items);

  auto run_slice = [&](int64_t slice) {
    float* scores = att_scratch_.data() + slice * slice_floats_;  // (position + 1)
    float* k_row = scores + options_.max_context;                 // (head_dim) F16 -> F32
    float* v_row = k_row + hd;                                    // (head_dim)
    const int64_t begin = num_items * slice / num_slices;
    const int64_t end = num_items * (slice + 1) / num_slices;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / c.num_heads;
      const int h = static_cast<int>(item % c.num_heads);
      const int kv_head = h / group;
      const BatchToken& tok = batch.tokens[t];
      const BlockTable& table = *kv.tables[tok.seq_slot];
      const float* q = q_.data() + t * c.q_dim() + int64_t{h} * hd;
      const int64_t num_positions = int64_t{tok.position} + 1;
      for (int64_t p = 0; p < num_positions; ++p) {
        const std::byte* kp = cache.key(layer, table[p / kBlockSize], p % kBlockSize);
        const float* k;
        if (f16) {
          kernels_.fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(kp) + kv_head * hd, k_row,
                                    hd);
          k = k_row;
        } else {
          k = reinterpret_cast<const float*>(kp) + kv_head * hd;
        }
        scores[p] = kernels_.dot(q, k, hd) * scale;
      }
      kernels_.softmax(scores, num_positions);
      float* out = att_.data() + t * c.q_dim() + int64_t{h} * hd;
      std::fill(out, out + hd, 0.0f);
      for (int64_t p = 0; p < num_positions; ++p) {
        const std::byte* vp = cache.value(layer, table[p / kBlockSize], p % kBlockSize);
        const float* v;
        if (f16) {
          kernels_.fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(vp) + kv_head * hd, v_row,
                                    hd);
          v = v_row;
        } else {
          v = reinterpret_cast<const float*>(vp) + kv_head * hd;
        }
        kernels_.axpy(out, scores[p], v, hd);
      }
    }
  };
  pool_->parallel_for(num_slices, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) run_slice(s);
  });
}

// x += W_down(silu(W_gate xb) * W_up xb), xb = rmsnorm(x) * ffn_norm.
void LlamaModel::ffn_block(int layer, int64_t n) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[layer];
  for (int64_t t = 0; t < n; ++t) {
    kernels_.rmsnorm(xb_.data() + t * c.dim, x_.data() + t * c.dim, w.ffn_norm, c.dim, c.rms_eps);
  }
  matmul(w.w_gate, xb_.data(), n, hb_.data());  // (n, ffn_dim)
  matmul(w.w_up, xb_.data(), n, hb2_.data());   // (n, ffn_dim)
  kernels_.silu_mul(hb_.data(), hb_.data(), hb2_.data(), n * c.ffn_dim);
  matmul(w.w_down, hb_.data(), n, xb_.data());  // (n, dim)
  kernels_.add(x_.data(), x_.data(), xb_.data(), n * c.dim);
}

// Only the rows that want logits are normed (into xb_, packed) and multiplied by the output
// matrix: for a prefill of P tokens that is 1 row of the vocab-sized matmul, not P.
void LlamaModel::output(const Batch& batch, float* logits) {
  const ModelConfig& c = config_;
  int64_t m = 0;
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    if (!batch.tokens[t].wants_logits) continue;
    kernels_.rmsnorm(xb_.data() + m * c.dim, x_.data() + t * c.dim, weights_.output_norm, c.dim,
                     c.rms_eps);
    ++m;
  }
  if (m > 0) matmul(weights_.output, xb_.data(), m, logits);  // (m, vocab)
}

}  // namespace ondol::engine

// ModelWeights: views of a Llama-family model's tensors inside the mapped GGUF (nothing is
// copied), checked against the ModelConfig at load. A WeightMatrix of shape (out, in) is what
// the kernels multiply with; vectors (norms, biases) must be F32.
#pragma once

#include <vector>

#include "common/result.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/matmul.h"
#include "engine/model/model_config.h"

namespace ondol::engine {

struct LayerWeights {
  const float* attn_norm = nullptr;  // (dim)
  kernels::WeightMatrix wq;          // (num_heads * head_dim, dim)
  kernels::WeightMatrix wk;          // (num_kv_heads * head_dim, dim)
  kernels::WeightMatrix wv;          // (num_kv_heads * head_dim, dim)
  const float* bq = nullptr;         // (num_heads * head_dim); qwen2 only, else null
  const float* bk = nullptr;         // (num_kv_heads * head_dim); qwen2 only
  const float* bv = nullptr;         // (num_kv_heads * head_dim); qwen2 only
  kernels::WeightMatrix wo;          // (dim, num_heads * head_dim)
  const float* ffn_norm = nullptr;   // (dim)
  kernels::WeightMatrix w_gate;      // (ffn_dim, dim)
  kernels::WeightMatrix w_up;        // (ffn_dim, dim)
  kernels::WeightMatrix w_down;      // (dim, ffn_dim)
};

struct ModelWeights {
  kernels::WeightMatrix
      token_embd;  // (vocab, dim): rows are looked up (and used as output when tied)
  std::vector<LayerWeights> layers;    // (num_layers)
  const float* output_norm = nullptr;  // (dim)
  kernels::WeightMatrix output;        // (vocab, dim): output.weight, or token_embd when tied
  bool tied_output = false;
};

// Errors name the tensor: missing, wrong shape ("expected [768, 2048], found [768, 1024]"),
// unsupported type, or a row length the type's kernel cannot take.
Result<ModelWeights> load_model_weights(const GgufFile& file, const ModelConfig& config);

}  // namespace ondol::engine

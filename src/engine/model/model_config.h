// ModelConfig: the architecture and hyper-parameters of a Llama-family model, read once from a
// GGUF's metadata and validated, so the loader and forward() work with plain native fields.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/rope.h"

namespace ondol::engine {

enum class Architecture : uint8_t {
  kLlama,  // Llama 2/3, TinyLlama, Mistral: normal RoPE pairing, no attention biases
  kQwen2,  // Q/K/V biases, NeoX RoPE pairing
};

std::string_view architecture_name(Architecture arch);  // as in general.architecture

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  int num_layers = 0;
  int dim = 0;             // embedding_length
  int ffn_dim = 0;         // feed_forward_length
  int num_heads = 0;       // query heads
  int num_kv_heads = 0;    // key/value heads (grouped-query attention when < num_heads)
  int head_dim = 0;        // dim / num_heads
  int vocab_size = 0;      // rows of token_embd.weight
  int context_length = 0;  // positions the model was trained for
  float rms_eps = 1e-5f;
  kernels::RopeParams rope;

  int q_dim() const { return num_heads * head_dim; }
  int kv_dim() const { return num_kv_heads * head_dim; }
};

// Reads `{arch}.*` keys; vocab_size is taken from token_embd.weight. An unknown architecture, a
// missing required key or inconsistent values (heads not dividing dim, ...) give an Error.
Result<ModelConfig> read_model_config(const GgufFile& file);

}  // namespace ondol::engine

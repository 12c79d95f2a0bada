// Dummy models: a GGUF of a named Llama shape with random weights, as vLLM's
// `--load-format dummy` does, for benchmarks and tests. The vocabulary is generated (specials,
// the 256 byte tokens, then letter pieces with and without "▁") so the SentencePiece tokenizer
// loads and can spell any text. Weights are drawn from normal(0, 0.02) per tensor from
// (seed, tensor name), so the same seed gives the same values in every WeightType: an F32 file
// and its Q8_0 twin differ only by quantization. Norm weights are 1.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "engine/kernels/weight_type.h"
#include "engine/model/model_config.h"

namespace ondol::engine {

struct DummyShape {
  std::string_view name;
  Architecture arch = Architecture::kLlama;
  int dim = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int ffn_dim = 0;
  int vocab_size = 0;
  int context_length = 0;
  bool tied_embeddings = false;  // no output.weight: the output projection is token_embd
};

inline constexpr float kDummyWeightStddev = 0.02f;

// llama-110m (dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000, tied, context 2048),
// tiny (dim 256, 2 layers, 4 heads / 2 KV heads, FFN 512, vocab 1024, untied, context 256),
// tiny-qwen2 (tiny with Q/K/V biases and NeoX RoPE).
std::span<const DummyShape> dummy_shapes();
std::optional<DummyShape> find_dummy_shape(std::string_view name);

// Every matrix (token_embd included) in `type`; norms and biases F32. An unknown shape name, a
// row length `type` cannot hold (Q4_K needs multiples of 256) or an I/O failure give an Error.
Status write_dummy_model(std::string_view shape_name, kernels::WeightType type,
                         const std::string& path, uint64_t seed = 0);
Status write_dummy_model(const DummyShape& shape, kernels::WeightType type, const std::string& path,
                         uint64_t seed = 0);

}  // namespace ondol::engine

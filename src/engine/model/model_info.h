// ModelInfo: what `ondol model info` prints about a GGUF: architecture and dimensions, parameter
// count, tensor bytes per type, tokenizer, chat template, and the memory a deployment needs
// (weights plus KV cache per token). Works on any GGUF that opens: a file whose architecture the
// engine cannot run still gets its tensor and tokenizer summary, with the reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/model/model_config.h"

namespace ondol::engine {

struct TensorTypeBytes {
  std::string type;  // "Q4_K"
  int64_t num_tensors = 0;
  int64_t num_elements = 0;
  int64_t num_bytes = 0;
};

struct ModelInfo {
  std::string path;
  std::string name;          // general.name, or empty
  std::string architecture;  // general.architecture, or empty
  std::optional<ModelConfig> config;
  std::string config_error;  // why config is absent
  bool tied_embeddings = false;
  int64_t num_params = 0;
  int64_t weight_bytes = 0;
  std::vector<TensorTypeBytes> by_type;  // descending bytes
  std::string tokenizer;                 // "llama (SentencePiece)", or "none: <error>"
  int64_t vocab_size = 0;                // tokens in the tokenizer vocabulary
  bool has_chat_template = false;
  int64_t kv_bytes_per_token_f16 = 0;  // K and V, all layers; 0 without a config
  int64_t kv_bytes_per_token_f32 = 0;
  int64_t kv_bytes_per_token_i8 = 0;  // int8 values and a float scale per head
};

ModelInfo model_info(const GgufFile& file);

// Human-readable, one "key: value" per line.
std::string format_model_info(const ModelInfo& info);

}  // namespace ondol::engine

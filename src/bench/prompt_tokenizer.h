// Exact prompt lengths with --tokenizer FILE.gguf: the served model's tokenizer (ondol's own,
// read from the GGUF) counts and trims prompts, instead of the one-token-per-word estimate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ondol::bench {

class PromptTokenizer {
 public:
  virtual ~PromptTokenizer() = default;
  // Tokens of `text` as a prompt's body (no BOS/EOS).
  virtual int64_t count(std::string_view text) const = 0;
  // The text of the first `num_tokens` tokens of `text`.
  virtual std::string first_tokens(std::string_view text, int64_t num_tokens) const = 0;
};

// The tokenizer of a GGUF model or vocab-only file.
Result<std::unique_ptr<PromptTokenizer>> load_gguf_tokenizer(const std::string& path);

}  // namespace ondol::bench

// SamplingParams: how one request picks its tokens and when it stops, with OpenAI/vLLM
// semantics. Parsed from the request at the edge, validated once, then read-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

// Below this temperature a request is greedy (vLLM's _SAMPLING_EPS).
inline constexpr float kGreedyTemperature = 1e-5f;
// OpenAI allows at most 20 alternatives per position.
inline constexpr int32_t kMaxTopLogprobs = 20;

// Which distribution logprobs are reported from (vLLM's logprobs_mode).
enum class LogprobsMode : uint8_t {
  Raw,        // log-softmax of the model's logits before any processing (vLLM V1 default)
  Processed,  // log-softmax of the distribution the token was drawn from
};

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 or -1 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  std::optional<uint64_t> seed;
  float repetition_penalty = 1.0f;  // 1 = off; over prompt + output tokens
  float presence_penalty = 0.0f;    // over output tokens
  float frequency_penalty = 0.0f;   // over output tokens
  bool logprobs = false;
  int32_t top_logprobs = 0;  // 0..kMaxTopLogprobs; only with logprobs
  LogprobsMode logprobs_mode = LogprobsMode::Raw;
  bool ignore_eos = false;
  int32_t max_tokens = 16;  // OpenAI's default for completions
  std::vector<std::string> stop;
  std::vector<TokenId> stop_token_ids;
  bool include_stop_str_in_output = false;

  bool is_greedy() const { return temperature < kGreedyTemperature; }
  bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
  // An Error naming the first field out of range.
  Status validate() const;
};

}  // namespace ondol::engine

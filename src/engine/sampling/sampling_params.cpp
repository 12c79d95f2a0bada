#include "engine/sampling/sampling_params.h"

#include <cmath>
#include <string>

namespace ondol::engine {

namespace {

// Why a table of checks: each failure names its field and range the same way, and the
// message goes to the client unchanged (400 invalid_request_error).
Error out_of_range(const char* field, const std::string& range) {
  return make_error(std::string(field) + " must be " + range);
}

}  // namespace

Status SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f) {
    return out_of_range("temperature", "a finite number >= 0");
  }
  if (top_k < -1) return out_of_range("top_k", "-1, 0 (off) or a positive count");
  if (!(top_p > 0.0f && top_p <= 1.0f)) return out_of_range("top_p", "in (0, 1]");
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return out_of_range("min_p", "in [0, 1]");
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return out_of_range("repetition_penalty", "a finite number > 0");
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return out_of_range("presence_penalty", "in [-2, 2]");
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return out_of_range("frequency_penalty", "in [-2, 2]");
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return out_of_range("top_logprobs", "in [0, 20]");
  }
  if (top_logprobs > 0 && !logprobs) {
    return make_error("top_logprobs requires logprobs to be true");
  }
  if (max_tokens < 1) return out_of_range("max_tokens", ">= 1");
  for (const std::string& s : stop) {
    if (s.empty()) return make_error("stop strings must not be empty");
  }
  for (TokenId id : stop_token_ids) {
    if (id < 0) return out_of_range("stop_token_ids", "non-negative token ids");
  }
  return Ok{};
}

}  // namespace ondol::engine

// GenerationOutput: the text side of one generating sequence. Fed each sampled token id, it
// produces the text delta to stream (through the incremental detokenizer and the stop-string
// matcher) and decides whether and why the sequence finished. One per sequence.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/sampling/sampling_params.h"
#include "engine/sampling/stop_matcher.h"
#include "engine/tokenizer/incremental_detokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace ondol::engine {

enum class FinishReason : uint8_t {
  None,        // still generating
  Eos,         // an end-of-generation token (eos, eot, <|im_end|>, ...)
  StopToken,   // a token from stop_token_ids
  StopString,  // a stop string completed
  Length,      // max_tokens generated
};

// The OpenAI wire name: "stop" for Eos/StopToken/StopString, "length", or "" for None.
std::string_view to_openai(FinishReason reason);

class GenerationOutput {
 public:
  // `tokenizer` and `params` must outlive this object.
  GenerationOutput(const Tokenizer& tokenizer, const SamplingParams& params,
                   DetokenizerOptions detokenizer_options = {});

  // Appends the text `id` releases to `delta` (possibly nothing) and returns the finish
  // reason; once finished, all remaining text has been appended and later calls do nothing.
  FinishReason push(TokenId id, std::string& delta);
  // Ends the sequence from outside (abort): releases held text.
  void flush(std::string& delta);

  FinishReason finish_reason() const { return finish_; }
  bool finished() const { return finish_ != FinishReason::None; }
  int32_t num_tokens() const { return num_tokens_; }
  // What stopped it, for vLLM's stop_reason: the stop string, or the stop token id.
  std::string_view matched_stop_string() const { return stop_matcher_.matched_stop_string(); }
  TokenId stop_token() const { return stop_token_; }

 private:
  bool is_stop_token(TokenId id) const;
  void finish(FinishReason reason, std::string& delta);

  const Tokenizer& tokenizer_;
  const SamplingParams& params_;
  IncrementalDetokenizer detokenizer_;
  StopMatcher stop_matcher_;
  std::string piece_;  // scratch: the detokenizer's output for one token
  int32_t num_tokens_ = 0;
  TokenId stop_token_ = kNoToken;
  FinishReason finish_ = FinishReason::None;
};

}  // namespace ondol::engine

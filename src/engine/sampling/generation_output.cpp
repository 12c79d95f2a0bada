#include "engine/sampling/generation_output.h"

#include <algorithm>

namespace ondol::engine {

std::string_view to_openai(FinishReason reason) {
  switch (reason) {
    case FinishReason::None:
      return "";
    case FinishReason::Eos:
    case FinishReason::StopToken:
    case FinishReason::StopString:
      return "stop";
    case FinishReason::Length:
      return "length";
  }
  return "";
}

GenerationOutput::GenerationOutput(const Tokenizer& tokenizer, const SamplingParams& params,
                                   DetokenizerOptions detokenizer_options)
    : tokenizer_(tokenizer),
      params_(params),
      detokenizer_(tokenizer, detokenizer_options),
      stop_matcher_(params.stop,
                    StopMatcherOptions{.include_stop_string = params.include_stop_str_in_output}) {
  piece_.reserve(64);
}

bool GenerationOutput::is_stop_token(TokenId id) const {
  return std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), id) !=
         params_.stop_token_ids.end();
}

FinishReason GenerationOutput::push(TokenId id, std::string& delta) {
  if (finished()) return finish_;
  ++num_tokens_;
  // Ending tokens are not text (OpenAI and vLLM leave them out of the output).
  if (is_stop_token(id)) {
    stop_token_ = id;
    finish(FinishReason::StopToken, delta);
  } else if (!params_.ignore_eos && tokenizer_.is_end_of_generation(id)) {
    stop_token_ = id;
    finish(FinishReason::Eos, delta);
  } else {
    piece_.clear();
    detokenizer_.push(id, piece_);
    if (stop_matcher_.push(piece_, delta)) {
      finish_ = FinishReason::StopString;  // the text after the stop string is dropped
    } else if (num_tokens_ >= params_.max_tokens) {
      finish(FinishReason::Length, delta);
    }
  }
  return finish_;
}

void GenerationOutput::flush(std::string& delta) {
  if (finished()) return;
  piece_.clear();
  detokenizer_.flush(piece_);
  stop_matcher_.push(piece_, delta);
  stop_matcher_.flush(delta);
}

void GenerationOutput::finish(FinishReason reason, std::string& delta) {
  // Release what the detokenizer and the matcher held: it may still complete a stop string.
  piece_.clear();
  detokenizer_.flush(piece_);
  if (stop_matcher_.push(piece_, delta)) {
    finish_ = FinishReason::StopString;
    return;
  }
  stop_matcher_.flush(delta);
  finish_ = reason;
}

}  // namespace ondol::engine

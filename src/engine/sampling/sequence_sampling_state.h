// SequenceSamplingState: what sampling remembers about one sequence between steps — its
// parameters, its random generator and the tokens the penalties look at. One per sequence,
// created when the sequence is admitted; the sampler updates it on every sample().
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

class SequenceSamplingState {
 public:
  // `params` must be valid (SamplingParams::validate). `fallback_seed` seeds the generator
  // when params.seed is absent (the Sampler draws one from its own generator).
  SequenceSamplingState(SamplingParams params, std::span<const TokenId> prompt_ids,
                        uint64_t fallback_seed);

  const SamplingParams& params() const { return params_; }
  // Distinct prompt token ids (repetition penalty), in first-seen order.
  std::span<const TokenId> prompt_unique_ids() const { return prompt_unique_ids_; }
  std::span<const TokenId> output_ids() const { return output_ids_; }
  size_t num_output_tokens() const { return output_ids_.size(); }

  // A uniform double in [0, 1) from the top 53 bits of the generator, so that a seed gives the
  // same draws on every standard library (std::uniform_real_distribution is not specified).
  double next_uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  // Called by the sampler with the token it picked. Allocates only past max_tokens.
  void append_output(TokenId id) { output_ids_.push_back(id); }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<TokenId> prompt_unique_ids_;
  std::vector<TokenId> output_ids_;
};

}  // namespace ondol::engine

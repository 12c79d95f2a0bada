#include "engine/sampling/sequence_sampling_state.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace ondol::engine {

SequenceSamplingState::SequenceSamplingState(SamplingParams params,
                                             std::span<const TokenId> prompt_ids,
                                             uint64_t fallback_seed)
    : params_(std::move(params)), rng_(params_.seed.value_or(fallback_seed)) {
  // Only the repetition penalty reads the prompt; deduplicate once here so that each step costs
  // the number of distinct prompt tokens, not the prompt length.
  if (params_.repetition_penalty != 1.0f) {
    std::unordered_set<TokenId> seen;
    seen.reserve(prompt_ids.size());
    for (TokenId id : prompt_ids) {
      if (seen.insert(id).second) prompt_unique_ids_.push_back(id);
    }
  }
  output_ids_.reserve(static_cast<size_t>(std::max(params_.max_tokens, 1)));
}

}  // namespace ondol::engine

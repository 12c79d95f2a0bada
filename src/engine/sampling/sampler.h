// Sampler: picks the next token of a sequence from its logits — penalties, temperature, min-p,
// top-k, top-p, a seeded draw — and reports logprobs the way vLLM does. Owns all scratch,
// sized to the vocabulary once, so sample() allocates nothing. One Sampler per sampling
// thread; not thread-safe. Order of operations and costs: docs/engine-sampling-chat.md.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "engine/sampling/sampling_params.h"
#include "engine/sampling/sequence_sampling_state.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

struct TokenLogprob {
  TokenId id = kNoToken;
  float logprob = 0.0f;
};

// A value (no heap): the alternatives live in a fixed array.
struct SampledToken {
  TokenId id = kNoToken;
  // Filled when params.logprobs: the token's logprob and rank (1 = most likely) in the
  // reported distribution (LogprobsMode), and the top_logprobs best tokens, best first.
  float logprob = 0.0f;
  int32_t rank = 0;
  int32_t num_top = 0;
  std::array<TokenLogprob, kMaxTopLogprobs> top{};

  std::span<const TokenLogprob> top_logprobs() const {
    return {top.data(), static_cast<size_t>(num_top)};
  }
};

class Sampler {
 public:
  // `seed` seeds the generator that seeds sequences without their own seed.
  explicit Sampler(size_t vocab_size, uint64_t seed = std::random_device{}());

  size_t vocab_size() const { return vocab_size_; }
  // A seed for a sequence whose request has none.
  uint64_t next_sequence_seed() { return seed_rng_(); }
  SequenceSamplingState make_state(SamplingParams params, std::span<const TokenId> prompt_ids) {
    return SequenceSamplingState(std::move(params), prompt_ids, next_sequence_seed());
  }

  // `logits`: one row, vocab_size floats (the model's output for the sequence's last
  // position). Records the chosen token in `state`.
  SampledToken sample(std::span<const float> logits, SequenceSamplingState& state);

 private:
  void apply_penalties(const SequenceSamplingState& state);
  // Narrows candidates_[0, num_candidates_) by min-p, top-k and top-p on logits_.
  void filter(const SamplingParams& params, float max_logit);
  void fill_all_candidates();
  void select_top_k(size_t k);
  void select_top_p(float top_p, float max_logit);
  void report_logprobs(std::span<const float> logits, const SamplingParams& params,
                       SampledToken& token) const;

  size_t vocab_size_;
  std::mt19937_64 seed_rng_;
  std::vector<float> logits_;        // working copy: penalties, temperature
  std::vector<float> weights_;       // exp(logit - max) of the candidates, in candidate order
  std::vector<int32_t> candidates_;  // token ids that survive the filters
  size_t num_candidates_ = 0;
  bool all_candidates_ = true;       // candidates_ not materialised: every token is one
  std::vector<uint32_t> counts_;     // output-token counts; all zero between calls
  std::vector<uint8_t> penalised_;   // repetition penalty applied this call; all zero between
  std::vector<float> probs_;         // top-p: exp(logit - max) by token id
  std::vector<int32_t> top_k_heap_;  // top-k: the k best so far, worst first
};

}  // namespace ondol::engine

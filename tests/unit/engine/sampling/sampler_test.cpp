#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace ondol::engine {
namespace {

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 4.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Reference log-softmax in double precision.
std::vector<double> log_softmax(const std::vector<float>& logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(l - max);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - max - std::log(sum);
  return out;
}

TokenId reference_argmax(const std::vector<float>& v) {
  return static_cast<TokenId>(std::max_element(v.begin(), v.end()) - v.begin());
}

constexpr size_t kVocab = 32000;

TEST(Sampler, GreedyIsArgmax) {
  Sampler sampler(kVocab, 1);
  SequenceSamplingState state = sampler.make_state({.temperature = 0.0f, .max_tokens = 64}, {});
  for (uint64_t step = 0; step < 20; ++step) {
    const std::vector<float> logits = random_logits(kVocab, step);
    EXPECT_EQ(sampler.sample(logits, state).id, reference_argmax(logits));
  }
  EXPECT_EQ(state.num_output_tokens(), 20u);
}

std::vector<TokenId> draw_sequence(const SamplingParams& params, uint64_t sampler_seed, int steps) {
  Sampler sampler(kVocab, sampler_seed);
  SequenceSamplingState state = sampler.make_state(params, {});
  std::vector<TokenId> ids;
  for (int step = 0; step < steps; ++step) {
    // Flat logits (scale 0.5): many tokens are plausible, so two generators rarely agree.
    const std::vector<float> logits = random_logits(kVocab, 1000 + step, 0.5f);
    ids.push_back(sampler.sample(logits, state).id);
  }
  return ids;
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const SamplingParams a{.temperature = 1.0f, .top_p = 0.95f, .seed = 42, .max_tokens = 64};
  SamplingParams b = a;
  b.seed = 43;
  // The sampler's own seed must not matter when the request has a seed.
  const std::vector<TokenId> first = draw_sequence(a, 1, 40);
  const std::vector<TokenId> again = draw_sequence(a, 999, 40);
  const std::vector<TokenId> other = draw_sequence(b, 1, 40);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  // Unseeded sequences get different generators from one sampler.
  Sampler sampler(kVocab, 7);
  SequenceSamplingState s1 = sampler.make_state({.max_tokens = 64}, {});
  SequenceSamplingState s2 = sampler.make_state({.max_tokens = 64}, {});
  int same = 0;
  for (int step = 0; step < 40; ++step) {
    const std::vector<float> logits = random_logits(kVocab, 1000 + step, 0.5f);
    same += sampler.sample(logits, s1).id == sampler.sample(logits, s2).id;
  }
  EXPECT_LT(same, 40);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  Sampler sampler(kVocab, 3);
  SequenceSamplingState top_k =
      sampler.make_state({.temperature = 1.5f, .top_k = 1, .max_tokens = 64}, {});
  SequenceSamplingState top_p =
      sampler.make_state({.temperature = 1.5f, .top_p = 1e-6f, .max_tokens = 64}, {});
  for (uint64_t step = 0; step < 30; ++step) {
    const std::vector<float> logits = random_logits(kVocab, 50 + step, 1.0f);
    const TokenId expected = reference_argmax(logits);
    EXPECT_EQ(sampler.sample(logits, top_k).id, expected);
    EXPECT_EQ(sampler.sample(logits, top_p).id, expected);
  }
}

std::vector<float> logits_from_probs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

TEST(Sampler, MinPDropsTokensBelowFractionOfMax) {
  // p = {0.5, 0.3, 0.15, 0.05}; min_p 0.2 → threshold 0.1: token 3 can never be drawn.
  const std::vector<float> logits = logits_from_probs({0.5, 0.3, 0.15, 0.05});
  Sampler sampler(logits.size(), 11);
  SamplingParams params{.temperature = 1.0f,
                        .min_p = 0.2f,
                        .logprobs = true,
                        .top_logprobs = 4,
                        .logprobs_mode = LogprobsMode::Processed,
                        .max_tokens = 1};
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 4000; ++i) {
    SequenceSamplingState state = sampler.make_state(params, {});
    const SampledToken t = sampler.sample(logits, state);
    ++counts[static_cast<size_t>(t.id)];
    // The processed distribution is renormalised over the survivors.
    const double kept[] = {0.5, 0.3, 0.15};
    EXPECT_NEAR(std::exp(t.logprob), kept[t.id] / 0.95, 1e-5);
    ASSERT_EQ(t.num_top, 3);  // the filtered token is not an alternative
  }
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[2], 0);
  // Without min_p the same draws reach token 3.
  params.min_p = 0.0f;
  int seen3 = 0;
  for (int i = 0; i < 4000; ++i) {
    SequenceSamplingState state = sampler.make_state(params, {});
    seen3 += sampler.sample(logits, state).id == 3;
  }
  EXPECT_GT(seen3, 0);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  const std::vector<float> logits = random_logits(kVocab, 5, 1.0f);
  std::vector<int32_t> order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::set<TokenId> best(order.begin(), order.begin() + 5);
  Sampler sampler(kVocab, 8);
  SequenceSamplingState state =
      sampler.make_state({.temperature = 2.0f, .top_k = 5, .max_tokens = 500}, {});
  std::set<TokenId> seen;
  for (int i = 0; i < 500; ++i) seen.insert(sampler.sample(logits, state).id);
  EXPECT_EQ(seen, best);  // all five are reachable at temperature 2, nothing else is
}

TEST(Sampler, LargeTopKUsesTheSameSet) {
  // k above the heap path's limit goes through nth_element; the set must be the same kind.
  const std::vector<float> logits = random_logits(kVocab, 6, 0.3f);
  std::vector<int32_t> order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::set<TokenId> best(order.begin(), order.begin() + 1000);
  Sampler sampler(kVocab, 8);
  SequenceSamplingState state =
      sampler.make_state({.temperature = 1.0f, .top_k = 1000, .max_tokens = 3000}, {});
  std::set<TokenId> seen;
  for (int i = 0; i < 3000; ++i) {
    const TokenId id = sampler.sample(logits, state).id;
    ASSERT_TRUE(best.count(id)) << id;
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), 500u);  // flat logits: most of the 1000 show up
}

TEST(Sampler, TopKAppliesToMinPSurvivors) {
  const std::vector<float> logits = logits_from_probs({0.05, 0.3, 0.15, 0.5});
  Sampler sampler(logits.size(), 4);
  SequenceSamplingState state =
      sampler.make_state({.temperature = 1.0f, .top_k = 2, .min_p = 0.2f, .max_tokens = 2000}, {});
  std::set<TokenId> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(sampler.sample(logits, state).id);
  EXPECT_EQ(seen, (std::set<TokenId>{1, 3}));
}

// vLLM's rule on a full sort: keep token i (descending) while the mass before it is < top_p.
double reference_top_p_mass(const std::vector<float>& logits, float temperature, float top_p,
                            size_t* num_kept) {
  std::vector<float> scaled(logits);
  for (float& l : scaled) l /= temperature;
  const std::vector<double> lp = log_softmax(scaled);
  std::vector<double> probs;
  for (double x : lp) probs.push_back(std::exp(x));
  std::sort(probs.begin(), probs.end(), std::greater<>());
  double mass = 0.0;
  size_t i = 0;
  while (i < probs.size() && mass < top_p) mass += probs[i++];
  *num_kept = i;
  return mass;
}

TEST(Sampler, TopPMatchesFullSortReference) {
  // A 150k vocabulary with flat logits needs thousands of candidates at top_p 0.9, so the
  // incremental selection has to grow its sorted prefix several times.
  for (const auto& [vocab, scale, top_p] : std::vector<std::tuple<size_t, float, float>>{
           {152064, 1.0f, 0.9f}, {32000, 3.0f, 0.5f}, {32000, 6.0f, 0.99f}}) {
    const std::vector<float> logits = random_logits(vocab, 77, scale);
    size_t num_kept = 0;
    const double kept_mass = reference_top_p_mass(logits, 0.8f, top_p, &num_kept);
    SCOPED_TRACE(testing::Message() << "vocab " << vocab << " kept " << num_kept);
    std::vector<float> scaled(logits);
    for (float& l : scaled) l /= 0.8f;
    const std::vector<double> lp = log_softmax(scaled);

    Sampler sampler(vocab, 9);
    SequenceSamplingState state = sampler.make_state({.temperature = 0.8f,
                                                      .top_p = top_p,
                                                      .logprobs = true,
                                                      .logprobs_mode = LogprobsMode::Processed,
                                                      .max_tokens = 64},
                                                     {});
    for (int i = 0; i < 50; ++i) {
      const SampledToken t = sampler.sample(logits, state);
      // Processed logprob = log(p_i / mass of the kept set): checks the kept set's mass.
      EXPECT_NEAR(t.logprob, lp[static_cast<size_t>(t.id)] - std::log(kept_mass), 1e-4);
      EXPECT_LE(static_cast<size_t>(t.rank), num_kept);
    }
  }
}

TEST(Sampler, PenaltiesChangeTheRightLogitsByTheRightAmounts) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
  const std::vector<TokenId> prompt = {0, 1, 0};
  Sampler sampler(logits.size(), 1);
  SequenceSamplingState state = sampler.make_state({.temperature = 0.0f,
                                                    .repetition_penalty = 2.0f,
                                                    .presence_penalty = 0.25f,
                                                    .frequency_penalty = 0.5f,
                                                    .logprobs = true,
                                                    .top_logprobs = 5,
                                                    .logprobs_mode = LogprobsMode::Processed,
                                                    .max_tokens = 8},
                                                   prompt);
  for (TokenId id : {1, 2, 2}) state.append_output(id);
  // By hand (repetition over prompt+output, then frequency*count + presence over output):
  //   0: prompt, 2.0 > 0 → 2.0 / 2 = 1.0
  //   1: prompt+output once, -1.0 → -1.0 * 2 = -2.0, then - 0.5*1 - 0.25 = -2.75
  //   2: output twice, 0.5 → 0.25, then - 0.5*2 - 0.25 = -1.0
  //   3, 4: untouched
  const std::vector<float> expected = {1.0f, -2.75f, -1.0f, 3.0f, -2.0f};
  const std::vector<double> expected_lp = log_softmax(expected);
  for (int round = 0; round < 2; ++round) {  // the scratch is clean again after a call
    SequenceSamplingState s = state;
    const SampledToken t = sampler.sample(logits, s);
    EXPECT_EQ(t.id, 3);
    ASSERT_EQ(t.num_top, 5);
    for (const TokenLogprob& alt : t.top_logprobs()) {
      EXPECT_NEAR(alt.logprob, expected_lp[static_cast<size_t>(alt.id)], 1e-5) << alt.id;
    }
  }
  // Raw mode reports the model's distribution, untouched by the penalties.
  SamplingParams raw = state.params();
  raw.logprobs_mode = LogprobsMode::Raw;
  SequenceSamplingState raw_state(raw, prompt, 0);
  for (TokenId id : {1, 2, 2}) raw_state.append_output(id);
  const std::vector<double> raw_lp = log_softmax(logits);
  const SampledToken t = sampler.sample(logits, raw_state);
  for (const TokenLogprob& alt : t.top_logprobs()) {
    EXPECT_NEAR(alt.logprob, raw_lp[static_cast<size_t>(alt.id)], 1e-5);
  }
}

TEST(Sampler, RepetitionPenaltyCanChangeTheGreedyChoice) {
  // Token 0 leads by 0.5 but was already generated; a penalty of 1.5 divides its logit.
  const std::vector<float> logits = {3.0f, 2.5f, 0.0f};
  Sampler sampler(logits.size(), 1);
  SequenceSamplingState state =
      sampler.make_state({.temperature = 0.0f, .repetition_penalty = 1.5f, .max_tokens = 4}, {});
  state.append_output(0);
  EXPECT_EQ(sampler.sample(logits, state).id, 1);  // 3.0 / 1.5 = 2.0 < 2.5
  // Now both were generated: 2.0 against 2.5 / 1.5 = 1.67, token 0 leads again.
  EXPECT_EQ(sampler.sample(logits, state).id, 0);
}

TEST(Sampler, TemperatureSamplingMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.5f, 1.3f, 0.7f};
  for (float temperature : {0.7f, 1.0f, 2.0f}) {
    std::vector<float> scaled(logits);
    for (float& l : scaled) l /= temperature;
    const std::vector<double> lp = log_softmax(scaled);
    Sampler sampler(logits.size(), 1234);
    constexpr int kDraws = 200000;
    SequenceSamplingState state =
        sampler.make_state({.temperature = temperature, .seed = 99, .max_tokens = kDraws}, {});
    std::vector<double> counts(logits.size(), 0.0);
    for (int i = 0; i < kDraws; ++i)
      counts[static_cast<size_t>(sampler.sample(logits, state).id)] += 1;
    double chi2 = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const double expected = kDraws * std::exp(lp[i]);
      chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    }
    // 7 degrees of freedom: P(chi2 > 29.9) = 1e-4 for a correct sampler; a sampler off by a
    // temperature factor or an index lands in the thousands.
    EXPECT_LT(chi2, 29.9) << "temperature " << temperature;
  }
}

TEST(Sampler, LogprobsReportRawDistributionRankAndBestAlternatives) {
  const std::vector<float> logits = random_logits(kVocab, 21, 2.0f);
  const std::vector<double> lp = log_softmax(logits);
  std::vector<int32_t> order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  Sampler sampler(kVocab, 2);
  SequenceSamplingState state = sampler.make_state(
      {.temperature = 1.3f, .seed = 5, .logprobs = true, .top_logprobs = 20, .max_tokens = 64}, {});
  for (int i = 0; i < 10; ++i) {
    const SampledToken t = sampler.sample(logits, state);
    EXPECT_NEAR(t.logprob, lp[static_cast<size_t>(t.id)], 1e-4);
    const auto rank = std::find(order.begin(), order.end(), t.id) - order.begin() + 1;
    EXPECT_EQ(t.rank, rank);
    ASSERT_EQ(t.num_top, 20);
    for (int k = 0; k < 20; ++k) {
      EXPECT_EQ(t.top[static_cast<size_t>(k)].id, order[static_cast<size_t>(k)]);
      EXPECT_NEAR(t.top[static_cast<size_t>(k)].logprob,
                  lp[static_cast<size_t>(order[static_cast<size_t>(k)])], 1e-4);
    }
  }
}

}  // namespace
}  // namespace ondol::engine

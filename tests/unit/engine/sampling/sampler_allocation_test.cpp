// Counts heap allocations made while sampling: sample() must make none once the Sampler
// and the sequence state exist. Replacing the global operator new is legal C++ and affects
// only this test binary.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "engine/sampling/sampler.h"

namespace {
std::atomic<long> g_num_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_num_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC cannot see that the replaced operator new above is malloc and warns about free here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace ondol::engine {
namespace {

TEST(SamplerAllocation, SampleAllocatesNothing) {
  constexpr size_t kVocab = 32000;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = normal(rng);
  const std::vector<TokenId> prompt = {1, 2, 3, 4, 5, 100, 200};

  Sampler sampler(kVocab, 1);
  const SamplingParams variants[] = {
      {.temperature = 0.0f, .max_tokens = 100},
      {.temperature = 0.8f,
       .top_k = 40,
       .top_p = 0.9f,
       .min_p = 0.05f,
       .repetition_penalty = 1.1f,
       .presence_penalty = 0.5f,
       .frequency_penalty = 0.5f,
       .logprobs = true,
       .top_logprobs = 5,
       .max_tokens = 100},
      {.temperature = 1.0f,
       .top_p = 0.95f,
       .logprobs = true,
       .top_logprobs = 20,
       .logprobs_mode = LogprobsMode::Processed,
       .max_tokens = 100},
  };
  for (const SamplingParams& params : variants) {
    SequenceSamplingState state = sampler.make_state(params, prompt);
    const long before = g_num_allocations.load();
    for (int i = 0; i < 100; ++i) (void)sampler.sample(logits, state);
    EXPECT_EQ(g_num_allocations.load() - before, 0);
    EXPECT_EQ(state.num_output_tokens(), 100u);
  }
}

}  // namespace
}  // namespace ondol::engine

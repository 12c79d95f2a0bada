#include "engine/sampling/sampling_params.h"

#include <gtest/gtest.h>

namespace ondol::engine {
namespace {

TEST(SamplingParams, DefaultsAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate().ok());
}

TEST(SamplingParams, GreedyBelowEpsilon) {
  EXPECT_TRUE(SamplingParams{.temperature = 0.0f}.is_greedy());
  EXPECT_FALSE(SamplingParams{.temperature = 0.01f}.is_greedy());
}

TEST(SamplingParams, RefusesOutOfRangeNamingTheField) {
  struct Case {
    SamplingParams params;
    const char* field;
  };
  const Case cases[] = {
      {{.temperature = -0.5f}, "temperature"},
      {{.top_k = -2}, "top_k"},
      {{.top_p = 0.0f}, "top_p"},
      {{.top_p = 1.5f}, "top_p"},
      {{.min_p = -0.1f}, "min_p"},
      {{.repetition_penalty = 0.0f}, "repetition_penalty"},
      {{.presence_penalty = 2.5f}, "presence_penalty"},
      {{.frequency_penalty = -3.0f}, "frequency_penalty"},
      {{.logprobs = true, .top_logprobs = 21}, "top_logprobs"},
      {{.top_logprobs = 3}, "top_logprobs"},
      {{.max_tokens = 0}, "max_tokens"},
      {{.stop = {"ok", ""}}, "stop"},
      {{.stop_token_ids = {-4}}, "stop_token_ids"},
  };
  for (const Case& c : cases) {
    Status s = c.params.validate();
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_NE(s.error().message.find(c.field), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace ondol::engine

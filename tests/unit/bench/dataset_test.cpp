#include "bench/dataset.h"

#include "bench/prompt_tokenizer.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

namespace ondol::bench {
namespace {

std::vector<std::string> words_of(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

TEST(Dataset, RandomLengthsStayWithinTheRangeRatio) {
  auto samples = random_dataset(
      {.input_len = 100, .output_len = 40, .range_ratio = 0.5, .prefix_len = 0, .seed = 1}, 500);
  ASSERT_TRUE(samples);
  ASSERT_EQ(samples->size(), 500u);
  std::set<int64_t> input_lens;
  for (const auto& s : *samples) {
    EXPECT_GE(s.prompt_len, 50);
    EXPECT_LE(s.prompt_len, 150);
    EXPECT_GE(s.expected_output_len, 20);
    EXPECT_LE(s.expected_output_len, 60);
    EXPECT_EQ(static_cast<int64_t>(words_of(s.prompt).size()), s.prompt_len);
    input_lens.insert(s.prompt_len);
  }
  EXPECT_GT(input_lens.size(), 50u);  // spread over the range, not one value
}

TEST(Dataset, RandomWithoutRangeIsExactAndSeeded) {
  RandomDatasetParams p{
      .input_len = 32, .output_len = 8, .range_ratio = 0, .prefix_len = 0, .seed = 5};
  auto a = random_dataset(p, 20);
  auto b = random_dataset(p, 20);
  ASSERT_TRUE(a && b);
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].prompt_len, 32);
    EXPECT_EQ((*a)[i].expected_output_len, 8);
    EXPECT_EQ((*a)[i].prompt, (*b)[i].prompt);
  }
  EXPECT_NE((*a)[0].prompt, (*a)[1].prompt);
  for (const auto& w : words_of((*a)[0].prompt)) {
    EXPECT_NE(std::find(prompt_words().begin(), prompt_words().end(), w), prompt_words().end());
  }
  EXPECT_FALSE(random_dataset({.input_len = 10, .output_len = 1, .range_ratio = 1.0}, 1));
}

TEST(Dataset, RandomPrefixIsSharedByEveryPrompt) {
  auto samples = random_dataset(
      {.input_len = 10, .output_len = 4, .range_ratio = 0, .prefix_len = 6, .seed = 2}, 10);
  ASSERT_TRUE(samples);
  auto first = words_of((*samples)[0].prompt);
  std::vector<std::string> prefix(first.begin(), first.begin() + 6);
  for (const auto& s : *samples) {
    auto w = words_of(s.prompt);
    ASSERT_EQ(w.size(), 16u);
    EXPECT_EQ(std::vector<std::string>(w.begin(), w.begin() + 6), prefix);
    EXPECT_EQ(s.prompt_len, 16);
  }
}

TEST(Dataset, PrefixRepetitionUsesNumPrefixesPrefixes) {
  auto samples = prefix_repetition_dataset(
      {.prefix_len = 8, .suffix_len = 4, .num_prefixes = 3, .output_len = 5, .seed = 9}, 30);
  ASSERT_TRUE(samples);
  std::set<std::string> prefixes;
  for (const auto& s : *samples) {
    auto w = words_of(s.prompt);
    ASSERT_EQ(w.size(), 12u);
    std::string prefix;
    for (int i = 0; i < 8; ++i) prefix += w[static_cast<size_t>(i)] + " ";
    prefixes.insert(prefix);
    EXPECT_EQ(s.expected_output_len, 5);
  }
  EXPECT_EQ(prefixes.size(), 3u);
}

constexpr const char* kShareGpt = R"([
  {"id": "a", "conversations": [
    {"from": "human", "value": "Write a short poem about the sea and the sky at night."},
    {"from": "gpt", "value": "The sea is dark, the sky is wide, and stars are scattered far and near, a quiet tide."}]},
  {"id": "short", "conversations": [
    {"from": "human", "value": "hi"}, {"from": "gpt", "value": "Hello! How can I help you today?"}]},
  {"id": "no-answer", "conversations": [{"from": "human", "value": "Is anyone there at all, please?"}]},
  {"id": "system-first", "conversations": [
    {"from": "system", "value": "be brief"},
    {"from": "human", "value": "Explain what a hash table is in one paragraph."},
    {"from": "gpt", "value": "A hash table maps keys to values by hashing each key to a bucket index."}]}
])";

TEST(Dataset, ShareGptTakesTheFirstHumanTurnAndTheAnswerLength) {
  auto samples = sharegpt_dataset_from_json(kShareGpt, {.fixed_output_len = 0, .seed = 0}, 2);
  ASSERT_TRUE(samples) << samples.error().message;
  ASSERT_EQ(samples->size(), 2u);
  std::set<std::string> prompts;
  for (const auto& s : *samples) {
    prompts.insert(s.prompt);
    EXPECT_EQ(s.prompt_len, estimate_tokens(s.prompt));
  }
  EXPECT_TRUE(prompts.count("Write a short poem about the sea and the sky at night."));
  EXPECT_TRUE(prompts.count("Explain what a hash table is in one paragraph."));
  for (const auto& s : *samples) {
    if (s.prompt.starts_with("Write")) {
      EXPECT_EQ(s.expected_output_len,
                estimate_tokens("The sea is dark, the sky is wide, and stars are scattered far "
                                "and near, a quiet tide."));
    }
  }
}

TEST(Dataset, ShareGptFixedOutputLenAndReuseWhenShort) {
  auto samples = sharegpt_dataset_from_json(kShareGpt, {.fixed_output_len = 7, .seed = 1}, 5);
  ASSERT_TRUE(samples);
  ASSERT_EQ(samples->size(), 5u);  // two usable conversations, reused in order
  for (const auto& s : *samples) EXPECT_EQ(s.expected_output_len, 7);
  EXPECT_EQ((*samples)[0].prompt, (*samples)[2].prompt);
  EXPECT_FALSE(sharegpt_dataset_from_json("{\"not\": \"a list\"}", {}, 1));
  EXPECT_FALSE(sharegpt_dataset_from_json("[]", {}, 1));
  EXPECT_FALSE(load_sharegpt_dataset("/nonexistent/sharegpt.json", {}, 1));
}

}  // namespace
}  // namespace ondol::bench

namespace ondol::bench {
namespace {

// One token per byte: makes the exact-length logic visible without a real vocabulary.
class ByteTokenizer final : public PromptTokenizer {
 public:
  int64_t count(std::string_view text) const override { return static_cast<int64_t>(text.size()); }
  std::string first_tokens(std::string_view text, int64_t n) const override {
    return std::string(text.substr(0, static_cast<size_t>(n)));
  }
};

TEST(Dataset, TokenizerMakesLengthsExact) {
  ByteTokenizer bytes;
  std::mt19937_64 rng(4);
  EXPECT_EQ(random_prompt(rng, 37, &bytes).size(), 37u);
  auto samples = random_dataset({.input_len = 40,
                                 .output_len = 4,
                                 .range_ratio = 0.5,
                                 .prefix_len = 10,
                                 .seed = 1,
                                 .tokenizer = &bytes},
                                50);
  ASSERT_TRUE(samples);
  for (const auto& s : *samples) {
    EXPECT_EQ(s.prompt_len, static_cast<int64_t>(s.prompt.size()));
    EXPECT_GE(s.prompt_len, 10 + 1 + 20);  // prefix, the space, at least 40 * (1 - 0.5)
    EXPECT_LE(s.prompt_len, 10 + 1 + 60);
  }
  auto share = sharegpt_dataset_from_json(kShareGpt, {.tokenizer = &bytes}, 2);
  ASSERT_TRUE(share);
  for (const auto& s : *share) EXPECT_EQ(s.prompt_len, static_cast<int64_t>(s.prompt.size()));
}

}  // namespace
}  // namespace ondol::bench

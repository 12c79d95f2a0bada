#include "bench/regress.h"

#include <gtest/gtest.h>

namespace ondol::bench {
namespace {

TEST(Regress, SimilarityIsNormalisedLevenshteinOverCodePoints) {
  EXPECT_DOUBLE_EQ(text_similarity("", ""), 1.0);
  EXPECT_DOUBLE_EQ(text_similarity("same", "same"), 1.0);
  EXPECT_DOUBLE_EQ(text_similarity("kitten", "sitting"), 1.0 - 3.0 / 7.0);
  EXPECT_DOUBLE_EQ(text_similarity("abc", ""), 0.0);
  // One substituted code point of five, although 'é' is two bytes.
  EXPECT_DOUBLE_EQ(text_similarity("héllo", "hello"), 0.8);
}

TEST(Regress, GreedyEntriesMatchExactlyWithAReadableDiff) {
  RegressEntry e{.prompt = "p",
                 .max_tokens = 8,
                 .temperature = 0,
                 .seed = {},
                 .expected = "Once upon a time\nthere was a cat."};
  EXPECT_TRUE(compare_answer(e, e.expected, 0.9).match);
  Comparison c = compare_answer(e, "Once upon a time\nthere was a dog.", 0.0);
  EXPECT_FALSE(c.match);  // the threshold does not apply to greedy entries
  EXPECT_NE(c.diff.find("exact match required"), std::string::npos);
  EXPECT_NE(c.diff.find("first difference at character 29 (line 2, column 13)"), std::string::npos)
      << c.diff;
  EXPECT_NE(c.diff.find("expected: \"Once upon a time\\nthere was a cat.\""), std::string::npos)
      << c.diff;
  EXPECT_NE(c.diff.find("got:      \"Once upon a time\\nthere was a dog.\""), std::string::npos)
      << c.diff;
}

TEST(Regress, DiffExcerptsAndLengthChanges) {
  std::string base(100, 'a');
  std::string d = describe_difference(base + "XYZ", base + "XQZ");
  EXPECT_NE(d.find("character 101"), std::string::npos) << d;
  EXPECT_NE(d.find("expected: ...\"" + std::string(29, 'a') + "XYZ\""), std::string::npos) << d;
  EXPECT_NE(d.find("got:      ...\"" + std::string(29, 'a') + "XQZ\""), std::string::npos) << d;
  EXPECT_NE(describe_difference("abc", "abcdef").find("the answer is longer"), std::string::npos);
  EXPECT_NE(describe_difference("abcdef", "abc").find("the answer is shorter"), std::string::npos);
}

TEST(Regress, SampledEntriesUseTheSimilarityThreshold) {
  RegressEntry e{.prompt = "p",
                 .max_tokens = 8,
                 .temperature = 0.8,
                 .seed = 1,
                 .expected = "the cat sat on the mat"};
  Comparison close = compare_answer(e, "the cat sat on a mat", 0.8);
  EXPECT_TRUE(close.match);
  EXPECT_LT(close.similarity, 1.0);
  Comparison far = compare_answer(e, "dogs run in the park", 0.8);
  EXPECT_FALSE(far.match);
  EXPECT_NE(far.diff.find("below --min-similarity 0.800"), std::string::npos) << far.diff;
}

TEST(Regress, BaselineRoundTripsAndRejectsBadFiles) {
  Baseline b{
      .model = "stories260K",
      .backend = "openai",
      .endpoint = "/v1/completions",
      .created = "20260101-000000",
      .entries = {
          {.prompt = "Once upon a time",
           .max_tokens = 16,
           .temperature = 0,
           .seed = {},
           .expected = "there was \"a\" cat\n"},
          {.prompt = "Lily", .max_tokens = 4, .temperature = 0.7, .seed = 3, .expected = "é"}}};
  auto back = baseline_from_json(baseline_to_json(b));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->model, "stories260K");
  EXPECT_EQ(back->endpoint, "/v1/completions");
  ASSERT_EQ(back->entries.size(), 2u);
  EXPECT_EQ(back->entries[0].expected, "there was \"a\" cat\n");
  EXPECT_FALSE(back->entries[0].seed.has_value());
  EXPECT_EQ(back->entries[1].seed, 3);
  EXPECT_DOUBLE_EQ(back->entries[1].temperature, 0.7);
  EXPECT_FALSE(baseline_from_json("[]"));
  EXPECT_FALSE(baseline_from_json(R"({"entries":[{"prompt":"x"}]})"));  // no expected
}

TEST(Regress, PromptsFromTextAndJson) {
  RegressEntry defaults{
      .prompt = {}, .max_tokens = 32, .temperature = 0, .seed = {}, .expected = {}};
  auto lines = prompts_from_text("first\r\n\nsecond\n", false, defaults);
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[1].prompt, "second");
  EXPECT_EQ((*lines)[1].max_tokens, 32);
  auto json = prompts_from_text(
      R"(["a", {"prompt": "b", "max_tokens": 5, "temperature": 0.5, "seed": 9}])", true, defaults);
  ASSERT_TRUE(json);
  ASSERT_EQ(json->size(), 2u);
  EXPECT_EQ((*json)[0].max_tokens, 32);
  EXPECT_EQ((*json)[1].max_tokens, 5);
  EXPECT_EQ((*json)[1].seed, 9);
  EXPECT_FALSE(prompts_from_text("", false, defaults));
  EXPECT_FALSE(prompts_from_text(R"([{"max_tokens": 5}])", true, defaults));
}

}  // namespace
}  // namespace ondol::bench

#include "engine/tokenizer/pre_tokenizer.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ondol::engine {
namespace {

std::vector<std::string> split(std::string_view name, std::string_view text) {
  Result<PreTokenizerSpec> spec = pre_tokenizer_spec(name);
  EXPECT_TRUE(spec.ok()) << name;
  Result<PreTokenizer> pre = PreTokenizer::create(*spec);
  EXPECT_TRUE(pre.ok()) << pre.error().message;
  std::vector<std::string_view> views;
  pre->split(text, views);
  return {views.begin(), views.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizerTest, Gpt2Pattern) {
  EXPECT_EQ(split("gpt-2", "Hello world's  test\n\n 123!!"),
            (Pieces{"Hello", " world", "'s", " ", " test", "\n\n", " 123", "!!"}));
  EXPECT_EQ(split("gpt-2", "   x"), (Pieces{"  ", " x"}));
  EXPECT_EQ(split("gpt-2", ""), Pieces{});
}

TEST(PreTokenizerTest, Llama3PatternGroupsDigitsByThreeAndIgnoresCase) {
  EXPECT_EQ(split("llama-bpe", "I'VE 12345 abc\n\n  x"),
            (Pieces{"I", "'VE", " ", "123", "45", " abc", "\n\n", " ", " x"}));
  EXPECT_TRUE(pre_tokenizer_spec("llama3")->ignore_merges);
  EXPECT_FALSE(pre_tokenizer_spec("qwen2")->ignore_merges);
  EXPECT_EQ(split("qwen2", "x 123"), (Pieces{"x", " ", "1", "2", "3"}));
}

TEST(PreTokenizerTest, PatternsApplyInSequenceToPieces) {
  // starcoder: digits are isolated first, then the GPT-2 pattern runs inside each piece.
  EXPECT_EQ(split("starcoder", "ab12 cd"), (Pieces{"ab", "1", "2", " cd"}));
  // deepseek-coder: newlines, letters, punctuation, CJK runs, single digits.
  EXPECT_EQ(split("deepseek-coder", "x=1\n我想"), (Pieces{"x", "=", "1", "\n", "我想"}));
}

TEST(PreTokenizerTest, WhitespaceIsTheUnicodeProperty) {
  // U+0085 is White_Space; ICU's plain \s would have grouped it with punctuation.
  EXPECT_EQ(split("gpt-2", "a\u0085\u0085b"), (Pieces{"a", "\u0085", "\u0085", "b"}));
}

TEST(PreTokenizerTest, PiecesCoverArbitraryBytes) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", " ", "\n", "1", "'s", "ü", "🦙", "\xFF", "\xE2\x96", "!"};
  for (std::string_view name : {"gpt-2", "llama3", "deepseek-llm", "falcon", "default"}) {
    for (int round = 0; round < 50; ++round) {
      std::string text;
      for (int i = 0; i < 30; ++i) text += alphabet[rng() % std::size(alphabet)];
      std::string joined;
      for (const std::string& p : split(name, text)) {
        EXPECT_FALSE(p.empty());
        joined += p;
      }
      EXPECT_EQ(joined, text) << name;
    }
  }
}

// The hand-written GPT-2/llama3/qwen2 matchers against the same patterns on ICU's engine, on
// random text over an alphabet that exercises every alternative and its backtracking.
TEST(PreTokenizerTest, BuiltinMatchersAgreeWithTheRegexEngine) {
  const std::string alphabet[] = {"a",    "Z",      "é",    "ſ",        "я",      "我", " ", "  ",
                                  "\t",   "\n",     "\r",   "\u0085",   "\u3000", "1",  "٣", "½",
                                  "'",    "'s",     "'S",   "'ll",      "'Re",    "'d", "!", "?!",
                                  "🦙", "\u200d", "\xFF", "\xE2\x96", ".",      "-",  "_", "$"};
  std::mt19937 rng(11);
  for (std::string_view name : {"gpt-2", "llama3", "qwen2"}) {
    PreTokenizerSpec spec = *pre_tokenizer_spec(name);
    Result<PreTokenizer> fast = PreTokenizer::create(spec);
    spec.use_builtin_matchers = false;
    Result<PreTokenizer> regex = PreTokenizer::create(spec);
    ASSERT_TRUE(fast.ok() && regex.ok());
    for (int round = 0; round < 2000; ++round) {
      std::string text;
      const int length = 1 + static_cast<int>(rng() % 24);
      for (int i = 0; i < length; ++i) text += alphabet[rng() % std::size(alphabet)];
      std::vector<std::string_view> a;
      std::vector<std::string_view> b;
      fast->split(text, a);
      regex->split(text, b);
      ASSERT_EQ(Pieces(a.begin(), a.end()), Pieces(b.begin(), b.end())) << name << ": " << text;
    }
  }
}

TEST(PreTokenizerTest, ReportsUnknownNamesAndBadPatterns) {
  Result<PreTokenizerSpec> unknown = pre_tokenizer_spec("no-such-pre");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("no-such-pre"), std::string::npos);
  Result<PreTokenizer> bad = PreTokenizer::create(PreTokenizerSpec{.patterns = {"[a-"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("does not compile"), std::string::npos);
}

}  // namespace
}  // namespace ondol::engine

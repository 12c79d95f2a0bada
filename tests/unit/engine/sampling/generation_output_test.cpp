// GenerationOutput on a real SentencePiece vocabulary (../shared/fixtures/tokenizer), fed the
// ids of a known text as if the sampler had produced them.
#include "engine/sampling/generation_output.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"

namespace ondol::engine {
namespace {

class GenerationOutputTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<GgufFile> file = GgufFile::open(std::string(ONDOL_SHARED_DIR) +
                                           "/fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
    ASSERT_TRUE(file.ok()) << file.error().message;
    Result<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
    tokenizer_ = new Tokenizer(std::move(tokenizer).value());
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  struct Run {
    std::vector<std::string> deltas;
    std::string text;
    FinishReason reason = FinishReason::None;
    int num_pushed = 0;
  };
  // Pushes ids until the output finishes.
  static Run run(const SamplingParams& params, const std::vector<TokenId>& ids) {
    GenerationOutput output(*tokenizer_, params, {.strip_leading_space = true});
    Run r;
    for (TokenId id : ids) {
      std::string delta;
      r.reason = output.push(id, delta);
      ++r.num_pushed;
      r.deltas.push_back(delta);
      r.text += delta;
      if (r.reason != FinishReason::None) break;
    }
    EXPECT_EQ(output.num_tokens(), r.num_pushed);
    return r;
  }
  static std::vector<TokenId> encode(std::string_view text) {
    return tokenizer_->encode(text, {.add_special = false});
  }

  static Tokenizer* tokenizer_;
};
Tokenizer* GenerationOutputTest::tokenizer_ = nullptr;

TEST_F(GenerationOutputTest, StreamsTheDecodedTextAndEndsOnEos) {
  const std::string text = "Hello world. The end is near.";
  std::vector<TokenId> ids = encode(text);
  ids.push_back(tokenizer_->eos());
  ids.push_back(encode(" never")[0]);  // after eos: not pushed
  const Run r = run({.max_tokens = 100}, ids);
  EXPECT_EQ(r.text, text);
  EXPECT_EQ(r.reason, FinishReason::Eos);
  EXPECT_EQ(r.num_pushed, static_cast<int>(ids.size()) - 1);
  EXPECT_EQ(r.deltas.back(), "");  // eos itself is not text
  EXPECT_EQ(to_openai(r.reason), "stop");
}

TEST_F(GenerationOutputTest, StopStringAcrossTokensIsNotEmitted) {
  const std::vector<TokenId> ids = encode("Hello world. The end is near.");
  const Run r = run({.max_tokens = 100, .stop = {"end is"}}, ids);
  EXPECT_EQ(r.reason, FinishReason::StopString);
  EXPECT_EQ(r.text, "Hello world. The ");
  EXPECT_LT(r.num_pushed, static_cast<int>(ids.size()));
}

TEST_F(GenerationOutputTest, LengthFlushesHeldText) {
  // "Hello wor" is a prefix of the stop string, so it is held until max_tokens ends the run.
  const std::vector<TokenId> ids = encode("Hello world");
  const std::string two = tokenizer_->decode(std::vector<TokenId>(ids.begin(), ids.begin() + 2));
  const Run r = run({.max_tokens = 2, .stop = {"Hello world!"}}, ids);
  EXPECT_EQ(r.reason, FinishReason::Length);
  EXPECT_EQ(to_openai(r.reason), "length");
  EXPECT_EQ(r.deltas.front(), "");
  EXPECT_EQ(r.text, two);
}

TEST_F(GenerationOutputTest, StopTokenIdsAndIgnoreEos) {
  std::vector<TokenId> ids = encode("one two three");
  const TokenId three = ids.back();
  Run r = run({.max_tokens = 100, .stop_token_ids = {three}}, ids);
  EXPECT_EQ(r.reason, FinishReason::StopToken);
  EXPECT_EQ(r.text, "one two");

  // With ignore_eos an eos token is just another (invisible) token.
  ids = encode("one");
  ids.push_back(tokenizer_->eos());
  const std::vector<TokenId> more = encode("two");  // SPM: "▁two", a space then "two"
  ids.insert(ids.end(), more.begin(), more.end());
  r = run({.ignore_eos = true, .max_tokens = static_cast<int32_t>(ids.size())}, ids);
  EXPECT_EQ(r.reason, FinishReason::Length);
  EXPECT_EQ(r.text, "one two");
}

}  // namespace
}  // namespace ondol::engine

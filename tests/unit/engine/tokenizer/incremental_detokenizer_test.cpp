#include "engine/tokenizer/incremental_detokenizer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/utf8.h"

namespace ondol::engine {
namespace {

const std::string kFixtures = std::string(ONDOL_SHARED_DIR) + "/fixtures/tokenizer/";

class IncrementalDetokenizerTest : public ::testing::Test {
 protected:
  static Tokenizer load(const std::string& name) {
    Result<GgufFile> file = GgufFile::open(kFixtures + "ggml-vocab-" + name + ".gguf");
    EXPECT_TRUE(file.ok());
    Result<Tokenizer> t = Tokenizer::from_gguf(*file);
    EXPECT_TRUE(t.ok());
    return std::move(t).value();
  }

  // Streams `ids` one at a time; every chunk must be valid UTF-8 on its own.
  static std::string stream(const Tokenizer& t, const std::vector<TokenId>& ids,
                            std::vector<std::string>* chunks = nullptr) {
    IncrementalDetokenizer detok(t);
    std::string all;
    for (TokenId id : ids) {
      std::string chunk;
      detok.push(id, chunk);
      EXPECT_TRUE(utf8::is_valid(chunk)) << "chunk after token " << id;
      if (chunks != nullptr) chunks->push_back(chunk);
      all += chunk;
    }
    std::string tail;
    detok.flush(tail);
    all += tail;
    return all;
  }
};

TEST_F(IncrementalDetokenizerTest, HoldsBackAnEmojiSplitOverByteTokens) {
  const Tokenizer t = load("llama-spm");
  // "🦙" has no token in this vocabulary: it is spelled by four <0xXX> byte tokens.
  const std::vector<TokenId> ids =
      t.encode(" this is 🦙.cpp", EncodeOptions{.add_special = false});
  ASSERT_EQ(ids, (std::vector<TokenId>{29871, 445, 338, 29871, 243, 162, 169, 156, 29889, 8223}));
  std::vector<std::string> chunks;
  const std::string text = stream(t, ids, &chunks);
  EXPECT_EQ(chunks[4], "");
  EXPECT_EQ(chunks[5], "");
  EXPECT_EQ(chunks[6], "");
  EXPECT_EQ(chunks[7], "🦙");
  EXPECT_EQ(text, "  this is 🦙.cpp");  // stream text keeps the prefix space
}

TEST_F(IncrementalDetokenizerTest, MatchesWholeDecodeForByteLevelBpe) {
  const Tokenizer t = load("gpt-2");
  const std::string text = "Cửa Việt 😶\u200d🌫️ нещо 我想在apple工作 ～";
  const std::vector<TokenId> ids = t.encode(text, EncodeOptions{.add_special = false});
  EXPECT_EQ(stream(t, ids), text);
}

TEST_F(IncrementalDetokenizerTest, ReplacesBytesThatCanNeverBeValid) {
  const Tokenizer t = load("llama-spm");
  const TokenId byte_ff = 3 + 0xFF;  // <0xFF>
  const TokenId byte_e2 = 3 + 0xE2;  // <0xE2>: leads a 3-byte sequence
  const TokenId a = t.vocab().find("a");
  ASSERT_NE(a, kNoToken);
  EXPECT_EQ(stream(t, {byte_ff, a}),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(stream(t, {byte_e2, a}),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(stream(t, {a, byte_e2}), "a\xEF\xBF\xBD");  // flush releases the incomplete tail

  IncrementalDetokenizer detok(t);
  std::string out;
  detok.push(byte_e2, out);
  EXPECT_EQ(out, "");
  EXPECT_EQ(detok.num_pending_bytes(), 1u);
}

TEST_F(IncrementalDetokenizerTest, OptionallyStripsTheFirstSpace) {
  const Tokenizer t = load("llama-spm");
  const std::vector<TokenId> ids = t.encode("Hello world", EncodeOptions{.add_special = true});
  IncrementalDetokenizer detok(t, DetokenizerOptions{.strip_leading_space = true});
  std::string out;
  for (TokenId id : ids) detok.push(id, out);
  EXPECT_EQ(out, "Hello world");
  IncrementalDetokenizer special(t, DetokenizerOptions{.render_special = true});
  std::string rendered;
  for (TokenId id : ids) special.push(id, rendered);
  EXPECT_EQ(rendered, "<s> Hello world");
}

}  // namespace
}  // namespace ondol::engine

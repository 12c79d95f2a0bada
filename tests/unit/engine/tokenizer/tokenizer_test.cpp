#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"

namespace ondol::engine {
namespace {

const std::string kShared = ONDOL_SHARED_DIR;

// A GgufFile kept alive beside the tokenizer built from it (the tokenizer copies what it
// needs, so the file could go; tests keep it for metadata checks).
struct Loaded {
  GgufFile file;
  Tokenizer tokenizer;
};

Loaded load(const std::string& path) {
  Result<GgufFile> file = GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << file.error().message;
  Result<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  return Loaded{std::move(file).value(), std::move(tokenizer).value()};
}

Loaded stories() {
  return load(kShared + "/models/stories260K.gguf");
}
Loaded fixture(const std::string& name) {
  return load(kShared + "/fixtures/tokenizer/ggml-vocab-" + name + ".gguf");
}

const std::vector<std::string> kRoundTripTexts = {
    "Once upon a time",
    "",
    " ",
    "  two leading spaces",
    "trailing space ",
    "line one\nline two\n\n\ttabbed",
    "Äpfel, Cửa Việt, нещо на Български",
    "emoji 🦙🚀 and 😶\u200d🌫️ zwj",
    "我想在apple工作1314151天～",
    "numbers 3333333 and 12,345.67",
    "'quotes' \"double\" y'all it's",
};

TEST(TokenizerTest, Stories260KEncodesWithBos) {
  Loaded m = stories();
  const Tokenizer& t = m.tokenizer;
  EXPECT_EQ(t.vocab_size(), 512u);
  EXPECT_EQ(t.bos(), 1);
  EXPECT_EQ(t.eos(), 2);
  EXPECT_TRUE(t.vocab().add_bos());
  const std::vector<TokenId> ids = t.encode("Once upon a time");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);
  // Plausible: the 512-entry vocabulary still merges whole pieces (fewer tokens than
  // characters), spells the text with "▁" for spaces, and needs no byte fallback.
  EXPECT_LT(ids.size(), 12u);
  std::string spelled;
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(t.vocab().type(ids[i]), TokenType::Normal) << ids[i];
    spelled += t.vocab().text(ids[i]);
  }
  EXPECT_EQ(spelled,
            "\xE2\x96\x81Once\xE2\x96\x81upon\xE2\x96\x81"
            "a\xE2\x96\x81time");
  EXPECT_EQ(t.decode(ids), "Once upon a time");
  // The reference continuation's format: BOS rendered, the first word's space kept.
  EXPECT_EQ(t.decode(ids, DecodeOptions{.render_special = true}), "<s> Once upon a time");
}

TEST(TokenizerTest, Stories260KReferenceTextRoundTrips) {
  std::ifstream in(kShared + "/fixtures/reference/stories260K.greedy.once-upon-a-time.txt");
  std::stringstream s;
  s << in.rdbuf();
  const std::string reference = s.str();
  const std::string prefix = "<s> ";
  ASSERT_EQ(reference.substr(0, prefix.size()), prefix);
  const std::string text = reference.substr(prefix.size());
  Loaded m = stories();
  const std::vector<TokenId> ids = m.tokenizer.encode(text);
  EXPECT_EQ(m.tokenizer.decode(ids, DecodeOptions{.render_special = true}), reference);
}

TEST(TokenizerTest, DecodeInvertsEncode) {
  for (const std::string name : {"stories", "llama-spm", "phi-3", "gpt-2", "mpt", "falcon",
                                 "starcoder", "deepseek-llm", "deepseek-coder"}) {
    Loaded m = name == "stories" ? stories() : fixture(name);
    for (const std::string& text : kRoundTripTexts) {
      const std::vector<TokenId> ids = m.tokenizer.encode(text);
      EXPECT_EQ(m.tokenizer.decode(ids), text) << name;
    }
    // Bytes that are not UTF-8 survive where the vocabulary spells every byte (SentencePiece
    // byte fallback, GPT-2's full alphabet); elsewhere the bytes no token spells (0xFF, 0xFE)
    // are dropped, and never turn into a control token such as <|endoftext|>.
    const std::string binary = "bad \xFF\xFE bytes \xE2\x96";
    const std::vector<TokenId> ids =
        m.tokenizer.encode(binary, EncodeOptions{.add_special = false});
    for (TokenId id : ids) EXPECT_NE(m.tokenizer.vocab().type(id), TokenType::Control) << name;
    const bool spells_every_byte =
        name == "stories" || name == "llama-spm" || name == "phi-3" || name == "gpt-2";
    EXPECT_EQ(m.tokenizer.decode(ids), spells_every_byte ? binary : "bad  bytes \xE2\x96") << name;
  }
}

TEST(TokenizerTest, ControlTokensOnlyWhenParsingSpecial) {
  Loaded m = fixture("llama-spm");
  const Tokenizer& t = m.tokenizer;
  const std::vector<TokenId> parsed =
      t.encode("<s>Hello</s>", EncodeOptions{.add_special = false, .parse_special = true});
  EXPECT_EQ(parsed, (std::vector<TokenId>{1, 15043, 2}));  // "▁Hello" after the special
  const std::vector<TokenId> literal =
      t.encode("<s>Hello</s>", EncodeOptions{.add_special = false, .parse_special = false});
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 1), 0);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 2), 0);
  EXPECT_EQ(t.decode(literal), "<s>Hello</s>");
  EXPECT_EQ(t.decode(parsed), "Hello");
  EXPECT_EQ(t.decode(parsed, DecodeOptions{.render_special = true}), "<s> Hello</s>");
}

TEST(TokenizerTest, UserDefinedTokensAlwaysMatch) {
  Loaded phi = fixture("phi-3");
  // "</s>" is a user-defined token in phi-3's vocabulary; "<|end|>" is a control token.
  const std::vector<TokenId> ids = phi.tokenizer.encode(
      "a</s><|end|>", EncodeOptions{.add_special = false, .parse_special = false});
  EXPECT_NE(std::find(ids.begin(), ids.end(), 2), ids.end());
  EXPECT_EQ(std::find(ids.begin(), ids.end(), 32007), ids.end());
  EXPECT_TRUE(phi.tokenizer.is_end_of_generation(32000));  // eos <|endoftext|>
  EXPECT_TRUE(phi.tokenizer.is_end_of_generation(32007));  // <|end|>
  EXPECT_FALSE(phi.tokenizer.is_end_of_generation(1));
  Loaded mpt = fixture("mpt");
  EXPECT_EQ(mpt.tokenizer.encode("a    b", EncodeOptions{.add_special = false}),
            (std::vector<TokenId>{66, 50274, 67}));  // "    " is an added token
}

TEST(TokenizerTest, AddsBosAndEosAsTheVocabularySays) {
  Loaded bert = fixture("bert-bge");
  const std::vector<TokenId> ids = bert.tokenizer.encode("hello");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 101);  // [CLS]
  EXPECT_EQ(ids.back(), 102);   // [SEP]
  EXPECT_EQ(bert.tokenizer.decode(ids), "hello");
  Loaded gpt2 = fixture("gpt-2");
  EXPECT_FALSE(gpt2.tokenizer.vocab().add_bos());
  EXPECT_EQ(gpt2.tokenizer.encode("Hello"), (std::vector<TokenId>{15496}));
  Loaded coder = fixture("deepseek-coder");
  EXPECT_EQ(coder.tokenizer.encode("a").front(), 32013);
}

TEST(TokenizerTest, RefusesVocabulariesItCannotServe) {
  auto build = [](auto&& fill) {
    GgufWriter w;
    fill(w);
    Result<std::vector<std::byte>> bytes = w.write_memory();
    EXPECT_TRUE(bytes.ok());
    return std::move(bytes).value();
  };
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  const std::vector<std::byte> none = build([](GgufWriter&) {});
  EXPECT_FALSE(Tokenizer::from_gguf(*GgufFile::open_memory(none)).ok());
  const std::vector<std::byte> rwkv = build([&](GgufWriter& w) {
    w.set_string("tokenizer.ggml.model", "rwkv");
    w.set_string_array("tokenizer.ggml.tokens", tokens);
  });
  Result<Tokenizer> r = Tokenizer::from_gguf(*GgufFile::open_memory(rwkv));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unsupported tokenizer model 'rwkv'"), std::string::npos);
  const std::vector<std::byte> pre = build([&](GgufWriter& w) {
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "martian");
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_string_array("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
  });
  r = Tokenizer::from_gguf(*GgufFile::open_memory(pre));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'martian'"), std::string::npos);
  const std::vector<std::byte> mismatched = build([&](GgufWriter& w) {
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_f32_array("tokenizer.ggml.scores", std::vector<float>{0.0f});
  });
  EXPECT_FALSE(Tokenizer::from_gguf(*GgufFile::open_memory(mismatched)).ok());
}

TEST(TokenizerTest, EncodesConcurrentlyFromManyThreads) {
  Loaded m = fixture("deepseek-llm");  // a regex pre-tokenizer with several patterns
  std::vector<std::vector<TokenId>> expected;
  for (const std::string& text : kRoundTripTexts) expected.push_back(m.tokenizer.encode(text));
  constexpr int kThreads = 4;
  constexpr int kRounds = 50;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        for (size_t i = 0; i < kRoundTripTexts.size(); ++i) {
          mismatches[t] += m.tokenizer.encode(kRoundTripTexts[i]) != expected[i];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(TokenizerTest, SyntheticBpeMergesByRank) {
  // Byte-level BPE over a tiny alphabet: "a b" outranks "b c", so "abc" -> "ab" + "c", and
  // a merge into a token the vocabulary lacks never applies.
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  const std::vector<std::string> tokens = {"a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa"};
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_string_array("tokenizer.ggml.merges",
                     std::vector<std::string>{"a b", "b c", "Ġ a", "ab c", "c c"});
  Result<std::vector<std::byte>> bytes = w.write_memory();
  ASSERT_TRUE(bytes.ok());
  Result<GgufFile> file = GgufFile::open_memory(*bytes);
  ASSERT_TRUE(file.ok());
  Result<Tokenizer> t = Tokenizer::from_gguf(*file);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->encode("abc"), (std::vector<TokenId>{5}));         // a b -> ab, ab c -> abc
  EXPECT_EQ(t->encode("bcab"), (std::vector<TokenId>{4, 3}));     // bc, ab
  EXPECT_EQ(t->encode("cc a"), (std::vector<TokenId>{2, 2, 7}));  // no "cc" token
  EXPECT_EQ(t->decode(t->encode("cc a")), "cc a");
}

}  // namespace
}  // namespace ondol::engine

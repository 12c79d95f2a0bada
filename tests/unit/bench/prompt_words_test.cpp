// The random datasets' claim (docs/bench.md): every prompt word, after a space, is one token in
// the common vocabularies, so a prompt of N words is N tokens. Checked with ondol's tokenizer on
// the vocab-only GGUFs in ../shared/fixtures/tokenizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "bench/dataset.h"
#include "bench/prompt_tokenizer.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace ondol::bench {
namespace {

TEST(PromptWords, EachWordIsOneTokenInTheFixtureVocabularies) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(ONDOL_SHARED_DIR) / "fixtures/tokenizer";
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " not found";
  int num_vocabularies = 0;
  for (const auto& file : fs::directory_iterator(dir)) {
    if (file.path().extension() != ".gguf") continue;
    auto gguf = engine::GgufFile::open(file.path().string());
    ASSERT_TRUE(gguf) << file.path();
    auto tokenizer = engine::Tokenizer::from_gguf(*gguf);
    ASSERT_TRUE(tokenizer) << file.path() << ": " << tokenizer.error().message;
    ++num_vocabularies;
    const engine::EncodeOptions plain{.add_special = false};
    size_t base = tokenizer->encode("the", plain).size();
    for (std::string_view word : prompt_words()) {
      // After another word, so that the word carries its leading space as in a prompt.
      std::string text = "the " + std::string(word);
      EXPECT_EQ(tokenizer->encode(text, plain).size() - base, 1u)
          << "'" << word << "' in " << file.path().filename();
    }
    std::mt19937_64 rng(1);
    EXPECT_EQ(tokenizer->encode(random_words(rng, 1000), plain).size(), 1000u)
        << file.path().filename();
  }
  EXPECT_GE(num_vocabularies, 10);
}

TEST(PromptWords, TokenizerFlagGivesExactLengthsWithATinyVocabulary) {
  // stories260K's 512-token vocabulary splits most words: without --tokenizer a 64-word prompt
  // is about 150 tokens; with it, 64.
  std::string model = std::string(ONDOL_SHARED_DIR) + "/models/stories260K.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " not found";
  auto tokenizer = load_gguf_tokenizer(model);
  ASSERT_TRUE(tokenizer) << tokenizer.error().message;
  auto samples = random_dataset({.input_len = 64,
                                 .output_len = 8,
                                 .range_ratio = 0,
                                 .prefix_len = 0,
                                 .seed = 3,
                                 .tokenizer = tokenizer->get()},
                                20);
  ASSERT_TRUE(samples);
  for (const auto& s : *samples) {
    EXPECT_EQ((*tokenizer)->count(s.prompt), 64) << s.prompt;
    EXPECT_EQ(s.prompt_len, 64);
  }
  EXPECT_FALSE(load_gguf_tokenizer("/nonexistent.gguf"));
}

}  // namespace
}  // namespace ondol::bench

// THE golden test: stories260K, "Once upon a time" with BOS, 100 greedy tokens, compared exactly
// with the reference continuation in ../shared/fixtures/reference/.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "engine/kernels/kernel_table.h"
#include "engine/model/llama_model.h"
#include "engine/tokenizer/tokenizer.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using testing::shared_path;
using testing::SingleSequence;

// The reference file holds BOS + the prompt's 4 tokens + 120 greedy tokens, decoded, and a line
// end. (Its first 100 generated tokens end at "...didn't know what to do"; the file goes on to
// "...but I can'", which is token 120.)
constexpr int kNumGenerated = 120;

std::string read_reference() {
  std::ifstream in(shared_path("fixtures/reference/stories260K.greedy.once-upon-a-time.txt"),
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct GoldenCase {
  const char* name;
  kernels::Isa isa;
  KvDtype kv_dtype;
  int num_threads;
};

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, Stories260KGreedyMatchesReference) {
  const GoldenCase& param = GetParam();
  const kernels::KernelTable* kernels = kernels::kernels_for(param.isa);
  if (kernels == nullptr) GTEST_SKIP() << "CPU lacks this ISA level";
  auto model = LlamaModel::open(shared_path("models/stories260K.gguf"),
                                {.num_threads = param.num_threads, .kernels = kernels});
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto tokenizer = Tokenizer::from_gguf((*model)->file());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;

  std::vector<TokenId> tokens = tokenizer->encode("Once upon a time");
  ASSERT_FALSE(tokens.empty());
  ASSERT_EQ(tokens.front(), tokenizer->bos());
  SingleSequence seq(**model, param.kv_dtype);
  std::vector<TokenId> generated = seq.greedy(tokens, kNumGenerated);
  tokens.insert(tokens.end(), generated.begin(), generated.end());

  const std::string text =
      tokenizer->decode(tokens, {.render_special = true, .strip_leading_space = false});
  std::string reference = read_reference();
  ASSERT_FALSE(reference.empty());
  ASSERT_EQ(reference.back(), '\n');
  reference.pop_back();
  EXPECT_EQ(text, reference);
}

INSTANTIATE_TEST_SUITE_P(
    Levels, GoldenTest,
    ::testing::Values(GoldenCase{"scalar_f32kv", kernels::Isa::kScalar, KvDtype::kF32, 1},
                      GoldenCase{"avx2_f32kv", kernels::Isa::kAvx2, KvDtype::kF32, 2},
                      GoldenCase{"avx512_f32kv", kernels::Isa::kAvx512, KvDtype::kF32, 2},
                      GoldenCase{"avx512_f16kv", kernels::Isa::kAvx512, KvDtype::kF16, 2}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ondol::engine

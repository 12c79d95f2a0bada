// Repacking at load: on a kernel table with a kQ8_0x16 kernel every eligible Q8_0 matmul weight
// is a repacked copy while token_embd stays the GGUF tensor (also when the output is tied to
// it); other tables keep every matrix as stored; both give the same model to rounding.
#include <gtest/gtest.h>

#include <vector>

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/repacked_weights.h"
#include "engine/model/dummy_model.h"
#include "engine/model/llama_model.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using kernels::WeightLayout;
using kernels::WeightMatrix;
using testing::argmax;
using testing::cosine_similarity;
using testing::TempDir;

// tiny with the output projection tied to token_embd.
std::string write_tied_tiny(const TempDir& dir) {
  DummyShape shape = *find_dummy_shape("tiny");
  shape.tied_embeddings = true;
  const std::string path = dir.file("tied.gguf");
  EXPECT_TRUE(write_dummy_model(shape, kernels::WeightType::kQ8_0, path, 11).ok());
  return path;
}

std::vector<const WeightMatrix*> matmul_weights(const ModelWeights& w) {
  std::vector<const WeightMatrix*> all = {&w.output};
  for (const LayerWeights& l : w.layers) {
    all.insert(all.end(), {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down});
  }
  return all;
}

const kernels::KernelTable* repacking_kernels() {
  const kernels::KernelTable* k = kernels::kernels_for(kernels::Isa::kAvx512);
  return k != nullptr && k->matmul_q8_0x16.run != nullptr ? k : nullptr;
}

TEST(RepackedWeightsModelTest, Q8_0MatricesAreRepackedAndTheEmbeddingIsNot) {
  const kernels::KernelTable* kernels = repacking_kernels();
  if (kernels == nullptr) GTEST_SKIP() << "no kQ8_0x16 kernel on this CPU";
  TempDir dir;
  auto model = LlamaModel::open(write_tied_tiny(dir), {.num_threads = 2, .kernels = kernels});
  ASSERT_TRUE(model.ok()) << model.error().message;
  const ModelWeights& w = (*model)->weights();
  ASSERT_TRUE(w.tied_output);
  for (const WeightMatrix* m : matmul_weights(w)) EXPECT_EQ(m->layout, WeightLayout::kQ8_0x16);
  EXPECT_EQ(w.token_embd.layout, WeightLayout::kRows);
  EXPECT_NE(w.output.data, w.token_embd.data);
}

TEST(RepackedWeightsModelTest, TablesWithoutTheKernelKeepTheRows) {
  TempDir dir;
  const std::string path = write_tied_tiny(dir);
  for (kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2}) {
    const kernels::KernelTable* kernels = kernels::kernels_for(isa);
    if (kernels == nullptr) continue;
    auto model = LlamaModel::open(path, {.num_threads = 2, .kernels = kernels});
    ASSERT_TRUE(model.ok()) << model.error().message;
    for (const WeightMatrix* m : matmul_weights((*model)->weights())) {
      EXPECT_EQ(m->layout, WeightLayout::kRows) << kernels::isa_name(isa);
    }
  }
}

TEST(RepackedWeightsModelTest, RepackedModelMatchesTheScalarOne) {
  const kernels::KernelTable* kernels = repacking_kernels();
  if (kernels == nullptr) GTEST_SKIP() << "no kQ8_0x16 kernel on this CPU";
  TempDir dir;
  const std::string path = write_tied_tiny(dir);
  auto fast = LlamaModel::open(path, {.num_threads = 2, .kernels = kernels});
  auto scalar = LlamaModel::open(
      path, {.num_threads = 2, .kernels = kernels::kernels_for(kernels::Isa::kScalar)});
  ASSERT_TRUE(fast.ok() && scalar.ok());
  const std::vector<TokenId> prompt = {1, 298, 315, 421, 403, 407, 261, 378, 385, 328, 432};
  testing::SingleSequence a(**fast, KvDtype::kF32), b(**scalar, KvDtype::kF32);
  std::vector<float> la = a.feed(prompt), lb = b.feed(prompt);
  for (TokenId next : {TokenId{5}, TokenId{77}, TokenId{900}}) {
    EXPECT_GT(cosine_similarity(la, lb), 0.9999);
    EXPECT_EQ(argmax(la), argmax(lb));
    la = a.feed(std::span<const TokenId>(&next, 1));
    lb = b.feed(std::span<const TokenId>(&next, 1));
  }
}

}  // namespace
}  // namespace ondol::engine

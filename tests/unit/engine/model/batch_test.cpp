// Batched == unbatched: sequences run together in one forward (prefill beside decode, several
// slots) give the same logits, within float tolerance, and the same greedy tokens as each run
// alone.
#include <gtest/gtest.h>

#include <random>

#include "engine/kernels/isa.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/weight_type.h"
#include "engine/model/dummy_model.h"
#include "engine/model/llama_model.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using testing::argmax;
using testing::shared_path;
using testing::SingleSequence;
using testing::TempDir;

constexpr int kNumGenerated = 12;

struct SequenceRun {
  std::vector<TokenId> prompt;
  int start_step = 0;  // the step whose batch carries the whole prompt
  std::vector<TokenId> generated;
  std::vector<std::vector<float>> logits;  // after the prompt, then after each generated token
};

// Each sequence alone: prefill, then kNumGenerated - 1 decode steps.
void run_alone(LlamaModel& model, SequenceRun& run, KvDtype dtype = KvDtype::kF32) {
  SingleSequence seq(model, dtype);
  std::vector<float> logits = seq.feed(run.prompt);
  for (int i = 0; i < kNumGenerated; ++i) {
    run.logits.push_back(logits);
    run.generated.push_back(argmax(logits));
    if (i + 1 < kNumGenerated)
      logits = seq.feed(std::span<const TokenId>(&run.generated.back(), 1));
  }
}

// All sequences in one cache, each in its own slot; a step's batch holds the prompts that start
// then and one decode token of every running sequence.
void run_together(LlamaModel& model, std::vector<SequenceRun>& runs,
                  KvDtype dtype = KvDtype::kF32) {
  const int blocks_per_seq = (model.max_context() + kDefaultBlockSize - 1) / kDefaultBlockSize;
  auto cache =
      KvCache::create(model.kv_cache_config(blocks_per_seq * static_cast<int>(runs.size()), dtype));
  ASSERT_TRUE(cache.ok());
  std::vector<BlockTable> tables(runs.size());
  std::vector<const BlockTable*> table_ptrs;
  for (const BlockTable& t : tables) table_ptrs.push_back(&t);
  std::vector<float> logits(runs.size() * model.vocab_size());

  for (int step = 0;; ++step) {
    std::vector<BatchToken> batch;
    std::vector<size_t> logit_owner;
    for (size_t s = 0; s < runs.size(); ++s) {
      SequenceRun& r = runs[s];
      const int32_t slot = static_cast<int32_t>(s);
      const int32_t length = static_cast<int32_t>(r.prompt.size() + r.generated.size());
      if (step == r.start_step) {
        for (size_t i = 0; i < r.prompt.size(); ++i) {
          batch.push_back({.token = r.prompt[i],
                           .position = static_cast<int32_t>(i),
                           .seq_slot = slot,
                           .wants_logits = i + 1 == r.prompt.size()});
        }
        ASSERT_TRUE(cache->reserve(tables[s], length));
        logit_owner.push_back(s);
      } else if (step > r.start_step && r.generated.size() < kNumGenerated) {
        batch.push_back({.token = r.generated.back(),
                         .position = length - 1,
                         .seq_slot = slot,
                         .wants_logits = true});
        ASSERT_TRUE(cache->reserve(tables[s], length));
        logit_owner.push_back(s);
      }
    }
    if (batch.empty()) break;
    Status st = model.forward(Batch{batch}, KvView{&*cache, table_ptrs}, logits.data());
    ASSERT_TRUE(st.ok()) << st.error().message;
    for (size_t j = 0; j < logit_owner.size(); ++j) {
      SequenceRun& r = runs[logit_owner[j]];
      std::vector<float> row(logits.begin() + j * model.vocab_size(),
                             logits.begin() + (j + 1) * model.vocab_size());
      r.generated.push_back(argmax(row));
      r.logits.push_back(std::move(row));
    }
  }
}

void expect_batched_equals_unbatched(LlamaModel& model, std::vector<std::vector<TokenId>> prompts) {
  std::vector<SequenceRun> alone(prompts.size()), together(prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    alone[s].prompt = together[s].prompt = prompts[s];
    together[s].start_step = s == 2 ? 3 : 0;  // the third joins while the others decode
    run_alone(model, alone[s]);
  }
  run_together(model, together);
  for (size_t s = 0; s < prompts.size(); ++s) {
    SCOPED_TRACE("sequence " + std::to_string(s));
    ASSERT_EQ(together[s].generated, alone[s].generated);
    ASSERT_EQ(together[s].logits.size(), alone[s].logits.size());
    for (size_t i = 0; i < alone[s].logits.size(); ++i) {
      const std::vector<float>& a = alone[s].logits[i];
      const std::vector<float>& b = together[s].logits[i];
      float max_abs = 0;
      for (float v : a) max_abs = std::max(max_abs, std::abs(v));
      for (size_t j = 0; j < a.size(); ++j) {
        ASSERT_NEAR(a[j], b[j], 1e-4f * std::max(1.0f, max_abs)) << "step " << i << " logit " << j;
      }
    }
  }
}

TEST(BatchTest, Stories260KBatchedEqualsUnbatched) {
  auto model = LlamaModel::open(shared_path("models/stories260K.gguf"),
                                {.num_threads = 2, .max_batch_tokens = 64});
  ASSERT_TRUE(model.ok()) << model.error().message;
  // Three prompts, the third crossing a KV block boundary. The second is one token longer than
  // the first, so in each decode batch its position directly follows the first's: attention
  // must still keep the two sequences apart.
  expect_batched_equals_unbatched(**model, {{1, 298, 315, 421},
                                            {1, 403, 407, 261, 378},
                                            {1, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266,
                                             268, 388, 426, 338, 391, 266, 267, 337}});
}

std::vector<TokenId> random_prompt(std::mt19937& rng, int length, int vocab) {
  std::uniform_int_distribution<TokenId> token(3, vocab - 1);
  std::vector<TokenId> p = {1};
  for (int i = 1; i < length; ++i) p.push_back(token(rng));
  return p;
}

class DummyBatchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DummyBatchTest, BatchedEqualsUnbatched) {
  TempDir dir;
  const std::string path = dir.file("model.gguf");
  ASSERT_TRUE(write_dummy_model(GetParam(), kernels::WeightType::kQ8_0, path, 7).ok());
  auto model = LlamaModel::open(path, {.num_threads = 2, .max_batch_tokens = 96});
  ASSERT_TRUE(model.ok()) << model.error().message;
  std::mt19937 rng(42);
  const int vocab = (*model)->vocab_size();
  expect_batched_equals_unbatched(
      **model,
      {random_prompt(rng, 7, vocab), random_prompt(rng, 8, vocab), random_prompt(rng, 33, vocab)});
}

// The default F16 cache and the int8 one, bit for bit: each sequence alone on one thread against
// all of them in one batch on three threads. Attention work items are (sequence, range of KV
// heads) with one range per thread, so the split of the heads differs too (tiny: head_dim 64,
// the AVX-512 kernels' register paths, 2 KV heads of 2 query heads each).
TEST_P(DummyBatchTest, ReducedCachesBatchedOnThreeThreadsAreBitIdenticalToAloneOnOne) {
  TempDir dir;
  const std::string path = dir.file("model.gguf");
  ASSERT_TRUE(write_dummy_model(GetParam(), kernels::WeightType::kQ8_0, path, 7).ok());
  auto one = LlamaModel::open(path, {.num_threads = 1, .max_batch_tokens = 96});
  auto three = LlamaModel::open(path, {.num_threads = 3, .max_batch_tokens = 96});
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_TRUE(three.ok()) << three.error().message;
  for (KvDtype dtype : {KvDtype::kF16, KvDtype::kI8}) {
    SCOPED_TRACE(std::string(kv_dtype_name(dtype)));
    std::mt19937 rng(43);
    const int vocab = (*one)->vocab_size();
    std::vector<SequenceRun> alone(3), together(3);
    for (int s = 0; s < 3; ++s) {
      alone[s].prompt = together[s].prompt = random_prompt(rng, 7 + 13 * s, vocab);
      together[s].start_step = s == 2 ? 3 : 0;
      run_alone(**one, alone[s], dtype);
    }
    run_together(**three, together, dtype);
    for (int s = 0; s < 3; ++s) {
      SCOPED_TRACE("sequence " + std::to_string(s));
      EXPECT_EQ(together[s].generated, alone[s].generated);
      EXPECT_EQ(together[s].logits, alone[s].logits);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DummyBatchTest, ::testing::Values("tiny", "tiny-qwen2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace ondol::engine

namespace ondol::engine {
namespace {

// Chunked prefill: a prompt fed in chunks of 1, 3 or 5 tokens (each chunk attending to the
// cached ones before it; chunks under 4 tokens take the per-row attention path, longer ones the
// matmul path) ends with the same logits as the whole prompt in one forward, and decodes alike,
// with the F16 and the int8 cache.
class ChunkedPrefillTest : public ::testing::TestWithParam<size_t> {};

TEST_P(ChunkedPrefillTest, EqualsOneShot) {
  const size_t chunk = GetParam();
  auto model = LlamaModel::open(shared_path("models/stories260K.gguf"), {.num_threads = 2});
  ASSERT_TRUE(model.ok()) << model.error().message;
  const std::vector<TokenId> prompt = {1,   385, 328, 432, 358, 394, 261, 370, 432, 352,
                                       266, 268, 388, 426, 338, 391, 266, 267, 337};
  for (KvDtype dtype : {KvDtype::kF16, KvDtype::kI8}) {
    SCOPED_TRACE(std::string(kv_dtype_name(dtype)));
    SingleSequence whole(**model, dtype), chunked(**model, dtype);
    const std::vector<float> expected = whole.feed(prompt);
    std::vector<float> got;
    for (size_t i = 0; i < prompt.size(); i += chunk) {
      const size_t n = std::min(chunk, prompt.size() - i);
      got = chunked.feed(std::span<const TokenId>(prompt.data() + i, n));
    }
    ASSERT_EQ(got.size(), expected.size());
    // The two attention paths sum in different orders: compare relative to the largest logit.
    float max_abs = 0;
    for (float v : expected) max_abs = std::max(max_abs, std::abs(v));
    for (size_t j = 0; j < got.size(); ++j) {
      ASSERT_NEAR(got[j], expected[j], 1e-4f * std::max(1.0f, max_abs)) << j;
    }
    std::vector<float> a = expected, b = got;
    for (int step = 0; step < 10; ++step) {
      const TokenId next = argmax(a);
      ASSERT_EQ(argmax(b), next) << "step " << step;
      a = whole.feed(std::span<const TokenId>(&next, 1));
      b = chunked.feed(std::span<const TokenId>(&next, 1));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, ChunkedPrefillTest, ::testing::Values(1u, 3u, 5u));

// With roles named (as the engine names them), a token's logits are the same bits however its
// prompt was chunked, and a recompute after preemption (the prompt as kPrompt, then the
// generated tokens as kGenerated, several in one forward) gives the decoded tokens' own bits: at
// every ISA level this CPU has, with each KV dtype.
TEST(TokenRoles, ChunkingAndRecomputeAreBitIdentical) {
  const std::vector<TokenId> prompt = {1,   385, 328, 432, 358, 394, 261, 370, 432, 352,
                                       266, 268, 388, 426, 338, 391, 266, 267, 337};
  int levels = 0;
  for (kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    const kernels::KernelTable* table = kernels::kernels_for(isa);
    if (table == nullptr) continue;  // the CPU lacks it (isa_test checks the dispatcher)
    ++levels;
    auto model = LlamaModel::open(shared_path("models/stories260K.gguf"),
                                  {.num_threads = 2, .kernels = table});
    ASSERT_TRUE(model.ok()) << model.error().message;
    for (KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kI8}) {
      SCOPED_TRACE(std::string(kernels::isa_name(isa)) + " " + std::string(kv_dtype_name(dtype)));
      // Reference: the prompt in one forward, then 6 greedy tokens decoded one by one.
      SingleSequence whole(**model, dtype);
      std::vector<float> logits = whole.feed(prompt, TokenRole::kPrompt);
      std::vector<std::vector<float>> expected = {logits};
      std::vector<TokenId> generated;
      for (int i = 0; i < 6; ++i) {
        generated.push_back(argmax(logits));
        logits = whole.feed(std::span<const TokenId>(&generated.back(), 1), TokenRole::kGenerated);
        expected.push_back(logits);
      }
      for (size_t chunk : {1u, 2u, 3u, 5u, 8u}) {
        SCOPED_TRACE("chunk " + std::to_string(chunk));
        SingleSequence chunked(**model, dtype);
        std::vector<float> got;
        for (size_t i = 0; i < prompt.size(); i += chunk) {
          const size_t n = std::min(chunk, prompt.size() - i);
          got = chunked.feed(std::span<const TokenId>(prompt.data() + i, n), TokenRole::kPrompt);
        }
        ASSERT_EQ(got, expected[0]);
        for (size_t i = 0; i < generated.size(); ++i) {
          got = chunked.feed(std::span<const TokenId>(&generated[i], 1), TokenRole::kGenerated);
          ASSERT_EQ(got, expected[i + 1]) << "token " << i;
        }
      }
      // Recompute: the prompt, then all but the last generated token in one forward.
      SingleSequence recomputed(**model, dtype);
      recomputed.feed(prompt, TokenRole::kPrompt);
      std::vector<float> got = recomputed.feed(
          std::span<const TokenId>(generated.data(), generated.size() - 1), TokenRole::kGenerated);
      EXPECT_EQ(got, expected[generated.size() - 1]);
      got = recomputed.feed(std::span<const TokenId>(&generated.back(), 1), TokenRole::kGenerated);
      EXPECT_EQ(got, expected[generated.size()]);
    }
  }
  EXPECT_GE(levels, 1);
}

}  // namespace
}  // namespace ondol::engine

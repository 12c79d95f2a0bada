// Loading refuses what it cannot run with an Error that names the problem: missing or
// truncated files, unknown architectures, missing tensors, wrong shapes, bad hyper-parameters;
// forward() refuses batches that do not fit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/dummy_model.h"
#include "engine/model/llama_model.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using testing::TempDir;

constexpr int kDim = 32, kFfn = 64, kVocab = 40, kLayers = 2, kHeads = 4, kKvHeads = 2;

struct SmallModelSpec {
  std::string arch = "llama";
  std::string skip_tensor;     // leave this tensor out
  std::string reshape_tensor;  // give this tensor one extra row
  std::string skip_key;        // leave this metadata key out
  uint32_t head_count_kv = kKvHeads;
};

// A minimal F32 llama of zeros (norms of ones), with the defects `spec` asks for.
std::string write_small_model(const TempDir& dir, const SmallModelSpec& spec) {
  GgufWriter w;
  const std::string p = spec.arch + ".";
  w.set_string("general.architecture", spec.arch);
  auto set = [&](const std::string& key, uint32_t v) {
    if (key != spec.skip_key) w.set_u32(key, v);
  };
  set(p + "context_length", 64);
  set(p + "embedding_length", kDim);
  set(p + "feed_forward_length", kFfn);
  set(p + "block_count", kLayers);
  set(p + "attention.head_count", kHeads);
  set(p + "attention.head_count_kv", spec.head_count_kv);
  auto add = [&](const std::string& name, uint64_t cols, uint64_t rows) {
    if (name == spec.skip_tensor) return;
    if (name == spec.reshape_tensor) rows += 1;
    std::vector<uint64_t> ne = {cols};
    if (rows > 0) ne.push_back(rows);
    const bool norm = rows == 0;
    w.add_tensor(name, TensorType::F32, ne, [norm](std::span<std::byte> out) {
      if (norm) {
        auto* f = reinterpret_cast<float*>(out.data());
        std::fill(f, f + out.size() / 4, 1.0f);
      }
    });
  };
  const int head_dim = kDim / kHeads;
  add("token_embd.weight", kDim, kVocab);
  for (int l = 0; l < kLayers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", kDim, 0);
    add(b + "attn_q.weight", kDim, kDim);
    add(b + "attn_k.weight", kDim, kKvHeads * head_dim);
    add(b + "attn_v.weight", kDim, kKvHeads * head_dim);
    add(b + "attn_output.weight", kDim, kDim);
    add(b + "ffn_norm.weight", kDim, 0);
    add(b + "ffn_gate.weight", kDim, kFfn);
    add(b + "ffn_up.weight", kDim, kFfn);
    add(b + "ffn_down.weight", kFfn, kDim);
  }
  add("output_norm.weight", kDim, 0);
  const std::string path = dir.file("small.gguf");
  EXPECT_TRUE(w.write_file(path).ok());
  return path;
}

std::string load_error(const std::string& path) {
  auto model = LlamaModel::open(path, {});
  if (model.ok()) return "";
  return model.error().message;
}

TEST(LoadErrorsTest, TheSmallModelLoads) {
  TempDir dir;
  auto model = LlamaModel::open(write_small_model(dir, {}), {});
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_TRUE((*model)->weights().tied_output);
  EXPECT_EQ((*model)->config().vocab_size, kVocab);
  EXPECT_EQ((*model)->config().head_dim, kDim / kHeads);
}

TEST(LoadErrorsTest, MissingFile) {
  TempDir dir;
  EXPECT_NE(load_error(dir.file("absent.gguf")), "");
}

TEST(LoadErrorsTest, MissingTensorIsNamed) {
  TempDir dir;
  const std::string msg =
      load_error(write_small_model(dir, {.skip_tensor = "blk.1.ffn_down.weight"}));
  EXPECT_NE(msg.find("missing tensor 'blk.1.ffn_down.weight'"), std::string::npos) << msg;
}

TEST(LoadErrorsTest, MissingNormIsNamed) {
  TempDir dir;
  const std::string msg = load_error(write_small_model(dir, {.skip_tensor = "output_norm.weight"}));
  EXPECT_NE(msg.find("output_norm.weight"), std::string::npos) << msg;
}

TEST(LoadErrorsTest, WrongShapeIsNamedWithBothShapes) {
  TempDir dir;
  const std::string msg =
      load_error(write_small_model(dir, {.reshape_tensor = "blk.0.attn_k.weight"}));
  EXPECT_NE(msg.find("blk.0.attn_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 17]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [32, 16]"), std::string::npos) << msg;
}

TEST(LoadErrorsTest, UnknownArchitecture) {
  TempDir dir;
  const std::string msg = load_error(write_small_model(dir, {.arch = "mamba"}));
  EXPECT_NE(msg.find("unsupported architecture 'mamba'"), std::string::npos) << msg;
}

TEST(LoadErrorsTest, MissingHyperParameter) {
  TempDir dir;
  const std::string msg = load_error(write_small_model(dir, {.skip_key = "llama.block_count"}));
  EXPECT_NE(msg.find("llama.block_count"), std::string::npos) << msg;
}

TEST(LoadErrorsTest, HeadCountsThatDoNotDivide) {
  TempDir dir;
  const std::string msg = load_error(write_small_model(dir, {.head_count_kv = 3}));
  EXPECT_NE(msg.find("head_count_kv"), std::string::npos) << msg;
}

TEST(LoadErrorsTest, TruncatedFilesGiveErrorsNotCrashes) {
  TempDir dir;
  const std::string path = dir.file("tiny.gguf");
  ASSERT_TRUE(write_dummy_model("tiny", kernels::WeightType::kQ4_0, path, 3).ok());
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t keep : {size_t{0}, size_t{3}, size_t{24}, size_t{200}, bytes.size() / 3,
                      bytes.size() / 2, bytes.size() - 1}) {
    const std::string cut = dir.file("cut.gguf");
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
    EXPECT_NE(load_error(cut), "") << "kept " << keep << " bytes";
  }
}

TEST(ForwardErrorsTest, BatchesThatDoNotFitAreRefused) {
  TempDir dir;
  auto model = LlamaModel::open(write_small_model(dir, {}), {.max_batch_tokens = 4});
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto cache = KvCache::create((*model)->kv_cache_config(2, KvDtype::kF16));
  ASSERT_TRUE(cache.ok());
  BlockTable table;
  ASSERT_TRUE(cache->reserve(table, 1));
  const BlockTable* tables[] = {&table};
  std::vector<float> logits(5 * kVocab);
  auto run = [&](std::vector<BatchToken> tokens) {
    return (*model)->forward(Batch{tokens}, KvView{&*cache, tables}, logits.data());
  };
  EXPECT_TRUE(run({{.token = 1, .position = 0, .seq_slot = 0, .wants_logits = true}}).ok());
  EXPECT_FALSE(run({}).ok());
  EXPECT_FALSE(run(std::vector<BatchToken>(5, BatchToken{.token = 1})).ok());  // > max_batch_tokens
  EXPECT_FALSE(run({{.token = kVocab, .position = 0}}).ok());                  // not in the vocab
  EXPECT_FALSE(run({{.token = 1, .position = 16}}).ok());  // beyond the table's one block
  EXPECT_FALSE(run({{.token = 1, .position = 64}}).ok());  // beyond the context
  EXPECT_FALSE(run({{.token = 1, .position = 0, .seq_slot = 1}}).ok());  // no such slot
  EXPECT_FALSE((*model)->forward(Batch{}, KvView{}, logits.data()).ok());
  BlockTable bad = {7};  // the cache has 2 blocks
  const BlockTable* bad_tables[] = {&bad};
  const BatchToken one[] = {{.token = 1, .position = 0, .seq_slot = 0, .wants_logits = true}};
  EXPECT_FALSE((*model)->forward(Batch{one}, KvView{&*cache, bad_tables}, logits.data()).ok());
}

}  // namespace
}  // namespace ondol::engine

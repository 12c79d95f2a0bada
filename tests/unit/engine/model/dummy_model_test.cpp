#include "engine/model/dummy_model.h"

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"
#include "engine/model/llama_model.h"
#include "engine/model/model_info.h"
#include "engine/tokenizer/tokenizer.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using kernels::WeightType;
using testing::TempDir;

TEST(DummyModelTest, Llama110mShape) {
  auto s = find_dummy_shape("llama-110m");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->dim, 768);
  EXPECT_EQ(s->num_layers, 12);
  EXPECT_EQ(s->num_heads, 12);
  EXPECT_EQ(s->num_kv_heads, 12);
  EXPECT_EQ(s->ffn_dim, 2048);
  EXPECT_EQ(s->vocab_size, 32000);
  EXPECT_EQ(s->context_length, 2048);
  EXPECT_TRUE(s->tied_embeddings);
  EXPECT_FALSE(find_dummy_shape("llama-7b").has_value());
}

TEST(DummyModelTest, UnknownShapeAndUnfitTypeAreErrors) {
  TempDir dir;
  Status s = write_dummy_model("nope", WeightType::kF16, dir.file("x.gguf"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("llama-110m"), std::string::npos);  // lists the known ones
  DummyShape odd = *find_dummy_shape("tiny");
  odd.dim = 96;  // not a multiple of Q4_K's 256
  odd.num_heads = 3;
  odd.num_kv_heads = 3;
  EXPECT_FALSE(write_dummy_model(odd, WeightType::kQ4_K, dir.file("x.gguf")).ok());
}

TEST(DummyModelTest, TinyLoadsWithItsTokenizerAndSameSeedMeansSameFile) {
  TempDir dir;
  ASSERT_TRUE(write_dummy_model("tiny", WeightType::kQ8_0, dir.file("a.gguf"), 9).ok());
  ASSERT_TRUE(write_dummy_model("tiny", WeightType::kQ8_0, dir.file("b.gguf"), 9).ok());
  ASSERT_TRUE(write_dummy_model("tiny", WeightType::kQ8_0, dir.file("c.gguf"), 10).ok());
  auto a = GgufFile::open(dir.file("a.gguf"));
  auto b = GgufFile::open(dir.file("b.gguf"));
  auto c = GgufFile::open(dir.file("c.gguf"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const GgufTensor* ta = a->find_tensor("blk.1.ffn_up.weight");
  const GgufTensor* tb = b->find_tensor("blk.1.ffn_up.weight");
  const GgufTensor* tc = c->find_tensor("blk.1.ffn_up.weight");
  ASSERT_TRUE(ta && tb && tc);
  EXPECT_EQ(ta->type, TensorType::Q8_0);
  EXPECT_EQ(std::memcmp(ta->data, tb->data, ta->num_bytes), 0);
  EXPECT_NE(std::memcmp(ta->data, tc->data, ta->num_bytes), 0);

  auto tokenizer = Tokenizer::from_gguf(*a);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  EXPECT_EQ(tokenizer->vocab_size(), 1024u);
  EXPECT_EQ(tokenizer->vocab().kind(), TokenizerKind::SentencePiece);
  const std::string text = "Hello world, the quick fox! 42 \xC3\xA9t\xC3\xA9";
  std::vector<TokenId> ids = tokenizer->encode(text);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.front(), tokenizer->bos());
  EXPECT_EQ(tokenizer->decode(ids), text);  // bytes outside the pieces go through <0xXX>
  EXPECT_LT(ids.size(), text.size());       // and pieces merge letters into words

  auto model = LlamaModel::load(std::move(*a), {});
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_FALSE((*model)->weights().tied_output);
  EXPECT_EQ((*model)->config().num_kv_heads, 2);
}

TEST(ModelInfoTest, SummarisesTinyDummy) {
  TempDir dir;
  ASSERT_TRUE(write_dummy_model("tiny", WeightType::kQ4_K, dir.file("t.gguf"), 1).ok());
  auto file = GgufFile::open(dir.file("t.gguf"));
  ASSERT_TRUE(file.ok());
  const ModelInfo info = model_info(*file);
  ASSERT_TRUE(info.config.has_value()) << info.config_error;
  EXPECT_EQ(info.architecture, "llama");
  // embd + output (1024 x 256 each), 2 layers of q (256x256), k, v (128x256), o (256x256),
  // gate, up, down (512x256), norms (2 x 256 per layer + 256).
  const int64_t per_layer = 256 * 256 * 2 + 128 * 256 * 2 + 512 * 256 * 3 + 2 * 256;
  EXPECT_EQ(info.num_params, 2 * 1024 * 256 + 2 * per_layer + 256);
  ASSERT_EQ(info.by_type.size(), 2u);
  EXPECT_EQ(info.by_type[0].type, "Q4_K");
  EXPECT_EQ(info.by_type[1].type, "F32");
  EXPECT_EQ(info.by_type[1].num_tensors, 5);
  EXPECT_EQ(info.weight_bytes, info.by_type[0].num_bytes + info.by_type[1].num_bytes);
  EXPECT_EQ(info.by_type[0].num_bytes, info.by_type[0].num_elements / 256 * 144);
  EXPECT_EQ(info.vocab_size, 1024);
  EXPECT_FALSE(info.has_chat_template);
  EXPECT_EQ(info.kv_bytes_per_token_f16, 2 * 2 * 128 * 2);
  EXPECT_EQ(info.kv_bytes_per_token_f32, 2 * info.kv_bytes_per_token_f16);
  EXPECT_EQ(info.kv_bytes_per_token_i8, info.kv_bytes_per_token_f16 / 2 + 2 * 2 * 2 * 4);
  const std::string text = format_model_info(info);
  EXPECT_NE(text.find("SentencePiece"), std::string::npos) << text;
  EXPECT_NE(text.find("Q4_K"), std::string::npos) << text;
}

TEST(ModelInfoTest, Stories260KAndUnrunnableFiles) {
  auto file = GgufFile::open(testing::shared_path("models/stories260K.gguf"));
  ASSERT_TRUE(file.ok());
  ModelInfo info = model_info(*file);
  ASSERT_TRUE(info.config.has_value());
  EXPECT_EQ(info.config->num_layers, 5);
  EXPECT_EQ(info.config->num_kv_heads, 4);
  EXPECT_EQ(info.config->ffn_dim, 172);
  EXPECT_EQ(info.vocab_size, 512);
  EXPECT_FALSE(info.tied_embeddings);
  // A vocab-only GGUF still gets a summary, with the reason it cannot run.
  auto vocab_only =
      GgufFile::open(testing::shared_path("fixtures/tokenizer/ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(vocab_only.ok());
  info = model_info(*vocab_only);
  EXPECT_FALSE(info.config.has_value());
  EXPECT_FALSE(info.config_error.empty());
  EXPECT_NE(format_model_info(info).find("runnable"), std::string::npos);
}

}  // namespace
}  // namespace ondol::engine

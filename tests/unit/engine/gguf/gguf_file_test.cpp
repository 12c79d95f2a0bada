#include "engine/gguf/gguf_file.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_writer.h"
#include "gguf_test_bytes.h"

namespace ondol::engine {
namespace {

using testing::GgufBytes;

const std::string kShared = ONDOL_SHARED_DIR;
const std::string kStories = kShared + "/models/stories260K.gguf";

Result<GgufFile> parse(const GgufBytes& b) {
  return GgufFile::open_memory(b.bytes());
}

// Asserts that parsing fails with a message containing `needle`.
void expect_error(const Result<GgufFile>& r, std::string_view needle) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(GgufFileTest, Stories260KMetadataAndShapes) {
  Result<GgufFile> file = GgufFile::open(kStories);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), kGgufDefaultAlignment);

  EXPECT_EQ(*file->get_string("general.architecture"), "llama");
  const uint32_t num_layers = *file->get_u32("llama.block_count");
  const uint32_t dim = *file->get_u32("llama.embedding_length");
  const uint32_t num_heads = *file->get_u32("llama.attention.head_count");
  const uint32_t num_kv_heads = *file->get_u32("llama.attention.head_count_kv");
  const uint32_t hidden_dim = *file->get_u32("llama.feed_forward_length");
  EXPECT_EQ(num_layers, 5u);
  EXPECT_EQ(dim, 64u);
  EXPECT_EQ(num_heads, 8u);
  EXPECT_EQ(num_kv_heads, 4u);
  EXPECT_NEAR(*file->get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f, 1e-9f);

  Result<std::span<const std::string_view>> tokens =
      file->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  const uint64_t vocab_size = tokens->size();
  EXPECT_EQ(vocab_size, 512u);
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ(file->get_f32_array("tokenizer.ggml.scores")->size(), vocab_size);
  EXPECT_EQ(file->get_i32_array("tokenizer.ggml.token_type")->size(), vocab_size);

  std::printf(
      "stories260K: architecture=%s blocks=%u embedding=%u heads=%u/%u ffn=%u vocab=%zu "
      "tensors=%zu data_offset=%zu\n",
      std::string(*file->get_string("general.architecture")).c_str(), num_layers, dim, num_heads,
      num_kv_heads, hidden_dim, static_cast<size_t>(vocab_size), file->tensors().size(),
      static_cast<size_t>(file->data_offset()));
  // 2 global weights + norm, and 9 tensors per layer.
  ASSERT_EQ(file->tensors().size(), 3u + 9u * num_layers);
  const uint32_t head_dim = dim / num_heads;
  auto expect_shape = [&](const std::string& name, uint64_t ne0, uint64_t ne1) {
    const GgufTensor* t = file->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, TensorType::F32) << name;
    EXPECT_EQ(t->ne[0], ne0) << name;
    EXPECT_EQ(t->ne[1], ne1) << name;
    EXPECT_EQ(t->num_bytes, t->num_elements() * sizeof(float)) << name;
  };
  expect_shape("token_embd.weight", dim, vocab_size);
  expect_shape("output.weight", dim, vocab_size);
  expect_shape("output_norm.weight", dim, 1);
  for (uint32_t l = 0; l < num_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    expect_shape(p + "attn_q.weight", dim, dim);
    expect_shape(p + "attn_k.weight", dim, num_kv_heads * head_dim);
    expect_shape(p + "attn_v.weight", dim, num_kv_heads * head_dim);
    expect_shape(p + "attn_output.weight", dim, dim);
    expect_shape(p + "ffn_gate.weight", dim, hidden_dim);
    expect_shape(p + "ffn_down.weight", hidden_dim, dim);
    expect_shape(p + "ffn_up.weight", dim, hidden_dim);
    expect_shape(p + "attn_norm.weight", dim, 1);
    expect_shape(p + "ffn_norm.weight", dim, 1);
  }

  // Views point into the mapping, aligned, inside the file, and hold real (finite, non-zero)
  // trained weights.
  const GgufTensor* embd = file->find_tensor("token_embd.weight");
  const auto* base =
      file->tensors().front().data - file->tensors().front().offset - file->data_offset();
  for (const GgufTensor& t : file->tensors()) {
    const uint64_t at = static_cast<uint64_t>(t.data - base);
    EXPECT_EQ(at % file->alignment(), 0u) << t.name;
    EXPECT_LE(at + t.num_bytes, file->file_size()) << t.name;
  }
  const auto* weights = reinterpret_cast<const float*>(embd->data);
  double sum_abs = 0;
  for (uint64_t i = 0; i < embd->num_elements(); ++i) {
    ASSERT_TRUE(std::isfinite(weights[i]));
    sum_abs += std::fabs(weights[i]);
  }
  EXPECT_GT(sum_abs, 1.0);
}

TEST(GgufFileTest, EveryVocabFixtureOpens) {
  int num_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kShared + "/fixtures/tokenizer")) {
    if (entry.path().extension() != ".gguf") continue;
    ++num_files;
    const std::string path = entry.path().string();
    Result<GgufFile> file = GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message;
    EXPECT_TRUE(file->tensors().empty()) << path;  // vocab-only
    EXPECT_TRUE(file->get_string("general.architecture").ok()) << path;
    Result<std::string_view> model = file->get_string("tokenizer.ggml.model");
    ASSERT_TRUE(model.ok()) << path;
    EXPECT_TRUE(*model == "llama" || *model == "gpt2" || *model == "bert") << *model;
    const size_t num_tokens = file->get_string_array("tokenizer.ggml.tokens")->size();
    EXPECT_GT(num_tokens, 1000u) << path;
    EXPECT_EQ(file->get_i32_array("tokenizer.ggml.token_type")->size(), num_tokens) << path;
    if (file->has("tokenizer.ggml.scores")) {
      EXPECT_EQ(file->get_f32_array("tokenizer.ggml.scores")->size(), num_tokens) << path;
    }
    if (*model == "gpt2") {
      EXPECT_GT(file->get_string_array("tokenizer.ggml.merges")->size(), 1000u) << path;
    }
  }
  EXPECT_GE(num_files, 10);
}

TEST(GgufFileTest, TypedAccessorsCheckTypeAndRange) {
  GgufWriter w;
  w.set_string("s", "text");
  w.set_i32("negative", -5);
  w.set_u64("big", uint64_t{1} << 40);
  w.set_u8("small", 7);
  w.set_f64("double", 0.25);
  w.set_bool("flag", true);
  w.set_i32_array("ints", std::vector<int32_t>{1, -2, 3});
  Result<std::vector<std::byte>> bytes = w.write_memory();
  ASSERT_TRUE(bytes.ok());
  Result<GgufFile> file = GgufFile::open_memory(*bytes);
  ASSERT_TRUE(file.ok()) << file.error().message;

  EXPECT_EQ(*file->get_u32("small"), 7u);
  EXPECT_EQ(*file->get_i32("negative"), -5);
  EXPECT_EQ(*file->get_u64("big"), uint64_t{1} << 40);
  EXPECT_FLOAT_EQ(*file->get_f32("double"), 0.25f);
  EXPECT_TRUE(*file->get_bool("flag"));

  Result<uint32_t> neg = file->get_u32("negative");
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.error().message.find("does not fit"), std::string::npos);
  EXPECT_FALSE(file->get_u32("big").ok());
  Result<uint32_t> wrong = file->get_u32("s");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("'s' is string"), std::string::npos)
      << wrong.error().message;
  Result<std::string_view> absent = file->get_string("nope");
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message.find("'nope' not found"), std::string::npos);
  EXPECT_FALSE(file->get_string_array("ints").ok());
  EXPECT_EQ(*file->get_i32_array("ints"), (std::vector<int32_t>{1, -2, 3}));

  EXPECT_EQ(*file->get_u32_or("nope", 9), 9u);
  EXPECT_EQ(*file->get_u32_or("small", 9), 7u);
  EXPECT_FALSE(file->get_u32_or("s", 9).ok());
  EXPECT_EQ(*file->get_string_or("nope", "dflt"), "dflt");
  EXPECT_FALSE(*file->get_bool_or("nope", false));
}

TEST(GgufFileTest, NestedArraysAreParsed) {
  GgufBytes b;
  b.header(0, 1).str("nested").le<uint32_t>(9);          // array
  b.le<uint32_t>(9).le<uint64_t>(2);                     // of 2 arrays
  b.le<uint32_t>(8).le<uint64_t>(2).str("a").str("bc");  // [ "a", "bc" ]
  b.le<uint32_t>(5).le<uint64_t>(3).le<int32_t>(1).le<int32_t>(2).le<int32_t>(3);
  Result<GgufFile> file = parse(b);
  ASSERT_TRUE(file.ok()) << file.error().message;
  const GgufArray& outer = file->find("nested")->as_array();
  ASSERT_EQ(outer.element_type, GgufType::Array);
  ASSERT_EQ(outer.arrays.size(), 2u);
  EXPECT_EQ(outer.arrays[0].as_array().strings[1], "bc");
  EXPECT_EQ(outer.arrays[1].as_array().scalar_at<int32_t>(2), 3);
}

TEST(GgufFileTest, RefusesWhatIsNotGguf) {
  GgufBytes b;
  b.le<uint32_t>(0x464c457f).le<uint32_t>(3).le<uint64_t>(0).le<uint64_t>(0);  // ELF magic
  expect_error(parse(b), "not a GGUF file");
  expect_error(parse(GgufBytes().le<uint32_t>(0x46554747)), "truncated header");
  expect_error(parse(GgufBytes().header(0, 0, 1)), "unsupported GGUF version 1");
  expect_error(parse(GgufBytes().header(0, 0, 4)), "unsupported GGUF version 4");
  expect_error(parse(GgufBytes().header(0, 0, 0x03000000)), "big-endian");
  Result<GgufFile> missing = GgufFile::open(kShared + "/no-such-file.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);
  Result<GgufFile> directory = GgufFile::open(kShared);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().message.find("not a regular file"), std::string::npos);
  const std::string empty_path = std::filesystem::temp_directory_path() /
                                 ("ondol_empty_" + std::to_string(::getpid()) + ".gguf");
  { std::ofstream touch(empty_path); }
  Result<GgufFile> empty = GgufFile::open(empty_path);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("truncated header: 0 bytes"), std::string::npos);
  std::filesystem::remove(empty_path);
}

TEST(GgufFileTest, RefusesAbsurdCountsBeforeAllocating) {
  expect_error(parse(GgufBytes().header(0, uint64_t{1} << 62)),
               "metadata entry count 4611686018427387904 cannot fit");
  expect_error(parse(GgufBytes().header(uint64_t{1} << 40, 0)),
               "tensor count 1099511627776 cannot fit");
  GgufBytes arr;
  arr.header(0, 1).str("a").le<uint32_t>(9).le<uint32_t>(8).le<uint64_t>(uint64_t{1} << 60);
  expect_error(parse(arr), "claims 1152921504606846976 elements");
  GgufBytes deep;
  deep.header(0, 1).str("deep").le<uint32_t>(9);
  for (int i = 0; i < 20; ++i) deep.le<uint32_t>(9).le<uint64_t>(1);
  deep.le<uint32_t>(4).le<uint64_t>(0).zeros(64);
  expect_error(parse(deep), "nests arrays deeper");
}

TEST(GgufFileTest, RefusesTruncatedAndOutOfBoundsStrings) {
  GgufBytes b;
  b.header(0, 1).le<uint64_t>(1000).zeros(20);
  expect_error(parse(b), "string length 1000 of metadata key #0");
  GgufBytes v;
  v.header(0, 1).str("key").le<uint32_t>(8).le<uint64_t>(uint64_t{1} << 63);
  expect_error(parse(v), "string length 9223372036854775808 of metadata 'key'");
  GgufBytes t;
  t.header(0, 1).str("key").le<uint32_t>(4).le<uint16_t>(1);  // u32 value cut short
  expect_error(parse(t), "truncated file: value of 'key'");
}

TEST(GgufFileTest, RefusesBadValues) {
  expect_error(parse(GgufBytes().header(0, 1).str("k").le<uint32_t>(13).zeros(8)),
               "unknown value type 13");
  expect_error(parse(GgufBytes().header(0, 1).str("k").le<uint32_t>(7).le<uint8_t>(2)),
               "bool of value 2");
  GgufBytes dup;
  dup.header(0, 2).str("k").le<uint32_t>(0).le<uint8_t>(1).str("k").le<uint32_t>(0).le<uint8_t>(2);
  expect_error(parse(dup), "duplicate metadata key 'k'");
  expect_error(
      parse(GgufBytes().header(0, 1).str("general.alignment").le<uint32_t>(4).le<uint32_t>(48)),
      "not a power of two");
  expect_error(
      parse(GgufBytes().header(0, 1).str("general.alignment").le<uint32_t>(10).le<uint64_t>(64)),
      "must be a u32");
}

// One tensor info entry: name, dims, type, offset.
void tensor_info(GgufBytes& b, std::string_view name, std::vector<uint64_t> ne, uint32_t type,
                 uint64_t offset) {
  b.str(name).le<uint32_t>(static_cast<uint32_t>(ne.size()));
  for (uint64_t n : ne) b.le(n);
  b.le(type).le(offset);
}

TEST(GgufFileTest, RefusesBadTensors) {
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "blk.0.ffn_down.weight", {256, 2}, 13, 0);
    b.pad_to(32).zeros(2 * 176);
    expect_error(parse(b), "unsupported tensor type Q5_K in tensor 'blk.0.ffn_down.weight'");
    Result<GgufFile> allowed =
        GgufFile::open_memory(b.bytes(), GgufOpenOptions{.allow_unsupported_types = true});
    ASSERT_TRUE(allowed.ok()) << allowed.error().message;
    EXPECT_EQ(allowed->tensors()[0].num_bytes, 2u * 176u);
  }
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "x", {4}, 77, 0);
    expect_error(parse(b), "unknown tensor type id 77 in tensor 'x'");
  }
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "x", {4, 1, 1, 1, 1}, 0, 0);
    expect_error(parse(b), "has 5 dimensions");
  }
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "x", {uint64_t{1} << 62, uint64_t{1} << 62}, 0, 0);
    expect_error(parse(b), "absurd shape");
  }
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "q", {100}, 12, 0);  // Q4_K needs multiples of 256
    expect_error(parse(b), "not a multiple of the Q4_K block size 256");
  }
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "x", {16}, 0, 8);  // offset not a multiple of 32
    b.pad_to(32).zeros(128);
    expect_error(parse(b), "offset 8 is not a multiple of the alignment 32");
  }
  {
    GgufBytes b;
    b.header(2, 0);
    tensor_info(b, "a", {16}, 0, 0);   // 64 bytes: [0, 64)
    tensor_info(b, "b", {16}, 0, 32);  // [32, 96) overlaps a
    b.pad_to(32).zeros(128);
    expect_error(parse(b), "overlap");
  }
  {
    GgufBytes b;
    b.header(1, 0);
    tensor_info(b, "x", {1024}, 0, 0);  // 4096 bytes, file has 64
    b.pad_to(32).zeros(64);
    expect_error(parse(b), "tensor 'x' data (offset 0, 4096 bytes) lies outside the file");
  }
  {
    GgufBytes b;
    b.header(2, 0);
    tensor_info(b, "x", {8}, 0, 0);
    tensor_info(b, "x", {8}, 0, 32);
    b.pad_to(32).zeros(64);
    expect_error(parse(b), "duplicate tensor name 'x'");
  }
  {
    GgufBytes b;
    b.header(1, 0);
    b.str("abcdefghij").le<uint32_t>(2).le<uint64_t>(4);  // second dimension missing
    expect_error(parse(b), "truncated file: shape of tensor 'abcdefghij'");
  }
}

TEST(GgufFileTest, HonoursCustomAlignment) {
  GgufBytes b;
  b.header(2, 1).str("general.alignment").le<uint32_t>(4).le<uint32_t>(64);
  tensor_info(b, "a", {4}, 0, 0);
  tensor_info(b, "b", {4}, 0, 64);
  b.pad_to(64);
  const size_t data_start = b.size();
  for (int i = 0; i < 32; ++i) b.le<float>(static_cast<float>(i));
  Result<GgufFile> file = parse(b);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->alignment(), 64u);
  EXPECT_EQ(file->data_offset(), data_start);
  const auto* second = reinterpret_cast<const float*>(file->find_tensor("b")->data);
  EXPECT_EQ(second[0], 16.0f);
}

}  // namespace
}  // namespace ondol::engine

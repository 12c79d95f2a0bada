#include "engine/gguf/gguf_writer.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"

namespace ondol::engine {
namespace {

std::span<const std::byte> as_bytes_of(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

TEST(GgufWriterTest, RoundTripsMetadataAndTensors) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u8("u8", 200);
  w.set_i8("i8", -100);
  w.set_u16("u16", 60000);
  w.set_i16("i16", -30000);
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -2000000000);
  w.set_u64("u64", uint64_t{1} << 50);
  w.set_i64("i64", -(int64_t{1} << 50));
  w.set_f32("f32", 1.5f);
  w.set_f64("f64", -2.25);
  w.set_bool("yes", true);
  w.set_bool("no", false);
  const std::vector<std::string> tokens = {"<s>", "", "▁hello", std::string("a\0b", 3)};
  w.set_string_array("tokens", tokens);
  w.set_f32_array("scores", std::vector<float>{0.5f, -1.0f, 3.0f, 0.0f});
  w.set_u32_array("u32s", std::vector<uint32_t>{7, 8});

  std::vector<float> embd(16 * 4);
  std::iota(embd.begin(), embd.end(), 0.0f);
  const std::vector<uint64_t> embd_ne = {16, 4};
  w.add_tensor("token_embd.weight", TensorType::F32, embd_ne, as_bytes_of(embd));
  const std::vector<uint64_t> q_ne = {256, 3};
  w.add_tensor("blk.0.attn_q.weight", TensorType::Q4_K, q_ne, [](std::span<std::byte> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 7);
  });
  const std::vector<uint64_t> h_ne = {5};  // 10 bytes: the next tensor must still be aligned
  const std::vector<std::byte> half(10, std::byte{0x3c});  // borrowed until write_memory
  w.add_tensor("half", TensorType::F16, h_ne, half);
  const std::vector<uint64_t> q8_ne = {64};
  const std::vector<std::byte> q8_bytes(68, std::byte{1});
  w.add_tensor("q8", TensorType::Q8_0, q8_ne, q8_bytes);

  Result<std::vector<std::byte>> bytes = w.write_memory();
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  Result<GgufFile> file = GgufFile::open_memory(*bytes);
  ASSERT_TRUE(file.ok()) << file.error().message;

  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->metadata().size(), 16u);
  EXPECT_EQ(*file->get_string("general.architecture"), "llama");
  EXPECT_EQ(*file->get_u32("u8"), 200u);
  EXPECT_EQ(*file->get_i32("i8"), -100);
  EXPECT_EQ(*file->get_u32("u16"), 60000u);
  EXPECT_EQ(*file->get_i32("i16"), -30000);
  EXPECT_EQ(*file->get_u32("u32"), 4000000000u);
  EXPECT_EQ(*file->get_i32("i32"), -2000000000);
  EXPECT_EQ(*file->get_u64("u64"), uint64_t{1} << 50);
  EXPECT_EQ(file->find("i64")->as_signed(), -(int64_t{1} << 50));
  EXPECT_EQ(*file->get_f32("f32"), 1.5f);
  EXPECT_EQ(file->find("f64")->as_double(), -2.25);
  EXPECT_TRUE(*file->get_bool("yes"));
  EXPECT_FALSE(*file->get_bool("no"));
  std::span<const std::string_view> read_tokens = *file->get_string_array("tokens");
  ASSERT_EQ(read_tokens.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(read_tokens[i], tokens[i]);
  EXPECT_EQ(*file->get_f32_array("scores"), (std::vector<float>{0.5f, -1.0f, 3.0f, 0.0f}));
  EXPECT_EQ(*file->get_i32_array("u32s"), (std::vector<int32_t>{7, 8}));

  ASSERT_EQ(file->tensors().size(), 4u);
  const GgufTensor* e = file->find_tensor("token_embd.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->ne[0], 16u);
  EXPECT_EQ(e->ne[1], 4u);
  EXPECT_EQ(std::memcmp(e->data, embd.data(), embd.size() * sizeof(float)), 0);
  const GgufTensor* q = file->find_tensor("blk.0.attn_q.weight");
  EXPECT_EQ(q->type, TensorType::Q4_K);
  ASSERT_EQ(q->num_bytes, 3u * 144u);
  for (size_t i = 0; i < q->num_bytes; ++i) {
    ASSERT_EQ(q->data[i], static_cast<std::byte>(i * 7)) << i;
  }
  EXPECT_EQ(file->find_tensor("half")->num_bytes, 10u);
  const GgufTensor* q8 = file->find_tensor("q8");
  EXPECT_EQ(q8->num_bytes, 68u);
  EXPECT_EQ(q8->offset % 32, 0u);
  EXPECT_EQ(q8->data[67], std::byte{1});
}

TEST(GgufWriterTest, WritesFileWithCustomAlignment) {
  GgufWriter w(64);
  w.set_string("general.architecture", "test");
  std::vector<float> a(3, 1.0f);
  std::vector<float> b(5, 2.0f);
  const std::vector<uint64_t> a_ne = {3};
  const std::vector<uint64_t> b_ne = {5};
  w.add_tensor("a", TensorType::F32, a_ne, as_bytes_of(a));
  w.add_tensor("b", TensorType::F32, b_ne, as_bytes_of(b));
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("ondol_gguf_writer_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  Status written = w.write_file(path);
  ASSERT_TRUE(written.ok()) << written.error().message;
  {
    Result<GgufFile> file = GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message;
    EXPECT_EQ(file->alignment(), 64u);
    EXPECT_EQ(*file->get_u32("general.alignment"), 64u);
    EXPECT_EQ(file->data_offset() % 64, 0u);
    EXPECT_EQ(file->find_tensor("b")->offset, 64u);
    EXPECT_EQ(reinterpret_cast<const float*>(file->find_tensor("b")->data)[4], 2.0f);
  }
  std::filesystem::remove(path);
}

TEST(GgufWriterTest, ReportsMistakesAtWrite) {
  {
    GgufWriter w;
    w.set_u32("k", 1);
    w.set_u32("k", 2);
    Result<std::vector<std::byte>> r = w.write_memory();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("'k' is empty or set twice"), std::string::npos);
  }
  {
    GgufWriter w;
    const std::vector<uint64_t> ne = {4};
    const std::vector<std::byte> short_data(15);
    w.add_tensor("t", TensorType::F32, ne, short_data);
    Result<std::vector<std::byte>> r = w.write_memory();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("15 bytes given, 16 needed"), std::string::npos);
  }
  {
    GgufWriter w;
    const std::vector<uint64_t> ne = {100};
    w.add_tensor("t", TensorType::Q8_0, ne, [](std::span<std::byte>) {});
    Result<std::vector<std::byte>> r = w.write_memory();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("not a multiple of the Q8_0 block size 32"),
              std::string::npos);
  }
  {
    GgufWriter w(24);
    EXPECT_FALSE(w.write_memory().ok());
  }
  {
    GgufWriter w;
    EXPECT_FALSE(w.write_file("/nonexistent-dir/x.gguf").ok());
  }
}

}  // namespace
}  // namespace ondol::engine

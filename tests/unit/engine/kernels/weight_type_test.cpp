#include "engine/kernels/weight_type.h"

#include <gtest/gtest.h>

namespace ondol::kernels {
namespace {

TEST(WeightTypeTest, GgmlIdsAndSizes) {
  struct Expected {
    uint32_t ggml_id;
    const char* name;
    int64_t block_elems;
    int64_t block_bytes;
  };
  // ggml's type numbering and block sizes: what GGUF files carry.
  const Expected expected[] = {{0, "F32", 1, 4},    {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},
                               {8, "Q8_0", 32, 34}, {12, "Q4_K", 256, 144}, {30, "BF16", 1, 2}};
  for (const Expected& e : expected) {
    const std::optional<WeightType> type = weight_type_from_ggml(e.ggml_id);
    ASSERT_TRUE(type) << e.name;
    EXPECT_EQ(static_cast<uint32_t>(*type), e.ggml_id);
    EXPECT_EQ(weight_type_info(*type).name, e.name);
    EXPECT_EQ(weight_type_info(*type).block_elems, e.block_elems);
    EXPECT_EQ(weight_type_info(*type).block_bytes, e.block_bytes);
  }
}

TEST(WeightTypeTest, UnsupportedGgmlTypesAreRejected) {
  for (uint32_t id : {3u, 6u, 7u, 9u, 10u, 11u, 13u, 14u, 15u, 16u, 29u, 31u, 1000u}) {
    EXPECT_FALSE(weight_type_from_ggml(id)) << id;
  }
}

TEST(WeightTypeTest, RowLengthsAndBytes) {
  EXPECT_TRUE(is_valid_row_length(WeightType::kF16, 7));
  EXPECT_FALSE(is_valid_row_length(WeightType::kF16, 0));
  EXPECT_FALSE(is_valid_row_length(WeightType::kQ8_0, 48));
  EXPECT_TRUE(is_valid_row_length(WeightType::kQ8_0, 96));
  EXPECT_FALSE(is_valid_row_length(WeightType::kQ4_K, 128));
  EXPECT_EQ(row_bytes(WeightType::kF32, 768), 3072);
  EXPECT_EQ(row_bytes(WeightType::kBF16, 5), 10);
  EXPECT_EQ(row_bytes(WeightType::kQ8_0, 768), 24 * 34);
  EXPECT_EQ(row_bytes(WeightType::kQ4_0, 768), 24 * 18);
  EXPECT_EQ(row_bytes(WeightType::kQ4_K, 768), 3 * 144);
}

}  // namespace
}  // namespace ondol::kernels

#include "engine/gguf/tensor_type.h"

#include <gtest/gtest.h>

namespace ondol::engine {
namespace {

TEST(TensorTypeTest, SupportedTypesHaveGgmlLayouts) {
  struct Expected {
    TensorType type;
    uint32_t block_size;
    uint32_t bytes_per_block;
  };
  // Block layouts: Q8_0 = fp16 scale + 32 int8; Q4_0 = fp16 scale + 16 bytes of nibbles;
  // Q4_K = 2 fp16 + 12 scale bytes + 128 nibble bytes per 256.
  for (const Expected& e :
       {Expected{TensorType::F32, 1, 4}, Expected{TensorType::F16, 1, 2},
        Expected{TensorType::BF16, 1, 2}, Expected{TensorType::Q8_0, 32, 34},
        Expected{TensorType::Q4_0, 32, 18}, Expected{TensorType::Q4_K, 256, 144}}) {
    const TensorTypeInfo& info = tensor_type_info(e.type);
    EXPECT_TRUE(info.supported) << info.name;
    EXPECT_EQ(info.block_size, e.block_size) << info.name;
    EXPECT_EQ(info.bytes_per_block, e.bytes_per_block) << info.name;
  }
}

TEST(TensorTypeTest, RecognisesOtherIdsAsUnsupported) {
  std::optional<TensorTypeInfo> q5k = tensor_type_info(13);
  ASSERT_TRUE(q5k.has_value());
  EXPECT_EQ(q5k->name, "Q5_K");
  EXPECT_FALSE(q5k->supported);
  EXPECT_EQ(tensor_type_info(14)->name, "Q6_K");
  EXPECT_FALSE(tensor_type_info(4).has_value());  // retired Q4_2
  EXPECT_FALSE(tensor_type_info(1000).has_value());
  EXPECT_EQ(tensor_type_name(TensorType::BF16), "BF16");
}

}  // namespace
}  // namespace ondol::engine

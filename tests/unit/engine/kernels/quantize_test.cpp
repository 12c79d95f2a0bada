// Block formats: byte layouts as GGUF defines them (known-answer blocks built by hand), and the
// error of quantize -> dequantize round trips.
#include "engine/kernels/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/kernels/half.h"
#include "kernel_test_support.h"

namespace ondol::kernels {
namespace {

using testing::random_normal;
using testing::random_uniform;

// sqrt(sum (x - y)^2 / sum x^2)
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double error = 0, norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    error += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    norm += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(error / norm);
}

std::vector<float> round_trip(WeightType type, const std::vector<float>& x, int64_t k) {
  const int64_t rows = static_cast<int64_t>(x.size()) / k;
  std::vector<uint8_t> packed(rows * row_bytes(type, k));
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, x.data() + r * k, packed.data() + r * row_bytes(type, k), k);
    dequantize_row(type, packed.data() + r * row_bytes(type, k), y.data() + r * k, k);
  }
  return y;
}

// ---- layouts ----

TEST(BlockLayoutTest, Q8_0IsScaleThenSignedBytes) {
  uint8_t bytes[34] = {};
  const uint16_t d = fp32_to_fp16(0.5f);
  std::memcpy(bytes, &d, 2);
  for (int i = 0; i < 32; ++i) bytes[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(i - 16));
  float y[32];
  dequantize_row(WeightType::kQ8_0, bytes, y, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.5f * (i - 16)) << i;
}

TEST(BlockLayoutTest, Q4_0LowNibblesAreTheFirstHalf) {
  uint8_t bytes[18] = {};
  const uint16_t d = fp32_to_fp16(2.0f);
  std::memcpy(bytes, &d, 2);
  for (int i = 0; i < 16; ++i) bytes[2 + i] = static_cast<uint8_t>(i | ((15 - i) << 4));
  float y[32];
  dequantize_row(WeightType::kQ4_0, bytes, y, 32);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(y[i], 2.0f * (i - 8)) << i;            // element i: low nibble of qs[i]
    EXPECT_EQ(y[16 + i], 2.0f * (15 - i - 8)) << i;  // element 16 + i: high nibble of qs[i]
  }
}

// A Q4_K block assembled byte by byte from the documented layout, with every sub-block given a
// different scale and min whose top bits are set (so the packed high bits matter).
TEST(BlockLayoutTest, Q4_KKnownAnswer) {
  const uint8_t scale[8] = {1, 17, 33, 63, 45, 50, 62, 16};
  const uint8_t min[8] = {60, 2, 48, 7, 33, 63, 19, 40};
  BlockQ4_K block{};
  block.d = fp32_to_fp16(0.25f);
  block.dmin = fp32_to_fp16(0.125f);
  for (int j = 0; j < 4; ++j) {
    block.scales[j] = static_cast<uint8_t>(scale[j] | ((scale[j + 4] >> 4) << 6));
    block.scales[j + 4] = static_cast<uint8_t>(min[j] | ((min[j + 4] >> 4) << 6));
    block.scales[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0xF) | ((min[j + 4] & 0xF) << 4));
  }
  // qs[32c + l]: low nibble = sub-block 2c element l, high nibble = sub-block 2c+1 element l.
  auto quant = [](int j, int l) { return (j * 3 + l) % 16; };
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      block.qs[32 * c + l] = static_cast<uint8_t>(quant(2 * c, l) | (quant(2 * c + 1, l) << 4));
    }
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    unpack_q4_k_scale_min(block.scales, j, &s, &m);
    EXPECT_EQ(s, scale[j]) << j;
    EXPECT_EQ(m, min[j]) << j;
  }
  float y[256];
  dequantize_row(WeightType::kQ4_K, &block, y, 256);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(y[32 * j + l], 0.25f * scale[j] * quant(j, l) - 0.125f * min[j]) << j << " " << l;
    }
  }
}

TEST(BlockLayoutTest, Q4_KScalesSurviveQuantization) {
  // Sub-blocks with very different ranges exercise all 6 bits of scales and mins.
  std::vector<float> x(256);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) x[32 * j + l] = (j + 1) * 0.3f * (l - 5 * (j % 3)) / 31.0f;
  }
  BlockQ4_K block;
  quantize_row_q4_k(x.data(), &block, 256);
  float y[256];
  dequantize_row_q4_k(&block, y, 256);
  EXPECT_LT(relative_rms_error(x, std::vector<float>(y, y + 256)), 0.05);
}

// ---- round trips ----

struct RoundTripCase {
  WeightType type;
  double max_relative_rms;  // expected bound for normal(0, 1) data
};

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

// Relative RMS error of quantize -> dequantize on normal data, 64 rows of 4096. Expected from the
// grids: Q8_0 ~0.5% (step max/127), Q4_0 ~11% (step max/8), Q4_K ~7% (16 levels over the
// sub-block's min..max, fitted), F16 ~0.02%, BF16 ~0.2%.
TEST_P(RoundTripTest, NormalData) {
  const RoundTripCase c = GetParam();
  constexpr int64_t k = 4096;
  const std::vector<float> x = random_normal(64 * k, 11);
  const double error = relative_rms_error(x, round_trip(c.type, x, k));
  EXPECT_LT(error, c.max_relative_rms) << weight_type_info(c.type).name;
  std::printf("%s relative RMS error %.4f%%\n", weight_type_info(c.type).name.data(), 100 * error);
}

TEST_P(RoundTripTest, UniformOffsetData) {
  // All-positive data: Q4_K's min must be 0 (it can only subtract), the others lose nothing.
  const RoundTripCase c = GetParam();
  constexpr int64_t k = 1024;
  const std::vector<float> x = random_uniform(16 * k, 12, 0.5f, 1.5f);
  EXPECT_LT(relative_rms_error(x, round_trip(c.type, x, k)), c.max_relative_rms);
}

TEST_P(RoundTripTest, ZerosStayZero) {
  const RoundTripCase c = GetParam();
  const std::vector<float> x(512, 0.0f);
  for (float v : round_trip(c.type, x, 512)) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTripTest,
                         ::testing::Values(RoundTripCase{WeightType::kF32, 1e-12},
                                           RoundTripCase{WeightType::kF16, 0.0005},
                                           RoundTripCase{WeightType::kBF16, 0.004},
                                           RoundTripCase{WeightType::kQ8_0, 0.01},
                                           RoundTripCase{WeightType::kQ4_0, 0.12},
                                           RoundTripCase{WeightType::kQ4_K, 0.08}),
                         [](const auto& info) {
                           return std::string(weight_type_info(info.param.type).name);
                         });

TEST(RoundTripTest, Q8_0ErrorIsAtMostHalfAStep) {
  const std::vector<float> x = random_normal(32 * 100, 13, 3.0f);
  std::vector<BlockQ8_0> blocks(100);
  quantize_row_q8_0(x.data(), blocks.data(), x.size());
  std::vector<float> y(x.size());
  dequantize_row_q8_0(blocks.data(), y.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = fp16_to_fp32(blocks[i / 32].d);
    // Half a step, plus 127 times the fp16 rounding of the step (2^-11 relative).
    EXPECT_LE(std::fabs(x[i] - y[i]), d * (0.5f + 127 * 0x1p-11f)) << i;
  }
}

TEST(RoundTripTest, Q4_0MapsTheLargestMagnitudeExactly) {
  std::vector<float> x = random_normal(32, 14);
  x[7] = -4.0f;  // the largest magnitude; its sign picks d's
  BlockQ4_0 block;
  quantize_row_q4_0(x.data(), &block, 32);
  float y[32];
  dequantize_row_q4_0(&block, y, 32);
  EXPECT_EQ(fp16_to_fp32(block.d), 0.5f);
  EXPECT_EQ(y[7], -4.0f);
}

}  // namespace
}  // namespace ondol::kernels

#include "engine/kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_support.h"

namespace ondol::kernels {
namespace {

using testing::random_normal;

TEST(RopeTest, PositionZeroIsIdentity) {
  const Rope rope({.head_dim = 64, .freq_base = 10000.0f});
  const std::vector<float> x = random_normal(4 * 64, 1);
  std::vector<float> y = x;
  rope.apply(y.data(), 4, 0);
  EXPECT_EQ(y, x);
}

// Each pair (a, b) turns by theta_i = position * freq_scale * base^(-2i / rotary_dim).
void expect_rotated(const RopeParams& p, const std::vector<float>& before,
                    const std::vector<float>& after, int num_heads, int64_t position) {
  const int rotary = p.rotary_dim == 0 ? p.head_dim : p.rotary_dim;
  for (int h = 0; h < num_heads; ++h) {
    const float* in = before.data() + h * p.head_dim;
    const float* out = after.data() + h * p.head_dim;
    for (int i = 0; i < rotary / 2; ++i) {
      const int a = p.style == RopeStyle::kNeox ? i : 2 * i;
      const int b = p.style == RopeStyle::kNeox ? i + rotary / 2 : 2 * i + 1;
      const double theta =
          position * double{p.freq_scale} * std::pow(double{p.freq_base}, -2.0 * i / rotary);
      EXPECT_NEAR(out[a], in[a] * std::cos(theta) - in[b] * std::sin(theta), 2e-5) << h << " " << i;
      EXPECT_NEAR(out[b], in[a] * std::sin(theta) + in[b] * std::cos(theta), 2e-5) << h << " " << i;
    }
    for (int d = rotary; d < p.head_dim; ++d) EXPECT_EQ(out[d], in[d]) << "pass-through " << d;
  }
}

TEST(RopeTest, NormalPairsAdjacentValues) {
  const RopeParams p{.head_dim = 64, .freq_base = 10000.0f, .style = RopeStyle::kNormal};
  const std::vector<float> x = random_normal(3 * 64, 2);
  std::vector<float> y = x;
  Rope(p).apply(y.data(), 3, 17);
  expect_rotated(p, x, y, 3, 17);
}

TEST(RopeTest, NeoxPairsHalves) {
  const RopeParams p{.head_dim = 128, .freq_base = 1e6f, .style = RopeStyle::kNeox};
  const std::vector<float> x = random_normal(2 * 128, 3);
  std::vector<float> y = x;
  Rope(p).apply(y.data(), 2, 4000);
  expect_rotated(p, x, y, 2, 4000);
}

TEST(RopeTest, StylesDifferOnlyInPairing) {
  // A one-hot at value 1: normal pairs it with 0 (frequency index 0), NeoX with 1 + d/2
  // (frequency index 1).
  std::vector<float> normal(64, 0.0f), neox(64, 0.0f);
  normal[1] = neox[1] = 1.0f;
  Rope({.head_dim = 64, .style = RopeStyle::kNormal}).apply(normal.data(), 1, 3);
  Rope({.head_dim = 64, .style = RopeStyle::kNeox}).apply(neox.data(), 1, 3);
  EXPECT_NEAR(normal[0], -std::sin(3.0), 1e-6);
  EXPECT_NEAR(normal[1], std::cos(3.0), 1e-6);
  const double theta1 = 3.0 * std::pow(10000.0, -2.0 / 64);
  EXPECT_NEAR(neox[1], std::cos(theta1), 1e-6);
  EXPECT_NEAR(neox[33], std::sin(theta1), 1e-6);
  EXPECT_EQ(neox[0], 0.0f);
}

TEST(RopeTest, PartialRotaryDimLeavesTheRest) {
  const RopeParams p{.head_dim = 64, .rotary_dim = 32, .style = RopeStyle::kNeox};
  const std::vector<float> x = random_normal(2 * 64, 4);
  std::vector<float> y = x;
  Rope(p).apply(y.data(), 2, 9);
  expect_rotated(p, x, y, 2, 9);
}

TEST(RopeTest, LinearScalingDividesThePosition) {
  const std::vector<float> x = random_normal(64, 5);
  std::vector<float> scaled = x, plain = x;
  Rope({.head_dim = 64, .freq_scale = 0.25f}).apply(scaled.data(), 1, 40);
  Rope({.head_dim = 64}).apply(plain.data(), 1, 10);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(scaled[i], plain[i], 1e-6) << i;
}

TEST(RopeTest, QueryAndKeyTogetherEqualSeparately) {
  const Rope rope({.head_dim = 32});
  const std::vector<float> q = random_normal(8 * 32, 6), k = random_normal(2 * 32, 7);
  std::vector<float> q1 = q, k1 = k, q2 = q, k2 = k;
  rope.apply(q1.data(), 8, k1.data(), 2, 123);
  rope.apply(q2.data(), 8, 123);
  rope.apply(k2.data(), 2, 123);
  EXPECT_EQ(q1, q2);
  EXPECT_EQ(k1, k2);
}

TEST(RopeTest, RelativePositionIsWhatDotProductsSee) {
  // The point of RoPE: <rot(q, m), rot(k, n)> depends only on m - n.
  const Rope rope({.head_dim = 64});
  const std::vector<float> q = random_normal(64, 8), k = random_normal(64, 9);
  auto score = [&](int64_t m, int64_t n) {
    std::vector<float> qm = q, kn = k;
    rope.apply(qm.data(), 1, m);
    rope.apply(kn.data(), 1, n);
    double s = 0;
    for (int i = 0; i < 64; ++i) s += double{qm[i]} * kn[i];
    return s;
  };
  EXPECT_NEAR(score(10, 3), score(107, 100), 1e-4);
}

TEST(RopeTest, Validation) {
  EXPECT_TRUE(is_valid({.head_dim = 64}));
  EXPECT_FALSE(is_valid({.head_dim = 0}));
  EXPECT_FALSE(is_valid({.head_dim = 63}));
  EXPECT_FALSE(is_valid({.head_dim = 64, .rotary_dim = 96}));
  EXPECT_FALSE(is_valid({.head_dim = 2048}));
  EXPECT_FALSE(is_valid({.head_dim = 64, .freq_base = 0.0f}));
  EXPECT_FALSE(is_valid({.head_dim = 64, .freq_scale = -1.0f}));
}

}  // namespace
}  // namespace ondol::kernels

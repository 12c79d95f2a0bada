// Matmul: every SIMD level against the scalar reference on random data over many shapes; every
// level against exact double arithmetic within the bound its activation rounding allows; and
// results that do not depend on batching or on how threads split the work.
#include "engine/kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/kernels/half.h"
#include "engine/kernels/quantize.h"
#include "kernel_test_support.h"

namespace ondol::kernels {
namespace {

using testing::AlignedBuffer;
using testing::random_normal;

constexpr float kUnwritten = std::numeric_limits<float>::quiet_NaN();

struct Weights {
  WeightType type;
  int64_t n, k;
  std::vector<uint8_t> bytes;
  std::vector<float> values;     // dequantized, (n, k)
  std::vector<float> magnitude;  // (n, k): |value|, or for Q4_K |d*sc*q| + dmin*m (both terms)

  WeightMatrix matrix() const { return {type, bytes.data(), n, k}; }
};

Weights make_weights(WeightType type, int64_t n, int64_t k, uint32_t seed) {
  Weights w{type,
            n,
            k,
            std::vector<uint8_t>(n * row_bytes(type, k)),
            std::vector<float>(n * k),
            std::vector<float>(n * k)};
  std::vector<float> x = random_normal(n * k, seed, 0.5f);
  for (int64_t i = 0; i < n * k; i += 97) x[i] *= 8.0f;  // a few outliers per row
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* row = w.bytes.data() + r * row_bytes(type, k);
    quantize_row(type, x.data() + r * k, row, k);
    dequantize_row(type, row, w.values.data() + r * k, k);
    for (int64_t c = 0; c < k; ++c) w.magnitude[r * k + c] = std::fabs(w.values[r * k + c]);
    if (type != WeightType::kQ4_K) continue;
    const auto* blocks = reinterpret_cast<const BlockQ4_K*>(row);
    for (int64_t c = 0; c < k; ++c) {
      const BlockQ4_K& b = blocks[c / 256];
      const int j = static_cast<int>(c % 256) / 32;
      uint8_t scale, min;
      unpack_q4_k_scale_min(b.scales, j, &scale, &min);
      const int q = (b.qs[(j / 2) * 32 + c % 32] >> (4 * (j % 2))) & 0xF;
      w.magnitude[r * k + c] = fp16_to_fp32(b.d) * scale * q + fp16_to_fp32(b.dmin) * min;
    }
  }
  return w;
}

struct Activations {
  int64_t m, k, stride;  // stride > k: rows are not contiguous
  std::vector<float> x;
};

Activations make_activations(int64_t m, int64_t k, uint32_t seed) {
  const int64_t stride = k + 3;
  Activations a{m, k, stride, random_normal(m * stride, seed)};
  for (int64_t i = 0; i < m * stride; i += 61) a.x[i] *= 10.0f;  // activation outliers
  return a;
}

struct Output {
  int64_t stride;
  std::vector<float> y;  // (m, n) with row stride `stride`
  float at(int64_t i, int64_t n) const { return y[i * stride + n]; }
};

Output run_matmul(const KernelTable& kernels, const Weights& w, const Activations& a,
                  int64_t n_begin, int64_t n_end) {
  AlignedBuffer scratch(matmul_scratch_bytes(w.type, a.m, a.k));
  const PreparedActivations x =
      prepare_activations(kernels, w.type, a.x.data(), a.m, a.k, a.stride, scratch.data());
  Output out{w.n + 1, std::vector<float>(a.m * (w.n + 1), kUnwritten)};
  matmul_rows(kernels, w.matrix(), x, out.y.data(), out.stride, n_begin, n_end);
  return out;
}

// The activations as the kernel sees them, for reference runs: bf16-rounded when the kernel
// multiplies bf16 (integer formats are compared on identical prepared bytes instead).
Activations as_seen_by(const KernelTable& kernels, WeightType type, Activations a) {
  if (matmul_kernel(kernels, type).activation == ActivationType::kBF16) {
    for (float& v : a.x) v = bf16_to_fp32(fp32_to_bf16(v));
  }
  return a;
}

double magnitude(const Weights& w, const Activations& a, int64_t i, int64_t n) {
  double sum = 0;
  for (int64_t c = 0; c < a.k; ++c)
    sum += w.magnitude[n * w.k + c] * std::fabs(a.x[i * a.stride + c]);
  return sum;
}

// Float accumulation order differs between kernels; a misplaced value would show up as an error
// of about magnitude / k, far above this for the k tested.
constexpr double kRelativeTolerance = 2e-5;
constexpr double kAbsoluteTolerance = 1e-6;

struct Shape {
  int64_t m, n, k;
};

std::vector<Shape> shapes_for(WeightType type) {
  std::vector<int64_t> ks;
  switch (type) {
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16:
      ks = {1, 5, 16, 17, 31, 64, 100, 767, 1024};
      break;
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
      ks = {32, 64, 96, 128, 160, 768, 800, 2048};
      break;
    case WeightType::kQ4_K:
      ks = {256, 512, 768, 2048};
      break;
  }
  std::vector<Shape> shapes;
  for (int64_t k : ks) {
    for (int64_t m : {1, 3, 4, 5, 13}) {
      for (int64_t n : {1, 3, 4, 7, 37}) shapes.push_back({m, n, k});
    }
  }
  return shapes;
}

const WeightType kAllTypes[] = {WeightType::kF32,  WeightType::kF16,  WeightType::kBF16,
                                WeightType::kQ8_0, WeightType::kQ4_0, WeightType::kQ4_K};

std::string type_name(WeightType type) {
  return std::string(weight_type_info(type).name);
}

// ---- SIMD levels against scalar ----

class MatmulIsaTest : public ::testing::TestWithParam<std::tuple<Isa, WeightType>> {};

TEST_P(MatmulIsaTest, MatchesScalarReference) {
  const auto [isa, type] = GetParam();
  const KernelTable* fast = kernels_for(isa);
  if (fast == nullptr) {  // not a skip: the dispatcher must say the CPU lacks the level
    EXPECT_FALSE(is_isa_supported(isa));
    return;
  }
  const KernelTable& scalar = *kernels_for(Isa::kScalar);
  uint32_t seed = 100;
  for (const Shape& s : shapes_for(type)) {
    SCOPED_TRACE(::testing::Message() << "m=" << s.m << " n=" << s.n << " k=" << s.k);
    const Weights w = make_weights(type, s.n, s.k, seed++);
    const Activations a = make_activations(s.m, s.k, seed++);
    const Output got = run_matmul(*fast, w, a, 0, s.n);
    const Activations seen = as_seen_by(*fast, type, a);
    const Output want = run_matmul(scalar, w, seen, 0, s.n);
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t n = 0; n < s.n; ++n) {
        const double tolerance = kRelativeTolerance * magnitude(w, seen, i, n) + kAbsoluteTolerance;
        ASSERT_NEAR(got.at(i, n), want.at(i, n), tolerance) << "row " << i << " col " << n;
      }
    }
  }
}

TEST_P(MatmulIsaTest, PreparedActivationsAreBitExact) {
  const auto [isa, type] = GetParam();
  const KernelTable* fast = kernels_for(isa);
  if (fast == nullptr) {
    EXPECT_FALSE(is_isa_supported(isa));
    return;
  }
  const KernelTable& scalar = *kernels_for(Isa::kScalar);
  const MatmulKernel& kernel = matmul_kernel(*fast, type);
  for (int64_t k : {256, 768, 1024, 2048}) {
    const int64_t m = 3;
    const Activations a = make_activations(m, k, static_cast<uint32_t>(k));
    AlignedBuffer got(matmul_scratch_bytes(type, m, k)), want(matmul_scratch_bytes(type, m, k));
    const PreparedActivations x =
        prepare_activations(*fast, type, a.x.data(), m, k, a.stride, got.data());
    EXPECT_EQ(x.type, kernel.activation);
    if (x.type == ActivationType::kF32) {
      EXPECT_EQ(x.data, reinterpret_cast<const uint8_t*>(a.x.data()));  // a view, not a copy
      continue;
    }
    if (x.type == ActivationType::kBF16) {
      for (int64_t i = 0; i < m; ++i) {
        const auto* row = reinterpret_cast<const uint16_t*>(x.data + i * x.row_bytes);
        for (int64_t c = 0; c < k; ++c) ASSERT_EQ(row[c], fp32_to_bf16(a.x[i * a.stride + c])) << c;
        for (int64_t c = k; c < x.row_bytes / 2; ++c) ASSERT_EQ(row[c], 0) << "padding " << c;
      }
      continue;
    }
    const PreparedActivations ref =
        prepare_activations(scalar, type, a.x.data(), m, k, a.stride, want.data());
    ASSERT_EQ(ref.type, x.type);
    ASSERT_EQ(ref.row_bytes, x.row_bytes);
    EXPECT_EQ(std::memcmp(x.data, ref.data, m * x.row_bytes), 0) << "k=" << k;
  }
}

TEST_P(MatmulIsaTest, WritesOnlyTheRequestedColumns) {
  const auto [isa, type] = GetParam();
  const KernelTable* fast = kernels_for(isa);
  if (fast == nullptr) {
    EXPECT_FALSE(is_isa_supported(isa));
    return;
  }
  const int64_t k = weight_type_info(type).block_elems == 256 ? 512 : 160;
  const Weights w = make_weights(type, 41, k, 7);
  const Activations a = make_activations(6, k, 8);
  const Output whole = run_matmul(*fast, w, a, 0, w.n);
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 0}, {5, 6}, {3, 20}, {17, 41}}) {
    const Output part = run_matmul(*fast, w, a, begin, end);
    for (int64_t i = 0; i < a.m; ++i) {
      for (int64_t n = 0; n <= w.n; ++n) {
        if (n >= begin && n < end) {
          ASSERT_EQ(part.at(i, n), whole.at(i, n)) << i << " " << n;
        } else {
          ASSERT_TRUE(std::isnan(part.at(i, n)))
              << "wrote column " << n << " outside " << begin << ".." << end;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, MatmulIsaTest,
                         ::testing::Combine(::testing::ValuesIn(testing::kFastIsas),
                                            ::testing::ValuesIn(kAllTypes)),
                         [](const auto& info) {
                           return testing::isa_test_name(std::get<0>(info.param)) + "_" +
                                  type_name(std::get<1>(info.param));
                         });

// ---- every level, including scalar, against exact arithmetic ----

class MatmulLevelTest : public ::testing::TestWithParam<std::tuple<Isa, WeightType>> {};

// |y - exact| is bounded by what rounding the activations may cost, sum |w| * (max error of x),
// plus the float accumulation tolerance. Exact = double dot of the dequantized weights with x.
TEST_P(MatmulLevelTest, WithinActivationRoundingOfExact) {
  const auto [isa, type] = GetParam();
  const KernelTable* kernels = kernels_for(isa);
  if (kernels == nullptr) {
    EXPECT_FALSE(is_isa_supported(isa));
    return;
  }
  const ActivationType act = matmul_kernel(*kernels, type).activation;
  const int64_t m = 5, n = 9, k = 768;
  const Weights w = make_weights(type, n, k, 21);
  const Activations a = make_activations(m, k, 22);
  const Output got = run_matmul(*kernels, w, a, 0, n);
  for (int64_t i = 0; i < m; ++i) {
    const float* x = a.x.data() + i * a.stride;
    // Largest rounding error of each x value under the kernel's activation format.
    std::vector<double> x_error(k, 0.0);
    const int64_t block = act == ActivationType::kQ8x32    ? 32
                          : act == ActivationType::kQ8x256 ? 256
                                                           : 1;
    for (int64_t b = 0; b < k; b += block) {
      double amax = 0;
      for (int64_t c = b; c < b + block; ++c) amax = std::max(amax, std::fabs(double{x[c]}));
      for (int64_t c = b; c < b + block; ++c) {
        if (act == ActivationType::kQ8x32 || act == ActivationType::kQ8x256)
          x_error[c] = amax / 127 * 0.5001;
        if (act == ActivationType::kBF16) x_error[c] = std::fabs(x[c]) * 0x1p-8;
      }
    }
    for (int64_t r = 0; r < n; ++r) {
      double exact = 0, bound = 0;
      for (int64_t c = 0; c < k; ++c) {
        exact += double{w.values[r * k + c]} * x[c];
        bound += std::fabs(double{w.values[r * k + c]}) * x_error[c];
      }
      bound += kRelativeTolerance * magnitude(w, a, i, r) + kAbsoluteTolerance;
      EXPECT_NEAR(got.at(i, r), exact, bound) << "row " << i << " col " << r;
    }
  }
}

// A token's output must not depend on which other tokens share its batch: prefill and decode
// give the same numbers for the same input.
TEST_P(MatmulLevelTest, BatchedRowsEqualSingleRows) {
  const auto [isa, type] = GetParam();
  const KernelTable* kernels = kernels_for(isa);
  if (kernels == nullptr) {
    EXPECT_FALSE(is_isa_supported(isa));
    return;
  }
  const int64_t k = 512, n = 19, m = 11;
  const Weights w = make_weights(type, n, k, 31);
  const Activations batch = make_activations(m, k, 32);
  const Output together = run_matmul(*kernels, w, batch, 0, n);
  for (int64_t i = 0; i < m; ++i) {
    Activations single{1, k, batch.stride,
                       std::vector<float>(batch.x.begin() + i * batch.stride,
                                          batch.x.begin() + (i + 1) * batch.stride)};
    const Output alone = run_matmul(*kernels, w, single, 0, n);
    for (int64_t r = 0; r < n; ++r) ASSERT_EQ(alone.at(0, r), together.at(i, r)) << i << " " << r;
  }
}

// matmul() over a pool gives bit-identical results to one thread, for any thread count.
TEST_P(MatmulLevelTest, ThreadedEqualsSingleThread) {
  const auto [isa, type] = GetParam();
  const KernelTable* kernels = kernels_for(isa);
  if (kernels == nullptr) {
    EXPECT_FALSE(is_isa_supported(isa));
    return;
  }
  const int64_t k = 768, n = 83;
  const Weights w = make_weights(type, n, k, 41);
  for (int64_t m : {1, 7}) {
    const Activations a = make_activations(m, k, 42);
    const Output single = run_matmul(*kernels, w, a, 0, n);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      AlignedBuffer scratch(matmul_scratch_bytes(type, m, k));
      std::vector<float> y(m * (n + 1), kUnwritten);
      matmul(*kernels,
             MatmulArgs{.w = w.matrix(),
                        .x = a.x.data(),
                        .num_tokens = m,
                        .x_stride = a.stride,
                        .y = y.data(),
                        .y_stride = n + 1,
                        .scratch = scratch.data()},
             &pool);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t r = 0; r < n; ++r) {
          ASSERT_EQ(y[i * (n + 1) + r], single.at(i, r))
              << threads << " threads, " << i << " " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, MatmulLevelTest,
                         ::testing::Combine(::testing::Values(Isa::kScalar, Isa::kAvx2,
                                                              Isa::kAvx512),
                                            ::testing::ValuesIn(kAllTypes)),
                         [](const auto& info) {
                           return testing::isa_test_name(std::get<0>(info.param)) + "_" +
                                  type_name(std::get<1>(info.param));
                         });

TEST(MatmulScratchTest, CoversEveryLevel) {
  for (WeightType type : kAllTypes) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      const KernelTable* kernels = kernels_for(isa);
      if (kernels == nullptr) continue;  // availability is asserted in isa_test
      const ActivationType act = matmul_kernel(*kernels, type).activation;
      const int64_t k = weight_type_info(type).block_elems == 256 ? 768 : 800;
      EXPECT_GE(matmul_scratch_bytes(type, 3, k), 3 * activation_row_bytes(act, k))
          << type_name(type);
    }
  }
}

}  // namespace
}  // namespace ondol::kernels

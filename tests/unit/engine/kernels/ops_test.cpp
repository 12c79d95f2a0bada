// Element-wise ops of every SIMD level against the scalar reference, over lengths that cover
// whole vectors, tails and lengths shorter than one vector; conversions must be bit-exact.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "engine/kernels/half.h"
#include "engine/kernels/kernel_table.h"
#include "kernel_test_support.h"

namespace ondol::kernels {
namespace {

using testing::random_normal;

const int64_t kLengths[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 768, 1001, 2048};

// exp is a degree-7 polynomial after range reduction; relative error stays within a few ulps.
constexpr float kExpRelativeTolerance = 4e-7f;
constexpr float kSumRelativeTolerance = 2e-6f;

class OpsTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    fast_ = kernels_for(GetParam());
    scalar_ = kernels_for(Isa::kScalar);
  }
  // Not a skip: a level the CPU lacks must be reported unavailable.
  bool available() const {
    if (fast_ == nullptr) {
      EXPECT_FALSE(is_isa_supported(GetParam()));
    }
    return fast_ != nullptr;
  }
  const KernelTable* fast_ = nullptr;
  const KernelTable* scalar_ = nullptr;
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float relative,
                  float absolute) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], relative * std::fabs(want[i]) + absolute) << "index " << i;
  }
}

TEST_P(OpsTest, Rmsnorm) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const std::vector<float> x = random_normal(n, 1, 3.0f);
    const std::vector<float> weight = random_normal(n, 2);
    std::vector<float> got(n), want(n);
    fast_->rmsnorm(got.data(), x.data(), weight.data(), n, 1e-5f);
    scalar_->rmsnorm(want.data(), x.data(), weight.data(), n, 1e-5f);
    expect_close(got, want, kSumRelativeTolerance, 1e-7f);
    std::vector<float> in_place = x;  // out may alias x
    fast_->rmsnorm(in_place.data(), in_place.data(), weight.data(), n, 1e-5f);
    EXPECT_EQ(in_place, got);
  }
}

TEST_P(OpsTest, Softmax) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    std::vector<float> got = random_normal(n, 3, 4.0f);
    for (int64_t i = 1; i < n; i += 5) got[i] = -std::numeric_limits<float>::infinity();  // masked
    std::vector<float> want = got;
    fast_->softmax(got.data(), n);
    scalar_->softmax(want.data(), n);
    expect_close(got, want, kExpRelativeTolerance + kSumRelativeTolerance, 1e-30f);
    for (int64_t i = 1; i < n; i += 5) EXPECT_EQ(got[i], 0.0f) << i;
  }
}

TEST_P(OpsTest, SoftmaxOfLargeValuesDoesNotOverflow) {
  if (!available()) return;
  std::vector<float> x = {1000.0f, 999.0f, -1000.0f, 1000.0f};
  fast_->softmax(x.data(), 4);
  const float e = std::exp(-1.0f);
  EXPECT_NEAR(x[0], 1 / (2 + e), 1e-6f);
  EXPECT_NEAR(x[1], e / (2 + e), 1e-6f);
  EXPECT_EQ(x[2], 0.0f);
}

TEST_P(OpsTest, SiluMul) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    std::vector<float> gate = random_normal(n, 4, 5.0f);
    if (n > 2) {
      gate[0] = -120.0f;  // exp(-g) overflows in float: silu -> -0
      gate[1] = 100.0f;
    }
    const std::vector<float> up = random_normal(n, 5);
    std::vector<float> got(n), want(n);
    fast_->silu_mul(got.data(), gate.data(), up.data(), n);
    scalar_->silu_mul(want.data(), gate.data(), up.data(), n);
    expect_close(got, want, 2 * kExpRelativeTolerance, 1e-30f);
  }
}

TEST_P(OpsTest, AddDotAxpy) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const std::vector<float> a = random_normal(n, 6), b = random_normal(n, 7);
    std::vector<float> got(n), want(n);
    fast_->add(got.data(), a.data(), b.data(), n);
    scalar_->add(want.data(), a.data(), b.data(), n);
    EXPECT_EQ(got, want);  // one rounding each: exact match

    double magnitude = 0;
    for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(double{a[i]} * b[i]);
    EXPECT_NEAR(fast_->dot(a.data(), b.data(), n), scalar_->dot(a.data(), b.data(), n),
                kSumRelativeTolerance * magnitude);

    std::vector<float> y_fast = b, y_ref = b;
    fast_->axpy(y_fast.data(), 0.75f, a.data(), n);
    scalar_->axpy(y_ref.data(), 0.75f, a.data(), n);
    expect_close(y_fast, y_ref, 1e-7f, 1e-7f);  // fused vs separate multiply-add
  }
}

// The same index as the scalar reference wherever the largest value sits, with ties (the first
// wins, -0 and +0 included), NaNs (passed over), -inf and the vocabulary's length.
TEST_P(OpsTest, ArgmaxFindsTheFirstLargestValue) {
  if (!available()) return;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<int64_t> lengths(std::begin(kLengths), std::end(kLengths));
  lengths.push_back(32000);
  for (int64_t n : lengths) {
    SCOPED_TRACE(n);
    std::vector<float> x = random_normal(n, 11);
    auto expect_same = [&](const char* what) {
      SCOPED_TRACE(what);
      const int64_t want = scalar_->argmax(x.data(), n);
      EXPECT_EQ(fast_->argmax(x.data(), n), want);
      return want;
    };
    expect_same("random");
    for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
      std::vector<float> saved = x;
      x[at] = 100.0f;
      EXPECT_EQ(expect_same("one largest"), at);
      x[n - 1] = 100.0f;  // a later tie loses
      EXPECT_EQ(expect_same("tie"), at);
      x[at] = nan;
      expect_same("NaN where the largest was");
      x = saved;
    }
    std::fill(x.begin(), x.end(), -inf);
    EXPECT_EQ(expect_same("all -inf"), 0);
    std::fill(x.begin(), x.end(), nan);
    EXPECT_EQ(expect_same("all NaN"), 0);
    x[n - 1] = -inf;
    EXPECT_EQ(expect_same("one value among NaNs"), n - 1);
    std::fill(x.begin(), x.end(), -1.0f);
    x[n / 3] = -0.0f;
    x[n - 1] = 0.0f;
    EXPECT_EQ(expect_same("-0 before +0"), n / 3);
  }
}

// Temperature sampling's passes over the vocabulary: the scaling is one rounding per value at
// every level (the same bits), the max the same value; the exponentials within the exp
// polynomial's tolerance of libm's, their sum within a few ulp of the in-order double sum.
TEST_P(OpsTest, ScaleMaxAndExpSumMatchTheReference) {
  if (!available()) return;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<int64_t> lengths(std::begin(kLengths), std::end(kLengths));
  lengths.push_back(32000);
  for (int64_t n : lengths) {
    SCOPED_TRACE(n);
    std::vector<float> x = random_normal(n, 21, 4.0f);
    if (n > 1) x[n / 2] = -inf;  // a banned token (not the only one: its max would be -inf)
    std::vector<float> got = x, want = x;
    const float got_max = fast_->scale_max(got.data(), 1.25f, n);
    const float want_max = scalar_->scale_max(want.data(), 1.25f, n);
    EXPECT_EQ(got, want);
    EXPECT_EQ(got_max, want_max);
    if (n > 1) {
      x[n - 1] = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> with_nan = x;
      EXPECT_EQ(fast_->scale_max(with_nan.data(), 1.0f, n), scalar_->scale_max(x.data(), 1.0f, n));
      x = want;  // scaled, no NaN
    }
    std::vector<float> e_got(n + 1, -1.0f), e_want(n);
    const double sum_got = fast_->exp_sum(want.data(), want_max, e_got.data(), n);
    const double sum_want = scalar_->exp_sum(want.data(), want_max, e_want.data(), n);
    EXPECT_EQ(e_got[n], -1.0f) << "wrote past the end";
    e_got.resize(n);
    expect_close(e_got, e_want, kExpRelativeTolerance, 1e-30f);
    if (n > 1) {
      EXPECT_EQ(e_got[n / 2], 0.0f);
    }
    EXPECT_NEAR(sum_got, sum_want, 1e-6 * sum_want);
  }
  float all_banned[3] = {-inf, -inf, -inf};
  EXPECT_EQ(fast_->scale_max(all_banned, 2.0f, 3), -inf);
}

// The F16 forms equal converting the row first and calling the F32 kernel of the same level,
// bit for bit (attention results must not depend on how the KV cache row was read), and are
// close to the scalar reference.
TEST_P(OpsTest, DotAndAxpyOnF16RowsEqualConvertingFirst) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const std::vector<float> a = random_normal(n, 8), b = random_normal(n, 9);
    std::vector<uint16_t> h(n);
    scalar_->fp32_to_fp16_row(b.data(), h.data(), n);
    std::vector<float> widened(n);
    scalar_->fp16_to_fp32_row(h.data(), widened.data(), n);

    const float fused = fast_->dot_f16(a.data(), h.data(), n);
    EXPECT_EQ(std::bit_cast<uint32_t>(fused),
              std::bit_cast<uint32_t>(fast_->dot(a.data(), widened.data(), n)));
    double magnitude = 0;
    for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(double{a[i]} * widened[i]);
    EXPECT_NEAR(fused, scalar_->dot_f16(a.data(), h.data(), n), kSumRelativeTolerance * magnitude);

    std::vector<float> y_fused = a, y_converted = a, y_ref = a;
    fast_->axpy_f16(y_fused.data(), -0.5f, h.data(), n);
    fast_->axpy(y_converted.data(), -0.5f, widened.data(), n);
    EXPECT_EQ(y_fused, y_converted);
    scalar_->axpy_f16(y_ref.data(), -0.5f, h.data(), n);
    expect_close(y_fused, y_ref, 1e-7f, 1e-7f);
  }
}

// The block forms equal the row forms called row by row, bit for bit: on AVX-512 they have
// paths of their own for head_dim 64 and 128 (q and y held in registers, 16 rows' dots reduced
// together), so widths around those and row counts past one group of 16 are covered.
TEST_P(OpsTest, BlockFormsOfF16DotAndAxpyEqualTheRowForms) {
  if (!available()) return;
  for (int64_t n : {1, 15, 16, 17, 32, 48, 63, 64, 65, 80, 96, 127, 128, 129, 200, 256}) {
    for (int64_t rows : {1, 3, 15, 16, 17, 33}) {
      SCOPED_TRACE(::testing::Message() << n << " values, " << rows << " rows");
      const std::vector<float> q = random_normal(n, 10), w = random_normal(rows, 11);
      const std::vector<float> block = random_normal(rows * n, 12);
      std::vector<uint16_t> h(rows * n);
      scalar_->fp32_to_fp16_row(block.data(), h.data(), rows * n);
      std::vector<float> scores(rows), want(rows);
      fast_->dot_rows_f16(q.data(), h.data(), rows, n, 0.125f, scores.data());
      for (int64_t r = 0; r < rows; ++r) want[r] = fast_->dot_f16(q.data(), h.data() + r * n, n) * 0.125f;
      EXPECT_EQ(scores, want);
      std::vector<float> y = q, y_rows = q;
      fast_->axpy_rows_f16(y.data(), w.data(), h.data(), rows, n);
      for (int64_t r = 0; r < rows; ++r) fast_->axpy_f16(y_rows.data(), w[r], h.data() + r * n, n);
      EXPECT_EQ(y, y_rows);
    }
  }
}

std::vector<uint32_t> bits(const std::vector<float>& values) {
  std::vector<uint32_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = std::bit_cast<uint32_t>(values[i]);
  return out;
}

// Rows of n values to quantize, named for failure messages: normal values, ties after the
// division (max 127 gives scale 1 exactly, max 63.5 scale 0.5, and k + 0.5 then divides
// exactly), zeros, one nonzero value, tiny and huge magnitudes, all negative.
std::vector<std::pair<const char*, std::vector<float>>> int8_rows(int64_t n) {
  std::vector<std::pair<const char*, std::vector<float>>> rows;
  rows.emplace_back("normal", random_normal(n, 20, 2.0f));
  std::vector<float> ties(n), half_ties(n);
  for (int64_t i = 0; i < n; ++i) {
    ties[i] = static_cast<float>(i % 254 - 127) + 0.5f;  // -126.5 ... 126.5
    half_ties[i] = ties[i] * 0.5f;
  }
  ties[n / 2] = 127.0f;
  half_ties[n / 2] = -63.5f;
  rows.emplace_back("ties at scale 1", ties);
  rows.emplace_back("ties at scale 0.5", half_ties);
  rows.emplace_back("zeros", std::vector<float>(n, 0.0f));
  std::vector<float> one(n, 0.0f);
  one[n - 1] = -3.25f;
  rows.emplace_back("one nonzero", one);
  std::vector<float> tiny = random_normal(n, 21), huge = random_normal(n, 22), negative(n);
  for (float& v : tiny) v *= 1e-35f;
  for (float& v : huge) v *= 1e37f;
  for (int64_t i = 0; i < n; ++i) negative[i] = -std::fabs(tiny[i] * 1e35f) - 1.0f;
  rows.emplace_back("tiny", tiny);
  rows.emplace_back("huge", huge);
  rows.emplace_back("negative", negative);
  return rows;
}

// Every level gives the scalar reference's bytes and scale, and a value comes back within half
// a step of what was stored.
TEST_P(OpsTest, QuantizeRowI8EqualsTheReference) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    for (const auto& [name, in] : int8_rows(n)) {
      SCOPED_TRACE(::testing::Message() << name << ", n=" << n);
      std::vector<int8_t> q_fast(n + 16, 42), q_ref(n + 16, 42);
      float scale_fast = -1.0f, scale_ref = -1.0f;
      fast_->quantize_row_i8(in.data(), q_fast.data(), &scale_fast, n);
      scalar_->quantize_row_i8(in.data(), q_ref.data(), &scale_ref, n);
      ASSERT_EQ(std::bit_cast<uint32_t>(scale_fast), std::bit_cast<uint32_t>(scale_ref));
      ASSERT_EQ(q_fast, q_ref);  // the 16 bytes past n included: untouched
      std::vector<float> back(n);
      scalar_->dequantize_rows_i8(q_ref.data(), &scale_ref, 1, n, back.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_LE(std::fabs(back[i] - in[i]), scale_ref * 0.5001f) << i;
      }
    }
  }
  // A row so small that max / 127 underflows: scale 0, zeros (no round trip bound).
  const std::vector<float> denormal = {1e-44f, -2e-44f, 0.0f};
  std::vector<int8_t> q(3, 42);
  float scale = -1.0f;
  fast_->quantize_row_i8(denormal.data(), q.data(), &scale, 3);
  EXPECT_EQ(scale, 0.0f);
  EXPECT_EQ(q, std::vector<int8_t>(3, 0));
}

TEST_P(OpsTest, DequantizeRowsI8EqualsTheReference) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    constexpr int64_t kRows = 3;
    const std::vector<float> values = random_normal(kRows * n, 23, 3.0f);
    std::vector<int8_t> q(kRows * n);
    std::vector<float> scales(kRows);
    for (int64_t r = 0; r < kRows; ++r)
      scalar_->quantize_row_i8(values.data() + r * n, q.data() + r * n, &scales[r], n);
    std::vector<float> got(kRows * n + 16, 42.0f), want(kRows * n + 16, 42.0f);
    fast_->dequantize_rows_i8(q.data(), scales.data(), kRows, n, got.data());
    scalar_->dequantize_rows_i8(q.data(), scales.data(), kRows, n, want.data());
    EXPECT_EQ(bits(got), bits(want));  // the 16 floats past the rows included: untouched
  }
}

// One level's int8 block forms against dequantizing the rows and calling its F32 row forms, bit
// for bit: out[r] = dot(q, row r) * scale, and axpy row by row in order. Widths around the
// AVX-512 held paths (64, 128) and row counts past one group of 16 rows.
void expect_int8_block_forms_equal_row_forms(const KernelTable& k) {
  for (int64_t n : {1, 7, 15, 16, 17, 32, 48, 63, 64, 65, 80, 96, 100, 127, 128, 129, 200, 256}) {
    for (int64_t rows = 1; rows <= 34; rows += rows < 17 ? 1 : 16) {
      SCOPED_TRACE(::testing::Message() << n << " values, " << rows << " rows");
      const std::vector<float> q = random_normal(n, 24), w = random_normal(rows, 25);
      const std::vector<float> block = random_normal(rows * n, 26, 2.0f);
      std::vector<int8_t> quantized(rows * n);
      std::vector<float> scales(rows);
      for (int64_t r = 0; r < rows; ++r)
        k.quantize_row_i8(block.data() + r * n, quantized.data() + r * n, &scales[r], n);
      std::vector<float> dequantized(rows * n);
      k.dequantize_rows_i8(quantized.data(), scales.data(), rows, n, dequantized.data());

      std::vector<float> scores(rows + 16, 42.0f), want(rows + 16, 42.0f);
      k.dot_rows_i8(q.data(), quantized.data(), scales.data(), rows, n, 0.125f, scores.data());
      for (int64_t r = 0; r < rows; ++r)
        want[r] = k.dot(q.data(), dequantized.data() + r * n, n) * 0.125f;
      EXPECT_EQ(bits(scores), bits(want));  // and nothing written past row `rows`

      std::vector<float> y = q, y_rows = q;
      y.resize(n + 16, 42.0f);
      y_rows.resize(n + 16, 42.0f);
      k.axpy_rows_i8(y.data(), w.data(), quantized.data(), scales.data(), rows, n);
      for (int64_t r = 0; r < rows; ++r) k.axpy(y_rows.data(), w[r], dequantized.data() + r * n, n);
      EXPECT_EQ(bits(y), bits(y_rows));
    }
  }
}

TEST_P(OpsTest, BlockFormsOfI8DotAndAxpyEqualDequantizingFirst) {
  if (!available()) return;
  expect_int8_block_forms_equal_row_forms(*fast_);
}

// The fast levels sum in another order than the scalar reference: close, not equal.
TEST_P(OpsTest, BlockFormsOfI8DotAndAxpyAreCloseToTheReference) {
  if (!available()) return;
  for (int64_t n : {1, 17, 64, 100, 128, 256}) {
    for (int64_t rows : {1, 16, 33}) {
      SCOPED_TRACE(::testing::Message() << n << " values, " << rows << " rows");
      const std::vector<float> q = random_normal(n, 27), w = random_normal(rows, 28);
      const std::vector<float> block = random_normal(rows * n, 29);
      std::vector<int8_t> quantized(rows * n);
      std::vector<float> scales(rows), dequantized(rows * n);
      for (int64_t r = 0; r < rows; ++r)
        scalar_->quantize_row_i8(block.data() + r * n, quantized.data() + r * n, &scales[r], n);
      scalar_->dequantize_rows_i8(quantized.data(), scales.data(), rows, n, dequantized.data());
      std::vector<float> scores(rows), want(rows);
      fast_->dot_rows_i8(q.data(), quantized.data(), scales.data(), rows, n, 1.0f, scores.data());
      scalar_->dot_rows_i8(q.data(), quantized.data(), scales.data(), rows, n, 1.0f, want.data());
      for (int64_t r = 0; r < rows; ++r) {
        double magnitude = 0;
        for (int64_t i = 0; i < n; ++i)
          magnitude += std::fabs(double{q[i]} * dequantized[r * n + i]);
        EXPECT_NEAR(scores[r], want[r], kSumRelativeTolerance * magnitude) << r;
      }
      std::vector<float> y = q, y_ref = q;
      fast_->axpy_rows_i8(y.data(), w.data(), quantized.data(), scales.data(), rows, n);
      scalar_->axpy_rows_i8(y_ref.data(), w.data(), quantized.data(), scales.data(), rows, n);
      expect_close(y, y_ref, 1e-5f, 1e-5f);  // fused vs separate multiply-adds, rows summed
    }
  }
}

TEST_P(OpsTest, Fp16RowsAreBitExact) {
  if (!available()) return;
  std::vector<uint16_t> every(65536);
  for (uint32_t h = 0; h < 65536; ++h) every[h] = static_cast<uint16_t>(h);
  std::vector<float> got(65536), want(65536);
  fast_->fp16_to_fp32_row(every.data(), got.data(), 65536);
  scalar_->fp16_to_fp32_row(every.data(), want.data(), 65536);
  for (uint32_t h = 0; h < 65536; ++h) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[h]), std::bit_cast<uint32_t>(want[h])) << h;
  }

  // Random bit patterns hit every rounding case, subnormals, overflow and NaN payloads.
  std::mt19937 rng(8);
  std::vector<float> values(1 << 20);
  for (float& v : values) v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
  for (int64_t n : kLengths) {
    std::vector<uint16_t> h_fast(n), h_ref(n);
    fast_->fp32_to_fp16_row(values.data(), h_fast.data(), n);
    scalar_->fp32_to_fp16_row(values.data(), h_ref.data(), n);
    EXPECT_EQ(h_fast, h_ref) << n;
  }
  std::vector<uint16_t> h_fast(values.size()), h_ref(values.size());
  fast_->fp32_to_fp16_row(values.data(), h_fast.data(), values.size());
  scalar_->fp32_to_fp16_row(values.data(), h_ref.data(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(h_fast[i], h_ref[i]) << std::hex << std::bit_cast<uint32_t>(values[i]);
  }
}

TEST_P(OpsTest, Bf16RowsAreBitExact) {
  if (!available()) return;
  std::mt19937 rng(9);
  std::vector<float> values(1 << 20);
  for (float& v : values) v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
  std::vector<uint16_t> h_fast(values.size()), h_ref(values.size());
  fast_->fp32_to_bf16_row(values.data(), h_fast.data(), values.size());
  scalar_->fp32_to_bf16_row(values.data(), h_ref.data(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(h_fast[i], h_ref[i]) << std::hex << std::bit_cast<uint32_t>(values[i]);
  }
  for (int64_t n : kLengths) {
    std::vector<float> f_fast(n + 1, -1.0f), f_ref(n + 1, -1.0f);
    fast_->bf16_to_fp32_row(h_ref.data(), f_fast.data(), n);
    scalar_->bf16_to_fp32_row(h_ref.data(), f_ref.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(f_fast[i]), std::bit_cast<uint32_t>(f_ref[i])) << i;
    }
    EXPECT_EQ(f_fast[n], -1.0f) << "wrote past the end, n=" << n;
  }
}

// matmul_nn with every operand wider than its rows (stride gaps) inside a C buffer filled with a
// sentinel: the result equals the scalar reference bit for bit, and no gap or float past the
// last row is written.
TEST_P(OpsTest, MatmulNnIsBitIdenticalToTheReference) {
  if (!available()) return;
  constexpr float kSentinel = -12345.0f;
  constexpr int64_t kPastEnd = 37;
  uint32_t seed = 100;
  for (int64_t m : {1, 2, 3, 5, 7, 32, 33}) {
    for (int64_t n : {1, 3, 8, 15, 16, 17, 31, 64, 100, 130}) {
      for (int64_t k : {1, 2, 7, 64, 129, 300}) {
        SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n << " k=" << k);
        const int64_t a_stride = k + 3, b_stride = n + 5, c_stride = n + 2;
        const std::vector<float> a = random_normal(m * a_stride, ++seed);
        const std::vector<float> b = random_normal(k * b_stride, ++seed);
        std::vector<float> got(m * c_stride + kPastEnd, kSentinel), want = got;
        fast_->matmul_nn(a.data(), a_stride, b.data(), b_stride, got.data(), c_stride, m, n, k);
        scalar_->matmul_nn(a.data(), a_stride, b.data(), b_stride, want.data(), c_stride, m, n, k);
        ASSERT_EQ(got, want);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = n; j < c_stride; ++j) ASSERT_EQ(got[i * c_stride + j], kSentinel);
        }
        for (int64_t i = m * c_stride; i < m * c_stride + kPastEnd; ++i) {
          ASSERT_EQ(got[i], kSentinel);
        }
      }
    }
  }
}

// Prompt attention computes a tile of query rows at once; each row's scores and output must be
// the ones that row gets alone (decode), whatever row tile it falls in.
TEST_P(OpsTest, MatmulNnRowsDoNotDependOnM) {
  if (!available()) return;
  for (int64_t n : {17, 64, 100}) {
    for (int64_t k : {64, 128, 600}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k);
      constexpr int64_t m = 32;
      const std::vector<float> a = random_normal(m * k, 7), b = random_normal(k * n, 8);
      std::vector<float> all(m * n);
      fast_->matmul_nn(a.data(), k, b.data(), n, all.data(), n, m, n, k);
      for (int64_t i = 0; i < m; ++i) {
        std::vector<float> alone(n);
        fast_->matmul_nn(a.data() + i * k, k, b.data(), n, alone.data(), n, 1, n, k);
        ASSERT_EQ(alone, std::vector<float>(all.begin() + i * n, all.begin() + (i + 1) * n))
            << "row " << i;
      }
    }
  }
}

// Floats placed to end exactly where an inaccessible page begins, so a load or store past the
// end of the operand faults instead of passing unnoticed.
class GuardedFloats {
 public:
  explicit GuardedFloats(size_t count) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_bytes_ = (count * sizeof(float) + page - 1) / page * page;
    map_bytes_ = data_bytes_ + page;
    void* map =
        mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return;
    map_ = static_cast<char*>(map);
    mprotect(map_ + data_bytes_, page, PROT_NONE);
    data_ = reinterpret_cast<float*>(map_ + data_bytes_) - count;
  }
  ~GuardedFloats() {
    if (map_ != nullptr) munmap(map_, map_bytes_);
  }
  GuardedFloats(const GuardedFloats&) = delete;
  GuardedFloats& operator=(const GuardedFloats&) = delete;
  float* data() const { return data_; }

 private:
  char* map_ = nullptr;
  float* data_ = nullptr;
  size_t data_bytes_ = 0, map_bytes_ = 0;
};

TEST_P(OpsTest, MatmulNnNeverTouchesPastTheLastRow) {
  if (!available()) return;
  for (int64_t n : {1, 3, 17, 100}) {
    for (int64_t k : {1, 5}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k);
      constexpr int64_t m = 7;
      GuardedFloats a(m * k), b(k * n), got(m * n);
      ASSERT_NE(a.data(), nullptr);
      ASSERT_NE(b.data(), nullptr);
      ASSERT_NE(got.data(), nullptr);
      const std::vector<float> a_values = random_normal(m * k, 21),
                               b_values = random_normal(k * n, 22);
      std::copy(a_values.begin(), a_values.end(), a.data());
      std::copy(b_values.begin(), b_values.end(), b.data());
      std::vector<float> want(m * n);
      fast_->matmul_nn(a.data(), k, b.data(), n, got.data(), n, m, n, k);
      scalar_->matmul_nn(a.data(), k, b.data(), n, want.data(), n, m, n, k);
      EXPECT_EQ(std::vector<float>(got.data(), got.data() + m * n), want);
    }
  }
}

TEST_P(OpsTest, TailsDoNotWritePastTheEnd) {
  if (!available()) return;
  for (int64_t n : kLengths) {
    const std::vector<float> a = random_normal(n + 16, 10), b = random_normal(n + 16, 11);
    std::vector<float> out(n + 16, 42.0f);
    fast_->add(out.data(), a.data(), b.data(), n);
    fast_->silu_mul(out.data(), a.data(), b.data(), n);
    fast_->rmsnorm(out.data(), a.data(), b.data(), n, 1e-6f);
    for (int64_t i = n; i < n + 16; ++i) ASSERT_EQ(out[i], 42.0f) << "n=" << n << " i=" << i;
    std::vector<uint16_t> h(n + 16, 0xABCD);
    fast_->fp32_to_fp16_row(a.data(), h.data(), n);
    fast_->fp32_to_bf16_row(a.data(), h.data(), n);
    for (int64_t i = n; i < n + 16; ++i) ASSERT_EQ(h[i], 0xABCD) << "n=" << n << " i=" << i;
    std::vector<int8_t> q(n + 16, 42);
    float scale = 0;
    fast_->quantize_row_i8(a.data(), q.data(), &scale, n);
    for (int64_t i = n; i < n + 16; ++i) ASSERT_EQ(q[i], 42) << "n=" << n << " i=" << i;
    fast_->dequantize_rows_i8(q.data(), &scale, 1, n, out.data());
    fast_->axpy_rows_i8(out.data(), b.data(), q.data(), &scale, 1, n);
    for (int64_t i = n; i < n + 16; ++i) ASSERT_EQ(out[i], 42.0f) << "n=" << n << " i=" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, OpsTest, ::testing::ValuesIn(testing::kFastIsas),
                         [](const auto& info) { return testing::isa_test_name(info.param); });

TEST(ScalarOpsTest, KnownValues) {
  const KernelTable& k = *kernels_for(Isa::kScalar);
  float x[4] = {1, 2, 3, 4};
  const float w[4] = {1, 1, 2, 0.5f};
  float out[4];
  k.rmsnorm(out, x, w, 4, 0.0f);
  const float rms = std::sqrt(30.0f / 4);
  EXPECT_FLOAT_EQ(out[2], 3 / rms * 2);
  k.softmax(x, 4);
  EXPECT_FLOAT_EQ(x[0] + x[1] + x[2] + x[3], 1.0f);
  EXPECT_FLOAT_EQ(x[3] / x[2], std::exp(1.0f));
  const float gate[2] = {0.0f, 2.0f}, up[2] = {5.0f, 3.0f};
  k.silu_mul(out, gate, up, 2);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1], 2.0f / (1 + std::exp(-2.0f)) * 3.0f);
  const float values[5] = {1.0f, std::numeric_limits<float>::quiet_NaN(), 7.0f, -2.0f, 7.0f};
  EXPECT_EQ(k.argmax(values, 5), 2);
  EXPECT_EQ(k.argmax(values + 1, 1), 0);  // only a NaN
}

TEST(ScalarOpsTest, QuantizeRowI8KnownValues) {
  const KernelTable& k = *kernels_for(Isa::kScalar);
  // max 127: scale 1, so q is in rounded half to even.
  const float in[8] = {127.0f, -63.5f, 0.5f, 1.5f, -2.5f, 0.0f, 126.6f, -127.0f};
  int8_t q[8];
  float scale = 0;
  k.quantize_row_i8(in, q, &scale, 8);
  EXPECT_EQ(scale, 1.0f);
  const int8_t want[8] = {127, -64, 0, 2, -2, 0, 127, -127};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q[i], want[i]) << i;
  float out[8];
  k.dequantize_rows_i8(q, &scale, 1, 8, out);
  EXPECT_EQ(out[1], -64.0f);

  const float zeros[3] = {0.0f, -0.0f, 0.0f};
  k.quantize_row_i8(zeros, q, &scale, 3);
  EXPECT_EQ(scale, 0.0f);
  EXPECT_EQ(q[0] | q[1] | q[2], 0);

  const float small[2] = {-0.254f, 0.127f};  // scale 0.002: q = -127, 63.5 -> 64 (not a tie)
  k.quantize_row_i8(small, q, &scale, 2);
  EXPECT_EQ(scale, 0.254f / 127.0f);
  EXPECT_EQ(q[0], -127);
  EXPECT_EQ(q[1], static_cast<int8_t>(std::nearbyint(0.127f / scale)));
}

TEST(ScalarOpsTest, BlockFormsOfI8DotAndAxpyEqualDequantizingFirst) {
  expect_int8_block_forms_equal_row_forms(*kernels_for(Isa::kScalar));
}

}  // namespace
}  // namespace ondol::kernels

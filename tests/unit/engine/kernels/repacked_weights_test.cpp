// Q8_0 weights repacked as kQ8_0x16: the layout byte for byte, the reference kernel against the
// row-layout Q8_0 reference, and every fast kernel for the layout bit-identical to the reference
// for any batch size, tile edge and thread split (the engine's batching determinism rests on it).
#include "engine/kernels/repacked_weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/block_formats.h"
#include "engine/kernels/half.h"
#include "engine/kernels/q8_0x16_layout.h"
#include "engine/kernels/quantize.h"
#include "kernel_test_support.h"

namespace ondol::kernels {
namespace {

using testing::AlignedBuffer;
using testing::random_normal;

constexpr float kUnwritten = std::numeric_limits<float>::quiet_NaN();

// n x k Q8_0 rows from seeded values with a few outliers, so block scales differ.
std::vector<uint8_t> make_q8_0(int64_t n, int64_t k, uint32_t seed) {
  const int64_t row = row_bytes(WeightType::kQ8_0, k);
  std::vector<uint8_t> bytes(n * row);
  std::vector<float> x = random_normal(n * k, seed, 0.5f);
  for (int64_t i = 0; i < n * k; i += 89) x[i] *= 8.0f;
  for (int64_t r = 0; r < n; ++r) {
    quantize_row(WeightType::kQ8_0, x.data() + r * k, bytes.data() + r * row, k);
  }
  return bytes;
}

WeightMatrix rows_matrix(const std::vector<uint8_t>& bytes, int64_t n, int64_t k) {
  return {.type = WeightType::kQ8_0, .data = bytes.data(), .num_rows = n, .num_cols = k};
}

// m prepared kQ8x32 rows (prepared by `kernels`, bit-exact across levels).
struct Prepared {
  AlignedBuffer buffer;
  PreparedActivations x;
};

Prepared prepare(const KernelTable& kernels, int64_t m, int64_t k, uint32_t seed) {
  const std::vector<float> x = random_normal(m * k, seed);
  Prepared p{AlignedBuffer(matmul_scratch_bytes(WeightType::kQ8_0, m, k)), {}};
  p.x = prepare_activations(kernels, WeightType::kQ8_0, x.data(), m, k, k, p.buffer.data());
  return p;
}

std::vector<float> run_reference(const WeightMatrix& w, const PreparedActivations& x) {
  std::vector<float> y(x.num_rows * w.num_rows, kUnwritten);
  matmul_q8_0x16_reference(MatmulTask{
      .w = static_cast<const uint8_t*>(w.data),
      .w_row_bytes = w.num_cols / kQ8_0BlockElems * kQ8_0x16RowBlockBytes,
      .x = x.data,
      .x_row_bytes = x.row_bytes,
      .m = x.num_rows,
      .k = x.num_cols,
      .y = y.data(),
      .y_stride = w.num_rows,
      .n_begin = 0,
      .n_end = w.num_rows,
  });
  return y;
}

const KernelTable* repacking_kernels() {
  const KernelTable* kernels = kernels_for(Isa::kAvx512);
  return kernels != nullptr && kernels->matmul_q8_0x16.run != nullptr ? kernels : nullptr;
}

TEST(RepackedWeightsTest, LayoutHoldsFlippedChunksAndWideScales) {
  const int64_t n = 32, k = 96;
  const std::vector<uint8_t> bytes = make_q8_0(n, k, 1);
  const RepackedWeights repacked(rows_matrix(bytes, n, k), nullptr);
  const WeightMatrix& w = repacked.matrix();
  EXPECT_EQ(w.layout, WeightLayout::kQ8_0x16);
  EXPECT_EQ(w.type, WeightType::kQ8_0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % 64, 0u);
  const auto* out = static_cast<const uint8_t*>(w.data);
  const int64_t num_blocks = k / kQ8_0BlockElems;
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(bytes.data());
  for (int64_t row = 0; row < n; ++row) {
    const int64_t g = row / kQ8_0x16Rows, r = row % kQ8_0x16Rows;
    for (int64_t b = 0; b < num_blocks; ++b) {
      const BlockQ8_0& src = blocks[row * num_blocks + b];
      const uint8_t* dst = out + (g * num_blocks + b) * kQ8_0x16BlockBytes;
      for (int64_t e = 0; e < kQ8_0BlockElems; ++e) {
        ASSERT_EQ(dst[e / 4 * kQ8_0x16ChunkBytes + 4 * r + e % 4],
                  static_cast<uint8_t>(src.qs[e] + 128))
            << row << " " << b << " " << e;
      }
      EXPECT_EQ(reinterpret_cast<const float*>(dst + kQ8_0x16ScaleOffset)[r], fp16_to_fp32(src.d));
    }
  }
}

TEST(RepackedWeightsTest, ParallelRepackEqualsSerial) {
  const int64_t n = 80, k = 160;
  const std::vector<uint8_t> bytes = make_q8_0(n, k, 2);
  const RepackedWeights serial(rows_matrix(bytes, n, k), nullptr);
  ThreadPool pool(3);
  const RepackedWeights parallel(rows_matrix(bytes, n, k), &pool);
  const auto* a = static_cast<const uint8_t*>(serial.matrix().data);
  const auto* b = static_cast<const uint8_t*>(parallel.matrix().data);
  EXPECT_EQ(std::vector<uint8_t>(a, a + q8_0x16_bytes(n, k)),
            std::vector<uint8_t>(b, b + q8_0x16_bytes(n, k)));
}

TEST(RepackedWeightsTest, CanRepackOnlyWholeGroupsOfQ8_0WithAKernel) {
  const std::vector<uint8_t> bytes = make_q8_0(48, 64, 3);
  const KernelTable& scalar = *kernels_for(Isa::kScalar);
  EXPECT_FALSE(RepackedWeights::can_repack(scalar, rows_matrix(bytes, 48, 64)));
  if (const KernelTable* avx2 = kernels_for(Isa::kAvx2)) {
    EXPECT_FALSE(RepackedWeights::can_repack(*avx2, rows_matrix(bytes, 48, 64)));
  }
  const KernelTable* kernels = repacking_kernels();
  if (kernels == nullptr) GTEST_SKIP() << "no kQ8_0x16 kernel on this CPU";
  EXPECT_TRUE(RepackedWeights::can_repack(*kernels, rows_matrix(bytes, 48, 64)));
  EXPECT_FALSE(RepackedWeights::can_repack(*kernels, rows_matrix(bytes, 40, 64)));
  WeightMatrix f16 = rows_matrix(bytes, 48, 32);
  f16.type = WeightType::kF16;
  EXPECT_FALSE(RepackedWeights::can_repack(*kernels, f16));
  const RepackedWeights repacked(rows_matrix(bytes, 48, 64), nullptr);
  EXPECT_FALSE(RepackedWeights::can_repack(*kernels, repacked.matrix()));
}

// The reference fixes a float chain, not the exact sum; it must still agree with the row-layout
// Q8_0 reference (double sums) to float rounding.
TEST(RepackedWeightsTest, ReferenceAgreesWithRowLayoutReference) {
  const KernelTable& scalar = *kernels_for(Isa::kScalar);
  const int64_t n = 48, k = 800, m = 3;
  const std::vector<uint8_t> bytes = make_q8_0(n, k, 4);
  const RepackedWeights repacked(rows_matrix(bytes, n, k), nullptr);
  Prepared p = prepare(scalar, m, k, 5);
  const std::vector<float> y = run_reference(repacked.matrix(), p.x);
  std::vector<float> expected(m * n);
  matmul_rows(scalar, rows_matrix(bytes, n, k), p.x, expected.data(), n, 0, n);
  for (int64_t i = 0; i < m * n; ++i) {
    EXPECT_NEAR(y[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i]))) << i;
  }
}

// Every M from 1 to 9 (tile edges of every shape), odd numbers of groups, partial activation
// groups (k = 32, 96, 160), and row splits that cut through register tiles.
TEST(RepackedWeightsTest, FastKernelIsBitIdenticalToReference) {
  const KernelTable* kernels = repacking_kernels();
  if (kernels == nullptr) GTEST_SKIP() << "no kQ8_0x16 kernel on this CPU";
  for (int64_t k : {32, 96, 160, 768}) {
    for (int64_t n : {16, 48, 80, 144}) {
      const std::vector<uint8_t> bytes = make_q8_0(n, k, static_cast<uint32_t>(n + k));
      const RepackedWeights repacked(rows_matrix(bytes, n, k), nullptr);
      for (int64_t m = 1; m <= 9; ++m) {
        Prepared p = prepare(*kernels, m, k, static_cast<uint32_t>(m));
        const std::vector<float> expected = run_reference(repacked.matrix(), p.x);
        std::vector<float> y(m * n, kUnwritten);
        // [0, 16), [16, 64), [64, n): one group, then three (a 2-group tile and an edge).
        int64_t begin = 0;
        for (int64_t end : {int64_t{16}, int64_t{64}, n}) {
          end = std::min(end, n);
          if (end <= begin) continue;
          matmul_rows(*kernels, repacked.matrix(), p.x, y.data(), n, begin, end);
          begin = end;
        }
        for (int64_t i = 0; i < m * n; ++i) {
          ASSERT_EQ(y[i], expected[i]) << "k " << k << " n " << n << " m " << m << " at " << i;
        }
      }
    }
  }
}

// Through matmul(): any thread count, and a token alone equals the same token in a batch.
TEST(RepackedWeightsTest, ThreadedAndBatchedEqualSingle) {
  const KernelTable* kernels = repacking_kernels();
  if (kernels == nullptr) GTEST_SKIP() << "no kQ8_0x16 kernel on this CPU";
  const int64_t n = 112, k = 768, m = 7;
  const std::vector<uint8_t> bytes = make_q8_0(n, k, 6);
  const RepackedWeights repacked(rows_matrix(bytes, n, k), nullptr);
  const std::vector<float> x = random_normal(m * k, 7);
  auto run = [&](const float* rows, int64_t num_tokens, ThreadPool* pool) {
    AlignedBuffer scratch(matmul_scratch_bytes(WeightType::kQ8_0, num_tokens, k));
    std::vector<float> y(num_tokens * n, kUnwritten);
    matmul(*kernels,
           MatmulArgs{.w = repacked.matrix(),
                      .x = rows,
                      .num_tokens = num_tokens,
                      .x_stride = k,
                      .y = y.data(),
                      .y_stride = n,
                      .scratch = scratch.data()},
           pool);
    return y;
  };
  const std::vector<float> batched = run(x.data(), m, nullptr);
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(run(x.data(), m, &pool), batched) << threads << " threads";
  }
  for (int64_t i = 0; i < m; ++i) {
    const std::vector<float> alone = run(x.data() + i * k, 1, nullptr);
    EXPECT_EQ(alone, std::vector<float>(batched.begin() + i * n, batched.begin() + (i + 1) * n))
        << "token " << i;
  }
}

}  // namespace
}  // namespace ondol::kernels

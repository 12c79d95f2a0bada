// AVX2 matmul for F32, F16 and BF16 weights against F32 activations: weights widened to float in
// registers, FMA into one accumulator per (activation row, weight row). Compiled with -mavx2
// -mfma -mf16c.
#include <cstdint>
#include <cstring>

#include "engine/kernels/avx2/simd_avx2.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/tile_driver.h"

namespace ondol::kernels {
namespace {

using avx2::kFloatLanes;

struct F32Weights {
  static __m256 load(const uint8_t* row, int64_t c) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
  }
  // The last count (< 8) values, zero-filled, without reading past the row.
  static __m256 load_partial(const uint8_t* row, int64_t c, int64_t count) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(row) + c, avx2::low_mask(count));
  }
};

// 16-bit formats: 8 values are 16 bytes; a partial load goes through a zeroed stack buffer.
template <__m256 (*kWiden)(__m128i)>
struct Half16Weights {
  static __m256 load(const uint8_t* row, int64_t c) {
    return kWiden(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
  }
  static __m256 load_partial(const uint8_t* row, int64_t c, int64_t count) {
    uint16_t buffer[kFloatLanes] = {};
    std::memcpy(buffer, row + 2 * c, 2 * count);
    return kWiden(_mm_loadu_si128(reinterpret_cast<const __m128i*>(buffer)));
  }
};

__m256 widen_f16(__m128i h) {
  return _mm256_cvtph_ps(h);
}
__m256 widen_bf16(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <class Weights>
struct FloatKernel {
  static constexpr int kTileM = 4;
  static constexpr int kTileN = 3;
  static constexpr int kGemvTileN = 4;

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0) {
    const uint8_t* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n) w[n] = t.w + (n0 + n) * t.w_row_bytes;
    const float* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m)
      x[m] = reinterpret_cast<const float*>(t.x + (m0 + m) * t.x_row_bytes);

    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm256_setzero_ps();
    }
    const int64_t k_whole = t.k / kFloatLanes * kFloatLanes;
    for (int64_t c = 0; c < k_whole; c += kFloatLanes) {
      __m256 wv[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) wv[n] = Weights::load(w[n], c);
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const __m256 xv = _mm256_loadu_ps(x[m] + c);
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) acc[m][n] = _mm256_fmadd_ps(wv[n], xv, acc[m][n]);
      }
    }
    if (k_whole < t.k) {
      const int64_t count = t.k - k_whole;
      __m256 wv[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) wv[n] = Weights::load_partial(w[n], k_whole, count);
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const __m256 xv = _mm256_maskload_ps(x[m] + k_whole, avx2::low_mask(count));
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) acc[m][n] = _mm256_fmadd_ps(wv[n], xv, acc[m][n]);
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) t.y[(m0 + m) * t.y_stride + n0 + n] = avx2::hsum(acc[m][n]);
    }
  }
};

void matmul_f32(const MatmulTask& t) {
  run_tiles<FloatKernel<F32Weights>>(t);
}
void matmul_f16(const MatmulTask& t) {
  run_tiles<FloatKernel<Half16Weights<widen_f16>>>(t);
}
void matmul_bf16(const MatmulTask& t) {
  run_tiles<FloatKernel<Half16Weights<widen_bf16>>>(t);
}

}  // namespace

void register_avx2_matmul_float(KernelTable& table) {
  table.matmul[weight_type_index(WeightType::kF32)] = {ActivationType::kF32, nullptr, matmul_f32};
  table.matmul[weight_type_index(WeightType::kF16)] = {ActivationType::kF32, nullptr, matmul_f16};
  table.matmul[weight_type_index(WeightType::kBF16)] = {ActivationType::kF32, nullptr, matmul_bf16};
}

}  // namespace ondol::kernels

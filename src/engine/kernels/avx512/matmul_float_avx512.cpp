// AVX-512 matmul for F32 and F16 weights against F32 activations: weights widened to float in
// registers, FMA into one accumulator per (activation row, weight row). Compiled with -mavx512f
// -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c.
#include <cstdint>

#include "engine/kernels/avx512/simd_avx512.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/tile_driver.h"

namespace ondol::kernels {
namespace {

using avx512::kFloatLanes;
using avx512::low_mask16;

struct F32Weights {
  static __m512 load(const uint8_t* row, int64_t c) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + c);
  }
  static __m512 load_partial(const uint8_t* row, int64_t c, __mmask16 mask) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + c);
  }
};

struct F16Weights {
  static __m512 load(const uint8_t* row, int64_t c) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(row) + c)));
  }
  static __m512 load_partial(const uint8_t* row, int64_t c, __mmask16 mask) {
    return _mm512_cvtph_ps(
        _mm256_maskz_loadu_epi16(mask, reinterpret_cast<const uint16_t*>(row) + c));
  }
};

template <class Weights>
struct FloatKernel {
  static constexpr int kTileM = 4;
  static constexpr int kTileN = 4;
  static constexpr int kGemvTileN = 8;

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0) {
    const uint8_t* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n) w[n] = t.w + (n0 + n) * t.w_row_bytes;
    const float* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m)
      x[m] = reinterpret_cast<const float*>(t.x + (m0 + m) * t.x_row_bytes);

    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_setzero_ps();
    }
    const int64_t k_whole = t.k / kFloatLanes * kFloatLanes;
    for (int64_t c = 0; c < k_whole; c += kFloatLanes) {
      __m512 wv[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) wv[n] = Weights::load(w[n], c);
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const __m512 xv = _mm512_loadu_ps(x[m] + c);
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_fmadd_ps(wv[n], xv, acc[m][n]);
      }
    }
    if (k_whole < t.k) {  // masked loads read nothing past the row
      const __mmask16 mask = low_mask16(t.k - k_whole);
      __m512 wv[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) wv[n] = Weights::load_partial(w[n], k_whole, mask);
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x[m] + k_whole);
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_fmadd_ps(wv[n], xv, acc[m][n]);
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n)
        t.y[(m0 + m) * t.y_stride + n0 + n] = _mm512_reduce_add_ps(acc[m][n]);
    }
  }
};

void matmul_f32(const MatmulTask& t) {
  run_tiles<FloatKernel<F32Weights>>(t);
}
void matmul_f16(const MatmulTask& t) {
  run_tiles<FloatKernel<F16Weights>>(t);
}

}  // namespace

void register_avx512_matmul_float(KernelTable& table) {
  table.matmul[weight_type_index(WeightType::kF32)] = {ActivationType::kF32, nullptr, matmul_f32};
  table.matmul[weight_type_index(WeightType::kF16)] = {ActivationType::kF32, nullptr, matmul_f16};
}

}  // namespace ondol::kernels

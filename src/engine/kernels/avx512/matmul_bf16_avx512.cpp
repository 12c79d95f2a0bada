// AVX-512 BF16 matmul: activations rounded to bf16 once, then vdpbf16ps multiplies 32 bf16 pairs
// per instruction into float lanes. Compiled with the avx512 flags plus -mavx512bf16; registered
// only when the CPU has avx512bf16.
#include <cstdint>
#include <cstring>

#include "engine/kernels/activation_layout.h"
#include "engine/kernels/avx512/simd_avx512.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/tile_driver.h"

namespace ondol::kernels {
namespace {

using avx512::kFloatLanes;
using avx512::low_mask16;
using avx512::low_mask32;

constexpr int64_t kBf16Lanes = 32;  // bf16 values per 512-bit register

void prepare_bf16(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                  int64_t out_row_bytes) {
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * x_stride;
    auto* prepared = reinterpret_cast<uint16_t*>(out + i * out_row_bytes);
    std::memset(prepared, 0, out_row_bytes);  // the zero padding the kernel's loads rely on
    for (int64_t c = 0; c < k; c += kFloatLanes) {
      const __mmask16 mask = low_mask16(k - c);
      const __m512i bits = avx512::fp32_to_bf16_bits(_mm512_maskz_loadu_ps(mask, row + c));
      _mm256_mask_storeu_epi16(prepared + c, mask, _mm512_cvtepi32_epi16(bits));
    }
  }
}

struct Bf16Kernel {
  static constexpr int kTileM = 4;
  static constexpr int kTileN = 4;
  static constexpr int kGemvTileN = 8;

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0) {
    const uint16_t* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n)
      w[n] = reinterpret_cast<const uint16_t*>(t.w + (n0 + n) * t.w_row_bytes);
    const uint16_t* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m)
      x[m] = reinterpret_cast<const uint16_t*>(t.x + (m0 + m) * t.x_row_bytes);

    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_setzero_ps();
    }
    // Activation rows are zero-padded to kBf16PadElems, so only weight loads need a mask.
    for (int64_t c = 0; c < t.k; c += kBf16Lanes) {
      const __mmask32 mask = low_mask32(t.k - c);
      __m512bh wv[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) wv[n] = (__m512bh)_mm512_maskz_loadu_epi16(mask, w[n] + c);
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(x[m] + c);
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_dpbf16_ps(acc[m][n], wv[n], xv);
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

void matmul_bf16(const MatmulTask& t) {
  run_tiles<Bf16Kernel>(t);
}

}  // namespace

void register_avx512_matmul_bf16(KernelTable& table) {
  table.matmul[weight_type_index(WeightType::kBF16)] = {ActivationType::kBF16, prepare_bf16,
                                                        matmul_bf16};
}

}  // namespace ondol::kernels

// AVX-512 VNNI matmul for Q8_0 weights repacked as kQ8_0x16 (q8_0x16_layout.h) against kQ8x32
// activations. Each 512-bit weight chunk holds 4 values of 16 rows, so one vpdpbusd against a
// broadcast of 4 activation bytes advances 16 outputs, with no unpacking of weights: 8 vpdpbusd
// per block and 16 rows, then one convert and one FMA apply the scales. Compiled with the avx512/
// flags (-mavx512vnni).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "engine/kernels/activation_layout.h"
#include "engine/kernels/avx512/simd_avx512.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/q8_0x16_layout.h"
#include "engine/kernels/tile_driver.h"

namespace ondol::kernels {
namespace {

// Where block b of a kQ8x32 row keeps what the kernel broadcasts.
struct ActivationBlock {
  const uint8_t* group;
  int64_t j;  // block within its group of 4

  // Activation values 4c..4c+3 as one int32 (values 0..15 sit in the group's low half).
  int32_t chunk(int c) const {
    const int64_t offset =
        c < kQ8_0x16Chunks / 2
            ? kQ8x32HalfBlockElems * j + 4 * c
            : kQ8x32GroupElems / 2 + kQ8x32HalfBlockElems * j + 4 * (c - kQ8_0x16Chunks / 2);
    int32_t v;
    std::memcpy(&v, group + offset, sizeof(v));
    return v;
  }
  float scale() const {
    float d;
    std::memcpy(&d, group + kQ8x32ScaleOffset + 4 * sizeof(float) * j, sizeof(d));
    return d;
  }
  int32_t correction() const {
    int32_t c;
    std::memcpy(&c, group + kQ8x32CorrectionOffset + 4 * sizeof(int32_t) * j, sizeof(c));
    return c;
  }
};

// Tiles of RM activation rows x RN groups of 16 weight rows; n0 is a weight row (a multiple of
// 16). Per block, output (m, n) gets acc = fma(float(dot), w_scale * x_scale, acc): the chain of
// matmul_q8_0x16_reference, so any tile shape gives the same bits.
struct Q8_0x16Kernel {
  static constexpr int64_t kCacheLine = 64;
  static constexpr int kTileM = 6;
  static constexpr int kTileN = 2;
  static constexpr int kGemvTileN = 4;

  // Weight bytes to fetch into L2 while this tile computes, spread evenly over its blocks.
  struct Prefetch {
    const uint8_t* begin = nullptr;
    int64_t bytes = 0;
  };

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0, Prefetch prefetch = {}) {
    const int64_t num_blocks = t.k / kQ8x32BlockElems;
    const uint8_t* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n) w[n] = t.w + (n0 + n * kQ8_0x16Rows) * t.w_row_bytes;
    const uint8_t* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) x[m] = t.x + (m0 + m) * t.x_row_bytes;

    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_setzero_ps();
    }
    const int64_t prefetch_lines = (prefetch.bytes + kCacheLine - 1) / kCacheLine;
    int64_t prefetched = 0;  // lines
    for (int64_t b = 0; b < num_blocks; ++b) {
      for (const int64_t until = prefetch_lines * (b + 1) / num_blocks; prefetched < until;
           ++prefetched) {
        _mm_prefetch(reinterpret_cast<const char*>(prefetch.begin + prefetched * kCacheLine),
                     _MM_HINT_T1);
      }
      ActivationBlock xb[RM];
      __m512i dot[RM][RN];
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        xb[m] = {x[m] + b / kQ8x32GroupBlocks * kQ8x32GroupBytes, b % kQ8x32GroupBlocks};
        // Starting at the correction leaves the signed dot product (see activation_layout.h).
        const __m512i correction = _mm512_set1_epi32(xb[m].correction());
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) dot[m][n] = correction;
      }
#pragma GCC unroll 8
      for (int c = 0; c < kQ8_0x16Chunks; ++c) {
        __m512i wc[RN];
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) {
          wc[n] = _mm512_load_si512(w[n] + b * kQ8_0x16BlockBytes + c * kQ8_0x16ChunkBytes);
        }
#pragma GCC unroll 8
        for (int m = 0; m < RM; ++m) {
          const __m512i xc = _mm512_set1_epi32(xb[m].chunk(c));
#pragma GCC unroll 8
          for (int n = 0; n < RN; ++n) dot[m][n] = _mm512_dpbusd_epi32(dot[m][n], wc[n], xc);
        }
      }
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) {
        const __m512 w_scale = _mm512_load_ps(
            reinterpret_cast<const float*>(w[n] + b * kQ8_0x16BlockBytes + kQ8_0x16ScaleOffset));
#pragma GCC unroll 8
        for (int m = 0; m < RM; ++m) {
          const __m512 scale = _mm512_mul_ps(w_scale, _mm512_set1_ps(xb[m].scale()));
          acc[m][n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m][n]), scale, acc[m][n]);
        }
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) {
        _mm512_storeu_ps(t.y + (m0 + m) * t.y_stride + n0 + n * kQ8_0x16Rows, acc[m][n]);
      }
    }
  }
};

// run_tiles with N counted in 16-row groups; [n_begin, n_end) are whole groups.
void matmul_q8_0x16(const MatmulTask& t) {
  using Kernel = Q8_0x16Kernel;
  const int64_t g_begin = t.n_begin / kQ8_0x16Rows;
  const int64_t g_end = t.n_end / kQ8_0x16Rows;
  if (t.m == 1) {
    constexpr int kRn = Kernel::kGemvTileN;
    for (int64_t g = g_begin; g < g_end; g += kRn) {
      dispatch_tile<Kernel, 1, kRn>(1, clamp_tile(g_end - g, kRn), t, 0, g * kQ8_0x16Rows);
    }
    return;
  }
  // While the row tiles of one column of groups compute, the next column's weights are fetched
  // into L2, a share per row tile spread over its blocks: once W streams from memory, the
  // hardware prefetcher alone leaves the kernel waiting, and fetching the whole next column
  // during the first row tile left the memory idle during the others (M = 16 decode of
  // llama-110m: 4.7 -> 3.9 ms of matmul a step). M = 1 is faster without.
  constexpr int kRm = Kernel::kTileM;
  constexpr int kRn = Kernel::kTileN;
  const int64_t group_bytes = kQ8_0x16Rows * t.w_row_bytes;
  const int64_t num_m_tiles = (t.m + kRm - 1) / kRm;
  for (int64_t g = g_begin; g < g_end; g += kRn) {
    const int rn = clamp_tile(g_end - g, kRn);
    const uint8_t* next = t.w + (g + rn) * group_bytes;
    const int64_t next_bytes = std::min<int64_t>(kRn, g_end - g - rn) * group_bytes;
    for (int64_t i = 0; i < num_m_tiles; ++i) {
      const int64_t from = next_bytes * i / num_m_tiles, to = next_bytes * (i + 1) / num_m_tiles;
      const Kernel::Prefetch share{next + from, to - from};
      dispatch_tile<Kernel, kRm, kRn>(clamp_tile(t.m - i * kRm, kRm), rn, t, i * kRm,
                                      g * kQ8_0x16Rows, share);
    }
  }
}

}  // namespace

void register_avx512_matmul_q8_0x16(KernelTable& table) {
  // The same activations as the row-layout Q8_0 kernel of this level.
  const MatmulKernel& q8_0 = table.matmul[weight_type_index(WeightType::kQ8_0)];
  table.matmul_q8_0x16 = {ActivationType::kQ8x32, q8_0.prepare, matmul_q8_0x16};
}

}  // namespace ondol::kernels

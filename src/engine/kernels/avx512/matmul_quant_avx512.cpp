// AVX-512 + VNNI matmul for the integer formats (Q8_0, Q4_0 against kQ8x32 activations; Q4_K
// against kQ8x256), and the activation quantizers feeding them. Compiled with -mavx512f
// -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c.
#include <cstdint>
#include <cstring>

#include "engine/kernels/activation_layout.h"
#include "engine/kernels/avx512/simd_avx512.h"
#include "engine/kernels/block_formats.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/q8x32_tail.h"
#include "engine/kernels/tile_driver.h"

namespace ondol::kernels {
namespace {

using avx512::kFloatLanes;

float half_to_float(uint16_t h) {
  return _cvtsh_ss(h);
}

// ---- activation quantizers (bit-exact with scalar/matmul_scalar.cpp) ----

// 32 floats -> 32 int8 at x * inverse, rounded to nearest even; returns their sum.
int32_t quantize_block32(const float* x, float inverse, int8_t* lo16, int8_t* hi16) {
  const __m512 scale = _mm512_set1_ps(inverse);
  const __m512i a = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), scale));
  const __m512i b = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + kFloatLanes), scale));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lo16), _mm512_cvtepi32_epi8(a));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(hi16), _mm512_cvtepi32_epi8(b));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(a, b));
}

float abs_max(const float* x, int64_t n) {  // n a multiple of 16
  __m512 amax = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  }
  return _mm512_reduce_max_ps(amax);
}

template <int32_t kOffset>
void prepare_q8x32(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                   int64_t out_row_bytes) {
  const int64_t num_blocks = k / kQ8x32BlockElems;
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * x_stride;
    uint8_t* prepared = out + i * out_row_bytes;
    std::memset(prepared, 0, out_row_bytes);
    for (int64_t b = 0; b < num_blocks; ++b) {
      uint8_t* group = prepared + b / kQ8x32GroupBlocks * kQ8x32GroupBytes;
      const int64_t j = b % kQ8x32GroupBlocks;
      const float* xb = row + b * kQ8x32BlockElems;
      const float d = abs_max(xb, kQ8x32BlockElems) / kQ8MaxMagnitude;
      const float inverse = d != 0 ? 1.0f / d : 0.0f;
      auto* qs = reinterpret_cast<int8_t*>(group);
      const int32_t sum = quantize_block32(xb, inverse, qs + kQ8x32HalfBlockElems * j,
                                           qs + kQ8x32GroupElems / 2 + kQ8x32HalfBlockElems * j);
      _mm_storeu_ps(reinterpret_cast<float*>(group + kQ8x32ScaleOffset) + 4 * j, _mm_set1_ps(d));
      reinterpret_cast<int32_t*>(group + kQ8x32CorrectionOffset)[4 * j] = -kOffset * sum;
    }
  }
}

void prepare_q8x256(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                    int64_t out_row_bytes) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < k / kQ8x256BlockElems; ++b) {
      const float* xb = x + i * x_stride + b * kQ8x256BlockElems;
      uint8_t* block = out + i * out_row_bytes + b * kQ8x256BlockBytes;
      const float d = abs_max(xb, kQ8x256BlockElems) / kQ8MaxMagnitude;
      const float inverse = d != 0 ? 1.0f / d : 0.0f;
      auto* sums = reinterpret_cast<float*>(block + kQ8x256SumsOffset);
      for (int j = 0; j < kQ8x256SubBlocks; ++j) {
        auto* qs = reinterpret_cast<int8_t*>(block) + kQ8x256SubBlockSlot[j] * kQ8x256SubBlockElems;
        const int32_t sum = quantize_block32(xb + j * kQ8x256SubBlockElems, inverse, qs,
                                             qs + kQ8x256SubBlockElems / 2);
        sums[j] = d * static_cast<float>(sum);
      }
      float* tail = reinterpret_cast<float*>(block + kQ8x256ScaleOffset);
      std::memset(tail, 0, kQ8x256BlockBytes - kQ8x256ScaleOffset);
      *tail = d;
    }
  }
}

// ---- Q8_0 / Q4_0 x kQ8x32 ----

// Four consecutive weight blocks in the kQ8x32 group order, as unsigned bytes (the format's
// offset added), and their scales expanded to the 4-lanes-per-block layout.
struct WeightGroup {
  __m512i lo;  // values 0..15 of blocks 0..3
  __m512i hi;  // values 16..31 of blocks 0..3
  __m512 d;
};

__m512 expand_scales(uint16_t d0, uint16_t d1, uint16_t d2, uint16_t d3) {
  const __m128 d =
      _mm_cvtph_ps(_mm_setr_epi16(static_cast<int16_t>(d0), static_cast<int16_t>(d1),
                                  static_cast<int16_t>(d2), static_cast<int16_t>(d3), 0, 0, 0, 0));
  const __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  return _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(d));
}

struct Q8_0Format {
  static constexpr int32_t kOffset = kQ8x32OffsetForQ8_0;
  using Block = BlockQ8_0;

  static WeightGroup load(const Block* b) {
    const auto load32 = [](const Block& block) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs));
    };
    const __m512i b01 = _mm512_inserti64x4(_mm512_castsi256_si512(load32(b[0])), load32(b[1]), 1);
    const __m512i b23 = _mm512_inserti64x4(_mm512_castsi256_si512(load32(b[2])), load32(b[3]), 1);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));  // int8 -> uint8 + 128
    return {_mm512_xor_si512(_mm512_shuffle_i64x2(b01, b23, _MM_SHUFFLE(2, 0, 2, 0)), flip),
            _mm512_xor_si512(_mm512_shuffle_i64x2(b01, b23, _MM_SHUFFLE(3, 1, 3, 1)), flip),
            expand_scales(b[0].d, b[1].d, b[2].d, b[3].d)};
  }

  static int value(const Block& b, int e) { return b.qs[e]; }
};

struct Q4_0Format {
  static constexpr int32_t kOffset = kQ8x32OffsetForQ4_0;
  using Block = BlockQ4_0;

  static WeightGroup load(const Block* b) {
    const auto load16 = [](const Block& block) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    };
    __m512i v = _mm512_castsi128_si512(load16(b[0]));
    v = _mm512_inserti32x4(v, load16(b[1]), 1);
    v = _mm512_inserti32x4(v, load16(b[2]), 2);
    v = _mm512_inserti32x4(v, load16(b[3]), 3);
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    return {_mm512_and_si512(v, nibble), _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble),
            expand_scales(b[0].d, b[1].d, b[2].d, b[3].d)};
  }

  static int value(const Block& b, int e) {
    constexpr int kHalf = kQ4_0BlockElems / 2;
    return (e < kHalf ? b.qs[e] & 0xF : b.qs[e - kHalf] >> 4) - kQ4_0Offset;
  }
};

template <class Format>
struct Q8x32Kernel {
  static constexpr int kTileM = 4;
  static constexpr int kTileN = 3;
  static constexpr int kGemvTileN = 4;

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0) {
    using Block = typename Format::Block;
    const int64_t num_blocks = t.k / kQ8x32BlockElems;
    const int64_t num_groups = num_blocks / kQ8x32GroupBlocks;
    const Block* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n)
      w[n] = reinterpret_cast<const Block*>(t.w + (n0 + n) * t.w_row_bytes);
    const uint8_t* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) x[m] = t.x + (m0 + m) * t.x_row_bytes;

    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < num_groups; ++g) {
      WeightGroup wg[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) wg[n] = Format::load(w[n] + g * kQ8x32GroupBlocks);
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const uint8_t* xg = x[m] + g * kQ8x32GroupBytes;
        const __m512i x_lo = _mm512_loadu_si512(xg);
        const __m512i x_hi = _mm512_loadu_si512(xg + kQ8x32GroupElems / 2);
        const __m512 dx = _mm512_loadu_ps(reinterpret_cast<const float*>(xg + kQ8x32ScaleOffset));
        const __m512i correction = _mm512_loadu_si512(xg + kQ8x32CorrectionOffset);
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) {
          // Starting at the correction leaves the signed dot product of each block in its lanes.
          __m512i dot = _mm512_dpbusd_epi32(correction, wg[n].lo, x_lo);
          dot = _mm512_dpbusd_epi32(dot, wg[n].hi, x_hi);
          acc[m][n] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wg[n].d, dx), acc[m][n]);
        }
      }
    }
    const int64_t first_tail = num_groups * kQ8x32GroupBlocks;
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) {
        float sum = _mm512_reduce_add_ps(acc[m][n]);
        if (first_tail < num_blocks)
          sum += dot_q8x32_tail<Format>(w[n], x[m], first_tail, num_blocks);
        t.y[(m0 + m) * t.y_stride + n0 + n] = sum;
      }
    }
  }
};

// ---- Q4_K x kQ8x256 ----

// The 6-bit scales of a Q4_K block as 8 words, and its mins as 8 floats times -dmin.
struct Q4KScales {
  __m128i scale_words;
  __m256 neg_mins;
};

Q4KScales unpack_q4_k_scales(const BlockQ4_K& block) {
  uint32_t w[3];
  std::memcpy(w, block.scales, sizeof(w));
  constexpr uint32_t kLow6 = 0x3F3F3F3F, kLow4 = 0x0F0F0F0F, kLow2 = 0x03030303;
  const uint32_t scales_0_3 = w[0] & kLow6;
  const uint32_t mins_0_3 = w[1] & kLow6;
  const uint32_t scales_4_7 = (w[2] & kLow4) | (((w[0] >> 6) & kLow2) << 4);
  const uint32_t mins_4_7 = ((w[2] >> 4) & kLow4) | (((w[1] >> 6) & kLow2) << 4);
  const __m128i bytes = _mm_setr_epi32(static_cast<int>(scales_0_3), static_cast<int>(scales_4_7),
                                       static_cast<int>(mins_0_3), static_cast<int>(mins_4_7));
  const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
  return {_mm_cvtepu8_epi16(bytes),
          _mm256_mul_ps(mins, _mm256_set1_ps(-half_to_float(block.dmin)))};
}

// Words [scale a x16, scale b x16] for a maddubs result covering sub-blocks a and b.
__m512i scale_pair(__m128i scale_words, int a, int b) {
  const __m512i index = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(a)),
                                           _mm256_set1_epi16(static_cast<int16_t>(b)), 1);
  return _mm512_permutexvar_epi16(index, _mm512_castsi128_si512(scale_words));
}

struct Q4KKernel {
  static constexpr int kTileM = 4;
  static constexpr int kTileN = 2;
  static constexpr int kGemvTileN = 4;
  static constexpr int kHalves = 2;  // a block's 128 quant bytes as two 64-byte loads

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0) {
    const int64_t num_blocks = t.k / kQ4_KBlockElems;
    const BlockQ4_K* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n) {
      w[n] = reinterpret_cast<const BlockQ4_K*>(t.w + (n0 + n) * t.w_row_bytes);
    }
    const uint8_t* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) x[m] = t.x + (m0 + m) * t.x_row_bytes;

    const __m512i nibble = _mm512_set1_epi8(0x0F);
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < num_blocks; ++b) {
      Q4KScales scales[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) scales[n] = unpack_q4_k_scales(w[n][b]);
      // sum over sub-blocks of scale * (q . x), per lane
      __m512i dot[RM][RN];
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) dot[m][n] = _mm512_setzero_si512();
      }
#pragma GCC unroll 8
      for (int h = 0; h < kHalves; ++h) {
        // Low nibbles hold sub-blocks 4h and 4h+2, high nibbles 4h+1 and 4h+3.
        __m512i lo[RN], hi[RN], scale_lo[RN], scale_hi[RN];
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) {
          const __m512i q = _mm512_loadu_si512(w[n][b].qs + h * 64);
          lo[n] = _mm512_and_si512(q, nibble);
          hi[n] = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble);
          scale_lo[n] = scale_pair(scales[n].scale_words, 4 * h, 4 * h + 2);
          scale_hi[n] = scale_pair(scales[n].scale_words, 4 * h + 1, 4 * h + 3);
        }
#pragma GCC unroll 8
        for (int m = 0; m < RM; ++m) {
          const uint8_t* xq = x[m] + b * kQ8x256BlockBytes + h * 128;
          const __m512i x_lo = _mm512_loadu_si512(xq);
          const __m512i x_hi = _mm512_loadu_si512(xq + 64);
#pragma GCC unroll 8
          for (int n = 0; n < RN; ++n) {
            // u4 x s8 pairs fit int16 (2 * 15 * 127); the scale multiply joins the widening add.
            dot[m][n] =
                _mm512_dpwssd_epi32(dot[m][n], _mm512_maddubs_epi16(lo[n], x_lo), scale_lo[n]);
            dot[m][n] =
                _mm512_dpwssd_epi32(dot[m][n], _mm512_maddubs_epi16(hi[n], x_hi), scale_hi[n]);
          }
        }
      }
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const uint8_t* xb = x[m] + b * kQ8x256BlockBytes;
        const float dx = *reinterpret_cast<const float*>(xb + kQ8x256ScaleOffset);
        const __m512 dsum = _mm512_zextps256_ps512(
            _mm256_loadu_ps(reinterpret_cast<const float*>(xb + kQ8x256SumsOffset)));
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) {
          const __m512 d = _mm512_set1_ps(half_to_float(w[n][b].d) * dx);
          acc[m][n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m][n]), d, acc[m][n]);
          // min term: -dmin * m_j * (dx * sum of x in sub-block j), lanes 0..7
          acc[m][n] = _mm512_fmadd_ps(_mm512_zextps256_ps512(scales[n].neg_mins), dsum, acc[m][n]);
        }
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

void matmul_q8_0(const MatmulTask& t) {
  run_tiles<Q8x32Kernel<Q8_0Format>>(t);
}
void matmul_q4_0(const MatmulTask& t) {
  run_tiles<Q8x32Kernel<Q4_0Format>>(t);
}
void matmul_q4_k(const MatmulTask& t) {
  run_tiles<Q4KKernel>(t);
}

}  // namespace

void register_avx512_matmul_quant(KernelTable& table) {
  table.matmul[weight_type_index(WeightType::kQ8_0)] = {
      ActivationType::kQ8x32, prepare_q8x32<kQ8x32OffsetForQ8_0>, matmul_q8_0};
  table.matmul[weight_type_index(WeightType::kQ4_0)] = {
      ActivationType::kQ8x32, prepare_q8x32<kQ8x32OffsetForQ4_0>, matmul_q4_0};
  table.matmul[weight_type_index(WeightType::kQ4_K)] = {ActivationType::kQ8x256, prepare_q8x256,
                                                        matmul_q4_k};
}

}  // namespace ondol::kernels

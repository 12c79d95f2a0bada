// AVX2 matmul for the integer formats (Q8_0, Q4_0 against kQ8x32 activations; Q4_K against
// kQ8x256) and the activation quantizers feeding them. Without VNNI the int8 products go through
// vpmaddubsw (u8 x s8 -> pairs summed in int16) and vpmaddwd (-> int32). Compiled with -mavx2
// -mfma -mf16c.
#include <cstdint>
#include <cstring>

#include "engine/kernels/activation_layout.h"
#include "engine/kernels/avx2/simd_avx2.h"
#include "engine/kernels/block_formats.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/q8x32_tail.h"
#include "engine/kernels/tile_driver.h"

namespace ondol::kernels {
namespace {

using avx2::kFloatLanes;

float half_to_float(uint16_t h) {
  return _cvtsh_ss(h);
}

// ---- activation quantizers (bit-exact with scalar/matmul_scalar.cpp) ----

float abs_max(const float* x, int64_t n) {  // n a multiple of 8
  __m256 amax = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes)
    amax = _mm256_max_ps(amax, avx2::abs_ps(_mm256_loadu_ps(x + i)));
  return avx2::hmax(amax);
}

// 32 floats -> 32 int8 at x * inverse, rounded to nearest even, values 0..15 to lo16 and 16..31
// to hi16; returns their sum.
int32_t quantize_block32(const float* x, float inverse, int8_t* lo16, int8_t* hi16) {
  const __m256 scale = _mm256_set1_ps(inverse);
  __m256i q[4];
  for (int i = 0; i < 4; ++i)
    q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), scale));
  // packs work within 128-bit lanes; the permute puts the 4-byte groups back in order.
  const __m256i packed = _mm256_permutevar8x32_epi32(
      _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])),
      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lo16), _mm256_castsi256_si128(packed));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(hi16), _mm256_extracti128_si256(packed, 1));
  return avx2::hsum_epi32(
      _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

template <int32_t kOffset>
void prepare_q8x32(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                   int64_t out_row_bytes) {
  for (int64_t i = 0; i < m; ++i) {
    uint8_t* prepared = out + i * out_row_bytes;
    std::memset(prepared, 0, out_row_bytes);
    for (int64_t b = 0; b < k / kQ8x32BlockElems; ++b) {
      uint8_t* group = prepared + b / kQ8x32GroupBlocks * kQ8x32GroupBytes;
      const int64_t j = b % kQ8x32GroupBlocks;
      const float* xb = x + i * x_stride + b * kQ8x32BlockElems;
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

// ---- Q8_0 / Q4_0 x kQ8x32, half a group (2 blocks) per step ----

// Two consecutive weight blocks: values 0..15 of both in `lo`, 16..31 in `hi`, and scales as
// [d0 x4, d1 x4] to match the activation's lanes.
struct WeightPair {
  __m256i lo;
  __m256i hi;
  __m256 d;
};

__m256 pair_scales(uint16_t d0, uint16_t d1) {
  return _mm256_set_m128(_mm_set1_ps(half_to_float(d1)), _mm_set1_ps(half_to_float(d0)));
}

__m256i combine(const void* low, const void* high) {
  return _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(low))),
      _mm_loadu_si128(static_cast<const __m128i*>(high)), 1);
}

// Sum over 4-byte groups of u8 x s8 products with int16 intermediate sums.
__m256i dot_u8_s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

struct Q8_0Format {
  using Block = BlockQ8_0;
  static WeightPair load(const Block* b) {
    return {combine(b[0].qs, b[1].qs), combine(b[0].qs + 16, b[1].qs + 16),
            pair_scales(b[0].d, b[1].d)};
  }
  // Signed x signed through the unsigned instruction: |w| x (x with w's sign). Each int16 sum
  // stays within 2 * 128 * 127, so lo and hi are widened separately.
  static __m256i dot(const WeightPair& w, __m256i x_lo, __m256i x_hi, __m256i /*correction*/) {
    return _mm256_add_epi32(dot_u8_s8(_mm256_abs_epi8(w.lo), _mm256_sign_epi8(x_lo, w.lo)),
                            dot_u8_s8(_mm256_abs_epi8(w.hi), _mm256_sign_epi8(x_hi, w.hi)));
  }
  static int value(const Block& b, int e) { return b.qs[e]; }
};

struct Q4_0Format {
  using Block = BlockQ4_0;
  static WeightPair load(const Block* b) {
    const __m256i v = combine(b[0].qs, b[1].qs);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    return {_mm256_and_si256(v, nibble), _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble),
            pair_scales(b[0].d, b[1].d)};
  }
  // Nibbles are unsigned: u4 x s8 pairs of lo and hi together stay within 4 * 15 * 127 in int16;
  // the correction (-8 * sum x) makes the result signed.
  static __m256i dot(const WeightPair& w, __m256i x_lo, __m256i x_hi, __m256i correction) {
    const __m256i pairs =
        _mm256_add_epi16(_mm256_maddubs_epi16(w.lo, x_lo), _mm256_maddubs_epi16(w.hi, x_hi));
    return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), correction);
  }
  static int value(const Block& b, int e) {
    constexpr int kHalf = kQ4_0BlockElems / 2;
    return (e < kHalf ? b.qs[e] & 0xF : b.qs[e - kHalf] >> 4) - kQ4_0Offset;
  }
};

template <class Format>
struct Q8x32Kernel {
  static constexpr int kTileM = 2;
  static constexpr int kTileN = 2;
  static constexpr int kGemvTileN = 2;
  static constexpr int kPairsPerGroup = 2;

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

    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm256_setzero_ps();
    }
    for (int64_t g = 0; g < num_groups; ++g) {
#pragma GCC unroll 8
      for (int p = 0; p < kPairsPerGroup; ++p) {
        WeightPair wp[RN];
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) wp[n] = Format::load(w[n] + g * kQ8x32GroupBlocks + 2 * p);
#pragma GCC unroll 8
        for (int m = 0; m < RM; ++m) {
          const uint8_t* xg = x[m] + g * kQ8x32GroupBytes;
          const __m256i x_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 32 * p));
          const __m256i x_hi =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 64 + 32 * p));
          const __m256 dx =
              _mm256_loadu_ps(reinterpret_cast<const float*>(xg + kQ8x32ScaleOffset) + 8 * p);
          const __m256i correction =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + kQ8x32CorrectionOffset) + p);
#pragma GCC unroll 8
          for (int n = 0; n < RN; ++n) {
            const __m256i dot = Format::dot(wp[n], x_lo, x_hi, correction);
            acc[m][n] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(wp[n].d, dx), acc[m][n]);
          }
        }
      }
    }
    const int64_t first_tail = num_groups * kQ8x32GroupBlocks;
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) {
        float sum = avx2::hsum(acc[m][n]);
        if (first_tail < num_blocks)
          sum += dot_q8x32_tail<Format>(w[n], x[m], first_tail, num_blocks);
        t.y[(m0 + m) * t.y_stride + n0 + n] = sum;
      }
    }
  }
};

// ---- Q4_K x kQ8x256 ----

struct Q4KScales {
  uint8_t scale[kQ4_KSubBlocks];
  __m256 neg_mins;  // -dmin * m_j
};

Q4KScales unpack_q4_k_scales(const BlockQ4_K& block) {
  uint32_t w[3];
  std::memcpy(w, block.scales, sizeof(w));
  constexpr uint32_t kLow6 = 0x3F3F3F3F, kLow4 = 0x0F0F0F0F, kLow2 = 0x03030303;
  const uint32_t unpacked[4] = {w[0] & kLow6, (w[2] & kLow4) | (((w[0] >> 6) & kLow2) << 4),
                                w[1] & kLow6, ((w[2] >> 4) & kLow4) | (((w[1] >> 6) & kLow2) << 4)};
  Q4KScales s;
  std::memcpy(s.scale, unpacked, sizeof(s.scale));
  const __m256 mins = _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(unpacked + 2))));
  s.neg_mins = _mm256_mul_ps(mins, _mm256_set1_ps(-half_to_float(block.dmin)));
  return s;
}

struct Q4KKernel {
  static constexpr int kTileM = 2;
  static constexpr int kTileN = 2;
  static constexpr int kGemvTileN = 2;
  static constexpr int kChunks = 4;  // 32 quant bytes each: sub-blocks 2c (low) and 2c+1 (high)

  template <int RM, int RN>
  static void tile(const MatmulTask& t, int64_t m0, int64_t n0) {
    const int64_t num_blocks = t.k / kQ4_KBlockElems;
    const BlockQ4_K* w[RN];
#pragma GCC unroll 8
    for (int n = 0; n < RN; ++n)
      w[n] = reinterpret_cast<const BlockQ4_K*>(t.w + (n0 + n) * t.w_row_bytes);
    const uint8_t* x[RM];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) x[m] = t.x + (m0 + m) * t.x_row_bytes;

    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) acc[m][n] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < num_blocks; ++b) {
      Q4KScales scales[RN];
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) scales[n] = unpack_q4_k_scales(w[n][b]);
      __m256i dot[RM][RN];
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) dot[m][n] = _mm256_setzero_si256();
      }
#pragma GCC unroll 8
      for (int c = 0; c < kChunks; ++c) {
        __m256i lo[RN], hi[RN];
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) {
          const __m256i q =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[n][b].qs + 32 * c));
          lo[n] = _mm256_and_si256(q, nibble);
          hi[n] = _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble);
        }
#pragma GCC unroll 8
        for (int m = 0; m < RM; ++m) {
          const uint8_t* xb = x[m] + b * kQ8x256BlockBytes;
          const __m256i x_lo = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(xb + 32 * kQ8x256SubBlockSlot[2 * c]));
          const __m256i x_hi = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(xb + 32 * kQ8x256SubBlockSlot[2 * c + 1]));
#pragma GCC unroll 8
          for (int n = 0; n < RN; ++n) {
            // u4 x s8 pairs fit int16 (2 * 15 * 127); the 6-bit scale multiplies in the widening.
            const __m256i s_lo = _mm256_set1_epi16(scales[n].scale[2 * c]);
            const __m256i s_hi = _mm256_set1_epi16(scales[n].scale[2 * c + 1]);
            dot[m][n] = _mm256_add_epi32(
                dot[m][n], _mm256_madd_epi16(_mm256_maddubs_epi16(lo[n], x_lo), s_lo));
            dot[m][n] = _mm256_add_epi32(
                dot[m][n], _mm256_madd_epi16(_mm256_maddubs_epi16(hi[n], x_hi), s_hi));
          }
        }
      }
#pragma GCC unroll 8
      for (int m = 0; m < RM; ++m) {
        const uint8_t* xb = x[m] + b * kQ8x256BlockBytes;
        const float dx = *reinterpret_cast<const float*>(xb + kQ8x256ScaleOffset);
        const __m256 dsum = _mm256_loadu_ps(reinterpret_cast<const float*>(xb + kQ8x256SumsOffset));
#pragma GCC unroll 8
        for (int n = 0; n < RN; ++n) {
          const __m256 d = _mm256_set1_ps(half_to_float(w[n][b].d) * dx);
          acc[m][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[m][n]), d, acc[m][n]);
          acc[m][n] = _mm256_fmadd_ps(scales[n].neg_mins, dsum, acc[m][n]);
        }
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < RM; ++m) {
#pragma GCC unroll 8
      for (int n = 0; n < RN; ++n) t.y[(m0 + m) * t.y_stride + n0 + n] = avx2::hsum(acc[m][n]);
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

void register_avx2_matmul_quant(KernelTable& table) {
  table.matmul[weight_type_index(WeightType::kQ8_0)] = {
      ActivationType::kQ8x32, prepare_q8x32<kQ8x32OffsetForQ8_0>, matmul_q8_0};
  table.matmul[weight_type_index(WeightType::kQ4_0)] = {
      ActivationType::kQ8x32, prepare_q8x32<kQ8x32OffsetForQ4_0>, matmul_q4_0};
  table.matmul[weight_type_index(WeightType::kQ4_K)] = {ActivationType::kQ8x256, prepare_q8x256,
                                                        matmul_q4_k};
}

}  // namespace ondol::kernels

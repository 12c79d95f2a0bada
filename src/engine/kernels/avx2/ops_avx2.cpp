// AVX2 element-wise ops; tails use maskload/maskstore (floats) or a small stack buffer (16-bit
// values), never a scalar loop with different rounding. Compiled with -mavx2 -mfma -mf16c.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "engine/kernels/avx2/simd_avx2.h"
#include "engine/kernels/isa_registry.h"

namespace ondol::kernels {
namespace {

using avx2::kFloatLanes;
using avx2::low_mask;

__m256 load(const float* p, int64_t remaining) {
  return remaining >= kFloatLanes ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, low_mask(remaining));
}
void store(float* p, __m256 v, int64_t remaining) {
  if (remaining >= kFloatLanes) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, low_mask(remaining), v);
  }
}

// Up to 8 uint16 values; the rest of the register is zero.
__m128i load_u16(const uint16_t* p, int64_t remaining) {
  if (remaining >= kFloatLanes) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  uint16_t buffer[kFloatLanes] = {};
  std::memcpy(buffer, p, remaining * sizeof(uint16_t));
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(buffer));
}
void store_u16(uint16_t* p, __m128i v, int64_t remaining) {
  if (remaining >= kFloatLanes) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
    return;
  }
  uint16_t buffer[kFloatLanes];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(buffer), v);
  std::memcpy(p, buffer, remaining * sizeof(uint16_t));
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m256 v = load(x + i, n - i);
    sum = _mm256_fmadd_ps(v, v, sum);
  }
  const float mean = avx2::hsum(sum) / static_cast<float>(n);
  const __m256 scale = _mm256_set1_ps(1.0f / __builtin_sqrtf(mean + eps));
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(out + i, _mm256_mul_ps(_mm256_mul_ps(load(x + i, n - i), scale), load(weight + i, n - i)),
          n - i);
  }
}

void softmax(float* x, int64_t n) {
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_inff());
  __m256 max = neg_inf;
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m256 v = load(x + i, n - i);
    // Lanes past n load as 0; keep them out of the max.
    max = _mm256_max_ps(max, _mm256_blendv_ps(neg_inf, v, _mm256_castsi256_ps(low_mask(n - i))));
  }
  const __m256 row_max = _mm256_set1_ps(avx2::hmax(max));
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m256 e = _mm256_and_ps(avx2::exp_ps(_mm256_sub_ps(load(x + i, n - i), row_max)),
                                   _mm256_castsi256_ps(low_mask(n - i)));
    sum = _mm256_add_ps(sum, e);
    store(x + i, e, n - i);
  }
  const __m256 inverse = _mm256_set1_ps(1.0f / avx2::hsum(sum));
  for (int64_t i = 0; i < n; i += kFloatLanes)
    store(x + i, _mm256_mul_ps(load(x + i, n - i), inverse), n - i);
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m256 g = load(gate + i, n - i);
    const __m256 sig =
        _mm256_div_ps(one, _mm256_add_ps(one, avx2::exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    store(out + i, _mm256_mul_ps(_mm256_mul_ps(g, sig), load(up + i, n - i)), n - i);
  }
}

// As the AVX-512 form: the largest value with NaNs passed over (vmaxps returns its second operand
// when the first is NaN), then the first index holding it. The tail is compared one value at a
// time (comparisons round nothing).
int64_t argmax(const float* x, int64_t n) {
  const __m256 minus_inf = _mm256_set1_ps(-__builtin_inff());
  __m256 m0 = minus_inf, m1 = minus_inf, m2 = minus_inf, m3 = minus_inf;
  int64_t i = 0;
  for (; i + 4 * kFloatLanes <= n; i += 4 * kFloatLanes) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + kFloatLanes), m1);
    m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 2 * kFloatLanes), m2);
    m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 3 * kFloatLanes), m3);
  }
  for (; i + kFloatLanes <= n; i += kFloatLanes) m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
  float lanes[kFloatLanes];
  _mm256_storeu_ps(lanes, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  float best = lanes[0];
  for (float v : lanes) best = v > best ? v : best;
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  const __m256 target = _mm256_set1_ps(best);
  for (i = 0; i + kFloatLanes <= n; i += kFloatLanes) {
    const int equal = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), target, _CMP_EQ_OQ));
    if (equal != 0) return i + __builtin_ctz(static_cast<unsigned>(equal));
  }
  for (; i < n; ++i) {
    if (x[i] == best) return i;
  }
  return 0;  // every value is NaN
}

float scale_max(float* x, float factor, int64_t n) {
  const __m256 f = _mm256_set1_ps(factor);
  __m256 max = _mm256_set1_ps(-__builtin_inff());
  int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), f);
    _mm256_storeu_ps(x + i, v);
    max = _mm256_max_ps(v, max);  // a NaN v keeps max
  }
  float lanes[kFloatLanes];
  _mm256_storeu_ps(lanes, max);
  float best = lanes[0];
  for (float v : lanes) best = v > best ? v : best;
  for (; i < n; ++i) {  // the same one rounding per value as the vector loop
    x[i] *= factor;
    best = x[i] > best ? x[i] : best;
  }
  return best;
}

// Two double accumulators of 4 lanes each, fed by the low and high halves of every 8.
double exp_sum(const float* x, float shift, float* out, int64_t n) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m256 e = _mm256_and_ps(avx2::exp_ps(_mm256_sub_ps(load(x + i, n - i), s)),
                                   _mm256_castsi256_ps(low_mask(n - i)));
    store(out + i, e, n - i);
    sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  const __m256d sum = _mm256_add_pd(sum_lo, sum_hi);
  const __m128d half = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
  return _mm_cvtsd_f64(_mm_add_sd(half, _mm_unpackhi_pd(half, half)));
}

void add(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(out + i, _mm256_add_ps(load(a + i, n - i), load(b + i, n - i)), n - i);
  }
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
    sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + kFloatLanes),
                           _mm256_loadu_ps(b + i + kFloatLanes), sum1);
  }
  for (; i < n; i += kFloatLanes)
    sum0 = _mm256_fmadd_ps(load(a + i, n - i), load(b + i, n - i), sum0);
  return avx2::hsum(_mm256_add_ps(sum0, sum1));
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(y + i, _mm256_fmadd_ps(av, load(x + i, n - i), load(y + i, n - i)), n - i);
  }
}

// Up to 8 int8 values; the rest of the register is zero.
__m128i load_i8(const int8_t* p, int64_t remaining) {
  if (remaining >= kFloatLanes) return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  int8_t buffer[16] = {};
  std::memcpy(buffer, p, remaining);
  return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(buffer));
}

// How the row kernels read one KV row as floats: full(i) = values [i, i + 8), part(i, m) = the
// first min(m, 8) of them and zeros. F16 and int8 rows share the dot / axpy loops through these,
// so both sum exactly as dot / axpy do on the converted row.
struct F16Row {
  const uint16_t* p;
  __m256 full(int64_t i) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
  }
  __m256 part(int64_t i, int64_t remaining) const {
    return _mm256_cvtph_ps(load_u16(p + i, remaining));
  }
};

// float(q) is exact; the multiply by the row's scale is dequantize_rows_i8's one rounding.
struct I8Row {
  const int8_t* p;
  __m256 scale;
  __m256 full(int64_t i) const {
    return widen(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i)));
  }
  __m256 part(int64_t i, int64_t remaining) const { return widen(load_i8(p + i, remaining)); }
  __m256 widen(__m128i bytes) const {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), scale);
  }
};

template <class Row>
inline float dot_row(const float* a, Row b, int64_t n) {
  __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b.full(i), sum0);
    sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + kFloatLanes), b.full(i + kFloatLanes), sum1);
  }
  for (; i < n; i += kFloatLanes)
    sum0 = _mm256_fmadd_ps(load(a + i, n - i), b.part(i, n - i), sum0);
  return avx2::hsum(_mm256_add_ps(sum0, sum1));
}

template <class Row>
inline void axpy_row(float* y, float a, Row x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  for (int64_t i = 0; i < n; i += kFloatLanes)
    store(y + i, _mm256_fmadd_ps(av, x.part(i, n - i), load(y + i, n - i)), n - i);
}

float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  return dot_row(a, F16Row{b}, n);
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  axpy_row(y, a, F16Row{x}, n);
}

void dot_rows_f16(const float* q, const uint16_t* rows, int64_t num_rows, int64_t n, float scale,
                  float* out) {
  for (int64_t r = 0; r < num_rows; ++r) out[r] = dot_f16(q, rows + r * n, n) * scale;
}

void dot_rows_i8(const float* q, const int8_t* rows, const float* scales, int64_t num_rows,
                 int64_t n, float scale, float* out) {
  for (int64_t r = 0; r < num_rows; ++r)
    out[r] = dot_row(q, I8Row{rows + r * n, _mm256_set1_ps(scales[r])}, n) * scale;
}

// head_dim 64: y stays in 8 registers across the rows (the same fused multiply-adds, in row
// order, as axpy_row row by row); other widths go row by row through memory. row(r) gives row
// r's loader.
template <class RowOf>
void axpy_rows(float* y, const float* a, RowOf row, int64_t num_rows, int64_t n) {
  constexpr int64_t kHeldVectors = 8;
  if (n != kHeldVectors * kFloatLanes) {
    for (int64_t r = 0; r < num_rows; ++r) axpy_row(y, a[r], row(r), n);
    return;
  }
  __m256 acc[kHeldVectors];
#pragma GCC unroll 8
  for (int64_t j = 0; j < kHeldVectors; ++j) acc[j] = _mm256_loadu_ps(y + j * kFloatLanes);
  for (int64_t r = 0; r < num_rows; ++r) {
    const __m256 s = _mm256_set1_ps(a[r]);
    const auto x = row(r);
#pragma GCC unroll 8
    for (int64_t j = 0; j < kHeldVectors; ++j)
      acc[j] = _mm256_fmadd_ps(s, x.full(j * kFloatLanes), acc[j]);
  }
#pragma GCC unroll 8
  for (int64_t j = 0; j < kHeldVectors; ++j) _mm256_storeu_ps(y + j * kFloatLanes, acc[j]);
}

void axpy_rows_f16(float* y, const float* a, const uint16_t* rows, int64_t num_rows, int64_t n) {
  axpy_rows(
      y, a, [=](int64_t r) { return F16Row{rows + r * n}; }, num_rows, n);
}

void axpy_rows_i8(float* y, const float* a, const int8_t* rows, const float* scales,
                  int64_t num_rows, int64_t n) {
  axpy_rows(
      y, a,
      [=](int64_t r) {
        return I8Row{rows + r * n, _mm256_set1_ps(scales[r])};
      },
      num_rows, n);
}

// Two passes: max |in| (exact in any order), then in / scale rounded by vcvtps2dq under the
// current rounding mode (nearest even by default, as std::nearbyint in the scalar reference),
// clamped, and narrowed with saturating packs (the values already fit).
void quantize_row_i8(const float* in, int8_t* q, float* scale, int64_t n) {
  __m256 amax = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes)
    amax = _mm256_max_ps(amax, avx2::abs_ps(load(in + i, n - i)));
  const float s = avx2::hmax(amax) / 127.0f;
  *scale = s;
  const __m256 scale_v = _mm256_set1_ps(s);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    __m256i rounded = _mm256_setzero_si256();
    if (s != 0.0f) {
      rounded = _mm256_cvtps_epi32(_mm256_div_ps(load(in + i, n - i), scale_v));
      rounded = _mm256_max_epi32(_mm256_min_epi32(rounded, hi), lo);
    }
    const __m128i words =
        _mm_packs_epi32(_mm256_castsi256_si128(rounded), _mm256_extracti128_si256(rounded, 1));
    const __m128i bytes = _mm_packs_epi16(words, words);
    if (n - i >= kFloatLanes) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), bytes);
    } else {
      int8_t buffer[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(buffer), bytes);
      std::memcpy(q + i, buffer, n - i);
    }
  }
}

void dequantize_rows_i8(const int8_t* rows, const float* scales, int64_t num_rows, int64_t n,
                        float* out) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const I8Row row{rows + r * n, _mm256_set1_ps(scales[r])};
    for (int64_t i = 0; i < n; i += kFloatLanes) store(out + r * n + i, row.part(i, n - i), n - i);
  }
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes)
    store(out + i, _mm256_cvtph_ps(load_u16(in + i, n - i)), n - i);
}

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store_u16(out + i,
              _mm256_cvtps_ph(load(in + i, n - i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
              n - i);
  }
}

void bf16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m256i wide = _mm256_cvtepu16_epi32(load_u16(in + i, n - i));
    store(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)), n - i);
  }
}

void fp32_to_bf16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store_u16(out + i, avx2::narrow_epi32_to_epi16(avx2::fp32_to_bf16_bits(load(in + i, n - i))),
              n - i);
  }
}

// matmul_nn: register tiles of kNnTileRows rows of C x kNnTileVectors vectors of 8 columns.
// For each l, the tile's B row segment is loaded once and every A value broadcast against it,
// so each (i, j) is the fma chain over l in order (the scalar reference's bits). Depth goes in
// blocks of kNnDepthBlock (the partial sums parked in C and reloaded exactly) so one block of B
// stays in cache while every row block of A streams past it.
constexpr int kNnTileRows = 6;     // 6 x 2 accumulators + 2 B vectors + broadcast + mask <= 16
constexpr int kNnTileVectors = 2;  // 16 columns
constexpr int64_t kNnDepthBlock = 256;

// C[0, RM) x [0, cols) (= or +=) A[0, RM) x [0, depth) · B[0, depth) x [0, cols), where
// (RN - 1) * 8 < cols <= RN * 8. kMaskLast: the last vector is partial, so its lanes past cols
// are never read from B nor written to C (maskload/maskstore); otherwise cols == RN * 8.
template <int RM, int RN, bool kMaskLast>
void matmul_nn_tile(const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
                    int64_t c_stride, int64_t cols, int64_t depth, bool accumulate) {
  const __m256i last_mask = low_mask(cols - (RN - 1) * kFloatLanes);
  const auto load_vector = [&](const float* p, int v) {
    return kMaskLast && v == RN - 1 ? _mm256_maskload_ps(p, last_mask) : _mm256_loadu_ps(p);
  };
  __m256 acc[RM][RN];
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < RN; ++v) {
      acc[r][v] =
          accumulate ? load_vector(c + r * c_stride + v * kFloatLanes, v) : _mm256_setzero_ps();
    }
  }
  for (int64_t l = 0; l < depth; ++l) {
    __m256 bv[RN];
#pragma GCC unroll 16
    for (int v = 0; v < RN; ++v) bv[v] = load_vector(b + l * b_stride + v * kFloatLanes, v);
#pragma GCC unroll 16
    for (int r = 0; r < RM; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * a_stride + l);
#pragma GCC unroll 16
      for (int v = 0; v < RN; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < RN; ++v) {
      float* p = c + r * c_stride + v * kFloatLanes;
      if (kMaskLast && v == RN - 1) {
        _mm256_maskstore_ps(p, last_mask, acc[r][v]);
      } else {
        _mm256_storeu_ps(p, acc[r][v]);
      }
    }
  }
}

// Picks the instantiation for an edge tile of rm <= RM rows and rn <= RN vectors.
template <int RM, int RN>
void matmul_nn_dispatch(int rm, int rn, bool mask_last, const float* a, int64_t a_stride,
                        const float* b, int64_t b_stride, float* c, int64_t c_stride, int64_t cols,
                        int64_t depth, bool accumulate) {
  if constexpr (RM > 1) {
    if (rm < RM) {
      return matmul_nn_dispatch<RM - 1, RN>(rm, rn, mask_last, a, a_stride, b, b_stride, c,
                                            c_stride, cols, depth, accumulate);
    }
  }
  if constexpr (RN > 1) {
    if (rn < RN) {
      return matmul_nn_dispatch<RM, RN - 1>(rm, rn, mask_last, a, a_stride, b, b_stride, c,
                                            c_stride, cols, depth, accumulate);
    }
  }
  if (mask_last) {
    matmul_nn_tile<RM, RN, true>(a, a_stride, b, b_stride, c, c_stride, cols, depth, accumulate);
  } else {
    matmul_nn_tile<RM, RN, false>(a, a_stride, b, b_stride, c, c_stride, cols, depth, accumulate);
  }
}

void matmul_nn(const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
               int64_t c_stride, int64_t m, int64_t n, int64_t k) {
  constexpr int64_t kTileCols = kNnTileVectors * kFloatLanes;
  // k == 0 still runs one (empty) depth block, which writes the zeros.
  for (int64_t l0 = 0; l0 == 0 || l0 < k; l0 += kNnDepthBlock) {
    const int64_t depth = std::min(kNnDepthBlock, k - l0);
    for (int64_t j0 = 0; j0 < n; j0 += kTileCols) {
      const int64_t cols = std::min(kTileCols, n - j0);
      const int rn = static_cast<int>((cols + kFloatLanes - 1) / kFloatLanes);
      const bool mask_last = cols % kFloatLanes != 0;
      for (int64_t i0 = 0; i0 < m; i0 += kNnTileRows) {
        const int rm = static_cast<int>(std::min<int64_t>(kNnTileRows, m - i0));
        matmul_nn_dispatch<kNnTileRows, kNnTileVectors>(
            rm, rn, mask_last, a + i0 * a_stride + l0, a_stride, b + l0 * b_stride + j0, b_stride,
            c + i0 * c_stride + j0, c_stride, cols, depth, l0 > 0);
      }
    }
  }
}

}  // namespace

void register_avx2_ops(KernelTable& table) {
  table.rmsnorm = rmsnorm;
  table.softmax = softmax;
  table.silu_mul = silu_mul;
  table.add = add;
  table.argmax = argmax;
  table.scale_max = scale_max;
  table.matmul_nn = matmul_nn;
  table.exp_sum = exp_sum;
  table.dot = dot;
  table.axpy = axpy;
  table.dot_f16 = dot_f16;
  table.axpy_f16 = axpy_f16;
  table.dot_rows_f16 = dot_rows_f16;
  table.axpy_rows_f16 = axpy_rows_f16;
  table.quantize_row_i8 = quantize_row_i8;
  table.dequantize_rows_i8 = dequantize_rows_i8;
  table.dot_rows_i8 = dot_rows_i8;
  table.axpy_rows_i8 = axpy_rows_i8;
  table.fp16_to_fp32_row = fp16_to_fp32_row;
  table.fp32_to_fp16_row = fp32_to_fp16_row;
  table.bf16_to_fp32_row = bf16_to_fp32_row;
  table.fp32_to_bf16_row = fp32_to_bf16_row;
}

}  // namespace ondol::kernels

// AVX-512 element-wise ops; tails use masked loads and stores, never a scalar loop. Compiled with
// the avx512 flags.
#include <algorithm>
#include <cstdint>

#include "engine/kernels/avx512/simd_avx512.h"
#include "engine/kernels/isa_registry.h"

namespace ondol::kernels {
namespace {

using avx512::kFloatLanes;
using avx512::low_mask16;

__m512 load(const float* p, int64_t remaining) {
  return _mm512_maskz_loadu_ps(low_mask16(remaining), p);
}
void store(float* p, __m512 v, int64_t remaining) {
  _mm512_mask_storeu_ps(p, low_mask16(remaining), v);
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m512 v = load(x + i, n - i);
    sum = _mm512_fmadd_ps(v, v, sum);
  }
  const float mean = _mm512_reduce_add_ps(sum) / static_cast<float>(n);
  const __m512 scale = _mm512_set1_ps(1.0f / __builtin_sqrtf(mean + eps));
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(out + i, _mm512_mul_ps(_mm512_mul_ps(load(x + i, n - i), scale), load(weight + i, n - i)),
          n - i);
  }
}

void softmax(float* x, int64_t n) {
  __m512 max = _mm512_set1_ps(-__builtin_inff());
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    max = _mm512_mask_max_ps(max, low_mask16(n - i), max, load(x + i, n - i));
  }
  const __m512 row_max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    const __m512 e =
        _mm512_maskz_mov_ps(mask, avx512::exp_ps(_mm512_sub_ps(load(x + i, n - i), row_max)));
    sum = _mm512_add_ps(sum, e);
    _mm512_mask_storeu_ps(x + i, mask, e);
  }
  const __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(x + i, _mm512_mul_ps(load(x + i, n - i), inverse), n - i);
  }
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m512 g = load(gate + i, n - i);
    const __m512 sig = _mm512_div_ps(
        one, _mm512_add_ps(one, avx512::exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    store(out + i, _mm512_mul_ps(_mm512_mul_ps(g, sig), load(up + i, n - i)), n - i);
  }
}

// Two passes over x: the largest value (vmaxps returns its second operand when the first is NaN,
// so NaNs are passed over), then the first index holding it. Four accumulators hide the max
// latency; the second pass stops at the first match.
int64_t argmax(const float* x, int64_t n) {
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());
  __m512 m0 = minus_inf, m1 = minus_inf, m2 = minus_inf, m3 = minus_inf;
  int64_t i = 0;
  for (; i + 4 * kFloatLanes <= n; i += 4 * kFloatLanes) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
    m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + kFloatLanes), m1);
    m2 = _mm512_max_ps(_mm512_loadu_ps(x + i + 2 * kFloatLanes), m2);
    m3 = _mm512_max_ps(_mm512_loadu_ps(x + i + 3 * kFloatLanes), m3);
  }
  for (; i < n; i += kFloatLanes) {
    m0 = _mm512_mask_max_ps(m0, low_mask16(n - i), load(x + i, n - i), m0);
  }
  const __m512 best = _mm512_set1_ps(
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
  for (i = 0; i < n; i += kFloatLanes) {
    const __mmask16 equal =
        _mm512_mask_cmp_ps_mask(low_mask16(n - i), load(x + i, n - i), best, _CMP_EQ_OQ);
    if (equal != 0) return i + __builtin_ctz(equal);
  }
  return 0;  // every value is NaN
}

float scale_max(float* x, float factor, int64_t n) {
  const __m512 f = _mm512_set1_ps(factor);
  __m512 max = _mm512_set1_ps(-__builtin_inff());
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), f);
    _mm512_mask_storeu_ps(x + i, mask, v);
    max = _mm512_mask_max_ps(max, mask, v, max);  // a NaN v keeps max
  }
  return _mm512_reduce_max_ps(max);
}

// Two double accumulators of 8 lanes each, fed by the low and high halves of every 16.
double exp_sum(const float* x, float shift, float* out, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d sum_lo = _mm512_setzero_pd(), sum_hi = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    const __m512 e = _mm512_maskz_mov_ps(
        mask, avx512::exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), s)));
    _mm512_mask_storeu_ps(out + i, mask, e);
    sum_lo = _mm512_add_pd(sum_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    sum_hi = _mm512_add_pd(
        sum_hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(sum_lo, sum_hi));
}

void add(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(out + i, _mm512_add_ps(load(a + i, n - i), load(b + i, n - i)), n - i);
  }
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
    sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + kFloatLanes),
                           _mm512_loadu_ps(b + i + kFloatLanes), sum1);
  }
  for (; i < n; i += kFloatLanes)
    sum0 = _mm512_fmadd_ps(load(a + i, n - i), load(b + i, n - i), sum0);
  return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(y + i, _mm512_fmadd_ps(av, load(x + i, n - i), load(y + i, n - i)), n - i);
  }
}

__m512 load_f16(const uint16_t* p, int64_t remaining) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(low_mask16(remaining), p));
}

// 16 int8 values (the first `remaining`, the rest 0) as floats times the row's scale: exact
// widening, then the one rounding of dequantize_rows_i8.
__m512 load_i8(const int8_t* p, __m512 scale, int64_t remaining) {
  const __m512i wide = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(low_mask16(remaining), p));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(wide), scale);
}

// How the block kernels read one KV row as floats: full(i) = values [i, i + 16), part(i, m) =
// the first min(m, 16) of them and zeros. The F16 and int8 caches share every block kernel
// through these, so their sums are the same code, and the F16 forms stay those of dot_f16.
struct F16Row {
  const uint16_t* p;
  __m512 full(int64_t i) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
  }
  __m512 part(int64_t i, int64_t remaining) const { return load_f16(p + i, remaining); }
};
struct F16Rows {
  const uint16_t* data;  // (num_rows, n)
  int64_t n;
  F16Row row(int64_t r) const { return {data + r * n}; }
};

struct I8Row {
  const int8_t* p;
  __m512 scale;
  __m512 full(int64_t i) const {
    const __m512i wide =
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(wide), scale);
  }
  __m512 part(int64_t i, int64_t remaining) const { return load_i8(p + i, scale, remaining); }
};
struct I8Rows {
  const int8_t* data;   // (num_rows, n)
  const float* scales;  // (num_rows)
  int64_t n;
  I8Row row(int64_t r) const { return {data + r * n, _mm512_set1_ps(scales[r])}; }
};

// dot's sum of a[i] * b[i] before the horizontal add, b read through a row loader: even 16-lane
// steps into sum0, odd ones into sum1, a masked tail into sum0, then sum0 + sum1.
template <class Row>
inline __m512 dot_lanes(const float* a, Row b, int64_t n) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), b.full(i), sum0);
    sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + kFloatLanes), b.full(i + kFloatLanes), sum1);
  }
  for (; i < n; i += kFloatLanes)
    sum0 = _mm512_fmadd_ps(load(a + i, n - i), b.part(i, n - i), sum0);
  return _mm512_add_ps(sum0, sum1);
}

float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  return _mm512_reduce_add_ps(dot_lanes(a, F16Row{b}, n));
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(y + i, _mm512_fmadd_ps(av, load_f16(x + i, n - i), load(y + i, n - i)), n - i);
  }
}

// Horizontal sums of 16 vectors at once, lane r of the result = the sum of v[r]'s lanes, with
// the pairing of _mm512_reduce_add_ps (GCC: lane i + lane i+8, then i + i+4, i + i+2, i + i+1;
// float addition commutes exactly, so each row's sum is bit-identical to reducing it alone) at
// 45 shuffles and adds instead of 16 x 7. Lanes of different vectors are never added together.
inline __m512 reduce_add_16(const __m512 v[16]) {
  __m512 s8[8], s4[4], s2[2];
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {  // [a.0+a.2, a.1+a.3, b.0+b.2, b.1+b.3] in 128-bit chunks
    s8[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                          _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  }
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) {  // chunk k: vector 4i+k's lanes i + i+4 (4 lanes)
    s4[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s8[2 * i], s8[2 * i + 1], 0x88),
                          _mm512_shuffle_f32x4(s8[2 * i], s8[2 * i + 1], 0xDD));
  }
#pragma GCC unroll 16
  for (int i = 0; i < 2; ++i) {  // chunk k: [x0+x2, x1+x3] of vectors 8i+k and 8i+4+k
    s2[i] = _mm512_add_ps(_mm512_shuffle_ps(s4[2 * i], s4[2 * i + 1], 0x44),
                          _mm512_shuffle_ps(s4[2 * i], s4[2 * i + 1], 0xEE));
  }
  // chunk k: the sums of vectors k, 4+k, 8+k, 12+k
  const __m512 s =
      _mm512_add_ps(_mm512_shuffle_ps(s2[0], s2[1], 0x88), _mm512_shuffle_ps(s2[0], s2[1], 0xDD));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, s);
}

// Rows of head_dim = 2 * kPairs vectors (q held in registers), in groups of up to 16: each
// row's lanes as dot_lanes sums them, then one transposed horizontal add for the group.
template <int kPairs, class Rows>
void dot_rows_held(const float* q, Rows rows, int64_t num_rows, float scale, float* out) {
  __m512 qv[2 * kPairs];
#pragma GCC unroll 16
  for (int j = 0; j < 2 * kPairs; ++j) qv[j] = _mm512_loadu_ps(q + j * kFloatLanes);
  const __m512 scale_v = _mm512_set1_ps(scale);
  for (int64_t r0 = 0; r0 < num_rows; r0 += kFloatLanes) {
    const int64_t count = std::min<int64_t>(kFloatLanes, num_rows - r0);
    __m512 lanes[kFloatLanes];
#pragma GCC unroll 16
    for (int64_t r = 0; r < kFloatLanes; ++r) {
      if (r >= count) {
        lanes[r] = _mm512_setzero_ps();
        continue;
      }
      const auto row = rows.row(r0 + r);
      __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int j = 0; j < kPairs; ++j) {
        sum0 = _mm512_fmadd_ps(qv[2 * j], row.full(2 * j * kFloatLanes), sum0);
        sum1 = _mm512_fmadd_ps(qv[2 * j + 1], row.full((2 * j + 1) * kFloatLanes), sum1);
      }
      lanes[r] = _mm512_add_ps(sum0, sum1);
    }
    _mm512_mask_storeu_ps(out + r0, low_mask16(count),
                          _mm512_mul_ps(reduce_add_16(lanes), scale_v));
  }
}

// out[r] = dot(q, row r) * scale; head_dim 64 and 128 hold q in registers.
template <class Rows>
void dot_rows(const float* q, Rows rows, int64_t num_rows, int64_t n, float scale, float* out) {
  if (n == 64) return dot_rows_held<2>(q, rows, num_rows, scale, out);
  if (n == 128) return dot_rows_held<4>(q, rows, num_rows, scale, out);
  const __m512 scale_v = _mm512_set1_ps(scale);
  for (int64_t r0 = 0; r0 < num_rows; r0 += kFloatLanes) {
    const int64_t count = std::min<int64_t>(kFloatLanes, num_rows - r0);
    __m512 lanes[kFloatLanes];
    for (int64_t r = 0; r < kFloatLanes; ++r)
      lanes[r] = r < count ? dot_lanes(q, rows.row(r0 + r), n) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(out + r0, low_mask16(count),
                          _mm512_mul_ps(reduce_add_16(lanes), scale_v));
  }
}

void dot_rows_f16(const float* q, const uint16_t* rows, int64_t num_rows, int64_t n, float scale,
                  float* out) {
  dot_rows(q, F16Rows{rows, n}, num_rows, n, scale, out);
}

void dot_rows_i8(const float* q, const int8_t* rows, const float* scales, int64_t num_rows,
                 int64_t n, float scale, float* out) {
  dot_rows(q, I8Rows{rows, scales, n}, num_rows, n, scale, out);
}

// y is held in kVectors registers (head_dim = 16 * kVectors) while every row is added, in row
// order: the same fused multiply-adds as axpy row by row.
template <int kVectors, class Rows>
void axpy_rows_held(float* y, const float* a, Rows rows, int64_t num_rows) {
  __m512 acc[kVectors];
#pragma GCC unroll 16
  for (int j = 0; j < kVectors; ++j) acc[j] = _mm512_loadu_ps(y + j * kFloatLanes);
  for (int64_t r = 0; r < num_rows; ++r) {
    const __m512 s = _mm512_set1_ps(a[r]);
    const auto row = rows.row(r);
#pragma GCC unroll 16
    for (int j = 0; j < kVectors; ++j)
      acc[j] = _mm512_fmadd_ps(s, row.full(j * kFloatLanes), acc[j]);
  }
#pragma GCC unroll 16
  for (int j = 0; j < kVectors; ++j) _mm512_storeu_ps(y + j * kFloatLanes, acc[j]);
}

// Other widths: y in up to kHeld vectors per pass over the rows. (Two interleaved accumulator
// sets were measured: no gain; they would also change the sums.)
template <class Rows>
void axpy_rows(float* y, const float* a, Rows rows, int64_t num_rows, int64_t n) {
  if (n == 64) return axpy_rows_held<4>(y, a, rows, num_rows);
  if (n == 128) return axpy_rows_held<8>(y, a, rows, num_rows);
  constexpr int64_t kHeld = 8;
  for (int64_t c = 0; c < n; c += kHeld * kFloatLanes) {
    const int64_t width = std::min(n - c, kHeld * kFloatLanes);
    const int64_t vectors = (width + kFloatLanes - 1) / kFloatLanes;
    __m512 acc[kHeld];
    for (int64_t j = 0; j < vectors; ++j) acc[j] = load(y + c + j * kFloatLanes, width - j * kFloatLanes);
    for (int64_t r = 0; r < num_rows; ++r) {
      const __m512 s = _mm512_set1_ps(a[r]);
      const auto row = rows.row(r);
      for (int64_t j = 0; j < vectors; ++j)
        acc[j] = _mm512_fmadd_ps(s, row.part(c + j * kFloatLanes, width - j * kFloatLanes), acc[j]);
    }
    for (int64_t j = 0; j < vectors; ++j) store(y + c + j * kFloatLanes, acc[j], width - j * kFloatLanes);
  }
}

void axpy_rows_f16(float* y, const float* a, const uint16_t* rows, int64_t num_rows, int64_t n) {
  axpy_rows(y, a, F16Rows{rows, n}, num_rows, n);
}

void axpy_rows_i8(float* y, const float* a, const int8_t* rows, const float* scales,
                  int64_t num_rows, int64_t n) {
  axpy_rows(y, a, I8Rows{rows, scales, n}, num_rows, n);
}

// Two passes: max |in| (exact in any order), then in / scale rounded by vcvtps2dq under the
// current rounding mode (nearest even by default, as std::nearbyint in the scalar reference).
void quantize_row_i8(const float* in, int8_t* q, float* scale, int64_t n) {
  __m512 amax = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kFloatLanes)
    amax = _mm512_max_ps(amax, _mm512_abs_ps(load(in + i, n - i)));
  *scale = _mm512_reduce_max_ps(amax) / 127.0f;
  if (*scale == 0.0f) {
    for (int64_t i = 0; i < n; i += kFloatLanes)
      _mm_mask_storeu_epi8(q + i, low_mask16(n - i), _mm_setzero_si128());
    return;
  }
  const __m512 scale_v = _mm512_set1_ps(*scale);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __m512i rounded = _mm512_cvtps_epi32(_mm512_div_ps(load(in + i, n - i), scale_v));
    _mm512_mask_cvtepi32_storeu_epi8(q + i, low_mask16(n - i),
                                     _mm512_max_epi32(_mm512_min_epi32(rounded, hi), lo));
  }
}

void dequantize_rows_i8(const int8_t* rows, const float* scales, int64_t num_rows, int64_t n,
                        float* out) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const I8Row row{rows + r * n, _mm512_set1_ps(scales[r])};
    for (int64_t i = 0; i < n; i += kFloatLanes) store(out + r * n + i, row.part(i, n - i), n - i);
  }
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    _mm512_mask_storeu_ps(out + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, in + i)));
  }
}

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mask, in + i),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(out + i, mask, h);
  }
}

void bf16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, in + i));
    _mm512_mask_storeu_ps(out + i, mask, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
  }
}

void fp32_to_bf16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    const __mmask16 mask = low_mask16(n - i);
    const __m512i bits = avx512::fp32_to_bf16_bits(_mm512_maskz_loadu_ps(mask, in + i));
    _mm256_mask_storeu_epi16(out + i, mask, _mm512_cvtepi32_epi16(bits));
  }
}

// matmul_nn: register tiles of kNnTileRows rows of C x kNnTileVectors vectors of 16 columns.
// For each l, the tile's B row segment is loaded once and every A value broadcast against it,
// so each (i, j) is the fma chain over l in order (the scalar reference's bits). Depth goes in
// blocks of kNnDepthBlock (the partial sums parked in C and reloaded exactly) so one block of B
// stays in cache while every row block of A streams past it.
constexpr int kNnTileRows = 6;     // 6 x 4 accumulators + 4 B vectors + 1 broadcast <= 32 zmm
constexpr int kNnTileVectors = 4;  // 64 columns: head_dim 64 in one tile, 128 in two
constexpr int64_t kNnDepthBlock = 256;

// C[0, RM) x [0, cols) (= or +=) A[0, RM) x [0, depth) · B[0, depth) x [0, cols), where
// (RN - 1) * 16 < cols <= RN * 16. Lanes past cols are masked: never read from B, never
// written to C.
template <int RM, int RN>
void matmul_nn_tile(const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
                    int64_t c_stride, int64_t cols, int64_t depth, bool accumulate) {
  __mmask16 mask[RN];
#pragma GCC unroll 16
  for (int v = 0; v < RN; ++v) mask[v] = low_mask16(cols - v * kFloatLanes);
  __m512 acc[RM][RN];
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < RN; ++v) {
      acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], c + r * c_stride + v * kFloatLanes)
                             : _mm512_setzero_ps();
    }
  }
  for (int64_t l = 0; l < depth; ++l) {
    __m512 bv[RN];
#pragma GCC unroll 16
    for (int v = 0; v < RN; ++v)
      bv[v] = _mm512_maskz_loadu_ps(mask[v], b + l * b_stride + v * kFloatLanes);
#pragma GCC unroll 16
    for (int r = 0; r < RM; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * a_stride + l]);
#pragma GCC unroll 16
      for (int v = 0; v < RN; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < RN; ++v)
      _mm512_mask_storeu_ps(c + r * c_stride + v * kFloatLanes, mask[v], acc[r][v]);
  }
}

// Picks the instantiation for an edge tile of rm <= RM rows and rn <= RN vectors.
template <int RM, int RN>
void matmul_nn_dispatch(int rm, int rn, const float* a, int64_t a_stride, const float* b,
                        int64_t b_stride, float* c, int64_t c_stride, int64_t cols, int64_t depth,
                        bool accumulate) {
  if constexpr (RM > 1) {
    if (rm < RM) {
      return matmul_nn_dispatch<RM - 1, RN>(rm, rn, a, a_stride, b, b_stride, c, c_stride, cols,
                                            depth, accumulate);
    }
  }
  if constexpr (RN > 1) {
    if (rn < RN) {
      return matmul_nn_dispatch<RM, RN - 1>(rm, rn, a, a_stride, b, b_stride, c, c_stride, cols,
                                            depth, accumulate);
    }
  }
  matmul_nn_tile<RM, RN>(a, a_stride, b, b_stride, c, c_stride, cols, depth, accumulate);
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
      for (int64_t i0 = 0; i0 < m; i0 += kNnTileRows) {
        const int rm = static_cast<int>(std::min<int64_t>(kNnTileRows, m - i0));
        matmul_nn_dispatch<kNnTileRows, kNnTileVectors>(
            rm, rn, a + i0 * a_stride + l0, a_stride, b + l0 * b_stride + j0, b_stride,
            c + i0 * c_stride + j0, c_stride, cols, depth, l0 > 0);
      }
    }
  }
}

}  // namespace

void register_avx512_ops(KernelTable& table) {
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

// AVX2 element-wise ops; tails use maskload/maskstore (floats) or a small stack buffer (16-bit
// values), never a scalar loop with different rounding. Compiled with -mavx2 -mfma -mf16c.
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

inline float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + kFloatLanes));
    sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(lo), sum0);
    sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + kFloatLanes), _mm256_cvtph_ps(hi), sum1);
  }
  for (; i < n; i += kFloatLanes)
    sum0 = _mm256_fmadd_ps(load(a + i, n - i), _mm256_cvtph_ps(load_u16(b + i, n - i)), sum0);
  return avx2::hsum(_mm256_add_ps(sum0, sum1));
}

inline void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(load_u16(x + i, n - i)), load(y + i, n - i)),
          n - i);
  }
}

void dot_rows_f16(const float* q, const uint16_t* rows, int64_t num_rows, int64_t n, float scale,
                  float* out) {
  for (int64_t r = 0; r < num_rows; ++r) out[r] = dot_f16(q, rows + r * n, n) * scale;
}

// head_dim 64: y stays in 8 registers across the rows (the same fused multiply-adds, in row
// order, as axpy_f16 row by row); other widths go row by row through memory.
void axpy_rows_f16(float* y, const float* a, const uint16_t* rows, int64_t num_rows, int64_t n) {
  constexpr int64_t kHeldVectors = 8;
  if (n != kHeldVectors * kFloatLanes) {
    for (int64_t r = 0; r < num_rows; ++r) axpy_f16(y, a[r], rows + r * n, n);
    return;
  }
  __m256 acc[kHeldVectors];
#pragma GCC unroll 8
  for (int64_t j = 0; j < kHeldVectors; ++j) acc[j] = _mm256_loadu_ps(y + j * kFloatLanes);
  for (int64_t r = 0; r < num_rows; ++r) {
    const __m256 s = _mm256_set1_ps(a[r]);
    const uint16_t* row = rows + r * n;
#pragma GCC unroll 8
    for (int64_t j = 0; j < kHeldVectors; ++j) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + j * kFloatLanes));
      acc[j] = _mm256_fmadd_ps(s, _mm256_cvtph_ps(h), acc[j]);
    }
  }
#pragma GCC unroll 8
  for (int64_t j = 0; j < kHeldVectors; ++j) _mm256_storeu_ps(y + j * kFloatLanes, acc[j]);
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

}  // namespace

void register_avx2_ops(KernelTable& table) {
  table.rmsnorm = rmsnorm;
  table.softmax = softmax;
  table.silu_mul = silu_mul;
  table.add = add;
  table.argmax = argmax;
  table.dot = dot;
  table.axpy = axpy;
  table.dot_f16 = dot_f16;
  table.axpy_f16 = axpy_f16;
  table.dot_rows_f16 = dot_rows_f16;
  table.axpy_rows_f16 = axpy_rows_f16;
  table.fp16_to_fp32_row = fp16_to_fp32_row;
  table.fp32_to_fp16_row = fp32_to_fp16_row;
  table.bf16_to_fp32_row = bf16_to_fp32_row;
  table.fp32_to_bf16_row = fp32_to_bf16_row;
}

}  // namespace ondol::kernels

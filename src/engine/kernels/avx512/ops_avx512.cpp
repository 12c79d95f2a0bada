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

inline float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + kFloatLanes));
    sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_cvtph_ps(lo), sum0);
    sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + kFloatLanes), _mm512_cvtph_ps(hi), sum1);
  }
  for (; i < n; i += kFloatLanes)
    sum0 = _mm512_fmadd_ps(load(a + i, n - i), load_f16(b + i, n - i), sum0);
  return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += kFloatLanes) {
    store(y + i, _mm512_fmadd_ps(av, load_f16(x + i, n - i), load(y + i, n - i)), n - i);
  }
}

void dot_rows_f16(const float* q, const uint16_t* rows, int64_t num_rows, int64_t n, float scale,
                  float* out) {
  for (int64_t r = 0; r < num_rows; ++r) out[r] = dot_f16(q, rows + r * n, n) * scale;
}

// y is held in up to kHeld vectors while every row is added, in row order: the same fused
// multiply-adds as axpy_f16 row by row (so attention does not depend on the block size), without
// loading and storing y for each row. (Two interleaved accumulator sets were measured: no gain,
// attention here waits on memory, not on the FMA chain.)
void axpy_rows_f16(float* y, const float* a, const uint16_t* rows, int64_t num_rows, int64_t n) {
  constexpr int64_t kHeld = 8;
  for (int64_t c = 0; c < n; c += kHeld * kFloatLanes) {
    const int64_t width = std::min(n - c, kHeld * kFloatLanes);
    const int64_t vectors = (width + kFloatLanes - 1) / kFloatLanes;
    __m512 acc[kHeld];
    for (int64_t j = 0; j < vectors; ++j) acc[j] = load(y + c + j * kFloatLanes, width - j * kFloatLanes);
    for (int64_t r = 0; r < num_rows; ++r) {
      const __m512 s = _mm512_set1_ps(a[r]);
      const uint16_t* row = rows + r * n + c;
      for (int64_t j = 0; j < vectors; ++j)
        acc[j] = _mm512_fmadd_ps(s, load_f16(row + j * kFloatLanes, width - j * kFloatLanes), acc[j]);
    }
    for (int64_t j = 0; j < vectors; ++j) store(y + c + j * kFloatLanes, acc[j], width - j * kFloatLanes);
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

}  // namespace

void register_avx512_ops(KernelTable& table) {
  table.rmsnorm = rmsnorm;
  table.softmax = softmax;
  table.silu_mul = silu_mul;
  table.add = add;
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

// The reference matmul: plain loops over the formats as documented in block_formats.h and
// activation_layout.h, accumulating in double. Every SIMD kernel is tested against these.
// F32 x F32 is the exception: it accumulates in float, in order, as the scalar level's attention
// row kernels (ops_scalar.cpp) do, because attention runs on either (prefill runs on the matmul,
// single tokens on the rows) and a token must get the same values whichever path its batch took.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/block_formats.h"
#include "engine/kernels/half.h"
#include "engine/kernels/isa_registry.h"
#include "engine/kernels/quantize.h"

namespace ondol::kernels {

namespace {

int8_t quantize_q8(float value, float inverse_scale) {
  return static_cast<int8_t>(std::nearbyint(value * inverse_scale));
}

// ---- activation preparation ----

// Byte offset of value e (0..31) of block j (0..3) inside a kQ8x32 group.
int64_t q8x32_offset(int64_t j, int64_t e) {
  return e < kQ8x32HalfBlockElems
             ? kQ8x32HalfBlockElems * j + e
             : kQ8x32GroupElems / 2 + kQ8x32HalfBlockElems * j + (e - kQ8x32HalfBlockElems);
}

void prepare_q8x32_row(const float* x, int64_t k, int32_t offset, uint8_t* out,
                       int64_t out_row_bytes) {
  std::memset(out, 0, out_row_bytes);
  for (int64_t b = 0; b < k / kQ8x32BlockElems; ++b) {
    const float* xb = x + b * kQ8x32BlockElems;
    uint8_t* group = out + b / kQ8x32GroupBlocks * kQ8x32GroupBytes;
    const int64_t j = b % kQ8x32GroupBlocks;
    float amax = 0;
    for (int e = 0; e < kQ8x32BlockElems; ++e) amax = std::max(amax, std::fabs(xb[e]));
    const float d = amax / kQ8MaxMagnitude;
    const float inverse = d != 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int e = 0; e < kQ8x32BlockElems; ++e) {
      const int8_t q = quantize_q8(xb[e], inverse);
      reinterpret_cast<int8_t*>(group)[q8x32_offset(j, e)] = q;
      sum += q;
    }
    auto* scales = reinterpret_cast<float*>(group + kQ8x32ScaleOffset);
    auto* corrections = reinterpret_cast<int32_t*>(group + kQ8x32CorrectionOffset);
    for (int lane = 0; lane < 4; ++lane) scales[4 * j + lane] = d;
    corrections[4 * j] = -offset * sum;
  }
}

template <int32_t kOffset>
void prepare_q8x32(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                   int64_t out_row_bytes) {
  for (int64_t i = 0; i < m; ++i) {
    prepare_q8x32_row(x + i * x_stride, k, kOffset, out + i * out_row_bytes, out_row_bytes);
  }
}

void prepare_q8x256(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                    int64_t out_row_bytes) {
  for (int64_t i = 0; i < m; ++i) {
    uint8_t* row = out + i * out_row_bytes;
    std::memset(row, 0, out_row_bytes);
    for (int64_t b = 0; b < k / kQ8x256BlockElems; ++b) {
      const float* xb = x + i * x_stride + b * kQ8x256BlockElems;
      uint8_t* block = row + b * kQ8x256BlockBytes;
      float amax = 0;
      for (int e = 0; e < kQ8x256BlockElems; ++e) amax = std::max(amax, std::fabs(xb[e]));
      const float d = amax / kQ8MaxMagnitude;
      const float inverse = d != 0 ? 1.0f / d : 0.0f;
      auto* sums = reinterpret_cast<float*>(block + kQ8x256SumsOffset);
      for (int j = 0; j < kQ8x256SubBlocks; ++j) {
        auto* qs = reinterpret_cast<int8_t*>(block) + kQ8x256SubBlockSlot[j] * kQ8x256SubBlockElems;
        int32_t sum = 0;
        for (int e = 0; e < kQ8x256SubBlockElems; ++e) {
          qs[e] = quantize_q8(xb[j * kQ8x256SubBlockElems + e], inverse);
          sum += qs[e];
        }
        sums[j] = d * static_cast<float>(sum);
      }
      *reinterpret_cast<float*>(block + kQ8x256ScaleOffset) = d;
    }
  }
}

// ---- matmul ----

// Calls dot(weight_row, activation_row) for every output of the task.
template <typename Dot>
void for_each_output(const MatmulTask& t, Dot dot) {
  for (int64_t i = 0; i < t.m; ++i) {
    for (int64_t n = t.n_begin; n < t.n_end; ++n) {
      t.y[i * t.y_stride + n] =
          static_cast<float>(dot(t.w + n * t.w_row_bytes, t.x + i * t.x_row_bytes, t.k));
    }
  }
}

template <float (*kDecode)(uint16_t)>
double dot_16bit_f32(const uint8_t* w, const uint8_t* x, int64_t k) {
  const auto* wh = reinterpret_cast<const uint16_t*>(w);
  const auto* xf = reinterpret_cast<const float*>(x);
  double sum = 0;
  for (int64_t c = 0; c < k; ++c) sum += static_cast<double>(kDecode(wh[c])) * xf[c];
  return sum;
}

float dot_f32_f32(const uint8_t* w, const uint8_t* x, int64_t k) {
  const auto* wf = reinterpret_cast<const float*>(w);
  const auto* xf = reinterpret_cast<const float*>(x);
  float sum = 0;
  for (int64_t c = 0; c < k; ++c) sum += wf[c] * xf[c];  // as dot() and axpy() of ops_scalar.cpp
  return sum;
}

// The int8 value e of block b of a kQ8x32 row.
int8_t q8x32_value(const uint8_t* x, int64_t b, int64_t e) {
  const uint8_t* group = x + b / kQ8x32GroupBlocks * kQ8x32GroupBytes;
  return reinterpret_cast<const int8_t*>(group)[q8x32_offset(b % kQ8x32GroupBlocks, e)];
}

float q8x32_scale(const uint8_t* x, int64_t b) {
  const uint8_t* group = x + b / kQ8x32GroupBlocks * kQ8x32GroupBytes;
  return reinterpret_cast<const float*>(group + kQ8x32ScaleOffset)[4 * (b % kQ8x32GroupBlocks)];
}

double dot_q8_0(const uint8_t* w, const uint8_t* x, int64_t k) {
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(w);
  double sum = 0;
  for (int64_t b = 0; b < k / kQ8_0BlockElems; ++b) {
    int32_t dot = 0;
    for (int e = 0; e < kQ8_0BlockElems; ++e) dot += blocks[b].qs[e] * q8x32_value(x, b, e);
    sum += static_cast<double>(fp16_to_fp32(blocks[b].d)) * q8x32_scale(x, b) * dot;
  }
  return sum;
}

double dot_q4_0(const uint8_t* w, const uint8_t* x, int64_t k) {
  const auto* blocks = reinterpret_cast<const BlockQ4_0*>(w);
  constexpr int kHalf = kQ4_0BlockElems / 2;
  double sum = 0;
  for (int64_t b = 0; b < k / kQ4_0BlockElems; ++b) {
    int32_t dot = 0;
    for (int e = 0; e < kHalf; ++e) {
      dot += ((blocks[b].qs[e] & 0xF) - kQ4_0Offset) * q8x32_value(x, b, e);
      dot += ((blocks[b].qs[e] >> 4) - kQ4_0Offset) * q8x32_value(x, b, e + kHalf);
    }
    sum += static_cast<double>(fp16_to_fp32(blocks[b].d)) * q8x32_scale(x, b) * dot;
  }
  return sum;
}

double dot_q4_k(const uint8_t* w, const uint8_t* x, int64_t k) {
  const auto* blocks = reinterpret_cast<const BlockQ4_K*>(w);
  double sum = 0;
  for (int64_t b = 0; b < k / kQ4_KBlockElems; ++b) {
    const BlockQ4_K& block = blocks[b];
    const uint8_t* xb = x + b * kQ8x256BlockBytes;
    const float dx = *reinterpret_cast<const float*>(xb + kQ8x256ScaleOffset);
    int64_t scaled_dot = 0;  // sum over sub-blocks of scale * (q . x)
    int64_t min_dot = 0;     // sum over sub-blocks of min * (sum of x)
    for (int j = 0; j < kQ4_KSubBlocks; ++j) {
      uint8_t scale, min;
      unpack_q4_k_scale_min(block.scales, j, &scale, &min);
      const uint8_t* qs = block.qs + (j / 2) * kQ4_KSubBlockElems;
      const int shift = (j % 2) * 4;
      const auto* xq =
          reinterpret_cast<const int8_t*>(xb) + kQ8x256SubBlockSlot[j] * kQ8x256SubBlockElems;
      int32_t dot = 0, x_sum = 0;
      for (int e = 0; e < kQ4_KSubBlockElems; ++e) {
        dot += ((qs[e] >> shift) & 0xF) * xq[e];
        x_sum += xq[e];
      }
      scaled_dot += static_cast<int64_t>(scale) * dot;
      min_dot += static_cast<int64_t>(min) * x_sum;
    }
    sum += static_cast<double>(fp16_to_fp32(block.d)) * dx * static_cast<double>(scaled_dot) -
           static_cast<double>(fp16_to_fp32(block.dmin)) * dx * static_cast<double>(min_dot);
  }
  return sum;
}

void matmul_f32(const MatmulTask& t) {
  for_each_output(t, dot_f32_f32);
}
void matmul_f16(const MatmulTask& t) {
  for_each_output(t, dot_16bit_f32<fp16_to_fp32>);
}
void matmul_bf16(const MatmulTask& t) {
  for_each_output(t, dot_16bit_f32<bf16_to_fp32>);
}
void matmul_q8_0(const MatmulTask& t) {
  for_each_output(t, dot_q8_0);
}
void matmul_q4_0(const MatmulTask& t) {
  for_each_output(t, dot_q4_0);
}
void matmul_q4_k(const MatmulTask& t) {
  for_each_output(t, dot_q4_k);
}

}  // namespace

void register_scalar_matmul(KernelTable& table) {
  auto set = [&](WeightType type, ActivationType activation, PrepareFn prepare, MatmulFn run) {
    table.matmul[weight_type_index(type)] = {activation, prepare, run};
  };
  set(WeightType::kF32, ActivationType::kF32, nullptr, matmul_f32);
  set(WeightType::kF16, ActivationType::kF32, nullptr, matmul_f16);
  set(WeightType::kBF16, ActivationType::kF32, nullptr, matmul_bf16);
  set(WeightType::kQ8_0, ActivationType::kQ8x32, prepare_q8x32<kQ8x32OffsetForQ8_0>, matmul_q8_0);
  set(WeightType::kQ4_0, ActivationType::kQ8x32, prepare_q8x32<kQ8x32OffsetForQ4_0>, matmul_q4_0);
  set(WeightType::kQ4_K, ActivationType::kQ8x256, prepare_q8x256, matmul_q4_k);
}

}  // namespace ondol::kernels

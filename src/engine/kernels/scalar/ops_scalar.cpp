// Reference element-wise ops: straightforward loops with libm's exp and double accumulators,
// except the attention dots (dot, dot_f16), which accumulate in float in order like axpy: they
// must give what the F32 matmul of matmul_scalar.cpp gives for the same rows, so that a token's
// attention is the same on the matmul path (prefill) and the row path (single tokens).
// Compiled with -ffp-contract=off: no a * b + c is fused on one path and not on the other.
#include <cmath>

#include "engine/kernels/half.h"
#include "engine/kernels/isa_registry.h"

namespace ondol::kernels {

namespace {

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  double sum_squares = 0;
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_squares / n + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inverse = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inverse;
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

int64_t argmax(const float* x, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) continue;
    if (best < 0 || x[i] > x[best]) best = i;
  }
  return best < 0 ? 0 : best;
}

void matmul_nn(const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
               int64_t c_stride, int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0;
      for (int64_t l = 0; l < k; ++l) acc = std::fma(a[i * a_stride + l], b[l * b_stride + j], acc);
      c[i * c_stride + j] = acc;
    }
  }
}

float scale_max(float* x, float factor, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= factor;
    if (x[i] > max) max = x[i];
  }
  return max;
}

double exp_sum(const float* x, float shift, float* out, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = std::exp(x[i] - shift);
    sum += out[i];
  }
  return sum;
}

float dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * fp16_to_fp32(b[i]);
  return sum;
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void dot_rows_f16(const float* q, const uint16_t* rows, int64_t num_rows, int64_t n, float scale,
                  float* out) {
  for (int64_t r = 0; r < num_rows; ++r) out[r] = dot_f16(q, rows + r * n, n) * scale;
}

void axpy_rows_f16(float* y, const float* a, const uint16_t* rows, int64_t num_rows, int64_t n) {
  for (int64_t r = 0; r < num_rows; ++r) axpy_f16(y, a[r], rows + r * n, n);
}

// scale = max |in| / 127; q[i] = in[i] / scale (a division, not a multiply by the reciprocal,
// so every level rounds the same), to the nearest integer with ties to even (nearbyint under the
// default rounding mode, as vcvtps2dq), clamped to [-127, 127]. A row whose scale is 0 (all
// zeros, or max |in| so small that max / 127 underflows) stores zeros. NaN and infinite inputs
// are not supported: no level defines their bytes.
void quantize_row_i8(const float* in, int8_t* q, float* scale, int64_t n) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(in[i]));
  const float s = amax / 127.0f;
  *scale = s;
  for (int64_t i = 0; i < n; ++i) {
    const float rounded = s == 0 ? 0.0f : std::nearbyint(in[i] / s);
    q[i] = static_cast<int8_t>(std::fmin(std::fmax(rounded, -127.0f), 127.0f));
  }
}

// One rounding per value: float(q) is exact, then the multiply by the row's scale.
float dequantize_i8(int8_t q, float scale) {
  return static_cast<float>(q) * scale;
}

void dequantize_rows_i8(const int8_t* rows, const float* scales, int64_t num_rows, int64_t n,
                        float* out) {
  for (int64_t r = 0; r < num_rows; ++r) {
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = dequantize_i8(rows[r * n + i], scales[r]);
  }
}

// dot and axpy on the dequantized rows, the values formed on the fly.
void dot_rows_i8(const float* q, const int8_t* rows, const float* scales, int64_t num_rows,
                 int64_t n, float scale, float* out) {
  for (int64_t r = 0; r < num_rows; ++r) {
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += q[i] * dequantize_i8(rows[r * n + i], scales[r]);
    out[r] = sum * scale;
  }
}

void axpy_rows_i8(float* y, const float* a, const int8_t* rows, const float* scales,
                  int64_t num_rows, int64_t n) {
  for (int64_t r = 0; r < num_rows; ++r) {
    for (int64_t i = 0; i < n; ++i) y[i] += a[r] * dequantize_i8(rows[r * n + i], scales[r]);
  }
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(in[i]);
}

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(in[i]);
}

void bf16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(in[i]);
}

void fp32_to_bf16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(in[i]);
}

}  // namespace

void register_scalar_ops(KernelTable& table) {
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

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

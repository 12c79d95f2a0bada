// KernelTable: every compute kernel of one ISA level, as function pointers, so that the forward
// pass binds to a level once and calls without branching. active_kernels() is the table the
// engine uses; kernels_for() gives any level the CPU supports, for tests and benchmarks.
#pragma once

#include <cstdint>

#include "engine/kernels/activation_layout.h"
#include "engine/kernels/isa.h"
#include "engine/kernels/weight_type.h"

namespace ondol::kernels {

// One slice of y[M][N] = x[M][K] * W[N][K]^T: all M rows, columns [n_begin, n_end).
struct MatmulTask {
  const uint8_t* w;     // weight row n at w + n * w_row_bytes, in the kernel's WeightType
  int64_t w_row_bytes;  //
  const uint8_t* x;  // prepared activation row i at x + i * x_row_bytes (MatmulKernel::activation)
  int64_t x_row_bytes;  //
  int64_t m;            // activation rows (tokens)
  int64_t k;            // values per row
  float* y;             // y[i * y_stride + n]
  int64_t y_stride;     // floats
  int64_t n_begin;      // first weight row
  int64_t n_end;        // one past the last weight row
};

using MatmulFn = void (*)(const MatmulTask& task);

// Converts m rows of k floats (x_stride floats apart) into the kernel's activation type, rows
// out_row_bytes apart. Unused (null) for ActivationType::kF32.
using PrepareFn = void (*)(const float* x, int64_t m, int64_t k, int64_t x_stride, uint8_t* out,
                           int64_t out_row_bytes);

struct MatmulKernel {
  ActivationType activation = ActivationType::kF32;
  PrepareFn prepare = nullptr;
  MatmulFn run = nullptr;
};

struct KernelTable {
  Isa isa = Isa::kScalar;
  MatmulKernel matmul[kNumWeightTypes];  // indexed by weight_type_index
  // Q8_0 weights in WeightLayout::kQ8_0x16 (same activations as matmul[kQ8_0]); run is null on
  // levels without a kernel for it, and the loader then keeps the GGUF rows.
  MatmulKernel matmul_q8_0x16;

  // C (m x n) = A (m x k) · B (k x n), row-major F32, strides in floats. Element (i, j) is the
  // chain acc = fma(a[i][l], b[l][j], acc) over l = 0 .. k-1 in order from acc = 0 at every
  // level (the scalar one with std::fma), so it does not depend on the tile, on m or on the
  // rows beside it, and every level gives the same bits. Prompt attention: scores = Q · Kᵀ (B
  // the keys transposed) and out = probabilities · V. C must not overlap A or B.
  void (*matmul_nn)(const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
                    int64_t c_stride, int64_t m, int64_t n, int64_t k) = nullptr;
  // out = x / sqrt(mean(x^2) + eps) * weight, n floats; out may alias x.
  void (*rmsnorm)(float* out, const float* x, const float* weight, int64_t n, float eps) = nullptr;
  // x = exp(x - max x) / sum, in place; -inf entries become 0 (attention masks).
  void (*softmax)(float* x, int64_t n) = nullptr;
  // out = silu(gate) * up with silu(g) = g / (1 + exp(-g)): the SwiGLU feed-forward gate.
  void (*silu_mul)(float* out, const float* gate, const float* up, int64_t n) = nullptr;
  // out = a + b (residual connections); out may alias a or b.
  void (*add)(float* out, const float* a, const float* b, int64_t n) = nullptr;
  // The index of the first largest value of x[0, n), n >= 1 (greedy sampling over the
  // vocabulary). NaNs are passed over; 0 when every value is NaN.
  int64_t (*argmax)(const float* x, int64_t n) = nullptr;
  // Temperature sampling over a vocabulary: x[i] *= factor in place, returning the largest
  // result (NaNs passed over; -inf when there is none).
  float (*scale_max)(float* x, float factor, int64_t n) = nullptr;
  // out[i] = e^(x[i] - shift) (0 for -inf), returning their sum in double: in order at the
  // scalar level, lane by lane at the SIMD levels (the exp within a few ulp of libm's).
  double (*exp_sum)(const float* x, float shift, float* out, int64_t n) = nullptr;
  // sum a[i] * b[i] (attention scores)
  float (*dot)(const float* a, const float* b, int64_t n) = nullptr;
  // y += a * x (attention-weighted sum of values)
  void (*axpy)(float* y, float a, const float* x, int64_t n) = nullptr;
  // dot and axpy with b / x in F16 (a KV cache row), converted in registers: the same sums, in
  // the same order, as converting the row first and calling dot / axpy.
  float (*dot_f16)(const float* a, const uint16_t* b, int64_t n) = nullptr;
  void (*axpy_f16)(float* y, float a, const uint16_t* x, int64_t n) = nullptr;
  // A KV block at a time (rows of n F16 values, contiguous), bit-identical to calling the row
  // forms per row: out[r] = dot_f16(q, rows + r * n, n) * scale; and y += a[r] * row r for r in
  // order (the fast levels keep y in registers across the rows).
  void (*dot_rows_f16)(const float* q, const uint16_t* rows, int64_t num_rows, int64_t n,
                       float scale, float* out) = nullptr;
  void (*axpy_rows_f16)(float* y, const float* a, const uint16_t* rows, int64_t num_rows,
                        int64_t n) = nullptr;
  // Int8 KV cache rows (KvDtype::kI8): n int8 values q and one float scale per row; value i of a
  // row is float(q[i]) * scale, one rounding (dequantize_rows_i8). A row is quantized with
  // scale = max |in| / 127 (0 for a row of zeros) and q[i] = in[i] / scale rounded to the
  // nearest integer, ties to even, clamped to [-127, 127]; every level gives the same bytes. A
  // row whose scale underflows to 0 is stored as zeros. NaN and infinite inputs are not defined.
  void (*quantize_row_i8)(const float* in, int8_t* q, float* scale, int64_t n) = nullptr;
  // out (num_rows, n) = the dequantized rows; rows are n bytes apart, scales[r] is row r's.
  void (*dequantize_rows_i8)(const int8_t* rows, const float* scales, int64_t num_rows, int64_t n,
                             float* out) = nullptr;
  // The F16 block forms for int8 rows, bit-identical to dequantizing the rows first and calling
  // the F32 row forms: out[r] = dot(q, row r, n) * scale; and y += a[r] * row r (axpy) for r
  // in order.
  void (*dot_rows_i8)(const float* q, const int8_t* rows, const float* scales, int64_t num_rows,
                      int64_t n, float scale, float* out) = nullptr;
  void (*axpy_rows_i8)(float* y, const float* a, const int8_t* rows, const float* scales,
                       int64_t num_rows, int64_t n) = nullptr;
  // Row conversions, bit-exact with half.h (round to nearest even).
  void (*fp16_to_fp32_row)(const uint16_t* in, float* out, int64_t n) = nullptr;
  void (*fp32_to_fp16_row)(const float* in, uint16_t* out, int64_t n) = nullptr;
  void (*bf16_to_fp32_row)(const uint16_t* in, float* out, int64_t n) = nullptr;
  void (*fp32_to_bf16_row)(const float* in, uint16_t* out, int64_t n) = nullptr;
};

// The table for select_isa(getenv(ONDOL_ISA)), chosen on first use; thread-safe.
const KernelTable& active_kernels();

// The table of one level, or nullptr when this CPU lacks it.
const KernelTable* kernels_for(Isa isa);

const MatmulKernel& matmul_kernel(const KernelTable& table, WeightType type);

}  // namespace ondol::kernels

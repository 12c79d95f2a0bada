// Matrix multiplication against GGUF-typed weights: y[M][N] = x[M][K] * W[N][K]^T.
//
// Two steps, so that threads can share the first: prepare_activations converts x once into the
// form the weight's kernel consumes (see activation_layout.h), then matmul_rows computes any
// range of output columns. matmul() does both over a ThreadPool.
#pragma once

#include <cstdint>

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/thread_pool.h"
#include "engine/kernels/weight_type.h"

namespace ondol::kernels {

// How a WeightMatrix's values are arranged. A layout, not a WeightType: the values, the
// activations they take and every per-row use (embedding lookup, dequantize_row) stay the type's;
// only the matmul kernel differs, so the GGUF-numbered WeightType set stays closed.
enum class WeightLayout : uint8_t {
  kRows,     // as GGUF stores it: num_rows contiguous rows of row_bytes(type, num_cols)
  kQ8_0x16,  // kQ8_0 values in 16-row groups (q8_0x16_layout.h), 64-byte aligned; made by
             // RepackedWeights
};

// A weight tensor: as GGUF stores it, or repacked for a kernel (layout).
struct WeightMatrix {
  WeightType type = WeightType::kF32;
  const void* data = nullptr;
  int64_t num_rows = 0;  // N: output features
  int64_t num_cols = 0;  // K: input features; is_valid_row_length(type, num_cols)
  WeightLayout layout = WeightLayout::kRows;
};

// The kernel that multiplies w: its type's, or the one for its layout.
const MatmulKernel& matmul_kernel(const KernelTable& kernels, const WeightMatrix& w);

struct PreparedActivations {
  ActivationType type = ActivationType::kF32;
  const uint8_t* data = nullptr;  // row i at data + i * row_bytes
  int64_t row_bytes = 0;
  int64_t num_rows = 0;  // M
  int64_t num_cols = 0;  // K
};

// Scratch bytes prepare_activations needs for m rows of k values against `type` weights, for any
// kernel table (so one buffer, allocated up front, serves every ISA level).
int64_t matmul_scratch_bytes(WeightType type, int64_t m, int64_t k);

// Alignment the scratch buffer must have.
inline constexpr int64_t kMatmulScratchAlign = 64;

// x: m rows of k floats, x_stride floats apart. For F32 activations the result views x itself.
PreparedActivations prepare_activations(const KernelTable& kernels, WeightType type, const float* x,
                                        int64_t m, int64_t k, int64_t x_stride, void* scratch);

// y[i * y_stride + n] for all i < x.num_rows and n in [n_begin, n_end). x must come from
// prepare_activations with the same kernels and w.type. For WeightLayout::kQ8_0x16, n_begin and
// n_end are multiples of kQ8_0x16Rows (splits in kRowsPerUnit keep that).
void matmul_rows(const KernelTable& kernels, const WeightMatrix& w, const PreparedActivations& x,
                 float* y, int64_t y_stride, int64_t n_begin, int64_t n_end);

struct MatmulArgs {
  WeightMatrix w;
  const float* x = nullptr;  // (num_tokens, w.num_cols), rows x_stride floats apart
  int64_t num_tokens = 0;    // M
  int64_t x_stride = 0;
  float* y = nullptr;  // (num_tokens, w.num_rows), rows y_stride floats apart
  int64_t y_stride = 0;
  void* scratch = nullptr;  // matmul_scratch_bytes(w.type, num_tokens, w.num_cols), aligned
};

// Both steps; N (and the activation rows, when there are several) split over `pool`, or run on
// the calling thread when pool is null.
void matmul(const KernelTable& kernels, const MatmulArgs& args, ThreadPool* pool);

}  // namespace ondol::kernels

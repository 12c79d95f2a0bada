#include "engine/kernels/matmul.h"

#include <algorithm>
#include <cassert>

#include "engine/kernels/block_formats.h"
#include "engine/kernels/q8_0x16_layout.h"

namespace ondol::kernels {

namespace {

// Threads split N in units of this many weight rows: whole register tiles, whole cache lines of y,
// whole kQ8_0x16 groups.
constexpr int64_t kRowsPerUnit = 16;
static_assert(kRowsPerUnit % kQ8_0x16Rows == 0);

int64_t task_row_bytes(const WeightMatrix& w) {
  switch (w.layout) {
    case WeightLayout::kRows:
      return row_bytes(w.type, w.num_cols);
    case WeightLayout::kQ8_0x16:
      return w.num_cols / kQ8_0BlockElems * kQ8_0x16RowBlockBytes;
  }
  return 0;
}

}  // namespace

int64_t matmul_scratch_bytes(WeightType type, int64_t m, int64_t k) {
  switch (type) {
    case WeightType::kF32:
    case WeightType::kF16:
      return 0;
    case WeightType::kBF16:
      return m * activation_row_bytes(ActivationType::kBF16, k);
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
      return m * activation_row_bytes(ActivationType::kQ8x32, k);
    case WeightType::kQ4_K:
      return m * activation_row_bytes(ActivationType::kQ8x256, k);
  }
  return 0;
}

const MatmulKernel& matmul_kernel(const KernelTable& kernels, const WeightMatrix& w) {
  if (w.layout == WeightLayout::kQ8_0x16) {
    assert(w.type == WeightType::kQ8_0);
    return kernels.matmul_q8_0x16;
  }
  return matmul_kernel(kernels, w.type);
}

PreparedActivations prepare_activations(const KernelTable& kernels, WeightType type, const float* x,
                                        int64_t m, int64_t k, int64_t x_stride, void* scratch) {
  assert(is_valid_row_length(type, k));
  const MatmulKernel& kernel = matmul_kernel(kernels, type);
  if (kernel.activation == ActivationType::kF32) {
    return {ActivationType::kF32, reinterpret_cast<const uint8_t*>(x),
            x_stride * static_cast<int64_t>(sizeof(float)), m, k};
  }
  assert(reinterpret_cast<uintptr_t>(scratch) % kMatmulScratchAlign == 0);
  const int64_t row_bytes = activation_row_bytes(kernel.activation, k);
  auto* out = static_cast<uint8_t*>(scratch);
  kernel.prepare(x, m, k, x_stride, out, row_bytes);
  return {kernel.activation, out, row_bytes, m, k};
}

void matmul_rows(const KernelTable& kernels, const WeightMatrix& w, const PreparedActivations& x,
                 float* y, int64_t y_stride, int64_t n_begin, int64_t n_end) {
  assert(x.num_cols == w.num_cols);
  assert(0 <= n_begin && n_begin <= n_end && n_end <= w.num_rows);
  const MatmulKernel& kernel = matmul_kernel(kernels, w);
  assert(kernel.run != nullptr && kernel.activation == x.type);
  assert(w.layout != WeightLayout::kQ8_0x16 ||
         (n_begin % kQ8_0x16Rows == 0 && n_end % kQ8_0x16Rows == 0));
  if (n_begin == n_end || x.num_rows == 0) return;
  kernel.run(MatmulTask{
      .w = static_cast<const uint8_t*>(w.data),
      .w_row_bytes = task_row_bytes(w),
      .x = x.data,
      .x_row_bytes = x.row_bytes,
      .m = x.num_rows,
      .k = x.num_cols,
      .y = y,
      .y_stride = y_stride,
      .n_begin = n_begin,
      .n_end = n_end,
  });
}

void matmul(const KernelTable& kernels, const MatmulArgs& a, ThreadPool* pool) {
  const WeightType type = a.w.type;
  const int64_t k = a.w.num_cols;
  PreparedActivations x;
  const MatmulKernel& kernel = matmul_kernel(kernels, type);
  if (pool == nullptr || a.num_tokens == 1 || kernel.activation == ActivationType::kF32) {
    x = prepare_activations(kernels, type, a.x, a.num_tokens, k, a.x_stride, a.scratch);
  } else {
    // Rows are independent: prepare them in parallel, then describe the whole buffer.
    const int64_t row_bytes = activation_row_bytes(kernel.activation, k);
    pool->parallel_for(a.num_tokens, [&](int64_t begin, int64_t end) {
      prepare_activations(kernels, type, a.x + begin * a.x_stride, end - begin, k, a.x_stride,
                          static_cast<uint8_t*>(a.scratch) + begin * row_bytes);
    });
    x = {kernel.activation, static_cast<const uint8_t*>(a.scratch), row_bytes, a.num_tokens, k};
  }
  const int64_t n = a.w.num_rows;
  if (pool == nullptr) {
    matmul_rows(kernels, a.w, x, a.y, a.y_stride, 0, n);
    return;
  }
  const int64_t units = (n + kRowsPerUnit - 1) / kRowsPerUnit;
  pool->parallel_for(units, [&](int64_t begin, int64_t end) {
    matmul_rows(kernels, a.w, x, a.y, a.y_stride, begin * kRowsPerUnit,
                std::min(end * kRowsPerUnit, n));
  });
}

}  // namespace ondol::kernels

#include "engine/kernels/repacked_weights.h"

#include <cassert>
#include <new>

#include "engine/kernels/block_formats.h"
#include "engine/kernels/half.h"
#include "engine/kernels/q8_0x16_layout.h"

namespace ondol::kernels {

namespace {

constexpr std::align_val_t kAlign{64};  // one cache line; the kernel's 512-bit loads

}  // namespace

int64_t q8_0x16_bytes(int64_t num_rows, int64_t num_cols) {
  return num_rows * (num_cols / kQ8_0BlockElems) * kQ8_0x16RowBlockBytes;
}

void repack_q8_0x16_groups(const void* rows, int64_t num_cols, int64_t g_begin, int64_t g_end,
                           uint8_t* out) {
  const int64_t num_blocks = num_cols / kQ8_0BlockElems;
  const auto* blocks = static_cast<const BlockQ8_0*>(rows);
  for (int64_t g = g_begin; g < g_end; ++g) {
    uint8_t* group = out + g * kQ8_0x16Rows * num_blocks * kQ8_0x16RowBlockBytes;
    for (int64_t b = 0; b < num_blocks; ++b) {
      uint8_t* dst = group + b * kQ8_0x16BlockBytes;
      auto* scales = reinterpret_cast<float*>(dst + kQ8_0x16ScaleOffset);
      for (int64_t r = 0; r < kQ8_0x16Rows; ++r) {
        const BlockQ8_0& src = blocks[(g * kQ8_0x16Rows + r) * num_blocks + b];
        for (int64_t j = 0; j < kQ8_0x16Chunks; ++j) {
          for (int64_t i = 0; i < 4; ++i) {
            dst[j * kQ8_0x16ChunkBytes + 4 * r + i] =
                static_cast<uint8_t>(src.qs[4 * j + i]) ^ kQ8_0x16Flip;
          }
        }
        scales[r] = fp16_to_fp32(src.d);
      }
    }
  }
}

bool RepackedWeights::can_repack(const KernelTable& kernels, const WeightMatrix& w) {
  return kernels.matmul_q8_0x16.run != nullptr && w.type == WeightType::kQ8_0 &&
         w.layout == WeightLayout::kRows && w.num_rows > 0 && w.num_rows % kQ8_0x16Rows == 0 &&
         is_valid_row_length(w.type, w.num_cols);
}

void RepackedWeights::AlignedFree::operator()(uint8_t* p) const {
  ::operator delete(p, kAlign);
}

RepackedWeights::RepackedWeights(const WeightMatrix& w, ThreadPool* pool) {
  assert(w.type == WeightType::kQ8_0 && w.layout == WeightLayout::kRows);
  assert(w.num_rows % kQ8_0x16Rows == 0 && is_valid_row_length(w.type, w.num_cols));
  const int64_t bytes = q8_0x16_bytes(w.num_rows, w.num_cols);
  storage_.reset(static_cast<uint8_t*>(::operator new(static_cast<size_t>(bytes), kAlign)));
  const int64_t num_groups = w.num_rows / kQ8_0x16Rows;
  uint8_t* out = storage_.get();
  if (pool == nullptr) {
    repack_q8_0x16_groups(w.data, w.num_cols, 0, num_groups, out);
  } else {
    pool->parallel_for(num_groups, [&](int64_t begin, int64_t end) {
      repack_q8_0x16_groups(w.data, w.num_cols, begin, end, out);
    });
  }
  matrix_ = WeightMatrix{.type = w.type,
                         .data = out,
                         .num_rows = w.num_rows,
                         .num_cols = w.num_cols,
                         .layout = WeightLayout::kQ8_0x16};
}

}  // namespace ondol::kernels

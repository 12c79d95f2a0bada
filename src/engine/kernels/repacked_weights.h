// RepackedWeights: an owned copy of a Q8_0 WeightMatrix in WeightLayout::kQ8_0x16, made at model
// load where the kernel table has a kernel for that layout (AVX-512 VNNI). The GGUF rows stay
// where they are for everything that reads rows (the embedding lookup); only matmuls use this.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/thread_pool.h"

namespace ondol::kernels {

class RepackedWeights {
 public:
  // True when w is Q8_0 in GGUF rows, its rows come in whole groups (N % 16 == 0) and `kernels`
  // has a kQ8_0x16 kernel. Other matrices keep the plain Q8_0 path.
  static bool can_repack(const KernelTable& kernels, const WeightMatrix& w);

  // Repacks w (which can_repack accepts) into a 64-byte aligned buffer, the groups split over
  // pool when it is non-null. w's data is only read here.
  RepackedWeights(const WeightMatrix& w, ThreadPool* pool);

  // The repacked view: same type, shape and values as w, layout kQ8_0x16.
  const WeightMatrix& matrix() const { return matrix_; }

 private:
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, AlignedFree> storage_;
  WeightMatrix matrix_;
};

// Bytes of the kQ8_0x16 form of num_rows x num_cols Q8_0 values.
int64_t q8_0x16_bytes(int64_t num_rows, int64_t num_cols);

// Writes 16-row groups [g_begin, g_end) of the kQ8_0x16 form of `rows` (Q8_0, num_cols values per
// row, GGUF layout) into out, which holds the whole matrix.
void repack_q8_0x16_groups(const void* rows, int64_t num_cols, int64_t g_begin, int64_t g_end,
                           uint8_t* out);

// The reference kernel for kQ8_0x16 against kQ8x32 activations (offset 128): output (m, n) is
// acc = fma(float(dot_b), w_scale_b * x_scale_b, acc) over blocks b in order from acc = 0, with
// dot_b the exact integer dot product. Every SIMD kernel for the layout computes that same chain,
// so results are bit-identical whatever the batch size, tile or thread split (tested).
void matmul_q8_0x16_reference(const MatmulTask& t);

}  // namespace ondol::kernels

// The reference kernel for Q8_0 weights in WeightLayout::kQ8_0x16: plain loops over the layout
// of q8_0x16_layout.h and the kQ8x32 activations. Unlike the other references it does not sum in
// double: it fixes the float chain every kQ8_0x16 kernel must reproduce bit for bit.
#include <cmath>

#include "engine/kernels/activation_layout.h"
#include "engine/kernels/q8_0x16_layout.h"
#include "engine/kernels/repacked_weights.h"

namespace ondol::kernels {

namespace {

// Activation value e of block b, its scale and correction, in a kQ8x32 row.
struct ActivationBlock {
  const uint8_t* group;
  int64_t j;  // block within the group

  int8_t value(int64_t e) const {
    const int64_t offset =
        e < kQ8x32HalfBlockElems
            ? kQ8x32HalfBlockElems * j + e
            : kQ8x32GroupElems / 2 + kQ8x32HalfBlockElems * j + (e - kQ8x32HalfBlockElems);
    return static_cast<int8_t>(group[offset]);
  }
  float scale() const { return reinterpret_cast<const float*>(group + kQ8x32ScaleOffset)[4 * j]; }
  int32_t correction() const {
    return reinterpret_cast<const int32_t*>(group + kQ8x32CorrectionOffset)[4 * j];
  }
};

}  // namespace

void matmul_q8_0x16_reference(const MatmulTask& t) {
  const int64_t num_blocks = t.k / kQ8x32BlockElems;
  for (int64_t i = 0; i < t.m; ++i) {
    const uint8_t* x = t.x + i * t.x_row_bytes;
    for (int64_t n = t.n_begin; n < t.n_end; ++n) {
      const int64_t r = n % kQ8_0x16Rows;
      const uint8_t* group = t.w + (n - r) * t.w_row_bytes;
      float acc = 0.0f;
      for (int64_t b = 0; b < num_blocks; ++b) {
        const uint8_t* w = group + b * kQ8_0x16BlockBytes;
        const ActivationBlock xb{x + b / kQ8x32GroupBlocks * kQ8x32GroupBytes,
                                 b % kQ8x32GroupBlocks};
        // Unsigned weights (q + 128) against signed activations, then the correction
        // (-128 * sum of the activations) leaves the signed dot product, as vpdpbusd does.
        int32_t dot = xb.correction();
        for (int64_t e = 0; e < kQ8x32BlockElems; ++e) {
          const int64_t chunk = e / 4;
          dot += w[chunk * kQ8_0x16ChunkBytes + 4 * r + e % 4] * xb.value(e);
        }
        const float w_scale = reinterpret_cast<const float*>(w + kQ8_0x16ScaleOffset)[r];
        acc = std::fma(static_cast<float>(dot), w_scale * xb.scale(), acc);
      }
      t.y[i * t.y_stride + n] = acc;
    }
  }
}

}  // namespace ondol::kernels

// dot_q8x32_tail: the blocks of a Q8_0/Q4_0 row past its last whole kQ8x32 group (k % 128 != 0),
// one at a time in plain code. Rare (model widths are multiples of 128), so not vectorized.
// Included only by ISA translation units; static for the reason given in tile_driver.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/activation_layout.h"

namespace ondol::kernels {

// Format::Block has a fp16 `d`; Format::value(block, e) is the signed integer value e (0..31).
template <class Format>
static float dot_q8x32_tail(const typename Format::Block* w, const uint8_t* x, int64_t first_block,
                            int64_t end_block) {
  float sum = 0;
  for (int64_t b = first_block; b < end_block; ++b) {
    const uint8_t* group = x + b / kQ8x32GroupBlocks * kQ8x32GroupBytes;
    const int64_t j = b % kQ8x32GroupBlocks;
    const auto* qs = reinterpret_cast<const int8_t*>(group);
    int32_t dot = 0;
    for (int e = 0; e < kQ8x32HalfBlockElems; ++e) {
      dot += Format::value(w[b], e) * qs[kQ8x32HalfBlockElems * j + e];
      dot += Format::value(w[b], e + kQ8x32HalfBlockElems) *
             qs[kQ8x32GroupElems / 2 + kQ8x32HalfBlockElems * j + e];
    }
    const float dx = reinterpret_cast<const float*>(group + kQ8x32ScaleOffset)[4 * j];
    sum += _cvtsh_ss(w[b].d) * dx * static_cast<float>(dot);
  }
  return sum;
}

}  // namespace ondol::kernels

// The quantized block layouts of GGUF/ggml, byte for byte: weights are used in place from an
// mmapped file. Plain structs and constants only, so that the ISA-specific translation units can
// include this header without emitting any function (see docs/engine-kernels.md).
#pragma once

#include <cstdint>

namespace ondol::kernels {

inline constexpr int kQ8_0BlockElems = 32;
inline constexpr int kQ4_0BlockElems = 32;
inline constexpr int kQ4_KBlockElems = 256;    // a "super-block"
inline constexpr int kQ4_KSubBlockElems = 32;  // each with its own 6-bit scale and min
inline constexpr int kQ4_KSubBlocks = kQ4_KBlockElems / kQ4_KSubBlockElems;
inline constexpr int kQ4_KScaleBytes = 12;  // 8 scales + 8 mins, 6 bits each
inline constexpr int kQ4_0Offset = 8;       // Q4_0 value = (nibble - 8) * d

// value[i] = qs[i] * d
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQ8_0BlockElems];
};
static_assert(sizeof(BlockQ8_0) == 34);

// value[i] = ((i < 16 ? qs[i] & 15 : qs[i - 16] >> 4) - 8) * d
struct BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[kQ4_0BlockElems / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// value of sub-block j, element l = d * sc[j] * q - dmin * m[j], where q is a nibble of qs:
// qs[32c + l] holds sub-block 2c in its low nibble and sub-block 2c + 1 in its high nibble.
// sc/m are 6-bit: for j < 4, sc = scales[j] & 63 and m = scales[j + 4] & 63; for j >= 4,
// sc = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4 and
// m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4.
struct BlockQ4_K {
  uint16_t d;     // fp16 scale of the sub-block scales
  uint16_t dmin;  // fp16 scale of the sub-block mins
  uint8_t scales[kQ4_KScaleBytes];
  uint8_t qs[kQ4_KBlockElems / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

}  // namespace ondol::kernels

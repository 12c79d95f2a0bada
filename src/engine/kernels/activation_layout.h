// ActivationType: the forms F32 activations are converted into before a matmul, one per weight
// format family, and their byte layouts. These are ondol's own (never stored in files), shaped so
// that the 512-bit integer kernels need no shuffles on the activation side; see
// docs/engine-kernels.md. Constants only, so the ISA translation units may include it.
#pragma once

#include <cstdint>

namespace ondol::kernels {

enum class ActivationType : uint8_t {
  kF32,     // the caller's rows as they are (no copy)
  kBF16,    // k bf16 values, zero-padded to a multiple of kBf16PadElems
  kQ8x32,   // int8 blocks of 32 with a float scale each, grouped by 4 (Q8_0 / Q4_0 weights)
  kQ8x256,  // int8 blocks of 256 with one float scale (Q4_K weights)
};

inline constexpr int64_t kActivationRowAlign = 64;  // bytes; every prepared row starts aligned

inline constexpr int64_t kBf16PadElems = 32;  // one 512-bit register of bf16

// kQ8x32, per group of 4 blocks (128 values); a final partial group is zero-filled:
//   int8  qs[128]    [b0 0:16][b1 0:16][b2 0:16][b3 0:16][b0 16:32][b1 16:32][b2 16:32][b3 16:32]
//   float d[16]      d of block j in lanes 4j..4j+3 (value = q * d)
//   int32 corr[16]   -offset * sum(q of block j) in lane 4j, 0 in lanes 4j+1..4j+3, where offset
//                    is what the weight kernel adds to make its operand unsigned (Q8_0: 128,
//                    Q4_0: 8), so an accumulator started at corr ends at the signed dot product.
inline constexpr int64_t kQ8x32BlockElems = 32;
inline constexpr int64_t kQ8x32GroupBlocks = 4;
inline constexpr int64_t kQ8x32GroupElems = 128;
inline constexpr int64_t kQ8x32HalfBlockElems = 16;
inline constexpr int64_t kQ8x32ScaleOffset = 128;
inline constexpr int64_t kQ8x32CorrectionOffset = 192;
inline constexpr int64_t kQ8x32GroupBytes = 256;
inline constexpr int32_t kQ8x32OffsetForQ8_0 = 128;
inline constexpr int32_t kQ8x32OffsetForQ4_0 = 8;

// kQ8x256, per block of 256 values (k must be a multiple of 256):
//   int8  qs[256]    sub-blocks of 32 in the order 0,2,1,3,4,6,5,7: the order in which a Q4_K
//                    kernel meets them as low/high nibbles of 64-byte loads
//   float dsum[8]    d * sum(q of sub-block j), j in natural order (for the Q4_K min term)
//   float d          value = q * d
//   (pad to 320 bytes)
inline constexpr int64_t kQ8x256BlockElems = 256;
inline constexpr int64_t kQ8x256SubBlockElems = 32;
inline constexpr int64_t kQ8x256SubBlocks = 8;
inline constexpr int64_t kQ8x256SumsOffset = 256;
inline constexpr int64_t kQ8x256ScaleOffset = 288;
inline constexpr int64_t kQ8x256BlockBytes = 320;
// Position (in units of 32 bytes) of sub-block j inside qs; the permutation is its own inverse.
inline constexpr int kQ8x256SubBlockSlot[kQ8x256SubBlocks] = {0, 2, 1, 3, 4, 6, 5, 7};

inline constexpr int8_t kQ8MaxMagnitude = 127;  // activations quantize to [-127, 127]

// Bytes of one prepared row of k values (a multiple of kActivationRowAlign); 0 for kF32, whose
// rows are the caller's.
int64_t activation_row_bytes(ActivationType type, int64_t k);

}  // namespace ondol::kernels

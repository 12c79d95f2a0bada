// kQ8_0x16: Q8_0 weights repacked at load into 16-row groups for the AVX-512 VNNI kernel. The
// values and scales are Q8_0's; only their arrangement (and the scale's width) differs. Constants
// only, so the ISA translation units may include it. See docs/engine-kernels.md.
//
// A matrix of N rows (N % 16 == 0) and K values per row (K % 32 == 0) is N / 16 groups, group g
// at g * 16 * kQ8_0x16RowBlockBytes * (K / 32) bytes; inside a group, block b (values
// 32b..32b+31 of every row) takes kQ8_0x16BlockBytes:
//   uint8 qs[8][64]  chunk j holds, for rows r = 0..15 in order, values 4j..4j+3 of row r as
//                    unsigned bytes (q ^ 0x80, i.e. q + 128): one vpdpbusd operand against a
//                    broadcast of 4 activation bytes
//   float d[16]      the scale of row r's block in lane r, widened from fp16
#pragma once

#include <cstdint>

namespace ondol::kernels {

inline constexpr int64_t kQ8_0x16Rows = 16;        // rows per group: one 512-bit int32 lane each
inline constexpr int64_t kQ8_0x16Chunks = 8;       // 4-value chunks per 32-value block
inline constexpr int64_t kQ8_0x16ChunkBytes = 64;  // 4 bytes x 16 rows
inline constexpr int64_t kQ8_0x16ScaleOffset = kQ8_0x16Chunks * kQ8_0x16ChunkBytes;    // 512
inline constexpr int64_t kQ8_0x16BlockBytes = kQ8_0x16ScaleOffset + 4 * kQ8_0x16Rows;  // 576
// Bytes one row contributes per block: a matrix's size is num_rows * (K / 32) * this, and the
// kernels' w_row_bytes is (K / 32) * this, so group g starts at row 16g's "row" offset.
inline constexpr int64_t kQ8_0x16RowBlockBytes = kQ8_0x16BlockBytes / kQ8_0x16Rows;  // 36
inline constexpr uint8_t kQ8_0x16Flip = 0x80;  // int8 q -> uint8 q + 128

}  // namespace ondol::kernels

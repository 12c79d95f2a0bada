// Scalar conversion of F32 rows to and from every weight format. Quantizing writes dummy models
// and test data; dequantizing serves embedding lookups and tests. Not on the matmul path: matmul
// kernels read the blocks directly.
#pragma once

#include <cstdint>

#include "engine/kernels/block_formats.h"
#include "engine/kernels/weight_type.h"

namespace ondol::kernels {

// k values of x into row_bytes(type, k) bytes at out; k must satisfy is_valid_row_length.
void quantize_row(WeightType type, const float* x, void* out, int64_t k);
// row_bytes(type, k) bytes at in back into k floats.
void dequantize_row(WeightType type, const void* in, float* y, int64_t k);

// d = max|x| / 127, q = round(x / d).
void quantize_row_q8_0(const float* x, BlockQ8_0* out, int64_t k);
void dequantize_row_q8_0(const BlockQ8_0* in, float* y, int64_t k);

// d = -(the value of largest magnitude) / 8, so that value maps to nibble 0 exactly and the
// opposite sign keeps 7 steps; q = clamp(round(x / d) + 8, 0, 15).
void quantize_row_q4_0(const float* x, BlockQ4_0* out, int64_t k);
void dequantize_row_q4_0(const BlockQ4_0* in, float* y, int64_t k);

// Per sub-block of 32, an unsigned 4-bit grid with a scale and a min (x ~ scale * q - min,
// min >= 0) fitted by least squares over a range of candidate scales; scales and mins are then
// rounded to 6 bits against the super-block's d and dmin.
void quantize_row_q4_k(const float* x, BlockQ4_K* out, int64_t k);
void dequantize_row_q4_k(const BlockQ4_K* in, float* y, int64_t k);

// The 6-bit scale and min of sub-block j (0..7) from BlockQ4_K::scales.
void unpack_q4_k_scale_min(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min);

}  // namespace ondol::kernels
